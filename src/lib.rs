//! # demls — decentralized MLS as a sans-IO protocol core
//!
//! End-to-end encrypted group messaging where membership is decided by the members' votes
//! (de-MLS). This facade re-exports the public API of the workspace crates:
//!
//! * [`wire`] — the versioned wire schema (`proto/demls/v1/`) and size-limited decoding;
//! * [`consensus`] — the voting machine: signed proposals and votes, the order-independent
//!   decision rule, deadlines and equivocation evidence;
//! * [`core`] — the conversation: one member's de-MLS group over openmls
//!   ([`core::Conversation`]).
//!
//! Every crate here is a pure, deterministic state machine driven by its caller: time and
//! randomness are inputs, outputs are drained. See `docs/run-loop.md` and `docs/protocol.md`.

#![forbid(unsafe_code)]

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// `docs/run-loop.md`'s host loop, compiled and run as a doctest.
#[doc = include_str!("../docs/run-loop.md")]
#[cfg(doctest)]
pub struct RunLoopDoctests;

pub use demls_consensus as consensus;
pub use demls_core as core;
pub use demls_wire as wire;
