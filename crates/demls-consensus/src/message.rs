//! Validated, owned forms of the voting-layer messages and their conversion to and from the
//! wire types of `demls-wire`.
//!
//! Conversion from the wire never panics: [`VotingMessage::decode`] runs the wire crate's size
//! and presence checks first and maps every remaining problem to a [`WireError`].

use demls_wire::{v1, Limits, WireError};

use crate::transcript;
use crate::types::{
    Choice, ConversationId, Epoch, MemberId, ProposalDigest, ProposalKind, TiePolicy, Timestamp,
};

/// The signed header of a voting proposal (BRIEF §5: every outcome-relevant field is signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalHeader {
    /// The conversation the proposal belongs to.
    pub conversation: ConversationId,
    /// The epoch whose roster votes on it.
    pub epoch: Epoch,
    /// Creator-chosen number distinguishing proposals of one creator.
    pub proposal_id: u64,
    /// The consensus type.
    pub kind: ProposalKind,
    /// SHA-256 of the payload.
    pub payload_digest: [u8; 32],
    /// The creator.
    pub creator: MemberId,
    /// When it was created (derived Unix milliseconds).
    pub created_at: Timestamp,
    /// When voting ends.
    pub deadline: Timestamp,
    /// Liveness criterion: at the deadline silent voters count as YES (`true`) or NO.
    pub silent_counts_as_yes: bool,
    /// What a tie resolves to.
    pub tie_policy: TiePolicy,
}

impl ProposalHeader {
    /// The digest that names this proposal ([`transcript::proposal_digest`]).
    pub fn digest(&self) -> ProposalDigest {
        transcript::proposal_digest(self)
    }
}

/// One member's signed vote on one proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// Conversation of the proposal.
    pub conversation: ConversationId,
    /// Epoch of the proposal.
    pub epoch: Epoch,
    /// The proposal voted on.
    pub proposal: ProposalDigest,
    /// The voter.
    pub voter: MemberId,
    /// YES or NO.
    pub choice: Choice,
    /// When the vote was cast (derived Unix milliseconds).
    pub cast_at: Timestamp,
    /// Signature over [`transcript::vote_transcript`] by the voter's MLS signature key.
    pub signature: Vec<u8>,
}

/// A proposal as broadcast: signed header, payload and the creator's own vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedProposal {
    /// The signed header.
    pub header: ProposalHeader,
    /// The creator's signature over the header transcript.
    pub signature: Vec<u8>,
    /// What is voted on (opaque to the voting layer).
    pub payload: Vec<u8>,
    /// The creator's vote.
    pub creator_vote: Vote,
}

/// Votes on one proposal, optionally with the proposal; merged by receivers as a union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteBundle {
    /// The proposal, when the sender includes it.
    pub proposal: Option<SignedProposal>,
    /// The proposal every vote references.
    pub proposal_digest: ProposalDigest,
    /// The votes.
    pub votes: Vec<Vote>,
}

/// Everything the voting layer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VotingMessage {
    /// A new proposal with its creator's vote.
    Proposal(SignedProposal),
    /// A single vote.
    Vote(Vote),
    /// A bundle of votes on one proposal.
    Bundle(VoteBundle),
}

impl VotingMessage {
    /// Decodes peer bytes: size limit first, then protobuf, then the schema's field rules.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, WireError> {
        let message = demls_wire::decode_voting_message(bytes, limits)?;
        match message.body {
            Some(v1::voting_message::Body::Proposal(p)) => {
                Ok(VotingMessage::Proposal(SignedProposal::from_wire(p)?))
            }
            Some(v1::voting_message::Body::Vote(v)) => Ok(VotingMessage::Vote(Vote::from_wire(v)?)),
            Some(v1::voting_message::Body::Bundle(b)) => {
                Ok(VotingMessage::Bundle(VoteBundle::from_wire(b)?))
            }
            None => Err(WireError::MissingField("VotingMessage.body")),
        }
    }

    /// Encodes to the bytes a host transmits.
    pub fn encode(&self) -> Vec<u8> {
        let body = match self {
            VotingMessage::Proposal(p) => v1::voting_message::Body::Proposal(p.to_wire()),
            VotingMessage::Vote(v) => v1::voting_message::Body::Vote(v.to_wire()),
            VotingMessage::Bundle(b) => v1::voting_message::Body::Bundle(b.to_wire()),
        };
        demls_wire::encode(&v1::VotingMessage { body: Some(body) })
    }
}

fn member(field: &'static str, bytes: Vec<u8>) -> Result<MemberId, WireError> {
    MemberId::new(bytes).map_err(|_| WireError::EmptyField(field))
}

fn conversation(field: &'static str, bytes: Vec<u8>) -> Result<ConversationId, WireError> {
    ConversationId::new(bytes).map_err(|_| WireError::EmptyField(field))
}

fn digest32(field: &'static str, bytes: &[u8]) -> Result<[u8; 32], WireError> {
    bytes.try_into().map_err(|_| WireError::BadDigestLength {
        field,
        len: bytes.len(),
    })
}

impl ProposalHeader {
    pub(crate) fn from_wire(h: v1::ProposalHeader) -> Result<Self, WireError> {
        Ok(Self {
            kind: ProposalKind::from_wire(h.kind).ok_or(WireError::BadEnum {
                field: "ProposalHeader.kind",
                value: h.kind,
            })?,
            tie_policy: TiePolicy::from_wire(h.tie_policy).ok_or(WireError::BadEnum {
                field: "ProposalHeader.tie_policy",
                value: h.tie_policy,
            })?,
            payload_digest: digest32("ProposalHeader.payload_digest", &h.payload_digest)?,
            conversation: conversation("ProposalHeader.conversation_id", h.conversation_id)?,
            epoch: Epoch(h.epoch),
            proposal_id: h.proposal_id,
            creator: member("ProposalHeader.creator", h.creator)?,
            created_at: Timestamp(h.created_at_ms),
            deadline: Timestamp(h.deadline_ms),
            silent_counts_as_yes: h.silent_counts_as_yes,
        })
    }

    pub(crate) fn to_wire(&self) -> v1::ProposalHeader {
        v1::ProposalHeader {
            conversation_id: self.conversation.as_bytes().to_vec(),
            epoch: self.epoch.0,
            proposal_id: self.proposal_id,
            kind: self.kind.to_wire() as i32,
            payload_digest: self.payload_digest.to_vec(),
            creator: self.creator.as_bytes().to_vec(),
            created_at_ms: self.created_at.0,
            deadline_ms: self.deadline.0,
            silent_counts_as_yes: self.silent_counts_as_yes,
            tie_policy: self.tie_policy.to_wire() as i32,
        }
    }
}

impl Vote {
    pub(crate) fn from_wire(v: v1::Vote) -> Result<Self, WireError> {
        Ok(Self {
            proposal: ProposalDigest(digest32("Vote.proposal_digest", &v.proposal_digest)?),
            conversation: conversation("Vote.conversation_id", v.conversation_id)?,
            epoch: Epoch(v.epoch),
            voter: member("Vote.voter", v.voter)?,
            choice: Choice::from_bool(v.approve),
            cast_at: Timestamp(v.cast_at_ms),
            signature: v.signature,
        })
    }

    pub(crate) fn to_wire(&self) -> v1::Vote {
        v1::Vote {
            conversation_id: self.conversation.as_bytes().to_vec(),
            epoch: self.epoch.0,
            proposal_digest: self.proposal.0.to_vec(),
            voter: self.voter.as_bytes().to_vec(),
            approve: self.choice.is_yes(),
            cast_at_ms: self.cast_at.0,
            signature: self.signature.clone(),
        }
    }

    /// The digest of this vote's transcript ([`transcript::vote_digest`]).
    pub fn digest(&self) -> crate::VoteDigest {
        transcript::vote_digest(self)
    }
}

impl SignedProposal {
    pub(crate) fn from_wire(p: v1::SignedProposal) -> Result<Self, WireError> {
        Ok(Self {
            header: ProposalHeader::from_wire(
                p.header
                    .ok_or(WireError::MissingField("SignedProposal.header"))?,
            )?,
            signature: p.signature,
            payload: p.payload,
            creator_vote: Vote::from_wire(
                p.creator_vote
                    .ok_or(WireError::MissingField("SignedProposal.creator_vote"))?,
            )?,
        })
    }

    pub(crate) fn to_wire(&self) -> v1::SignedProposal {
        v1::SignedProposal {
            header: Some(self.header.to_wire()),
            signature: self.signature.clone(),
            payload: self.payload.clone(),
            creator_vote: Some(self.creator_vote.to_wire()),
        }
    }

    /// The proposal's digest.
    pub fn digest(&self) -> ProposalDigest {
        self.header.digest()
    }
}

impl VoteBundle {
    pub(crate) fn from_wire(b: v1::VoteBundle) -> Result<Self, WireError> {
        Ok(Self {
            proposal_digest: ProposalDigest(digest32(
                "VoteBundle.proposal_digest",
                &b.proposal_digest,
            )?),
            proposal: b.proposal.map(SignedProposal::from_wire).transpose()?,
            votes: b
                .votes
                .into_iter()
                .map(Vote::from_wire)
                .collect::<Result<_, _>>()?,
        })
    }

    pub(crate) fn to_wire(&self) -> v1::VoteBundle {
        v1::VoteBundle {
            proposal: self.proposal.as_ref().map(SignedProposal::to_wire),
            proposal_digest: self.proposal_digest.0.to_vec(),
            votes: self.votes.iter().map(Vote::to_wire).collect(),
        }
    }
}
