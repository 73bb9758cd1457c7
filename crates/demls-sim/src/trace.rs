//! Traces: record a run, replay it, extract one member (docs/traces.md).
//!
//! A trace holds every input each member received with its virtual time, a hash of what the
//! input produced and the member's state digest after it. Replay feeds the inputs to fresh
//! `Conversation`s and compares, so it needs neither the network model nor the workload: a
//! member is a deterministic function of its inputs. That is also why a single member's
//! records, extracted, replay on their own.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;

use demls_consensus::{Choice, ConversationId, MemberId, ProposalDigest};
use demls_core::ConversationConfig;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::node::{ByzantineInput, Command, Input, InputRecord, SimNode, TimeBase};
use crate::scenario::Scenario;

/// Generated types of `proto/demls/sim/v1/trace.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/demls.sim.v1.rs"));
}

/// The 16 bytes every trace starts with.
pub const MAGIC: &[u8; 16] = b"demls-sim-trace\n";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Why a trace could not be read, written or replayed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Reading or writing the file failed.
    #[error("trace I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The file does not start with the trace magic.
    #[error("not a demls-sim trace (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("trace format version {0}; this build reads version {FORMAT_VERSION}")]
    Version(u32),
    /// A message did not decode.
    #[error("corrupt trace at message {index}: {reason}")]
    Corrupt {
        /// Index of the message in the stream (0 is the header).
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// The trace ends without its footer.
    #[error("trace truncated: no footer after {0} records")]
    Truncated(usize),
    /// The scenario in the header is invalid.
    #[error("trace scenario: {0}")]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// `extract` named a member with no records.
    #[error("member {0} has no records in this trace")]
    NoSuchMember(u32),
}

/// Writes a trace incrementally.
pub struct TraceWriter {
    out: Box<dyn Write + Send>,
    records: u64,
    run_hash: Sha256,
}

impl std::fmt::Debug for TraceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWriter")
            .field("records", &self.records)
            .finish()
    }
}

/// Updates a run hash with one record's outcome.
pub fn hash_record(run_hash: &mut Sha256, output_hash: &[u8], state_digest: &[u8]) {
    run_hash.update(output_hash);
    run_hash.update((state_digest.len() as u8).to_be_bytes());
    run_hash.update(state_digest);
}

impl TraceWriter {
    /// Starts a trace on `out` with its header.
    pub fn new(
        mut out: Box<dyn Write + Send>,
        header: &pb::TraceHeader,
    ) -> Result<Self, TraceError> {
        out.write_all(MAGIC)?;
        out.write_all(&header.encode_length_delimited_to_vec())?;
        Ok(Self {
            out,
            records: 0,
            run_hash: Sha256::new(),
        })
    }

    /// Appends one record.
    pub fn record(&mut self, r: &pb::TraceRecord) -> Result<(), TraceError> {
        hash_record(&mut self.run_hash, &r.output_hash, &r.state_digest);
        self.records += 1;
        self.out.write_all(&r.encode_length_delimited_to_vec())?;
        Ok(())
    }

    /// Writes the footer and flushes.
    pub fn finish(mut self) -> Result<(), TraceError> {
        let footer = pb::TraceFooter {
            records: self.records,
            run_hash: self.run_hash.finalize().to_vec(),
        };
        self.out
            .write_all(&footer.encode_length_delimited_to_vec())?;
        self.out.flush()?;
        Ok(())
    }
}

/// The protobuf form of one input record, at step `step`.
pub fn to_pb(step: u64, r: &InputRecord, output_hash: [u8; 32]) -> pb::TraceRecord {
    use pb::trace_record::Input as I;
    let input = match &r.input {
        Input::Start {
            create,
            conversation_id,
            member_id,
            seed,
            unix_ms,
        } => I::Start(pb::Start {
            create: *create,
            conversation_id: conversation_id.as_bytes().to_vec(),
            member_id: member_id.as_bytes().to_vec(),
            seed: seed.to_vec(),
            unix_ms: *unix_ms,
        }),
        Input::Packet(bytes) => I::Packet(bytes.as_ref().clone()),
        Input::Tick => I::Tick(pb::Tick {}),
        Input::Command(c) => {
            use pb::command::Command as C;
            let command = match c {
                Command::ProposeRemove(m) => C::ProposeRemove(m.as_bytes().to_vec()),
                Command::Leave => C::Leave(pb::Leave {}),
                Command::SendMessage(body) => C::SendMessage(body.clone()),
                Command::Vote(p, choice) => C::Vote(pb::Vote {
                    proposal: p.0.to_vec(),
                    yes: *choice == Choice::Yes,
                }),
            };
            I::Command(pb::Command {
                command: Some(command),
            })
        }
        Input::Entropy(bytes) => I::Entropy(bytes.clone()),
        Input::Crash => I::Crash(pb::Crash {}),
        Input::Restart { unix_ms } => I::Restart(pb::Restart { unix_ms: *unix_ms }),
        Input::Byzantine(b) => {
            use pb::byzantine::Act as A;
            let act = match b {
                ByzantineInput::Set { silent, censor } => A::Set(pb::Behaviour {
                    silent: *silent,
                    censor: censor.as_ref().map(|m| m.as_bytes().to_vec()),
                }),
                ByzantineInput::CommitBatch(batch) => A::CommitBatch(pb::CommitBatch {
                    proposals: batch.iter().map(|d| d.0.to_vec()).collect(),
                }),
                ByzantineInput::EquivocateCommits => A::EquivocateCommits(pb::EquivocateCommits {}),
                ByzantineInput::EquivocateVotes(p) => A::EquivocateVotes(p.0.to_vec()),
            };
            I::Byzantine(pb::Byzantine { act: Some(act) })
        }
    };
    pb::TraceRecord {
        step,
        member: r.node as u32,
        time_ns: r.time,
        output_hash: output_hash.to_vec(),
        state_digest: r.digest.map(|d| d.to_vec()).unwrap_or_default(),
        input: Some(input),
    }
}

fn corrupt(index: usize, reason: impl Into<String>) -> TraceError {
    TraceError::Corrupt {
        index,
        reason: reason.into(),
    }
}

/// The input of a protobuf record.
pub fn from_pb(index: usize, r: &pb::TraceRecord) -> Result<Input, TraceError> {
    use pb::trace_record::Input as I;
    Ok(
        match r
            .input
            .as_ref()
            .ok_or_else(|| corrupt(index, "record without input"))?
        {
            I::Start(s) => Input::Start {
                create: s.create,
                conversation_id: ConversationId::new(s.conversation_id.clone())
                    .map_err(|e| corrupt(index, e.to_string()))?,
                member_id: MemberId::new(s.member_id.clone())
                    .map_err(|e| corrupt(index, e.to_string()))?,
                seed: s
                    .seed
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt(index, "seed is not 32 bytes"))?,
                unix_ms: s.unix_ms,
            },
            I::Packet(b) => Input::Packet(Arc::new(b.clone())),
            I::Tick(_) => Input::Tick,
            I::Command(c) => {
                use pb::command::Command as C;
                Input::Command(
                    match c
                        .command
                        .as_ref()
                        .ok_or_else(|| corrupt(index, "empty command"))?
                    {
                        C::ProposeRemove(m) => Command::ProposeRemove(
                            MemberId::new(m.clone()).map_err(|e| corrupt(index, e.to_string()))?,
                        ),
                        C::Leave(_) => Command::Leave,
                        C::SendMessage(b) => Command::SendMessage(b.clone()),
                        C::Vote(v) => {
                            Command::Vote(
                                ProposalDigest(v.proposal.as_slice().try_into().map_err(|_| {
                                    corrupt(index, "proposal digest is not 32 bytes")
                                })?),
                                if v.yes { Choice::Yes } else { Choice::No },
                            )
                        }
                    },
                )
            }
            I::Entropy(b) => Input::Entropy(b.clone()),
            I::Crash(_) => Input::Crash,
            I::Restart(r) => Input::Restart { unix_ms: r.unix_ms },
            I::Byzantine(b) => {
                use pb::byzantine::Act as A;
                let digest = |bytes: &[u8]| {
                    bytes
                        .try_into()
                        .map(ProposalDigest)
                        .map_err(|_| corrupt(index, "proposal digest is not 32 bytes"))
                };
                Input::Byzantine(
                    match b
                        .act
                        .as_ref()
                        .ok_or_else(|| corrupt(index, "empty Byzantine input"))?
                    {
                        A::Set(s) => ByzantineInput::Set {
                            silent: s.silent,
                            censor: s
                                .censor
                                .as_ref()
                                .map(|m| MemberId::new(m.clone()))
                                .transpose()
                                .map_err(|e| corrupt(index, e.to_string()))?,
                        },
                        A::CommitBatch(c) => ByzantineInput::CommitBatch(
                            c.proposals
                                .iter()
                                .map(|p| digest(p))
                                .collect::<Result<_, _>>()?,
                        ),
                        A::EquivocateCommits(_) => ByzantineInput::EquivocateCommits,
                        A::EquivocateVotes(p) => ByzantineInput::EquivocateVotes(digest(p)?),
                    },
                )
            }
        },
    )
}

/// A whole trace in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The header.
    pub header: pb::TraceHeader,
    /// The records, in order.
    pub records: Vec<pb::TraceRecord>,
    /// The footer.
    pub footer: pb::TraceFooter,
}

impl Trace {
    /// Reads a trace.
    pub fn read(mut r: impl Read) -> Result<Self, TraceError> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)?;
        Self::decode(&bytes)
    }

    /// Decodes a trace from bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, TraceError> {
        let mut buf = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(TraceError::BadMagic)?;
        let header = pb::TraceHeader::decode_length_delimited(&mut buf)
            .map_err(|e| corrupt(0, e.to_string()))?;
        if header.format_version != FORMAT_VERSION {
            return Err(TraceError::Version(header.format_version));
        }
        // Records and the footer share the stream; the footer is the last message, and
        // each record has an input while the footer decodes with none.
        let mut messages = Vec::new();
        while !buf.is_empty() {
            let len = prost::decode_length_delimiter(&mut buf)
                .map_err(|e| corrupt(messages.len() + 1, e.to_string()))?;
            if len > buf.len() {
                return Err(TraceError::Truncated(messages.len()));
            }
            let (m, rest) = buf.split_at(len);
            messages.push(m);
            buf = rest;
        }
        let last = messages.pop().ok_or(TraceError::Truncated(0))?;
        let footer = pb::TraceFooter::decode(last)
            .map_err(|e| corrupt(messages.len() + 1, e.to_string()))?;
        let records = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let r = pb::TraceRecord::decode(*m).map_err(|e| corrupt(i + 1, e.to_string()))?;
                if r.input.is_none() {
                    return Err(corrupt(i + 1, "record without input"));
                }
                Ok(r)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if footer.records != records.len() as u64 {
            return Err(TraceError::Truncated(records.len()));
        }
        Ok(Self {
            header,
            records,
            footer,
        })
    }

    /// Encodes the trace.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend(self.header.encode_length_delimited_to_vec());
        for r in &self.records {
            out.extend(r.encode_length_delimited_to_vec());
        }
        out.extend(self.footer.encode_length_delimited_to_vec());
        out
    }

    /// The single-member trace of node `member`: its records only (with their original step
    /// numbers), the header marked with the member, a recomputed footer.
    pub fn extract(&self, member: u32) -> Result<Self, TraceError> {
        let records: Vec<pb::TraceRecord> = self
            .records
            .iter()
            .filter(|r| r.member == member)
            .cloned()
            .collect();
        if records.is_empty() {
            return Err(TraceError::NoSuchMember(member));
        }
        let mut run_hash = Sha256::new();
        for r in &records {
            hash_record(&mut run_hash, &r.output_hash, &r.state_digest);
        }
        Ok(Self {
            header: pb::TraceHeader {
                member: Some(member),
                ..self.header.clone()
            },
            footer: pb::TraceFooter {
                records: records.len() as u64,
                run_hash: run_hash.finalize().to_vec(),
            },
            records,
        })
    }
}

/// The first difference a replay found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The record's step.
    pub step: u64,
    /// The member.
    pub member: u32,
    /// Virtual time, ns.
    pub time_ns: u64,
    /// What differs: "outputs" or "state digest".
    pub what: &'static str,
    /// Recorded value (hex).
    pub expected: String,
    /// Replayed value (hex).
    pub actual: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "diverged at step {} (member {}, t={:.3}s): {} expected {} actual {}",
            self.step,
            self.member,
            self.time_ns as f64 / 1e9,
            self.what,
            self.expected,
            self.actual
        )
    }
}

/// The result of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Every record reproduced.
    Identical {
        /// Records replayed.
        records: u64,
    },
    /// The first divergence.
    Diverged(Divergence),
}

/// Re-executes a trace against fresh `Conversation`s and compares every record.
/// `progress` is called with `(done, total)` every 1024 records.
pub fn replay(
    trace: &Trace,
    tb: &TimeBase,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayOutcome, TraceError> {
    let scenario = Scenario::from_json(&trace.header.scenario_json)?;
    let config: ConversationConfig = scenario.config.conversation();
    let mut nodes: BTreeMap<u32, SimNode> = BTreeMap::new();
    let total = trace.records.len() as u64;
    for (i, r) in trace.records.iter().enumerate() {
        let input = from_pb(i + 1, r)?;
        let node = nodes.entry(r.member).or_insert_with(|| {
            let id = match &input {
                Input::Start { member_id, .. } => member_id.clone(),
                _ => MemberId::new(format!("node-{}", r.member)).expect("valid"),
            };
            SimNode::new(r.member as usize, id, 0)
        });
        let rec = node.apply(tb, &config, r.time_ns, input);
        let hash = rec.output_hash();
        let digest = rec.digest.map(|d| d.to_vec()).unwrap_or_default();
        let diverged = |what, expected: &[u8], actual: &[u8]| {
            ReplayOutcome::Diverged(Divergence {
                step: r.step,
                member: r.member,
                time_ns: r.time_ns,
                what,
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            })
        };
        if hash.as_slice() != r.output_hash.as_slice() {
            return Ok(diverged("outputs", &r.output_hash, &hash));
        }
        if digest != r.state_digest {
            return Ok(diverged("state digest", &r.state_digest, &digest));
        }
        if (i as u64 + 1).is_multiple_of(1024) {
            progress(i as u64 + 1, total);
        }
    }
    progress(total, total);
    Ok(ReplayOutcome::Identical { records: total })
}
