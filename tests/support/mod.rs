//! Shared fixtures for the integration tests: deterministic Ed25519 member keys (derived from a
//! label, imported through `SignatureKeyPair::from_raw` so nothing draws OS entropy), rosters,
//! machines and signed messages.

#![allow(dead_code)]

pub mod net;

use demls::consensus::{
    Choice, Config, ConversationId, Epoch, MemberId, ProposalDigest, ProposalDraft, ProposalKind,
    Roster, SignatureScheme, TiePolicy, Timestamp, Vote, Voter, VotingMachine, VotingMessage,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use sha2::{Digest, Sha256};

/// Start of virtual time in the tests (derived Unix ms).
pub const T0: Timestamp = Timestamp(1_700_000_000_000);
/// Voting window used by the fixtures.
pub const WINDOW_MS: u64 = 60_000;

pub fn crypto() -> RustCrypto {
    RustCrypto::default()
}

/// The Ed25519 key of test member `i`, derived from a fixed label.
pub fn signer(i: usize) -> SignatureKeyPair {
    let seed: [u8; 32] = Sha256::digest(format!("demls test member {i}")).into();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    SignatureKeyPair::from_raw(SignatureScheme::ED25519, seed.to_vec(), public.to_vec())
}

pub fn member(i: usize) -> MemberId {
    MemberId::new(format!("member-{i:04}")).unwrap()
}

pub fn conversation() -> ConversationId {
    ConversationId::new(b"conversation-1".to_vec()).unwrap()
}

/// A group of `n` members with their signers and roster.
pub struct Group {
    pub signers: Vec<SignatureKeyPair>,
    pub roster: Roster,
}

impl Group {
    pub fn new(n: usize) -> Self {
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

    pub fn len(&self) -> usize {
        self.signers.len()
    }

    /// Member `i`'s machine at epoch 1.
    pub fn machine(&self, i: usize) -> VotingMachine {
        VotingMachine::new(
            Config::new(conversation(), member(i)),
            Epoch(1),
            self.roster.clone(),
        )
    }
}

pub fn draft(id: u64, choice: Choice, silent_yes: bool, tie: TiePolicy) -> ProposalDraft {
    ProposalDraft {
        proposal_id: id,
        kind: ProposalKind::Commit,
        payload: format!("add member {id}").into_bytes(),
        voting_duration_ms: WINDOW_MS,
        silent_counts_as_yes: silent_yes,
        tie_policy: tie,
        creator_choice: choice,
    }
}

/// Member 0 opens a proposal; returns the creator's machine, the digest and the message.
pub fn open(
    group: &Group,
    silent_yes: bool,
    tie: TiePolicy,
) -> (VotingMachine, ProposalDigest, VotingMessage) {
    let mut creator = group.machine(0);
    let (digest, msg) = creator
        .propose(
            &group.signers[0],
            T0,
            draft(1, Choice::Yes, silent_yes, tie),
        )
        .unwrap();
    (creator, digest, msg)
}

/// A signed vote by member `i`, built directly (as a peer would send it).
pub fn vote(
    group: &Group,
    i: usize,
    proposal: ProposalDigest,
    choice: Choice,
    at: Timestamp,
) -> Vote {
    use openmls_traits::signatures::Signer;
    let mut v = Vote {
        conversation: conversation(),
        epoch: Epoch(1),
        proposal,
        voter: member(i),
        choice,
        cast_at: at,
        signature: vec![],
    };
    v.signature = group.signers[i]
        .sign(&demls::consensus::transcript::vote_transcript(&v))
        .unwrap();
    v
}

/// Drains every pending event.
pub fn drain(m: &mut VotingMachine) -> Vec<demls::consensus::Event> {
    std::iter::from_fn(|| m.poll_event()).collect()
}
