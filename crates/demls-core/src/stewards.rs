//! The group's governance state — steward list, peer scores, governance parameters — and the
//! pure rules over it: the election order ("Steward list creation"), the rotation walk
//! ("Layer 1 — Local steward rotation") and the score deltas of a commit ("Peer Scoring").
//!
//! The state lives in the MLS GroupContext ([`GROUP_PARAMS_EXTENSION`]), so every member — a
//! joiner through its Welcome — holds exactly the value the group agreed; a commit that changes
//! it carries the new value, which every member recomputes (`Conversation::next_state`)
//! and compares (docs/protocol.md §9).
//!
//! [`GROUP_PARAMS_EXTENSION`]: crate::GROUP_PARAMS_EXTENSION

use std::collections::BTreeMap;
use std::time::Duration;

use demls_consensus::MemberId;
use demls_wire::v1;
use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// Group-wide governance parameters, fixed by the creator and carried to every member in the
/// group's parameters ("the sync to joiners carries ... timing config").
///
/// The default is the single-steward protocol (`single_steward`); multi-steward governance
/// ([`GovernanceConfig::multi_steward`]) is opt-in while it is experimental.
///
/// Defaults and why:
/// * `sn_min` 3, `sn_max` 5: a list of 5 hands the commit role to a new steward every epoch
///   and needs one election per 5 epochs; 3 is the smallest list with a backup for the backup.
/// * `commit_inactivity` 4 s: twice the default freeze window, so a commit that is late by a
///   network hiccup is not yet walked past.
/// * `recovery_inactivity` 2 s: shorter, so a recovery walk over all members is quick
///   ("a separate, typically shorter inactivity duration SHOULD apply").
/// * `voting_inactivity` 3 s: how long a member waits for someone earlier in line to open a
///   proposal that is due (an election, an emergency proposal, an add) before it does.
/// * `candidate_window` 1 s: how long a member collects commit candidates after the first,
///   before it applies the best (a steward that equivocates is caught inside it).
/// * Scores: start at 100 (also the cap), threshold 40; a failed commit slot costs 20, so a
///   steward that fails three slots is proposed for removal while one or two failures (a crash,
///   a partition) are forgiven by later commits (+5 each); an emergency proposal finalized YES
///   earns its creator 5, one finalized NO costs 20 (spam deterrent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceConfig {
    /// Smallest steward list once the group has at least this many members.
    pub sn_min: u32,
    /// Largest steward list.
    pub sn_max: u32,
    /// Re-elections within one epoch before the deadlock emergency proposal (Layer 3).
    pub max_reelection_attempts: u32,
    /// How long each steward in the rotation has to commit before the next one may.
    pub commit_inactivity: Duration,
    /// The same during recovery mode (Layer 3), where every member is in the rotation.
    pub recovery_inactivity: Duration,
    /// How long a member waits for an earlier one to open a due proposal before it does.
    pub voting_inactivity: Duration,
    /// How long a member collects commit candidates after the first valid one.
    pub candidate_window: Duration,
    /// Score of a member with no history; also the highest score.
    pub default_peer_score: i64,
    /// A member at or below this score is proposed for removal.
    pub threshold_peer_score: i64,
    /// Added to a committer's score for a commit the group applied.
    pub commit_reward: i64,
    /// Taken from each steward walked past because its commit slot passed without a commit
    /// the group applied (silent, censoring, equivocating or broken).
    pub slot_failure_penalty: i64,
    /// Added to the creator of an emergency proposal finalized YES.
    pub ecp_yes_reward: i64,
    /// Taken from the creator of an emergency proposal finalized NO.
    pub ecp_no_penalty: i64,
    /// The single-steward protocol ("Single steward"): no election is ever held, so the
    /// creator stays the only steward.
    pub single_steward: bool,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            sn_min: 3,
            sn_max: 5,
            max_reelection_attempts: 3,
            commit_inactivity: Duration::from_secs(4),
            recovery_inactivity: Duration::from_secs(2),
            voting_inactivity: Duration::from_secs(3),
            candidate_window: Duration::from_secs(1),
            default_peer_score: 100,
            threshold_peer_score: 40,
            commit_reward: 5,
            slot_failure_penalty: 20,
            ecp_yes_reward: 5,
            ecp_no_penalty: 20,
            single_steward: true,
        }
    }
}

impl GovernanceConfig {
    /// The single-steward protocol ("Single steward"): no election is ever held, so the
    /// creator stays the only steward. The default (see [`GovernanceConfig::multi_steward`]).
    pub fn single_steward() -> Self {
        Self {
            single_steward: true,
            ..Self::default()
        }
    }

    /// Multi-steward governance with the default bounds, timers and scores: elections,
    /// rotation, acknowledgement rounds, re-election and recovery (docs/protocol.md §9).
    /// **Experimental:** the simulator still finds forks and stalls under Byzantine stewards
    /// combined with network faults (docs/performance.md, "Byzantine stewards").
    pub fn multi_steward() -> Self {
        Self {
            single_steward: false,
            ..Self::default()
        }
    }

    fn to_proto(&self) -> v1::GovernanceParams {
        let ms = |d: Duration| d.as_millis() as u64;
        v1::GovernanceParams {
            sn_min: self.sn_min,
            sn_max: self.sn_max,
            max_reelection_attempts: self.max_reelection_attempts,
            commit_inactivity_ms: ms(self.commit_inactivity),
            recovery_inactivity_ms: ms(self.recovery_inactivity),
            voting_inactivity_ms: ms(self.voting_inactivity),
            candidate_window_ms: ms(self.candidate_window),
            default_peer_score: self.default_peer_score,
            threshold_peer_score: self.threshold_peer_score,
            commit_reward: self.commit_reward,
            slot_failure_penalty: self.slot_failure_penalty,
            ecp_yes_reward: self.ecp_yes_reward,
            ecp_no_penalty: self.ecp_no_penalty,
            single_steward: self.single_steward,
        }
    }

    fn from_proto(p: &v1::GovernanceParams) -> Self {
        let d = Duration::from_millis;
        Self {
            sn_min: p.sn_min,
            sn_max: p.sn_max,
            max_reelection_attempts: p.max_reelection_attempts,
            commit_inactivity: d(p.commit_inactivity_ms),
            recovery_inactivity: d(p.recovery_inactivity_ms),
            voting_inactivity: d(p.voting_inactivity_ms),
            candidate_window: d(p.candidate_window_ms),
            default_peer_score: p.default_peer_score,
            threshold_peer_score: p.threshold_peer_score,
            commit_reward: p.commit_reward,
            slot_failure_penalty: p.slot_failure_penalty,
            ecp_yes_reward: p.ecp_yes_reward,
            ecp_no_penalty: p.ecp_no_penalty,
            single_steward: p.single_steward,
        }
    }
}

/// The election sort key of `member`: SHA256(epoch ‖ retry_round ‖ member id ‖ group id) with
/// epoch as u64 big-endian, retry_round as u32 big-endian, and the two ids each prefixed by
/// their u32 big-endian length (so no two (member, group) pairs share an input).
pub fn election_key(epoch: u64, retry_round: u32, member: &MemberId, group: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(epoch.to_be_bytes());
    h.update(retry_round.to_be_bytes());
    h.update((member.as_bytes().len() as u32).to_be_bytes());
    h.update(member.as_bytes());
    h.update((group.len() as u32).to_be_bytes());
    h.update(group);
    h.finalize().into()
}

/// `pool` sorted ascending by [`election_key`] (ties, which SHA-256 makes practically
/// impossible, by member id).
pub fn election_order(
    epoch: u64,
    retry_round: u32,
    group: &[u8],
    pool: &[MemberId],
) -> Vec<MemberId> {
    let mut keyed: Vec<([u8; 32], &MemberId)> = pool
        .iter()
        .map(|m| (election_key(epoch, retry_round, m, group), m))
        .collect();
    keyed.sort();
    keyed.dedup_by(|a, b| a.1 == b.1);
    keyed.into_iter().map(|(_, m)| m.clone()).collect()
}

/// The list sizes a valid election may have for a pool of `pool` candidates: exactly `pool`
/// when it is below `sn_min` ("the list size automatically adjusts to include all existing
/// members"), otherwise `sn_min..=min(sn_max, pool)`.
pub fn valid_sizes(pool: usize, config: &GovernanceConfig) -> std::ops::RangeInclusive<usize> {
    let (min, max) = (config.sn_min as usize, config.sn_max as usize);
    if pool < min {
        pool..=pool
    } else {
        min..=max.min(pool)
    }
}

/// The group's agreed governance state (the [`v1::GroupParams`] extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The steward list, in order. Never empty.
    pub stewards: Vec<MemberId>,
    /// The epoch whose epoch steward is `stewards[0]`.
    pub list_epoch: u64,
    /// The retry round of the election that produced the list.
    pub retry_round: u32,
    /// Group-wide parameters.
    pub config: GovernanceConfig,
    /// Scores that differ from the default.
    scores: BTreeMap<MemberId, i64>,
}

impl GroupState {
    /// The creator's state: itself as the sole steward from epoch 0.
    pub fn initial(creator: MemberId, config: GovernanceConfig) -> Self {
        Self {
            stewards: vec![creator],
            list_epoch: 0,
            retry_round: 0,
            config,
            scores: BTreeMap::new(),
        }
    }

    /// Parses and validates group parameters against the group's real `roster` (sorted): the
    /// scores must name members only and lie in range, and while a list exists at least one
    /// of its stewards must still be a member or the group could never commit.
    pub fn from_proto(p: v1::GroupParams, roster: &[MemberId]) -> Result<Self, Error> {
        let invalid = |what: &'static str| Error::InvalidGroupParams(what);
        let id = |b: Vec<u8>| MemberId::new(b).map_err(|_| invalid("invalid member id"));
        let config = GovernanceConfig::from_proto(
            p.governance
                .as_ref()
                .ok_or(invalid("no governance parameters"))?,
        );
        if config.threshold_peer_score >= config.default_peer_score {
            return Err(invalid("score threshold at or above the default score"));
        }
        let stewards = p
            .stewards
            .into_iter()
            .map(id)
            .collect::<Result<Vec<_>, _>>()?;
        let mut scores = BTreeMap::new();
        for s in p.scores {
            let member = id(s.member)?;
            if roster.binary_search(&member).is_err() {
                return Err(invalid("score of a non-member"));
            }
            if s.score >= config.default_peer_score {
                return Err(invalid("score at or above the default is not stored"));
            }
            scores.insert(member, s.score);
        }
        if !stewards.iter().any(|s| roster.binary_search(s).is_ok()) {
            return Err(invalid("no steward is a member"));
        }
        Ok(Self {
            stewards,
            list_epoch: p.list_epoch,
            retry_round: p.retry_round,
            config,
            scores,
        })
    }

    /// The extension's value.
    pub fn to_proto(&self) -> v1::GroupParams {
        v1::GroupParams {
            stewards: self
                .stewards
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            list_epoch: self.list_epoch,
            retry_round: self.retry_round,
            governance: Some(self.config.to_proto()),
            scores: self
                .scores
                .iter()
                .map(|(m, s)| v1::PeerScore {
                    member: m.as_bytes().to_vec(),
                    score: *s,
                })
                .collect(),
        }
    }

    /// `member`'s peer score.
    pub fn score(&self, member: &MemberId) -> i64 {
        self.scores
            .get(member)
            .copied()
            .unwrap_or(self.config.default_peer_score)
    }

    /// Every score that differs from the default, ascending by member.
    pub fn scores(&self) -> &BTreeMap<MemberId, i64> {
        &self.scores
    }

    /// Whether `member`'s score is at or below the removal threshold.
    pub fn below_threshold(&self, member: &MemberId) -> bool {
        self.score(member) <= self.config.threshold_peer_score
    }

    /// The rotation of epoch `epoch` ("Layer 1"): the stewards from the epoch steward
    /// (index `epoch - list_epoch`, cyclically) onwards through the whole list, keeping those
    /// eligible — members of `roster` (sorted). Position 0 is the epoch steward, 1 the backup.
    /// A list whose epochs are used up keeps rotating until an elected list replaces it
    /// (docs/protocol.md §9), so the group always has a committer.
    pub fn walk(&self, epoch: u64, roster: &[MemberId]) -> Vec<MemberId> {
        let len = self.stewards.len();
        let start = (epoch.saturating_sub(self.list_epoch) % len as u64) as usize;
        let mut walk: Vec<MemberId> = Vec::with_capacity(len);
        for i in 0..len {
            let s = &self.stewards[(start + i) % len];
            if roster.binary_search(s).is_ok() && !walk.contains(s) {
                walk.push(s.clone());
            }
        }
        walk
    }

    /// Whether `epoch` is the last epoch of the list or past it: a new election is due
    /// ("Once the active steward list has completed its assigned epochs").
    pub fn election_due(&self, epoch: u64) -> bool {
        !self.config.single_steward && epoch + 1 >= self.list_epoch + self.stewards.len() as u64
    }

    /// The candidate pool of an election: members of `roster` whose score is above the
    /// threshold (a member about to be proposed for removal is not eligible, Layer 2).
    pub fn candidate_pool(&self, roster: &[MemberId]) -> Vec<MemberId> {
        roster
            .iter()
            .filter(|m| !self.below_threshold(m))
            .cloned()
            .collect()
    }

    /// The list an honest member proposes: the first `min(pool, sn_max)` of the election
    /// order (the whole pool when it is below `sn_min`).
    pub fn honest_election(
        &self,
        epoch: u64,
        retry_round: u32,
        group: &[u8],
        roster: &[MemberId],
    ) -> Vec<MemberId> {
        let pool = self.candidate_pool(roster);
        let size = *valid_sizes(pool.len(), &self.config).end();
        let mut order = election_order(epoch, retry_round, group, &pool);
        order.truncate(size);
        order
    }

    /// Checks a proposed list against the rule over the real candidate pool: "Any proposal
    /// with a list that does not adhere to this generation method MUST be rejected".
    pub fn check_election(
        &self,
        epoch: u64,
        retry_round: u32,
        group: &[u8],
        roster: &[MemberId],
        proposed: &[MemberId],
    ) -> Result<(), Error> {
        if self.config.single_steward {
            return Err(Error::InvalidProposal(
                "no elections in a single-steward group",
            ));
        }
        if retry_round > self.config.max_reelection_attempts {
            return Err(Error::InvalidProposal(
                "retry round beyond the re-election limit",
            ));
        }
        let pool = self.candidate_pool(roster);
        if pool.is_empty() {
            return Err(Error::InvalidProposal("no eligible candidate"));
        }
        if !valid_sizes(pool.len(), &self.config).contains(&proposed.len()) {
            return Err(Error::InvalidProposal("steward list size out of range"));
        }
        let order = election_order(epoch, retry_round, group, &pool);
        if order[..proposed.len()] != *proposed {
            return Err(Error::InvalidProposal(
                "steward list does not follow the election order",
            ));
        }
        Ok(())
    }

    /// Installs an elected list, whose first steward is the epoch steward of `from_epoch`.
    pub fn install(&mut self, stewards: Vec<MemberId>, from_epoch: u64, retry_round: u32) {
        self.stewards = stewards;
        self.list_epoch = from_epoch;
        self.retry_round = retry_round;
    }

    /// Adds `delta` to `member`'s score, capped at the default.
    pub fn adjust(&mut self, member: &MemberId, delta: i64) {
        let score = self
            .score(member)
            .saturating_add(delta)
            .min(self.config.default_peer_score);
        if score == self.config.default_peer_score {
            self.scores.remove(member);
        } else {
            self.scores.insert(member.clone(), score);
        }
    }

    /// The score deltas of a commit by `committer` at rotation position `position` of `walk`:
    /// every steward before it in the walk failed its slot, the committer is rewarded
    /// ("score adjustments are derived from observable protocol events, such as successful
    /// commits"). Only stewards active in the epoch are touched ("Peer score updates MUST be
    /// performed only for stewards that are active in the current epoch context").
    pub fn score_commit(&mut self, walk: &[MemberId], committer: &MemberId) {
        if let Some(position) = walk.iter().position(|s| s == committer) {
            for skipped in &walk[..position] {
                self.adjust(skipped, -self.config.slot_failure_penalty);
            }
        }
        self.adjust(committer, self.config.commit_reward);
    }

    /// The state after a commit into epoch `epoch + 1` whose roster is `roster` (sorted):
    /// drops the scores of members no longer in it, and — when no steward of the list is
    /// left in it (a group that shrank to members outside the list) — installs the list the
    /// election rule gives over `roster` at retry round 0, so that the state stays valid
    /// ("at least one steward a member"). Without the latter, such a commit had invalid
    /// parameters at every member and the group could commit nothing for good (the
    /// simulator: `demls-sim --generated 77560150047408 --mode liveness`).
    pub fn retain_members(&mut self, epoch: u64, group: &[u8], roster: &[MemberId]) {
        self.scores.retain(|m, _| roster.binary_search(m).is_ok());
        if !self
            .stewards
            .iter()
            .any(|s| roster.binary_search(s).is_ok())
        {
            let list = self.honest_election(epoch, 0, group, roster);
            if !list.is_empty() {
                self.install(list, epoch + 1, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> Vec<MemberId> {
        (0..n)
            .map(|i| MemberId::new(vec![b'm', i]).unwrap())
            .collect()
    }

    #[test]
    fn a_commit_that_leaves_no_steward_in_the_group_installs_the_rules_list() {
        let members = ids(4);
        let config = GovernanceConfig::multi_steward();
        let mut state = GroupState::initial(members[0].clone(), config);
        state.install(vec![members[0].clone(), members[1].clone()], 3, 0);
        // A steward is still a member: the list stays.
        let mut kept = state.clone();
        kept.retain_members(5, b"g", &members[1..]);
        assert_eq!(kept.stewards, vec![members[0].clone(), members[1].clone()]);
        assert_eq!(kept.list_epoch, 3);
        // Neither steward is left: the rule's list over the members left, from the next epoch.
        let left = &members[2..];
        state.retain_members(5, b"g", left);
        assert_eq!(state.stewards, state.honest_election(5, 0, b"g", left));
        assert!(state.stewards.iter().all(|s| left.contains(s)));
        assert_eq!((state.list_epoch, state.retry_round), (6, 0));
    }

    #[test]
    fn election_order_is_a_permutation_sorted_by_key() {
        let pool = ids(20);
        let order = election_order(7, 1, b"group", &pool);
        assert_eq!(order.len(), 20);
        let keys: Vec<_> = order
            .iter()
            .map(|m| election_key(7, 1, m, b"group"))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, pool);
        // Another retry round, epoch or group shuffles differently.
        assert_ne!(order, election_order(7, 2, b"group", &pool));
        assert_ne!(order, election_order(8, 1, b"group", &pool));
        assert_ne!(order, election_order(7, 1, b"other", &pool));
    }

    #[test]
    fn election_key_matches_the_documented_encoding() {
        let m = MemberId::new(b"alice".to_vec()).unwrap();
        let mut input = Vec::new();
        input.extend_from_slice(&5u64.to_be_bytes());
        input.extend_from_slice(&2u32.to_be_bytes());
        input.extend_from_slice(&5u32.to_be_bytes());
        input.extend_from_slice(b"alice");
        input.extend_from_slice(&3u32.to_be_bytes());
        input.extend_from_slice(b"grp");
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(election_key(5, 2, &m, b"grp"), expected);
    }

    #[test]
    fn list_sizes_follow_sn_bounds() {
        let c = GovernanceConfig::multi_steward(); // 3..=5
        assert_eq!(valid_sizes(1, &c), 1..=1);
        assert_eq!(valid_sizes(2, &c), 2..=2);
        assert_eq!(valid_sizes(3, &c), 3..=3);
        assert_eq!(valid_sizes(4, &c), 3..=4);
        assert_eq!(valid_sizes(50, &c), 3..=5);
    }

    #[test]
    fn elections_that_break_the_rule_are_rejected() {
        let roster = ids(10);
        let state = GroupState::initial(roster[0].clone(), GovernanceConfig::multi_steward());
        let honest = state.honest_election(4, 0, b"g", &roster);
        assert_eq!(honest.len(), 5);
        state.check_election(4, 0, b"g", &roster, &honest).unwrap();
        // A prefix of valid size is fine; a reordering, a substitution, an outsider, a wrong
        // retry round or epoch, a too small or too large list are not.
        state
            .check_election(4, 0, b"g", &roster, &honest[..3])
            .unwrap();
        let mut swapped = honest.clone();
        swapped.swap(0, 1);
        assert!(state.check_election(4, 0, b"g", &roster, &swapped).is_err());
        let outsider = MemberId::new(b"zz".to_vec()).unwrap();
        let mut substituted = honest.clone();
        substituted[4] = outsider;
        assert!(state
            .check_election(4, 0, b"g", &roster, &substituted)
            .is_err());
        assert!(state.check_election(4, 1, b"g", &roster, &honest).is_err());
        assert!(state.check_election(5, 0, b"g", &roster, &honest).is_err());
        assert!(state
            .check_election(4, 0, b"g", &roster, &honest[..2])
            .is_err());
        let six = election_order(4, 0, b"g", &roster)[..6].to_vec();
        assert!(state.check_election(4, 0, b"g", &roster, &six).is_err());
        assert!(state.check_election(4, 9, b"g", &roster, &honest).is_err());
    }

    #[test]
    fn members_below_threshold_are_not_candidates() {
        let roster = ids(6);
        let mut state = GroupState::initial(roster[0].clone(), GovernanceConfig::multi_steward());
        let order = election_order(2, 0, b"g", &roster);
        let first = order[0].clone();
        state.adjust(&first, -70);
        assert!(state.below_threshold(&first));
        let list = state.honest_election(2, 0, b"g", &roster);
        assert!(!list.contains(&first));
        // A list that keeps the ineligible member is refused.
        assert!(state
            .check_election(2, 0, b"g", &roster, &order[..5])
            .is_err());
    }

    #[test]
    fn walk_rotates_from_the_epoch_steward_past_non_members() {
        let roster = ids(5);
        let mut state = GroupState::initial(roster[0].clone(), GovernanceConfig::multi_steward());
        state.install(roster[..4].to_vec(), 10, 0);
        assert_eq!(state.walk(10, &roster), roster[..4].to_vec());
        assert_eq!(
            state.walk(12, &roster),
            vec![
                roster[2].clone(),
                roster[3].clone(),
                roster[0].clone(),
                roster[1].clone()
            ]
        );
        // A removed steward is walked past.
        let without: Vec<MemberId> = roster
            .iter()
            .filter(|m| **m != roster[2])
            .cloned()
            .collect();
        assert_eq!(state.walk(12, &without)[0], roster[3]);
        // The list keeps rotating once used up.
        assert_eq!(state.walk(14, &roster)[0], roster[0]);
        assert!(!state.election_due(11));
        assert!(state.election_due(13));
    }

    #[test]
    fn commit_scores_penalise_skipped_stewards_and_cap_at_default() {
        let roster = ids(4);
        let mut state = GroupState::initial(roster[0].clone(), GovernanceConfig::multi_steward());
        state.score_commit(&roster[..3], &roster[2]);
        assert_eq!(state.score(&roster[0]), 80);
        assert_eq!(state.score(&roster[1]), 80);
        assert_eq!(state.score(&roster[2]), 100); // capped
        state.score_commit(&roster[..3], &roster[0]);
        assert_eq!(state.score(&roster[0]), 85);
        let p = state.to_proto();
        assert_eq!(p.scores.len(), 2);
        assert_eq!(GroupState::from_proto(p, &roster).unwrap(), state);
    }

    #[test]
    fn params_from_the_wire_are_checked_against_the_roster() {
        let roster = ids(3);
        let mut state = GroupState::initial(roster[0].clone(), GovernanceConfig::multi_steward());
        state.adjust(&roster[1], -10);
        let good = state.to_proto();
        assert!(GroupState::from_proto(good.clone(), &roster).is_ok());
        // A score for a non-member.
        let mut p = good.clone();
        p.scores.push(v1::PeerScore {
            member: b"zz".to_vec(),
            score: 1,
        });
        assert!(GroupState::from_proto(p, &roster).is_err());
        // No steward in the roster.
        let mut p = good.clone();
        p.stewards = vec![b"zz".to_vec()];
        assert!(GroupState::from_proto(p, &roster).is_err());
        // A stored default score (not canonical).
        let mut p = good;
        p.scores[0].score = 100;
        assert!(GroupState::from_proto(p, &roster).is_err());
    }
}
