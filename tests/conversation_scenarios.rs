//! End-to-end scenarios of the single-steward flow on the in-process network with virtual
//! time ("Single steward", "Self-Removal"; BRIEF §4).

mod support;

use std::time::Duration;

use demls::core::Conversation;
use demls::core::{Action, Event, Phase};
use support::net::{name, Net, Record, START_UNIX_MS};

/// One base instant for every restored conversation in a test.
fn base_instant() -> std::time::Instant {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)] // the test host's clock origin
    *BASE.get_or_init(std::time::Instant::now)
}

/// Member 0 creates; `n - 1` nodes join one at a time, each fully admitted before the next.
fn group_one_by_one(n: usize, seed: u64) -> Net {
    let mut net = Net::new(seed);
    net.create();
    for _ in 1..n {
        let j = net.join();
        net.run();
        assert_eq!(
            net.members[j].phase(),
            Phase::Member,
            "member {j} joined; refusals: {:?}",
            net.refusals()
        );
    }
    net
}

#[test]
fn a_creator_is_sole_member_and_steward_at_epoch_zero() {
    let mut net = Net::new(1);
    net.create();
    let c = &net.members[0];
    assert_eq!(c.epoch(), Some(demls::consensus::Epoch(0)));
    assert_eq!(c.roster(), vec![name(0)]);
    assert_eq!(c.stewards(), &[name(0)]);
    assert!(net.members[0].next_deadline().is_none());
    assert!(!net.step(), "an idle group has nothing to do");
}

#[test]
fn a_node_joins_a_one_member_group() {
    let net = group_one_by_one(2, 2);
    net.assert_agreement();
    assert_eq!(net.members[1].epoch(), Some(demls::consensus::Epoch(1)));
    assert_eq!(net.members[1].roster(), vec![name(0), name(1)]);
    assert!(net
        .events(1)
        .iter()
        .any(|e| matches!(e, Event::Joined { .. })));
    assert!(net.events(0).iter().any(|e| matches!(e,
        Event::EpochChanged { added, .. } if added == &vec![name(1)])));
    assert!(net.refusals().is_empty(), "{:?}", net.refusals());
}

#[test]
fn groups_of_three_and_ten_are_built_one_by_one() {
    for n in [3, 10] {
        let net = group_one_by_one(n, n as u64);
        net.assert_agreement();
        assert_eq!(net.members[0].roster().len(), n);
        assert_eq!(
            net.members[0].epoch(),
            Some(demls::consensus::Epoch(n as u64 - 1))
        );
    }
}

#[test]
fn several_joins_are_batched_into_one_commit() {
    let mut net = group_one_by_one(3, 7);
    let before = net.members[0].epoch().unwrap().0;
    let joiners: Vec<usize> = (0..4).map(|_| net.join()).collect();
    net.run();
    for j in &joiners {
        assert_eq!(net.members[*j].phase(), Phase::Member);
    }
    net.assert_agreement();
    assert_eq!(net.members[0].roster().len(), 7);
    assert_eq!(
        net.members[0].epoch().unwrap().0,
        before + 1,
        "one commit for all four adds"
    );
}

#[test]
fn the_per_member_proposal_limit_is_configurable_and_excess_joiners_are_admitted_later() {
    // With at most 2 open proposals per member, the steward proposes 2 of 5 joiners at a time;
    // the others' key packages stay buffered and are proposed after each epoch change, or
    // by another member once the voting inactivity timer passes ("Inactivity Timer").
    let mut net = Net::new(8);
    net.config.max_open_proposals_per_member = 2;
    net.create();
    net.join();
    net.run();
    let joiners: Vec<usize> = (0..5).map(|_| net.join()).collect();
    net.run();
    for j in joiners {
        assert_eq!(net.members[j].phase(), Phase::Member, "member {j}");
    }
    net.assert_agreement();
    assert!(
        net.members[0].epoch().unwrap().0 >= 3,
        "admitted over several epochs"
    );
    // Nobody had more than 2 proposals open at once.
    let mut open: std::collections::BTreeMap<demls::consensus::MemberId, i32> = Default::default();
    let mut creators: std::collections::BTreeMap<demls::consensus::ProposalDigest, _> =
        Default::default();
    for e in net.events(0) {
        match e {
            Event::ProposalOpened {
                proposal, creator, ..
            } => {
                *open.entry(creator.clone()).or_default() += 1;
                assert!(open[creator] <= 2, "{creator} had 3 proposals open");
                creators.insert(*proposal, creator.clone());
            }
            Event::ProposalDecided { proposal, .. } => {
                if let Some(c) = creators.get(proposal) {
                    *open.get_mut(c).unwrap() -= 1;
                }
            }
            _ => {}
        }
    }
}

#[test]
fn application_messages_reach_everyone_with_the_verified_sender() {
    let mut net = group_one_by_one(4, 4);
    net.members[2]
        .send_message(net.now, b"hello group")
        .unwrap();
    net.drain(2);
    net.run();
    for i in [0, 1, 3] {
        assert!(net.events(i).iter().any(|e| matches!(e,
            Event::Message { sender, body } if *sender == name(2) && body == b"hello group")));
    }
    assert!(
        !net.events(2)
            .iter()
            .any(|e| matches!(e, Event::Message { .. })),
        "no echo"
    );
}

#[test]
fn a_member_is_removed_by_vote() {
    let mut net = group_one_by_one(4, 11);
    net.members[1].propose_remove(net.now, &name(3)).unwrap();
    net.drain(1);
    net.run();
    assert_eq!(net.members[3].phase(), Phase::Closed);
    assert!(net.events(3).contains(&&Event::Closed));
    assert_eq!(net.members[0].roster(), vec![name(0), name(1), name(2)]);
    net.assert_agreement();
}

#[test]
fn a_member_leaves_and_others_vote_yes_automatically() {
    let mut net = Net::new(12);
    net.config.auto_vote = None; // only the self-leave rule votes
    net.create();
    for _ in 1..4 {
        net.join();
        net.run_for(Duration::from_secs(1));
        // Without auto-votes, the others vote explicitly on each add.
        vote_yes_on_everything_open(&mut net);
        net.run();
    }
    assert_eq!(net.active().len(), 4);
    let leave = net.members[2].leave(net.now).unwrap();
    net.drain(2);
    net.run();
    assert_eq!(net.members[2].phase(), Phase::Closed);
    assert_eq!(net.members[0].roster(), vec![name(0), name(1), name(3)]);
    // Decided early by the automatic YES votes, not at the deadline.
    assert!(net.events(0).iter().any(|e| matches!(e,
        Event::ProposalDecided { proposal, action: Action::Leave(_), decision }
            if *proposal == leave && decision.by == demls::consensus::DecidedBy::Early)));
    net.assert_agreement();
}

#[test]
fn two_runs_from_one_seed_are_byte_identical_and_another_seed_differs() {
    let run = |seed: u64| {
        let mut net = group_one_by_one(5, seed);
        // Fresh entropy from the host, as a production host would feed OS entropy.
        for (i, m) in net.members.iter_mut().enumerate() {
            m.mix_entropy(format!("host entropy {seed} {i}").as_bytes());
        }
        net.members[3]
            .send_message(net.now, b"determinism")
            .unwrap();
        net.drain(3);
        net.members[1].propose_remove(net.now, &name(2)).unwrap();
        net.drain(1);
        net.run();
        let digests: Vec<[u8; 32]> = net.members.iter().map(|m| m.state_digest()).collect();
        let snapshots: Vec<Vec<u8>> = net.members.iter().map(|m| m.snapshot().unwrap()).collect();
        (net.records, digests, snapshots)
    };
    let (a, da, sa) = run(99);
    let (b, db, sb) = run(99);
    // Snapshot *bytes* carry openmls's wall-clock timestamps of past-epoch secrets (storage
    // values are not canonical, docs/architecture.md); what must be identical is what they
    // restore to: the same state, continuing with the same bytes.
    let continue_from = |snapshots: &[Vec<u8>]| -> Vec<(Vec<u8>, [u8; 32])> {
        snapshots
            .iter()
            .filter_map(|bytes| {
                let mut m = Conversation::restore(bytes, base_instant(), START_UNIX_MS + 3_600_000)
                    .unwrap();
                let digest = m.state_digest();
                m.send_message(base_instant(), b"after restore").ok()?;
                Some((m.poll_transmit().unwrap().payload, digest))
            })
            .collect()
    };
    let (ca, cb) = (continue_from(&sa), continue_from(&sb));
    assert_eq!(ca.len(), 4, "four members are still in the group");
    assert_eq!(ca, cb);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    assert_eq!(da, db);
    let (c, _, _) = run(100);
    let sent = |r: &Vec<Record>| -> Vec<Vec<u8>> {
        r.iter()
            .filter_map(|x| match x {
                Record::Sent(_, t) => Some(t.payload.clone()),
                _ => None,
            })
            .collect()
    };
    assert_ne!(sent(&a), sent(&c));
}

#[test]
fn two_removals_approved_in_one_epoch_are_both_committed() {
    // One commit carries at most one removal; the other approved removal stays finalized and
    // goes into the next commit instead of being lost at the epoch change.
    let mut net = group_one_by_one(6, 13);
    let epoch = net.members[0].epoch().unwrap().0;
    net.members[1].propose_remove(net.now, &name(4)).unwrap();
    net.drain(1);
    net.members[2].propose_remove(net.now, &name(5)).unwrap();
    net.drain(2);
    net.members[3].leave(net.now).unwrap();
    net.drain(3);
    net.run();
    for gone in [3, 4, 5] {
        assert_eq!(net.members[gone].phase(), Phase::Closed, "member {gone}");
    }
    assert_eq!(net.members[0].roster(), vec![name(0), name(1), name(2)]);
    assert_eq!(
        net.members[0].epoch().unwrap().0,
        epoch + 3,
        "one removal per commit"
    );
    assert!(net.members[0].approved_proposals().is_empty());
    net.assert_agreement();
    assert!(net.refusals().is_empty(), "{:?}", net.refusals());
}

/// Every member votes YES, by hand, on every proposal it saw opened and has not voted on.
/// A group of `n` members that vote only on command (no automatic votes), each admitted
/// by everyone's explicit YES.
fn voting_group(seed: u64, n: usize) -> Net {
    let mut net = Net::new(seed);
    net.config.auto_vote = None;
    net.create();
    for _ in 1..n {
        net.join();
        net.run_for(Duration::from_secs(1));
        vote_yes_on_everything_open(&mut net);
        net.run();
    }
    assert_eq!(net.active().len(), n);
    net
}

fn vote_yes_on_everything_open(net: &mut Net) {
    loop {
        let mut voted = false;
        for i in net.active() {
            let open: Vec<_> = net
                .events(i)
                .iter()
                .filter_map(|e| match e {
                    Event::ProposalOpened { proposal, .. } => Some(*proposal),
                    _ => None,
                })
                .collect();
            for p in open {
                if net.members[i]
                    .vote(net.now, p, demls::consensus::Choice::Yes)
                    .is_ok()
                {
                    voted = true;
                }
                net.drain(i);
            }
        }
        net.run_for(Duration::from_secs(1));
        if !voted {
            return;
        }
    }
}

#[test]
fn a_proposal_still_open_after_the_epoch_changed_can_be_voted_down() {
    // The retired voting machine of a past epoch keeps its open proposals (late votes,
    // evidence); `vote` must reach them too — otherwise honest NO votes are refused and,
    // with silent voters counted YES, the proposal passes at its deadline.
    let mut net = voting_group(41, 3);
    let removal = net.members[1].propose_remove(net.now, &name(2)).unwrap();
    net.drain(1);
    net.run_for(Duration::from_millis(500));
    // An add opens, is approved and committed while the removal is still open.
    let epoch = net.members[0].epoch().unwrap();
    let j = net.join();
    net.run_for(Duration::from_secs(1));
    for i in [0, 1, 2] {
        let add = net.events(i).iter().rev().find_map(|e| match e {
            Event::ProposalOpened {
                proposal,
                action: Action::Add(_),
                ..
            } => Some(*proposal),
            _ => None,
        });
        // The steward opened the add and already counts its own YES.
        let _ = net.members[i].vote(net.now, add.unwrap(), demls::consensus::Choice::Yes);
        net.drain(i);
    }
    net.run_for(Duration::from_secs(5));
    assert!(
        net.members[0].epoch().unwrap() > epoch,
        "the add was committed"
    );
    assert_eq!(net.members[j].phase(), Phase::Member);
    // Members 0 and 2 vote the old epoch's removal down.
    for i in [0, 2] {
        net.members[i]
            .vote(net.now, removal, demls::consensus::Choice::No)
            .unwrap();
        net.drain(i);
    }
    net.run();
    for i in [0, 1, 2] {
        assert!(
            net.events(i).iter().any(|e| matches!(e,
                Event::ProposalDecided { proposal, decision, .. }
                    if *proposal == removal
                        && decision.outcome == demls::consensus::Outcome::No)),
            "member {i} did not decide the removal NO"
        );
    }
    assert!(net.members[0].roster().contains(&name(2)));
}

#[test]
fn a_late_vote_of_a_member_removed_since_still_counts_in_its_epoch() {
    // A member votes on a proposal of epoch e, then is removed by the commit into e + 1; its
    // vote arrives after that commit. It was a voter of e, and the members that heard it in
    // time counted it: refusing it (its sender is no longer in the roster) made a member
    // decide the proposal alone at its deadline, counting the vote as silent — YES where
    // the others decided NO (`demls-sim --byzantine-bench proposal_spammer --seed 8`).
    let mut net = voting_group(42, 5);
    let epoch = net.members[0].epoch().unwrap();
    // The proposal whose vote arrives late: member 1 proposes member 2's removal.
    let late_decided = net.members[1].propose_remove(net.now, &name(2)).unwrap();
    net.drain(1);
    net.run_for(Duration::from_millis(500));
    // Member 4 votes NO; its vote is held back on the wire.
    net.members[4]
        .vote(net.now, late_decided, demls::consensus::Choice::No)
        .unwrap();
    let mut held = Vec::new();
    while let Some(t) = net.members[4].poll_transmit() {
        held.push(t.payload);
    }
    assert!(!held.is_empty());
    for i in [0, 2] {
        net.members[i]
            .vote(net.now, late_decided, demls::consensus::Choice::No)
            .unwrap();
        net.drain(i);
    }
    // Meanwhile member 4 is removed: the commit moves everyone to the next epoch.
    let removal = net.members[0].propose_remove(net.now, &name(4)).unwrap();
    net.drain(0);
    net.run_for(Duration::from_millis(500));
    for i in 1..5 {
        net.members[i]
            .vote(net.now, removal, demls::consensus::Choice::Yes)
            .unwrap();
        net.drain(i);
    }
    net.run_for(Duration::from_secs(10));
    assert_eq!(
        net.members[4].phase(),
        Phase::Closed,
        "member 4 was removed"
    );
    assert!(net.members[0].epoch().unwrap() > epoch);
    // Member 4's vote arrives now, in the past epoch: it is counted, and with it the
    // proposal is decided NO (3 of 5) before its deadline.
    for i in 0..4 {
        for bytes in &held {
            net.inject(i, bytes).unwrap();
        }
    }
    net.run();
    for i in 0..4 {
        assert!(
            net.events(i).iter().any(|e| matches!(e,
                Event::ProposalDecided { proposal, decision, .. }
                    if *proposal == late_decided
                        && decision.outcome == demls::consensus::Outcome::No)),
            "member {i} did not count member 4's late NO"
        );
    }
    assert!(net.members[0].roster().contains(&name(2)));
    net.assert_agreement();
}

/// Votes YES, at every active member, on the proposal `proposal`.
fn everyone_votes_yes(net: &mut Net, proposal: demls::consensus::ProposalDigest) {
    for i in net.active() {
        let _ = net.members[i].vote(net.now, proposal, demls::consensus::Choice::Yes);
        net.drain(i);
    }
}

#[test]
fn an_add_decided_after_its_member_joined_and_left_is_moot() {
    // Two adds of one key package are open; the first admits the node, a removal takes it
    // out again, and only then is the second decided (at its deadline). Its key package was
    // used: it is moot however the roster looks when it is decided. Judged by the roster at
    // decision time it was approved where the node was gone and moot where it was still in
    // — members one commit behind refused the steward's commit for good
    // (`demls-sim --generated 278806007258121 --mode liveness`) — and here, where everyone
    // decides it after the removal, it re-added a node that had left (a used key package).
    let mut net = voting_group(43, 4);
    let x = net.join();
    net.run_for(Duration::from_millis(500));
    let steward_add = net
        .events(0)
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::ProposalOpened { proposal, .. } => Some(*proposal),
            _ => None,
        })
        .expect("the steward opened the add");
    let key_package = net.announced_key_package(x);
    let second_add = net.members[1].propose_add(net.now, &key_package).unwrap();
    net.drain(1);
    net.run_for(Duration::from_millis(500));
    everyone_votes_yes(&mut net, steward_add);
    net.run_for(Duration::from_secs(8));
    assert_eq!(
        net.members[x].phase(),
        Phase::Member,
        "the first add admitted the node"
    );
    let removal = net.members[0].propose_remove(net.now, &name(x)).unwrap();
    net.drain(0);
    net.run_for(Duration::from_millis(500));
    everyone_votes_yes(&mut net, removal);
    net.run_for(Duration::from_secs(8));
    assert_eq!(
        net.members[x].phase(),
        Phase::Closed,
        "the removal took the node out"
    );
    let epoch = net.members[0].epoch().unwrap();
    net.run(); // the second add's deadline passes
    for i in 0..4 {
        assert!(
            net.events(i).iter().any(|e| matches!(e,
                Event::ProposalDecided { proposal, .. } if *proposal == second_add)),
            "member {i} decided the second add"
        );
        assert!(
            !net.members[i].roster().contains(&name(x)),
            "member {i} re-added the node"
        );
        assert_eq!(
            net.members[i].epoch(),
            Some(epoch),
            "member {i} committed again"
        );
    }
    net.assert_agreement();
}

#[test]
fn a_member_whose_removal_only_it_approved_leaves_when_a_commit_passes_it_by() {
    // A removal reaches only its proposer and its target (the others are cut off); both
    // decide it at the deadline and nobody who could commit it knows. The target may not
    // commit its own removal ("Self-Removal"): when a commit that removes nobody comes a
    // commit round or more after it approved its removal, and does not apply it, it opens a
    // leave, which every member approves at once (`demls-sim --generated 247066367802075
    // --mode liveness`).
    let mut net = voting_group(44, 4);
    net.deaf = vec![0, 2];
    let removal = net.members[1].propose_remove(net.now, &name(3)).unwrap();
    net.drain(1);
    net.run_for(Duration::from_secs(1));
    // The target votes on it too: its creator heard another vote, so it does not propose it
    // again (`a_removal_nobody_heard_is_proposed_again_for_the_group_to_vote`).
    net.members[3]
        .vote(net.now, removal, demls::consensus::Choice::Yes)
        .unwrap();
    net.drain(3);
    net.run_for(Duration::from_secs(1));
    net.deaf.clear();
    net.run(); // the deadline passes
    for i in [1, 3] {
        assert!(
            net.events(i).iter().any(|e| matches!(e,
                Event::ProposalDecided { proposal, decision, .. }
                    if *proposal == removal && decision.outcome == demls::consensus::Outcome::Yes)),
            "member {i} approved the removal"
        );
    }
    assert!(
        net.members[0].roster().contains(&name(3)),
        "the steward never heard of it"
    );
    // A commit that removes nobody: the admission of a new node.
    let x = net.join();
    net.run();
    assert_eq!(net.members[x].phase(), Phase::Member);
    assert_eq!(net.members[3].phase(), Phase::Closed, "member 3 left");
    for i in [0, 1, 2, x] {
        assert!(
            !net.members[i].roster().contains(&name(3)),
            "member {i} still has member 3"
        );
    }
    net.assert_agreement();
}

#[test]
fn the_last_member_leaves_by_closing_the_conversation() {
    // Nobody can commit the removal of a group's last member ("Self-Removal"; MLS has no
    // commit that empties a group): the member closes once its leave is approved, instead of
    // electing itself every epoch for a removal that never comes.
    let mut net = group_one_by_one(2, 41);
    net.members[1].leave(net.now).unwrap();
    net.drain(1);
    net.run();
    assert_eq!(net.members[1].phase(), Phase::Closed);
    assert_eq!(net.members[0].roster(), vec![name(0)]);
    let epoch = net.members[0].epoch().unwrap().0;
    net.members[0].leave(net.now).unwrap();
    net.drain(0);
    net.run(); // panics on a livelock: an election loop never becomes quiet
    assert_eq!(net.members[0].phase(), Phase::Closed);
    assert!(net.events(0).contains(&&Event::Closed));
    let epochs_after = net
        .events(0)
        .iter()
        .filter(|e| matches!(e, Event::EpochChanged { epoch: e, .. } if e.0 > epoch))
        .count();
    assert_eq!(epochs_after, 0, "no commit after the last member's leave");
}

/// How the commit that passes a lost removal by comes about.
enum PassedBy {
    /// A node's admission: a commit that removes nobody.
    Admission,
    /// Member 2's leave: a commit that removes another member, a commit round after the
    /// lost proposal's deadline.
    OtherLeave,
}

/// A proposal to remove member 3 of a group of four (its own `Leave`, or its `Remove` by
/// `creator`) is lost on its way out: its creator decides it alone at the deadline (silent
/// voters count as YES), opens it again — a removal once a commit passed it by (`pass`) —
/// and the group commits that one.
fn a_lost_removal_of_member_3_is_opened_again(seed: u64, creator: usize, pass: PassedBy) {
    let mut net = group_one_by_one(4, seed);
    let lost = match creator {
        3 => net.members[3].leave(net.now),
        c => net.members[c].propose_remove(net.now, &name(3)),
    }
    .unwrap();
    while net.members[creator].poll_transmit().is_some() {}
    net.drain(creator);
    net.run();
    assert!(
        net.events(creator).iter().any(|e| matches!(e,
            Event::ProposalDecided { proposal, decision, .. }
                if *proposal == lost && decision.outcome == demls::consensus::Outcome::Yes)),
        "the creator approved its lost proposal alone"
    );
    assert!(
        !net.events(0).iter().any(|e| matches!(e,
            Event::ProposalOpened { proposal, .. } if *proposal == lost)),
        "the others never heard of the lost proposal"
    );
    let expected = match pass {
        PassedBy::Admission => {
            let x = net.join();
            net.run();
            assert_eq!(net.members[x].phase(), Phase::Member);
            vec![name(0), name(1), name(2), name(x)]
        }
        PassedBy::OtherLeave => {
            net.members[2].leave(net.now).unwrap();
            net.drain(2);
            net.run();
            assert_eq!(net.members[2].phase(), Phase::Closed);
            vec![name(0), name(1)]
        }
    };
    assert_eq!(net.members[3].phase(), Phase::Closed);
    assert_eq!(net.members[0].roster(), expected);
    assert!(net.events(0).iter().any(|e| matches!(e,
        Event::ProposalOpened { action: Action::Leave(m) | Action::Remove(m), proposal, .. }
            if *m == name(3) && *proposal != lost)));
    net.assert_agreement();
}

#[test]
fn a_leave_nobody_heard_is_opened_again_until_it_is_committed() {
    // The leaver may not commit its own removal; it opens the leave again, and the others
    // approve it at once and commit it.
    a_lost_removal_of_member_3_is_opened_again(42, 3, PassedBy::Admission);
}

#[test]
fn a_removal_nobody_heard_is_proposed_again_for_the_group_to_vote() {
    // Nobody can commit a decision nobody else voted on: once a commit that removed nobody
    // passed it by, the creator proposes the removal again in the current epoch; the group
    // votes on it (here YES, automatically) and commits it.
    a_lost_removal_of_member_3_is_opened_again(45, 1, PassedBy::Admission);
}

#[test]
fn a_removal_nobody_heard_is_proposed_again_after_a_commit_that_removed_another() {
    // A commit that removes someone else passes the lost removal by too, when it comes a
    // commit round after the removal's deadline: a committer that held the removal would have
    // applied it. (Waiting for a commit that removes nobody left it stranded while every
    // commit removed someone, until its creator was removed itself: `demls-sim --generated
    // 161107420471090 --mode liveness --byzantine-mix any`.)
    a_lost_removal_of_member_3_is_opened_again(46, 1, PassedBy::OtherLeave);
}

#[test]
fn a_joiner_whose_welcome_was_lost_is_welcomed_again() {
    // The welcome goes out once, with the commit, and only the joiner can read it. The
    // joiner misses it; it announces its key package again, and the committer, which kept the
    // welcome, sends it again.
    let mut net = group_one_by_one(3, 43);
    let epoch = net.members[0].epoch().unwrap().0;
    let j = net.join();
    net.deaf.push(j);
    while net.members[0].epoch().unwrap().0 == epoch {
        assert!(net.step(), "the add was committed");
    }
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        net.members[j].phase(),
        Phase::PendingJoin,
        "the welcome was lost"
    );
    assert!(net.members[0].roster().contains(&name(j)));
    net.deaf.clear();
    net.run_for(Duration::from_secs(30));
    assert_eq!(
        net.members[j].phase(),
        Phase::Member,
        "{:?}",
        net.refusals()
    );
    assert_eq!(net.members[j].epoch().unwrap().0, epoch + 1);
    net.assert_agreement();
}

#[test]
fn a_member_left_alone_admits_a_joiner_whose_add_a_past_epoch_rejected() {
    // An add opened before an epoch change and rejected in the retired epoch's machine
    // counts as under way until the next epoch change. A member left alone has none unless
    // it commits, so it waited for good and never admitted a joiner that kept announcing
    // itself (`demls-sim --generated 91702268255622 --mode liveness`): alone, it proposes
    // the add again.
    let mut net = Net::new(48);
    net.config.auto_vote = None;
    net.config.silent_counts_as_yes = false;
    net.create();
    for _ in 1..3 {
        net.join();
        net.run_for(Duration::from_secs(1));
        vote_yes_on_everything_open(&mut net);
        net.run_for(Duration::from_secs(5));
    }
    assert_eq!(net.active().len(), 3);
    let j = net.join();
    net.run_for(Duration::from_secs(1));
    let first = net.opened_adds(0, j);
    assert_eq!(first.len(), 1, "the steward proposed the add");
    // Member 1 votes NO; members 1 and 2 leave while the add is open, so it is decided in
    // the retired machine at its deadline: one YES, one NO, one silent NO.
    net.members[1]
        .vote(net.now, first[0], demls::consensus::Choice::No)
        .unwrap();
    net.drain(1);
    for i in [2, 1] {
        net.members[i].leave(net.now).unwrap();
        net.drain(i);
        net.run_for(Duration::from_secs(5));
        assert_eq!(net.members[i].phase(), Phase::Closed);
    }
    assert_eq!(net.members[0].roster(), vec![name(0)]);
    net.run_for(Duration::from_secs(40));
    assert!(net.events(0).iter().any(|e| matches!(e,
        Event::ProposalDecided { proposal, decision, .. }
            if *proposal == first[0] && decision.outcome == demls::consensus::Outcome::No)));
    net.run_for(Duration::from_secs(30));
    assert_eq!(
        net.opened_adds(0, j).len(),
        2,
        "the lone member proposed the add again"
    );
    assert_eq!(net.members[j].phase(), Phase::Member);
    assert_eq!(net.members[0].roster(), vec![name(0), name(j)]);
}
