//! # demls-core: the de-MLS conversation state machine
//!
//! One member's view of one de-MLS group, as a pure, deterministic, caller-polled state
//! machine over openmls (BRIEF §3–§4): [`Conversation`]. Time and randomness are inputs;
//! nothing here reads a clock, spawns a thread, takes a lock or draws OS entropy. The run-loop
//! contract is documented on [`Conversation`] and in `docs/run-loop.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod codec;
mod config;
mod conversation;
mod error;
mod event;
mod fragment;
mod governance;
pub mod mls;
mod node;
mod stewards;
mod timers;
mod transmit;

pub use config::{AutoVote, ConversationConfig};
#[cfg(feature = "test-utils")]
#[doc(hidden)]
pub use conversation::Byzantine;
pub use conversation::{Conversation, Phase, CIPHERSUITE, GROUP_PARAMS_EXTENSION};
pub use error::Error;
pub use event::{Action, Event, ViolationKind};
pub use node::{ClosedSummary, MemoryUse, Node, NodeError, NodeEvent};
pub use stewards::{election_key, election_order, valid_sizes, GovernanceConfig, GroupState};
pub use timers::TimerKind;
pub use transmit::{Channel, TrafficClass, Transmit};
