//! An in-process network of [`Conversation`]s with virtual time (quinn-proto's `Pair`,
//! generalised to N members): every transmitted packet is broadcast to every other member
//! after a fixed latency; [`Net::step`] advances virtual time to the earliest delivery or
//! member deadline. Nothing here reads a clock except once, for the base `Instant`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use demls::consensus::{ConversationId, MemberId, ProposalDigest};
use demls::core::{
    Action, Conversation, ConversationConfig, Event, GovernanceConfig, Phase, Transmit,
    ViolationKind,
};
use sha2::{Digest, Sha256};

/// Derived Unix time at the start of every test run: 2026-01-01T00:00:00Z.
pub const START_UNIX_MS: u64 = 1_767_225_600_000;

/// The test configuration: production timings, but key-package lifetimes long enough that
/// openmls's wall-clock lifetime check passes for any run started from `START_UNIX_MS`, and
/// the single-steward protocol (the creator commits; multi-steward tests use
/// [`multi_steward_config`]).
pub fn test_config() -> ConversationConfig {
    ConversationConfig {
        key_package_lifetime: Duration::from_secs(100 * 365 * 24 * 3600),
        governance: GovernanceConfig::single_steward(),
        ..ConversationConfig::default()
    }
}

/// [`test_config`] with the default multi-steward governance (steward lists of 3 to 5,
/// elections, rotation, scoring).
pub fn multi_steward_config() -> ConversationConfig {
    ConversationConfig {
        governance: GovernanceConfig::multi_steward(),
        ..test_config()
    }
}

pub fn conversation_id() -> ConversationId {
    ConversationId::new(b"test-conversation".to_vec()).unwrap()
}

pub fn name(i: usize) -> MemberId {
    MemberId::new(format!("member-{i:04}")).unwrap()
}

/// The seed of member `i` in a run seeded with `run_seed`.
pub fn member_seed(run_seed: u64, i: usize) -> [u8; 32] {
    Sha256::digest(format!("demls net seed {run_seed} member {i}")).into()
}

/// Something that happened on the network, for logs and byte-exact comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Member sent a packet.
    Sent(usize, Transmit),
    /// Member reported an event.
    Event(usize, Event),
    /// Member refused a delivered packet (the error's text).
    Refused(usize, String),
}

pub struct Net {
    pub members: Vec<Conversation>,
    base: Instant,
    pub now: Instant,
    latency: Duration,
    queue: BTreeMap<(Instant, u64), (usize, Vec<u8>)>,
    seq: u64,
    pub run_seed: u64,
    pub config: ConversationConfig,
    pub records: Vec<Record>,
    /// Members whose inbound packets are dropped (silent or partitioned members).
    pub deaf: Vec<usize>,
}

impl Net {
    pub fn new(run_seed: u64) -> Self {
        #[allow(clippy::disallowed_methods)]
        // the test host's base instant; time is virtual after it
        let base = Instant::now();
        Self {
            members: Vec::new(),
            base,
            now: base,
            latency: Duration::from_millis(50),
            queue: BTreeMap::new(),
            seq: 0,
            run_seed,
            config: test_config(),
            records: Vec::new(),
            deaf: Vec::new(),
        }
    }

    pub fn unix_now(&self) -> u64 {
        START_UNIX_MS + self.now.duration_since(self.base).as_millis() as u64
    }

    /// Member 0 creates the conversation.
    pub fn create(&mut self) -> usize {
        let i = self.members.len();
        let c = Conversation::create(
            self.config.clone(),
            conversation_id(),
            name(i),
            member_seed(self.run_seed, i),
            self.now,
            self.unix_now(),
        )
        .unwrap();
        self.members.push(c);
        self.drain(i);
        i
    }

    /// A new node starts joining.
    pub fn join(&mut self) -> usize {
        let i = self.members.len();
        let c = Conversation::join(
            self.config.clone(),
            conversation_id(),
            name(i),
            member_seed(self.run_seed, i),
            self.now,
            self.unix_now(),
        )
        .unwrap();
        self.members.push(c);
        self.drain(i);
        i
    }

    /// Moves member `i`'s outputs onto the network and into the records.
    pub fn drain(&mut self, i: usize) {
        while let Some(t) = self.members[i].poll_transmit() {
            for to in (0..self.members.len()).filter(|&to| to != i) {
                self.seq += 1;
                self.queue
                    .insert((self.now + self.latency, self.seq), (to, t.payload.clone()));
            }
            self.records.push(Record::Sent(i, t));
        }
        while let Some(e) = self.members[i].poll_event() {
            self.records.push(Record::Event(i, e));
        }
    }

    /// Delivers one packet directly to member `to` now (for injected, forged or replayed input).
    pub fn inject(&mut self, to: usize, bytes: &[u8]) -> Result<(), demls::core::Error> {
        let r = self.members[to].handle_packet(self.now, bytes);
        self.drain(to);
        r
    }

    /// Advances virtual time to the next delivery or deadline and processes everything due.
    /// Returns `false` when nothing is left to do.
    pub fn step(&mut self) -> bool {
        let next_delivery = self.queue.keys().next().map(|(t, _)| *t);
        let next_deadline = self.members.iter().filter_map(|m| m.next_deadline()).min();
        let Some(next) = [next_delivery, next_deadline].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(next);
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (to, bytes) = entry.remove();
            // A closed member that lingers (it has a deadline left) still hears packets.
            let gone = self.members[to].phase() == Phase::Closed
                && self.members[to].next_deadline().is_none();
            if self.deaf.contains(&to) || gone {
                continue;
            }
            if let Err(e) = self.members[to].handle_packet(self.now, &bytes) {
                self.records.push(Record::Refused(to, e.to_string()));
            }
            self.drain(to);
        }
        for i in 0..self.members.len() {
            if self.members[i]
                .next_deadline()
                .is_some_and(|d| d <= self.now)
            {
                self.members[i].tick_deadlines(self.now);
                self.drain(i);
            }
        }
        true
    }

    /// Steps until nothing is left to do; panics on livelock.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the network did not become quiet (livelock?)");
    }

    /// Steps until virtual time reaches `self.now + d` (or nothing is left).
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            let next_delivery = self.queue.keys().next().map(|(t, _)| *t);
            let next_deadline = self.members.iter().filter_map(|m| m.next_deadline()).min();
            match [next_delivery, next_deadline].into_iter().flatten().min() {
                Some(t) if t <= until => {
                    self.step();
                }
                _ => {
                    self.now = until;
                }
            }
        }
    }

    /// The key package member `i` announced on the welcome channel (the bytes
    /// `propose_add` takes).
    pub fn announced_key_package(&self, i: usize) -> Vec<u8> {
        use prost::Message as _;
        self.records
            .iter()
            .find_map(|r| match r {
                Record::Sent(j, t) if *j == i && t.channel == demls::core::Channel::Welcome => {
                    match demls::wire::v1::Packet::decode(t.payload.as_slice())
                        .unwrap()
                        .body
                    {
                        Some(demls::wire::v1::packet::Body::KeyPackage(k)) => Some(k.key_package),
                        _ => None,
                    }
                }
                _ => None,
            })
            .expect("the node announced its key package")
    }

    /// Replaces every member by the restoration of its snapshot, taken now.
    pub fn snapshot_and_restore_all(&mut self) {
        for i in 0..self.members.len() {
            let bytes = self.members[i].snapshot().expect("outputs are drained");
            let restored = Conversation::restore(&bytes, self.now, self.unix_now())
                .expect("own snapshot restores");
            assert_eq!(
                restored.state_digest(),
                self.members[i].state_digest(),
                "member {i}"
            );
            self.members[i] = restored;
        }
    }

    /// Events reported by member `i`, in order.
    pub fn events(&self, i: usize) -> Vec<&Event> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Event(j, e) if *j == i => Some(e),
                _ => None,
            })
            .collect()
    }

    /// Packets refused by any member, with reasons.
    pub fn refusals(&self) -> Vec<(usize, &str)> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Refused(i, e) => Some((*i, e.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Indexes of the members currently in the group.
    pub fn active(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].phase() == Phase::Member)
            .collect()
    }

    /// Asserts BRIEF §6 agreement among active members: same epoch, epoch authenticator,
    /// roster and stewards.
    pub fn assert_agreement(&self) {
        let active = self.active();
        let first = &self.members[active[0]];
        for &i in &active[1..] {
            let m = &self.members[i];
            assert_eq!(m.epoch(), first.epoch(), "member {i} epoch");
            assert_eq!(
                m.epoch_authenticator(),
                first.epoch_authenticator(),
                "member {i} authenticator"
            );
            assert_eq!(m.roster(), first.roster(), "member {i} roster");
            assert_eq!(m.stewards(), first.stewards(), "member {i} stewards");
            assert_eq!(
                m.group_state(),
                first.group_state(),
                "member {i} group state"
            );
        }
    }
}

/// A multi-steward network of `n` members, grown one join at a time (`tune` adjusts the
/// configuration every member starts with).
pub fn multi_steward_network(seed: u64, n: usize, tune: impl Fn(&mut ConversationConfig)) -> Net {
    let mut net = Net::new(seed);
    net.config = multi_steward_config();
    tune(&mut net.config);
    net.create();
    while net.members.len() < n {
        net.join();
        net.run();
    }
    net.assert_agreement();
    net
}

impl Net {
    /// The index of member `m`.
    pub fn index_of(&self, m: &MemberId) -> usize {
        (0..self.members.len())
            .find(|&i| self.members[i].member_id() == m)
            .expect("a member of the network")
    }

    /// The add proposals for node `j` member `i` saw opened, oldest first.
    pub fn opened_adds(&self, i: usize, j: usize) -> Vec<ProposalDigest> {
        self.events(i)
            .into_iter()
            .filter_map(|e| match e {
                Event::ProposalOpened {
                    proposal,
                    action: Action::Add(m),
                    ..
                } if *m == name(j) => Some(*proposal),
                _ => None,
            })
            .collect()
    }

    /// The offenders of the `kind` violations member `i` reported.
    pub fn violations(&self, i: usize, kind: ViolationKind) -> Vec<MemberId> {
        self.events(i)
            .into_iter()
            .filter_map(|e| match e {
                Event::Violation {
                    offender, kind: k, ..
                } if *k == kind => Some(offender.clone()),
                _ => None,
            })
            .collect()
    }
}
