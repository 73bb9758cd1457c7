//! What a run does: the group, the workload, the network model, member faults, the mode and
//! the conversation configuration. A run is fully determined by a [`Scenario`] (which
//! includes its seed) and the demls revision.
//!
//! Scenarios are plain data: built from command-line flags, read from a JSON file, or drawn
//! from a case seed by [`Scenario::generate`] for swarm testing. All times are virtual
//! milliseconds from the start of the run.

use std::time::Duration;

use demls_consensus::{Choice, TiePolicy};
use demls_core::{AutoVote, ConversationConfig, GovernanceConfig};
use serde::{Deserialize, Serialize};

use crate::rng::SimRng;

/// A complete description of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// The run seed: every random choice of the run derives from it.
    pub seed: u64,
    /// Size of the group built at the start (the creator included).
    pub members: usize,
    /// How long the workload runs (joins, leaves, removals, messages), in ms.
    pub duration_ms: u64,
    /// Stop the workload early once this many epochs of churn were committed after the
    /// initial group was built (`None`: run for `duration_ms`).
    pub epochs: Option<u64>,
    /// Membership churn and message traffic.
    pub workload: Workload,
    /// The network model.
    pub network: Network,
    /// Member faults.
    pub faults: Faults,
    /// Byzantine members (fewer than a third of `members`): stewards that stay silent,
    /// censor, equivocate or commit undecided proposals, proposal spammers and vote
    /// equivocators. They are excluded from the honest-member invariants.
    pub byzantine: Vec<ByzantineFault>,
    /// Safety or liveness checking.
    pub mode: Mode,
    /// In liveness mode: when the network heals (default: when the workload ends).
    pub heal_at_ms: Option<u64>,
    /// The conversation configuration every member uses.
    pub config: Config,
}

/// Membership churn and message traffic once the initial group is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    /// Mean time between churn events, in ms (exponentially distributed); 0 disables churn.
    pub churn_interval_ms: u64,
    /// Relative weight of a new node joining among churn events.
    pub join_weight: u32,
    /// Relative weight of a member leaving.
    pub leave_weight: u32,
    /// Relative weight of a member proposing another member's removal.
    pub remove_weight: u32,
    /// Application messages per minute across the group.
    pub messages_per_minute: u64,
    /// Probability that a member votes NO explicitly on a proposal it sees opened (the
    /// rest vote YES automatically).
    pub no_vote_probability: f64,
    /// Smallest group the workload shrinks to (leaves and removals stop below it).
    pub min_members: usize,
    /// Largest group the workload grows to (joins stop above it).
    pub max_members: usize,
}

/// Distribution of the extra delay (jitter) added to the base latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Uniform in `[0, jitter_ms]`.
    Uniform,
    /// Exponential with mean `jitter_ms`, capped at 10× the mean.
    Exponential,
}

/// The network model. Every packet is published once and delivered to every other node
/// over its own link, each delivery drawn independently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// The default link.
    pub link: Link,
    /// Per-link overrides (the last matching entry wins).
    pub links: Vec<LinkOverride>,
    /// Scheduled partitions.
    pub partitions: Vec<Partition>,
    /// Random partitions: how many are drawn over the workload (each splits the nodes at
    /// random into two sides, symmetric or not, for `random_partition_ms`).
    pub random_partitions: u32,
    /// Length of each random partition, in ms.
    pub random_partition_ms: u64,
    /// Store-and-forward repair (Waku Store / gossipsub IWANT): a delivery that was lost,
    /// blocked by a partition or aimed at a crashed node arrives `repair_ms` after the
    /// obstacle is gone (the loss is drawn, the packet is recovered later). Without repair,
    /// such deliveries are gone for good.
    pub repair: bool,
    /// Delay of a repaired delivery after the obstacle is gone, in ms.
    pub repair_ms: u64,
    /// When a Byzantine member sends different packets to the two halves of the group
    /// (equivocating commits or votes), honest peers relay each half's packets to the other
    /// half this much later, as gossip does (`None`: the split is never healed by relays).
    pub relay_split_ms: Option<u64>,
}

/// The behaviour of one link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Link {
    /// Base one-way latency, in ms (at least 1).
    pub latency_ms: u64,
    /// Jitter scale, in ms.
    pub jitter_ms: u64,
    /// Jitter distribution.
    pub jitter: Jitter,
    /// Probability a delivery is lost.
    pub loss: f64,
    /// Probability a delivery is duplicated (the copy arrives up to `reorder_ms` later).
    pub duplicate: f64,
    /// Probability a delivery is held back by an extra `reorder_ms`, so later packets
    /// overtake it.
    pub reorder: f64,
    /// Extra delay of reordered deliveries and duplicate copies, in ms.
    pub reorder_ms: u64,
}

/// A per-link override; `None` endpoints match any node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    /// Sending node index, or any.
    #[serde(default)]
    pub from: Option<usize>,
    /// Receiving node index, or any.
    #[serde(default)]
    pub to: Option<usize>,
    /// The link's behaviour.
    pub link: Link,
}

/// A partition between `start_ms` and `end_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// When it starts.
    pub start_ms: u64,
    /// When it heals.
    pub end_ms: u64,
    /// One side (node indexes); the other side is every other node.
    pub side: Vec<usize>,
    /// `true`: only traffic from `side` to the rest is blocked (the rest still reaches
    /// `side`); `false`: both directions are blocked.
    #[serde(default)]
    pub one_way: bool,
}

/// Member faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Scheduled crashes.
    pub crashes: Vec<Crash>,
    /// Random crashes drawn over the workload (non-steward members).
    pub random_crashes: u32,
    /// How long a random crash lasts, in ms.
    pub crash_ms: u64,
    /// Scheduled silences.
    pub silences: Vec<Silence>,
    /// Random silences drawn over the workload (non-steward members).
    pub random_silences: u32,
    /// How long a random silence lasts, in ms.
    pub silence_ms: u64,
    /// Each node's clock is off by a constant drawn uniformly in `±max_clock_skew_ms`.
    pub max_clock_skew_ms: u64,
}

/// A node crashes at `at_ms` (its state is snapshotted, its live state dropped; deliveries
/// to it are lost or, with repair, deferred) and restarts from that snapshot `down_ms`
/// later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    /// Node index.
    pub member: usize,
    /// When it crashes.
    pub at_ms: u64,
    /// How long it stays down.
    pub down_ms: u64,
}

/// A node publishes nothing between `from_ms` and `to_ms` (it still receives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Node index.
    pub member: usize,
    /// Start.
    pub from_ms: u64,
    /// End.
    pub to_ms: u64,
}

/// One Byzantine member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByzantineFault {
    /// What it does.
    pub kind: ByzantineKind,
    /// Node index (the initial group is nodes `0..members`, node 0 the creator).
    pub node: usize,
    /// When it starts misbehaving, ms: at this time or when the initial group is complete,
    /// whichever is later (a group whose creator misbehaves before the first election has
    /// no one else who could commit). It misbehaves until the end of the run.
    #[serde(default)]
    pub from_ms: u64,
    /// `censoring_steward` only: the node whose proposals it leaves out. Default: the next
    /// node to join (re-targeted to the next one once that one is in), or, when the
    /// workload has no joins, a member drawn from the seed.
    #[serde(default)]
    pub target: Option<usize>,
}

/// How a Byzantine member misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByzantineKind {
    /// Never builds a commit: its commit slots pass (Layer 1 walks past it).
    SilentSteward,
    /// Leaves every proposal about its target out of its commits.
    CensoringSteward,
    /// When its commit slot comes, sends one commit to half of the group and a different
    /// one to the other half.
    EquivocatingSteward,
    /// When its commit slot comes, commits the honest batch plus a proposal still open (its
    /// own fresh removal proposal, which honest members vote down).
    NonfinalizedCommit,
    /// Proposes removals every ~200 ms while the workload runs; honest members vote them
    /// down, its own core's rate limits refuse the excess.
    ProposalSpammer,
    /// Votes YES to half of the group and NO to the other half on every proposal it sees.
    VoteEquivocator,
}

impl ByzantineKind {
    /// Every kind, in declaration order.
    pub const ALL: [ByzantineKind; 6] = [
        ByzantineKind::SilentSteward,
        ByzantineKind::CensoringSteward,
        ByzantineKind::EquivocatingSteward,
        ByzantineKind::NonfinalizedCommit,
        ByzantineKind::ProposalSpammer,
        ByzantineKind::VoteEquivocator,
    ];

    /// The snake-case name (as in scenario JSON and on the command line).
    pub fn name(self) -> &'static str {
        match self {
            ByzantineKind::SilentSteward => "silent_steward",
            ByzantineKind::CensoringSteward => "censoring_steward",
            ByzantineKind::EquivocatingSteward => "equivocating_steward",
            ByzantineKind::NonfinalizedCommit => "nonfinalized_commit",
            ByzantineKind::ProposalSpammer => "proposal_spammer",
            ByzantineKind::VoteEquivocator => "vote_equivocator",
        }
    }

    /// Parses a name as [`ByzantineKind::name`] prints it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Which Byzantine members swarm cases get (see [`Scenario::generate_mixed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByzantineMix {
    /// As drawn by [`Scenario::generate`].
    Drawn,
    /// None.
    None,
    /// Every case, kinds drawn.
    Any,
    /// Every case, this kind only.
    Only(ByzantineKind),
}

impl ByzantineMix {
    /// Parses `drawn`, `none`, `any` or a kind name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "drawn" => Some(Self::Drawn),
            "none" => Some(Self::None),
            "any" => Some(Self::Any),
            k => ByzantineKind::from_name(k).map(Self::Only),
        }
    }

    /// The name [`ByzantineMix::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Drawn => "drawn",
            Self::None => "none",
            Self::Any => "any",
            Self::Only(k) => k.name(),
        }
    }
}

/// What the run checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Faults throughout; the safety invariants are checked after every step.
    Safety,
    /// Faults until the heal time, then a clean network; additionally every approved
    /// proposal must commit within a bound derived from the configuration, and every
    /// member must catch up.
    Liveness,
}

/// The conversation configuration (a serialisable subset of `ConversationConfig`; the rest
/// keeps its defaults except the key-package lifetime, see [`Config::conversation`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Voting window, ms.
    pub voting_duration_ms: u64,
    /// Freeze window Δ, ms.
    pub freeze_window_ms: u64,
    /// Automatic YES vote delay, ms (`None`: no automatic votes).
    pub auto_vote_ms: Option<u64>,
    /// Liveness flag: silent voters count as YES at the deadline.
    pub silent_counts_as_yes: bool,
    /// Largest packet, bytes.
    pub max_packet_len: usize,
    /// Most approved proposals per commit.
    pub max_commit_batch: usize,
    /// Most open proposals per member.
    pub max_open_proposals_per_member: usize,
    /// Most proposals per member per epoch.
    pub max_proposals_per_member_per_epoch: usize,
    /// Pending-join expiry, ms.
    pub pending_join_expiry_ms: u64,
    /// The single-steward protocol (demls-core's default): the creator stays the only
    /// steward (no elections); the other governance knobs are then unused. `false`:
    /// multi-steward governance (experimental in demls-core), which Byzantine stewards need
    /// to be survivable.
    pub single_steward: bool,
    /// Smallest steward list (once the group has that many members).
    pub sn_min: u32,
    /// Largest steward list.
    pub sn_max: u32,
    /// Re-elections within an epoch before the deadlock emergency proposal (Layer 3).
    pub max_reelection_attempts: u32,
    /// Each steward's commit slot, ms (Layer 1 rotation).
    pub commit_inactivity_ms: u64,
    /// Each member's commit slot in recovery mode, ms (Layer 3).
    pub recovery_inactivity_ms: u64,
    /// How long a member waits for an earlier one to open a due proposal, ms.
    pub voting_inactivity_ms: u64,
    /// How long a member collects commit candidates after the first, ms.
    pub candidate_window_ms: u64,
}

impl Default for Scenario {
    /// The default scenario: 8 members, two minutes of churn and chat over a network with
    /// 30–80 ms latency, 1% loss (repaired), duplication and reordering, one partition
    /// that heals, one crash and restart, ±2 s clock skew; liveness checked after healing.
    fn default() -> Self {
        Self {
            seed: 1,
            members: 8,
            duration_ms: 120_000,
            epochs: None,
            workload: Workload::default(),
            network: Network {
                partitions: vec![Partition {
                    start_ms: 40_000,
                    end_ms: 55_000,
                    side: vec![5, 6],
                    one_way: false,
                }],
                ..Network::default()
            },
            faults: Faults {
                crashes: vec![Crash {
                    member: 3,
                    at_ms: 70_000,
                    down_ms: 10_000,
                }],
                max_clock_skew_ms: 2_000,
                ..Faults::default()
            },
            byzantine: Vec::new(),
            mode: Mode::Liveness,
            heal_at_ms: None,
            config: Config::default(),
        }
    }
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            churn_interval_ms: 8_000,
            join_weight: 2,
            leave_weight: 1,
            remove_weight: 1,
            messages_per_minute: 60,
            no_vote_probability: 0.02,
            min_members: 3,
            max_members: 64,
        }
    }
}

impl Default for Network {
    fn default() -> Self {
        Self {
            link: Link::default(),
            links: Vec::new(),
            partitions: Vec::new(),
            random_partitions: 0,
            random_partition_ms: 10_000,
            repair: true,
            repair_ms: 2_000,
            relay_split_ms: None,
        }
    }
}

impl Default for Link {
    fn default() -> Self {
        Self {
            latency_ms: 30,
            jitter_ms: 50,
            jitter: Jitter::Uniform,
            loss: 0.01,
            duplicate: 0.005,
            reorder: 0.01,
            reorder_ms: 200,
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            crashes: Vec::new(),
            random_crashes: 0,
            crash_ms: 10_000,
            silences: Vec::new(),
            random_silences: 0,
            silence_ms: 10_000,
            max_clock_skew_ms: 0,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let c = ConversationConfig::default();
        let g = &c.governance;
        let ms = |d: Duration| d.as_millis() as u64;
        Self {
            voting_duration_ms: c.voting_duration.as_millis() as u64,
            freeze_window_ms: c.freeze_window.as_millis() as u64,
            auto_vote_ms: c.auto_vote.map(|a| a.after.as_millis() as u64),
            silent_counts_as_yes: c.silent_counts_as_yes,
            max_packet_len: c.max_packet_len,
            max_commit_batch: c.max_commit_batch,
            max_open_proposals_per_member: c.max_open_proposals_per_member,
            max_proposals_per_member_per_epoch: c.max_proposals_per_member_per_epoch,
            pending_join_expiry_ms: c.pending_join_expiry.as_millis() as u64,
            single_steward: g.single_steward,
            sn_min: g.sn_min,
            sn_max: g.sn_max,
            max_reelection_attempts: g.max_reelection_attempts,
            commit_inactivity_ms: ms(g.commit_inactivity),
            recovery_inactivity_ms: ms(g.recovery_inactivity),
            voting_inactivity_ms: ms(g.voting_inactivity),
            candidate_window_ms: ms(g.candidate_window),
        }
    }
}

impl Config {
    /// The `ConversationConfig` of every member. Key packages get a 100-year lifetime:
    /// openmls checks lifetimes against the wall clock, which a simulated (or replayed)
    /// run does not follow (docs/architecture.md).
    pub fn conversation(&self) -> ConversationConfig {
        ConversationConfig {
            voting_duration: Duration::from_millis(self.voting_duration_ms),
            freeze_window: Duration::from_millis(self.freeze_window_ms),
            auto_vote: self.auto_vote_ms.map(|ms| AutoVote {
                after: Duration::from_millis(ms),
                choice: Choice::Yes,
            }),
            silent_counts_as_yes: self.silent_counts_as_yes,
            tie_policy: TiePolicy::Reject,
            max_packet_len: self.max_packet_len,
            max_commit_batch: self.max_commit_batch,
            max_open_proposals_per_member: self.max_open_proposals_per_member,
            max_proposals_per_member_per_epoch: self.max_proposals_per_member_per_epoch,
            pending_join_expiry: Duration::from_millis(self.pending_join_expiry_ms),
            key_package_lifetime: Duration::from_secs(100 * 365 * 24 * 3600),
            governance: self.governance(),
            ..ConversationConfig::default()
        }
    }

    /// The group's governance parameters (the creator's; joiners adopt them).
    pub fn governance(&self) -> GovernanceConfig {
        let base = if self.single_steward {
            GovernanceConfig::single_steward()
        } else {
            GovernanceConfig::multi_steward()
        };
        GovernanceConfig {
            single_steward: self.single_steward,
            sn_min: self.sn_min,
            sn_max: self.sn_max,
            max_reelection_attempts: self.max_reelection_attempts,
            commit_inactivity: Duration::from_millis(self.commit_inactivity_ms),
            recovery_inactivity: Duration::from_millis(self.recovery_inactivity_ms),
            voting_inactivity: Duration::from_millis(self.voting_inactivity_ms),
            candidate_window: Duration::from_millis(self.candidate_window_ms),
            ..base
        }
    }
}

/// Why a scenario cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The group needs at least its creator.
    #[error("members must be at least 1")]
    NoMembers,
    /// Zero latency would let a packet arrive at the instant it was sent.
    #[error("link latency must be at least 1 ms")]
    ZeroLatency,
    /// A probability outside `[0, 1]`.
    #[error("{0} must be a probability in [0, 1]")]
    Probability(&'static str),
    /// A fault or partition names a node that never exists in this scenario.
    #[error("{what} names node {member}, but the run has at most {nodes} nodes")]
    UnknownNode {
        /// What names it.
        what: &'static str,
        /// The index.
        member: usize,
        /// Upper bound on node indexes.
        nodes: usize,
    },
    /// A window that ends before it starts.
    #[error("{0} ends before it starts")]
    EmptyWindow(&'static str),
    /// The configuration cannot work.
    #[error("invalid config: {0}")]
    Config(&'static str),
    /// The scenario file did not parse.
    #[error("scenario JSON: {0}")]
    Json(String),
}

impl Scenario {
    /// Parses a scenario from JSON (missing fields take their defaults) and validates it.
    pub fn from_json(json: &str) -> Result<Self, ScenarioError> {
        let s: Scenario =
            serde_json::from_str(json).map_err(|e| ScenarioError::Json(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Canonical JSON of the scenario (what traces record and `--print-scenario` shows).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("scenarios serialize")
    }

    /// Checks the scenario can run.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.members == 0 {
            return Err(ScenarioError::NoMembers);
        }
        let links =
            std::iter::once(&self.network.link).chain(self.network.links.iter().map(|o| &o.link));
        for l in links {
            if l.latency_ms == 0 {
                return Err(ScenarioError::ZeroLatency);
            }
            for (p, name) in [
                (l.loss, "loss"),
                (l.duplicate, "duplicate"),
                (l.reorder, "reorder"),
            ] {
                if !(0.0..=1.0).contains(&p) {
                    return Err(ScenarioError::Probability(name));
                }
            }
        }
        if !(0.0..=1.0).contains(&self.workload.no_vote_probability) {
            return Err(ScenarioError::Probability("no_vote_probability"));
        }
        let nodes = self.max_nodes();
        let check = |what, member: usize| {
            if member >= nodes {
                Err(ScenarioError::UnknownNode {
                    what,
                    member,
                    nodes,
                })
            } else {
                Ok(())
            }
        };
        for p in &self.network.partitions {
            if p.end_ms < p.start_ms {
                return Err(ScenarioError::EmptyWindow("a partition"));
            }
            for &m in &p.side {
                check("a partition", m)?;
            }
        }
        for c in &self.faults.crashes {
            check("a crash", c.member)?;
        }
        for s in &self.faults.silences {
            if s.to_ms < s.from_ms {
                return Err(ScenarioError::EmptyWindow("a silence"));
            }
            check("a silence", s.member)?;
        }
        for o in &self.network.links {
            for m in [o.from, o.to].into_iter().flatten() {
                check("a link override", m)?;
            }
        }
        let mut byzantine_nodes = std::collections::BTreeSet::new();
        for b in &self.byzantine {
            check("a Byzantine fault", b.node)?;
            if let Some(t) = b.target {
                check("a censoring target", t)?;
                if t == b.node {
                    return Err(ScenarioError::Config(
                        "a censoring steward cannot target itself",
                    ));
                }
            }
            if !byzantine_nodes.insert(b.node) {
                return Err(ScenarioError::Config(
                    "a node may have at most one Byzantine fault",
                ));
            }
        }
        if 3 * byzantine_nodes.len() >= self.members.max(1) {
            return Err(ScenarioError::Config(
                "Byzantine members must be fewer than a third of the group",
            ));
        }
        let c = &self.config;
        if !c.single_steward && (c.sn_min == 0 || c.sn_max < c.sn_min) {
            return Err(ScenarioError::Config("need 1 <= sn_min <= sn_max"));
        }
        if !c.single_steward && c.sn_max as usize > demls_wire::MAX_STEWARDS {
            return Err(ScenarioError::Config(
                "sn_max above the wire's steward limit",
            ));
        }
        if c.commit_inactivity_ms == 0 || c.recovery_inactivity_ms == 0 {
            return Err(ScenarioError::Config(
                "commit and recovery inactivity must be positive",
            ));
        }
        if c.max_commit_batch == 0 {
            return Err(ScenarioError::Config("max_commit_batch must be at least 1"));
        }
        if c.max_open_proposals_per_member == 0 || c.max_proposals_per_member_per_epoch == 0 {
            return Err(ScenarioError::Config(
                "per-member proposal limits must be at least 1",
            ));
        }
        if c.voting_duration_ms == 0 {
            return Err(ScenarioError::Config("voting_duration_ms must be positive"));
        }
        if c.max_packet_len < 1024 {
            return Err(ScenarioError::Config(
                "max_packet_len must be at least 1024",
            ));
        }
        Ok(())
    }

    /// Upper bound on node indexes: the initial members plus one node per possible join
    /// (a generous bound: faults may only name nodes below it).
    pub fn max_nodes(&self) -> usize {
        self.members + self.workload.max_members.max(self.members) + 1_000
    }

    /// When the network heals in liveness mode.
    pub fn heal_at(&self) -> u64 {
        self.heal_at_ms.unwrap_or(self.duration_ms)
    }

    /// Draws a small scenario (≤ 10 members) from `case`, for swarm testing: group size,
    /// churn, network faults (latency, loss, duplication, reordering, partitions), member
    /// faults (crashes, silences, skew), mode, timings and governance all vary; 40% of the
    /// cases with at least 4 members get 1..=(n-1)/3 Byzantine members of drawn kinds (with
    /// multi-steward governance), the others are single- or multi-steward at even odds. The same case always
    /// gives the same scenario (for a given demls revision).
    pub fn generate(case: u64) -> Self {
        let mut r = SimRng::fork(case, "scenario");
        let members = r.range(1, 10) as usize;
        let duration_ms = r.range(20, 90) * 1000;
        let max_members = r.range(members.max(2) as u64, 10) as usize;
        let mut s = Scenario {
            seed: r.next_u64(),
            members,
            duration_ms,
            epochs: None,
            workload: Workload {
                churn_interval_ms: r.range(2_000, 15_000),
                join_weight: r.range(0, 3) as u32,
                leave_weight: r.range(0, 2) as u32,
                remove_weight: r.range(0, 2) as u32,
                messages_per_minute: r.range(0, 120),
                no_vote_probability: [0.0, 0.05, 0.2][r.below(3) as usize],
                min_members: r.range(1, 3) as usize,
                max_members,
            },
            network: Network {
                link: Link {
                    latency_ms: r.range(1, 200),
                    jitter_ms: r.range(0, 300),
                    jitter: if r.chance(0.5) {
                        Jitter::Uniform
                    } else {
                        Jitter::Exponential
                    },
                    loss: [0.0, 0.01, 0.05, 0.15][r.below(4) as usize],
                    duplicate: [0.0, 0.01, 0.1][r.below(3) as usize],
                    reorder: [0.0, 0.02, 0.2][r.below(3) as usize],
                    reorder_ms: r.range(0, 2_000),
                },
                links: Vec::new(),
                partitions: Vec::new(),
                random_partitions: r.range(0, 2) as u32,
                random_partition_ms: r.range(1_000, 20_000),
                repair: true,
                repair_ms: r.range(100, 5_000),
                relay_split_ms: None,
            },
            faults: Faults {
                crashes: Vec::new(),
                random_crashes: r.range(0, 2) as u32,
                crash_ms: r.range(1_000, 20_000),
                silences: Vec::new(),
                random_silences: r.range(0, 2) as u32,
                silence_ms: r.range(1_000, 20_000),
                max_clock_skew_ms: r.range(0, 5_000),
            },
            byzantine: Vec::new(),
            mode: if r.chance(0.5) {
                Mode::Safety
            } else {
                Mode::Liveness
            },
            heal_at_ms: None,
            config: Config {
                voting_duration_ms: r.range(5, 40) * 1000,
                freeze_window_ms: r.range(200, 4_000),
                auto_vote_ms: if r.chance(0.8) {
                    Some(r.range(100, 3_000))
                } else {
                    None
                },
                silent_counts_as_yes: r.chance(0.7),
                max_commit_batch: r.range(1, 16) as usize,
                ..Config::default()
            },
        };
        if r.chance(0.3) {
            // A scheduled partition that heals, possibly one-way.
            let start_ms = r.range(0, duration_ms);
            let side: Vec<usize> = (0..members).filter(|_| r.chance(0.4)).collect();
            s.network.partitions.push(Partition {
                start_ms,
                end_ms: start_ms + r.range(1_000, 30_000),
                side,
                one_way: r.chance(0.3),
            });
        }
        if s.mode == Mode::Safety && r.chance(0.3) {
            // Permanent loss: safety must hold even when members fall behind for good.
            s.network.repair = false;
        }
        // Governance and Byzantine members, drawn last so that a case's group, workload and
        // network do not depend on them.
        let c = &mut s.config;
        c.sn_min = r.range(2, 3) as u32;
        c.sn_max = r.range(u64::from(c.sn_min), 5) as u32;
        c.commit_inactivity_ms = r.range(1_500, 6_000);
        c.recovery_inactivity_ms = r.range(1_000, 3_000);
        c.voting_inactivity_ms = r.range(1_000, 4_000);
        c.candidate_window_ms = r.range(300, 1_500);
        if r.chance(0.5) {
            s.network.relay_split_ms = Some(r.range(50, 3_000));
        }
        let max_byzantine = (members.saturating_sub(1) / 3) as u64;
        if max_byzantine >= 1 && r.chance(0.4) {
            let count = r.range(1, max_byzantine) as usize;
            let kinds: Vec<ByzantineKind> = (0..count)
                .map(|_| ByzantineKind::ALL[r.below(ByzantineKind::ALL.len() as u64) as usize])
                .collect();
            s.set_byzantine(&kinds, &mut r);
        } else {
            s.config.single_steward = r.chance(0.5);
        }
        s
    }

    /// [`Scenario::generate`] with its Byzantine members chosen by `mix` (for
    /// `demls-sim swarm --byzantine MIX`): `Drawn` keeps the drawn ones, `None` removes
    /// them, `Any` and `Only` give every case 1..=(n-1)/3 of them (groups grow to at least
    /// 4 members), of drawn kinds or of the one kind.
    pub fn generate_mixed(case: u64, mix: ByzantineMix) -> Self {
        let mut s = Self::generate(case);
        let mut r = SimRng::fork(case, "byzantine mix");
        match mix {
            ByzantineMix::Drawn => {}
            ByzantineMix::None => s.byzantine.clear(),
            ByzantineMix::Any | ByzantineMix::Only(_) => {
                s.members = s.members.max(4);
                s.workload.max_members = s.workload.max_members.max(s.members);
                let count = r.range(1, (s.members as u64 - 1) / 3) as usize;
                let kinds: Vec<ByzantineKind> = (0..count)
                    .map(|_| match mix {
                        ByzantineMix::Only(k) => k,
                        _ => ByzantineKind::ALL[r.below(ByzantineKind::ALL.len() as u64) as usize],
                    })
                    .collect();
                s.set_byzantine(&kinds, &mut r);
            }
        }
        s
    }

    /// The scenario of the Byzantine-steward measurement (`demls-sim measure`,
    /// docs/performance.md) and of the per-fault scenario tests: seven members on a clean
    /// network (20 ms + up to 10 ms jitter, no loss), churn every 4 s on average (joins twice
    /// as often as leaves or removals, between 5 and 10 members) and 30 chat messages a minute
    /// for 90 s, honest splits relayed after 500 ms; node 1 has fault `kind` (`None`: nobody)
    /// from the moment the initial group is complete; liveness mode.
    pub fn byzantine_bench(kind: Option<ByzantineKind>, seed: u64) -> Self {
        let mut s = Scenario {
            seed,
            members: 7,
            duration_ms: 90_000,
            ..Scenario::default()
        };
        s.network.link = Link {
            latency_ms: 20,
            jitter_ms: 10,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            ..Link::default()
        };
        s.network.partitions.clear();
        s.network.relay_split_ms = Some(500);
        s.faults.crashes.clear();
        s.faults.max_clock_skew_ms = 0;
        s.workload = Workload {
            churn_interval_ms: 4_000,
            join_weight: 2,
            leave_weight: 1,
            remove_weight: 1,
            messages_per_minute: 30,
            no_vote_probability: 0.0,
            min_members: 5,
            max_members: 10,
        };
        s.byzantine = kind
            .map(|kind| ByzantineFault {
                kind,
                node: 1,
                from_ms: 0,
                target: None,
            })
            .into_iter()
            .collect();
        s.mode = Mode::Liveness;
        s.config.single_steward = false;
        s
    }

    /// Replaces the Byzantine members with one of each of `kinds`, on distinct initial
    /// members drawn from `r`, each starting at a time drawn in the first half of the
    /// workload; raises the group's size floor so they stay fewer than a third.
    pub fn set_byzantine(&mut self, kinds: &[ByzantineKind], r: &mut SimRng) {
        self.byzantine.clear();
        let mut pool: Vec<usize> = (0..self.members).collect();
        for &kind in kinds {
            if pool.is_empty() {
                break;
            }
            let node = pool.swap_remove(r.below(pool.len() as u64) as usize);
            let from_ms = r.range(0, self.duration_ms / 2);
            self.byzantine.push(ByzantineFault {
                kind,
                node,
                from_ms,
                target: None,
            });
        }
        let f = self.byzantine.len();
        self.workload.min_members = self.workload.min_members.max(3 * f + 1);
        self.workload.max_members = self.workload.max_members.max(self.members);
        self.config.single_steward = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_generated_scenarios_validate_and_round_trip_through_json() {
        let d = Scenario::default();
        d.validate().unwrap();
        assert_eq!(Scenario::from_json(&d.to_json()).unwrap(), d);
        for case in 0..200 {
            let s = Scenario::generate(case);
            s.validate().unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(Scenario::from_json(&s.to_json()).unwrap(), s, "case {case}");
            assert_eq!(Scenario::generate(case), s);
        }
    }

    #[test]
    fn invalid_scenarios_are_refused_with_a_reason() {
        let mut s = Scenario::default();
        s.network.link.latency_ms = 0;
        assert_eq!(s.validate(), Err(ScenarioError::ZeroLatency));
        let mut s = Scenario::default();
        s.network.link.loss = 1.5;
        assert_eq!(s.validate(), Err(ScenarioError::Probability("loss")));
        let s = Scenario {
            members: 0,
            ..Scenario::default()
        };
        assert_eq!(s.validate(), Err(ScenarioError::NoMembers));
        assert!(matches!(
            Scenario::from_json("{\"members\": 3, \"bogus\": 1}"),
            Err(ScenarioError::Json(_))
        ));
        let s = Scenario::from_json("{\"members\": 3}").unwrap();
        assert_eq!(s.members, 3);
        assert_eq!(s.network, Scenario::default().network);
        // Byzantine members: fewer than a third, one fault per node, known kinds.
        let fault = |node| ByzantineFault {
            kind: ByzantineKind::SilentSteward,
            node,
            from_ms: 0,
            target: None,
        };
        let mut s = Scenario {
            members: 7,
            ..Scenario::default()
        };
        s.byzantine = vec![fault(1), fault(2)];
        s.validate().unwrap();
        s.byzantine.push(fault(3));
        assert!(matches!(s.validate(), Err(ScenarioError::Config(_))));
        s.byzantine = vec![fault(1), fault(1)];
        assert!(matches!(s.validate(), Err(ScenarioError::Config(_))));
        assert!(matches!(
            Scenario::from_json("{\"byzantine\": [{\"kind\": \"loud_steward\", \"node\": 1}]}"),
            Err(ScenarioError::Json(_))
        ));
        let s = Scenario::from_json(
            "{\"members\": 4, \"byzantine\": [{\"kind\": \"vote_equivocator\", \"node\": 2}]}",
        )
        .unwrap();
        assert_eq!(s.byzantine[0].kind, ByzantineKind::VoteEquivocator);
        for k in ByzantineKind::ALL {
            assert_eq!(ByzantineKind::from_name(k.name()), Some(k));
            assert_eq!(ByzantineMix::parse(k.name()), Some(ByzantineMix::Only(k)));
        }
        // Every mix keeps the generated cases valid.
        for case in 0..50 {
            for mix in [
                ByzantineMix::Any,
                ByzantineMix::None,
                ByzantineMix::Only(ByzantineKind::ProposalSpammer),
            ] {
                let s = Scenario::generate_mixed(case, mix);
                s.validate()
                    .unwrap_or_else(|e| panic!("case {case} {mix:?}: {e}"));
                assert_eq!(s.byzantine.is_empty(), mix == ByzantineMix::None);
            }
        }
    }
}
