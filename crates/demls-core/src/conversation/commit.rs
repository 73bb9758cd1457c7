//! Decisions into the approved set, the batch a commit applies, the validation of a received
//! commit against this member's finalized proposals and computed group parameters, and the
//! epoch change ("Single steward" steps 6–8, "Commit validation service"). The multi-steward
//! round around them is in `round.rs`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use demls_consensus::{Epoch, MemberId, Outcome, ProposalDigest, ProposalKind, VotingMachine};
use openmls::prelude::{KeyPackage, LeafNodeIndex, StagedCommit};
use openmls_traits::OpenMlsProvider as _;
use sha2::{Digest as _, Sha256};
use tls_codec::Serialize as _;

use super::round::roster_after;
use super::{
    group_state_of, roster_of, Conversation, Phase, KEY_PACKAGE_BUFFER_EPOCHS, MAX_PENDING_COMMITS,
};
use crate::error::Error;
use crate::event::{Event, ViolationKind};
use crate::governance::{self, ParsedAction};
use crate::timers::TimerKind;

impl Conversation {
    /// Moves voting-machine events into the conversation: opened proposals arm automatic
    /// votes, YES decisions join the approved set and start the steward's freeze window.
    /// Machines of past epochs ([`Conversation::retired`]) report too: their late YES
    /// decisions are approved unless the roster already made them moot.
    pub(super) fn drain_voting(&mut self, now: Instant) {
        let mut drained = false;
        loop {
            let mut events = Vec::new();
            if let Some(v) = self.voting.as_mut() {
                while let Some(e) = v.poll_event() {
                    events.push((None, e));
                }
            }
            let before = events.len();
            for (epoch, v) in &mut self.retired {
                while let Some(e) = v.poll_event() {
                    events.push((Some(*epoch), e));
                }
            }
            if events.len() > before {
                self.refresh_retired_digest();
            }
            if events.is_empty() {
                break;
            }
            for (retired, e) in events {
                self.on_voting_event(now, retired, e);
            }
            drained = true;
        }
        if drained && !self.held_voting.is_empty() {
            // A decision may have lifted a partial freeze, an opening may be awaited by votes.
            self.release_held_voting(now);
        }
    }

    fn on_voting_event(&mut self, now: Instant, retired: Option<u64>, e: demls_consensus::Event) {
        {
            match e {
                demls_consensus::Event::ProposalOpened {
                    proposal, creator, ..
                } => {
                    let Some(action) = self.actions.get(&proposal) else {
                        return;
                    };
                    self.events.push_back(Event::ProposalOpened {
                        proposal,
                        action: action.public(),
                        creator: creator.clone(),
                    });
                    if creator == self.me || retired.is_some() {
                        return;
                    }
                    // "Self-Removal": a leave whose creator is its target is voted YES at once.
                    let self_leave =
                        matches!(action, ParsedAction::Leave { member } if *member == creator);
                    if action.kind() != ProposalKind::Commit {
                        // Elections and emergency proposals were validated on arrival; the
                        // vote is the validation's verdict.
                        let choice = self.governance_choice(action);
                        let _ = self.cast_vote(now, proposal, choice);
                    } else if self_leave {
                        let _ = self.cast_vote(now, proposal, demls_consensus::Choice::Yes);
                    } else if let Some(auto) = self.config.auto_vote {
                        self.timers
                            .set(TimerKind::AutoVote(proposal), now + auto.after);
                    }
                }
                demls_consensus::Event::Decided { proposal, decision } => {
                    self.timers.stop(TimerKind::AutoVote(proposal));
                    let Some(action) = self.actions.get(&proposal) else {
                        return;
                    };
                    self.events.push_back(Event::ProposalDecided {
                        proposal,
                        action: action.public(),
                        decision,
                    });
                    let moot = retired.is_some_and(|epoch| match action {
                        ParsedAction::Add { member, .. }
                        | ParsedAction::Remove { member }
                        | ParsedAction::Leave { member }
                        | ParsedAction::RemoveBelowThreshold { target: member } => {
                            self.changed_since(epoch, member)
                        }
                        // An election or deadlock of a past epoch is stale.
                        ParsedAction::Elect { .. } | ParsedAction::Deadlock => true,
                    });
                    let action_kind = action.kind();
                    let emergency = action_kind == ProposalKind::Emergency;
                    let deadlock = matches!(action, ParsedAction::Deadlock);
                    let election = matches!(action, ParsedAction::Elect { .. });
                    let yes = decision.outcome == Outcome::Yes;
                    if moot {
                        return;
                    }
                    if yes || emergency {
                        if yes {
                            if action.is_removal()
                                && action.subject() == Some(&self.me)
                                && self.own_removal_since.is_none()
                            {
                                self.own_removal_since = Some(self.clock.unix_ms(now).0);
                            }
                            self.approved.insert(proposal);
                        } else {
                            // Recorded by the next commit: the creator's penalty.
                            self.rejected.insert(proposal);
                        }
                        let machine = match retired {
                            None => self.voting.as_ref(),
                            Some(epoch) => self.retired.get(&epoch),
                        };
                        if let Some(bundle) = machine.and_then(|v| v.bundle(&proposal)) {
                            self.evidence.insert(proposal, bundle.encode());
                        }
                    }
                    if yes && deadlock && !self.recovery {
                        // Layer 3: recovery mode, and "members MUST enter the freezing
                        // phase immediately, bypassing the inactivity timer".
                        self.recovery = true;
                        self.events.push_back(Event::RecoveryStarted);
                        self.on_freeze_closed(now);
                    } else if yes && emergency {
                        if self.round.started.is_none() {
                            self.on_freeze_closed(now);
                        }
                    } else if yes && election && self.round.started.is_some() {
                        // A re-election finalized while the round runs: "the new steward list
                        // is installed and Layer 1 is applied again" — the rotation restarts
                        // with the elected list, whose stewards commit it.
                        self.on_freeze_closed(now);
                    } else if yes {
                        self.arm_freeze(now);
                    } else if deadlock && retired.is_none() {
                        self.leave_again_after_failed_deadlock(now);
                    } else if election && retired.is_none() {
                        // A failed election: the next retry round ("Layer 2").
                        let max = self
                            .gov
                            .as_ref()
                            .map_or(0, |g| g.config.max_reelection_attempts);
                        if self.round.reelections < max {
                            self.round.reelections += 1;
                        } else {
                            self.round.deadlock_due = true;
                        }
                    }
                    // A decided governance proposal may lift a partial freeze, and end a wait
                    // to commit.
                    self.schedule_duties(now);
                    if retired.is_none() && action_kind != ProposalKind::Commit {
                        self.resume_deferred_commit(now);
                    }
                }
                demls_consensus::Event::Revised {
                    proposal, decision, ..
                } => {
                    // A deadline decision replaced by evidence of a final early one: undo what
                    // the deadline outcome did, then act on the final outcome.
                    if let Some(epoch) = retired {
                        self.restore_action(epoch, &proposal);
                    }
                    self.approved.remove(&proposal);
                    self.rejected.remove(&proposal);
                    self.evidence.remove(&proposal);
                    let mark = self.events.len();
                    self.on_voting_event(
                        now,
                        retired,
                        demls_consensus::Event::Decided { proposal, decision },
                    );
                    // Reported as a revision, not as a second decision.
                    for e in self.events.range_mut(mark..) {
                        if let Event::ProposalDecided {
                            proposal: p,
                            action,
                            decision,
                        } = e
                        {
                            if *p == proposal {
                                *e = Event::ProposalRevised {
                                    proposal,
                                    action: action.clone(),
                                    decision: *decision,
                                };
                                break;
                            }
                        }
                    }
                }
                demls_consensus::Event::Equivocation(e) => {
                    self.events.push_back(Event::Equivocation(e));
                }
                demls_consensus::Event::Abandoned { .. } => {}
            }
        }
    }

    /// A deadlock proposal finalized NO while this member holds its own removal approved: the
    /// members that voted NO hold no approval at all ([`Conversation::governance_choice`]),
    /// so they do not know of the removal and nobody that may commit will apply it — and a
    /// member never commits its own removal ("Self-Removal"). The members that decided it
    /// may all have left since, and the ones that joined since never heard of it. So this
    /// member opens a leave, which every honest member approves at once (the simulator:
    /// `demls-sim --generated 196138652130102 --mode liveness`, a steward whose leave was
    /// approved in an epoch whose members had all left but one, waiting for minutes).
    fn leave_again_after_failed_deadlock(&mut self, now: Instant) {
        let own_removal_held = self.approved.iter().any(|d| self.is_own_removal(d));
        if own_removal_held && self.roster().len() > 1 {
            self.open_own_leave(now, "after a failed deadlock proposal");
        }
    }

    /// Whether `d` removes this member (a removal, its leave, a removal for a low score).
    pub(super) fn is_own_removal(&self, d: &ProposalDigest) -> bool {
        self.actions
            .get(d)
            .is_some_and(|a| a.is_removal() && a.subject() == Some(&self.me))
    }

    /// Opens a leave of this member, for a removal of it the others do not know of. A
    /// refusal (a partial freeze) is only logged: the next trigger opens it again.
    fn open_own_leave(&mut self, now: Instant, why: &'static str) {
        let leave = ParsedAction::Leave {
            member: self.me.clone(),
        };
        if let Err(e) = self.open_proposal(now, leave) {
            tracing::debug!(error = %e, why, "could not open a leave");
        }
    }

    /// Brings back the parsed action of a proposal of retired `epoch` whose deadline decision
    /// a bundle revised. The epoch change forgot the actions of proposals decided NO then
    /// (nothing more was expected of them), but the votes a later commit's evidence brings
    /// can still turn such a deadline NO into a final YES (`VotingMachine::handle_bundle`):
    /// without its action the revision was dropped, the commit that carried the proposal
    /// stayed unjustified here, and this member stayed an epoch behind for good (the
    /// simulator: `demls-sim --generated 16370222585020 --mode liveness`). The proposal was
    /// validated when it opened; its payload is only decoded again.
    fn restore_action(&mut self, epoch: u64, proposal: &ProposalDigest) {
        if self.actions.contains_key(proposal) {
            return;
        }
        let Some(p) = self.retired.get(&epoch).and_then(|v| v.proposal(proposal)) else {
            return;
        };
        match governance::decode(self.provider.crypto(), &p.payload, &self.limits, None) {
            Ok(action) => {
                self.actions.insert(*proposal, action);
            }
            Err(e) => tracing::warn!(error = %e, "revised proposal no longer decodes"),
        }
    }

    /// The proposals one commit applies, ascending by digest: every approved add up to the
    /// batch cap (one per joiner), at most one removal (openmls orders several member
    /// removals through a hash map, so one per commit keeps commits deterministic), at most
    /// one steward election and one deadlock proposal, and every emergency proposal finalized
    /// NO (their creators' penalty). A committer never commits its own removal
    /// ("Self-Removal"), nor, under acknowledgement rounds, a decision it holds only on
    /// another member's word (`unconfirmed`).
    pub(super) fn commit_batch(&self) -> Vec<ProposalDigest> {
        let mut batch = Vec::new();
        let (mut removal, mut election, mut deadlock) = (false, false, false);
        let mut joiners: Vec<&MemberId> = Vec::new();
        // Emergency removals first: "only after being finalized with a YES outcome, MUST be
        // included in the subsequent commit".
        let emergency = |d: &&ProposalDigest| {
            matches!(
                self.actions.get(*d),
                Some(ParsedAction::RemoveBelowThreshold { .. })
            )
        };
        // Then removals of the rotation's stewards, in rotation order: a steward pending
        // removal may not commit, and the commit that removes it takes its slot penalty with
        // its score ("MUST NOT be penalized for omitting its own removal"; the penalty
        // follows the rotation every member computes, which still lists it).
        let walk = self.walk_of_batch(&[]);
        let steward_removal = |d: &ProposalDigest| -> Option<usize> {
            let action = self.actions.get(d)?;
            if !action.is_removal() {
                return None;
            }
            walk.iter().position(|s| Some(s) == action.subject())
        };
        let mut stewards_out: Vec<(usize, &ProposalDigest)> = self
            .approved
            .iter()
            .filter(|d| !emergency(d))
            .filter_map(|d| steward_removal(d).map(|k| (k, d)))
            .collect();
        stewards_out.sort();
        let order = self
            .approved
            .iter()
            .filter(emergency)
            .chain(stewards_out.iter().map(|(_, d)| *d))
            .chain(
                self.approved
                    .iter()
                    .filter(|d| !emergency(d) && steward_removal(d).is_none()),
            )
            .chain(self.rejected.iter());
        for d in order {
            if batch.len() >= self.config.max_commit_batch {
                break;
            }
            let Some(action) = self.actions.get(d) else {
                continue;
            };
            if self.needs_acks() && self.unconfirmed.contains_key(d) {
                continue;
            }
            if self.rejected.contains(d) {
                batch.push(*d);
                continue;
            }
            #[cfg(feature = "test-utils")]
            if self.byzantine.censor.is_some() && action.subject() == self.byzantine.censor.as_ref()
            {
                continue;
            }
            match action {
                ParsedAction::Add { member, .. } => {
                    if joiners.contains(&member) {
                        continue;
                    }
                    joiners.push(member);
                }
                ParsedAction::Elect { .. } if election => continue,
                ParsedAction::Elect { .. } => election = true,
                ParsedAction::Deadlock if deadlock => continue,
                ParsedAction::Deadlock => deadlock = true,
                a if a.is_removal() => {
                    if removal || a.subject() == Some(&self.me) {
                        continue;
                    }
                    removal = true;
                }
                _ => {}
            }
            batch.push(*d);
        }
        batch.sort();
        batch
    }

    /// The MLS changes a batch of approved proposals makes: key packages to add, leaves to
    /// remove, and the member ids of both.
    #[allow(clippy::type_complexity)]
    pub(super) fn changes_of(
        &self,
        batch: &[ProposalDigest],
    ) -> Result<
        (
            Vec<KeyPackage>,
            Vec<LeafNodeIndex>,
            Vec<MemberId>,
            Vec<MemberId>,
        ),
        Error,
    > {
        let (mut adds, mut removals, mut added, mut removed) = (vec![], vec![], vec![], vec![]);
        for d in batch {
            match &self.actions[d] {
                ParsedAction::Add {
                    member,
                    key_package,
                } => {
                    adds.push((**key_package).clone());
                    added.push(member.clone());
                }
                ParsedAction::Remove { member }
                | ParsedAction::Leave { member }
                | ParsedAction::RemoveBelowThreshold { target: member } => {
                    if self.rejected.contains(d) {
                        continue; // finalized NO: recorded, not applied
                    }
                    removals.push(self.leaf_of(member)?);
                    removed.push(member.clone());
                }
                ParsedAction::Elect { .. } | ParsedAction::Deadlock => {}
            }
        }
        Ok((adds, removals, added, removed))
    }

    /// The signed proposal `d`, from this epoch's voting machine or a retired one.
    pub(super) fn signed_proposal(
        &self,
        d: &ProposalDigest,
    ) -> Option<demls_consensus::SignedProposal> {
        self.voting
            .iter()
            .chain(self.retired.values())
            .find_map(|v| v.proposal(d))
            .cloned()
    }

    pub(super) fn leaf_of(&self, member: &MemberId) -> Result<LeafNodeIndex, Error> {
        let group = self.group()?;
        group
            .members()
            .find(|m| {
                governance::member_of_credential(&m.credential)
                    .ok()
                    .as_ref()
                    == Some(member)
            })
            .map(|m| m.index)
            .ok_or_else(|| Error::UnknownMember(member.clone()))
    }

    /// A commit received from the conversation channel ("Commit validation service"): its
    /// committer must be in this epoch's rotation (any member in recovery mode), every
    /// proposal it references finalized here — otherwise it waits for the decisions — its
    /// MLS changes exactly those of the proposals and its group parameters exactly the ones
    /// this member computes. A valid commit becomes a candidate of the round.
    ///
    /// A commit that ⌈2n/3⌉ members acknowledged in one round is justified by that quorum
    /// certificate, whatever this member finalized itself (it may have missed votes or whole
    /// proposals, or decided differently at its deadline): every acknowledgement is a
    /// member's signed statement that the commit passed this validation against its own
    /// decisions, and with fewer than n/3 Byzantine members at least one of them is honest
    /// (docs/protocol.md §9, "Certified commits"). Without it such a member waited for
    /// decisions that never came and stayed behind for good.
    pub(super) fn on_commit(
        &mut self,
        now: Instant,
        sender: MemberId,
        aad: &[u8],
        staged: StagedCommit,
        raw: Vec<u8>,
    ) -> Result<(), Error> {
        let digest: [u8; 32] = Sha256::digest(&raw).into();
        let certified = self.quorum_acked(&digest, &sender);
        let may_commit = certified || self.may_commit(&sender);
        if !may_commit && !self.may_commit_later(&sender) && !self.in_rotation(&sender) {
            return Err(Error::NotFromSteward(sender));
        }
        let authority = demls_wire::decode_commit_authority(aad, &self.limits)?;
        let batch: Vec<ProposalDigest> = authority
            .proposal_digests
            .iter()
            .map(|d| ProposalDigest(d.as_slice().try_into().expect("checked by the wire")))
            .collect();
        let justified = |d: &ProposalDigest| self.approved.contains(d) || self.rejected.contains(d);
        if !may_commit || !(certified || batch.iter().all(justified)) {
            // Not justified here (yet): keep it until the proposals are finalized locally.
            if self.pending_commits.iter().any(|(_, r)| *r == raw) {
                return Ok(());
            }
            if self.pending_commits.len() >= MAX_PENDING_COMMITS {
                return Err(Error::CommitMismatch(
                    "references proposals not finalized here",
                ));
            }
            // A proposal it applies that this member decided NO: the evidence may settle it
            // (`share_evidence`). Only once the commit is kept: a refused one changes nothing.
            if may_commit {
                let contested: Vec<ProposalDigest> =
                    batch.iter().filter(|d| !justified(d)).copied().collect();
                for d in contested {
                    self.share_evidence(&d);
                }
            }
            self.pending_commits.push((sender, raw));
            return Ok(());
        }
        if certified {
            // The quorum's honest members checked it against their decisions (this member's
            // own may differ: one decided at its deadline, or never reached).
            tracing::debug!("commit justified by its quorum certificate");
        } else if let Err(e) = self.check_commit(&sender, &batch, &staged) {
            self.report_violation(sender, ViolationKind::BrokenCommit);
            return Err(e);
        }
        self.add_candidate(now, sender, raw, batch, staged, authority.ack_round);
        Ok(())
    }

    /// The commit's changes and group parameters against the justified `batch`.
    fn check_commit(
        &self,
        sender: &MemberId,
        batch: &[ProposalDigest],
        staged: &StagedCommit,
    ) -> Result<(), Error> {
        let (adds, removals, added, removed) = self.changes_of(batch)?;
        let kp_bytes = |kp: &KeyPackage| kp.tls_serialize_detached().unwrap_or_default();
        let mut expected_adds: Vec<Vec<u8>> = adds.iter().map(kp_bytes).collect();
        let mut actual_adds: Vec<Vec<u8>> = staged
            .add_proposals()
            .map(|p| kp_bytes(p.add_proposal().key_package()))
            .collect();
        expected_adds.sort();
        actual_adds.sort();
        let mut expected_removals: Vec<u32> = removals.iter().map(|l| l.u32()).collect();
        let mut actual_removals: Vec<u32> = staged
            .remove_proposals()
            .map(|p| p.remove_proposal().removed().u32())
            .collect();
        expected_removals.sort_unstable();
        actual_removals.sort_unstable();
        if expected_adds != actual_adds {
            return Err(Error::CommitMismatch(
                "added members differ from the proposals",
            ));
        }
        if expected_removals != actual_removals {
            return Err(Error::CommitMismatch(
                "removed members differ from the proposals",
            ));
        }
        let roster_after = roster_after(&self.roster(), &added, &removed);
        let expected = self.next_state(sender, batch, &roster_after)?;
        let extensions = staged.group_context().extensions();
        let params = group_state_of(extensions, &roster_after, &self.limits);
        if params.ok().as_ref() != Some(&expected) {
            return Err(Error::CommitMismatch(
                "group parameters differ from the ones the proposals imply",
            ));
        }
        let gce = usize::from(self.gov.as_ref() != Some(&expected));
        if staged.queued_proposals().count() > adds.len() + removals.len() + gce {
            return Err(Error::CommitMismatch("commit carries unvoted proposals"));
        }
        Ok(())
    }

    /// Whether a commit since `epoch` added or removed `member`: a proposal of `epoch`
    /// about it is then moot, whatever the roster says now — an add's key package was used
    /// (the member may have been removed again since), a removal happened (the member may be
    /// back under a new key package). Every member that applied the same commits answers
    /// alike, whichever epoch it decides the proposal in (the simulator:
    /// `demls-sim --generated 278806007258121 --mode liveness`, an add decided after its
    /// member joined and left again, committed by the steward and refused by the members
    /// that had decided it while the member was in).
    pub(super) fn changed_since(&self, epoch: u64, member: &MemberId) -> bool {
        self.membership_changes
            .range(epoch + 1..)
            .any(|(_, members)| members.binary_search(member).is_ok())
    }

    /// Re-examines commits that were waiting for their proposals to be finalized here.
    pub(super) fn retry_pending_commits(&mut self, now: Instant) {
        if self.pending_commits.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending_commits);
        for (_, raw) in pending {
            if self.phase != Phase::Member {
                break;
            }
            // A still-unjustified commit goes back into the pending list.
            if let Err(e) = self.on_mls_message(now, raw) {
                tracing::warn!(error = %e, "pending commit refused");
            }
        }
    }

    pub(super) fn close(&mut self) {
        self.phase = Phase::Closed;
        self.voting = None;
        self.retired.clear();
        self.refresh_retired_digest();
        self.membership_changes.clear();
        self.held_voting.clear();
        self.actions.clear();
        self.approved.clear();
        self.evidence.clear();
        self.pending_commits.clear();
        self.future.clear();
        self.round = Default::default();
        self.catch_up.clear();
        self.rejected.clear();
        self.unconfirmed.clear();
        self.recovery = false;
        self.timers = Default::default();
        self.events.push_back(Event::Closed);
    }

    /// After a commit was merged: new roster and voting epoch; committed proposals leave the
    /// approved set, approved ones still applicable stay for the next commit ("All members
    /// MUST maintain a local store of finalized voting proposals"); key package buffer
    /// maintenance; buffered messages of the new epoch replayed.
    pub(super) fn on_epoch_change(
        &mut self,
        now: Instant,
        committed: &[ProposalDigest],
        added: Vec<MemberId>,
        removed: Vec<MemberId>,
    ) {
        let group = self.group.as_ref().expect("merged into a group");
        let epoch = Epoch(group.epoch().as_u64());
        let previous_stewards = self.stewards().to_vec();
        let new_roster = roster_of(group);
        match new_roster {
            Ok(roster) => {
                // Proposals still open stay open in the retired machine of their epoch: late
                // votes and a later commit's evidence can still finalize them.
                if let Some(old) = self.voting.take() {
                    let config = old.config().clone();
                    self.retired.insert(old.epoch().0, old);
                    while self.retired.len() > super::RETIRED_VOTING_EPOCHS {
                        self.retired.pop_first();
                    }
                    self.refresh_retired_digest();
                    let oldest = self.retired.keys().next().copied().unwrap_or(epoch.0);
                    let mut changed: Vec<MemberId> =
                        added.iter().chain(&removed).cloned().collect();
                    changed.sort();
                    self.membership_changes.insert(epoch.0, changed);
                    self.membership_changes.retain(|e, _| *e > oldest);
                    // Held messages about proposals of an epoch no machine covers any more
                    // can never count.
                    let limits = self.limits;
                    self.held_voting.retain(|(_, bytes)| {
                        use demls_consensus::VotingMessage as M;
                        let scope = match M::decode(bytes, &limits) {
                            Ok(M::Vote(v)) => Some(v.epoch),
                            Ok(M::Proposal(p)) => Some(p.header.epoch),
                            Ok(M::Bundle(b)) => b.proposal.map(|p| p.header.epoch),
                            Err(_) => None,
                        };
                        scope.is_some_and(|e| e.0 >= oldest)
                    });
                    self.voting = Some(VotingMachine::new(config, epoch, roster));
                }
            }
            Err(e) => tracing::error!(error = %e, "roster of the new epoch is invalid"),
        }
        // The merged commit's group parameters were checked against the roster before it was
        // applied (or computed by this member, for its own commit).
        let members = self.roster();
        let group = self.group.as_ref().expect("merged into a group");
        match group_state_of(group.extensions(), &members, &self.limits) {
            Ok(gov) => self.gov = Some(gov),
            Err(e) => tracing::error!(error = %e, "group parameters of the new epoch are invalid"),
        }
        if self.stewards() != previous_stewards.as_slice() {
            self.events.push_back(Event::StewardsChanged {
                stewards: self.stewards().to_vec(),
            });
        }
        // Pending commits of the finished epoch were never justified here.
        for (sender, _) in std::mem::take(&mut self.pending_commits) {
            self.report_violation(sender, ViolationKind::NonFinalized);
        }
        self.recovery = false;
        self.round = Default::default();

        for t in [
            TimerKind::FreezeWindow,
            TimerKind::CommitSlot,
            TimerKind::CandidateWindow,
            TimerKind::Escalation,
            TimerKind::Duties,
        ] {
            self.timers.stop(t);
        }
        self.drain_voting(now);
        let roster = self.roster();
        let carried: BTreeSet<ProposalDigest> = self
            .approved
            .iter()
            .filter(|d| !committed.contains(d))
            .filter(|d| match &self.actions[*d] {
                ParsedAction::Add { member, .. } => !roster.contains(member),
                ParsedAction::Remove { member }
                | ParsedAction::Leave { member }
                | ParsedAction::RemoveBelowThreshold { target: member } => roster.contains(member),
                // An election lists stewards from the epoch after the one it was held in; a
                // deadlock ends with any commit.
                ParsedAction::Elect { .. } | ParsedAction::Deadlock => false,
            })
            .copied()
            .collect();
        // "Self-Removal" never commits its own removal, so a member that held its own
        // removal approved for a commit round (freeze window and candidate window) before a
        // commit that removed nobody, and not in it, opens a leave: that committer did not know
        // of the approval — made in an epoch before some current members joined, or decided
        // late, at the deadline, by this member alone — and a leave is approved by every
        // honest member at once (the simulator: `demls-sim --generated 247066367802075
        // --mode liveness`, a removal decided only by its target, never committed). A commit
        // that removed someone may have deferred it (one removal per commit), and one that
        // came within a round of the approval may have been built before the committer
        // decided it.
        let own_removal_held = carried.iter().any(|d| self.is_own_removal(d));
        let now_ms = self.clock.unix_ms(now).0;
        let round_ms = (self.config.freeze_window
            + self
                .gov
                .as_ref()
                .map_or(Duration::ZERO, |g| g.config.candidate_window))
        .as_millis() as u64;
        let removed_nobody = removed.is_empty();
        let own_removal_unknown = removed_nobody
            && roster.len() > 1
            && own_removal_held
            && self
                .own_removal_since
                .is_some_and(|since| now_ms >= since.saturating_add(round_ms));
        self.own_removal_since = match (own_removal_held, self.own_removal_since) {
            (false, _) => None,
            (true, Some(since)) if !own_removal_unknown => Some(since),
            (true, _) => Some(now_ms), // from now on (again, after opening the leave)
        };
        self.rejected.retain(|d| !committed.contains(d));
        let rejected = &self.rejected;
        let retired = &self.retired;
        self.actions.retain(|d, _| {
            carried.contains(d) || rejected.contains(d) || open_in_retired(retired, d)
        });
        self.evidence
            .retain(|d, _| carried.contains(d) || rejected.contains(d));
        let actions = &self.actions;
        self.creators.retain(|d, _| actions.contains_key(d));
        self.approved = carried;
        let (approved, rejected) = (&self.approved, &self.rejected);
        self.unconfirmed
            .retain(|d, _| approved.contains(d) || rejected.contains(d));
        if roster.len() == 1 {
            // Alone, nobody is left to vouch for a decision this member took on another's
            // word, and nobody is left to mislead: it becomes its own (an add a joiner got
            // from its welcome waited for ever: `demls-sim --generated 16252718331880
            // --mode liveness`).
            self.unconfirmed.clear();
        }
        if !self.approved.is_empty() {
            self.arm_freeze(now);
        }
        // Automatic votes stay armed for proposals still open in a retired machine.
        let retired = &self.retired;
        self.timers.retain(|k| match k {
            TimerKind::AutoVote(d) => open_in_retired(retired, d),
            _ => true,
        });
        for m in &added {
            self.key_packages.remove(m);
        }
        self.expire_welcome(epoch.0);
        self.key_packages
            .retain(|_, kp| epoch.0 < kp.seen_at_epoch + KEY_PACKAGE_BUFFER_EPOCHS);
        self.events.push_back(Event::EpochChanged {
            epoch,
            added,
            removed,
        });
        self.replay_buffered(now);
        // The new epoch has no open emergency: proposals held by a partial freeze go in.
        if self.phase == Phase::Member && self.epoch() == Some(epoch) {
            self.release_held_voting(now);
        }
        if self.phase == Phase::Member && self.epoch() == Some(epoch) && own_removal_unknown {
            self.open_own_leave(now, "for a removal a commit passed by");
        }
        if self.phase == Phase::Member && self.epoch() == Some(epoch) {
            // A removal of another member this member proposed and approved, that nobody
            // else voted on and this commit passed by: proposed again, for the group to vote
            // on (`stranded_own_removals`). Waiting for such a commit tells a removal nobody
            // heard from one the others let pass in silence (silent voters count as YES),
            // which the next commit applies. The commit passed it by if it removed nobody,
            // or came a commit round after the voting deadline, when a committer that held
            // it would have applied it (waiting for a commit that removes nobody left it
            // stranded while every commit removed someone, until its creator was removed:
            // `demls-sim --generated 161107420471090 --mode liveness --byzantine-mix any`).
            // A false alarm only opens a duplicate removal, moot once one is committed.
            let stranded = self.stranded_own_removals();
            for (action, deadline) in stranded {
                let passed_by = removed_nobody || now_ms >= deadline.saturating_add(round_ms);
                if passed_by && matches!(action, ParsedAction::Remove { .. }) {
                    if let Err(e) = self.open_proposal(now, action) {
                        tracing::debug!(error = %e, "could not propose a stranded removal again");
                    }
                }
            }
        }
        if self.phase == Phase::Member && self.epoch() == Some(epoch) {
            // Elections, emergency proposals and adds for waiting key packages now due.
            self.schedule_duties(now);
        }
    }
}

/// Negative-test builders (feature `test-utils`): produce what an honest member never would.
#[cfg(feature = "test-utils")]
impl Conversation {
    /// Commits the approved proposals now, as if this member were the steward. Honest
    /// members reject the result unless this member really is a steward.
    #[doc(hidden)]
    pub fn test_commit_unchecked(&mut self, now: Instant) -> Result<(), Error> {
        let now = self.clock.advance(now);
        let batch = self.commit_batch();
        self.test_commit_batch(now, &batch)
    }
}

/// Whether proposal `d` is open (known, undecided) in one of the `retired` voting machines:
/// its epoch ended, but votes in flight can still decide it there.
pub(super) fn open_in_retired(
    retired: &std::collections::BTreeMap<u64, VotingMachine>,
    d: &ProposalDigest,
) -> bool {
    retired
        .values()
        .any(|v| v.proposal(d).is_some() && v.decision(d).is_none())
}
