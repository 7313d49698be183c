//! How a handler is run: its error policy, batching and checkpoints.

use super::StartFrom;
use std::time::Duration;

/// What the runner does when a handler fails on an event.
///
/// A failing event is retried with a bounded, jittered exponential backoff
/// up to [`max_attempts`](Self::retry) times; then the handler either
/// [skips](Self::then_skip) it (recorded in its status and logged at
/// `error`, never silent) or [stops](Self::then_stop) before it, keeping its
/// checkpoint so that a restart tries the event again. An event that cannot
/// be decoded is not retried: the give-up action applies at once.
///
/// The default retries 10 times, from 100 ms up to 10 s apart, then stops.
///
/// ```
/// use annals::handler::ErrorPolicy;
/// use std::time::Duration;
/// let lenient = ErrorPolicy::retry(3)
///     .backoff(Duration::from_millis(10), Duration::from_secs(1))
///     .then_skip();
/// assert_eq!(lenient.max_attempts(), 3);
/// assert!(ErrorPolicy::default().stops());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPolicy {
    attempts: u32,
    first_backoff: Duration,
    max_backoff: Duration,
    skip: bool,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        Self::retry(10)
    }
}

impl ErrorPolicy {
    /// Tries a failing event up to `max_attempts` times in all (at least
    /// once), then stops.
    pub fn retry(max_attempts: u32) -> Self {
        Self {
            attempts: max_attempts.max(1),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            skip: false,
        }
    }

    /// Skips a failing event at once.
    pub fn skip() -> Self {
        Self::retry(1).then_skip()
    }

    /// Stops at a failing event at once.
    pub fn stop() -> Self {
        Self::retry(1)
    }

    /// The pause before the first retry, doubling up to `max` (each pause
    /// is a random time up to that bound).
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// After the last attempt, skip the event and go on.
    pub fn then_skip(mut self) -> Self {
        self.skip = true;
        self
    }

    /// After the last attempt, stop the handler before the event.
    pub fn then_stop(mut self) -> Self {
        self.skip = false;
        self
    }

    /// How many times an event is tried at most.
    pub fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether the handler stops (rather than skips) after the last attempt.
    pub fn stops(&self) -> bool {
        !self.skip
    }

    /// The pause before retry number `retry` (1 for the first retry).
    pub(crate) fn pause(&self, retry: u32) -> Duration {
        let doubling = 1u32 << retry.saturating_sub(1).min(20);
        let bound = self
            .first_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff);
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        // Half fixed, half random: never zero, spread among handlers.
        Duration::from_nanos(nanos / 2 + crate::app::ids::random() % (nanos / 2 + 1))
    }
}

/// The default [`HandlerOptions::batch_size`]: the filtered reads' scan
/// window, so a page of a handler that wants every event is a whole window.
const DEFAULT_BATCH: usize = 4096;

/// How the [`App`](crate::App) runs one handler.
///
/// ```
/// use annals::handler::{ErrorPolicy, HandlerOptions};
/// use std::time::Duration;
/// let options = HandlerOptions::new()
///     .on_error(ErrorPolicy::skip())
///     .checkpoint_every(500, Duration::from_millis(200));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct HandlerOptions {
    pub(crate) policy: ErrorPolicy,
    pub(crate) batch: usize,
    pub(crate) checkpoint_events: u64,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) start_from: Option<StartFrom>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) strong: bool,
}

impl Default for HandlerOptions {
    fn default() -> Self {
        Self {
            policy: ErrorPolicy::default(),
            batch: DEFAULT_BATCH,
            checkpoint_events: 1_000,
            checkpoint_interval: Duration::from_millis(500),
            start_from: None,
            concurrency: None,
            strong: false,
        }
    }
}

impl HandlerOptions {
    /// The defaults: [`ErrorPolicy::default`], pages of up to 4,096 events
    /// (see [`batch_size`](Self::batch_size)), a checkpoint after 1,000
    /// events or 500 ms, whichever comes first, and whenever the handler is
    /// idle or stops.
    pub fn new() -> Self {
        Self::default()
    }

    /// What happens when the handler fails on an event.
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How many events are read from the store at once, at most (at least 1;
    /// default 4,096). A read scans 4,096 positions of the log, or this many
    /// if more, and returns the events the handler wants among them: larger
    /// pages mean fewer reads and status updates per event during catch-up
    /// (PostgreSQL catch-up at 4,096 ran at 1.4-1.5x the speed at 500, see
    /// docs/BENCHMARKS.md), at the price of up to twice this many decoded
    /// events in memory per handler while it catches up (the next page is
    /// read while one is handled); live pages are small either way. A
    /// projection applies each page in one transaction.
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }

    /// Checkpoint after this many handled events or this long since the
    /// last checkpoint, whichever comes first. After a crash, at most this
    /// many events are handled again.
    pub fn checkpoint_every(mut self, events: u64, interval: Duration) -> Self {
        self.checkpoint_events = events.max(1);
        self.checkpoint_interval = interval;
        self
    }

    /// Overrides the handler's declared [`StartFrom`].
    pub fn start_from(mut self, start: StartFrom) -> Self {
        self.start_from = Some(start);
        self
    }

    /// Makes the handler strongly consistent: a dispatch with
    /// [`DispatchOptions::strongly_consistent`](crate::DispatchOptions::strongly_consistent)
    /// returns only after it handled the command's events.
    pub fn strongly_consistent(mut self) -> Self {
        self.strong = true;
        self
    }

    /// Overrides the handler's declared concurrency (at least 1).
    pub fn concurrency(mut self, tasks: usize) -> Self {
        self.concurrency = Some(tasks.max(1));
        self
    }
}
