//! Commands: what the local member asks for. Each returns once its local effect is applied and
//! its packets are queued; drain the outputs afterwards.

use std::time::Instant;

use demls_consensus::{Choice, MemberId, ProposalDigest, ProposalDraft, ProposalKind};
use demls_wire::v1;
use openmls_traits::OpenMlsProvider;
use prost::Message;
use tls_codec::Serialize as _;

use super::{mls_error, Conversation, Phase};
use crate::error::Error;
use crate::governance::{self, ParsedAction};
use crate::timers::TimerKind;
use crate::transmit::{Channel, TrafficClass};

impl Conversation {
    /// Proposes to admit the node whose key package (the TLS-serialized MLS message, as seen
    /// on the welcome channel) is given. Returns the proposal's digest.
    pub fn propose_add(
        &mut self,
        now: Instant,
        key_package: &[u8],
    ) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        self.group()?;
        let (member, key_package) = governance::parse_key_package(
            self.provider.crypto(),
            key_package,
            Some(self.clock.unix_ms(now)),
        )?;
        let action = ParsedAction::Add {
            member,
            key_package: Box::new(key_package),
        };
        self.open_proposal(now, action)
    }

    /// Proposes to remove `member`. Returns the proposal's digest.
    pub fn propose_remove(
        &mut self,
        now: Instant,
        member: &MemberId,
    ) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        self.group()?;
        self.open_proposal(
            now,
            ParsedAction::Remove {
                member: member.clone(),
            },
        )
    }

    /// Asks to leave the conversation ("Self-Removal"): a removal proposal whose creator and
    /// target are this member; other members vote YES on it automatically.
    pub fn leave(&mut self, now: Instant) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        self.group()?;
        let me = self.me.clone();
        self.open_proposal(now, ParsedAction::Leave { member: me })
    }

    /// Proposes the steward list the election rule gives for the current epoch and retry
    /// round ("Steward Election Proposal", "Steward list creation"). Members also open
    /// elections on their own when one is due; this command is for hosts that want one now.
    pub fn propose_steward_election(&mut self, now: Instant) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        self.group()?;
        let epoch = self.epoch().map_or(0, |e| e.0);
        let retry_round = self.round.reelections;
        let stewards =
            self.gov()?
                .honest_election(epoch, retry_round, self.id.as_bytes(), &self.roster());
        self.open_proposal(
            now,
            ParsedAction::Elect {
                epoch,
                retry_round,
                stewards,
            },
        )
    }

    /// Proposes removing `member`, whose agreed peer score is at or below the threshold (an
    /// emergency criteria proposal, "Peer Scoring"). Refused for a member above it.
    pub fn propose_emergency_removal(
        &mut self,
        now: Instant,
        member: &MemberId,
    ) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        self.group()?;
        self.open_proposal(
            now,
            ParsedAction::RemoveBelowThreshold {
                target: member.clone(),
            },
        )
    }

    /// Proposes the deadlock emergency proposal ("Layer 3"): on YES, recovery mode, where
    /// any member may commit.
    pub fn propose_deadlock(&mut self, now: Instant) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        self.group()?;
        self.open_proposal(now, ParsedAction::Deadlock)
    }

    /// Votes on an open proposal.
    pub fn vote(
        &mut self,
        now: Instant,
        proposal: ProposalDigest,
        choice: Choice,
    ) -> Result<(), Error> {
        let now = self.clock.advance(now);
        self.group()?;
        self.cast_vote(now, proposal, choice)
    }

    /// Sends an application message to the group, encrypted by MLS.
    pub fn send_message(&mut self, now: Instant, body: &[u8]) -> Result<(), Error> {
        self.clock.advance(now);
        self.group()?;
        self.send_app(
            v1::app_content::Body::Chat(body.to_vec()),
            TrafficClass::Application,
        )
    }

    // ----- internals shared with inbound handling and timers -----

    pub(super) fn cast_vote(
        &mut self,
        now: Instant,
        proposal: ProposalDigest,
        choice: Choice,
    ) -> Result<(), Error> {
        let unix = self.clock.unix_ms(now);
        let current = self.voting.as_ref().ok_or(Error::NotAMember)?;
        // A proposal still open in the machine of a past epoch is voted on there (the vote is
        // signed for that epoch, and members route it to the same retired machine): a NO
        // must still count after the epoch changed under it.
        let retired = match current.proposal(&proposal) {
            Some(_) => None,
            None => self
                .retired
                .iter()
                .rev()
                .find(|(_, v)| v.proposal(&proposal).is_some())
                .map(|(e, _)| *e),
        };
        let voting = match retired.and_then(|e| self.retired.get_mut(&e)) {
            Some(old) => old,
            None => self.voting.as_mut().ok_or(Error::NotAMember)?,
        };
        let message = voting.cast_vote(&self.signer, unix, proposal, choice)?;
        if retired.is_some() {
            self.refresh_retired_digest();
        }
        self.timers.stop(TimerKind::AutoVote(proposal));
        self.send_app(
            v1::app_content::Body::Voting(message.encode()),
            TrafficClass::Governance,
        )?;
        self.drain_voting(now);
        Ok(())
    }

    pub(super) fn open_proposal(
        &mut self,
        now: Instant,
        action: ParsedAction,
    ) -> Result<ProposalDigest, Error> {
        if self.phase != Phase::Member {
            return Err(Error::NotAMember);
        }
        // "Partial Freeze Semantics": nothing of lower priority is created while a
        // higher-priority proposal is open.
        if self
            .frozen_below()
            .is_some_and(|b| b > action.kind().priority())
        {
            return Err(Error::Frozen);
        }
        self.check_action(&action, &self.me)?;
        self.publish_proposal(now, action)
    }

    /// Signs, records and sends a proposal for `action`, already checked (or deliberately
    /// not, in the negative-test builders).
    fn publish_proposal(
        &mut self,
        now: Instant,
        action: ParsedAction,
    ) -> Result<ProposalDigest, Error> {
        let (kind, payload) = (action.kind(), governance::encode(&action));
        self.publish_raw(now, kind, payload, Some(action))
    }

    /// Signs and sends a proposal of `kind` with `payload` as is, recording `action` as its
    /// meaning when given (the test-utils builders send mislabelled or undecodable ones).
    pub(super) fn publish_raw(
        &mut self,
        now: Instant,
        kind: ProposalKind,
        payload: Vec<u8>,
        action: Option<ParsedAction>,
    ) -> Result<ProposalDigest, Error> {
        let id = u64::from_be_bytes(self.fresh_id()[..8].try_into().expect("8 bytes"));
        let draft = ProposalDraft {
            proposal_id: id,
            kind,
            payload,
            voting_duration_ms: self.config.voting_duration.as_millis() as u64,
            silent_counts_as_yes: self.config.silent_counts_as_yes,
            tie_policy: self.config.tie_policy,
            creator_choice: Choice::Yes,
        };
        let unix = self.clock.unix_ms(now);
        let voting = self.voting.as_mut().ok_or(Error::NotAMember)?;
        let (digest, message) = voting.propose(&self.signer, unix, draft)?;
        if let Some(action) = action {
            self.actions.insert(digest, action);
        }
        self.send_app(
            v1::app_content::Body::Voting(message.encode()),
            TrafficClass::Governance,
        )?;
        self.drain_voting(now);
        Ok(digest)
    }

    /// The steward proposes adding a buffered key package's owner, unless a proposal for it is
    /// already approved (and not held only on another's word for long:
    /// `Conversation::stale_unconfirmed`) or open. An add of a past epoch, decided or not, counts as under way
    /// until the next epoch change forgets it (re-proposing one a retired epoch rejected at
    /// once made the all-Byzantine swarm worse) — except for a member left alone: only its
    /// own commits change the epoch, so it waited for good and never admitted a joiner that
    /// kept announcing itself (`demls-sim --generated 91702268255622 --mode liveness`).
    pub(super) fn propose_buffered_add(&mut self, now: Instant, member: &MemberId) {
        let alone = self.roster().len() == 1;
        let pending = self.actions.iter().any(|(d, a)| {
            let under_way = match self.voting.as_ref().filter(|v| v.proposal(d).is_some()) {
                Some(v) => v.decision(d).is_none(),
                None => !alone || super::commit::open_in_retired(&self.retired, d),
            };
            matches!(a, ParsedAction::Add { member: m, .. } if m == member)
                && !self.stale_unconfirmed(d)
                && (self.approved.contains(d) || under_way)
        });
        let Some(buffered) = self.key_packages.get(member) else {
            return;
        };
        if pending || self.roster().contains(member) {
            return;
        }
        let action = ParsedAction::Add {
            member: member.clone(),
            key_package: Box::new(buffered.key_package.clone()),
        };
        if let Err(e) = self.open_proposal(now, action) {
            tracing::warn!(error = %e, %member, "steward could not propose a buffered add");
        }
    }

    /// Encrypts `body` as an MLS application message and queues it on the conversation
    /// channel.
    pub(super) fn send_app(
        &mut self,
        body: v1::app_content::Body,
        class: TrafficClass,
    ) -> Result<(), Error> {
        self.send_app_message(body, class).map(|_| ())
    }

    /// [`Self::send_app`], returning the MLS message sent.
    pub(super) fn send_app_message(
        &mut self,
        body: v1::app_content::Body,
        class: TrafficClass,
    ) -> Result<Vec<u8>, Error> {
        let content = v1::AppContent { body: Some(body) }.encode_to_vec();
        self.provider.prepare_operation();
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        let message = group
            .create_message(&self.provider, &self.signer, &content)
            .map_err(mls_error)?;
        let bytes = message.tls_serialize_detached().map_err(mls_error)?;
        let packet = self.packet(v1::packet::Body::MlsMessage(bytes.clone()));
        self.transmit(Channel::Conversation, class, packet)?;
        Ok(bytes)
    }
}

/// Negative-test builders (feature `test-utils`).
#[cfg(feature = "test-utils")]
impl Conversation {
    /// Opens a steward election for `stewards` at `retry_round` without checking the list
    /// against the election rule (honest members refuse it unless it follows the rule).
    #[doc(hidden)]
    pub fn test_propose_election_unchecked(
        &mut self,
        now: Instant,
        retry_round: u32,
        stewards: Vec<MemberId>,
    ) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        let epoch = self.epoch().map_or(0, |e| e.0);
        let action = ParsedAction::Elect {
            epoch,
            retry_round,
            stewards,
        };
        self.publish_proposal(now, action)
    }
}
