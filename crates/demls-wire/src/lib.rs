//! The demls wire format.
//!
//! This crate holds the prost types generated at build time from the versioned schema in
//! `proto/demls/v1/` (compiled with protox, so no system `protoc` is needed) and the only
//! sanctioned way to turn peer bytes into them: [`decode_voting_message`], which bounds the
//! input size *before* decoding and checks every field's size and presence *after*, returning
//! a typed [`WireError`] for each reason a message can be refused.
//!
//! Decoding is pure: it never panics on any input, allocates at most proportionally to the
//! (already bounded) input, and reads no clock or randomness.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Version 1 of the schema: `proto/demls/v1/voting.proto`. Every field is documented there.
#[allow(missing_docs)]
#[allow(clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/demls.v1.rs"));
}

mod conversation;

pub use conversation::{
    decode_app_content, decode_commit_authority, decode_governance_action, decode_group_params,
    decode_packet, FRAGMENT_ID_LEN, MAX_FRAGMENT_COUNT, MAX_STEWARDS,
};
use prost::Message;
use v1::voting_message::Body;

/// Length of every digest on the wire (SHA-256).
pub const DIGEST_LEN: usize = 32;
/// Largest conversation id accepted.
pub const MAX_CONVERSATION_ID_LEN: usize = 64;
/// Largest member id accepted.
pub const MAX_MEMBER_ID_LEN: usize = 64;
/// Largest signature accepted (Ed25519 is 64 bytes; ECDSA P-521 DER is at most 139).
pub const MAX_SIGNATURE_LEN: usize = 256;
/// Default maximum size of one message: 150 KiB, the Waku message limit.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 150 * 1024;
/// Default maximum proposal payload.
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = 64 * 1024;
/// Default maximum number of votes in one bundle.
pub const DEFAULT_MAX_BUNDLE_VOTES: usize = 4096;

/// Size limits applied when decoding. The defaults match the comments in the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded message accepted, in bytes.
    pub max_message_len: usize,
    /// Largest proposal payload accepted, in bytes.
    pub max_payload_len: usize,
    /// Most votes accepted in one bundle.
    pub max_bundle_votes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
            max_bundle_votes: DEFAULT_MAX_BUNDLE_VOTES,
        }
    }
}

/// Why bytes were refused by the decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The encoded message is larger than [`Limits::max_message_len`]; nothing was decoded.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    MessageTooLarge {
        /// Length of the input.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The bytes are not a valid protobuf encoding of the expected message.
    #[error("malformed protobuf: {0}")]
    Malformed(#[from] prost::DecodeError),
    /// A required field (a sub-message or the envelope's body) is absent.
    #[error("required field `{0}` is missing")]
    MissingField(&'static str),
    /// A field that must not be empty is empty.
    #[error("field `{0}` is empty")]
    EmptyField(&'static str),
    /// A bytes field is longer than its limit.
    #[error("field `{field}` is {len} bytes, the limit is {max}")]
    FieldTooLong {
        /// The field's name in the schema.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A digest field is not exactly [`DIGEST_LEN`] bytes.
    #[error("digest `{field}` is {len} bytes, expected 32")]
    BadDigestLength {
        /// The field's name in the schema.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// An enum field holds an unknown value or the `UNSPECIFIED` zero value.
    #[error("enum `{field}` has invalid value {value}")]
    BadEnum {
        /// The field's name in the schema.
        field: &'static str,
        /// The value received.
        value: i32,
    },
    /// A fragment's index, count or length is inconsistent.
    #[error("inconsistent fragment: {0}")]
    BadFragment(&'static str),
    /// A repeated field that must be in canonical (strictly ascending) order is not.
    #[error("field `{0}` is not in canonical order")]
    NotCanonical(&'static str),
    /// A list holds no entry or more entries than its limit allows.
    #[error("field `{0}` has too few or too many entries")]
    BadCount(&'static str),
    /// A field holds a value its rules forbid.
    #[error("field `{0}` holds an invalid value")]
    InvalidValue(&'static str),
    /// A bundle holds more votes than [`Limits::max_bundle_votes`].
    #[error("bundle holds {len} votes, the limit is {max}")]
    TooManyVotes {
        /// Number of votes in the bundle.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Decodes one [`v1::VotingMessage`] from peer bytes and checks it against `limits`.
///
/// On success every size and presence rule of the schema holds: the body is present, ids are
/// non-empty and within their limits, digests are 32 bytes, enums are known and specified,
/// payloads and bundles are within their limits. Signatures and semantic rules (membership,
/// epochs, times) are *not* checked here; that is the voting machine's job.
pub fn decode_voting_message(
    bytes: &[u8],
    limits: &Limits,
) -> Result<v1::VotingMessage, WireError> {
    if bytes.len() > limits.max_message_len {
        return Err(WireError::MessageTooLarge {
            len: bytes.len(),
            max: limits.max_message_len,
        });
    }
    let message = v1::VotingMessage::decode(bytes)?;
    check_voting_message(&message, limits)?;
    Ok(message)
}

/// Encodes a message to bytes (prost's deterministic field-order encoding).
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

/// Checks the size and presence rules of an already decoded (or locally built) message.
pub fn check_voting_message(message: &v1::VotingMessage, limits: &Limits) -> Result<(), WireError> {
    match message.body.as_ref() {
        None => Err(WireError::MissingField("VotingMessage.body")),
        Some(Body::Proposal(p)) => check_signed_proposal(p, limits),
        Some(Body::Vote(v)) => check_vote(v),
        Some(Body::Bundle(b)) => check_bundle(b, limits),
    }
}

/// Checks a signed proposal, including its header and its creator's vote.
pub fn check_signed_proposal(p: &v1::SignedProposal, limits: &Limits) -> Result<(), WireError> {
    let header = p
        .header
        .as_ref()
        .ok_or(WireError::MissingField("SignedProposal.header"))?;
    check_header(header)?;
    check_bytes("SignedProposal.signature", &p.signature, MAX_SIGNATURE_LEN)?;
    if p.payload.len() > limits.max_payload_len {
        return Err(WireError::FieldTooLong {
            field: "SignedProposal.payload",
            len: p.payload.len(),
            max: limits.max_payload_len,
        });
    }
    let vote = p
        .creator_vote
        .as_ref()
        .ok_or(WireError::MissingField("SignedProposal.creator_vote"))?;
    check_vote(vote)
}

/// Checks a proposal header.
pub fn check_header(h: &v1::ProposalHeader) -> Result<(), WireError> {
    check_bytes(
        "ProposalHeader.conversation_id",
        &h.conversation_id,
        MAX_CONVERSATION_ID_LEN,
    )?;
    check_digest("ProposalHeader.payload_digest", &h.payload_digest)?;
    check_bytes("ProposalHeader.creator", &h.creator, MAX_MEMBER_ID_LEN)?;
    match v1::ProposalKind::try_from(h.kind) {
        Ok(v1::ProposalKind::Unspecified) | Err(_) => {
            return Err(WireError::BadEnum {
                field: "ProposalHeader.kind",
                value: h.kind,
            })
        }
        Ok(_) => {}
    }
    match v1::TiePolicy::try_from(h.tie_policy) {
        Ok(v1::TiePolicy::Unspecified) | Err(_) => Err(WireError::BadEnum {
            field: "ProposalHeader.tie_policy",
            value: h.tie_policy,
        }),
        Ok(_) => Ok(()),
    }
}

/// Checks a vote.
pub fn check_vote(v: &v1::Vote) -> Result<(), WireError> {
    check_bytes(
        "Vote.conversation_id",
        &v.conversation_id,
        MAX_CONVERSATION_ID_LEN,
    )?;
    check_digest("Vote.proposal_digest", &v.proposal_digest)?;
    check_bytes("Vote.voter", &v.voter, MAX_MEMBER_ID_LEN)?;
    check_bytes("Vote.signature", &v.signature, MAX_SIGNATURE_LEN)
}

/// Checks a vote bundle and everything in it.
pub fn check_bundle(b: &v1::VoteBundle, limits: &Limits) -> Result<(), WireError> {
    check_digest("VoteBundle.proposal_digest", &b.proposal_digest)?;
    if b.votes.len() > limits.max_bundle_votes {
        return Err(WireError::TooManyVotes {
            len: b.votes.len(),
            max: limits.max_bundle_votes,
        });
    }
    if let Some(p) = &b.proposal {
        check_signed_proposal(p, limits)?;
    }
    b.votes.iter().try_for_each(check_vote)
}

pub(crate) fn check_bytes(field: &'static str, value: &[u8], max: usize) -> Result<(), WireError> {
    if value.is_empty() {
        return Err(WireError::EmptyField(field));
    }
    if value.len() > max {
        return Err(WireError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

pub(crate) fn check_digest(field: &'static str, value: &[u8]) -> Result<(), WireError> {
    if value.len() != DIGEST_LEN {
        return Err(WireError::BadDigestLength {
            field,
            len: value.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote() -> v1::Vote {
        v1::Vote {
            conversation_id: b"conv".to_vec(),
            epoch: 3,
            proposal_digest: vec![7; 32],
            voter: b"alice".to_vec(),
            approve: true,
            cast_at_ms: 1_000,
            signature: vec![1; 64],
        }
    }

    fn wrap(body: Body) -> Vec<u8> {
        encode(&v1::VotingMessage { body: Some(body) })
    }

    #[test]
    fn round_trips_a_vote() {
        let bytes = wrap(Body::Vote(vote()));
        let decoded = decode_voting_message(&bytes, &Limits::default()).unwrap();
        assert_eq!(decoded.body, Some(Body::Vote(vote())));
    }

    #[test]
    fn refuses_oversized_input_before_decoding() {
        let limits = Limits {
            max_message_len: 10,
            ..Limits::default()
        };
        let bytes = wrap(Body::Vote(vote()));
        assert_eq!(
            decode_voting_message(&bytes, &limits),
            Err(WireError::MessageTooLarge {
                len: bytes.len(),
                max: 10
            })
        );
    }

    #[test]
    fn refuses_garbage_with_a_typed_error() {
        let err = decode_voting_message(&[0xff, 0xff, 0xff], &Limits::default()).unwrap_err();
        assert!(matches!(err, WireError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn refuses_missing_body() {
        let bytes = encode(&v1::VotingMessage { body: None });
        assert_eq!(
            decode_voting_message(&bytes, &Limits::default()),
            Err(WireError::MissingField("VotingMessage.body"))
        );
    }

    #[test]
    fn refuses_bad_field_sizes() {
        let mut v = vote();
        v.proposal_digest = vec![0; 31];
        assert_eq!(
            decode_voting_message(&wrap(Body::Vote(v)), &Limits::default()),
            Err(WireError::BadDigestLength {
                field: "Vote.proposal_digest",
                len: 31
            })
        );
        let mut v = vote();
        v.voter = vec![0; MAX_MEMBER_ID_LEN + 1];
        assert!(matches!(
            decode_voting_message(&wrap(Body::Vote(v)), &Limits::default()),
            Err(WireError::FieldTooLong {
                field: "Vote.voter",
                ..
            })
        ));
        let mut v = vote();
        v.voter.clear();
        assert_eq!(
            decode_voting_message(&wrap(Body::Vote(v)), &Limits::default()),
            Err(WireError::EmptyField("Vote.voter"))
        );
    }

    #[test]
    fn refuses_unspecified_enums_and_oversized_bundles() {
        let header = v1::ProposalHeader {
            conversation_id: b"c".to_vec(),
            epoch: 0,
            proposal_id: 0,
            kind: v1::ProposalKind::Unspecified as i32,
            payload_digest: vec![0; 32],
            creator: b"a".to_vec(),
            created_at_ms: 0,
            deadline_ms: 1,
            silent_counts_as_yes: true,
            tie_policy: v1::TiePolicy::Reject as i32,
        };
        assert_eq!(
            check_header(&header),
            Err(WireError::BadEnum {
                field: "ProposalHeader.kind",
                value: 0
            })
        );
        let bundle = v1::VoteBundle {
            proposal: None,
            proposal_digest: vec![7; 32],
            votes: vec![vote(); 3],
        };
        let limits = Limits {
            max_bundle_votes: 2,
            ..Limits::default()
        };
        assert_eq!(
            check_bundle(&bundle, &limits),
            Err(WireError::TooManyVotes { len: 3, max: 2 })
        );
    }
}
