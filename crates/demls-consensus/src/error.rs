//! Every reason the voting machine refuses an input or a command. A refused input changes no
//! state: the [state digest](crate::VotingMachine::state_digest) is identical before and after.

use demls_wire::WireError;

use crate::types::{Epoch, MemberId, ProposalDigest, Timestamp};

/// What a signature was expected to cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// A proposal header.
    ProposalHeader,
    /// A vote.
    Vote,
}

/// Why an input or command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes did not decode, or broke a size or presence rule of the schema.
    #[error("undecodable message: {0}")]
    Wire(#[from] WireError),
    /// The message belongs to another conversation.
    #[error("message for another conversation")]
    WrongConversation,
    /// The message belongs to another epoch than the machine's current one.
    #[error("message for epoch {got}, the current epoch is {expected}")]
    WrongEpoch {
        /// The machine's epoch.
        expected: Epoch,
        /// The message's epoch.
        got: Epoch,
    },
    /// The creator or voter is not in the roster of the proposal's epoch.
    #[error("{0} is not a member of the roster")]
    NonMember(MemberId),
    /// A signature does not verify under the signer's roster key (also what a tampered header
    /// or vote produces).
    #[error("bad {what:?} signature by {signer}")]
    BadSignature {
        /// The claimed signer.
        signer: MemberId,
        /// What the signature covers.
        what: Signed,
    },
    /// The payload does not hash to the header's payload digest.
    #[error("payload does not match the signed payload digest")]
    PayloadDigestMismatch,
    /// The creator's attached vote is by someone else, or on another proposal.
    #[error("the attached vote is not the creator's vote on this proposal")]
    CreatorVoteMismatch,
    /// A vote references a proposal this machine does not know.
    #[error("vote for unknown proposal {0:?}")]
    UnknownProposal(ProposalDigest),
    /// A proposal or vote carries a time further in the future than the allowed clock skew.
    #[error("dated {at}, beyond the allowed skew from now ({now})")]
    FutureDated {
        /// The time carried.
        at: Timestamp,
        /// The machine's current time.
        now: Timestamp,
    },
    /// The proposal's deadline has passed (or is now): it takes no more proposals or votes.
    #[error("deadline {deadline} has passed (now {now})")]
    Expired {
        /// The proposal's deadline.
        deadline: Timestamp,
        /// The machine's current time.
        now: Timestamp,
    },
    /// The deadline is not after the creation time, or further than the maximum voting
    /// duration after it.
    #[error("deadline {deadline} is not within the allowed voting duration after {created_at}")]
    BadDeadline {
        /// Creation time.
        created_at: Timestamp,
        /// Deadline.
        deadline: Timestamp,
    },
    /// A vote's cast time lies outside the proposal's [created_at, deadline] window.
    #[error("vote cast at {cast_at}, outside the voting window")]
    VoteOutsideWindow {
        /// The vote's cast time.
        cast_at: Timestamp,
    },
    /// The global limit on open proposals is reached (a rate limit; nothing is evicted).
    #[error("{max} proposals are already open")]
    TooManyOpenProposals {
        /// The limit.
        max: usize,
    },
    /// The creator already has its maximum number of open proposals.
    #[error("{creator} already has {max} open proposals")]
    CreatorRateLimited {
        /// The creator.
        creator: MemberId,
        /// The limit.
        max: usize,
    },
    /// The epoch already holds its maximum number of proposals (open or decided). Refused,
    /// never evicted; the limit resets when the epoch advances.
    #[error("the epoch already holds {max} proposals")]
    EpochProposalLimit {
        /// The limit.
        max: usize,
    },
    /// The creator already made its maximum number of proposals this epoch.
    #[error("{creator} already made {max} proposals this epoch")]
    CreatorEpochLimit {
        /// The creator.
        creator: MemberId,
        /// The limit.
        max: usize,
    },
    /// A bundle's vote or proposal references another proposal than the bundle's digest.
    #[error("bundle content does not match the bundle's proposal digest")]
    BundleDigestMismatch,
    /// One vote in a bundle was refused, so the whole bundle was (bundles apply atomically).
    #[error("vote {index} of the bundle was refused: {source}")]
    BundleVote {
        /// Position of the vote in the bundle.
        index: usize,
        /// Why it was refused.
        source: Box<Error>,
    },
    /// Command: the local member is not in the roster, so it cannot propose or vote.
    #[error("the local member is not in the roster")]
    NotAVoter,
    /// Command: the local member already voted on this proposal.
    #[error("already voted on {0:?}")]
    AlreadyVoted(ProposalDigest),
    /// Command: the proposal is already decided.
    #[error("proposal {0:?} is already decided")]
    AlreadyDecided(ProposalDigest),
    /// Command: an identical proposal (same digest) already exists.
    #[error("proposal {0:?} already exists")]
    DuplicateProposal(ProposalDigest),
    /// Command: the signer's scheme is not the roster's.
    #[error("signer uses another signature scheme than the roster")]
    SchemeMismatch,
    /// Command: the signer failed.
    #[error("signing failed")]
    Signing,
}
