//! Run statistics and the summary a run ends with.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::invariants::Violation;

/// The `p`-th percentile (0–100) of `values` by nearest rank; 0 when empty.
pub fn percentile(values: &[u64], p: u64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p as usize * v.len()).div_ceil(100)).clamp(1, v.len());
    v[rank - 1]
}

/// Counters kept while a run goes.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Inputs processed (trace records).
    pub steps: u64,
    /// Packets published.
    pub packets: u64,
    /// Bytes published.
    pub bytes: u64,
    /// Packets a silent node did not publish.
    pub suppressed: u64,
    /// Deliveries that arrived.
    pub delivered: u64,
    /// Deliveries lost on their link (repaired later when repair is on).
    pub lost: u64,
    /// Deliveries dropped for good (no repair).
    pub dropped: u64,
    /// Deliveries deferred by a partition or a crash (repair).
    pub deferred: u64,
    /// Duplicate copies.
    pub duplicated: u64,
    /// Application messages sent (commands accepted).
    pub messages_sent: u64,
    /// Application messages received (Message events).
    pub messages_delivered: u64,
    /// Inputs refused, by reason (the error text up to its first ':').
    pub refusals: BTreeMap<String, u64>,
    /// Nodes started (creator and joiners, rejoins included).
    pub joins_started: u64,
    /// Pending joins that expired.
    pub joins_expired: u64,
    /// Leave commands issued.
    pub leaves: u64,
    /// Removal proposals issued.
    pub removals: u64,
    /// Crashes.
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
}

/// The final summary of a run. Everything in it is deterministic (no wall-clock or CPU
/// time): the same scenario gives the same summary, byte for byte, in `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The run seed.
    pub seed: u64,
    /// "safety" or "liveness".
    pub mode: String,
    /// Virtual time at the end, ms.
    pub virtual_ms: u64,
    /// Inputs processed.
    pub steps: u64,
    /// Nodes that took part.
    pub nodes: usize,
    /// Members in the group at the end (the steward's roster).
    pub members: usize,
    /// Highest epoch any member reached.
    pub epochs: u64,
    /// Epoch at which the initial group was complete.
    pub bootstrap_epoch: Option<u64>,
    /// Virtual time the initial group was complete, ms.
    pub bootstrap_ms: Option<u64>,
    /// Distinct proposals opened.
    pub proposals: u64,
    /// Decided YES.
    pub approved: u64,
    /// Decided NO.
    pub rejected: u64,
    /// Approved and committed.
    pub committed: u64,
    /// Approved but never committed.
    pub uncommitted: u64,
    /// Deadline decisions that differed between members (votes delayed past the deadline;
    /// not a violation, see `invariants`).
    pub deadline_divergences: u64,
    /// Early decisions that differed on a proposal a Byzantine voter equivocated on (the
    /// one-round vote's documented limit; not a violation, see `invariants`).
    pub equivocation_divergences: u64,
    /// Forks at an epoch whose predecessor's roster was at least a third Byzantine (outside
    /// the fault model; not a violation, see `invariants`).
    pub forks_beyond_fault_model: u64,
    /// Validity failures at such an epoch (outside the fault model; not violations).
    pub validity_beyond_fault_model: u64,
    /// Liveness failures in a group whose final roster was a third or more Byzantine, or had
    /// fewer than 2n/3 honest members that got in (with Byzantine members, a joiner whose
    /// Welcome never came does not count), or in a run that forked beyond the fault model
    /// (outside the fault model; not violations).
    pub liveness_beyond_fault_model: u64,
    /// Honest members left behind because they finalized NO early a proposal that a later
    /// commit carried (the deadline divergence of the voting rules; not violations).
    pub liveness_diverged: u64,
    /// Approved proposals never committed because every honest member that approved them
    /// left the group first and no honest member of the group held them approved (the
    /// request left with its requester; not violations).
    pub liveness_approvers_gone: u64,
    /// Time from a proposal's opening to its commit, p50, ms.
    pub commit_p50_ms: u64,
    /// p99 of the same, ms.
    pub commit_p99_ms: u64,
    /// Application messages sent.
    pub messages_sent: u64,
    /// Application messages received, over all receivers.
    pub messages_delivered: u64,
    /// Packets published.
    pub packets: u64,
    /// Bytes published.
    pub bytes_sent: u64,
    /// Deliveries that arrived.
    pub deliveries: u64,
    /// Deliveries lost on a link.
    pub lost: u64,
    /// Deliveries dropped for good.
    pub dropped: u64,
    /// Packets a silent node did not publish.
    pub suppressed: u64,
    /// Deliveries deferred by partitions or crashes.
    pub deferred: u64,
    /// Duplicate copies delivered.
    pub duplicated: u64,
    /// Refused inputs by reason.
    pub refusals: BTreeMap<String, u64>,
    /// Joins started, expired.
    pub joins_started: u64,
    /// Pending joins that expired.
    pub joins_expired: u64,
    /// Leaves issued.
    pub leaves: u64,
    /// Removal proposals issued.
    pub removals: u64,
    /// Crashes and restarts.
    pub crashes: u64,
    /// Restarts from snapshot.
    pub restarts: u64,
    /// Governance proposals opened (steward elections and deadlock proposals; they change
    /// no roster and are not in `approved`/`committed`).
    pub governance_proposals: u64,
    /// Steward violations honest members reported against Byzantine members, by kind:
    /// distinct (offender, kind, epoch).
    pub steward_violations: BTreeMap<String, u64>,
    /// The same against honest members (what network faults look like from outside).
    pub honest_accused: BTreeMap<String, u64>,
    /// Vote equivocations honest members detected: distinct (proposal, voter).
    pub vote_equivocations: u64,
    /// Epochs in which recovery mode started (Layer 3).
    pub recoveries: u64,
    /// Steward lists installed by a re-election (retry round > 0, Layer 2).
    pub reelections: u64,
    /// Time from approval (the first honest YES) to commit (the first honest member that
    /// applied it), by the layer that resolved it (see `Layer`).
    pub resolution: BTreeMap<String, LayerStat>,
    /// The samples behind `resolution`, for aggregation over runs (not serialized).
    #[serde(skip)]
    pub resolution_samples: Vec<(Layer, u64)>,
    /// What became of each Byzantine member.
    pub byzantine: Vec<ByzantineReport>,
    /// In liveness mode: the heal time, ms.
    pub heal_ms: Option<u64>,
    /// In liveness mode: the base of the commit bound, ms (see docs/traces.md).
    pub liveness_bound_ms: Option<u64>,
    /// Every violation.
    pub violations: Vec<Violation>,
    /// SHA-256 over every input's output hash and state digest, in order: equal hashes mean
    /// byte-identical runs.
    pub run_hash: String,
}

/// The layer of steward protection that got an approved proposal committed, inferred from
/// what honest members reported between its approval and its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Layer 1, committed by the epoch steward (no steward was reported inactive).
    EpochSteward,
    /// Layer 1, committed after the rotation walked past a steward (an `Inactivity`
    /// violation was reported in an epoch in between).
    Rotation,
    /// Layer 2: a re-elected list (retry round > 0) was installed in between.
    Reelection,
    /// Layer 3: recovery mode was on when it was committed, or started in between.
    Recovery,
}

impl Layer {
    /// Every layer, in order.
    pub const ALL: [Layer; 4] = [
        Layer::EpochSteward,
        Layer::Rotation,
        Layer::Reelection,
        Layer::Recovery,
    ];

    /// Its name in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Layer::EpochSteward => "layer1_epoch_steward",
            Layer::Rotation => "layer1_rotation",
            Layer::Reelection => "layer2_reelection",
            Layer::Recovery => "layer3_recovery",
        }
    }
}

/// Count and percentiles of one layer's approval-to-commit times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerStat {
    /// Proposals.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: u64,
    /// 99th percentile, ms.
    pub p99_ms: u64,
}

impl LayerStat {
    /// The statistics of `samples` (ms).
    pub fn of(samples: &[u64]) -> Self {
        Self {
            count: samples.len() as u64,
            p50_ms: percentile(samples, 50),
            p99_ms: percentile(samples, 99),
        }
    }
}

/// What became of one Byzantine member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByzantineReport {
    /// Node index.
    pub node: usize,
    /// Its fault (`ByzantineKind::name`).
    pub kind: String,
    /// When it started misbehaving, ms (`None`: never, e.g. it was not a member).
    pub active_ms: Option<u64>,
    /// When an honest member first applied its removal, ms.
    pub removed_ms: Option<u64>,
    /// Its score in the group state at the end (an honest member's view), if a member.
    pub final_score: Option<i64>,
    /// Violations honest members reported against it, by kind (distinct epochs).
    pub reported: BTreeMap<String, u64>,
    /// Misbehaviours it attempted (hooks called, spam proposals).
    pub attempts: u64,
    /// Of those, refused by its own core (rate limits, nothing to commit, ...).
    pub refused: u64,
    /// Member removals it proposed that an honest member finalized YES (a spammer's spam;
    /// the duties its core performs, e.g. adds for waiting key packages, are not counted).
    pub approved_proposals: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[5], 99), 5);
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&[3, 1, 2], 50), 2);
    }
}
