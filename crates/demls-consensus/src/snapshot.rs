//! Persistence of a [`VotingMachine`]: `snapshot()` → versioned bytes, `restore(..)` → the
//! same machine. Signed proposals and votes are stored in their wire form; tallies, timers and
//! rate-limit counters are recomputed, so a snapshot cannot carry an inconsistent tally.
//!
//! Format v1: magic `DVM` + version byte 1, epoch (u64), latest time (u64), proposal count
//! (u32), then per proposal in digest order: the `SignedProposal` (u32 length + protobuf), a
//! decision flag (u8) and, if set, outcome (u8), trigger (u8), electorate, yes, no (u32 each),
//! the counted votes (u32 count, then u32 length + protobuf `Vote` each, in voter order), and the
//! conflicting votes kept as evidence (same encoding). All integers big-endian.

use prost::Message;

use crate::event::{DecidedBy, Decision};
use crate::machine::{Config, VotingMachine};
use crate::message::{SignedProposal, Vote};
use crate::proposal::ProposalState;
use crate::roster::Roster;
use crate::rule::{Outcome, Tally};
use crate::types::{Epoch, Timestamp};
use demls_wire::{v1, WireError};

const MAGIC: &[u8; 4] = b"DVM\x01";

/// Why snapshot bytes could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not a voting-machine snapshot, or of another format version.
    #[error("not a version-1 voting-machine snapshot")]
    BadVersion,
    /// The bytes end early.
    #[error("snapshot is truncated")]
    Truncated,
    /// A stored message does not decode.
    #[error("stored message does not decode: {0}")]
    Wire(#[from] WireError),
    /// A stored value is out of range (unknown enum, a member not in the roster, a tally that
    /// disagrees with the votes, trailing bytes).
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(&'static str),
    /// Outputs were not drained before the snapshot was taken.
    #[error("drain the events before taking a snapshot")]
    UndrainedEvents,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if self.0.len() < n {
            return Err(SnapshotError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8], SnapshotError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn vote(&mut self) -> Result<Vote, SnapshotError> {
        let wire = v1::Vote::decode(self.bytes()?).map_err(WireError::from)?;
        demls_wire::check_vote(&wire)?;
        Ok(Vote::from_wire(wire)?)
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

impl VotingMachine {
    /// Serializes the machine. Drain [`poll_event`](Self::poll_event) first: undrained events
    /// are not part of a snapshot. Configuration and roster are not stored; the owner supplies
    /// them to [`restore`](Self::restore).
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        if !self.events.is_empty() {
            return Err(SnapshotError::UndrainedEvents);
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.epoch.0.to_be_bytes());
        out.extend_from_slice(&self.latest_now.0.to_be_bytes());
        out.extend_from_slice(&(self.proposals.len() as u32).to_be_bytes());
        for state in self.proposals.values() {
            put_bytes(&mut out, &state.proposal.to_wire().encode_to_vec());
            match &state.decision {
                None => out.push(0),
                Some(d) => {
                    out.extend_from_slice(&[1, d.outcome as u8, d.by as u8]);
                    for v in [d.tally.electorate, d.tally.yes, d.tally.no] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
            let votes = state.counted_votes();
            out.extend_from_slice(&(votes.len() as u32).to_be_bytes());
            for v in votes {
                put_bytes(&mut out, &v.to_wire().encode_to_vec());
            }
            let evidence: Vec<&Vote> = state.equivocations().map(|e| &e.conflicting).collect();
            out.extend_from_slice(&(evidence.len() as u32).to_be_bytes());
            for v in evidence {
                put_bytes(&mut out, &v.to_wire().encode_to_vec());
            }
        }
        Ok(out)
    }

    /// Rebuilds a machine from [`snapshot`](Self::snapshot) bytes, with the configuration and
    /// the roster of the snapshot's epoch. Never panics on bad bytes.
    pub fn restore(config: Config, roster: Roster, bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(SnapshotError::BadVersion);
        }
        let epoch = Epoch(r.u64()?);
        let latest = Timestamp(r.u64()?);
        let mut m = VotingMachine::new(config, epoch, roster);
        m.latest_now = latest;
        for _ in 0..r.u32()? {
            let wire = v1::SignedProposal::decode(r.bytes()?).map_err(WireError::from)?;
            demls_wire::check_signed_proposal(&wire, &demls_wire::Limits::default())?;
            let proposal = SignedProposal::from_wire(wire)?;
            let digest = proposal.digest();
            let creator = m
                .roster
                .index_of(&proposal.header.creator)
                .ok_or(SnapshotError::Inconsistent("creator not in roster"))?;
            let decision = match r.u8()? {
                0 => None,
                1 => {
                    let outcome = match r.u8()? {
                        0 => Outcome::No,
                        1 => Outcome::Retry,
                        2 => Outcome::Yes,
                        _ => return Err(SnapshotError::Inconsistent("unknown outcome")),
                    };
                    let by = match r.u8()? {
                        0 => DecidedBy::Early,
                        1 => DecidedBy::Deadline,
                        _ => return Err(SnapshotError::Inconsistent("unknown trigger")),
                    };
                    let tally = Tally {
                        electorate: r.u32()?,
                        yes: r.u32()?,
                        no: r.u32()?,
                    };
                    Some(Decision { outcome, tally, by })
                }
                _ => return Err(SnapshotError::Inconsistent("unknown decision flag")),
            };
            let deadline = proposal.header.deadline;
            let mut state = ProposalState::new(proposal, digest, creator, m.roster.len());
            for _ in 0..2 {
                // First the counted votes, then the evidence: recording reproduces both.
                for _ in 0..r.u32()? {
                    let vote = r.vote()?;
                    let voter = m
                        .roster
                        .index_of(&vote.voter)
                        .ok_or(SnapshotError::Inconsistent("voter not in roster"))?;
                    state.record(voter, vote.digest(), vote);
                }
            }
            if let Some(d) = &decision {
                if d.tally.electorate != m.roster.len()
                    || d.tally.yes + d.tally.no > d.tally.electorate
                {
                    return Err(SnapshotError::Inconsistent("decision tally"));
                }
            }
            state.decision = decision;
            m.made_by_creator[creator as usize] += 1;
            if state.decision.is_none() {
                m.deadlines.insert((deadline, digest));
                m.open_total += 1;
                m.open_by_creator[creator as usize] += 1;
            }
            m.proposals.insert(digest, state);
        }
        if !r.0.is_empty() {
            return Err(SnapshotError::Inconsistent("trailing bytes"));
        }
        Ok(m)
    }
}
