//! One proposal's state: the signed proposal, its counted votes (one slot per voter, O(1)
//! lookup), equivocation evidence and, once decided, the decision.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::event::{Decision, Equivocation};
use crate::message::{SignedProposal, Vote};
use crate::rule::Tally;
use crate::types::{Choice, ProposalDigest, VoteDigest};
use crate::FixedMap;

/// How a verified-or-not vote relates to what the proposal already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Novelty {
    /// The voter has no counted vote yet.
    New,
    /// This exact vote (by transcript digest) is already held, counted or as evidence.
    Duplicate,
    /// The voter has a different counted vote and no evidence yet: this is an equivocation.
    Conflicting,
    /// The voter already equivocated; a further distinct vote adds nothing.
    AlreadyEquivocated,
}

/// What recording a (verified) vote did.
#[derive(Debug)]
pub(crate) enum Recorded {
    Counted,
    Duplicate,
    Equivocation(Box<Equivocation>),
    AlreadyEquivocated,
}

#[derive(Debug, Clone)]
struct CountedVote {
    digest: VoteDigest,
    vote: Vote,
}

#[derive(Debug, Clone)]
pub(crate) struct ProposalState {
    pub(crate) proposal: SignedProposal,
    pub(crate) digest: ProposalDigest,
    pub(crate) creator_index: u32,
    pub(crate) tally: Tally,
    pub(crate) decision: Option<Decision>,
    votes: FixedMap<u32, CountedVote>,
    equivocations: BTreeMap<u32, (VoteDigest, Box<Equivocation>)>,
}

impl ProposalState {
    pub(crate) fn new(
        proposal: SignedProposal,
        digest: ProposalDigest,
        creator_index: u32,
        electorate: u32,
    ) -> Self {
        Self {
            proposal,
            digest,
            creator_index,
            tally: Tally {
                electorate,
                yes: 0,
                no: 0,
            },
            decision: None,
            votes: FixedMap::default(),
            equivocations: BTreeMap::new(),
        }
    }

    /// Classifies a vote by its digest alone; no signature is needed for this.
    pub(crate) fn novelty(&self, voter: u32, digest: &VoteDigest) -> Novelty {
        match self.votes.get(&voter) {
            None => Novelty::New,
            Some(c) if c.digest == *digest => Novelty::Duplicate,
            Some(_) => match self.equivocations.get(&voter) {
                None => Novelty::Conflicting,
                Some((d, _)) if d == digest => Novelty::Duplicate,
                Some(_) => Novelty::AlreadyEquivocated,
            },
        }
    }

    /// Records a vote whose fields and signature have been checked. Only the first vote of a
    /// voter is counted; a different second one becomes evidence.
    pub(crate) fn record(&mut self, voter: u32, digest: VoteDigest, vote: Vote) -> Recorded {
        match self.novelty(voter, &digest) {
            Novelty::Duplicate => Recorded::Duplicate,
            Novelty::AlreadyEquivocated => Recorded::AlreadyEquivocated,
            Novelty::New => {
                match vote.choice {
                    Choice::Yes => self.tally.yes += 1,
                    Choice::No => self.tally.no += 1,
                }
                self.votes.insert(voter, CountedVote { digest, vote });
                Recorded::Counted
            }
            Novelty::Conflicting => {
                let counted = self.votes[&voter].vote.clone();
                let evidence = Box::new(Equivocation {
                    proposal: self.digest,
                    voter: vote.voter.clone(),
                    counted,
                    conflicting: vote,
                });
                self.equivocations.insert(voter, (digest, evidence.clone()));
                Recorded::Equivocation(evidence)
            }
        }
    }

    /// Whether `voter` has a counted vote.
    pub(crate) fn has_voted(&self, voter: u32) -> bool {
        self.votes.contains_key(&voter)
    }

    /// Counted votes, ordered by voter index (deterministic).
    pub(crate) fn counted_votes(&self) -> Vec<&Vote> {
        let mut slots: Vec<(&u32, &CountedVote)> = self.votes.iter().collect();
        slots.sort_unstable_by_key(|(i, _)| **i);
        slots.into_iter().map(|(_, c)| &c.vote).collect()
    }

    /// Equivocation evidence, ordered by voter index.
    pub(crate) fn equivocations(&self) -> impl Iterator<Item = &Equivocation> {
        self.equivocations.values().map(|(_, e)| e.as_ref())
    }

    pub(crate) fn digest_into(&self, h: &mut Sha256) {
        h.update(self.digest.0);
        h.update(self.creator_index.to_be_bytes());
        for v in [self.tally.electorate, self.tally.yes, self.tally.no] {
            h.update(v.to_be_bytes());
        }
        match &self.decision {
            None => h.update([0]),
            Some(d) => h.update([1, d.outcome as u8, d.by as u8]),
        }
        let mut slots: Vec<(&u32, &CountedVote)> = self.votes.iter().collect();
        slots.sort_unstable_by_key(|(i, _)| **i);
        h.update((slots.len() as u32).to_be_bytes());
        for (i, c) in slots {
            h.update(i.to_be_bytes());
            h.update(c.digest.0);
        }
        h.update((self.equivocations.len() as u32).to_be_bytes());
        for (i, (d, _)) in &self.equivocations {
            h.update(i.to_be_bytes());
            h.update(d.0);
        }
    }
}
