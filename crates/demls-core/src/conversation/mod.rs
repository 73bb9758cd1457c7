//! [`Conversation`]: one member's view of one de-MLS group.

mod acks;
mod catch_up;
mod commands;
mod commit;
mod inbound;
mod round;

#[cfg(feature = "test-utils")]
pub use round::Byzantine;
mod snapshot;
mod test_builders;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use demls_consensus::{
    Config as VotingConfig, ConversationId, Epoch, MemberId, ProposalDigest, Roster, Voter,
    VotingMachine,
};
use demls_wire::{v1, Limits};
use openmls::prelude::{
    BasicCredential, Capabilities, Ciphersuite, CredentialWithKey, ExtensionType, Extensions,
    GroupId, KeyPackage, Lifetime, MlsGroup, SenderRatchetConfiguration,
    PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::random::OpenMlsRand;
use openmls_traits::types::SignatureScheme;
use openmls_traits::OpenMlsProvider;
use prost::Message;
use sha2::{Digest as _, Sha256};

use crate::clock::Clock;
use crate::config::ConversationConfig;
use crate::error::Error;
use crate::event::Event;
use crate::fragment::{self, Reassembler};
use crate::governance::{self, ParsedAction};
use crate::mls::DemlsProvider;
use crate::stewards::GroupState;
use crate::timers::{TimerKind, Timers};
use crate::transmit::{Channel, TrafficClass, Transmit};

/// The MLS ciphersuite of every demls group: X25519, AES-128-GCM, SHA-256, Ed25519.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// Private-use GroupContext extension type carrying [`v1::GroupParams`].
pub const GROUP_PARAMS_EXTENSION: u16 = 0xF0D1;
/// Key packages seen on the welcome channel are kept this many epochs ("Buffering
/// KeyPackages").
const KEY_PACKAGE_BUFFER_EPOCHS: u64 = 3;
/// Commits that cannot be justified yet (their proposals are not finalized here) wait here.
const MAX_PENDING_COMMITS: usize = 4;
/// Voting machines of past epochs kept after an epoch change, so that proposals still open
/// then can be finalized later — from votes still in flight or from the evidence a commit
/// carries — by a member that moved on before seeing enough votes (docs/protocol.md §8).
const RETIRED_VOTING_EPOCHS: usize = 8;
/// Past epochs whose application messages openmls can still decrypt: a proposal or vote sent
/// just before an epoch change and delivered after it still counts. Each kept epoch costs
/// its message secrets in memory and in every storage write, so the window is short; older
/// proposals are finalized from the evidence their commit carries.
const PAST_MLS_EPOCHS: usize = 1;

/// Where the member is in the conversation's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Published a key package; waiting for a welcome.
    PendingJoin,
    /// A member of the group.
    Member,
    /// No longer a member (left, removed, or the join expired).
    Closed,
}

/// A key package seen on the welcome channel.
#[derive(Debug, Clone)]
struct BufferedKeyPackage {
    key_package: KeyPackage,
    seen_at_epoch: u64,
}

/// One member's view of one de-MLS conversation: a pure, deterministic, caller-polled state
/// machine (sans-IO) over openmls and the [`VotingMachine`].
///
/// It owns no clock, thread, lock, socket or entropy source. Same seed and same inputs give
/// byte-identical transmits, events and state digests.
///
/// # Inputs (each takes `now: Instant`, the host's monotonic clock)
/// * [`handle_packet`](Self::handle_packet) — a packet received on the welcome or
///   conversation channel.
/// * [`tick_deadlines`](Self::tick_deadlines) — fires every deadline that is due: automatic
///   votes, voting deadlines, the freeze window, pending-join expiry, reassembly expiry.
///   Harmless when nothing is due.
///
/// # Commands
/// [`propose_add`](Self::propose_add), [`propose_remove`](Self::propose_remove),
/// [`vote`](Self::vote), [`send_message`](Self::send_message), [`leave`](Self::leave).
///
/// # Outputs — drain after **every** input and command, in this order
/// 1. [`poll_transmit`](Self::poll_transmit) until `None`: packets to publish, each with its
///    [`Channel`] and [`TrafficClass`], each at most the configured packet size;
/// 2. [`poll_event`](Self::poll_event) until `None`: what happened, in causal order;
/// 3. [`next_deadline`](Self::next_deadline): sleep until then (or the next packet), then call
///    [`tick_deadlines`](Self::tick_deadlines). It is `<= now` when work is already due.
///
/// # Getters
/// [`epoch`](Self::epoch), [`roster`](Self::roster), [`phase`](Self::phase),
/// [`stewards`](Self::stewards), [`epoch_authenticator`](Self::epoch_authenticator),
/// [`state_digest`](Self::state_digest).
///
/// # Time
/// `now` is the host's `Instant`. Protocol timestamps (signed into proposals and votes,
/// key-package lifetimes) are derived: the Unix time given at construction plus the time
/// elapsed since the construction `Instant`. `now` never goes backwards: an earlier value is
/// clamped to the latest seen.
///
/// # Randomness
/// Every random draw (signature and HPKE keys, HPKE encryption, ids) comes from streams derived
/// from the construction seed, into which [`mix_entropy`](Self::mix_entropy) mixes fresh
/// entropy supplied by the host. Treat the seed, the entropy and snapshots as secrets.
///
/// # Bad input
/// A malformed, forged, replayed, stale, foreign or unauthorized packet returns a typed
/// [`Error`], never panics, and leaves [`state_digest`](Self::state_digest) unchanged.
pub struct Conversation {
    id: ConversationId,
    config: ConversationConfig,
    limits: Limits,
    clock: Clock,
    provider: DemlsProvider,
    me: MemberId,
    signer: SignatureKeyPair,
    phase: Phase,
    group: Option<MlsGroup>,
    voting: Option<VotingMachine>,
    /// Voting machines of the last [`RETIRED_VOTING_EPOCHS`] epochs, by epoch.
    retired: BTreeMap<u64, VotingMachine>,
    /// Digest of `retired`, refreshed whenever a retired machine changes (they rarely do,
    /// and hashing their votes on every `state_digest` call was a fifth of a member's CPU).
    retired_digest: [u8; 32],
    /// The members each commit of the retired machines' span added or removed, by the epoch
    /// it started. A proposal about a member whose membership changed after the proposal's
    /// epoch is moot (a used key package, a member already gone or re-added): judged by
    /// this history, not by the roster at decision time, so members deciding in different
    /// epochs agree ([`Conversation::changed_since`]).
    membership_changes: BTreeMap<u64, Vec<MemberId>>,
    /// The first epoch this member belonged to (0 for the creator).
    first_epoch: u64,
    /// Voting messages held back, with their MLS sender, in arrival order, at most
    /// `max_buffered_messages`: votes that arrived before their proposal (the network
    /// reorders), fed to the voting machine once the proposal opens; and proposals (alone or
    /// in bundles) that arrived while a higher-priority one was open ("Partial Freeze
    /// Semantics"), neither voted on nor forwarded until the freeze lifts, then processed.
    held_voting: VecDeque<(MemberId, Vec<u8>)>,
    /// The group's agreed governance state (steward list, scores, parameters), from the MLS
    /// group context; `None` until this member is in a group.
    gov: Option<GroupState>,
    /// Layer 3 recovery mode: a deadlock emergency proposal was finalized YES this epoch and
    /// any member may commit, until the first valid commit.
    recovery: bool,
    /// The commit round of the current epoch.
    round: round::CommitRound,
    /// The certificates of the last commits applied (oldest first, at most
    /// `catch_up::CERTIFICATE_EPOCHS`), relayed to members still in their epochs.
    catch_up: std::collections::VecDeque<catch_up::CatchUp>,
    /// The welcome of this member's last commit that added members, sent again when one of
    /// them announces its key package again (the welcome was lost).
    kept_welcome: Option<catch_up::KeptWelcome>,
    /// Since when (Unix ms) this member holds its own removal approved (a commit a round
    /// later that did not apply it makes it open a leave, see `on_epoch_change`).
    own_removal_since: Option<u64>,
    /// A pending joiner's key package announcement (the key package bytes), published again
    /// every `catch_up::REANNOUNCE_INTERVAL` until a welcome arrives; empty otherwise.
    announcement: Vec<u8>,
    /// Emergency proposals finalized NO and not yet committed: the next commit records them
    /// (their creators' penalty).
    rejected: BTreeSet<ProposalDigest>,
    /// Creators of proposals this member knows only from a Welcome (decided before it
    /// joined), for the score deltas of the commit that applies them.
    creators: BTreeMap<ProposalDigest, MemberId>,
    /// Decisions this member took on another member's word — a Welcome's carried approvals
    /// and rejections, pre-join evidence — and has not yet seen vouched for by ⌈n/3⌉
    /// members (acknowledgements of candidates that apply them). It holds them to validate
    /// commits, but under acknowledgement rounds it neither commits them nor acknowledges a
    /// candidate that applies them until then: a Byzantine committer's word alone could
    /// otherwise make joiners acknowledge what no honest member approved (docs/protocol.md
    /// §9; with fewer than n/3 Byzantine members, ⌈n/3⌉ vouchers include an honest one).
    /// Each with the epoch from which it is held so (see `Conversation::stale_unconfirmed`).
    unconfirmed: BTreeMap<ProposalDigest, u64>,
    /// Fault injection (feature `test-utils`): how this member misbehaves as a steward.
    #[cfg(feature = "test-utils")]
    byzantine: round::Byzantine,
    /// Actions of the proposals known this epoch.
    actions: BTreeMap<ProposalDigest, ParsedAction>,
    /// Finalized YES proposals not yet committed; kept across epochs until committed or moot.
    approved: BTreeSet<ProposalDigest>,
    /// The evidence of each approved proposal (an encoded vote bundle), captured at decision.
    evidence: BTreeMap<ProposalDigest, Vec<u8>>,
    key_packages: BTreeMap<MemberId, BufferedKeyPackage>,
    /// MLS messages for a future epoch, in arrival order.
    future: VecDeque<(u64, Vec<u8>, [u8; 32])>,
    /// Commits whose proposals are not (yet) finalized here, with their MLS senders.
    pending_commits: Vec<(MemberId, Vec<u8>)>,
    reassembly: Reassembler,
    timers: Timers,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material: identity, phase and epoch only.
        f.debug_struct("Conversation")
            .field("id", &self.id)
            .field("me", &self.me)
            .field("phase", &self.phase)
            .field("epoch", &self.epoch())
            .finish_non_exhaustive()
    }
}

impl Conversation {
    /// Creates a new conversation with this member as its sole member and steward, at epoch 0
    /// ("Single steward", step 1).
    ///
    /// `seed` is the secret from which every random draw derives; `now` and `unix_ms` anchor
    /// derived time (the Unix time in milliseconds at `now`).
    pub fn create(
        config: ConversationConfig,
        id: ConversationId,
        me: MemberId,
        seed: [u8; 32],
        now: Instant,
        unix_ms: u64,
    ) -> Result<Self, Error> {
        let mut c = Self::new(config, id, me, seed, now, unix_ms);
        c.provider.prepare_operation();
        let state = GroupState::initial(c.me.clone(), c.config.governance.clone());
        let extensions = Self::params_extensions(&state)?;
        let group = MlsGroup::builder()
            .with_group_id(GroupId::from_slice(c.id.as_bytes()))
            .ciphersuite(CIPHERSUITE)
            .with_wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .sender_ratchet_configuration(c.sender_ratchet())
            .max_past_epochs(PAST_MLS_EPOCHS)
            .use_ratchet_tree_extension(true)
            .with_capabilities(capabilities())
            .with_group_context_extensions(extensions)
            .lifetime(c.lifetime())
            .build(&c.provider, &c.signer, c.credential())
            .map_err(mls_error)?;
        c.install_group(group)?;
        Ok(c)
    }

    /// Starts joining conversation `id`: publishes this member's key package on the welcome
    /// channel ("Single steward", step 3) and waits for a welcome until the pending-join
    /// expiry.
    pub fn join(
        config: ConversationConfig,
        id: ConversationId,
        me: MemberId,
        seed: [u8; 32],
        now: Instant,
        unix_ms: u64,
    ) -> Result<Self, Error> {
        let mut c = Self::new(config, id, me, seed, now, unix_ms);
        c.phase = Phase::PendingJoin;
        c.provider.prepare_operation();
        let bundle = KeyPackage::builder()
            .key_package_lifetime(c.lifetime())
            .leaf_node_capabilities(capabilities())
            .build(CIPHERSUITE, &c.provider, &c.signer, c.credential())
            .map_err(mls_error)?;
        c.announcement = governance::key_package_bytes(bundle.key_package());
        c.announce()?;
        c.timers.set(
            TimerKind::PendingJoinExpiry,
            now + c.config.pending_join_expiry,
        );
        c.timers
            .set(TimerKind::Reannounce, now + catch_up::REANNOUNCE_INTERVAL);
        Ok(c)
    }

    fn new(
        config: ConversationConfig,
        id: ConversationId,
        me: MemberId,
        seed: [u8; 32],
        now: Instant,
        unix_ms: u64,
    ) -> Self {
        let mut provider = DemlsProvider::new(seed);
        let signer = provider.generate_signature_keypair();
        Self::new_restored(config, id, me, signer, provider, Clock::new(now, unix_ms))
    }

    fn new_restored(
        config: ConversationConfig,
        id: ConversationId,
        me: MemberId,
        signer: SignatureKeyPair,
        provider: DemlsProvider,
        clock: Clock,
    ) -> Self {
        let limits = Limits {
            max_message_len: config.max_payload_len,
            ..Limits::default()
        };
        Self {
            id,
            config,
            limits,
            clock,
            provider,
            me,
            signer,
            phase: Phase::Member,
            group: None,
            voting: None,
            retired: BTreeMap::new(),
            retired_digest: Sha256::new().finalize().into(), // of no retired machine
            membership_changes: BTreeMap::new(),
            first_epoch: 0,
            held_voting: VecDeque::new(),
            gov: None,
            recovery: false,
            round: round::CommitRound::default(),
            catch_up: Default::default(),
            kept_welcome: None,
            own_removal_since: None,
            announcement: Vec::new(),
            rejected: BTreeSet::new(),
            creators: BTreeMap::new(),
            unconfirmed: BTreeMap::new(),
            #[cfg(feature = "test-utils")]
            byzantine: Default::default(),
            actions: BTreeMap::new(),
            approved: BTreeSet::new(),
            evidence: BTreeMap::new(),
            key_packages: BTreeMap::new(),
            future: VecDeque::new(),
            pending_commits: Vec::new(),
            reassembly: Reassembler::default(),
            timers: Timers::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Recomputes [`Self::retired_digest`]; call after any change to a retired machine.
    pub(super) fn refresh_retired_digest(&mut self) {
        let mut h = Sha256::new();
        for (e, v) in &self.retired {
            h.update(e.to_be_bytes());
            h.update(v.state_digest());
        }
        self.retired_digest = h.finalize().into();
    }

    /// The openmls sender-ratchet configuration: our out-of-order tolerance, openmls's
    /// default maximum forward distance (1000).
    pub(super) fn sender_ratchet(&self) -> SenderRatchetConfiguration {
        SenderRatchetConfiguration::new(self.config.out_of_order_tolerance, 1000)
    }

    /// Mixes fresh entropy from the host into the randomness streams. Call it with OS
    /// entropy in production (e.g. before each command); the simulator feeds seeded bytes.
    pub fn mix_entropy(&mut self, entropy: &[u8]) {
        self.provider.mix_entropy(entropy);
    }

    // ----- getters -----

    /// The conversation id.
    pub fn id(&self) -> &ConversationId {
        &self.id
    }

    /// This member's id.
    pub fn member_id(&self) -> &MemberId {
        &self.me
    }

    /// Lifecycle phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The current MLS epoch, once a member.
    pub fn epoch(&self) -> Option<Epoch> {
        self.group.as_ref().map(|g| Epoch(g.epoch().as_u64()))
    }

    /// Member ids of the group, sorted.
    pub fn roster(&self) -> Vec<MemberId> {
        self.voting
            .as_ref()
            .map(|v| v.roster().voters().iter().map(|v| v.id.clone()).collect())
            .unwrap_or_default()
    }

    /// The steward list of the current epoch, in list order (empty before joining).
    pub fn stewards(&self) -> &[MemberId] {
        self.gov.as_ref().map_or(&[], |g| g.stewards.as_slice())
    }

    /// The group's agreed governance state: steward list, peer scores, parameters.
    pub fn group_state(&self) -> Option<&GroupState> {
        self.gov.as_ref()
    }

    /// The rotation of the current epoch: who may commit, in order ("Layer 1"). Position 0
    /// is the epoch steward, 1 the backup. In recovery mode, every member by id.
    pub fn rotation(&self) -> Vec<MemberId> {
        self.primary_walk()
    }

    /// Whether recovery mode is on ("Layer 3").
    pub fn in_recovery(&self) -> bool {
        self.recovery
    }

    /// The MLS epoch authenticator: equal at all members of the same epoch.
    pub fn epoch_authenticator(&self) -> Option<Vec<u8>> {
        self.group
            .as_ref()
            .map(|g| g.epoch_authenticator().as_slice().to_vec())
    }

    /// The configuration.
    pub fn config(&self) -> &ConversationConfig {
        &self.config
    }

    /// Proposals finalized YES and not yet committed, ascending by digest.
    pub fn approved_proposals(&self) -> Vec<ProposalDigest> {
        self.approved.iter().copied().collect()
    }

    /// SHA-256 over the protocol state in canonical order: phase, epoch, epoch authenticator,
    /// stewards, voting state, known and approved proposals, buffered key packages, future-epoch
    /// and pending-commit buffers, fragment reassemblies, timers, and undrained outputs. MLS
    /// secret-tree ratchet positions are not included (openmls keeps them internally).
    pub fn state_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"demls/v1/conversation-state");
        h.update(self.id.as_bytes());
        h.update([self.phase as u8]);
        if let Some(e) = self.epoch() {
            h.update(e.0.to_be_bytes());
        }
        if let Some(a) = self.epoch_authenticator() {
            h.update(a);
        }
        if let Some(g) = &self.gov {
            lp(&mut h, &g.to_proto().encode_to_vec());
        }
        h.update([u8::from(self.recovery)]);
        self.round.hash(&mut h);
        h.update([self.catch_up.len() as u8]);
        for c in &self.catch_up {
            c.hash(&mut h);
        }
        match &self.kept_welcome {
            Some(w) => {
                h.update([1]);
                w.hash(&mut h);
            }
            None => h.update([0]),
        }
        match self.own_removal_since {
            None => h.update([0]),
            Some(ms) => {
                h.update([1]);
                h.update(ms.to_be_bytes());
            }
        }
        lp(&mut h, &self.announcement);
        for d in &self.rejected {
            h.update(d.0);
        }
        for (d, m) in &self.creators {
            h.update(d.0);
            lp(&mut h, m.as_bytes());
        }
        h.update((self.unconfirmed.len() as u64).to_be_bytes());
        for (d, since) in &self.unconfirmed {
            h.update(d.0);
            h.update(since.to_be_bytes());
        }

        if let Some(v) = &self.voting {
            h.update(v.state_digest());
        }
        h.update(self.retired_digest);
        for (e, members) in &self.membership_changes {
            h.update(e.to_be_bytes());
            h.update((members.len() as u64).to_be_bytes());
            for m in members {
                lp(&mut h, m.as_bytes());
            }
        }
        h.update(self.first_epoch.to_be_bytes());
        for (sender, vote) in &self.held_voting {
            lp(&mut h, sender.as_bytes());
            lp(&mut h, vote);
        }
        for (d, a) in &self.actions {
            h.update(d.0);
            lp(&mut h, &governance::encode(a));
        }
        for d in &self.approved {
            h.update(d.0);
        }
        for (d, e) in &self.evidence {
            h.update(d.0);
            h.update(Sha256::digest(e));
        }
        for (m, kp) in &self.key_packages {
            lp(&mut h, m.as_bytes());
            h.update(kp.seen_at_epoch.to_be_bytes());
        }
        for (e, _, digest) in &self.future {
            h.update(e.to_be_bytes());
            h.update(digest);
        }
        for (sender, bytes) in &self.pending_commits {
            lp(&mut h, sender.as_bytes());
            h.update(Sha256::digest(bytes));
        }
        h.update((self.reassembly.len() as u64).to_be_bytes());
        let mut buf = Vec::new();
        for (at, kind) in self.timers.iter() {
            h.update(self.clock.unix_ms(*at).0.to_be_bytes());
            buf.clear();
            kind.encode(&mut buf);
            lp(&mut h, &buf);
        }
        for t in &self.transmits {
            h.update([t.channel as u8, t.class as u8]);
            h.update(Sha256::digest(&t.payload));
        }
        for e in &self.events {
            buf.clear();
            e.encode(&mut buf);
            lp(&mut h, &buf);
        }
        h.finalize().into()
    }

    /// Approximate bytes this conversation holds: its serialized MLS and randomness state
    /// plus its buffered key packages, messages and fragments (the voting machine's bounded state, at most
    /// `max_proposals_per_epoch` proposals, is not counted).
    pub fn memory_bytes(&self) -> usize {
        use tls_codec::Size as _;
        self.provider.snapshot().len()
            + self
                .key_packages
                .values()
                .map(|k| k.key_package.tls_serialized_len())
                .sum::<usize>()
            + self.future.iter().map(|(_, b, _)| b.len()).sum::<usize>()
            + self
                .pending_commits
                .iter()
                .map(|(_, b)| b.len())
                .sum::<usize>()
            + self.round.bytes()
            + self
                .catch_up
                .iter()
                .map(catch_up::CatchUp::bytes)
                .sum::<usize>()
            + self.reassembly.bytes()
    }

    // ----- outputs -----

    /// The next packet to publish.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`tick_deadlines`](Self::tick_deadlines) must be called next.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.next().map(|(at, _)| at);
        let voting = self
            .voting
            .iter()
            .chain(self.retired.values())
            .filter_map(|v| v.next_deadline())
            .min()
            .map(|t| self.clock.instant_of(t));
        [timer, voting].into_iter().flatten().min()
    }

    /// Fires every deadline that is due at `now`. Harmless when nothing is due.
    pub fn tick_deadlines(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        while let Some(kind) = self.timers.pop_due(now) {
            self.on_timer(kind, now);
        }
        let unix = self.clock.unix_ms(now);
        if let Some(v) = self.voting.as_mut() {
            v.tick_deadlines(unix);
        }
        let retired_due = self
            .retired
            .values()
            .any(|v| v.next_deadline().is_some_and(|d| d <= unix));
        if retired_due {
            for v in self.retired.values_mut() {
                v.tick_deadlines(unix);
            }
            self.refresh_retired_digest();
        }
        self.drain_voting(now);
        // Decisions may have justified waiting commits, or armed the freeze window at `now`.
        self.retry_pending_commits(now);
        while let Some(kind) = self.timers.pop_due(now) {
            self.on_timer(kind, now);
        }
    }

    fn on_timer(&mut self, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::VotingDeadline => {}
            TimerKind::AutoVote(proposal) => {
                if let Some(auto) = self.config.auto_vote {
                    // The proposal may have been decided meanwhile: nothing to do then.
                    let _ = self.cast_vote(now, proposal, auto.choice);
                }
            }
            TimerKind::FreezeWindow => self.on_freeze_closed(now),
            TimerKind::CommitSlot => self.on_commit_slot(now),
            TimerKind::CandidateWindow => self.on_candidate_window(now),
            TimerKind::Escalation => self.on_escalation(now),
            TimerKind::Duties => self.perform_duties(now),
            TimerKind::PendingJoinExpiry => {
                if self.phase == Phase::PendingJoin {
                    self.phase = Phase::Closed;
                    self.announcement.clear();
                    self.timers.stop(TimerKind::Reannounce);
                    self.events.push_back(Event::JoinExpired);
                }
            }
            TimerKind::Reannounce => {
                if self.phase == Phase::PendingJoin {
                    if let Err(e) = self.announce() {
                        tracing::warn!(error = %e, "could not announce the key package again");
                    }
                    self.timers
                        .set(TimerKind::Reannounce, now + catch_up::REANNOUNCE_INTERVAL);
                }
            }
            TimerKind::Linger => self.catch_up.clear(),
            TimerKind::ReassemblyExpiry => {
                if let Some(cutoff) = now.checked_sub(self.config.reassembly_expiry) {
                    self.reassembly.expire(cutoff);
                }
                self.arm_reassembly_expiry();
            }
        }
    }

    fn arm_reassembly_expiry(&mut self) {
        match self.reassembly.oldest() {
            Some(t) => self.timers.set(
                TimerKind::ReassemblyExpiry,
                t + self.config.reassembly_expiry,
            ),
            None => self.timers.stop(TimerKind::ReassemblyExpiry),
        }
    }

    // ----- shared internals -----

    fn credential(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(self.me.as_bytes().to_vec()).into(),
            signature_key: self.signer.public().into(),
        }
    }

    /// Key-package and leaf lifetime: from one hour before derived now, for the configured
    /// lifetime (derived time, never the wall clock).
    fn lifetime(&self) -> Lifetime {
        let now = self.clock.unix_ms(self.clock.now()).0 / 1000;
        Lifetime::init(
            now.saturating_sub(3600),
            now.saturating_add(self.config.key_package_lifetime.as_secs()),
        )
    }

    fn group(&self) -> Result<&MlsGroup, Error> {
        match self.phase {
            Phase::Closed => Err(Error::Closed),
            _ => self.group.as_ref().ok_or(Error::NotAMember),
        }
    }

    /// Installs a group (created or joined): roster, voting machine, governance state. The
    /// group parameters are validated against the group's real roster (a joiner's sync).
    fn install_group(&mut self, group: MlsGroup) -> Result<(), Error> {
        let roster = roster_of(&group)?;
        let members: Vec<MemberId> = roster.voters().iter().map(|v| v.id.clone()).collect();
        let gov = group_state_of(group.extensions(), &members, &self.limits)?;
        let epoch = Epoch(group.epoch().as_u64());
        let defaults = VotingConfig::new(self.id.clone(), self.me.clone());
        let voting_config = VotingConfig {
            max_clock_skew_ms: self.config.max_clock_skew.as_millis() as u64,
            max_voting_duration_ms: (self.config.voting_duration.as_millis() as u64).max(1) * 4,
            max_open_per_creator: self.config.max_open_proposals_per_member,
            max_proposals_per_creator_per_epoch: self.config.max_proposals_per_member_per_epoch,
            // A member's configured allowance is never cut by the machine's default total
            // (256 per epoch); unchanged for the default configuration (16 per member).
            max_proposals_per_epoch: defaults
                .max_proposals_per_epoch
                .max(self.config.max_proposals_per_member_per_epoch),
            ..defaults
        };
        self.voting = Some(VotingMachine::new(voting_config, epoch, roster));
        self.group = Some(group);
        self.gov = Some(gov);
        self.phase = Phase::Member;
        Ok(())
    }

    /// Draws a fresh 16-byte id from the randomness streams.
    fn fresh_id(&mut self) -> [u8; 16] {
        self.provider
            .rand()
            .random_array::<16>()
            .expect("the deterministic stream never fails")
    }

    /// Queues `packet` for publication, fragmenting it when it exceeds the packet limit.
    fn transmit(
        &mut self,
        channel: Channel,
        class: TrafficClass,
        packet: v1::Packet,
    ) -> Result<(), Error> {
        let bytes = packet.encode_to_vec();
        let message_id = if bytes.len() > self.config.max_packet_len {
            self.fresh_id()
        } else {
            [0; 16]
        };
        let pieces = fragment::split(
            self.id.as_bytes(),
            bytes,
            self.config.max_packet_len,
            self.config.max_payload_len,
            message_id,
        )?;
        self.transmits
            .extend(pieces.into_iter().map(|payload| Transmit {
                channel,
                class,
                payload,
            }));
        Ok(())
    }

    fn packet(&self, body: v1::packet::Body) -> v1::Packet {
        v1::Packet {
            conversation_id: self.id.as_bytes().to_vec(),
            body: Some(body),
        }
    }
}

/// The capabilities every demls leaf advertises: exactly the ciphersuite the deterministic
/// provider implements (openmls's defaults would also claim P-256), and the group parameters
/// extension.
fn capabilities() -> Capabilities {
    Capabilities::builder()
        .ciphersuites(vec![CIPHERSUITE])
        .extensions(vec![ExtensionType::Unknown(GROUP_PARAMS_EXTENSION)])
        .build()
}

/// The governance state in a group context's extensions, validated against `roster`.
fn group_state_of(
    extensions: &Extensions<openmls::prelude::GroupContext>,
    members: &[MemberId],
    limits: &Limits,
) -> Result<GroupState, Error> {
    let params = extensions
        .unknown(GROUP_PARAMS_EXTENSION)
        .ok_or(Error::InvalidGroupParams(
            "the group has no de-MLS parameters",
        ))?;
    let params = demls_wire::decode_group_params(&params.0, limits)?;
    GroupState::from_proto(params, members)
}

/// The voter set of the group's current epoch.
fn roster_of(group: &MlsGroup) -> Result<Roster, Error> {
    let voters = group
        .members()
        .map(|m| {
            Ok(Voter {
                id: governance::member_of_credential(&m.credential)?,
                signature_key: m.signature_key,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Roster::new(SignatureScheme::ED25519, voters).map_err(|e| Error::Mls(e.to_string()))
}

fn mls_error(e: impl std::fmt::Display) -> Error {
    Error::Mls(e.to_string())
}

fn lp(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u32).to_be_bytes());
    h.update(bytes);
}
