//! One simulated node: a [`Conversation`] driven like a host drives it, plus what the host
//! keeps around it (its clock skew, its last snapshot while crashed). Every input produces an
//! [`InputRecord`]: the input, its result, the drained outputs and the state digest after it
//! — the unit of traces, invariant checks and statistics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use demls_consensus::{Choice, ConversationId, MemberId, ProposalDigest};
use demls_core::{Byzantine, Conversation, ConversationConfig, Event, Phase, Transmit};
use sha2::{Digest, Sha256};

use crate::netem::MS;

/// An input to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Construction: `create` (true) or `join` (false).
    Start {
        /// `Conversation::create` rather than `join`.
        create: bool,
        /// The conversation.
        conversation_id: ConversationId,
        /// The member id.
        member_id: MemberId,
        /// The member's seed (secret).
        seed: [u8; 32],
        /// The member's Unix time at construction, ms.
        unix_ms: u64,
    },
    /// A received packet.
    Packet(Arc<Vec<u8>>),
    /// `tick_deadlines(now)`.
    Tick,
    /// A workload command.
    Command(Command),
    /// `mix_entropy(bytes)`.
    Entropy(Vec<u8>),
    /// The node crashes: the host snapshots and drops the live state.
    Crash,
    /// The node restarts from its snapshot.
    Restart {
        /// The node's Unix time at restart, ms.
        unix_ms: u64,
    },
    /// A fault-injection hook of a Byzantine member (feature `test-utils` of demls-core).
    Byzantine(ByzantineInput),
}

/// What a Byzantine member does, as one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByzantineInput {
    /// `test_set_byzantine`: how it behaves as a steward from now on.
    Set {
        /// It never builds a commit.
        silent: bool,
        /// It leaves proposals about this member out of its commits.
        censor: Option<MemberId>,
    },
    /// `test_commit_batch(now, batch)`: a commit candidate for exactly this batch.
    CommitBatch(Vec<ProposalDigest>),
    /// `test_equivocating_commits(now)`: two different commits for the epoch; the first set
    /// of packets goes to one half of the peers, the second to the other half.
    EquivocateCommits,
    /// `test_equivocating_votes(now, proposal)`: a YES to one half of the peers, a NO to
    /// the other half.
    EquivocateVotes(ProposalDigest),
}

/// A command of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `propose_remove(member)`.
    ProposeRemove(MemberId),
    /// `leave()`.
    Leave,
    /// `send_message(body)`.
    SendMessage(Vec<u8>),
    /// `vote(proposal, choice)`.
    Vote(ProposalDigest, Choice),
}

/// What a member looked like after an input that changed its epoch (for agreement checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The epoch.
    pub epoch: u64,
    /// The epoch authenticator.
    pub authenticator: Vec<u8>,
    /// The roster.
    pub roster: Vec<MemberId>,
    /// The steward list.
    pub stewards: Vec<MemberId>,
    /// The epoch whose epoch steward heads the list.
    pub list_epoch: u64,
    /// The retry round of the election that produced the list.
    pub retry_round: u32,
    /// The score table (scores that differ from the default).
    pub scores: Vec<(MemberId, i64)>,
}

/// One input and everything it produced.
#[derive(Debug, Clone)]
pub struct InputRecord {
    /// Node index.
    pub node: usize,
    /// Virtual time, ns.
    pub time: u64,
    /// The input.
    pub input: Input,
    /// `Err(text)` when the member refused the input.
    pub result: Result<(), String>,
    /// The refusal's kind (see [`refusal_kind`]), when refused.
    pub refusal: Option<&'static str>,
    /// Packets drained after it.
    pub transmits: Vec<Transmit>,
    /// Events drained after it.
    pub events: Vec<Event>,
    /// `state_digest()` after the drain; `None` while crashed.
    pub digest: Option<[u8; 32]>,
    /// The member's view, when the input changed its epoch or made it join.
    pub view: Option<View>,
    /// The member's phase after the input (`None` while crashed).
    pub phase: Option<Phase>,
    /// The member's epoch after the input, if it has a group.
    pub epoch: Option<u64>,
    /// A Byzantine split send: `transmits[..a]` go to one half of the peers,
    /// `transmits[a..a + b]` to the other half; the rest to everyone.
    pub split: Option<(usize, usize)>,
    /// Proposals open (undecided) in the member's current epoch after the input.
    pub open: Vec<ProposalDigest>,
}

impl InputRecord {
    /// SHA-256 over the input's result and outputs, in drain order (docs/traces.md):
    /// `0x00` or `0x01 ‖ u32 len ‖ error text`, then per transmit
    /// `0x54 ‖ channel ‖ class ‖ u32 len ‖ payload`, then per event `0x45 ‖ u32 len ‖
    /// canonical event bytes`.
    pub fn output_hash(&self) -> [u8; 32] {
        output_hash(&self.result, &self.transmits, &self.events)
    }
}

/// See [`InputRecord::output_hash`].
pub fn output_hash(
    result: &Result<(), String>,
    transmits: &[Transmit],
    events: &[Event],
) -> [u8; 32] {
    let mut h = Sha256::new();
    match result {
        Ok(()) => h.update([0u8]),
        Err(e) => {
            h.update([1u8]);
            h.update((e.len() as u32).to_be_bytes());
            h.update(e.as_bytes());
        }
    }
    for t in transmits {
        h.update([0x54, t.channel as u8, t.class as u8]);
        h.update((t.payload.len() as u32).to_be_bytes());
        h.update(&t.payload);
    }
    let mut buf = Vec::new();
    for e in events {
        buf.clear();
        e.encode(&mut buf);
        h.update([0x45]);
        h.update((buf.len() as u32).to_be_bytes());
        h.update(&buf);
    }
    h.finalize().into()
}

/// A short, stable name for the reason an input was refused (the error's variant), for
/// statistics and status rows.
pub fn refusal_kind(e: &demls_core::Error) -> &'static str {
    use demls_core::Error as E;
    match e {
        E::Wire(_) => "undecodable",
        E::WrongConversation => "wrong conversation",
        E::Mls(_) => "mls refused",
        E::StaleEpoch { .. } => "stale epoch",
        E::Voting(_) => "voting refused",
        E::SenderMismatch { .. } => "sender mismatch",
        E::InvalidProposal(_) => "invalid proposal",
        E::NotFromSteward(_) => "commit not from steward",
        E::CommitMismatch(_) => "commit mismatch",
        E::NotAMember => "not a member",
        E::NotSteward => "not steward",
        E::Closed => "closed",
        E::PayloadTooLarge { .. } => "payload too large",
        E::ReassemblyLimit { .. } => "reassembly limit",
        E::DuplicateFragment => "duplicate fragment",
        E::FragmentMismatch => "fragment mismatch",
        E::NestedFragment => "nested fragment",
        E::BufferFull { .. } => "future buffer full",
        E::UnknownMember(_) => "unknown member",
        E::Snapshot(_) => "snapshot",
        E::InvalidGroupParams(_) => "invalid group params",
        E::Frozen => "frozen",
        E::TooManyAcks(_) => "too many acks",
        E::AcksTooFarAhead(_) => "acks too far ahead",
    }
}

/// A member as the host keeps it.
pub struct SimNode {
    /// Node index.
    pub index: usize,
    /// Member id.
    pub id: MemberId,
    /// The live conversation; `None` before start and while crashed.
    pub conv: Option<Conversation>,
    /// The snapshot taken at the crash, while crashed.
    pub snapshot: Option<Vec<u8>>,
    /// Constant clock offset of this node, ms.
    pub skew_ms: i64,
    /// Deliveries of the current window, in arrival order.
    pub inbox: Vec<(u64, u64, Arc<Vec<u8>>)>,
    /// `next_deadline()` in virtual ns, cached after every input.
    pub deadline: Option<u64>,
    /// Time of the last input: inputs are never timestamped earlier.
    last: u64,
}

/// Converts between virtual nanoseconds and `Instant`s and derives each node's Unix time.
#[derive(Debug, Clone, Copy)]
pub struct TimeBase {
    /// The `Instant` of virtual time zero.
    pub base: Instant,
    /// Unix time at virtual time zero, ms.
    pub start_unix_ms: u64,
}

impl TimeBase {
    /// The `Instant` at virtual time `t`.
    pub fn instant(&self, t: u64) -> Instant {
        self.base + Duration::from_nanos(t)
    }

    /// Virtual ns of an `Instant` (earlier instants clamp to zero).
    pub fn virtual_ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// A node's Unix time at virtual time `t`, ms.
    pub fn unix_ms(&self, t: u64, skew_ms: i64) -> u64 {
        (self.start_unix_ms as i64 + (t / MS) as i64 + skew_ms).max(0) as u64
    }
}

impl SimNode {
    /// A node that has not started yet.
    pub fn new(index: usize, id: MemberId, skew_ms: i64) -> Self {
        Self {
            index,
            id,
            conv: None,
            snapshot: None,
            skew_ms,
            inbox: Vec::new(),
            deadline: None,
            last: 0,
        }
    }

    /// The member's phase, or `None` before start and while crashed.
    pub fn phase(&self) -> Option<Phase> {
        self.conv.as_ref().map(Conversation::phase)
    }

    /// Whether the node is crashed.
    pub fn is_crashed(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Applies one input at `t` and returns its record. Never panics on member errors: a
    /// refused input is recorded with its reason.
    pub fn apply(
        &mut self,
        tb: &TimeBase,
        config: &ConversationConfig,
        t: u64,
        input: Input,
    ) -> InputRecord {
        // A deadline can lie before the last input (a late vote bundle opens a proposal
        // whose deadline passed): it is ticked now, and recorded at now, so that every
        // member's records stay in time order and a replay applies them in the same order.
        let t = t.max(self.last);
        self.last = t;
        let now = tb.instant(t);
        let mut refusal = None;
        let mut err = |e: demls_core::Error| {
            refusal = Some(refusal_kind(&e));
            e.to_string()
        };
        let epoch_before = self.conv.as_ref().and_then(|c| c.epoch());
        let mut split_sends: Option<(Vec<Transmit>, Vec<Transmit>)> = None;
        let result: Result<(), String> = match &input {
            Input::Start {
                create,
                conversation_id,
                member_id,
                seed,
                unix_ms,
            } => {
                let made = if *create {
                    Conversation::create(
                        config.clone(),
                        conversation_id.clone(),
                        member_id.clone(),
                        *seed,
                        now,
                        *unix_ms,
                    )
                } else {
                    Conversation::join(
                        config.clone(),
                        conversation_id.clone(),
                        member_id.clone(),
                        *seed,
                        now,
                        *unix_ms,
                    )
                };
                made.map(|c| self.conv = Some(c)).map_err(&mut err)
            }
            Input::Crash => match self.conv.as_ref().map(Conversation::snapshot) {
                Some(Ok(bytes)) => {
                    self.snapshot = Some(bytes);
                    self.conv = None;
                    Ok(())
                }
                Some(Err(e)) => Err(err(e)),
                None => Err("not running".into()),
            },
            Input::Restart { unix_ms } => match self.snapshot.take() {
                Some(bytes) => match Conversation::restore(&bytes, now, *unix_ms) {
                    Ok(c) => {
                        self.conv = Some(c);
                        Ok(())
                    }
                    Err(e) => Err(err(e)),
                },
                None => Err("not crashed".into()),
            },
            other => match self.conv.as_mut() {
                None => Err("not running".into()),
                Some(c) => match other {
                    Input::Packet(bytes) => c.handle_packet(now, bytes).map_err(&mut err),
                    Input::Tick => {
                        c.tick_deadlines(now);
                        Ok(())
                    }
                    Input::Entropy(bytes) => {
                        c.mix_entropy(bytes);
                        Ok(())
                    }
                    Input::Command(cmd) => match cmd {
                        Command::ProposeRemove(m) => {
                            c.propose_remove(now, m).map(|_| ()).map_err(&mut err)
                        }
                        Command::Leave => c.leave(now).map(|_| ()).map_err(&mut err),
                        Command::SendMessage(body) => c.send_message(now, body).map_err(&mut err),
                        Command::Vote(p, choice) => c.vote(now, *p, *choice).map_err(&mut err),
                    },
                    Input::Byzantine(b) => match b {
                        ByzantineInput::Set { silent, censor } => {
                            c.test_set_byzantine(Byzantine {
                                silent: *silent,
                                censor: censor.clone(),
                            });
                            Ok(())
                        }
                        ByzantineInput::CommitBatch(batch) => {
                            c.test_commit_batch(now, batch).map_err(&mut err)
                        }
                        ByzantineInput::EquivocateCommits => c
                            .test_equivocating_commits(now)
                            .map(|sends| split_sends = Some(sends))
                            .map_err(&mut err),
                        ByzantineInput::EquivocateVotes(p) => c
                            .test_equivocating_votes(now, *p)
                            .map(|sends| split_sends = Some(sends))
                            .map_err(&mut err),
                    },
                    Input::Start { .. } | Input::Crash | Input::Restart { .. } => {
                        unreachable!("handled above")
                    }
                },
            },
        };
        let mut transmits = Vec::new();
        let mut split = None;
        if let Some((a, b)) = split_sends {
            split = Some((a.len(), b.len()));
            transmits.extend(a);
            transmits.extend(b);
        }
        let mut open = Vec::new();
        let mut events = Vec::new();
        let mut view = None;
        let mut digest = None;
        let mut phase = None;
        let epoch = self.conv.as_ref().and_then(|c| c.epoch()).map(|e| e.0);
        if let Some(c) = self.conv.as_mut() {
            while let Some(tx) = c.poll_transmit() {
                transmits.push(tx);
            }
            while let Some(e) = c.poll_event() {
                events.push(e);
            }
            digest = Some(c.state_digest());
            phase = Some(c.phase());
            open = c.test_open_proposals();
            let changed = c.epoch() != epoch_before
                || events
                    .iter()
                    .any(|e| matches!(e, Event::Joined { .. } | Event::EpochChanged { .. }));
            if changed && c.phase() == Phase::Member {
                if let (Some(epoch), Some(authenticator), Some(gov)) =
                    (c.epoch(), c.epoch_authenticator(), c.group_state())
                {
                    view = Some(View {
                        epoch: epoch.0,
                        authenticator,
                        roster: c.roster(),
                        stewards: gov.stewards.clone(),
                        list_epoch: gov.list_epoch,
                        retry_round: gov.retry_round,
                        scores: gov.scores().iter().map(|(m, s)| (m.clone(), *s)).collect(),
                    });
                }
            }
            // A closed member may linger (it answers the epoch it left until its last
            // deadline).
            self.deadline = c.next_deadline().map(|d| tb.virtual_ns(d));
        } else {
            self.deadline = None;
        }
        InputRecord {
            node: self.index,
            time: t,
            input,
            result,
            refusal,
            transmits,
            events,
            digest,
            view,
            phase,
            epoch,
            split,
            open,
        }
    }

    /// Processes this window's deliveries and every deadline before `end`, in time order
    /// (a deadline strictly before a delivery fires first). Returns the records.
    pub fn run_window(
        &mut self,
        tb: &TimeBase,
        config: &ConversationConfig,
        end: u64,
    ) -> Vec<InputRecord> {
        let mut out = Vec::new();
        let inbox = std::mem::take(&mut self.inbox);
        for (t, _, bytes) in inbox {
            self.fire_deadlines(tb, config, |d| d < t, &mut out);
            if self.conv.as_ref().is_some_and(listening) {
                out.push(self.apply(tb, config, t, Input::Packet(bytes)));
            }
        }
        self.fire_deadlines(tb, config, |d| d < end, &mut out);
        out
    }

    /// Ticks while the next deadline satisfies `due`. A deadline that does not move past the
    /// tick is a bug in the member; it is ticked at most 64 times per window, and the records
    /// show it.
    fn fire_deadlines(
        &mut self,
        tb: &TimeBase,
        config: &ConversationConfig,
        due: impl Fn(u64) -> bool,
        out: &mut Vec<InputRecord>,
    ) {
        let mut ticks = 0;
        while let Some(d) = self.deadline.filter(|&d| due(d)) {
            ticks += 1;
            if ticks > 64 {
                break;
            }
            out.push(self.apply(tb, config, d, Input::Tick));
        }
    }
}

/// One human-readable line for a record: `[time] #step node input → result · outputs`.
pub fn status_row(step: u64, r: &InputRecord) -> String {
    let input = match &r.input {
        Input::Start { create: true, .. } => "create".to_owned(),
        Input::Start { create: false, .. } => "join".to_owned(),
        Input::Packet(b) => format!("packet {} B", b.len()),
        Input::Tick => "tick".to_owned(),
        Input::Command(Command::ProposeRemove(m)) => format!("propose_remove {}", name(m)),
        Input::Command(Command::Leave) => "leave".to_owned(),
        Input::Command(Command::SendMessage(b)) => format!("send_message {} B", b.len()),
        Input::Command(Command::Vote(p, c)) => {
            format!("vote {:?} on {}", c, hex::encode(&p.0[..4]))
        }
        Input::Entropy(_) => "entropy".to_owned(),
        Input::Crash => "CRASH".to_owned(),
        Input::Restart { .. } => "RESTART".to_owned(),
        Input::Byzantine(b) => match b {
            ByzantineInput::Set { silent, censor } => format!(
                "BYZANTINE silent={silent} censor={}",
                censor.as_ref().map_or("-".to_owned(), name)
            ),
            ByzantineInput::CommitBatch(batch) => {
                format!("BYZANTINE commit {} proposals", batch.len())
            }
            ByzantineInput::EquivocateCommits => "BYZANTINE equivocating commits".to_owned(),
            ByzantineInput::EquivocateVotes(p) => {
                format!("BYZANTINE equivocating votes on {}", hex::encode(&p.0[..4]))
            }
        },
    };
    let result = match (&r.result, r.refusal) {
        (Ok(()), _) => "ok".to_owned(),
        (Err(e), Some(kind)) => format!("refused ({kind}: {e})"),
        (Err(e), None) => format!("refused ({e})"),
    };
    let mut out = format!(
        "[{:>10.3} s] #{step:<7} node {:<4} e{:<4} {input:<22} {result}",
        r.time as f64 / 1e9,
        r.node,
        r.epoch.map_or("-".to_owned(), |e| e.to_string())
    );
    if !r.transmits.is_empty() {
        let bytes: usize = r.transmits.iter().map(|t| t.payload.len()).sum();
        out.push_str(&format!(" · {} tx {bytes} B", r.transmits.len()));
    }
    for e in &r.events {
        let text = match e {
            Event::Joined { epoch } => format!("joined e{}", epoch.0),
            Event::JoinExpired => "join expired".to_owned(),
            Event::KeyPackageSeen { member } => format!("kp {}", name(member)),
            Event::ProposalOpened {
                proposal,
                action,
                creator,
            } => format!(
                "opened {} {} by {}",
                hex::encode(&proposal.0[..4]),
                action_text(action),
                name(creator)
            ),
            Event::ProposalDecided {
                proposal, decision, ..
            } => format!(
                "decided {} {:?}",
                hex::encode(&proposal.0[..4]),
                decision.outcome
            ),
            Event::ProposalRevised {
                proposal, decision, ..
            } => format!(
                "revised {} {:?}",
                hex::encode(&proposal.0[..4]),
                decision.outcome
            ),
            Event::Equivocation(_) => "equivocation".to_owned(),
            Event::EpochChanged {
                epoch,
                added,
                removed,
            } => format!("epoch {} +{} -{}", epoch.0, added.len(), removed.len()),
            Event::Message { sender, .. } => format!("msg from {}", name(sender)),
            Event::Closed => "closed".to_owned(),
            Event::Violation {
                offender,
                kind,
                epoch,
            } => format!("VIOLATION {kind:?} by {} e{}", name(offender), epoch.0),
            Event::StewardsChanged { stewards } => format!("stewards {}", names(stewards)),
            Event::RecoveryStarted => "RECOVERY".to_owned(),
        };
        out.push_str(" · ");
        out.push_str(&text);
    }
    out
}

/// A member id as text (the simulator's ids are ASCII), hex otherwise.
pub fn name(m: &MemberId) -> String {
    match std::str::from_utf8(m.as_bytes()) {
        Ok(s) if s.chars().all(|c| c.is_ascii_graphic()) => s.to_owned(),
        _ => m.to_string(),
    }
}

fn names(list: &[MemberId]) -> String {
    list.iter().map(name).collect::<Vec<_>>().join(",")
}

fn action_text(a: &demls_core::Action) -> String {
    use demls_core::Action as A;
    match a {
        A::Add(m) => format!("add {}", name(m)),
        A::Remove(m) => format!("remove {}", name(m)),
        A::Leave(m) => format!("leave {}", name(m)),
        A::RemoveBelowThreshold(m) => format!("remove-below-threshold {}", name(m)),
        A::ElectStewards {
            stewards,
            retry_round,
        } => format!("elect [{}] retry {retry_round}", names(stewards)),
        A::Deadlock => "deadlock".to_owned(),
    }
}

/// Whether a conversation still takes packets: a member, a pending joiner, or a closed
/// member that lingers after its removal (it has a deadline left).
pub(crate) fn listening(c: &Conversation) -> bool {
    c.phase() != Phase::Closed || c.next_deadline().is_some()
}
