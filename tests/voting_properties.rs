//! Property tests of the voting machine (BRIEF §5, issue "voting engine" §4):
//!
//! * (a) any permutation of the same valid vote set, delivered singly or in bundles, gives the
//!   same final decision, and any early decision equals it;
//! * (b) two machines holding the same votes at the deadline decide the same;
//! * (c) a refused input leaves the state digest unchanged;
//! * (d) duplicates and equivocations never change the tally;
//! * (e) votes delivered in any order, with the deadline firing anywhere in between (after it,
//!   only bundles are taken), leave every peer that ends up holding all votes with the same
//!   decision: the early one whenever the full vote set implies one, otherwise the deadline
//!   rule over the full set — a deadline decision made without some votes follows the votes
//!   bundles bring later, changing outcome at most twice and never after an early decision.
//!
//! Each property runs from a seed. On failure the panic message prints the seed and the
//! minimal failing input; re-run with `DEMLS_PROPTEST_SEED=<hex>` to reproduce it exactly.
//! `PROPTEST_CASES` sets the number of cases (default 128).

mod support;

use std::hash::{BuildHasher, Hasher};

use demls::consensus::{
    rule, Choice, DecidedBy, Event, Ingested, ProposalDigest, SignedProposal, Tally, TiePolicy,
    Vote, VoteBundle, VotingMachine, VotingMessage,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use support::*;

/// Runs `test` over `strategy` from a printed seed.
fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let seed: [u8; 32] = match std::env::var("DEMLS_PROPTEST_SEED") {
        Ok(hex_seed) => hex::decode(hex_seed.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .expect("DEMLS_PROPTEST_SEED must be 64 hex digits"),
        Err(_) => {
            let mut seed = [0u8; 32];
            for chunk in seed.chunks_mut(8) {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write(name.as_bytes());
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
            seed
        }
    };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(128);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    if let Err(e) = runner.run(&strategy, test) {
        panic!(
            "property `{name}` failed: {e}\nreproduce with: DEMLS_PROPTEST_SEED={} cargo test --test voting_properties {name}",
            hex::encode(seed)
        );
    }
}

/// A vote set: the roster size, member 0's (the creator's) choice and each other member's
/// choice or silence, and the proposal's liveness flag and tie policy.
#[derive(Debug, Clone)]
struct Scenario {
    n: usize,
    choices: Vec<Option<Choice>>,
    silent_yes: bool,
    tie: TiePolicy,
}

fn scenario(max_n: usize) -> impl Strategy<Value = Scenario> {
    (1..=max_n, any::<bool>(), any::<bool>()).prop_flat_map(|(n, silent_yes, retry)| {
        let choice = prop_oneof![Just(None), Just(Some(Choice::Yes)), Just(Some(Choice::No))];
        let creator = prop_oneof![Just(Some(Choice::Yes)), Just(Some(Choice::No))];
        (creator, proptest::collection::vec(choice, n - 1)).prop_map(move |(c, rest)| Scenario {
            n,
            choices: std::iter::once(c).chain(rest).collect(),
            silent_yes,
            tie: if retry {
                TiePolicy::Retry
            } else {
                TiePolicy::Reject
            },
        })
    })
}

/// The signed proposal and the valid votes of a scenario.
struct Built {
    group: Group,
    digest: ProposalDigest,
    proposal: SignedProposal,
    votes: Vec<Vote>,
}

fn build(s: &Scenario) -> Built {
    let group = Group::new(s.n);
    let mut creator = group.machine(0);
    let mut d = draft(1, s.choices[0].unwrap(), s.silent_yes, s.tie);
    d.creator_choice = s.choices[0].unwrap();
    let (digest, msg) = creator.propose(&group.signers[0], T0, d).unwrap();
    let VotingMessage::Proposal(proposal) = msg else {
        unreachable!()
    };
    let votes = (1..s.n)
        .filter_map(|i| {
            s.choices[i].map(|c| vote(&group, i, digest, c, T0.saturating_add_ms(i as u64)))
        })
        .collect();
    Built {
        group,
        digest,
        proposal,
        votes,
    }
}

/// The decision the rule gives when every vote of the scenario is counted at the deadline.
fn expected(s: &Scenario) -> rule::Outcome {
    let count = |c| s.choices.iter().filter(|x| **x == Some(c)).count() as u32;
    let tally = Tally {
        electorate: s.n as u32,
        yes: count(Choice::Yes),
        no: count(Choice::No),
    };
    rule::early_decision(tally, s.tie)
        .unwrap_or_else(|| rule::deadline_decision(tally, s.silent_yes, s.tie))
}

/// Delivers the proposal and votes in `order`, in bundles of the sizes in `chunks` (cycled;
/// size 1 means a single vote message), to a fresh observer. Returns the early decision, if
/// one was reported before the deadline, and the final decision after the deadline.
fn deliver(
    b: &Built,
    order: &[usize],
    chunks: &[usize],
    proposal_in_bundle: bool,
) -> (Option<rule::Outcome>, rule::Outcome) {
    let c = crypto();
    let mut m = b.group.machine(0);
    if !proposal_in_bundle {
        m.handle_message(
            &c,
            T0,
            &VotingMessage::Proposal(b.proposal.clone()).encode(),
        )
        .unwrap();
    }
    let mut early = None;
    let note = |m: &mut VotingMachine, early: &mut Option<rule::Outcome>| {
        for e in drain(m) {
            if let Event::Decided { decision, .. } = e {
                assert!(early.is_none(), "decided twice");
                *early = Some(decision.outcome);
            }
        }
    };
    let now = T0.saturating_add_ms(WINDOW_MS - 1);
    let mut rest: Vec<&Vote> = order.iter().map(|&i| &b.votes[i]).collect();
    let mut sizes = chunks.iter().cycle();
    let mut first = true;
    while !rest.is_empty() || (first && proposal_in_bundle) {
        let k = (*sizes.next().unwrap())
            .clamp(1, rest.len().max(1))
            .min(rest.len());
        let chunk: Vec<Vote> = rest.drain(..k).cloned().collect();
        let msg = if chunk.len() == 1 && !(first && proposal_in_bundle) {
            VotingMessage::Vote(chunk[0].clone())
        } else {
            VotingMessage::Bundle(VoteBundle {
                proposal: (first && proposal_in_bundle).then(|| b.proposal.clone()),
                proposal_digest: b.digest,
                votes: chunk,
            })
        };
        first = false;
        m.handle_message(&c, now, &msg.encode()).unwrap();
        note(&mut m, &mut early);
    }
    m.tick_deadlines(T0.saturating_add_ms(WINDOW_MS));
    let mut at_deadline = None;
    note(&mut m, &mut at_deadline);
    let final_decision = m
        .decision(&b.digest)
        .expect("decided at the deadline")
        .outcome;
    if early.is_some() {
        assert_eq!(
            at_deadline, None,
            "an early decision is reported once, not again at the deadline"
        );
    }
    (early, final_decision)
}

fn plans(
    max_n: usize,
) -> impl Strategy<Value = (Scenario, Vec<usize>, Vec<usize>, Vec<usize>, bool)> {
    scenario(max_n).prop_flat_map(|s| {
        let k = s.choices[1..].iter().filter(|c| c.is_some()).count();
        let idx: Vec<usize> = (0..k).collect();
        (
            Just(s),
            Just(idx.clone()).prop_shuffle(),
            Just(idx).prop_shuffle(),
            proptest::collection::vec(1..5usize, 1..4),
            any::<bool>(),
        )
    })
}

#[test]
fn a_permutations_and_bundling_never_change_the_decision() {
    check(
        "a_permutations_and_bundling_never_change_the_decision",
        plans(13),
        |(s, p1, p2, chunks, in_bundle)| {
            let b = build(&s);
            let want = expected(&s);
            let (early1, final1) = deliver(&b, &p1, &[1], false);
            let (early2, final2) = deliver(&b, &p2, &chunks, in_bundle);
            prop_assert_eq!(final1, want);
            prop_assert_eq!(final2, want);
            for early in [early1, early2].into_iter().flatten() {
                prop_assert_eq!(early, want, "an early decision differs from the final one");
            }
            Ok(())
        },
    );
}

#[test]
fn b_machines_holding_the_same_votes_at_the_deadline_decide_the_same() {
    // Both machines receive exactly the same votes before the deadline, in different orders
    // and packagings; when the deadline has fired, their decisions agree.
    check(
        "b_machines_holding_the_same_votes_at_the_deadline_decide_the_same",
        plans(13),
        |(s, p1, p2, chunks, _)| {
            let b = build(&s);
            let (_, final1) = deliver(&b, &p1, &chunks, false);
            let (_, final2) = deliver(&b, &p2, &[1], true);
            prop_assert_eq!(final1, final2);
            Ok(())
        },
    );
}

/// A machine with an open proposal and some counted votes, plus a pool of valid messages.
fn live_state(s: &Scenario) -> (VotingMachine, Vec<Vec<u8>>) {
    let b = build(s);
    let c = crypto();
    let mut m = b.group.machine(0);
    m.handle_proposal(&c, T0, b.proposal.clone()).unwrap();
    let half = b.votes.len() / 2;
    for v in &b.votes[..half] {
        m.handle_vote(&c, T0, v.clone()).unwrap();
    }
    let mut pool: Vec<Vec<u8>> = vec![VotingMessage::Proposal(b.proposal.clone()).encode()];
    pool.extend(
        b.votes
            .iter()
            .map(|v| VotingMessage::Vote(v.clone()).encode()),
    );
    pool.push(
        VotingMessage::Bundle(VoteBundle {
            proposal: Some(b.proposal.clone()),
            proposal_digest: b.digest,
            votes: b.votes.clone(),
        })
        .encode(),
    );
    // Equivocating votes: every voter's opposite choice.
    pool.extend(b.votes.iter().enumerate().map(|(k, v)| {
        let i = (1..s.n).filter(|i| s.choices[*i].is_some()).nth(k).unwrap();
        let flipped = if v.choice == Choice::Yes {
            Choice::No
        } else {
            Choice::Yes
        };
        VotingMessage::Vote(vote(&b.group, i, b.digest, flipped, v.cast_at)).encode()
    }));
    (m, pool)
}

#[test]
fn c_a_refused_input_leaves_the_state_digest_unchanged() {
    let ops = proptest::collection::vec(
        (any::<usize>(), any::<usize>(), 1..=255u8, any::<bool>()),
        1..24,
    );
    check(
        "c_a_refused_input_leaves_the_state_digest_unchanged",
        (
            scenario(8),
            ops,
            proptest::collection::vec(any::<u8>(), 0..64),
        ),
        |(s, ops, garbage)| {
            let (mut m, pool) = live_state(&s);
            let c = crypto();
            let mut now = T0;
            for (which, pos, xor, mutate) in ops {
                let mut bytes = pool[which % pool.len()].clone();
                if mutate {
                    let p = pos % bytes.len();
                    bytes[p] ^= xor;
                }
                let before = m.state_digest();
                if m.handle_message(&c, now, &bytes).is_err() {
                    prop_assert_eq!(m.state_digest(), before, "refused input changed state");
                }
                drain(&mut m);
                now = now.saturating_add_ms(1_000);
            }
            let before = m.state_digest();
            if m.handle_message(&c, now, &garbage).is_err() {
                prop_assert_eq!(m.state_digest(), before);
            }
            Ok(())
        },
    );
}

#[test]
fn d_duplicates_and_equivocations_never_change_the_tally() {
    let extras = proptest::collection::vec((any::<usize>(), any::<bool>(), any::<bool>()), 1..32);
    check(
        "d_duplicates_and_equivocations_never_change_the_tally",
        (scenario(12), extras),
        |(s, extras)| {
            let b = build(&s);
            let c = crypto();
            let mut m = b.group.machine(0);
            m.handle_proposal(&c, T0, b.proposal.clone()).unwrap();
            for v in &b.votes {
                m.handle_vote(&c, T0, v.clone()).unwrap();
            }
            drain(&mut m);
            let tally = m.tally(&b.digest).unwrap();
            let decision = m.decision(&b.digest);
            let mut reported = std::collections::BTreeSet::new();
            // Re-deliver held votes, or conflicting ones by the same voters, singly or bundled.
            for (which, equivocate, bundled) in extras {
                if b.votes.is_empty() {
                    break;
                }
                let original = &b.votes[which % b.votes.len()];
                let v = if equivocate {
                    let i = (0..s.n).find(|i| member(*i) == original.voter).unwrap();
                    vote(
                        &b.group,
                        i,
                        b.digest,
                        original.choice,
                        original.cast_at.saturating_add_ms(1 + which as u64 % 5),
                    )
                } else {
                    original.clone()
                };
                let msg = if bundled {
                    VotingMessage::Bundle(VoteBundle {
                        proposal: Some(b.proposal.clone()),
                        proposal_digest: b.digest,
                        votes: vec![v.clone(), v],
                    })
                } else {
                    VotingMessage::Vote(v)
                };
                let r = m.handle_message(&c, T0, &msg.encode()).unwrap();
                prop_assert!(
                    !matches!(r, Ingested::Counted | Ingested::Opened(_)),
                    "{:?}",
                    r
                );
                prop_assert_eq!(m.tally(&b.digest).unwrap(), tally);
                prop_assert_eq!(m.decision(&b.digest), decision);
                for e in drain(&mut m) {
                    match e {
                        Event::Equivocation(ev) => prop_assert!(
                            reported.insert(ev.voter.clone()),
                            "equivocation reported twice"
                        ),
                        other => prop_assert!(false, "unexpected event {:?}", other),
                    }
                }
            }
            // At the deadline, the decision is the rule's on exactly the valid vote set.
            m.tick_deadlines(T0.saturating_add_ms(WINDOW_MS));
            prop_assert_eq!(m.decision(&b.digest).unwrap().outcome, expected(&s));
            Ok(())
        },
    );
}

/// The early decision the full vote set of a scenario implies, if any.
fn expected_early(s: &Scenario) -> Option<rule::Outcome> {
    let count = |c| s.choices.iter().filter(|x| **x == Some(c)).count() as u32;
    let tally = Tally {
        electorate: s.n as u32,
        yes: count(Choice::Yes),
        no: count(Choice::No),
    };
    rule::early_decision(tally, s.tie)
}

/// Delivers the proposal, then the votes in `order`: the first `split` before the deadline
/// (singly or bundled per `chunks`), then the deadline fires, then the rest in bundles of the
/// `chunks` sizes and finally one bundle of every vote (what a commit carries as evidence).
/// Checks the event stream (one `Decided`; at most two `Revised`, each of a deadline decision
/// to another outcome, in order) and returns the machine.
fn deliver_across_deadline(
    b: &Built,
    order: &[usize],
    split: usize,
    chunks: &[usize],
) -> Result<VotingMachine, TestCaseError> {
    let c = crypto();
    let mut m = b.group.machine(0);
    let mut events = Vec::new();
    m.handle_proposal(&c, T0, b.proposal.clone()).unwrap();
    events.extend(drain(&mut m));
    let votes: Vec<Vote> = order.iter().map(|&i| b.votes[i].clone()).collect();
    let split = split.min(votes.len());
    let mut sizes = chunks.iter().cycle();
    let send = |m: &mut VotingMachine, now, part: &[Vote], singly: bool| {
        let msg = if singly && part.len() == 1 {
            VotingMessage::Vote(part[0].clone())
        } else {
            VotingMessage::Bundle(VoteBundle {
                proposal: None,
                proposal_digest: b.digest,
                votes: part.to_vec(),
            })
        };
        m.handle_message(&c, now, &msg.encode()).unwrap();
    };
    let before = T0.saturating_add_ms(WINDOW_MS - 1);
    let after = T0.saturating_add_ms(WINDOW_MS + 1_000);
    let mut rest = &votes[..split];
    while !rest.is_empty() {
        let k = (*sizes.next().unwrap()).clamp(1, rest.len());
        send(&mut m, before, &rest[..k], true);
        rest = &rest[k..];
        events.extend(drain(&mut m));
    }
    m.tick_deadlines(T0.saturating_add_ms(WINDOW_MS));
    events.extend(drain(&mut m));
    let mut rest = &votes[split..];
    while !rest.is_empty() {
        let k = (*sizes.next().unwrap()).clamp(1, rest.len());
        send(&mut m, after, &rest[..k], false);
        rest = &rest[k..];
        events.extend(drain(&mut m));
    }
    send(&mut m, after, &votes, false);
    events.extend(drain(&mut m));

    // The event stream: opened, decided once, revised at most once.
    let decided: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Decided { decision, .. } => Some(*decision),
            _ => None,
        })
        .collect();
    let revised: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Revised {
                previous, decision, ..
            } => Some((*previous, *decision)),
            _ => None,
        })
        .collect();
    prop_assert_eq!(decided.len(), 1, "decided exactly once: {:?}", events);
    prop_assert!(revised.len() <= 2, "revised more than twice: {:?}", events);
    let mut last = decided[0];
    for &(previous, decision) in &revised {
        prop_assert_eq!(
            previous.outcome,
            last.outcome,
            "revisions chain: {:?}",
            events
        );
        prop_assert_eq!(
            previous.by,
            DecidedBy::Deadline,
            "an early decision was revised"
        );
        prop_assert_ne!(previous.outcome, decision.outcome);
        last = decision;
    }
    let held = m.decision(&b.digest).expect("decided");
    prop_assert_eq!(held.outcome, last.outcome, "the events tell the decision");
    Ok(m)
}

#[test]
fn e_peers_holding_all_votes_agree_across_the_deadline() {
    let strategy = plans(13).prop_flat_map(|(s, p1, p2, chunks, _)| {
        let k = p1.len();
        (Just((s, p1, p2, chunks)), 0..=k, 0..=k)
    });
    check(
        "e_peers_holding_all_votes_agree_across_the_deadline",
        strategy,
        |((s, p1, p2, chunks), split1, split2)| {
            let b = build(&s);
            let m1 = deliver_across_deadline(&b, &p1, split1, &chunks)?;
            let m2 = deliver_across_deadline(&b, &p2, split2, &[1])?;
            let (d1, d2) = (
                m1.decision(&b.digest).unwrap(),
                m2.decision(&b.digest).unwrap(),
            );
            match expected_early(&s) {
                Some(early) => {
                    // Both were given every vote, and the full set settles it: they agree, and
                    // the agreed decision is final (each counted enough of the votes to prove
                    // it — an early decision takes no more, so the tallies may differ).
                    for d in [d1, d2] {
                        prop_assert_eq!(d.outcome, early);
                        prop_assert!(d.is_final());
                        prop_assert_eq!(rule::early_decision(d.tally, s.tie), Some(early));
                    }
                }
                None => {
                    // No subset of the votes settles it early either (the rule is monotone):
                    // both hold every vote and decide by the deadline rule over them, alike
                    // whichever votes each held in time.
                    let _ = (split1, split2);
                    prop_assert_eq!(d1, d2);
                    prop_assert_eq!(d1.by, DecidedBy::Deadline);
                    prop_assert_eq!(d1.tally.voters() as usize, b.votes.len() + 1);
                    prop_assert_eq!(
                        d1.outcome,
                        rule::deadline_decision(d1.tally, s.silent_yes, s.tie)
                    );
                }
            }
            Ok(())
        },
    );
}
