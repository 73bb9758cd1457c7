//! One test per multi-steward governance rule of the conformance matrix (docs/conformance.md,
//! rows `DM-n`) that `tests/governance.rs` does not pin: each fails when its rule is broken.
//! The networks are deterministic (seeded members, virtual time); each test's comment names
//! the rows it covers.
//!
//! Requires the `test-utils` feature of demls-core (the misbehaving members).

mod support;

use std::time::Duration;

use demls::consensus::{Choice, DecidedBy, MemberId, Outcome, ProposalKind};
use demls::core::{
    election_order, Action, Byzantine, Channel, Error, Event, Phase, TrafficClass, Transmit,
    ViolationKind,
};
use support::net::{multi_steward_network as network, name, Net, Record};

/// Steps the network until `done` holds; panics if it goes quiet or takes too long first.
fn step_until(net: &mut Net, what: &str, done: impl Fn(&Net) -> bool) {
    for _ in 0..50_000 {
        if done(net) {
            return;
        }
        assert!(net.step(), "the network went quiet before: {what}");
    }
    panic!("never happened: {what}");
}

/// Member `i`'s queued packets, taken off it without sending them (its events are recorded).
fn take_transmits(net: &mut Net, i: usize) -> Vec<Transmit> {
    let out: Vec<Transmit> = std::iter::from_fn(|| net.members[i].poll_transmit()).collect();
    net.drain(i);
    out
}

/// The MLS commits among `packets`.
fn commits(packets: &[Transmit]) -> Vec<Vec<u8>> {
    packets
        .iter()
        .filter(|t| t.class == TrafficClass::Handshake && t.channel == Channel::Conversation)
        .map(|t| t.payload.clone())
        .collect()
}

/// Whether member `i` reported a decision on a proposal matching `action` with `outcome`.
fn decided(net: &Net, i: usize, outcome: Outcome, action: impl Fn(&Action) -> bool) -> bool {
    net.events(i).iter().any(|e| {
        matches!(e, Event::ProposalDecided { action: a, decision, .. }
            if action(a) && decision.outcome == outcome)
    })
}

/// The creators of the proposals matching `action` that member `i` saw opened, in order.
fn opened_by(net: &Net, i: usize, action: impl Fn(&Action) -> bool) -> Vec<MemberId> {
    net.events(i)
        .into_iter()
        .filter_map(|e| match e {
            Event::ProposalOpened {
                action: a, creator, ..
            } if action(a) => Some(creator.clone()),
            _ => None,
        })
        .collect()
}

/// Welcome packets member `i` sent after record `mark`.
fn welcomes_sent_since(net: &Net, mark: usize, i: usize) -> usize {
    net.records[mark..]
        .iter()
        .filter(|r| matches!(r, Record::Sent(j, t) if *j == i && t.channel == Channel::Welcome))
        .count()
}

/// The current rotation, as member indices (the epoch steward first).
fn rotation_indices(net: &Net) -> Vec<usize> {
    net.members[0]
        .rotation()
        .iter()
        .map(|m| net.index_of(m))
        .collect()
}

fn silence(net: &mut Net, i: usize) {
    net.members[i].test_set_byzantine(Byzantine {
        silent: true,
        censor: None,
    });
}

/// DM-39 (and DM-95): an emergency proposal finalized YES starts the commit rotation at once,
/// without waiting for Δ. Δ is 20 s here; the emergency removal must be committed within 5 s
/// of its decision.
#[test]
fn an_approved_emergency_removal_is_committed_without_waiting_for_the_freeze_window() {
    let mut net = network(401, 5, |c| {
        c.freeze_window = Duration::from_secs(20);
        c.governance.slot_failure_penalty = 60;
    });
    let target = net.members[0].rotation()[0].clone();
    let silent = net.index_of(&target);
    silence(&mut net, silent);
    // The silent epoch steward is walked past: 100 - 60 = 40, the threshold.
    net.join();
    let honest = (0..5).find(|&i| i != silent).unwrap();
    step_until(&mut net, "the emergency removal is approved", |net| {
        decided(
            net,
            honest,
            Outcome::Yes,
            |a| matches!(a, Action::RemoveBelowThreshold(m) if *m == target),
        )
    });
    let approved_at = net.now;
    step_until(&mut net, "the emergency removal is committed", |net| {
        !net.members[honest].roster().contains(&target)
    });
    let took = net.now - approved_at;
    assert!(
        took < Duration::from_secs(5),
        "the removal waited {took:?} after its approval (Δ is 20 s)"
    );
    net.run();
    net.assert_agreement();
}

/// DM-40, DM-41, DM-96 (and DM-74): the commit that records an emergency proposal takes
/// `ecp_no_penalty` from its creator when it was finalized NO, and adds `ecp_yes_reward` when
/// it was finalized YES. The creator is not a steward, so no other score change touches it;
/// a rejected deadlock proposal does not turn the commit that records it into a recovery
/// commit.
#[test]
fn emergency_proposal_creators_are_penalised_on_no_and_rewarded_on_yes() {
    let mut net = network(402, 6, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
    });
    let stewards = net.members[0].stewards().to_vec();
    // Elections do not depend on the seed (member and group ids are fixed): this one stays
    // out of the list the next commit installs.
    let x = (1..6)
        .rev()
        .find(|&i| !stewards.contains(net.members[i].member_id()))
        .expect("a non-steward");
    let xid = net.members[x].member_id().clone();
    let config = net.members[0].group_state().unwrap().config.clone();

    // NO: nothing waits to be committed, so every honest member votes NO on a deadlock
    // proposal. The next commit (a join) records the creator's penalty.
    let now = net.now;
    net.members[x].propose_deadlock(now).unwrap();
    net.drain(x);
    net.run();
    assert!(decided(&net, 0, Outcome::No, |a| *a == Action::Deadlock));
    net.join();
    net.run();
    net.assert_agreement();
    let after_no = config.default_peer_score - config.ecp_no_penalty;
    assert_eq!(
        net.members[0].group_state().unwrap().score(&xid),
        after_no,
        "the creator's score after its emergency proposal was finalized NO"
    );
    // A rejected deadlock proposal does not make that commit a recovery commit (which would
    // take `slot_failure_penalty` from every other steward of the rotation).
    let scores = net.members[0].group_state().unwrap().scores().clone();
    assert_eq!(
        scores.keys().collect::<Vec<_>>(),
        vec![&xid],
        "only the creator's score changed: {scores:?}"
    );

    // YES: with an add approved everywhere, the deadlock proposal is finalized YES; the
    // recovery commit rewards its creator.
    assert!(
        !net.members[0].stewards().contains(&xid),
        "the creator became a steward: pick another creator"
    );
    let j = net.join();
    let members: Vec<usize> = net.active();
    step_until(&mut net, "the add is approved everywhere", |net| {
        members
            .iter()
            .all(|&i| !net.members[i].approved_proposals().is_empty())
    });
    let now = net.now;
    net.members[x].propose_deadlock(now).unwrap();
    net.drain(x);
    net.run();
    assert!(decided(&net, 0, Outcome::Yes, |a| *a == Action::Deadlock));
    assert_eq!(net.members[j].phase(), Phase::Member);
    net.assert_agreement();
    assert_ne!(
        net.members[0].roster()[0],
        xid,
        "the creator committed in recovery: pick another creator"
    );
    assert_eq!(
        net.members[0].group_state().unwrap().score(&xid),
        after_no + config.ecp_yes_reward,
        "the creator's score after its emergency proposal was finalized YES"
    );
}

/// DM-59, DM-60, DM-62, DM-63: an election finalized NO is followed, in the same epoch, by an
/// election of the next retry round with the rule's list for that round; once the retry
/// rounds are used up, the deadlock emergency proposal is opened. Three of five members are
/// cut off and silent voters count NO, so every election is finalized NO at its deadline.
#[test]
fn a_failed_election_leads_to_the_next_retry_round_then_to_the_deadlock_proposal() {
    let mut net = network(403, 5, |c| {
        c.silent_counts_as_yes = false;
        c.governance.max_reelection_attempts = 1;
    });
    let epoch = net.members[0].epoch();
    net.deaf = vec![2, 3, 4];
    let now = net.now;
    net.members[0].propose_steward_election(now).unwrap();
    net.drain(0);
    let elect = |retry: u32| move |a: &Action| matches!(a, Action::ElectStewards { retry_round, .. } if *retry_round == retry);
    step_until(&mut net, "the first election is finalized NO", |net| {
        decided(net, 0, Outcome::No, elect(0))
    });
    step_until(&mut net, "an election of retry round 1 is opened", |net| {
        !opened_by(net, 0, elect(1)).is_empty()
    });
    assert_eq!(net.members[0].epoch(), epoch, "within the same epoch");
    // The list is the rule's order for retry round 1.
    let roster = net.members[0].roster();
    let rule = election_order(epoch.unwrap().0, 1, net.members[0].id().as_bytes(), &roster);
    let list = net
        .events(0)
        .iter()
        .find_map(|e| match e {
            Event::ProposalOpened {
                action:
                    Action::ElectStewards {
                        stewards,
                        retry_round: 1,
                    },
                ..
            } => Some(stewards.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(list, rule[..list.len()]);
    step_until(&mut net, "the deadlock proposal is opened", |net| {
        decided(net, 0, Outcome::No, elect(1))
            && !opened_by(net, 0, |a| *a == Action::Deadlock).is_empty()
    });
    assert_eq!(net.members[0].epoch(), epoch, "within the same epoch");
    assert!(
        opened_by(&net, 0, elect(2)).is_empty(),
        "no retry round beyond max_reelection_attempts"
    );
}

/// DM-68, DM-73: in a multi-steward group, a commit from a member outside the epoch's rotation
/// is refused (`NotFromSteward`) and changes nothing; the same commit at a member where an
/// open election lists its sender waits instead of being refused or applied.
#[test]
fn a_commit_from_outside_the_rotation_is_refused_unless_an_open_election_lists_its_sender() {
    let mut net = network(404, 6, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
        c.freeze_window = Duration::from_secs(20);
    });
    let rotation = net.members[0].rotation();
    let epoch = net.members[0].epoch();
    let roster = net.members[0].roster();
    // The list an election held now would install.
    let elected = election_order(epoch.unwrap().0, 0, net.members[0].id().as_bytes(), &roster);
    let elected = &elected[..3];
    let outsider = (0..6)
        .find(|&i| {
            let m = net.members[i].member_id();
            !rotation.contains(m) && elected.contains(m)
        })
        .expect("a member outside the rotation that an election would list");
    net.join();
    step_until(&mut net, "the add is approved at the outsider", |net| {
        !net.members[outsider].approved_proposals().is_empty()
    });
    let now = net.now;
    let batch = net.members[outsider].approved_proposals();
    net.members[outsider]
        .test_commit_batch(now, &batch)
        .unwrap();
    let commit = commits(&take_transmits(&mut net, outsider))
        .pop()
        .expect("the outsider built a commit");
    let others: Vec<usize> = (0..6).filter(|&i| i != outsider).collect();
    let (refuser, waiter) = (others[0], others[1]);

    let before = net.members[refuser].state_digest();
    let err = net.inject(refuser, &commit).expect_err("refused");
    assert!(
        matches!(&err, Error::NotFromSteward(m) if m == net.members[outsider].member_id()),
        "{err:?}"
    );
    assert_eq!(net.members[refuser].state_digest(), before);

    // An election listing the outsider is open at `waiter` (only it hears the proposal).
    let creator = others[2];
    let now = net.now;
    net.members[creator].propose_steward_election(now).unwrap();
    let election: Vec<Vec<u8>> = take_transmits(&mut net, creator)
        .into_iter()
        .map(|t| t.payload)
        .collect();
    for p in &election {
        net.inject(waiter, p).unwrap();
    }
    net.inject(waiter, &commit)
        .expect("the commit waits for the election");
    assert_eq!(net.members[waiter].epoch(), epoch, "not applied");
}

/// DM-76, DM-77: of two competing candidates, the one with the longer proposal sequence is
/// applied even though the shorter comes from the epoch steward, and the shorter one's
/// committer is reported as `Censorship`.
#[test]
fn the_longest_candidate_is_applied_and_the_shorter_is_reported() {
    let mut net = network(405, 5, |c| c.freeze_window = Duration::from_secs(20));
    let rotation = net.members[0].rotation();
    let e = net.index_of(&rotation[0]);
    let b = net.index_of(&rotation[1]);
    let x = net.join();
    let y = net.join();
    step_until(&mut net, "both adds are approved everywhere", |net| {
        (0..5).all(|i| net.members[i].approved_proposals().len() == 2)
    });
    let both = net.members[e].approved_proposals();
    let only_x = net.members[e].test_proposals_about(&name(x), &both);
    let now = net.now;
    net.members[e].test_commit_batch(now, &only_x).unwrap();
    net.drain(e);
    net.members[b].test_commit_batch(now, &both).unwrap();
    net.drain(b);
    // Well before Δ closes (20 s), so no other steward builds.
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.members[x].phase(), Phase::Member);
    assert_eq!(
        net.members[y].phase(),
        Phase::Member,
        "the longer was applied"
    );
    for i in (0..5).filter(|&i| i != e && i != b) {
        assert!(
            net.violations(i, ViolationKind::Censorship)
                .contains(&rotation[0]),
            "member {i} did not report the shorter candidate"
        );
    }
    net.run();
    net.assert_agreement();
}

/// DM-78, DM-79: of two candidates with the same proposal sequence, the epoch steward's is
/// applied even when the other committer's id is smaller; without the epoch steward's, the
/// smallest committer id wins. The loser is not reported.
#[test]
fn among_equal_candidates_the_epoch_stewards_then_the_smallest_id_is_applied() {
    let mut net = network(406, 5, |c| c.freeze_window = Duration::from_secs(20));
    for round in 0..2 {
        let rotation = net.members[0].rotation();
        let committers: Vec<MemberId> = if round == 0 {
            // The epoch steward and a steward with a smaller id.
            let smaller = rotation[1..]
                .iter()
                .filter(|s| **s < rotation[0])
                .min()
                .expect("a steward with a smaller id than the epoch steward")
                .clone();
            vec![rotation[0].clone(), smaller]
        } else {
            // Two stewards other than the epoch steward: the smaller id wins.
            let mut two: Vec<MemberId> = rotation[1..3].to_vec();
            two.sort();
            two
        };
        let winner = net.index_of(&committers[0]);
        let loser = net.index_of(&committers[1]);
        let active = net.active();
        let j = net.join();
        step_until(&mut net, "the add is approved everywhere", |net| {
            active
                .iter()
                .all(|&i| net.members[i].approved_proposals().len() == 1)
        });
        let batch = net.members[winner].approved_proposals();
        let mark = net.records.len();
        let now = net.now;
        // Arrival order must not matter: the loser's candidate arrives first in round 0 and
        // last in round 1.
        let order = if round == 0 {
            [loser, winner]
        } else {
            [winner, loser]
        };
        for i in order {
            net.members[i].test_commit_batch(now, &batch).unwrap();
            net.drain(i);
        }
        net.run_for(Duration::from_secs(5));
        assert_eq!(net.members[j].phase(), Phase::Member, "round {round}");
        assert_eq!(
            welcomes_sent_since(&net, mark, winner),
            1,
            "round {round}: the winner's commit was applied"
        );
        assert_eq!(welcomes_sent_since(&net, mark, loser), 0, "round {round}");
        for i in net.active() {
            assert!(
                !net.violations(i, ViolationKind::Censorship)
                    .contains(&committers[1]),
                "round {round}: member {i} reported an equal candidate"
            );
        }
        net.run();
        net.assert_agreement();
    }
}

/// DM-80, DM-56, DM-86: a steward leaves its own approved removal out of the batch it would
/// commit, while the other members' batches include it; pending removal, it is out of the
/// rotation, and the next steward commits its removal.
#[test]
fn a_steward_leaves_its_own_removal_out_of_its_batch() {
    let mut net = network(408, 5, |c| c.freeze_window = Duration::from_secs(20));
    let steward = net.members[0].rotation()[0].clone();
    let s = net.index_of(&steward);
    let other = (0..5).find(|&i| i != s).unwrap();
    let now = net.now;
    let removal = net.members[other].propose_remove(now, &steward).unwrap();
    net.drain(other);
    let x = net.join();
    step_until(&mut net, "the removal and the add are approved", |net| {
        (0..5).all(|i| net.members[i].approved_proposals().len() == 2)
    });
    assert!(net.members[other]
        .test_commit_batch_now()
        .contains(&removal));
    let own = net.members[s].test_commit_batch_now();
    assert!(!own.contains(&removal), "the steward's batch removes it");
    assert_eq!(own.len(), 1, "the add is still in it");
    // DM-56: pending removal, the steward is out of the rotation, so the next steward commits
    // both changes at once (the steward would otherwise commit the add alone first).
    assert!(!net.members[other].rotation().contains(&steward));
    let mark = net.events(other).len();
    net.run();
    let first_change = net.events(other)[mark..]
        .iter()
        .find_map(|e| match e {
            Event::EpochChanged { added, removed, .. } => Some((added.clone(), removed.clone())),
            _ => None,
        })
        .expect("an epoch change");
    assert_eq!(first_change, (vec![name(x)], vec![steward.clone()]));
    assert_eq!(net.members[s].phase(), Phase::Closed);
    assert_eq!(net.members[x].phase(), Phase::Member);
    net.assert_agreement();
}

/// DM-89 (and DM-71): an epoch steward that leaves an approved proposal out of its commit is
/// reported as `Censorship` by the members whose batch had it; the left-out add is committed
/// later.
#[test]
fn a_censoring_steward_is_reported() {
    let mut net = network(409, 5, |_| {});
    let steward = net.members[0].rotation()[0].clone();
    let e = net.index_of(&steward);
    let x = net.join();
    let y = net.join();
    net.members[e].test_set_byzantine(Byzantine {
        silent: false,
        censor: Some(name(x)),
    });
    net.run();
    assert_eq!(net.members[x].phase(), Phase::Member, "admitted later");
    assert_eq!(net.members[y].phase(), Phase::Member);
    for i in (0..5).filter(|&i| i != e) {
        assert!(
            net.violations(i, ViolationKind::Censorship)
                .contains(&steward),
            "member {i} did not report the censoring steward"
        );
    }
    net.assert_agreement();
}

/// DM-99: in recovery mode the slots are `recovery_inactivity` apart (1 s here, against a
/// `commit_inactivity` of 10 s): with the first members by id silent, the first live one
/// commits `k × recovery_inactivity` after recovery started.
#[test]
fn recovery_slots_are_recovery_inactivity_apart() {
    let mut net = network(410, 6, |c| {
        c.governance.max_reelection_attempts = 0;
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
        c.governance.commit_inactivity = Duration::from_secs(10);
        c.governance.recovery_inactivity = Duration::from_secs(1);
    });
    let mut silent: Vec<usize> = net.members[0]
        .stewards()
        .iter()
        .map(|s| net.index_of(s))
        .collect();
    if !silent.contains(&0) {
        silent.push(0);
    }
    for &i in &silent {
        silence(&mut net, i);
    }
    let roster = net.members[0].roster();
    let k = roster
        .iter()
        .position(|m| !silent.contains(&net.index_of(m)))
        .unwrap();
    let honest = net.index_of(&roster[k]);
    let epoch = net.members[honest].epoch();
    net.join();
    step_until(&mut net, "the add is approved", |net| {
        !net.members[honest].approved_proposals().is_empty()
    });
    let now = net.now;
    net.members[honest].propose_deadlock(now).unwrap();
    net.drain(honest);
    step_until(&mut net, "recovery starts", |net| {
        net.members[honest].in_recovery()
    });
    let started = net.now;
    step_until(&mut net, "the recovery commit is applied", |net| {
        net.members[honest].epoch() != epoch
    });
    let took = net.now - started;
    let slot = Duration::from_secs(k as u64);
    assert!(
        took >= slot && took < slot + Duration::from_secs(3),
        "the member at recovery position {k} committed after {took:?}"
    );
    net.run();
    net.assert_agreement();
}

/// DM-100 (and DM-19): a due proposal the first member in line fails to open is opened by the
/// next one, `voting_inactivity` later. The epoch steward is cut off and never sees the key
/// package; the backup proposes the add.
#[test]
fn a_due_add_is_opened_by_the_next_in_line_after_voting_inactivity() {
    let mut net = network(411, 5, |_| {});
    let rotation = net.members[0].rotation();
    let first = net.index_of(&rotation[0]);
    let second = net.index_of(&rotation[1]);
    net.deaf.push(first);
    let inactivity = net.members[0]
        .group_state()
        .unwrap()
        .config
        .voting_inactivity;
    let start = net.now;
    let j = net.join();
    let add = move |a: &Action| *a == Action::Add(name(j));
    step_until(&mut net, "the add is opened", |net| {
        !opened_by(net, second, add).is_empty()
    });
    assert!(
        net.now - start >= inactivity,
        "opened after {:?}",
        net.now - start
    );
    net.run_for(Duration::from_millis(200));
    for i in (0..5).filter(|&i| i != first) {
        assert_eq!(
            opened_by(&net, i, add),
            vec![rotation[1].clone()],
            "member {i}: the backup, and only it, opened the add"
        );
    }
}

/// DM-31 (in part): commit proposals that break the membership rules are refused
/// (`InvalidProposal`) and change nothing: an add of a current member, a removal of a
/// non-member. Each is made by a member cut off while the group admitted or removed that
/// member, so its own checks passed.
#[test]
fn proposals_that_break_the_membership_rules_are_refused() {
    let mut net = network(412, 5, |_| {});
    // Member 3 misses the admission of a new node.
    net.deaf = vec![3];
    let x = net.join();
    step_until(&mut net, "the node is admitted", |net| {
        net.members[x].phase() == Phase::Member
    });
    let key_package = net.announced_key_package(x);
    let now = net.now;
    net.members[3].propose_add(now, &key_package).unwrap();
    let stale_add = take_transmits(&mut net, 3);
    let before = net.members[0].state_digest();
    let err = net.inject(0, &stale_add[0].payload).expect_err("refused");
    assert_eq!(err, Error::InvalidProposal("add of a current member"));
    assert_eq!(net.members[0].state_digest(), before);

    // Member 4 misses the removal of member 2.
    net.deaf = vec![3, 4];
    let now = net.now;
    net.members[1].propose_remove(now, &name(2)).unwrap();
    net.drain(1);
    step_until(&mut net, "member 2 is removed", |net| {
        !net.members[0].roster().contains(&name(2))
    });
    let now = net.now;
    net.members[4].propose_remove(now, &name(2)).unwrap();
    let stale_removal = take_transmits(&mut net, 4);
    let before = net.members[0].state_digest();
    let err = net
        .inject(0, &stale_removal[0].payload)
        .expect_err("refused");
    assert_eq!(err, Error::InvalidProposal("removal of a non-member"));
    assert_eq!(net.members[0].state_digest(), before);
}

/// DM-85: a steward whose own removal is approved may not commit ("not pending removal"), so
/// it must not be penalised for the slot it could not use. With a second removal of a smaller
/// digest approved too (one removal per commit), the steward's removal still goes first —
/// removals of the rotation's stewards are taken in rotation order — so the commit that
/// walks past the steward also removes it (its score goes with it), and nobody reports it as
/// `Inactivity`. (Taking the smaller digest first penalised it: it ended at 80.)
#[test]
fn a_steward_pending_its_own_removal_is_not_penalised_for_its_slot() {
    let mut net = network(414, 5, |_| {});
    let rotation = net.members[0].rotation();
    let steward = rotation[0].clone();
    let s = net.index_of(&steward);
    let t = net.index_of(&rotation[2]);
    let others: Vec<usize> = (0..5).filter(|&i| i != s && i != t).collect();
    let now = net.now;
    let own = net.members[others[0]]
        .propose_remove(now, &steward)
        .unwrap();
    net.drain(others[0]);
    // Another removal with a smaller digest.
    let mut first = None;
    for &c in others.iter().cycle().take(9) {
        let d = net.members[c].propose_remove(now, &rotation[2]).unwrap();
        net.drain(c);
        if d < own {
            first = Some(d);
            break;
        }
    }
    assert!(first.is_some(), "no removal digest below the steward's");
    let epoch = net.members[others[0]].epoch();
    step_until(&mut net, "the first removal is committed", |net| {
        net.members[others[0]].epoch() != epoch
    });
    let i = others[0];
    assert!(
        !net.members[i].roster().contains(&steward),
        "the pending steward's removal went first"
    );
    for &k in &others {
        assert!(
            !net.violations(k, ViolationKind::Inactivity)
                .contains(&steward),
            "member {k} reported the steward pending removal as inactive"
        );
    }
    // The other removal follows in the next commit.
    net.run();
    assert!(!net.members[i].roster().contains(&rotation[2]));
    let state = net.members[i].group_state().unwrap();
    for m in net.members[i].roster() {
        assert!(state.score(&m) > 0, "{m:?}");
    }
}

/// DM-95: an emergency removal finalized YES goes into the next commit even when an ordinary
/// removal with a smaller digest is also waiting (one removal per commit). Two ordinary
/// removals are approved with a join while the epoch steward is silent; one is committed, the
/// other is carried into the epoch where the silent steward's score (40) makes its removal
/// due.
#[test]
fn an_emergency_removal_goes_before_an_ordinary_one() {
    let mut net = network(419, 7, |c| {
        c.governance.slot_failure_penalty = 60;
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
    });
    let rotation = net.members[0].rotation();
    let target = rotation[0].clone();
    let silent = net.index_of(&target);
    silence(&mut net, silent);
    let stewards = net.members[0].stewards().to_vec();
    let others: Vec<usize> = (0..7).filter(|&i| i != silent).collect();
    // Two members that are not stewards, so no slot of theirs is scored.
    let mut outside = (0..7).filter(|&i| !stewards.contains(net.members[i].member_id()));
    let (t1, t2) = (outside.next().unwrap(), outside.next().unwrap());
    let others: Vec<usize> = others.into_iter().filter(|&i| i != t1 && i != t2).collect();
    let now = net.now;
    let mut ordinary = Vec::new();
    for (by, t) in [(others[0], t1), (others[1], t2)] {
        ordinary.push(net.members[by].propose_remove(now, &name(t)).unwrap());
        net.drain(by);
    }
    net.join();
    let honest = others[0];
    step_until(&mut net, "the emergency removal is approved", |net| {
        decided(
            net,
            honest,
            Outcome::Yes,
            |a| matches!(a, Action::RemoveBelowThreshold(m) if *m == target),
        )
    });
    let emergency = net
        .events(honest)
        .iter()
        .find_map(|e| match e {
            Event::ProposalDecided {
                proposal,
                action: Action::RemoveBelowThreshold(_),
                ..
            } => Some(*proposal),
            _ => None,
        })
        .unwrap();
    let waiting: Vec<_> = net.members[honest]
        .approved_proposals()
        .into_iter()
        .filter(|d| ordinary.contains(d))
        .collect();
    assert_eq!(waiting.len(), 1, "one ordinary removal is carried over");
    assert!(
        waiting[0] < emergency,
        "the ordinary removal must come first by digest (digests depend on the seed)"
    );
    let mark = net.events(honest).len();
    step_until(&mut net, "the next commit", |net| {
        net.events(honest)[mark..]
            .iter()
            .any(|e| matches!(e, Event::EpochChanged { .. }))
    });
    let removed = net.events(honest)[mark..]
        .iter()
        .find_map(|e| match e {
            Event::EpochChanged { removed, .. } => Some(removed.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(removed, vec![target], "the emergency removal went first");
}

/// DM-99 (Layer 2): a re-election round uses `recovery_inactivity` slots (1 s here, against a
/// `commit_inactivity` of 10 s). Every steward is silent; once the re-elected list is approved,
/// its first live steward, at position k, commits about `k` seconds later.
#[test]
fn re_election_slots_are_recovery_inactivity_apart() {
    let mut net = network(416, 7, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
        c.governance.commit_inactivity = Duration::from_secs(10);
        c.governance.recovery_inactivity = Duration::from_secs(1);
    });
    let mut silent: Vec<usize> = net.members[0]
        .stewards()
        .iter()
        .map(|s| net.index_of(s))
        .collect();
    for &i in &silent {
        silence(&mut net, i);
    }
    let honest = (0..7).find(|i| !silent.contains(i)).unwrap();
    let epoch = net.members[honest].epoch();
    net.join();
    let elect1 = |a: &Action| matches!(a, Action::ElectStewards { retry_round: 1, .. });
    step_until(&mut net, "the re-election is opened", |net| {
        !opened_by(net, honest, elect1).is_empty()
    });
    let list = net
        .events(honest)
        .iter()
        .find_map(|e| match e {
            Event::ProposalOpened {
                action:
                    Action::ElectStewards {
                        stewards,
                        retry_round: 1,
                    },
                ..
            } => Some(stewards.clone()),
            _ => None,
        })
        .unwrap();
    // The re-elected list's first steward is silent too, so the rotation needs a slot.
    let first = net.index_of(&list[0]);
    if !silent.contains(&first) {
        silence(&mut net, first);
        silent.push(first);
    }
    let k = list
        .iter()
        .position(|m| !silent.contains(&net.index_of(m)))
        .expect("a live steward in the re-elected list");
    assert!(
        k >= 1,
        "the first steward of the re-elected list is silenced above"
    );
    step_until(&mut net, "the re-election is approved", |net| {
        decided(net, honest, Outcome::Yes, elect1)
    });
    let approved_at = net.now;
    step_until(&mut net, "the re-elected list commits", |net| {
        net.members[honest].epoch() != epoch
    });
    let took = net.now - approved_at;
    let slot = Duration::from_secs(k as u64);
    assert!(
        took >= slot && took < slot + Duration::from_secs(3),
        "the steward at position {k} of the re-elected list committed after {took:?}"
    );
}

/// DM-26, DM-87, DM-88: a commit whose MLS changes or group parameters differ from those of
/// the proposals it references is refused (`CommitMismatch`), changes nothing, and its
/// committer is reported as `BrokenCommit`: an add of another key package than the voted one
/// (a broken MLS proposal), a removal of another member than the voted one, an MLS proposal
/// nobody voted on (a parameters proposal that changes nothing), and group parameters other
/// than the ones the batch implies. Each is built by a steward of the rotation from a batch
/// finalized everywhere, so only the check of its contents can refuse it. The honest commits
/// follow.
#[test]
fn a_commit_that_differs_from_its_proposals_is_refused_and_reported() {
    let mut net = network(420, 5, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
        c.freeze_window = Duration::from_secs(20);
    });
    let rotation = net.members[0].rotation();
    let e = net.index_of(&rotation[0]);
    let b = net.index_of(&rotation[1]);
    let r = net.index_of(&rotation[2]);
    let stewards = net.members[0].stewards().to_vec();
    let outside: Vec<usize> = (0..5)
        .filter(|&i| !stewards.contains(net.members[i].member_id()))
        .collect();
    let (gone, other) = (outside[0], outside[1]);
    let x = net.join();
    let y = net.join();
    let now = net.now;
    net.members[r].propose_remove(now, &name(gone)).unwrap();
    net.drain(r);
    step_until(&mut net, "both adds and the removal are approved", |net| {
        (0..5).all(|i| net.members[i].approved_proposals().len() == 3)
    });
    let all = net.members[e].approved_proposals();
    let add_x = net.members[e].test_proposals_about(&name(x), &all);
    let removal = net.members[e].test_proposals_about(&name(gone), &all);
    let now = net.now;
    let tampered = vec![
        (
            net.members[e]
                .test_commit_adding_instead(now, &add_x, &name(y))
                .unwrap(),
            "added members differ from the proposals",
        ),
        (
            net.members[e]
                .test_commit_removing_instead(now, &removal, &name(other))
                .unwrap(),
            "removed members differ from the proposals",
        ),
        (
            net.members[e]
                .test_commit_with_unvoted_proposal(now, &add_x)
                .unwrap(),
            "commit carries unvoted proposals",
        ),
        // The backup's commit walks past the epoch steward (a slot penalty): the commit
        // proposes new parameters, but not those.
        (
            net.members[b]
                .test_commit_with_score(now, &add_x, &rotation[0], 10)
                .unwrap(),
            "group parameters differ from the ones the proposals imply",
        ),
    ];
    for (commit, reason) in &tampered {
        let before = net.members[r].state_digest();
        let err = net.inject(r, commit).expect_err(reason);
        assert_eq!(err, Error::CommitMismatch(reason));
        assert_eq!(net.members[r].state_digest(), before, "{reason}");
    }
    assert_eq!(
        net.violations(r, ViolationKind::BrokenCommit),
        vec![
            rotation[0].clone(),
            rotation[0].clone(),
            rotation[0].clone(),
            rotation[1].clone()
        ]
    );
    net.run();
    for j in [x, y] {
        assert_eq!(net.members[j].phase(), Phase::Member);
    }
    assert_eq!(net.members[gone].phase(), Phase::Closed);
    net.assert_agreement();
}

/// DM-82, DM-83: a proposal claiming the automatic YES of a leave ("Self-Removal") is refused
/// unless its MLS sender, creator and target are one member: a leave whose target is not its
/// creator (`InvalidProposal`), and a member's leave sent directly by another member
/// (`SenderMismatch`); so is a vote sent by another member than its voter. Each refusal
/// changes nothing, and (DM-83's deviation) no penalty follows: no violation is reported, and
/// the sender's agreed score is still the default once the honest leave is committed.
#[test]
fn a_leave_or_vote_not_sent_by_its_signer_is_refused() {
    let mut net = network(421, 4, |_| {});
    let (receiver, forger, leaver, voter) = (0, 1, 2, 3);
    let now = net.now;
    net.members[forger]
        .test_propose_leave_of(now, &name(leaver))
        .unwrap();
    let forged = take_transmits(&mut net, forger);
    let before = net.members[receiver].state_digest();
    let err = net
        .inject(receiver, &forged[0].payload)
        .expect_err("refused");
    assert_eq!(
        err,
        Error::InvalidProposal("leave whose target is not its creator")
    );
    assert_eq!(net.members[receiver].state_digest(), before);

    // Member 2 leaves; member 1 hears it first and sends it on as its own proposal.
    let leave = net.members[leaver].leave(now).unwrap();
    let honest = take_transmits(&mut net, leaver);
    net.inject(forger, &honest[0].payload).unwrap();
    net.members[forger]
        .test_send_proposal_as_own(now, &leave)
        .unwrap();
    let resent = take_transmits(&mut net, forger);
    let before = net.members[receiver].state_digest();
    let err = net
        .inject(receiver, &resent[0].payload)
        .expect_err("refused");
    assert_eq!(
        err,
        Error::SenderMismatch {
            signer: name(leaver),
            sender: name(forger)
        }
    );
    assert_eq!(net.members[receiver].state_digest(), before);

    // Member 3's vote on the leave, sent on by member 1 as its own vote.
    net.members[voter]
        .handle_packet(now, &honest[0].payload)
        .unwrap();
    let vote = take_transmits(&mut net, voter);
    net.inject(forger, &vote[0].payload).unwrap();
    net.members[forger]
        .test_send_vote_as_own(now, &leave, &name(voter))
        .unwrap();
    let resent = take_transmits(&mut net, forger);
    net.inject(receiver, &honest[0].payload).unwrap();
    let before = net.members[receiver].state_digest();
    let err = net
        .inject(receiver, &resent[0].payload)
        .expect_err("refused");
    assert_eq!(
        err,
        Error::SenderMismatch {
            signer: name(voter),
            sender: name(forger)
        }
    );
    assert_eq!(net.members[receiver].state_digest(), before);

    // DM-83: no penalty.
    assert!(
        !net.events(receiver)
            .iter()
            .any(|e| matches!(e, Event::Violation { .. })),
        "a refused proposal or vote is not reported"
    );
    net.run();
    assert_eq!(net.members[leaver].phase(), Phase::Closed);
    net.assert_agreement();
    let state = net.members[receiver].group_state().unwrap();
    assert_eq!(state.score(&name(forger)), state.config.default_peer_score);
}

/// DM-31, DM-48: a proposal whose payload does not decode as a governance action, or whose
/// signed kind is not its payload's, is refused and changes nothing.
#[test]
fn proposals_whose_payload_is_not_an_action_of_their_kind_are_refused() {
    let mut net = network(422, 3, |_| {});
    let now = net.now;
    net.members[1]
        .test_propose_raw(now, ProposalKind::Commit, b"not an action".to_vec())
        .unwrap();
    let undecodable = take_transmits(&mut net, 1);
    let before = net.members[0].state_digest();
    let err = net.inject(0, &undecodable[0].payload).expect_err("refused");
    assert!(matches!(err, Error::Wire(_)), "{err:?}");
    assert_eq!(net.members[0].state_digest(), before);

    for kind in [ProposalKind::StewardElection, ProposalKind::Emergency] {
        net.members[1]
            .test_propose_removal_as(now, &name(2), kind)
            .unwrap();
        let mislabelled = take_transmits(&mut net, 1);
        let before = net.members[0].state_digest();
        let err = net.inject(0, &mislabelled[0].payload).expect_err("refused");
        assert_eq!(
            err,
            Error::InvalidProposal("payload does not match the proposal kind"),
            "{kind:?}"
        );
        assert_eq!(net.members[0].state_digest(), before, "{kind:?}");
    }
}

/// DM-73 (and DM-71): a commit still waiting when its epoch ends was never justified here.
/// The epoch steward commits an open removal with the approved add, so its commit waits at
/// every other member; the removal is then finalized NO, and the backup's commit of the add
/// ends the epoch. Every member that held the waiting commit reports its sender as
/// `NonFinalized`.
#[test]
fn a_commit_still_waiting_when_its_epoch_ends_is_reported_as_non_finalized() {
    // A long Δ (20 s): members that abstained while it ran let the waiting commit drive a
    // new dead round every candidate window, until nobody had acknowledgements left for the
    // backup's commit (found by this test; `candidate_expected_until`).
    let mut net = network(425, 5, |c| {
        c.freeze_window = Duration::from_secs(20);
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
    });
    let rotation = net.members[0].rotation();
    let e = net.index_of(&rotation[0]);
    let stewards = net.members[0].stewards().to_vec();
    let gone = (0..5)
        .find(|&i| !stewards.contains(net.members[i].member_id()))
        .unwrap();
    let others: Vec<usize> = (0..5).filter(|&i| i != e).collect();
    let epoch = net.members[0].epoch();
    let x = net.join();
    step_until(&mut net, "the add is approved everywhere", |net| {
        (0..5).all(|i| net.members[i].approved_proposals().len() == 1)
    });
    let now = net.now;
    let removal = net.members[others[0]]
        .propose_remove(now, &name(gone))
        .unwrap();
    net.drain(others[0]);
    net.run_for(Duration::from_millis(100));
    let mut batch = net.members[e].approved_proposals();
    batch.push(removal);
    let now = net.now;
    net.members[e].test_commit_batch(now, &batch).unwrap();
    net.drain(e);
    net.run_for(Duration::from_millis(100));
    for &i in &others {
        assert_eq!(net.members[i].epoch(), epoch, "member {i} applied it");
        let now = net.now;
        if i != others[0] {
            net.members[i].vote(now, removal, Choice::No).unwrap();
            net.drain(i);
        }
    }
    step_until(&mut net, "the epoch ends", |net| {
        others.iter().all(|&i| net.members[i].epoch() != epoch)
    });
    assert!(decided(&net, others[1], Outcome::No, |a| *a
        == Action::Remove(name(gone))));
    assert!(net.members[others[1]].roster().contains(&name(x)));
    assert!(net.members[others[1]].roster().contains(&name(gone)));
    for &i in &others {
        assert_eq!(
            net.violations(i, ViolationKind::NonFinalized),
            vec![rotation[0].clone()],
            "member {i}"
        );
    }
}

/// DM-9 (deviation): there is no freezing phase. A proposal opened during Δ (after the
/// epoch's first YES armed it, before it closes) is accepted everywhere, voted on and
/// decided, and the commit that ends Δ carries it with the proposal that armed Δ.
#[test]
fn a_proposal_opened_during_the_freeze_window_goes_into_the_commit_that_ends_it() {
    let mut net = network(423, 5, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
        c.freeze_window = Duration::from_secs(20);
    });
    let stewards = net.members[0].stewards().to_vec();
    let gone = (0..5)
        .find(|&i| !stewards.contains(net.members[i].member_id()))
        .unwrap();
    let proposer = (0..5).find(|&i| i != gone).unwrap();
    let epoch = net.members[0].epoch();
    let x = net.join();
    step_until(&mut net, "the add is approved everywhere", |net| {
        (0..5).all(|i| net.members[i].approved_proposals().len() == 1)
    });
    let armed = net.now;
    net.run_for(Duration::from_secs(5));
    let refusals = net.refusals().len();
    let now = net.now;
    net.members[proposer]
        .propose_remove(now, &name(gone))
        .expect("a proposal may be opened during Δ");
    net.drain(proposer);
    step_until(&mut net, "the removal is approved everywhere", |net| {
        (0..5).all(|i| net.members[i].approved_proposals().len() == 2)
    });
    assert_eq!(net.members[0].epoch(), epoch, "decided during Δ");
    assert!(net.now - armed < Duration::from_secs(20));
    assert_eq!(net.refusals().len(), refusals, "{:?}", net.refusals());
    let mark = net.events(0).len();
    step_until(&mut net, "the commit that ends Δ", |net| {
        net.members[0].epoch() != epoch
    });
    let change = net.events(0)[mark..]
        .iter()
        .find_map(|e| match e {
            Event::EpochChanged { added, removed, .. } => Some((added.clone(), removed.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(change, (vec![name(x)], vec![name(gone)]));
    net.run();
    net.assert_agreement();
}

/// DM-13 (deviation): a proposal still open when its epoch ends is finalized afterwards, in
/// the retired voting machine of its epoch. A removal is opened just as the epoch steward
/// sends its commit, so its automatic votes (a second later) arrive after the epoch change;
/// the members decide it from those late votes. A member that missed them decides it early
/// from the evidence bundle the next committer sends, and applies the commit long before
/// the removal's deadline.
#[test]
fn a_proposal_open_at_the_epoch_change_is_finalized_in_its_retired_machine() {
    let mut net = network(424, 5, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
    });
    let stewards = net.members[0].stewards().to_vec();
    let outside: Vec<usize> = (0..5)
        .filter(|&i| !stewards.contains(net.members[i].member_id()))
        .collect();
    let (gone, late) = (outside[0], outside[1]);
    let e = net.index_of(&net.members[0].rotation()[0]);
    let proposer = (0..5).find(|&i| i != gone && i != late).unwrap();
    let epoch = net.members[0].epoch();
    let mark = net.records.len();
    net.join();
    step_until(&mut net, "the epoch steward sends its commit", |net| {
        commits(
            &net.records[mark..]
                .iter()
                .filter_map(|r| match r {
                    Record::Sent(i, t) if *i == e => Some(t.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        )
        .len()
            == 1
    });
    // Its votes, a second after the proposal arrives, come after the epoch change (about a
    // second after the commit is sent, once acknowledged).
    net.run_for(Duration::from_millis(600));
    let now = net.now;
    let removal = net.members[proposer]
        .propose_remove(now, &name(gone))
        .unwrap();
    net.drain(proposer);
    let is_removal = |a: &Action| *a == Action::Remove(name(gone));
    step_until(&mut net, "the add is applied everywhere", |net| {
        (0..5).all(|i| net.members[i].epoch() != epoch)
    });
    for i in 0..5 {
        assert!(
            !decided(&net, i, Outcome::Yes, is_removal),
            "member {i} decided the removal before the epoch changed"
        );
    }
    // `late` misses the votes. So does `gone`: holding its own removal approved while a
    // commit that removed nobody went by, it would open a leave, and the leave would
    // remove it first
    // (`a_member_whose_removal_only_it_approved_leaves_when_a_commit_passes_it_by`).
    net.deaf = vec![late, gone];
    step_until(&mut net, "the removal is decided from late votes", |net| {
        (0..5)
            .filter(|&i| i != late && i != gone)
            .all(|i| decided(net, i, Outcome::Yes, is_removal))
    });
    net.deaf.clear();
    assert!(!decided(&net, late, Outcome::Yes, is_removal));
    step_until(
        &mut net,
        "the removal is committed at the member that missed the votes",
        |net| !net.members[late].roster().contains(&name(gone)),
    );
    let opened_at = net
        .records
        .iter()
        .position(|r| matches!(r, Record::Event(i, Event::ProposalOpened { proposal, .. }) if *i == late && *proposal == removal))
        .expect("the removal was opened");
    assert!(opened_at > mark);
    for i in (0..5).filter(|&i| i != gone) {
        let events = net.events(i);
        let changed = events
            .iter()
            .position(|e| matches!(e, Event::EpochChanged { epoch: n, .. } if Some(*n) > epoch))
            .unwrap();
        let (at, decision) = events
            .iter()
            .enumerate()
            .find_map(|(k, e)| match e {
                Event::ProposalDecided {
                    proposal, decision, ..
                } if *proposal == removal => Some((k, *decision)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("member {i} decided the removal"));
        assert!(at > changed, "member {i} decided it after the epoch change");
        assert_eq!(decision.outcome, Outcome::Yes, "member {i}");
        assert_eq!(
            decision.by,
            DecidedBy::Early,
            "member {i}: not at the deadline"
        );
    }
    net.run();
    net.assert_agreement();
}

/// §8 and docs/protocol.md §4 ("A deadline decision follows later votes"): a member that
/// decided a proposal NO at its deadline, alone, and then moved to the next epoch forgets the
/// proposal's action — but the proposal stays in its retired voting machine, and the evidence
/// of the commit that applies it revises the NO into a final YES. The revision must approve
/// the proposal there, or the member can never justify that commit and stays an epoch behind
/// for good (`demls-sim --generated 16370222585020 --mode liveness`).
#[test]
fn a_deadline_no_forgotten_at_the_epoch_change_is_revised_by_the_commits_evidence() {
    // Silent voters count as NO: the late member, holding only its own and the creator's
    // votes, decides NO at the deadline.
    let mut net = network(425, 5, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
        c.silent_counts_as_yes = false;
    });
    let stewards = net.members[0].stewards().to_vec();
    let late = (0..5)
        .find(|&i| !stewards.contains(net.members[i].member_id()))
        .unwrap();
    let e = net.index_of(&net.members[0].rotation()[0]);
    let gone = (0..5).find(|&i| i != late && i != e).unwrap();
    let proposer = (0..5).find(|&i| i != late && i != gone).unwrap();
    let epoch = net.members[0].epoch();
    // `late` hears nothing from here on but the removal below: it stays in `epoch` and
    // decides the removal at its deadline without the votes.
    net.deaf = vec![late];
    let mark = net.records.len();
    net.join();
    step_until(&mut net, "the epoch steward sends its commit", |net| {
        net.records[mark..].iter().any(|r| {
            matches!(r, Record::Sent(i, t) if *i == e
                && t.class == TrafficClass::Handshake && t.channel == Channel::Conversation)
        })
    });
    net.run_for(Duration::from_millis(600));
    let now = net.now;
    let removal = net.members[proposer]
        .propose_remove(now, &name(gone))
        .unwrap();
    assert_eq!(
        net.members[proposer].epoch(),
        epoch,
        "proposed in the old epoch"
    );
    let before = net.records.len();
    net.drain(proposer);
    let sent: Vec<Vec<u8>> = net.records[before..]
        .iter()
        .filter_map(|r| match r {
            Record::Sent(i, t) if *i == proposer => Some(t.payload.clone()),
            _ => None,
        })
        .collect();
    for bytes in &sent {
        net.inject(late, bytes).unwrap();
    }
    let is_removal = |a: &Action| *a == Action::Remove(name(gone));
    step_until(
        &mut net,
        "the late member decides the removal NO at its deadline",
        |net| decided(net, late, Outcome::No, is_removal),
    );
    assert_eq!(net.members[late].epoch(), epoch, "still in the old epoch");
    step_until(&mut net, "the others decide the removal YES", |net| {
        (0..5)
            .filter(|&i| i != late && i != gone)
            .all(|i| decided(net, i, Outcome::Yes, is_removal))
    });
    // Back on the network, it speaks (the others relay to a member they hear from in a past
    // epoch): it catches up with the first commit (its epoch change forgets the removal it
    // decided NO), then the removal's commit brings the votes it missed.
    net.deaf.clear();
    let now = net.now;
    net.members[late].send_message(now, b"back").unwrap();
    net.drain(late);
    step_until(
        &mut net,
        "the removal is committed at the member that decided it NO",
        |net| !net.members[late].roster().contains(&name(gone)),
    );
    let revised = net.events(late).into_iter().any(|e| {
        matches!(e, Event::ProposalRevised { proposal, decision, .. }
            if *proposal == removal && decision.outcome == Outcome::Yes)
    });
    assert!(
        revised,
        "the evidence revised the late member's deadline NO"
    );
    net.run();
    net.assert_agreement();
}

/// "Self-Removal" and Layer 3: a member holding its own leave approved never commits it
/// itself. When a deadlock proposal is finalized NO the members that voted NO hold no
/// approval at all, so none of them will commit the leave (those that decided it may all
/// have left, and the ones that joined since never heard of it): the leaver opens its leave
/// again, and every honest member approves it at once (`demls-sim --generated
/// 196138652130102 --mode liveness`). Fails if the leaver keeps waiting.
#[test]
fn a_leaver_whose_approved_leave_nobody_else_holds_opens_it_again_after_a_failed_deadlock() {
    let mut net = network(426, 5, |c| {
        c.governance.sn_min = 2;
        c.governance.sn_max = 2;
    });
    let stewards: Vec<usize> = net.members[0]
        .stewards()
        .to_vec()
        .iter()
        .map(|m| net.index_of(m))
        .collect();
    let outside: Vec<usize> = (0..5).filter(|i| !stewards.contains(i)).collect();
    // The leaver is a steward, so nobody but the other steward is in line to commit.
    let (leaver, creator) = (stewards[1], outside[0]);
    // The other steward stays silent while the leave is decided; then everyone but the
    // leaver forgets the decision, as members that joined after it never knew it.
    silence(&mut net, stewards[0]);
    let now = net.now;
    let leave = net.members[leaver].leave(now).unwrap();
    net.drain(leaver);
    step_until(&mut net, "every member decides the leave YES", |net| {
        (0..5).all(|i| net.members[i].approved_proposals().contains(&leave))
    });
    for i in (0..5).filter(|&i| i != leaver) {
        net.members[i].test_forget_decisions();
        net.members[i].test_set_byzantine(Byzantine::default());
    }
    let now = net.now;
    net.members[creator].propose_deadlock(now).unwrap();
    net.drain(creator);
    step_until(&mut net, "the deadlock proposal is decided NO", |net| {
        decided(net, leaver, Outcome::No, |a| *a == Action::Deadlock)
    });
    step_until(&mut net, "the leaver opens its leave again", |net| {
        opened_by(net, creator, |a| *a == Action::Leave(name(leaver))).len() == 2
    });
    step_until(&mut net, "the leaver is removed", |net| {
        (0..5)
            .filter(|&i| i != leaver)
            .all(|i| !net.members[i].roster().contains(&name(leaver)))
    });
    net.run();
    net.assert_agreement();
}

/// docs/protocol.md §9, "The commit round", step 3 (stalled rounds and locks): a member that
/// never speaks again kept a split acknowledgement round alive for good — a round dies only
/// once every member that could change its outcome was heard from. Four members, one of
/// them cut off: the epoch steward's candidate has two acknowledgements, the second
/// steward's own candidate one, and the fourth member could still make either win. At the
/// escalation the three move to the next round; the two locked on the epoch steward's
/// candidate acknowledge it again, the second steward — whose candidate can no longer win —
/// follows the rule, and the quorum forms (`demls-sim --generated 184584897013581 --mode
/// liveness --byzantine-mix any`). Fails if members stay in a live round for good.
#[test]
fn a_split_round_a_silent_member_keeps_alive_is_left_at_the_escalation() {
    let mut net = network(427, 4, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
        c.auto_vote = None;
    });
    let rotation = rotation_indices(&net);
    let (e, second) = (rotation[0], rotation[1]);
    let cut_off = (0..4).find(|i| !rotation.contains(i)).unwrap();
    net.deaf = vec![cut_off];
    let epoch = net.members[e].epoch();
    let j = net.join();
    net.run_for(Duration::from_millis(500));
    let add = *net.opened_adds(e, j).last().expect("the add is open");
    for i in (0..4).filter(|&i| i != cut_off) {
        let now = net.now;
        let _ = net.members[i].vote(now, add, Choice::Yes); // the creator voted already
        net.drain(i);
    }
    net.run_for(Duration::from_millis(300));
    assert!((0..4)
        .filter(|&i| i != cut_off)
        .all(|i| net.members[i].approved_proposals().contains(&add)));
    // Both stewards commit before either candidate reaches the other: each supports its
    // own in round 0; the third member acknowledges the epoch steward's by the rule.
    for i in [e, second] {
        let now = net.now;
        net.members[i].test_commit_batch(now, &[add]).unwrap();
        net.drain(i);
    }
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.members[e].epoch(), epoch, "round 0 has no quorum");
    assert_eq!(net.members[e].test_ack_round(), 0);
    step_until(&mut net, "the add is committed", |net| {
        (0..4)
            .filter(|&i| i != cut_off)
            .all(|i| net.members[i].epoch() != epoch)
    });
    assert!(net.members[e].roster().contains(&name(j)));
    let honest: Vec<usize> = (0..4).filter(|&i| i != cut_off).collect();
    let auth = net.members[e].epoch_authenticator();
    for &i in &honest {
        assert_eq!(net.members[i].epoch_authenticator(), auth, "member {i}");
    }
}

/// The lock that makes leaving a live round safe (docs/protocol.md §9, "The commit round",
/// step 3): a member acknowledges again, in later rounds, a candidate it acknowledged that
/// can still win that round, whatever the rule prefers by then. A Byzantine member
/// acknowledges the epoch steward's candidate X in round 0 to the epoch steward alone, which
/// applies it. The others leave the stalled round at the escalation, and a longer candidate
/// W has arrived: by the rule the member that acknowledged X in round 0 would acknowledge W
/// in round 1, and with W's committer and the Byzantine member W would win there — a fork.
/// Fails without the lock.
#[test]
fn a_member_locked_on_a_candidate_never_helps_another_win_a_later_round() {
    let mut net = network(428, 4, |c| {
        c.governance.sn_min = 3;
        c.governance.sn_max = 3;
        c.auto_vote = None;
    });
    let rotation = rotation_indices(&net);
    let (e, second, third) = (rotation[0], rotation[1], rotation[2]);
    let byz = (0..4).find(|i| !rotation.contains(i)).unwrap();
    // The Byzantine member hears nothing: it acknowledges only what the test makes it.
    net.deaf = vec![byz];
    let epoch = net.members[e].epoch();
    let (j1, j2) = (net.join(), net.join());
    net.run_for(Duration::from_millis(500));
    let adds: Vec<_> = [j1, j2]
        .iter()
        .map(|&j| *net.opened_adds(e, j).last().expect("the add is open"))
        .collect();
    for &add in &adds {
        for i in [e, second, third] {
            let now = net.now;
            let _ = net.members[i].vote(now, add, Choice::Yes); // the creator voted already
            net.drain(i);
        }
    }
    net.run_for(Duration::from_millis(300));
    // Round 0: the epoch steward's X applies the first add only, and the third member
    // acknowledges it; the second steward, cut off meanwhile, commits both adds (W) in its
    // slot, after that acknowledgement.
    net.deaf = vec![byz, second];
    let now = net.now;
    net.members[e].test_commit_batch(now, &adds[..1]).unwrap();
    net.drain(e);
    step_until(&mut net, "the second steward commits", |net| {
        net.members[third]
            .test_candidates()
            .iter()
            .any(|(_, c, _)| *c == name(second))
    });
    net.deaf = vec![byz];
    let candidate = |net: &Net, committer: usize| {
        net.members[third]
            .test_candidates()
            .into_iter()
            .find(|(_, c, _)| *c == name(committer))
            .expect("held")
    };
    let (x, w) = (candidate(&net, e), candidate(&net, second));
    assert_eq!((x.2, w.2), (1, 2), "W is longer: first by the rule");
    let (x, w) = (x.0, w.0);
    assert_eq!(net.members[third].test_my_ack(0), Some(x));
    assert_eq!(net.members[third].test_ack_round(), 0);
    // The Byzantine member completes X's quorum at the epoch steward alone, which applies
    // it and, cut off from here on, relays nothing.
    let now = net.now;
    let packets = net.members[byz]
        .test_acknowledge(now, 0, x, &name(e))
        .unwrap();
    for t in &packets {
        net.inject(e, &t.payload).unwrap();
    }
    assert_ne!(net.members[e].epoch(), epoch, "the epoch steward applied X");
    net.deaf = vec![byz, e];
    step_until(&mut net, "both leave round 0", |net| {
        [second, third]
            .iter()
            .all(|&i| net.members[i].test_ack_round() >= 1)
    });
    net.run_for(Duration::from_secs(3));
    // Locked on X, which can still win round 0, the third member acknowledges X again.
    assert_eq!(net.members[third].test_my_ack(1), Some(x));
    // The Byzantine member acknowledges W in every round the others reached: without the
    // lock, W had its quorum in round 1 with its committer and the third member.
    let now = net.now;
    let rounds = net.members[third].test_ack_round();
    for round in 1..=rounds {
        let packets = net.members[byz]
            .test_acknowledge(now, round, w, &name(second))
            .unwrap();
        for t in &packets {
            for i in [second, third] {
                let _ = net.inject(i, &t.payload);
            }
        }
    }
    net.run_for(Duration::from_secs(30));
    for i in [second, third] {
        assert_eq!(
            net.members[i].epoch(),
            epoch,
            "member {i} applied W: a fork with the epoch steward's X"
        );
    }
    // Back on the network, the epoch steward relays X's certificate.
    net.deaf = vec![byz];
    step_until(&mut net, "X is applied everywhere", |net| {
        [second, third]
            .iter()
            .all(|&i| net.members[i].epoch() == net.members[e].epoch())
    });
    let auth = net.members[e].epoch_authenticator();
    for i in [second, third] {
        assert_eq!(net.members[i].epoch_authenticator(), auth, "member {i}");
    }
}

/// A member removed by an acknowledged commit lingers (TIME_WAIT): in a group of two, the
/// leaver's acknowledgement is part of the only quorum; when it is lost, the leaver has
/// applied the commit and closed, and the committer would re-send its candidate for ever.
/// The closed leaver answers the committer's traffic of the epoch it left with the commit's
/// certificate, and the committer applies it (`demls-sim --generated 184917173371215 --mode
/// liveness`). Once the linger ends, a closed member answers nothing.
#[test]
fn a_removed_member_answers_the_epoch_it_left_with_the_certificate() {
    let mut net = network(431, 2, |_| {});
    let epoch = net.members[0].epoch();
    net.members[1].leave(net.now).unwrap();
    net.drain(1);
    let mark = net.records.len();
    step_until(&mut net, "the committer sends its candidate", |net| {
        net.records[mark..].iter().any(
            |r| matches!(r, Record::Sent(0, t) if !commits(std::slice::from_ref(t)).is_empty()),
        )
    });
    // Everything the leaver sends from now on is lost: its acknowledgement among it.
    net.deaf = vec![0];
    step_until(&mut net, "the leaver applies the commit", |net| {
        net.members[1].phase() == Phase::Closed
    });
    net.run_for(Duration::from_millis(200)); // its acknowledgement was in flight
    net.deaf.clear();
    assert_eq!(
        net.members[0].epoch(),
        epoch,
        "the committer misses the quorum"
    );
    assert!(
        net.members[1].next_deadline().is_some(),
        "the leaver lingers"
    );
    step_until(&mut net, "the committer applies its commit", |net| {
        net.members[0].epoch() != epoch
    });
    assert_eq!(net.members[0].roster(), vec![name(0)]);
    // The linger ends: a closed member then refuses everything and changes nothing.
    net.run();
    assert!(net.members[1].next_deadline().is_none());
    let before = net.members[1].state_digest();
    let stale = net.records.iter().find_map(|r| match r {
        Record::Sent(0, t) if t.channel == Channel::Conversation => Some(t.payload.clone()),
        _ => None,
    });
    let err = net
        .inject(1, &stale.expect("the committer sent something"))
        .unwrap_err();
    assert_eq!(err, Error::Closed);
    assert_eq!(net.members[1].state_digest(), before);
}

/// Catch-up relayers are the next members in the roster's order *that were in the epoch*:
/// a member that missed a commit adding two members, which come right after it in the
/// roster, was otherwise relayed to by the joiners only — which hold no certificate of the
/// commit that added them — and stayed behind for good (`demls-sim --generated
/// 165123477104928 --mode liveness`).
#[test]
fn a_late_member_is_relayed_to_by_members_the_commit_did_not_add() {
    let mut net = network(432, 3, |_| {});
    let epoch = net.members[0].epoch().unwrap();
    let late = 2;
    net.deaf = vec![late];
    let (x, y) = (net.join(), net.join());
    step_until(&mut net, "both joiners are in", |net| {
        net.members[x].phase() == Phase::Member && net.members[y].phase() == Phase::Member
    });
    let now_epoch = net.members[0].epoch().unwrap();
    assert_eq!(now_epoch.0, epoch.0 + 1, "one commit added both");
    let roster = net.members[0].roster();
    assert_eq!(
        &roster[roster.len() - 2..],
        &[name(x), name(y)],
        "the joiners come right after the late member"
    );
    net.deaf.clear();
    assert_eq!(net.members[late].epoch(), Some(epoch));
    // The late member speaks in its epoch: the members that were in it relay.
    let now = net.now;
    net.members[late].send_message(now, b"anyone?").unwrap();
    net.drain(late);
    step_until(&mut net, "the late member catches up", |net| {
        net.members[late].epoch() == Some(now_epoch)
    });
    net.run();
    net.assert_agreement();
}
