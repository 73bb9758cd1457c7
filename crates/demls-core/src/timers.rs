//! The timer table: one deadline per timer kind and key, ordered by time, so that
//! `next_deadline()` is O(log n) and an idle tick looks at one entry (quinn-proto's
//! `TimerTable`, generalised to keyed timers).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use demls_consensus::ProposalDigest;

/// What a timer is for. The derived order is the firing order of timers due at the same
/// instant, so it is part of the determinism contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// Voting deadlines inside the voting machine.
    VotingDeadline,
    /// An automatic vote on a proposal.
    AutoVote(ProposalDigest),
    /// The freeze window before the steward commits.
    FreezeWindow,
    /// A pending join gives up.
    PendingJoinExpiry,
    /// Incomplete fragment reassemblies are dropped.
    ReassemblyExpiry,
    /// This steward's turn in the rotation to commit ("Layer 1", commit inactivity of the
    /// stewards before it).
    CommitSlot,
    /// The commit candidates collected since the first one are judged and one is applied
    /// ("Commit validation service").
    CandidateWindow,
    /// The rotation passed without an applied commit: re-election or the deadlock proposal
    /// ("Layer 2", "Layer 3").
    Escalation,
    /// This member's turn to open the governance proposals that are due (an election, an
    /// emergency proposal, an add for a waiting key package) if nobody earlier in line did
    /// ("Voting inactivity").
    Duties,
    /// A pending joiner announces its key package again (its welcome may have been lost).
    Reannounce,
    /// A member removed by an acknowledged commit stops answering the traffic of the epoch
    /// it left.
    Linger,
}

/// Deadlines keyed by timer kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    by_kind: BTreeMap<TimerKind, Instant>,
    by_time: BTreeSet<(Instant, TimerKind)>,
}

impl Timers {
    /// Arms (or re-arms) `kind` at `at`.
    pub(crate) fn set(&mut self, kind: TimerKind, at: Instant) {
        self.stop(kind);
        self.by_kind.insert(kind, at);
        self.by_time.insert((at, kind));
    }

    /// Disarms `kind`.
    pub(crate) fn stop(&mut self, kind: TimerKind) {
        if let Some(at) = self.by_kind.remove(&kind) {
            self.by_time.remove(&(at, kind));
        }
    }

    /// Whether `kind` is armed.
    pub(crate) fn is_set(&self, kind: TimerKind) -> bool {
        self.by_kind.contains_key(&kind)
    }

    /// The earliest deadline and what it is for.
    pub(crate) fn next(&self) -> Option<(Instant, TimerKind)> {
        self.by_time.first().copied()
    }

    /// Disarms and returns the earliest timer due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKind> {
        let &(at, kind) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.stop(kind);
        Some(kind)
    }

    /// All armed timers in firing order (for the state digest and snapshots).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(Instant, TimerKind)> {
        self.by_time.iter()
    }
}

impl Timers {
    /// Keeps only the timers whose kind satisfies `keep`.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&TimerKind) -> bool) {
        let dropped: Vec<TimerKind> = self.by_kind.keys().filter(|k| !keep(k)).copied().collect();
        for kind in dropped {
            self.stop(kind);
        }
    }
}

impl TimerKind {
    /// Canonical bytes of the kind (tag, then the proposal digest for automatic votes): used by
    /// the state digest and by snapshots.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TimerKind::VotingDeadline => out.push(0),
            TimerKind::AutoVote(d) => {
                out.push(1);
                out.extend_from_slice(&d.0);
            }
            TimerKind::FreezeWindow => out.push(2),
            TimerKind::PendingJoinExpiry => out.push(3),
            TimerKind::ReassemblyExpiry => out.push(4),
            TimerKind::CommitSlot => out.push(5),
            TimerKind::CandidateWindow => out.push(6),
            TimerKind::Escalation => out.push(7),
            TimerKind::Duties => out.push(8),
            TimerKind::Reannounce => out.push(9),
            TimerKind::Linger => out.push(10),
        }
    }
}
