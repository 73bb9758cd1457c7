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
//! N − 1 welcomes) is not measured and uses every core. The three groups (ours and the two
//! floors) are built side by side and their vote ingestion is interleaved vote by vote, in a
//! rotating order. Votes reach every group in an order unrelated to the senders' leaves.
//! Medians over several rounds at N = 10 and 100 (a fresh group each), one round at N = 1000;
//! `ADD_ROUND_SIZES=N[xROUNDS],…` chooses other sizes.
//!
//! Files: `measure.rs` (allocator, CPU clock, per-role sums), `ours.rs` (the round through
//! `Conversation`), `floor.rs` (the round in raw openmls), this file (the run and the tables).
//!
//! Memory: live heap bytes (a counting global allocator) freed by dropping the ordinary member
//! after the round, next to `Conversation::memory_bytes()` and the snapshot length.
//!
//! Run: `cargo bench -p demls-core --bench add_round`. Results: docs/performance.md.

mod floor;
mod measure;
mod ours;

use std::time::{Duration, Instant};

use demls_consensus::MemberId;
use demls_core::mls::DemlsProvider;
use demls_core::ConversationConfig;
use openmls_rust_crypto::OpenMlsRustCrypto;
use sha2::{Digest, Sha256};

use floor::{FloorGroup, FloorRound};
use measure::{heap_of, median_roles, Roles};
use ours::{ours_memory, Memory, OursGroup, OursRound};

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
/// raised limits do not change its work. The single-steward protocol: the measured round is
/// the steward's commit (a multi-steward round adds elections every few epochs and one
/// acknowledgement message per member, docs/performance.md).
fn config(n: usize) -> ConversationConfig {
    ConversationConfig {
        key_package_lifetime: LIFETIME,
        governance: demls_core::GovernanceConfig::single_steward(),
        max_open_proposals_per_member: n + 16,
        max_proposals_per_member_per_epoch: n + 16,
        max_commit_batch: n + 16,
        ..ConversationConfig::default()
    }
}

/// Network latency between a packet's publication and its delivery (virtual time).
const LATENCY: Duration = Duration::from_millis(50);

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
