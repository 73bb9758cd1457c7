//! The commit round: after the freeze window the steward turns approved proposals into one MLS
//! commit (+ welcome); every member validates a commit against its own finalized proposals
//! before applying it ("Single steward" steps 6–8, "Commit validation service").

use std::collections::BTreeSet;
use std::time::Instant;

use demls_consensus::{Epoch, MemberId, Outcome, ProposalDigest, VotingMachine};
use demls_wire::v1;
use openmls::prelude::{KeyPackage, LeafNodeIndex, StagedCommit};
use openmls_traits::OpenMlsProvider;
use prost::Message;
use tls_codec::Serialize as _;

use super::{
    mls_error, roster_of, Conversation, Phase, KEY_PACKAGE_BUFFER_EPOCHS, MAX_PENDING_COMMITS,
};
use crate::error::Error;
use crate::event::Event;
use crate::governance::{self, ParsedAction};
use crate::timers::TimerKind;
use crate::transmit::{Channel, TrafficClass};

impl Conversation {
    /// Moves voting-machine events into the conversation: opened proposals arm automatic
    /// votes, YES decisions join the approved set and start the steward's freeze window.
    /// Machines of past epochs ([`Conversation::retired`]) report too: their late YES
    /// decisions are approved unless the roster already made them moot.
    pub(super) fn drain_voting(&mut self, now: Instant) {
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
                return;
            }
            for (retired, e) in events {
                self.on_voting_event(now, retired, e);
            }
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
                    if self_leave {
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
                    let moot = retired.is_some() && {
                        let roster = self.roster();
                        match action {
                            ParsedAction::Add { member, .. } => roster.contains(member),
                            ParsedAction::Remove { member } | ParsedAction::Leave { member } => {
                                !roster.contains(member)
                            }
                        }
                    };
                    if decision.outcome == Outcome::Yes && !moot {
                        self.approved.insert(proposal);
                        let machine = match retired {
                            None => self.voting.as_ref(),
                            Some(epoch) => self.retired.get(&epoch),
                        };
                        if let Some(bundle) = machine.and_then(|v| v.bundle(&proposal)) {
                            self.evidence.insert(proposal, bundle.encode());
                        }
                        if self.is_steward() && !self.timers.is_set(TimerKind::FreezeWindow) {
                            self.timers
                                .set(TimerKind::FreezeWindow, now + self.config.freeze_window);
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

    /// The approved proposals one commit applies: ascending by digest, every add up to the
    /// batch cap, and at most one removal (openmls orders several member removals through a
    /// hash map, so one per commit keeps commits deterministic). A steward never commits its
    /// own removal ("Self-Removal").
    fn commit_batch(&self) -> Vec<ProposalDigest> {
        let mut batch = Vec::new();
        let mut removal = false;
        for d in &self.approved {
            if batch.len() >= self.config.max_commit_batch {
                break;
            }
            let action = &self.actions[d];
            if action.is_removal() {
                if removal || *action.member() == self.me {
                    continue;
                }
                removal = true;
            }
            batch.push(*d);
        }
        batch
    }

    /// The steward's commit at the end of the freeze window.
    pub(super) fn commit_approved(&mut self, now: Instant) {
        if self.phase != Phase::Member || !self.is_steward() {
            return;
        }
        let batch = self.commit_batch();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.try_commit(now, &batch) {
            tracing::error!(error = %e, "steward failed to build its commit");
        }
    }

    fn try_commit(&mut self, now: Instant, batch: &[ProposalDigest]) -> Result<(), Error> {
        // The evidence first: members that missed votes can justify the commit from it. The
        // evidence of a proposal carried over from an earlier epoch is checked by receivers
        // against their machine of that epoch (`retired`).
        for d in batch {
            if let Some(bundle) = self.evidence.get(d).cloned() {
                self.send_app(
                    v1::app_content::Body::Voting(bundle),
                    TrafficClass::Governance,
                )?;
            }
        }
        // Approvals this commit leaves for later: joiners cannot have their votes.
        let carried_approvals: Vec<Vec<u8>> = self
            .approved
            .iter()
            .filter(|d| !batch.contains(d))
            .filter_map(|d| self.signed_proposal(d))
            .map(|p| demls_consensus::VotingMessage::Proposal(p).encode())
            .collect();
        let (adds, removals, added, removed) = self.changes_of(batch)?;
        let authority = v1::CommitAuthority {
            proposal_digests: batch.iter().map(|d| d.0.to_vec()).collect(),
        };
        self.provider.prepare_operation();
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        group.set_aad(authority.encode_to_vec());
        let bundle = group
            .commit_builder()
            .propose_adds(adds)
            .propose_removals(removals)
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
            .map_err(mls_error)?;
        let (commit, welcome, _) = bundle.into_messages();
        let commit = commit.tls_serialize_detached().map_err(mls_error)?;
        let packet = self.packet(v1::packet::Body::MlsMessage(commit));
        self.transmit(Channel::Conversation, TrafficClass::Handshake, packet)?;
        if let Some(welcome) = welcome {
            let welcome = welcome.tls_serialize_detached().map_err(mls_error)?;
            let packet = self.packet(v1::packet::Body::Welcome(v1::WelcomeMessage {
                welcome,
                carried_approvals,
            }));
            self.transmit(Channel::Welcome, TrafficClass::Handshake, packet)?;
        }
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        group
            .merge_pending_commit(&self.provider)
            .map_err(mls_error)?;
        self.on_epoch_change(now, batch, added, removed);
        Ok(())
    }

    /// The MLS changes a batch of approved proposals makes: key packages to add, leaves to
    /// remove, and the member ids of both.
    #[allow(clippy::type_complexity)]
    fn changes_of(
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
                ParsedAction::Remove { member } | ParsedAction::Leave { member } => {
                    removals.push(self.leaf_of(member)?);
                    removed.push(member.clone());
                }
            }
        }
        Ok((adds, removals, added, removed))
    }

    /// The signed proposal `d`, from this epoch's voting machine or a retired one.
    fn signed_proposal(&self, d: &ProposalDigest) -> Option<demls_consensus::SignedProposal> {
        self.voting
            .iter()
            .chain(self.retired.values())
            .find_map(|v| v.proposal(d))
            .cloned()
    }

    fn leaf_of(&self, member: &MemberId) -> Result<LeafNodeIndex, Error> {
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

    /// A commit received from the conversation channel ("Commit validation service").
    pub(super) fn on_commit(
        &mut self,
        now: Instant,
        sender: MemberId,
        aad: &[u8],
        staged: StagedCommit,
        raw: Vec<u8>,
    ) -> Result<(), Error> {
        if !self.stewards.contains(&sender) {
            return Err(Error::NotFromSteward(sender));
        }
        let authority = demls_wire::decode_commit_authority(aad, &self.limits)?;
        let batch: Vec<ProposalDigest> = authority
            .proposal_digests
            .iter()
            .map(|d| ProposalDigest(d.as_slice().try_into().expect("checked by the wire")))
            .collect();
        if batch.iter().any(|d| !self.approved.contains(d)) {
            // Not justified here (yet): keep it until the proposals are finalized locally.
            if self.pending_commits.contains(&raw) {
                return Ok(());
            }
            if self.pending_commits.len() >= MAX_PENDING_COMMITS {
                return Err(Error::CommitMismatch(
                    "references proposals not finalized here",
                ));
            }
            self.pending_commits.push(raw);
            return Ok(());
        }
        let (adds, removals, added, removed) = self.changes_of(&batch)?;
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
        if staged.queued_proposals().count() != adds.len() + removals.len() {
            return Err(Error::CommitMismatch("commit carries unvoted proposals"));
        }
        let self_removed = staged.self_removed();
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        group
            .merge_staged_commit(&self.provider, staged)
            .map_err(mls_error)?;
        if self_removed {
            self.close();
            return Ok(());
        }
        self.on_epoch_change(now, &batch, added, removed);
        Ok(())
    }

    /// Re-examines commits that were waiting for their proposals to be finalized here.
    pub(super) fn retry_pending_commits(&mut self, now: Instant) {
        if self.pending_commits.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending_commits);
        for raw in pending {
            if self.phase != Phase::Member {
                break;
            }
            // A still-unjustified commit goes back into the pending list.
            if let Err(e) = self.on_mls_message(now, raw) {
                tracing::warn!(error = %e, "pending commit refused");
            }
        }
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.voting = None;
        self.retired.clear();
        self.refresh_retired_digest();
        self.orphan_votes.clear();
        self.actions.clear();
        self.approved.clear();
        self.evidence.clear();
        self.pending_commits.clear();
        self.future.clear();
        self.timers = Default::default();
        self.events.push_back(Event::Closed);
    }

    /// After a commit was merged: new roster and voting epoch; committed proposals leave the
    /// approved set, approved ones still applicable stay for the next commit ("All members
    /// MUST maintain a local store of finalized voting proposals"); key package buffer
    /// maintenance; buffered messages of the new epoch replayed.
    fn on_epoch_change(
        &mut self,
        now: Instant,
        committed: &[ProposalDigest],
        added: Vec<MemberId>,
        removed: Vec<MemberId>,
    ) {
        let group = self.group.as_ref().expect("merged into a group");
        let epoch = Epoch(group.epoch().as_u64());
        match roster_of(group) {
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
                    // Votes waiting for a proposal of an epoch no machine covers any more
                    // can never count.
                    let oldest = self.retired.keys().next().copied().unwrap_or(epoch.0);
                    let limits = self.limits;
                    self.orphan_votes.retain(|(_, bytes)| {
                        matches!(
                            demls_consensus::VotingMessage::decode(bytes, &limits),
                            Ok(demls_consensus::VotingMessage::Vote(v)) if v.epoch.0 >= oldest
                        )
                    });
                    self.voting = Some(VotingMachine::new(config, epoch, roster));
                }
            }
            Err(e) => tracing::error!(error = %e, "roster of the new epoch is invalid"),
        }
        self.drain_voting(now);
        let roster = self.roster();
        let carried: BTreeSet<ProposalDigest> = self
            .approved
            .iter()
            .filter(|d| !committed.contains(d))
            .filter(|d| match &self.actions[*d] {
                ParsedAction::Add { member, .. } => !roster.contains(member),
                ParsedAction::Remove { member } | ParsedAction::Leave { member } => {
                    roster.contains(member)
                }
            })
            .copied()
            .collect();
        let retired = &self.retired;
        self.actions.retain(|d, _| {
            carried.contains(d)
                || retired
                    .values()
                    .any(|v| v.proposal(d).is_some() && v.decision(d).is_none())
        });
        self.evidence.retain(|d, _| carried.contains(d));
        self.approved = carried;
        self.pending_commits.clear();
        self.timers.stop(TimerKind::FreezeWindow);
        if self.is_steward() && !self.approved.is_empty() {
            self.timers
                .set(TimerKind::FreezeWindow, now + self.config.freeze_window);
        }
        self.timers.retain(|k| !matches!(k, TimerKind::AutoVote(_)));
        for m in &added {
            self.key_packages.remove(m);
        }
        self.key_packages
            .retain(|_, kp| epoch.0 < kp.seen_at_epoch + KEY_PACKAGE_BUFFER_EPOCHS);
        self.events.push_back(Event::EpochChanged {
            epoch,
            added,
            removed,
        });
        self.replay_buffered(now);
        if self.is_steward() {
            // Approved adds that did not fit the last commit, and key packages seen meanwhile.
            let waiting: Vec<MemberId> = self.key_packages.keys().cloned().collect();
            for member in waiting {
                self.propose_buffered_add(now, &member);
            }
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
        self.try_commit(now, &batch)
    }
}
