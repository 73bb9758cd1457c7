//! Decoding of the conversation-layer messages (`proto/demls/v1/conversation.proto`) with the
//! same discipline as the voting messages: size bound first, then protobuf, then field rules.

use prost::Message;

use crate::v1;
use crate::{check_bytes, check_digest, Limits, WireError};
use crate::{MAX_CONVERSATION_ID_LEN, MAX_MEMBER_ID_LEN};

/// Length of a fragment's message id.
pub const FRAGMENT_ID_LEN: usize = 16;
/// Most pieces one payload may be split into (every piece carries at least one byte, so a
/// count is also at most the payload's length).
pub const MAX_FRAGMENT_COUNT: u32 = 65_536;

fn bounded<M: Message + Default>(bytes: &[u8], max: usize) -> Result<M, WireError> {
    if bytes.len() > max {
        return Err(WireError::MessageTooLarge {
            len: bytes.len(),
            max,
        });
    }
    Ok(M::decode(bytes)?)
}

/// Decodes a transmitted [`v1::Packet`] and checks its fields. MLS payloads inside are opaque
/// here; the conversation core parses them with openmls.
pub fn decode_packet(bytes: &[u8], limits: &Limits) -> Result<v1::Packet, WireError> {
    let packet: v1::Packet = bounded(bytes, limits.max_message_len)?;
    check_bytes(
        "Packet.conversation_id",
        &packet.conversation_id,
        MAX_CONVERSATION_ID_LEN,
    )?;
    use v1::packet::Body;
    match packet.body.as_ref() {
        None => return Err(WireError::MissingField("Packet.body")),
        Some(Body::KeyPackage(k)) => check_bytes(
            "KeyPackageAnnouncement.key_package",
            &k.key_package,
            limits.max_message_len,
        )?,
        Some(Body::Welcome(w)) => {
            check_bytes("WelcomeMessage.welcome", &w.welcome, limits.max_message_len)?;
            for a in w.carried_approvals.iter().chain(&w.carried_rejections) {
                check_bytes(
                    "WelcomeMessage.carried_approvals",
                    a,
                    limits.max_message_len,
                )?;
            }
        }
        Some(Body::MlsMessage(m)) => check_bytes("Packet.mls_message", m, limits.max_message_len)?,
        Some(Body::Fragment(f)) => {
            if f.message_id.len() != FRAGMENT_ID_LEN {
                return Err(WireError::BadFragment("message id is not 16 bytes"));
            }
            if f.count < 2 || f.index >= f.count {
                return Err(WireError::BadFragment("index or count out of range"));
            }
            if f.count > MAX_FRAGMENT_COUNT || f.count > f.total_len {
                return Err(WireError::BadFragment(
                    "more pieces than the payload has bytes",
                ));
            }
            check_bytes("Fragment.chunk", &f.chunk, limits.max_message_len)?;
            if (f.chunk.len() as u64) > u64::from(f.total_len) {
                return Err(WireError::BadFragment("chunk longer than the whole"));
            }
        }
    }
    Ok(packet)
}

/// Decodes the decrypted content of an MLS application message.
pub fn decode_app_content(bytes: &[u8], limits: &Limits) -> Result<v1::AppContent, WireError> {
    let content: v1::AppContent = bounded(bytes, limits.max_message_len)?;
    use v1::app_content::Body;
    match content.body.as_ref() {
        None => Err(WireError::MissingField("AppContent.body")),
        Some(Body::Voting(v)) => check_bytes("AppContent.voting", v, limits.max_message_len),
        Some(Body::Chat(_)) => Ok(()),
        Some(Body::CommitAck(a)) => {
            check_digest("CommitAck.commit", &a.commit)?;
            check_bytes("CommitAck.committer", &a.committer, MAX_MEMBER_ID_LEN)
        }
    }?;
    Ok(content)
}

/// Decodes a governance action (the payload of a commit proposal).
pub fn decode_governance_action(
    bytes: &[u8],
    limits: &Limits,
) -> Result<v1::GovernanceAction, WireError> {
    let action: v1::GovernanceAction = bounded(bytes, limits.max_payload_len)?;
    use v1::governance_action::Action;
    match action.action.as_ref() {
        None => return Err(WireError::MissingField("GovernanceAction.action")),
        Some(Action::AddKeyPackage(k)) => check_bytes(
            "GovernanceAction.add_key_package",
            k,
            limits.max_payload_len,
        )?,
        Some(Action::RemoveMember(m)) => {
            check_bytes("GovernanceAction.remove_member", m, MAX_MEMBER_ID_LEN)?
        }
        Some(Action::LeaveMember(m)) => {
            check_bytes("GovernanceAction.leave_member", m, MAX_MEMBER_ID_LEN)?
        }
        Some(Action::StewardElection(e)) => {
            if e.stewards.is_empty() || e.stewards.len() > MAX_STEWARDS {
                return Err(WireError::BadCount("StewardElection.stewards"));
            }
            for s in &e.stewards {
                check_bytes("StewardElection.stewards", s, MAX_MEMBER_ID_LEN)?;
            }
        }
        Some(Action::Emergency(e)) => match v1::ViolationType::try_from(e.violation_type) {
            Ok(v1::ViolationType::ScoreBelowThreshold) => {
                check_bytes("EmergencyCriteria.target", &e.target, MAX_MEMBER_ID_LEN)?
            }
            Ok(v1::ViolationType::Deadlock) if e.target.is_empty() => {}
            Ok(v1::ViolationType::Deadlock) => {
                return Err(WireError::InvalidValue("EmergencyCriteria.target"))
            }
            _ => {
                return Err(WireError::BadEnum {
                    field: "EmergencyCriteria.violation_type",
                    value: e.violation_type,
                })
            }
        },
    }
    Ok(action)
}

/// Decodes a commit's authenticated data; digests must be 32 bytes and strictly ascending.
pub fn decode_commit_authority(
    bytes: &[u8],
    limits: &Limits,
) -> Result<v1::CommitAuthority, WireError> {
    let authority: v1::CommitAuthority = bounded(bytes, limits.max_message_len)?;
    for d in &authority.proposal_digests {
        check_digest("CommitAuthority.proposal_digests", d)?;
    }
    if authority.proposal_digests.windows(2).any(|w| w[0] >= w[1]) {
        return Err(WireError::NotCanonical("CommitAuthority.proposal_digests"));
    }
    if authority.proposal_digests.is_empty() {
        return Err(WireError::EmptyField("CommitAuthority.proposal_digests"));
    }
    Ok(authority)
}

/// Most stewards a list may hold.
pub const MAX_STEWARDS: usize = 256;

/// Decodes the group parameters extension: the steward list must be non-empty (at most
/// [`MAX_STEWARDS`]) with valid ids, the governance parameters present and consistent
/// (1 <= sn_min <= sn_max <= [`MAX_STEWARDS`]), and the scores strictly ascending by member.
pub fn decode_group_params(bytes: &[u8], limits: &Limits) -> Result<v1::GroupParams, WireError> {
    let params: v1::GroupParams = bounded(bytes, limits.max_message_len)?;
    if params.stewards.is_empty() {
        return Err(WireError::EmptyField("GroupParams.stewards"));
    }
    if params.stewards.len() > MAX_STEWARDS {
        return Err(WireError::BadCount("GroupParams.stewards"));
    }
    for s in &params.stewards {
        check_bytes("GroupParams.stewards", s, MAX_MEMBER_ID_LEN)?;
    }
    let g = params
        .governance
        .as_ref()
        .ok_or(WireError::MissingField("GroupParams.governance"))?;
    if g.sn_min == 0 || g.sn_min > g.sn_max || g.sn_max as usize > MAX_STEWARDS {
        return Err(WireError::InvalidValue("GovernanceParams.sn_min/sn_max"));
    }
    for s in &params.scores {
        check_bytes("PeerScore.member", &s.member, MAX_MEMBER_ID_LEN)?;
    }
    if params.scores.windows(2).any(|w| w[0].member >= w[1].member) {
        return Err(WireError::NotCanonical("GroupParams.scores"));
    }
    Ok(params)
}
