//! The decision rule (BRIEF §5; consensus-hashgraphlike.md "Liveness", "Equality of votes",
//! "Silent Node Management"). Pure functions of the tally; the truth table is in
//! `docs/protocol.md` and in the known-answer vectors.
//!
//! Let `n` be the roster size, `yes`/`no` the counted votes and `silent = n - yes - no`.
//! At the deadline every silent voter is counted per the liveness flag, so all `n` are counted
//! and the outcome is a function of the final YES count `y`:
//!
//! * `n <= 2`: YES iff `y == n` (unanimity), else NO;
//! * `n >= 3`: YES iff `2y > n`, NO iff `2y < n`, and a tie (`2y == n`) follows the tie policy
//!   (Reject → NO, Retry → [`Outcome::Retry`]).
//!
//! That function is monotone in `y`. Whatever the outstanding votes turn out to be, `y` ends in
//! `[yes, yes + silent]`, so a decision is *safe early* iff the outcome is the same at both ends
//! of that interval; an early YES additionally needs a quorum of `⌈2n/3⌉` distinct voters
//! (spec: "more than n/2 … among at least 2n/3 distinct peers"). More votes only shrink the
//! interval and grow the voter count, so an early decision never changes and always equals the
//! decision at the deadline. The rule reads only the counts, so it cannot depend on the order in
//! which votes arrived.

use crate::types::TiePolicy;

/// The result of a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Rejected (including a tie under [`TiePolicy::Reject`]).
    No,
    /// A tie under [`TiePolicy::Retry`]: the application should re-run the vote.
    Retry,
    /// Approved.
    Yes,
}

/// Counted votes on one proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tally {
    /// Roster size `n` at the proposal's epoch.
    pub electorate: u32,
    /// Counted YES votes.
    pub yes: u32,
    /// Counted NO votes.
    pub no: u32,
}

impl Tally {
    /// Voters not yet heard from.
    pub fn silent(&self) -> u32 {
        self.electorate - self.yes - self.no
    }

    /// Distinct voters heard from.
    pub fn voters(&self) -> u32 {
        self.yes + self.no
    }
}

/// `⌈2n/3⌉`: the distinct voters an early YES needs.
pub fn quorum(electorate: u32) -> u32 {
    (2 * u64::from(electorate)).div_ceil(3) as u32
}

/// The outcome when all `n` voters are counted and `yes_total` of them are YES.
fn outcome_when_all_counted(electorate: u32, yes_total: u32, tie: TiePolicy) -> Outcome {
    let (y, n) = (u64::from(yes_total), u64::from(electorate));
    if n <= 2 {
        return if y == n { Outcome::Yes } else { Outcome::No };
    }
    match (2 * y).cmp(&n) {
        std::cmp::Ordering::Greater => Outcome::Yes,
        std::cmp::Ordering::Less => Outcome::No,
        std::cmp::Ordering::Equal => match tie {
            TiePolicy::Reject => Outcome::No,
            TiePolicy::Retry => Outcome::Retry,
        },
    }
}

/// The decision before the deadline, if no set of outstanding votes can change it.
///
/// Monotone: if this returns `Some(o)` for a tally, it returns `Some(o)` for every tally with
/// at least as many YES and at least as many NO votes, and [`deadline_decision`] returns `o`
/// for every such tally and either liveness flag.
pub fn early_decision(t: Tally, tie: TiePolicy) -> Option<Outcome> {
    debug_assert!(t.yes + t.no <= t.electorate);
    let low = outcome_when_all_counted(t.electorate, t.yes, tie);
    let high = outcome_when_all_counted(t.electorate, t.yes + t.silent(), tie);
    if low != high {
        return None;
    }
    if low == Outcome::Yes && t.electorate > 2 && t.voters() < quorum(t.electorate) {
        return None;
    }
    Some(low)
}

/// The decision at the deadline: silent voters count as YES when `silent_counts_as_yes`,
/// else as NO.
pub fn deadline_decision(t: Tally, silent_counts_as_yes: bool, tie: TiePolicy) -> Outcome {
    let yes_total = if silent_counts_as_yes {
        t.yes + t.silent()
    } else {
        t.yes
    };
    outcome_when_all_counted(t.electorate, yes_total, tie)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u32, yes: u32, no: u32) -> Tally {
        Tally {
            electorate: n,
            yes,
            no,
        }
    }

    #[test]
    fn quorum_is_ceiling_of_two_thirds() {
        let q: Vec<u32> = (1..=10).map(quorum).collect();
        assert_eq!(q, vec![1, 2, 2, 3, 4, 4, 5, 6, 6, 7]);
    }

    #[test]
    fn single_member_decides_on_own_vote() {
        assert_eq!(
            early_decision(t(1, 1, 0), TiePolicy::Reject),
            Some(Outcome::Yes)
        );
        assert_eq!(
            early_decision(t(1, 0, 1), TiePolicy::Reject),
            Some(Outcome::No)
        );
    }

    #[test]
    fn two_members_need_unanimity() {
        assert_eq!(early_decision(t(2, 1, 0), TiePolicy::Retry), None);
        assert_eq!(
            early_decision(t(2, 2, 0), TiePolicy::Retry),
            Some(Outcome::Yes)
        );
        assert_eq!(
            early_decision(t(2, 1, 1), TiePolicy::Retry),
            Some(Outcome::No)
        );
        // At the deadline the silent peer counts per the liveness flag.
        assert_eq!(
            deadline_decision(t(2, 1, 0), true, TiePolicy::Retry),
            Outcome::Yes
        );
        assert_eq!(
            deadline_decision(t(2, 1, 0), false, TiePolicy::Retry),
            Outcome::No
        );
    }

    #[test]
    fn early_yes_needs_majority_and_quorum() {
        // n = 10: 6 YES is a majority of n, but only 6 < 7 distinct voters.
        assert_eq!(early_decision(t(10, 6, 0), TiePolicy::Reject), None);
        assert_eq!(
            early_decision(t(10, 6, 1), TiePolicy::Reject),
            Some(Outcome::Yes)
        );
        // 5 YES of 10 is not a majority even with everyone voting.
        assert_eq!(early_decision(t(10, 5, 4), TiePolicy::Reject), None);
    }

    #[test]
    fn early_no_when_yes_is_impossible() {
        // n = 10, 6 NO: at most 4 YES.
        assert_eq!(
            early_decision(t(10, 1, 6), TiePolicy::Retry),
            Some(Outcome::No)
        );
        // 5 NO: at most 5 YES = tie. Reject makes it NO; Retry leaves it open.
        assert_eq!(
            early_decision(t(10, 1, 5), TiePolicy::Reject),
            Some(Outcome::No)
        );
        assert_eq!(early_decision(t(10, 1, 5), TiePolicy::Retry), None);
    }

    #[test]
    fn tie_follows_the_policy() {
        assert_eq!(
            early_decision(t(4, 2, 2), TiePolicy::Retry),
            Some(Outcome::Retry)
        );
        assert_eq!(
            early_decision(t(4, 2, 2), TiePolicy::Reject),
            Some(Outcome::No)
        );
        assert_eq!(
            deadline_decision(t(4, 2, 1), false, TiePolicy::Retry),
            Outcome::Retry
        );
    }

    #[test]
    fn liveness_flag_applies_only_at_the_deadline() {
        // 3 of 10 YES and 7 silent: not decidable early under either flag ...
        assert_eq!(early_decision(t(10, 3, 0), TiePolicy::Reject), None);
        // ... but at the deadline the flag decides.
        assert_eq!(
            deadline_decision(t(10, 3, 0), true, TiePolicy::Reject),
            Outcome::Yes
        );
        assert_eq!(
            deadline_decision(t(10, 3, 0), false, TiePolicy::Reject),
            Outcome::No
        );
    }

    #[test]
    fn early_decisions_agree_with_every_completion() {
        // Exhaustive for small n: whenever an early decision exists, every completion of the
        // outstanding votes, under both flags, gives the same outcome at the deadline.
        for n in 1..=12u32 {
            for tie in [TiePolicy::Reject, TiePolicy::Retry] {
                for yes in 0..=n {
                    for no in 0..=n - yes {
                        let Some(early) = early_decision(t(n, yes, no), tie) else {
                            continue;
                        };
                        for more_yes in 0..=n - yes - no {
                            for more_no in 0..=n - yes - no - more_yes {
                                let later = t(n, yes + more_yes, no + more_no);
                                assert_eq!(early_decision(later, tie), Some(early));
                                for flag in [true, false] {
                                    assert_eq!(deadline_decision(later, flag, tie), early);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
