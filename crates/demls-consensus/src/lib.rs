//! # demls-consensus: the de-MLS voting machine
//!
//! A pure, deterministic, caller-polled state machine for the voting layer of de-MLS
//! (`consensus-hashgraphlike.md`, and "Creating Voting Proposal" / "Consensus Types" in
//! `decentralized-mls-offchain-consensus.md`), with no dependency on an MLS group:
//!
//! * a member opens a [proposal](ProposalHeader) — its header signed with the member's MLS
//!   signature key through openmls's [`Signer`](openmls_traits::signatures::Signer) trait, its own
//!   vote attached;
//! * members cast and exchange signed [votes](Vote), singly or in [bundles](VoteBundle) that
//!   merge as a union;
//! * the [decision rule](rule) settles each proposal early when no outstanding vote can change
//!   the result, or at its deadline with silent voters counted per the signed liveness flag;
//! * a deadline decision follows the votes that bundles bring afterwards: it becomes the
//!   early decision when they settle it (final), otherwise the deadline rule over the union,
//!   so members given the same votes decide alike;
//! * decisions, revisions, equivocations and abandoned proposals are drained as
//!   [events](Event).
//!
//! The voter set is the caller-supplied [`Roster`] of the proposal's epoch. Time is a caller-
//! supplied [`Timestamp`]; the machine reads no clock, spawns nothing, draws no randomness.
//! Refused input returns a typed [`Error`] and changes no state. The host-facing contract is
//! documented on [`VotingMachine`]; the rule and its truth table in `docs/protocol.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod event;
mod inbound;
mod machine;
mod message;
mod proposal;
mod roster;
pub mod rule;
mod snapshot;
pub mod transcript;
mod types;

pub use demls_wire::{Limits, WireError};
pub use error::{Error, Signed};
pub use event::{DecidedBy, Decision, Equivocation, Event};
pub use machine::{BundleSummary, Config, Evidence, Ingested, ProposalDraft, VotingMachine};
pub use message::{ProposalHeader, SignedProposal, Vote, VoteBundle, VotingMessage};
pub use roster::{Roster, RosterError, Voter};
pub use rule::{Outcome, Tally};
pub use snapshot::SnapshotError;
pub use types::{
    Choice, ConversationId, Epoch, IdError, MemberId, ProposalDigest, ProposalKind, TiePolicy,
    Timestamp, VoteDigest,
};

/// Re-exported so hosts name the same signature scheme type as the roster.
pub use openmls_traits::types::SignatureScheme;

/// Hash map for lookups only, with a fixed hasher: iteration order never reaches an output
/// (BRIEF §3), and a fixed seed keeps performance reproducible.
pub(crate) type FixedMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::FixedState>;
