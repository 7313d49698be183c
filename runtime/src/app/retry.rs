//! What a command does when another writer changed its stream first.
//!
//! The first attempt is optimistic: no lock, the store's expected-version
//! check catches a race. After a conflict the command takes the store's
//! advisory lock on the stream ([`EventStore::lock_stream`]), catches up and
//! tries again; writers that keep colliding then take turns instead of
//! starving each other. The holder retries at once when a writer that does
//! not lock (yet) got in first: it is its turn, and pausing would let such a
//! writer win again and again. Without the lock (turned off, or the store
//! could not give it) a retry backs off for a random, growing time. A stream
//! that saw a conflict stays *contended* for the next few commands, which take
//! the lock before their first attempt.
//!
//! [`EventStore::lock_stream`]: crate::EventStore::lock_stream

use super::ids::random;
use std::time::Duration;

/// How a command retries after another writer changed its stream in between.
///
/// ```
/// use annals::{App, MemoryStore, RetryPolicy};
/// use std::time::Duration;
/// let app = App::builder()
///     .store(MemoryStore::new())
///     .retry(RetryPolicy::default().max_attempts(20).backoff(Duration::from_millis(2), Duration::from_millis(200)))
///     .build()
///     .unwrap();
/// # drop(app);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) lock_stream: bool,
    pub(crate) contended_commands: u32,
}

impl Default for RetryPolicy {
    /// 10 attempts; backoff from up to 1 ms, doubling to at most 100 ms; the
    /// stream lock after a conflict, kept for the next 32 commands.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(100),
            lock_stream: true,
            contended_commands: 32,
        }
    }
}

impl RetryPolicy {
    /// How many times a command is tried at most (at least 1; default 10);
    /// then [`DispatchError::Conflict`](crate::DispatchError::Conflict).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff before a retry without the stream lock: a random time up
    /// to `base`, doubling with each attempt, never above `max` (defaults
    /// 1 ms and 100 ms).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// Whether a command takes the store's stream lock after a conflict
    /// (default `true`). Without it, contending writers rely on backoff alone.
    pub fn lock_stream(mut self, on: bool) -> Self {
        self.lock_stream = on;
        self
    }

    /// How many commands after a conflict take the stream lock before their
    /// first attempt (default 32; 0 to lock only after a conflict).
    pub fn contended_commands(mut self, commands: u32) -> Self {
        self.contended_commands = commands;
        self
    }

    /// The pause before retry number `retry` (1 for the first retry): full
    /// jitter, so that writers backing off together spread out.
    pub(crate) fn pause(&self, retry: u32) -> Duration {
        let ceiling = self
            .backoff_base
            .saturating_mul(1 << retry.saturating_sub(1).min(20))
            .min(self.backoff_max);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random() % (nanos + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_are_capped_and_spread() {
        let policy =
            RetryPolicy::default().backoff(Duration::from_millis(1), Duration::from_millis(8));
        for retry in 1..40 {
            let ceiling = Duration::from_millis(1 << (retry - 1).min(3));
            let pauses: Vec<_> = (0..200).map(|_| policy.pause(retry)).collect();
            assert!(pauses.iter().all(|p| *p <= ceiling), "retry {retry}");
            // Jittered: not all the same, and some well below the ceiling.
            assert!(pauses.iter().any(|p| *p < ceiling / 2), "retry {retry}");
            assert!(pauses.iter().any(|p| *p > ceiling / 2), "retry {retry}");
        }
        let none = RetryPolicy::default().backoff(Duration::ZERO, Duration::ZERO);
        assert_eq!(none.pause(3), Duration::ZERO);
    }
}
