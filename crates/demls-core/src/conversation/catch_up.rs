//! Catching up a member left behind by a multi-steward commit (docs/protocol.md §9, "Catch-up").
//!
//! A member applies a candidate only when it sees ⌈2n/3⌉ acknowledgements of it in one
//! round. A member that missed the candidate or some of its acknowledgements (loss, a short
//! partition, a crash) stays in the old epoch after the others moved on — and nobody who
//! moved on can send anything of the old epoch again: MLS encrypts for the current epoch
//! only. So every member keeps, for one epoch, the *certificate* of the last commit it
//! applied: the commit's MLS message and the acknowledgement messages of it that it holds,
//! byte for byte as they were sent. When it hears from a member still in the previous epoch,
//! it relays the certificate; the late member checks it like any other traffic of its epoch
//! (the commit against its finalized proposals, every acknowledgement's MLS signature and
//! sender) and applies the commit once it sees the quorum. Nothing is taken on the relayer's
//! word, so a Byzantine relayer can only withhold.
//!
//! To bound traffic, only the two members after the late one in the roster's order relay
//! (skipping the members the commit added, which hold no certificate of it; a relayer
//! that is itself behind has nothing to relay), each at most
//! [`MAX_RELAYS_PER_MEMBER`] times in a row and then once per [`RELAY_BACKOFF_MS`] (the late
//! member's resends at its escalation timer ask again, in case a relay was lost).
//!
//! A member further behind (a crash, a long partition) needs the certificates of every
//! epoch it missed, so each member keeps those of its last [`CERTIFICATE_EPOCHS`] commits.
//! Its messages can no longer be decrypted (openmls keeps one past epoch's secrets), so
//! nobody knows who sent them — only their clear-text epoch — nor who else still holds that
//! epoch's certificate (members that joined since do not). So every member that holds it
//! relays every certificate from that epoch on, each [`MAX_BLIND_RELAYS`] times in a row and
//! then once per [`RELAY_BACKOFF_MS`]: a bounded burst on a rare path. The late member
//! applies them in order (the later ones wait in its future-epoch buffer).
//!
//! A joiner is left behind the same way when the welcome of the commit that added it is
//! lost: nobody else can decrypt it, and it was sent once. So a pending joiner announces its
//! key package again every [`REANNOUNCE_INTERVAL`], and the committer keeps the welcome of
//! its last commit that added members (for [`CERTIFICATE_EPOCHS`] epochs) and sends it again
//! when one of them announces itself ([`MAX_BLIND_RELAYS`] times in a row, then once per
//! [`RELAY_BACKOFF_MS`]). The simulator's case: `demls-sim --generated 177146183039707
//! --mode liveness --byzantine-mix none` (a committer silenced while it sent the welcome).

use std::collections::BTreeMap;
use std::time::Instant;

use demls_consensus::MemberId;
use prost::Message as _;
use sha2::{Digest as _, Sha256};

use super::Conversation;
use crate::timers::TimerKind;
use crate::transmit::{Channel, TrafficClass};

/// How many times a member relays one epoch's certificate to one late member.
pub(super) const MAX_RELAYS_PER_MEMBER: u8 = 4;

/// Most vote-bundle messages kept per member and epoch for the certificate (a commit's
/// evidence is one bundle per proposal, at most `max_commit_batch`, sent again at most a
/// few times).
pub(super) const MAX_EVIDENCE_MESSAGES: usize = 32;

/// How many times a member relays one certificate to members heard from in an epoch too
/// old to decrypt (whoever they are).
pub(super) const MAX_BLIND_RELAYS: u8 = 2;

/// Once a relay budget is spent, one more relay per this many milliseconds: relays sent into
/// a partition are lost, and a late member heard only through it (an asymmetric partition)
/// would otherwise stay behind for good after it heals (the simulator: `demls-sim
/// --generated 4899500476811 --mode liveness --byzantine-mix none`).
pub(super) const RELAY_BACKOFF_MS: u64 = 10_000;

/// How often a certificate was relayed to one late member (or to unknown ones), and when
/// last (Unix ms, the member's clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RelayBudget {
    pub count: u8,
    pub last_ms: u64,
}

impl RelayBudget {
    /// Takes one relay if fewer than `max` were sent, or the last was at least
    /// [`RELAY_BACKOFF_MS`] before `now_ms`.
    fn take(&mut self, max: u8, now_ms: u64) -> bool {
        if self.count >= max && now_ms < self.last_ms.saturating_add(RELAY_BACKOFF_MS) {
            return false;
        }
        self.count = self.count.saturating_add(1);
        self.last_ms = now_ms;
        true
    }

    fn hash(&self, h: &mut Sha256) {
        h.update([self.count]);
        h.update(self.last_ms.to_be_bytes());
    }
}

/// How long a member removed by an acknowledged commit keeps answering the traffic of the
/// epoch it left: a member removed by a commit it applied on a quorum of acknowledgements
/// keeps that commit's certificate (the last entry of its catch-up certificates) for this
/// long after it closed, and relays it when it hears anything of the epoch it left — nobody
/// else may have seen the quorum (its own acknowledgement lost, or a Byzantine member's sent
/// to it alone), and in a group of two or three the removed member's acknowledgement is part
/// of every quorum. Like TCP's TIME_WAIT, which answers a re-sent FIN with the final ACK.
/// The simulator's cases: `demls-sim --generated 184917173371215 --mode liveness` (two
/// members; the leaver's acknowledgement lost while it was silenced, the committer re-sending
/// its candidate for ever to a member that had closed) and `--generated 74696691541504`
/// (the leaver saw a quorum nobody else did).
pub(super) const LINGER: std::time::Duration = std::time::Duration::from_secs(60);

/// How often a pending joiner announces its key package again.
pub(super) const REANNOUNCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The welcome of this member's last commit that added members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeptWelcome {
    /// The epoch the commit started (the joiners' first epoch).
    pub epoch: u64,
    /// The members it added.
    pub joiners: Vec<MemberId>,
    /// The welcome packet, encoded, as it was sent.
    packet: Vec<u8>,
    /// Digest of `packet` (which never changes), for the state digest, which the host may
    /// ask for after every input.
    packet_digest: [u8; 32],
    /// Its re-sends.
    pub relayed: RelayBudget,
}

impl KeptWelcome {
    /// A welcome not sent again yet.
    pub(super) fn new(epoch: u64, joiners: Vec<MemberId>, packet: Vec<u8>) -> Self {
        Self {
            epoch,
            joiners,
            packet_digest: Sha256::digest(&packet).into(),
            packet,
            relayed: RelayBudget::default(),
        }
    }

    /// The welcome packet, encoded, as it was sent.
    pub(super) fn packet(&self) -> &[u8] {
        &self.packet
    }

    pub(super) fn hash(&self, h: &mut Sha256) {
        h.update(self.epoch.to_be_bytes());
        h.update((self.joiners.len() as u32).to_be_bytes());
        for m in &self.joiners {
            h.update((m.as_bytes().len() as u32).to_be_bytes());
            h.update(m.as_bytes());
        }
        h.update(self.packet_digest);
        self.relayed.hash(h);
    }
}

/// How many members relay to a late member (the next ones in the roster's order).
const RELAYERS: usize = 2;

/// How many of its last commits' certificates a member keeps: a member that many epochs
/// behind can still catch up.
pub(super) const CERTIFICATE_EPOCHS: usize = 4;

/// The certificate of the last commit this member applied, kept for one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct CatchUp {
    /// The epoch the commit was applied in (the late members' epoch).
    pub epoch: u64,
    /// The committer's evidence messages, the commit's MLS message, then the
    /// acknowledgement messages of it, as sent.
    messages: Vec<Vec<u8>>,
    /// Digest of `messages` (which never change), for the state digest: hashing every kept
    /// certificate's bytes on each call cost more than the rest of the state.
    messages_digest: [u8; 32],
    /// Relays of the certificate to each late member.
    pub relayed: BTreeMap<MemberId, RelayBudget>,
    /// Relays to members heard from in an epoch too old to decrypt.
    pub relayed_blind: RelayBudget,
}

impl CatchUp {
    /// A certificate not relayed yet.
    pub(super) fn new(epoch: u64, messages: Vec<Vec<u8>>) -> Self {
        let mut h = Sha256::new();
        h.update((messages.len() as u32).to_be_bytes());
        for m in &messages {
            h.update((m.len() as u32).to_be_bytes());
            h.update(m);
        }
        Self {
            epoch,
            messages,
            messages_digest: h.finalize().into(),
            relayed: BTreeMap::new(),
            relayed_blind: RelayBudget::default(),
        }
    }

    /// The certificate's messages, in the order they are relayed.
    pub(super) fn messages(&self) -> &[Vec<u8>] {
        &self.messages
    }

    pub(super) fn hash(&self, h: &mut Sha256) {
        h.update(self.epoch.to_be_bytes());
        h.update(self.messages_digest);
        for (m, budget) in &self.relayed {
            h.update((m.as_bytes().len() as u32).to_be_bytes());
            h.update(m.as_bytes());
            budget.hash(h);
        }
        self.relayed_blind.hash(h);
    }

    pub(super) fn bytes(&self) -> usize {
        self.messages.iter().map(Vec::len).sum()
    }
}

impl Conversation {
    /// Keeps the certificate of the commit `raw` (candidate `digest`) this member is applying
    /// in the current epoch.
    pub(super) fn keep_certificate(&mut self, committer: &MemberId, raw: &[u8], digest: &[u8; 32]) {
        // The committer's evidence first (a late member may lack the decisions), then the
        // commit, then its acknowledgements.
        let mut messages = self
            .round
            .evidence_messages
            .remove(committer)
            .unwrap_or_default();
        messages.push(raw.to_vec());
        messages.extend(self.round.ack_messages.remove(digest).unwrap_or_default());
        let epoch = self.epoch().map_or(0, |e| e.0);
        self.catch_up.push_back(CatchUp::new(epoch, messages));
        while self.catch_up.len() > CERTIFICATE_EPOCHS {
            self.catch_up.pop_front();
        }
    }

    /// `sender` sent an application message of the previous epoch: it is behind. Relays the
    /// last commit's certificate if this member is one of its relayers and has not relayed it
    /// to `sender` too often.
    pub(super) fn relay_certificate_to(&mut self, now: Instant, sender: &MemberId, epoch: u64) {
        // The members the commit added hold no certificate of it (they joined by its
        // welcome): relayers are picked among the others, or a late member whose next ones
        // in the roster all joined by that commit would never be relayed to (the simulator:
        // `demls-sim --generated 165123477104928 --mode liveness`).
        let joined = self.membership_changes.get(&(epoch + 1));
        let roster: Vec<MemberId> = self
            .roster()
            .into_iter()
            .filter(|m| m == sender || joined.is_none_or(|j| j.binary_search(m).is_err()))
            .collect();
        let Some(pos) = roster.iter().position(|m| m == sender) else {
            return;
        };
        let relayers: Vec<&MemberId> = (1..=RELAYERS.min(roster.len() - 1))
            .map(|k| &roster[(pos + k) % roster.len()])
            .collect();
        if !relayers.contains(&&self.me) {
            return;
        }
        let now_ms = self.clock.unix_ms(now).0;
        let Some(catch_up) = self.catch_up.iter_mut().find(|c| c.epoch == epoch) else {
            return;
        };
        let budget = catch_up.relayed.entry(sender.clone()).or_default();
        if !budget.take(MAX_RELAYS_PER_MEMBER, now_ms) {
            return;
        }
        let messages = catch_up.messages.clone();
        self.relay(messages);
    }

    /// Someone sent an application message of `epoch`, too old for this member to decrypt:
    /// it is several commits behind. If this member kept that epoch's certificate, relays
    /// every kept certificate from it on, oldest first (each [`MAX_BLIND_RELAYS`] times in a
    /// row to unknown senders, then once per [`RELAY_BACKOFF_MS`]). Returns whether it
    /// relayed any.
    pub(super) fn relay_certificates_blind(&mut self, now: Instant, epoch: u64) -> bool {
        if !self.catch_up.iter().any(|c| c.epoch == epoch) {
            return false; // none, or a gap: the late member could not apply what follows
        }
        let now_ms = self.clock.unix_ms(now).0;
        let mut messages = Vec::new();
        for c in self.catch_up.iter_mut().filter(|c| c.epoch >= epoch) {
            if !c.relayed_blind.take(MAX_BLIND_RELAYS, now_ms) {
                break;
            }
            messages.extend(c.messages.iter().cloned());
        }
        let relayed = !messages.is_empty();
        self.relay(messages);
        relayed
    }

    /// Publishes this pending joiner's key package (again).
    pub(super) fn announce(&mut self) -> Result<(), crate::error::Error> {
        let packet = demls_wire::v1::Packet {
            conversation_id: self.id.as_bytes().to_vec(),
            body: Some(demls_wire::v1::packet::Body::KeyPackage(
                demls_wire::v1::KeyPackageAnnouncement {
                    key_package: self.announcement.clone(),
                },
            )),
        };
        self.transmit(Channel::Welcome, TrafficClass::Handshake, packet)
    }

    /// Keeps the welcome `packet` of this member's own commit that added `joiners`, starting
    /// `epoch`.
    pub(super) fn keep_welcome(&mut self, epoch: u64, joiners: Vec<MemberId>, packet: Vec<u8>) {
        self.kept_welcome = Some(KeptWelcome::new(epoch, joiners, packet));
    }

    /// Forgets a kept welcome older than [`CERTIFICATE_EPOCHS`] epochs: its joiners could no
    /// longer catch up from it.
    pub(super) fn expire_welcome(&mut self, epoch: u64) {
        if self
            .kept_welcome
            .as_ref()
            .is_some_and(|w| w.epoch.saturating_add(CERTIFICATE_EPOCHS as u64) <= epoch)
        {
            self.kept_welcome = None;
        }
    }

    /// `member`, already in the roster, announced its key package again: if this member's
    /// kept welcome added it, sends the welcome again (within its budget). Whether `member`
    /// is one of the kept welcome's joiners.
    pub(super) fn resend_welcome_to(&mut self, now: Instant, member: &MemberId) -> bool {
        let now_ms = self.clock.unix_ms(now).0;
        let Some(kept) = self
            .kept_welcome
            .as_mut()
            .filter(|w| w.joiners.contains(member))
        else {
            return false;
        };
        if !kept.relayed.take(MAX_BLIND_RELAYS, now_ms) {
            return true;
        }
        let bytes = kept.packet.clone();
        match demls_wire::v1::Packet::decode(bytes.as_slice()) {
            Ok(packet) => {
                if let Err(e) = self.transmit(Channel::Welcome, TrafficClass::Handshake, packet) {
                    tracing::warn!(error = %e, "could not send a welcome again");
                }
            }
            Err(e) => tracing::error!(error = %e, "kept welcome does not decode"),
        }
        true
    }

    /// This member, just closed by a commit, lingers for [`LINGER`] with `certificate`, that
    /// commit's.
    pub(super) fn linger(&mut self, now: Instant, certificate: CatchUp) {
        self.catch_up = std::iter::once(certificate).collect();
        self.timers.set(TimerKind::Linger, now + LINGER);
    }

    /// A packet reached this closed member. If it lingers ([`LINGER`]) and the packet is an
    /// MLS message of the epoch it left, it relays the certificate (within the relay budget)
    /// and returns `Ok`; anything else is refused with
    /// [`Error::Closed`](crate::error::Error::Closed) and changes nothing.
    pub(super) fn answer_while_closed(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<(), crate::error::Error> {
        use crate::error::Error;
        use openmls::prelude::MlsMessageIn;
        use tls_codec::Deserialize as _;
        let Some(left) = self.catch_up.back().map(|c| c.epoch) else {
            return Err(Error::Closed);
        };
        let limits = demls_wire::Limits {
            max_message_len: self.config.max_packet_len,
            ..self.limits
        };
        let Ok(packet) = demls_wire::decode_packet(bytes, &limits) else {
            return Err(Error::Closed);
        };
        let Some(demls_wire::v1::packet::Body::MlsMessage(m)) = packet.body else {
            return Err(Error::Closed);
        };
        let protocol = MlsMessageIn::tls_deserialize_exact(&m)
            .ok()
            .and_then(|m| m.try_into_protocol_message().ok());
        let ours = packet.conversation_id == self.id.as_bytes()
            && protocol.is_some_and(|p| {
                p.group_id().as_slice() == self.id.as_bytes() && p.epoch().as_u64() == left
            });
        if !ours {
            return Err(Error::Closed);
        }
        let now_ms = self.clock.unix_ms(now).0;
        let certificate = self.catch_up.back_mut().expect("checked above");
        if !certificate
            .relayed_blind
            .take(MAX_RELAYS_PER_MEMBER, now_ms)
        {
            return Err(Error::Closed);
        }
        let messages = certificate.messages.clone();
        self.relay(messages);
        Ok(())
    }

    /// Sends kept MLS messages again, as they were.
    fn relay(&mut self, messages: Vec<Vec<u8>>) {
        for m in messages {
            let packet = self.packet(demls_wire::v1::packet::Body::MlsMessage(m));
            if let Err(e) = self.transmit(Channel::Conversation, TrafficClass::Handshake, packet) {
                tracing::warn!(error = %e, "could not relay a commit's certificate");
                return;
            }
        }
    }

    /// Records the MLS message of an acknowledgement of candidate `digest` (received or
    /// sent), for the certificate.
    pub(super) fn keep_ack_message(&mut self, digest: [u8; 32], message: Vec<u8>) {
        let kept = self.round.ack_messages.entry(digest).or_default();
        if !kept.contains(&message) {
            kept.push(message);
        }
    }

    /// Forgets an acknowledgement message kept by [`Self::keep_ack_message`] (its
    /// acknowledgement was refused).
    pub(super) fn drop_ack_message(&mut self, digest: &[u8; 32], message: &[u8]) {
        if let Some(kept) = self.round.ack_messages.get_mut(digest) {
            kept.retain(|m| m.as_slice() != message);
            if kept.is_empty() {
                self.round.ack_messages.remove(digest);
            }
        }
    }

    /// Records the MLS message of a vote bundle `sender` sent in the current epoch (maybe a
    /// committer's evidence), at most [`MAX_EVIDENCE_MESSAGES`] per sender; whether it was
    /// kept.
    pub(super) fn keep_evidence_message(&mut self, sender: MemberId, message: Vec<u8>) -> bool {
        let kept = self.round.evidence_messages.entry(sender).or_default();
        if kept.len() >= MAX_EVIDENCE_MESSAGES || kept.contains(&message) {
            return false;
        }
        kept.push(message);
        true
    }

    /// Forgets a bundle message kept by [`Self::keep_evidence_message`] (refused).
    pub(super) fn drop_evidence_message(&mut self, sender: &MemberId, message: &[u8]) {
        if let Some(kept) = self.round.evidence_messages.get_mut(sender) {
            kept.retain(|m| m.as_slice() != message);
            if kept.is_empty() {
                self.round.evidence_messages.remove(sender);
            }
        }
    }
}
