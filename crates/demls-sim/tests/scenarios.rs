//! The conversation scenarios of the core issue, run on the simulator: groups built to 2, 3
//! and 10 members, removals, self-leaves, NO votes that block adds, silent voters under both
//! liveness settings, messages across epoch changes, and faults (loss, partitions, crashes,
//! skew). Every run checks the BRIEF §6 invariants after every step; a failure prints the
//! scenario JSON, which `demls-sim --scenario FILE` reproduces.

use demls_sim::scenario::{ByzantineMix, Crash, Link, Mode, Partition};
use demls_sim::{Options, Scenario, Sim, Summary};

/// A clean network: fixed latency, nothing lost, duplicated or reordered.
fn clean() -> Link {
    Link {
        latency_ms: 20,
        jitter_ms: 10,
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        ..Link::default()
    }
}

/// A scenario with no churn, no messages and a clean network.
fn quiet(members: usize, seed: u64) -> Scenario {
    let mut s = Scenario {
        seed,
        members,
        duration_ms: 10_000,
        ..Scenario::default()
    };
    s.network.link = clean();
    s.network.partitions.clear();
    s.faults.crashes.clear();
    s.faults.max_clock_skew_ms = 0;
    s.workload.churn_interval_ms = 0;
    s.workload.messages_per_minute = 0;
    s.workload.no_vote_probability = 0.0;
    s
}

fn run(s: &Scenario) -> Summary {
    let mut sim = Sim::new(
        s.clone(),
        Options {
            threads: 1,
            verbose: false,
        },
    )
    .unwrap();
    let summary = sim.run(|_| {});
    assert!(
        summary.violations.is_empty(),
        "violations {:#?}\nscenario: {}",
        summary.violations,
        s.to_json()
    );
    summary
}

#[test]
fn groups_are_built_to_2_3_and_10_members() {
    for n in [2, 3, 10] {
        let s = quiet(n, n as u64);
        let m = run(&s);
        assert_eq!(m.members, n, "scenario {}", s.to_json());
        assert_eq!(m.approved as usize, n - 1);
        assert_eq!(m.committed as usize, n - 1);
        assert!(m.bootstrap_epoch.is_some());
    }
}

#[test]
fn ten_members_join_in_one_batch() {
    let mut s = quiet(10, 7);
    s.config.max_open_proposals_per_member = 16;
    s.config.max_commit_batch = 16;
    let m = run(&s);
    assert_eq!(m.members, 10);
    // One wave of nine joiners: the creator alone approves them at once and one commit adds
    // them all.
    assert_eq!(m.bootstrap_epoch, Some(1));
}

#[test]
fn removals_and_self_leaves_commit() {
    let mut s = quiet(6, 11);
    s.duration_ms = 60_000;
    s.workload.churn_interval_ms = 5_000;
    s.workload.join_weight = 1;
    s.workload.leave_weight = 2;
    s.workload.remove_weight = 2;
    s.workload.min_members = 3;
    let m = run(&s);
    assert!(m.leaves > 0 && m.removals > 0, "{m:?}");
    assert_eq!(m.uncommitted, 0);
    assert!(m.committed > 5, "{m:?}");
}

#[test]
fn no_votes_block_adds() {
    let mut s = quiet(3, 5);
    s.duration_ms = 40_000;
    s.workload.churn_interval_ms = 8_000;
    s.workload.join_weight = 1;
    s.workload.leave_weight = 0;
    s.workload.remove_weight = 0;
    s.workload.no_vote_probability = 1.0;
    let m = run(&s);
    // The initial adds were approved by the creator alone; every later add met two NOs.
    assert!(m.rejected > 0, "{m:?}");
    assert_eq!(m.members, 3);
    assert_eq!(m.approved, 2);
}

#[test]
fn silent_voters_count_as_the_liveness_flag_says() {
    for silent_yes in [true, false] {
        let mut s = quiet(3, 9);
        s.duration_ms = 100_000;
        s.config.auto_vote_ms = None;
        s.config.silent_counts_as_yes = silent_yes;
        s.workload.churn_interval_ms = 20_000;
        s.workload.join_weight = 1;
        s.workload.leave_weight = 0;
        s.workload.remove_weight = 0;
        let m = run(&s);
        let later = m.proposals - 2; // proposals after the two initial adds
        assert!(later > 0);
        if silent_yes {
            assert_eq!(m.rejected, 0, "{m:?}");
            assert!(m.members > 3);
        } else {
            assert_eq!(m.rejected, later, "{m:?}");
            assert_eq!(m.members, 3);
        }
        // Decided at the deadline, not before (deadlines are whole Unix milliseconds after a
        // created-at truncated to the millisecond: up to 1 ms early on the virtual clock).
        assert!(
            m.commit_p50_ms + 1 >= s.config.voting_duration_ms || !silent_yes,
            "{m:?}"
        );
    }
}

#[test]
fn messages_flow_across_epoch_changes() {
    let mut s = quiet(5, 13);
    s.duration_ms = 60_000;
    s.workload.churn_interval_ms = 6_000;
    s.workload.messages_per_minute = 120;
    let m = run(&s);
    assert!(m.epochs >= 6, "{m:?}");
    assert!(m.messages_sent > 50);
    // Every message reaches every other member of its epoch; nothing is refused as garbage.
    assert!(m.messages_delivered >= m.messages_sent * 3, "{m:?}");
    assert!(!m.refusals.contains_key("undecodable"));
}

#[test]
fn loss_reordering_duplication_partition_crash_and_skew_still_converge() {
    let mut s = quiet(8, 21);
    s.duration_ms = 90_000;
    s.workload.churn_interval_ms = 7_000;
    s.workload.messages_per_minute = 60;
    s.network.link = Link {
        latency_ms: 30,
        jitter_ms: 80,
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        reorder_ms: 300,
        ..Link::default()
    };
    s.network.partitions.push(Partition {
        start_ms: 30_000,
        end_ms: 45_000,
        side: vec![2, 3, 4],
        one_way: false,
    });
    s.network.partitions.push(Partition {
        start_ms: 50_000,
        end_ms: 55_000,
        side: vec![5],
        one_way: true,
    });
    s.faults.crashes.push(Crash {
        member: 6,
        at_ms: 60_000,
        down_ms: 8_000,
    });
    s.faults.max_clock_skew_ms = 3_000;
    s.mode = Mode::Liveness;
    let m = run(&s);
    assert!(m.lost > 0 && m.duplicated > 0 && m.deferred > 0, "{m:?}");
    assert_eq!((m.crashes, m.restarts), (1, 1));
    assert_eq!(m.uncommitted, 0);
}

#[test]
fn safety_holds_when_losses_are_never_repaired() {
    let mut s = quiet(6, 33);
    s.mode = Mode::Safety;
    s.duration_ms = 60_000;
    s.workload.churn_interval_ms = 5_000;
    s.workload.messages_per_minute = 60;
    s.network.repair = false;
    s.network.link.loss = 0.1;
    s.network.random_partitions = 2;
    s.faults.random_crashes = 2;
    s.faults.random_silences = 2;
    let m = run(&s);
    assert!(m.dropped > 0, "{m:?}");
}

#[test]
fn liveness_without_repair_is_refused_with_a_reason() {
    let mut s = quiet(3, 1);
    s.network.repair = false;
    let e = Sim::new(
        s,
        Options {
            threads: 1,
            verbose: false,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("repair"), "{e}");
}

#[test]
fn generated_scenarios_keep_every_safety_invariant() {
    // Safety must hold under every fault the generator draws, permanent loss included.
    for case in 0..16 {
        let s = Scenario {
            mode: Mode::Safety,
            ..Scenario::generate(case)
        };
        run(&s);
    }
}

// ----- Byzantine members (multi-steward governance) -----

use demls_sim::scenario::ByzantineKind;

/// Seeds every Byzantine scenario runs with.
const BYZANTINE_SEEDS: [u64; 3] = [1, 2, 3];

/// Seven members on a clean network, churn every 4 s (joins, leaves, removals) and some
/// chat for 90 s; node 1 is Byzantine from the moment the group is complete; liveness mode
/// (the network heals at once, so every approved proposal must commit). The same scenario
/// is what `demls-sim measure` times (docs/performance.md).
fn byzantine(kind: ByzantineKind, seed: u64) -> Scenario {
    Scenario::byzantine_bench(Some(kind), seed)
}

/// Runs every seed's scenario, checks `expect` on each summary, and fails with every broken
/// invariant and expectation of every seed at once (with the scenario to reproduce it).
fn run_all(
    scenarios: Vec<Scenario>,
    expect: impl Fn(&Scenario, &Summary) -> Vec<String>,
) -> Vec<Summary> {
    let mut failures = Vec::new();
    let mut out = Vec::new();
    for s in scenarios {
        let mut sim = Sim::new(
            s.clone(),
            Options {
                threads: 1,
                verbose: false,
            },
        )
        .unwrap();
        let m = sim.run(|_| {});
        let mut problems: Vec<String> = m
            .violations
            .iter()
            .map(|v| {
                format!(
                    "{:?} at {} ms node {:?}: {}",
                    v.invariant, v.time_ms, v.node, v.detail
                )
            })
            .collect();
        problems.extend(expect(&s, &m));
        if !problems.is_empty() {
            failures.push(format!(
                "seed {}:\n  {}\n  byzantine: {:?}\n  scenario: {}",
                s.seed,
                problems.join("\n  "),
                m.byzantine,
                s.to_json()
            ));
        }
        out.push(m);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    out
}

fn check(problems: &mut Vec<String>, ok: bool, what: impl Into<String>) {
    if !ok {
        problems.push(what.into());
    }
}

fn reported(m: &Summary, kind: &str) -> u64 {
    m.byzantine[0].reported.get(kind).copied().unwrap_or(0)
}

fn layer(m: &Summary, name: &str) -> u64 {
    m.resolution.get(name).map_or(0, |l| l.count)
}

#[test]
fn a_silent_steward_is_walked_past_penalised_and_removed() {
    let runs = run_all(
        BYZANTINE_SEEDS
            .map(|seed| byzantine(ByzantineKind::SilentSteward, seed))
            .to_vec(),
        |_, m| {
            let mut p = Vec::new();
            let b = &m.byzantine[0];
            check(&mut p, b.active_ms.is_some(), "never became Byzantine");
            check(
                &mut p,
                reported(m, "Inactivity") >= 1,
                "no Inactivity reported against it",
            );
            check(
                &mut p,
                layer(m, "layer1_rotation") >= 1,
                "no commit after walking past it",
            );
            check(
                &mut p,
                m.uncommitted == 0 && m.committed >= 10,
                format!("commits: {m:?}"),
            );
            check(
                &mut p,
                b.removed_ms.is_some() || b.final_score.is_some_and(|s| s < 100),
                "neither removed nor penalised",
            );
            p
        },
    );
    // Its failures accumulate: in at least one run its score reaches the threshold and the
    // group removes it (the workload never removes a Byzantine member, only a
    // RemoveBelowThreshold emergency proposal can).
    assert!(
        runs.iter().any(|m| m.byzantine[0].removed_ms.is_some()),
        "{:?}",
        runs.iter().map(|m| &m.byzantine).collect::<Vec<_>>()
    );
}

#[test]
fn a_censoring_stewards_victim_is_still_committed_by_the_rotation() {
    let runs = run_all(
        BYZANTINE_SEEDS
            .map(|seed| byzantine(ByzantineKind::CensoringSteward, seed))
            .to_vec(),
        |_, m| {
            let mut p = Vec::new();
            // The censor leaves out the next joiner's add (and then the next one's); every
            // approved proposal still commits, in a later epoch by another steward.
            check(
                &mut p,
                m.uncommitted == 0,
                "an approved proposal was never committed",
            );
            check(&mut p, m.joins_started > 7, "no joiner to censor");
            p
        },
    );
    // Members see its shorter commits: at least one run reports it for censorship.
    assert!(
        runs.iter().any(|m| reported(m, "Censorship") >= 1),
        "{:?}",
        runs.iter().map(|m| &m.byzantine).collect::<Vec<_>>()
    );
}

/// What an equivocating steward's run must show: it equivocated, was caught, and the
/// approved proposals were committed.
fn equivocation_was_caught_and_commits_landed(m: &Summary) -> Vec<String> {
    let mut p = Vec::new();
    check(&mut p, m.byzantine[0].attempts >= 1, "never equivocated");
    check(
        &mut p,
        reported(m, "Equivocation") >= 1,
        "no Equivocation reported",
    );
    check(
        &mut p,
        m.uncommitted == 0 && m.committed >= 5,
        format!("commits: {m:?}"),
    );
    p
}

#[test]
fn an_equivocating_steward_is_walked_past_when_gossip_heals_the_split() {
    // Gossip relays each half's commit to the other half after 500 ms. Seeds 17 and 19
    // stalled while members abstained from a round as soon as their candidate window closed:
    // the next steward's candidate came later, was acknowledged by some only, died with the
    // round and was never acknowledged again (docs/protocol.md §9, "Abstaining").
    let scenarios = [1, 2, 3, 17, 19]
        .map(|seed| byzantine(ByzantineKind::EquivocatingSteward, seed))
        .to_vec();
    run_all(scenarios, |_, m| {
        equivocation_was_caught_and_commits_landed(m)
    });
}

#[test]
#[ignore = "open: without relays (each half keeps its own commit) some seeds stall (finding F15); no fork. Multi-steward governance is experimental (docs/protocol.md §9)"]
fn an_equivocating_steward_never_forks_the_group() {
    // With and without relays of the two halves' commits (gossip heals the split after
    // 500 ms, or never): no fork (the checker), the equivocation is reported, commits land.
    let mut scenarios = Vec::new();
    for seed in BYZANTINE_SEEDS {
        let s = byzantine(ByzantineKind::EquivocatingSteward, seed);
        let mut split = s.clone();
        split.network.relay_split_ms = None;
        scenarios.push(s);
        scenarios.push(split);
    }
    run_all(scenarios, |_, m| {
        equivocation_was_caught_and_commits_landed(m)
    });
}

#[test]
fn a_commit_of_an_undecided_proposal_is_refused_and_a_backup_commits() {
    run_all(
        BYZANTINE_SEEDS
            .map(|seed| byzantine(ByzantineKind::NonfinalizedCommit, seed))
            .to_vec(),
        |_, m| {
            let mut p = Vec::new();
            let b = &m.byzantine[0];
            check(
                &mut p,
                b.attempts >= 1,
                "never committed an undecided proposal",
            );
            check(
                &mut p,
                reported(m, "NonFinalized") + reported(m, "BrokenCommit") >= 1,
                "no NonFinalized/BrokenCommit reported",
            );
            // Its own removal proposals were voted down and never applied (a removal without
            // an approval would break Validity).
            check(
                &mut p,
                m.rejected >= 1,
                "its undecided proposal was not rejected",
            );
            check(
                &mut p,
                m.uncommitted == 0 && m.committed >= 10,
                format!("commits: {m:?}"),
            );
            p
        },
    );
}

#[test]
fn a_proposal_spammer_hits_the_rate_limits_and_honest_proposals_still_commit() {
    run_all(
        BYZANTINE_SEEDS
            .map(|seed| byzantine(ByzantineKind::ProposalSpammer, seed))
            .to_vec(),
        |s, m| {
            let mut p = Vec::new();
            let b = &m.byzantine[0];
            let accepted = b.attempts - b.refused;
            check(&mut p, b.attempts >= 100, "too few spam attempts");
            check(&mut p, b.refused >= 1, "its core never refused a proposal");
            // Its core opens at most the per-epoch limit per epoch.
            let limit = s.config.max_proposals_per_member_per_epoch as u64 * (m.epochs + 1);
            check(
                &mut p,
                accepted <= limit,
                format!("{accepted} accepted > {limit}"),
            );
            check(
                &mut p,
                m.rejected >= accepted.min(10),
                "spam was not voted down",
            );
            check(
                &mut p,
                m.uncommitted == 0 && m.committed >= 10,
                format!("commits: {m:?}"),
            );
            // Honest members vote every spam removal down: none may pass.
            check(
                &mut p,
                b.approved_proposals == 0,
                format!("{} spam proposals approved", b.approved_proposals),
            );
            p
        },
    );
}

#[test]
fn a_vote_equivocator_is_detected_and_decisions_agree() {
    run_all(
        BYZANTINE_SEEDS
            .map(|seed| byzantine(ByzantineKind::VoteEquivocator, seed))
            .to_vec(),
        |_, m| {
            // Consensus agreement is the checker's; here: its split votes were seen (relays
            // bring each half the other half's vote) and nothing stalled.
            let mut p = Vec::new();
            check(
                &mut p,
                m.byzantine[0].attempts >= 5,
                "too few proposals to equivocate on",
            );
            check(
                &mut p,
                m.vote_equivocations >= 1,
                "no equivocation detected",
            );
            check(
                &mut p,
                m.uncommitted == 0 && m.committed >= 10,
                format!("commits: {m:?}"),
            );
            p
        },
    );
}

#[test]
fn the_byzantine_mix_keeps_every_safety_invariant() {
    // Generated cases with Byzantine members of every kind, faults everywhere.
    let mut scenarios = Vec::new();
    for case in 0..12 {
        let s = Scenario::generate_mixed(case, demls_sim::scenario::ByzantineMix::Any);
        assert!(!s.byzantine.is_empty());
        scenarios.push(Scenario {
            mode: Mode::Safety,
            ..s
        });
    }
    run_all(scenarios, |_, _| Vec::new());
}

#[test]
fn swarm_cases_that_forked_keep_every_safety_invariant() {
    // `swarm --mode safety --byzantine any` (seeds 3 and 5): an equivocating committer's
    // second commit made some members discount its acknowledgement of the first one and
    // abandon the round, while a member that never saw the second one applied the first
    // with that acknowledgement in its quorum (NoFork).
    let scenarios = [107_752_819_305_908, 280_926_433_361_654]
        .into_iter()
        .map(|case| Scenario {
            mode: Mode::Safety,
            ..Scenario::generate_mixed(case, demls_sim::scenario::ByzantineMix::Any)
        })
        .collect();
    run_all(scenarios, |_, _| Vec::new());
}

/// Runs swarm case `case` (drawn Byzantine mix) as `demls-sim --generated CASE --mode
/// liveness` does: healed at the end of the workload, with repair.
fn run_generated_liveness(case: u64) -> Summary {
    run_generated_liveness_mixed(case, ByzantineMix::Drawn)
}

fn run_generated_liveness_mixed(case: u64, mix: ByzantineMix) -> Summary {
    let mut s = Scenario::generate_mixed(case, mix);
    s.mode = Mode::Liveness;
    s.network.repair = true;
    run(&s)
}

#[test]
fn a_member_that_missed_a_rounds_acknowledgements_follows_the_others_to_the_next() {
    // An equivocating committer split round 0; the members that saw it dead moved to round
    // 1, and one that had missed an acknowledgement of round 0 waited for it for ever — its
    // sender had moved on. ⌈n/3⌉ members acknowledging in later rounds now take it along
    // (`demls-sim --generated 190550702457759 --mode liveness`; `run` fails on any
    // violation).
    run_generated_liveness(190_550_702_457_759);
}

#[test]
fn a_byzantine_voters_no_does_not_hide_an_honest_approval_and_its_commit() {
    // The equivocating steward decided a member's leave NO (its own view) before any honest
    // member decided it YES; the run took the Byzantine NO for the proposal's decision,
    // never recorded the honest commit of the leave, and reported it as never committed
    // (`demls-sim --generated 103641623726844 --mode liveness --byzantine-mix any`; `run`
    // fails on any violation).
    let m = run_generated_liveness_mixed(103_641_623_726_844, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_long_split_epoch_does_not_run_out_of_acknowledgements() {
    // An equivocating steward split one epoch's acknowledgement rounds again and again; a
    // cap of 16 acknowledgements per member and epoch ran out, thousands were refused and no
    // candidate reached the quorum after (`demls-sim --generated 19098570801708 --mode
    // liveness`). The cap is per round now; `run` fails on any violation.
    let m = run_generated_liveness(19_098_570_801_708);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn joiners_do_not_wait_for_each_others_vouchers_for_good() {
    // Three joiners held a decision on another member's word, and a Byzantine member's
    // candidate applying it was the best by the rule: each waited for vouchers that only the
    // other two could give (`demls-sim --generated 152089098803950 --mode liveness`). A
    // member waits a candidate window for vouchers now; `run` fails on any violation.
    let m = run_generated_liveness(152_089_098_803_950);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_steward_that_opened_an_election_waits_for_it_before_it_commits() {
    // A steward committed the moment it opened the election its decision called for; the
    // elected list's steward then built a candidate applying the election too, the two split
    // the round, and with the Byzantine member silent it never died (`demls-sim --generated
    // 44960331793281 --mode liveness --byzantine-mix any`; `run` fails on any violation).
    let m = run_generated_liveness_mixed(44_960_331_793_281, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_stranded_removal_is_proposed_again_after_commits_that_removed_others() {
    // A removal its creator alone decided, behind a partition, waited for a commit that
    // removed nobody; every later commit removed someone, until its creator was removed too
    // (`demls-sim --generated 161107420471090 --mode liveness --byzantine-mix any`; `run`
    // fails on any violation).
    let m = run_generated_liveness_mixed(161_107_420_471_090, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_deadline_yes_against_an_early_no_is_owed_no_commit() {
    // A steward that missed the NO votes on a spammer's removal decided it YES at its
    // deadline, while the others had finalized it NO early — a final decision (§4). Its YES
    // is a deadline divergence, not an approval the group owes a commit (`demls-sim
    // --generated 43718984410706 --mode liveness`).
    let m = run_generated_liveness(43_718_984_410_706);
    assert!(m.deadline_divergences > 0, "{m:?}");
}

#[test]
fn liveness_is_not_owed_when_a_byzantine_committer_withheld_a_welcome() {
    // An equivocating steward's commit added a node and its Welcome — which only the
    // committer can send — never came: the node stays in the roster, never a member, and
    // with the Byzantine member the group has fewer than 2n/3 honest members that are
    // connected (BRIEF §6.6's premise). Counted beyond the fault model (`demls-sim
    // --generated 118053396795876 --mode liveness`).
    let m = run_generated_liveness(118_053_396_795_876);
    assert!(m.liveness_beyond_fault_model > 0, "{m:?}");
}

#[test]
fn a_member_left_alone_commits_the_approvals_its_welcome_carried() {
    // A joiner holds its Welcome's carried approvals on the committer's word until ⌈n/3⌉
    // other members vouch for them ("Joiners"). Churn left this one alone in the group with
    // a carried add: nobody could vouch, and it elected itself every epoch for minutes.
    // Alone, the decisions become its own (`demls-sim --generated 16252718331880 --mode
    // liveness`; `run` fails on any violation).
    run_generated_liveness(16_252_718_331_880);
}

#[test]
fn a_deadline_yes_against_honest_deadline_nos_is_owed_no_commit() {
    // Votes lost past the deadline split the honest members' deadline decisions: some YES,
    // some NO, nobody honest final either way. Neither side can justify the other's
    // commit; the YES is a divergence, not an approval the group owes a commit (`demls-sim
    // --generated 107809773561118 --mode liveness`: four such proposals).
    let m = run_generated_liveness(107_809_773_561_118);
    assert!(m.deadline_divergences > 0, "{m:?}");
}

#[test]
fn a_member_that_finalized_no_early_is_not_owed_the_commit_of_the_deadline_yes() {
    // The other side of the same divergence: the single steward decided an add YES at its
    // deadline (it missed a NO vote) and committed it; a member that had finalized it NO
    // early can never justify that commit and stays in the old epoch. The voting rules'
    // divergence, counted apart, not a failure of catch-up (`demls-sim --generated
    // 79274176227091 --mode liveness`).
    let m = run_generated_liveness(79_274_176_227_091);
    assert!(m.liveness_diverged > 0, "{m:?}");
}

#[test]
fn members_that_decided_a_proposal_differently_at_their_deadlines_swap_their_votes() {
    // Three members decided two proposals YES at their deadlines, two decided them NO over
    // other votes, and no set of the votes settled them early: each side acknowledged the
    // candidate its decisions justified, and the round died 3 against 2 for 185 rounds. Now
    // a member holding a commit that applies a proposal it decided otherwise, or whose round
    // died while a candidate omits an approval, sends its votes, and the deadline decision
    // follows the union (`demls-sim --generated 123474317621230 --mode liveness
    // --byzantine-mix any`; `run` fails on any violation).
    let m = run_generated_liveness_mixed(123_474_317_621_230, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn members_that_can_justify_several_candidates_move_to_the_one_the_others_can() {
    // A vote equivocator's two votes, each counted first by some members, made a removal
    // pass at three members and fail at two — for good, whatever votes they swap. The two
    // could justify one candidate, the three both, and by the rule they kept the longer one:
    // 560 dead rounds. From the third round a member draws among the candidates acknowledged
    // in the previous round; the removal itself is owed no commit (§5: the honest members
    // decided it differently for good) (`demls-sim --generated 187052145917356 --mode
    // liveness --byzantine-mix any`; `run` fails on any violation).
    let m = run_generated_liveness_mixed(187_052_145_917_356, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn in_recovery_mode_members_pending_removal_commit_after_the_others() {
    // A proposal spammer got removals of every other member approved and spent its own
    // candidate on a proposal nobody finalized; leaving the members pending removal out of
    // the recovery walk left nobody to commit (`demls-sim --generated 203880134173336 --mode
    // liveness --byzantine-mix any`; `run` fails on any violation).
    let m = run_generated_liveness_mixed(203_880_134_173_336, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn an_add_every_member_holds_on_another_members_word_is_proposed_afresh() {
    // The members that finalized two adds all left; every member still in held them on a
    // welcome's word, so nobody could vouch for them, commit them or propose them again,
    // while the joiners kept announcing their key packages. After three epoch changes such an
    // add no longer stops a fresh one, which the members decide themselves
    // (`demls-sim --generated 231264174667344 --mode liveness --byzantine-mix any`; `run`
    // fails on any violation).
    let m = run_generated_liveness_mixed(231_264_174_667_344, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn liveness_is_not_owed_to_a_group_that_ended_exactly_a_third_byzantine() {
    // Three members at the end, one of them a silent equivocating steward: the two honest
    // members each acknowledged their own candidate and the round can neither win nor die.
    // f < n/3 is the fault model (the acknowledgement quorums' intersection needs it), so a
    // group that ends a third Byzantine is counted beyond it, as forks are (`demls-sim
    // --generated 23457282764417 --mode liveness --byzantine-mix any`).
    let m = run_generated_liveness_mixed(23_457_282_764_417, ByzantineMix::Any);
    assert!(m.liveness_beyond_fault_model > 0, "{m:?}");
}

#[test]
fn a_member_that_leaves_a_round_without_acknowledging_abstains_in_it() {
    // An equivocating committer acknowledged both its commits, so one member saw round 0
    // dead and moved on while the other three saw it alive and waited for that member's
    // acknowledgement in it for good. Leaving a round it never acknowledged in, a member now
    // abstains in it (`demls-sim --generated 69461817466075 --mode liveness --byzantine-mix
    // any`; `run` fails on any violation).
    let m = run_generated_liveness_mixed(69_461_817_466_075, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_deadline_no_of_a_past_epoch_is_revised_by_the_evidence_of_the_commit_that_applies_it() {
    // A member whose clock ran ahead decided two adds NO at its deadline, alone; the others
    // decided them YES early, after the next commit was built. Past that commit the member
    // had forgotten the adds' actions, so the evidence of the commit that applied them
    // revised its decisions unheard: it never justified that commit and stayed an epoch
    // behind (`demls-sim --generated 16370222585020 --mode liveness`; `run` fails on any
    // violation).
    let m = run_generated_liveness(16_370_222_585_020);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_leaver_the_group_forgot_leaves_again_after_a_failed_deadlock_proposal() {
    // The members that decided a steward's leave had all left but one; the members that
    // joined since never heard of it, the leaver may not commit it, and the one that held it
    // opened a deadlock proposal the others voted down. The leaver then opens its leave
    // again (`demls-sim --generated 196138652130102 --mode liveness`; `run` fails on any
    // violation).
    let m = run_generated_liveness(196_138_652_130_102);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_removal_whose_only_approver_was_removed_is_owed_no_commit() {
    // A removal proposed into a partition, decided YES by its creator alone at its deadline;
    // the creator crashed and was removed before it could open it again. Nobody left holds
    // the approval: counted apart, not a liveness failure (`demls-sim --generated
    // 137028445259228 --mode liveness --byzantine-mix any`).
    let m = run_generated_liveness_mixed(137_028_445_259_228, ByzantineMix::Any);
    assert!(m.liveness_approvers_gone > 0, "{m:?}");
}

#[test]
fn liveness_is_not_owed_after_a_fork_beyond_the_fault_model() {
    // The group shrank to three members, one an equivocating steward, and forked there (a
    // third of the acknowledging roster Byzantine: outside the fault model); it grew back
    // to five, but the branches never meet again (`demls-sim --generated 50761000150936
    // --mode liveness --byzantine-mix any`).
    let m = run_generated_liveness_mixed(50_761_000_150_936, ByzantineMix::Any);
    assert!(m.forks_beyond_fault_model > 0, "{m:?}");
    assert!(m.liveness_beyond_fault_model > 0, "{m:?}");
}

#[test]
fn a_split_round_a_byzantine_member_keeps_alive_is_left_under_a_lock() {
    // Four members, three honest ones each leaving, in recovery; the Byzantine one stuck in
    // an older epoch never acknowledges. Two honest members acknowledged one candidate and
    // the third its own: the round never died. At the escalation they move on, the two
    // locked on theirs, and the third follows the rule (`demls-sim --generated
    // 184584897013581 --mode liveness --byzantine-mix any`; `run` fails on any violation).
    let m = run_generated_liveness_mixed(184_584_897_013_581, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_lock_is_released_once_the_others_moved_to_another_candidate() {
    // An equivocating steward's two commits split round 0; two honest members that never
    // received one acknowledgement of it were locked on the equivocator's candidate and
    // abstained round after round, the three others short of the quorum of four. Members
    // that acknowledged another candidate since did not acknowledge it (beyond the Byzantine
    // members among them): the lock releases (`demls-sim --generated 44960331793281 --mode
    // liveness --byzantine-mix any`; `run` fails on any violation).
    let m = run_generated_liveness_mixed(44_960_331_793_281, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_locked_member_asks_for_the_acknowledgements_of_its_lock_round() {
    // Six members split three against three for 400 rounds: one side locked by round 0,
    // whose abstention from one member it never received (acknowledgements are resent for
    // the last two rounds only). At the escalation it sends its round-0 acknowledgement
    // again and the others answer with theirs (`demls-sim --generated 104914458468530
    // --mode liveness --byzantine-mix any`; `run` fails on any violation).
    let m = run_generated_liveness_mixed(104_914_458_468_530, ByzantineMix::Any);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn two_members_that_acknowledged_different_candidates_draw_the_same_one() {
    // Two members, each having acknowledged its own candidate: drawing among the candidates
    // the *other* had acknowledged made them swap, round after round, for ten rounds. The
    // draw counts every acknowledgement of the previous round (`demls-sim --generated
    // 279280825942770 --mode liveness`; `run` fails on any violation).
    let m = run_generated_liveness(279_280_825_942_770);
    assert!(m.committed > 0, "{m:?}");
}

#[test]
fn a_leave_opened_again_every_epoch_does_not_push_the_stop_out_for_ever() {
    // Two members, the only steward Byzantine and censoring the other, which opens its leave
    // again after every commit: counted once per change, the approvals no longer push the
    // run's hard stop out by a round each epoch (it ran 800 epochs and more). The group ends
    // half Byzantine: beyond the fault model (`demls-sim --generated 216064371096548 --mode
    // liveness --byzantine-mix any`).
    let m = run_generated_liveness_mixed(216_064_371_096_548, ByzantineMix::Any);
    assert!(m.liveness_beyond_fault_model > 0, "{m:?}");
    assert!(m.epochs < 200, "{m:?}");
}
