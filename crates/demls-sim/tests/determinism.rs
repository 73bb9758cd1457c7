//! Determinism (BRIEF §6.7) and traces: the same scenario gives the same summary and the same
//! trace bytes whatever the number of threads; a recorded trace replays "identical", one
//! member's extracted trace replays on its own, and a tampered trace reports the first
//! divergence with its step and member.

// The simulator is a host, not the sans-IO core: a test may share its trace sink.
#![allow(clippy::disallowed_types)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use demls_sim::node::TimeBase;
use demls_sim::trace::{replay, Trace};
use demls_sim::{Options, ReplayOutcome, Scenario, Sim, Summary};

/// A `Write` into shared memory, so a test can read what the simulator recorded.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn scenario() -> Scenario {
    Scenario {
        seed: 42,
        members: 5,
        duration_ms: 40_000,
        ..Scenario::default()
    }
}

fn record(s: &Scenario, threads: usize) -> (Summary, Vec<u8>) {
    let mut sim = Sim::new(
        s.clone(),
        Options {
            threads,
            verbose: false,
        },
    )
    .unwrap();
    let out = Shared::default();
    sim.record(Box::new(out.clone())).unwrap();
    let summary = sim.run(|_| {});
    assert!(sim.trace_error().is_none());
    let bytes = out.0.lock().unwrap().clone();
    (summary, bytes)
}

#[allow(clippy::disallowed_methods)] // the replay's base instant; only offsets matter
fn time_base(trace: &Trace) -> TimeBase {
    TimeBase {
        base: Instant::now(),
        start_unix_ms: trace.header.start_unix_ms,
    }
}

#[test]
fn same_seed_same_summary_and_trace_bytes_with_any_thread_count() {
    let s = scenario();
    let (a, ta) = record(&s, 1);
    let (b, tb) = record(&s, 2);
    assert!(a.violations.is_empty(), "{:?}", a.violations);
    assert_eq!(a, b);
    assert_eq!(ta, tb, "trace bytes differ between 1 and 2 threads");
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    let other = Scenario { seed: 43, ..s };
    let (c, _) = record(&other, 1);
    assert_ne!(a.run_hash, c.run_hash);
}

#[test]
fn a_recorded_run_replays_identical_and_each_member_replays_alone() {
    let (summary, bytes) = record(&scenario(), 0);
    let trace = Trace::decode(&bytes).unwrap();
    assert_eq!(trace.records.len() as u64, summary.steps);
    assert_eq!(hex::encode(&trace.footer.run_hash), summary.run_hash);
    let tb = time_base(&trace);
    assert_eq!(
        replay(&trace, &tb, |_, _| {}).unwrap(),
        ReplayOutcome::Identical {
            records: summary.steps
        }
    );
    // Every member's extracted trace replays on its own, and survives a round trip.
    let members: std::collections::BTreeSet<u32> = trace.records.iter().map(|r| r.member).collect();
    for m in members {
        let single = Trace::decode(&trace.extract(m).unwrap().encode()).unwrap();
        assert_eq!(single.header.member, Some(m));
        assert!(matches!(
            replay(&single, &tb, |_, _| {}).unwrap(),
            ReplayOutcome::Identical { .. }
        ));
    }
}

#[test]
fn a_tampered_trace_reports_its_first_divergence() {
    let (_, bytes) = record(&scenario(), 1);
    let mut trace = Trace::decode(&bytes).unwrap();
    let tb = time_base(&trace);
    // Change the packet of the 200th packet input: the receiver's outputs or state differ.
    let i = trace
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            matches!(
                r.input,
                Some(demls_sim::trace::pb::trace_record::Input::Packet(_))
            )
        })
        .nth(200)
        .map(|(i, _)| i)
        .unwrap();
    let (step, member) = (trace.records[i].step, trace.records[i].member);
    if let Some(demls_sim::trace::pb::trace_record::Input::Packet(p)) = &mut trace.records[i].input
    {
        let last = p.len() - 1;
        p[last] ^= 1;
    }
    match replay(&trace, &tb, |_, _| {}).unwrap() {
        ReplayOutcome::Diverged(d) => {
            assert_eq!((d.step, d.member), (step, member));
            assert_ne!(d.expected, d.actual);
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}

#[test]
fn corrupt_and_foreign_files_are_refused_with_a_reason() {
    let (_, bytes) = record(&scenario(), 1);
    assert!(matches!(
        Trace::decode(b"not a trace at all"),
        Err(demls_sim::TraceError::BadMagic)
    ));
    let truncated = &bytes[..bytes.len() - 40];
    assert!(Trace::decode(truncated).is_err());
    let trace = Trace::decode(&bytes).unwrap();
    assert!(matches!(
        trace.extract(9_999),
        Err(demls_sim::TraceError::NoSuchMember(9_999))
    ));
}

#[test]
fn byzantine_runs_are_deterministic_and_replay_identical() {
    use demls_sim::scenario::{ByzantineFault, ByzantineKind};
    // Ten members, three of them Byzantine (split commits, split votes, undecided commits):
    // their hooks are trace inputs like any other, and their split sends are drawn in the
    // same merge order with any thread count.
    let mut s = Scenario {
        seed: 7,
        members: 10,
        duration_ms: 40_000,
        ..Scenario::default()
    };
    s.network.partitions.clear();
    s.faults.crashes.clear();
    s.network.relay_split_ms = Some(300);
    s.config.single_steward = false;
    s.byzantine = [
        ByzantineKind::EquivocatingSteward,
        ByzantineKind::VoteEquivocator,
        ByzantineKind::NonfinalizedCommit,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, kind)| ByzantineFault {
        kind,
        node: i + 1,
        from_ms: 0,
        target: None,
    })
    .collect();
    let (a, ta) = record(&s, 1);
    let (b, tb) = record(&s, 2);
    assert_eq!(a, b);
    assert_eq!(ta, tb, "trace bytes differ between 1 and 2 threads");
    assert!(
        a.byzantine.iter().all(|r| r.attempts > 0),
        "{:?}",
        a.byzantine
    );
    let trace = Trace::decode(&ta).unwrap();
    assert!(trace.records.iter().any(|r| matches!(
        r.input,
        Some(demls_sim::trace::pb::trace_record::Input::Byzantine(_))
    )));
    let tbase = time_base(&trace);
    assert_eq!(
        replay(&trace, &tbase, |_, _| {}).unwrap(),
        ReplayOutcome::Identical { records: a.steps }
    );
    let single = trace.extract(1).unwrap();
    assert!(matches!(
        replay(&single, &tbase, |_, _| {}).unwrap(),
        ReplayOutcome::Identical { .. }
    ));
}
