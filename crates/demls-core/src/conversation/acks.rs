//! Acknowledgement rounds of the multi-steward commit round (our addition, docs/protocol.md
//! §9 "The commit round", step 3): who acknowledged which candidate in which round, when a
//! round dies, which candidate this member acknowledges (the commit validation service's rule,
//! then a draw), abstentions, vouchers for decisions held on another member's word, and the
//! evidence members share when the round shows that they decided a proposal differently.
//!
//! At most one candidate reaches the quorum of ⌈2n/3⌉ acknowledgements in a round (two such
//! sets share an honest member, who acknowledges one candidate per round); the candidate that
//! reaches it is applied (`Conversation::decide_round`, in `round`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use demls_consensus::{MemberId, ProposalDigest};
use sha2::{Digest as _, Sha256};

use super::round::Candidate;
use super::Conversation;
use crate::error::Error;
use crate::event::ViolationKind;
use crate::timers::TimerKind;
use crate::transmit::{Channel, TrafficClass};

/// Most different candidates one member may acknowledge in one acknowledgement round: an
/// honest member acknowledges one (its own candidate, recorded when it arrives, may make a
/// second); a Byzantine member that acknowledges two is still counted in both (see
/// `Conversation::ackers`), and a third adds nothing.
pub(super) const MAX_ACKS_PER_ROUND: usize = 2;

/// Most acknowledgements one member may have recorded here in rounds after this member's
/// current one. A member that missed acknowledgements follows members that moved on (see
/// `Conversation::round_left`), so it must hear some from ahead; the bound caps what a
/// Byzantine member makes others store with round numbers nobody reached. An honest member
/// further ahead is heard again when it resends its acknowledgements (`resend_round`), by
/// then within reach.
///
/// Together the two bounds keep what a member makes others store to
/// `MAX_ACKS_PER_ROUND` × (current round + 1) + `MAX_ACKS_AHEAD`: it grows only as fast as
/// the rounds an honest member leaves, each a candidate window at least. (A cap of 16 per
/// epoch ran out in a long split epoch: `demls-sim --generated 19098570801708 --mode
/// liveness` refused thousands of honest acknowledgements and never reached a quorum.)
pub(super) const MAX_ACKS_AHEAD: usize = 8;

/// Most abstentions a member sends in a row while the candidates it holds and the decisions
/// it would check them against stay the same. A round nobody can win dies on abstentions, and
/// a new one starts; over the same candidates it dies the same way. A candidate only its
/// committer can justify (one of an unfinalized proposal) drove a new dead round every
/// candidate window for good, each costing every member a message — a cap per epoch used to
/// end it, and a cap per round (`MAX_ACKS_PER_ROUND`) does not. Anything new (a candidate, a
/// decision, a voucher) lets the member abstain again.
pub(super) const MAX_IDLE_ABSTENTIONS: u32 = 8;

/// From this acknowledgement round on, a member no longer acknowledges the best candidate by
/// the commit validation service's rule but one drawn per round among the live options (see
/// `Conversation::drawn_candidate`): two dead rounds in a row mean members justify different
/// candidates. Honest members can hold different decisions for good — a vote equivocator's
/// two votes, each counted first by some members, make a marginal proposal pass at some and
/// fail at others — and members that can justify only one candidate never move; by the rule
/// the others never moved either, and the round died 3 against 2 for 560 rounds
/// (`demls-sim --generated 187052145917356 --mode liveness --byzantine-mix any`).
pub(super) const DRAW_FROM_ROUND: u32 = 2;

/// The digest of an abstention: "I hold no candidate to acknowledge in this round" — counted
/// as heard from, never as support (so a round nobody can win is seen to die).
pub(super) const ABSTAIN: [u8; 32] = [0; 32];

impl Conversation {
    /// Acknowledgements needed to apply a candidate of a multi-steward rotation: ⌈2n/3⌉.
    /// Two sets of that size share more than n/3 members, so with fewer than n/3 Byzantine
    /// members they share an honest one, who acknowledges one candidate per round: at most
    /// one candidate reaches the quorum in a round.
    fn ack_quorum(&self) -> usize {
        (2 * self.roster().len()).div_ceil(3)
    }

    /// Acknowledgements of `digest` in `round`, by every member that sent one — a member
    /// that acknowledged two candidates in the round (provably Byzantine) included: two
    /// quorums still share more than n/3 members, so at most one candidate reaches the
    /// quorum in a round. Discounting such a member here made it vanish from a quorum
    /// another member had already applied, once its second acknowledgement reached the
    /// others — who then saw the round dead and applied another candidate in the next one
    /// (the simulator found the fork with an equivocating steward).
    fn ackers(&self, round: u32, digest: &[u8; 32]) -> usize {
        self.round
            .acks
            .get(&(round, *digest))
            .map_or(0, BTreeSet::len)
    }

    /// Whether ⌈2n/3⌉ members acknowledged the commit `digest` by `committer` (its own
    /// acknowledgement is its commit) in one round of this epoch. Such a commit is taken
    /// from a committer this member holds ineligible: eligibility depends on decisions
    /// (a steward's approved removal takes it out of the rotation) that members reach at
    /// different times, and a quorum contains honest members that held it eligible — so
    /// refusing it only left this member behind for good (the simulator: `demls-sim
    /// --generated 233073999611634 --mode liveness --byzantine-mix none`). Everything else
    /// about the commit is still checked here.
    pub(super) fn quorum_acked(&self, digest: &[u8; 32], committer: &MemberId) -> bool {
        if !self.needs_acks() {
            return false;
        }
        let quorum = self.ack_quorum();
        self.round
            .acks
            .iter()
            .filter(|((_, d), _)| d == digest)
            .any(|(_, ackers)| ackers.len() + usize::from(!ackers.contains(committer)) >= quorum)
    }

    /// The candidate this member acknowledged in `round`, if any.
    pub(super) fn my_ack(&self, round: u32) -> Option<[u8; 32]> {
        self.round
            .acks
            .range((round, [0; 32])..=(round, [0xff; 32]))
            .find(|(_, ackers)| ackers.contains(&self.me))
            .map(|((_, d), _)| *d)
    }

    /// The candidate (not from an equivocator) acknowledged by a quorum in some round.
    pub(super) fn quorum_candidate(&self) -> Option<usize> {
        let quorum = self.ack_quorum();
        let rounds = self.round.ack_round;
        self.round
            .candidates
            .iter()
            .enumerate()
            // An equivocator's candidate that reached a quorum is still the group's choice.
            .find(|(_, c)| (0..=rounds).any(|r| self.ackers(r, &c.digest) >= quorum))
            .map(|(i, _)| i)
    }

    /// Whether no candidate can reach the quorum in `round` any more: even if every member
    /// not heard from in it acknowledged the best-supported candidate, it would fall short.
    fn round_dead(&self, round: u32) -> bool {
        let entries: Vec<(&[u8; 32], &BTreeSet<MemberId>)> = self
            .round
            .acks
            .range((round, [0; 32])..=(round, [0xff; 32]))
            .map(|((_, d), a)| (d, a))
            .collect();
        let heard: BTreeSet<&MemberId> = entries.iter().flat_map(|(_, a)| a.iter()).collect();
        if heard.is_empty() {
            return false;
        }
        let unheard = self.roster().len().saturating_sub(heard.len());
        let best = entries
            .iter()
            .filter(|(d, _)| **d != ABSTAIN)
            .map(|(d, _)| self.ackers(round, d))
            .max()
            .unwrap_or(0);
        best + unheard < self.ack_quorum()
    }

    /// Whether ⌈n/3⌉ members acknowledged in rounds after `round`: one of them is honest,
    /// and an honest member leaves a round only once it is dead (by induction, the first
    /// honest member to leave it saw it dead), so no candidate can win it any more. A member
    /// that missed acknowledgements of `round` follows them, instead of waiting for ever
    /// for members that moved on (the simulator: `demls-sim --generated 190550702457759
    /// --mode liveness`). Fewer would not do: Byzantine members that acknowledged a
    /// candidate in `round` to some members and then moved on would hide that quorum.
    fn round_left(&self, round: u32) -> bool {
        let later: BTreeSet<&MemberId> = self
            .round
            .acks
            .range((round.saturating_add(1), [0; 32])..)
            .flat_map(|(_, a)| a.iter())
            .collect();
        later.len() >= self.roster().len().div_ceil(3).max(1)
    }

    pub(super) fn record_ack(&mut self, round: u32, digest: [u8; 32], member: MemberId) {
        self.round
            .acks
            .entry((round, digest))
            .or_default()
            .insert(member);
    }

    /// Whether another member acknowledged something in `round`.
    pub(super) fn others_acked(&self, round: u32) -> bool {
        self.round
            .acks
            .range((round, [0; 32])..=(round, [0xff; 32]))
            .any(|(_, ackers)| ackers.iter().any(|m| *m != self.me))
    }

    /// Acknowledges candidate `digest` (or [`ABSTAIN`]) in the current round, to the group.
    pub(super) fn send_ack(&mut self, digest: [u8; 32]) {
        let round = self.round.ack_round;
        self.record_ack(round, digest, self.me.clone());
        let Some(committer) = self.committer_of(&digest) else {
            return;
        };
        if digest != ABSTAIN {
            self.round
                .claimed
                .entry(digest)
                .or_insert_with(|| committer.clone());
        }
        if let Some(message) = self.transmit_ack(round, digest, &committer) {
            if digest != ABSTAIN {
                self.keep_ack_message(digest, message);
            }
        }
    }

    /// The committer an acknowledgement of `digest` names: this member for an abstention,
    /// else the candidate's committer (or the first claim, for one not held here).
    fn committer_of(&self, digest: &[u8; 32]) -> Option<MemberId> {
        if *digest == ABSTAIN {
            return Some(self.me.clone());
        }
        self.round
            .candidates
            .iter()
            .find(|c| c.digest == *digest)
            .map(|c| c.committer.clone())
            .or_else(|| self.round.claimed.get(digest).cloned())
    }

    /// Sends this member's evidence for its decision on `d` — the proposal and the votes it
    /// counted — once per proposal and epoch, when the commit round shows that another member
    /// decided `d` otherwise: a candidate applies `d` while this member decided it NO (the
    /// commit waits here, `on_commit`), or a round died while a candidate it holds omits a
    /// proposal it approved. Decisions taken at the deadline over different sets of votes can
    /// differ between honest members; nothing else ever reconciled them, and each side
    /// acknowledged the candidate its own decisions justify, round after round (`demls-sim
    /// --generated 123474317621230 --mode liveness --byzantine-mix any`: three members
    /// against two, 185 dead rounds). The receivers' voting machines replace a deadline
    /// decision that the votes, together with those they hold, settle by the early rule
    /// (`demls_consensus::Event::Revised`); a bundle that settles nothing changes nothing.
    pub(super) fn share_evidence(&mut self, d: &ProposalDigest) {
        if self.round.contested.contains(d) {
            return;
        }
        let Some(bundle) = self
            .voting
            .iter()
            .chain(self.retired.values())
            .filter(|v| v.decision(d).is_some())
            .find_map(|v| v.bundle(d))
        else {
            return;
        };
        self.round.contested.insert(*d);
        tracing::debug!(proposal = %d, "sharing the evidence of a contested decision");
        let body = demls_wire::v1::app_content::Body::Voting(bundle.encode());
        if let Err(e) = self.send_app_message(body, TrafficClass::Governance) {
            tracing::warn!(error = %e, "could not share the evidence of a decision");
        }
    }

    /// Whether this member can justify candidate `c` now: a quorum acknowledged it, or each
    /// proposal it applies is finalized here (approved, or an emergency proposal rejected).
    /// A decision revised by evidence after `c` arrived can make it unjustified: it is then
    /// no longer acknowledged here.
    fn justified_now(&self, c: &Candidate) -> bool {
        c.batch
            .iter()
            .all(|d| self.approved.contains(d) || self.rejected.contains(d))
            || self.quorum_acked(&c.digest, &c.committer)
    }

    /// Whether this member may acknowledge `c` at all: not an equivocator's, and justified
    /// here now (the rule and the draw both choose among these).
    pub(super) fn may_acknowledge(&self, c: &Candidate) -> bool {
        !self.round.equivocators.contains(&c.committer) && self.justified_now(c)
    }

    /// After a dead round: shares the evidence of each approved proposal that a candidate
    /// held here omits (see [`Self::share_evidence`]) — members that decided it NO at their
    /// deadline prefer that candidate, this member the ones that apply it.
    fn share_omitted_approvals(&mut self) {
        let omitted: Vec<ProposalDigest> = self
            .approved
            .iter()
            .filter(|d| !self.round.contested.contains(d))
            .filter(|d| self.round.candidates.iter().any(|c| !c.batch.contains(d)))
            .copied()
            .collect();
        for d in omitted {
            self.share_evidence(&d);
        }
    }

    /// Sends `CommitAck { digest, round }`, naming `committer`, to the group; returns the
    /// MLS message.
    fn transmit_ack(
        &mut self,
        round: u32,
        digest: [u8; 32],
        committer: &MemberId,
    ) -> Option<Vec<u8>> {
        let sent = self.send_app_message(
            demls_wire::v1::app_content::Body::CommitAck(demls_wire::v1::CommitAck {
                commit: digest.to_vec(),
                round,
                committer: committer.as_bytes().to_vec(),
            }),
            TrafficClass::Governance,
        );
        match sent {
            Ok(message) => Some(message),
            Err(e) => {
                tracing::warn!(error = %e, "could not acknowledge a commit candidate");
                None
            }
        }
    }

    /// Sends again what this member contributed to the epoch's round — its own candidate
    /// (after its evidence) and its recent acknowledgements — when the rotation passed
    /// without an applied commit. Each goes out once otherwise, and one lost on the way (a
    /// member whose output was lost for a while) keeps the round alive for good at the
    /// members that missed it: a round dies only when every member that could still change
    /// its outcome was heard from (the simulator found groups waiting for ever). Receivers
    /// ignore what they already hold.
    pub(super) fn resend_round(&mut self) {
        if !self.needs_acks() {
            return;
        }
        let own = self
            .round
            .candidates
            .iter()
            .find(|c| c.committer == self.me)
            .map(|c| (c.raw.clone(), c.batch.clone()));
        if let Some((raw, batch)) = own {
            if let Err(e) = self.send_evidence(&batch, false) {
                tracing::warn!(error = %e, "could not send evidence again");
            }
            let packet = self.packet(demls_wire::v1::packet::Body::MlsMessage(raw));
            if let Err(e) = self.transmit(Channel::Conversation, TrafficClass::Handshake, packet) {
                tracing::warn!(error = %e, "could not send the own candidate again");
            }
        }
        // Only the acknowledgements of the current and the previous round: a member still in
        // an older one follows those that moved on (`round_left`). Resending every round's
        // made each resend grow with the epoch's rounds (318 packets per member at once after
        // 27 split rounds: `demls-sim --generated 5487485319418 --mode liveness`).
        let recent = self.round.ack_round.saturating_sub(1);
        let mine: Vec<(u32, [u8; 32], MemberId)> = self
            .round
            .acks
            .range((recent, [0; 32])..)
            .filter(|(_, ackers)| ackers.contains(&self.me))
            .filter_map(|((r, d), _)| self.committer_of(d).map(|c| (*r, *d, c)))
            .collect();
        for (round, digest, committer) in mine {
            self.transmit_ack(round, digest, &committer);
        }
    }

    /// Sends again this member's acknowledgement (or abstention) of `round`, a round older
    /// than its previous one — at most once per [`RELAY_BACKOFF_MS`](super::catch_up::RELAY_BACKOFF_MS)
    /// per round, whether it asks (`request_lock_rounds`) or answers: an answer reaching
    /// another member that left the round is not answered again, so nothing echoes.
    fn send_old_ack(&mut self, now: Instant, round: u32) -> bool {
        let Some(digest) = self.my_ack(round) else {
            return false;
        };
        let Some(committer) = self.committer_of(&digest) else {
            return false;
        };
        let now_ms = self.clock.unix_ms(now).0;
        let due =
            self.round.old_acks_sent.get(&round).is_none_or(|last| {
                now_ms >= last.saturating_add(super::catch_up::RELAY_BACKOFF_MS)
            });
        if !due {
            return false;
        }
        self.round.old_acks_sent.insert(round, now_ms);
        self.transmit_ack(round, digest, &committer).is_some()
    }

    /// At the escalation, a locked member asks for the acknowledgements of the rounds that
    /// keep it locked, older than its previous round, by sending its own again (every
    /// member that left such a round answers with its own: `on_commit_ack`). A lock rests
    /// on the view of a past round, and acknowledgements are resent for the last two rounds
    /// only: a member that never received one acknowledgement of its lock round stayed
    /// locked for good, abstaining round after round (`demls-sim --generated 104914458468530
    /// --mode liveness --byzantine-mix any`: six members split three against three for 400
    /// rounds; without the answer, a Byzantine member could be the one not heard from).
    pub(super) fn request_lock_rounds(&mut self, now: Instant) {
        if !self.needs_acks() {
            return;
        }
        let current = self.round.ack_round;
        let Some((_, rounds)) = self.lock_before(current.saturating_add(1)) else {
            return;
        };
        // The current and the previous round are resent anyway (`resend_round`).
        for r in rounds.into_iter().filter(|r| r.saturating_add(1) < current) {
            self.send_old_ack(now, r);
        }
    }

    /// Moves past dead acknowledgement rounds; then, once its candidate window closed, this
    /// member acknowledges — once per round — the best candidate it holds by the commit
    /// validation service's rule, whether or not it was acknowledged in an abandoned round:
    /// candidates carry over, so the members converge on one once they hold the same ones
    /// (each member builds at most one candidate per epoch — a second would make it an
    /// equivocator — so a rule that let a candidate die for good would wedge the epoch once
    /// every steward's had died: the simulator found it). Safety does not depend on it: at
    /// most one candidate reaches the quorum in a round, and a round in which one reached it
    /// never dies at an honest member, so no honest member acknowledges in a later round. A
    /// steward whose slot has passed, free in a new round and holding no candidate to
    /// acknowledge, builds its own.
    pub(super) fn maybe_ack(&mut self, now: Instant) {
        if !self.needs_acks() {
            return;
        }
        let before = self.round.ack_round;
        while self.round_dead(self.round.ack_round) || self.round_left(self.round.ack_round) {
            // A round this member leaves without having acknowledged in it gets its
            // abstention: members that saw it alive wait for this member's word in it, and an
            // abstention (supporting nothing) lets them see it die too. A Byzantine member
            // that acknowledged both its equivocating commits showed one member the round
            // dead and the others alive, and those waited for the first for good (`demls-sim
            // --generated 69461817466075 --mode liveness --byzantine-mix any`).
            if self.my_ack(self.round.ack_round).is_none() {
                self.send_ack(ABSTAIN);
            }
            self.round.ack_round += 1;
        }
        let round = self.round.ack_round;
        if round > before {
            self.enter_round(now);
        }
        if self.my_ack(round).is_some() {
            return;
        }
        if round > before
            && self.slot_passed(now)
            && self.quorum_candidate().is_none()
            && self.best_by_rule().is_none()
        {
            self.build_candidate(now);
            if self.my_ack(round).is_some() {
                return;
            }
        }
        if !self.round.window_closed {
            return;
        }
        if let Some(locked) = self.locked_candidate(round) {
            // Neither the rule nor the draw moves a member off a candidate that can still win
            // a round it acknowledged it in (see `locked_candidate`).
            match self.round.candidates.iter().find(|c| c.digest == locked) {
                Some(c) if self.may_acknowledge(c) && self.confirmed(c) => self.send_ack(locked),
                _ => self.abstain(),
            }
            return;
        }
        self.confirm_vouched();
        let pick = self
            .drawn_candidate(round)
            .or_else(|| self.best_by_rule_among(|c| self.confirmed(c)));
        // The best candidate applies a decision this member holds only on another's word:
        // wait for vouchers while they can still come, rather than split the round — for a
        // candidate window at most. The vouchers can only be members that hold the decision
        // and acknowledge the candidate; members that all hold it on another's word waited
        // for each other for good (`demls-sim --generated 152089098803950 --mode liveness`:
        // three joiners, a Byzantine member's candidate).
        if let Some(best) = self.best_by_rule() {
            if Some(best) != pick
                && self.may_be_vouched(round, &self.round.candidates[best])
                && self.wait_for_vouchers(now, round)
            {
                return;
            }
        }
        match pick {
            Some(i) => {
                let digest = self.round.candidates[i].digest;
                self.send_ack(digest);
            }
            // Others acknowledge candidates this member does not hold: it abstains for the
            // round, so that a round nobody can win is seen to die — once no steward of the
            // rotation can still bring a candidate. (Abstaining at once split the simulator's
            // rounds: members abstained before a later slot's candidate arrived.)
            None if self.others_acked(round) => match self.candidate_expected_until(now) {
                Some(at) => self.timers.set(TimerKind::CandidateWindow, at),
                None => self.abstain(),
            },
            None => {}
        }
    }

    /// A new acknowledgement round: candidates get a fresh window to arrive before members
    /// choose, and a candidate held here that omits an approval makes this member share the
    /// approval's evidence.
    fn enter_round(&mut self, now: Instant) {
        self.share_omitted_approvals();
        self.round.window_closed = false;
        let window = self.gov.as_ref().expect("a member").config.candidate_window;
        self.timers.set(TimerKind::CandidateWindow, now + window);
    }

    /// The rotation passed (the escalation timer) while this member's current round, in
    /// which it acknowledged, has neither a quorum nor died: it moves to the next round.
    ///
    /// A round dies only once every member that could still change its outcome was heard
    /// from, so a member that never speaks again — a crashed member, a Byzantine one staying
    /// silent, a member stuck in an older epoch — kept a split round alive for good: with
    /// four members and one of them silent, two acknowledgements of one candidate and one of
    /// another waited for the fourth for ever (`demls-sim --generated 184584897013581 --mode
    /// liveness --byzantine-mix any`: three honest members, each leaving, in recovery).
    /// Leaving a live round is safe because of the lock ([`Self::locked_candidate`]).
    pub(super) fn leave_stalled_round(&mut self, now: Instant) {
        if !self.needs_acks() || self.quorum_candidate().is_some() {
            return;
        }
        let round = self.round.ack_round;
        if self.my_ack(round).is_none() || self.round_dead(round) {
            return;
        }
        tracing::debug!(round, "leaving a stalled acknowledgement round");
        self.round.ack_round += 1;
        self.enter_round(now);
    }

    /// The candidate this member is locked on in `round`: the one of its latest
    /// acknowledgement before `round` (abstentions aside), if that candidate may still reach
    /// the quorum in some round this member acknowledged it in ([`Self::may_still_win`]). A
    /// locked member acknowledges that candidate again, or abstains; neither the rule nor
    /// the draw moves it. Its view of that round must fill in, so it asks for the round's
    /// acknowledgements again ([`Self::request_lock_rounds`]).
    ///
    /// Why this is safe when members leave live rounds ([`Self::leave_stalled_round`]): let
    /// X reach the quorum in round r and Y ≠ X in a later round r'. Two quorums share more
    /// than n/3 members, so with fewer than n/3 Byzantine members an honest member p
    /// acknowledged X in r and Y in r'. Take p's first acknowledgement of another candidate
    /// than X after r: its latest acknowledgement before it was of X, so X could no longer
    /// reach the quorum in any round p acknowledged it in, r included — in p's view, where
    /// every member p had not heard from in r counted as acknowledging X, but those that had
    /// moved to another candidate since (each honest one of them did not acknowledge X in r,
    /// or X could not win r in its own view) beyond the Byzantine members they may include.
    /// Whether a candidate may still reach the quorum in a round only ever goes from yes to
    /// no, so X never reached it in r — unless a member acknowledged two candidates in r, one
    /// that p heard and X: provably Byzantine, the limit docs/protocol.md §9 "Open" states.
    pub(super) fn locked_candidate(&self, round: u32) -> Option<[u8; 32]> {
        self.lock_before(round).map(|(locked, _)| locked)
    }

    /// The lock in force before `round` ([`Self::locked_candidate`]): the candidate, and the
    /// rounds this member acknowledged it in where it may still win.
    fn lock_before(&self, round: u32) -> Option<([u8; 32], Vec<u32>)> {
        let mine: Vec<(u32, [u8; 32])> = self
            .round
            .acks
            .range(..(round, [0; 32]))
            .filter(|((_, d), ackers)| *d != ABSTAIN && ackers.contains(&self.me))
            .map(|((r, d), _)| (*r, *d))
            .collect();
        let latest = mine.iter().map(|(r, _)| *r).max()?;
        let known_byzantine = self.known_byzantine();
        mine.iter()
            .filter(|(r, _)| *r == latest)
            .find_map(|(_, candidate)| {
                let rounds: Vec<u32> = mine
                    .iter()
                    .filter(|(r, d)| d == candidate && self.may_still_win(*r, d, &known_byzantine))
                    .map(|(r, _)| *r)
                    .collect();
                (!rounds.is_empty()).then_some((*candidate, rounds))
            })
    }

    /// Members this one knows to be Byzantine: those that acknowledged two candidates in one
    /// round, and committers of equivocating commits.
    fn known_byzantine(&self) -> BTreeSet<&MemberId> {
        let mut per_round: BTreeMap<(u32, &MemberId), usize> = BTreeMap::new();
        for ((r, d), ackers) in &self.round.acks {
            if *d != ABSTAIN {
                for m in ackers {
                    *per_round.entry((*r, m)).or_default() += 1;
                }
            }
        }
        per_round
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|((_, m), _)| m)
            .chain(self.round.equivocators.iter())
            .collect()
    }

    /// Whether `digest` may still reach — or have reached — the quorum in `round`, as far as
    /// this member can tell: its acknowledgements there, plus every member not heard from in
    /// it, except those that have acknowledged another candidate in a later round. An honest
    /// member that acknowledged a candidate that reached the quorum stays locked on it for
    /// good (nobody sees such a candidate unable to win), so a member that moved to another
    /// candidate did not acknowledge it — unless it is Byzantine: up to `f` = ⌈n/3⌉ − 1 of
    /// them still count, fewer those already known (`known_byzantine`), which count anyway.
    fn may_still_win(
        &self,
        round: u32,
        digest: &[u8; 32],
        known_byzantine: &BTreeSet<&MemberId>,
    ) -> bool {
        let heard: BTreeSet<&MemberId> = self
            .round
            .acks
            .range((round, [0; 32])..=(round, [0xff; 32]))
            .flat_map(|(_, a)| a.iter())
            .collect();
        let moved_off: BTreeSet<&MemberId> = self
            .round
            .acks
            .range((round.saturating_add(1), [0; 32])..)
            .filter(|((_, d), _)| d != digest && *d != ABSTAIN)
            .flat_map(|(_, a)| a.iter())
            .collect();
        let roster = self.roster();
        let f = roster.len().div_ceil(3).saturating_sub(1);
        let (mut possible, mut moved) = (0, 0);
        for m in roster.iter().filter(|m| !heard.contains(m)) {
            if !moved_off.contains(m) || known_byzantine.contains(m) {
                possible += 1;
            } else {
                moved += 1;
            }
        }
        possible += moved.min(f.saturating_sub(known_byzantine.len()));
        self.ackers(round, digest) + possible >= self.ack_quorum()
    }

    /// From [`DRAW_FROM_ROUND`] on: among the candidates this member may acknowledge
    /// (justified, confirmed, not an equivocator's) that a member — this one included —
    /// acknowledged in the previous round, the one with the smallest SHA-256 of the round and
    /// its digest. Members that can justify the same options draw the same one, and each
    /// round draws afresh, so those that can justify several candidates come, within a few
    /// rounds, to the one that members with a single option stay on — whichever side that is
    /// (a rule that always preferred one side's candidate could not know which side can
    /// move). `None` before that round or without such a candidate: the rule decides.
    /// (Counting only the others' acknowledgements made two members that had acknowledged
    /// different candidates swap them, round after round: `demls-sim --generated
    /// 279280825942770 --mode liveness`, ten rounds.)
    fn drawn_candidate(&self, round: u32) -> Option<usize> {
        if round < DRAW_FROM_ROUND {
            return None;
        }
        let live = |c: &Candidate| {
            self.round
                .acks
                .get(&(round - 1, c.digest))
                .is_some_and(|ackers| !ackers.is_empty())
        };
        let draw = |c: &Candidate| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(b"demls/v1/ack-draw");
            h.update(round.to_be_bytes());
            h.update(c.digest);
            h.finalize().into()
        };
        self.round
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| self.may_acknowledge(c) && self.confirmed(c) && live(c))
            .min_by_key(|(_, c)| draw(c))
            .map(|(i, _)| i)
    }

    /// Whether this member still waits for vouchers in `round`: the first wait in a round
    /// lasts a candidate window.
    fn wait_for_vouchers(&mut self, now: Instant, round: u32) -> bool {
        let until = match self.round.vouch_wait {
            Some((r, until)) if r == round => until,
            _ => {
                let window = self.gov.as_ref().expect("a member").config.candidate_window;
                let until = now + window;
                self.round.vouch_wait = Some((round, until));
                self.timers.set(TimerKind::CandidateWindow, until);
                until
            }
        };
        now < until
    }

    /// Abstains in the current round, unless it already abstained
    /// [`MAX_IDLE_ABSTENTIONS`] times in a row over the same view: then it waits for news.
    fn abstain(&mut self) {
        let view = self.candidate_view();
        if self.round.idle_abstentions.1 != view {
            self.round.idle_abstentions = (0, view);
        }
        if self.round.idle_abstentions.0 >= MAX_IDLE_ABSTENTIONS {
            return;
        }
        self.round.idle_abstentions.0 += 1;
        self.send_ack(ABSTAIN);
    }

    /// A digest of what this member's choice in a round depends on: the candidates it holds,
    /// the equivocators among their committers, and its decisions (approved, rejected, and
    /// held on another's word).
    fn candidate_view(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let held: BTreeSet<[u8; 32]> = self.round.candidates.iter().map(|c| c.digest).collect();
        for d in &held {
            h.update(d);
        }
        for m in &self.round.equivocators {
            h.update((m.as_bytes().len() as u32).to_be_bytes());
            h.update(m.as_bytes());
        }
        for (tag, set) in [
            (1u8, &self.approved),
            (2, &self.rejected),
            (3, &self.unconfirmed.keys().copied().collect()),
        ] {
            h.update([tag]);
            for d in set {
                h.update(d.0);
            }
        }
        h.finalize().into()
    }

    /// Until when this member may still expect a candidate in the current round: the slot of
    /// a steward of the rotation that has neither a candidate here nor an acknowledgement in
    /// this round (it would not build then), plus the candidate window. `None` when no
    /// candidate is expected any more. Before the rotation started (the freeze window Δ
    /// still runs), every steward's candidate is still to come: until Δ closes plus the
    /// window. (Abstaining then let a commit that waited here — an early one that named an
    /// open proposal — drive a new dead round every candidate window, each costing every
    /// member an acknowledgement, until none had any left and no commit could win.)
    fn candidate_expected_until(&self, now: Instant) -> Option<Instant> {
        let window = self.gov.as_ref()?.config.candidate_window;
        let Some(started) = self.round.started else {
            return self
                .timers
                .iter()
                .find(|(_, kind)| *kind == TimerKind::FreezeWindow)
                .map(|(at, _)| *at + window);
        };
        let slot = self.slot_len();
        let round = self.round.ack_round;
        self.primary_walk()
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                !self.round.has_candidate_from(s)
                    && !self.round.equivocators.contains(*s)
                    && !self.acked_in(round, s)
            })
            .map(|(k, _)| started + slot * k as u32 + window)
            .filter(|at| *at > now)
            .max()
    }

    /// Whether `member` acknowledged (or abstained) in `round`.
    fn acked_in(&self, round: u32, member: &MemberId) -> bool {
        self.round
            .acks
            .range((round, [0; 32])..=(round, [0xff; 32]))
            .any(|(_, ackers)| ackers.contains(member))
    }

    /// Members needed to vouch for a decision taken on another member's word: ⌈n/3⌉, so
    /// that with fewer than n/3 Byzantine members one of them is honest.
    fn vouchers_needed(&self) -> usize {
        self.roster().len().div_ceil(3).max(1)
    }

    /// The other members that acknowledged (in any round of this epoch; a committer through
    /// its commit) a candidate held here that applies `d`: each vouches that `d` is finalized.
    fn vouchers(&self, d: &ProposalDigest) -> BTreeSet<&MemberId> {
        self.round
            .candidates
            .iter()
            .filter(|c| c.batch.contains(d))
            .flat_map(|c| {
                self.round
                    .acks
                    .iter()
                    .filter(move |((_, digest), _)| *digest == c.digest)
                    .flat_map(|(_, ackers)| ackers.iter())
            })
            .filter(|m| **m != self.me)
            .collect()
    }

    /// Decisions taken on another member's word that enough members vouched for become this
    /// member's own (see `Conversation::unconfirmed`).
    fn confirm_vouched(&mut self) {
        let needed = self.vouchers_needed();
        let vouched: Vec<ProposalDigest> = self
            .unconfirmed
            .keys()
            .filter(|d| self.vouchers(d).len() >= needed)
            .copied()
            .collect();
        for d in vouched {
            self.unconfirmed.remove(&d);
        }
    }

    /// Whether `c` applies no decision this member holds only on another member's word.
    fn confirmed(&self, c: &Candidate) -> bool {
        !c.batch.iter().any(|d| self.unconfirmed.contains_key(d))
    }

    /// Whether every unconfirmed decision `c` applies can still get its vouchers: the other
    /// members not heard from in `round` could all still acknowledge `c`.
    fn may_be_vouched(&self, round: u32, c: &Candidate) -> bool {
        let heard: BTreeSet<&MemberId> = self
            .round
            .acks
            .range((round, [0; 32])..=(round, [0xff; 32]))
            .flat_map(|(_, a)| a.iter())
            .filter(|m| **m != self.me)
            .collect();
        let unheard = self.roster().len().saturating_sub(heard.len() + 1);
        let needed = self.vouchers_needed();
        c.batch
            .iter()
            .filter(|d| self.unconfirmed.contains_key(d))
            .all(|d| self.vouchers(d).len() + unheard >= needed)
    }

    /// An acknowledgement of a candidate of the current epoch. At most
    /// [`MAX_ACKS_PER_ROUND`] acknowledgements per member and round, and
    /// [`MAX_ACKS_AHEAD`] per member in rounds after this member's, are recorded; a refused
    /// one changes nothing.
    pub(super) fn on_commit_ack(
        &mut self,
        now: Instant,
        sender: MemberId,
        round: u32,
        digest: [u8; 32],
        committer: MemberId,
    ) -> Result<(), Error> {
        if !self.roster().contains(&sender) {
            return Err(Error::UnknownMember(sender));
        }
        // A member still asks about a round this member left (a lock's round, or a member
        // far behind): this member's own acknowledgement there fills in the asker's view.
        // Answered only once the acknowledgement is accepted (a refused one changes nothing).
        let old = round.saturating_add(1) < self.round.ack_round;
        let known = self
            .round
            .acks
            .get(&(round, digest))
            .is_some_and(|a| a.contains(&sender));
        if known {
            if old {
                self.send_old_ack(now, round);
            }
            return Ok(());
        }
        let in_round = self
            .round
            .acks
            .range((round, [0; 32])..=(round, [0xff; 32]))
            .filter(|(_, ackers)| ackers.contains(&sender))
            .count();
        if in_round >= MAX_ACKS_PER_ROUND {
            return Err(Error::TooManyAcks(sender));
        }
        if round > self.round.ack_round {
            let ahead = self
                .round
                .acks
                .range((self.round.ack_round + 1, [0; 32])..)
                .filter(|(_, ackers)| ackers.contains(&sender))
                .count();
            if ahead >= MAX_ACKS_AHEAD {
                return Err(Error::AcksTooFarAhead(sender));
            }
        }
        if old {
            self.send_old_ack(now, round);
        }
        self.record_ack(round, digest, sender);
        if digest != ABSTAIN {
            self.round.claimed.entry(digest).or_insert(committer);
        }
        self.detect_equivocation();
        self.consider_round(now);
        // A waiting commit this acknowledgement completed a quorum for.
        let completes = self.pending_commits.iter().any(|(c, raw)| {
            <[u8; 32]>::from(Sha256::digest(raw)) == digest && self.quorum_acked(&digest, c)
        });
        if completes {
            self.retry_pending_commits(now);
        }
        Ok(())
    }

    /// Equivocation seen through acknowledgements: a committer with two different commits,
    /// each either held (and validated) here or acknowledged by ⌈n/3⌉ members — so at least
    /// one honest member validated it (a claim by fewer could be a Byzantine frame-up).
    fn detect_equivocation(&mut self) {
        let needed = self.roster().len().div_ceil(3).max(1);
        let mut genuine: BTreeMap<MemberId, BTreeSet<[u8; 32]>> = BTreeMap::new();
        for c in &self.round.candidates {
            genuine
                .entry(c.committer.clone())
                .or_default()
                .insert(c.digest);
        }
        for (d, m) in &self.round.claimed {
            let ackers: BTreeSet<&MemberId> = self
                .round
                .acks
                .iter()
                .filter(|((_, digest), _)| digest == d)
                .flat_map(|(_, a)| a.iter())
                .collect();
            if ackers.len() >= needed {
                genuine.entry(m.clone()).or_default().insert(*d);
            }
        }
        let caught: Vec<MemberId> = genuine
            .into_iter()
            .filter(|(m, digests)| digests.len() > 1 && !self.round.equivocators.contains(m))
            .map(|(m, _)| m)
            .collect();
        for m in caught {
            self.round.equivocators.insert(m.clone());
            self.report_violation(m, ViolationKind::Equivocation);
        }
    }
}

#[cfg(feature = "test-utils")]
impl Conversation {
    /// Sends `CommitAck { digest, round }` naming `committer` to the group, whatever this
    /// member holds or its current round (a Byzantine acknowledgement, or an honest one far
    /// ahead); records nothing here. Returns the packets.
    #[doc(hidden)]
    pub fn test_acknowledge(
        &mut self,
        now: Instant,
        round: u32,
        digest: [u8; 32],
        committer: &MemberId,
    ) -> Result<Vec<crate::Transmit>, Error> {
        self.clock.advance(now);
        let before = self.transmits.len();
        self.transmit_ack(round, digest, committer)
            .ok_or(Error::NotAMember)?;
        Ok(self.transmits.drain(before..).collect())
    }

    /// The candidate this member acknowledged in `round` of the epoch (the smallest digest
    /// if several), or [`ABSTAIN`]'s all-zero digest.
    #[doc(hidden)]
    pub fn test_my_ack(&self, round: u32) -> Option<[u8; 32]> {
        self.my_ack(round)
    }

    /// This member's current acknowledgement round.
    #[doc(hidden)]
    pub fn test_ack_round(&self) -> u32 {
        self.round.ack_round
    }
}
