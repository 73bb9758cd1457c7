//! One full add round (BRIEF §7 "membership round"): CPU per member and in total, ours against
//! the unavoidable cryptographic work the round contains, at N = 10, 100 and 1000 members.
//!
//! # The round
//! A group of N members (member 0 is the steward) admits one joiner: the joiner publishes its
//! key package; every member buffers it and the steward proposes the add; every member opens
//! the proposal and, after the automatic-vote delay, votes YES; votes reach everyone; the
//! steward, once decided, waits the freeze window and publishes the evidence bundle, the
//! commit and the welcome; members merge the commit and the joiner processes the welcome.
//!
//! # Method
//! A full simulation at N = 1000 is about a million vote decryptions and verifications, so the
//! round is driven for real with every member as a live [`Conversation`], but only the three
//! *representative* members receive everything: the steward, one ordinary member (index N/2)
//! and the joiner. The other N − 2 members receive only what they need to vote (the key
//! package and the proposal); the vote each of them sends is a real MLS application message
//! from its own leaf. The representatives' CPU time is summed over every input they handle
//! (with output draining), and the total is `steward + (N − 1) × member + joiner`.
//!
//! The floor is the same round in raw openmls 0.9.2, computed the same way on the same roles:
//! key-package creation (joiner); key-package validation, the proposal's application message,
//! add commit + welcome creation and merge (steward); decryption of the proposal and of every
//! other member's vote message, creation of one's own vote message, and processing + merge of
//! the commit (members); welcome processing (joiner); plus one Ed25519 verification per vote
//! per member through the provider's `OpenMlsCrypto`. It runs twice: on openmls's stock
//! `OpenMlsRustCrypto` provider (the floor the ratio is taken against) and on our
//! deterministic `DemlsProvider` (to separate provider cost from protocol cost).
//!
//! CPU time is the measuring thread's (`CLOCK_THREAD_CPUTIME_ID`), and every measured step
//! runs inside a one-thread rayon pool, so openmls's parallel iterators run inline on that
//! thread and nothing escapes the clock. Group set-up (one batched commit of N − 1 adds and
//! N − 1 welcomes) is not measured and uses every core. Medians over several rounds at
//! N = 10 and 100 (a fresh group each), one round at N = 1000.
//!
//! Memory: live heap bytes (a counting global allocator) freed by dropping the ordinary member
//! after the round, next to `Conversation::memory_bytes()` and the snapshot length.
//!
//! Run: `cargo bench -p demls-core --bench add_round`. Results: docs/performance.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use demls_consensus::{ConversationId, MemberId};
use demls_core::mls::DemlsProvider;
use demls_core::{
    Channel, Conversation, ConversationConfig, Phase, Transmit, CIPHERSUITE, GROUP_PARAMS_EXTENSION,
};
use openmls::prelude::{
    BasicCredential, Capabilities, CredentialWithKey, Extension, ExtensionType, Extensions,
    GroupId, KeyPackage, KeyPackageIn, Lifetime, MlsGroup, MlsGroupJoinConfig, MlsMessageBodyIn,
    MlsMessageIn, MlsMessageOut, ProcessedMessageContent, ProtocolVersion, StagedWelcome,
    UnknownExtension, PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::Signer;
use openmls_traits::types::SignatureScheme;
use openmls_traits::OpenMlsProvider;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tls_codec::{Deserialize as _, Serialize as _};

// ----- measurement -----

/// Counts live heap bytes, for the memory-per-member figures.
struct CountingAlloc;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is only
// arithmetic on the sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Heap bytes released by dropping `value`.
fn heap_of<T>(value: T) -> usize {
    let before = live_bytes();
    drop(value);
    before.saturating_sub(live_bytes())
}

/// CPU time of the calling thread, in nanoseconds.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable `struct timespec` (two 64-bit fields on 64-bit
    // Linux), and the clock id is a constant of the Linux ABI.
    let r = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

/// Elsewhere: wall time (the bench then needs an otherwise idle machine).
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn cpu_ns() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    let start = *START.get_or_init(Instant::now);
    #[allow(clippy::disallowed_methods)]
    let ns = start.elapsed().as_nanos() as u64;
    ns
}

/// Adds the CPU time of `f` to `acc`.
fn timed<T>(acc: &mut u64, f: impl FnOnce() -> T) -> T {
    let start = cpu_ns();
    let out = f();
    *acc += cpu_ns() - start;
    out
}

/// CPU nanoseconds of one round, per role.
#[derive(Debug, Clone, Copy, Default)]
struct Roles {
    steward: u64,
    /// The ordinary member's: the sum of its phases.
    member: u64,
    /// The ordinary member's phases: key package and proposal; its own vote; the others'
    /// votes; evidence, commit and welcome.
    phases: [u64; 4],
    joiner: u64,
}

impl Roles {
    fn finish(mut self) -> Self {
        self.member = self.phases.iter().sum();
        self
    }

    fn total(&self, n: usize) -> u64 {
        self.steward + (n as u64 - 1) * self.member + self.joiner
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn median_roles(rounds: &[Roles]) -> Roles {
    Roles {
        steward: median(rounds.iter().map(|r| r.steward).collect()),
        member: median(rounds.iter().map(|r| r.member).collect()),
        phases: std::array::from_fn(|k| median(rounds.iter().map(|r| r.phases[k]).collect())),
        joiner: median(rounds.iter().map(|r| r.joiner).collect()),
    }
}

// ----- common set-up -----

/// Derived Unix time at the start of every run: 2026-01-01T00:00:00Z (as the tests).
const START_UNIX_MS: u64 = 1_767_225_600_000;
/// Key-package lifetimes long enough for openmls's wall-clock check (as the tests).
const LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// The representative ordinary member of an N-member group.
fn representative(n: usize) -> usize {
    n / 2
}

fn name(i: usize) -> MemberId {
    MemberId::new(format!("member-{i:04}")).unwrap()
}

fn seed(run: u64, i: usize) -> [u8; 32] {
    Sha256::digest(format!("demls add-round bench {run} member {i}")).into()
}

/// The test configuration, with rate limits and the commit batch raised so that one commit
/// can build the whole group during set-up. The measured round is one proposal, so the
/// raised limits do not change its work.
fn config(n: usize) -> ConversationConfig {
    ConversationConfig {
        key_package_lifetime: LIFETIME,
        max_open_proposals_per_member: n + 16,
        max_proposals_per_member_per_epoch: n + 16,
        max_commit_batch: n + 16,
        ..ConversationConfig::default()
    }
}

// ----- ours: the round driven through `Conversation` -----

struct OursGroup {
    n: usize,
    run: u64,
    config: ConversationConfig,
    base: Instant,
    now: Instant,
    /// Member 0 is the steward.
    members: Vec<Conversation>,
}

fn drain(c: &mut Conversation) -> Vec<Transmit> {
    let mut out = Vec::new();
    while let Some(t) = c.poll_transmit() {
        out.push(t);
    }
    while c.poll_event().is_some() {}
    out
}

/// Delivers packets to a pending joiner: it buffers MLS messages of the coming epoch until
/// its buffer is full, and refuses the rest (which is not an error of the round).
fn to_joiner(j: &mut Conversation, now: Instant, packets: &[Transmit], cpu: &mut u64) {
    timed(cpu, || {
        for p in packets {
            let _ = j.handle_packet(now, &p.payload);
            drain(j);
        }
    });
}

fn deliver(c: &mut Conversation, now: Instant, packets: &[Transmit]) -> Vec<Transmit> {
    let mut out = Vec::new();
    for p in packets {
        c.handle_packet(now, &p.payload)
            .expect("an honest packet is accepted");
        out.extend(drain(c));
    }
    out
}

impl OursGroup {
    fn unix(&self, at: Instant) -> u64 {
        START_UNIX_MS + at.duration_since(self.base).as_millis() as u64
    }

    /// An N-member group at epoch 1, built by one batched commit (not measured).
    fn setup(n: usize, run: u64) -> Self {
        #[allow(clippy::disallowed_methods)] // the bench's base instant; time is virtual after it
        let base = Instant::now();
        let config = config(n);
        let id = ConversationId::new(b"bench-conversation".to_vec()).unwrap();
        let mut steward = Conversation::create(
            config.clone(),
            id.clone(),
            name(0),
            seed(run, 0),
            base,
            START_UNIX_MS,
        )
        .unwrap();
        drain(&mut steward);
        let mut joiners: Vec<Conversation> = (1..n)
            .into_par_iter()
            .map(|i| {
                Conversation::join(
                    config.clone(),
                    id.clone(),
                    name(i),
                    seed(run, i),
                    base,
                    START_UNIX_MS,
                )
                .unwrap()
            })
            .collect();
        let key_packages: Vec<Transmit> = joiners.iter_mut().flat_map(drain).collect();
        deliver(&mut steward, base, &key_packages);
        let at = steward.next_deadline().expect("the freeze window is armed");
        steward.tick_deadlines(at);
        let welcome: Vec<Transmit> = drain(&mut steward)
            .into_iter()
            .filter(|t| t.channel == Channel::Welcome)
            .collect();
        let now = at + Duration::from_millis(50);
        joiners.par_iter_mut().for_each(|j| {
            deliver(j, now, &welcome);
        });
        let mut members = vec![steward];
        members.extend(joiners);
        for m in &members {
            assert_eq!(m.phase(), Phase::Member);
            assert_eq!(m.epoch().unwrap().0, 1);
        }
        Self {
            n,
            run,
            config,
            base,
            now: now + Duration::from_secs(1),
            members,
        }
    }
}

/// One add round in three stages, so that the vote ingestion of ours and of the floors can
/// be interleaved vote by vote (whatever else runs on the machine then weighs on all alike).
trait Round: Send {
    /// The key package, the proposal and every member's vote (timed for the roles).
    fn begin(&mut self);
    /// The vote of member `from` reaches the steward, the ordinary member and the joiner.
    fn ingest(&mut self, from: usize);
    /// The freeze window ends: evidence, commit, welcome; checks agreement.
    fn finish(&mut self);
    /// CPU per role.
    fn cpu(&self) -> Roles;
}

/// The state of ours between the stages of a round.
#[derive(Default)]
struct OursRound {
    cpu: Roles,
    at: Option<Instant>,
    joiner: Option<Conversation>,
    /// The vote transmits of each member (index 0, the steward, casts none).
    votes: Vec<Vec<Transmit>>,
}

const LATENCY: Duration = Duration::from_millis(50);

impl Round for (OursGroup, OursRound) {
    fn begin(&mut self) {
        let (g, round) = self;
        let n = g.n;
        let r = representative(n);
        let cpu = &mut round.cpu;

        // The joiner publishes its key package.
        let t = g.now;
        let id = g.members[0].id().clone();
        let unix = g.unix(t);
        let (mut joiner, key_package) = timed(&mut cpu.joiner, || {
            let mut j =
                Conversation::join(g.config.clone(), id, name(n), seed(g.run, n), t, unix).unwrap();
            let out = drain(&mut j);
            (j, out)
        });

        // Every member buffers it; the steward proposes.
        let t = t + LATENCY;
        let proposal = timed(&mut cpu.steward, || {
            deliver(&mut g.members[0], t, &key_package)
        });
        for i in 1..n {
            let m = &mut g.members[i];
            if i == r {
                timed(&mut cpu.phases[0], || deliver(m, t, &key_package));
            } else {
                deliver(m, t, &key_package);
            }
        }

        // Every member opens the proposal (the joiner buffers it).
        let t = t + LATENCY;
        for i in 1..n {
            let m = &mut g.members[i];
            if i == r {
                timed(&mut cpu.phases[0], || deliver(m, t, &proposal));
            } else {
                deliver(m, t, &proposal);
            }
        }
        to_joiner(&mut joiner, t, &proposal, &mut cpu.joiner);

        // The automatic votes fire.
        let t = g.members[r]
            .next_deadline()
            .expect("the auto-vote is armed");
        round.votes = vec![Vec::new()];
        for i in 1..n {
            let m = &mut g.members[i];
            let out = if i == r {
                timed(&mut cpu.phases[1], || {
                    m.tick_deadlines(t);
                    drain(m)
                })
            } else {
                m.tick_deadlines(t);
                drain(m)
            };
            assert_eq!(out.len(), 1, "one vote per member");
            round.votes.push(out);
        }
        round.at = Some(t + LATENCY);
        round.joiner = Some(joiner);
    }

    fn ingest(&mut self, from: usize) {
        let (g, round) = self;
        let (r, t, vote) = (representative(g.n), round.at.unwrap(), &round.votes[from]);
        let cpu = &mut round.cpu;
        timed(&mut cpu.steward, || deliver(&mut g.members[0], t, vote));
        if from != r {
            let m = &mut g.members[r];
            timed(&mut cpu.phases[2], || deliver(m, t, vote));
        }
        to_joiner(round.joiner.as_mut().unwrap(), t, vote, &mut cpu.joiner);
    }

    fn finish(&mut self) {
        let (g, round) = self;
        let n = g.n;
        let r = representative(n);
        let cpu = &mut round.cpu;
        let joiner = round.joiner.as_mut().unwrap();

        // The freeze window ends: evidence, commit and welcome.
        let t = g.members[0]
            .next_deadline()
            .expect("the freeze window is armed");
        let steward = &mut g.members[0];
        let out = timed(&mut cpu.steward, || {
            steward.tick_deadlines(t);
            drain(steward)
        });
        let (conversation, welcome): (Vec<Transmit>, Vec<Transmit>) = out
            .into_iter()
            .partition(|p| p.channel == Channel::Conversation);
        assert!(!welcome.is_empty(), "the steward committed");

        // The ordinary member hears both channels; the joiner too.
        let t = t + LATENCY;
        let m = &mut g.members[r];
        timed(&mut cpu.phases[3], || {
            deliver(m, t, &conversation);
            deliver(m, t, &welcome);
        });
        to_joiner(joiner, t, &conversation, &mut cpu.joiner);
        to_joiner(joiner, t, &welcome, &mut cpu.joiner);

        for c in [&g.members[0], &g.members[r], &*joiner] {
            assert_eq!(c.phase(), Phase::Member);
            assert_eq!(c.epoch().unwrap().0, 2);
            assert_eq!(c.epoch_authenticator(), g.members[0].epoch_authenticator());
            assert_eq!(c.roster().len(), n + 1);
        }
        g.now = t;
    }

    fn cpu(&self) -> Roles {
        self.1.cpu.finish()
    }
}

/// Memory figures of one member after the round.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    memory_bytes: usize,
    snapshot_len: usize,
    heap: usize,
}

fn ours_memory(c: Conversation) -> Memory {
    Memory {
        memory_bytes: c.memory_bytes(),
        snapshot_len: c.snapshot().expect("outputs are drained").len(),
        heap: heap_of(c),
    }
}

// ----- the floor: the same round in raw openmls -----

/// A provider the floor can run on.
trait FloorProvider: OpenMlsProvider + Send + Sized {
    fn fresh(seed: [u8; 32]) -> Self;
    /// What the provider needs before an operation that sends (ours rekeys its streams).
    fn prepare(&mut self) {}
}

impl FloorProvider for OpenMlsRustCrypto {
    fn fresh(_: [u8; 32]) -> Self {
        OpenMlsRustCrypto::default()
    }
}

impl FloorProvider for DemlsProvider {
    fn fresh(seed: [u8; 32]) -> Self {
        DemlsProvider::new(seed)
    }
    fn prepare(&mut self) {
        self.prepare_operation();
    }
}

struct RawMember<P> {
    provider: P,
    signer: SignatureKeyPair,
    group: Option<MlsGroup>,
}

fn signer_of(seed: [u8; 32]) -> SignatureKeyPair {
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    SignatureKeyPair::from_raw(
        SignatureScheme::ED25519,
        key.to_bytes().to_vec(),
        key.verifying_key().to_bytes().to_vec(),
    )
}

fn lifetime() -> Lifetime {
    let now = START_UNIX_MS / 1000;
    Lifetime::init(now - 3600, now + LIFETIME.as_secs())
}

fn capabilities() -> Capabilities {
    Capabilities::builder()
        .ciphersuites(vec![CIPHERSUITE])
        .extensions(vec![ExtensionType::Unknown(GROUP_PARAMS_EXTENSION)])
        .build()
}

fn credential(i: usize, signer: &SignatureKeyPair) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(name(i).as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    }
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .build()
}

fn ser(m: MlsMessageOut) -> Vec<u8> {
    m.tls_serialize_detached().unwrap()
}

fn welcome_into<P: FloorProvider>(p: &P, bytes: &[u8]) -> MlsGroup {
    let MlsMessageBodyIn::Welcome(w) = MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .extract()
    else {
        panic!("not a welcome")
    };
    StagedWelcome::new_from_welcome(p, &join_config(), w, None)
        .unwrap()
        .into_group(p)
        .unwrap()
}

/// A commit adding `key_packages`, as the steward builds it; returns (commit, welcome).
fn commit_adds<P: FloorProvider>(
    m: &mut RawMember<P>,
    key_packages: Vec<KeyPackage>,
) -> (Vec<u8>, Vec<u8>) {
    m.provider.prepare();
    let group = m.group.as_mut().unwrap();
    let bundle = group
        .commit_builder()
        .propose_adds(key_packages)
        .load_psks(m.provider.storage())
        .unwrap()
        .build(m.provider.rand(), m.provider.crypto(), &m.signer, |_| true)
        .unwrap()
        .stage_commit(&m.provider)
        .unwrap();
    let (commit, welcome, _) = bundle.into_messages();
    let out = (ser(commit), ser(welcome.unwrap()));
    group.merge_pending_commit(&m.provider).unwrap();
    out
}

fn key_package_of<P: FloorProvider>(m: &mut RawMember<P>, i: usize) -> Vec<u8> {
    m.provider.prepare();
    let bundle = KeyPackage::builder()
        .key_package_lifetime(lifetime())
        .leaf_node_capabilities(capabilities())
        .build(
            CIPHERSUITE,
            &m.provider,
            &m.signer,
            credential(i, &m.signer),
        )
        .unwrap();
    ser(MlsMessageOut::from(bundle.key_package().clone()))
}

fn validate_key_package<P: FloorProvider>(p: &P, bytes: &[u8]) -> KeyPackage {
    let MlsMessageBodyIn::KeyPackage(kp) = MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .extract()
    else {
        panic!("not a key package")
    };
    KeyPackageIn::validate(kp, p.crypto(), ProtocolVersion::Mls10).unwrap()
}

fn send<P: FloorProvider>(m: &mut RawMember<P>, payload: &[u8]) -> Vec<u8> {
    m.provider.prepare();
    let msg = m
        .group
        .as_mut()
        .unwrap()
        .create_message(&m.provider, &m.signer, payload)
        .unwrap();
    ser(msg)
}

fn receive<P: FloorProvider>(m: &mut RawMember<P>, bytes: &[u8]) {
    let protocol = MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .try_into_protocol_message()
        .unwrap();
    let group = m.group.as_mut().unwrap();
    let processed = group.process_message(&m.provider, protocol).unwrap();
    match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(_) => {}
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            group.merge_staged_commit(&m.provider, *staged).unwrap();
        }
        _ => panic!("unexpected message"),
    }
}

/// Signed vote-like transcripts: one per member, verified through the provider's crypto.
struct Signatures {
    transcript: Vec<u8>,
    keys: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Signatures {
    fn new(n: usize, run: u64) -> Self {
        // The size of a vote transcript (label, conversation, epoch, proposal, voter, choice,
        // time).
        let transcript = vec![0x5a; 110];
        let keys = (0..n)
            .into_par_iter()
            .map(|i| {
                let s = signer_of(Sha256::digest(format!("floor vote key {run} {i}")).into());
                (s.to_public_vec(), s.sign(&transcript).unwrap())
            })
            .collect();
        Self { transcript, keys }
    }

    fn verify(&self, crypto: &impl OpenMlsCrypto, from: usize) {
        let (pk, sig) = &self.keys[from];
        crypto
            .verify_signature(SignatureScheme::ED25519, &self.transcript, pk, sig)
            .unwrap();
    }
}

struct FloorGroup<P> {
    n: usize,
    run: u64,
    members: Vec<RawMember<P>>,
    signatures: Signatures,
    /// `arrival[k]` is the member whose vote arrives k-th (a seeded permutation of 1..N).
    arrival: Vec<usize>,
}

/// A seeded permutation of `0..n` that keeps 0 in place.
fn arrival_order(n: usize, run: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (2..n).rev() {
        let h = Sha256::digest(format!("add-round arrival {run} {i}"));
        let j = 1 + (u64::from_be_bytes(h[..8].try_into().unwrap()) % i as u64) as usize;
        order.swap(i, j);
    }
    order
}

/// The proposal's application message carries an add proposal (key package + signed header);
/// a vote's carries a signed vote. Payload sizes as ours.
const PROPOSAL_PAYLOAD_LEN: usize = 700;
const VOTE_PAYLOAD_LEN: usize = 190;

impl<P: FloorProvider> FloorGroup<P> {
    fn member(i: usize, run: u64) -> RawMember<P> {
        let s = seed(run, i);
        RawMember {
            provider: P::fresh(s),
            signer: signer_of(Sha256::digest(s).into()),
            group: None,
        }
    }

    fn setup(n: usize, run: u64) -> Self {
        let mut steward = Self::member(0, run);
        steward.provider.prepare();
        let extensions = Extensions::single(Extension::Unknown(
            GROUP_PARAMS_EXTENSION,
            UnknownExtension(vec![0x11; 16]),
        ))
        .unwrap();
        steward.group = Some(
            MlsGroup::builder()
                .with_group_id(GroupId::from_slice(b"bench-conversation"))
                .ciphersuite(CIPHERSUITE)
                .with_wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
                .use_ratchet_tree_extension(true)
                .with_capabilities(capabilities())
                .with_group_context_extensions(extensions)
                .lifetime(lifetime())
                .build(
                    &steward.provider,
                    &steward.signer,
                    credential(0, &steward.signer),
                )
                .unwrap(),
        );
        let (mut joiners, kps): (Vec<RawMember<P>>, Vec<Vec<u8>>) = (1..n)
            .into_par_iter()
            .map(|i| {
                let mut m = Self::member(i, run);
                let kp = key_package_of(&mut m, i);
                (m, kp)
            })
            .unzip();
        let kps = kps
            .iter()
            .map(|b| validate_key_package(&steward.provider, b))
            .collect();
        let (_, welcome) = commit_adds(&mut steward, kps);
        joiners.par_iter_mut().for_each(|m| {
            m.group = Some(welcome_into(&m.provider, &welcome));
        });
        let mut members = vec![steward];
        members.extend(joiners);
        Self {
            n,
            run,
            members,
            signatures: Signatures::new(n, run),
            arrival: arrival_order(n, run),
        }
    }
}

/// The state of a floor between the stages of a round.
struct FloorRound<P> {
    cpu: Roles,
    joiner: Option<RawMember<P>>,
    key_package: Option<KeyPackage>,
    votes: Vec<Vec<u8>>,
}

impl<P> Default for FloorRound<P> {
    fn default() -> Self {
        Self {
            cpu: Roles::default(),
            joiner: None,
            key_package: None,
            votes: Vec::new(),
        }
    }
}

impl<P: FloorProvider> Round for (FloorGroup<P>, FloorRound<P>) {
    fn begin(&mut self) {
        let (g, round) = self;
        let n = g.n;
        let r = representative(n);
        let (run, sigs, cpu) = (g.run, &g.signatures, &mut round.cpu);

        let (joiner, key_package) = timed(&mut cpu.joiner, || {
            let mut joiner = FloorGroup::<P>::member(n, run);
            let kp = key_package_of(&mut joiner, n);
            (joiner, kp)
        });

        let steward = &mut g.members[0];
        let (kp, proposal) = timed(&mut cpu.steward, || {
            let kp = validate_key_package(&steward.provider, &key_package);
            (kp, send(steward, &[0x42; PROPOSAL_PAYLOAD_LEN]))
        });

        round.votes = vec![Vec::new(); n];
        for (i, m) in g.members.iter_mut().enumerate().skip(1) {
            if i == r {
                timed(&mut cpu.phases[0], || {
                    receive(m, &proposal);
                    sigs.verify(m.provider.crypto(), 0);
                });
                round.votes[i] = timed(&mut cpu.phases[1], || send(m, &[0x56; VOTE_PAYLOAD_LEN]));
            } else {
                round.votes[i] = send(m, &[0x56; VOTE_PAYLOAD_LEN]);
            }
        }
        round.joiner = Some(joiner);
        round.key_package = Some(kp);
    }

    fn ingest(&mut self, from: usize) {
        let (g, round) = self;
        let r = representative(g.n);
        // Ours receives votes in an order unrelated to the senders' leaves (its leaves follow
        // the digest order of the add proposals), as on a real network; the floor's member i
        // is leaf i, so it takes the votes in a random order too. (In leaf order, openmls's
        // secret tree stays smaller and every later message is cheaper to process.)
        let from = g.arrival[from];
        let (sigs, cpu, vote) = (&g.signatures, &mut round.cpu, &round.votes[from]);
        let steward = &mut g.members[0];
        timed(&mut cpu.steward, || {
            receive(steward, vote);
            sigs.verify(steward.provider.crypto(), from);
        });
        if from != r {
            let m = &mut g.members[r];
            timed(&mut cpu.phases[2], || {
                receive(m, vote);
                sigs.verify(m.provider.crypto(), from);
            });
        }
    }

    fn finish(&mut self) {
        let (g, round) = self;
        let r = representative(g.n);
        let cpu = &mut round.cpu;
        let joiner = round.joiner.as_mut().unwrap();
        let kp = round.key_package.take().unwrap();

        let steward = &mut g.members[0];
        let (commit, welcome) = timed(&mut cpu.steward, || commit_adds(steward, vec![kp]));
        let m = &mut g.members[r];
        timed(&mut cpu.phases[3], || receive(m, &commit));
        timed(&mut cpu.joiner, || {
            joiner.group = Some(welcome_into(&joiner.provider, &welcome));
        });

        let auth = |m: &RawMember<P>| {
            let g = m.group.as_ref().unwrap();
            assert_eq!(g.epoch().as_u64(), 2);
            g.epoch_authenticator().as_slice().to_vec()
        };
        assert_eq!(auth(&g.members[0]), auth(&g.members[r]));
        assert_eq!(auth(&g.members[0]), auth(joiner));
    }

    fn cpu(&self) -> Roles {
        self.1.cpu.finish()
    }
}

// ----- the run -----

struct Row {
    n: usize,
    rounds: usize,
    ours: Roles,
    floor: Roles,
    floor_demls: Roles,
    ours_member_memory: Memory,
    ours_steward_memory: Memory,
    floor_member_heap: usize,
    setup_secs: f64,
}

fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn total(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

fn kib(b: usize) -> String {
    format!("{:.0} KiB", b as f64 / 1024.0)
}

fn ratio(a: u64, b: u64) -> String {
    format!("{:.2}×", a as f64 / b as f64)
}

fn measure(n: usize, rounds: usize, single: &rayon::ThreadPool) -> Row {
    #[allow(clippy::disallowed_methods)] // the bench reads the clock for its own progress line
    let started = Instant::now();
    let mut ours = Vec::new();
    let mut floor = Vec::new();
    let mut floor_demls = Vec::new();
    let mut ours_member_memory = Memory::default();
    let mut ours_steward_memory = Memory::default();
    let mut floor_member_heap = 0;
    for run in 0..rounds as u64 {
        let mut ours_round = (OursGroup::setup(n, run), OursRound::default());
        let mut floor_round = (
            FloorGroup::<OpenMlsRustCrypto>::setup(n, run),
            FloorRound::default(),
        );
        let mut demls_round = (
            FloorGroup::<DemlsProvider>::setup(n, run),
            FloorRound::default(),
        );
        single.install(|| {
            let mut all: [&mut dyn Round; 3] =
                [&mut ours_round, &mut floor_round, &mut demls_round];
            // Interleaved, in a rotating order: a slow moment of the machine is shared.
            let mut each = |k: usize, f: &mut dyn FnMut(&mut dyn Round)| {
                for j in 0..3 {
                    f(&mut *all[(k + j) % 3]);
                }
            };
            each(run as usize, &mut |r| r.begin());
            for from in 1..n {
                each(from + run as usize, &mut |r| r.ingest(from));
            }
            each(run as usize, &mut |r| r.finish());
        });
        ours.push(ours_round.cpu());
        floor.push(floor_round.cpu());
        floor_demls.push(demls_round.cpu());

        let r = representative(n);
        let (mut g, _) = ours_round;
        let member = g.members.swap_remove(r);
        let steward = g.members.swap_remove(0);
        drop(g);
        ours_member_memory = ours_memory(member);
        ours_steward_memory = ours_memory(steward);
        let (mut g, _) = floor_round;
        let member = g.members.swap_remove(r);
        drop(g);
        floor_member_heap = heap_of(member);
        drop(demls_round);
        eprintln!(
            "n = {n}: round {}/{rounds} done, {:.0} s elapsed",
            run + 1,
            started.elapsed().as_secs_f64()
        );
    }
    Row {
        n,
        rounds,
        ours: median_roles(&ours),
        floor: median_roles(&floor),
        floor_demls: median_roles(&floor_demls),
        ours_member_memory,
        ours_steward_memory,
        floor_member_heap,
        setup_secs: started.elapsed().as_secs_f64(),
    }
}

fn main() {
    // Under `cargo test --benches` (or `cargo bench -- --list`) do nothing.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let sizes: Vec<(usize, usize)> = match std::env::var("ADD_ROUND_SIZES") {
        Ok(s) => s
            .split(',')
            .map(|size| {
                // `N` or `NxROUNDS`.
                let mut parts = size.trim().split('x').map(|p| p.parse().ok());
                let n = parts
                    .next()
                    .flatten()
                    .expect("ADD_ROUND_SIZES: N or NxROUNDS, comma-separated");
                (n, parts.next().flatten().unwrap_or(1))
            })
            .collect(),
        Err(_) => vec![(10, 15), (100, 5), (1000, 1)],
    };
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let rows: Vec<Row> = sizes
        .iter()
        .map(|&(n, rounds)| measure(n, rounds, &single))
        .collect();

    println!(
        "\nCPU of one add round (median of rounds; total = steward + (N-1) x member + joiner)\n"
    );
    println!(
        "| | {} |",
        rows.iter()
            .map(|r| format!("N = {}", r.n))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---:|".repeat(rows.len()));
    let line = |label: &str, f: &dyn Fn(&Row) -> String| {
        println!(
            "| {label} | {} |",
            rows.iter().map(f).collect::<Vec<_>>().join(" | ")
        );
    };
    line("rounds (median of)", &|r| r.rounds.to_string());
    line("steward: ours", &|r| ms(r.ours.steward));
    line("steward: floor", &|r| ms(r.floor.steward));
    line("steward: ours ÷ floor", &|r| {
        ratio(r.ours.steward, r.floor.steward)
    });
    line("member: ours", &|r| ms(r.ours.member));
    line("member: floor", &|r| ms(r.floor.member));
    line("member: ours ÷ floor", &|r| {
        ratio(r.ours.member, r.floor.member)
    });
    let phase = |k: usize, label: &str| {
        line(&format!("member, {label}: ours / floor"), &|r| {
            format!("{} / {}", ms(r.ours.phases[k]), ms(r.floor.phases[k]))
        });
    };
    phase(0, "key package + proposal");
    phase(1, "own vote");
    phase(2, "others' votes");
    phase(3, "evidence + commit + welcome");
    line("joiner: ours", &|r| ms(r.ours.joiner));
    line("joiner: floor", &|r| ms(r.floor.joiner));
    line("joiner: ours ÷ floor", &|r| {
        ratio(r.ours.joiner, r.floor.joiner)
    });
    line("**total: ours**", &|r| total(r.ours.total(r.n)));
    line("**total: floor**", &|r| total(r.floor.total(r.n)));
    line("**total: ours ÷ floor**", &|r| {
        ratio(r.ours.total(r.n), r.floor.total(r.n))
    });
    line("floor on DemlsProvider: steward", &|r| {
        ms(r.floor_demls.steward)
    });
    line("floor on DemlsProvider: member", &|r| {
        ms(r.floor_demls.member)
    });
    line("floor on DemlsProvider: joiner", &|r| {
        ms(r.floor_demls.joiner)
    });
    line("floor on DemlsProvider: total", &|r| {
        total(r.floor_demls.total(r.n))
    });
    line("floor on DemlsProvider ÷ floor", &|r| {
        ratio(r.floor_demls.total(r.n), r.floor.total(r.n))
    });
    line("ours ÷ floor on DemlsProvider", &|r| {
        ratio(r.ours.total(r.n), r.floor_demls.total(r.n))
    });
    println!("\nMemory per member after the round\n");
    println!(
        "| | {} |",
        rows.iter()
            .map(|r| format!("N = {}", r.n))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---:|".repeat(rows.len()));
    line("member: heap (ours)", &|r| kib(r.ours_member_memory.heap));
    line("member: memory_bytes()", &|r| {
        kib(r.ours_member_memory.memory_bytes)
    });
    line("member: snapshot length", &|r| {
        kib(r.ours_member_memory.snapshot_len)
    });
    line("member: heap (raw openmls, stock provider)", &|r| {
        kib(r.floor_member_heap)
    });
    line("steward: heap (ours)", &|r| kib(r.ours_steward_memory.heap));
    line("steward: memory_bytes()", &|r| {
        kib(r.ours_steward_memory.memory_bytes)
    });
    line("steward: snapshot length", &|r| {
        kib(r.ours_steward_memory.snapshot_len)
    });
    println!();
    for r in &rows {
        println!("N = {}: {:.0} s including set-up", r.n, r.setup_secs);
    }
}
