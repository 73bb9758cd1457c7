//! Votes that block, silent voters, reordered delivery, oversized payloads, and bad input: each
//! bad packet gets a typed error and leaves the receiver's state digest unchanged.

mod support;

use std::time::Duration;

use demls::consensus::{Choice, Epoch};
use demls::core::{Channel, Error, Event, Phase, TrafficClass};
use prost::Message;
use support::net::{name, Net, Record};

fn grow(net: &mut Net, n: usize) {
    if net.members.is_empty() {
        net.create();
    }
    while net.members.len() < n {
        net.join();
        net.run();
    }
    net.assert_agreement();
}

/// Sends `bytes` to member `i` and asserts a refusal matching `check`, with its state digest
/// unchanged.
fn assert_refused(net: &mut Net, i: usize, bytes: &[u8], check: impl Fn(&Error) -> bool) {
    let before = net.members[i].state_digest();
    let err = net
        .inject(i, bytes)
        .expect_err("the packet must be refused");
    assert!(check(&err), "unexpected error: {err:?}");
    assert_eq!(
        net.members[i].state_digest(),
        before,
        "refused packet changed state ({err})"
    );
}

fn sent(net: &Net, from: usize, class: TrafficClass, channel: Channel) -> Vec<Vec<u8>> {
    net.records
        .iter()
        .filter_map(|r| match r {
            Record::Sent(i, t) if *i == from && t.class == class && t.channel == channel => {
                Some(t.payload.clone())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_no_majority_blocks_an_add() {
    let mut net = Net::new(21);
    net.config.auto_vote = Some(demls::core::AutoVote {
        after: Duration::from_millis(500),
        choice: Choice::No,
    });
    net.create();
    // The steward's own YES admits the first joiner (n = 1).
    net.join();
    net.run();
    grow(&mut net, 2);
    // Now members auto-vote NO: the joiner is refused.
    let j = net.join();
    net.run_for(Duration::from_secs(60));
    assert_eq!(net.members[j].phase(), Phase::PendingJoin);
    assert_eq!(net.members[0].roster(), vec![name(0), name(1)]);
    assert!(net.events(0).iter().any(|e| matches!(e,
        Event::ProposalDecided { decision, .. } if decision.outcome == demls::consensus::Outcome::No)));
    // The pending join expires.
    net.run();
    assert_eq!(net.members[0].roster(), vec![name(0), name(1)]);
    assert_eq!(net.members[j].phase(), Phase::Closed);
    assert!(net.events(j).contains(&&Event::JoinExpired));
}

#[test]
fn silent_voters_follow_the_liveness_flag_at_the_deadline() {
    for (silent_yes, admitted) in [(true, true), (false, false)] {
        let mut net = Net::new(22);
        net.config.silent_counts_as_yes = silent_yes;
        grow(&mut net, 4);
        // From now on members 1..=3 are silent: no automatic votes.
        for m in 1..4 {
            net.deaf.push(m);
        }
        let j = net.join();
        net.run();
        assert_eq!(
            net.members[j].phase() == Phase::Member,
            admitted,
            "silent_yes = {silent_yes}"
        );
        let decided_at_deadline = net.events(0).iter().any(|e| matches!(e,
            Event::ProposalDecided { decision, .. } if decision.by == demls::consensus::DecidedBy::Deadline));
        assert!(decided_at_deadline);
    }
}

#[test]
fn a_message_for_the_next_epoch_is_buffered_until_the_commit_arrives() {
    let mut net = Net::new(23);
    grow(&mut net, 3);
    let start = net.records.len();
    net.deaf.push(2);
    net.join();
    net.run();
    net.members[0]
        .send_message(net.now, b"first message of the new epoch")
        .unwrap();
    net.drain(0);
    net.run();
    assert_eq!(
        net.members[2].epoch(),
        Some(Epoch(2)),
        "member 2 missed the round"
    );
    net.deaf.clear();
    // Deliver what member 2 missed, with the new epoch's message moved to the front.
    let mut missed: Vec<Vec<u8>> = net.records[start..]
        .iter()
        .filter_map(|r| match r {
            Record::Sent(i, t) if *i != 2 && t.channel == Channel::Conversation => {
                Some(t.payload.clone())
            }
            _ => None,
        })
        .collect();
    let chat = sent(&net, 0, TrafficClass::Application, Channel::Conversation)
        .pop()
        .unwrap();
    missed.retain(|p| *p != chat);
    missed.insert(0, chat);
    for p in missed {
        let _ = net.inject(2, &p);
    }
    assert_eq!(net.members[2].epoch(), Some(Epoch(3)));
    assert!(net.events(2).iter().any(|e| matches!(e,
        Event::Message { body, .. } if body == b"first message of the new epoch")));
    net.run();
    net.assert_agreement();
}

#[test]
fn large_welcomes_and_commits_are_fragmented_and_reassembled() {
    let mut net = Net::new(24);
    net.config.max_packet_len = 1200;
    grow(&mut net, 6);
    let sizes: Vec<usize> = net
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Sent(_, t) => Some(t.payload.len()),
            _ => None,
        })
        .collect();
    assert!(
        sizes.iter().all(|&s| s <= 1200),
        "a packet exceeded the limit"
    );
    assert!(net.refusals().is_empty(), "{:?}", net.refusals());
    // A payload too large to ever deliver is refused with a clear error.
    let mut m = net.members.remove(0);
    m.send_message(net.now, &vec![7u8; 1200]).unwrap(); // fragmented: fine
    let huge = vec![7u8; m.config().max_payload_len + 1];
    assert!(matches!(
        m.send_message(net.now, &huge),
        Err(Error::PayloadTooLarge { .. })
    ));
}

#[test]
fn bad_input_gets_typed_errors_and_changes_nothing() {
    let mut net = Net::new(25);
    grow(&mut net, 4);

    // Garbage.
    assert_refused(&mut net, 1, b"\x00\x01 not a packet", |e| {
        matches!(e, Error::Wire(_))
    });

    // Another conversation's packet (same bytes, other conversation id).
    let chat = {
        net.members[2].send_message(net.now, b"hi").unwrap();
        net.drain(2);
        sent(&net, 2, TrafficClass::Application, Channel::Conversation)
            .pop()
            .unwrap()
    };
    let mut foreign = demls::wire::v1::Packet::decode(chat.as_slice()).unwrap();
    foreign.conversation_id = b"another-conversation".to_vec();
    assert_refused(&mut net, 1, &foreign.encode_to_vec(), |e| {
        matches!(e, Error::WrongConversation)
    });
    net.run();

    // A group with the same id but other members (another seed): its messages do not verify.
    let mut other = Net::new(999);
    grow(&mut other, 4);
    assert_eq!(other.members[0].epoch(), net.members[1].epoch());
    other.members[0]
        .send_message(other.now, b"intruder")
        .unwrap();
    other.drain(0);
    let intruder = sent(&other, 0, TrafficClass::Application, Channel::Conversation)
        .pop()
        .unwrap();
    assert_refused(&mut net, 1, &intruder, |e| matches!(e, Error::Mls(_)));

    // A replayed commit (an earlier epoch's).
    let old_commit = sent(&net, 0, TrafficClass::Handshake, Channel::Conversation)[0].clone();
    assert_refused(&mut net, 1, &old_commit, |e| {
        matches!(e, Error::StaleEpoch { .. })
    });

    // A commit from a member who is not the steward: every member has approved an add, and
    // member 1 commits it before the steward's freeze window ends.
    let mut rogue_net = Net::new(26);
    grow(&mut rogue_net, 3);
    rogue_net.join();
    for _ in 0..200 {
        if rogue_net.members[1].approved_proposals().is_empty() {
            rogue_net.step();
        }
    }
    assert!(!rogue_net.members[1].approved_proposals().is_empty());
    rogue_net.members[1]
        .test_commit_unchecked(rogue_net.now)
        .unwrap();
    let mut out = Vec::new();
    while let Some(t) = rogue_net.members[1].poll_transmit() {
        if t.class == TrafficClass::Handshake && t.channel == Channel::Conversation {
            out.push(t.payload);
        }
    }
    let forged_commit = out.pop().expect("member 1 produced a commit");
    assert_refused(
        &mut rogue_net,
        2,
        &forged_commit,
        |e| matches!(e, Error::NotFromSteward(m) if *m == name(1)),
    );

    // A message from a removed member: sent before its removal, delivered after.
    let mut net = Net::new(27);
    grow(&mut net, 4);
    net.members[3].send_message(net.now, b"last words").unwrap();
    let last_words = net.members[3].poll_transmit().unwrap().payload;
    net.members[1].propose_remove(net.now, &name(3)).unwrap();
    net.drain(1);
    net.run();
    assert_eq!(net.members[3].phase(), Phase::Closed);
    assert_refused(&mut net, 0, &last_words, |e| {
        matches!(e, Error::StaleEpoch { .. })
    });
    assert!(matches!(
        net.members[3].send_message(net.now, b"x"),
        Err(Error::Closed)
    ));
}

#[test]
fn a_fragment_claiming_absurdly_many_pieces_is_refused_without_allocating() {
    // Found by fuzzing (conversation_inbound): count = 2^32 - 1 made the receiver pre-allocate
    // ~100 GB. Now the decoder refuses counts above the payload length or 65,536, and the
    // reassembler stores only received pieces.
    let mut net = Net::new(28);
    grow(&mut net, 2);
    let forged = |count: u32, total_len: u32| {
        demls::wire::v1::Packet {
            conversation_id: b"test-conversation".to_vec(),
            body: Some(demls::wire::v1::packet::Body::Fragment(
                demls::wire::v1::Fragment {
                    message_id: vec![0x11; 16],
                    index: 0,
                    count,
                    total_len,
                    chunk: vec![0],
                },
            )),
        }
        .encode_to_vec()
    };
    for (count, total_len) in [(u32::MAX, 1), (10_000_000, 20_000_000), (3, 2)] {
        assert_refused(&mut net, 1, &forged(count, total_len), |e| {
            matches!(e, Error::Wire(_))
        });
    }
    // A plausible count is accepted; what it holds is the byte that arrived.
    let before = net.members[1].memory_bytes();
    net.inject(1, &forged(60_000, 1_000_000)).unwrap();
    assert_eq!(net.members[1].memory_bytes(), before + 1);
}

#[test]
fn a_vote_that_overtakes_its_proposal_is_kept_and_counted() {
    // Found by the simulator: a vote delivered before its proposal was refused and lost, so
    // the receiver's deadline decision could differ from everyone else's.
    let mut net = Net::new(29);
    grow(&mut net, 4);
    let now = net.now;
    let proposal = net.members[1].propose_remove(now, &name(3)).unwrap();
    let p = net.members[1].poll_transmit().unwrap().payload;
    net.inject(0, &p).unwrap();
    net.members[0].vote(now, proposal, Choice::Yes).unwrap();
    let v = net.members[0].poll_transmit().unwrap().payload;
    // Member 2 receives member 0's vote first: kept, not refused.
    net.inject(2, &v)
        .expect("a vote ahead of its proposal is buffered");
    net.inject(2, &p).unwrap();
    net.members[2].vote(now, proposal, Choice::Yes).unwrap();
    net.drain(2);
    // Creator, member 0 and member 2: three YES of four is final only if member 0's
    // early vote was counted.
    assert!(net.events(2).iter().any(|e| matches!(
        e,
        Event::ProposalDecided { proposal: d, .. } if *d == proposal
    )));
}
