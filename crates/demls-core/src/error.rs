//! Every reason the conversation refuses an input or a command. A refused input changes no
//! protocol state: [`Conversation::state_digest`](crate::Conversation::state_digest) is the
//! same before and after.

use demls_consensus::{Epoch, MemberId};
use demls_wire::WireError;

/// Why an input or command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The packet did not decode or broke a size rule.
    #[error("undecodable packet: {0}")]
    Wire(#[from] WireError),
    /// The packet belongs to another conversation.
    #[error("packet for another conversation")]
    WrongConversation,
    /// The MLS message did not parse, or openmls refused it (bad signature, wrong epoch,
    /// replay, decryption failure, unknown sender, ...). The text is openmls's reason.
    #[error("MLS message refused: {0}")]
    Mls(String),
    /// The MLS message is for an epoch this member has left behind.
    #[error("message for past epoch {got} (current {current})")]
    StaleEpoch {
        /// The message's epoch.
        got: Epoch,
        /// This member's epoch.
        current: Epoch,
    },
    /// The voting layer refused the content.
    #[error("voting message refused: {0}")]
    Voting(#[from] demls_consensus::Error),
    /// A voting message's signer is not the MLS sender that carried it.
    #[error("voting message signed by {signer} but sent by {sender}")]
    SenderMismatch {
        /// Who signed the proposal or vote.
        signer: MemberId,
        /// The MLS sender.
        sender: MemberId,
    },
    /// A governance proposal's payload is invalid (undecodable, an invalid key package, an
    /// unknown member, or a leave whose target is not its creator).
    #[error("invalid governance proposal: {0}")]
    InvalidProposal(&'static str),
    /// A commit came from a member who is not a steward of this epoch.
    #[error("commit by {0}, who is not a steward")]
    NotFromSteward(MemberId),
    /// A commit's changes do not match the finalized proposals it references.
    #[error("commit does not match its proposals: {0}")]
    CommitMismatch(&'static str),
    /// The input needs group membership this member does not have (yet, or any more).
    #[error("not a member of the conversation")]
    NotAMember,
    /// The command needs this member to be the steward.
    #[error("only a steward can do this")]
    NotSteward,
    /// The conversation is closed.
    #[error("the conversation is closed")]
    Closed,
    /// A payload exceeds what can be fragmented or reassembled.
    #[error("payload of {len} bytes exceeds the {max}-byte limit")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many reassemblies are in progress.
    #[error("{max} fragment reassemblies already in progress")]
    ReassemblyLimit {
        /// The limit.
        max: usize,
    },
    /// This fragment piece was already received.
    #[error("duplicate fragment")]
    DuplicateFragment,
    /// A fragment disagrees with earlier pieces of the same payload.
    #[error("fragment inconsistent with earlier pieces")]
    FragmentMismatch,
    /// A reassembled payload is itself a fragment.
    #[error("nested fragment")]
    NestedFragment,
    /// The future-epoch buffer is full.
    #[error("future-epoch buffer holds its maximum of {max} messages")]
    BufferFull {
        /// The limit.
        max: usize,
    },
    /// The member id is not in the roster.
    #[error("{0} is not a member")]
    UnknownMember(MemberId),
    /// The group parameters (steward list, scores, governance parameters) are invalid for
    /// the group's roster.
    #[error("invalid group parameters: {0}")]
    InvalidGroupParams(&'static str),
    /// A lower-priority governance proposal while a higher-priority one is open ("Partial
    /// Freeze Semantics"): it is neither created nor accepted until that one is decided.
    #[error("governance frozen: a higher-priority proposal is open")]
    Frozen,
    /// A member acknowledged more different commit candidates in one acknowledgement round
    /// than allowed.
    #[error("{0} acknowledged too many commit candidates in one round")]
    TooManyAcks(MemberId),
    /// A member acknowledged commit candidates in more rounds ahead of this member's current
    /// one than are kept; it is heard again when it resends them.
    #[error("{0} acknowledged in too many rounds ahead of this member's")]
    AcksTooFarAhead(MemberId),
    /// A snapshot could not be restored.
    #[error("invalid snapshot: {0}")]
    Snapshot(String),
}
