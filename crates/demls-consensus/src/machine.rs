//! [`VotingMachine`]: one member's voting state for one conversation and epoch.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use demls_wire::Limits;
use openmls_traits::signatures::Signer;
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::event::{DecidedBy, Decision, Event};
use crate::message::{ProposalHeader, SignedProposal, Vote, VoteBundle, VotingMessage};
use crate::proposal::{ProposalState, Recorded};
use crate::roster::Roster;
use crate::rule::{self, Tally};
use crate::transcript;
use crate::types::{
    Choice, ConversationId, Epoch, MemberId, ProposalDigest, ProposalKind, TiePolicy, Timestamp,
    VoteDigest,
};

/// Configuration of a [`VotingMachine`]. All members of a conversation should use the same
/// values; the defaults are safe for gossip networks.
#[derive(Debug, Clone)]
pub struct Config {
    /// The conversation this machine votes in; messages for others are refused.
    pub conversation: ConversationId,
    /// The local member, who proposes and votes through the commands.
    pub local_member: MemberId,
    /// Decoding limits for [`VotingMachine::handle_message`].
    pub limits: Limits,
    /// How far in the future (ms) a proposal's or vote's time may be, to tolerate clock skew.
    pub max_clock_skew_ms: u64,
    /// Longest voting window (deadline − created-at, ms) accepted from anyone.
    pub max_voting_duration_ms: u64,
    /// Most proposals open at once (all creators together). Excess is refused, never evicted.
    pub max_open_proposals: usize,
    /// Most proposals one creator may have open at once (the per-member rate limit).
    pub max_open_per_creator: usize,
    /// Most proposals (open or decided) held in one epoch. Decided proposals are kept until
    /// the epoch ends (their evidence justifies the commit), so this bounds memory.
    pub max_proposals_per_epoch: usize,
    /// Most proposals (open or decided) one creator may make in one epoch.
    pub max_proposals_per_creator_per_epoch: usize,
}

impl Config {
    /// A configuration with the default limits: 30 s skew, 1 h maximum voting window, 64 open
    /// proposals and 4 per creator, 256 proposals per epoch and 16 per creator per epoch, and
    /// the wire defaults. Memory is then bounded by 256 proposals × n counted votes (about
    /// 64 MB in the worst case at n = 1000).
    pub fn new(conversation: ConversationId, local_member: MemberId) -> Self {
        Self {
            conversation,
            local_member,
            limits: Limits::default(),
            max_clock_skew_ms: 30_000,
            max_voting_duration_ms: 3_600_000,
            max_open_proposals: 64,
            max_open_per_creator: 4,
            max_proposals_per_epoch: 256,
            max_proposals_per_creator_per_epoch: 16,
        }
    }
}

/// What the local member wants to put to a vote ([`VotingMachine::propose`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalDraft {
    /// Number distinguishing this creator's proposals (the host draws it from its id stream).
    pub proposal_id: u64,
    /// Consensus type.
    pub kind: ProposalKind,
    /// What is voted on.
    pub payload: Vec<u8>,
    /// Voting window in ms; the deadline is `now + voting_duration_ms`.
    pub voting_duration_ms: u64,
    /// Liveness criterion for silent voters at the deadline.
    pub silent_counts_as_yes: bool,
    /// What a tie resolves to.
    pub tie_policy: TiePolicy,
    /// The creator's own vote, attached to the proposal.
    pub creator_choice: Choice,
}

/// What an accepted input did. None of these is an error; only `Opened`, `Counted` and
/// `Equivocation` changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// A new proposal was opened (its creator's vote counted).
    Opened(ProposalDigest),
    /// The proposal was already known (recognised by digest).
    AlreadyHave,
    /// A new vote was counted.
    Counted,
    /// The proposal is already decided; the vote changed nothing (and was not verified).
    AfterDecision,
    /// A conflicting second vote: kept as evidence, reported, not counted.
    Equivocation,
    /// The voter's equivocation is already on record; nothing changed.
    AlreadyEquivocated,
    /// A bundle was merged.
    Bundle(BundleSummary),
}

/// What merging a bundle did, vote by vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BundleSummary {
    /// Whether the bundle's proposal was new and opened.
    pub opened: bool,
    /// Votes newly counted.
    pub counted: u32,
    /// Votes already held.
    pub already_have: u32,
    /// Votes on a proposal that was already decided, left unverified and uncounted (a bundle
    /// that proves a final early decision for a deadline decision is counted instead; see
    /// [`VotingMachine::handle_bundle`]).
    pub after_decision: u32,
    /// New equivocations found (each also reported as an event).
    pub equivocations: u32,
}

impl BundleSummary {
    pub(crate) fn add(&mut self, what: Ingested) {
        match what {
            Ingested::Counted => self.counted += 1,
            Ingested::AlreadyHave | Ingested::AlreadyEquivocated => self.already_have += 1,
            Ingested::AfterDecision => self.after_decision += 1,
            Ingested::Equivocation => self.equivocations += 1,
            Ingested::Opened(_) => self.opened = true,
            Ingested::Bundle(_) => {}
        }
    }
}

/// A proposal with the signed votes that justify its state: what a member hands to a peer
/// that must verify finality itself (BRIEF §5 "Commits carry their authority").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The signed proposal.
    pub proposal: SignedProposal,
    /// The counted votes, ordered by voter.
    pub votes: Vec<Vote>,
    /// The decision, if made.
    pub decision: Option<Decision>,
}

/// One member's voting state for one conversation, at one epoch.
///
/// A pure, deterministic, caller-polled state machine (sans-IO): it owns no clock, thread,
/// lock or entropy. The host drives it and must follow this contract.
///
/// # Inputs (each takes `now`, derived Unix milliseconds)
/// * [`handle_message`](Self::handle_message) — peer bytes (a proposal, a vote or a bundle);
///   or the typed [`handle_proposal`](Self::handle_proposal),
///   [`handle_vote`](Self::handle_vote), [`handle_bundle`](Self::handle_bundle).
/// * [`tick_deadlines`](Self::tick_deadlines) — decides every proposal whose deadline is
///   `<= now`; harmless when nothing is due.
///
/// # Commands
/// * [`propose`](Self::propose), [`cast_vote`](Self::cast_vote) — return the message to
///   broadcast; the local effect is already applied.
/// * [`advance_epoch`](Self::advance_epoch) — the MLS epoch changed: install the new roster.
///
/// # Outputs
/// * [`poll_event`](Self::poll_event) — drain after every input and command. Events come in
///   the order they happened; each is produced exactly once.
/// * [`next_deadline`](Self::next_deadline) — when to call `tick_deadlines` next (O(log P)).
///
/// # Getters
/// [`epoch`](Self::epoch), [`roster`](Self::roster), [`tally`](Self::tally),
/// [`decision`](Self::decision), [`evidence`](Self::evidence), [`bundle`](Self::bundle),
/// [`open_proposals`](Self::open_proposals), [`state_digest`](Self::state_digest).
///
/// # Guarantees
/// * Refused input returns a typed [`Error`] and leaves [`state_digest`](Self::state_digest)
///   unchanged; no input panics.
/// * Decisions depend only on the set of counted votes, never on arrival order (see
///   [`rule`]); any early decision equals the decision at the deadline.
/// * An early decision is final. A deadline decision (made without some votes) follows the
///   validly signed votes that bundles bring afterwards: it becomes the decision of the union
///   (early and final when the union settles it); a different outcome is reported as
///   [`Event::Revised`], at most twice per proposal. Single votes after the decision never
///   change anything.
/// * A re-sent vote is recognised by digest before any signature check.
/// * `now` never goes backwards: an earlier `now` is clamped to the latest seen.
#[derive(Debug, Clone)]
pub struct VotingMachine {
    pub(crate) config: Config,
    pub(crate) epoch: Epoch,
    pub(crate) roster: Roster,
    pub(crate) proposals: BTreeMap<ProposalDigest, ProposalState>,
    /// Open proposals by deadline: the timer table.
    pub(crate) deadlines: BTreeSet<(Timestamp, ProposalDigest)>,
    /// Open proposals per creator (indexed like the roster).
    pub(crate) open_by_creator: Vec<u32>,
    /// Proposals (open or decided) per creator this epoch (indexed like the roster).
    pub(crate) made_by_creator: Vec<u32>,
    pub(crate) open_total: usize,
    pub(crate) events: VecDeque<Event>,
    /// Latest `now` seen (for clamping); not part of the state digest.
    pub(crate) latest_now: Timestamp,
}

impl VotingMachine {
    /// A machine for `config.conversation` at `epoch`, with `roster` as the voter set.
    pub fn new(config: Config, epoch: Epoch, roster: Roster) -> Self {
        let n = roster.len() as usize;
        Self {
            config,
            epoch,
            roster,
            proposals: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            open_by_creator: vec![0; n],
            made_by_creator: vec![0; n],
            open_total: 0,
            events: VecDeque::new(),
            latest_now: Timestamp(0),
        }
    }

    // ----- getters -----

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The voter set of the current epoch.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Number of proposals still open.
    pub fn open_proposals(&self) -> usize {
        self.open_total
    }

    /// The counted votes of a known proposal.
    pub fn tally(&self, proposal: &ProposalDigest) -> Option<Tally> {
        self.proposals.get(proposal).map(|s| s.tally)
    }

    /// The decision of a known proposal, once made. A deadline decision may still be revised
    /// by the votes of a bundle ([`Event::Revised`]); [`Decision::is_final`] tells which.
    pub fn decision(&self, proposal: &ProposalDigest) -> Option<Decision> {
        self.proposals.get(proposal).and_then(|s| s.decision)
    }

    /// The signed proposal, if known.
    pub fn proposal(&self, proposal: &ProposalDigest) -> Option<&SignedProposal> {
        self.proposals.get(proposal).map(|s| &s.proposal)
    }

    /// The signed proposal and counted votes of a known proposal.
    pub fn evidence(&self, proposal: &ProposalDigest) -> Option<Evidence> {
        self.proposals.get(proposal).map(|s| Evidence {
            proposal: s.proposal.clone(),
            votes: s.counted_votes().into_iter().cloned().collect(),
            decision: s.decision,
        })
    }

    /// Equivocation evidence held for a proposal, ordered by voter.
    pub fn equivocations(
        &self,
        proposal: &ProposalDigest,
    ) -> impl Iterator<Item = &crate::Equivocation> {
        self.proposals
            .get(proposal)
            .into_iter()
            .flat_map(|s| s.equivocations())
    }

    /// A bundle of everything known about a proposal (the proposal and its counted votes), for
    /// gossip repair and late joiners.
    pub fn bundle(&self, proposal: &ProposalDigest) -> Option<VotingMessage> {
        let s = self.proposals.get(proposal)?;
        Some(VotingMessage::Bundle(VoteBundle {
            proposal: Some(s.proposal.clone()),
            proposal_digest: s.digest,
            votes: s.counted_votes().into_iter().cloned().collect(),
        }))
    }

    /// SHA-256 over the whole protocol state in canonical order: conversation, epoch, roster,
    /// every proposal with its tally, decision, counted vote digests and evidence, and the
    /// undrained events. Two machines with the same digest are in the same state.
    pub fn state_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"demls/v1/voting-state");
        let conv = self.config.conversation.as_bytes();
        h.update((conv.len() as u32).to_be_bytes());
        h.update(conv);
        h.update(self.epoch.0.to_be_bytes());
        h.update(self.roster.digest());
        h.update((self.proposals.len() as u32).to_be_bytes());
        for state in self.proposals.values() {
            state.digest_into(&mut h);
        }
        h.update((self.events.len() as u32).to_be_bytes());
        for e in &self.events {
            e.digest_into(&mut h);
        }
        h.finalize().into()
    }

    // ----- outputs -----

    /// The next event, in causal order. Drain after every input and command.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline of an open proposal, if any. A host that sleeps exactly until
    /// this time and then calls [`tick_deadlines`](Self::tick_deadlines) never stalls.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    // ----- timers -----

    /// Decides every open proposal whose deadline is `<= now`, counting silent voters per its
    /// liveness flag. A no-op when nothing is due.
    pub fn tick_deadlines(&mut self, now: Timestamp) {
        let now = self.clamp(now);
        while let Some(&(deadline, digest)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let state = &self.proposals[&digest];
            let outcome = rule::deadline_decision(
                state.tally,
                state.proposal.header.silent_counts_as_yes,
                state.proposal.header.tie_policy,
            );
            self.decide(digest, outcome, DecidedBy::Deadline);
        }
    }

    // ----- commands -----

    /// Opens a proposal by the local member, signed with `signer` (the member's MLS signature
    /// key), with the creator's vote attached. Returns its digest and the message to broadcast.
    pub fn propose(
        &mut self,
        signer: &impl Signer,
        now: Timestamp,
        draft: ProposalDraft,
    ) -> Result<(ProposalDigest, VotingMessage), Error> {
        let now = self.clamp(now);
        let creator_index = self.local_index(signer)?;
        if draft.voting_duration_ms == 0
            || draft.voting_duration_ms > self.config.max_voting_duration_ms
        {
            return Err(Error::BadDeadline {
                created_at: now,
                deadline: now.saturating_add_ms(draft.voting_duration_ms),
            });
        }
        self.check_rate_limits(creator_index)?;
        let header = ProposalHeader {
            conversation: self.config.conversation.clone(),
            epoch: self.epoch,
            proposal_id: draft.proposal_id,
            kind: draft.kind,
            payload_digest: transcript::payload_digest(&draft.payload),
            creator: self.config.local_member.clone(),
            created_at: now,
            deadline: now.saturating_add_ms(draft.voting_duration_ms),
            silent_counts_as_yes: draft.silent_counts_as_yes,
            tie_policy: draft.tie_policy,
        };
        let digest = header.digest();
        if self.proposals.contains_key(&digest) {
            return Err(Error::DuplicateProposal(digest));
        }
        let signature = signer
            .sign(&transcript::header_transcript(&header))
            .map_err(|_| Error::Signing)?;
        let (creator_vote, vote_digest) =
            self.sign_vote(signer, digest, draft.creator_choice, now)?;
        let proposal = SignedProposal {
            header,
            signature,
            payload: draft.payload,
            creator_vote,
        };
        self.open(proposal.clone(), digest, creator_index, vote_digest);
        Ok((digest, VotingMessage::Proposal(proposal)))
    }

    /// Casts the local member's vote on an open proposal. Returns the message to broadcast.
    pub fn cast_vote(
        &mut self,
        signer: &impl Signer,
        now: Timestamp,
        proposal: ProposalDigest,
        choice: Choice,
    ) -> Result<VotingMessage, Error> {
        let now = self.clamp(now);
        let voter = self.local_index(signer)?;
        let state = self
            .proposals
            .get(&proposal)
            .ok_or(Error::UnknownProposal(proposal))?;
        if state.decision.is_some() {
            return Err(Error::AlreadyDecided(proposal));
        }
        if state.has_voted(voter) {
            return Err(Error::AlreadyVoted(proposal));
        }
        let header = &state.proposal.header;
        if now >= header.deadline {
            return Err(Error::Expired {
                deadline: header.deadline,
                now,
            });
        }
        // A local clock behind the creator's must still produce a vote inside the window.
        let cast_at = now.max(header.created_at);
        let (vote, digest) = self.sign_vote(signer, proposal, choice, cast_at)?;
        self.apply_vote(proposal, voter, digest, vote.clone());
        Ok(VotingMessage::Vote(vote))
    }

    /// Moves to a new epoch with its roster. Open proposals of the old epoch can no longer be
    /// decided: each is reported as [`Event::Abandoned`] (in digest order) and all proposal
    /// state is dropped. Take any [`evidence`](Self::evidence) you need first.
    ///
    /// # Errors
    /// [`Error::WrongEpoch`] if `epoch` is not later than the current epoch.
    pub fn advance_epoch(&mut self, epoch: Epoch, roster: Roster) -> Result<(), Error> {
        if epoch <= self.epoch {
            return Err(Error::WrongEpoch {
                expected: Epoch(self.epoch.0 + 1),
                got: epoch,
            });
        }
        let old = self.epoch;
        for (digest, state) in &self.proposals {
            if state.decision.is_none() {
                self.events.push_back(Event::Abandoned {
                    proposal: *digest,
                    epoch: old,
                });
            }
        }
        self.proposals.clear();
        self.deadlines.clear();
        self.open_total = 0;
        self.open_by_creator = vec![0; roster.len() as usize];
        self.made_by_creator = vec![0; roster.len() as usize];
        self.epoch = epoch;
        self.roster = roster;
        tracing::debug!(epoch = epoch.0, "voting machine advanced epoch");
        Ok(())
    }

    // ----- internals shared by inputs and commands -----

    /// Clamps `now` so that it never goes backwards.
    pub(crate) fn clamp(&mut self, now: Timestamp) -> Timestamp {
        self.latest_now = self.latest_now.max(now);
        self.latest_now
    }

    fn local_index(&self, signer: &impl Signer) -> Result<u32, Error> {
        if signer.signature_scheme() != self.roster.scheme() {
            return Err(Error::SchemeMismatch);
        }
        self.roster
            .index_of(&self.config.local_member)
            .ok_or(Error::NotAVoter)
    }

    fn sign_vote(
        &self,
        signer: &impl Signer,
        proposal: ProposalDigest,
        choice: Choice,
        cast_at: Timestamp,
    ) -> Result<(Vote, VoteDigest), Error> {
        let mut vote = Vote {
            conversation: self.config.conversation.clone(),
            epoch: self.epoch,
            proposal,
            voter: self.config.local_member.clone(),
            choice,
            cast_at,
            signature: Vec::new(),
        };
        let t = transcript::vote_transcript(&vote);
        vote.signature = signer.sign(&t).map_err(|_| Error::Signing)?;
        Ok((vote, VoteDigest(Sha256::digest(&t).into())))
    }

    pub(crate) fn check_rate_limits(&self, creator_index: u32) -> Result<(), Error> {
        if self.proposals.len() >= self.config.max_proposals_per_epoch {
            return Err(Error::EpochProposalLimit {
                max: self.config.max_proposals_per_epoch,
            });
        }
        if self.made_by_creator[creator_index as usize] as usize
            >= self.config.max_proposals_per_creator_per_epoch
        {
            return Err(Error::CreatorEpochLimit {
                creator: self.roster.voter(creator_index).id.clone(),
                max: self.config.max_proposals_per_creator_per_epoch,
            });
        }
        if self.open_total >= self.config.max_open_proposals {
            return Err(Error::TooManyOpenProposals {
                max: self.config.max_open_proposals,
            });
        }
        if self.open_by_creator[creator_index as usize] as usize >= self.config.max_open_per_creator
        {
            return Err(Error::CreatorRateLimited {
                creator: self.roster.voter(creator_index).id.clone(),
                max: self.config.max_open_per_creator,
            });
        }
        Ok(())
    }

    /// Opens a fully checked proposal and counts its creator's vote.
    pub(crate) fn open(
        &mut self,
        proposal: SignedProposal,
        digest: ProposalDigest,
        creator_index: u32,
        creator_vote_digest: VoteDigest,
    ) {
        let creator_vote = proposal.creator_vote.clone();
        let deadline = proposal.header.deadline;
        self.events.push_back(Event::ProposalOpened {
            proposal: digest,
            kind: proposal.header.kind,
            creator: proposal.header.creator.clone(),
        });
        tracing::debug!(proposal = %digest, kind = ?proposal.header.kind, "proposal opened");
        let state = ProposalState::new(proposal, digest, creator_index, self.roster.len());
        self.proposals.insert(digest, state);
        self.deadlines.insert((deadline, digest));
        self.open_total += 1;
        self.open_by_creator[creator_index as usize] += 1;
        self.made_by_creator[creator_index as usize] += 1;
        self.apply_vote(digest, creator_index, creator_vote_digest, creator_vote);
    }

    /// Records a fully checked vote, reports equivocation, and decides early when safe.
    pub(crate) fn apply_vote(
        &mut self,
        proposal: ProposalDigest,
        voter: u32,
        digest: VoteDigest,
        vote: Vote,
    ) -> Ingested {
        let state = self
            .proposals
            .get_mut(&proposal)
            .expect("apply_vote is only called for known proposals");
        if state.decision.is_some() {
            return Ingested::AfterDecision;
        }
        match state.record(voter, digest, vote) {
            Recorded::Duplicate => Ingested::AlreadyHave,
            Recorded::AlreadyEquivocated => Ingested::AlreadyEquivocated,
            Recorded::Equivocation(evidence) => {
                tracing::warn!(proposal = %proposal, voter = %evidence.voter, "equivocating vote");
                self.events.push_back(Event::Equivocation(evidence));
                Ingested::Equivocation
            }
            Recorded::Counted => {
                let tie = state.proposal.header.tie_policy;
                if let Some(outcome) = rule::early_decision(state.tally, tie) {
                    self.decide(proposal, outcome, DecidedBy::Early);
                }
                Ingested::Counted
            }
        }
    }

    fn decide(&mut self, proposal: ProposalDigest, outcome: rule::Outcome, by: DecidedBy) {
        let state = self
            .proposals
            .get_mut(&proposal)
            .expect("decide is only called for known proposals");
        let decision = Decision {
            outcome,
            tally: state.tally,
            by,
        };
        state.decision = Some(decision);
        self.deadlines
            .remove(&(state.proposal.header.deadline, proposal));
        self.open_total -= 1;
        self.open_by_creator[state.creator_index as usize] -= 1;
        tracing::debug!(proposal = %proposal, ?outcome, ?by, "proposal decided");
        self.events.push_back(Event::Decided { proposal, decision });
    }
}
