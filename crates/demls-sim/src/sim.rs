//! The world: nodes, the network in flight, the workload, the fault schedule, and the loop
//! that advances virtual time (TigerBeetle's simulator, quinn's `Pair` generalised).
//!
//! # How a step works
//! Time jumps to the earliest of: a scheduled global event (workload, fault, heal), a
//! delivery, a member deadline. A global event is handled alone. Otherwise the step takes the
//! *window* `[t, t + min_latency)` (cut at the next global event): nothing a member sends in
//! it can arrive inside it, so the members are independent within the window and are
//! processed in parallel (each one's deliveries and deadlines in time order). The records are
//! then merged in `(time, node, order)` order — so the run, the trace and every random draw
//! are the same whatever the number of threads — checked against the invariants, and their
//! transmits published through the network model.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use demls_consensus::{Choice, ConversationId, DecidedBy, MemberId, Outcome, ProposalDigest};
use demls_core::{Action, ConversationConfig, Event, Phase, ViolationKind};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::invariants::{action_key, ActionKey, Checker, Invariant, Violation};
use crate::netem::{self, ActivePartition, Side, MS};
use crate::node::{ByzantineInput, Command, Input, InputRecord, SimNode, TimeBase};
use crate::rng::SimRng;
use crate::scenario::{ByzantineKind, Mode, Scenario, ScenarioError};
use crate::stats::{percentile, ByzantineReport, Counters, Layer, LayerStat, Summary};
use crate::trace::{self, hash_record, pb, TraceError, TraceWriter};

/// Derived Unix time at virtual time zero: 2026-01-01T00:00:00Z.
pub const START_UNIX_MS: u64 = 1_767_225_600_000;

/// How the simulator runs (not part of the scenario: none of it changes the result).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Worker threads for the member windows; 0 = all cores, 1 = sequential.
    pub threads: usize,
    /// Print one status row per input to stderr (TigerBeetle's status line): virtual time,
    /// step, node, input, result, outputs.
    pub verbose: bool,
}

/// A live progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Virtual time, ms.
    pub virtual_ms: u64,
    /// The steward's epoch.
    pub epoch: u64,
    /// Members in the group (steward's roster).
    pub members: usize,
    /// Proposals opened.
    pub proposals: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Violations so far.
    pub violations: usize,
    /// Inputs processed.
    pub steps: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Global {
    Bootstrap,
    Churn,
    Message,
    Vote(usize, ProposalDigest, Choice),
    Crash {
        node: usize,
        down: u64,
    },
    RandomCrash,
    Restart(usize),
    RandomSilence,
    Rejoin(usize),
    Heal,
    /// A Byzantine member starts misbehaving (index into the scenario's list).
    ByzActivate(usize),
    /// A committing Byzantine member's commit slot in this epoch.
    ByzSlot {
        node: usize,
        epoch: u64,
    },
    /// A proposal spammer's next proposal.
    ByzSpam(usize),
    /// A vote equivocator's split votes on a proposal.
    ByzVotes(usize, ProposalDigest),
    /// A censoring steward moves on to the next joiner.
    ByzRetarget(usize),
}

/// A Byzantine member as the simulator drives it.
#[derive(Debug, Clone)]
struct ByzState {
    kind: ByzantineKind,
    /// Index into the scenario's list.
    fault: usize,
    activated: Option<u64>,
    /// Censoring steward: its current target.
    censor: Option<MemberId>,
    /// Committing kinds: the (epoch, recovery) whose slot is scheduled.
    slot: Option<(u64, bool)>,
    attempts: u64,
    refused: u64,
    removed: Option<u64>,
}

#[derive(Debug, Clone)]
struct Delivery {
    to: usize,
    bytes: Arc<Vec<u8>>,
    /// A delivery held back by a partition (repair): when it would have arrived without
    /// the partition, and how long after the partition ends it arrives. A heal ends the
    /// partition early, so [`Sim::heal`] brings it forward.
    deferred: Option<(u64, u64)>,
}

/// Lifecycle of one proposal, as the whole run saw it.
#[derive(Debug, Clone)]
struct ProposalLife {
    /// `None` for steward elections and deadlock proposals (no roster change to commit).
    key: Option<ActionKey>,
    opened: u64,
    decided: Option<(u64, Outcome)>,
    creator: MemberId,
    /// Approved proposals waiting when this one became due (liveness bound).
    queue_ahead: u64,
    /// Honest stewards (committers) that finalized it YES, and when.
    steward_yes: BTreeMap<usize, u64>,
    /// The first honest YES: time and the member's epoch.
    approved_at: Option<(u64, u64)>,
    committed: Option<u64>,
    /// The epoch the commit that applied it started (first honest member to apply it).
    committed_epoch: Option<u64>,
    /// The honest members that finalized it NO early (by the interval rule: final whatever
    /// the missing votes are).
    early_no: BTreeSet<usize>,
    /// The honest members whose decision is NO at the deadline (not revised since).
    deadline_no: BTreeSet<usize>,
    /// Some honest member finalized it YES early.
    early_yes: bool,
    /// The epoch of the first commit that applied its change, however it was decided.
    applied_epoch: Option<u64>,
}

impl ProposalLife {
    /// When an honest steward first finalized it YES — unless another honest member
    /// finalized it NO early: a YES that contradicts a final decision was taken at a
    /// deadline by a member that missed votes (§4's deadline divergence) and is owed no
    /// commit; nor is one that only deadline decisions back against other honest members'
    /// deadline NO.
    fn steward_yes(&self) -> Option<u64> {
        // Also owed none: a YES taken at a deadline while other honest members decided NO
        // at theirs, and nobody honest finalized it YES early — the honest members'
        // deadline decisions diverged, and neither side can justify the other's.
        if !self.early_no.is_empty() || (!self.deadline_no.is_empty() && !self.early_yes) {
            return None;
        }
        self.steward_yes.values().min().copied()
    }
}

/// A simulation run.
pub struct Sim {
    scenario: Scenario,
    config: ConversationConfig,
    pool: Option<rayon::ThreadPool>,
    verbose: bool,
    tb: TimeBase,
    conversation: ConversationId,
    now: u64,
    min_latency: u64,
    max_delay: u64,
    nodes: Vec<SimNode>,
    silences: Vec<(usize, u64, u64)>,
    crashed_until: BTreeMap<usize, u64>,
    /// Deliveries a crashed node missed, kept by the store until it restarts.
    store: BTreeMap<usize, Vec<Arc<Vec<u8>>>>,
    deliveries: BTreeMap<(u64, u64), Delivery>,
    globals: BTreeMap<(u64, u64), Global>,
    seq: u64,
    partitions: Vec<ActivePartition>,
    net_rng: SimRng,
    work_rng: SimRng,
    fault_rng: SimRng,
    entropy_rng: SimRng,
    byz_rng: SimRng,
    byz: BTreeMap<usize, ByzState>,
    byz_ids: BTreeMap<MemberId, usize>,
    /// Epochs in which recovery mode started at some honest member.
    recovery_epochs: BTreeSet<u64>,
    /// Epochs entered with a re-elected list (retry round > 0) installed.
    reelection_epochs: BTreeSet<u64>,
    /// Liveness failures in a group that ended a third or more Byzantine, or with fewer than
    /// 2n/3 honest welcomed members (outside BRIEF §6.6's premise; counted, not violations).
    liveness_beyond_fault_model: u64,
    /// Honest members left behind at the end because they finalized NO early a proposal a
    /// later commit carries (§4's deadline divergence; counted, not violations).
    liveness_diverged: u64,
    /// Approved proposals owed no commit because every honest member that approved them
    /// left the group first (see `check_liveness`).
    liveness_approvers_gone: u64,
    /// Epochs in which some honest member reported a steward inactive.
    inactivity_epochs: BTreeSet<u64>,
    /// Steward violations honest members reported: (offender, kind, epoch).
    reported: BTreeSet<(MemberId, ViolationKind, u64)>,
    /// Vote equivocations honest members detected: (proposal, voter).
    vote_equivocations: BTreeSet<(ProposalDigest, MemberId)>,
    governance_proposals: u64,
    checker: Checker,
    counters: Counters,
    proposals: BTreeMap<ProposalDigest, ProposalLife>,
    /// Changes some commit made: a later approval of the same change is moot.
    applied: BTreeSet<ActionKey>,
    /// The target size of the initial group, and when it was reached.
    bootstrap_done: Option<(u64, u64)>,
    workload_end: u64,
    healed: bool,
    heal_at: Option<u64>,
    stop_at: u64,
    run_hash: Sha256,
    trace: Option<TraceWriter>,
    trace_error: Option<TraceError>,
    max_epoch: u64,
    message_no: u64,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now_ms", &(self.now / MS))
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

/// The id of node `i`.
pub fn member_name(i: usize) -> MemberId {
    MemberId::new(format!("member-{i:04}")).expect("valid member id")
}

/// The seed of node `i`'s `attempt`-th start in a run seeded with `seed` (secret).
pub fn member_seed(seed: u64, i: usize, attempt: u32) -> [u8; 32] {
    Sha256::digest(format!("demls-sim seed {seed} node {i} attempt {attempt}")).into()
}

impl Sim {
    /// Prepares a run of `scenario`.
    pub fn new(scenario: Scenario, options: Options) -> Result<Self, ScenarioError> {
        scenario.validate()?;
        if scenario.mode == Mode::Liveness && !scenario.network.repair {
            return Err(ScenarioError::Config(
                "liveness mode needs network repair (without it a lost commit is lost for good)",
            ));
        }
        let seed = scenario.seed;
        #[allow(clippy::disallowed_methods)] // the base of virtual time; only offsets matter
        let base = Instant::now();
        let pool = match options.threads {
            1 => None,
            n => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .expect("thread pool"),
            ),
        };
        let mut sim = Self {
            config: scenario.config.conversation(),
            pool,
            verbose: options.verbose,
            tb: TimeBase {
                base,
                start_unix_ms: START_UNIX_MS,
            },
            conversation: ConversationId::new(format!("demls-sim-{seed}").into_bytes())
                .expect("valid id"),
            now: 0,
            min_latency: netem::min_latency(&scenario.network),
            max_delay: netem::max_delay(&scenario.network),
            nodes: Vec::new(),
            silences: Vec::new(),
            crashed_until: BTreeMap::new(),
            store: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            globals: BTreeMap::new(),
            seq: 0,
            partitions: scenario
                .network
                .partitions
                .iter()
                .map(ActivePartition::scheduled)
                .collect(),
            net_rng: SimRng::fork(seed, "network"),
            work_rng: SimRng::fork(seed, "workload"),
            fault_rng: SimRng::fork(seed, "faults"),
            entropy_rng: SimRng::fork(seed, "entropy"),
            byz_rng: SimRng::fork(seed, "byzantine"),
            byz: scenario
                .byzantine
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    (
                        b.node,
                        ByzState {
                            kind: b.kind,
                            fault: i,
                            activated: None,
                            censor: None,
                            slot: None,
                            attempts: 0,
                            refused: 0,
                            removed: None,
                        },
                    )
                })
                .collect(),
            byz_ids: scenario
                .byzantine
                .iter()
                .map(|b| (member_name(b.node), b.node))
                .collect(),
            recovery_epochs: BTreeSet::new(),
            reelection_epochs: BTreeSet::new(),
            liveness_beyond_fault_model: 0,
            liveness_diverged: 0,
            liveness_approvers_gone: 0,
            inactivity_epochs: BTreeSet::new(),
            reported: BTreeSet::new(),
            vote_equivocations: BTreeSet::new(),
            governance_proposals: 0,
            checker: Checker::new(scenario.byzantine.iter().map(|b| b.node).collect()),
            counters: Counters::default(),
            proposals: BTreeMap::new(),
            applied: BTreeSet::new(),
            bootstrap_done: None,
            workload_end: scenario.duration_ms * MS,
            healed: false,
            heal_at: None,
            stop_at: u64::MAX,
            run_hash: Sha256::new(),
            trace: None,
            trace_error: None,
            max_epoch: 0,
            message_no: 0,
            scenario,
        };
        sim.schedule_faults();
        sim.at(0, Global::Bootstrap);
        if sim.scenario.mode == Mode::Liveness {
            let h = sim.scenario.heal_at() * MS;
            sim.heal_at = Some(h);
            sim.at(h, Global::Heal);
        }
        Ok(sim)
    }

    /// Records the run into a trace written to `out`.
    pub fn record(&mut self, out: Box<dyn std::io::Write + Send>) -> Result<(), TraceError> {
        let header = pb::TraceHeader {
            format_version: trace::FORMAT_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").to_owned(),
            scenario_json: self.scenario.to_json(),
            seed: self.scenario.seed,
            member: None,
            start_unix_ms: START_UNIX_MS,
        };
        self.trace = Some(TraceWriter::new(out, &header)?);
        Ok(())
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        self.checker.violations()
    }

    /// The nodes (for tests).
    pub fn nodes(&self) -> &[SimNode] {
        &self.nodes
    }

    /// Virtual time, ms.
    pub fn now_ms(&self) -> u64 {
        self.now / MS
    }

    fn at(&mut self, t: u64, g: Global) {
        self.seq += 1;
        self.globals.insert((t, self.seq), g);
    }

    fn schedule_faults(&mut self) {
        let end = self.workload_end.max(MS);
        for c in self.scenario.faults.crashes.clone() {
            self.at(
                c.at_ms * MS,
                Global::Crash {
                    node: c.member,
                    down: c.down_ms * MS,
                },
            );
        }
        for s in &self.scenario.faults.silences {
            self.silences.push((s.member, s.from_ms * MS, s.to_ms * MS));
        }
        for _ in 0..self.scenario.faults.random_crashes {
            let t = self.fault_rng.below(end);
            self.at(t, Global::RandomCrash);
        }
        for _ in 0..self.scenario.faults.random_silences {
            let t = self.fault_rng.below(end);
            self.at(t, Global::RandomSilence);
        }
        for (i, b) in self.scenario.byzantine.clone().into_iter().enumerate() {
            self.at(b.from_ms * MS, Global::ByzActivate(i));
        }
        for _ in 0..self.scenario.network.random_partitions {
            let start = self.fault_rng.below(end);
            let salt = self.fault_rng.next_u64();
            let one_way = self.fault_rng.chance(0.3);
            self.partitions.push(ActivePartition {
                start,
                end: start + self.scenario.network.random_partition_ms * MS,
                side: Side::Drawn(salt),
                one_way,
            });
        }
    }

    // ----- the loop -----

    /// Runs to the end and returns the summary. `progress` is called every few hundred steps.
    pub fn run(&mut self, mut progress: impl FnMut(&Progress)) -> Summary {
        let mut last_steps = 0;
        while self.step() {
            if self.counters.steps >= last_steps + 512 {
                last_steps = self.counters.steps;
                progress(&self.progress());
            }
        }
        progress(&self.progress());
        self.finish()
    }

    /// The progress numbers now.
    pub fn progress(&self) -> Progress {
        let steward = self.steward_view();
        Progress {
            virtual_ms: self.now / MS,
            epoch: steward.map_or(0, |(e, _)| e),
            members: steward.map_or(0, |(_, m)| m),
            proposals: self.proposals.len() as u64,
            messages: self.counters.messages_delivered,
            violations: self.checker.violations().len(),
            steps: self.counters.steps,
        }
    }

    /// The group as the most advanced honest member sees it: (epoch, roster size). (With
    /// one steward this is the steward's view; with several, a steward may lag behind, or be
    /// Byzantine.)
    fn steward_view(&self) -> Option<(u64, usize)> {
        self.honest_members()
            .map(|(_, c)| (c.epoch().map_or(0, |e| e.0), c.roster().len()))
            .max_by_key(|(e, _)| *e)
    }

    /// One step; `false` when the run is over.
    pub fn step(&mut self) -> bool {
        let tg = self.globals.keys().next().map(|k| k.0);
        let td = self.deliveries.keys().next().map(|k| k.0);
        let tl = self.nodes.iter().filter_map(|n| n.deadline).min();
        let Some(t0) = [tg, td, tl].into_iter().flatten().min() else {
            return false;
        };
        if t0 > self.stop_at || self.quiet_after_workload(t0) {
            return false;
        }
        self.now = self.now.max(t0);
        if tg == Some(t0) {
            let (_, g) = self.globals.pop_first().expect("present");
            self.global(g);
            return true;
        }
        let end = (t0 + self.min_latency)
            .min(tg.unwrap_or(u64::MAX))
            .min(self.stop_at.saturating_add(1));
        while let Some(entry) = self.deliveries.first_entry() {
            let (t, seq) = *entry.key();
            if t >= end {
                break;
            }
            let d = entry.remove();
            self.route(t, seq, d);
        }
        let tb = self.tb;
        let config = &self.config;
        let busy: Vec<&mut SimNode> = self
            .nodes
            .iter_mut()
            .filter(|n| !n.inbox.is_empty() || n.deadline.is_some_and(|d| d < end))
            .collect();
        let batches: Vec<Vec<InputRecord>> = match (&self.pool, busy.len()) {
            (Some(pool), n) if n > 1 => pool.install(|| {
                busy.into_par_iter()
                    .map(|n| n.run_window(&tb, config, end))
                    .collect()
            }),
            _ => busy
                .into_iter()
                .map(|n| n.run_window(&tb, config, end))
                .collect(),
        };
        let mut records: Vec<(u64, usize, usize, InputRecord)> = batches
            .into_iter()
            .flat_map(|b| {
                b.into_iter()
                    .enumerate()
                    .map(|(i, r)| (r.time, r.node, i, r))
            })
            .collect();
        records.sort_by_key(|(t, n, i, _)| (*t, *n, *i));
        for (_, _, _, r) in records {
            self.merge(r);
        }
        self.now = self.now.max(end - 1);
        for n in &self.nodes {
            if n.deadline.is_some_and(|d| d < end) {
                let v = Violation {
                    invariant: Invariant::Deadline,
                    time_ms: self.now / MS,
                    node: Some(n.index),
                    detail: "tick_deadlines leaves a deadline due".into(),
                };
                self.checker.report(v);
                self.stop_at = self.now;
            }
        }
        true
    }

    /// After the workload (and the heal, in liveness mode): stop once nothing is in flight
    /// and every approved proposal is committed, or at the hard stop.
    fn quiet_after_workload(&self, t0: u64) -> bool {
        let settle_from = self.workload_end.max(self.heal_at.unwrap_or(0));
        if t0 < settle_from + self.settle_ns() {
            return false;
        }
        if t0 >= settle_from + self.hard_settle_ns() {
            return true;
        }
        self.deliveries.is_empty()
            && self
                .proposals
                .values()
                .all(|p| p.committed.is_some() || p.steward_yes.is_empty())
    }

    /// The per-round allowance of the liveness bound: one freeze window, a commit slot for
    /// each Byzantine member (each may be a steward the rotation walks past) and one for the
    /// honest steward that commits, the candidate window, and a commit's worst delay to
    /// arrive plus its acknowledgements'.
    fn round_ns(&self) -> u64 {
        let g = &self.config.governance;
        let slots = self.byz.len() as u64 + 1;
        self.config.freeze_window.as_nanos() as u64
            + slots * g.commit_inactivity.as_nanos() as u64
            + g.candidate_window.as_nanos() as u64
            + 4 * self.max_delay
            + MS
    }

    /// The base of the liveness bound: a proposal may still need its whole voting window
    /// (silent voters are counted at the deadline), the repair delay and two trips; with
    /// Byzantine members, also the escalation allowance ([`Sim::escalation_ns`]).
    fn bound_base_ns(&self) -> u64 {
        self.config.voting_duration.as_nanos() as u64
            + self.scenario.network.repair_ms * MS
            + 2 * self.max_delay
            + self.escalation_ns()
    }

    /// With Byzantine members, a whole steward list may fail once: every re-election
    /// (someone opens it within `voting_inactivity` per member ahead of it, it is decided
    /// by the members' immediate votes, its list walks all its stewards), then the deadlock
    /// proposal and a recovery walk over every member.
    fn escalation_ns(&self) -> u64 {
        if self.byz.is_empty() {
            return 0;
        }
        let g = &self.config.governance;
        let members = self
            .scenario
            .workload
            .max_members
            .max(self.scenario.members) as u64;
        let stewards = u64::from(g.sn_max.min(members as u32).max(1));
        let walk = self.config.freeze_window.as_nanos() as u64
            + stewards * g.commit_inactivity.as_nanos() as u64
            + g.candidate_window.as_nanos() as u64
            + 4 * self.max_delay;
        let open = members * g.voting_inactivity.as_nanos() as u64 + 4 * self.max_delay;
        let recovery = members * g.recovery_inactivity.as_nanos() as u64
            + g.candidate_window.as_nanos() as u64
            + 4 * self.max_delay;
        u64::from(g.max_reelection_attempts) * (open + walk) + open + recovery
    }

    fn settle_ns(&self) -> u64 {
        self.bound_base_ns() + self.round_ns()
    }

    fn hard_settle_ns(&self) -> u64 {
        // Roster proposals only: governance proposals need no commit of their own (and a
        // group that elects every epoch would otherwise push the stop out for ever). One per
        // change (kind and member): a member that opens its leave again every epoch — its
        // group's only steward Byzantine, censoring it — pushed the stop out by a round each
        // epoch, for ever (`demls-sim --generated 216064371096548 --mode liveness
        // --byzantine-mix any`: 800 epochs and counting).
        let approved = self
            .proposals
            .values()
            .filter(|p| matches!(p.decided, Some((_, Outcome::Yes))))
            .filter_map(|p| p.key.as_ref())
            .collect::<BTreeSet<_>>()
            .len() as u64;
        self.bound_base_ns() + (approved + 2) * self.round_ns()
    }

    /// Hands one delivery to its node's inbox, or defers or drops it.
    fn route(&mut self, t: u64, seq: u64, d: Delivery) {
        let Some(node) = self.nodes.get_mut(d.to) else {
            return;
        };
        if node.is_crashed() {
            if self.scenario.network.repair {
                // The store keeps it; the node fetches it when it restarts.
                self.counters.deferred += 1;
                self.store.entry(d.to).or_default().push(d.bytes);
            } else {
                self.counters.dropped += 1;
            }
            return;
        }
        if node
            .conv
            .as_ref()
            .is_none_or(|c| !crate::node::listening(c))
        {
            return;
        }
        self.counters.delivered += 1;
        node.inbox.push((t, seq, d.bytes));
    }

    /// Accounts one record: step number, run hash, trace, invariants, statistics, workload
    /// reactions, and publication of its transmits.
    fn merge(&mut self, r: InputRecord) {
        self.counters.steps += 1;
        let step = self.counters.steps;
        let hash = r.output_hash();
        let digest = r.digest.map(|d| d.to_vec()).unwrap_or_default();
        hash_record(&mut self.run_hash, &hash, &digest);
        if let Some(w) = self.trace.as_mut() {
            if let Err(e) = w.record(&trace::to_pb(step, &r, hash)) {
                self.trace_error.get_or_insert(e);
                self.trace = None;
            }
        }
        if r.result.is_err() {
            let reason = r.refusal.unwrap_or("host").to_owned();
            *self.counters.refusals.entry(reason).or_default() += 1;
        } else if let Input::Command(Command::SendMessage(_)) = r.input {
            self.counters.messages_sent += 1;
        }
        if self.verbose {
            eprintln!("{}", crate::node::status_row(step, &r));
        }
        self.checker.observe(&r);
        self.account_events(&r);
        let silent = self
            .silences
            .iter()
            .any(|&(n, from, to)| n == r.node && r.time >= from && r.time < to);
        if self.byz.contains_key(&r.node) {
            self.byzantine_after(&r);
        }
        let (a, b) = r.split.unwrap_or((0, 0));
        let from = r.node;
        // A split send: the first packets to every other peer at an even position among
        // the others, the next ones to the rest; with gossip relays, each half gets the
        // other half's packets later.
        let half = move |to: usize| (to - usize::from(to > from)) % 2;
        let relay = self.scenario.network.relay_split_ms.map(|ms| ms * MS);
        for (i, tx) in r.transmits.into_iter().enumerate() {
            if silent {
                self.counters.suppressed += 1;
                continue;
            }
            if i < a + b {
                let side = usize::from(i >= a);
                if let Some(delay) = relay {
                    self.publish_to(from, r.time + delay, tx.payload.clone(), |to| {
                        half(to) != side
                    });
                }
                self.publish_to(from, r.time, tx.payload, |to| half(to) == side);
            } else {
                self.publish(from, r.time, tx.payload);
            }
        }
    }

    fn publish(&mut self, from: usize, t: u64, payload: Vec<u8>) {
        self.publish_to(from, t, payload, |_| true);
    }

    /// Publishes to the peers `to` selects.
    fn publish_to(
        &mut self,
        from: usize,
        t: u64,
        payload: Vec<u8>,
        to_peer: impl Fn(usize) -> bool,
    ) {
        self.counters.packets += 1;
        self.counters.bytes += payload.len() as u64;
        let bytes = Arc::new(payload);
        let repair_ns = self.scenario.network.repair_ms * MS;
        let repair = self.scenario.network.repair.then_some(repair_ns);
        for to in 0..self.nodes.len() {
            if to == from
                || !to_peer(to)
                || self.nodes[to].conv.is_none() && !self.nodes[to].is_crashed()
            {
                continue;
            }
            if self.nodes[to]
                .conv
                .as_ref()
                .is_some_and(|c| !crate::node::listening(c))
            {
                continue;
            }
            let link = netem::link_of(&self.scenario.network, from, to);
            let fate = netem::draw(&mut self.net_rng, link, t, !self.healed, repair);
            if fate.lost {
                self.counters.lost += 1;
                if repair.is_none() {
                    self.counters.dropped += 1;
                }
            }
            if fate.duplicated {
                self.counters.duplicated += 1;
            }
            let blocked_until = self
                .partitions
                .iter()
                .filter(|p| p.blocks(t, from, to))
                .map(|p| p.end)
                .max();
            for arrival in fate.arrivals {
                let (arrival, deferred) = match (blocked_until, repair) {
                    (None, _) => (arrival, None),
                    (Some(end), Some(r)) => {
                        self.counters.deferred += 1;
                        let after = r + link.latency_ms * MS;
                        (arrival.max(end + after), Some((arrival, after)))
                    }
                    (Some(_), None) => {
                        self.counters.dropped += 1;
                        continue;
                    }
                };
                self.seq += 1;
                self.deliveries.insert(
                    (arrival, self.seq),
                    Delivery {
                        to,
                        bytes: bytes.clone(),
                        deferred,
                    },
                );
            }
        }
    }

    /// Statistics and workload reactions to a record's events.
    fn account_events(&mut self, r: &InputRecord) {
        let honest = !self.byz.contains_key(&r.node);
        // The member's epoch at each event: an `EpochChanged` names the epoch it enters.
        let mut epochs = vec![r.epoch.unwrap_or(0); r.events.len()];
        let mut current = r.epoch.unwrap_or(0);
        for (i, e) in r.events.iter().enumerate().rev() {
            epochs[i] = current;
            if let Event::EpochChanged { epoch, .. } | Event::Joined { epoch } = e {
                current = epoch.0.saturating_sub(1);
            }
        }
        let installed = r
            .events
            .iter()
            .any(|e| matches!(e, Event::StewardsChanged { .. }));
        for (e, &at_epoch) in r.events.iter().zip(&epochs) {
            match e {
                Event::ProposalOpened {
                    proposal,
                    action,
                    creator,
                } => {
                    if !self.proposals.contains_key(proposal) && action_key(action).is_none() {
                        self.governance_proposals += 1;
                    }
                    self.proposals.entry(*proposal).or_insert(ProposalLife {
                        key: action_key(action),
                        opened: r.time,
                        decided: None,
                        creator: creator.clone(),
                        queue_ahead: 0,
                        steward_yes: BTreeMap::new(),
                        approved_at: None,
                        committed: None,
                        committed_epoch: None,
                        early_no: BTreeSet::new(),
                        deadline_no: BTreeSet::new(),
                        early_yes: false,
                        applied_epoch: None,
                    });
                    let creator_is_me = *creator == self.nodes[r.node].id;
                    let self_leave = matches!(action, Action::Leave(_));
                    if creator_is_me {
                        continue;
                    }
                    if let Some(&byz) = self.byz_ids.get(creator) {
                        // Honest members vote down the removals a Byzantine member proposes
                        // (the application's policy; otherwise a spammer empties the group).
                        if honest && byz != r.node && matches!(action, Action::Remove(_)) {
                            let t = r.time + self.byz_rng.range(1, 200) * MS;
                            self.at(t, Global::Vote(r.node, *proposal, Choice::No));
                        }
                        continue;
                    }
                    if let Some(b) = self.byz.get(&r.node) {
                        if b.kind == ByzantineKind::VoteEquivocator && b.activated.is_some() {
                            self.at(r.time + MS, Global::ByzVotes(r.node, *proposal));
                        }
                        continue;
                    }
                    let no = self.scenario.workload.no_vote_probability;
                    let workload = action_key(action).is_some();
                    if workload && !self_leave && self.work_rng.chance(no) {
                        let t = r.time + self.work_rng.range(1, 200) * MS;
                        self.at(t, Global::Vote(r.node, *proposal, Choice::No));
                    }
                }
                Event::ProposalDecided {
                    proposal, decision, ..
                }
                | Event::ProposalRevised {
                    proposal, decision, ..
                } => {
                    let revised = matches!(e, Event::ProposalRevised { .. });
                    let waiting = self.waiting_approved();
                    let by_steward = honest && self.is_steward(r.node);
                    let yes = decision.outcome == Outcome::Yes;
                    if let Some(p) = self.proposals.get_mut(proposal) {
                        if by_steward && yes && p.key.is_some() {
                            p.steward_yes.entry(r.node).or_insert(r.time);
                        } else if revised && !yes {
                            p.steward_yes.remove(&r.node);
                        }
                        if honest && yes && p.approved_at.is_none() {
                            p.approved_at = Some((r.time, at_epoch));
                        }
                        if honest && !yes && decision.by == DecidedBy::Early {
                            p.early_no.insert(r.node);
                        }
                        if honest && !yes && decision.by == DecidedBy::Deadline {
                            p.deadline_no.insert(r.node);
                        }
                        if honest && yes {
                            p.deadline_no.remove(&r.node); // revised
                            p.early_yes |= decision.by == DecidedBy::Early;
                        }
                        // The run's view of the decision is the honest members': a Byzantine
                        // voter's own NO (it may equivocate) made an honest approval, and
                        // its commit, go unrecorded (`demls-sim --generated 103641623726844
                        // --mode liveness --byzantine-mix any`). Any honest YES — a revision,
                        // or the other side of a deadline divergence — turns it YES.
                        let first = honest && p.decided.is_none();
                        let turned_yes =
                            honest && yes && matches!(p.decided, Some((_, Outcome::No)));
                        if first || turned_yes {
                            p.decided = Some((r.time, decision.outcome));
                            p.queue_ahead = waiting;
                        }
                        let moot = p.key.as_ref().is_none_or(|k| self.applied.contains(k));
                        if honest && (first || turned_yes || yes) && moot {
                            // A governance proposal (nothing to commit to the roster), or
                            // approved after the change already happened (a late decision
                            // of a past epoch's proposal, also one another member decided
                            // differently): moot.
                            p.committed.get_or_insert(r.time);
                        }
                    }
                }
                Event::EpochChanged {
                    epoch,
                    added,
                    removed,
                } => {
                    self.max_epoch = self.max_epoch.max(epoch.0);
                    if !honest {
                        continue;
                    }
                    let changed: BTreeSet<ActionKey> = added
                        .iter()
                        .map(|m| (1, m.clone()))
                        .chain(
                            removed
                                .iter()
                                .flat_map(|m| [(2, m.clone()), (3, m.clone()), (4, m.clone())]),
                        )
                        .collect();
                    for p in self.proposals.values_mut() {
                        if p.applied_epoch.is_none()
                            && p.key.as_ref().is_some_and(|k| changed.contains(k))
                        {
                            p.applied_epoch = Some(epoch.0 - 1);
                        }
                        if p.committed.is_none()
                            && matches!(p.decided, Some((_, Outcome::Yes)))
                            && p.key.as_ref().is_some_and(|k| changed.contains(k))
                        {
                            p.committed = Some(r.time);
                            p.committed_epoch = Some(epoch.0 - 1);
                        }
                    }
                    for m in removed {
                        if let Some(b) = self.byz_ids.get(m).and_then(|n| self.byz.get_mut(n)) {
                            b.removed.get_or_insert(r.time);
                        }
                    }
                    if installed && r.view.as_ref().is_some_and(|v| v.retry_round > 0) {
                        self.reelection_epochs.insert(epoch.0);
                    }
                    self.applied.extend(changed);
                    self.check_epochs_target();
                }
                Event::Joined { epoch } => {
                    self.max_epoch = self.max_epoch.max(epoch.0);
                }
                Event::Closed if honest && self.group_gone() => {
                    // The last member left: its approved removal took effect by closing (no
                    // commit can empty a group).
                    let me = self.nodes[r.node].id.clone();
                    let gone: BTreeSet<ActionKey> =
                        [2, 3, 4].into_iter().map(|k| (k, me.clone())).collect();
                    for p in self.proposals.values_mut() {
                        if p.committed.is_none()
                            && matches!(p.decided, Some((_, Outcome::Yes)))
                            && p.key.as_ref().is_some_and(|k| gone.contains(k))
                        {
                            p.committed = Some(r.time);
                        }
                    }
                    self.applied.extend(gone);
                }
                Event::Message { .. } => self.counters.messages_delivered += 1,
                Event::JoinExpired => {
                    self.counters.joins_expired += 1;
                    if self.workload_running(r.time) {
                        let t = r.time + self.work_rng.range(100, 2_000) * MS;
                        self.at(t, Global::Rejoin(r.node));
                    }
                }
                Event::Violation {
                    offender,
                    kind,
                    epoch,
                } if honest => {
                    self.reported.insert((offender.clone(), *kind, epoch.0));
                    if *kind == ViolationKind::Inactivity {
                        self.inactivity_epochs.insert(epoch.0);
                    }
                }
                Event::RecoveryStarted if honest => {
                    self.recovery_epochs.insert(at_epoch);
                }
                Event::Equivocation(eq) if honest => {
                    self.vote_equivocations
                        .insert((eq.proposal, eq.voter.clone()));
                }
                _ => {}
            }
        }
    }

    fn waiting_approved(&self) -> u64 {
        self.proposals
            .values()
            .filter(|p| p.committed.is_none() && matches!(p.decided, Some((_, Outcome::Yes))))
            .count() as u64
    }

    fn workload_running(&self, t: u64) -> bool {
        t < self.workload_end
    }

    fn check_epochs_target(&mut self) {
        if let (Some(target), Some((_, boot_epoch))) = (self.scenario.epochs, self.bootstrap_done) {
            if self.max_epoch >= boot_epoch + target && self.workload_end > self.now {
                self.workload_end = self.now;
                if self.scenario.mode == Mode::Liveness && self.scenario.heal_at_ms.is_none() {
                    // Heal when the workload ends, as the default heal time promises.
                    self.globals.retain(|_, g| *g != Global::Heal);
                    self.heal_at = Some(self.now);
                    self.at(self.now, Global::Heal);
                }
            }
        }
    }

    // ----- global events -----

    fn global(&mut self, g: Global) {
        let t = self.now;
        match g {
            Global::Bootstrap => self.bootstrap(t),
            Global::Churn => self.churn(t),
            Global::Message => self.message(t),
            Global::Vote(node, proposal, choice) => {
                if self.running(node) {
                    self.command(node, t, Command::Vote(proposal, choice));
                }
            }
            Global::Crash { node, down } => self.crash(node, t, down),
            Global::RandomCrash => {
                if !self.healed {
                    if let Some(node) = self.random_member(self.multi_steward()) {
                        let down = self.scenario.faults.crash_ms * MS;
                        self.crash(node, t, down);
                    }
                }
            }
            Global::Restart(node) => self.restart(node, t),
            Global::RandomSilence => {
                if !self.healed {
                    if let Some(node) = self.random_member(self.multi_steward()) {
                        let until = t + self.scenario.faults.silence_ms * MS;
                        self.silences.push((node, t, until));
                    }
                }
            }
            Global::Rejoin(node) => {
                if self.nodes[node].phase() == Some(Phase::Closed) && self.workload_running(t) {
                    self.start_node(node, t, false);
                }
            }
            Global::Heal => self.heal(t),
            Global::ByzActivate(i) => self.byz_activate(i, t),
            Global::ByzSlot { node, epoch } => self.byz_slot(node, epoch, t),
            Global::ByzSpam(node) => self.byz_spam(node, t),
            Global::ByzVotes(node, proposal) => {
                if self.running(node) {
                    self.apply(
                        node,
                        t,
                        Input::Byzantine(ByzantineInput::EquivocateVotes(proposal)),
                    );
                }
            }
            Global::ByzRetarget(node) => {
                if self.running(node) {
                    let target = Some(member_name(self.nodes.len()));
                    if let Some(b) = self.byz.get_mut(&node) {
                        b.censor = target.clone();
                    }
                    self.byz_set(node, t, false, target);
                }
            }
        }
    }

    // ----- Byzantine members -----

    fn byz_set(&mut self, node: usize, t: u64, silent: bool, censor: Option<MemberId>) {
        self.apply(
            node,
            t,
            Input::Byzantine(ByzantineInput::Set { silent, censor }),
        );
    }

    /// The core's behaviour switch of an active Byzantine member (`None`: its kind is driven
    /// by the simulator alone).
    fn byz_behaviour(&self, node: usize) -> Option<(bool, Option<MemberId>)> {
        let b = self.byz.get(&node)?;
        b.activated?;
        match b.kind {
            ByzantineKind::SilentSteward
            | ByzantineKind::EquivocatingSteward
            | ByzantineKind::NonfinalizedCommit => Some((true, None)),
            ByzantineKind::CensoringSteward => Some((false, b.censor.clone())),
            ByzantineKind::ProposalSpammer | ByzantineKind::VoteEquivocator => None,
        }
    }

    fn byz_activate(&mut self, i: usize, t: u64) {
        let fault = self.scenario.byzantine[i].clone();
        let node = fault.node;
        if self.bootstrap_done.is_none() || !self.running(node) {
            // Not a member yet (or down): try again shortly, while the workload runs.
            if t < self.workload_end {
                self.at(t + 1_000 * MS, Global::ByzActivate(i));
            }
            return;
        }
        if self.byz.get(&node).is_none_or(|b| b.activated.is_some()) {
            return;
        }
        let censor = (fault.kind == ByzantineKind::CensoringSteward)
            .then(|| self.censor_target(node, fault.target))
            .flatten();
        if let Some(b) = self.byz.get_mut(&node) {
            b.activated = Some(t);
            b.censor = censor;
        }
        if let Some((silent, censor)) = self.byz_behaviour(node) {
            self.byz_set(node, t, silent, censor);
        }
        match fault.kind {
            ByzantineKind::EquivocatingSteward | ByzantineKind::NonfinalizedCommit => {
                self.byz_check_slot(node, t);
            }
            ByzantineKind::ProposalSpammer => self.at(t, Global::ByzSpam(node)),
            _ => {}
        }
    }

    /// A censoring steward's target: the scenario's, else the next node to join, else an
    /// honest member drawn from the seed.
    fn censor_target(&mut self, node: usize, target: Option<usize>) -> Option<MemberId> {
        if let Some(t) = target {
            return Some(member_name(t));
        }
        let w = &self.scenario.workload;
        if w.churn_interval_ms > 0 && w.join_weight > 0 {
            return Some(member_name(self.nodes.len()));
        }
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| i != node && self.running(i) && !self.byz.contains_key(&i))
            .collect();
        self.byz_rng.pick(&candidates).map(|&i| member_name(i))
    }

    /// Bookkeeping after a Byzantine member's input: its attempts and refusals, the
    /// censor's next target, the committing kinds' next slot.
    fn byzantine_after(&mut self, r: &InputRecord) {
        let node = r.node;
        let retarget_default =
            self.scenario.workload.join_weight > 0 && self.scenario.workload.churn_interval_ms > 0;
        let Some(b) = self.byz.get_mut(&node) else {
            return;
        };
        let attempt = matches!(
            r.input,
            Input::Byzantine(
                ByzantineInput::CommitBatch(_)
                    | ByzantineInput::EquivocateCommits
                    | ByzantineInput::EquivocateVotes(_)
            )
        ) || (b.kind == ByzantineKind::ProposalSpammer
            && matches!(r.input, Input::Command(Command::ProposeRemove(_))));
        if attempt {
            b.attempts += 1;
            if r.result.is_err() {
                b.refused += 1;
            }
        }
        let fixed = self.scenario.byzantine[b.fault].target.is_some();
        if b.kind == ByzantineKind::CensoringSteward && !fixed && retarget_default {
            if let Some(target) = b.censor.clone() {
                let joined = r.events.iter().any(
                    |e| matches!(e, Event::EpochChanged { added, .. } if added.contains(&target)),
                );
                if joined {
                    self.at(r.time + MS, Global::ByzRetarget(node));
                }
            }
        }
        self.byz_check_slot(node, r.time);
    }

    /// A committing Byzantine member (equivocating or non-finalized commits) with something
    /// approved gets its commit slot scheduled, once per epoch (and once more if recovery
    /// starts): at the end of the freeze window plus its position in the rotation times the
    /// slot length, as the core would time its own commit.
    fn byz_check_slot(&mut self, node: usize, t: u64) {
        let Some(b) = self.byz.get(&node) else {
            return;
        };
        if b.activated.is_none()
            || !matches!(
                b.kind,
                ByzantineKind::EquivocatingSteward | ByzantineKind::NonfinalizedCommit
            )
        {
            return;
        }
        let Some(c) = self.nodes[node].conv.as_ref() else {
            return;
        };
        let (Some(epoch), Some(gov)) = (c.epoch(), c.group_state()) else {
            return;
        };
        let key = (epoch.0, c.in_recovery());
        if c.phase() != Phase::Member || b.slot == Some(key) || c.approved_proposals().is_empty() {
            return;
        }
        let Some(position) = c.rotation().iter().position(|m| m == c.member_id()) else {
            return;
        };
        let (freeze, slot) = if c.in_recovery() {
            (0, gov.config.recovery_inactivity)
        } else {
            (
                self.config.freeze_window.as_nanos() as u64,
                gov.config.commit_inactivity,
            )
        };
        let at = t + freeze + position as u64 * slot.as_nanos() as u64;
        if let Some(b) = self.byz.get_mut(&node) {
            b.slot = Some(key);
        }
        self.at(
            at,
            Global::ByzSlot {
                node,
                epoch: epoch.0,
            },
        );
    }

    fn byz_slot(&mut self, node: usize, epoch: u64, t: u64) {
        if !self.running(node)
            || self.nodes[node]
                .conv
                .as_ref()
                .and_then(|c| c.epoch())
                .map(|e| e.0)
                != Some(epoch)
        {
            return;
        }
        match self.byz.get(&node).map(|b| b.kind) {
            Some(ByzantineKind::EquivocatingSteward) => {
                self.apply(node, t, Input::Byzantine(ByzantineInput::EquivocateCommits));
            }
            Some(ByzantineKind::NonfinalizedCommit) => {
                // Its own fresh removal proposal, committed before anyone could decide it
                // (honest members vote it down), along with the honest batch.
                if let Some(target) = self.byz_pick_target(node) {
                    self.byz_command(node, t, Command::ProposeRemove(target));
                }
                let me = self.nodes[node].id.clone();
                let Some(c) = self.nodes[node].conv.as_ref() else {
                    return;
                };
                let mut batch = c.test_commit_batch_now();
                let open: Vec<ProposalDigest> = c
                    .test_open_proposals()
                    .into_iter()
                    .filter(|d| !batch.contains(d))
                    .collect();
                let own = open
                    .iter()
                    .find(|d| self.proposals.get(d).is_some_and(|p| p.creator == me));
                let Some(&undecided) = own.or(open.first()) else {
                    return;
                };
                // At most one removal per commit, as honest committers do: openmls orders
                // several removals through a std HashMap, so their commit bytes would not be
                // reproducible from the seed.
                let removal = |d: &ProposalDigest| {
                    self.proposals
                        .get(d)
                        .and_then(|p| p.key.as_ref())
                        .is_some_and(|k| k.0 >= 2)
                };
                if removal(&undecided) {
                    batch.retain(|d| !removal(d));
                }
                batch.push(undecided);
                batch.sort();
                self.apply(
                    node,
                    t,
                    Input::Byzantine(ByzantineInput::CommitBatch(batch)),
                );
            }
            _ => {}
        }
    }

    /// A member to propose removing: an honest member other than `node`, drawn from the
    /// Byzantine stream.
    fn byz_pick_target(&mut self, node: usize) -> Option<MemberId> {
        let roster = self.nodes[node].conv.as_ref()?.roster();
        let candidates: Vec<MemberId> = roster
            .into_iter()
            .filter(|m| *m != self.nodes[node].id && !self.byz_ids.contains_key(m))
            .collect();
        self.byz_rng.pick(&candidates).cloned()
    }

    /// A command of a Byzantine member (entropy first, as for every command; not counted as
    /// workload).
    fn byz_command(&mut self, node: usize, t: u64, command: Command) {
        let entropy = self.entropy_rng.bytes(32);
        self.apply(node, t, Input::Entropy(entropy));
        self.apply(node, t, Input::Command(command));
    }

    fn byz_spam(&mut self, node: usize, t: u64) {
        if !self.workload_running(t) {
            return;
        }
        match self.nodes[node].phase() {
            Some(Phase::Member) => {
                if let Some(target) = self.byz_pick_target(node) {
                    self.byz_command(node, t, Command::ProposeRemove(target));
                }
            }
            Some(Phase::Closed) => return, // removed: its spam is over
            _ => {}                        // down or joining: wait
        }
        self.at(t + 200 * MS, Global::ByzSpam(node));
    }

    fn running(&self, node: usize) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|n| n.phase() == Some(Phase::Member))
    }

    /// Whether the group elects stewards: then any member may crash, fall silent, leave or
    /// be removed (another steward commits it); with the single steward, the steward never
    /// does (it cannot commit its own removal, and nobody else commits).
    fn multi_steward(&self) -> bool {
        !self.scenario.config.single_steward
    }

    /// A random running honest member that is not a steward (`steward_ok` allows
    /// stewards). Byzantine members never act for the workload.
    fn random_member(&mut self, steward_ok: bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.running(i) && !self.byz.contains_key(&i))
            .filter(|&i| steward_ok || !self.is_steward(i))
            .collect();
        self.work_rng.pick(&candidates).copied()
    }

    fn is_steward(&self, node: usize) -> bool {
        self.nodes[node]
            .conv
            .as_ref()
            .is_some_and(|c| c.stewards().contains(c.member_id()))
    }

    fn apply(&mut self, node: usize, t: u64, input: Input) {
        let r = self.nodes[node].apply(&self.tb, &self.config, t, input);
        self.merge(r);
    }

    fn command(&mut self, node: usize, t: u64, command: Command) {
        // The host mixes fresh entropy before each command (here: seeded bytes).
        let entropy = self.entropy_rng.bytes(32);
        self.apply(node, t, Input::Entropy(entropy));
        match &command {
            Command::Leave => self.counters.leaves += 1,
            Command::ProposeRemove(_) => self.counters.removals += 1,
            _ => {}
        }
        self.apply(node, t, Input::Command(command));
    }

    fn start_node(&mut self, node: usize, t: u64, create: bool) {
        if node == self.nodes.len() {
            let max = self.scenario.faults.max_clock_skew_ms as i64;
            let skew = if max == 0 {
                0
            } else {
                self.fault_rng.range(0, 2 * max as u64) as i64 - max
            };
            self.nodes.push(SimNode::new(node, member_name(node), skew));
        }
        let attempt = self.counters.joins_started as u32;
        self.counters.joins_started += 1;
        let n = &self.nodes[node];
        let input = Input::Start {
            create,
            conversation_id: self.conversation.clone(),
            member_id: n.id.clone(),
            seed: member_seed(self.scenario.seed, node, attempt),
            unix_ms: self.tb.unix_ms(t, n.skew_ms),
        };
        self.apply(node, t, input);
    }

    fn bootstrap(&mut self, t: u64) {
        if self.nodes.is_empty() {
            self.start_node(0, t, true);
        }
        let target = self.scenario.members;
        let members = self.steward_view().map_or(0, |(_, m)| m);
        if members >= target {
            let epoch = self.steward_view().map_or(0, |(e, _)| e);
            self.bootstrap_done = Some((t, epoch));
            self.check_epochs_target();
            if self.scenario.workload.churn_interval_ms > 0 {
                let dt = self
                    .work_rng
                    .exponential(self.scenario.workload.churn_interval_ms);
                self.at(t + dt * MS, Global::Churn);
            }
            self.schedule_message(t);
            return;
        }
        let pending = self
            .nodes
            .iter()
            .filter(|n| n.phase() == Some(Phase::PendingJoin))
            .count();
        if !self.workload_running(t) {
            // The initial group never completed (the workload ran out first): stop trying.
            return;
        }
        if pending == 0 {
            let c = &self.config;
            let wave = c
                .max_open_proposals_per_member
                .min(c.max_commit_batch)
                .min(c.max_proposals_per_member_per_epoch)
                .min(target - members);
            for _ in 0..wave {
                let i = self.nodes.len();
                self.start_node(i, t, false);
            }
        }
        self.at(t + 250 * MS, Global::Bootstrap);
    }

    fn schedule_message(&mut self, t: u64) {
        let rate = self.scenario.workload.messages_per_minute;
        if let Some(mean_us) = 60_000_000u64.checked_div(rate) {
            let dt = self.work_rng.exponential(mean_us).max(1);
            self.at(t + dt * 1000, Global::Message);
        }
    }

    fn member_count(&self) -> usize {
        self.steward_view().map_or(0, |(_, m)| m)
    }

    fn churn(&mut self, t: u64) {
        if !self.workload_running(t) {
            return;
        }
        let w = self.scenario.workload.clone();
        let dt = self.work_rng.exponential(w.churn_interval_ms).max(1);
        self.at(t + dt * MS, Global::Churn);
        let members = self.member_count();
        let pending = self
            .nodes
            .iter()
            .filter(|n| n.phase() == Some(Phase::PendingJoin))
            .count();
        let join = if members + pending < w.max_members {
            w.join_weight
        } else {
            0
        };
        let shrink = members > w.min_members.max(1);
        let leave = if shrink { w.leave_weight } else { 0 };
        let remove = if shrink { w.remove_weight } else { 0 };
        let total = u64::from(join + leave + remove);
        if total == 0 {
            return;
        }
        let x = self.work_rng.below(total) as u32;
        if x < join {
            let i = self.nodes.len();
            self.start_node(i, t, false);
        } else if x < join + leave {
            if let Some(node) = self.random_member(self.multi_steward()) {
                self.command(node, t, Command::Leave);
            }
        } else if let (Some(proposer), Some(target)) = (
            self.random_member(true),
            self.random_member(self.multi_steward()),
        ) {
            if proposer != target {
                let target = self.nodes[target].id.clone();
                self.command(proposer, t, Command::ProposeRemove(target));
            }
        }
    }

    fn message(&mut self, t: u64) {
        if !self.workload_running(t) {
            return;
        }
        self.schedule_message(t);
        if let Some(node) = self.random_member(true) {
            self.message_no += 1;
            let body = format!("message {} from {}", self.message_no, self.nodes[node].id);
            self.command(node, t, Command::SendMessage(body.into_bytes()));
        }
    }

    fn crash(&mut self, node: usize, t: u64, down: u64) {
        let Some(n) = self.nodes.get(node) else {
            return;
        };
        if n.conv.is_none() || n.phase() == Some(Phase::Closed) || (self.healed && down > 0) {
            return;
        }
        self.counters.crashes += 1;
        let until = t + down;
        self.crashed_until.insert(node, until);
        self.apply(node, t, Input::Crash);
        self.at(until, Global::Restart(node));
    }

    fn restart(&mut self, node: usize, t: u64) {
        if !self.nodes.get(node).is_some_and(SimNode::is_crashed) {
            return;
        }
        self.counters.restarts += 1;
        self.crashed_until.remove(&node);
        let unix_ms = self.tb.unix_ms(t, self.nodes[node].skew_ms);
        self.apply(node, t, Input::Restart { unix_ms });
        // The behaviour switch is not part of snapshots: a restarted Byzantine member sets
        // it again before anything else.
        if let Some((silent, censor)) = self.byz_behaviour(node) {
            if self.nodes[node].conv.is_some() {
                self.byz_set(node, t, silent, censor);
            }
        }
        // A restarting host first syncs what it missed from the store (Waku Store), then
        // resumes its timers: deciding a proposal at a deadline that passed while it was
        // down, before reading the votes cast meanwhile, would diverge from the others.
        for bytes in self.store.remove(&node).unwrap_or_default() {
            if self.nodes[node].phase().is_some_and(|p| p != Phase::Closed) {
                self.counters.delivered += 1;
                self.apply(node, t, Input::Packet(bytes));
            }
        }
    }

    /// Liveness mode: from now on no loss, no partition, no silence, no new fault; crashed
    /// nodes restart now.
    fn heal(&mut self, t: u64) {
        self.healed = true;
        for p in &mut self.partitions {
            p.end = p.end.min(t);
        }
        // Deliveries a partition held back arrive as if it had ended now (the store-and-
        // forward repair fetches them once the obstacle is gone), not at its drawn end.
        let early: Vec<(u64, u64)> = self
            .deliveries
            .iter()
            .filter(|((arrival, _), d)| d.deferred.is_some_and(|(n, a)| n.max(t + a) < *arrival))
            .map(|(k, _)| *k)
            .collect();
        for key in early {
            let d = self.deliveries.remove(&key).expect("collected above");
            let (natural, after) = d.deferred.expect("collected above");
            self.deliveries.insert((natural.max(t + after), key.1), d);
        }
        for s in &mut self.silences {
            s.2 = s.2.min(t);
        }
        let crashed: Vec<usize> = self.crashed_until.keys().copied().collect();
        for node in crashed {
            self.restart(node, t);
        }
        let waiting = self.waiting_approved();
        for p in self.proposals.values_mut() {
            if p.committed.is_none() && matches!(p.decided, Some((_, Outcome::Yes))) {
                p.queue_ahead = p.queue_ahead.max(waiting);
            }
        }
    }

    // ----- the end -----

    fn finish(&mut self) -> Summary {
        if self.scenario.mode == Mode::Liveness {
            self.check_liveness();
        }
        if let Some(w) = self.trace.take() {
            if let Err(e) = w.finish() {
                self.trace_error.get_or_insert(e);
            }
        }
        let roster = |p: &&ProposalLife| p.key.is_some();
        let committed: Vec<u64> = self
            .proposals
            .values()
            .filter(roster)
            .filter_map(|p| p.committed.map(|c| (c - p.opened) / MS))
            .collect();
        let yes =
            |p: &&ProposalLife| p.key.is_some() && matches!(p.decided, Some((_, Outcome::Yes)));
        let resolution_samples = self.resolution_samples();
        let mut resolution = BTreeMap::new();
        for layer in Layer::ALL {
            let samples: Vec<u64> = resolution_samples
                .iter()
                .filter(|(l, _)| *l == layer)
                .map(|(_, ms)| *ms)
                .collect();
            if !samples.is_empty() {
                resolution.insert(layer.name().to_owned(), LayerStat::of(&samples));
            }
        }
        let count_kinds = |offenders: &dyn Fn(&MemberId) -> bool| {
            let mut out: BTreeMap<String, u64> = BTreeMap::new();
            for (m, kind, _) in &self.reported {
                if offenders(m) {
                    *out.entry(format!("{kind:?}")).or_default() += 1;
                }
            }
            out
        };
        let steward_violations = count_kinds(&|m| self.byz_ids.contains_key(m));
        let honest_accused = count_kinds(&|m| !self.byz_ids.contains_key(m));
        let score_view = self
            .honest_members()
            .next()
            .and_then(|(_, c)| c.group_state().map(|g| (g.clone(), c.roster())));
        let byzantine: Vec<ByzantineReport> = self
            .byz
            .iter()
            .map(|(&node, b)| {
                let id = member_name(node);
                ByzantineReport {
                    node,
                    kind: b.kind.name().to_owned(),
                    active_ms: b.activated.map(|t| t / MS),
                    removed_ms: b.removed.map(|t| t / MS),
                    final_score: score_view
                        .as_ref()
                        .filter(|(_, roster)| roster.contains(&id))
                        .map(|(g, _)| g.score(&id)),
                    reported: count_kinds(&|m| *m == id),
                    attempts: b.attempts,
                    refused: b.refused,
                    approved_proposals: self
                        .proposals
                        .values()
                        .filter(|p| p.creator == id && p.approved_at.is_some())
                        // Removals are what a spammer sends; the adds and elections its core
                        // opens as duties are honest.
                        .filter(|p| p.key.as_ref().is_some_and(|(kind, _)| *kind == 2))
                        .count() as u64,
                }
            })
            .collect();
        let c = &self.counters;
        Summary {
            seed: self.scenario.seed,
            mode: match self.scenario.mode {
                Mode::Safety => "safety".into(),
                Mode::Liveness => "liveness".into(),
            },
            virtual_ms: self.now / MS,
            steps: c.steps,
            nodes: self.nodes.len(),
            members: self.member_count(),
            epochs: self.max_epoch,
            bootstrap_epoch: self.bootstrap_done.map(|(_, e)| e),
            bootstrap_ms: self.bootstrap_done.map(|(t, _)| t / MS),
            proposals: self.proposals.values().filter(roster).count() as u64,
            approved: self.proposals.values().filter(yes).count() as u64,
            rejected: self
                .proposals
                .values()
                .filter(roster)
                .filter(|p| matches!(p.decided, Some((_, Outcome::No))))
                .count() as u64,
            committed: committed.len() as u64,
            uncommitted: self
                .proposals
                .values()
                .filter(yes)
                .filter(|p| p.committed.is_none())
                .count() as u64,
            deadline_divergences: self.checker.deadline_divergences(),
            equivocation_divergences: self.checker.equivocation_divergences(),
            forks_beyond_fault_model: self.checker.forks_beyond_fault_model(),
            validity_beyond_fault_model: self.checker.validity_beyond_fault_model(),
            liveness_beyond_fault_model: self.liveness_beyond_fault_model,
            liveness_diverged: self.liveness_diverged,
            liveness_approvers_gone: self.liveness_approvers_gone,
            commit_p50_ms: percentile(&committed, 50),
            commit_p99_ms: percentile(&committed, 99),
            messages_sent: c.messages_sent,
            messages_delivered: c.messages_delivered,
            packets: c.packets,
            bytes_sent: c.bytes,
            deliveries: c.delivered,
            lost: c.lost,
            dropped: c.dropped,
            suppressed: c.suppressed,
            deferred: c.deferred,
            duplicated: c.duplicated,
            refusals: c.refusals.clone(),
            joins_started: c.joins_started,
            joins_expired: c.joins_expired,
            leaves: c.leaves,
            removals: c.removals,
            crashes: c.crashes,
            restarts: c.restarts,
            governance_proposals: self.governance_proposals,
            steward_violations,
            honest_accused,
            vote_equivocations: self.vote_equivocations.len() as u64,
            recoveries: self.recovery_epochs.len() as u64,
            reelections: self.reelection_epochs.len() as u64,
            resolution,
            resolution_samples,
            byzantine,
            heal_ms: self.heal_at.map(|h| h / MS),
            liveness_bound_ms: (self.scenario.mode == Mode::Liveness)
                .then(|| (self.bound_base_ns() + self.round_ns()) / MS),
            violations: self.checker.violations().to_vec(),
            run_hash: hex::encode(self.run_hash.clone().finalize()),
        }
    }

    /// Approval-to-commit times (ms) of committed roster proposals, with the layer that
    /// resolved each (see [`Layer`]).
    fn resolution_samples(&self) -> Vec<(Layer, u64)> {
        let mut out = Vec::new();
        for p in self.proposals.values() {
            let (Some((approved, from)), Some(committed), Some(to)) =
                (p.approved_at, p.committed, p.committed_epoch)
            else {
                continue;
            };
            let during = |set: &BTreeSet<u64>| set.range(from..=to.max(from)).next().is_some();
            let layer = if during(&self.recovery_epochs) {
                Layer::Recovery
            } else if self
                .reelection_epochs
                .range(from + 1..=to.max(from) + 1)
                .next()
                .is_some()
            {
                Layer::Reelection
            } else if during(&self.inactivity_epochs) {
                Layer::Rotation
            } else {
                Layer::EpochSteward
            };
            out.push((layer, committed.saturating_sub(approved) / MS));
        }
        out
    }

    /// Whether every honest steward that finalized `p` YES is out of the group at the end,
    /// and no honest member of the group holds `d` approved.
    fn approvers_gone(&self, d: &ProposalDigest, p: &ProposalLife) -> bool {
        let member = |i: usize| {
            self.nodes
                .get(i)
                .is_some_and(|n| n.phase() == Some(Phase::Member))
        };
        let held = self
            .honest_members()
            .any(|(_, c)| c.approved_proposals().contains(d));
        !held && p.steward_yes.keys().all(|&i| !member(i))
    }

    /// Whether no honest node is a member of the group any more.
    fn group_gone(&self) -> bool {
        self.honest_members().next().is_none()
    }

    /// The honest nodes that are members of the group (running, joined, not closed), with
    /// their indices.
    fn honest_members(&self) -> impl Iterator<Item = (usize, &demls_core::Conversation)> {
        self.nodes
            .iter()
            .filter(|n| !self.byz.contains_key(&n.index))
            .filter_map(|n| n.conv.as_ref().map(|c| (n.index, c)))
            .filter(|(_, c)| c.phase() == Phase::Member)
    }

    /// A trace write error, if recording failed (the run itself went on).
    pub fn trace_error(&self) -> Option<&TraceError> {
        self.trace_error.as_ref()
    }

    /// Liveness (BRIEF §6.6): after the heal, every proposal the steward approved commits within
    /// `base + (queue + 1) × round` of `max(decision, heal)`, where `queue` is the number of
    /// approved proposals waiting when it became due (each commit round commits at least
    /// one), and every running honest member ends at the latest honest epoch — unless it
    /// finalized NO early a proposal that a later commit carried (counted in
    /// `liveness_diverged`).
    fn check_liveness(&mut self) {
        let heal = self.heal_at.unwrap_or(0);
        let (base, round) = (self.bound_base_ns(), self.round_ns());
        let end = self.now;
        let mut found = Vec::new();
        for (d, p) in &self.proposals {
            // What the committer finalized YES must commit; a member whose deadline decision
            // diverged (see `invariants`) is not owed a commit.
            let Some(decided) = p.steward_yes() else {
                continue;
            };
            // Nor a proposal a Byzantine voter equivocated on that honest members decided
            // differently: each side counted its first vote, the union of the votes does not
            // reconcile them (docs/protocol.md §5), and neither side can justify the other's
            // commit (`demls-sim --generated 187052145917356 --mode liveness --byzantine-mix
            // any`: the draw settles the round on a candidate without it).
            if self.checker.vote_equivocated(d)
                && !(p.deadline_no.is_empty() && p.early_no.is_empty())
            {
                continue;
            }
            // Nor one whose approvers all left the group before it was committed, and that no
            // honest member of the group holds approved: nobody is left who can commit it (a
            // removal proposed into a partition, decided YES by its creator alone at its
            // deadline; the creator crashed and was removed before it could open it again:
            // `demls-sim --generated 137028445259228 --mode liveness --byzantine-mix any`).
            if p.committed.is_none() && self.approvers_gone(d, p) {
                self.liveness_approvers_gone += 1;
                continue;
            }
            let due = decided.max(heal) + base + (p.queue_ahead + 1) * round;
            // Never committed by the end of the run counts as late whatever the bound.
            let late = p.committed.is_none_or(|c| c > due);
            if late {
                found.push(Violation {
                    invariant: Invariant::Liveness,
                    time_ms: due / MS,
                    node: None,
                    detail: format!(
                        "approved proposal {} ({:?} {}) {} (bound {} ms after {} ms)",
                        hex::encode(&d.0[..8]),
                        match p.key.as_ref().map_or(0, |k| k.0) {
                            1 => "add",
                            2 => "remove",
                            3 => "leave",
                            4 => "remove below threshold",
                            _ => "governance",
                        },
                        p.key.as_ref().map_or("-".to_owned(), |k| k.1.to_string()),
                        match p.committed {
                            Some(c) => format!("committed at {} ms", c / MS),
                            None => "never committed".into(),
                        },
                        (due - decided.max(heal)) / MS,
                        decided.max(heal) / MS
                    ),
                });
            }
        }
        // Every running honest member ends at the latest epoch an honest member reached (a
        // steward may itself be the one left behind).
        let latest = self
            .honest_members()
            .filter_map(|(_, c)| c.epoch())
            .map(|e| e.0)
            .max();
        // A member that finalized NO early a proposal a later commit carries (a deadline
        // YES of members that missed its vote, §4's deadline divergence) can never justify
        // that commit: it stays behind, by the voting rules, not by a fault of the protocol.
        let diverged = |index: usize, epoch: u64| {
            self.proposals
                .values()
                .any(|p| p.early_no.contains(&index) && p.applied_epoch.is_some_and(|e| e >= epoch))
        };
        let mut left_diverged = 0;
        for (index, c) in self.honest_members() {
            let epoch = c.epoch().map(|e| e.0);
            if epoch != latest && epoch.is_some_and(|e| diverged(index, e)) {
                left_diverged += 1;
                continue;
            }
            if epoch != latest {
                found.push(Violation {
                    invariant: Invariant::Liveness,
                    time_ms: end / MS,
                    node: Some(index),
                    detail: format!(
                        "member at epoch {:?} did not catch up with the group's {:?}",
                        c.epoch().map(|e| e.0),
                        latest
                    ),
                });
            }
        }
        self.liveness_diverged += left_diverged;
        // BRIEF §6.6 owes liveness "after faults heal, ≥ 2n/3 honest and connected": a group
        // whose roster ends a third or more Byzantine (churn took honest members out, down
        // to two-member groups with one Byzantine member) is outside that premise. So is
        // one whose honest members include joiners that never got in — in the roster, never
        // welcomed: a Byzantine committer withheld the Welcome only it could send (counted
        // only with Byzantine members; without, a lost Welcome is ours to recover).
        let roster = self
            .honest_members()
            .filter(|(_, c)| c.epoch().map(|e| e.0) == latest)
            .map(|(_, c)| c.roster())
            .next()
            .unwrap_or_default();
        let byzantine = roster
            .iter()
            .filter(|m| self.byz_ids.contains_key(*m))
            .count();
        let joined = |m: &MemberId| {
            self.nodes
                .iter()
                .any(|n| n.id == *m && n.phase() == Some(Phase::Member))
        };
        let never_welcomed = if self.byz.is_empty() {
            0
        } else {
            roster
                .iter()
                .filter(|m| !self.byz_ids.contains_key(*m) && !joined(m))
                .count()
        };
        // "A third or more": the acknowledgement quorum's intersection needs f < n/3 (forks
        // are counted alike); `3 · honest < 2n` alone let n = 3f through (three members, one
        // Byzantine and silent, two honest ones split over their candidates for good:
        // `demls-sim --generated 23457282764417 --mode liveness --byzantine-mix any`).
        let honest_welcomed = roster.len() - byzantine - never_welcomed;
        // And a run that forked where a third or more of the acknowledging roster was
        // Byzantine (counted apart, see `invariants`): the honest members on the branches
        // never share an epoch again, whatever the final roster (`demls-sim --generated
        // 50761000150936 --mode liveness --byzantine-mix any`: a group down to three
        // members, one of them an equivocating steward, forked; the group grew back to five).
        let forked = self.checker.forks_beyond_fault_model() > 0;
        if forked || 3 * byzantine >= roster.len() || 3 * honest_welcomed < 2 * roster.len() {
            self.liveness_beyond_fault_model += found.len() as u64;
            return;
        }
        for v in found {
            self.checker.report(v);
        }
    }
}
