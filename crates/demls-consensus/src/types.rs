//! Small value types shared by the voting machine: identities, epochs, derived time, digests and
//! the enums that a proposal header signs.

use std::fmt;

use demls_wire::{v1, MAX_CONVERSATION_ID_LEN, MAX_MEMBER_ID_LEN};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Identifiers are never empty.
    #[error("identifier is empty")]
    Empty,
    /// The identifier is longer than the wire format allows.
    #[error("identifier is {len} bytes, the limit is {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

fn check_id(bytes: &[u8], max: usize) -> Result<(), IdError> {
    if bytes.is_empty() {
        return Err(IdError::Empty);
    }
    if bytes.len() > max {
        return Err(IdError::TooLong {
            len: bytes.len(),
            max,
        });
    }
    Ok(())
}

fn fmt_hex(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// A member's identity: the identity in its MLS credential (1..=64 bytes; de-MLS uses 20).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(Vec<u8>);

impl MemberId {
    /// Wraps `bytes`, refusing empty or over-long identifiers.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, IdError> {
        let bytes = bytes.into();
        check_id(&bytes, MAX_MEMBER_ID_LEN)?;
        Ok(Self(bytes))
    }

    /// The identity bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::borrow::Borrow<[u8]> for MemberId {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemberId(")?;
        fmt_hex(&self.0, f)?;
        f.write_str(")")
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_hex(&self.0, f)
    }
}

/// The conversation (MLS group) a machine votes in (1..=64 bytes).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConversationId(Vec<u8>);

impl ConversationId {
    /// Wraps `bytes`, refusing empty or over-long identifiers.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, IdError> {
        let bytes = bytes.into();
        check_id(&bytes, MAX_CONVERSATION_ID_LEN)?;
        Ok(Self(bytes))
    }

    /// The identifier bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConversationId(")?;
        fmt_hex(&self.0, f)?;
        f.write_str(")")
    }
}

/// An MLS epoch number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Protocol time: milliseconds since the Unix epoch, *derived* by the host from a Unix time
/// given at construction plus elapsed monotonic time (BRIEF §3). The machine never reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// `self + ms`, saturating at the far future.
    pub fn saturating_add_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub fn saturating_ms_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The digest bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "("))?;
                fmt_hex(&self.0[..8], f)?;
                f.write_str("…)")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_hex(&self.0, f)
            }
        }
    };
}

digest_type!(
    /// SHA-256 of a proposal header transcript: the name every vote uses for its proposal.
    ProposalDigest
);
digest_type!(
    /// SHA-256 of a vote transcript: how a re-sent vote is recognised without a signature check.
    VoteDigest
);

/// The three de-MLS consensus types ("Consensus Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProposalKind {
    /// A membership change to be committed (add, remove, leave).
    Commit,
    /// A proposed steward list.
    StewardElection,
    /// An emergency criteria proposal (ECP).
    Emergency,
}

impl ProposalKind {
    /// Priority per "Consensus Types": Emergency (2) > StewardElection (1) > Commit (0).
    pub fn priority(self) -> u8 {
        match self {
            ProposalKind::Commit => 0,
            ProposalKind::StewardElection => 1,
            ProposalKind::Emergency => 2,
        }
    }

    /// The code used on the wire and in transcripts.
    pub fn code(self) -> u8 {
        self.to_wire() as u8
    }

    pub(crate) fn to_wire(self) -> v1::ProposalKind {
        match self {
            ProposalKind::Commit => v1::ProposalKind::Commit,
            ProposalKind::StewardElection => v1::ProposalKind::StewardElection,
            ProposalKind::Emergency => v1::ProposalKind::Emergency,
        }
    }

    pub(crate) fn from_wire(value: i32) -> Option<Self> {
        match v1::ProposalKind::try_from(value).ok()? {
            v1::ProposalKind::Commit => Some(ProposalKind::Commit),
            v1::ProposalKind::StewardElection => Some(ProposalKind::StewardElection),
            v1::ProposalKind::Emergency => Some(ProposalKind::Emergency),
            v1::ProposalKind::Unspecified => None,
        }
    }
}

/// What a tie resolves to ("Equality of votes"); signed in the proposal header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TiePolicy {
    /// A tie is a NO.
    Reject,
    /// A tie is reported as [`Outcome::Retry`](crate::Outcome::Retry).
    Retry,
}

impl TiePolicy {
    /// The code used on the wire and in transcripts.
    pub fn code(self) -> u8 {
        self.to_wire() as u8
    }

    pub(crate) fn to_wire(self) -> v1::TiePolicy {
        match self {
            TiePolicy::Reject => v1::TiePolicy::Reject,
            TiePolicy::Retry => v1::TiePolicy::Retry,
        }
    }

    pub(crate) fn from_wire(value: i32) -> Option<Self> {
        match v1::TiePolicy::try_from(value).ok()? {
            v1::TiePolicy::Reject => Some(TiePolicy::Reject),
            v1::TiePolicy::Retry => Some(TiePolicy::Retry),
            v1::TiePolicy::Unspecified => None,
        }
    }
}

/// A vote's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Choice {
    /// YES: approve the proposal.
    Yes,
    /// NO: reject the proposal.
    No,
}

impl Choice {
    /// `true` for YES.
    pub fn is_yes(self) -> bool {
        self == Choice::Yes
    }

    pub(crate) fn from_bool(approve: bool) -> Self {
        if approve {
            Choice::Yes
        } else {
            Choice::No
        }
    }
}
