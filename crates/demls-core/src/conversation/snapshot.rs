//! Persistence: [`Conversation::snapshot`] → versioned bytes; [`Conversation::restore`] resumes.
//! Restoring at any point and continuing produces exactly what the uninterrupted run produces
//! (BRIEF §3 "Persistence"). Snapshots hold key material and randomness state: treat them as
//! secrets.
//!
//! Format v1 (`DCS` + version 1): identity, configuration, clock, phase, signature key, the MLS
//! provider's snapshot (storage, randomness), the voting machine's snapshot, and the
//! conversation's own buffers and timers. Integers are big-endian; variable-length fields are
//! u32-length-prefixed; times are nanoseconds since the conversation's clock origin.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use demls_consensus::{Choice, ConversationId, Roster, TiePolicy, Voter, VotingMachine};
use openmls::prelude::{GroupId, MlsGroup};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::types::SignatureScheme;
use openmls_traits::OpenMlsProvider;
use sha2::Digest as _;

use super::{roster_of, BufferedKeyPackage, Conversation, Phase};
use crate::clock::Clock;
use crate::codec::{bad, Reader, Writer};
use crate::config::{AutoVote, ConversationConfig};
use crate::error::Error;
use crate::fragment::Reassembler;
use crate::governance;
use crate::mls::DemlsProvider;
use crate::stewards::GovernanceConfig;
use crate::timers::{TimerKind, Timers};

const MAGIC: &[u8; 4] = b"DCS\x01";

fn write_config(w: &mut Writer, c: &ConversationConfig) {
    w.duration(c.voting_duration);
    w.duration(c.freeze_window);
    match c.auto_vote {
        None => w.u8(0),
        Some(a) => {
            w.u8(1);
            w.duration(a.after);
            w.u8(u8::from(a.choice.is_yes()));
        }
    }
    w.u8(u8::from(c.silent_counts_as_yes));
    w.u8(u8::from(c.tie_policy == TiePolicy::Retry));
    w.duration(c.pending_join_expiry);
    for v in [
        c.max_packet_len,
        c.max_payload_len,
        c.max_reassemblies,
        c.max_commit_batch,
        c.max_buffered_messages,
        c.max_open_proposals_per_member,
        c.max_proposals_per_member_per_epoch,
        c.out_of_order_tolerance as usize,
    ] {
        w.u64(v as u64);
    }
    w.duration(c.reassembly_expiry);
    w.duration(c.key_package_lifetime);
    w.duration(c.max_clock_skew);
    let g = &c.governance;
    for v in [g.sn_min, g.sn_max, g.max_reelection_attempts] {
        w.u32(v);
    }
    for d in [
        g.commit_inactivity,
        g.recovery_inactivity,
        g.voting_inactivity,
        g.candidate_window,
    ] {
        w.duration(d);
    }
    w.u8(u8::from(g.single_steward));
    for v in [
        g.default_peer_score,
        g.threshold_peer_score,
        g.commit_reward,
        g.slot_failure_penalty,
        g.ecp_yes_reward,
        g.ecp_no_penalty,
    ] {
        w.u64(v as u64);
    }
}

fn read_governance(r: &mut Reader<'_>) -> Result<GovernanceConfig, Error> {
    let (sn_min, sn_max, max_reelection_attempts) = (r.u32()?, r.u32()?, r.u32()?);
    let (commit_inactivity, recovery_inactivity, voting_inactivity, candidate_window) =
        (r.duration()?, r.duration()?, r.duration()?, r.duration()?);
    let single_steward = r.bool()?;
    let mut scores = [0i64; 6];
    for s in &mut scores {
        *s = r.u64()? as i64;
    }
    Ok(GovernanceConfig {
        sn_min,
        sn_max,
        max_reelection_attempts,
        commit_inactivity,
        recovery_inactivity,
        voting_inactivity,
        candidate_window,
        default_peer_score: scores[0],
        threshold_peer_score: scores[1],
        commit_reward: scores[2],
        slot_failure_penalty: scores[3],
        ecp_yes_reward: scores[4],
        ecp_no_penalty: scores[5],
        single_steward,
    })
}

fn read_config(r: &mut Reader<'_>) -> Result<ConversationConfig, Error> {
    let voting_duration = r.duration()?;
    let freeze_window = r.duration()?;
    let auto_vote = match r.u8()? {
        0 => None,
        1 => Some(AutoVote {
            after: r.duration()?,
            choice: if r.bool()? { Choice::Yes } else { Choice::No },
        }),
        _ => return Err(bad("invalid auto-vote")),
    };
    let silent_counts_as_yes = r.bool()?;
    let tie_policy = if r.bool()? {
        TiePolicy::Retry
    } else {
        TiePolicy::Reject
    };
    let pending_join_expiry = r.duration()?;
    let mut sizes = [0usize; 8];
    for s in &mut sizes {
        *s = usize::try_from(r.u64()?).map_err(|_| bad("size out of range"))?;
    }
    Ok(ConversationConfig {
        voting_duration,
        freeze_window,
        auto_vote,
        silent_counts_as_yes,
        tie_policy,
        pending_join_expiry,
        max_packet_len: sizes[0],
        max_payload_len: sizes[1],
        max_reassemblies: sizes[2],
        max_commit_batch: sizes[3],
        max_buffered_messages: sizes[4],
        max_open_proposals_per_member: sizes[5],
        max_proposals_per_member_per_epoch: sizes[6],
        out_of_order_tolerance: u32::try_from(sizes[7])
            .map_err(|_| bad("out-of-order tolerance out of range"))?,
        reassembly_expiry: r.duration()?,
        key_package_lifetime: r.duration()?,
        max_clock_skew: r.duration()?,
        governance: read_governance(r)?,
    })
}

fn write_timer(w: &mut Writer, kind: TimerKind) {
    kind.encode(&mut w.0);
}

fn read_timer(r: &mut Reader<'_>) -> Result<TimerKind, Error> {
    Ok(match r.u8()? {
        0 => TimerKind::VotingDeadline,
        1 => TimerKind::AutoVote(r.digest()?),
        2 => TimerKind::FreezeWindow,
        3 => TimerKind::PendingJoinExpiry,
        4 => TimerKind::ReassemblyExpiry,
        5 => TimerKind::CommitSlot,
        6 => TimerKind::CandidateWindow,
        7 => TimerKind::Escalation,
        8 => TimerKind::Duties,
        9 => TimerKind::Reannounce,
        10 => TimerKind::Linger,
        _ => return Err(bad("unknown timer kind")),
    })
}

impl Conversation {
    /// Serializes the conversation. Drain [`poll_transmit`](Self::poll_transmit) and
    /// [`poll_event`](Self::poll_event) first; undrained outputs are refused rather than lost.
    /// The bytes contain secrets (keys, randomness state).
    pub fn snapshot(&self) -> Result<Vec<u8>, Error> {
        if !self.transmits.is_empty() || !self.events.is_empty() {
            return Err(bad("drain the outputs before taking a snapshot"));
        }
        let origin = self.clock.origin();
        let since = |t: Instant| t.saturating_duration_since(origin);
        let mut w = Writer(MAGIC.to_vec());
        w.bytes(self.id.as_bytes());
        w.bytes(self.me.as_bytes());
        write_config(&mut w, &self.config);
        w.u64(self.clock.start_unix_ms());
        w.duration(since(self.clock.now()));
        w.u8(self.phase as u8);
        w.bytes(&serde_json::to_vec(&self.signer).map_err(|e| bad(&e.to_string()))?);
        w.bytes(&self.provider.snapshot());
        match &self.voting {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                w.bytes(&v.snapshot().map_err(|e| bad(&e.to_string()))?);
            }
        }
        w.u32(self.actions.len() as u32);
        for (d, a) in &self.actions {
            w.0.extend_from_slice(&d.0);
            w.bytes(&governance::encode(a));
        }
        w.u32(self.approved.len() as u32);
        for d in &self.approved {
            w.0.extend_from_slice(&d.0);
        }
        w.u32(self.evidence.len() as u32);
        for (d, e) in &self.evidence {
            w.0.extend_from_slice(&d.0);
            w.bytes(e);
        }
        w.u32(self.key_packages.len() as u32);
        for (m, kp) in &self.key_packages {
            w.bytes(m.as_bytes());
            w.bytes(&governance::key_package_bytes(&kp.key_package));
            w.u64(kp.seen_at_epoch);
        }
        w.u32(self.future.len() as u32);
        for (e, b, _) in &self.future {
            w.u64(*e);
            w.bytes(b);
        }
        w.u32(self.pending_commits.len() as u32);
        for (sender, b) in &self.pending_commits {
            w.bytes(sender.as_bytes());
            w.bytes(b);
        }
        self.reassembly.write(&mut w, origin);
        let timers: Vec<_> = self.timers.iter().copied().collect();
        w.u32(timers.len() as u32);
        for (at, kind) in timers {
            write_timer(&mut w, kind);
            w.duration(since(at));
        }
        w.u32(self.retired.len() as u32);
        for (epoch, v) in &self.retired {
            w.u64(*epoch);
            w.u32(v.roster().len());
            for voter in v.roster().voters() {
                w.bytes(voter.id.as_bytes());
                w.bytes(&voter.signature_key);
            }
            w.bytes(&v.snapshot().map_err(|e| bad(&e.to_string()))?);
        }
        w.u32(self.membership_changes.len() as u32);
        for (epoch, members) in &self.membership_changes {
            w.u64(*epoch);
            w.u32(members.len() as u32);
            for m in members {
                w.bytes(m.as_bytes());
            }
        }
        w.u64(self.first_epoch);
        w.u32(self.held_voting.len() as u32);
        for (sender, vote) in &self.held_voting {
            w.bytes(sender.as_bytes());
            w.bytes(vote);
        }
        w.u8(u8::from(self.recovery));
        w.u32(self.rejected.len() as u32);
        for d in &self.rejected {
            w.0.extend_from_slice(&d.0);
        }
        let round = &self.round;
        match round.started {
            None => w.u8(0),
            Some(t) => {
                w.u8(1);
                w.duration(since(t));
            }
        }
        w.u32(round.reelections);
        w.u8(u8::from(round.deadlock_due));
        w.u8(u8::from(round.window_closed));
        match round.vouch_wait {
            None => w.u8(0),
            Some((r, t)) => {
                w.u8(1);
                w.u32(r);
                w.duration(since(t));
            }
        }
        w.u32(round.idle_abstentions.0);
        w.0.extend_from_slice(&round.idle_abstentions.1);
        match round.deferred_until {
            None => w.u8(0),
            Some(t) => {
                w.u8(1);
                w.duration(since(t));
            }
        }
        w.u32(round.candidates.len() as u32);
        for c in &round.candidates {
            w.bytes(c.committer.as_bytes());
            w.bytes(&c.raw);
            w.u32(c.batch.len() as u32);
            for d in &c.batch {
                w.0.extend_from_slice(&d.0);
            }
            match &c.welcome {
                None => w.u8(0),
                Some(b) => {
                    w.u8(1);
                    w.bytes(b);
                }
            }
        }
        w.u32(round.equivocators.len() as u32);
        for m in &round.equivocators {
            w.bytes(m.as_bytes());
        }
        w.u32(round.contested.len() as u32);
        for d in &round.contested {
            w.0.extend_from_slice(&d.0);
        }
        w.u32(round.old_acks_sent.len() as u32);
        for (r, ms) in &round.old_acks_sent {
            w.u32(*r);
            w.u64(*ms);
        }
        w.u32(self.creators.len() as u32);
        for (d, m) in &self.creators {
            w.0.extend_from_slice(&d.0);
            w.bytes(m.as_bytes());
        }
        w.u32(self.unconfirmed.len() as u32);
        for (d, since) in &self.unconfirmed {
            w.0.extend_from_slice(&d.0);
            w.u64(*since);
        }
        w.u32(round.claimed.len() as u32);
        for (d, m) in &round.claimed {
            w.0.extend_from_slice(d);
            w.bytes(m.as_bytes());
        }
        w.u32(round.acks.len() as u32);
        w.u32(round.ack_round);
        for ((r, d), ackers) in &round.acks {
            w.u32(*r);
            w.0.extend_from_slice(d);
            w.u32(ackers.len() as u32);
            for m in ackers {
                w.bytes(m.as_bytes());
            }
        }
        w.u32(round.evidence_messages.len() as u32);
        for (sender, messages) in &round.evidence_messages {
            w.bytes(sender.as_bytes());
            w.u32(messages.len() as u32);
            for m in messages {
                w.bytes(m);
            }
        }
        w.u32(round.ack_messages.len() as u32);
        for (d, messages) in &round.ack_messages {
            w.0.extend_from_slice(d);
            w.u32(messages.len() as u32);
            for m in messages {
                w.bytes(m);
            }
        }
        w.u8(self.catch_up.len() as u8);
        for c in &self.catch_up {
            w.u64(c.epoch);
            w.u32(c.messages().len() as u32);
            for m in c.messages() {
                w.bytes(m);
            }
            w.u32(c.relayed.len() as u32);
            for (m, budget) in &c.relayed {
                w.bytes(m.as_bytes());
                w.u8(budget.count);
                w.u64(budget.last_ms);
            }
            w.u8(c.relayed_blind.count);
            w.u64(c.relayed_blind.last_ms);
        }
        match &self.kept_welcome {
            None => w.u8(0),
            Some(k) => {
                w.u8(1);
                w.u64(k.epoch);
                w.u32(k.joiners.len() as u32);
                for m in &k.joiners {
                    w.bytes(m.as_bytes());
                }
                w.bytes(k.packet());
                w.u8(k.relayed.count);
                w.u64(k.relayed.last_ms);
            }
        }
        match self.own_removal_since {
            None => w.u8(0),
            Some(ms) => {
                w.u8(1);
                w.u64(ms);
            }
        }
        w.bytes(&self.announcement);
        Ok(w.0)
    }

    /// Resumes a conversation from [`snapshot`](Self::snapshot) bytes. `now` is the host's
    /// current `Instant` and `unix_ms` the Unix time at `now` in milliseconds (as for
    /// [`create`](Self::create)): `Instant`s do not survive a process, so derived time is
    /// re-anchored on it. Timers keep their derived times; a `unix_ms` earlier than the
    /// snapshot's latest time is clamped (time never goes backwards). Bad bytes give
    /// [`Error::Snapshot`], never a panic.
    pub fn restore(bytes: &[u8], now: Instant, unix_ms: u64) -> Result<Self, Error> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(bad("not a version-1 conversation snapshot"));
        }
        let id = ConversationId::new(r.bytes()?.to_vec()).map_err(|_| bad("invalid id"))?;
        let me = r.member()?;
        let config = read_config(&mut r)?;
        let start_unix_ms = r.u64()?;
        let latest = r.duration()?;
        // The origin is where derived time was `start_unix_ms`; never later than `latest`
        // allows (time does not go backwards across a restore).
        let since_start = Duration::from_millis(unix_ms.saturating_sub(start_unix_ms)).max(latest);
        let origin = now.checked_sub(since_start).ok_or(bad(
            "the host's clock cannot represent the snapshot's origin",
        ))?;
        let mut clock = Clock::new(origin, start_unix_ms);
        clock.advance(origin + latest);
        let phase = match r.u8()? {
            0 => Phase::PendingJoin,
            1 => Phase::Member,
            2 => Phase::Closed,
            _ => return Err(bad("unknown phase")),
        };
        let signer: SignatureKeyPair =
            serde_json::from_slice(r.bytes()?).map_err(|_| bad("invalid signature key"))?;
        let provider = DemlsProvider::restore(r.bytes()?).map_err(|e| bad(&e.to_string()))?;
        let mut c = Conversation::new_restored(config, id, me, signer, provider, clock);
        c.phase = phase;
        let voting = match r.u8()? {
            0 => None,
            1 => Some(r.bytes()?),
            _ => return Err(bad("invalid voting flag")),
        };
        if let Some(group) =
            MlsGroup::load(c.provider.storage(), &GroupId::from_slice(c.id.as_bytes()))
                .map_err(|e| bad(&e.to_string()))?
        {
            if phase != Phase::PendingJoin {
                c.install_group(group)?;
                c.phase = phase;
                if phase == Phase::Closed {
                    c.voting = None; // a closed conversation votes no more
                }
            }
        }
        if let (Some(bytes), Some(group)) = (voting, c.group.as_ref()) {
            let roster = roster_of(group)?;
            let config = c
                .voting
                .as_ref()
                .expect("installed with the group")
                .config()
                .clone();
            c.voting = Some(
                VotingMachine::restore(config, roster, bytes).map_err(|e| bad(&e.to_string()))?,
            );
        }
        let mut actions = BTreeMap::new();
        for _ in 0..r.u32()? {
            let d = r.digest()?;
            let payload = r.bytes()?;
            let action = governance::decode(c.provider.crypto(), payload, &c.limits, None)?;
            actions.insert(d, action);
        }
        c.actions = actions;
        let mut approved = BTreeSet::new();
        for _ in 0..r.u32()? {
            approved.insert(r.digest()?);
        }
        c.approved = approved;
        for _ in 0..r.u32()? {
            let d = r.digest()?;
            c.evidence.insert(d, r.bytes()?.to_vec());
        }
        for _ in 0..r.u32()? {
            let member = r.member()?;
            let (_, key_package) =
                governance::parse_key_package(c.provider.crypto(), r.bytes()?, None)?;
            let seen_at_epoch = r.u64()?;
            c.key_packages.insert(
                member,
                BufferedKeyPackage {
                    key_package,
                    seen_at_epoch,
                },
            );
        }
        let mut future = VecDeque::new();
        for _ in 0..r.u32()? {
            let e = r.u64()?;
            let bytes = r.bytes()?.to_vec();
            let digest = sha2::Sha256::digest(&bytes).into();
            future.push_back((e, bytes, digest));
        }
        c.future = future;
        for _ in 0..r.u32()? {
            let sender = r.member()?;
            c.pending_commits.push((sender, r.bytes()?.to_vec()));
        }
        c.reassembly = Reassembler::read(&mut r, origin)?;
        let mut timers = Timers::default();
        for _ in 0..r.u32()? {
            let kind = read_timer(&mut r)?;
            timers.set(kind, origin + r.duration()?);
        }
        c.timers = timers;
        for _ in 0..r.u32()? {
            let epoch = r.u64()?;
            let mut voters = Vec::new();
            for _ in 0..r.u32()? {
                let id = r.member()?;
                voters.push(Voter {
                    id,
                    signature_key: r.bytes()?.to_vec(),
                });
            }
            let roster =
                Roster::new(SignatureScheme::ED25519, voters).map_err(|e| bad(&e.to_string()))?;
            let config = c
                .voting
                .as_ref()
                .ok_or(bad("retired voting state without a group"))?
                .config()
                .clone();
            let machine = VotingMachine::restore(config, roster, r.bytes()?)
                .map_err(|e| bad(&e.to_string()))?;
            c.retired.insert(epoch, machine);
        }
        c.refresh_retired_digest();
        for _ in 0..r.u32()? {
            let epoch = r.u64()?;
            let mut members = Vec::new();
            for _ in 0..r.u32()? {
                members.push(r.member()?);
            }
            c.membership_changes.insert(epoch, members);
        }
        c.first_epoch = r.u64()?;
        for _ in 0..r.u32()? {
            let sender = r.member()?;
            c.held_voting.push_back((sender, r.bytes()?.to_vec()));
        }
        c.recovery = r.bool()?;
        for _ in 0..r.u32()? {
            c.rejected.insert(r.digest()?);
        }
        c.round.started = match r.u8()? {
            0 => None,
            1 => Some(origin + r.duration()?),
            _ => return Err(bad("invalid round flag")),
        };
        c.round.reelections = r.u32()?;
        c.round.deadlock_due = r.bool()?;
        c.round.window_closed = r.bool()?;
        c.round.vouch_wait = match r.u8()? {
            0 => None,
            1 => Some((r.u32()?, origin + r.duration()?)),
            _ => return Err(bad("invalid voucher wait flag")),
        };
        c.round.idle_abstentions = (r.u32()?, r.digest()?.0);
        c.round.deferred_until = match r.u8()? {
            0 => None,
            1 => Some(origin + r.duration()?),
            _ => return Err(bad("invalid deferral flag")),
        };
        for _ in 0..r.u32()? {
            let committer = r.member()?;
            let raw = r.bytes()?.to_vec();
            let mut batch = Vec::new();
            for _ in 0..r.u32()? {
                batch.push(r.digest()?);
            }
            let welcome = match r.u8()? {
                0 => None,
                1 => Some(r.bytes()?.to_vec()),
                _ => return Err(bad("invalid welcome flag")),
            };
            c.round.candidates.push(super::round::Candidate {
                committer,
                digest: sha2::Sha256::digest(&raw).into(),
                raw,
                batch,
                staged: None,
                welcome,
            });
        }
        for _ in 0..r.u32()? {
            c.round.equivocators.insert(r.member()?);
        }
        for _ in 0..r.u32()? {
            c.round.contested.insert(r.digest()?);
        }
        for _ in 0..r.u32()? {
            let round = r.u32()?;
            c.round.old_acks_sent.insert(round, r.u64()?);
        }
        for _ in 0..r.u32()? {
            let d = r.digest()?;
            c.creators.insert(d, r.member()?);
        }
        for _ in 0..r.u32()? {
            let d = r.digest()?;
            c.unconfirmed.insert(d, r.u64()?);
        }
        for _ in 0..r.u32()? {
            let d = r.digest()?.0;
            c.round.claimed.insert(d, r.member()?);
        }
        let n_acks = r.u32()?;
        c.round.ack_round = r.u32()?;
        for _ in 0..n_acks {
            let round = r.u32()?;
            let d: [u8; 32] = r.digest()?.0;
            let mut ackers = BTreeSet::new();
            for _ in 0..r.u32()? {
                ackers.insert(r.member()?);
            }
            c.round.acks.insert((round, d), ackers);
        }
        for _ in 0..r.u32()? {
            let sender = r.member()?;
            let mut messages = Vec::new();
            for _ in 0..r.u32()? {
                messages.push(r.bytes()?.to_vec());
            }
            c.round.evidence_messages.insert(sender, messages);
        }
        for _ in 0..r.u32()? {
            let d: [u8; 32] = r.digest()?.0;
            let mut messages = Vec::new();
            for _ in 0..r.u32()? {
                messages.push(r.bytes()?.to_vec());
            }
            c.round.ack_messages.insert(d, messages);
        }
        let certificates = r.u8()? as usize;
        if certificates > super::catch_up::CERTIFICATE_EPOCHS {
            return Err(bad("too many catch-up certificates"));
        }
        for _ in 0..certificates {
            let epoch = r.u64()?;
            let mut messages = Vec::new();
            for _ in 0..r.u32()? {
                messages.push(r.bytes()?.to_vec());
            }
            let mut relayed = BTreeMap::new();
            for _ in 0..r.u32()? {
                let m = r.member()?;
                let (count, last_ms) = (r.u8()?, r.u64()?);
                relayed.insert(m, super::catch_up::RelayBudget { count, last_ms });
            }
            let relayed_blind = super::catch_up::RelayBudget {
                count: r.u8()?,
                last_ms: r.u64()?,
            };
            let mut certificate = super::catch_up::CatchUp::new(epoch, messages);
            certificate.relayed = relayed;
            certificate.relayed_blind = relayed_blind;
            c.catch_up.push_back(certificate);
        }
        c.kept_welcome = match r.u8()? {
            0 => None,
            1 => {
                let epoch = r.u64()?;
                let count = r.u32()? as usize;
                if count > c.config.max_commit_batch {
                    return Err(bad("too many joiners in the kept welcome"));
                }
                let mut joiners = Vec::with_capacity(count);
                for _ in 0..count {
                    joiners.push(r.member()?);
                }
                let packet = r.bytes()?.to_vec();
                let relayed = super::catch_up::RelayBudget {
                    count: r.u8()?,
                    last_ms: r.u64()?,
                };
                let mut kept = super::catch_up::KeptWelcome::new(epoch, joiners, packet);
                kept.relayed = relayed;
                Some(kept)
            }
            _ => return Err(bad("invalid kept-welcome flag")),
        };
        c.own_removal_since = match r.u8()? {
            0 => None,
            1 => Some(r.u64()?),
            _ => return Err(bad("invalid own-removal flag")),
        };
        c.announcement = r.bytes()?.to_vec();
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(c)
    }
}
