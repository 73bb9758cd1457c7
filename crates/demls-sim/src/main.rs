//! `demls-sim`: the de-MLS simulator's command line. See `demls-sim --help` and the README.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use demls_sim::scenario::{ByzantineFault, ByzantineKind, ByzantineMix, Jitter, Mode};
use demls_sim::trace::{replay, Trace};
use demls_sim::{Options, Progress, ReplayOutcome, Scenario, Sim, Summary};
use rayon::prelude::*;

/// The deterministic de-MLS simulator: real groups, real cryptography, virtual time,
/// network and member faults, invariants checked after every step.
///
/// With no arguments it runs the default scenario (8 members, two minutes of churn and chat,
/// a partition that heals, a crash and restart, clock skew) in a few seconds.
#[derive(Parser, Debug)]
#[command(name = "demls-sim", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one scenario (the default command).
    Run(Box<RunArgs>),
    /// Draw and run many small scenarios; report failures with their reproduction commands.
    Swarm(SwarmArgs),
    /// Time approval→commit under each Byzantine fault, by the layer of steward protection
    /// that resolved it, over many seeds; prints the table of docs/performance.md.
    Measure(MeasureArgs),
    /// Re-execute a recorded trace and report "identical" or the first divergence.
    Replay {
        /// The trace file.
        file: PathBuf,
    },
    /// Write the single-member trace of one member.
    Extract {
        /// The trace file.
        file: PathBuf,
        /// The member (node index).
        #[arg(long)]
        member: u32,
        /// Where to write it (default: FILE.member-K).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Safety,
    Liveness,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum JitterArg {
    Uniform,
    Exponential,
}

#[derive(Args, Debug, Default, Clone)]
struct RunArgs {
    /// Read the scenario from a JSON file (flags below override its fields).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Run the swarm scenario drawn from this case seed (as `swarm` reports).
    #[arg(long, conflicts_with = "scenario")]
    generated: Option<u64>,
    /// Run the scenario of `demls-sim measure` for this fault (a kind, or `none`); use
    /// `--seed` for the seed.
    #[arg(long, conflicts_with_all = ["scenario", "generated"])]
    byzantine_bench: Option<String>,
    /// With `--generated`: the swarm's `--byzantine` choice (drawn, none, any or a kind).
    #[arg(long, requires = "generated", default_value = "drawn")]
    byzantine_mix: String,
    /// The run seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Initial group size.
    #[arg(long)]
    members: Option<usize>,
    /// Workload duration, seconds of virtual time.
    #[arg(long)]
    duration: Option<u64>,
    /// Stop the workload after this many epochs of churn past the initial group.
    #[arg(long)]
    epochs: Option<u64>,
    /// Safety (faults throughout) or liveness (heal, then demand progress).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Liveness mode: heal time, seconds (default: end of the workload).
    #[arg(long)]
    heal_at: Option<u64>,
    /// Mean time between churn events, ms (0: no churn).
    #[arg(long)]
    churn_interval: Option<u64>,
    /// Application messages per minute.
    #[arg(long)]
    messages_per_minute: Option<u64>,
    /// Base one-way latency, ms.
    #[arg(long)]
    latency: Option<u64>,
    /// Jitter scale, ms.
    #[arg(long)]
    jitter: Option<u64>,
    /// Jitter distribution.
    #[arg(long, value_enum)]
    jitter_dist: Option<JitterArg>,
    /// Loss probability per delivery.
    #[arg(long)]
    loss: Option<f64>,
    /// Duplication probability per delivery.
    #[arg(long)]
    duplicate: Option<f64>,
    /// Reordering probability per delivery.
    #[arg(long)]
    reorder: Option<f64>,
    /// Number of random partitions.
    #[arg(long)]
    partitions: Option<u32>,
    /// Number of random crashes.
    #[arg(long)]
    crashes: Option<u32>,
    /// Number of random silences.
    #[arg(long)]
    silences: Option<u32>,
    /// Maximum clock skew per node, ms.
    #[arg(long)]
    skew: Option<u64>,
    /// Lost, partitioned and crashed-node deliveries are gone for good (safety mode only).
    #[arg(long)]
    no_repair: bool,
    /// A Byzantine member: `KIND[:NODE[:FROM_MS]]`, KIND one of silent_steward,
    /// censoring_steward, equivocating_steward, nonfinalized_commit, proposal_spammer,
    /// vote_equivocator (NODE default: 1, 2, ... in order; FROM_MS default 0, i.e. once the
    /// initial group is complete). Repeatable; replaces the scenario's list.
    #[arg(long, value_name = "KIND[:NODE[:FROM_MS]]")]
    byzantine: Vec<String>,
    /// Byzantine split sends reach the other half of the group this many ms later through
    /// honest relays (gossip).
    #[arg(long)]
    relay_split: Option<u64>,
    /// The single-steward protocol (the creator is the only steward; demls-core's default).
    #[arg(long, conflicts_with = "multi_steward")]
    single_steward: bool,
    /// Multi-steward governance (experimental in demls-core): elections, rotation,
    /// re-election, recovery. Implied by `--byzantine`.
    #[arg(long)]
    multi_steward: bool,
    /// Smallest steward list.
    #[arg(long)]
    sn_min: Option<u32>,
    /// Largest steward list.
    #[arg(long)]
    sn_max: Option<u32>,
    /// Worker threads (0: all cores, 1: sequential). The result does not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print the summary as JSON (deterministic: no timings).
    #[arg(long)]
    json: bool,
    /// Record a trace to this file.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Print the scenario as JSON and exit.
    #[arg(long)]
    print_scenario: bool,
    /// Run twice and require identical results (determinism check).
    #[arg(long)]
    twice: bool,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
    /// Print one status row per member input to stderr.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Args, Debug)]
struct SwarmArgs {
    /// Number of runs.
    #[arg(long, default_value_t = 100)]
    runs: u64,
    /// Seed from which the case seeds are drawn.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Parallel runs (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Force every drawn scenario into this mode (default: drawn per run).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Byzantine members: `drawn` (default: 40% of the cases of at least 4 members get
    /// some, of mixed kinds), `none`, `any` (every case gets 1..=(n-1)/3 of drawn kinds,
    /// groups of at least 4), or a kind name (every case gets 1..=(n-1)/3 of that kind).
    #[arg(long, default_value = "drawn")]
    byzantine: String,
    /// Print the case seeds and exit (to run them one by one with `--generated`).
    #[arg(long)]
    list: bool,
}

#[derive(Args, Debug)]
struct MeasureArgs {
    /// Seeds per fault (seeds SEED..SEED+RUNS).
    #[arg(long, default_value_t = 20)]
    runs: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Faults to measure (default: none, then every kind).
    #[arg(long)]
    kind: Vec<String>,
    /// Parallel runs (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(cli.run),
        Some(Cmd::Run(args)) => run(*args),
        Some(Cmd::Swarm(args)) => swarm(args),
        Some(Cmd::Measure(args)) => measure(args),
        Some(Cmd::Replay { file }) => replay_file(&file),
        Some(Cmd::Extract { file, member, out }) => extract(&file, member, out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

fn build_scenario(a: &RunArgs) -> Fallible<Scenario> {
    let mut s = match (&a.scenario, a.generated) {
        (Some(path), _) => {
            let json = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            Scenario::from_json(&json)?
        }
        (None, Some(case)) => Scenario::generate_mixed(case, parse_mix(&a.byzantine_mix)?),
        (None, None) => match a.byzantine_bench.as_deref() {
            None => Scenario::default(),
            Some("none") => Scenario::byzantine_bench(None, a.seed.unwrap_or(1)),
            Some(k) => Scenario::byzantine_bench(
                Some(
                    ByzantineKind::from_name(k)
                        .ok_or_else(|| format!("unknown Byzantine kind '{k}'"))?,
                ),
                a.seed.unwrap_or(1),
            ),
        },
    };
    if let Some(v) = a.seed {
        s.seed = v;
    }
    if let Some(v) = a.members {
        s.members = v;
        s.workload.max_members = s.workload.max_members.max(v + v / 4 + 1);
        s.workload.min_members = s.workload.min_members.min(v);
    }
    if let Some(v) = a.duration {
        s.duration_ms = v * 1000;
    }
    if let Some(v) = a.epochs {
        s.epochs = Some(v);
    }
    if let Some(m) = a.mode {
        s.mode = match m {
            ModeArg::Safety => Mode::Safety,
            ModeArg::Liveness => {
                s.network.repair = true;
                Mode::Liveness
            }
        };
    }
    if let Some(v) = a.heal_at {
        s.heal_at_ms = Some(v * 1000);
    }
    if let Some(v) = a.churn_interval {
        s.workload.churn_interval_ms = v;
    }
    if let Some(v) = a.messages_per_minute {
        s.workload.messages_per_minute = v;
    }
    let l = &mut s.network.link;
    if let Some(v) = a.latency {
        l.latency_ms = v;
    }
    if let Some(v) = a.jitter {
        l.jitter_ms = v;
    }
    if let Some(j) = a.jitter_dist {
        l.jitter = match j {
            JitterArg::Uniform => Jitter::Uniform,
            JitterArg::Exponential => Jitter::Exponential,
        };
    }
    if let Some(v) = a.loss {
        l.loss = v;
    }
    if let Some(v) = a.duplicate {
        l.duplicate = v;
    }
    if let Some(v) = a.reorder {
        l.reorder = v;
    }
    if let Some(v) = a.partitions {
        s.network.random_partitions = v;
    }
    if let Some(v) = a.crashes {
        s.faults.random_crashes = v;
    }
    if let Some(v) = a.silences {
        s.faults.random_silences = v;
    }
    if let Some(v) = a.skew {
        s.faults.max_clock_skew_ms = v;
    }
    if a.no_repair {
        s.network.repair = false;
    }
    if a.single_steward {
        s.config.single_steward = true;
    }
    if a.multi_steward || !a.byzantine.is_empty() {
        s.config.single_steward = false;
    }
    if let Some(v) = a.relay_split {
        s.network.relay_split_ms = Some(v);
    }
    if let Some(v) = a.sn_min {
        s.config.sn_min = v;
    }
    if let Some(v) = a.sn_max {
        s.config.sn_max = v;
    }
    if !a.byzantine.is_empty() {
        s.byzantine = a
            .byzantine
            .iter()
            .enumerate()
            .map(|(i, spec)| parse_byzantine(spec, i + 1))
            .collect::<Result<_, _>>()?;
    }
    s.validate()?;
    Ok(s)
}

fn parse_mix(text: &str) -> Fallible<ByzantineMix> {
    ByzantineMix::parse(text).ok_or_else(|| {
        format!(
            "unknown Byzantine choice '{text}' (drawn, none, any, or one of: {})",
            ByzantineKind::ALL.map(|k| k.name()).join(", ")
        )
        .into()
    })
}

/// `KIND[:NODE[:FROM_MS]]`.
fn parse_byzantine(spec: &str, default_node: usize) -> Fallible<ByzantineFault> {
    let mut parts = spec.split(':');
    let kind = parts.next().unwrap_or_default();
    let kind = ByzantineKind::from_name(kind).ok_or_else(|| {
        format!(
            "unknown Byzantine kind '{kind}' (one of: {})",
            ByzantineKind::ALL.map(|k| k.name()).join(", ")
        )
    })?;
    let num = |p: Option<&str>, what: &str| -> Fallible<Option<u64>> {
        p.map(|v| {
            v.parse::<u64>()
                .map_err(|_| format!("--byzantine {spec}: bad {what} '{v}'").into())
        })
        .transpose()
    };
    let node = num(parts.next(), "node")?.map_or(default_node, |n| n as usize);
    let from_ms = num(parts.next(), "start time")?.unwrap_or(0);
    if parts.next().is_some() {
        return Err(format!("--byzantine {spec}: expected KIND[:NODE[:FROM_MS]]").into());
    }
    Ok(ByzantineFault {
        kind,
        node,
        from_ms,
        target: None,
    })
}

/// The command line that reproduces this run, quoted for a POSIX shell.
fn repro_command() -> String {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Recording is not part of the run; drop `--record FILE` from the reproduction.
    if let Some(i) = args.iter().position(|a| a == "--record") {
        args.drain(i..(i + 2).min(args.len()));
    }
    args.retain(|a| !a.starts_with("--record="));
    let quoted: Vec<String> = args
        .iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect();
    format!("demls-sim {}", quoted.join(" "))
        .trim_end()
        .to_owned()
}

/// Process CPU time (user + system).
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

struct ProgressLine {
    enabled: bool,
    last: Option<Instant>,
    width: usize,
}

impl ProgressLine {
    fn new(enabled: bool) -> Self {
        Self {
            enabled: enabled && std::io::stderr().is_terminal(),
            last: None,
            width: 0,
        }
    }

    #[allow(clippy::disallowed_methods)] // the binary's progress display reads the wall clock
    fn update(&mut self, p: &Progress) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now - l < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let line = format!(
            "[{:>8.1} s] epoch {:>4} · members {:>4} · proposals {:>5} · messages {:>7} · steps {:>9} · violations {}",
            p.virtual_ms as f64 / 1000.0,
            p.epoch,
            p.members,
            p.proposals,
            p.messages,
            p.steps,
            p.violations
        );
        self.width = self.width.max(line.len());
        eprint!("\r{line:<w$}", w = self.width);
        let _ = std::io::stderr().flush();
    }

    fn clear(&mut self) {
        if self.enabled && self.width > 0 {
            eprint!("\r{:w$}\r", "", w = self.width);
        }
    }
}

fn run_once(s: &Scenario, a: &RunArgs, record: Option<&PathBuf>) -> Fallible<Summary> {
    let mut sim = Sim::new(
        s.clone(),
        Options {
            threads: a.threads,
            verbose: a.verbose,
        },
    )?;
    if let Some(path) = record {
        let f =
            std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        sim.record(Box::new(std::io::BufWriter::new(f)))?;
    }
    let mut line = ProgressLine::new(!a.quiet && !a.json && !a.verbose);
    let summary = sim.run(|p| line.update(p));
    line.clear();
    if let Some(e) = sim.trace_error() {
        return Err(format!("writing the trace: {e}").into());
    }
    Ok(summary)
}

#[allow(clippy::disallowed_methods)] // wall-clock time for the human summary only
fn run(a: RunArgs) -> Fallible<ExitCode> {
    let s = build_scenario(&a)?;
    if a.print_scenario {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (wall, cpu) = (Instant::now(), cpu_time());
    let summary = run_once(&s, &a, a.record.as_ref())?;
    let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
    let mut failed = !summary.violations.is_empty();
    let mut determinism = None;
    if a.twice {
        let again = run_once(&s, &a, None)?;
        let same = again == summary;
        determinism = Some(same);
        failed |= !same;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&s, &summary, wall, cpu);
        if let Some(same) = determinism {
            println!(
                "  determinism       {}",
                if same {
                    "second run identical"
                } else {
                    "SECOND RUN DIFFERS"
                }
            );
        }
        if let Some(path) = &a.record {
            println!("  trace             {}", path.display());
        }
    }
    if failed {
        eprintln!(
            "\nFAILED: {} violation(s){}. Seed {}. Reproduce with:\n  {}",
            summary.violations.len(),
            if determinism == Some(false) {
                " and a non-deterministic re-run"
            } else {
                ""
            },
            s.seed,
            repro_command()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_summary(s: &Scenario, m: &Summary, wall: Duration, cpu: Duration) {
    let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    println!(
        "demls-sim · seed {} · {} mode · {} members · link {}+{} ms, loss {}, dup {}, reorder {} · {} partitions · {} crashes",
        s.seed,
        m.mode,
        s.members,
        s.network.link.latency_ms,
        s.network.link.jitter_ms,
        s.network.link.loss,
        s.network.link.duplicate,
        s.network.link.reorder,
        s.network.partitions.len() + s.network.random_partitions as usize,
        s.faults.crashes.len() + s.faults.random_crashes as usize,
    );
    println!("  virtual time      {}", secs(m.virtual_ms));
    println!(
        "  group             {} members at the end · {} nodes took part · initial group at epoch {} ({})",
        m.members,
        m.nodes,
        m.bootstrap_epoch.map_or("-".into(), |e| e.to_string()),
        m.bootstrap_ms.map_or("never complete".into(), secs),
    );
    println!("  epochs            {}", m.epochs);
    println!(
        "  proposals         {} opened · {} approved · {} rejected · {} committed · {} uncommitted",
        m.proposals, m.approved, m.rejected, m.committed, m.uncommitted
    );
    // Outcomes outside the fault model or the voting rules' reach: counted, not violations.
    let counted = [
        (
            "divergences",
            m.equivocation_divergences,
            "early decisions differed on proposals a Byzantine voter equivocated on",
        ),
        (
            "beyond model",
            m.forks_beyond_fault_model,
            "forks where a third or more of the acknowledging roster was Byzantine",
        ),
        (
            "beyond model",
            m.validity_beyond_fault_model,
            "additions or removals unapproved by honest members, committed where a third or more of the acknowledging roster was Byzantine",
        ),
        (
            "beyond model",
            m.liveness_beyond_fault_model,
            "liveness failures in a group that ended a third or more Byzantine, or with fewer than 2n/3 honest, welcomed members, or forked beyond the model",
        ),
        (
            "beyond model",
            m.liveness_diverged,
            "members left behind by a commit of a proposal they had finalized NO early",
        ),
        (
            "beyond model",
            m.liveness_approvers_gone,
            "approved proposals whose approvers all left the group before anyone else held them",
        ),
        (
            "divergences",
            m.deadline_divergences,
            "deadline decisions differed (votes delayed past the deadline)",
        ),
    ];
    for (label, count, what) in counted {
        if count > 0 {
            println!("  {label:<18}{count} {what}");
        }
    }
    println!(
        "  proposal→commit   p50 {} · p99 {}",
        secs(m.commit_p50_ms),
        secs(m.commit_p99_ms)
    );
    println!(
        "  governance        {} proposals (elections, deadlock) · {} re-elections · {} recoveries",
        m.governance_proposals, m.reelections, m.recoveries
    );
    if !m.resolution.is_empty() {
        let r: Vec<String> = m
            .resolution
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} {} (p50 {} · p99 {})",
                    v.count,
                    secs(v.p50_ms),
                    secs(v.p99_ms)
                )
            })
            .collect();
        println!("  approval→commit   {}", r.join(" · "));
    }
    let kinds = |map: &std::collections::BTreeMap<String, u64>| {
        map.iter()
            .map(|(k, v)| format!("{v} × {k}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    if !m.honest_accused.is_empty() || m.vote_equivocations > 0 {
        println!(
            "  honest accused    {}{}",
            kinds(&m.honest_accused),
            if m.vote_equivocations > 0 {
                format!(" · {} vote equivocations detected", m.vote_equivocations)
            } else {
                String::new()
            }
        );
    }
    for b in &m.byzantine {
        println!(
            "  byzantine         node {} {} · active {} · removed {} · score {} · {} attempts ({} refused) · reported: {}",
            b.node,
            b.kind,
            b.active_ms.map_or("never".into(), secs),
            b.removed_ms.map_or("no".into(), secs),
            b.final_score.map_or("-".into(), |s| s.to_string()),
            b.attempts,
            b.refused,
            if b.reported.is_empty() { "nothing".into() } else { kinds(&b.reported) }
        );
    }
    println!(
        "  messages          {} sent · {} delivered",
        thousands(m.messages_sent),
        thousands(m.messages_delivered)
    );
    println!(
        "  network           {} packets · {:.2} MB sent · {} deliveries · {} lost · {} deferred · {} dropped · {} duplicated",
        thousands(m.packets),
        m.bytes_sent as f64 / 1e6,
        thousands(m.deliveries),
        thousands(m.lost),
        thousands(m.deferred),
        thousands(m.dropped),
        thousands(m.duplicated)
    );
    println!(
        "  churn & faults    {} joins · {} expired · {} leaves · {} removals · {} crashes · {} restarts",
        m.joins_started, m.joins_expired, m.leaves, m.removals, m.crashes, m.restarts
    );
    if !m.refusals.is_empty() {
        let r: Vec<String> = m
            .refusals
            .iter()
            .map(|(k, v)| format!("{} × {k}", thousands(*v)))
            .collect();
        println!("  refused inputs    {}", r.join(" · "));
    }
    if let (Some(h), Some(b)) = (m.heal_ms, m.liveness_bound_ms) {
        println!(
            "  liveness          healed at {} · commit bound {} + one round per queued proposal",
            secs(h),
            secs(b)
        );
    }
    println!(
        "  steps             {} inputs · CPU {:.2} s · wall {:.2} s",
        thousands(m.steps),
        cpu.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!("  run hash          {}", m.run_hash);
    if m.violations.is_empty() {
        println!("  result            OK · 0 violations");
    } else {
        println!("  result            {} VIOLATIONS", m.violations.len());
        for v in m.violations.iter().take(20) {
            println!(
                "    {:?} at {} node {}: {}",
                v.invariant,
                secs(v.time_ms),
                v.node.map_or("-".into(), |n| n.to_string()),
                v.detail
            );
        }
    }
}

#[derive(serde::Serialize)]
struct SwarmFailure {
    case: u64,
    byzantine: usize,
    command: String,
    violations: Vec<demls_sim::Violation>,
}

#[allow(clippy::disallowed_methods)] // wall-clock rate for the report
fn swarm(a: SwarmArgs) -> Fallible<ExitCode> {
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()?;
    let done = std::sync::atomic::AtomicU64::new(0);
    let failures_so_far = std::sync::atomic::AtomicU64::new(0);
    let tty = std::io::stderr().is_terminal() && !a.json;
    let mix = parse_mix(&a.byzantine)?;
    let mut rng = demls_sim::rng::SimRng::fork(a.seed, "swarm");
    let cases: Vec<u64> = (0..a.runs).map(|_| rng.next_u64() >> 16).collect();
    if a.list {
        for case in &cases {
            println!("{case}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let results: Vec<(u64, usize, Summary, Duration)> = pool.install(|| {
        cases
            .par_iter()
            .map(|&case| {
                let s = generated(case, a.mode, mix);
                let byzantine = s.byzantine.len();
                let mut sim = Sim::new(
                    s,
                    Options {
                        threads: 1,
                        verbose: false,
                    },
                )
                .expect("generated scenarios are valid");
                let run_started = Instant::now();
                let summary = sim.run(|_| {});
                let wall = run_started.elapsed();
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if !summary.violations.is_empty() {
                    failures_so_far.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if tty {
                    eprint!(
                        "\rswarm: {n}/{} runs · {} failing",
                        a.runs,
                        failures_so_far.load(std::sync::atomic::Ordering::Relaxed)
                    );
                }
                (case, byzantine, summary, wall)
            })
            .collect()
    });
    let mut slowest: Vec<(Duration, u64, u64)> = results
        .iter()
        .map(|(case, _, s, wall)| (*wall, *case, s.steps))
        .collect();
    slowest.sort_by(|a, b| b.cmp(a));
    slowest.truncate(3);
    let results: Vec<(u64, usize, Summary)> = results
        .into_iter()
        .map(|(case, byzantine, s, _)| (case, byzantine, s))
        .collect();
    if tty {
        eprintln!();
    }
    let elapsed = started.elapsed();
    let failures: Vec<SwarmFailure> = results
        .iter()
        .filter(|(_, _, s)| !s.violations.is_empty())
        .map(|(case, byzantine, s)| SwarmFailure {
            case: *case,
            byzantine: *byzantine,
            command: format!(
                "demls-sim --generated {case}{}{}",
                match a.mode {
                    None => "",
                    Some(ModeArg::Safety) => " --mode safety",
                    Some(ModeArg::Liveness) => " --mode liveness",
                },
                match mix {
                    ByzantineMix::Drawn => String::new(),
                    m => format!(" --byzantine-mix {}", m.name()),
                }
            ),
            violations: s.violations.clone(),
        })
        .collect();
    let epochs: u64 = results.iter().map(|(_, _, s)| s.epochs).sum();
    let committed: u64 = results.iter().map(|(_, _, s)| s.committed).sum();
    let with_byzantine = results.iter().filter(|(_, b, _)| *b > 0).count();
    let mut by_invariant: std::collections::BTreeMap<String, u64> = Default::default();
    for f in &failures {
        let kinds: std::collections::BTreeSet<String> = f
            .violations
            .iter()
            .map(|v| format!("{:?}", v.invariant))
            .collect();
        for k in kinds {
            *by_invariant.entry(k).or_default() += 1;
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "runs": a.runs,
                "seed": a.seed,
                "byzantine": mix.name(),
                "runs_with_byzantine": with_byzantine,
                "failing_by_invariant": by_invariant,
                "epochs": epochs,
                "committed": committed,
                "failures": failures,
            }))?
        );
    } else {
        println!(
            "swarm · seed {} · {} runs ({} with Byzantine members) in {:.1} s ({:.0} runs/min) · {} epochs · {} commits · {} failing{}",
            a.seed,
            a.runs,
            with_byzantine,
            elapsed.as_secs_f64(),
            a.runs as f64 * 60.0 / elapsed.as_secs_f64().max(1e-9),
            epochs,
            committed,
            failures.len(),
            if by_invariant.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    by_invariant
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        println!(
            "  slowest: {}",
            slowest
                .iter()
                .map(|(wall, case, steps)| format!(
                    "case {case} {:.1} s ({steps} inputs)",
                    wall.as_secs_f64()
                ))
                .collect::<Vec<_>>()
                .join(" · ")
        );
        for f in &failures {
            println!(
                "  FAILED case {} ({} Byzantine): reproduce with `{}`",
                f.case, f.byzantine, f.command
            );
            for v in f.violations.iter().take(3) {
                println!("    {:?} at {} ms: {}", v.invariant, v.time_ms, v.detail);
            }
        }
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(serde::Serialize)]
struct MeasureRow {
    fault: String,
    runs: u64,
    failing_runs: u64,
    failing_by_invariant: std::collections::BTreeMap<String, u64>,
    failing_seeds: Vec<u64>,
    layers: std::collections::BTreeMap<String, demls_sim::stats::LayerStat>,
    reported: std::collections::BTreeMap<String, u64>,
    removed_runs: u64,
    attempts: u64,
    refused: u64,
}

#[allow(clippy::disallowed_methods)] // wall-clock time for the report
fn measure(a: MeasureArgs) -> Fallible<ExitCode> {
    use demls_sim::stats::{Layer, LayerStat};
    let started = Instant::now();
    let kinds: Vec<Option<ByzantineKind>> = if a.kind.is_empty() {
        std::iter::once(None)
            .chain(ByzantineKind::ALL.into_iter().map(Some))
            .collect()
    } else {
        a.kind
            .iter()
            .map(|k| match k.as_str() {
                "none" => Ok(None),
                k => ByzantineKind::from_name(k)
                    .map(Some)
                    .ok_or_else(|| format!("unknown fault '{k}'")),
            })
            .collect::<Result<_, _>>()?
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()?;
    let jobs: Vec<(Option<ByzantineKind>, u64)> = kinds
        .iter()
        .flat_map(|k| (a.seed..a.seed + a.runs).map(move |seed| (*k, seed)))
        .collect();
    let results: Vec<(Option<ByzantineKind>, u64, Summary)> = pool.install(|| {
        jobs.par_iter()
            .map(|&(kind, seed)| {
                let s = Scenario::byzantine_bench(kind, seed);
                let mut sim = Sim::new(
                    s,
                    Options {
                        threads: 1,
                        verbose: false,
                    },
                )
                .expect("the measurement scenario is valid");
                (kind, seed, sim.run(|_| {}))
            })
            .collect()
    });
    let mut rows = Vec::new();
    for kind in &kinds {
        let runs: Vec<&(Option<ByzantineKind>, u64, Summary)> =
            results.iter().filter(|(k, _, _)| k == kind).collect();
        let mut row = MeasureRow {
            fault: kind.map_or("none".to_owned(), |k| k.name().to_owned()),
            runs: runs.len() as u64,
            failing_runs: 0,
            failing_by_invariant: Default::default(),
            failing_seeds: Vec::new(),
            layers: Default::default(),
            reported: Default::default(),
            removed_runs: 0,
            attempts: 0,
            refused: 0,
        };
        let mut samples: std::collections::BTreeMap<Layer, Vec<u64>> = Default::default();
        for (_, seed, m) in &runs {
            if !m.violations.is_empty() {
                row.failing_runs += 1;
                row.failing_seeds.push(*seed);
                let kinds: std::collections::BTreeSet<String> = m
                    .violations
                    .iter()
                    .map(|v| format!("{:?}", v.invariant))
                    .collect();
                for k in kinds {
                    *row.failing_by_invariant.entry(k).or_default() += 1;
                }
            }
            for (layer, ms) in &m.resolution_samples {
                samples.entry(*layer).or_default().push(*ms);
            }
            for b in &m.byzantine {
                for (k, v) in &b.reported {
                    *row.reported.entry(k.clone()).or_default() += v;
                }
                row.removed_runs += u64::from(b.removed_ms.is_some());
                row.attempts += b.attempts;
                row.refused += b.refused;
            }
        }
        for (layer, v) in samples {
            row.layers
                .insert(layer.name().to_owned(), LayerStat::of(&v));
        }
        rows.push(row);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let secs = |ms: u64| format!("{:.1}", ms as f64 / 1000.0);
    println!(
        "Byzantine measurement · seeds {}..={} · {} runs in {:.1} s · approval→commit in s (count · p50 · p99)\n",
        a.seed,
        a.seed + a.runs - 1,
        results.len(),
        started.elapsed().as_secs_f64()
    );
    print!("| fault | runs | failing runs |");
    for l in Layer::ALL {
        print!(" {} |", l.name());
    }
    println!(" reported against it | removed |");
    print!("|---|---:|---|");
    for _ in Layer::ALL {
        print!("---|");
    }
    println!("---|---:|");
    for r in &rows {
        let failing = if r.failing_runs == 0 {
            "0".to_owned()
        } else {
            format!(
                "{} ({})",
                r.failing_runs,
                r.failing_by_invariant
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        print!("| {} | {} | {failing} |", r.fault, r.runs);
        for l in Layer::ALL {
            match r.layers.get(l.name()) {
                Some(s) => print!(" {} · {} · {} |", s.count, secs(s.p50_ms), secs(s.p99_ms)),
                None => print!(" — |"),
            }
        }
        let reported = if r.reported.is_empty() {
            "—".to_owned()
        } else {
            r.reported
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let removed = if r.fault == "none" {
            "—".to_owned()
        } else {
            format!("{}/{}", r.removed_runs, r.runs)
        };
        println!(" {reported} | {removed} |");
    }
    for r in rows.iter().filter(|r| r.failing_runs > 0) {
        println!(
            "\nfailing {}: seeds {:?} (reproduce: demls-sim --byzantine-bench {} --seed SEED)",
            r.fault, r.failing_seeds, r.fault
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The swarm scenario of `case`, in `mode` when given (liveness needs repair).
fn generated(case: u64, mode: Option<ModeArg>, mix: ByzantineMix) -> Scenario {
    let mut s = Scenario::generate_mixed(case, mix);
    match mode {
        None => {}
        Some(ModeArg::Safety) => s.mode = Mode::Safety,
        Some(ModeArg::Liveness) => {
            s.mode = Mode::Liveness;
            s.network.repair = true;
        }
    }
    s
}

fn read_trace(path: &PathBuf) -> Fallible<Trace> {
    let f = std::fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    Ok(Trace::read(std::io::BufReader::new(f))?)
}

#[allow(clippy::disallowed_methods)] // the replay's base instant; only offsets matter
fn replay_file(path: &PathBuf) -> Fallible<ExitCode> {
    let trace = read_trace(path)?;
    let tb = demls_sim::node::TimeBase {
        base: Instant::now(),
        start_unix_ms: trace.header.start_unix_ms,
    };
    let tty = std::io::stderr().is_terminal();
    let outcome = replay(&trace, &tb, |done, total| {
        if tty {
            eprint!("\rreplaying: {done}/{total} records");
        }
    })?;
    if tty {
        eprintln!();
    }
    let what = match trace.header.member {
        Some(m) => format!("single-member trace of member {m}"),
        None => "trace".to_owned(),
    };
    match outcome {
        ReplayOutcome::Identical { records } => {
            println!(
                "identical: {records} records of the {what} (seed {}, written by demls-sim {}) reproduced",
                trace.header.seed, trace.header.crate_version
            );
            Ok(ExitCode::SUCCESS)
        }
        ReplayOutcome::Diverged(d) => {
            println!("{d}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn extract(path: &PathBuf, member: u32, out: Option<PathBuf>) -> Fallible<ExitCode> {
    let trace = read_trace(path)?;
    let single = trace.extract(member)?;
    let out = out.unwrap_or_else(|| {
        let mut p = path.clone().into_os_string();
        p.push(format!(".member-{member}"));
        p.into()
    });
    std::fs::write(&out, single.encode()).map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!(
        "wrote {} ({} records of member {member})",
        out.display(),
        single.records.len()
    );
    Ok(ExitCode::SUCCESS)
}
