//! What a conversation reports, through one ordered queue.

use demls_consensus::{Decision, Epoch, Equivocation, MemberId, ProposalDigest};

/// A governance action as decided by vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Admit the node with this identity (from its key package).
    Add(MemberId),
    /// Remove this member.
    Remove(MemberId),
    /// This member leaves (self-removal).
    Leave(MemberId),
    /// Install this steward list ("Steward Election Proposal").
    ElectStewards {
        /// The stewards, in list order.
        stewards: Vec<MemberId>,
        /// The election's retry round (Layer 2 re-elections count up from 0).
        retry_round: u32,
    },
    /// Remove this member, whose peer score fell to the threshold (an emergency criteria
    /// proposal, "Peer Scoring").
    RemoveBelowThreshold(MemberId),
    /// No steward can commit: enter recovery mode (a deadlock emergency criteria proposal,
    /// "Layer 3").
    Deadlock,
}

/// A steward misbehaviour this member observed ("Steward violation list"). Each is reported
/// once, as [`Event::Violation`]; the agreed score consequence is the slot failure the
/// group's next commit records (docs/protocol.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// A commit whose changes or group parameters differ from what its proposals imply, or
    /// that carries proposals nobody voted on ("Broken commit", "Broken MLS proposal").
    BrokenCommit,
    /// A commit referencing proposals still not finalized here when the candidate window
    /// closed ("Commits that reference non-finalized voting proposals MUST be rejected").
    NonFinalized,
    /// Two different commits by the same member for one epoch.
    Equivocation,
    /// A steward's commit slot passed without a commit the group applied ("Censorship and
    /// inactivity").
    Inactivity,
    /// An applied commit that left out approved proposals it could have carried
    /// ("Censorship").
    Censorship,
}

/// A report from a [`Conversation`](crate::Conversation). Drained in causal order, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// This member joined (a welcome was processed).
    Joined {
        /// The epoch joined at.
        epoch: Epoch,
    },
    /// A pending join expired without a welcome.
    JoinExpired,
    /// A node published a key package on the welcome channel.
    KeyPackageSeen {
        /// Its identity.
        member: MemberId,
    },
    /// A governance proposal was opened.
    ProposalOpened {
        /// Its digest.
        proposal: ProposalDigest,
        /// What it proposes.
        action: Action,
        /// Who proposed it.
        creator: MemberId,
    },
    /// A proposal was decided.
    ProposalDecided {
        /// Its digest.
        proposal: ProposalDigest,
        /// What it proposed.
        action: Action,
        /// The decision.
        decision: Decision,
    },
    /// A proposal decided at its deadline on partial information was shown, by a bundle of
    /// signed votes, to have been decided early with another outcome; this final decision
    /// replaces the one [`Event::ProposalDecided`] reported (docs/protocol.md §4).
    ProposalRevised {
        /// Its digest.
        proposal: ProposalDigest,
        /// What it proposed.
        action: Action,
        /// The final decision.
        decision: Decision,
    },
    /// A voter equivocated.
    Equivocation(Box<Equivocation>),
    /// A commit was applied: the group moved to a new epoch.
    EpochChanged {
        /// The new epoch.
        epoch: Epoch,
        /// Members added by the commit.
        added: Vec<MemberId>,
        /// Members removed by the commit.
        removed: Vec<MemberId>,
    },
    /// An application message arrived.
    Message {
        /// Its MLS-authenticated sender.
        sender: MemberId,
        /// Its bytes.
        body: Vec<u8>,
    },
    /// A steward misbehaved, as observed by this member.
    Violation {
        /// Who.
        offender: MemberId,
        /// What.
        kind: ViolationKind,
        /// The epoch it happened in.
        epoch: Epoch,
    },
    /// The group's steward list changed (an election was committed, or recovery ended).
    StewardsChanged {
        /// The new list, in order.
        stewards: Vec<MemberId>,
    },
    /// Recovery mode began (a deadlock emergency proposal finalized YES, "Layer 3"): any
    /// member may commit until the first valid commit.
    RecoveryStarted,
    /// This member is no longer in the group (removed, or its leave was committed). A
    /// member removed by an acknowledged commit still answers the epoch it left for a
    /// minute (it has a deadline until then, see
    /// [`Conversation::handle_packet`](crate::Conversation::handle_packet)).
    Closed,
}

impl Action {
    fn encode(&self, out: &mut Vec<u8>) {
        let (tag, member) = match self {
            Action::Add(m) => (1, m),
            Action::Remove(m) => (2, m),
            Action::Leave(m) => (3, m),
            Action::RemoveBelowThreshold(m) => (5, m),
            Action::ElectStewards {
                stewards,
                retry_round,
            } => {
                out.push(4);
                out.extend_from_slice(&retry_round.to_be_bytes());
                out.extend_from_slice(&(stewards.len() as u32).to_be_bytes());
                for s in stewards {
                    put(out, s.as_bytes());
                }
                return;
            }
            Action::Deadlock => {
                out.push(6);
                return;
            }
        };
        out.push(tag);
        put(out, member.as_bytes());
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl Event {
    /// Appends the event's canonical encoding to `out`: a one-byte tag, then its fields
    /// (integers big-endian, byte strings and member ids with a `u32` length prefix, lists
    /// with a `u32` count). Stable across runs and platforms: the state digest hashes queued
    /// events with it, and simulator traces hash drained events with it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Event::Joined { epoch } => {
                out.push(1);
                out.extend_from_slice(&epoch.0.to_be_bytes());
            }
            Event::JoinExpired => out.push(2),
            Event::KeyPackageSeen { member } => {
                out.push(3);
                put(out, member.as_bytes());
            }
            Event::ProposalOpened {
                proposal,
                action,
                creator,
            } => {
                out.push(4);
                out.extend_from_slice(&proposal.0);
                action.encode(out);
                put(out, creator.as_bytes());
            }
            Event::ProposalDecided {
                proposal,
                action,
                decision,
            } => {
                out.push(5);
                out.extend_from_slice(&proposal.0);
                action.encode(out);
                out.extend_from_slice(&[decision.outcome as u8, decision.by as u8]);
                for v in [
                    decision.tally.electorate,
                    decision.tally.yes,
                    decision.tally.no,
                ] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            Event::Equivocation(e) => {
                out.push(6);
                out.extend_from_slice(&e.proposal.0);
                out.extend_from_slice(&e.counted.digest().0);
                out.extend_from_slice(&e.conflicting.digest().0);
            }
            Event::EpochChanged {
                epoch,
                added,
                removed,
            } => {
                out.push(7);
                out.extend_from_slice(&epoch.0.to_be_bytes());
                for list in [added, removed] {
                    out.extend_from_slice(&(list.len() as u32).to_be_bytes());
                    for m in list {
                        put(out, m.as_bytes());
                    }
                }
            }
            Event::Message { sender, body } => {
                out.push(8);
                put(out, sender.as_bytes());
                put(out, body);
            }
            Event::Closed => out.push(9),
            Event::Violation {
                offender,
                kind,
                epoch,
            } => {
                out.push(10);
                put(out, offender.as_bytes());
                out.push(*kind as u8);
                out.extend_from_slice(&epoch.0.to_be_bytes());
            }
            Event::StewardsChanged { stewards } => {
                out.push(11);
                out.extend_from_slice(&(stewards.len() as u32).to_be_bytes());
                for s in stewards {
                    put(out, s.as_bytes());
                }
            }
            Event::RecoveryStarted => out.push(12),
            Event::ProposalRevised {
                proposal,
                action,
                decision,
            } => {
                out.push(13);
                out.extend_from_slice(&proposal.0);
                action.encode(out);
                out.extend_from_slice(&[decision.outcome as u8, decision.by as u8]);
                for v in [
                    decision.tally.electorate,
                    decision.tally.yes,
                    decision.tally.no,
                ] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
}
