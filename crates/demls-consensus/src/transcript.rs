//! The byte strings that signatures and digests cover (BRIEF §5, `docs/protocol.md`
//! "Transcripts").
//!
//! A transcript is a domain-separation label followed by the signed fields in a fixed order.
//! Every variable-length field (the label included) is prefixed by its length as a 4-byte
//! big-endian integer; integers are 8-byte big-endian; enums and booleans are one byte. The
//! transcripts are independent of the protobuf encoding, so any valid encoding of the same
//! values verifies.

use sha2::{Digest as _, Sha256};

use crate::message::{ProposalHeader, Vote};
use crate::types::{ProposalDigest, VoteDigest};

/// Label of the proposal header transcript.
pub const HEADER_LABEL: &[u8] = b"demls/v1/proposal-header";
/// Label of the vote transcript.
pub const VOTE_LABEL: &[u8] = b"demls/v1/vote";

struct Writer(Vec<u8>);

impl Writer {
    fn with_label(label: &[u8], capacity: usize) -> Self {
        let mut w = Writer(Vec::with_capacity(capacity));
        w.bytes(label);
        w
    }

    fn bytes(&mut self, b: &[u8]) {
        // Field lengths are bounded by the wire limits (<= 64 KiB), far below u32::MAX.
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
}

/// The transcript a proposal's creator signs; its SHA-256 is the [`ProposalDigest`].
///
/// Fields, in order: label, conversation id, epoch, proposal id, kind code, payload digest,
/// creator, created-at, deadline, silent-counts-as-yes (0/1), tie policy code.
pub fn header_transcript(h: &ProposalHeader) -> Vec<u8> {
    let mut w = Writer::with_label(HEADER_LABEL, 128 + h.creator.as_bytes().len());
    w.bytes(h.conversation.as_bytes());
    w.u64(h.epoch.0);
    w.u64(h.proposal_id);
    w.u8(h.kind.code());
    w.bytes(&h.payload_digest);
    w.bytes(h.creator.as_bytes());
    w.u64(h.created_at.0);
    w.u64(h.deadline.0);
    w.u8(u8::from(h.silent_counts_as_yes));
    w.u8(h.tie_policy.code());
    w.0
}

/// SHA-256 of [`header_transcript`].
pub fn proposal_digest(h: &ProposalHeader) -> ProposalDigest {
    ProposalDigest(Sha256::digest(header_transcript(h)).into())
}

/// The transcript a voter signs; its SHA-256 is the [`VoteDigest`].
///
/// Fields, in order: label, conversation id, epoch, proposal digest, voter, choice (1 = YES,
/// 0 = NO), cast-at.
pub fn vote_transcript(v: &Vote) -> Vec<u8> {
    let mut w = Writer::with_label(VOTE_LABEL, 96 + v.voter.as_bytes().len());
    w.bytes(v.conversation.as_bytes());
    w.u64(v.epoch.0);
    w.bytes(v.proposal.as_bytes());
    w.bytes(v.voter.as_bytes());
    w.u8(u8::from(v.choice.is_yes()));
    w.u64(v.cast_at.0);
    w.0
}

/// SHA-256 of [`vote_transcript`].
pub fn vote_digest(v: &Vote) -> VoteDigest {
    VoteDigest(Sha256::digest(vote_transcript(v)).into())
}

/// SHA-256 of a proposal payload, as carried in the header.
pub fn payload_digest(payload: &[u8]) -> [u8; 32] {
    Sha256::digest(payload).into()
}
