//! The multi-steward commit round of an epoch and its escalation ("Multi stewards",
//! "Commit validation service", "Three-Layer Steward Protection Mechanism", "Inactivity
//! Timer", docs/protocol.md §9):
//!
//! 1. The first approval of the epoch arms the freeze window Δ at **every** member. When it
//!    closes, the rotation starts: the epoch steward (position 0) builds its candidate at once,
//!    the steward at position k at `k × commit_inactivity` (`recovery_inactivity` in recovery
//!    mode) unless a valid candidate arrived before ("Layer 1").
//! 2. Every member collects valid candidates — justified by its finalized proposals, with the
//!    group parameters it computes itself — for `candidate_window` after the first (at once
//!    when every steward of the rotation has one in, or the rotation has one steward), then
//!    applies the best: longest proposal sequence, the epoch steward's among equals, else the
//!    smallest committer id. A member that sent two different candidates is an equivocator:
//!    both are dropped. The committer keeps its own candidate as openmls's pending commit and
//!    sends its Welcome only if it wins.
//! 3. When the rotation passes without an applied commit, members re-elect (Layer 2, up to
//!    `max_reelection_attempts` retry rounds), then propose the deadlock emergency proposal
//!    (Layer 3), whose YES starts recovery mode: every member is in the rotation.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use demls_consensus::{Choice, MemberId, ProposalDigest, ProposalKind};
use openmls::prelude::{
    CommitMessageBundle, Extension, ExtensionType, Extensions, KeyPackage, LeafNodeIndex,
    ProcessedMessageContent, RequiredCapabilitiesExtension, StagedCommit, UnknownExtension,
};
use openmls_traits::OpenMlsProvider;
use prost::Message;
use sha2::{Digest as _, Sha256};
use tls_codec::{Deserialize as _, Serialize as _};

use super::{mls_error, Conversation, Phase, GROUP_PARAMS_EXTENSION};
use crate::error::Error;
use crate::event::{Event, ViolationKind};
use crate::governance::ParsedAction;
use crate::stewards::GroupState;
use crate::timers::TimerKind;
use crate::transmit::{Channel, TrafficClass};

/// How a member misbehaves as a steward (feature `test-utils`; the simulator's Byzantine
/// stewards). Not part of snapshots or the state digest.
#[cfg(feature = "test-utils")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Byzantine {
    /// Never builds a commit candidate (a silent steward).
    pub silent: bool,
    /// Leaves every proposal about this member out of its commits (a censoring steward).
    pub censor: Option<MemberId>,
}

/// Epoch changes after which an approved add held only on another member's word no longer
/// stops a fresh add of its member (`Conversation::stale_unconfirmed`). The members that
/// finalized it commit it within an epoch or two when they are there to; when every member
/// left holds it on another's word (the members that finalized it all left), nobody can
/// ever vouch for it, and the group waited for good while the joiner kept announcing its key
/// package (`demls-sim --generated 231264174667344 --mode liveness --byzantine-mix any`).
/// Three, as long as a key package stays buffered.
pub(super) const UNCONFIRMED_PATIENCE: u64 = 3;

/// A valid, justified commit candidate of the current epoch.
pub(super) struct Candidate {
    /// Its MLS sender.
    pub committer: MemberId,
    /// SHA-256 of the serialized commit (distinguishes equivocating copies).
    pub digest: [u8; 32],
    /// The serialized MLS commit.
    pub raw: Vec<u8>,
    /// The proposals it applies, ascending.
    pub batch: Vec<ProposalDigest>,
    /// The staged commit (others' candidates; `None` after a restore: staged again).
    pub staged: Option<Box<StagedCommit>>,
    /// Our own candidate's Welcome packet, sent only if it wins.
    pub welcome: Option<Vec<u8>>,
}

/// The commit round of the current epoch.
#[derive(Default)]
pub(super) struct CommitRound {
    /// When this member's freeze window closed (the rotation's slots count from here).
    pub started: Option<Instant>,
    /// Valid candidates, in arrival order.
    pub candidates: Vec<Candidate>,
    /// Members that sent two different candidates this epoch.
    pub equivocators: BTreeSet<MemberId>,
    /// Re-elections started this epoch (Layer 2); the next one uses this retry round.
    pub reelections: u32,
    /// Layer 2 is used up: the deadlock emergency proposal is due (Layer 3).
    pub deadlock_due: bool,
    /// The candidate window closed (or every expected candidate is in): a candidate with a
    /// quorum of acknowledgements is applied as soon as there is one.
    pub window_closed: bool,
    /// The current acknowledgement round: it moves on only when no candidate can reach the
    /// quorum in it any more.
    pub ack_round: u32,
    /// Abstentions sent in a row over one view (see
    /// [`MAX_IDLE_ABSTENTIONS`](super::acks::MAX_IDLE_ABSTENTIONS)), and the digest of that
    /// view (`Conversation::candidate_view`).
    pub idle_abstentions: (u32, [u8; 32]),
    /// The round in which this member waits for vouchers for the best candidate, and until
    /// when (see `Conversation::wait_for_vouchers`).
    pub vouch_wait: Option<(u32, Instant)>,
    /// Until when this member's turn to commit waits for the open steward elections and
    /// emergency proposals to be decided (at most once per epoch; see
    /// `Conversation::defer_for_governance`).
    pub deferred_until: Option<Instant>,
    /// Who acknowledged which candidate (by the SHA-256 of its bytes) in which round;
    /// acknowledgements may arrive before their candidate.
    pub acks: BTreeMap<(u32, [u8; 32]), BTreeSet<MemberId>>,
    /// The committer each acknowledged candidate is claimed to be from (first claim).
    pub claimed: BTreeMap<[u8; 32], MemberId>,
    /// The MLS messages of the acknowledgements recorded in `acks` (each once), by
    /// candidate: the applied candidate's become the certificate relayed to late members.
    pub ack_messages: BTreeMap<[u8; 32], Vec<Vec<u8>>>,
    /// The MLS messages of vote bundles each member sent this epoch (a committer's evidence
    /// precedes its commit), at most `MAX_EVIDENCE_MESSAGES` per member: the applied
    /// candidate's committer's go into the certificate.
    pub evidence_messages: BTreeMap<MemberId, Vec<Vec<u8>>>,
    /// Proposals whose evidence this member sent this epoch because the round showed a
    /// member that decided them otherwise (each once; see `Conversation::share_evidence`).
    pub contested: BTreeSet<ProposalDigest>,
    /// When (Unix ms) this member last sent again its acknowledgement of each round older
    /// than its previous one — asking for that round's acknowledgements, or answering such a
    /// request (see `Conversation::request_lock_rounds`).
    pub old_acks_sent: BTreeMap<u32, u64>,
}

impl CommitRound {
    pub(super) fn hash(&self, h: &mut Sha256) {
        h.update([
            u8::from(self.started.is_some()),
            u8::from(self.deadlock_due),
            u8::from(self.window_closed),
        ]);
        h.update(self.ack_round.to_be_bytes());
        h.update([u8::from(self.deferred_until.is_some())]);
        h.update(self.idle_abstentions.0.to_be_bytes());
        h.update(self.idle_abstentions.1);
        h.update([u8::from(self.vouch_wait.is_some())]);
        if let Some((r, _)) = self.vouch_wait {
            h.update(r.to_be_bytes());
        }
        for (d, m) in &self.claimed {
            h.update(d);
            h.update((m.as_bytes().len() as u32).to_be_bytes());
            h.update(m.as_bytes());
        }
        for ((r, d), ackers) in &self.acks {
            h.update(r.to_be_bytes());
            h.update(d);
            h.update((ackers.len() as u32).to_be_bytes());
            for m in ackers {
                h.update((m.as_bytes().len() as u32).to_be_bytes());
                h.update(m.as_bytes());
            }
        }
        h.update(self.reelections.to_be_bytes());
        for c in &self.candidates {
            h.update(c.digest);
            h.update([u8::from(c.welcome.is_some())]);
        }
        for m in &self.equivocators {
            h.update((m.as_bytes().len() as u32).to_be_bytes());
            h.update(m.as_bytes());
        }
        h.update((self.contested.len() as u32).to_be_bytes());
        for d in &self.contested {
            h.update(d.0);
        }
        h.update((self.old_acks_sent.len() as u32).to_be_bytes());
        for (r, ms) in &self.old_acks_sent {
            h.update(r.to_be_bytes());
            h.update(ms.to_be_bytes());
        }
        for (sender, messages) in &self.evidence_messages {
            h.update((sender.as_bytes().len() as u32).to_be_bytes());
            h.update(sender.as_bytes());
            h.update((messages.len() as u32).to_be_bytes());
            for m in messages {
                h.update((m.len() as u32).to_be_bytes());
                h.update(m);
            }
        }
        for (d, messages) in &self.ack_messages {
            h.update(d);
            h.update((messages.len() as u32).to_be_bytes());
            for m in messages {
                h.update((m.len() as u32).to_be_bytes());
                h.update(m);
            }
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.candidates
            .iter()
            .map(|c| c.raw.len() + c.welcome.as_ref().map_or(0, Vec::len))
            .sum::<usize>()
            + self
                .ack_messages
                .values()
                .chain(self.evidence_messages.values())
                .flatten()
                .map(Vec::len)
                .sum::<usize>()
    }

    pub(super) fn has_candidate_from(&self, member: &MemberId) -> bool {
        self.candidates.iter().any(|c| &c.committer == member)
    }
}

impl Conversation {
    pub(super) fn gov(&self) -> Result<&GroupState, Error> {
        self.gov.as_ref().ok_or(Error::NotAMember)
    }

    fn epoch_u64(&self) -> u64 {
        self.epoch().map_or(0, |e| e.0)
    }

    /// The approved steward election this epoch's commit would install, if any (the one
    /// with the smallest digest).
    fn approved_election(&self) -> Option<(ProposalDigest, Vec<MemberId>, u32)> {
        self.approved
            .iter()
            .find_map(|d| match self.actions.get(d) {
                Some(ParsedAction::Elect {
                    stewards,
                    retry_round,
                    ..
                }) => Some((*d, stewards.clone(), *retry_round)),
                _ => None,
            })
    }

    /// The rotation of a commit whose batch is `batch` (for scoring and validation): the
    /// elected list's when the batch installs one, otherwise the group's.
    pub(super) fn walk_of_batch(&self, batch: &[ProposalDigest]) -> Vec<MemberId> {
        let Some(gov) = self.gov.as_ref() else {
            return Vec::new();
        };
        let epoch = self.epoch_u64();
        let roster = self.roster();
        for d in batch {
            if let Some(ParsedAction::Elect {
                stewards,
                retry_round,
                ..
            }) = self.actions.get(d)
            {
                let mut elected = gov.clone();
                elected.install(stewards.clone(), epoch, *retry_round);
                return elected.walk(epoch, &roster);
            }
        }
        gov.walk(epoch, &roster)
    }

    /// Members whose removal (or leave) is finalized YES here and not yet committed: not
    /// eligible to commit ("eligible ... if it is a current group member and not pending
    /// removal", Layer 1).
    fn pending_removal(&self) -> BTreeSet<&MemberId> {
        self.approved
            .iter()
            .filter_map(|d| self.actions.get(d))
            .filter(|a| a.is_removal())
            .filter_map(|a| a.subject())
            .collect()
    }

    /// `walk` without the members pending removal — unless that leaves nobody, in which
    /// case the walk stays whole (someone must commit the removals).
    fn eligible(&self, mut walk: Vec<MemberId>) -> Vec<MemberId> {
        let pending = self.pending_removal();
        if walk.iter().any(|m| !pending.contains(m)) {
            walk.retain(|m| !pending.contains(m));
        }
        walk
    }

    /// Who commits this epoch, in order: every member in recovery mode (see
    /// [`Self::recovery_walk`]); the list an approved election installs (its stewards commit
    /// it); otherwise the group's rotation — without members pending removal (`eligible`;
    /// the score deltas use the group's rotation as recorded, `walk_of_batch`, which every
    /// member computes alike).
    pub(super) fn primary_walk(&self) -> Vec<MemberId> {
        if self.recovery {
            return self.recovery_walk();
        }
        self.eligible(match self.approved_election() {
            Some((d, _, _)) => self.walk_of_batch(&[d]),
            None => self.walk_of_batch(&[]),
        })
    }

    /// The committers of recovery mode ("any remaining member MAY produce the next valid
    /// commit"): the members not pending removal by id, then those pending removal by id.
    /// Leaving the latter out wedged a group for good when every member but a Byzantine one
    /// had a removal approved and the Byzantine one had spent its candidate: nobody could
    /// commit, in recovery mode too (`demls-sim --generated 203880134173336 --mode liveness
    /// --byzantine-mix any`: a proposal spammer). Last in the walk, they commit only once
    /// every other member's slot has passed.
    fn recovery_walk(&self) -> Vec<MemberId> {
        let pending = self.pending_removal();
        let (remaining, leaving): (Vec<MemberId>, Vec<MemberId>) = self
            .roster()
            .into_iter()
            .partition(|m| !pending.contains(m));
        remaining.into_iter().chain(leaving).collect()
    }

    /// Whether candidates need acknowledgements: always under multi-steward governance —
    /// even a rotation of one steward, since an election approved at some members and not
    /// yet at others lets another steward commit (the simulator found the fork) — and never
    /// in a single-steward group, where exactly one member can commit and its commit is
    /// applied at once (§8). A group parameter, so every member agrees.
    pub(super) fn needs_acks(&self) -> bool {
        self.recovery || self.gov.as_ref().is_some_and(|g| !g.config.single_steward)
    }

    /// Whether `sender` may commit this epoch: any member in recovery mode; in the group's
    /// rotation, or in the rotation of an approved election, without the members pending
    /// removal — by the same rule as [`Self::primary_walk`] (a member refusing a commit that
    /// the committer's own walk allowed found the simulator's stall F15: with every steward
    /// of a short rotation pending removal, the walk kept them all while this check refused
    /// them).
    pub(super) fn may_commit(&self, sender: &MemberId) -> bool {
        if self.recovery && self.roster().contains(sender) {
            return true;
        }
        if self.eligible(self.walk_of_batch(&[])).contains(sender) {
            return true;
        }
        let elections: Vec<ProposalDigest> = self
            .approved
            .iter()
            .filter(|d| matches!(self.actions.get(d), Some(ParsedAction::Elect { .. })))
            .copied()
            .collect();
        elections
            .iter()
            .any(|d| self.eligible(self.walk_of_batch(&[*d])).contains(sender))
    }

    /// Whether `sender` could become a committer once something open here is decided (an
    /// open election lists it, or a deadlock proposal is open): its commit waits instead of
    /// being refused.
    pub(super) fn may_commit_later(&self, sender: &MemberId) -> bool {
        self.open_governance().iter().any(|(_, a)| match a {
            ParsedAction::Elect { stewards, .. } => stewards.contains(sender),
            ParsedAction::Deadlock => true,
            _ => false,
        })
    }

    /// Open (undecided) steward elections and emergency proposals of the current epoch.
    pub(super) fn open_governance(&self) -> Vec<(ProposalDigest, &ParsedAction)> {
        let Some(v) = self.voting.as_ref() else {
            return Vec::new();
        };
        self.actions
            .iter()
            .filter(|(d, a)| {
                a.kind() != ProposalKind::Commit
                    && v.proposal(d).is_some()
                    && v.decision(d).is_none()
            })
            .map(|(d, a)| (*d, a))
            .collect()
    }

    /// The highest priority among open governance proposals: lower-priority proposals are
    /// neither created nor accepted meanwhile ("Partial Freeze Semantics").
    pub(super) fn frozen_below(&self) -> Option<u8> {
        self.open_governance()
            .iter()
            .map(|(_, a)| a.kind().priority())
            .max()
    }

    /// The group state after a commit by `committer` applying `batch` (which leaves
    /// `roster_after`): slot failures and the committer's reward, emergency proposal
    /// rewards and penalties, an elected list installed from the next epoch, recovery ended
    /// with the rule's list. Every member computes it and compares it with the commit's.
    pub(super) fn next_state(
        &self,
        committer: &MemberId,
        batch: &[ProposalDigest],
        roster_after: &[MemberId],
    ) -> Result<GroupState, Error> {
        let mut next = self.gov()?.clone();
        let epoch = self.epoch_u64();
        let recovery_commit = batch.iter().any(|d| {
            matches!(self.actions.get(d), Some(ParsedAction::Deadlock))
                && !self.rejected.contains(d)
        });
        if recovery_commit {
            // Every steward of the epoch's rotation failed its slot; recovery's committer
            // is rewarded.
            for s in self.walk_of_batch(&[]) {
                if s != *committer {
                    next.adjust(&s, -next.config.slot_failure_penalty);
                }
            }
            next.adjust(committer, next.config.commit_reward);
        } else {
            next.score_commit(&self.walk_of_batch(batch), committer);
        }
        for d in batch {
            let Some(action) = self.actions.get(d) else {
                continue;
            };
            let creator = || {
                self.signed_proposal(d)
                    .map(|p| p.header.creator.clone())
                    .or_else(|| self.creators.get(d).cloned())
            };
            match action {
                ParsedAction::Elect {
                    stewards,
                    retry_round,
                    ..
                } => next.install(stewards.clone(), epoch + 1, *retry_round),
                ParsedAction::RemoveBelowThreshold { .. } | ParsedAction::Deadlock => {
                    if let Some(c) = creator() {
                        let delta = if self.rejected.contains(d) {
                            -next.config.ecp_no_penalty
                        } else {
                            next.config.ecp_yes_reward
                        };
                        next.adjust(&c, delta);
                    }
                }
                _ => {}
            }
        }
        if recovery_commit && !self.rejected.iter().any(|d| batch.contains(d)) {
            let group = self.id.as_bytes();
            let retry = next.config.max_reelection_attempts;
            let list = next.honest_election(epoch, retry, group, roster_after);
            if !list.is_empty() {
                next.install(list, epoch + 1, retry);
            }
        }
        // Also repairs a list the commit leaves without a member (`retain_members`).
        next.retain_members(epoch, self.id.as_bytes(), roster_after);
        Ok(next)
    }

    /// The group context extensions carrying `state`: the parameters, and the required
    /// capabilities that make every member support them (openmls demands the latter for a
    /// private-use extension proposed in a commit).
    pub(super) fn params_extensions(
        state: &GroupState,
    ) -> Result<Extensions<openmls::prelude::GroupContext>, Error> {
        Extensions::from_vec(vec![
            Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(
                &[ExtensionType::Unknown(GROUP_PARAMS_EXTENSION)],
                &[],
                &[],
            )),
            Extension::Unknown(
                GROUP_PARAMS_EXTENSION,
                UnknownExtension(state.to_proto().encode_to_vec()),
            ),
        ])
        .map_err(mls_error)
    }

    // ----- the round -----

    /// Arms the freeze window, unless the round is already under way.
    pub(super) fn arm_freeze(&mut self, now: Instant) {
        if self.round.started.is_none() && !self.timers.is_set(TimerKind::FreezeWindow) {
            self.timers
                .set(TimerKind::FreezeWindow, now + self.config.freeze_window);
        }
    }

    pub(super) fn slot_len(&self) -> std::time::Duration {
        let g = &self
            .gov
            .as_ref()
            .expect("a member has a group state")
            .config;
        // "Recovery inactivity": re-elections (Layer 2) and recovery mode (Layer 3) use the
        // shorter duration, so retries do not burn a full epoch.
        if self.recovery || self.round.reelections > 0 {
            g.recovery_inactivity
        } else {
            g.commit_inactivity
        }
    }

    /// The freeze window closed (or recovery began): the rotation starts.
    pub(super) fn on_freeze_closed(&mut self, now: Instant) {
        if self.phase != Phase::Member || self.gov.is_none() {
            return;
        }
        if self.leaving_alone() {
            self.close();
            return;
        }
        self.timers.stop(TimerKind::FreezeWindow);
        self.round.started = Some(now);
        let walk = self.primary_walk();
        let slot = self.slot_len();
        match walk.iter().position(|s| *s == self.me) {
            Some(0) => self.build_candidate(now),
            Some(k) => self
                .timers
                .set(TimerKind::CommitSlot, now + slot * k as u32),
            None => {}
        }
        let config = &self.gov.as_ref().expect("checked").config;
        if !config.single_steward {
            let window = config.candidate_window;
            self.timers.set(
                TimerKind::Escalation,
                now + slot * walk.len().max(1) as u32 + window,
            );
        }
    }

    /// This steward's turn: commit unless a candidate already has its quorum of
    /// acknowledgements or this member already acknowledged one in the current round (one
    /// that has no quorum yet may come from a steward cut off from the group, or have been
    /// sent to only some members; the acknowledgement rounds settle it).
    pub(super) fn on_commit_slot(&mut self, now: Instant) {
        // A slot of a rotation since restarted without this member (an election approved
        // meanwhile) is no turn.
        if !self.slot_passed(now) {
            return;
        }
        if self.quorum_candidate().is_none() && self.my_ack(self.round.ack_round).is_none() {
            self.build_candidate(now);
        }
    }

    /// Whether `member` is in the rotation, eligible or not (pending removal): its commit
    /// waits here instead of being refused, in case a quorum acknowledges it.
    pub(super) fn in_rotation(&self, member: &MemberId) -> bool {
        self.needs_acks() && self.walk_of_batch(&[]).contains(member)
    }

    /// Sends the evidence bundle of every proposal of `batch` this member holds one for,
    /// before its commit: members that missed votes justify the commit from it. The first
    /// send (`keep`) is kept for the certificate (`catch_up`).
    pub(super) fn send_evidence(
        &mut self,
        batch: &[ProposalDigest],
        keep: bool,
    ) -> Result<(), Error> {
        for d in batch {
            if let Some(bundle) = self.evidence.get(d).cloned() {
                let message = self.send_app_message(
                    demls_wire::v1::app_content::Body::Voting(bundle),
                    TrafficClass::Governance,
                )?;
                if keep && self.needs_acks() {
                    self.keep_evidence_message(self.me.clone(), message);
                }
            }
        }
        Ok(())
    }

    /// Whether this member is in the rotation and its commit slot has come.
    pub(super) fn slot_passed(&self, now: Instant) -> bool {
        let Some(started) = self.round.started else {
            return false;
        };
        match self.primary_walk().iter().position(|s| *s == self.me) {
            Some(k) => started + self.slot_len() * k as u32 <= now,
            None => false,
        }
    }

    /// Builds, sends and keeps (pending) this member's candidate for the current epoch.
    pub(super) fn build_candidate(&mut self, now: Instant) {
        if self.phase != Phase::Member || self.round.has_candidate_from(&self.me) {
            return;
        }
        #[cfg(feature = "test-utils")]
        if self.byzantine.silent {
            return;
        }
        if self.needs_acks() && self.my_ack(self.round.ack_round).is_some() {
            return; // supports another candidate in this round
        }
        if self.needs_acks() && self.locked_candidate(self.round.ack_round).is_some() {
            return; // locked on a candidate that can still win an earlier round
        }
        let batch = self.commit_batch();
        if !batch.iter().any(|d| self.approved.contains(d)) {
            return;
        }
        if self.defer_for_governance(now) {
            return;
        }
        match self.try_build(now, &batch, false) {
            Ok(()) => self.consider_round(now),
            Err(e) => tracing::error!(error = %e, "failed to build a commit candidate"),
        }
    }

    /// Whether this member's turn to commit waits, now, for the steward elections and
    /// emergency proposals open in the current epoch: they outrank commits ("ECP > steward
    /// election > commit"), and an election decided after this member committed may hand
    /// the rotation to a steward whose candidate applies it too. Under acknowledgement rounds
    /// a committer supports its own candidate for the round, so the two candidates split it;
    /// with one member silent, the group never gathered a quorum for either nor saw the
    /// round die (`demls-sim --generated 44960331793281 --mode liveness --byzantine-mix
    /// any`: a steward committed the moment it opened the election its decision called for).
    /// The wait lasts until those proposals are decided (see
    /// [`Self::resume_deferred_commit`]), their voting deadline at most, and happens once per
    /// epoch, so proposals opened one after another cannot hold commits back for ever.
    fn defer_for_governance(&mut self, now: Instant) -> bool {
        if !self.needs_acks() || self.round.deferred_until.is_some() {
            return false;
        }
        let Some(voting) = self.voting.as_ref() else {
            return false;
        };
        let until = self
            .open_governance()
            .iter()
            .filter_map(|(d, _)| voting.proposal(d))
            .map(|p| self.clock.instant_of(p.header.deadline))
            .max();
        match until {
            Some(until) if until > now => {
                self.round.deferred_until = Some(until);
                self.timers.set(TimerKind::CommitSlot, until);
                true
            }
            _ => false,
        }
    }

    /// A governance proposal was decided: a turn to commit that waited for the open ones
    /// (see [`Self::defer_for_governance`]) comes now, if none is left open and this
    /// member's slot in the (maybe new) rotation has passed.
    pub(super) fn resume_deferred_commit(&mut self, now: Instant) {
        let waiting = self.round.deferred_until.is_some_and(|until| until > now);
        if !waiting || !self.open_governance().is_empty() {
            return;
        }
        self.round.deferred_until = Some(now);
        if self.slot_passed(now) {
            self.timers.stop(TimerKind::CommitSlot);
            self.on_commit_slot(now);
        }
    }

    /// Builds a commit of `adds` and `removals` whose authority names `batch` (and the
    /// current acknowledgement round), carrying the group parameters `params` when given,
    /// and stages it as openmls's pending commit.
    pub(super) fn stage_commit(
        &mut self,
        batch: &[ProposalDigest],
        adds: Vec<KeyPackage>,
        removals: Vec<LeafNodeIndex>,
        params: Option<&GroupState>,
        force_path: bool,
    ) -> Result<CommitMessageBundle, Error> {
        let authority = demls_wire::v1::CommitAuthority {
            proposal_digests: batch.iter().map(|d| d.0.to_vec()).collect(),
            ack_round: self.round.ack_round,
        };
        let extensions = params.map(Self::params_extensions).transpose()?;
        self.provider.prepare_operation();
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        group.set_aad(authority.encode_to_vec());
        let mut builder = group
            .commit_builder()
            .force_self_update(force_path)
            .propose_adds(adds)
            .propose_removals(removals);
        if let Some(extensions) = extensions {
            builder = builder
                .propose_group_context_extensions(extensions)
                .map_err(mls_error)?;
        }
        builder
            .load_psks(self.provider.storage())
            .map_err(mls_error)?
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .map_err(mls_error)?
            .stage_commit(&self.provider)
            .map_err(mls_error)
    }

    /// Builds and sends a candidate for `batch`; `force_path` adds an update path even when
    /// the proposals need none (only the equivocation test hook uses it).
    fn try_build(
        &mut self,
        _now: Instant,
        batch: &[ProposalDigest],
        force_path: bool,
    ) -> Result<(), Error> {
        // The evidence first: members that missed votes can justify the commit from it.
        self.send_evidence(batch, true)?;
        // Decisions this commit leaves for later: joiners cannot have their votes.
        let carry = |set: &BTreeSet<ProposalDigest>| -> Vec<Vec<u8>> {
            set.iter()
                .filter(|d| !batch.contains(d))
                .filter_map(|d| self.signed_proposal(d))
                .map(|p| demls_consensus::VotingMessage::Proposal(p).encode())
                .collect()
        };
        let carried_approvals = carry(&self.approved);
        let carried_rejections = carry(&self.rejected);
        let (adds, removals, added, removed) = self.changes_of(batch)?;
        let roster_after = roster_after(&self.roster(), &added, &removed);
        let next = self.next_state(&self.me.clone(), batch, &roster_after)?;
        let changed = Some(&next) != self.gov.as_ref();
        let bundle =
            self.stage_commit(batch, adds, removals, changed.then_some(&next), force_path)?;
        let (commit, welcome, _) = bundle.into_messages();
        let commit = commit.tls_serialize_detached().map_err(mls_error)?;
        let packet = self.packet(demls_wire::v1::packet::Body::MlsMessage(commit.clone()));
        self.transmit(Channel::Conversation, TrafficClass::Handshake, packet)?;
        let welcome = match welcome {
            Some(w) => {
                let welcome = w.tls_serialize_detached().map_err(mls_error)?;
                let packet = self.packet(demls_wire::v1::packet::Body::Welcome(
                    demls_wire::v1::WelcomeMessage {
                        welcome,
                        carried_approvals,
                        carried_rejections,
                    },
                ));
                Some(packet.encode_to_vec())
            }
            None => None,
        };
        let digest: [u8; 32] = Sha256::digest(&commit).into();
        self.round.candidates.push(Candidate {
            committer: self.me.clone(),
            digest,
            raw: commit,
            batch: batch.to_vec(),
            staged: None,
            welcome,
        });
        if self.needs_acks() {
            // The committer supports its own candidate in the current round.
            self.send_ack(digest);
        }
        Ok(())
    }

    /// A valid, justified candidate from another member.
    pub(super) fn add_candidate(
        &mut self,
        now: Instant,
        committer: MemberId,
        raw: Vec<u8>,
        batch: Vec<ProposalDigest>,
        staged: StagedCommit,
        ack_round: u32,
    ) {
        let digest: [u8; 32] = Sha256::digest(&raw).into();
        if self.round.candidates.iter().any(|c| c.digest == digest) {
            return; // a duplicate
        }
        // The committer's own acknowledgement, in the round its commit names: whoever holds
        // the commit counts it, even if the committer's acknowledgement message never came.
        self.record_ack(ack_round, digest, committer.clone());
        self.round
            .claimed
            .entry(digest)
            .or_insert_with(|| committer.clone());
        if !self.round.equivocators.contains(&committer)
            && self.round.has_candidate_from(&committer)
        {
            // Two different commits for one epoch from one member: neither is acknowledged
            // here any more (one that already reached a quorum is still applied).
            self.round.equivocators.insert(committer.clone());
            self.report_violation(committer.clone(), ViolationKind::Equivocation);
        }
        self.round.candidates.push(Candidate {
            committer,
            digest,
            raw,
            batch,
            staged: Some(Box::new(staged)),
            welcome: None,
        });
        self.consider_round(now);
    }

    pub(super) fn report_violation(&mut self, offender: MemberId, kind: ViolationKind) {
        let epoch = demls_consensus::Epoch(self.epoch_u64());
        self.events.push_back(Event::Violation {
            offender,
            kind,
            epoch,
        });
    }

    /// A rotation of one steward applies its candidate at once. Otherwise the candidate
    /// window starts at the first candidate and closes after `candidate_window` (at once when
    /// every steward of the rotation has a candidate in); then this member acknowledges the
    /// best candidate it holds, once per acknowledgement round. The candidate acknowledged by
    /// a quorum in a round is applied as soon as it is known — there can be only one.
    pub(super) fn consider_round(&mut self, now: Instant) {
        let walk = self.primary_walk();
        if !self.needs_acks() {
            if !self.round.candidates.is_empty() {
                self.decide_round(now);
            }
            return;
        }
        if self.round.candidates.is_empty() {
            // Acknowledgements of candidates this member never received: give them the
            // candidate window to arrive, then abstain (`maybe_ack`).
            let round = self.round.ack_round;
            if !self.round.window_closed
                && self.others_acked(round)
                && !self.timers.is_set(TimerKind::CandidateWindow)
            {
                let window = self.gov.as_ref().expect("a member").config.candidate_window;
                self.timers.set(TimerKind::CandidateWindow, now + window);
            }
        } else {
            let all_in = walk
                .iter()
                .all(|s| self.round.has_candidate_from(s) || self.round.equivocators.contains(s));
            if all_in {
                self.round.window_closed = true;
            }
            if !self.round.window_closed && !self.timers.is_set(TimerKind::CandidateWindow) {
                let window = self.gov.as_ref().expect("a member").config.candidate_window;
                self.timers.set(TimerKind::CandidateWindow, now + window);
            }
        }
        self.maybe_ack(now);
        if self.quorum_candidate().is_some() {
            self.decide_round(now);
        }
    }

    /// The candidate window closed.
    pub(super) fn on_candidate_window(&mut self, now: Instant) {
        self.round.window_closed = true;
        self.consider_round(now);
    }

    /// The commit validation service's choice among the candidates (never an
    /// equivocator's): the longest proposal sequence, the epoch steward's among equals,
    /// otherwise the smallest committer id.
    pub(super) fn best_by_rule(&self) -> Option<usize> {
        self.best_by_rule_among(|_| true)
    }

    /// The best candidate by the rule among those `keep` accepts.
    pub(super) fn best_by_rule_among(&self, keep: impl Fn(&Candidate) -> bool) -> Option<usize> {
        let epoch_steward = self.primary_walk().into_iter().next();
        self.round
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| self.may_acknowledge(c) && keep(c))
            .max_by_key(|(_, c)| {
                (
                    c.batch.len(),
                    Some(&c.committer) == epoch_steward.as_ref(),
                    Reverse(c.committer.clone()),
                )
            })
            .map(|(i, _)| i)
    }

    /// The candidate to apply: in a rotation of one steward the best by the rule, otherwise
    /// the one acknowledged by a quorum.
    fn best_candidate(&self) -> Option<usize> {
        if !self.needs_acks() {
            self.best_by_rule()
        } else {
            self.quorum_candidate()
        }
    }

    /// Applies the best candidate.
    pub(super) fn decide_round(&mut self, now: Instant) {
        self.timers.stop(TimerKind::CandidateWindow);
        if self.phase != Phase::Member {
            return;
        }
        let Some(i) = self.best_candidate() else {
            return;
        };
        let winner = self.round.candidates.swap_remove(i);
        if let Err(e) = self.apply_candidate(now, winner) {
            tracing::error!(error = %e, "could not apply the chosen commit");
        }
    }

    fn apply_candidate(&mut self, now: Instant, winner: Candidate) -> Result<(), Error> {
        // Who joins and leaves is read off the roster before and after the merge: a commit
        // taken on its quorum certificate may apply proposals this member never saw.
        let before = self.roster();
        // The stewards before the committer in the rotation failed their slots (the agreed
        // penalty is in the commit's group parameters) — except those pending removal here,
        // which were not allowed to commit.
        let walk = self.walk_of_batch(&winner.batch);
        let pending = self.pending_removal();
        let skipped: Vec<MemberId> = walk
            .iter()
            .take_while(|s| **s != winner.committer)
            .filter(|s| **s != self.me && !pending.contains(s))
            .cloned()
            .collect();
        if walk.contains(&winner.committer) {
            for s in skipped {
                self.report_violation(s, ViolationKind::Inactivity);
            }
        }
        // Competing candidates with a shorter sequence left out approved proposals.
        let losers: Vec<MemberId> = self
            .round
            .candidates
            .iter()
            .filter(|c| c.batch.len() < winner.batch.len())
            .map(|c| c.committer.clone())
            .collect();
        // What the committer could have included: this member's batch without the committer's
        // own removal, which it must leave to another steward ("Self-Removal").
        let mine = self
            .commit_batch()
            .into_iter()
            .filter(|d| self.approved.contains(d))
            .filter(|d| {
                let action = &self.actions[d];
                !(action.is_removal() && action.subject() == Some(&winner.committer))
            })
            .count();
        let censored = winner.committer != self.me
            && mine
                > winner
                    .batch
                    .iter()
                    .filter(|d| self.approved.contains(d))
                    .count();
        let left_epoch = self.epoch().map_or(0, |e| e.0);
        if self.needs_acks() {
            self.keep_certificate(&winner.committer.clone(), &winner.raw, &winner.digest);
        }
        if winner.committer == self.me {
            let group = self.group.as_mut().ok_or(Error::NotAMember)?;
            group
                .merge_pending_commit(&self.provider)
                .map_err(mls_error)?;
            let (added, removed) = self.roster_change(&before)?;
            if let Some(bytes) = winner.welcome {
                let packet = demls_wire::v1::Packet::decode(bytes.as_slice())
                    .map_err(|_| Error::Mls("own welcome does not decode".into()))?;
                self.transmit(Channel::Welcome, TrafficClass::Handshake, packet)?;
                let epoch = self.group.as_ref().map_or(0, |g| g.epoch().as_u64());
                self.keep_welcome(epoch, added.clone(), bytes);
            }
            self.on_epoch_change(now, &winner.batch, added, removed);
            return Ok(());
        }
        let staged = match winner.staged {
            Some(s) => *s,
            None => self.stage_again(&winner.raw)?,
        };
        let self_removed = staged.self_removed();
        let contended = self
            .round
            .acks
            .keys()
            .map(|(_, d)| d)
            .collect::<BTreeSet<_>>()
            .len()
            > 1;
        if contended || self.round.equivocators.contains(&winner.committer) {
            // Several candidates were acknowledged (an equivocating committer may have sent
            // the chosen one to only some members): relay it, so that every member that sees
            // the quorum can also apply it.
            let packet = self.packet(demls_wire::v1::packet::Body::MlsMessage(winner.raw.clone()));
            self.transmit(Channel::Conversation, TrafficClass::Handshake, packet)?;
        }
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        group
            .clear_pending_commit(self.provider.storage())
            .map_err(mls_error)?;
        group
            .merge_staged_commit(&self.provider, staged)
            .map_err(mls_error)?;
        for l in losers {
            self.report_violation(l, ViolationKind::Censorship);
        }
        if censored {
            self.report_violation(winner.committer.clone(), ViolationKind::Censorship);
        }
        if self_removed {
            // The certificate just kept: what this member answers the others' traffic of
            // the epoch it leaves with, for a while ([`super::catch_up::LINGER`]).
            let certificate = self
                .catch_up
                .back()
                .filter(|c| c.epoch == left_epoch)
                .cloned();
            self.close();
            if let Some(certificate) = certificate {
                self.linger(now, certificate);
            }
            return Ok(());
        }
        let (added, removed) = self.roster_change(&before)?;
        self.on_epoch_change(now, &winner.batch, added, removed);
        Ok(())
    }

    /// The members added and removed since the roster was `before`, in roster order.
    fn roster_change(&self, before: &[MemberId]) -> Result<(Vec<MemberId>, Vec<MemberId>), Error> {
        let group = self.group.as_ref().ok_or(Error::NotAMember)?;
        let after: Vec<MemberId> = super::roster_of(group)?
            .voters()
            .iter()
            .map(|v| v.id.clone())
            .collect();
        let added = after
            .iter()
            .filter(|m| !before.contains(m))
            .cloned()
            .collect();
        let removed = before
            .iter()
            .filter(|m| !after.contains(m))
            .cloned()
            .collect();
        Ok((added, removed))
    }

    /// Stages a candidate again from its bytes (after a restore).
    fn stage_again(&mut self, raw: &[u8]) -> Result<StagedCommit, Error> {
        let message =
            openmls::prelude::MlsMessageIn::tls_deserialize_exact(raw).map_err(mls_error)?;
        let protocol = message.try_into_protocol_message().map_err(mls_error)?;
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        let processed = group
            .process_message(&self.provider, protocol)
            .map_err(mls_error)?;
        match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(s) => Ok(*s),
            _ => Err(Error::Mls("candidate is not a commit".into())),
        }
    }

    // ----- escalation and duties -----

    /// The rotation passed without an applied commit: this member's part of the round is
    /// sent again, then Layer 2, then Layer 3.
    pub(super) fn on_escalation(&mut self, now: Instant) {
        if self.phase != Phase::Member || self.approved.is_empty() {
            return;
        }
        if self.gov.as_ref().is_none_or(|g| g.config.single_steward) {
            // The single-steward protocol has no rotation to walk, no re-election and no
            // recovery: a silent steward stalls membership changes (docs/protocol.md §8).
            return;
        }
        self.resend_round();
        self.request_lock_rounds(now);
        self.leave_stalled_round(now);
        let max = self
            .gov
            .as_ref()
            .map_or(0, |g| g.config.max_reelection_attempts);
        if self.recovery {
            // Recovery walks every member; if even that passed, walk again.
            self.on_freeze_closed(now);
            return;
        }
        if self.round.reelections < max {
            self.round.reelections += 1;
        } else {
            self.round.deadlock_due = true;
        }
        let slot = self.slot_len();
        let window = self.gov.as_ref().expect("a member").config.candidate_window;
        let walk = self.primary_walk().len().max(1) as u32;
        self.timers
            .set(TimerKind::Escalation, now + slot * walk + window);
        self.schedule_duties(now);
    }

    /// The governance proposals that are due and nobody has opened or decided yet, highest
    /// priority first.
    fn due_duties(&self) -> Vec<ParsedAction> {
        let (Some(gov), Some(voting)) = (self.gov.as_ref(), self.voting.as_ref()) else {
            return Vec::new();
        };
        let epoch = self.epoch_u64();
        let roster = self.roster();
        let known = |f: &dyn Fn(&ParsedAction) -> bool| {
            self.actions.iter().any(|(d, a)| {
                f(a) && (self.approved.contains(d)
                    || self.rejected.contains(d)
                    || (voting.proposal(d).is_some() && voting.decision(d).is_none()))
            })
        };
        let mut due = Vec::new();
        if self.round.deadlock_due
            && !self.recovery
            && !known(&|a| matches!(a, ParsedAction::Deadlock))
        {
            due.push(ParsedAction::Deadlock);
        }
        for m in &roster {
            if *m != self.me
                && gov.below_threshold(m)
                && !known(
                    &|a| matches!(a, ParsedAction::RemoveBelowThreshold { target } if target == m),
                )
            {
                due.push(ParsedAction::RemoveBelowThreshold { target: m.clone() });
            }
        }
        let retry = self.round.reelections;
        let exhausted = gov.election_due(epoch) && roster.len() >= gov.config.sn_min as usize;
        let reelect = retry > 0 && !self.round.deadlock_due;
        // An exhausted list is re-elected when there is something to commit anyway (an idle
        // group keeps its rotating list; a list of one would otherwise commit an election
        // every epoch, forever) and the election would change it.
        let busy = self
            .approved
            .iter()
            .any(|d| !matches!(self.actions.get(d), Some(ParsedAction::Elect { .. })));
        if ((exhausted && busy) || reelect)
            && !known(
                &|a| matches!(a, ParsedAction::Elect { retry_round, .. } if *retry_round == retry),
            )
        {
            let stewards = gov.honest_election(epoch, retry, self.id.as_bytes(), &roster);
            if !stewards.is_empty() && (reelect || stewards != gov.stewards) {
                due.push(ParsedAction::Elect {
                    epoch,
                    retry_round: retry,
                    stewards,
                });
            }
        }
        due
    }

    /// Whether this member is the group's last, its own removal was approved and it has
    /// nobody to add. Nobody can commit the removal ("Self-Removal": a committer never
    /// commits its own removal, and MLS has no commit that empties a group), so the member
    /// leaves by closing the conversation when its round would start; until then it opens
    /// no governance proposal (an election of itself would be committed every epoch,
    /// forever, for a removal that never comes). With approved adds it commits them first:
    /// the joiners commit its leave.
    fn leaving_alone(&self) -> bool {
        let roster = self.roster();
        roster.len() == 1
            && roster[0] == self.me
            && self.approved.iter().any(|d| self.is_own_removal(d))
            && !self
                .approved
                .iter()
                .filter_map(|d| self.actions.get(d))
                .any(|a| matches!(a, ParsedAction::Add { .. }))
    }

    /// The removals this member proposed — its own leave, or another member's removal —
    /// that it approved but, as far as it can tell, nobody else did: no other member's vote
    /// on any of its proposals for that member was heard, and none is still open in the
    /// current epoch. Sent into a partition, such a proposal is decided by its creator alone
    /// at its deadline (silent voters counted YES) and the others never learn of it; nobody
    /// can commit it (the others cannot check a decision nobody voted on, and a leaver may
    /// not commit its own removal, "Self-Removal"), so the creator opens it again, in the
    /// current epoch, for the group to vote on (a leave is approved by every honest member
    /// at once; another member's removal only once a commit passed it by, since the others
    /// may have let it pass in silence — see `on_epoch_change`). At most one open at a time
    /// per member removed, so at most one per voting period while the partition lasts. (The
    /// simulator: `demls-sim --generated 61999880253394 --mode liveness` for a leave,
    /// `--generated 161107420471090 --byzantine-mix any` for a removal.) Each comes with the
    /// latest voting deadline of this member's proposals for it (Unix ms).
    pub(super) fn stranded_own_removals(&self) -> Vec<(ParsedAction, u64)> {
        let Some(voting) = self.voting.as_ref() else {
            return Vec::new();
        };
        let roster = self.roster();
        if roster.len() < 2 {
            return Vec::new();
        }
        let machine_of = |d: &ProposalDigest| {
            std::iter::once(voting)
                .chain(self.retired.values())
                .find(|v| v.proposal(d).is_some())
        };
        // Per member removed: (approved here, blocked: open, or heard by another member,
        // latest deadline).
        let mut targets: BTreeMap<&MemberId, (bool, bool, u64)> = BTreeMap::new();
        for (d, action) in &self.actions {
            let target = match action {
                ParsedAction::Leave { member } if *member == self.me => member,
                ParsedAction::Remove { member } => member,
                _ => continue,
            };
            let Some(machine) = machine_of(d) else {
                continue;
            };
            let Some(header) = machine.proposal(d).map(|p| &p.header) else {
                continue;
            };
            if header.creator != self.me {
                continue;
            }
            let entry = targets.entry(target).or_default();
            entry.2 = entry.2.max(header.deadline.0);
            if machine.decision(d).is_none() && machine.epoch() == voting.epoch() {
                entry.1 = true; // still open: the others may yet vote
            } else if machine.tally(d).is_some_and(|t| t.yes + t.no > 1) {
                entry.1 = true; // somebody else heard of it
            } else {
                entry.0 |= self.approved.contains(d);
            }
        }
        targets
            .into_iter()
            .filter(|(m, (approved, blocked, _))| *approved && !blocked && roster.contains(m))
            .map(|(m, (_, _, deadline))| match *m == self.me {
                true => (ParsedAction::Leave { member: m.clone() }, deadline),
                false => (ParsedAction::Remove { member: m.clone() }, deadline),
            })
            .collect()
    }

    /// This member's place in line for due proposals: the rotation first, then every other
    /// member by id.
    fn duty_rank(&self) -> usize {
        let walk = self.primary_walk();
        if let Some(i) = walk.iter().position(|s| *s == self.me) {
            return i;
        }
        let others: Vec<MemberId> = self
            .roster()
            .into_iter()
            .filter(|m| !walk.contains(m))
            .collect();
        walk.len()
            + others
                .iter()
                .position(|m| *m == self.me)
                .unwrap_or(others.len())
    }

    /// Arms this member's turn for due proposals (adds for waiting key packages included).
    pub(super) fn schedule_duties(&mut self, now: Instant) {
        if self.phase != Phase::Member {
            return;
        }
        // A leave is approved by every honest member at once: no vote heard means nobody
        // heard it. (Another member's removal waits for a commit that passes it by, see
        // `on_epoch_change`: the others may let it pass in silence.)
        for (action, _) in self.stranded_own_removals() {
            if matches!(action, ParsedAction::Leave { .. }) {
                if let Err(e) = self.open_proposal(now, action) {
                    tracing::debug!(error = %e, "could not open the leave again");
                }
            }
        }
        if self.timers.is_set(TimerKind::Duties) {
            return;
        }
        if self.due_duties().is_empty() && self.waiting_adds().is_empty() {
            return;
        }
        let Some(gov) = self.gov.as_ref() else {
            return;
        };
        let at = now + gov.config.voting_inactivity * self.duty_rank() as u32;
        if at <= now {
            self.perform_duties(now);
        } else {
            self.timers.set(TimerKind::Duties, at);
        }
    }

    /// Opens the due proposals nobody opened yet, respecting priority.
    pub(super) fn perform_duties(&mut self, now: Instant) {
        self.timers.stop(TimerKind::Duties);
        if self.phase != Phase::Member || self.leaving_alone() {
            return;
        }
        for action in self.due_duties() {
            if let Err(e) = self.open_proposal(now, action) {
                tracing::debug!(error = %e, "could not open a due governance proposal");
            }
        }
        for member in self.waiting_adds() {
            self.propose_buffered_add(now, &member);
        }
    }

    /// Key packages waiting for an add proposal: none is approved, and none was made this
    /// epoch (a rejected add is proposed again after the next epoch change, as long as the
    /// key package is buffered, not again and again within the epoch).
    fn waiting_adds(&self) -> Vec<MemberId> {
        let roster = self.roster();
        let this_epoch = |d: &ProposalDigest| {
            self.voting
                .as_ref()
                .is_some_and(|v| v.proposal(d).is_some())
        };
        self.key_packages
            .keys()
            .filter(|m| !roster.contains(m))
            .filter(|m| {
                !self.actions.iter().any(|(d, a)| {
                    matches!(a, ParsedAction::Add { member, .. } if member == *m)
                        && ((self.approved.contains(d) && !self.stale_unconfirmed(d))
                            || this_epoch(d))
                })
            })
            .cloned()
            .collect()
    }

    /// Whether this member has held decision `d` only on another member's word (see
    /// `Conversation::unconfirmed`) for [`UNCONFIRMED_PATIENCE`] epoch changes or more: an
    /// approved add so held no longer stops a fresh add of its member, which the members
    /// then decide themselves.
    pub(super) fn stale_unconfirmed(&self, d: &ProposalDigest) -> bool {
        self.unconfirmed
            .get(d)
            .is_some_and(|since| self.epoch_u64() >= since + UNCONFIRMED_PATIENCE)
    }

    /// How an honest member votes on a governance proposal it validated: YES, except a
    /// deadlock proposal while this member has nothing waiting to be committed.
    pub(super) fn governance_choice(&self, action: &ParsedAction) -> Choice {
        match action {
            ParsedAction::Deadlock if self.approved.is_empty() => Choice::No,
            _ => Choice::Yes,
        }
    }
}

/// `roster` with `removed` taken out and `added` put in, sorted.
pub(super) fn roster_after(
    roster: &[MemberId],
    added: &[MemberId],
    removed: &[MemberId],
) -> Vec<MemberId> {
    let mut after: Vec<MemberId> = roster
        .iter()
        .filter(|m| !removed.contains(m))
        .chain(added.iter())
        .cloned()
        .collect();
    after.sort();
    after.dedup();
    after
}

/// Negative-test and fault-injection builders (feature `test-utils`): what a Byzantine member
/// does and an honest one never would. Used by the integration tests and the simulator.
#[cfg(feature = "test-utils")]
impl Conversation {
    /// Builds and sends a commit candidate for exactly `batch`, whatever this member's role,
    /// and applies the round's choice as usual. Honest members refuse it unless it is valid.
    #[doc(hidden)]
    pub fn test_commit_batch(
        &mut self,
        now: Instant,
        batch: &[ProposalDigest],
    ) -> Result<(), Error> {
        let now = self.clock.advance(now);
        let mut batch = batch.to_vec();
        batch.sort();
        batch.dedup();
        self.try_build(now, &batch, false)?;
        self.consider_round(now);
        Ok(())
    }

    /// Forgets which proposals this member finalized (approved or rejected), keeping what it
    /// knows of them — as if it had missed their votes and the evidence.
    #[doc(hidden)]
    pub fn test_forget_decisions(&mut self) {
        self.approved.clear();
        self.rejected.clear();
    }

    /// Sets how this member misbehaves as a steward from now on.
    #[doc(hidden)]
    pub fn test_set_byzantine(&mut self, behaviour: Byzantine) {
        self.byzantine = behaviour;
    }

    /// The digests of proposals open (undecided) in the current epoch: a Byzantine steward
    /// commits one of them as if it were finalized.
    #[doc(hidden)]
    pub fn test_open_proposals(&self) -> Vec<ProposalDigest> {
        let Some(v) = self.voting.as_ref() else {
            return Vec::new();
        };
        self.actions
            .keys()
            .filter(|d| v.proposal(d).is_some() && v.decision(d).is_none())
            .copied()
            .collect()
    }

    /// The commit candidates this member holds in the current epoch: digest, committer and
    /// how many proposals each applies.
    #[doc(hidden)]
    pub fn test_candidates(&self) -> Vec<([u8; 32], MemberId, usize)> {
        self.round
            .candidates
            .iter()
            .map(|c| (c.digest, c.committer.clone(), c.batch.len()))
            .collect()
    }

    /// The batch an honest committer would apply now.
    #[doc(hidden)]
    pub fn test_commit_batch_now(&self) -> Vec<ProposalDigest> {
        self.commit_batch()
    }

    /// The proposals about `member` (adds, removals, leaves) among `batch`.
    #[doc(hidden)]
    pub fn test_proposals_about(
        &self,
        member: &MemberId,
        batch: &[ProposalDigest],
    ) -> Vec<ProposalDigest> {
        batch
            .iter()
            .filter(|d| self.actions.get(d).and_then(|a| a.subject()) == Some(member))
            .copied()
            .collect()
    }

    /// Builds two different commit candidates for the current epoch and returns the packets
    /// of each separately (an equivocating steward sends one to some peers, the other to the
    /// rest). This member keeps the second as its own candidate.
    #[doc(hidden)]
    pub fn test_equivocating_commits(
        &mut self,
        now: Instant,
    ) -> Result<(Vec<crate::Transmit>, Vec<crate::Transmit>), Error> {
        let now = self.clock.advance(now);
        let batch = self.commit_batch();
        if batch.is_empty() {
            return Err(Error::CommitMismatch("nothing to commit"));
        }
        let before = self.transmits.len();
        self.try_build(now, &batch, false)?;
        let first: Vec<crate::Transmit> = self.transmits.drain(before..).collect();
        self.round.candidates.retain(|c| c.committer != self.me);
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        group
            .clear_pending_commit(self.provider.storage())
            .map_err(mls_error)?;
        // A second commit of the same batch, with an update path (the first has none when
        // it only adds members): different bytes, equally valid.
        self.try_build(now, &batch, true)?;
        let second: Vec<crate::Transmit> = self.transmits.drain(before..).collect();
        Ok((first, second))
    }
}

#[cfg(feature = "test-utils")]
impl Conversation {
    /// Signs both a YES and a NO vote on `proposal` and returns the packets of each (a vote
    /// equivocator sends one to some peers, the other to the rest). This member counts YES.
    #[doc(hidden)]
    pub fn test_equivocating_votes(
        &mut self,
        now: Instant,
        proposal: ProposalDigest,
    ) -> Result<(Vec<crate::Transmit>, Vec<crate::Transmit>), Error> {
        let now = self.clock.advance(now);
        let unix = self.clock.unix_ms(now);
        let voting = self.voting.as_ref().ok_or(Error::NotAMember)?;
        let bytes = voting
            .snapshot()
            .map_err(|e| Error::Snapshot(e.to_string()))?;
        let mut twin = demls_consensus::VotingMachine::restore(
            voting.config().clone(),
            voting.roster().clone(),
            &bytes,
        )
        .map_err(|e| Error::Snapshot(e.to_string()))?;
        let no = twin.cast_vote(&self.signer, unix, proposal, Choice::No)?;
        let before = self.transmits.len();
        self.cast_vote(now, proposal, Choice::Yes)?;
        let yes: Vec<crate::Transmit> = self.transmits.drain(before..).collect();
        self.send_app(
            demls_wire::v1::app_content::Body::Voting(no.encode()),
            TrafficClass::Governance,
        )?;
        let no: Vec<crate::Transmit> = self.transmits.drain(before..).collect();
        Ok((yes, no))
    }
}
