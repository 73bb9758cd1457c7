//! What the conversation emits: packets with their channel and traffic class.

/// The transport channel (topic) a packet is published on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// Readable by non-members: key package announcements and welcomes.
    Welcome,
    /// Readable by members only: MLS messages of the conversation.
    Conversation,
}

/// What a packet is for, so a host can prioritise or rate-limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrafficClass {
    /// Group membership machinery: key packages, commits, welcomes.
    Handshake,
    /// Voting: proposals, votes, vote bundles.
    Governance,
    /// Application messages.
    Application,
}

/// One packet to publish. Every `payload` is at most the configured maximum packet length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to publish it.
    pub channel: Channel,
    /// What it is for.
    pub class: TrafficClass,
    /// The encoded `demls.v1.Packet`.
    pub payload: Vec<u8>,
}
