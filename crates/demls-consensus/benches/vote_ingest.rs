//! Vote ingest with real Ed25519 signatures (BRIEF §7 "Vote ingest").
//!
//! * `fresh_vote/n`: a peer ingests, from wire bytes, one vote from every other member on an
//!   open proposal; votes alternate YES/NO so the proposal stays open until the last one. The
//!   counter is per vote, so the time is the per-vote cost at roster size `n`.
//! * `duplicate_resend/n`: re-sending an already counted vote to a machine holding half the
//!   votes (answered by digest, no signature check).
//! * `raw_ed25519_verify`: the floor — one Ed25519 verification of a vote transcript through
//!   the same `OpenMlsCrypto` provider, with nothing else.
//!
//! Run: `cargo bench -p demls-consensus --bench vote_ingest`. Results: docs/performance.md.

use demls_consensus::{
    Choice, Config, ConversationId, Epoch, Ingested, MemberId, ProposalDraft, ProposalKind, Roster,
    SignatureScheme, TiePolicy, Timestamp, Vote, Voter, VotingMachine, VotingMessage,
};
use divan::{counter::ItemsCount, Bencher};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::{crypto::OpenMlsCrypto, signatures::Signer};
use sha2::{Digest, Sha256};

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn main() {
    divan::main();
}

fn signer(i: usize) -> SignatureKeyPair {
    let seed: [u8; 32] = Sha256::digest(format!("demls bench member {i}")).into();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    SignatureKeyPair::from_raw(SignatureScheme::ED25519, seed.to_vec(), public.to_vec())
}

fn member(i: usize) -> MemberId {
    MemberId::new(format!("member-{i:05}")).unwrap()
}

struct Fixture {
    /// Member 1's machine holding member 0's open proposal.
    template: VotingMachine,
    /// Encoded votes of members 1..n, alternating NO/YES.
    votes: Vec<Vec<u8>>,
}

fn fixture(n: usize) -> Fixture {
    let conversation = ConversationId::new(b"bench".to_vec()).unwrap();
    let signers: Vec<_> = (0..n).map(signer).collect();
    let roster = Roster::new(
        SignatureScheme::ED25519,
        (0..n)
            .map(|i| Voter {
                id: member(i),
                signature_key: signers[i].to_public_vec(),
            })
            .collect(),
    )
    .unwrap();
    let machine = |i| {
        VotingMachine::new(
            Config::new(conversation.clone(), member(i)),
            Epoch(1),
            roster.clone(),
        )
    };
    let mut creator = machine(0);
    let (digest, proposal) = creator
        .propose(
            &signers[0],
            T0,
            ProposalDraft {
                proposal_id: 1,
                kind: ProposalKind::Commit,
                payload: b"add someone".to_vec(),
                voting_duration_ms: 60_000,
                silent_counts_as_yes: true,
                tie_policy: TiePolicy::Retry,
                creator_choice: Choice::Yes,
            },
        )
        .unwrap();
    let mut template = machine(1);
    template
        .handle_message(&RustCrypto::default(), T0, &proposal.encode())
        .unwrap();
    while template.poll_event().is_some() {}
    let votes = (1..n)
        .map(|i| {
            let mut v = Vote {
                conversation: conversation.clone(),
                epoch: Epoch(1),
                proposal: digest,
                voter: member(i),
                choice: if i % 2 == 1 { Choice::No } else { Choice::Yes },
                cast_at: T0,
                signature: vec![],
            };
            v.signature = signers[i]
                .sign(&demls_consensus::transcript::vote_transcript(&v))
                .unwrap();
            VotingMessage::Vote(v).encode()
        })
        .collect();
    Fixture { template, votes }
}

#[divan::bench(args = [10, 100, 1000])]
fn fresh_vote(bencher: Bencher, n: usize) {
    let f = fixture(n);
    let crypto = RustCrypto::default();
    // The last vote decides the proposal; every other vote is counted on an open proposal.
    let counted = &f.votes[..f.votes.len() - 1];
    bencher
        .counter(ItemsCount::new(counted.len()))
        .with_inputs(|| f.template.clone())
        .bench_local_values(|mut m| {
            for v in counted {
                let r = m.handle_message(&crypto, T0, v);
                debug_assert_eq!(r, Ok(Ingested::Counted));
            }
            m
        });
}

#[divan::bench(args = [10, 100, 1000])]
fn duplicate_resend(bencher: Bencher, n: usize) {
    let f = fixture(n);
    let crypto = RustCrypto::default();
    let mut m = f.template.clone();
    for v in &f.votes[..f.votes.len() / 2] {
        m.handle_message(&crypto, T0, v).unwrap();
    }
    let resent = &f.votes[0];
    assert_eq!(
        m.handle_message(&crypto, T0, resent),
        Ok(Ingested::AlreadyHave)
    );
    bencher.bench_local(|| m.handle_message(&crypto, T0, divan::black_box(resent)));
}

#[divan::bench]
fn raw_ed25519_verify(bencher: Bencher) {
    let s = signer(7);
    let v = Vote {
        conversation: ConversationId::new(b"bench".to_vec()).unwrap(),
        epoch: Epoch(1),
        proposal: demls_consensus::ProposalDigest([3; 32]),
        voter: member(7),
        choice: Choice::Yes,
        cast_at: T0,
        signature: vec![],
    };
    let t = demls_consensus::transcript::vote_transcript(&v);
    let sig = s.sign(&t).unwrap();
    let crypto = RustCrypto::default();
    let pk = s.to_public_vec();
    bencher.bench_local(|| {
        crypto
            .verify_signature(SignatureScheme::ED25519, divan::black_box(&t), &pk, &sig)
            .unwrap()
    });
}
