//! Known-answer test vectors for the voting layer: `tests/vectors/voting.json`.
//!
//! In the style of openmls's `test_vectors/*.json`: the file is generated from the
//! implementation by the writer ([`write_vectors`], behind the `write-vectors` feature) and
//! checked against it by the readers below, which always run. Other implementations of de-MLS
//! voting can check themselves against the same file.
//!
//! ```text
//! cargo test --test vectors                                           # check
//! cargo test --test vectors --features write-vectors write_vectors    # regenerate
//! ```
//!
//! # Conventions
//!
//! * Byte strings are lowercase hex strings without a prefix (`""` is the empty string).
//! * Integers are JSON numbers. `epoch`, `proposal_id` and the `*_ms` times are `u64` and some
//!   vectors use values above 2^53 (up to `u64::MAX`): parse them as 64-bit unsigned integers,
//!   not as doubles. Vote counts are `u32`.
//! * Enums are lowercase strings:
//!   * `kind`: `"commit"`, `"steward_election"` or `"emergency"` (transcript codes 1, 2, 3);
//!   * `tie_policy`: `"reject"` or `"retry"` (transcript codes 1, 2);
//!   * `choice`: `"yes"` or `"no"` (transcript byte 1 or 0);
//!   * outcomes: `"yes"`, `"no"` or `"retry"`;
//!   * `decided_by`: `"early"` or `"deadline"`.
//! * Booleans are JSON booleans. Times are derived Unix milliseconds.
//!
//! # Top level
//!
//! An object with exactly four arrays: `header_digests`, `vote_transcripts`, `signatures`,
//! `decisions`. Unknown fields are an error everywhere.
//!
//! # Shared objects
//!
//! A **header** object (a `ProposalHeader`):
//!
//! | field                  | type   | meaning                                              |
//! |------------------------|--------|------------------------------------------------------|
//! | `conversation_id`      | hex    | conversation (MLS group) id, 1..=64 bytes            |
//! | `epoch`                | u64    | epoch whose roster votes                             |
//! | `proposal_id`          | u64    | creator-chosen proposal number                       |
//! | `kind`                 | enum   | consensus type                                       |
//! | `payload_digest`       | hex    | SHA-256 of the payload (32 bytes)                    |
//! | `creator`              | hex    | creator's member id, 1..=64 bytes                    |
//! | `created_at_ms`        | u64    | creation time                                        |
//! | `deadline_ms`          | u64    | end of voting                                        |
//! | `silent_counts_as_yes` | bool   | liveness flag: silent voters count as YES at deadline |
//! | `tie_policy`           | enum   | what a tie resolves to                               |
//!
//! A **vote** object (a `Vote` without its signature):
//!
//! | field             | type | meaning                                      |
//! |-------------------|------|----------------------------------------------|
//! | `conversation_id` | hex  | conversation id of the proposal              |
//! | `epoch`           | u64  | epoch of the proposal                        |
//! | `proposal_digest` | hex  | digest of the proposal voted on (32 bytes)   |
//! | `voter`           | hex  | voter's member id, 1..=64 bytes              |
//! | `choice`          | enum | `"yes"` or `"no"`                            |
//! | `cast_at_ms`      | u64  | when the vote was cast                       |
//!
//! # `header_digests`
//!
//! Array of `{ header, payload, transcript, digest }`:
//!
//! * `header`: a header object;
//! * `payload` (hex): the proposal payload; `header.payload_digest` is its SHA-256;
//! * `transcript` (hex): `transcript::header_transcript(header)`, the bytes the creator signs;
//! * `digest` (hex): `ProposalHeader::digest`, the SHA-256 of `transcript`.
//!
//! # `vote_transcripts`
//!
//! Array of `{ vote, transcript, digest }`:
//!
//! * `vote`: a vote object;
//! * `transcript` (hex): `transcript::vote_transcript(vote)`, the bytes the voter signs;
//! * `digest` (hex): `Vote::digest`, the SHA-256 of `transcript`.
//!
//! # `signatures`
//!
//! Array of end-to-end cases, each one proposal in one group:
//!
//! * `description` (string): what the case exercises (informative only);
//! * `scheme` (string): always `"ed25519"`;
//! * `members`: array of `{ id, seed, public_key }`: the roster, with `id` (hex) the member id,
//!   `seed` (hex, 32 bytes) the Ed25519 private key (RFC 8032 secret key) and `public_key`
//!   (hex, 32 bytes) the public key derived from it;
//! * `header`: the proposal's header object; `header.creator` is one of `members`;
//! * `payload` (hex): the proposal payload;
//! * `header_transcript` (hex) and `proposal_digest` (hex): as in `header_digests`;
//! * `header_signature` (hex, 64 bytes): the creator's Ed25519 signature over
//!   `header_transcript` (Ed25519 is deterministic, so the bytes are fixed);
//! * `votes`: array of `{ vote, transcript, digest, signature }`, a vote object, its transcript
//!   and digest as in `vote_transcripts`, and the voter's Ed25519 signature over `transcript`.
//!   `votes[0]` is the creator's own vote, attached to the proposal; every vote is on
//!   `proposal_digest` in the header's conversation and epoch, each by a distinct member;
//! * `received_at_ms` (u64): when the observing member's machine receives everything;
//! * `decision`: `{ outcome, decided_by, yes, no }`, the decision the machine reaches and the
//!   counted YES and NO votes at that moment.
//!
//! The reader re-derives each public key from its seed, re-signs every transcript and compares
//! the bytes, verifies every signature through openmls's `OpenMlsCrypto::verify_signature`
//! (and checks that a corrupted signature fails), then builds a roster of all `members` and a
//! `VotingMachine` owned by the *last* listed member, hands it the signed proposal (with
//! `votes[0]` attached) and the other votes in order at `received_at_ms`, expecting the proposal
//! to open and every vote to be counted. If no early decision results it ticks the deadline at
//! `header.deadline_ms`. The decision must equal `decision`.
//!
//! # `decisions`
//!
//! The decision rule's truth table (`demls::consensus::rule`). Array of
//! `{ n, yes, no, silent_counts_as_yes, tie_policy, early, deadline }`:
//!
//! * `n` (u32): the electorate (roster size);
//! * `yes`, `no` (u32): counted votes, `yes + no <= n`; the rest are silent;
//! * `silent_counts_as_yes` (bool), `tie_policy` (enum): the proposal's signed flags;
//! * `early`: `null` if no decision can be made before the deadline, else the outcome
//!   (`rule::early_decision`, which does not read the liveness flag);
//! * `deadline`: the outcome at the deadline (`rule::deadline_decision`).
//!
//! Rows cover every `(yes, no)` for `n = 1..=7` under both flags and both tie policies, and rows
//! around the thresholds (quorum `⌈2n/3⌉`, majority, tie) for `n` in 10, 100, 101 and 1000.
//!
//! Every failure names its group and index, e.g. `decisions[17]: …`.

use std::collections::BTreeSet;
use std::fmt::Debug;

use demls::consensus::rule::{self, Outcome, Tally};
use demls::consensus::transcript;
use demls::consensus::{
    Choice, Config, ConversationId, DecidedBy, Decision, Epoch, Ingested, MemberId, ProposalDigest,
    ProposalHeader, ProposalKind, Roster, SignatureScheme, SignedProposal, TiePolicy, Timestamp,
    Vote, Voter, VotingMachine,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::Signer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where the vectors live.
const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/voting.json");

// ----- JSON schema -----

/// Byte strings as lowercase hex.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VotingVectors {
    header_digests: Vec<HeaderDigestVector>,
    vote_transcripts: Vec<VoteTranscriptVector>,
    signatures: Vec<SignatureVector>,
    decisions: Vec<DecisionVector>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindJson {
    Commit,
    StewardElection,
    Emergency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TieJson {
    Reject,
    Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ChoiceJson {
    Yes,
    No,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutcomeJson {
    Yes,
    No,
    Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DecidedByJson {
    Early,
    Deadline,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderJson {
    #[serde(with = "hex_bytes")]
    conversation_id: Vec<u8>,
    epoch: u64,
    proposal_id: u64,
    kind: KindJson,
    #[serde(with = "hex_bytes")]
    payload_digest: Vec<u8>,
    #[serde(with = "hex_bytes")]
    creator: Vec<u8>,
    created_at_ms: u64,
    deadline_ms: u64,
    silent_counts_as_yes: bool,
    tie_policy: TieJson,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteJson {
    #[serde(with = "hex_bytes")]
    conversation_id: Vec<u8>,
    epoch: u64,
    #[serde(with = "hex_bytes")]
    proposal_digest: Vec<u8>,
    #[serde(with = "hex_bytes")]
    voter: Vec<u8>,
    choice: ChoiceJson,
    cast_at_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderDigestVector {
    header: HeaderJson,
    #[serde(with = "hex_bytes")]
    payload: Vec<u8>,
    #[serde(with = "hex_bytes")]
    transcript: Vec<u8>,
    #[serde(with = "hex_bytes")]
    digest: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteTranscriptVector {
    vote: VoteJson,
    #[serde(with = "hex_bytes")]
    transcript: Vec<u8>,
    #[serde(with = "hex_bytes")]
    digest: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberJson {
    #[serde(with = "hex_bytes")]
    id: Vec<u8>,
    #[serde(with = "hex_bytes")]
    seed: Vec<u8>,
    #[serde(with = "hex_bytes")]
    public_key: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedVoteJson {
    vote: VoteJson,
    #[serde(with = "hex_bytes")]
    transcript: Vec<u8>,
    #[serde(with = "hex_bytes")]
    digest: Vec<u8>,
    #[serde(with = "hex_bytes")]
    signature: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionJson {
    outcome: OutcomeJson,
    decided_by: DecidedByJson,
    yes: u32,
    no: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureVector {
    description: String,
    scheme: String,
    members: Vec<MemberJson>,
    header: HeaderJson,
    #[serde(with = "hex_bytes")]
    payload: Vec<u8>,
    #[serde(with = "hex_bytes")]
    header_transcript: Vec<u8>,
    #[serde(with = "hex_bytes")]
    proposal_digest: Vec<u8>,
    #[serde(with = "hex_bytes")]
    header_signature: Vec<u8>,
    votes: Vec<SignedVoteJson>,
    received_at_ms: u64,
    decision: DecisionJson,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionVector {
    n: u32,
    yes: u32,
    no: u32,
    silent_counts_as_yes: bool,
    tie_policy: TieJson,
    early: Option<OutcomeJson>,
    deadline: OutcomeJson,
}

// ----- JSON -> implementation types -----

type Check = Result<(), String>;

fn kind_of(k: KindJson) -> ProposalKind {
    match k {
        KindJson::Commit => ProposalKind::Commit,
        KindJson::StewardElection => ProposalKind::StewardElection,
        KindJson::Emergency => ProposalKind::Emergency,
    }
}

fn tie_of(t: TieJson) -> TiePolicy {
    match t {
        TieJson::Reject => TiePolicy::Reject,
        TieJson::Retry => TiePolicy::Retry,
    }
}

fn choice_of(c: ChoiceJson) -> Choice {
    match c {
        ChoiceJson::Yes => Choice::Yes,
        ChoiceJson::No => Choice::No,
    }
}

fn outcome_of(o: OutcomeJson) -> Outcome {
    match o {
        OutcomeJson::Yes => Outcome::Yes,
        OutcomeJson::No => Outcome::No,
        OutcomeJson::Retry => Outcome::Retry,
    }
}

fn decided_by_of(d: DecidedByJson) -> DecidedBy {
    match d {
        DecidedByJson::Early => DecidedBy::Early,
        DecidedByJson::Deadline => DecidedBy::Deadline,
    }
}

fn digest32(what: &str, bytes: &[u8]) -> Result<[u8; 32], String> {
    bytes
        .try_into()
        .map_err(|_| format!("{what} is {} bytes, expected 32", bytes.len()))
}

fn member_id(what: &str, bytes: &[u8]) -> Result<MemberId, String> {
    MemberId::new(bytes.to_vec()).map_err(|e| format!("{what}: {e}"))
}

fn conversation_id(what: &str, bytes: &[u8]) -> Result<ConversationId, String> {
    ConversationId::new(bytes.to_vec()).map_err(|e| format!("{what}: {e}"))
}

fn header_of(h: &HeaderJson) -> Result<ProposalHeader, String> {
    Ok(ProposalHeader {
        conversation: conversation_id("header.conversation_id", &h.conversation_id)?,
        epoch: Epoch(h.epoch),
        proposal_id: h.proposal_id,
        kind: kind_of(h.kind),
        payload_digest: digest32("header.payload_digest", &h.payload_digest)?,
        creator: member_id("header.creator", &h.creator)?,
        created_at: Timestamp(h.created_at_ms),
        deadline: Timestamp(h.deadline_ms),
        silent_counts_as_yes: h.silent_counts_as_yes,
        tie_policy: tie_of(h.tie_policy),
    })
}

fn vote_of(v: &VoteJson, signature: &[u8]) -> Result<Vote, String> {
    Ok(Vote {
        conversation: conversation_id("vote.conversation_id", &v.conversation_id)?,
        epoch: Epoch(v.epoch),
        proposal: ProposalDigest(digest32("vote.proposal_digest", &v.proposal_digest)?),
        voter: member_id("vote.voter", &v.voter)?,
        choice: choice_of(v.choice),
        cast_at: Timestamp(v.cast_at_ms),
        signature: signature.to_vec(),
    })
}

fn tally_of(d: &DecisionVector) -> Result<Tally, String> {
    if u64::from(d.yes) + u64::from(d.no) > u64::from(d.n) {
        return Err(format!("yes {} + no {} exceeds n {}", d.yes, d.no, d.n));
    }
    Ok(Tally {
        electorate: d.n,
        yes: d.yes,
        no: d.no,
    })
}

// ----- checks -----

fn check_eq<T: PartialEq + Debug>(what: &str, got: T, want: T) -> Check {
    compare(what, "implementation gives", got, want)
}

fn check_bytes(what: &str, got: &[u8], want: &[u8]) -> Check {
    compare_bytes(what, "implementation gives", got, want)
}

/// `got` (described by `source`) against the vector's `want`.
fn compare<T: PartialEq + Debug>(what: &str, source: &str, got: T, want: T) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: {source} {got:?}, vector has {want:?}"))
    }
}

/// [`compare`] for byte strings, shown in hex.
fn compare_bytes(what: &str, source: &str, got: &[u8], want: &[u8]) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: {source} {}, vector has {}",
            hex::encode(got),
            hex::encode(want)
        ))
    }
}

fn load() -> VotingVectors {
    let text = std::fs::read_to_string(VECTORS_PATH)
        .unwrap_or_else(|e| panic!("cannot read {VECTORS_PATH}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {VECTORS_PATH}: {e}"))
}

/// Runs `check` on every vector of a group and fails with the group and index of every failing
/// vector (a panic inside the implementation is reported the same way).
fn run_group<T>(group: &str, vectors: &[T], check: impl Fn(&T) -> Check) {
    assert!(!vectors.is_empty(), "{group}: the group has no vectors");
    let mut failures = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(v)))
            .unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string panic)");
                Err(format!("panicked: {msg}"))
            });
        if let Err(e) = result {
            failures.push(format!("{group}[{i}]: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {group} vectors failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

fn check_header_digest(v: &HeaderDigestVector) -> Check {
    let h = header_of(&v.header)?;
    check_bytes(
        "SHA-256(payload) vs header.payload_digest",
        &Sha256::digest(&v.payload),
        &v.header.payload_digest,
    )?;
    check_bytes(
        "transcript::payload_digest(payload)",
        &transcript::payload_digest(&v.payload),
        &v.header.payload_digest,
    )?;
    check_bytes(
        "header_transcript",
        &transcript::header_transcript(&h),
        &v.transcript,
    )?;
    check_bytes("ProposalHeader::digest", h.digest().as_bytes(), &v.digest)?;
    check_bytes(
        "transcript::proposal_digest",
        transcript::proposal_digest(&h).as_bytes(),
        &v.digest,
    )?;
    check_bytes(
        "SHA-256(vector transcript) vs digest",
        &Sha256::digest(&v.transcript),
        &v.digest,
    )
}

fn check_vote_transcript(v: &VoteTranscriptVector) -> Check {
    let vote = vote_of(&v.vote, &[])?;
    check_bytes(
        "vote_transcript",
        &transcript::vote_transcript(&vote),
        &v.transcript,
    )?;
    check_bytes("Vote::digest", vote.digest().as_bytes(), &v.digest)?;
    check_bytes(
        "transcript::vote_digest",
        transcript::vote_digest(&vote).as_bytes(),
        &v.digest,
    )?;
    check_bytes(
        "SHA-256(vector transcript) vs digest",
        &Sha256::digest(&v.transcript),
        &v.digest,
    )
}

/// Checks one signature under `public_key`: the openmls provider accepts it and rejects it once
/// a bit is flipped.
fn check_verifies(what: &str, data: &[u8], public_key: &[u8], signature: &[u8]) -> Check {
    let crypto = RustCrypto::default();
    crypto
        .verify_signature(SignatureScheme::ED25519, data, public_key, signature)
        .map_err(|e| format!("{what}: verify_signature refused the vector's signature: {e:?}"))?;
    let mut corrupted = signature.to_vec();
    if let Some(b) = corrupted.first_mut() {
        *b ^= 0x01;
    }
    if crypto
        .verify_signature(SignatureScheme::ED25519, data, public_key, &corrupted)
        .is_ok()
    {
        return Err(format!("{what}: a corrupted signature verified"));
    }
    Ok(())
}

/// The signer of `id` among the vector's members (after checking its public key).
fn signer_of(members: &[MemberJson], id: &[u8]) -> Result<(SignatureKeyPair, Vec<u8>), String> {
    let m = members
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| format!("{} is not among the members", hex::encode(id)))?;
    Ok((
        SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            m.seed.clone(),
            m.public_key.clone(),
        ),
        m.public_key.clone(),
    ))
}

/// Builds the roster of all members and the last member's machine, feeds it the signed proposal
/// and the votes, and returns the decision (ticking the deadline if none was made early).
fn run_machine(v: &SignatureVector) -> Result<Decision, String> {
    let voters = v
        .members
        .iter()
        .enumerate()
        .map(|(j, m)| {
            Ok(Voter {
                id: member_id(&format!("members[{j}].id"), &m.id)?,
                signature_key: m.public_key.clone(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let roster =
        Roster::new(SignatureScheme::ED25519, voters).map_err(|e| format!("roster: {e}"))?;
    let observer = member_id("last member id", &v.members.last().ok_or("no members")?.id)?;
    let header = header_of(&v.header)?;
    let mut machine = VotingMachine::new(
        Config::new(header.conversation.clone(), observer),
        header.epoch,
        roster,
    );
    let (creator_vote, others) = v.votes.split_first().ok_or("no votes")?;
    let proposal = SignedProposal {
        header: header.clone(),
        signature: v.header_signature.clone(),
        payload: v.payload.clone(),
        creator_vote: vote_of(&creator_vote.vote, &creator_vote.signature)?,
    };
    let digest = proposal.digest();
    let crypto = RustCrypto::default();
    let now = Timestamp(v.received_at_ms);
    check_eq(
        "machine: handle_proposal",
        machine.handle_proposal(&crypto, now, proposal),
        Ok(Ingested::Opened(digest)),
    )?;
    for (k, sv) in others.iter().enumerate() {
        let vote = vote_of(&sv.vote, &sv.signature)?;
        check_eq(
            &format!("machine: handle_vote(votes[{}])", k + 1),
            machine.handle_vote(&crypto, now, vote),
            Ok(Ingested::Counted),
        )?;
    }
    if machine.decision(&digest).is_none() {
        machine.tick_deadlines(header.deadline);
    }
    machine
        .decision(&digest)
        .ok_or_else(|| "machine: no decision after the deadline".to_string())
}

fn check_signature(v: &SignatureVector) -> Check {
    check_eq("scheme", v.scheme.as_str(), "ed25519")?;
    for (j, m) in v.members.iter().enumerate() {
        let seed: [u8; 32] = m
            .seed
            .as_slice()
            .try_into()
            .map_err(|_| format!("members[{j}].seed is {} bytes, expected 32", m.seed.len()))?;
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        check_bytes(
            &format!("members[{j}].public_key derived from seed"),
            &public,
            &m.public_key,
        )?;
    }

    // The proposal header: transcript, digest, signature.
    let header = header_of(&v.header)?;
    check_bytes(
        "SHA-256(payload) vs header.payload_digest",
        &Sha256::digest(&v.payload),
        &v.header.payload_digest,
    )?;
    check_bytes(
        "header_transcript",
        &transcript::header_transcript(&header),
        &v.header_transcript,
    )?;
    check_bytes(
        "proposal_digest",
        header.digest().as_bytes(),
        &v.proposal_digest,
    )?;
    let (creator, creator_pk) =
        signer_of(&v.members, &v.header.creator).map_err(|e| format!("header.creator: {e}"))?;
    let signature = creator
        .sign(&v.header_transcript)
        .map_err(|e| format!("header: signing failed: {e:?}"))?;
    check_bytes("header_signature", &signature, &v.header_signature)?;
    check_verifies(
        "header_signature",
        &v.header_transcript,
        &creator_pk,
        &v.header_signature,
    )?;

    // The votes: scope, transcript, digest, signature.
    let mut voters = BTreeSet::new();
    for (k, sv) in v.votes.iter().enumerate() {
        let what = |field: &str| format!("votes[{k}].{field}");
        let vote = vote_of(&sv.vote, &sv.signature)?;
        check_eq(
            &what("vote.conversation_id"),
            &vote.conversation,
            &header.conversation,
        )?;
        check_eq(&what("vote.epoch"), vote.epoch, header.epoch)?;
        check_bytes(
            &what("vote.proposal_digest"),
            &sv.vote.proposal_digest,
            &v.proposal_digest,
        )?;
        if !voters.insert(sv.vote.voter.clone()) {
            return Err(format!(
                "{}: a second vote by this voter",
                what("vote.voter")
            ));
        }
        if k == 0 {
            check_bytes(
                "votes[0].vote.voter (the creator's vote)",
                &sv.vote.voter,
                &v.header.creator,
            )?;
        }
        check_bytes(
            &what("transcript"),
            &transcript::vote_transcript(&vote),
            &sv.transcript,
        )?;
        check_bytes(&what("digest"), vote.digest().as_bytes(), &sv.digest)?;
        let (signer, pk) =
            signer_of(&v.members, &sv.vote.voter).map_err(|e| format!("{}: {e}", what("voter")))?;
        let signature = signer
            .sign(&sv.transcript)
            .map_err(|e| format!("{}: signing failed: {e:?}", what("signature")))?;
        check_bytes(&what("signature"), &signature, &sv.signature)?;
        check_verifies(&what("signature"), &sv.transcript, &pk, &sv.signature)?;
    }

    // End to end through a voting machine.
    let decision = run_machine(v)?;
    check_eq(
        "machine: decision.outcome",
        decision.outcome,
        outcome_of(v.decision.outcome),
    )?;
    check_eq(
        "machine: decision.by",
        decision.by,
        decided_by_of(v.decision.decided_by),
    )?;
    check_eq(
        "machine: decision.tally",
        decision.tally,
        Tally {
            electorate: v.members.len() as u32,
            yes: v.decision.yes,
            no: v.decision.no,
        },
    )
}

fn check_decision(d: &DecisionVector) -> Check {
    let t = tally_of(d)?;
    let tie = tie_of(d.tie_policy);
    check_eq(
        "rule::early_decision",
        rule::early_decision(t, tie),
        d.early.map(outcome_of),
    )?;
    check_eq(
        "rule::deadline_decision",
        rule::deadline_decision(t, d.silent_counts_as_yes, tie),
        outcome_of(d.deadline),
    )
}

// ----- readers (always run) -----

#[test]
fn header_digest_vectors() {
    run_group(
        "header_digests",
        &load().header_digests,
        check_header_digest,
    );
}

#[test]
fn vote_transcript_vectors() {
    run_group(
        "vote_transcripts",
        &load().vote_transcripts,
        check_vote_transcript,
    );
}

#[test]
fn signature_vectors() {
    run_group("signatures", &load().signatures, check_signature);
}

#[test]
fn decision_vectors() {
    run_group("decisions", &load().decisions, check_decision);
}

/// The decision table covers what the schema promises: every `(yes, no)` for `n = 1..=7` under
/// both flags and both tie policies, and the larger electorates.
#[test]
fn decision_vectors_cover_the_table() {
    let vectors = load();
    let rows: BTreeSet<(u32, u32, u32, bool, bool)> = vectors
        .decisions
        .iter()
        .map(|d| {
            let retry = d.tie_policy == TieJson::Retry;
            (d.n, d.yes, d.no, d.silent_counts_as_yes, retry)
        })
        .collect();
    assert_eq!(
        rows.len(),
        vectors.decisions.len(),
        "decisions: duplicate rows"
    );
    for n in 1..=7u32 {
        for yes in 0..=n {
            for no in 0..=n - yes {
                for flag in [false, true] {
                    for retry in [false, true] {
                        assert!(
                            rows.contains(&(n, yes, no, flag, retry)),
                            "decisions: missing row n={n} yes={yes} no={no} \
                             silent_counts_as_yes={flag} retry={retry}"
                        );
                    }
                }
            }
        }
    }
    for n in [10, 100, 1000] {
        assert!(
            rows.iter().any(|r| r.0 == n),
            "decisions: no rows for n = {n}"
        );
    }
}

/// The outcome when all `n` voters are counted, as `rule.rs` documents it.
fn documented_final(n: u32, y: u32, tie: TieJson) -> OutcomeJson {
    if n <= 2 {
        return if y == n {
            OutcomeJson::Yes
        } else {
            OutcomeJson::No
        };
    }
    let (y2, n) = (2 * u64::from(y), u64::from(n));
    if y2 > n {
        OutcomeJson::Yes
    } else if y2 < n {
        OutcomeJson::No
    } else {
        match tie {
            TieJson::Reject => OutcomeJson::No,
            TieJson::Retry => OutcomeJson::Retry,
        }
    }
}

/// The decision table agrees with the rule as documented in `rule.rs`, re-derived here by
/// brute force: an early decision exists iff every possible final YES count in
/// `[yes, yes + silent]` gives the same outcome (a YES additionally needing `3·voters >= 2n`),
/// the deadline counts silent voters per the flag, and an early decision equals the deadline
/// decision under both flags.
#[test]
fn decision_vectors_follow_the_documented_rule() {
    run_group("decisions", &load().decisions, |d| {
        tally_of(d)?;
        let finals: BTreeSet<OutcomeJson> = (d.yes..=d.n - d.no)
            .map(|y| documented_final(d.n, y, d.tie_policy))
            .collect();
        let mut early = (finals.len() == 1).then(|| *finals.first().unwrap());
        if early == Some(OutcomeJson::Yes) && 3 * u64::from(d.yes + d.no) < 2 * u64::from(d.n) {
            early = None;
        }
        let silent = d.n - d.yes - d.no;
        let y = if d.silent_counts_as_yes {
            d.yes + silent
        } else {
            d.yes
        };
        let deadline = documented_final(d.n, y, d.tie_policy);
        compare("early", "the documented rule gives", early, d.early)?;
        compare(
            "deadline",
            "the documented rule gives",
            deadline,
            d.deadline,
        )?;
        if let Some(e) = d.early {
            compare(
                "deadline",
                "the early decision is",
                Some(e),
                Some(d.deadline),
            )?;
        }
        Ok(())
    });
}

/// The transcripts in the vectors follow the layout documented in `transcript.rs`, re-encoded
/// here independently: length-prefixed (4-byte big-endian) label and variable fields, 8-byte
/// big-endian integers, one-byte enums and booleans.
#[test]
fn transcript_vectors_follow_the_documented_layout() {
    fn var(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    }
    fn header_layout(h: &HeaderJson) -> Vec<u8> {
        let mut t = Vec::new();
        var(&mut t, b"demls/v1/proposal-header");
        var(&mut t, &h.conversation_id);
        t.extend_from_slice(&h.epoch.to_be_bytes());
        t.extend_from_slice(&h.proposal_id.to_be_bytes());
        t.push(match h.kind {
            KindJson::Commit => 1,
            KindJson::StewardElection => 2,
            KindJson::Emergency => 3,
        });
        var(&mut t, &h.payload_digest);
        var(&mut t, &h.creator);
        t.extend_from_slice(&h.created_at_ms.to_be_bytes());
        t.extend_from_slice(&h.deadline_ms.to_be_bytes());
        t.push(u8::from(h.silent_counts_as_yes));
        t.push(match h.tie_policy {
            TieJson::Reject => 1,
            TieJson::Retry => 2,
        });
        t
    }
    fn vote_layout(v: &VoteJson) -> Vec<u8> {
        let mut t = Vec::new();
        var(&mut t, b"demls/v1/vote");
        var(&mut t, &v.conversation_id);
        t.extend_from_slice(&v.epoch.to_be_bytes());
        var(&mut t, &v.proposal_digest);
        var(&mut t, &v.voter);
        t.push(u8::from(v.choice == ChoiceJson::Yes));
        t.extend_from_slice(&v.cast_at_ms.to_be_bytes());
        t
    }
    let vectors = load();
    run_group("header_digests", &vectors.header_digests, |v| {
        compare_bytes(
            "transcript",
            "the documented layout gives",
            &header_layout(&v.header),
            &v.transcript,
        )
    });
    run_group("vote_transcripts", &vectors.vote_transcripts, |v| {
        compare_bytes(
            "transcript",
            "the documented layout gives",
            &vote_layout(&v.vote),
            &v.transcript,
        )
    });
    run_group("signatures", &vectors.signatures, |v| {
        compare_bytes(
            "header_transcript",
            "the documented layout gives",
            &header_layout(&v.header),
            &v.header_transcript,
        )?;
        for (k, sv) in v.votes.iter().enumerate() {
            compare_bytes(
                &format!("votes[{k}].transcript"),
                "the documented layout gives",
                &vote_layout(&sv.vote),
                &sv.transcript,
            )?;
        }
        Ok(())
    });
}

// ----- writer -----

/// Regenerates `tests/vectors/voting.json` from the fixed inputs in [`writer`].
#[cfg(feature = "write-vectors")]
#[test]
fn write_vectors() {
    let vectors = writer::generate();
    let mut json = serde_json::to_string_pretty(&vectors).expect("vectors serialize");
    json.push('\n');
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    std::fs::create_dir_all(dir).expect("create tests/vectors");
    std::fs::write(VECTORS_PATH, json).expect("write tests/vectors/voting.json");
}

#[cfg(feature = "write-vectors")]
mod writer {
    //! The fixed inputs of the vectors and their expected values, computed by the
    //! implementation. Everything is a `Vec` in a fixed order, so the output is deterministic.

    use super::*;

    impl From<ProposalKind> for KindJson {
        fn from(k: ProposalKind) -> Self {
            match k {
                ProposalKind::Commit => KindJson::Commit,
                ProposalKind::StewardElection => KindJson::StewardElection,
                ProposalKind::Emergency => KindJson::Emergency,
            }
        }
    }

    impl From<TiePolicy> for TieJson {
        fn from(t: TiePolicy) -> Self {
            match t {
                TiePolicy::Reject => TieJson::Reject,
                TiePolicy::Retry => TieJson::Retry,
            }
        }
    }

    impl From<Choice> for ChoiceJson {
        fn from(c: Choice) -> Self {
            match c {
                Choice::Yes => ChoiceJson::Yes,
                Choice::No => ChoiceJson::No,
            }
        }
    }

    impl From<Outcome> for OutcomeJson {
        fn from(o: Outcome) -> Self {
            match o {
                Outcome::Yes => OutcomeJson::Yes,
                Outcome::No => OutcomeJson::No,
                Outcome::Retry => OutcomeJson::Retry,
            }
        }
    }

    impl From<DecidedBy> for DecidedByJson {
        fn from(d: DecidedBy) -> Self {
            match d {
                DecidedBy::Early => DecidedByJson::Early,
                DecidedBy::Deadline => DecidedByJson::Deadline,
            }
        }
    }

    fn header_json(h: &ProposalHeader) -> HeaderJson {
        HeaderJson {
            conversation_id: h.conversation.as_bytes().to_vec(),
            epoch: h.epoch.0,
            proposal_id: h.proposal_id,
            kind: h.kind.into(),
            payload_digest: h.payload_digest.to_vec(),
            creator: h.creator.as_bytes().to_vec(),
            created_at_ms: h.created_at.0,
            deadline_ms: h.deadline.0,
            silent_counts_as_yes: h.silent_counts_as_yes,
            tie_policy: h.tie_policy.into(),
        }
    }

    fn vote_json(v: &Vote) -> VoteJson {
        VoteJson {
            conversation_id: v.conversation.as_bytes().to_vec(),
            epoch: v.epoch.0,
            proposal_digest: v.proposal.as_bytes().to_vec(),
            voter: v.voter.as_bytes().to_vec(),
            choice: v.choice.into(),
            cast_at_ms: v.cast_at.0,
        }
    }

    fn conv(bytes: &[u8]) -> ConversationId {
        ConversationId::new(bytes.to_vec()).expect("fixed conversation id is valid")
    }

    fn id(bytes: &[u8]) -> MemberId {
        MemberId::new(bytes.to_vec()).expect("fixed member id is valid")
    }

    /// `len` bytes `start, start + step, …` (wrapping): recognisable, position-dependent
    /// patterns for ids and payloads.
    fn pattern(len: usize, start: u8, step: u8) -> Vec<u8> {
        (0..len)
            .map(|i| start.wrapping_add(step.wrapping_mul(i as u8)))
            .collect()
    }

    fn sha256(label: &str) -> [u8; 32] {
        Sha256::digest(label.as_bytes()).into()
    }

    /// A header and its payload.
    struct HeaderInput {
        conversation: Vec<u8>,
        epoch: u64,
        proposal_id: u64,
        kind: ProposalKind,
        payload: Vec<u8>,
        creator: Vec<u8>,
        created_at: u64,
        deadline: u64,
        silent_counts_as_yes: bool,
        tie: TiePolicy,
    }

    impl HeaderInput {
        fn header(&self) -> ProposalHeader {
            ProposalHeader {
                conversation: conv(&self.conversation),
                epoch: Epoch(self.epoch),
                proposal_id: self.proposal_id,
                kind: self.kind,
                payload_digest: transcript::payload_digest(&self.payload),
                creator: id(&self.creator),
                created_at: Timestamp(self.created_at),
                deadline: Timestamp(self.deadline),
                silent_counts_as_yes: self.silent_counts_as_yes,
                tie_policy: self.tie,
            }
        }
    }

    fn header_inputs() -> Vec<HeaderInput> {
        vec![
            // The integration-test fixture's shape.
            HeaderInput {
                conversation: b"conversation-1".to_vec(),
                epoch: 1,
                proposal_id: 1,
                kind: ProposalKind::Commit,
                payload: b"add member 1".to_vec(),
                creator: b"member-0000".to_vec(),
                created_at: 1_700_000_000_000,
                deadline: 1_700_000_060_000,
                silent_counts_as_yes: false,
                tie: TiePolicy::Reject,
            },
            // 32-byte conversation id, 20-byte (address-like) creator, one-hour window.
            HeaderInput {
                conversation: pattern(32, 0x00, 1),
                epoch: 42,
                proposal_id: 0xdead_beef,
                kind: ProposalKind::StewardElection,
                payload: b"stewards: alice, bob, carol".to_vec(),
                creator: pattern(20, 0xa0, 1),
                created_at: 1_700_000_123_456,
                deadline: 1_700_003_723_456,
                silent_counts_as_yes: true,
                tie: TiePolicy::Retry,
            },
            // Minimal lengths and extreme integers; empty payload.
            HeaderInput {
                conversation: vec![0x00],
                epoch: 0,
                proposal_id: u64::MAX,
                kind: ProposalKind::Emergency,
                payload: Vec::new(),
                creator: vec![0xff; 64],
                created_at: 0,
                deadline: 1,
                silent_counts_as_yes: true,
                tie: TiePolicy::Reject,
            },
            // Maximal conversation id, byte-distinct integers, a payload longer than 255 bytes.
            HeaderInput {
                conversation: pattern(64, 0xc0, 3),
                epoch: 0x0102_0304_0506_0708,
                proposal_id: 0,
                kind: ProposalKind::Emergency,
                payload: pattern(300, 0x11, 7),
                creator: b"x".to_vec(),
                created_at: u64::MAX - 1,
                deadline: u64::MAX,
                silent_counts_as_yes: false,
                tie: TiePolicy::Retry,
            },
            HeaderInput {
                conversation: b"conversation-1".to_vec(),
                epoch: 7,
                proposal_id: 2,
                kind: ProposalKind::Commit,
                payload: b"remove member-0003".to_vec(),
                creator: b"member-0001".to_vec(),
                created_at: 1_700_000_500_000,
                deadline: 1_700_000_530_000,
                silent_counts_as_yes: true,
                tie: TiePolicy::Retry,
            },
            HeaderInput {
                conversation: b"conversation-2".to_vec(),
                epoch: 3,
                proposal_id: 0x0807_0605_0403_0201,
                kind: ProposalKind::StewardElection,
                payload: b"stewards: member-0002".to_vec(),
                creator: b"member-0002".to_vec(),
                created_at: 1_700_000_000_001,
                deadline: 1_700_000_000_002,
                silent_counts_as_yes: false,
                tie: TiePolicy::Reject,
            },
        ]
    }

    fn header_digests(inputs: &[HeaderInput]) -> Vec<HeaderDigestVector> {
        inputs
            .iter()
            .map(|input| {
                let h = input.header();
                HeaderDigestVector {
                    header: header_json(&h),
                    payload: input.payload.clone(),
                    transcript: transcript::header_transcript(&h),
                    digest: h.digest().as_bytes().to_vec(),
                }
            })
            .collect()
    }

    fn vote_transcripts(inputs: &[HeaderInput]) -> Vec<VoteTranscriptVector> {
        let d0 = inputs[0].header().digest();
        let d1 = inputs[1].header().digest();
        let votes = [
            (
                b"conversation-1".to_vec(),
                1,
                d0,
                b"member-0001".to_vec(),
                Choice::Yes,
                1_700_000_000_500,
            ),
            (
                b"conversation-1".to_vec(),
                1,
                d0,
                b"member-0002".to_vec(),
                Choice::No,
                1_700_000_001_000,
            ),
            (
                pattern(32, 0x00, 1),
                42,
                d1,
                pattern(20, 0xb0, 1),
                Choice::Yes,
                1_700_000_200_000,
            ),
            (
                vec![0x00],
                0,
                ProposalDigest([0x00; 32]),
                vec![0xff; 64],
                Choice::No,
                0,
            ),
            (
                pattern(64, 0xc0, 3),
                0x0102_0304_0506_0708,
                ProposalDigest([0xff; 32]),
                b"x".to_vec(),
                Choice::Yes,
                u64::MAX,
            ),
        ];
        votes
            .into_iter()
            .map(|(c, epoch, proposal, voter, choice, cast_at)| {
                let v = Vote {
                    conversation: conv(&c),
                    epoch: Epoch(epoch),
                    proposal,
                    voter: id(&voter),
                    choice,
                    cast_at: Timestamp(cast_at),
                    signature: Vec::new(),
                };
                VoteTranscriptVector {
                    vote: vote_json(&v),
                    transcript: transcript::vote_transcript(&v),
                    digest: v.digest().as_bytes().to_vec(),
                }
            })
            .collect()
    }

    /// RFC 8032 §7.1 TEST 1 secret key, so one vector shares a key with the RFC.
    const RFC8032_TEST1_SEED: &str =
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    /// One end-to-end case: the creator is `members[creator]`; `votes[0]` must be the
    /// creator's; vote `k` is cast `100·k` ms after creation; everything is received 1 s after.
    struct SignatureInput {
        description: &'static str,
        conversation: Vec<u8>,
        epoch: u64,
        members: Vec<(Vec<u8>, [u8; 32])>,
        creator: usize,
        proposal_id: u64,
        kind: ProposalKind,
        payload: Vec<u8>,
        created_at: u64,
        window_ms: u64,
        silent_counts_as_yes: bool,
        tie: TiePolicy,
        votes: Vec<(usize, Choice)>,
    }

    fn keyed(case: usize, ids: Vec<Vec<u8>>) -> Vec<(Vec<u8>, [u8; 32])> {
        ids.into_iter()
            .enumerate()
            .map(|(j, id)| (id, sha256(&format!("demls vector {case} member {j}"))))
            .collect()
    }

    fn signature_inputs() -> Vec<SignatureInput> {
        let rfc_seed: [u8; 32] = hex::decode(RFC8032_TEST1_SEED).unwrap().try_into().unwrap();
        vec![
            SignatureInput {
                description: "n = 1, RFC 8032 TEST 1 key: the creator's YES decides early",
                conversation: b"conversation-1".to_vec(),
                epoch: 1,
                members: vec![(b"rfc8032-test-1".to_vec(), rfc_seed)],
                creator: 0,
                proposal_id: 1,
                kind: ProposalKind::Commit,
                payload: b"add member rfc8032-test-2".to_vec(),
                created_at: 1_700_000_000_000,
                window_ms: 60_000,
                silent_counts_as_yes: false,
                tie: TiePolicy::Reject,
                votes: vec![(0, Choice::Yes)],
            },
            SignatureInput {
                description: "n = 3: two YES are a majority and the quorum of 2: early YES",
                conversation: b"conversation-1".to_vec(),
                epoch: 2,
                members: keyed(
                    1,
                    vec![b"alice".to_vec(), b"bob".to_vec(), b"carol".to_vec()],
                ),
                creator: 1,
                proposal_id: 7,
                kind: ProposalKind::StewardElection,
                payload: b"stewards: alice, bob".to_vec(),
                created_at: 1_700_000_100_000,
                window_ms: 30_000,
                silent_counts_as_yes: false,
                tie: TiePolicy::Reject,
                votes: vec![(1, Choice::Yes), (0, Choice::Yes)],
            },
            SignatureInput {
                description: "n = 4, 20-byte ids: a 2-2 tie under Retry: early retry",
                conversation: pattern(32, 0x40, 5),
                epoch: 9,
                members: keyed(
                    2,
                    (0..4)
                        .map(|j| sha256(&format!("address {j}"))[..20].to_vec())
                        .collect(),
                ),
                creator: 2,
                proposal_id: 0x0102_0304,
                kind: ProposalKind::Commit,
                payload: b"remove 0x...".to_vec(),
                created_at: 1_700_000_200_000,
                window_ms: 120_000,
                silent_counts_as_yes: true,
                tie: TiePolicy::Retry,
                votes: vec![
                    (2, Choice::Yes),
                    (0, Choice::No),
                    (3, Choice::No),
                    (1, Choice::Yes),
                ],
            },
            SignatureInput {
                description: "n = 5: 1 YES 1 NO stays open; 3 silent count as YES at the deadline",
                conversation: b"conversation-5".to_vec(),
                epoch: 100,
                members: keyed(
                    3,
                    (0..5)
                        .map(|j| format!("member-{j:04}").into_bytes())
                        .collect(),
                ),
                creator: 4,
                proposal_id: 3,
                kind: ProposalKind::Emergency,
                payload: b"emergency: member-0002 is offline".to_vec(),
                created_at: 1_700_000_300_000,
                window_ms: 3_600_000,
                silent_counts_as_yes: true,
                tie: TiePolicy::Reject,
                votes: vec![(4, Choice::Yes), (2, Choice::No)],
            },
            SignatureInput {
                description:
                    "n = 6: creator votes NO; 1 YES 3 NO at best ties, under Reject: early NO",
                conversation: b"conversation-6".to_vec(),
                epoch: 5,
                members: keyed(4, (0..6).map(|j| format!("m{j}").into_bytes()).collect()),
                creator: 0,
                proposal_id: 11,
                kind: ProposalKind::Commit,
                payload: b"add member m6".to_vec(),
                created_at: 1_700_000_400_000,
                window_ms: 60_000,
                silent_counts_as_yes: false,
                tie: TiePolicy::Reject,
                votes: vec![
                    (0, Choice::No),
                    (5, Choice::Yes),
                    (3, Choice::No),
                    (1, Choice::No),
                ],
            },
        ]
    }

    fn signatures() -> Vec<SignatureVector> {
        signature_inputs()
            .into_iter()
            .map(|s| {
                let members: Vec<MemberJson> = s
                    .members
                    .iter()
                    .map(|(id, seed)| MemberJson {
                        id: id.clone(),
                        seed: seed.to_vec(),
                        public_key: ed25519_dalek::SigningKey::from_bytes(seed)
                            .verifying_key()
                            .to_bytes()
                            .to_vec(),
                    })
                    .collect();
                let signer = |j: usize| {
                    SignatureKeyPair::from_raw(
                        SignatureScheme::ED25519,
                        members[j].seed.clone(),
                        members[j].public_key.clone(),
                    )
                };
                let header = HeaderInput {
                    conversation: s.conversation.clone(),
                    epoch: s.epoch,
                    proposal_id: s.proposal_id,
                    kind: s.kind,
                    payload: s.payload.clone(),
                    creator: s.members[s.creator].0.clone(),
                    created_at: s.created_at,
                    deadline: s.created_at + s.window_ms,
                    silent_counts_as_yes: s.silent_counts_as_yes,
                    tie: s.tie,
                }
                .header();
                assert_eq!(s.votes[0].0, s.creator, "votes[0] must be the creator's");
                let header_transcript = transcript::header_transcript(&header);
                let header_signature = signer(s.creator).sign(&header_transcript).unwrap();
                let digest = header.digest();
                let votes = s
                    .votes
                    .iter()
                    .enumerate()
                    .map(|(k, &(j, choice))| {
                        let v = Vote {
                            conversation: header.conversation.clone(),
                            epoch: header.epoch,
                            proposal: digest,
                            voter: id(&s.members[j].0),
                            choice,
                            cast_at: Timestamp(s.created_at + 100 * k as u64),
                            signature: Vec::new(),
                        };
                        let t = transcript::vote_transcript(&v);
                        SignedVoteJson {
                            vote: vote_json(&v),
                            signature: signer(j).sign(&t).unwrap(),
                            transcript: t,
                            digest: v.digest().as_bytes().to_vec(),
                        }
                    })
                    .collect();
                let mut vector = SignatureVector {
                    description: s.description.to_string(),
                    scheme: "ed25519".to_string(),
                    members,
                    header: header_json(&header),
                    payload: s.payload,
                    header_transcript,
                    proposal_digest: digest.as_bytes().to_vec(),
                    header_signature,
                    votes,
                    received_at_ms: s.created_at + 1_000,
                    decision: DecisionJson {
                        outcome: OutcomeJson::No,
                        decided_by: DecidedByJson::Early,
                        yes: 0,
                        no: 0,
                    },
                };
                let decision =
                    run_machine(&vector).unwrap_or_else(|e| panic!("{}: {e}", s.description));
                vector.decision = DecisionJson {
                    outcome: decision.outcome.into(),
                    decided_by: decision.by.into(),
                    yes: decision.tally.yes,
                    no: decision.tally.no,
                };
                vector
            })
            .collect()
    }

    /// `(n, yes, no)` rows: exhaustive for `n = 1..=7`, threshold edges for larger `n`.
    fn decision_tallies() -> Vec<(u32, u32, u32)> {
        let mut rows = Vec::new();
        for n in 1..=7u32 {
            for yes in 0..=n {
                for no in 0..=n - yes {
                    rows.push((n, yes, no));
                }
            }
        }
        for n in [10u32, 100, 101, 1000] {
            let (ni, q) = (i64::from(n), i64::from(rule::quorum(n)));
            let (h, m) = (ni / 2, ni / 2 + 1); // half (floor) and the smallest majority
            let candidates = [
                (0, 0),
                (ni, 0),
                (0, ni),
                (ni - 1, 0),
                (ni - 1, 1),
                (0, ni - 1),
                // a majority of YES with too few voters, then exactly the quorum
                (m, 0),
                (q - 1, 0),
                (q, 0),
                (m, q - m - 1),
                (m, q - m),
                (m, q - m + 1),
                (m - 1, 0),
                (m - 1, q - m + 1),
                // full or almost full counts around the majority and the tie
                (m, ni - m),
                (h, ni - h),
                (h - 1, ni - h + 1),
                (h, h),
                (h, h - 1),
                (h - 1, h),
                // NO votes that make a YES impossible, or leave only a tie
                (0, h),
                (0, h + 1),
                (0, m),
                (1, h),
                (1, h - 1),
                (1, ni - h),
            ];
            let set: BTreeSet<(u32, u32)> = candidates
                .into_iter()
                .filter(|&(y, x)| y >= 0 && x >= 0 && y + x <= ni)
                .map(|(y, x)| (y as u32, x as u32))
                .collect();
            rows.extend(set.into_iter().map(|(y, x)| (n, y, x)));
        }
        rows
    }

    fn decisions() -> Vec<DecisionVector> {
        let mut out = Vec::new();
        for (n, yes, no) in decision_tallies() {
            for silent_counts_as_yes in [false, true] {
                for tie in [TiePolicy::Reject, TiePolicy::Retry] {
                    let t = Tally {
                        electorate: n,
                        yes,
                        no,
                    };
                    out.push(DecisionVector {
                        n,
                        yes,
                        no,
                        silent_counts_as_yes,
                        tie_policy: tie.into(),
                        early: rule::early_decision(t, tie).map(Into::into),
                        deadline: rule::deadline_decision(t, silent_counts_as_yes, tie).into(),
                    });
                }
            }
        }
        out
    }

    pub(super) fn generate() -> VotingVectors {
        let inputs = header_inputs();
        VotingVectors {
            header_digests: header_digests(&inputs),
            vote_transcripts: vote_transcripts(&inputs),
            signatures: signatures(),
            decisions: decisions(),
        }
    }
}
