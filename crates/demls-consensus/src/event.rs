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
    /// The counted votes settle it whatever the outstanding votes turn out to be (the early
    /// rule, [`rule::early_decision`](crate::rule::early_decision)). Reached before the
    /// deadline, or proven after a deadline decision by a bundle of votes cast inside the
    /// voting window ([`Event::Revised`]). **Final**: never changes again.
    Early,
    /// The deadline passed; silent voters were counted per the liveness flag. Votes a bundle
    /// brings afterwards are counted and the decision recomputed over the union — early (and
    /// final) when they settle it — so its outcome may change ([`Event::Revised`]): in one
    /// direction only (the liveness flag fixes which), at most twice.
    Deadline,
}

/// A proposal's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    /// The outcome.
    pub outcome: Outcome,
    /// The counted votes at the moment of decision.
    pub tally: Tally,
    /// Early (final) or at the deadline.
    pub by: DecidedBy,
}

impl Decision {
    /// Whether the decision can never change: `true` for an early decision
    /// ([`DecidedBy::Early`]), whose outcome every completion of the outstanding votes
    /// confirms. A deadline decision is not final: votes a bundle brings later may change it
    /// ([`Event::Revised`]).
    pub fn is_final(&self) -> bool {
        self.by == DecidedBy::Early
    }

    fn digest_into(&self, h: &mut Sha256) {
        h.update([self.outcome as u8, self.by as u8]);
        for v in [self.tally.electorate, self.tally.yes, self.tally.no] {
            h.update(v.to_be_bytes());
        }
    }
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
    /// A proposal was decided. Reported once per proposal. A decision with
    /// [`DecidedBy::Deadline`] may later be replaced, reported as [`Event::Revised`].
    Decided {
        /// Its digest.
        proposal: ProposalDigest,
        /// The decision.
        decision: Decision,
    },
    /// A proposal decided at its deadline changed outcome: a bundle of validly signed votes,
    /// each cast inside the voting window, brought votes this machine had not counted, and
    /// the union of the votes gives another outcome — the early rule's when it settles the
    /// proposal whatever the outstanding votes are ([`DecidedBy::Early`], final), otherwise
    /// the deadline rule's over the union ([`DecidedBy::Deadline`]). (A member that missed
    /// votes counted those voters as silent at the deadline, while members that received them
    /// decided otherwise; the union is the decision all can justify once they hold it.)
    ///
    /// The bundle's votes are now counted, `decision` replaces `previous` (always a
    /// [`DecidedBy::Deadline`] one), and the host must act on `decision.outcome` instead of
    /// the outcome it was told before. Always after its `Decided`; the deadline rule over a
    /// growing set of votes moves one way only, so at most twice per proposal (once through a
    /// `Retry` tie), and never after an early decision.
    Revised {
        /// Its digest.
        proposal: ProposalDigest,
        /// The deadline decision that is replaced (as reported by [`Event::Decided`] or an
        /// earlier `Revised`).
        previous: Decision,
        /// The decision of the union of the votes that replaces it.
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
            Event::Revised {
                proposal,
                previous,
                decision,
            } => {
                h.update([5]);
                h.update(proposal.0);
                previous.digest_into(h);
                decision.digest_into(h);
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
