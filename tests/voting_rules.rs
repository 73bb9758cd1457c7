//! One test per voting-layer rule (BRIEF §5, docs/protocol.md). Each fails if its rule breaks.

mod support;

use demls::consensus::{
    BundleSummary, Choice, DecidedBy, Epoch, Error, Event, Ingested, Limits, Outcome,
    ProposalDigest, Signed, SignedProposal, TiePolicy, Timestamp, VoteBundle, VotingMachine,
    VotingMessage, WireError,
};
use support::*;

fn proposal_of(msg: &VotingMessage) -> SignedProposal {
    match msg {
        VotingMessage::Proposal(p) => p.clone(),
        other => panic!("not a proposal: {other:?}"),
    }
}

/// Feeds `msg` to `m` as bytes.
fn feed(m: &mut VotingMachine, now: Timestamp, msg: &VotingMessage) -> Result<Ingested, Error> {
    m.handle_message(&crypto(), now, &msg.encode())
}

/// Asserts that `input` is refused with `expected` and leaves the state digest unchanged.
fn assert_refused(
    m: &mut VotingMachine,
    expected: Error,
    input: impl FnOnce(&mut VotingMachine) -> Result<Ingested, Error>,
) {
    let before = m.state_digest();
    assert_eq!(input(m), Err(expected));
    assert_eq!(
        m.state_digest(),
        before,
        "a refused input changed the state"
    );
}

/// A group of `n`, member 1's machine holding member 0's open proposal.
fn peer_with_open_proposal(
    n: usize,
    silent_yes: bool,
    tie: TiePolicy,
) -> (Group, VotingMachine, ProposalDigest) {
    let g = Group::new(n);
    let (_, digest, msg) = open(&g, silent_yes, tie);
    let mut peer = g.machine(1);
    assert_eq!(feed(&mut peer, T0, &msg), Ok(Ingested::Opened(digest)));
    drain(&mut peer);
    (g, peer, digest)
}

#[test]
fn opening_a_proposal_reports_it_and_counts_the_creators_vote() {
    let g = Group::new(4);
    let (mut creator, digest, msg) = open(&g, true, TiePolicy::Reject);
    let events = drain(&mut creator);
    assert_eq!(
        events,
        vec![Event::ProposalOpened {
            proposal: digest,
            kind: demls::consensus::ProposalKind::Commit,
            creator: member(0)
        }]
    );
    assert_eq!(creator.tally(&digest).unwrap().yes, 1);
    assert_eq!(
        creator.next_deadline(),
        Some(T0.saturating_add_ms(WINDOW_MS))
    );
    // A peer opens the same proposal from the wire; a second delivery is recognised.
    let mut peer = g.machine(2);
    assert_eq!(feed(&mut peer, T0, &msg), Ok(Ingested::Opened(digest)));
    assert_eq!(feed(&mut peer, T0, &msg), Ok(Ingested::AlreadyHave));
}

#[test]
fn a_single_member_decides_on_its_own_vote() {
    let g = Group::new(1);
    let (mut creator, digest, _) = open(&g, false, TiePolicy::Reject);
    let events = drain(&mut creator);
    assert!(matches!(
        events.as_slice(),
        [Event::ProposalOpened { .. }, Event::Decided { decision, .. }]
            if decision.outcome == Outcome::Yes && decision.by == DecidedBy::Early
    ));
    assert_eq!(creator.open_proposals(), 0);
    assert_eq!(creator.next_deadline(), None);
    assert_eq!(creator.decision(&digest).unwrap().outcome, Outcome::Yes);
}

#[test]
fn early_yes_needs_a_majority_among_a_two_thirds_quorum_and_is_reported_once() {
    let (g, mut peer, d) = peer_with_open_proposal(10, false, TiePolicy::Reject);
    // YES from members 1..=5: 6 YES of 10, but only 6 < 7 distinct voters.
    for i in 1..=5 {
        let v = VotingMessage::Vote(vote(&g, i, d, Choice::Yes, T0));
        assert_eq!(feed(&mut peer, T0, &v), Ok(Ingested::Counted));
    }
    assert!(drain(&mut peer).is_empty());
    // A 7th voter (a NO) completes the quorum: YES is now certain.
    let v = VotingMessage::Vote(vote(&g, 6, d, Choice::No, T0));
    assert_eq!(feed(&mut peer, T0, &v), Ok(Ingested::Counted));
    let events = drain(&mut peer);
    assert!(matches!(
        events.as_slice(),
        [Event::Decided { decision, .. }] if decision.outcome == Outcome::Yes
            && decision.by == DecidedBy::Early && decision.tally.yes == 6 && decision.tally.no == 1
    ));
    // A vote after the decision changes nothing and emits nothing.
    let before = peer.state_digest();
    let late = VotingMessage::Vote(vote(&g, 7, d, Choice::No, T0));
    assert_eq!(feed(&mut peer, T0, &late), Ok(Ingested::AfterDecision));
    assert_eq!(peer.state_digest(), before);
    assert!(drain(&mut peer).is_empty());
    // Nor does the deadline.
    peer.tick_deadlines(T0.saturating_add_ms(WINDOW_MS));
    assert!(drain(&mut peer).is_empty());
}

#[test]
fn early_no_as_soon_as_yes_is_impossible() {
    let (g, mut peer, d) = peer_with_open_proposal(5, true, TiePolicy::Retry);
    for i in 1..=2 {
        feed(
            &mut peer,
            T0,
            &VotingMessage::Vote(vote(&g, i, d, Choice::No, T0)),
        )
        .unwrap();
    }
    assert!(
        drain(&mut peer).is_empty(),
        "1 YES, 2 NO of 5: YES still possible"
    );
    feed(
        &mut peer,
        T0,
        &VotingMessage::Vote(vote(&g, 3, d, Choice::No, T0)),
    )
    .unwrap();
    assert!(matches!(
        drain(&mut peer).as_slice(),
        [Event::Decided { decision, .. }] if decision.outcome == Outcome::No
    ));
}

#[test]
fn silent_voters_count_per_the_liveness_flag_only_at_the_deadline() {
    for (silent_yes, expected) in [(true, Outcome::Yes), (false, Outcome::No)] {
        let (g, mut peer, d) = peer_with_open_proposal(6, silent_yes, TiePolicy::Reject);
        feed(
            &mut peer,
            T0,
            &VotingMessage::Vote(vote(&g, 1, d, Choice::Yes, T0)),
        )
        .unwrap();
        let deadline = T0.saturating_add_ms(WINDOW_MS);
        assert_eq!(peer.next_deadline(), Some(deadline));
        // Before the deadline: nothing, however often ticked.
        peer.tick_deadlines(Timestamp(deadline.0 - 1));
        peer.tick_deadlines(Timestamp(deadline.0 - 1));
        assert!(drain(&mut peer).is_empty());
        // At the deadline: 2 YES, 4 silent.
        peer.tick_deadlines(deadline);
        let events = drain(&mut peer);
        assert!(
            matches!(events.as_slice(), [Event::Decided { decision, .. }]
                if decision.outcome == expected && decision.by == DecidedBy::Deadline),
            "{events:?}"
        );
        assert_eq!(peer.next_deadline(), None);
        peer.tick_deadlines(deadline.saturating_add_ms(1));
        assert!(drain(&mut peer).is_empty(), "decided exactly once");
    }
}

#[test]
fn two_members_need_unanimity() {
    let (g, mut peer, d) = peer_with_open_proposal(2, false, TiePolicy::Retry);
    assert_eq!(peer.decision(&d), None, "one YES of two decides nothing");
    feed(
        &mut peer,
        T0,
        &VotingMessage::Vote(vote(&g, 1, d, Choice::No, T0)),
    )
    .unwrap();
    assert_eq!(peer.decision(&d).unwrap().outcome, Outcome::No);

    let (g, mut peer, d) = peer_with_open_proposal(2, false, TiePolicy::Retry);
    feed(
        &mut peer,
        T0,
        &VotingMessage::Vote(vote(&g, 1, d, Choice::Yes, T0)),
    )
    .unwrap();
    assert_eq!(peer.decision(&d).unwrap().outcome, Outcome::Yes);
}

#[test]
fn ties_follow_the_signed_tie_policy() {
    for (tie, expected) in [
        (TiePolicy::Reject, Outcome::No),
        (TiePolicy::Retry, Outcome::Retry),
    ] {
        let (g, mut peer, d) = peer_with_open_proposal(4, true, tie);
        feed(
            &mut peer,
            T0,
            &VotingMessage::Vote(vote(&g, 1, d, Choice::Yes, T0)),
        )
        .unwrap();
        feed(
            &mut peer,
            T0,
            &VotingMessage::Vote(vote(&g, 2, d, Choice::No, T0)),
        )
        .unwrap();
        feed(
            &mut peer,
            T0,
            &VotingMessage::Vote(vote(&g, 3, d, Choice::No, T0)),
        )
        .unwrap();
        assert_eq!(peer.decision(&d).unwrap().outcome, expected, "{tie:?}");
    }
}

#[test]
fn a_resent_vote_is_recognised_by_digest_before_any_signature_check() {
    let (g, mut peer, d) = peer_with_open_proposal(5, true, TiePolicy::Reject);
    let v = vote(&g, 1, d, Choice::Yes, T0);
    assert_eq!(
        peer.handle_vote(&crypto(), T0, v.clone()),
        Ok(Ingested::Counted)
    );
    let before = peer.state_digest();
    // Same transcript, garbage signature: answered from the digest, so never verified.
    let mut copy = v.clone();
    copy.signature = vec![0; 64];
    assert_eq!(
        peer.handle_vote(&crypto(), T0, copy),
        Ok(Ingested::AlreadyHave)
    );
    assert_eq!(
        peer.handle_vote(&crypto(), T0, v),
        Ok(Ingested::AlreadyHave)
    );
    assert_eq!(peer.state_digest(), before);
    assert!(drain(&mut peer).is_empty());
}

#[test]
fn equivocation_is_kept_as_evidence_reported_once_and_never_counted() {
    let (g, mut peer, d) = peer_with_open_proposal(5, true, TiePolicy::Reject);
    let first = vote(&g, 1, d, Choice::Yes, T0);
    let second = vote(&g, 1, d, Choice::No, T0);
    let third = vote(&g, 1, d, Choice::No, T0.saturating_add_ms(1));
    peer.handle_vote(&crypto(), T0, first.clone()).unwrap();
    let tally = peer.tally(&d).unwrap();
    assert_eq!(
        peer.handle_vote(&crypto(), T0, second.clone()),
        Ok(Ingested::Equivocation)
    );
    assert_eq!(
        peer.tally(&d).unwrap(),
        tally,
        "the conflicting vote is not counted"
    );
    match drain(&mut peer).as_slice() {
        [Event::Equivocation(e)] => {
            assert_eq!(
                (e.voter.clone(), &e.counted, &e.conflicting),
                (member(1), &first, &second)
            );
        }
        other => panic!("expected one equivocation event, got {other:?}"),
    }
    let before = peer.state_digest();
    assert_eq!(
        peer.handle_vote(&crypto(), T0, second),
        Ok(Ingested::AlreadyHave)
    );
    assert_eq!(
        peer.handle_vote(&crypto(), T0, third),
        Ok(Ingested::AlreadyEquivocated)
    );
    assert_eq!(peer.state_digest(), before);
    assert!(drain(&mut peer).is_empty());
    assert_eq!(peer.equivocations(&d).count(), 1);
}

#[test]
fn an_equivocation_with_a_forged_signature_is_refused() {
    let (g, mut peer, d) = peer_with_open_proposal(5, true, TiePolicy::Reject);
    peer.handle_vote(&crypto(), T0, vote(&g, 1, d, Choice::Yes, T0))
        .unwrap();
    let mut forged = vote(&g, 1, d, Choice::No, T0);
    forged.signature = vote(&g, 2, d, Choice::No, T0).signature;
    assert_refused(
        &mut peer,
        Error::BadSignature {
            signer: member(1),
            what: Signed::Vote,
        },
        |m| m.handle_vote(&crypto(), T0, forged),
    );
}

#[test]
fn bad_signatures_and_tampering_are_refused_without_state_change() {
    let g = Group::new(4);
    let (_, d, msg) = open(&g, true, TiePolicy::Reject);
    let p = proposal_of(&msg);
    let mut peer = g.machine(1);

    // Tampered header: the digest changes, so the creator's signature no longer verifies.
    let mut tampered = p.clone();
    tampered.header.silent_counts_as_yes = false;
    tampered.creator_vote.proposal = tampered.header.digest();
    assert_refused(
        &mut peer,
        Error::BadSignature {
            signer: member(0),
            what: Signed::ProposalHeader,
        },
        |m| m.handle_proposal(&crypto(), T0, tampered),
    );
    // A creator vote whose choice was flipped in transit.
    let mut flipped = p.clone();
    flipped.creator_vote.choice = Choice::No;
    assert_refused(
        &mut peer,
        Error::BadSignature {
            signer: member(0),
            what: Signed::Vote,
        },
        |m| m.handle_proposal(&crypto(), T0, flipped),
    );

    peer.handle_proposal(&crypto(), T0, p).unwrap();
    let mut v = vote(&g, 2, d, Choice::Yes, T0);
    v.choice = Choice::No;
    assert_refused(
        &mut peer,
        Error::BadSignature {
            signer: member(2),
            what: Signed::Vote,
        },
        |m| m.handle_vote(&crypto(), T0, v),
    );
}

#[test]
fn non_members_wrong_conversation_epoch_and_proposal_are_refused() {
    let (g, mut peer, d) = peer_with_open_proposal(4, true, TiePolicy::Reject);
    // Member 9 is not in the roster of 4 (it signs with its own, unknown key).
    let outsider = Group::new(10);
    let v = vote(&outsider, 9, d, Choice::Yes, T0);
    assert_refused(&mut peer, Error::NonMember(member(9)), |m| {
        m.handle_vote(&crypto(), T0, v)
    });

    let mut v = vote(&g, 2, d, Choice::Yes, T0);
    v.conversation = demls::consensus::ConversationId::new(b"other".to_vec()).unwrap();
    assert_refused(&mut peer, Error::WrongConversation, |m| {
        m.handle_vote(&crypto(), T0, v)
    });

    let mut v = vote(&g, 2, d, Choice::Yes, T0);
    v.epoch = Epoch(2);
    assert_refused(
        &mut peer,
        Error::WrongEpoch {
            expected: Epoch(1),
            got: Epoch(2),
        },
        |m| m.handle_vote(&crypto(), T0, v),
    );

    let unknown = ProposalDigest([9; 32]);
    let v = vote(&g, 2, unknown, Choice::Yes, T0);
    assert_refused(&mut peer, Error::UnknownProposal(unknown), |m| {
        m.handle_vote(&crypto(), T0, v)
    });

    // A proposal from a creator outside the roster.
    let mut stranger = outsider.machine(9);
    let (_, msg) = stranger
        .propose(
            &outsider.signers[9],
            T0,
            draft(1, Choice::Yes, true, TiePolicy::Reject),
        )
        .unwrap();
    assert_refused(&mut peer, Error::NonMember(member(9)), |m| {
        feed(m, T0, &msg)
    });
}

#[test]
fn payload_and_creator_vote_must_match_the_header() {
    let g = Group::new(4);
    let (_, d, msg) = open(&g, true, TiePolicy::Reject);
    let p = proposal_of(&msg);
    let mut peer = g.machine(1);

    let mut swapped = p.clone();
    swapped.payload = b"remove everyone".to_vec();
    assert_refused(&mut peer, Error::PayloadDigestMismatch, |m| {
        m.handle_proposal(&crypto(), T0, swapped)
    });

    let mut foreign_vote = p.clone();
    foreign_vote.creator_vote = vote(&g, 2, d, Choice::Yes, T0);
    assert_refused(&mut peer, Error::CreatorVoteMismatch, |m| {
        m.handle_proposal(&crypto(), T0, foreign_vote)
    });
}

#[test]
fn expired_future_dated_and_out_of_window_inputs_are_refused() {
    let g = Group::new(4);
    let (_, d, msg) = open(&g, true, TiePolicy::Reject);
    let deadline = T0.saturating_add_ms(WINDOW_MS);
    let mut peer = g.machine(1);
    assert_refused(
        &mut peer,
        Error::Expired {
            deadline,
            now: deadline,
        },
        |m| feed(m, deadline, &msg),
    );
    // Peer's clock is 31 s behind the creator's: beyond the default 30 s skew.
    let mut behind = g.machine(2);
    let now = Timestamp(T0.0 - 31_000);
    assert_refused(&mut behind, Error::FutureDated { at: T0, now }, |m| {
        feed(m, now, &msg)
    });

    // `peer` has now seen `deadline` (time never goes backwards): continue on a fresh member.
    let mut peer = g.machine(3);
    feed(&mut peer, T0, &msg).unwrap();
    let future = T0.saturating_add_ms(40_000);
    let v = vote(&g, 2, d, Choice::Yes, future);
    assert_refused(
        &mut peer,
        Error::FutureDated {
            at: future,
            now: T0,
        },
        |m| m.handle_vote(&crypto(), T0, v),
    );
    let early = Timestamp(T0.0 - 1);
    let v = vote(&g, 2, d, Choice::Yes, early);
    assert_refused(
        &mut peer,
        Error::VoteOutsideWindow { cast_at: early },
        |m| m.handle_vote(&crypto(), T0, v),
    );
    let v = vote(&g, 2, d, Choice::Yes, T0);
    assert_refused(
        &mut peer,
        Error::Expired {
            deadline,
            now: deadline,
        },
        |m| m.handle_vote(&crypto(), deadline, v),
    );
}

#[test]
fn voting_windows_beyond_the_configured_maximum_are_refused() {
    let g = Group::new(3);
    let mut creator = g.machine(0);
    let mut long = draft(1, Choice::Yes, true, TiePolicy::Reject);
    long.voting_duration_ms = creator.config().max_voting_duration_ms + 1;
    let before = creator.state_digest();
    assert!(matches!(
        creator.propose(&g.signers[0], T0, long.clone()),
        Err(Error::BadDeadline { .. })
    ));
    assert_eq!(creator.state_digest(), before);
    // A peer with a shorter maximum refuses a proposal a laxer creator made.
    let (_, _, msg) = open(&g, true, TiePolicy::Reject);
    let mut strict_cfg = g.machine(1).config().clone();
    strict_cfg.max_voting_duration_ms = WINDOW_MS - 1;
    let mut strict = VotingMachine::new(strict_cfg, Epoch(1), g.roster.clone());
    let before = strict.state_digest();
    assert!(matches!(
        feed(&mut strict, T0, &msg),
        Err(Error::BadDeadline { .. })
    ));
    assert_eq!(strict.state_digest(), before);
}

#[test]
fn open_proposals_are_rate_limited_globally_and_per_creator_never_evicted() {
    let g = Group::new(3);
    let mut cfg = g.machine(1).config().clone();
    cfg.max_open_per_creator = 2;
    cfg.max_open_proposals = 3;
    let mut peer = VotingMachine::new(cfg, Epoch(1), g.roster.clone());
    let mut creators = [g.machine(0), g.machine(2)];
    let mut propose = |who: usize, id: u64| {
        let m = &mut creators[who / 2];
        m.propose(
            &g.signers[who],
            T0,
            draft(id, Choice::Yes, true, TiePolicy::Reject),
        )
        .unwrap()
        .1
    };
    let p1 = propose(0, 1);
    let p2 = propose(0, 2);
    let p3 = propose(0, 3);
    feed(&mut peer, T0, &p1).unwrap();
    feed(&mut peer, T0, &p2).unwrap();
    assert_refused(
        &mut peer,
        Error::CreatorRateLimited {
            creator: member(0),
            max: 2,
        },
        |m| feed(m, T0, &p3),
    );
    let q1 = propose(2, 1);
    let q2 = propose(2, 2);
    feed(&mut peer, T0, &q1).unwrap();
    assert_refused(&mut peer, Error::TooManyOpenProposals { max: 3 }, |m| {
        feed(m, T0, &q2)
    });
    assert_eq!(peer.open_proposals(), 3, "nothing was evicted");
    // Deciding frees the slots.
    peer.tick_deadlines(T0.saturating_add_ms(WINDOW_MS));
    assert_eq!(peer.open_proposals(), 0);
}

#[test]
fn proposals_per_epoch_are_bounded_even_when_decided_at_once() {
    // In a two-member group a creator's own NO decides at once, so open-proposal limits alone
    // would let one member grow the decided set without bound.
    let g = Group::new(2);
    let mut cfg = g.machine(1).config().clone();
    cfg.max_proposals_per_creator_per_epoch = 3;
    cfg.max_proposals_per_epoch = 4;
    let mut peer = VotingMachine::new(cfg, Epoch(1), g.roster.clone());
    let mut creators = [g.machine(0), g.machine(1)];
    let mut propose = |who: usize, id: u64| {
        creators[who]
            .propose(
                &g.signers[who],
                T0,
                draft(id, Choice::No, true, TiePolicy::Reject),
            )
            .unwrap()
            .1
    };
    for id in 1..=3 {
        feed(&mut peer, T0, &propose(0, id)).unwrap();
    }
    assert_eq!(peer.open_proposals(), 0, "all decided at once");
    assert_refused(
        &mut peer,
        Error::CreatorEpochLimit {
            creator: member(0),
            max: 3,
        },
        |m| feed(m, T0, &propose(0, 4)),
    );
    feed(&mut peer, T0, &propose(1, 1)).unwrap();
    assert_refused(&mut peer, Error::EpochProposalLimit { max: 4 }, |m| {
        feed(m, T0, &propose(1, 2))
    });
    // A new epoch starts with fresh limits.
    peer.advance_epoch(Epoch(2), g.roster.clone()).unwrap();
    creators[0]
        .advance_epoch(Epoch(2), g.roster.clone())
        .unwrap();
    let (_, msg) = creators[0]
        .propose(
            &g.signers[0],
            T0,
            draft(4, Choice::No, true, TiePolicy::Reject),
        )
        .unwrap();
    assert!(matches!(feed(&mut peer, T0, &msg), Ok(Ingested::Opened(_))));
}

#[test]
fn oversized_messages_and_bundles_and_garbage_get_typed_errors() {
    let (g, mut peer, d) = peer_with_open_proposal(4, true, TiePolicy::Reject);
    assert_refused(
        &mut peer,
        Error::Wire(WireError::MessageTooLarge {
            len: Limits::default().max_message_len + 1,
            max: Limits::default().max_message_len,
        }),
        |m| {
            m.handle_message(
                &crypto(),
                T0,
                &vec![0u8; Limits::default().max_message_len + 1],
            )
        },
    );
    let before = peer.state_digest();
    assert!(matches!(
        peer.handle_message(&crypto(), T0, b"\xff\xff\xff garbage"),
        Err(Error::Wire(WireError::Malformed(_)))
    ));
    assert_eq!(peer.state_digest(), before);

    let mut cfg = peer.config().clone();
    cfg.limits.max_bundle_votes = 2;
    let mut small = VotingMachine::new(cfg, Epoch(1), g.roster.clone());
    let bundle = VotingMessage::Bundle(VoteBundle {
        proposal: None,
        proposal_digest: d,
        votes: (1..4).map(|i| vote(&g, i, d, Choice::Yes, T0)).collect(),
    });
    assert_refused(
        &mut small,
        Error::Wire(WireError::TooManyVotes { len: 3, max: 2 }),
        |m| feed(m, T0, &bundle),
    );
}

#[test]
fn bundles_merge_as_a_union() {
    let g = Group::new(7);
    let (_, d, msg) = open(&g, true, TiePolicy::Reject);
    let p = proposal_of(&msg);
    let votes: Vec<_> = (1..7).map(|i| vote(&g, i, d, Choice::No, T0)).collect();
    // A late peer gets the proposal and half the votes in one bundle ...
    let mut peer = g.machine(6);
    let first = VoteBundle {
        proposal: Some(p.clone()),
        proposal_digest: d,
        votes: votes[..2].to_vec(),
    };
    assert_eq!(
        peer.handle_bundle(&crypto(), T0, first),
        Ok(Ingested::Bundle(BundleSummary {
            opened: true,
            counted: 2,
            ..BundleSummary::default()
        }))
    );
    // ... then an overlapping bundle: known votes are skipped, not errors.
    let second = VoteBundle {
        proposal: Some(p),
        proposal_digest: d,
        votes: votes[1..3].to_vec(),
    };
    assert_eq!(
        peer.handle_bundle(&crypto(), T0, second),
        Ok(Ingested::Bundle(BundleSummary {
            counted: 1,
            already_have: 1,
            ..BundleSummary::default()
        }))
    );
    assert_eq!(peer.tally(&d).unwrap().no, 3);
}

#[test]
fn a_bundle_with_one_bad_vote_is_refused_whole() {
    let (g, mut peer, d) = peer_with_open_proposal(5, true, TiePolicy::Reject);
    let mut votes: Vec<_> = (1..4).map(|i| vote(&g, i, d, Choice::Yes, T0)).collect();
    votes[2].choice = Choice::No; // breaks member 3's signature
    let bundle = VoteBundle {
        proposal: None,
        proposal_digest: d,
        votes,
    };
    assert_refused(
        &mut peer,
        Error::BundleVote {
            index: 2,
            source: Box::new(Error::BadSignature {
                signer: member(3),
                what: Signed::Vote,
            }),
        },
        |m| m.handle_bundle(&crypto(), T0, bundle),
    );
    let mixed = VoteBundle {
        proposal: None,
        proposal_digest: ProposalDigest([1; 32]),
        votes: vec![vote(&g, 1, d, Choice::Yes, T0)],
    };
    assert_refused(&mut peer, Error::BundleDigestMismatch, |m| {
        m.handle_bundle(&crypto(), T0, mixed)
    });
}

#[test]
fn local_commands_check_their_preconditions() {
    let g = Group::new(4);
    let (_, d, msg) = open(&g, true, TiePolicy::Reject);
    let mut m = g.machine(1);
    feed(&mut m, T0, &msg).unwrap();
    m.cast_vote(&g.signers[1], T0, d, Choice::Yes).unwrap();
    assert_eq!(
        m.cast_vote(&g.signers[1], T0, d, Choice::No),
        Err(Error::AlreadyVoted(d))
    );
    // A member whose machine is not in the roster cannot vote.
    let outsider = Group::new(6);
    let mut cfg = m.config().clone();
    cfg.local_member = member(5);
    let mut not_voter = VotingMachine::new(cfg, Epoch(1), g.roster.clone());
    feed(&mut not_voter, T0, &msg).unwrap();
    assert_eq!(
        not_voter.cast_vote(&outsider.signers[5], T0, d, Choice::Yes),
        Err(Error::NotAVoter)
    );
    // Once decided, no more votes.
    let mut m3 = g.machine(3);
    feed(&mut m3, T0, &msg).unwrap();
    m3.tick_deadlines(T0.saturating_add_ms(WINDOW_MS));
    assert_eq!(
        m3.cast_vote(&g.signers[3], T0, d, Choice::Yes),
        Err(Error::AlreadyDecided(d))
    );
    // The same draft twice is the same proposal.
    let mut c = g.machine(0);
    c.propose(
        &g.signers[0],
        T0,
        draft(1, Choice::Yes, true, TiePolicy::Reject),
    )
    .unwrap();
    assert!(matches!(
        c.propose(
            &g.signers[0],
            T0,
            draft(1, Choice::Yes, true, TiePolicy::Reject)
        ),
        Err(Error::DuplicateProposal(_))
    ));
}

#[test]
fn a_vote_cast_by_the_command_is_accepted_by_peers() {
    let g = Group::new(3);
    let (mut creator, d, msg) = open(&g, true, TiePolicy::Reject);
    let mut peer = g.machine(1);
    feed(&mut peer, T0, &msg).unwrap();
    let v = peer.cast_vote(&g.signers[1], T0, d, Choice::Yes).unwrap();
    assert_eq!(feed(&mut creator, T0, &v), Ok(Ingested::Counted));
    assert_eq!(creator.decision(&d).unwrap().outcome, Outcome::Yes);
    assert_eq!(peer.decision(&d).unwrap().outcome, Outcome::Yes);
}

#[test]
fn advancing_the_epoch_abandons_open_proposals() {
    let (g, mut peer, d) = peer_with_open_proposal(4, true, TiePolicy::Reject);
    peer.advance_epoch(Epoch(2), g.roster.clone()).unwrap();
    assert_eq!(
        drain(&mut peer),
        vec![Event::Abandoned {
            proposal: d,
            epoch: Epoch(1)
        }]
    );
    assert_eq!(peer.next_deadline(), None);
    assert_eq!(peer.tally(&d), None);
    assert!(matches!(
        peer.advance_epoch(Epoch(2), g.roster.clone()),
        Err(Error::WrongEpoch { .. })
    ));
}

#[test]
fn time_never_goes_backwards() {
    let (g, mut peer, d) = peer_with_open_proposal(4, true, TiePolicy::Reject);
    let deadline = T0.saturating_add_ms(WINDOW_MS);
    peer.tick_deadlines(Timestamp(deadline.0 - 1));
    // A later input with an earlier `now` is judged at the latest time seen.
    let v = vote(&g, 2, d, Choice::Yes, T0);
    assert!(peer.handle_vote(&crypto(), Timestamp(0), v).is_ok());
    assert_eq!(peer.decision(&d), None);
}

#[test]
fn a_snapshot_restores_the_same_machine_and_bad_bytes_are_refused() {
    let g = Group::new(5);
    let (_, d, msg) = open(&g, true, TiePolicy::Retry);
    let mut m = g.machine(1);
    feed(&mut m, T0, &msg).unwrap();
    m.handle_vote(&crypto(), T0, vote(&g, 2, d, Choice::No, T0))
        .unwrap();
    // Equivocation evidence survives a snapshot too.
    m.handle_vote(&crypto(), T0, vote(&g, 2, d, Choice::Yes, T0))
        .unwrap();
    drain(&mut m);
    let bytes = m.snapshot().unwrap();
    let restored = VotingMachine::restore(m.config().clone(), g.roster.clone(), &bytes).unwrap();
    assert_eq!(restored.state_digest(), m.state_digest());
    assert_eq!(restored.next_deadline(), m.next_deadline());
    assert_eq!(restored.equivocations(&d).count(), 1);
    // Both continue identically.
    let (mut a, mut b) = (m, restored);
    for mm in [&mut a, &mut b] {
        mm.handle_vote(&crypto(), T0, vote(&g, 3, d, Choice::Yes, T0))
            .unwrap();
        mm.tick_deadlines(T0.saturating_add_ms(WINDOW_MS));
    }
    assert_eq!(drain(&mut a), drain(&mut b));
    assert_eq!(a.state_digest(), b.state_digest());
    // Every truncation of the bytes is refused with a typed error, never a panic.
    for n in 0..bytes.len() {
        assert!(VotingMachine::restore(a.config().clone(), g.roster.clone(), &bytes[..n]).is_err());
    }
    let mut undrained = g.machine(1);
    feed(&mut undrained, T0, &msg).unwrap();
    assert_eq!(
        undrained.snapshot(),
        Err(demls::consensus::SnapshotError::UndrainedEvents)
    );
}
