//! Per-conversation configuration. All members of a conversation should use the same values
//! (the creator's choices travel to joiners with the group).

use std::time::Duration;

use demls_consensus::{Choice, TiePolicy};

use crate::stewards::GovernanceConfig;

/// A member's automatic vote on proposals it has not voted on explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoVote {
    /// How long after a proposal opens the automatic vote is cast.
    pub after: Duration,
    /// The vote cast.
    pub choice: Choice,
}

/// Timing and limits of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationConfig {
    /// Voting window of the proposals this member opens.
    pub voting_duration: Duration,
    /// Δ, the freeze window between a decision and the steward's commit ("Flow").
    pub freeze_window: Duration,
    /// Automatic vote, or `None` to vote only on command.
    pub auto_vote: Option<AutoVote>,
    /// Liveness flag of the proposals this member opens.
    pub silent_counts_as_yes: bool,
    /// Tie policy of the proposals this member opens.
    pub tie_policy: TiePolicy,
    /// How long a pending join waits for its welcome before it expires.
    pub pending_join_expiry: Duration,
    /// Largest packet emitted; larger payloads are fragmented (default 150 KiB, Waku's limit).
    pub max_packet_len: usize,
    /// Largest payload accepted for fragmentation or reassembly.
    pub max_payload_len: usize,
    /// How long an incomplete reassembly is kept.
    pub reassembly_expiry: Duration,
    /// Most reassemblies in progress at once.
    pub max_reassemblies: usize,
    /// Most approved proposals applied by one commit (adds are batched; at most one removal).
    pub max_commit_batch: usize,
    /// Most MLS messages for a future epoch kept until the epoch is reached. A member that
    /// is one commit behind receives the next epoch's proposals and *every member's votes*
    /// meanwhile, so this must exceed the traffic of one voting round (proposals × members);
    /// when full, a message of a later epoch evicts the oldest message of the earliest one.
    pub max_buffered_messages: usize,
    /// How many newer messages of one sender may overtake an older one (within an epoch)
    /// before the older one can no longer be decrypted: openmls's sender-ratchet
    /// `out_of_order_tolerance` (its default is 5). A delivery repaired late by the transport
    /// (a store or gossip re-fetch) is overtaken by everything its sender sent meanwhile, so
    /// a burst of proposals or votes needs more than 5. Each kept secret weakens forward
    /// secrecy within the epoch until it is used; the window is per sender and per epoch.
    pub out_of_order_tolerance: u32,
    /// Lifetime written into this member's key packages (derived time).
    pub key_package_lifetime: Duration,
    /// Clock skew tolerated on proposal and vote times.
    pub max_clock_skew: Duration,
    /// Most proposals one member may have open at once (the spec's per-member rate limit;
    /// the steward's adds count against it too).
    pub max_open_proposals_per_member: usize,
    /// Most proposals one member may make in one epoch. The limit on all members' proposals
    /// in one epoch is the larger of this and 256.
    pub max_proposals_per_member_per_epoch: usize,
    /// Group-wide governance parameters (steward list bounds, inactivity timers, scoring).
    /// Used when this member *creates* a conversation; a joiner adopts the group's values
    /// from the Welcome, whatever it has here.
    pub governance: GovernanceConfig,
}

impl Default for ConversationConfig {
    fn default() -> Self {
        Self {
            voting_duration: Duration::from_secs(30),
            freeze_window: Duration::from_secs(2),
            auto_vote: Some(AutoVote {
                after: Duration::from_secs(1),
                choice: Choice::Yes,
            }),
            silent_counts_as_yes: true,
            tie_policy: TiePolicy::Reject,
            pending_join_expiry: Duration::from_secs(300),
            max_packet_len: demls_wire::DEFAULT_MAX_MESSAGE_LEN,
            max_payload_len: 16 * 1024 * 1024,
            reassembly_expiry: Duration::from_secs(60),
            max_reassemblies: 16,
            max_commit_batch: 16,
            max_buffered_messages: 8192,
            out_of_order_tolerance: 32,
            key_package_lifetime: Duration::from_secs(28 * 24 * 3600),
            max_clock_skew: Duration::from_secs(30),
            max_open_proposals_per_member: 4,
            max_proposals_per_member_per_epoch: 16,
            governance: GovernanceConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HG-28: "`liveness_criteria_yes` is set true by default": the proposals a member opens
    /// with the default configuration count silent voters as YES at the deadline.
    #[test]
    fn silent_voters_count_as_yes_by_default() {
        assert!(ConversationConfig::default().silent_counts_as_yes);
    }
}
