//! Multi-steward governance on the in-process network (docs/protocol.md §9): elections follow
//! the rule and are checked by everyone, the rotation walks past silent and equivocating
//! stewards, a commit of a non-finalized proposal is never applied, scores are agreed and
//! lead to removal, re-election and recovery take over when the rotation fails, and the
//! partial freeze holds while an emergency proposal is open.
//!
//! Requires the `test-utils` feature of demls-core (the misbehaving members).

mod support;

use std::time::Duration;

use demls::consensus::{Choice, MemberId};
use demls::core::{
    election_key, Action, Byzantine, Channel, Error, Event, Phase, TrafficClass, ViolationKind,
};
use support::net::{multi_steward_network as network, name, Net, Record};

#[test]
fn elections_follow_the_rule_and_the_rotation_follows_the_list() {
    let net = network(301, 5, |_| {});
    let m = &net.members[0];
    let state = m.group_state().unwrap();
    // The creator's single-entry list was replaced by an elected one.
    assert!(net
        .events(0)
        .iter()
        .any(|e| matches!(e, Event::StewardsChanged { .. })));
    assert!(state.stewards.len() >= 3 && state.stewards.len() <= 5);
    // Sorted ascending by SHA256(epoch || retry_round || member || group) of the election's
    // epoch (the one before the list took effect).
    let keys: Vec<[u8; 32]> = state
        .stewards
        .iter()
        .map(|s| {
            election_key(
                state.list_epoch - 1,
                state.retry_round,
                s,
                m.id().as_bytes(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "list out of order");
    // The epoch steward is the list entry of the epoch, the backup the next one.
    let epoch = m.epoch().unwrap().0;
    let len = state.stewards.len() as u64;
    let i = ((epoch - state.list_epoch) % len) as usize;
    assert_eq!(m.rotation()[0], state.stewards[i]);
    assert_eq!(m.rotation()[1], state.stewards[(i + 1) % len as usize]);
}

#[test]
fn an_election_that_breaks_the_rule_is_refused_by_every_member() {
    let mut net = network(302, 4, |_| {});
    let roster = net.members[0].roster();
    let mut list = roster.clone();
    list.truncate(3);
    // Sorted by member id, not by the rule (a different order with overwhelming
    // probability; make sure).
    let epoch = net.members[0].epoch().unwrap().0;
    let rule = demls::core::election_order(epoch, 0, net.members[0].id().as_bytes(), &roster);
    if rule[..3] == list[..] {
        list.swap(0, 1);
    }
    let now = net.now;
    net.members[1]
        .test_propose_election_unchecked(now, 0, list)
        .unwrap();
    let packets: Vec<Vec<u8>> = std::iter::from_fn(|| net.members[1].poll_transmit())
        .map(|t| t.payload)
        .collect();
    for to in [0, 2, 3] {
        for p in &packets {
            let before = net.members[to].state_digest();
            let err = net.inject(to, p).expect_err("refused");
            assert!(
                matches!(err, Error::InvalidProposal(_)),
                "member {to}: {err:?}"
            );
            assert_eq!(net.members[to].state_digest(), before);
        }
    }
}

#[test]
fn a_silent_epoch_steward_is_walked_past_and_loses_score() {
    let mut net = network(303, 5, |_| {});
    let rotation = net.members[0].rotation();
    let silent = net.index_of(&rotation[0]);
    net.members[silent].test_set_byzantine(Byzantine {
        silent: true,
        censor: None,
    });
    let j = net.join();
    net.run();
    assert_eq!(
        net.members[j].phase(),
        Phase::Member,
        "the backup admitted the joiner"
    );
    net.assert_agreement();
    let honest = (0..net.members.len())
        .find(|&i| i != silent && i != j)
        .unwrap();
    let state = net.members[honest].group_state().unwrap();
    assert_eq!(
        state.score(&rotation[0]),
        state.config.default_peer_score - state.config.slot_failure_penalty,
        "the skipped steward's agreed score"
    );
    assert!(net
        .violations(honest, ViolationKind::Inactivity)
        .contains(&rotation[0]));
}

#[test]
fn a_steward_below_the_threshold_is_removed_by_an_emergency_proposal() {
    let mut net = network(304, 5, |c| c.governance.slot_failure_penalty = 60);
    let rotation = net.members[0].rotation();
    let silent = net.index_of(&rotation[0]);
    net.members[silent].test_set_byzantine(Byzantine {
        silent: true,
        censor: None,
    });
    net.join();
    net.run();
    // One failed slot took it to 40 = the threshold: an emergency proposal removed it.
    let honest = (0..5).find(|&i| i != silent).unwrap();
    assert!(net.events(honest).iter().any(|e| matches!(e,
        Event::ProposalOpened { action: Action::RemoveBelowThreshold(m), .. } if *m == rotation[0])));
    assert!(!net.members[honest].roster().contains(&rotation[0]));
    assert_eq!(net.members[silent].phase(), Phase::Closed);
    net.assert_agreement();
}

#[test]
fn equivocating_commits_never_fork_the_honest_members() {
    // Everyone votes YES on an add; the equivocator then sends one commit to two members and
    // another to the other two.
    let (mut net, s, j) = equivocated_add(305);
    net.run();
    assert_eq!(
        net.members[j].phase(),
        Phase::Member,
        "a backup admitted the joiner"
    );
    // The acknowledgements revealed the other commit: the equivocation was caught.
    let offender = net.members[s].member_id().clone();
    let caught = (0..5)
        .filter(|&i| i != s)
        .filter(|&i| {
            net.violations(i, ViolationKind::Equivocation)
                .contains(&offender)
        })
        .count();
    assert!(caught >= 2, "equivocation reported by {caught} members");
    // The honest members (the equivocator may sit on its own branch) agree.
    let honest: Vec<usize> = (0..net.members.len()).filter(|&i| i != s).collect();
    let first_auth = net.members[honest[0]].epoch_authenticator();
    for &i in &honest {
        assert_eq!(
            net.members[i].epoch_authenticator(),
            first_auth,
            "member {i}"
        );
        assert_eq!(
            net.members[i].group_state(),
            net.members[honest[0]].group_state()
        );
    }
}

#[test]
fn a_commit_of_a_non_finalized_proposal_is_never_applied() {
    let mut net = network(306, 4, |c| c.auto_vote = None);
    let target = name(3);
    let now = net.now;
    let d = net.members[1].propose_remove(now, &target).unwrap();
    net.drain(1);
    net.run_for(Duration::from_millis(200));
    let epoch = net.members[0].epoch();
    // A member commits the open removal as if it were finalized.
    let now = net.now;
    net.members[2].test_commit_batch(now, &[d]).unwrap();
    net.drain(2);
    net.run_for(Duration::from_secs(5));
    for i in [0, 1, 3] {
        assert_eq!(net.members[i].epoch(), epoch, "member {i} applied it");
        assert!(net.members[i].roster().contains(&target));
    }
    // The others vote NO: the proposal is rejected, and the commit never becomes valid.
    for i in [0, 3] {
        let now = net.now;
        net.members[i].vote(now, d, Choice::No).unwrap();
        net.drain(i);
    }
    // And the group goes quiet: the committer's candidate, which nobody else can justify,
    // once drove a new dead acknowledgement round every candidate window for good, every
    // member abstaining in each (`MAX_IDLE_ABSTENTIONS`).
    let mut steps = 0;
    while net.step() {
        steps += 1;
        assert!(steps < 1_000, "the group never goes quiet");
    }
    for i in [0, 1, 3] {
        assert_eq!(net.members[i].epoch(), epoch, "member {i} applied it");
    }
}

#[test]
fn the_partial_freeze_blocks_lower_priority_proposals_while_an_emergency_is_open() {
    let mut net = network(307, 4, |_| {});
    let now = net.now;
    net.members[1].propose_deadlock(now).unwrap();
    let packets: Vec<Vec<u8>> = std::iter::from_fn(|| net.members[1].poll_transmit())
        .map(|t| t.payload)
        .collect();
    // The creator itself creates nothing of lower priority meanwhile.
    let now = net.now;
    assert_eq!(
        net.members[1].propose_remove(now, &name(2)),
        Err(Error::Frozen)
    );
    assert_eq!(
        net.members[1].propose_steward_election(now),
        Err(Error::Frozen)
    );
    // Member 2 hears the emergency proposal, then a commit proposal: held back — neither
    // opened, nor voted on, nor forwarded while the emergency is open.
    for p in &packets {
        net.inject(2, p).unwrap();
    }
    while net.members[2].poll_transmit().is_some() {} // its vote on the emergency
    let removal = net.members[3].propose_remove(now, &name(1)).unwrap();
    let proposal: Vec<Vec<u8>> = std::iter::from_fn(|| net.members[3].poll_transmit())
        .map(|t| t.payload)
        .collect();
    // Member 0, not frozen, hears it and votes: its creator is not alone with it (else it
    // would propose it again after the emergency's commit passed it by).
    net.inject(0, &proposal[0]).unwrap();
    net.inject(2, &proposal[0]).unwrap();
    assert!(
        net.members[2].poll_transmit().is_none(),
        "frozen traffic went out"
    );
    assert!(!net.members[2].test_open_proposals().contains(&removal));
    assert!(!net.events(2).iter().any(|e| matches!(e,
        Event::ProposalOpened { proposal, .. } if *proposal == removal)));
    // Application messages continue.
    net.members[2].send_message(now, b"still talking").unwrap();
    net.drain(2);
    net.run_for(Duration::from_millis(100));
    assert!(net.events(0).iter().any(|e| matches!(e,
        Event::Message { body, .. } if body == b"still talking")));
    // Once the emergency is finalized the held proposal is processed, so member 2 holds the
    // same proposals as the members that heard it before the emergency (arrival order does
    // not decide what a member may vote on).
    net.run();
    assert!(net.events(2).iter().any(|e| matches!(e,
        Event::ProposalOpened { proposal, .. } if *proposal == removal)));
}

#[test]
fn silent_stewards_lead_to_recovery_where_any_member_commits() {
    // No re-election: a failed rotation goes straight to the deadlock proposal (Layer 3).
    let mut net = network(308, 6, |c| {
        c.governance.max_reelection_attempts = 0;
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
    });
    let stewards = net.members[0].stewards().to_vec();
    for s in &stewards {
        let i = net.index_of(s);
        net.members[i].test_set_byzantine(Byzantine {
            silent: true,
            censor: None,
        });
    }
    let honest = (0..6)
        .find(|&i| !stewards.contains(net.members[i].member_id()))
        .unwrap();
    let j = net.join();
    // The add is approved; a member that sees the stewards fail proposes the deadlock
    // (highest priority: the election due meanwhile is frozen out).
    net.run_for(Duration::from_millis(1500));
    assert!(!net.members[honest].approved_proposals().is_empty());
    let now = net.now;
    net.members[honest].propose_deadlock(now).unwrap();
    net.drain(honest);
    net.run();
    assert_eq!(
        net.members[j].phase(),
        Phase::Member,
        "recovery admitted the joiner"
    );
    assert!(net
        .events(honest)
        .iter()
        .any(|e| matches!(e, Event::RecoveryStarted)));
    assert!(
        !net.members[honest].in_recovery(),
        "the first commit ended it"
    );
    net.assert_agreement();
}

#[test]
fn a_joiner_holds_the_group_state_everyone_else_holds() {
    let mut net = network(309, 4, |c| c.governance.slot_failure_penalty = 10);
    let rotation = net.members[0].rotation();
    let silent = net.index_of(&rotation[0]);
    net.members[silent].test_set_byzantine(Byzantine {
        silent: true,
        censor: None,
    });
    net.join();
    net.run();
    let j = net.join();
    net.run();
    assert_eq!(net.members[j].phase(), Phase::Member);
    // The non-default score reached the joiner through the welcome, checked against the roster.
    let state = net.members[j].group_state().unwrap();
    assert!(!state.scores().is_empty());
    net.assert_agreement();
    let refused = net
        .records
        .iter()
        .any(|r| matches!(r, Record::Refused(i, e) if *i == j && e.contains("group parameters")));
    assert!(!refused);
}

#[test]
fn silent_stewards_are_re_elected_around_before_recovery() {
    // Re-election allowed (Layer 2): the list elected at retry round 1 or later commits.
    let mut net = network(310, 7, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
    });
    let stewards = net.members[0].stewards().to_vec();
    for s in &stewards {
        let i = net.index_of(s);
        net.members[i].test_set_byzantine(Byzantine {
            silent: true,
            censor: None,
        });
    }
    let j = net.join();
    net.run();
    assert_eq!(
        net.members[j].phase(),
        Phase::Member,
        "a re-elected list admitted the joiner"
    );
    let honest = (0..7)
        .find(|&i| !stewards.contains(net.members[i].member_id()))
        .unwrap();
    let state = net.members[honest].group_state().unwrap();
    assert!(state.retry_round > 0, "the list came from a re-election");
    assert!(!net
        .events(honest)
        .iter()
        .any(|e| matches!(e, Event::RecoveryStarted)));
    net.assert_agreement();
}

#[test]
fn a_steward_that_leaves_is_committed_by_another_and_not_blamed() {
    let mut net = network(311, 5, |_| {});
    let leaver = net.members[0].rotation()[0].clone();
    let l = net.index_of(&leaver);
    let now = net.now;
    net.members[l].leave(now).unwrap();
    net.drain(l);
    net.run();
    assert_eq!(net.members[l].phase(), Phase::Closed);
    let honest = (0..5).find(|&i| i != l).unwrap();
    assert!(!net.members[honest].roster().contains(&leaver));
    assert!(!net
        .violations(honest, ViolationKind::Censorship)
        .contains(&leaver));
    net.assert_agreement();
}

#[test]
fn a_single_steward_group_has_no_recovery_mode() {
    // The default governance: no rotation, so no escalation; a deadlock proposal is refused
    // (recovery would let several members commit without acknowledgements: a fork).
    let mut net = Net::new(312);
    net.create();
    while net.members.len() < 4 {
        net.join();
        net.run();
    }
    let now = net.now;
    assert!(matches!(
        net.members[1].propose_deadlock(now),
        Err(Error::InvalidProposal(_))
    ));
    net.members[0].test_set_byzantine(Byzantine {
        silent: true,
        censor: None,
    });
    let j = net.join();
    net.run_for(Duration::from_secs(120));
    assert_eq!(
        net.members[j].phase(),
        Phase::PendingJoin,
        "nobody else commits"
    );
    for i in 0..4 {
        assert!(!net.members[i].in_recovery());
        assert_eq!(net.members[i].epoch(), net.members[0].epoch());
    }
}

/// The equivocation scenario above, up to the equivocator's two commits.
fn equivocated_add(seed: u64) -> (Net, usize, usize) {
    let mut net = network(seed, 5, |c| c.auto_vote = None);
    let rotation = net.members[0].rotation();
    let s = net.index_of(&rotation[0]);
    net.members[s].test_set_byzantine(Byzantine {
        silent: true,
        censor: None,
    });
    let j = net.join();
    net.run_for(Duration::from_millis(500));
    let proposal = *net.opened_adds(0, j).last().expect("the add is open");
    for i in 0..5 {
        let now = net.now;
        let _ = net.members[i].vote(now, proposal, Choice::Yes);
        net.drain(i);
    }
    net.run_for(Duration::from_millis(500));
    let now = net.now;
    let (first, second) = net.members[s].test_equivocating_commits(now).unwrap();
    net.drain(s);
    let others: Vec<usize> = (0..5).filter(|&i| i != s).collect();
    for (k, &to) in others.iter().enumerate() {
        let packets = if k < 2 { &first } else { &second };
        for t in packets {
            let _ = net.inject(to, &t.payload);
        }
    }
    (net, s, j)
}

#[test]
fn after_an_equivocating_epoch_steward_the_next_steward_commits_in_the_same_rotation() {
    // Layer 1 after an equivocation: once the equivocator's two candidates are dropped, the
    // next steward of the rotation commits — no re-election is needed.
    let (mut net, s, j) = equivocated_add(310);
    let epoch = net.members[(s + 1) % 5].epoch().unwrap();
    let rotation = net.members[(s + 1) % 5].rotation();
    let seen: Vec<usize> = (0..5).map(|i| net.events(i).len()).collect();
    net.run();
    assert_eq!(net.members[j].phase(), Phase::Member);
    let honest: Vec<usize> = (0..5).filter(|&i| i != s).collect();
    for &i in &honest {
        assert!(
            !net.events(i)[seen[i]..].iter().any(|e| matches!(
                e,
                Event::ProposalOpened {
                    action: Action::ElectStewards { .. },
                    ..
                }
            )),
            "member {i} fell through to a re-election"
        );
        assert_eq!(net.members[i].epoch().unwrap().0, epoch.0 + 1, "member {i}");
    }
    // The commit came from the steward after the equivocator.
    let committer = net.index_of(&rotation[1]);
    assert!(net.events(committer).iter().any(|e| matches!(e,
        Event::EpochChanged { added, .. } if added.contains(&name(j)))));
    assert!(net
        .violations(honest[0], ViolationKind::Inactivity)
        .contains(&rotation[0]));
}

#[test]
fn a_steward_whose_removal_is_approved_twice_is_out_of_the_rotation_everywhere() {
    // Two approved proposals removing the epoch steward of a two-steward rotation: it must be
    // out of the rotation at every member, itself included. (The exclusion once compared the
    // rotation's length with the number of pending-removal *proposals*: with a duplicate, the
    // steward stayed in its own walk and committed, while every other member refused its
    // commit as not from a steward — the simulator's stall F15.)
    let mut net = network(311, 5, |c| {
        c.governance.sn_min = 2;
        c.governance.sn_max = 2;
    });
    let rotation = net.members[0].rotation();
    assert_eq!(rotation.len(), 2);
    let target = rotation[0].clone();
    let proposers: Vec<usize> = (0..5)
        .filter(|&i| !rotation.contains(net.members[i].member_id()))
        .take(2)
        .collect();
    for &p in &proposers {
        let now = net.now;
        net.members[p].propose_remove(now, &target).unwrap();
        net.drain(p);
    }
    let j = net.join();
    net.run();
    let refused: Vec<_> = net
        .refusals()
        .into_iter()
        .filter(|(_, e)| e.contains("not a steward") || e.contains("not from steward"))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(net.members[j].phase(), Phase::Member);
    let t = net.index_of(&target);
    assert_eq!(net.members[t].phase(), Phase::Closed);
}

/// Runs until every member in `members` holds an approved proposal (auto votes), at most 20 s.
fn run_until_approved(net: &mut Net, members: &[usize]) {
    for _ in 0..200 {
        if members
            .iter()
            .all(|&i| !net.members[i].approved_proposals().is_empty())
        {
            return;
        }
        net.run_for(Duration::from_millis(100));
    }
    panic!("nothing was approved");
}

#[test]
fn candidates_of_an_abandoned_round_are_acknowledged_again_until_one_wins() {
    // Every steward of the rotation builds at once and acknowledges its own candidate: no
    // candidate can reach the quorum, round 0 dies. A member builds one candidate per epoch,
    // so the members must converge on one of these in the next round; they once let every
    // one die for good and the epoch was wedged (the simulator found it, e.g. `demls-sim
    // --generated 254170444052684 --mode liveness --byzantine-mix none`). The long freeze
    // window keeps the rotation and escalation out of the way.
    let mut net = network(313, 4, |c| c.freeze_window = Duration::from_secs(60));
    let j = net.join();
    run_until_approved(&mut net, &[0, 1, 2, 3]);
    let builders: Vec<usize> = net.members[0]
        .rotation()
        .iter()
        .map(|s| net.index_of(s))
        .collect();
    assert!(builders.len() >= 3, "a rotation of several stewards");
    let now = net.now;
    for &i in &builders {
        let batch = net.members[i].test_commit_batch_now();
        net.members[i].test_commit_batch(now, &batch).unwrap();
    }
    for &i in &builders {
        net.drain(i);
    }
    net.run_for(Duration::from_secs(10));
    assert_eq!(
        net.members[j].phase(),
        Phase::Member,
        "one of the candidates won a later round"
    );
    net.assert_agreement();
}

#[test]
fn a_member_sends_its_part_of_the_round_again_when_the_rotation_passed() {
    // The epoch steward's candidate and acknowledgement are lost; two other stewards build
    // too and the fourth member acknowledges one of theirs. The round now hinges on the lost
    // acknowledgement: the others can neither apply nor abandon it. Only the epoch steward
    // sees it dead; sending its part again when the rotation passed lets the others follow
    // (the simulator found groups waiting for good: `demls-sim --generated 33366264291024
    // --mode liveness --byzantine-mix none`, a member whose output was lost for a while).
    let mut net = network(314, 4, |c| c.freeze_window = Duration::from_secs(20));
    let j = net.join();
    run_until_approved(&mut net, &[0, 1, 2, 3]);
    let rotation: Vec<usize> = net.members[0]
        .rotation()
        .iter()
        .map(|s| net.index_of(s))
        .collect();
    assert!(rotation.len() >= 3, "a rotation of several stewards");
    let now = net.now;
    let lost = rotation[0];
    let batch = net.members[lost].test_commit_batch_now();
    net.members[lost].test_commit_batch(now, &batch).unwrap();
    while net.members[lost].poll_transmit().is_some() {}
    for &i in &rotation[1..3] {
        let batch = net.members[i].test_commit_batch_now();
        net.members[i].test_commit_batch(now, &batch).unwrap();
    }
    for &i in &rotation[1..3] {
        net.drain(i);
    }
    net.run_for(Duration::from_secs(5));
    assert_eq!(
        net.members[j].phase(),
        Phase::PendingJoin,
        "the round hangs"
    );
    net.run_for(Duration::from_secs(120));
    assert_eq!(
        net.members[j].phase(),
        Phase::Member,
        "the lost part came again"
    );
    net.assert_agreement();
}

#[test]
fn two_leaving_members_commit_each_others_leave() {
    // A group of two whose members both leave: every steward of the rotation is pending
    // removal, so the rotation keeps them, and so must the validation of their commits
    // (each once refused the other's commit for good: `demls-sim --generated 223056541167201
    // --mode liveness --byzantine-mix none`). The last member's own leave can never be
    // committed ("Self-Removal"): it closes the conversation instead.
    let mut net = network(315, 2, |_| {});
    let now = net.now;
    for i in 0..2 {
        net.members[i].leave(now).unwrap();
        net.drain(i);
    }
    net.run_for(Duration::from_secs(60));
    let committed: Vec<usize> = (0..2)
        .filter(|&i| {
            net.events(i).iter().any(|e| {
                matches!(e,
                Event::EpochChanged { removed, .. } if *removed == vec![name(1 - i)])
            })
        })
        .collect();
    assert_eq!(committed.len(), 1, "one leave was committed");
    for i in 0..2 {
        assert_eq!(net.members[i].phase(), Phase::Closed, "member {i} left");
    }
}

#[test]
fn a_steward_pending_removal_leaves_the_rotation_whatever_else_is_pending() {
    // The rotation skips a steward whose removal is approved; other approved removals (of
    // members outside the rotation, or a second one of the same steward) once kept it in
    // — its commits refused everywhere, slot after slot (`demls-sim --generated
    // 179615213454548 --mode liveness --byzantine-mix none`).
    let mut net = network(316, 6, |c| {
        c.freeze_window = Duration::from_secs(60);
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
    });
    let rotation = net.members[0].rotation();
    assert_eq!(rotation.len(), 3);
    let steward = rotation[1].clone();
    let others: Vec<MemberId> = net.members[0]
        .roster()
        .into_iter()
        .filter(|m| !rotation.contains(m))
        .take(2)
        .collect();
    let proposer = net.index_of(&rotation[0]);
    let now = net.now;
    for target in std::iter::once(&steward).chain(&others) {
        net.members[proposer].propose_remove(now, target).unwrap();
    }
    net.drain(proposer);
    for _ in 0..200 {
        if net.members[proposer].approved_proposals().len() == 3 {
            break;
        }
        net.run_for(Duration::from_millis(100));
    }
    assert_eq!(net.members[proposer].approved_proposals().len(), 3);
    assert!(!net.members[proposer].rotation().contains(&steward));
}

#[test]
fn joiners_never_acknowledge_a_decision_on_a_byzantine_welcomes_word_alone() {
    // Simulator finding F14: a joiner took the approvals its Welcome carried as its own
    // finalized decisions. A Byzantine committer (f = 1 of 4) carries a removal the honest
    // members rejected to five joiners it adds at once; in the 9-member group the joiners and
    // the committer are a quorum of acknowledgements (6) for the removal without any honest
    // member that approved it.
    let mut net = network(314, 4, |c| {
        c.governance.commit_inactivity = Duration::from_secs(60)
    });
    let byz = net.index_of(&net.members[0].rotation()[0]);
    net.members[byz].test_set_byzantine(Byzantine {
        silent: true,
        censor: None,
    });
    let victim = (0..4).find(|&i| i != byz).unwrap();
    let honest: Vec<usize> = (0..4).filter(|&i| i != byz).collect();
    // The Byzantine member proposes the victim's removal and hears only one of the NO votes:
    // its machine decides YES at the deadline (silent voters count YES); the others decide
    // NO. (Hearing none, its honest code would propose the removal again once the adds'
    // commit passed it by: `a_removal_nobody_heard_is_proposed_again_for_the_group_to_vote`.)
    let now = net.now;
    let removal = net.members[byz].propose_remove(now, &name(victim)).unwrap();
    net.drain(byz);
    net.deaf = vec![byz];
    net.run_for(Duration::from_millis(200));
    for &i in &honest {
        let now = net.now;
        net.members[i].vote(now, removal, Choice::No).unwrap();
        if i == honest[0] {
            let votes: Vec<Vec<u8>> = std::iter::from_fn(|| net.members[i].poll_transmit())
                .map(|t| t.payload)
                .collect();
            for v in &votes {
                net.inject(byz, v).unwrap();
                for &j in honest.iter().filter(|&&j| j != i) {
                    net.inject(j, v).unwrap();
                }
            }
        }
        net.drain(i);
    }
    net.run_for(Duration::from_secs(31));
    net.deaf.clear();
    assert!(net.members[byz].approved_proposals().contains(&removal));
    assert!(!net.members[honest[0]]
        .approved_proposals()
        .contains(&removal));
    // Five joiners; their adds are approved everywhere.
    let joiners: Vec<usize> = (0..5).map(|_| net.join()).collect();
    let mut adds = Vec::new();
    for _ in 0..40 {
        net.run_for(Duration::from_millis(500));
        adds = net.members[honest[0]].approved_proposals();
        let everywhere = (0..4).all(|i| {
            adds.iter()
                .all(|d| net.members[i].approved_proposals().contains(d))
        });
        if adds.len() == 5 && everywhere {
            break;
        }
    }
    assert_eq!(adds.len(), 5, "the five adds are approved");
    // The Byzantine epoch steward commits the adds; its Welcome carries the removal.
    let now = net.now;
    net.members[byz].test_commit_batch(now, &adds).unwrap();
    net.drain(byz);
    net.run_for(Duration::from_secs(3));
    for &j in &joiners {
        assert_eq!(net.members[j].phase(), Phase::Member, "joiner {j}");
        assert!(net.members[j].approved_proposals().contains(&removal));
        assert!(
            !net.members[j].test_commit_batch_now().contains(&removal),
            "joiner {j} would commit a decision it holds on the committer's word alone"
        );
    }
    // Next epoch: the Byzantine member commits the removal. No joiner acknowledges it.
    let epoch = net.members[honest[0]].epoch();
    let now = net.now;
    net.members[byz].test_commit_batch(now, &[removal]).unwrap();
    net.drain(byz);
    net.run_for(Duration::from_secs(20));
    for i in honest.iter().chain(&joiners) {
        assert_eq!(
            net.members[*i].epoch(),
            epoch,
            "member {i} applied the removal"
        );
        assert!(net.members[*i].roster().contains(&name(victim)));
    }
}

#[test]
fn joiners_commit_a_leave_their_welcome_carried() {
    // The only member approves two adds, then asks to leave; it commits the adds but may not
    // commit its own leave ("Self-Removal"), so its Welcome carries the leave. The joiners
    // hold it on the committer's word, and nobody else can vouch for it — but a leave signed
    // by the member it names needs nobody's word: a joiner commits it (the simulator found
    // the group stuck: `demls-sim --generated 223056541167201 --mode liveness
    // --byzantine-mix none`).
    let mut net = network(317, 1, |c| c.freeze_window = Duration::from_secs(20));
    let joiners = [net.join(), net.join()];
    for _ in 0..100 {
        if net.members[0].approved_proposals().len() == 2 {
            break;
        }
        net.run_for(Duration::from_millis(100));
    }
    assert_eq!(
        net.members[0].approved_proposals().len(),
        2,
        "both adds approved"
    );
    let now = net.now;
    net.members[0].leave(now).unwrap();
    net.drain(0);
    net.run_for(Duration::from_secs(30));
    for j in joiners {
        assert_eq!(net.members[j].phase(), Phase::Member, "joiner {j}");
    }
    net.run_for(Duration::from_secs(120));
    assert_eq!(
        net.members[0].phase(),
        Phase::Closed,
        "the leave was committed"
    );
    for j in joiners {
        assert_eq!(
            net.members[j].roster(),
            vec![name(joiners[0]), name(joiners[1])]
        );
    }
}

#[test]
fn a_commit_a_quorum_acknowledged_is_applied_by_a_member_that_held_its_committer_ineligible() {
    // Member X hears every vote on the epoch steward's removal and approves it at once; the
    // others hear none and wait for the deadline. Meanwhile the epoch steward commits an add:
    // at X it is pending removal, out of the rotation, but the others acknowledge its commit
    // (a quorum). Eligibility follows decisions members reach at different times, and the
    // quorum holds honest members that found the committer eligible: X applies the commit
    // rather than stay behind for good (`demls-sim --generated 233073999611634 --mode
    // liveness --byzantine-mix none`).
    let mut net = network(318, 4, |c| c.freeze_window = Duration::from_secs(10));
    let steward = net.index_of(&net.members[0].rotation()[0]);
    let others: Vec<usize> = (0..4).filter(|&i| i != steward).collect();
    let (proposer, x) = (others[0], others[2]);
    let j = net.join();
    run_until_approved(&mut net, &[0, 1, 2, 3]);
    let epoch = net.members[x].epoch().unwrap();
    let now = net.now;
    let removal = net.members[proposer]
        .propose_remove(now, &name(steward))
        .unwrap();
    net.drain(proposer);
    net.run_for(Duration::from_millis(500));
    // The automatic votes reach X alone.
    net.deaf = (0..net.members.len()).filter(|&i| i != x).collect();
    net.run_for(Duration::from_secs(3));
    net.deaf.clear();
    assert!(net.members[x].approved_proposals().contains(&removal));
    assert!(!net.members[x].rotation().contains(&name(steward)));
    for &i in &others[..2] {
        assert!(!net.members[i].approved_proposals().contains(&removal));
    }
    // The epoch steward commits the add when the freeze window closes.
    net.run_for(Duration::from_secs(10));
    assert!(
        net.members[steward].epoch().unwrap() > epoch,
        "the add was committed"
    );
    assert_eq!(net.members[j].phase(), Phase::Member);
    assert_eq!(
        net.members[x].epoch(),
        net.members[steward].epoch(),
        "X applied the commit its quorum acknowledged"
    );
    // Later the removal is committed everywhere.
    net.run_for(Duration::from_secs(90));
    assert_eq!(net.members[steward].phase(), Phase::Closed);
    net.assert_agreement();
}

#[test]
fn a_member_that_missed_the_commit_round_catches_up_from_a_relayed_certificate() {
    // Member 3 holds the approval but misses the commit and every acknowledgement; the
    // others apply the commit and move on. Nobody can send anything of the old epoch again,
    // so when member 3 is heard from in the old epoch, the members after it in the roster
    // relay the last commit with its acknowledgements, byte for byte, and member 3 applies
    // it once it sees the quorum.
    let mut net = network(320, 4, |_| {});
    let late = 3;
    let j = net.join();
    let epoch = net.members[late].epoch().unwrap();
    // Until everyone (member 3 included) finalized the add.
    for _ in 0..200 {
        if (0..4).all(|i| !net.members[i].approved_proposals().is_empty()) {
            break;
        }
        assert!(net.step(), "the network went quiet");
    }
    assert!(!net.members[late].approved_proposals().is_empty());
    net.deaf = vec![late];
    net.run_for(Duration::from_secs(20));
    assert_eq!(net.members[j].phase(), Phase::Member);
    assert!(net.members[0].epoch().unwrap() > epoch);
    assert_eq!(
        net.members[late].epoch().unwrap(),
        epoch,
        "member 3 missed it"
    );
    speak_and_catch_up(&mut net, late);
}

#[test]
fn a_member_that_missed_the_whole_vote_catches_up_from_the_certificates_evidence() {
    // Member 3 misses the add's proposal and votes too: the certificate carries the
    // committer's evidence before the commit, so member 3 can justify it.
    let mut net = network(321, 4, |_| {});
    let late = 3;
    let (epoch, j) = miss_a_join(&mut net, late);
    assert!(net.members[late].approved_proposals().is_empty());
    assert_eq!(net.members[late].epoch().unwrap(), epoch);
    speak_and_catch_up(&mut net, late);
    assert!(net.members[late].roster().contains(&name(j)));
}

#[test]
fn relays_lost_while_the_late_member_was_cut_off_are_sent_again_after_a_while() {
    // Member 3 is heard by the others but hears nothing (an asymmetric partition): each of
    // its messages makes its relayers send the certificate into the void. Once their
    // budget is spent they still relay once per backoff period, so after the partition heals
    // member 3 catches up (it stayed behind for good: `demls-sim --generated 4899500476811
    // --mode liveness --byzantine-mix none`).
    let mut net = network(323, 4, |_| {});
    let late = 3;
    let (epoch, _) = miss_a_join(&mut net, late);
    for _ in 0..8 {
        let now = net.now;
        net.members[late].send_message(now, b"hello?").unwrap();
        net.drain(late);
        net.run_for(Duration::from_millis(500));
    }
    assert_eq!(
        net.members[late].epoch().unwrap(),
        epoch,
        "every relay was lost"
    );
    net.run_for(Duration::from_secs(10));
    speak_and_catch_up(&mut net, late);
}

#[test]
fn a_member_two_commits_behind_catches_up_from_the_certificates_of_both() {
    // Member 3 misses two commits. Its messages are now too old for anyone to decrypt, so
    // nobody knows who sent them — only their epoch; every member that kept that epoch's
    // certificate relays every certificate it kept from it on, and member 3 applies them one
    // after the other (the second waits in its future-epoch buffer).
    let mut net = network(322, 4, |_| {});
    let late = 3;
    let (epoch, _) = miss_a_join(&mut net, late);
    let second = net.join();
    net.run_for(Duration::from_secs(20));
    assert_eq!(net.members[second].phase(), Phase::Member);
    assert!(net.members[0].epoch().unwrap().0 >= epoch.0 + 2);
    assert_eq!(net.members[late].epoch().unwrap(), epoch);
    speak_and_catch_up(&mut net, late);
    assert!(net.members[late].roster().contains(&name(second)));
}

#[test]
fn a_deadlock_proposal_of_a_past_epoch_is_not_opened() {
    // An election or deadlock proposal is moot once its epoch ended (an election lists the
    // stewards of the epoch after its own; any commit ends a deadlock). Delivered late, it
    // used to be opened in the retired machine, where it looked like an open higher-priority
    // proposal while this member created lower-priority ones (the simulator's Priority
    // invariant: `demls-sim --generated 147953368562232 --mode liveness`).
    let mut net = network(330, 4, |_| {});
    let now = net.now;
    let deadlock = net.members[1].propose_deadlock(now).unwrap();
    let mut held = Vec::new();
    while let Some(t) = net.members[1].poll_transmit() {
        held.push(t.payload);
    }
    assert!(!held.is_empty());
    let epoch = net.members[2].epoch().unwrap();
    net.join();
    net.run_for(Duration::from_secs(60));
    assert!(
        net.members[2].epoch().unwrap() > epoch,
        "the add was committed"
    );
    for bytes in &held {
        let refused = net.inject(2, bytes);
        assert!(
            matches!(refused, Err(Error::StaleEpoch { .. })),
            "{refused:?}"
        );
    }
    assert!(!net.events(2).iter().any(|e| matches!(e,
        Event::ProposalOpened { proposal, .. } if *proposal == deadlock)));
}

/// The late member, deaf until now, is heard from in its old epoch (a chat message) and
/// catches up from the relayed certificates: same epoch and epoch authenticator as member 0.
fn speak_and_catch_up(net: &mut Net, late: usize) {
    net.deaf.clear();
    let now = net.now;
    net.members[late]
        .send_message(now, b"anyone there?")
        .unwrap();
    net.drain(late);
    net.run_for(Duration::from_secs(5));
    assert_eq!(
        net.members[late].epoch(),
        net.members[0].epoch(),
        "caught up"
    );
    assert_eq!(
        net.members[late].epoch_authenticator(),
        net.members[0].epoch_authenticator()
    );
}

/// Member `late` is cut off (hears nothing) while a node joins and the others commit its add.
/// Returns `late`'s epoch and the joiner.
fn miss_a_join(net: &mut Net, late: usize) -> (demls::consensus::Epoch, usize) {
    let epoch = net.members[late].epoch().unwrap();
    net.deaf = vec![late];
    let j = net.join();
    net.run_for(Duration::from_secs(20));
    assert_eq!(net.members[j].phase(), Phase::Member);
    (epoch, j)
}

#[test]
fn a_member_that_never_finalized_the_batch_applies_the_commit_its_quorum_acknowledged() {
    // Member X knows the add but lost its decision (its votes undecryptable, or it decided
    // otherwise at its deadline): the commit waits at X for a decision that never comes. The
    // other three acknowledge it — a quorum, holding an honest member that finalized the add —
    // and X takes the decision on that certificate instead of staying behind for good
    // (`demls-sim --generated 33366264291024 --mode liveness --byzantine-mix none`).
    let mut net = network(319, 4, |c| c.freeze_window = Duration::from_secs(5));
    let steward = net.index_of(&net.members[0].rotation()[0]);
    let x = (0..4).find(|&i| i != steward).unwrap();
    let epoch = net.members[x].epoch().unwrap();
    let j = net.join();
    run_until_approved(&mut net, &[0, 1, 2, 3]);
    net.members[x].test_forget_decisions();
    assert!(net.members[x].approved_proposals().is_empty());
    net.run_for(Duration::from_secs(30));
    assert_eq!(net.members[j].phase(), Phase::Member);
    assert!(
        net.members[steward].epoch().unwrap() > epoch,
        "the add was committed"
    );
    assert_eq!(
        net.members[x].epoch(),
        net.members[steward].epoch(),
        "X applied the commit its quorum acknowledged"
    );
    net.assert_agreement();
}

/// Members `from` acknowledge candidate `digest` (claimed by `from[0]`) in `round`, to
/// member `to` only; the result of each delivery, in order.
fn acknowledge(
    net: &mut Net,
    from: &[usize],
    to: usize,
    round: u32,
    digest: [u8; 32],
) -> Vec<Result<(), Error>> {
    let committer = name(from[0]);
    let mut results = Vec::new();
    for &i in from {
        let now = net.now;
        for t in net.members[i]
            .test_acknowledge(now, round, digest, &committer)
            .unwrap()
        {
            results.push(net.inject(to, &t.payload));
        }
    }
    results
}

#[test]
fn a_member_follows_its_group_through_any_number_of_acknowledgement_rounds() {
    // A split epoch can take many acknowledgement rounds; a member acknowledges once in
    // each. A cap on a member's acknowledgements per epoch (it was 16) ran out there: the
    // group refused thousands of honest acknowledgements and never reached a quorum
    // (`demls-sim --generated 19098570801708 --mode liveness`). Here two of four members —
    // ⌈n/3⌉, so one of them honest — move through 40 rounds, and member 3 follows them.
    let mut net = network(330, 4, |_| {});
    for round in 0..40 {
        for r in acknowledge(&mut net, &[1, 2], 3, round, [7; 32]) {
            assert_eq!(r, Ok(()), "an acknowledgement of round {round} was refused");
        }
    }
    assert_eq!(net.members[3].test_ack_round(), 39);
}

#[test]
fn what_one_member_acknowledges_is_bounded_per_round_and_ahead() {
    // What a Byzantine member makes others store stays bounded by the rounds the group
    // really went through: two different acknowledgements per round (the second makes its
    // equivocation visible), and a few in rounds nobody has reached. A refused one changes
    // nothing.
    let mut net = network(331, 4, |_| {});
    assert_eq!(net.members[3].test_ack_round(), 0);
    for digest in [[1; 32], [2; 32]] {
        assert_eq!(acknowledge(&mut net, &[1], 3, 0, digest), vec![Ok(())]);
    }
    let before = net.members[3].state_digest();
    assert_eq!(
        acknowledge(&mut net, &[1], 3, 0, [3; 32]),
        vec![Err(Error::TooManyAcks(name(1)))]
    );
    assert_eq!(net.members[3].state_digest(), before);
    for round in 1..=8 {
        assert_eq!(acknowledge(&mut net, &[1], 3, round, [4; 32]), vec![Ok(())]);
    }
    let before = net.members[3].state_digest();
    assert_eq!(
        acknowledge(&mut net, &[1], 3, 1_000_000, [4; 32]),
        vec![Err(Error::AcksTooFarAhead(name(1)))]
    );
    assert_eq!(net.members[3].state_digest(), before);
    assert_eq!(
        net.members[3].test_ack_round(),
        0,
        "one member moves nobody"
    );
}

#[test]
fn a_steward_waits_for_an_open_election_before_it_commits() {
    // An election outranks commits, and its approval hands the rotation to the elected
    // list. A steward whose turn came while an election was open committed at once and
    // supported its own candidate for the round; the elected list's steward then built one
    // that applied the election too, the two split the round, and with one member silent the
    // group never gathered a quorum nor saw the round die (`demls-sim --generated
    // 44960331793281 --mode liveness --byzantine-mix any`). The steward now waits for the
    // election's decision: its freeze window closes 10 ms after the add is decided, the
    // election is decided a round trip later, and the one commit applies both.
    let mut net = network(332, 4, |c| {
        c.auto_vote = None;
        c.freeze_window = Duration::from_millis(10);
    });
    let s = net.index_of(&net.members[0].rotation()[0]);
    let stewards_before = net.members[0].stewards().to_vec();
    let epoch = net.members[0].epoch().unwrap().0;
    let j = net.join();
    net.run_for(Duration::from_millis(500));
    let add = *net.opened_adds(0, j).first().expect("the add is open");
    let now = net.now;
    let election = net.members[s].propose_steward_election(now).unwrap();
    net.drain(s);
    let opened_at = net.records.len();
    for i in 0..4 {
        let now = net.now;
        let _ = net.members[i].vote(now, add, Choice::Yes); // its creator voted already
        net.drain(i);
    }
    net.run_for(Duration::from_secs(10));
    let decided_at_s = |wanted: demls::consensus::ProposalDigest| {
        net.records
            .iter()
            .position(|r| {
                matches!(r, Record::Event(i, Event::ProposalDecided { proposal, .. })
                    if *i == s && *proposal == wanted)
            })
            .expect("decided")
    };
    assert!(
        decided_at_s(add) < decided_at_s(election),
        "the add was decided first, while the election was open"
    );
    // Its one commit of the epoch (after it, members relay the commit's certificate to the
    // joiner).
    let applied = opened_at
        + net.records[opened_at..]
            .iter()
            .position(|r| matches!(r, Record::Event(i, Event::EpochChanged { .. }) if *i == s))
            .expect("the epoch changed");
    let commits = net.records[opened_at..applied]
        .iter()
        .filter(|r| {
            matches!(r, Record::Sent(i, t) if *i == s
            && t.channel == Channel::Conversation && t.class == TrafficClass::Handshake)
        })
        .count();
    assert_eq!(commits, 1, "the steward built one candidate");
    assert_eq!(net.members[j].phase(), Phase::Member);
    for i in [0, 1, 2, 3, j] {
        assert_eq!(
            net.members[i].epoch().unwrap().0,
            epoch + 1,
            "member {i}: one commit"
        );
    }
    assert_ne!(
        net.members[0].stewards(),
        stewards_before.as_slice(),
        "the commit installed the elected list"
    );
    net.assert_agreement();
}
