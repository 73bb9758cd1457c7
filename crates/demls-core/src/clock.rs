//! Time as an input. The host passes `now: Instant` with every call; protocol timestamps
//! (signed into proposals and votes, key-package lifetimes) are *derived*: the Unix time given
//! at construction plus the time elapsed since the construction `Instant` (BRIEF §3).

use std::time::{Duration, Instant};

use demls_consensus::Timestamp;

/// Maps the host's monotonic clock to derived Unix time, and never lets it go backwards.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    start_unix_ms: u64,
    latest: Instant,
}

impl Clock {
    pub(crate) fn new(start: Instant, start_unix_ms: u64) -> Self {
        Self {
            start,
            start_unix_ms,
            latest: start,
        }
    }

    /// Records `now` and returns it, clamped so that time never goes backwards.
    pub(crate) fn advance(&mut self, now: Instant) -> Instant {
        self.latest = self.latest.max(now);
        self.latest
    }

    /// The latest time seen.
    pub(crate) fn now(&self) -> Instant {
        self.latest
    }

    /// Derived Unix milliseconds at `at`.
    pub(crate) fn unix_ms(&self, at: Instant) -> Timestamp {
        let elapsed = at.saturating_duration_since(self.start);
        Timestamp(
            self.start_unix_ms
                .saturating_add(elapsed.as_millis() as u64),
        )
    }

    /// The `Instant` at which derived Unix time reaches `t` (or the start, if earlier).
    pub(crate) fn instant_of(&self, t: Timestamp) -> Instant {
        self.start + Duration::from_millis(t.0.saturating_sub(self.start_unix_ms))
    }

    /// The construction `Instant`: the origin of snapshot times.
    pub(crate) fn origin(&self) -> Instant {
        self.start
    }

    /// Derived Unix milliseconds at the origin.
    pub(crate) fn start_unix_ms(&self) -> u64 {
        self.start_unix_ms
    }
}
