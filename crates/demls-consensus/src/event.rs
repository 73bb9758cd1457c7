//! What the machine reports. Events leave through one ordered queue
//! ([`VotingMachine::poll_event`](crate::VotingMachine::poll_event)), in the causal order they
//! happened; each edge is reported exactly once.

use sha2::{Digest as _, Sha256};

use crate::message::Vote;
use crate::rule::{Outcome, Tally};
use crate::types::{Epoch, MemberId, ProposalDigest, ProposalKind};

/// What made a proposal's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecidedBy {
    /// The counted votes settled it before the deadline.
    Early,
    /// The deadline passed; silent voters were counted per the liveness flag.
    Deadline,
}

/// A proposal's final decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    /// The outcome.
    pub outcome: Outcome,
    /// The counted votes at the moment of decision.
    pub tally: Tally,
    /// Early or at the deadline.
    pub by: DecidedBy,
}

/// Proof that a voter signed two different votes on one proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The proposal.
    pub proposal: ProposalDigest,
    /// The voter.
    pub voter: MemberId,
    /// The vote that is counted (the first this machine accepted).
    pub counted: Vote,
    /// The conflicting vote (never counted).
    pub conflicting: Vote,
}

/// A report from the voting machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A proposal was accepted and is open for voting.
    ProposalOpened {
        /// Its digest.
        proposal: ProposalDigest,
        /// Its kind.
        kind: ProposalKind,
        /// Its creator.
        creator: MemberId,
    },
    /// A proposal was decided.
    Decided {
        /// Its digest.
        proposal: ProposalDigest,
        /// The decision.
        decision: Decision,
    },
    /// A voter equivocated; the evidence is kept and the second vote is not counted.
    Equivocation(Box<Equivocation>),
    /// The epoch ended before the proposal was decided; it will never be decided.
    Abandoned {
        /// Its digest.
        proposal: ProposalDigest,
        /// The epoch it belonged to.
        epoch: Epoch,
    },
}

impl Event {
    pub(crate) fn digest_into(&self, h: &mut Sha256) {
        match self {
            Event::ProposalOpened {
                proposal,
                kind,
                creator,
            } => {
                h.update([1, kind.code()]);
                h.update(proposal.0);
                h.update((creator.as_bytes().len() as u32).to_be_bytes());
                h.update(creator.as_bytes());
            }
            Event::Decided { proposal, decision } => {
                h.update([2, decision.outcome as u8, decision.by as u8]);
                h.update(proposal.0);
                for v in [
                    decision.tally.electorate,
                    decision.tally.yes,
                    decision.tally.no,
                ] {
                    h.update(v.to_be_bytes());
                }
            }
            Event::Equivocation(e) => {
                h.update([3]);
                h.update(e.proposal.0);
                h.update(e.counted.digest().0);
                h.update(e.conflicting.digest().0);
            }
            Event::Abandoned { proposal, epoch } => {
                h.update([4]);
                h.update(proposal.0);
                h.update(epoch.0.to_be_bytes());
            }
        }
    }
}
