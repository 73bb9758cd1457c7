//! The stateful inbound path of `VotingMachine` on live state.
//!
//! A fixed fixture (built once, cloned per input): a group of 5 members with deterministic
//! Ed25519 keys (derived from a label exactly like `tests/support/mod.rs`), and the machine of
//! member 1 at epoch 1 holding two open proposals by member 0 —
//!
//! * A: silent voters count as YES, ties Reject — creator YES and member 2 YES counted;
//! * B: silent voters count as NO, ties Retry — creator YES and member 3 NO counted;
//!
//! plus a pool of valid encoded messages (the proposals, a third proposal C the machine has not
//! seen, fresh, duplicate, equivocating, late, foreign-epoch, foreign-conversation and non-member
//! votes, and bundles, one of them equivocating internally).
//!
//! The fuzz input is a sequence of operations (see [`Op`]): raw bytes, pool messages as is,
//! xor-mutated, overwritten, truncated or concatenated, properly signed votes / proposals /
//! bundles with fuzzer-chosen fields, local commands, deadline ticks, clock advances and epoch
//! changes. After every step the pending events are drained and checked.
//!
//! Checked contracts (from the `VotingMachine` / `Ingested` / `Error` docs):
//! * nothing panics (including overflow checks and `debug_assert!`s, see `fuzz/Cargo.toml`);
//! * an `Err` from any input or command leaves `state_digest()` unchanged;
//! * `Ok(AlreadyHave | AfterDecision | AlreadyEquivocated)`, and a bundle that opened, counted
//!   and found nothing, leave `state_digest()` unchanged; `Opened`, `Counted` and `Equivocation`
//!   change it;
//! * after `tick_deadlines(t)` no open proposal has a deadline `<= t`;
//! * every decision is reported exactly once and never changes; only undecided proposals are
//!   abandoned; an opened proposal is known to the machine.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use demls_consensus::{
    transcript, Choice, Config, ConversationId, Decision, Epoch, Error, Event, Ingested, MemberId,
    ProposalDigest, ProposalDraft, ProposalHeader, ProposalKind, Roster, SignatureScheme,
    SignedProposal, TiePolicy, Timestamp, Vote, VoteBundle, Voter, VotingMachine, VotingMessage,
};
use libfuzzer_sys::fuzz_target;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::signatures::Signer;
use sha2::{Digest as _, Sha256};

/// Group size.
const N: usize = 5;
/// The member whose machine is fuzzed.
const LOCAL: usize = 1;
/// The member who is not in any roster.
const OUTSIDER: usize = 99;
/// Start of virtual time (derived Unix ms), as in the integration tests.
const T0: u64 = 1_700_000_000_000;
/// Voting window of the fixture proposals.
const WINDOW_MS: u64 = 60_000;
/// `now` at the start of every input (after the fixture's own inputs).
const START: u64 = T0 + 1_000;
/// Upper bound on operations per input, to keep executions fast.
const MAX_OPS: usize = 96;
/// Most messages / proposals an input may add to its own pool.
const MAX_EXTRA: usize = 24;

// ----- deterministic identities (same derivation as tests/support/mod.rs) -----

fn signer(i: usize) -> SignatureKeyPair {
    let seed: [u8; 32] = Sha256::digest(format!("demls test member {i}")).into();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    SignatureKeyPair::from_raw(SignatureScheme::ED25519, seed.to_vec(), public.to_vec())
}

fn member(i: usize) -> MemberId {
    MemberId::new(format!("member-{i:04}")).unwrap()
}

fn conversation() -> ConversationId {
    ConversationId::new(b"conversation-1".to_vec()).unwrap()
}

fn other_conversation() -> ConversationId {
    ConversationId::new(b"conversation-2".to_vec()).unwrap()
}

fn roster_of(signers: &[SignatureKeyPair], members: &[usize]) -> Roster {
    let voters = members
        .iter()
        .map(|&i| Voter {
            id: member(i),
            signature_key: signers[i].to_public_vec(),
        })
        .collect();
    Roster::new(SignatureScheme::ED25519, voters).unwrap()
}

fn draft(id: u64, choice: Choice, silent_yes: bool, tie: TiePolicy) -> ProposalDraft {
    ProposalDraft {
        proposal_id: id,
        kind: ProposalKind::Commit,
        payload: format!("add member {id}").into_bytes(),
        voting_duration_ms: WINDOW_MS,
        silent_counts_as_yes: silent_yes,
        tie_policy: tie,
        creator_choice: choice,
    }
}

fn sign_vote(key: &SignatureKeyPair, mut vote: Vote) -> Vote {
    vote.signature = key.sign(&transcript::vote_transcript(&vote)).unwrap();
    vote
}

/// A vote by member `i` on `proposal` at epoch 1 in the fixture conversation.
fn vote_by(
    keys: &[SignatureKeyPair],
    i: usize,
    proposal: ProposalDigest,
    choice: Choice,
    at: u64,
) -> Vote {
    sign_vote(
        &keys[i],
        Vote {
            conversation: conversation(),
            epoch: Epoch(1),
            proposal,
            voter: member(i),
            choice,
            cast_at: Timestamp(at),
            signature: vec![],
        },
    )
}

// ----- the fixture -----

struct Fixture {
    crypto: RustCrypto,
    /// Keys of members 0..N, then the outsider's key at index N.
    keys: Vec<SignatureKeyPair>,
    /// Rosters an epoch change may install: everyone, the first 3, the first 4, all but LOCAL.
    rosters: Vec<Roster>,
    machine: VotingMachine,
    /// Proposals A and B (open in the machine) and C (unknown to it).
    proposals: Vec<SignedProposal>,
    /// Valid encoded messages.
    pool: Vec<Vec<u8>>,
    /// Typed votes, for building bundles.
    votes: Vec<Vote>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    let crypto = RustCrypto::default();
    let mut keys: Vec<_> = (0..N).map(signer).collect();
    keys.push(signer(OUTSIDER));
    let everyone: Vec<usize> = (0..N).collect();
    let rosters = vec![
        roster_of(&keys, &everyone),
        roster_of(&keys, &[0, 1, 2]),
        roster_of(&keys, &[0, 1, 2, 3]),
        roster_of(&keys, &[0, 2, 3, 4]),
    ];
    let config = |i| Config::new(conversation(), member(i));

    // Member 0 opens A, B and C.
    let mut creator = VotingMachine::new(config(0), Epoch(1), rosters[0].clone());
    let mut open = |at: u64, d: ProposalDraft| match creator.propose(&keys[0], Timestamp(at), d) {
        Ok((digest, VotingMessage::Proposal(p))) => (digest, p),
        other => panic!("fixture proposal: {other:?}"),
    };
    let (a, prop_a) = open(T0, draft(1, Choice::Yes, true, TiePolicy::Reject));
    let (b, prop_b) = open(T0 + 200, draft(2, Choice::Yes, false, TiePolicy::Retry));
    let (c, prop_c) = open(T0 + 400, draft(3, Choice::No, true, TiePolicy::Retry));

    let v = |i, p, choice, at| vote_by(&keys, i, p, choice, at);
    let votes = vec![
        v(2, a, Choice::Yes, T0 + 800),    // 0: counted in the fixture
        v(3, a, Choice::Yes, T0 + 900),    // 1: new
        v(4, a, Choice::No, T0 + 950),     // 2: new
        v(3, a, Choice::No, T0 + 960),     // 3: equivocates with 1
        v(2, a, Choice::No, T0 + 970),     // 4: equivocates with the counted 0
        v(3, b, Choice::No, T0 + 850),     // 5: counted in the fixture
        v(4, b, Choice::Yes, T0 + 900),    // 6: new
        v(2, b, Choice::No, T0 + 910),     // 7: new
        v(0, b, Choice::No, T0 + 920),     // 8: equivocates with B's creator vote
        v(1, c, Choice::Yes, T0 + 990),    // 9: the local member's id, from a peer
        v(2, c, Choice::Yes, T0 + 990),    // 10
        v(3, c, Choice::No, T0 + 990),     // 11
        v(4, a, Choice::Yes, T0 + 59_000), // 12: late in A's window (future until ~T0+29 s)
        v(1, b, Choice::Yes, T0 + 1_000),  // 13: the local member's id on B
        // 14: a non-member, signed with its own key.
        sign_vote(
            &keys[N],
            Vote {
                voter: member(OUTSIDER),
                ..v(2, a, Choice::Yes, T0 + 900)
            },
        ),
        // 15: another epoch, correctly signed.
        sign_vote(
            &keys[2],
            Vote {
                epoch: Epoch(2),
                ..v(2, a, Choice::Yes, T0 + 900)
            },
        ),
        // 16: another conversation, correctly signed.
        sign_vote(
            &keys[4],
            Vote {
                conversation: other_conversation(),
                ..v(4, b, Choice::Yes, T0 + 900)
            },
        ),
    ];

    let mut machine = VotingMachine::new(config(LOCAL), Epoch(1), rosters[0].clone());
    let now = Timestamp(START);
    for (msg, want) in [
        (VotingMessage::Proposal(prop_a.clone()), Ingested::Opened(a)),
        (VotingMessage::Proposal(prop_b.clone()), Ingested::Opened(b)),
        (VotingMessage::Vote(votes[0].clone()), Ingested::Counted),
        (VotingMessage::Vote(votes[5].clone()), Ingested::Counted),
    ] {
        let got = machine.handle_message(&crypto, now, &msg.encode());
        assert_eq!(got, Ok(want), "fixture input {msg:?}");
    }
    while machine.poll_event().is_some() {}
    assert_eq!(
        machine.open_proposals(),
        2,
        "fixture proposals must stay open"
    );

    let bundle = |proposal: Option<&SignedProposal>, digest, idx: &[usize]| {
        VotingMessage::Bundle(VoteBundle {
            proposal: proposal.cloned(),
            proposal_digest: digest,
            votes: idx.iter().map(|&i| votes[i].clone()).collect(),
        })
    };
    let mut pool: Vec<Vec<u8>> = [&prop_a, &prop_b, &prop_c]
        .into_iter()
        .map(|p| VotingMessage::Proposal(p.clone()).encode())
        .collect();
    pool.extend(
        votes
            .iter()
            .map(|v| VotingMessage::Vote(v.clone()).encode()),
    );
    pool.extend(
        [
            bundle(Some(&prop_a), a, &[0, 1, 2]),
            bundle(None, b, &[6, 7]),
            bundle(Some(&prop_c), c, &[9, 10, 11]),
            bundle(None, a, &[1, 3]),       // equivocation inside the bundle
            bundle(Some(&prop_b), b, &[8]), // equivocation with the creator vote
            bundle(None, c, &[9]),          // unknown proposal
            bundle(Some(&prop_a), a, &[5]), // vote on another proposal
        ]
        .iter()
        .map(VotingMessage::encode),
    );

    Fixture {
        crypto,
        keys,
        rosters,
        machine,
        proposals: vec![prop_a, prop_b, prop_c],
        pool,
        votes,
    }
}

// ----- input reading -----

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

// ----- the run -----

struct Run<'f> {
    f: &'f Fixture,
    m: VotingMachine,
    now: u64,
    /// Messages this input produced (crafted or from local commands), usable like the pool.
    extra: Vec<Vec<u8>>,
    /// Proposals this input crafted or proposed, as vote / bundle targets.
    extra_proposals: Vec<SignedProposal>,
    /// Every decision reported, by proposal (digests include the epoch, so never reused).
    decided: HashMap<ProposalDigest, Decision>,
    /// Digests of the proposals of the current epoch that were decided (cleared on epoch change).
    live_decided: Vec<ProposalDigest>,
}

impl Run<'_> {
    fn pool_len(&self) -> usize {
        self.f.pool.len() + self.extra.len()
    }

    fn pool_msg(&self, i: u8) -> Vec<u8> {
        let i = usize::from(i) % self.pool_len();
        match self.f.pool.get(i) {
            Some(m) => m.clone(),
            None => self.extra[i - self.f.pool.len()].clone(),
        }
    }

    fn remember(&mut self, msg: &VotingMessage) {
        if self.extra.len() < MAX_EXTRA {
            self.extra.push(msg.encode());
        }
        if let VotingMessage::Proposal(p) = msg {
            if self.extra_proposals.len() < MAX_EXTRA {
                self.extra_proposals.push(p.clone());
            }
        }
    }

    /// A proposal digest chosen by `sel`: A, B, C, one this input made, or a junk digest.
    fn target(&self, sel: u8) -> ProposalDigest {
        let known = self.f.proposals.len() + self.extra_proposals.len();
        let i = usize::from(sel) % (known + 1);
        if i < self.f.proposals.len() {
            self.f.proposals[i].digest()
        } else if i < known {
            self.extra_proposals[i - self.f.proposals.len()].digest()
        } else {
            ProposalDigest(Sha256::digest([sel]).into())
        }
    }

    fn target_proposal(&self, sel: u8) -> Option<&SignedProposal> {
        let i = usize::from(sel) % (self.f.proposals.len() + self.extra_proposals.len());
        self.f
            .proposals
            .get(i)
            .or_else(|| self.extra_proposals.get(i - self.f.proposals.len()))
    }

    /// Key for member `who % 6` (5 = the outsider); bit 7 picks a wrong key.
    fn identity(&self, who: u8) -> (MemberId, &SignatureKeyPair) {
        let i = usize::from(who & 0x7f) % (N + 1);
        let id = if i == N { member(OUTSIDER) } else { member(i) };
        let key_index = if who & 0x80 != 0 {
            (i + 1) % (N + 1)
        } else {
            i
        };
        (id, &self.f.keys[key_index])
    }

    fn epoch_for(&self, flags: u8) -> Epoch {
        match flags & 0b11 {
            0 | 1 => self.m.epoch(),
            2 => Epoch(self.m.epoch().0.wrapping_add(1)),
            _ => Epoch(self.m.epoch().0.wrapping_sub(1)),
        }
    }

    /// A signed vote with fuzzer-chosen fields. `proposal` forces the target.
    fn craft_vote(&self, input: &mut Input<'_>, proposal: Option<ProposalDigest>) -> Vote {
        let (who, sel, flags, time) = (input.u8(), input.u8(), input.u8(), input.u16());
        let (voter, key) = self.identity(who);
        let cast_at = match flags >> 6 {
            0 | 1 => T0 - 2_048 + 2 * u64::from(time),
            2 => self.now.wrapping_add(u64::from(time)).wrapping_sub(1_024),
            _ if time & 1 == 0 => 0,
            _ => u64::MAX,
        };
        let vote = Vote {
            conversation: if flags & 0b100 != 0 {
                other_conversation()
            } else {
                conversation()
            },
            epoch: self.epoch_for(flags >> 3),
            proposal: proposal.unwrap_or_else(|| self.target(sel)),
            voter,
            choice: if flags & 1 != 0 {
                Choice::Yes
            } else {
                Choice::No
            },
            cast_at: Timestamp(cast_at),
            signature: vec![],
        };
        let mut vote = sign_vote(key, vote);
        if flags & 0b10 != 0 && sel & 0x80 != 0 {
            // Tamper after signing: flip the choice.
            vote.choice = if vote.choice.is_yes() {
                Choice::No
            } else {
                Choice::Yes
            };
        }
        vote
    }

    /// A signed proposal with fuzzer-chosen header fields.
    fn craft_proposal(&self, input: &mut Input<'_>) -> SignedProposal {
        let (who, id, flags, more) = (input.u8(), input.u8(), input.u8(), input.u8());
        let (created, duration) = (input.u16(), input.u16());
        let (creator, key) = self.identity(who);
        let created_at = match more & 0b11 {
            0 | 1 => T0 - 2_048 + 2 * u64::from(created),
            2 => self
                .now
                .wrapping_add(u64::from(created))
                .wrapping_sub(1_024),
            _ => u64::MAX - u64::from(created),
        };
        let deadline = match duration {
            0xffff => created_at.saturating_add(3_600_001),
            d => created_at.saturating_add(2 * u64::from(d)),
        };
        let payload = vec![id; usize::from(more >> 4)];
        let header = ProposalHeader {
            conversation: if more & 0b100 != 0 {
                other_conversation()
            } else {
                conversation()
            },
            epoch: self.epoch_for(flags >> 6),
            proposal_id: u64::from(id),
            kind: match (flags >> 2) % 3 {
                0 => ProposalKind::Commit,
                1 => ProposalKind::StewardElection,
                _ => ProposalKind::Emergency,
            },
            payload_digest: if more & 0b1000 != 0 {
                [id; 32]
            } else {
                transcript::payload_digest(&payload)
            },
            creator: creator.clone(),
            created_at: Timestamp(created_at),
            deadline: Timestamp(deadline),
            silent_counts_as_yes: flags & 1 != 0,
            tie_policy: if flags & 0b10 != 0 {
                TiePolicy::Retry
            } else {
                TiePolicy::Reject
            },
        };
        let digest = header.digest();
        let signature = key.sign(&transcript::header_transcript(&header)).unwrap();
        let vote = Vote {
            conversation: header.conversation.clone(),
            epoch: header.epoch,
            proposal: digest,
            voter: creator,
            choice: if flags & 0b10_0000 != 0 {
                Choice::Yes
            } else {
                Choice::No
            },
            cast_at: header.created_at,
            signature: vec![],
        };
        let creator_vote = if flags & 0b1_0000 != 0 {
            // Someone else's (validly signed) vote in the creator's slot.
            let (other, other_key) = self.identity(who.wrapping_add(1));
            sign_vote(
                other_key,
                Vote {
                    voter: other,
                    ..vote
                },
            )
        } else {
            sign_vote(key, vote)
        };
        SignedProposal {
            header,
            signature,
            payload,
            creator_vote,
        }
    }

    fn craft_bundle(&self, input: &mut Input<'_>) -> VoteBundle {
        let (sel, n) = (input.u8(), input.u8());
        let proposal = self.target_proposal(sel).cloned();
        let digest = match (&proposal, sel & 0x40) {
            (Some(p), 0) => p.digest(),
            _ => self.target(sel),
        };
        let votes = (0..n % 6)
            .map(|_| {
                let src = input.u8();
                if src & 0x80 != 0 {
                    self.craft_vote(input, Some(digest))
                } else {
                    self.f.votes[usize::from(src) % self.f.votes.len()].clone()
                }
            })
            .collect();
        VoteBundle {
            proposal: if sel & 0x80 != 0 { proposal } else { None },
            proposal_digest: digest,
            votes,
        }
    }

    /// Feeds bytes to `handle_message` and checks the state contract.
    fn ingest(&mut self, bytes: &[u8]) {
        let before = self.m.state_digest();
        let result = self
            .m
            .handle_message(&self.f.crypto, Timestamp(self.now), bytes);
        let after = self.m.state_digest();
        match result {
            Err(e) => assert_eq!(before, after, "refused input changed the state: {e:?}"),
            Ok(what) => {
                let changes = match what {
                    Ingested::Opened(_) | Ingested::Counted | Ingested::Equivocation => true,
                    Ingested::AlreadyHave
                    | Ingested::AfterDecision
                    | Ingested::AlreadyEquivocated => false,
                    Ingested::Bundle(s) => s.opened || s.counted > 0 || s.equivocations > 0,
                };
                if changes {
                    assert_ne!(before, after, "{what:?} left the state digest unchanged");
                } else {
                    assert_eq!(before, after, "{what:?} changed the state");
                }
            }
        }
    }

    fn ingest_msg(&mut self, msg: VotingMessage) {
        let bytes = msg.encode();
        self.remember(&msg);
        self.ingest(&bytes);
    }

    /// Checks a command's result: an `Err` changes nothing.
    fn command<T>(&mut self, f: impl FnOnce(&mut VotingMachine) -> Result<T, Error>) -> Option<T> {
        let before = self.m.state_digest();
        match f(&mut self.m) {
            Ok(v) => Some(v),
            Err(e) => {
                assert_eq!(
                    before,
                    self.m.state_digest(),
                    "refused command changed the state: {e:?}"
                );
                None
            }
        }
    }

    /// Drains and checks the events of the last step.
    fn drain(&mut self) {
        while let Some(event) = self.m.poll_event() {
            match event {
                Event::ProposalOpened { proposal, .. } => {
                    assert!(
                        self.m.proposal(&proposal).is_some(),
                        "opened {proposal:?} is unknown"
                    );
                }
                Event::Decided { proposal, decision } => {
                    let previous = self.decided.insert(proposal, decision);
                    assert!(
                        previous.is_none(),
                        "{proposal:?} decided twice: {previous:?}, {decision:?}"
                    );
                    self.live_decided.push(proposal);
                    let t = decision.tally;
                    assert!(t.yes + t.no <= t.electorate, "impossible tally {t:?}");
                }
                Event::Revised {
                    proposal,
                    previous,
                    decision,
                } => {
                    // Only a deadline decision is revised (by the votes of a bundle), into
                    // another outcome, early or at the deadline over the union.
                    let recorded = self.decided.insert(proposal, decision);
                    let recorded = recorded.expect("revised a proposal never decided");
                    assert_eq!(
                        recorded.outcome, previous.outcome,
                        "revised {proposal:?} unseen"
                    );
                    assert!(!recorded.is_final(), "a final decision was revised");
                    assert_ne!(
                        previous.outcome, decision.outcome,
                        "revision without change"
                    );
                }
                Event::Abandoned { proposal, .. } => {
                    assert!(
                        !self.decided.contains_key(&proposal),
                        "decided {proposal:?} abandoned"
                    );
                }
                Event::Equivocation(e) => {
                    assert_eq!(e.counted.voter, e.conflicting.voter);
                    assert_ne!(e.counted, e.conflicting, "equivocation with itself");
                }
            }
        }
        for d in &self.live_decided {
            let now = self.m.decision(d);
            let recorded = self.decided.get(d).copied();
            // Votes a bundle brings to a deadline decision update its tally (and may make it
            // final) silently when the outcome stays: nothing the host acts on changed.
            let finalized = matches!(
                (now, recorded),
                (Some(n), Some(r)) if !r.is_final() && n.outcome == r.outcome
            );
            if finalized {
                self.decided.insert(*d, now.expect("matched"));
                continue;
            }
            assert_eq!(now, recorded, "decision of {d:?} changed");
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match input.u8() % 14 {
            // Raw fuzzer bytes.
            0 => {
                let len = usize::from(input.u16());
                let bytes = input.bytes(len);
                self.ingest(bytes);
            }
            // A pool message with one byte xor-ed.
            1 => {
                let mut msg = self.pool_msg(input.u8());
                let (pos, x) = (usize::from(input.u16()), input.u8());
                let len = msg.len();
                msg[pos % len] ^= if x == 0 { 0x80 } else { x };
                self.ingest(&msg);
            }
            // A pool message unchanged.
            2 => {
                let msg = self.pool_msg(input.u8());
                self.ingest(&msg);
            }
            // tick_deadlines at an offset from the base time (or at the end of time).
            3 => {
                let (flag, offset) = (input.u8(), input.u16());
                let t = if flag == 0xff {
                    u64::MAX
                } else {
                    T0 + 4 * u64::from(offset)
                };
                self.m.tick_deadlines(Timestamp(t));
                if let Some(next) = self.m.next_deadline() {
                    assert!(next.0 > t, "deadline {next:?} <= {t} still open after tick");
                }
            }
            // Advance the clock a little.
            4 => self.now = self.now.saturating_add(u64::from(input.u16())),
            // A pool message with a few bytes overwritten by fuzzer bytes.
            5 => {
                let mut msg = self.pool_msg(input.u8());
                let (pos, n) = (usize::from(input.u16()), usize::from(input.u8() % 16));
                let len = msg.len();
                for (i, b) in input.bytes(n).iter().enumerate() {
                    msg[(pos + i) % len] = *b;
                }
                self.ingest(&msg);
            }
            // A truncated pool message, or two pool messages concatenated (protobuf merge).
            6 => {
                let (a, b, cut) = (input.u8(), input.u8(), usize::from(input.u16()));
                let mut msg = self.pool_msg(a);
                if b & 1 == 0 {
                    msg.truncate(cut % msg.len());
                } else {
                    msg.extend(self.pool_msg(b >> 1));
                }
                self.ingest(&msg);
            }
            // A properly signed vote with fuzzer-chosen fields.
            7 => {
                let vote = self.craft_vote(input, None);
                self.ingest_msg(VotingMessage::Vote(vote));
            }
            // A properly signed proposal with fuzzer-chosen header.
            8 => {
                let proposal = self.craft_proposal(input);
                self.ingest_msg(VotingMessage::Proposal(proposal));
            }
            // A bundle of pool and crafted votes, with or without its proposal.
            9 => {
                let bundle = self.craft_bundle(input);
                self.ingest_msg(VotingMessage::Bundle(bundle));
            }
            // The local member votes.
            10 => {
                let (sel, choice) = (input.u8(), input.u8());
                let (target, now) = (self.target(sel), Timestamp(self.now));
                let choice = if choice & 1 != 0 {
                    Choice::Yes
                } else {
                    Choice::No
                };
                let f = self.f;
                let key = &f.keys[LOCAL];
                if let Some(msg) = self.command(|m| m.cast_vote(key, now, target, choice)) {
                    self.remember(&msg);
                }
            }
            // The local member proposes.
            11 => {
                let (id, flags, duration) = (input.u8(), input.u8(), input.u16());
                let d = ProposalDraft {
                    voting_duration_ms: if duration == 0xffff {
                        3_600_001
                    } else {
                        u64::from(duration) * 2
                    },
                    kind: match flags % 3 {
                        0 => ProposalKind::Commit,
                        1 => ProposalKind::StewardElection,
                        _ => ProposalKind::Emergency,
                    },
                    ..draft(
                        u64::from(id),
                        if flags & 0b100 != 0 {
                            Choice::Yes
                        } else {
                            Choice::No
                        },
                        flags & 0b1000 != 0,
                        if flags & 0b1_0000 != 0 {
                            TiePolicy::Retry
                        } else {
                            TiePolicy::Reject
                        },
                    )
                };
                let f = self.f;
                let (key, now) = (&f.keys[LOCAL], Timestamp(self.now));
                if let Some((_, msg)) = self.command(|m| m.propose(key, now, d)) {
                    self.remember(&msg);
                }
            }
            // Re-send everything known about a proposal (gossip repair) to ourselves.
            12 => {
                let target = self.target(input.u8());
                if let Some(msg) = self.m.bundle(&target) {
                    self.ingest(&msg.encode());
                }
            }
            // An epoch change (possibly refused: not later than the current one).
            _ => {
                let (e, r) = (input.u8(), input.u8());
                let epoch = Epoch(self.m.epoch().0 + u64::from(e % 3));
                let roster = self.f.rosters[usize::from(r) % self.f.rosters.len()].clone();
                if self.command(|m| m.advance_epoch(epoch, roster)).is_some() {
                    // The old epoch's proposals (and decisions) are gone.
                    self.live_decided.clear();
                }
            }
        }
        self.drain();
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut run = Run {
        f,
        m: f.machine.clone(),
        now: START,
        extra: Vec::new(),
        extra_proposals: Vec::new(),
        decided: HashMap::new(),
        live_decided: Vec::new(),
    };
    let mut input = Input(data);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        run.step(&mut input);
    }
});
