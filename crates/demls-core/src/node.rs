//! [`Node`]: the registry of one identity's conversations (BRIEF §4 "Multi-conversation
//! Node"). It routes inbound packets by conversation id, keeps one deadline index over all
//! conversations, reports lifecycle edges, and reaps closed conversations to small summaries.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use demls_consensus::{ConversationId, Epoch, MemberId};
use demls_wire::Limits;

use crate::config::ConversationConfig;
use crate::conversation::{Conversation, Phase};
use crate::error::Error;
use crate::event::Event;
use crate::transmit::Transmit;

/// Why the node refused an input or command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The packet names no conversation of this node.
    #[error("no conversation {0:?} on this node")]
    Unroutable(ConversationId),
    /// The conversation exists already.
    #[error("conversation {0:?} already exists on this node")]
    Duplicate(ConversationId),
    /// The conversation was closed and reaped.
    #[error("conversation {0:?} is closed")]
    Closed(ConversationId),
    /// The conversation refused it.
    #[error(transparent)]
    Conversation(#[from] Error),
}

/// What is kept of a closed conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedSummary {
    /// The last epoch the member was in, if it ever joined.
    pub last_epoch: Option<Epoch>,
    /// When it was reaped.
    pub closed_at: Instant,
}

/// A node-level report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A conversation was created on this node.
    Created(ConversationId),
    /// This node joined a conversation.
    Joined(ConversationId),
    /// A conversation closed (left, removed, join expired) and was reaped (a removed member
    /// still answers the epoch it left for a minute, out of sight: see
    /// [`Conversation::handle_packet`]).
    Closed(ConversationId),
    /// An event of one conversation.
    Conversation(ConversationId, Event),
}

/// Memory held by one conversation, in bytes (approximate: the serialized MLS state plus the
/// conversation's buffers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// Bytes attributed to the conversation.
    pub bytes: usize,
}

/// One identity's conversations, driven as one sans-IO machine with the same run-loop
/// contract as [`Conversation`]: inputs ([`handle_packet`](Self::handle_packet),
/// [`tick_deadlines`](Self::tick_deadlines)), commands ([`create`](Self::create),
/// [`join`](Self::join), [`command`](Self::command)), outputs
/// ([`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
/// [`next_deadline`](Self::next_deadline)) drained after every call.
#[derive(Debug, Default)]
pub struct Node {
    conversations: BTreeMap<ConversationId, Conversation>,
    closed: BTreeMap<ConversationId, ClosedSummary>,
    /// Reaped conversations still answering the traffic of the epoch they left, until
    /// their last deadline.
    lingering: BTreeMap<ConversationId, Conversation>,
    /// Every live conversation's next deadline: `next_deadline` is its first entry.
    deadlines: BTreeSet<(Instant, ConversationId)>,
    deadline_of: BTreeMap<ConversationId, Instant>,
    transmits: VecDeque<(ConversationId, Transmit)>,
    events: VecDeque<NodeEvent>,
}

impl Node {
    /// An empty node.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a conversation with this node as sole member and steward.
    pub fn create(
        &mut self,
        config: ConversationConfig,
        id: ConversationId,
        me: MemberId,
        seed: [u8; 32],
        now: Instant,
        unix_ms: u64,
    ) -> Result<(), NodeError> {
        self.ensure_new(&id)?;
        let c = Conversation::create(config, id.clone(), me, seed, now, unix_ms)?;
        self.events.push_back(NodeEvent::Created(id.clone()));
        self.insert(id, c, now);
        Ok(())
    }

    /// Starts joining a conversation (publishes a key package on its welcome channel).
    pub fn join(
        &mut self,
        config: ConversationConfig,
        id: ConversationId,
        me: MemberId,
        seed: [u8; 32],
        now: Instant,
        unix_ms: u64,
    ) -> Result<(), NodeError> {
        self.ensure_new(&id)?;
        let c = Conversation::join(config, id.clone(), me, seed, now, unix_ms)?;
        self.insert(id, c, now);
        Ok(())
    }

    /// Routes a received packet to its conversation.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) -> Result<(), NodeError> {
        let packet = demls_wire::decode_packet(
            bytes,
            &Limits {
                max_message_len: usize::MAX,
                ..Limits::default()
            },
        )
        .map_err(Error::from)?;
        let id =
            ConversationId::new(packet.conversation_id).map_err(|_| Error::WrongConversation)?;
        if self.lingering.contains_key(&id) {
            return self.handle_lingering(&id, now, bytes);
        }
        self.command(&id, now, |c| c.handle_packet(now, bytes))
    }

    /// Runs a command (or input) on one conversation, then collects its outputs.
    pub fn command<T>(
        &mut self,
        id: &ConversationId,
        now: Instant,
        f: impl FnOnce(&mut Conversation) -> Result<T, Error>,
    ) -> Result<T, NodeError> {
        let c = match self.conversations.get_mut(id) {
            Some(c) => c,
            None if self.closed.contains_key(id) => return Err(NodeError::Closed(id.clone())),
            None => return Err(NodeError::Unroutable(id.clone())),
        };
        let result = f(c);
        self.collect(id, now);
        Ok(result?)
    }

    /// A packet for a reaped conversation: one that lingers may answer it.
    fn handle_lingering(
        &mut self,
        id: &ConversationId,
        now: Instant,
        bytes: &[u8],
    ) -> Result<(), NodeError> {
        let Some(c) = self.lingering.get_mut(id) else {
            return Err(NodeError::Closed(id.clone()));
        };
        let result = c.handle_packet(now, bytes);
        self.collect(id, now);
        result.map_err(|_| NodeError::Closed(id.clone()))
    }

    /// Fires every due deadline of every conversation. O(log n) per due conversation; an idle
    /// call looks at one index entry.
    pub fn tick_deadlines(&mut self, now: Instant) {
        while let Some((at, id)) = self.deadlines.first().cloned() {
            if at > now {
                break;
            }
            if let Some(c) = self
                .conversations
                .get_mut(&id)
                .or_else(|| self.lingering.get_mut(&id))
            {
                c.tick_deadlines(now);
            }
            self.collect(&id, now);
        }
    }

    /// The earliest deadline of all conversations.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The next packet to publish, with its conversation.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(ConversationId, Transmit)> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// A live conversation.
    pub fn conversation(&self, id: &ConversationId) -> Option<&Conversation> {
        self.conversations.get(id)
    }

    /// Ids of the live conversations, sorted.
    pub fn conversations(&self) -> impl Iterator<Item = &ConversationId> {
        self.conversations.keys()
    }

    /// Summaries of reaped conversations.
    pub fn closed(&self) -> &BTreeMap<ConversationId, ClosedSummary> {
        &self.closed
    }

    /// Memory held by each live conversation, sorted by id.
    pub fn memory_use(&self) -> Vec<(ConversationId, MemoryUse)> {
        self.conversations
            .iter()
            .map(|(id, c)| {
                (
                    id.clone(),
                    MemoryUse {
                        bytes: c.memory_bytes(),
                    },
                )
            })
            .collect()
    }

    fn ensure_new(&self, id: &ConversationId) -> Result<(), NodeError> {
        if self.conversations.contains_key(id) || self.closed.contains_key(id) {
            return Err(NodeError::Duplicate(id.clone()));
        }
        Ok(())
    }

    fn insert(&mut self, id: ConversationId, c: Conversation, now: Instant) {
        self.conversations.insert(id.clone(), c);
        self.collect(&id, now);
    }

    /// Moves one conversation's outputs into the node, refreshes its deadline, and reaps it
    /// if it closed — keeping it aside while it lingers (it still answers the traffic of
    /// the epoch it left, see [`Conversation::handle_packet`]), dropping it when that ends.
    fn collect(&mut self, id: &ConversationId, now: Instant) {
        let reaped = !self.conversations.contains_key(id);
        let Some(c) = self
            .conversations
            .get_mut(id)
            .or_else(|| self.lingering.get_mut(id))
        else {
            return;
        };
        while let Some(t) = c.poll_transmit() {
            self.transmits.push_back((id.clone(), t));
        }
        while let Some(e) = c.poll_event() {
            if let Event::Joined { .. } = e {
                self.events.push_back(NodeEvent::Joined(id.clone()));
            }
            self.events
                .push_back(NodeEvent::Conversation(id.clone(), e));
        }
        if let Some(old) = self.deadline_of.remove(id) {
            self.deadlines.remove(&(old, id.clone()));
        }
        let next = c.next_deadline();
        if !reaped && c.phase() == Phase::Closed {
            let summary = ClosedSummary {
                last_epoch: c.epoch(),
                closed_at: now,
            };
            let c = self.conversations.remove(id).expect("found above");
            self.closed.insert(id.clone(), summary);
            self.events.push_back(NodeEvent::Closed(id.clone()));
            if next.is_none() {
                return;
            }
            self.lingering.insert(id.clone(), c);
        } else if reaped && next.is_none() {
            self.lingering.remove(id);
            return;
        }
        if let Some(at) = next {
            self.deadline_of.insert(id.clone(), at);
            self.deadlines.insert((at, id.clone()));
        }
    }
}
