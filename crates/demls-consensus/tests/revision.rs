//! Revision of a deadline decision by evidence of a final early decision (docs/protocol.md §4,
//! "A decided proposal takes nothing more … except").
//!
//! A member that reaches the deadline without some votes counts those voters as silent; members
//! that received them may have decided early, with another outcome. A bundle of validly signed
//! votes that proves the early decision replaces the deadline decision once
//! ([`Event::Revised`]); an early decision is never revised. Each test fails if its rule breaks.

use demls_consensus::{
    BundleSummary, Choice, Config, ConversationId, DecidedBy, Decision, Epoch, Error, Event,
    Ingested, MemberId, Outcome, ProposalDigest, ProposalDraft, ProposalKind, Roster,
    SignatureScheme, Signed, SignedProposal, Tally, TiePolicy, Timestamp, Vote, VoteBundle, Voter,
    VotingMachine, VotingMessage,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::signatures::Signer;
use sha2::{Digest, Sha256};

const T0: Timestamp = Timestamp(1_700_000_000_000);
const WINDOW_MS: u64 = 60_000;
/// After the deadline: when a commit's evidence typically arrives.
const LATE: Timestamp = Timestamp(T0.0 + WINDOW_MS + 5_000);

fn crypto() -> RustCrypto {
    RustCrypto::default()
}

fn signer(i: usize) -> SignatureKeyPair {
    let seed: [u8; 32] = Sha256::digest(format!("demls revision test member {i}")).into();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    SignatureKeyPair::from_raw(SignatureScheme::ED25519, seed.to_vec(), public.to_vec())
}

fn member(i: usize) -> MemberId {
    MemberId::new(format!("member-{i:04}")).unwrap()
}

fn conversation() -> ConversationId {
    ConversationId::new(b"conversation-r".to_vec()).unwrap()
}

struct Group {
    signers: Vec<SignatureKeyPair>,
    roster: Roster,
}

impl Group {
    fn new(n: usize) -> Self {
        let signers: Vec<_> = (0..n).map(signer).collect();
        let voters = (0..n)
            .map(|i| Voter {
                id: member(i),
                signature_key: signers[i].to_public_vec(),
            })
            .collect();
        Self {
            roster: Roster::new(SignatureScheme::ED25519, voters).unwrap(),
            signers,
        }
    }

    fn machine(&self, i: usize) -> VotingMachine {
        VotingMachine::new(
            Config::new(conversation(), member(i)),
            Epoch(1),
            self.roster.clone(),
        )
    }

    /// A signed vote by member `i`, as a peer would send it.
    fn vote(&self, i: usize, proposal: ProposalDigest, choice: Choice, at: Timestamp) -> Vote {
        let mut v = Vote {
            conversation: conversation(),
            epoch: Epoch(1),
            proposal,
            voter: member(i),
            choice,
            cast_at: at,
            signature: vec![],
        };
        v.signature = self.signers[i]
            .sign(&demls_consensus::transcript::vote_transcript(&v))
            .unwrap();
        v
    }

    /// Votes by `members` (all `choice`), cast inside the window.
    fn votes(&self, d: ProposalDigest, members: &[usize], choice: Choice) -> Vec<Vote> {
        members
            .iter()
            .map(|&i| self.vote(i, d, choice, T0.saturating_add_ms(i as u64)))
            .collect()
    }
}

fn drain(m: &mut VotingMachine) -> Vec<Event> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn bundle(d: ProposalDigest, votes: Vec<Vote>) -> VoteBundle {
    VoteBundle {
        proposal: None,
        proposal_digest: d,
        votes,
    }
}

/// A group of `n`; member 0 proposes (voting YES); member `n - 1`'s machine holds the
/// proposal and the votes of `held` (YES or NO as given) and then reaches the deadline.
/// Returns the group, that machine (events drained), the signed proposal and the deadline
/// decision.
fn deadline_decided(
    n: usize,
    silent_yes: bool,
    tie: TiePolicy,
    held: &[(usize, Choice)],
) -> (Group, VotingMachine, SignedProposal, Decision) {
    let g = Group::new(n);
    let mut creator = g.machine(0);
    let draft = ProposalDraft {
        proposal_id: 1,
        kind: ProposalKind::Commit,
        payload: b"remove member 9".to_vec(),
        voting_duration_ms: WINDOW_MS,
        silent_counts_as_yes: silent_yes,
        tie_policy: tie,
        creator_choice: Choice::Yes,
    };
    let (d, msg) = creator.propose(&g.signers[0], T0, draft).unwrap();
    let VotingMessage::Proposal(p) = msg else {
        unreachable!()
    };
    let mut m = g.machine(n - 1);
    m.handle_proposal(&crypto(), T0, p.clone()).unwrap();
    for &(i, c) in held {
        let v = g.vote(i, d, c, T0.saturating_add_ms(i as u64));
        assert_eq!(m.handle_vote(&crypto(), T0, v), Ok(Ingested::Counted));
    }
    drain(&mut m);
    m.tick_deadlines(T0.saturating_add_ms(WINDOW_MS));
    let events = drain(&mut m);
    let decision = m.decision(&d).expect("decided at the deadline");
    assert_eq!(
        events,
        vec![Event::Decided {
            proposal: d,
            decision
        }]
    );
    assert_eq!(decision.by, DecidedBy::Deadline);
    assert!(!decision.is_final());
    (g, m, p, decision)
}

fn tally(electorate: u32, yes: u32, no: u32) -> Tally {
    Tally {
        electorate,
        yes,
        no,
    }
}

#[test]
fn a_deadline_no_is_revised_to_a_proven_early_yes_once() {
    // n = 4, silent voters count as NO: with only the creator's YES held, the deadline says NO.
    let (g, mut m, p, previous) = deadline_decided(4, false, TiePolicy::Reject, &[]);
    let d = p.digest();
    assert_eq!(previous.outcome, Outcome::No);
    assert_eq!(previous.tally, tally(4, 1, 0));

    // A single vote after the decision still changes nothing (only bundles are evidence).
    let before = m.state_digest();
    let single = g.vote(1, d, Choice::Yes, T0.saturating_add_ms(1));
    assert_eq!(
        m.handle_vote(&crypto(), LATE, single),
        Ok(Ingested::AfterDecision)
    );
    assert_eq!(m.state_digest(), before);
    assert!(drain(&mut m).is_empty());

    // Members 1 and 2 voted YES: 3 YES among 3 ≥ ⌈8/3⌉ voters — an early YES elsewhere.
    let evidence = bundle(d, g.votes(d, &[1, 2], Choice::Yes));
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, evidence.clone()),
        Ok(Ingested::Bundle(BundleSummary {
            counted: 2,
            ..BundleSummary::default()
        }))
    );
    assert_ne!(
        m.state_digest(),
        before,
        "the revision is part of the state"
    );
    let decision = Decision {
        outcome: Outcome::Yes,
        tally: tally(4, 3, 0),
        by: DecidedBy::Early,
    };
    assert_eq!(
        drain(&mut m),
        vec![Event::Revised {
            proposal: d,
            previous,
            decision
        }]
    );
    assert_eq!(m.decision(&d), Some(decision));
    assert!(m.decision(&d).unwrap().is_final());
    assert_eq!(m.tally(&d), Some(tally(4, 3, 0)));
    assert_eq!(m.evidence(&d).unwrap().votes.len(), 3);

    // The same bundle again, or one with a further vote: nothing changes, nothing is emitted.
    let after = m.state_digest();
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, evidence),
        Ok(Ingested::Bundle(BundleSummary {
            after_decision: 2,
            ..BundleSummary::default()
        }))
    );
    let more = bundle(d, g.votes(d, &[1, 2, 3], Choice::No));
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, more),
        Ok(Ingested::Bundle(BundleSummary {
            after_decision: 3,
            ..BundleSummary::default()
        }))
    );
    assert_eq!(m.state_digest(), after);
    assert!(drain(&mut m).is_empty());
    // The deadline has long passed; ticking again does nothing either.
    m.tick_deadlines(LATE.saturating_add_ms(1));
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.decision(&d), Some(decision));
}

#[test]
fn a_deadline_yes_is_revised_to_a_proven_early_no() {
    // n = 4, silent voters count as YES: with only the creator's YES held, the deadline says
    // YES. Members 1 and 2 voted NO: YES can reach at most 2 of 4, a tie, rejected.
    let (g, mut m, p, previous) = deadline_decided(4, true, TiePolicy::Reject, &[]);
    let d = p.digest();
    assert_eq!(previous.outcome, Outcome::Yes);
    m.handle_bundle(&crypto(), LATE, bundle(d, g.votes(d, &[1, 2], Choice::No)))
        .unwrap();
    let decision = Decision {
        outcome: Outcome::No,
        tally: tally(4, 1, 2),
        by: DecidedBy::Early,
    };
    assert_eq!(
        drain(&mut m),
        vec![Event::Revised {
            proposal: d,
            previous,
            decision
        }]
    );
}

#[test]
fn a_deadline_retry_is_revised_to_a_proven_early_yes() {
    // n = 4 under Retry, silent as NO, members 0 and 1 YES held: a tie at the deadline.
    let (g, mut m, p, previous) = deadline_decided(4, false, TiePolicy::Retry, &[(1, Choice::Yes)]);
    let d = p.digest();
    assert_eq!(previous.outcome, Outcome::Retry);
    // The bundle repeats a held vote (skipped) and adds member 2's YES: 3 of 4, early YES.
    let votes = g.votes(d, &[1, 2], Choice::Yes);
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, bundle(d, votes)),
        Ok(Ingested::Bundle(BundleSummary {
            counted: 1,
            already_have: 1,
            ..BundleSummary::default()
        }))
    );
    assert!(matches!(
        drain(&mut m).as_slice(),
        [Event::Revised { decision, .. }] if decision.outcome == Outcome::Yes
            && decision.tally == tally(4, 3, 0)
    ));
}

#[test]
fn evidence_proving_the_deadline_outcome_finalizes_it_silently() {
    // n = 4, silent as NO: the deadline says NO. Members 1 and 2 voted NO: an early NO — the
    // same outcome. The decision becomes final and nothing is reported.
    let (g, mut m, p, previous) = deadline_decided(4, false, TiePolicy::Reject, &[]);
    let d = p.digest();
    let before = m.state_digest();
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, bundle(d, g.votes(d, &[1, 2], Choice::No))),
        Ok(Ingested::Bundle(BundleSummary {
            counted: 2,
            ..BundleSummary::default()
        }))
    );
    assert!(drain(&mut m).is_empty());
    assert_ne!(m.state_digest(), before);
    let decision = m.decision(&d).unwrap();
    assert_eq!(decision.outcome, previous.outcome);
    assert!(decision.is_final());
    // Being final, it takes nothing more: not even a valid bundle by the last voter.
    let after = m.state_digest();
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, bundle(d, g.votes(d, &[3], Choice::Yes))),
        Ok(Ingested::Bundle(BundleSummary {
            after_decision: 1,
            ..BundleSummary::default()
        }))
    );
    assert_eq!(m.state_digest(), after);
}

#[test]
fn an_early_decision_is_never_revised() {
    // n = 4: members 1 and 2 vote YES before the deadline — an early YES.
    let g = Group::new(4);
    let (_, d, msg) = {
        let mut creator = g.machine(0);
        let draft = ProposalDraft {
            proposal_id: 1,
            kind: ProposalKind::Commit,
            payload: b"add member 7".to_vec(),
            voting_duration_ms: WINDOW_MS,
            silent_counts_as_yes: false,
            tie_policy: TiePolicy::Reject,
            creator_choice: Choice::Yes,
        };
        let (d, msg) = creator.propose(&g.signers[0], T0, draft).unwrap();
        (creator, d, msg)
    };
    let VotingMessage::Proposal(p) = msg else {
        unreachable!()
    };
    let mut m = g.machine(3);
    m.handle_proposal(&crypto(), T0, p).unwrap();
    drain(&mut m);
    m.handle_bundle(&crypto(), T0, bundle(d, g.votes(d, &[1, 2], Choice::Yes)))
        .unwrap();
    let events = drain(&mut m);
    assert!(matches!(
        events.as_slice(),
        [Event::Decided { decision, .. }] if decision.outcome == Outcome::Yes
            && decision.by == DecidedBy::Early
    ));
    let decision = m.decision(&d).unwrap();
    assert!(decision.is_final());
    let before = m.state_digest();

    // Whatever bundle arrives — before or after the deadline, a NO by the last voter,
    // equivocating NOs by the YES voters, even a forged vote — nothing changes.
    let mut forged = g.vote(3, d, Choice::No, T0);
    forged.choice = Choice::Yes;
    let mut attempts = vec![
        g.votes(d, &[3], Choice::No),
        g.votes(d, &[0, 1, 2, 3], Choice::No),
        vec![forged],
    ];
    attempts.push(attempts[1].iter().chain(&attempts[0]).cloned().collect());
    for now in [T0.saturating_add_ms(10), LATE] {
        m.tick_deadlines(now);
        for votes in &attempts {
            let n = votes.len() as u32;
            assert_eq!(
                m.handle_bundle(&crypto(), now, bundle(d, votes.clone())),
                Ok(Ingested::Bundle(BundleSummary {
                    after_decision: n,
                    ..BundleSummary::default()
                }))
            );
            assert_eq!(m.state_digest(), before);
            assert!(drain(&mut m).is_empty());
            assert_eq!(m.decision(&d), Some(decision));
        }
    }
}

#[test]
fn a_revised_decision_is_never_revised_again() {
    // Deadline NO, revised to early YES by members 1 and 2. Then members 1 and 2 equivocate
    // (NO) and member 3 votes NO: were those counted, YES would be impossible. Nothing changes.
    let (g, mut m, p, _) = deadline_decided(4, false, TiePolicy::Reject, &[]);
    let d = p.digest();
    m.handle_bundle(&crypto(), LATE, bundle(d, g.votes(d, &[1, 2], Choice::Yes)))
        .unwrap();
    assert_eq!(drain(&mut m).len(), 1);
    let (decision, before) = (m.decision(&d).unwrap(), m.state_digest());
    let mut equivocations = g.votes(d, &[1, 2, 3], Choice::No);
    for v in &mut equivocations {
        v.cast_at = v.cast_at.saturating_add_ms(100);
        v.signature = vec![]; // not even verified: the decision is final
    }
    assert!(m
        .handle_bundle(&crypto(), LATE, bundle(d, equivocations))
        .is_ok());
    assert_eq!(m.state_digest(), before);
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.decision(&d), Some(decision));
}

#[test]
fn a_proving_bundle_with_one_bad_vote_changes_nothing() {
    let (g, mut m, p, previous) = deadline_decided(4, false, TiePolicy::Reject, &[]);
    let d = p.digest();
    let mut votes = g.votes(d, &[1, 2], Choice::Yes);
    votes[1].cast_at = votes[1].cast_at.saturating_add_ms(1); // breaks member 2's signature
    let before = m.state_digest();
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, bundle(d, votes)),
        Err(Error::BundleVote {
            index: 1,
            source: Box::new(Error::BadSignature {
                signer: member(2),
                what: Signed::Vote,
            }),
        })
    );
    assert_eq!(
        m.state_digest(),
        before,
        "a refused bundle changed the state"
    );
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.decision(&d), Some(previous));

    // Votes cast outside the window, or by a non-member, are refused the same way.
    let mut outside = g.votes(d, &[1, 2], Choice::Yes);
    outside[0] = g.vote(1, d, Choice::Yes, T0.saturating_add_ms(WINDOW_MS + 1));
    assert!(matches!(
        m.handle_bundle(&crypto(), LATE, bundle(d, outside)),
        Err(Error::BundleVote { index: 0, source }) if matches!(*source, Error::VoteOutsideWindow { .. })
    ));
    let stranger = Group::new(6);
    let mut foreign = g.votes(d, &[1, 2], Choice::Yes);
    foreign.push(stranger.vote(5, d, Choice::Yes, T0));
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, bundle(d, foreign)),
        Err(Error::BundleVote {
            index: 2,
            source: Box::new(Error::NonMember(member(5))),
        })
    );
    assert_eq!(m.state_digest(), before);
    assert!(drain(&mut m).is_empty());

    // The valid evidence still revises afterwards.
    m.handle_bundle(&crypto(), LATE, bundle(d, g.votes(d, &[1, 2], Choice::Yes)))
        .unwrap();
    assert!(matches!(drain(&mut m).as_slice(), [Event::Revised { .. }]));
}

#[test]
fn evidence_short_of_the_early_rule_revises_by_the_deadline_rule_over_the_union() {
    // n = 10, silent as NO: the creator's lone YES gives NO at the deadline.
    let (g, mut m, p, previous) = deadline_decided(10, false, TiePolicy::Reject, &[]);
    let d = p.digest();
    // A bundle that brings no vote not held changes nothing and is not verified.
    let mut held = g.votes(d, &[0], Choice::Yes);
    held[0].signature = vec![1; 64];
    let before = m.state_digest();
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, bundle(d, held)),
        Ok(Ingested::Bundle(BundleSummary {
            after_decision: 1,
            ..BundleSummary::default()
        }))
    );
    assert_eq!(m.state_digest(), before);
    // New votes are verified: one forged vote refuses the whole bundle.
    let mut forged = g.votes(d, &[1, 2, 3, 4, 5], Choice::Yes);
    forged[4].signature = vec![1; 64];
    assert!(m.handle_bundle(&crypto(), LATE, bundle(d, forged)).is_err());
    assert_eq!(m.state_digest(), before);
    assert_eq!(m.decision(&d), Some(previous));
    // Five more YES: 6 of 10 is a majority, but 6 < ⌈20/3⌉ = 7 distinct voters — no early
    // decision. The deadline rule over the union (silent as NO: Y = 6) gives YES: the
    // decision a member that held these votes at its deadline took.
    m.handle_bundle(
        &crypto(),
        LATE,
        bundle(d, g.votes(d, &[1, 2, 3, 4, 5], Choice::Yes)),
    )
    .unwrap();
    let revised = m.decision(&d).unwrap();
    assert_eq!(
        drain(&mut m),
        vec![Event::Revised {
            proposal: d,
            previous,
            decision: revised
        }]
    );
    assert_eq!(
        (revised.outcome, revised.by, revised.tally),
        (Outcome::Yes, DecidedBy::Deadline, tally(10, 6, 0))
    );
    // An equivocation brings no vote to count (the creator's second vote, NO): nothing
    // changes.
    let before = m.state_digest();
    let mut with_equivocation = g.votes(d, &[1], Choice::Yes);
    with_equivocation.push(g.vote(0, d, Choice::No, T0.saturating_add_ms(7)));
    m.handle_bundle(&crypto(), LATE, bundle(d, with_equivocation))
        .unwrap();
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.state_digest(), before);

    // A seventh voter completes the quorum: the same outcome, now early and final — silently.
    m.handle_bundle(&crypto(), LATE, bundle(d, g.votes(d, &[6], Choice::No)))
        .unwrap();
    assert!(drain(&mut m).is_empty());
    let early = m.decision(&d).unwrap();
    assert_eq!(
        (early.outcome, early.by, early.tally),
        (Outcome::Yes, DecidedBy::Early, tally(10, 6, 1))
    );
}

/// Two members decide a proposal differently at their deadlines over different votes, and no
/// set of the votes settles it early (a voter stays silent). After each receives the other's
/// bundle both hold the union and the same decision — whichever order the bundles come in.
/// Before, neither bundle proved anything and the two disagreed for good: each acknowledged
/// the commit candidate its own decision justified (`demls-sim --generated 123474317621230
/// --mode liveness --byzantine-mix any`).
#[test]
fn members_that_decided_differently_at_their_deadlines_agree_once_they_swap_votes() {
    for silent_yes in [false, true] {
        // n = 5, members 0..3 vote, member 4 is silent. A holds 0 YES, 1 YES, 2 NO;
        // B holds 0 YES, 3 NO.
        let (g, mut a, p, _) = deadline_decided(
            5,
            silent_yes,
            TiePolicy::Reject,
            &[(1, Choice::Yes), (2, Choice::No)],
        );
        let d = p.digest();
        let mut b = g.machine(3);
        b.handle_proposal(&crypto(), T0, p).unwrap();
        b.handle_vote(
            &crypto(),
            T0,
            g.vote(3, d, Choice::No, T0.saturating_add_ms(3)),
        )
        .unwrap();
        b.tick_deadlines(T0.saturating_add_ms(WINDOW_MS));
        drain(&mut b);
        let (da, db) = (a.decision(&d).unwrap(), b.decision(&d).unwrap());
        assert_eq!(da.by, DecidedBy::Deadline);
        assert_eq!(db.by, DecidedBy::Deadline);
        let Some(VotingMessage::Bundle(from_a)) = a.bundle(&d) else {
            panic!("A holds the proposal")
        };
        let Some(VotingMessage::Bundle(from_b)) = b.bundle(&d) else {
            panic!("B holds the proposal")
        };
        a.handle_bundle(&crypto(), LATE, from_b).unwrap();
        b.handle_bundle(&crypto(), LATE, from_a).unwrap();
        let (ua, ub) = (a.decision(&d).unwrap(), b.decision(&d).unwrap());
        assert_eq!(ua, ub, "silent as YES: {silent_yes}");
        // Union: 2 YES, 2 NO, 1 silent — not settled early; the flag decides the silent one.
        assert_eq!(ua.tally, tally(5, 2, 2));
        assert_eq!(ua.by, DecidedBy::Deadline);
        let expected = if silent_yes {
            Outcome::Yes
        } else {
            Outcome::No
        };
        assert_eq!(ua.outcome, expected);
        assert_eq!(a.evidence(&d).unwrap().votes, b.evidence(&d).unwrap().votes);
    }
}

/// The deadline rule over a growing set of votes moves one way: with silent voters counted as
/// YES only a new NO changes the count, so a deadline NO is never revised back to YES by
/// more votes, and a deadline YES turns NO at most once.
#[test]
fn a_deadline_decision_moves_one_way_as_votes_arrive() {
    // n = 7, silent as YES: the creator's YES alone gives YES at the deadline.
    let (g, mut m, p, first) = deadline_decided(7, true, TiePolicy::Reject, &[]);
    let d = p.digest();
    assert_eq!(first.outcome, Outcome::Yes);
    let mut outcomes = vec![first.outcome];
    for (voter, choice) in [
        (1, Choice::No),
        (2, Choice::No),
        (3, Choice::No),
        (4, Choice::Yes),
    ] {
        m.handle_bundle(&crypto(), LATE, bundle(d, g.votes(d, &[voter], choice)))
            .unwrap();
        drain(&mut m);
        outcomes.push(m.decision(&d).unwrap().outcome);
    }
    // Three NO of seven with four counted YES: still YES (2·4 > 7); a fourth NO would end it,
    // but the fourth vote is a YES — no more changes can come from YES votes.
    assert_eq!(outcomes, vec![Outcome::Yes; 5]);
    m.handle_bundle(&crypto(), LATE, bundle(d, g.votes(d, &[5], Choice::No)))
        .unwrap();
    let last = m.decision(&d).unwrap();
    assert_eq!((last.outcome, last.by), (Outcome::No, DecidedBy::Early));
    assert!(matches!(drain(&mut m).as_slice(), [Event::Revised { .. }]));
}

#[test]
fn equivocation_in_a_proving_bundle_is_recorded_and_never_counted() {
    // Deadline NO at n = 4. The bundle carries the creator's conflicting NO (evidence, not
    // counted) and YES by members 1 and 2 (an early YES).
    let (g, mut m, p, _) = deadline_decided(4, false, TiePolicy::Reject, &[]);
    let d = p.digest();
    let mut votes = vec![g.vote(0, d, Choice::No, T0.saturating_add_ms(3))];
    votes.extend(g.votes(d, &[1, 2], Choice::Yes));
    assert_eq!(
        m.handle_bundle(&crypto(), LATE, bundle(d, votes)),
        Ok(Ingested::Bundle(BundleSummary {
            counted: 2,
            equivocations: 1,
            ..BundleSummary::default()
        }))
    );
    let events = drain(&mut m);
    assert!(matches!(
        events.as_slice(),
        [Event::Equivocation(e), Event::Revised { decision, .. }]
            if e.voter == member(0) && decision.tally == tally(4, 3, 0)
    ));
    assert_eq!(m.equivocations(&d).count(), 1);
}

#[test]
fn a_revision_survives_a_snapshot() {
    let (g, mut m, p, _) = deadline_decided(4, false, TiePolicy::Reject, &[]);
    let d = p.digest();
    m.handle_bundle(&crypto(), LATE, bundle(d, g.votes(d, &[1, 2], Choice::Yes)))
        .unwrap();
    drain(&mut m);
    let bytes = m.snapshot().unwrap();
    let mut restored =
        VotingMachine::restore(m.config().clone(), g.roster.clone(), &bytes).unwrap();
    assert_eq!(restored.state_digest(), m.state_digest());
    assert_eq!(restored.decision(&d), m.decision(&d));
    assert!(restored.decision(&d).unwrap().is_final());
    // Restored, it is still final.
    let no = bundle(d, g.votes(d, &[3], Choice::No));
    for mm in [&mut m, &mut restored] {
        mm.handle_bundle(&crypto(), LATE, no.clone()).unwrap();
    }
    assert_eq!(m.state_digest(), restored.state_digest());
    assert!(drain(&mut restored).is_empty());
}

#[test]
fn a_member_that_missed_votes_ends_with_the_early_decision_of_one_that_did_not() {
    // The simulator's finding, end to end: A receives every vote and decides early; B is
    // partitioned, decides at the deadline with the voters counted silent, then receives A's
    // bundle (what a commit carries as evidence). Both end with A's decision.
    let (g, mut b, p, _) = deadline_decided(7, false, TiePolicy::Reject, &[(1, Choice::Yes)]);
    let d = p.digest();
    let mut a = g.machine(5);
    a.handle_proposal(&crypto(), T0, p).unwrap();
    for v in g.votes(d, &[1, 2, 3, 4], Choice::Yes) {
        a.handle_vote(&crypto(), T0, v).unwrap();
    }
    let early = a.decision(&d).unwrap();
    assert_eq!((early.outcome, early.by), (Outcome::Yes, DecidedBy::Early));
    assert_eq!(b.decision(&d).unwrap().outcome, Outcome::No);
    let Some(VotingMessage::Bundle(evidence)) = a.bundle(&d) else {
        panic!("A holds the proposal")
    };
    b.handle_bundle(&crypto(), LATE, evidence).unwrap();
    assert_eq!(b.decision(&d), Some(early));
    assert_eq!(b.evidence(&d).unwrap().votes, a.evidence(&d).unwrap().votes);
}

/// HG-14 (deviation): a bundle that arrives after the deadline at a machine that never saw
/// the proposal (the evidence a commit carries for a member that missed it) is checked as of
/// just before the deadline: it opens the proposal and its votes count, though nothing is
/// decided yet; the next `tick_deadlines` decides the proposal as at its deadline. A vote cast
/// after the deadline is still refused.
#[test]
fn a_bundle_after_the_deadline_is_checked_as_of_just_before_it_and_decided_at_the_next_tick() {
    let g = Group::new(4);
    let mut creator = g.machine(0);
    let draft = ProposalDraft {
        proposal_id: 1,
        kind: ProposalKind::Commit,
        payload: b"remove member 9".to_vec(),
        voting_duration_ms: WINDOW_MS,
        silent_counts_as_yes: true,
        tie_policy: TiePolicy::Reject,
        creator_choice: Choice::Yes,
    };
    let (d, msg) = creator.propose(&g.signers[0], T0, draft).unwrap();
    let VotingMessage::Proposal(p) = msg else {
        unreachable!()
    };
    let mut m = g.machine(3);
    let before = m.state_digest();
    let cast_late = VoteBundle {
        proposal: Some(p.clone()),
        proposal_digest: d,
        votes: vec![g.vote(1, d, Choice::Yes, LATE)],
    };
    assert!(matches!(
        m.handle_bundle(&crypto(), LATE, cast_late),
        Err(Error::BundleVote { index: 0, .. })
    ));
    assert_eq!(m.state_digest(), before);

    let evidence = VoteBundle {
        proposal: Some(p),
        proposal_digest: d,
        votes: g.votes(d, &[1], Choice::Yes),
    };
    let summary = m.handle_bundle(&crypto(), LATE, evidence);
    assert!(
        matches!(summary, Ok(Ingested::Bundle(s)) if s.opened && s.counted == 1),
        "{summary:?}"
    );
    assert_eq!(m.tally(&d), Some(tally(4, 2, 0)));
    assert_eq!(m.decision(&d), None, "not decided before the tick");
    let events = drain(&mut m);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, Event::ProposalOpened { .. })),
        "{events:?}"
    );
    assert!(m.next_deadline().is_some_and(|t| t <= LATE));

    m.tick_deadlines(LATE);
    let decision = m.decision(&d).expect("decided at the tick");
    assert_eq!(decision.outcome, Outcome::Yes);
    assert_eq!(decision.by, DecidedBy::Deadline);
    assert_eq!(
        drain(&mut m),
        vec![Event::Decided {
            proposal: d,
            decision
        }]
    );
}
