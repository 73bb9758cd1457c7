//! Inbound packets: decoding, routing by body, and the handling of key packages, welcomes,
//! fragments and MLS messages. Every path validates before it changes protocol state.

use std::time::Instant;

use demls_consensus::{Ingested, MemberId, SignedProposal, VotingMessage};
use demls_wire::{v1, Limits};
use openmls::prelude::{
    ContentType, MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent,
    StagedWelcome, WelcomeError, PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_traits::crypto::OpenMlsCrypto as _;
use openmls_traits::OpenMlsProvider;
use sha2::Digest as _;
use tls_codec::Deserialize as _;

use super::{mls_error, Conversation, Phase};
use crate::error::Error;
use crate::event::Event;
use crate::governance::{self, ParsedAction};
use crate::timers::TimerKind;

impl Conversation {
    /// Handles a packet received on the welcome or conversation channel. See the type-level
    /// contract: drain the outputs afterwards.
    ///
    /// A closed conversation refuses every packet with [`Error::Closed`] and changes
    /// nothing — except for a minute after a commit removed this member: it then answers
    /// MLS messages of the epoch it left by relaying that commit's certificate (the
    /// committer may still be waiting for this member's acknowledgement). It has a
    /// [`next_deadline`](Self::next_deadline) until then; keep feeding it packets and ticks
    /// if you can, or drop it.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        let now = self.clock.advance(now);
        if self.phase == Phase::Closed {
            return self.answer_while_closed(now, bytes);
        }
        let limits = Limits {
            max_message_len: self.config.max_packet_len,
            ..self.limits
        };
        let packet = demls_wire::decode_packet(bytes, &limits)?;
        self.handle_decoded(now, packet, false)
    }

    fn handle_decoded(
        &mut self,
        now: Instant,
        packet: v1::Packet,
        reassembled: bool,
    ) -> Result<(), Error> {
        if packet.conversation_id != self.id.as_bytes() {
            return Err(Error::WrongConversation);
        }
        use v1::packet::Body;
        match packet.body.expect("checked by the wire decoder") {
            Body::KeyPackage(k) => self.on_key_package(now, &k.key_package),
            Body::Welcome(w) => {
                self.on_welcome(now, &w.welcome, &w.carried_approvals, &w.carried_rejections)
            }
            Body::MlsMessage(m) => self.on_mls_message(now, m),
            Body::Fragment(_) if reassembled => Err(Error::NestedFragment),
            Body::Fragment(f) => {
                self.reassembly.check(
                    &f,
                    self.config.max_reassemblies,
                    self.config.max_payload_len,
                )?;
                let whole = self.reassembly.insert(f, now);
                self.arm_reassembly_expiry();
                match whole {
                    None => Ok(()),
                    // The fragment completed a payload: the payload is handled as its own
                    // input; its refusal is reported, though the fragment itself was accepted.
                    Some(bytes) => {
                        let inner = demls_wire::decode_packet(&bytes, &self.limits)?;
                        self.handle_decoded(now, inner, true)
                    }
                }
            }
        }
    }

    /// A key package on the welcome channel: buffer it ("Buffering KeyPackages"); the steward
    /// opens an add proposal for it ("Single steward", step 3).
    fn on_key_package(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        if self.phase != Phase::Member {
            return Ok(()); // not our business until we are a member
        }
        let unix = self.clock.unix_ms(now);
        let (member, key_package) =
            governance::parse_key_package(self.provider.crypto(), bytes, Some(unix))?;
        if self.roster().contains(&member) {
            // A joiner whose welcome was lost announces itself again.
            if self.resend_welcome_to(now, &member) {
                return Ok(());
            }
            return Err(Error::InvalidProposal("key package of a current member"));
        }
        let epoch = self.epoch().map_or(0, |e| e.0);
        self.key_packages.insert(
            member.clone(),
            super::BufferedKeyPackage {
                key_package,
                seen_at_epoch: epoch,
            },
        );
        self.events.push_back(Event::KeyPackageSeen {
            member: member.clone(),
        });
        self.schedule_duties(now);
        Ok(())
    }

    /// A welcome: if this member is waiting to join and the welcome is for its key package,
    /// join. Welcomes for others are ignored.
    fn on_welcome(
        &mut self,
        now: Instant,
        bytes: &[u8],
        carried_approvals: &[Vec<u8>],
        carried_rejections: &[Vec<u8>],
    ) -> Result<(), Error> {
        if self.phase != Phase::PendingJoin {
            return Ok(());
        }
        let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(mls_error)?;
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            return Err(Error::Mls("not a welcome".into()));
        };
        let join_config = MlsGroupJoinConfig::builder()
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .sender_ratchet_configuration(self.sender_ratchet())
            .max_past_epochs(super::PAST_MLS_EPOCHS)
            .use_ratchet_tree_extension(true)
            .build();
        self.provider.prepare_operation();
        let staged =
            match StagedWelcome::new_from_welcome(&self.provider, &join_config, welcome, None) {
                Ok(staged) => staged,
                Err(WelcomeError::NoMatchingKeyPackage) => return Ok(()), // someone else's welcome
                Err(e) => return Err(mls_error(e)),
            };
        // The committer's approvals it has not committed yet (see `WelcomeMessage`): parsed
        // before anything changes, so a bad list refuses the welcome as a whole.
        let mut carried = Vec::new();
        for (bytes, rejected) in carried_approvals
            .iter()
            .map(|b| (b, false))
            .chain(carried_rejections.iter().map(|b| (b, true)))
        {
            let VotingMessage::Proposal(p) = VotingMessage::decode(bytes, &self.limits)? else {
                return Err(Error::InvalidProposal("carried approval is not a proposal"));
            };
            let action =
                governance::decode(self.provider.crypto(), &p.payload, &self.limits, None)?;
            if rejected && action.kind() != demls_consensus::ProposalKind::Emergency {
                return Err(Error::InvalidProposal(
                    "carried rejection is not an emergency proposal",
                ));
            }
            carried.push((p, action, rejected));
        }
        let group = staged.into_group(&self.provider).map_err(mls_error)?;
        self.install_group(group)?;
        for (p, action, rejected) in carried {
            let digest = p.digest();
            if !self.self_evident(&p, &action) {
                let epoch = self.epoch().map_or(0, |e| e.0);
                self.unconfirmed.entry(digest).or_insert(epoch);
            }
            self.actions.insert(digest, action);
            self.creators.insert(digest, p.header.creator.clone());
            if rejected {
                self.rejected.insert(digest);
            } else {
                self.approved.insert(digest);
            }
        }
        self.timers.stop(TimerKind::PendingJoinExpiry);
        self.timers.stop(TimerKind::Reannounce);
        self.announcement.clear();
        let epoch = self.epoch().expect("installed");
        self.first_epoch = epoch.0;
        self.events.push_back(Event::Joined { epoch });
        self.replay_buffered(now);
        Ok(())
    }

    /// An MLS message on the conversation channel.
    pub(super) fn on_mls_message(&mut self, now: Instant, bytes: Vec<u8>) -> Result<(), Error> {
        let message = MlsMessageIn::tls_deserialize_exact(&bytes).map_err(mls_error)?;
        let protocol = message.try_into_protocol_message().map_err(mls_error)?;
        if protocol.group_id().as_slice() != self.id.as_bytes() {
            return Err(Error::WrongConversation);
        }
        let epoch = protocol.epoch().as_u64();
        let current = match (self.phase, self.epoch()) {
            (Phase::PendingJoin, _) => return self.buffer_future(epoch, bytes),
            (_, Some(e)) => e.0,
            (_, None) => return Err(Error::NotAMember),
        };
        if epoch > current {
            return self.buffer_future(epoch, bytes);
        }
        // Application messages of the last few epochs are still read (openmls keeps their
        // secrets): a proposal or vote that arrives after the epoch changed can still
        // finalize a proposal of that epoch in its retired voting machine. Commits and
        // anything older are stale.
        let recent = current - epoch <= super::PAST_MLS_EPOCHS as u64
            && protocol.content_type() == ContentType::Application;
        if epoch < current && !recent {
            // Someone several commits behind: it may need the certificates of the commits
            // since (docs/protocol.md §9, "Catch-up").
            if protocol.content_type() == ContentType::Application
                && self.relay_certificates_blind(now, epoch)
            {
                return Ok(());
            }
            return Err(Error::StaleEpoch {
                got: demls_consensus::Epoch(epoch),
                current: demls_consensus::Epoch(current),
            });
        }
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        let processed = group
            .process_message(&self.provider, protocol)
            .map_err(mls_error)?;
        let sender = governance::member_of_credential(processed.credential())?;
        if epoch < current && !self.was_voter_then(epoch, &sender) {
            // A late message of a member who has since left or been removed is not heard —
            // unless it votes on a proposal still open in that epoch's retired machine: it
            // was a voter then, and the other members counted its vote (dropping it made
            // this member decide at the deadline, alone, what the others had decided).
            return Err(Error::StaleEpoch {
                got: demls_consensus::Epoch(epoch),
                current: demls_consensus::Epoch(current),
            });
        }
        let aad = processed.aad().to_vec();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) if epoch < current => {
                let content = app.into_bytes();
                if !self.roster().contains(&sender) && !is_voting(&content, &self.limits) {
                    // A departed member's late voting traffic still counts (above); nothing
                    // else of it is heard.
                    return Err(Error::StaleEpoch {
                        got: demls_consensus::Epoch(epoch),
                        current: demls_consensus::Epoch(current),
                    });
                }
                self.on_app_content(now, sender.clone(), &content, None)?;
                // The sender is still in a past epoch: it may need the last commit.
                if epoch + 1 == current {
                    self.relay_certificate_to(now, &sender, epoch);
                }
                Ok(())
            }
            ProcessedMessageContent::ApplicationMessage(app) => {
                self.on_app_content(now, sender, &app.into_bytes(), Some(bytes))
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                self.on_commit(now, sender, &aad, *staged, bytes)
            }
            _ => Err(Error::Mls(
                "standalone MLS proposals are not used by demls".into(),
            )),
        }
    }

    /// Whether the approval of `p` needs nobody's word: a leave signed by the member it names,
    /// still in the roster. "A member's request to leave the group is not subject to
    /// voting" (honest members approve it at once, whatever their auto-vote setting), so its
    /// signature is its evidence. A joiner holds other decisions of epochs before it joined
    /// on another member's word (`Conversation::unconfirmed`); holding a leave so left a
    /// group whose only other members had joined since unable ever to commit it — the
    /// leaver may not commit its own ("Self-Removal"), and nobody else could vouch for it.
    fn self_evident(&self, p: &SignedProposal, action: &ParsedAction) -> bool {
        let ParsedAction::Leave { member } = action else {
            return false;
        };
        if *member != p.header.creator {
            return false;
        }
        let Some(group) = self.group.as_ref() else {
            return false;
        };
        let signed = demls_consensus::transcript::header_transcript(&p.header);
        group.members().any(|m| {
            governance::member_of_credential(&m.credential).is_ok_and(|id| id == *member)
                && self
                    .provider
                    .crypto()
                    .verify_signature(
                        demls_consensus::SignatureScheme::ED25519,
                        &signed,
                        m.signature_key.as_slice(),
                        &p.signature,
                    )
                    .is_ok()
        })
    }

    /// Whether `sender`, heard in the past `epoch`, is still heard: a current member, or a
    /// voter of that epoch's retired voting machine.
    fn was_voter_then(&self, epoch: u64, sender: &MemberId) -> bool {
        self.roster().contains(sender)
            || self
                .retired
                .get(&epoch)
                .is_some_and(|v| v.roster().contains(sender))
    }

    /// Keeps a message of a future epoch (or, while joining, of any epoch). When the buffer
    /// is full, a message of a later epoch than the earliest buffered one evicts the oldest
    /// message of that earliest epoch: the later the epoch, the likelier it is still useful
    /// (a joiner's buffer would otherwise fill with epochs it will never see).
    fn buffer_future(&mut self, epoch: u64, bytes: Vec<u8>) -> Result<(), Error> {
        if self.future.len() >= self.config.max_buffered_messages {
            let earliest = self.future.iter().map(|(e, _, _)| *e).min();
            match earliest {
                Some(min) if min < epoch => {
                    let i = self
                        .future
                        .iter()
                        .position(|(e, _, _)| *e == min)
                        .expect("the minimum is present");
                    self.future.remove(i);
                }
                _ => {
                    return Err(Error::BufferFull {
                        max: self.config.max_buffered_messages,
                    })
                }
            }
        }
        let digest = sha2::Sha256::digest(&bytes).into();
        self.future.push_back((epoch, bytes, digest));
        Ok(())
    }

    /// Processes buffered messages that belong to the current epoch, in arrival order; drops
    /// those of past epochs and keeps future ones.
    ///
    /// A replayed commit moves the epoch (and replays, nested, what it finds buffered then);
    /// messages this loop had taken out and puts back afterwards may belong to that new
    /// epoch, so the loop runs again until the epoch stays put. (Found by the simulator: a
    /// commit two epochs ahead, put back this way, waited for an epoch change that only it
    /// could bring.)
    pub(super) fn replay_buffered(&mut self, now: Instant) {
        loop {
            let Some(current) = self.epoch().map(|e| e.0) else {
                return;
            };
            let buffered = std::mem::take(&mut self.future);
            for (epoch, bytes, digest) in buffered {
                if epoch > current || self.epoch().map(|e| e.0) != Some(current) {
                    self.future.push_back((epoch, bytes, digest));
                } else if epoch == current {
                    if let Err(e) = self.on_mls_message(now, bytes) {
                        tracing::warn!(error = %e, "buffered message refused on replay");
                    }
                }
            }
            let moved = self.epoch().map(|e| e.0) != Some(current);
            let due = self
                .epoch()
                .is_some_and(|e| self.future.iter().any(|(f, _, _)| *f <= e.0));
            if !(moved && due) || self.phase != Phase::Member {
                return;
            }
        }
    }

    /// The content of an application message; `message` is its MLS message when it was sent
    /// in the current epoch, `None` when in an earlier one (its commit acknowledgement is
    /// then stale and ignored).
    fn on_app_content(
        &mut self,
        now: Instant,
        sender: MemberId,
        bytes: &[u8],
        message: Option<Vec<u8>>,
    ) -> Result<(), Error> {
        let content = demls_wire::decode_app_content(bytes, &self.limits)?;
        match content.body.expect("checked by the wire decoder") {
            v1::app_content::Body::Chat(body) => {
                self.events.push_back(Event::Message { sender, body });
                Ok(())
            }
            v1::app_content::Body::Voting(bytes) => {
                let voting = VotingMessage::decode(&bytes, &self.limits)?;
                // A bundle may be a committer's evidence: kept (first, since it may justify
                // a waiting commit that is then applied at once) for the certificate.
                let keep = match &message {
                    Some(m) if self.needs_acks() && matches!(voting, VotingMessage::Bundle(_)) => {
                        self.keep_evidence_message(sender.clone(), m.clone())
                    }
                    _ => false,
                };
                let result = self.on_voting_message(now, sender.clone(), &bytes, voting);
                if result.is_err() && keep {
                    if let Some(m) = &message {
                        self.drop_evidence_message(&sender, m); // refused: no trace
                    }
                }
                result
            }
            v1::app_content::Body::CommitAck(ack) => {
                let Some(message) = message else {
                    return Ok(()); // of a past epoch: stale
                };
                let digest: [u8; 32] = ack
                    .commit
                    .as_slice()
                    .try_into()
                    .expect("checked by the wire");
                let committer = MemberId::new(ack.committer)
                    .map_err(|_| Error::InvalidProposal("invalid committer id"))?;
                let new = !self
                    .round
                    .acks
                    .get(&(ack.round, digest))
                    .is_some_and(|a| a.contains(&sender));
                // Kept first: the acknowledgement that completes a quorum applies the
                // candidate at once, and belongs in the certificate.
                let keep = new && digest != super::acks::ABSTAIN;
                if keep {
                    self.keep_ack_message(digest, message.clone());
                }
                let result = self.on_commit_ack(now, sender, ack.round, digest, committer);
                if result.is_err() && keep {
                    self.drop_ack_message(&digest, &message); // refused: no trace
                }
                result
            }
        }
    }

    /// Voting traffic. A proposal or a vote must be signed by its MLS sender; a bundle may
    /// forward others' signed votes and proposal.
    fn on_voting(&mut self, now: Instant, sender: MemberId, bytes: &[u8]) -> Result<(), Error> {
        let message = VotingMessage::decode(bytes, &self.limits)?;
        self.on_voting_message(now, sender, bytes, message)
    }

    /// [`Self::on_voting`] for `bytes` already decoded into `message`.
    fn on_voting_message(
        &mut self,
        now: Instant,
        sender: MemberId,
        bytes: &[u8],
        message: VotingMessage,
    ) -> Result<(), Error> {
        let unix = self.clock.unix_ms(now);
        let new_action = match &message {
            VotingMessage::Proposal(p) => {
                if p.header.creator != sender {
                    return Err(Error::SenderMismatch {
                        signer: p.header.creator.clone(),
                        sender,
                    });
                }
                // "Partial Freeze Semantics": while a higher-priority proposal is open, a new
                // lower-priority one is held back — not opened, voted on or forwarded — and
                // processed once the freeze lifts (docs/protocol.md §9: dropping it made the
                // proposals a member holds depend on arrival order).
                if self.frozen_out(p) {
                    return self.hold_voting(sender, bytes);
                }
                self.unknown_action(now, p)?
            }
            VotingMessage::Vote(v) => {
                if v.voter != sender {
                    return Err(Error::SenderMismatch {
                        signer: v.voter.clone(),
                        sender,
                    });
                }
                None
            }
            VotingMessage::Bundle(b) => match &b.proposal {
                Some(p) => {
                    // "Partial Freeze Semantics": a new lower-priority proposal is held back in
                    // a bundle too (a commit's evidence included: it is processed, and can
                    // justify the commit, once the freeze lifts).
                    if self.frozen_out(p) {
                        return self.hold_voting(sender, bytes);
                    }
                    self.unknown_action(now, p)?
                }
                None => None,
            },
        };
        // A message about a proposal of a past epoch goes to that epoch's retired machine
        // (late votes, or a commit's evidence for a carried-over proposal).
        let current = self.voting.as_ref().ok_or(Error::NotAMember)?.epoch();
        let scope = match &message {
            VotingMessage::Proposal(p) => p.header.epoch,
            VotingMessage::Vote(v) => v.epoch,
            VotingMessage::Bundle(b) => b
                .proposal
                .as_ref()
                .map(|p| p.header.epoch)
                .or_else(|| b.votes.first().map(|v| v.epoch))
                .unwrap_or(current),
        };
        if let VotingMessage::Bundle(b) = &message {
            if scope.0 < self.first_epoch {
                // Evidence for a proposal of an epoch before this member joined: it has no
                // roster to check the votes against, so it takes the proposal as finalized on
                // the word of a steward or of a member that may commit this epoch (who sends
                // it before its commit), as it took the welcome's carried approvals.
                if !self.stewards().contains(&sender) && !self.may_commit(&sender) {
                    return Err(Error::NotFromSteward(sender));
                }
                let p = b.proposal.as_ref().ok_or(Error::InvalidProposal(
                    "pre-join evidence without its proposal",
                ))?;
                if let Some((digest, action)) = new_action {
                    self.actions.insert(digest, action);
                }
                let evident = self
                    .actions
                    .get(&p.digest())
                    .is_some_and(|a| self.self_evident(p, a));
                if self.approved.insert(p.digest()) && !evident {
                    let epoch = self.epoch().map_or(0, |e| e.0);
                    self.unconfirmed.entry(p.digest()).or_insert(epoch);
                }
                self.retry_pending_commits(now);
                return Ok(());
            }
        }
        // An election or deadlock proposal of a past epoch is moot (it lists stewards from the
        // epoch after its own; any commit ends a deadlock), so it is not opened: opened in a
        // retired machine it only looked like an open higher-priority proposal.
        let governance = new_action
            .as_ref()
            .is_some_and(|(_, a)| matches!(a, ParsedAction::Elect { .. } | ParsedAction::Deadlock));
        if scope.0 < current.0 && governance {
            return Err(Error::StaleEpoch {
                got: scope,
                current,
            });
        }
        let to_retired = scope != current && self.retired.contains_key(&scope.0);
        let voting = match self.retired.get_mut(&scope.0) {
            Some(old) if to_retired => old,
            _ => self.voting.as_mut().ok_or(Error::NotAMember)?,
        };
        let crypto = self.provider.crypto();
        let outcome = match message {
            VotingMessage::Proposal(p) => voting.handle_proposal(crypto, unix, p)?,
            VotingMessage::Vote(v) => match voting.handle_vote(crypto, unix, v) {
                Err(demls_consensus::Error::UnknownProposal(_))
                    if self.held_voting.len() < self.config.max_buffered_messages =>
                {
                    // The vote overtook its proposal: keep it until the proposal opens
                    // (dropping it could make this member's deadline decision differ).
                    return self.hold_voting(sender, bytes);
                }
                other => other?,
            },
            VotingMessage::Bundle(b) => voting.handle_bundle(crypto, unix, b)?,
        };
        let opened = match outcome {
            Ingested::Opened(_) => true,
            Ingested::Bundle(s) => s.opened,
            _ => false,
        };
        if let (true, Some((digest, action))) = (opened, new_action) {
            self.actions.insert(digest, action);
        }
        if to_retired {
            self.refresh_retired_digest();
        }
        if opened && !self.held_voting.is_empty() {
            self.release_held_voting(now);
        }
        self.drain_voting(now);
        self.retry_pending_commits(now);
        Ok(())
    }

    /// Whether proposal `p` is new here and of lower priority than an open governance
    /// proposal ("Partial Freeze Semantics").
    fn frozen_out(&self, p: &SignedProposal) -> bool {
        self.frozen_below()
            .is_some_and(|b| b > p.header.kind.priority())
            && !self.actions.contains_key(&p.digest())
    }

    /// Holds a voting message back (see `held_voting`); refused when the buffer is full.
    fn hold_voting(&mut self, sender: MemberId, bytes: &[u8]) -> Result<(), Error> {
        if self.held_voting.len() >= self.config.max_buffered_messages {
            return Err(Error::BufferFull {
                max: self.config.max_buffered_messages,
            });
        }
        self.held_voting.push_back((sender, bytes.to_vec()));
        Ok(())
    }

    /// Feeds the held voting messages that may go in now — votes whose proposal is known to
    /// a voting machine, proposals no longer frozen out — in arrival order; the others stay.
    /// One refused now (e.g. a vote on a decided proposal) is dropped.
    pub(super) fn release_held_voting(&mut self, now: Instant) {
        let ready = |c: &Self, bytes: &[u8]| match VotingMessage::decode(bytes, &c.limits) {
            Ok(VotingMessage::Vote(v)) => c
                .voting
                .iter()
                .chain(c.retired.values())
                .any(|m| m.proposal(&v.proposal).is_some()),
            Ok(VotingMessage::Proposal(p)) => !c.frozen_out(&p),
            Ok(VotingMessage::Bundle(b)) => b.proposal.as_ref().is_none_or(|p| !c.frozen_out(p)),
            Err(_) => true, // undecodable now: refused (dropped) below
        };
        let held = std::mem::take(&mut self.held_voting);
        let mut release = Vec::new();
        for (sender, bytes) in held {
            if ready(self, &bytes) {
                release.push((sender, bytes));
            } else {
                self.held_voting.push_back((sender, bytes));
            }
        }
        for (sender, bytes) in release {
            if let Err(e) = self.on_voting(now, sender, &bytes) {
                tracing::debug!(error = %e, "held voting message refused on release");
            }
        }
    }

    /// Parses and checks the action of a proposal this member does not know yet.
    fn unknown_action(
        &self,
        now: Instant,
        p: &SignedProposal,
    ) -> Result<Option<(demls_consensus::ProposalDigest, ParsedAction)>, Error> {
        let digest = p.digest();
        if self.actions.contains_key(&digest) {
            return Ok(None);
        }
        // The key package of an add was usually validated already when it was announced on
        // the welcome channel; identical bytes are not verified twice.
        let action = governance::decode_reusing(
            self.provider.crypto(),
            &p.payload,
            &self.limits,
            Some(self.clock.unix_ms(now)),
            |member| self.key_packages.get(member).map(|b| &b.key_package),
        )?;
        if action.kind() != p.header.kind {
            return Err(Error::InvalidProposal(
                "payload does not match the proposal kind",
            ));
        }
        if let ParsedAction::Elect { epoch, .. } = &action {
            if *epoch != p.header.epoch.0 {
                return Err(Error::InvalidProposal(
                    "election held for another epoch than its proposal's",
                ));
            }
        }
        self.check_action(&action, &p.header.creator)?;
        Ok(Some((digest, action)))
    }

    /// Membership rules of an action proposed by `creator`.
    pub(super) fn check_action(
        &self,
        action: &ParsedAction,
        creator: &MemberId,
    ) -> Result<(), Error> {
        let roster = self.roster();
        match action {
            ParsedAction::Add { member, .. } if roster.contains(member) => {
                Err(Error::InvalidProposal("add of a current member"))
            }
            ParsedAction::Remove { member } | ParsedAction::Leave { member }
                if !roster.contains(member) =>
            {
                Err(Error::InvalidProposal("removal of a non-member"))
            }
            // "Self-Removal": a leave is valid only when its target is its creator (and, for
            // a directly sent proposal, the MLS sender — checked by the caller).
            ParsedAction::Leave { member } if member != creator => Err(Error::InvalidProposal(
                "leave whose target is not its creator",
            )),
            // "Any proposal with a list that does not adhere to this generation method MUST
            // be rejected by all members."
            ParsedAction::Elect {
                epoch,
                retry_round,
                stewards,
            } => self.gov()?.check_election(
                *epoch,
                *retry_round,
                self.id.as_bytes(),
                &roster,
                stewards,
            ),
            // No recovery mode in a single-steward group (no rotation to escalate from).
            ParsedAction::Deadlock if self.gov()?.config.single_steward => Err(
                Error::InvalidProposal("no deadlock proposal in a single-steward group"),
            ),
            // A removal emergency proposal must name a member whose agreed score is at or
            // below the threshold ("Peer Scoring").
            ParsedAction::RemoveBelowThreshold { target } => {
                if !roster.contains(target) {
                    Err(Error::InvalidProposal("removal of a non-member"))
                } else if !self.gov()?.below_threshold(target) {
                    Err(Error::InvalidProposal(
                        "emergency removal of a member above the score threshold",
                    ))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

/// Whether application content `bytes` carries voting traffic.
fn is_voting(bytes: &[u8], limits: &Limits) -> bool {
    demls_wire::decode_app_content(bytes, limits)
        .is_ok_and(|c| matches!(c.body, Some(v1::app_content::Body::Voting(_))))
}
