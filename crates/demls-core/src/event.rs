//! What a conversation reports, through one ordered queue.

use demls_consensus::{Decision, Epoch, Equivocation, MemberId, ProposalDigest};

/// A governance action as decided by vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Admit the node with this identity (from its key package).
    Add(MemberId),
    /// Remove this member.
    Remove(MemberId),
    /// This member leaves (self-removal).
    Leave(MemberId),
}

/// A report from a [`Conversation`](crate::Conversation). Drained in causal order, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// This member joined (a welcome was processed).
    Joined {
        /// The epoch joined at.
        epoch: Epoch,
    },
    /// A pending join expired without a welcome.
    JoinExpired,
    /// A node published a key package on the welcome channel.
    KeyPackageSeen {
        /// Its identity.
        member: MemberId,
    },
    /// A governance proposal was opened.
    ProposalOpened {
        /// Its digest.
        proposal: ProposalDigest,
        /// What it proposes.
        action: Action,
        /// Who proposed it.
        creator: MemberId,
    },
    /// A proposal was decided.
    ProposalDecided {
        /// Its digest.
        proposal: ProposalDigest,
        /// What it proposed.
        action: Action,
        /// The decision.
        decision: Decision,
    },
    /// A voter equivocated.
    Equivocation(Box<Equivocation>),
    /// A commit was applied: the group moved to a new epoch.
    EpochChanged {
        /// The new epoch.
        epoch: Epoch,
        /// Members added by the commit.
        added: Vec<MemberId>,
        /// Members removed by the commit.
        removed: Vec<MemberId>,
    },
    /// An application message arrived.
    Message {
        /// Its MLS-authenticated sender.
        sender: MemberId,
        /// Its bytes.
        body: Vec<u8>,
    },
    /// This member is no longer in the group (removed, or its leave was committed).
    Closed,
}
