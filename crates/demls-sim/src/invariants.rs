//! The invariants of BRIEF §6, checked after every input of every honest member.
//!
//! Byzantine members (the scenario's `byzantine` list) are excluded: their views, decisions
//! and proposals are not checked, and their approvals do not justify anything. The checks:
//! * **Agreement** — honest members at the same epoch have the same roster, steward list
//!   (with the epoch it starts from) and score table (the group state of the MLS group
//!   context).
//! * **No fork** — at most one commit per epoch: honest members at the same epoch have the
//!   same epoch authenticator. The promise holds while fewer than a third of the members
//!   acknowledging the commit (the previous epoch's roster) are Byzantine: churn can push a
//!   group past that bound (two Byzantine members of a seven-member scenario while only six
//!   are in), and forks there are counted as *beyond the fault model*, not violations.
//! * **Validity** — every member added or removed by a commit an honest member applied was
//!   approved by a finalized YES that some honest member holds (a self-leave is a removal
//!   proposal like any other, a removal for a score below the threshold is an emergency
//!   proposal): a member may take a commit's decisions on its quorum certificate
//!   (docs/protocol.md §9, "Certified commits"); for a joiner, approvals some honest member
//!   ever finalized count (its welcome and pre-join evidence carry them on the committer's
//!   word); and a deadline YES an honest member held until votes it had lacked overturned it
//!   counts too (the members acknowledged the commit on it, and the votes came after:
//!   docs/protocol.md §4, the union of the votes). Like forks, failures in an epoch whose
//!   acknowledging roster was a third or more Byzantine are counted *beyond the fault
//!   model*, not violations.
//! * **Consensus agreement** — no two honest members finalize one proposal differently
//!   *early* (by the interval rule, which is final whatever the missing votes are). A
//!   decision taken at the deadline counts the votes a member has not received as silent;
//!   when the network delays a vote past the deadline two members can legitimately reach
//!   different deadline decisions. Those are counted as *deadline divergences* in the
//!   summary, not violations (docs/protocol.md §4); a decision later revised by the votes
//!   of a bundle (`ProposalRevised`: early, or the deadline rule over the union) replaces the
//!   member's deadline decision.
//! * **Priority** (§6.5) — an honest member never creates a proposal of lower priority
//!   (commit proposal < steward election < emergency proposal) while a higher-priority one
//!   is open in its current epoch.
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
    /// Same epoch, different roster, steward list or score table.
    Agreement,
    /// Same epoch, different epoch authenticator.
    NoFork,
    /// A roster change without a finalized YES.
    Validity,
    /// One proposal finalized differently by two members.
    ConsensusAgreement,
    /// A proposal created while a higher-priority one was open.
    Priority,
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

/// An action as a comparable key: `(kind, member)`, kind 1 add, 2 remove, 3 leave, 4 removal
/// of a member whose score fell to the threshold (an emergency proposal).
pub type ActionKey = (u8, MemberId);

/// The key of a roster-changing action; `None` for steward elections and deadlock proposals,
/// which change no roster.
pub fn action_key(a: &Action) -> Option<ActionKey> {
    match a {
        Action::Add(m) => Some((1, m.clone())),
        Action::Remove(m) => Some((2, m.clone())),
        Action::Leave(m) => Some((3, m.clone())),
        Action::RemoveBelowThreshold(m) => Some((4, m.clone())),
        Action::ElectStewards { .. } | Action::Deadlock => None,
    }
}

/// The priority of an action's proposal kind: 1 commit proposal, 2 steward election,
/// 3 emergency proposal ("Consensus Types").
pub fn priority(a: &Action) -> u8 {
    match a {
        Action::Add(_) | Action::Remove(_) | Action::Leave(_) => 1,
        Action::ElectStewards { .. } => 2,
        Action::RemoveBelowThreshold(_) | Action::Deadlock => 3,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EpochRecord {
    view: View,
    node: usize,
}

/// The checker's memory.
#[derive(Debug, Default)]
pub struct Checker {
    /// Byzantine nodes: not checked.
    byzantine: BTreeSet<usize>,
    /// Priority of every proposal seen opened.
    priorities: BTreeMap<ProposalDigest, u8>,
    /// Per honest node: governance proposals (priority > 1) open in its current epoch
    /// after its last input.
    open_governance: BTreeMap<usize, BTreeMap<ProposalDigest, u8>>,
    epochs: BTreeMap<u64, EpochRecord>,
    decisions: BTreeMap<ProposalDigest, Vec<(Outcome, DecidedBy, usize)>>,
    deadline_divergences: u64,
    /// Proposals on which the simulator made a Byzantine member equivocate its votes.
    vote_equivocated: BTreeSet<ProposalDigest>,
    /// Early decisions that differ on such a proposal: the documented limit of a one-round
    /// vote (docs/protocol.md §5: with f equivocating voters, honest members may decide
    /// differently when the margin is at most f). Counted, not violations.
    equivocation_divergences: u64,
    /// Byzantine members by id (the rosters name members, not nodes).
    byzantine_ids: BTreeSet<MemberId>,
    /// Forks at an epoch whose predecessor's roster had at least a third Byzantine members:
    /// outside the fault model (the ⌈2n/3⌉ acknowledgement quorums of two candidates then
    /// need not share an honest member). Counted, not violations.
    forks_beyond_fault_model: u64,
    /// Validity failures of a commit into an epoch whose predecessor's roster had at least a
    /// third Byzantine members: outside the fault model (a joiner's hearsay decision is
    /// vouched for by ⌈n/3⌉ members, and those may all be Byzantine then). Counted, not
    /// violations.
    validity_beyond_fault_model: u64,
    /// Per node: actions it saw approved (finalized YES), with the proposals that approved
    /// them (several proposals may carry one action; a revision to NO withdraws only its own).
    approved: BTreeMap<usize, BTreeMap<ActionKey, BTreeSet<ProposalDigest>>>,
    /// Actions some member finalized YES.
    approved_anywhere: BTreeSet<ActionKey>,
    /// Actions whose deadline YES at some member a revision overturned (see Validity).
    overturned: BTreeSet<ActionKey>,
    /// Nodes that joined through a welcome (rather than creating the group).
    joiners: BTreeSet<usize>,
    last_epoch: BTreeMap<usize, u64>,
    violations: Vec<Violation>,
}

impl Checker {
    /// A checker for a run whose Byzantine members are `byzantine` (node indexes).
    pub fn new(byzantine: BTreeSet<usize>) -> Self {
        Self {
            byzantine_ids: byzantine
                .iter()
                .map(|&n| crate::sim::member_name(n))
                .collect(),
            byzantine,
            ..Self::default()
        }
    }

    /// Forks where the acknowledging roster was at least a third Byzantine (see the field).
    pub fn forks_beyond_fault_model(&self) -> u64 {
        self.forks_beyond_fault_model
    }

    /// Validity failures where the acknowledging roster was at least a third Byzantine (see
    /// the field).
    pub fn validity_beyond_fault_model(&self) -> u64 {
        self.validity_beyond_fault_model
    }

    /// Whether the commit into `epoch` was acknowledged by a roster (the previous epoch's)
    /// of which at least a third is Byzantine: outside the fault model.
    fn beyond_fault_model(&self, epoch: u64) -> bool {
        epoch
            .checked_sub(1)
            .and_then(|e| self.epochs.get(&e))
            .is_some_and(|prev| {
                let byz = prev
                    .view
                    .roster
                    .iter()
                    .filter(|m| self.byzantine_ids.contains(*m))
                    .count();
                3 * byz >= prev.view.roster.len()
            })
    }

    /// Whether `node` is honest (checked).
    pub fn is_honest(&self, node: usize) -> bool {
        !self.byzantine.contains(&node)
    }

    /// The violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Decisions that differed from another member's where at least one was taken at the
    /// deadline (see the module docs).
    pub fn deadline_divergences(&self) -> u64 {
        self.deadline_divergences
    }

    /// Early-decision disagreements on proposals a Byzantine voter equivocated on.
    pub fn equivocation_divergences(&self) -> u64 {
        self.equivocation_divergences
    }

    /// Records a violation found outside the per-input checks.
    pub fn report(&mut self, v: Violation) {
        tracing::warn!(invariant = ?v.invariant, time_ms = v.time_ms, node = ?v.node, detail = %v.detail, "invariant violated");
        self.violations.push(v);
    }

    /// Whether a Byzantine voter equivocated on `proposal` (docs/protocol.md §5: honest
    /// members may then decide it differently, for good).
    pub fn vote_equivocated(&self, proposal: &ProposalDigest) -> bool {
        self.vote_equivocated.contains(proposal)
    }

    /// Checks one input's record.
    pub fn observe(&mut self, r: &InputRecord) {
        if let (
            crate::node::Input::Byzantine(crate::node::ByzantineInput::EquivocateVotes(p)),
            Ok(()),
        ) = (&r.input, &r.result)
        {
            self.vote_equivocated.insert(*p);
        }
        for e in &r.events {
            if let Event::ProposalOpened {
                proposal, action, ..
            } = e
            {
                self.priorities.insert(*proposal, priority(action));
            }
        }
        if !self.is_honest(r.node) {
            return;
        }
        let time_ms = r.time / crate::netem::MS;
        let node = r.node;
        let me = crate::sim::member_name(node);
        let mut found = Vec::new();
        let mut open = self.open_governance.remove(&node).unwrap_or_default();
        for e in &r.events {
            match e {
                Event::ProposalOpened {
                    proposal,
                    action,
                    creator,
                } => {
                    let p = priority(action);
                    if *creator == me {
                        if let Some((d, q)) = open.iter().find(|(_, q)| **q > p) {
                            found.push((
                                Invariant::Priority,
                                format!(
                                    "created {} (priority {p}) while {} (priority {q}) was open",
                                    hex::encode(&proposal.0[..8]),
                                    hex::encode(&d.0[..8])
                                ),
                            ));
                        }
                    }
                    if p > 1 {
                        open.insert(*proposal, p);
                    }
                }
                Event::ProposalDecided {
                    proposal,
                    action,
                    decision,
                } => {
                    open.remove(proposal);
                    let seen = self.decisions.entry(*proposal).or_default();
                    let conflict = seen
                        .iter()
                        .find(|(outcome, _, _)| *outcome != decision.outcome)
                        .copied();
                    if let Some((outcome, by, other)) = conflict {
                        if self.vote_equivocated.contains(proposal) {
                            self.equivocation_divergences += 1;
                        } else if by == DecidedBy::Early && decision.by == DecidedBy::Early {
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
                    if let (Outcome::Yes, Some(key)) = (decision.outcome, action_key(action)) {
                        self.approved
                            .entry(node)
                            .or_default()
                            .entry(key.clone())
                            .or_default()
                            .insert(*proposal);
                        self.approved_anywhere.insert(key);
                    }
                }
                Event::ProposalRevised {
                    proposal,
                    action,
                    decision,
                } => {
                    // The votes of a bundle replace this member's deadline decision (§4).
                    open.remove(proposal);
                    let seen = self.decisions.entry(*proposal).or_default();
                    seen.retain(|(_, _, n)| *n != node);
                    let exempt = self.vote_equivocated.contains(proposal);
                    if let Some((outcome, _, other)) = seen
                        .iter()
                        .find(|(o, by, _)| *by == DecidedBy::Early && *o != decision.outcome)
                        .filter(|_| !exempt)
                    {
                        found.push((
                            Invariant::ConsensusAgreement,
                            format!(
                                "proposal {} revised to {:?} here but finalized {:?} early by node {other}",
                                hex::encode(&proposal.0[..8]),
                                decision.outcome,
                                outcome
                            ),
                        ));
                    }
                    seen.push((decision.outcome, decision.by, node));
                    if let Some(key) = action_key(action) {
                        let mine = self.approved.entry(node).or_default();
                        if decision.outcome == Outcome::Yes {
                            mine.entry(key.clone()).or_default().insert(*proposal);
                            self.approved_anywhere.insert(key);
                        } else if let Some(by) = mine.get_mut(&key) {
                            if by.remove(proposal) {
                                self.overturned.insert(key.clone());
                            }
                            if by.is_empty() {
                                mine.remove(&key);
                            }
                        }
                    }
                }
                Event::EpochChanged {
                    epoch,
                    added,
                    removed,
                } => {
                    open.clear();
                    // What some honest member holds finalized YES counts: a member takes a
                    // commit's decisions on its quorum certificate (docs/protocol.md §9,
                    // "Certified commits"). A joiner takes approvals of epochs before it
                    // joined on the committer's word (welcome and pre-join evidence): what
                    // some member ever finalized counts.
                    let mut approved: BTreeSet<ActionKey> = self
                        .approved
                        .values()
                        .flat_map(|m| m.keys().cloned())
                        .collect();
                    if self.joiners.contains(&node) {
                        approved.extend(self.approved_anywhere.iter().cloned());
                    }
                    approved.extend(self.overturned.iter().cloned());
                    let beyond = self.beyond_fault_model(epoch.0);
                    let mut invalid = 0;
                    for m in added {
                        if !approved.contains(&(1, m.clone())) {
                            invalid += 1;
                            found.push((
                                Invariant::Validity,
                                format!(
                                    "epoch {} added {} without an approved add",
                                    epoch.0,
                                    crate::node::name(m)
                                ),
                            ));
                        }
                    }
                    for m in removed {
                        if !(2..=4).any(|k| approved.contains(&(k, m.clone()))) {
                            invalid += 1;
                            found.push((
                                Invariant::Validity,
                                format!(
                                    "epoch {} removed {} without an approved removal or leave",
                                    epoch.0,
                                    crate::node::name(m)
                                ),
                            ));
                        }
                    }
                    if beyond && invalid > 0 {
                        found.truncate(found.len() - invalid);
                        self.validity_beyond_fault_model += invalid as u64;
                    }
                    self.check_epoch(node, epoch.0, &mut found);
                }
                Event::Joined { epoch } => {
                    open.clear();
                    // A joiner takes the approvals its welcome carries on the committer's
                    // word (it has no votes of earlier epochs): what members finalized.
                    let carried = self
                        .approved_anywhere
                        .iter()
                        .map(|k| (k.clone(), BTreeSet::new()))
                        .collect();
                    self.approved.insert(node, carried);
                    self.joiners.insert(node);
                    self.check_epoch(node, epoch.0, &mut found);
                }
                _ => {}
            }
        }
        // What is open after the input, as the member itself says.
        let open: BTreeMap<ProposalDigest, u8> = r
            .open
            .iter()
            .filter_map(|d| self.priorities.get(d).map(|p| (*d, *p)))
            .filter(|(_, p)| *p > 1)
            .collect();
        self.open_governance.insert(node, open);
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
                        view: view.clone(),
                        node,
                    },
                );
            }
            Some(rec) => {
                let theirs = &rec.view;
                if theirs.authenticator != view.authenticator {
                    // The commit into this epoch was acknowledged by the previous epoch's
                    // roster; with a third of it Byzantine, BFT safety is not promised.
                    if self.beyond_fault_model(view.epoch) {
                        self.forks_beyond_fault_model += 1;
                        return;
                    }
                    found.push((
                        Invariant::NoFork,
                        format!(
                            "epoch {}: authenticator {} differs from node {}'s {}",
                            view.epoch,
                            hex::encode(&view.authenticator[..8.min(view.authenticator.len())]),
                            rec.node,
                            hex::encode(&theirs.authenticator[..8.min(theirs.authenticator.len())]),
                        ),
                    ));
                    return;
                }
                let mut differs = Vec::new();
                if theirs.roster != view.roster {
                    differs.push("roster");
                }
                if theirs.stewards != view.stewards || theirs.list_epoch != view.list_epoch {
                    differs.push("steward list");
                }
                if theirs.retry_round != view.retry_round {
                    differs.push("retry round");
                }
                if theirs.scores != view.scores {
                    differs.push("score table");
                }
                if !differs.is_empty() {
                    found.push((
                        Invariant::Agreement,
                        format!(
                            "epoch {}: {} differ from node {}'s",
                            view.epoch,
                            differs.join(", "),
                            rec.node
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Input;
    use crate::sim::member_name;
    use demls_consensus::{Decision, Tally};

    fn record(node: usize, events: Vec<Event>, open: Vec<ProposalDigest>) -> InputRecord {
        InputRecord {
            node,
            time: 1_000_000,
            input: Input::Tick,
            result: Ok(()),
            refusal: None,
            transmits: Vec::new(),
            events,
            digest: None,
            view: None,
            phase: None,
            epoch: Some(3),
            split: None,
            open,
        }
    }

    fn opened(d: u8, action: Action, creator: usize) -> Event {
        Event::ProposalOpened {
            proposal: ProposalDigest([d; 32]),
            action,
            creator: member_name(creator),
        }
    }

    fn decided(d: u8, action: Action, outcome: Outcome, by: DecidedBy) -> Event {
        Event::ProposalDecided {
            proposal: ProposalDigest([d; 32]),
            action,
            decision: Decision {
                outcome,
                tally: Tally {
                    electorate: 4,
                    yes: 3,
                    no: 0,
                },
                by,
            },
        }
    }

    fn invariants(c: &Checker) -> Vec<Invariant> {
        c.violations().iter().map(|v| v.invariant).collect()
    }

    /// A member may apply a commit on its quorum certificate: an approval another honest
    /// member finalized justifies the change; one only a Byzantine member reported does not.
    #[test]
    fn validity_accepts_an_approval_another_honest_member_finalized() {
        let run = |approver: usize| {
            let mut c = Checker::new([3].into_iter().collect());
            let add = Action::Add(member_name(9));
            c.observe(&record(
                approver,
                vec![decided(7, add, Outcome::Yes, DecidedBy::Early)],
                Vec::new(),
            ));
            c.observe(&record(
                1,
                vec![Event::EpochChanged {
                    epoch: demls_consensus::Epoch(4),
                    added: vec![member_name(9)],
                    removed: Vec::new(),
                }],
                Vec::new(),
            ));
            c
        };
        assert!(
            invariants(&run(2)).is_empty(),
            "approved at honest member 2"
        );
        assert_eq!(
            invariants(&run(3)),
            vec![Invariant::Validity],
            "only at Byzantine 3"
        );
    }

    /// Members acknowledged a removal on their deadline YES; the votes they had lacked came
    /// afterwards and overturned it (the deadline rule over the union), just before the
    /// commit was applied on its quorum certificate. The YES they held counts.
    #[test]
    fn validity_accepts_a_removal_whose_deadline_yes_was_overturned_after_it_was_acknowledged() {
        // Node 1 applies a commit removing member 6, after node 2's decisions `events`.
        let run = |events: Vec<Event>| {
            let mut c = Checker::new(BTreeSet::new());
            c.observe(&record(2, events, Vec::new()));
            c.observe(&record(
                1,
                vec![Event::EpochChanged {
                    epoch: demls_consensus::Epoch(4),
                    added: Vec::new(),
                    removed: vec![member_name(6)],
                }],
                Vec::new(),
            ));
            invariants(&c)
        };
        let remove = Action::Remove(member_name(6));
        let yes = decided(7, remove.clone(), Outcome::Yes, DecidedBy::Deadline);
        let overturned = Event::ProposalRevised {
            proposal: ProposalDigest([7; 32]),
            action: remove,
            decision: Decision {
                outcome: Outcome::No,
                tally: Tally {
                    electorate: 4,
                    yes: 1,
                    no: 3,
                },
                by: DecidedBy::Early,
            },
        };
        assert!(run(vec![yes.clone()]).is_empty());
        assert!(
            run(vec![yes, overturned]).is_empty(),
            "overturned after it was held"
        );
        assert_eq!(run(Vec::new()), vec![Invariant::Validity], "never approved");
    }

    #[test]
    fn an_unapproved_addition_is_a_violation_unless_a_third_of_the_acknowledgers_are_byzantine() {
        // Node 1 applies a commit into epoch 5 adding member 9, which nobody approved. The
        // acknowledging roster is epoch 4's, as some honest member saw it.
        let run = |byzantine: &[usize]| {
            let mut c = Checker::new(byzantine.iter().copied().collect());
            let mut seen = record(1, Vec::new(), Vec::new());
            seen.view = Some(View {
                epoch: 4,
                authenticator: vec![4],
                roster: [0, 1, 2].map(member_name).to_vec(),
                stewards: Vec::new(),
                list_epoch: 0,
                retry_round: 0,
                scores: Vec::new(),
            });
            c.observe(&seen);
            c.observe(&record(
                1,
                vec![Event::EpochChanged {
                    epoch: demls_consensus::Epoch(5),
                    added: vec![member_name(9)],
                    removed: Vec::new(),
                }],
                Vec::new(),
            ));
            c
        };
        let honest = run(&[]);
        assert_eq!(invariants(&honest), vec![Invariant::Validity]);
        assert_eq!(honest.validity_beyond_fault_model(), 0);
        let beyond = run(&[2]);
        assert!(beyond.violations().is_empty());
        assert_eq!(beyond.validity_beyond_fault_model(), 1);
    }

    #[test]
    fn creating_a_lower_priority_proposal_while_an_emergency_one_is_open_is_a_violation() {
        let ecp = Action::RemoveBelowThreshold(member_name(3));
        let add = Action::Add(member_name(9));
        // Node 1 sees node 2's emergency proposal; it stays open after the input.
        let mut c = Checker::default();
        c.observe(&record(
            1,
            vec![opened(1, ecp.clone(), 2)],
            vec![ProposalDigest([1; 32])],
        ));
        assert!(c.violations().is_empty());
        // A later input of node 1 creates an add: frozen, so a violation.
        c.observe(&record(1, vec![opened(2, add.clone(), 1)], vec![]));
        assert_eq!(invariants(&c), vec![Invariant::Priority]);

        // Once the emergency proposal is decided (in the same input), creating is fine.
        let mut c = Checker::default();
        c.observe(&record(
            1,
            vec![opened(1, ecp.clone(), 2)],
            vec![ProposalDigest([1; 32])],
        ));
        c.observe(&record(
            1,
            vec![
                decided(1, ecp.clone(), Outcome::Yes, DecidedBy::Early),
                opened(2, add.clone(), 1),
            ],
            vec![],
        ));
        assert!(c.violations().is_empty());

        // Someone else's proposal is not this member's creation; a Byzantine member's is not
        // checked at all.
        let mut c = Checker::new([4].into_iter().collect());
        c.observe(&record(
            1,
            vec![opened(1, ecp.clone(), 2)],
            vec![ProposalDigest([1; 32])],
        ));
        c.observe(&record(1, vec![opened(2, add.clone(), 3)], vec![]));
        c.observe(&record(
            4,
            vec![opened(1, ecp, 2)],
            vec![ProposalDigest([1; 32])],
        ));
        c.observe(&record(4, vec![opened(3, add, 4)], vec![]));
        assert!(c.violations().is_empty());
    }

    #[test]
    fn early_decisions_that_differ_break_consensus_agreement_unless_revised_from_a_deadline() {
        let add = Action::Add(member_name(9));
        let mut c = Checker::default();
        c.observe(&record(
            1,
            vec![decided(1, add.clone(), Outcome::Yes, DecidedBy::Early)],
            vec![],
        ));
        c.observe(&record(
            2,
            vec![decided(1, add.clone(), Outcome::No, DecidedBy::Deadline)],
            vec![],
        ));
        assert!(c.violations().is_empty());
        assert_eq!(c.deadline_divergences(), 1);
        // Node 2's deadline NO is revised to the final YES: consistent.
        c.observe(&record(
            2,
            vec![Event::ProposalRevised {
                proposal: ProposalDigest([1; 32]),
                action: add.clone(),
                decision: Decision {
                    outcome: Outcome::Yes,
                    tally: Tally {
                        electorate: 4,
                        yes: 3,
                        no: 0,
                    },
                    by: DecidedBy::Early,
                },
            }],
            vec![],
        ));
        assert!(c.violations().is_empty());
        c.observe(&record(
            3,
            vec![decided(1, add, Outcome::No, DecidedBy::Early)],
            vec![],
        ));
        assert_eq!(invariants(&c), vec![Invariant::ConsensusAgreement]);
    }
}
