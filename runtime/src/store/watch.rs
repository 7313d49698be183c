//! The wake-up signal readers of the global log wait on.

use std::time::Duration;
use tokio::sync::watch;

/// A wake-up signal for a reader of the global log, from
/// [`EventStore::watch_log`](crate::EventStore::watch_log).
///
/// Call [`mark`](Self::mark) before reading, and
/// [`changed().await`](Self::changed) after a read found nothing new. It
/// resolves when the store may have new events (an append through this
/// store, a PostgreSQL `NOTIFY` from another process), or after the store's
/// [poll interval](Self::poll_interval) at the latest, so a reader never
/// sleeps forever on a write it could not hear of (another process appending
/// to the same SQLite file). A store that looks for such writes itself
/// (PostgreSQL: one look at the head per store) gives a
/// [watched](Self::watched) watch instead, which resolves only when woken,
/// so idle readers read nothing. A signal between `mark` and `changed` is not
/// lost: `changed` then resolves at once. A wake-up says only that there
/// *may* be something new; read again to find out.
///
/// `changed` needs a Tokio runtime with its timer.
///
/// ```
/// use annals::{EventStore, MemoryStore, NewEvent, Payload, StreamId, ExpectedVersion, WakeCause};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), annals::StoreError> {
/// let store = MemoryStore::new();
/// let mut watch = store.watch_log();
/// let mut next = 1;
///
/// watch.mark();
/// assert!(store.read_all(next, 100).await?.is_empty());
/// // Another task appends between our read and our wait: the wake-up is kept.
/// let event = NewEvent::new("Opened", 1, Payload::from_json("{}").unwrap());
/// store.append(&StreamId::new("Account-1"), ExpectedVersion::NoStream, vec![event]).await?;
/// assert_eq!(watch.changed().await, WakeCause::Signal);
///
/// watch.mark();
/// let page = store.read_all(next, 100).await?;
/// next = page.last().unwrap().global_position + 1;
/// assert_eq!(next, 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LogWatch {
    /// `None`: polling only (no signal, or its sender is gone).
    signal: Option<watch::Receiver<u64>>,
    poll_interval: Duration,
    /// Whether the store polls for its watchers (see [`LogWatch::watched`]).
    watched: bool,
}

/// Why [`LogWatch::changed`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeCause {
    /// The store signalled that it may have new events.
    Signal,
    /// The poll interval passed without a signal: look anyway, for writes
    /// the store cannot hear of.
    PollInterval,
}

impl LogWatch {
    /// The poll interval of the [default](crate::EventStore::watch_log)
    /// `watch_log` and of the in-memory store: 500 ms.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

    /// A watch woken by `signal` (any new value sent on it means "look
    /// again"), and after `poll_interval` at the latest: for stores.
    pub fn new(signal: watch::Receiver<u64>, poll_interval: Duration) -> Self {
        Self {
            signal: Some(signal),
            poll_interval,
            watched: false,
        }
    }

    /// A watch woken by `signal` only, for a store that itself looks for
    /// writes it could not hear of, every `poll_interval`, and signals when
    /// it finds one: its readers then do not each poll, and read nothing
    /// while nothing moved. If the signal's sender goes, the watch polls.
    pub fn watched(signal: watch::Receiver<u64>, poll_interval: Duration) -> Self {
        Self {
            signal: Some(signal),
            poll_interval,
            watched: true,
        }
    }

    /// A watch that only waits out `poll_interval`: for a store that cannot
    /// tell when it has new events.
    pub fn polling(poll_interval: Duration) -> Self {
        Self {
            signal: None,
            poll_interval,
            watched: false,
        }
    }

    /// How long a write the store cannot signal at once may go unnoticed:
    /// the longest [`changed`](Self::changed) waits, or for a
    /// [watched](Self::watched) watch, how often the store looks.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// Marks every signal so far as seen: call it before reading the log.
    pub fn mark(&mut self) {
        if let Some(signal) = &mut self.signal {
            signal.borrow_and_update();
        }
    }

    /// Waits for a signal since the last [`mark`](Self::mark) (returning at
    /// once if one came already), or for the poll interval to pass.
    pub async fn changed(&mut self) -> WakeCause {
        let deadline = tokio::time::Instant::now() + self.poll_interval;
        if self.watched
            && let Some(signal) = &mut self.signal
        {
            if signal.changed().await.is_ok() {
                return WakeCause::Signal;
            }
            // The store is gone: nothing will signal again, so poll.
            self.signal = None;
        }
        if let Some(signal) = &mut self.signal {
            match tokio::time::timeout_at(deadline, signal.changed()).await {
                Ok(Ok(())) => return WakeCause::Signal,
                Err(_elapsed) => return WakeCause::PollInterval,
                // The store is gone: nothing will signal again, so poll.
                Ok(Err(_closed)) => self.signal = None,
            }
        }
        tokio::time::sleep_until(deadline).await;
        WakeCause::PollInterval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    /// A signal sent before `changed` is called is kept; `mark` forgets it.
    #[tokio::test(start_paused = true)]
    async fn a_signal_between_mark_and_changed_is_kept() {
        let (signal, receiver) = watch::channel(0);
        let mut watch = LogWatch::new(receiver, Duration::from_secs(1));
        watch.mark();
        signal.send_replace(1);
        let started = Instant::now();
        assert_eq!(watch.changed().await, WakeCause::Signal);
        assert_eq!(started.elapsed(), Duration::ZERO);
        signal.send_replace(2);
        watch.mark();
        assert_eq!(watch.changed().await, WakeCause::PollInterval);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    /// Once the store that signalled is gone, the watch polls: it neither
    /// returns at once forever nor waits forever.
    #[tokio::test(start_paused = true)]
    async fn a_watch_whose_store_is_gone_polls() {
        let (signal, receiver) = watch::channel(0);
        let mut watch = LogWatch::new(receiver, Duration::from_millis(100));
        drop(signal);
        let started = Instant::now();
        for round in 1..=3 {
            watch.mark();
            assert_eq!(watch.changed().await, WakeCause::PollInterval);
            assert_eq!(started.elapsed(), Duration::from_millis(100) * round);
        }
    }
}
