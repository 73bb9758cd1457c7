//! The stateful inbound path of `Conversation` on live group state.
//!
//! A template network is built once with the public API, in virtual time (one base `Instant`
//! is taken; every later instant is the base plus a duration), with a small packet limit so
//! that welcomes and commits are fragmented:
//!
//! * member 0 creates the conversation (the steward); members 1 and 2 join one after the other
//!   and every member sends a chat message; the network runs until nothing is left to do;
//! * node 3 starts joining: its key package is delivered and the steward opens the add
//!   proposal, delivered to everyone — and then time stops. The template is this state: three
//!   members at epoch 2 with an open proposal and armed automatic votes, and a pending joiner.
//!
//! Every member's snapshot is taken there. The template's future is then played once from the
//! snapshots (votes, the commit, the fragmented welcome, node 3's join, a chat at the new
//! epoch, member 2 leaving, member 1 removed by vote) and every packet sent while building —
//! key packages, welcomes, commits, encrypted application and governance messages, fragments —
//! goes into a pool.
//!
//! Each fuzz input restores fresh members from the snapshots (so every input starts from the
//! same live state) and is read as a sequence of operations (see [`Run::step`]): raw bytes or
//! a pool packet (unchanged, xor-ed, truncated, overwritten, under another conversation id, or
//! re-fragmented with fuzzer-chosen pieces) delivered to one member or to all; virtual time
//! advanced and `tick_deadlines` called; commands (`send_message`, `propose_remove`, `leave`,
//! `vote`, `propose_add`); a member made deaf or hearing again; a snapshot/restore round trip.
//! After every step all outputs are drained and the packets sent are delivered to the other
//! members (except deaf ones) until the network is quiet; they also join the input's own pool.
//!
//! Checked contracts (the `Conversation` / `Error` docs, `docs/run-loop.md`):
//! * nothing panics (overflow checks and `debug_assert!`s are on, see `fuzz/Cargo.toml`);
//! * a `handle_packet` that returns `Err` leaves `state_digest()` unchanged — except for a
//!   packet that decodes as a `Fragment` (a fragment that *completes* a reassembly is consumed
//!   even when the reassembled payload is refused: documented in `handle_decoded`);
//! * a command that returns `Err` leaves `state_digest()` unchanged;
//! * after `tick_deadlines(now)`, `next_deadline()` is later than `now` (a host that sleeps
//!   until the deadline never spins);
//! * a snapshot restores to the same `state_digest()`.
//!
//! Found with this target (fixed): a `Fragment` whose `count` was huge (e.g. `0xFFFF_FFFF`
//! with a 1-byte chunk) made the receiver allocate `count` slots up front (~100 GB). The wire
//! decoder now refuses counts above the payload length or `MAX_FRAGMENT_COUNT`, and the
//! reassembler stores only the pieces that arrived. The raw-bytes operation keeps probing it.
#![no_main]

use std::collections::{BTreeMap, VecDeque};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use demls_consensus::{Choice, ConversationId, MemberId, ProposalDigest};
use demls_core::{Conversation, ConversationConfig, Event, Phase};
use demls_wire::{v1, Limits};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use sha2::{Digest as _, Sha256};

/// Derived Unix time at the base instant: 2026-01-01T00:00:00Z (as in the integration tests).
const START_UNIX_MS: u64 = 1_767_225_600_000;
/// Packet limit of the template: small, so that welcomes (~1.1 KB for 3–4 members) and
/// commits are fragmented.
const MAX_PACKET_LEN: usize = 800;
/// Network latency while building the template.
const LATENCY: Duration = Duration::from_millis(50);
/// Nodes of the template: three members and a pending joiner.
const N: usize = 4;
/// Upper bound on operations per input, to keep executions fast.
const MAX_OPS: usize = 64;
/// Deliveries per step before the packets still in flight are dropped.
const MAX_DELIVERIES: usize = 256;
/// Most packets an input adds to its own pool.
const MAX_EXTRA: usize = 64;
/// Most proposal digests remembered (from events) for votes.
const MAX_PROPOSALS: usize = 32;

fn conversation_id() -> ConversationId {
    ConversationId::new(b"fuzz-conversation".to_vec()).unwrap()
}

fn name(i: usize) -> MemberId {
    MemberId::new(format!("member-{i:04}")).unwrap()
}

fn seed(i: usize) -> [u8; 32] {
    Sha256::digest(format!("demls fuzz seed member {i}")).into()
}

fn config() -> ConversationConfig {
    ConversationConfig {
        // Derived time starts at a fixed date; a long lifetime keeps openmls's own wall-clock
        // check of key packages satisfied.
        key_package_lifetime: Duration::from_secs(100 * 365 * 24 * 3600),
        max_packet_len: MAX_PACKET_LEN,
        ..ConversationConfig::default()
    }
}

fn is_fragment(bytes: &[u8]) -> bool {
    matches!(
        demls_wire::decode_packet(bytes, &Limits::default()),
        Ok(v1::Packet {
            body: Some(v1::packet::Body::Fragment(_)),
            ..
        })
    )
}

fn remember(proposals: &mut Vec<ProposalDigest>, event: &Event) {
    let proposal = match event {
        Event::ProposalOpened { proposal, .. } | Event::ProposalDecided { proposal, .. } => {
            *proposal
        }
        _ => return,
    };
    if proposals.len() < MAX_PROPOSALS && !proposals.contains(&proposal) {
        proposals.push(proposal);
    }
}

// ----- the template -----

struct Template {
    base: Instant,
    /// Virtual time of the snapshots, since `base`.
    now: Duration,
    /// One snapshot per node, taken with drained outputs.
    snapshots: Vec<Vec<u8>>,
    /// Valid packets sent while building (before and after the snapshots), without duplicates.
    pool: Vec<Vec<u8>>,
    /// Key packages (TLS-serialized MLS messages) announced while building.
    key_packages: Vec<Vec<u8>>,
    /// Proposal digests seen in events while building.
    proposals: Vec<ProposalDigest>,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(build_template)
}

/// A minimal broadcast network in virtual time (like `tests/support/net.rs`).
struct Builder {
    base: Instant,
    now: Duration,
    members: Vec<Conversation>,
    queue: BTreeMap<(Duration, u64), (usize, Vec<u8>)>,
    seq: u64,
    pool: Vec<Vec<u8>>,
    proposals: Vec<ProposalDigest>,
}

impl Builder {
    fn at(&self) -> Instant {
        self.base + self.now
    }

    fn unix(&self) -> u64 {
        START_UNIX_MS + self.now.as_millis() as u64
    }

    fn create(&mut self) {
        let i = self.members.len();
        let c = Conversation::create(
            config(),
            conversation_id(),
            name(i),
            seed(i),
            self.at(),
            self.unix(),
        )
        .expect("create");
        self.members.push(c);
        self.drain(i);
    }

    fn join(&mut self) {
        let i = self.members.len();
        let c = Conversation::join(
            config(),
            conversation_id(),
            name(i),
            seed(i),
            self.at(),
            self.unix(),
        )
        .expect("join");
        self.members.push(c);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        while let Some(t) = self.members[i].poll_transmit() {
            for to in (0..self.members.len()).filter(|&to| to != i) {
                self.seq += 1;
                self.queue
                    .insert((self.now + LATENCY, self.seq), (to, t.payload.clone()));
            }
            if !self.pool.contains(&t.payload) {
                self.pool.push(t.payload);
            }
        }
        while let Some(e) = self.members[i].poll_event() {
            remember(&mut self.proposals, &e);
        }
    }

    /// Advances to the next delivery (or, with `timers`, the next deadline) and processes
    /// everything due. Returns `false` when nothing is left to do.
    fn step(&mut self, timers: bool) -> bool {
        let next_delivery = self.queue.keys().next().map(|(t, _)| *t);
        let next_deadline = if timers {
            self.members
                .iter()
                .filter(|m| m.phase() != Phase::Closed)
                .filter_map(|m| m.next_deadline())
                .map(|d| d.saturating_duration_since(self.base))
                .min()
        } else {
            None
        };
        let Some(next) = [next_delivery, next_deadline].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(next);
        let at = self.at();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (to, bytes) = entry.remove();
            if self.members[to].phase() == Phase::Closed {
                continue;
            }
            // Refusals are normal here (old welcomes, replays): drop and go on.
            let _ = self.members[to].handle_packet(at, &bytes);
            self.drain(to);
        }
        if timers {
            for i in 0..self.members.len() {
                if self.members[i].next_deadline().is_some_and(|d| d <= at) {
                    self.members[i].tick_deadlines(at);
                    self.drain(i);
                }
            }
        }
        true
    }

    fn run(&mut self, timers: bool) {
        for _ in 0..100_000 {
            if !self.step(timers) {
                return;
            }
        }
        panic!("the template network did not become quiet");
    }

    fn phases(&self) -> Vec<Phase> {
        self.members.iter().map(Conversation::phase).collect()
    }
}

fn build_template() -> Template {
    #[allow(clippy::disallowed_methods)] // the host's base instant; time is virtual after it
    let base = Instant::now();
    let mut b = Builder {
        base,
        now: Duration::ZERO,
        members: Vec::new(),
        queue: BTreeMap::new(),
        seq: 0,
        pool: Vec::new(),
        proposals: Vec::new(),
    };

    // A group of three, each member saying hello.
    b.create();
    b.join();
    b.run(true);
    b.join();
    b.run(true);
    assert_eq!(b.phases(), [Phase::Member; 3], "template group");
    for i in 0..3 {
        let at = b.at();
        b.members[i]
            .send_message(at, format!("hello from member {i}").as_bytes())
            .expect("chat");
        b.drain(i);
    }
    b.run(true);

    // Node 3 asks to join; the steward opens the add proposal; time stops.
    b.join();
    b.run(false);
    assert_eq!(b.members[3].phase(), Phase::PendingJoin, "template joiner");
    assert!(!b.proposals.is_empty(), "the add proposal was not opened");

    let snapshots: Vec<Vec<u8>> = b
        .members
        .iter()
        .map(|m| m.snapshot().expect("outputs are drained"))
        .collect();
    let now = b.now;
    let digests: Vec<[u8; 32]> = b.members.iter().map(Conversation::state_digest).collect();

    // The template's future, for the pool: restored copies run on.
    b.members = snapshots
        .iter()
        .map(|s| Conversation::restore(s, b.at(), b.unix()).expect("own snapshot restores"))
        .collect();
    for (i, m) in b.members.iter().enumerate() {
        assert_eq!(m.state_digest(), digests[i], "restore of node {i}");
    }
    b.run(true);
    assert_eq!(b.phases(), [Phase::Member; 4], "node 3 did not join");
    let at = b.at();
    b.members[3]
        .send_message(at, b"hello from member 3")
        .expect("chat");
    b.drain(3);
    b.members[2].leave(at).expect("leave");
    b.drain(2);
    b.run(true);
    let at = b.at();
    b.members[0]
        .propose_remove(at, &name(1))
        .expect("propose remove");
    b.drain(0);
    b.run(true);
    assert_eq!(
        b.phases(),
        [Phase::Member, Phase::Closed, Phase::Closed, Phase::Member],
        "the template's future"
    );
    assert!(
        b.pool.iter().any(|p| is_fragment(p)),
        "no fragmented packet (the largest is {} bytes): lower MAX_PACKET_LEN",
        b.pool.iter().map(Vec::len).max().unwrap_or(0)
    );

    let key_packages = b
        .pool
        .iter()
        .filter_map(|p| match v1::Packet::decode(p.as_slice()).ok()?.body? {
            v1::packet::Body::KeyPackage(k) => Some(k.key_package),
            _ => None,
        })
        .collect();
    Template {
        base,
        now,
        snapshots,
        pool: b.pool,
        key_packages,
        proposals: b.proposals,
    }
}

/// Splits `packet` into `k` fragment packets (fewer if it is short) with message id `[id; 16]`.
/// `flags` bit 1 drops the second piece, bit 2 gives the last piece a wrong total length, bit 3
/// a wrong count.
fn fragment(packet: &[u8], k: usize, id: u8, flags: u8) -> Vec<Vec<u8>> {
    let chunk_len = packet.len().div_ceil(k).max(1);
    let count = packet.len().div_ceil(chunk_len) as u32;
    let mut pieces: Vec<Vec<u8>> = packet
        .chunks(chunk_len)
        .enumerate()
        .map(|(index, chunk)| {
            let last = index + 1 == count as usize;
            v1::Packet {
                conversation_id: conversation_id().as_bytes().to_vec(),
                body: Some(v1::packet::Body::Fragment(v1::Fragment {
                    message_id: vec![id; 16],
                    index: index as u32,
                    count: if last && flags & 0b1000 != 0 {
                        count + 1
                    } else {
                        count
                    },
                    total_len: if last && flags & 0b100 != 0 {
                        packet.len() as u32 + 1
                    } else {
                        packet.len() as u32
                    },
                    chunk: chunk.to_vec(),
                })),
            }
            .encode_to_vec()
        })
        .collect();
    if flags & 0b10 != 0 && pieces.len() > 1 {
        pieces.remove(1);
    }
    pieces
}

// ----- the run -----

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

struct Run {
    t: &'static Template,
    members: Vec<Conversation>,
    now: Duration,
    /// Packets sent during this input.
    extra: Vec<Vec<u8>>,
    /// Proposals seen in events (template's first).
    proposals: Vec<ProposalDigest>,
    /// Packets sent and not delivered yet, with their sender.
    inflight: VecDeque<(usize, Vec<u8>)>,
    /// Nodes that receive no network traffic (only directly delivered packets).
    deaf: [bool; N],
}

impl Run {
    fn new(t: &'static Template) -> Self {
        let (at, unix) = (t.base + t.now, START_UNIX_MS + t.now.as_millis() as u64);
        let members = t
            .snapshots
            .iter()
            .map(|s| Conversation::restore(s, at, unix).expect("template snapshot restores"))
            .collect();
        Self {
            t,
            members,
            now: t.now,
            extra: Vec::new(),
            proposals: t.proposals.clone(),
            inflight: VecDeque::new(),
            deaf: [false; N],
        }
    }

    fn at(&self) -> Instant {
        self.t.base + self.now
    }

    fn unix(&self) -> u64 {
        START_UNIX_MS + self.now.as_millis() as u64
    }

    fn pool(&self, sel: u16) -> Vec<u8> {
        let (pool, extra) = (&self.t.pool, &self.extra);
        let i = usize::from(sel) % (pool.len() + extra.len());
        pool.get(i)
            .unwrap_or_else(|| &extra[i - pool.len()])
            .clone()
    }

    /// Moves node `i`'s outputs to the network.
    fn collect(&mut self, i: usize) {
        while let Some(t) = self.members[i].poll_transmit() {
            if self.extra.len() < MAX_EXTRA {
                self.extra.push(t.payload.clone());
            }
            self.inflight.push_back((i, t.payload));
        }
        while let Some(e) = self.members[i].poll_event() {
            remember(&mut self.proposals, &e);
        }
    }

    /// Hands `bytes` to node `to` and checks the refusal contract.
    fn deliver(&mut self, to: usize, bytes: &[u8]) {
        let at = self.at();
        let m = &mut self.members[to];
        let before = m.state_digest();
        if let Err(e) = m.handle_packet(at, bytes) {
            // The documented exception: a fragment that completes a reassembly is consumed even
            // when the reassembled payload is refused.
            if !is_fragment(bytes) {
                assert_eq!(
                    before,
                    m.state_digest(),
                    "node {to} changed its state on a refused packet: {e:?}"
                );
            }
        }
        self.collect(to);
    }

    /// Delivers to node `sel % 5`, or to every node when that is 4.
    fn deliver_sel(&mut self, sel: u8, bytes: &[u8]) {
        match usize::from(sel) % (N + 1) {
            N => (0..N).for_each(|to| self.deliver(to, bytes)),
            to => self.deliver(to, bytes),
        }
    }

    /// Runs a command on node `i` and checks that a refused one changes nothing.
    fn command<T>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Conversation, Instant) -> Result<T, demls_core::Error>,
    ) {
        let at = self.at();
        let m = &mut self.members[i];
        let before = m.state_digest();
        if let Err(e) = f(m, at) {
            assert_eq!(
                before,
                m.state_digest(),
                "node {i} changed its state on a refused command: {e:?}"
            );
        }
        self.collect(i);
    }

    /// Delivers what is in flight to every other node that hears, until quiet (or the budget
    /// is spent: the rest is dropped, as a lossy network would).
    fn flush(&mut self) {
        for i in 0..N {
            self.collect(i);
        }
        let mut budget = MAX_DELIVERIES;
        while let Some((from, bytes)) = self.inflight.pop_front() {
            let deaf = self.deaf;
            for to in (0..N).filter(|&to| to != from && !deaf[to]) {
                if budget == 0 {
                    self.inflight.clear();
                    return;
                }
                budget -= 1;
                self.deliver(to, &bytes);
            }
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match input.u8() % 15 {
            // Raw fuzzer bytes.
            0 => {
                let (to, len) = (input.u8(), usize::from(input.u16()));
                let bytes = input.bytes(len);
                self.deliver_sel(to, bytes);
            }
            // A pool packet unchanged.
            1 => {
                let (to, sel) = (input.u8(), input.u16());
                let p = self.pool(sel);
                self.deliver_sel(to, &p);
            }
            // A pool packet with one byte xor-ed.
            2 => {
                let (to, sel, pos, x) = (input.u8(), input.u16(), input.u16(), input.u8());
                let mut p = self.pool(sel);
                let len = p.len();
                p[usize::from(pos) % len] ^= if x == 0 { 0x80 } else { x };
                self.deliver_sel(to, &p);
            }
            // A truncated pool packet.
            3 => {
                let (to, sel, cut) = (input.u8(), input.u16(), input.u16());
                let mut p = self.pool(sel);
                p.truncate(usize::from(cut) % p.len());
                self.deliver_sel(to, &p);
            }
            // A pool packet under another conversation id.
            4 => {
                let (to, sel, how) = (input.u8(), input.u16(), input.u8());
                let p = self.pool(sel);
                let Ok(mut packet) = v1::Packet::decode(p.as_slice()) else {
                    return;
                };
                packet.conversation_id = match how % 4 {
                    0 => b"another-conversation".to_vec(),
                    1 => Vec::new(),
                    2 => vec![b'x'; 65],
                    _ => input.bytes(usize::from(how >> 2)).to_vec(),
                };
                self.deliver_sel(to, &packet.encode_to_vec());
            }
            // A pool packet with a few bytes overwritten by fuzzer bytes.
            5 => {
                let (to, sel, pos, n) = (input.u8(), input.u16(), input.u16(), input.u8() % 16);
                let mut p = self.pool(sel);
                let len = p.len();
                for (i, b) in input.bytes(usize::from(n)).iter().enumerate() {
                    p[(usize::from(pos) + i) % len] = *b;
                }
                self.deliver_sel(to, &p);
            }
            // Virtual time passes; every node ticks.
            6 => {
                let (scale, d) = (input.u8(), u64::from(input.u16()));
                self.now += match scale % 4 {
                    0 => Duration::from_micros(d),
                    1 | 2 => Duration::from_millis(d),
                    _ => Duration::from_secs(d % 600),
                };
                let at = self.at();
                for i in 0..N {
                    self.members[i].tick_deadlines(at);
                    if let Some(next) = self.members[i].next_deadline() {
                        assert!(
                            next > at,
                            "node {i}: a deadline is still due after the tick"
                        );
                    }
                    self.collect(i);
                }
            }
            // A chat message, sometimes large enough to be fragmented.
            7 => {
                let (i, len) = (usize::from(input.u8()) % N, input.u8());
                let body = if len == 0xff {
                    vec![0x5a; 3 * MAX_PACKET_LEN]
                } else {
                    input.bytes(usize::from(len % 64)).to_vec()
                };
                self.command(i, |m, at| m.send_message(at, &body));
            }
            // A removal proposal (of a node, or of a stranger).
            8 => {
                let (i, target) = (usize::from(input.u8()) % N, input.u8());
                let target = name(usize::from(target) % (N + 1));
                self.command(i, |m, at| m.propose_remove(at, &target));
            }
            // A node asks to leave.
            9 => {
                let i = usize::from(input.u8()) % N;
                self.command(i, |m, at| m.leave(at));
            }
            // A vote on a proposal seen in events.
            10 => {
                let (i, sel, choice) = (usize::from(input.u8()) % N, input.u8(), input.u8());
                let proposal = self.proposals[usize::from(sel) % self.proposals.len()];
                let choice = if choice & 1 != 0 {
                    Choice::Yes
                } else {
                    Choice::No
                };
                self.command(i, |m, at| m.vote(at, proposal, choice));
            }
            // An add proposal for a key package announced while building.
            11 => {
                let (i, sel) = (usize::from(input.u8()) % N, input.u8());
                let kps = &self.t.key_packages;
                let kp = kps[usize::from(sel) % kps.len()].clone();
                self.command(i, |m, at| m.propose_add(at, &kp));
            }
            // A node stops (or starts again) hearing the network.
            12 => {
                let i = usize::from(input.u8()) % N;
                self.deaf[i] = !self.deaf[i];
            }
            // A pool packet re-fragmented by the fuzzer: split into 2..=7 pieces under a
            // fuzzer-chosen message id, delivered in order or reversed, one piece possibly
            // dropped or given a wrong total length or count.
            13 => {
                let (to, sel, k, id, flags) = (
                    input.u8(),
                    input.u16(),
                    2 + usize::from(input.u8() % 6),
                    input.u8(),
                    input.u8(),
                );
                let p = self.pool(sel);
                let mut pieces = fragment(&p, k, id, flags);
                if flags & 1 != 0 {
                    pieces.reverse();
                }
                for piece in pieces {
                    self.deliver_sel(to, &piece);
                }
            }
            // A snapshot / restore round trip.
            _ => {
                let i = usize::from(input.u8()) % N;
                self.collect(i);
                let bytes = self.members[i]
                    .snapshot()
                    .expect("outputs are drained, a snapshot is possible");
                let restored = Conversation::restore(&bytes, self.at(), self.unix())
                    .expect("own snapshot restores");
                assert_eq!(
                    restored.state_digest(),
                    self.members[i].state_digest(),
                    "node {i}: restore changed the state"
                );
                self.members[i] = restored;
            }
        }
        self.flush();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut run = Run::new(template());
    let mut input = Input(data);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        run.step(&mut input);
    }
});
