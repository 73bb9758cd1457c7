//! Inbound packets: decoding, routing by body, and the handling of key packages, welcomes,
//! fragments and MLS messages. Every path validates before it changes protocol state.

use std::time::Instant;

use demls_consensus::{Ingested, MemberId, ProposalKind, SignedProposal, VotingMessage};
use demls_wire::{v1, Limits};
use openmls::prelude::{
    MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent, StagedWelcome,
    WelcomeError, PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_traits::OpenMlsProvider;
use tls_codec::Deserialize as _;

use super::{mls_error, Conversation, Phase};
use crate::error::Error;
use crate::event::Event;
use crate::governance::{self, ParsedAction};
use crate::timers::TimerKind;

impl Conversation {
    /// Handles a packet received on the welcome or conversation channel. See the type-level
    /// contract: drain the outputs afterwards.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        let now = self.clock.advance(now);
        if self.phase == Phase::Closed {
            return Err(Error::Closed);
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
            Body::Welcome(w) => self.on_welcome(now, &w.welcome),
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
        if self.is_steward() {
            self.propose_buffered_add(now, &member);
        }
        Ok(())
    }

    /// A welcome: if this member is waiting to join and the welcome is for its key package,
    /// join. Welcomes for others are ignored.
    fn on_welcome(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        if self.phase != Phase::PendingJoin {
            return Ok(());
        }
        let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(mls_error)?;
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            return Err(Error::Mls("not a welcome".into()));
        };
        let join_config = MlsGroupJoinConfig::builder()
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .build();
        self.provider.prepare_operation();
        let staged =
            match StagedWelcome::new_from_welcome(&self.provider, &join_config, welcome, None) {
                Ok(staged) => staged,
                Err(WelcomeError::NoMatchingKeyPackage) => return Ok(()), // someone else's welcome
                Err(e) => return Err(mls_error(e)),
            };
        let group = staged.into_group(&self.provider).map_err(mls_error)?;
        self.install_group(group)?;
        self.timers.stop(TimerKind::PendingJoinExpiry);
        let epoch = self.epoch().expect("installed");
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
        if epoch < current {
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
        let aad = processed.aad().to_vec();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                self.on_app_content(now, sender, &app.into_bytes())
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                self.on_commit(now, sender, &aad, *staged, bytes)
            }
            _ => Err(Error::Mls(
                "standalone MLS proposals are not used by demls".into(),
            )),
        }
    }

    fn buffer_future(&mut self, epoch: u64, bytes: Vec<u8>) -> Result<(), Error> {
        if self.future.len() >= self.config.max_buffered_messages {
            return Err(Error::BufferFull {
                max: self.config.max_buffered_messages,
            });
        }
        self.future.push_back((epoch, bytes));
        Ok(())
    }

    /// Processes buffered messages that belong to the current epoch, in arrival order; drops
    /// those of past epochs and keeps future ones.
    pub(super) fn replay_buffered(&mut self, now: Instant) {
        let Some(current) = self.epoch().map(|e| e.0) else {
            return;
        };
        let buffered = std::mem::take(&mut self.future);
        for (epoch, bytes) in buffered {
            if epoch > current || self.epoch().map(|e| e.0) != Some(current) {
                self.future.push_back((epoch, bytes));
            } else if epoch == current {
                if let Err(e) = self.on_mls_message(now, bytes) {
                    tracing::warn!(error = %e, "buffered message refused on replay");
                }
            }
        }
    }

    fn on_app_content(
        &mut self,
        now: Instant,
        sender: MemberId,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let content = demls_wire::decode_app_content(bytes, &self.limits)?;
        match content.body.expect("checked by the wire decoder") {
            v1::app_content::Body::Chat(body) => {
                self.events.push_back(Event::Message { sender, body });
                Ok(())
            }
            v1::app_content::Body::Voting(bytes) => self.on_voting(now, sender, &bytes),
        }
    }

    /// Voting traffic. A proposal or a vote must be signed by its MLS sender; a bundle may
    /// forward others' signed votes and proposal.
    fn on_voting(&mut self, now: Instant, sender: MemberId, bytes: &[u8]) -> Result<(), Error> {
        let message = VotingMessage::decode(bytes, &self.limits)?;
        let unix = self.clock.unix_ms(now);
        let new_action = match &message {
            VotingMessage::Proposal(p) => {
                if p.header.creator != sender {
                    return Err(Error::SenderMismatch {
                        signer: p.header.creator.clone(),
                        sender,
                    });
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
                Some(p) => self.unknown_action(now, p)?,
                None => None,
            },
        };
        let voting = self.voting.as_mut().ok_or(Error::NotAMember)?;
        let crypto = self.provider.crypto();
        let outcome = match message {
            VotingMessage::Proposal(p) => voting.handle_proposal(crypto, unix, p)?,
            VotingMessage::Vote(v) => voting.handle_vote(crypto, unix, v)?,
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
        self.drain_voting(now);
        self.retry_pending_commits(now);
        Ok(())
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
        if p.header.kind != ProposalKind::Commit {
            return Err(Error::InvalidProposal("unsupported proposal kind"));
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
            _ => Ok(()),
        }
    }
}
