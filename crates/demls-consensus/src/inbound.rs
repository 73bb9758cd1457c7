//! Peer input: decoding, validation and application of proposals, votes and bundles.
//!
//! Every handler validates completely before it mutates anything, so a refused input leaves
//! the state untouched. Cheap checks come first (conversation, epoch, known digests,
//! membership, times, rate limits) and signature verification last; a re-sent vote is
//! recognised by its transcript digest before any signature is checked.

use std::collections::BTreeSet;

use openmls_traits::crypto::OpenMlsCrypto;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Signed};
use crate::event::{DecidedBy, Decision, Event};
use crate::machine::{BundleSummary, Ingested, VotingMachine};
use crate::message::{ProposalHeader, SignedProposal, Vote, VoteBundle, VotingMessage};
use crate::proposal::{Novelty, Recorded};
use crate::rule;
use crate::transcript;
use crate::types::{Choice, ProposalDigest, Timestamp, VoteDigest};

/// A proposal that passed every check and may be opened.
struct CheckedProposal {
    digest: ProposalDigest,
    creator_index: u32,
    creator_vote_digest: VoteDigest,
}

/// A vote that passed every check and may be recorded.
struct CheckedVote {
    voter: u32,
    digest: VoteDigest,
}

impl VotingMachine {
    /// Decodes peer bytes (within [`Config::limits`](crate::Config::limits)) and ingests the
    /// proposal, vote or bundle they carry. See the type-level contract.
    pub fn handle_message(
        &mut self,
        crypto: &impl OpenMlsCrypto,
        now: Timestamp,
        bytes: &[u8],
    ) -> Result<Ingested, Error> {
        match VotingMessage::decode(bytes, &self.config.limits)? {
            VotingMessage::Proposal(p) => self.handle_proposal(crypto, now, p),
            VotingMessage::Vote(v) => self.handle_vote(crypto, now, v),
            VotingMessage::Bundle(b) => self.handle_bundle(crypto, now, b),
        }
    }

    /// Ingests a proposal from a peer. A known proposal (same digest) returns
    /// [`Ingested::AlreadyHave`] without any signature check.
    pub fn handle_proposal(
        &mut self,
        crypto: &impl OpenMlsCrypto,
        now: Timestamp,
        proposal: SignedProposal,
    ) -> Result<Ingested, Error> {
        let now = self.clamp(now);
        match self.check_proposal(crypto, now, &proposal)? {
            None => Ok(Ingested::AlreadyHave),
            Some(c) => {
                self.open(proposal, c.digest, c.creator_index, c.creator_vote_digest);
                Ok(Ingested::Opened(c.digest))
            }
        }
    }

    /// Ingests one vote from a peer.
    pub fn handle_vote(
        &mut self,
        crypto: &impl OpenMlsCrypto,
        now: Timestamp,
        vote: Vote,
    ) -> Result<Ingested, Error> {
        let now = self.clamp(now);
        self.check_scope(&vote)?;
        let state = self
            .proposals
            .get(&vote.proposal)
            .ok_or(Error::UnknownProposal(vote.proposal))?;
        if state.decision.is_some() {
            return Ok(Ingested::AfterDecision);
        }
        let (header, digest) = (&state.proposal.header, state.digest);
        match self.check_vote(crypto, now, header, digest, &vote, |v, d| {
            state.novelty(v, d)
        })? {
            Err(already) => Ok(already),
            Ok(c) => Ok(self.apply_vote(digest, c.voter, c.digest, vote)),
        }
    }

    /// Merges a bundle as a union: votes already held are skipped, never an error. The bundle is
    /// atomic: if its proposal or any vote is refused, nothing is applied and the error names
    /// the vote.
    ///
    /// A bundle for a proposal decided **early** changes nothing and is not verified (the
    /// decision is final). A bundle for one decided **at its deadline** that brings votes not
    /// held yet is validated like any other; if it passes, its votes are counted and the
    /// decision becomes the one the union of the votes gives: the early decision when the
    /// union settles it (final from then on), otherwise the deadline rule over the union.
    /// When the outcome changes, [`Event::Revised`] reports it; otherwise the decision's
    /// tally (and finality) is updated silently. The deadline rule over a growing set of votes
    /// moves in one direction only (silent voters count as YES: only a new NO changes the
    /// count; as NO: only a new YES), so a deadline outcome changes at most twice (once
    /// through a `Retry` tie) and members given the same votes decide alike.
    pub fn handle_bundle(
        &mut self,
        crypto: &impl OpenMlsCrypto,
        now: Timestamp,
        bundle: VoteBundle,
    ) -> Result<Ingested, Error> {
        let now = self.clamp(now);
        let digest = bundle.proposal_digest;
        if bundle.votes.iter().any(|v| v.proposal != digest) {
            return Err(Error::BundleDigestMismatch);
        }
        for (index, vote) in bundle.votes.iter().enumerate() {
            self.check_scope(vote).map_err(|e| bundle_error(index, e))?;
        }
        let decided = self.decision(&digest);
        let mut merged = None;
        if let Some(decision) = decided {
            // A decided proposal takes nothing more — unless it was decided at the deadline
            // and this bundle brings votes not held yet (checked by digest alone; the
            // signatures are verified below only when it does).
            merged = self.merged_decision(&digest, &bundle.votes, decision);
            if merged.is_none() {
                return Ok(Ingested::Bundle(BundleSummary {
                    after_decision: bundle.votes.len() as u32,
                    ..BundleSummary::default()
                }));
            }
        }
        // A bundle is evidence of votes cast inside the voting window (each vote's signed
        // time is checked against the window). One that arrives after the deadline — the
        // evidence a commit carries for a member that missed the proposal — is checked as
        // of just before the deadline; the next `tick_deadlines` then decides the proposal
        // as at its deadline.
        let deadline = self
            .proposals
            .get(&digest)
            .map(|s| s.proposal.header.deadline)
            .or_else(|| bundle.proposal.as_ref().map(|p| p.header.deadline));
        let now = match deadline {
            Some(d) if now >= d => Timestamp(d.0.saturating_sub(1)),
            _ => now,
        };
        // Phase 1: validate everything against the current state plus the bundle's proposal.
        let new_proposal = match &bundle.proposal {
            Some(p) if p.digest() != digest => return Err(Error::BundleDigestMismatch),
            Some(p) => self.check_proposal(crypto, now, p)?,
            None => None,
        };
        let mut checked: Vec<Option<CheckedVote>> = Vec::with_capacity(bundle.votes.len());
        match (self.proposals.get(&digest), &new_proposal) {
            (Some(state), _) => {
                let header = &state.proposal.header;
                for (index, vote) in bundle.votes.iter().enumerate() {
                    let novelty = |v: u32, d: &VoteDigest| state.novelty(v, d);
                    let c = self
                        .check_vote(crypto, now, header, digest, vote, novelty)
                        .map_err(|e| bundle_error(index, e))?;
                    checked.push(c.ok());
                }
            }
            (None, Some(opened)) => {
                let p = bundle.proposal.as_ref().expect("checked above");
                let header = &p.header;
                for (index, vote) in bundle.votes.iter().enumerate() {
                    // Only the creator's vote is held before the bundle applies.
                    let novelty = |v: u32, d: &VoteDigest| {
                        if v != opened.creator_index {
                            Novelty::New
                        } else if *d == opened.creator_vote_digest {
                            Novelty::Duplicate
                        } else {
                            Novelty::Conflicting
                        }
                    };
                    let c = self
                        .check_vote(crypto, now, header, digest, vote, novelty)
                        .map_err(|e| bundle_error(index, e))?;
                    checked.push(c.ok());
                }
            }
            (None, None) => return Err(Error::UnknownProposal(digest)),
        }

        // Phase 2: apply. Nothing below can fail.
        if let (Some(previous), Some(decision)) = (decided, merged) {
            let summary = self.adopt_union(digest, previous, decision, bundle.votes, checked);
            return Ok(Ingested::Bundle(summary));
        }
        let mut summary = BundleSummary::default();
        if let (Some(c), Some(p)) = (new_proposal, bundle.proposal) {
            self.open(p, c.digest, c.creator_index, c.creator_vote_digest);
            summary.opened = true;
        }
        for (vote, c) in bundle.votes.into_iter().zip(checked) {
            let what = match c {
                Some(c) => self.apply_vote(digest, c.voter, c.digest, vote),
                // Already held when validated, or the proposal was decided: skipped.
                None if self.decision(&digest).is_some() => Ingested::AfterDecision,
                None => Ingested::AlreadyHave,
            };
            summary.add(what);
        }
        Ok(Ingested::Bundle(summary))
    }

    /// For a proposal decided at its deadline: the decision that counting `votes` with the
    /// votes already held gives, if every one of them is valid — early when the union settles
    /// it, otherwise at the deadline over the union (see
    /// [`handle_bundle`](Self::handle_bundle)). `None` when the decision is already final or
    /// `votes` brings no vote to count. Reads digests and counts only (no signature check);
    /// the caller validates the bundle before acting on the answer, and a valid bundle gives
    /// exactly this tally.
    fn merged_decision(
        &self,
        digest: &ProposalDigest,
        votes: &[Vote],
        decision: Decision,
    ) -> Option<Decision> {
        if decision.is_final() {
            return None;
        }
        let state = self.proposals.get(digest)?;
        let mut tally = state.tally;
        let mut newly_counted = BTreeSet::new();
        for vote in votes {
            // A non-member is refused by validation; it never counts.
            let Some(voter) = self.roster.index_of(&vote.voter) else {
                continue;
            };
            // Counted as `ProposalState::record` will: the first new vote of each voter.
            if state.novelty(voter, &vote.digest()) == Novelty::New && newly_counted.insert(voter) {
                match vote.choice {
                    Choice::Yes => tally.yes += 1,
                    Choice::No => tally.no += 1,
                }
            }
        }
        if newly_counted.is_empty() {
            return None;
        }
        let header = &state.proposal.header;
        Some(match rule::early_decision(tally, header.tie_policy) {
            Some(outcome) => Decision {
                outcome,
                tally,
                by: DecidedBy::Early,
            },
            None => Decision {
                outcome: rule::deadline_decision(
                    tally,
                    header.silent_counts_as_yes,
                    header.tie_policy,
                ),
                tally,
                by: DecidedBy::Deadline,
            },
        })
    }

    /// Counts the votes of a fully validated bundle for a proposal decided at its deadline
    /// and installs the decision of the union (see [`handle_bundle`](Self::handle_bundle)).
    /// Equivocations are recorded and reported as usual.
    fn adopt_union(
        &mut self,
        digest: ProposalDigest,
        previous: Decision,
        decision: Decision,
        votes: Vec<Vote>,
        checked: Vec<Option<CheckedVote>>,
    ) -> BundleSummary {
        let state = self
            .proposals
            .get_mut(&digest)
            .expect("only called for a decided proposal");
        let mut summary = BundleSummary::default();
        for (vote, c) in votes.into_iter().zip(checked) {
            let what = match c {
                None => Ingested::AlreadyHave,
                Some(c) => match state.record(c.voter, c.digest, vote) {
                    Recorded::Counted => Ingested::Counted,
                    Recorded::Duplicate => Ingested::AlreadyHave,
                    Recorded::AlreadyEquivocated => Ingested::AlreadyEquivocated,
                    Recorded::Equivocation(evidence) => {
                        tracing::warn!(proposal = %digest, voter = %evidence.voter, "equivocating vote");
                        self.events.push_back(Event::Equivocation(evidence));
                        Ingested::Equivocation
                    }
                },
            };
            summary.add(what);
        }
        debug_assert_eq!(
            state.tally, decision.tally,
            "the union counted what was predicted"
        );
        state.decision = Some(decision);
        if decision.outcome != previous.outcome {
            tracing::info!(proposal = %digest, previous = ?previous.outcome, outcome = ?decision.outcome,
                final_ = decision.is_final(), "deadline decision revised by the votes of a bundle");
            self.events.push_back(Event::Revised {
                proposal: digest,
                previous,
                decision,
            });
        }
        summary
    }

    /// Conversation and epoch of a vote.
    fn check_scope(&self, vote: &Vote) -> Result<(), Error> {
        if vote.conversation != self.config.conversation {
            return Err(Error::WrongConversation);
        }
        if vote.epoch != self.epoch {
            return Err(Error::WrongEpoch {
                expected: self.epoch,
                got: vote.epoch,
            });
        }
        Ok(())
    }

    /// Every check of an inbound proposal. `Ok(None)` means the proposal is already known.
    fn check_proposal(
        &self,
        crypto: &impl OpenMlsCrypto,
        now: Timestamp,
        p: &SignedProposal,
    ) -> Result<Option<CheckedProposal>, Error> {
        let h = &p.header;
        if h.conversation != self.config.conversation {
            return Err(Error::WrongConversation);
        }
        if h.epoch != self.epoch {
            return Err(Error::WrongEpoch {
                expected: self.epoch,
                got: h.epoch,
            });
        }
        let digest = h.digest();
        if self.proposals.contains_key(&digest) {
            return Ok(None);
        }
        let creator_index = self
            .roster
            .index_of(&h.creator)
            .ok_or_else(|| Error::NonMember(h.creator.clone()))?;
        if h.created_at > now.saturating_add_ms(self.config.max_clock_skew_ms) {
            return Err(Error::FutureDated {
                at: h.created_at,
                now,
            });
        }
        if h.deadline <= h.created_at
            || h.deadline.saturating_ms_since(h.created_at) > self.config.max_voting_duration_ms
        {
            return Err(Error::BadDeadline {
                created_at: h.created_at,
                deadline: h.deadline,
            });
        }
        if now >= h.deadline {
            return Err(Error::Expired {
                deadline: h.deadline,
                now,
            });
        }
        if transcript::payload_digest(&p.payload) != h.payload_digest {
            return Err(Error::PayloadDigestMismatch);
        }
        let vote = &p.creator_vote;
        if vote.voter != h.creator
            || vote.proposal != digest
            || vote.conversation != h.conversation
            || vote.epoch != h.epoch
        {
            return Err(Error::CreatorVoteMismatch);
        }
        self.check_rate_limits(creator_index)?;
        self.verify(
            crypto,
            creator_index,
            &transcript::header_transcript(h),
            &p.signature,
            Signed::ProposalHeader,
        )?;
        let fresh = |_: u32, _: &VoteDigest| Novelty::New;
        let checked = self
            .check_vote(crypto, now, h, digest, vote, fresh)?
            .map_err(|_| Error::CreatorVoteMismatch)?;
        Ok(Some(CheckedProposal {
            digest,
            creator_index,
            creator_vote_digest: checked.digest,
        }))
    }

    /// Checks a vote (already scoped to this conversation and epoch) against its proposal's
    /// header. Returns `Ok(Err(ingested))` when the vote needs no further work (a duplicate, or
    /// a further vote by a known equivocator) — decided by digest, before the signature check.
    fn check_vote(
        &self,
        crypto: &impl OpenMlsCrypto,
        now: Timestamp,
        header: &ProposalHeader,
        digest: ProposalDigest,
        vote: &Vote,
        novelty: impl Fn(u32, &VoteDigest) -> Novelty,
    ) -> Result<Result<CheckedVote, Ingested>, Error> {
        debug_assert_eq!(vote.proposal, digest);
        let voter = self
            .roster
            .index_of(&vote.voter)
            .ok_or_else(|| Error::NonMember(vote.voter.clone()))?;
        let t = transcript::vote_transcript(vote);
        let vote_digest = VoteDigest(Sha256::digest(&t).into());
        match novelty(voter, &vote_digest) {
            Novelty::Duplicate => return Ok(Err(Ingested::AlreadyHave)),
            Novelty::AlreadyEquivocated => return Ok(Err(Ingested::AlreadyEquivocated)),
            Novelty::New | Novelty::Conflicting => {}
        }
        if now >= header.deadline {
            return Err(Error::Expired {
                deadline: header.deadline,
                now,
            });
        }
        if vote.cast_at > now.saturating_add_ms(self.config.max_clock_skew_ms) {
            return Err(Error::FutureDated {
                at: vote.cast_at,
                now,
            });
        }
        if vote.cast_at < header.created_at || vote.cast_at > header.deadline {
            return Err(Error::VoteOutsideWindow {
                cast_at: vote.cast_at,
            });
        }
        self.verify(crypto, voter, &t, &vote.signature, Signed::Vote)?;
        Ok(Ok(CheckedVote {
            voter,
            digest: vote_digest,
        }))
    }

    fn verify(
        &self,
        crypto: &impl OpenMlsCrypto,
        signer: u32,
        data: &[u8],
        signature: &[u8],
        what: Signed,
    ) -> Result<(), Error> {
        let voter = self.roster.voter(signer);
        crypto
            .verify_signature(self.roster.scheme(), data, &voter.signature_key, signature)
            .map_err(|_| Error::BadSignature {
                signer: voter.id.clone(),
                what,
            })
    }
}

fn bundle_error(index: usize, e: Error) -> Error {
    Error::BundleVote {
        index,
        source: Box::new(e),
    }
}
