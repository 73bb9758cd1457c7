//! Governance actions: the payloads of voting proposals — membership changes (add, remove,
//! leave), steward elections and emergency criteria proposals — their parsing and validation
//! ("Single steward", "Self-Removal", "Consensus Types").

use demls_consensus::{MemberId, ProposalKind, Timestamp};
use demls_wire::{v1, Limits};
use openmls::prelude::{
    BasicCredential, KeyPackage, KeyPackageIn, MlsMessageBodyIn, MlsMessageIn, MlsMessageOut,
    ProtocolVersion,
};
use openmls_traits::crypto::OpenMlsCrypto;
use prost::Message;
use tls_codec::{Deserialize as _, Serialize as _};

use crate::error::Error;
use crate::event::Action;

/// A parsed, validated governance action.
#[derive(Debug, Clone)]
pub(crate) enum ParsedAction {
    /// Admit the owner of `key_package`.
    Add {
        member: MemberId,
        key_package: Box<KeyPackage>,
    },
    /// Remove `member` (voted).
    Remove { member: MemberId },
    /// `member` leaves.
    Leave { member: MemberId },
    /// A steward list elected in `epoch` at `retry_round`.
    Elect {
        epoch: u64,
        retry_round: u32,
        stewards: Vec<MemberId>,
    },
    /// Remove `target`, whose peer score is at or below the threshold (an ECP).
    RemoveBelowThreshold { target: MemberId },
    /// Protocol deadlock: enter recovery mode (an ECP, Layer 3).
    Deadlock,
}

impl ParsedAction {
    /// The member the action adds or removes, if any.
    pub(crate) fn subject(&self) -> Option<&MemberId> {
        match self {
            ParsedAction::Add { member, .. }
            | ParsedAction::Remove { member }
            | ParsedAction::Leave { member }
            | ParsedAction::RemoveBelowThreshold { target: member } => Some(member),
            ParsedAction::Elect { .. } | ParsedAction::Deadlock => None,
        }
    }

    /// The proposal kind that must carry this action.
    pub(crate) fn kind(&self) -> ProposalKind {
        match self {
            ParsedAction::Add { .. } | ParsedAction::Remove { .. } | ParsedAction::Leave { .. } => {
                ProposalKind::Commit
            }
            ParsedAction::Elect { .. } => ProposalKind::StewardElection,
            ParsedAction::RemoveBelowThreshold { .. } | ParsedAction::Deadlock => {
                ProposalKind::Emergency
            }
        }
    }

    /// The public form reported in events.
    pub(crate) fn public(&self) -> Action {
        match self {
            ParsedAction::Add { member, .. } => Action::Add(member.clone()),
            ParsedAction::Remove { member } => Action::Remove(member.clone()),
            ParsedAction::Leave { member } => Action::Leave(member.clone()),
            ParsedAction::Elect {
                retry_round,
                stewards,
                ..
            } => Action::ElectStewards {
                stewards: stewards.clone(),
                retry_round: *retry_round,
            },
            ParsedAction::RemoveBelowThreshold { target } => {
                Action::RemoveBelowThreshold(target.clone())
            }
            ParsedAction::Deadlock => Action::Deadlock,
        }
    }

    /// Whether the action removes someone from the group.
    pub(crate) fn is_removal(&self) -> bool {
        matches!(
            self,
            ParsedAction::Remove { .. }
                | ParsedAction::Leave { .. }
                | ParsedAction::RemoveBelowThreshold { .. }
        )
    }
}

/// The member id in a basic credential.
pub(crate) fn member_of_credential(
    credential: &openmls::prelude::Credential,
) -> Result<MemberId, Error> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| Error::InvalidProposal("credential is not a basic credential"))?;
    MemberId::new(basic.identity().to_vec())
        .map_err(|_| Error::InvalidProposal("credential identity is not a valid member id"))
}

/// Serializes a key package as the MLS message carried on the wire.
pub(crate) fn key_package_bytes(kp: &KeyPackage) -> Vec<u8> {
    MlsMessageOut::from(kp.clone())
        .tls_serialize_detached()
        .expect("serializing a key package cannot fail")
}

/// Parses and validates a key package MLS message (signature, capabilities, and lifetime
/// against *derived* time `now`; openmls additionally checks the lifetime against the wall
/// clock, see docs/architecture.md).
/// `now = None` skips our lifetime check (for key packages restored from a snapshot, which
/// were checked when received).
pub(crate) fn parse_key_package(
    crypto: &impl OpenMlsCrypto,
    bytes: &[u8],
    now: Option<Timestamp>,
) -> Result<(MemberId, KeyPackage), Error> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(|_| Error::InvalidProposal("key package does not parse"))?;
    let MlsMessageBodyIn::KeyPackage(kp_in) = message.extract() else {
        return Err(Error::InvalidProposal("not a key package"));
    };
    let kp: KeyPackage = KeyPackageIn::validate(kp_in, crypto, ProtocolVersion::Mls10)
        .map_err(|_| Error::InvalidProposal("key package does not validate"))?;
    check_lifetime(&kp, now)?;
    let member = member_of_credential(kp.leaf_node().credential())?;
    Ok((member, kp))
}

/// Our lifetime check against derived time (`None`: skipped).
fn check_lifetime(kp: &KeyPackage, now: Option<Timestamp>) -> Result<(), Error> {
    let lifetime = kp.life_time();
    if let Some(now) = now {
        let secs = now.0 / 1000;
        if secs < lifetime.not_before() || secs >= lifetime.not_after() {
            return Err(Error::InvalidProposal(
                "key package is outside its lifetime",
            ));
        }
    }
    Ok(())
}

/// The already validated key package that `bytes` encodes, if `known` holds one for the
/// member the bytes name and it serializes to exactly `bytes`: validating identical bytes
/// again (two signature verifications) would give the same answer. Our lifetime check
/// against derived `now` is repeated, since time has moved since the first validation.
fn known_key_package<'a>(
    bytes: &[u8],
    now: Option<Timestamp>,
    known: impl Fn(&MemberId) -> Option<&'a KeyPackage>,
) -> Option<(MemberId, KeyPackage)> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes).ok()?;
    let MlsMessageBodyIn::KeyPackage(kp_in) = message.extract() else {
        return None;
    };
    let member = member_of_credential(&kp_in.unverified_credential().credential).ok()?;
    let kp = known(&member)?;
    if key_package_bytes(kp) != bytes || check_lifetime(kp, now).is_err() {
        return None;
    }
    Some((member, kp.clone()))
}

/// Encodes an action as a proposal payload.
pub(crate) fn encode(action: &ParsedAction) -> Vec<u8> {
    use v1::governance_action::Action as A;
    let action = match action {
        ParsedAction::Add { key_package, .. } => A::AddKeyPackage(key_package_bytes(key_package)),
        ParsedAction::Remove { member } => A::RemoveMember(member.as_bytes().to_vec()),
        ParsedAction::Leave { member } => A::LeaveMember(member.as_bytes().to_vec()),
        ParsedAction::Elect {
            epoch,
            retry_round,
            stewards,
        } => A::StewardElection(v1::StewardElection {
            epoch: *epoch,
            retry_round: *retry_round,
            stewards: stewards.iter().map(|s| s.as_bytes().to_vec()).collect(),
        }),
        ParsedAction::RemoveBelowThreshold { target } => A::Emergency(v1::EmergencyCriteria {
            violation_type: v1::ViolationType::ScoreBelowThreshold as i32,
            target: target.as_bytes().to_vec(),
        }),
        ParsedAction::Deadlock => A::Emergency(v1::EmergencyCriteria {
            violation_type: v1::ViolationType::Deadlock as i32,
            target: Vec::new(),
        }),
    };
    v1::GovernanceAction {
        action: Some(action),
    }
    .encode_to_vec()
}

/// Decodes a proposal payload into an action, validating key packages. Membership rules
/// (who may be added or removed) are checked by the conversation, which knows the roster.
pub(crate) fn decode(
    crypto: &impl OpenMlsCrypto,
    payload: &[u8],
    limits: &Limits,
    now: Option<Timestamp>,
) -> Result<ParsedAction, Error> {
    decode_reusing(crypto, payload, limits, now, |_| None)
}

/// [`decode`], where `known` gives the already validated key package of a member, if any
/// (the buffered one): an add carrying exactly its bytes reuses it instead of verifying its
/// signatures again.
pub(crate) fn decode_reusing<'a>(
    crypto: &impl OpenMlsCrypto,
    payload: &[u8],
    limits: &Limits,
    now: Option<Timestamp>,
    known: impl Fn(&MemberId) -> Option<&'a KeyPackage>,
) -> Result<ParsedAction, Error> {
    use v1::governance_action::Action as A;
    let action = demls_wire::decode_governance_action(payload, limits)?;
    let member = |bytes: Vec<u8>| {
        MemberId::new(bytes).map_err(|_| Error::InvalidProposal("invalid member id"))
    };
    Ok(match action.action.expect("checked by the wire decoder") {
        A::AddKeyPackage(bytes) => {
            let (member, key_package) = match known_key_package(&bytes, now, known) {
                Some(reused) => reused,
                None => parse_key_package(crypto, &bytes, now)?,
            };
            ParsedAction::Add {
                member,
                key_package: Box::new(key_package),
            }
        }
        A::RemoveMember(m) => ParsedAction::Remove { member: member(m)? },
        A::LeaveMember(m) => ParsedAction::Leave { member: member(m)? },
        A::StewardElection(e) => ParsedAction::Elect {
            epoch: e.epoch,
            retry_round: e.retry_round,
            stewards: e
                .stewards
                .into_iter()
                .map(member)
                .collect::<Result<Vec<_>, _>>()?,
        },
        A::Emergency(e) if e.violation_type == v1::ViolationType::Deadlock as i32 => {
            ParsedAction::Deadlock
        }
        A::Emergency(e) => ParsedAction::RemoveBelowThreshold {
            target: member(e.target)?,
        },
    })
}
