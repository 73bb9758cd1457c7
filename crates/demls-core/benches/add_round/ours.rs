//! Ours: the round driven through `Conversation`.

use std::time::{Duration, Instant};

use demls_consensus::ConversationId;
use demls_core::{Channel, Conversation, ConversationConfig, Phase, Transmit};
use rayon::prelude::*;

use crate::measure::{heap_of, timed, Roles};
use crate::{config, name, representative, seed, Round, LATENCY, START_UNIX_MS};

pub(crate) struct OursGroup {
    pub(crate) n: usize,
    pub(crate) run: u64,
    pub(crate) config: ConversationConfig,
    pub(crate) base: Instant,
    pub(crate) now: Instant,
    /// Member 0 is the steward.
    pub(crate) members: Vec<Conversation>,
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
    pub(crate) fn setup(n: usize, run: u64) -> Self {
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

/// The state of ours between the stages of a round.
#[derive(Default)]
pub(crate) struct OursRound {
    cpu: Roles,
    at: Option<Instant>,
    joiner: Option<Conversation>,
    /// The vote transmits of each member (index 0, the steward, casts none).
    votes: Vec<Vec<Transmit>>,
}

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
pub(crate) struct Memory {
    pub(crate) memory_bytes: usize,
    pub(crate) snapshot_len: usize,
    pub(crate) heap: usize,
}

pub(crate) fn ours_memory(c: Conversation) -> Memory {
    Memory {
        memory_bytes: c.memory_bytes(),
        snapshot_len: c.snapshot().expect("outputs are drained").len(),
        heap: heap_of(c),
    }
}
