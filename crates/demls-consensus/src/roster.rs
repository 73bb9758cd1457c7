//! The voter set: the MLS roster at a proposal's epoch, supplied by the caller (BRIEF §5 "Voters
//! are the MLS roster"). `n` is derived from it locally, never taken from the wire.

use openmls_traits::types::SignatureScheme;
use sha2::{Digest as _, Sha256};

use crate::types::MemberId;
use crate::FixedMap;

/// One voter: its identity and the public half of its MLS signature key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    /// The identity in the member's MLS credential.
    pub id: MemberId,
    /// The member's MLS signature public key (raw bytes as openmls stores them).
    pub signature_key: Vec<u8>,
}

/// Why a roster was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// A roster has at least one member.
    #[error("roster is empty")]
    Empty,
    /// Each member appears once.
    #[error("member {0} appears twice in the roster")]
    DuplicateMember(MemberId),
    /// More members than a `u32` index can address.
    #[error("roster of {0} members is too large")]
    TooLarge(usize),
}

/// An immutable, indexed voter set. Voters are kept sorted by id; lookups by id are O(1).
#[derive(Debug, Clone)]
pub struct Roster {
    scheme: SignatureScheme,
    voters: Vec<Voter>,
    index: FixedMap<MemberId, u32>,
    digest: [u8; 32],
}

impl Roster {
    /// Builds a roster whose members all sign with `scheme` (one ciphersuite per group).
    pub fn new(scheme: SignatureScheme, mut voters: Vec<Voter>) -> Result<Self, RosterError> {
        if voters.is_empty() {
            return Err(RosterError::Empty);
        }
        if u32::try_from(voters.len()).is_err() {
            return Err(RosterError::TooLarge(voters.len()));
        }
        voters.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(w) = voters.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(RosterError::DuplicateMember(w[0].id.clone()));
        }
        let mut index = FixedMap::with_capacity_and_hasher(voters.len(), Default::default());
        let mut hasher = Sha256::new();
        hasher.update(b"demls/v1/roster");
        hasher.update((scheme as u16).to_be_bytes());
        for (i, v) in voters.iter().enumerate() {
            index.insert(v.id.clone(), i as u32);
            for field in [v.id.as_bytes(), &v.signature_key] {
                hasher.update((field.len() as u32).to_be_bytes());
                hasher.update(field);
            }
        }
        Ok(Self {
            scheme,
            voters,
            index,
            digest: hasher.finalize().into(),
        })
    }

    /// The signature scheme every member uses.
    pub fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    /// Number of voters, `n`.
    pub fn len(&self) -> u32 {
        self.voters.len() as u32
    }

    /// Always `false`: a roster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    /// The voters, sorted by id.
    pub fn voters(&self) -> &[Voter] {
        &self.voters
    }

    /// Whether `id` is a voter.
    pub fn contains(&self, id: &MemberId) -> bool {
        self.index.contains_key(id)
    }

    /// SHA-256 over the scheme and the sorted (id, key) pairs; part of the state digest.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    pub(crate) fn index_of(&self, id: &MemberId) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub(crate) fn voter(&self, index: u32) -> &Voter {
        &self.voters[index as usize]
    }
}
