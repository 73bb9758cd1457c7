//! A complete vote among `N` members, driven the way a host drives the voting machine: every
//! member is a `VotingMachine`; a tiny in-memory broadcast bus delivers each outbound message
//! to every other member after a fixed latency; virtual time jumps to the next delivery or
//! deadline. Nothing here reads a clock or draws OS randomness: the output is the same on
//! every run.
//!
//! ```text
//! cargo run --release --example vote_round -- [members] [silent] [yes-percent]
//! ```
//! defaults: 7 members, 2 silent, 60 % of the voters vote YES.

use std::collections::BTreeMap;

use demls::consensus::{
    Choice, Config, ConversationId, Epoch, Event, MemberId, ProposalDraft, ProposalKind, Roster,
    SignatureScheme, TiePolicy, Timestamp, Voter, VotingMachine,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use sha2::{Digest, Sha256};

const LATENCY_MS: u64 = 120;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .map(|a| a.parse().expect("arguments are whole numbers"))
        .unwrap_or(default)
}

fn main() {
    let n = arg(1, 7).max(1);
    let silent = arg(2, 2).min(n - 1);
    let yes_percent = arg(3, 60).min(100);
    let crypto = RustCrypto::default();

    // Deterministic member keys (a real host uses each member's MLS signature key).
    let signers: Vec<SignatureKeyPair> = (0..n)
        .map(|i| {
            let seed: [u8; 32] = Sha256::digest(format!("example member {i}")).into();
            let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            SignatureKeyPair::from_raw(
                SignatureScheme::ED25519,
                seed.to_vec(),
                public.to_bytes().to_vec(),
            )
        })
        .collect();
    let ids: Vec<MemberId> = (0..n)
        .map(|i| MemberId::new(format!("member-{i:03}")).unwrap())
        .collect();
    let roster = Roster::new(
        SignatureScheme::ED25519,
        (0..n)
            .map(|i| Voter {
                id: ids[i].clone(),
                signature_key: signers[i].to_public_vec(),
            })
            .collect(),
    )
    .unwrap();
    let conversation = ConversationId::new(b"example".to_vec()).unwrap();
    let mut members: Vec<VotingMachine> = (0..n)
        .map(|i| {
            VotingMachine::new(
                Config::new(conversation.clone(), ids[i].clone()),
                Epoch(1),
                roster.clone(),
            )
        })
        .collect();

    // The bus: (delivery time, sequence) -> (recipient, bytes). BTreeMap keeps order exact.
    let mut bus: BTreeMap<(Timestamp, u64), (usize, Vec<u8>)> = BTreeMap::new();
    let mut seq = 0u64;
    let mut broadcast = |bus: &mut BTreeMap<_, _>, now: Timestamp, from: usize, bytes: Vec<u8>| {
        for to in (0..n).filter(|&to| to != from) {
            seq += 1;
            bus.insert(
                (now.saturating_add_ms(LATENCY_MS), seq),
                (to, bytes.clone()),
            );
        }
    };

    let start = Timestamp(1_700_000_000_000);
    let (digest, msg) = members[0]
        .propose(
            &signers[0],
            start,
            ProposalDraft {
                proposal_id: 1,
                kind: ProposalKind::Commit,
                payload: b"add member-new".to_vec(),
                voting_duration_ms: 10_000,
                silent_counts_as_yes: false,
                tie_policy: TiePolicy::Reject,
                creator_choice: Choice::Yes,
            },
        )
        .expect("the creator is in the roster");
    println!("{n} members, {silent} silent, {yes_percent}% of voters vote YES; proposal {digest}");
    broadcast(&mut bus, start, 0, msg.encode());

    let voters = n - silent; // members silent..n-1 stay silent
    let mut now = start;
    loop {
        // Drain every member's events after the last input (the run-loop contract).
        for (i, m) in members.iter_mut().enumerate() {
            while let Some(e) = m.poll_event() {
                let t = now.saturating_ms_since(start);
                match &e {
                    Event::ProposalOpened { .. } if i > 0 && i < voters => {
                        let choice = if (i * 100) / voters.max(1) < yes_percent {
                            Choice::Yes
                        } else {
                            Choice::No
                        };
                        let vote = m.cast_vote(&signers[i], now, digest, choice).unwrap();
                        println!("{t:>6} ms  member-{i:03}  votes {choice:?}");
                        broadcast(&mut bus, now, i, vote.encode());
                    }
                    Event::Decided { decision, .. } => println!(
                        "{t:>6} ms  member-{i:03}  decided {:?} ({:?}; {} YES, {} NO of {})",
                        decision.outcome,
                        decision.by,
                        decision.tally.yes,
                        decision.tally.no,
                        decision.tally.electorate
                    ),
                    _ => {}
                }
            }
        }
        // Sleep until the earliest delivery or deadline, whichever comes first.
        let next_delivery = bus.keys().next().map(|(t, _)| *t);
        let next_deadline = members.iter().filter_map(|m| m.next_deadline()).min();
        let Some(next) = [next_delivery, next_deadline].into_iter().flatten().min() else {
            break;
        };
        now = next;
        if next_delivery == Some(now) {
            let (_, (to, bytes)) = bus.pop_first().unwrap();
            members[to]
                .handle_message(&crypto, now, &bytes)
                .expect("honest traffic is accepted");
        }
        for m in &mut members {
            m.tick_deadlines(now);
        }
    }
    let outcomes: Vec<_> = members
        .iter()
        .map(|m| m.decision(&digest).map(|d| d.outcome))
        .collect();
    assert!(
        outcomes.windows(2).all(|w| w[0] == w[1]),
        "members disagree: {outcomes:?}"
    );
    println!("all {n} members agree: {:?}", outcomes[0].expect("decided"));
}
