//! The multi-conversation `Node`: routing, lifecycle events, reaping, memory accounting, one
//! deadline over all conversations.

mod support;

use std::time::{Duration, Instant};

use demls::consensus::ConversationId;
use demls::core::{Node, NodeError, NodeEvent, Phase};
use support::net::{name, test_config, START_UNIX_MS};

fn cid(s: &str) -> ConversationId {
    ConversationId::new(s.as_bytes().to_vec()).unwrap()
}

/// Delivers every queued packet of `from` to `to` (same-node tests use two nodes).
fn pump(from: &mut Node, to: &mut Node, now: Instant) -> usize {
    let mut n = 0;
    while let Some((_, t)) = from.poll_transmit() {
        let _ = to.handle_packet(now, &t.payload);
        n += 1;
    }
    n
}

#[test]
fn a_node_routes_creates_joins_reports_and_reaps() {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut alice = Node::new();
    let mut bob = Node::new();
    for c in ["chess-club", "book-club"] {
        alice
            .create(
                test_config(),
                cid(c),
                name(0),
                [1; 32],
                start,
                START_UNIX_MS,
            )
            .unwrap();
        bob.join(
            test_config(),
            cid(c),
            name(1),
            [2; 32],
            start,
            START_UNIX_MS,
        )
        .unwrap();
    }
    assert_eq!(
        alice.create(
            test_config(),
            cid("chess-club"),
            name(0),
            [1; 32],
            start,
            START_UNIX_MS
        ),
        Err(NodeError::Duplicate(cid("chess-club")))
    );
    // Drive both nodes until quiet.
    let mut now = start;
    for _ in 0..10_000 {
        let moved = pump(&mut alice, &mut bob, now) + pump(&mut bob, &mut alice, now);
        if moved > 0 {
            continue;
        }
        let Some(next) = [alice.next_deadline(), bob.next_deadline()]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        if bob
            .conversations()
            .all(|c| bob.conversation(c).unwrap().phase() == Phase::Member)
        {
            break;
        }
        now = now.max(next);
        alice.tick_deadlines(now);
        bob.tick_deadlines(now);
    }
    let bob_events: Vec<NodeEvent> = std::iter::from_fn(|| bob.poll_event()).collect();
    for c in ["chess-club", "book-club"] {
        assert!(bob_events.contains(&NodeEvent::Joined(cid(c))), "{c}");
        assert_eq!(
            bob.conversation(&cid(c)).unwrap().roster(),
            vec![name(0), name(1)]
        );
    }
    let alice_events: Vec<NodeEvent> = std::iter::from_fn(|| alice.poll_event()).collect();
    assert_eq!(alice_events[0], NodeEvent::Created(cid("chess-club")));

    // Unroutable and foreign packets.
    let mut stranger = Node::new();
    stranger
        .create(
            test_config(),
            cid("elsewhere"),
            name(5),
            [5; 32],
            now,
            START_UNIX_MS,
        )
        .unwrap();
    stranger
        .command(&cid("elsewhere"), now, |c| c.send_message(now, b"hi"))
        .unwrap();
    let (_, t) = stranger.poll_transmit().unwrap();
    assert_eq!(
        alice.handle_packet(now, &t.payload),
        Err(NodeError::Unroutable(cid("elsewhere")))
    );

    // Memory is reported per conversation.
    let memory = alice.memory_use();
    assert_eq!(memory.len(), 2);
    assert!(memory.iter().all(|(_, m)| m.bytes > 1000));

    // Bob leaves the book club; once committed, his conversation is reaped to a summary.
    bob.command(&cid("book-club"), now, |c| c.leave(now))
        .unwrap();
    for _ in 0..1000 {
        let moved = pump(&mut bob, &mut alice, now) + pump(&mut alice, &mut bob, now);
        if bob.closed().contains_key(&cid("book-club")) {
            break;
        }
        if moved == 0 {
            now = [alice.next_deadline(), bob.next_deadline()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_secs(1))
                .max(now);
            alice.tick_deadlines(now);
            bob.tick_deadlines(now);
        }
    }
    assert!(bob.closed().contains_key(&cid("book-club")));
    assert!(bob.conversation(&cid("book-club")).is_none());
    assert!(
        std::iter::from_fn(|| bob.poll_event()).any(|e| e == NodeEvent::Closed(cid("book-club")))
    );
    assert_eq!(
        bob.command(&cid("book-club"), now, |c| c.send_message(now, b"x")),
        Err(NodeError::Closed(cid("book-club")))
    );
    assert_eq!(
        alice.conversation(&cid("book-club")).unwrap().roster(),
        vec![name(0)]
    );
}

/// Drives both nodes (packets first, then the earliest deadline) until `done`, dropping
/// whatever `bob` sends while `drop_bob` says so.
fn drive(
    alice: &mut Node,
    bob: &mut Node,
    now: &mut Instant,
    drop_bob: impl Fn(&Node) -> bool,
    done: impl Fn(&Node, &Node) -> bool,
) {
    for _ in 0..10_000 {
        if done(alice, bob) {
            return;
        }
        let mut moved = pump(alice, bob, *now);
        if drop_bob(bob) {
            while bob.poll_transmit().is_some() {}
        } else {
            moved += pump(bob, alice, *now);
        }
        if moved == 0 {
            let next = [alice.next_deadline(), bob.next_deadline()]
                .into_iter()
                .flatten()
                .min()
                .expect("something left to do");
            *now = next.max(*now);
            alice.tick_deadlines(*now);
            bob.tick_deadlines(*now);
        }
    }
    panic!("never done");
}

#[test]
fn a_reaped_conversation_lingers_to_answer_the_epoch_it_left() {
    // Multi-steward governance needs the leaver's acknowledgement in a group of two; when
    // it is lost, the leaver's node has already reaped the conversation. For a minute it
    // still routes the committer's traffic of that epoch to it, which relays the commit's
    // certificate (TIME_WAIT); then it forgets it.
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let config = support::net::multi_steward_config();
    let club = cid("chess-club");
    let mut alice = Node::new();
    let mut bob = Node::new();
    alice
        .create(
            config.clone(),
            club.clone(),
            name(0),
            [1; 32],
            now,
            START_UNIX_MS,
        )
        .unwrap();
    bob.join(config, club.clone(), name(1), [2; 32], now, START_UNIX_MS)
        .unwrap();
    drive(
        &mut alice,
        &mut bob,
        &mut now,
        |_| false,
        |_, bob| {
            bob.conversation(&cid("chess-club"))
                .is_some_and(|c| c.phase() == Phase::Member)
        },
    );
    let epoch = alice.conversation(&club).unwrap().epoch();
    bob.command(&club, now, |c| c.leave(now)).unwrap();
    // Bob's packets are lost from the moment his conversation is reaped: his
    // acknowledgement of the commit that removes him among them.
    drive(
        &mut alice,
        &mut bob,
        &mut now,
        |bob| bob.closed().contains_key(&cid("chess-club")),
        |_, bob| bob.closed().contains_key(&cid("chess-club")),
    );
    assert!(bob.conversation(&club).is_none(), "reaped");
    assert!(bob.next_deadline().is_some(), "but lingering");
    assert_eq!(alice.conversation(&club).unwrap().epoch(), epoch);
    drive(
        &mut alice,
        &mut bob,
        &mut now,
        |_| false,
        |alice, _| alice.conversation(&cid("chess-club")).unwrap().epoch() != epoch,
    );
    assert_eq!(alice.conversation(&club).unwrap().roster(), vec![name(0)]);
    // A minute later the lingering conversation is gone for good.
    let later = now + Duration::from_secs(61);
    bob.tick_deadlines(later);
    assert_eq!(bob.next_deadline(), None);
    alice
        .command(&club, later, |c| c.send_message(later, b"anyone?"))
        .unwrap();
    let (_, t) = alice.poll_transmit().unwrap();
    assert_eq!(
        bob.handle_packet(later, &t.payload),
        Err(NodeError::Closed(club.clone()))
    );
}
