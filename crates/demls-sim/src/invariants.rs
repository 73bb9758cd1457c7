//! The invariants of BRIEF §6, checked after every input of every member.
//!
//! Every node in a single-steward run is honest, so every node's view counts. The checks:
//! * **Agreement** — members at the same epoch have the same roster and steward list.
//! * **No fork** — at most one commit per epoch: members at the same epoch have the same
//!   epoch authenticator.
//! * **Validity** — every member added or removed by a commit a member applied was approved
//!   by a finalized YES at that member (a self-leave is a removal proposal like any other);
//!   for a joiner, approvals some member finalized count (its welcome and pre-join evidence
//!   carry them on the steward's word).
//! * **Consensus agreement** — no two members finalize one proposal differently *early*
//!   (by the interval rule, which is final whatever the missing votes are). A decision taken
//!   at the deadline counts the votes a member has not received as silent; when the network
//!   delays a vote past the deadline (a partition, a loss repaired late, a silenced voter) two
//!   members can legitimately reach different deadline decisions. Those are counted as
//!   *deadline divergences* in the summary, not violations (docs/protocol.md §4): no commit
//!   can apply a proposal its members did not finalize YES themselves.
//! * **Monotonic epochs** — a member's epoch never goes backwards.
//! * **Deadlines** — `tick_deadlines` consumes what is due (the run-loop contract).
//!
//! Liveness is checked at the end of a liveness-mode run by the simulator (it needs the
//! whole history); determinism by re-running or replaying (see `trace`).

use std::collections::{BTreeMap, BTreeSet};

use demls_consensus::{DecidedBy, MemberId, Outcome, ProposalDigest};
use demls_core::{Action, Event};
use serde::Serialize;

use crate::node::{InputRecord, View};

/// Which invariant was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// Same epoch, different roster or stewards.
    Agreement,
    /// Same epoch, different epoch authenticator.
    NoFork,
    /// A roster change without a finalized YES.
    Validity,
    /// One proposal finalized differently by two members.
    ConsensusAgreement,
    /// A member's epoch went backwards.
    MonotonicEpoch,
    /// A deadline that ticking does not consume.
    Deadline,
    /// An approved proposal not committed within the bound, or a member that did not catch
    /// up (liveness mode).
    Liveness,
    /// A re-run or replay differs.
    Determinism,
}

/// One broken invariant, where and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant.
    pub invariant: Invariant,
    /// Virtual time, ms.
    pub time_ms: u64,
    /// The node that observed it, if one did.
    pub node: Option<usize>,
    /// What exactly.
    pub detail: String,
}

/// An action as a comparable key: `(kind, member)`, kind 1 add, 2 remove, 3 leave.
pub type ActionKey = (u8, MemberId);

/// The key of an action.
pub fn action_key(a: &Action) -> ActionKey {
    match a {
        Action::Add(m) => (1, m.clone()),
        Action::Remove(m) => (2, m.clone()),
        Action::Leave(m) => (3, m.clone()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EpochRecord {
    authenticator: Vec<u8>,
    roster: Vec<MemberId>,
    stewards: Vec<MemberId>,
    node: usize,
}

/// The checker's memory.
#[derive(Debug, Default)]
pub struct Checker {
    epochs: BTreeMap<u64, EpochRecord>,
    decisions: BTreeMap<ProposalDigest, Vec<(Outcome, DecidedBy, usize)>>,
    deadline_divergences: u64,
    /// Per node: actions it saw approved (finalized YES).
    approved: BTreeMap<usize, BTreeSet<ActionKey>>,
    /// Actions some member finalized YES.
    approved_anywhere: BTreeSet<ActionKey>,
    /// Nodes that joined through a welcome (rather than creating the group).
    joiners: BTreeSet<usize>,
    last_epoch: BTreeMap<usize, u64>,
    violations: Vec<Violation>,
}

impl Checker {
    /// The violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Decisions that differed from another member's where at least one was taken at the
    /// deadline (see the module docs).
    pub fn deadline_divergences(&self) -> u64 {
        self.deadline_divergences
    }

    /// Records a violation found outside the per-input checks.
    pub fn report(&mut self, v: Violation) {
        tracing::warn!(invariant = ?v.invariant, time_ms = v.time_ms, node = ?v.node, detail = %v.detail, "invariant violated");
        self.violations.push(v);
    }

    /// Checks one input's record.
    pub fn observe(&mut self, r: &InputRecord) {
        let time_ms = r.time / crate::netem::MS;
        let node = r.node;
        let mut found = Vec::new();
        for e in &r.events {
            match e {
                Event::ProposalDecided {
                    proposal,
                    action,
                    decision,
                } => {
                    let seen = self.decisions.entry(*proposal).or_default();
                    let conflict = seen
                        .iter()
                        .find(|(outcome, _, _)| *outcome != decision.outcome)
                        .copied();
                    if let Some((outcome, by, other)) = conflict {
                        if by == DecidedBy::Early && decision.by == DecidedBy::Early {
                            found.push((
                                Invariant::ConsensusAgreement,
                                format!(
                                    "proposal {} finalized {:?} early here but {:?} early by node {other}",
                                    hex::encode(&proposal.0[..8]),
                                    decision.outcome,
                                    outcome
                                ),
                            ));
                        } else {
                            self.deadline_divergences += 1;
                        }
                    }
                    seen.push((decision.outcome, decision.by, node));
                    if decision.outcome == Outcome::Yes {
                        self.approved
                            .entry(node)
                            .or_default()
                            .insert(action_key(action));
                        self.approved_anywhere.insert(action_key(action));
                    }
                }
                Event::EpochChanged {
                    epoch,
                    added,
                    removed,
                } => {
                    // A joiner takes approvals of epochs before it joined on the steward's word
                    // (welcome and pre-join evidence): what some member finalized counts.
                    let approved = if self.joiners.contains(&node) {
                        let mut a = self.approved_anywhere.clone();
                        a.extend(self.approved.get(&node).into_iter().flatten().cloned());
                        a
                    } else {
                        self.approved.entry(node).or_default().clone()
                    };
                    for m in added {
                        if !approved.contains(&(1, m.clone())) {
                            found.push((
                                Invariant::Validity,
                                format!("epoch {} added {m} without an approved add", epoch.0),
                            ));
                        }
                    }
                    for m in removed {
                        if !approved.contains(&(2, m.clone()))
                            && !approved.contains(&(3, m.clone()))
                        {
                            found.push((
                                Invariant::Validity,
                                format!(
                                    "epoch {} removed {m} without an approved removal or leave",
                                    epoch.0
                                ),
                            ));
                        }
                    }
                    self.check_epoch(node, epoch.0, &mut found);
                }
                Event::Joined { epoch } => {
                    // A joiner takes the approvals its welcome carries on the committer's
                    // word (it has no votes of earlier epochs): what members finalized.
                    self.approved.insert(node, self.approved_anywhere.clone());
                    self.joiners.insert(node);
                    self.check_epoch(node, epoch.0, &mut found);
                }
                _ => {}
            }
        }
        if let Some(view) = &r.view {
            self.check_view(node, view, &mut found);
        }
        for (invariant, detail) in found {
            self.report(Violation {
                invariant,
                time_ms,
                node: Some(node),
                detail,
            });
        }
    }

    fn check_epoch(&mut self, node: usize, epoch: u64, found: &mut Vec<(Invariant, String)>) {
        if let Some(last) = self.last_epoch.insert(node, epoch) {
            if epoch < last {
                found.push((
                    Invariant::MonotonicEpoch,
                    format!("epoch went from {last} back to {epoch}"),
                ));
            }
        }
    }

    fn check_view(&mut self, node: usize, view: &View, found: &mut Vec<(Invariant, String)>) {
        match self.epochs.get(&view.epoch) {
            None => {
                self.epochs.insert(
                    view.epoch,
                    EpochRecord {
                        authenticator: view.authenticator.clone(),
                        roster: view.roster.clone(),
                        stewards: view.stewards.clone(),
                        node,
                    },
                );
            }
            Some(rec) => {
                if rec.authenticator != view.authenticator {
                    found.push((
                        Invariant::NoFork,
                        format!(
                            "epoch {}: authenticator {} differs from node {}'s {}",
                            view.epoch,
                            hex::encode(&view.authenticator[..8.min(view.authenticator.len())]),
                            rec.node,
                            hex::encode(&rec.authenticator[..8.min(rec.authenticator.len())]),
                        ),
                    ));
                } else if rec.roster != view.roster || rec.stewards != view.stewards {
                    found.push((
                        Invariant::Agreement,
                        format!(
                            "epoch {}: roster/stewards differ from node {}'s",
                            view.epoch, rec.node
                        ),
                    ));
                }
            }
        }
    }
}
