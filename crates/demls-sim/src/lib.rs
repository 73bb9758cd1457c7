//! # demls-sim: the deterministic simulator of de-MLS groups
//!
//! A run is fully determined by a [`Scenario`] (which carries its seed) and the demls
//! revision: members join, leave, are removed and chat over an emulated network with
//! latency, jitter, loss, duplication, reordering and partitions, while members crash and
//! restart from snapshots, go silent or run with skewed clocks, and up to a third of them less
//! one are Byzantine (stewards that stay silent, censor, equivocate or commit undecided
//! proposals; proposal spammers; vote equivocators — through demls-core's `test-utils` hooks).
//! After every input of every honest member the invariants of BRIEF §6 are checked
//! ([`invariants`]); liveness mode heals the
//! network at a time and then demands progress within a bound derived from the
//! configuration. Runs can be recorded as traces, replayed, and cut down to one member
//! ([`trace`], `docs/traces.md`).
//!
//! The simulator drives real [`demls_core::Conversation`]s with real cryptography. Virtual
//! time is the only time: nothing sleeps, and the wall clock is read only for the base
//! `Instant` (whose value never matters) and, in the binary, for progress and CPU reports.
//!
//! ```
//! use demls_sim::{Options, Scenario, Sim};
//!
//! // Three members, then 20 s of churn and chat over the default faulty network.
//! let scenario = Scenario { members: 3, duration_ms: 20_000, ..Scenario::default() };
//! let mut sim = Sim::new(scenario, Options { threads: 1, verbose: false }).unwrap();
//! let summary = sim.run(|_progress| {});
//! assert!(summary.violations.is_empty(), "{:?}", summary.violations);
//! assert_eq!(summary.bootstrap_epoch, Some(1)); // both joiners added by one commit
//! assert_eq!(summary.uncommitted, 0); // liveness mode: everything approved committed
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod invariants;
pub mod netem;
pub mod node;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod stats;
pub mod trace;

pub use invariants::{Invariant, Violation};
pub use scenario::{Mode, Scenario, ScenarioError};
pub use sim::{Options, Progress, Sim};
pub use stats::Summary;
pub use trace::{ReplayOutcome, Trace, TraceError};
