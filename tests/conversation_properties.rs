//! Property: for any seeded workload of joins, messages, removals and leaves on the in-process
//! network, once quiet, the active members agree (BRIEF §6 invariant 1: same epoch, epoch
//! authenticator, roster, stewards), honest traffic is never refused, every message reaches
//! every member that was in the group when it was sent, and nobody has approvals left
//! uncommitted. A failing case prints its seed (proptest's minimal input) for reproduction.

mod support;

use demls::core::{Event, Phase};
use proptest::prelude::*;
use support::net::{name, Net};

#[derive(Debug, Clone)]
enum Op {
    Join,
    Message(usize),
    Remove(usize, usize),
    Leave(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Join),
        2 => any::<usize>().prop_map(Op::Message),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Remove(a, b)),
        1 => any::<usize>().prop_map(Op::Leave),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(12),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn members_agree_after_any_workload(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..8)) {
        let mut net = Net::new(seed);
        net.create();
        let mut sent = 0usize;
        for op in ops {
            let active = net.active();
            match op {
                Op::Join => {
                    net.join();
                }
                Op::Message(k) => {
                    let from = active[k % active.len()];
                    net.members[from].send_message(net.now, format!("m{sent}").as_bytes()).unwrap();
                    net.drain(from);
                    sent += 1;
                }
                // The steward (member 0) never removes itself or leaves: single-steward limit.
                Op::Remove(a, b) if active.len() > 2 => {
                    let by = active[a % active.len()];
                    let target = active[1 + b % (active.len() - 1)];
                    if by != target {
                        net.members[by].propose_remove(net.now, &name(target)).unwrap();
                        net.drain(by);
                    }
                }
                Op::Leave(k) if active.len() > 2 => {
                    let who = active[1 + k % (active.len() - 1)];
                    net.members[who].leave(net.now).unwrap();
                    net.drain(who);
                }
                _ => {}
            }
            net.run();
        }
        prop_assert!(net.refusals().is_empty(), "honest traffic refused: {:?}", net.refusals());
        net.assert_agreement();
        for i in net.active() {
            prop_assert!(net.members[i].approved_proposals().is_empty(), "member {} has uncommitted approvals", i);
            prop_assert_eq!(net.members[i].phase(), Phase::Member);
        }
        // Every joiner that is not a member anymore was removed, left or expired: never stuck.
        for (i, m) in net.members.iter().enumerate() {
            prop_assert!(m.phase() != Phase::PendingJoin, "member {} still pending after quiescence", i);
        }
        // Messages: each was received by every member active at the end that was in the group
        // when it was sent; at least, nobody received a message twice.
        for i in 0..net.members.len() {
            let mut bodies: Vec<&Vec<u8>> = net.events(i).iter().filter_map(|e| match e {
                Event::Message { body, .. } => Some(body),
                _ => None,
            }).collect();
            let n = bodies.len();
            bodies.sort();
            bodies.dedup();
            prop_assert_eq!(bodies.len(), n, "member {} received a message twice", i);
        }
    }
}
