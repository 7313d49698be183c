//! Advisory stream locks ([`EventStore::lock_stream`](super::EventStore::lock_stream)).

use super::StreamId;
use parking_lot::Mutex;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A stream held by one caller among the store's lockers; dropping it lets
/// the next one in. From [`EventStore::lock_stream`](super::EventStore::lock_stream).
#[must_use = "the stream is released as soon as the lock is dropped"]
pub struct StreamLock {
    guard: Option<Box<dyn Any + Send + Sync>>,
    check: Option<LockCheck>,
    /// The store's session the lock lives in, and its generation when taken.
    session: Option<(tokio::sync::watch::Receiver<u64>, u64)>,
}

/// How a store tells whether a lock it gave is still held.
type LockCheck = Box<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

impl StreamLock {
    /// A lock held by `guard` (for stores): dropping the lock drops the guard,
    /// which must release the stream.
    pub fn new(guard: impl Any + Send + Sync) -> Self {
        Self {
            guard: Some(Box::new(guard)),
            check: None,
            session: None,
        }
    }

    /// Gives the lock a way to tell whether it is still held (for stores
    /// whose locks can be lost: a PostgreSQL session lock ends with its
    /// connection). See [`still_held`](Self::still_held).
    pub fn with_check(
        mut self,
        check: impl Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Box::new(check));
        self
    }

    /// Ties the lock to a session of the store's that can end (for stores
    /// that keep many locks on one connection): the lock is held while
    /// `session` reads `generation`. The store sends another value (or
    /// drops the sender) when the session ends, which ends every lock taken
    /// in it at once, and wakes their [`lost`](Self::lost) waiters.
    pub fn with_session(
        mut self,
        session: tokio::sync::watch::Receiver<u64>,
        generation: u64,
    ) -> Self {
        self.session = Some((session, generation));
        self
    }

    /// Whether the stream is still this caller's: `false` once the store
    /// knows the lock was lost (on PostgreSQL, when the connection holding
    /// it ended: a network failure, a server restart, a pooler). Locks that
    /// cannot be lost are always held.
    pub async fn still_held(&self) -> bool {
        if let Some((session, generation)) = &self.session
            && (session.has_changed().is_err() || *session.borrow() != *generation)
        {
            return false;
        }
        match &self.check {
            Some(check) => check().await,
            None => true,
        }
    }

    /// Resolves once the store knows the lock was lost (see
    /// [`still_held`](Self::still_held)); never for a lock that cannot be
    /// lost. A lock [tied to a session](Self::with_session) hears of it at
    /// once; one with only a [check](Self::with_check) runs it every second.
    pub async fn lost(&self) {
        if let Some((session, generation)) = &self.session {
            let mut session = session.clone();
            // An error: the session's sender is gone, and the lock with it.
            let _ = session.wait_for(|g| g != generation).await;
            return;
        }
        if self.check.is_none() {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if !self.still_held().await {
                return;
            }
        }
    }

    /// A lock that excludes nobody: what a store without locks returns.
    pub fn shared() -> Self {
        Self {
            guard: None,
            check: None,
            session: None,
        }
    }

    /// Whether this lock excludes other lockers.
    pub fn is_exclusive(&self) -> bool {
        self.guard.is_some()
    }

    /// The guard a store put in with [`new`](Self::new), if it is a `T`
    /// (for stores, to recognise their own locks).
    pub fn guard<T: Any>(&self) -> Option<&T> {
        self.guard.as_deref()?.downcast_ref()
    }
}

impl fmt::Debug for StreamLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamLock")
            .field("exclusive", &self.is_exclusive())
            .finish()
    }
}

type Slot = Arc<tokio::sync::Mutex<()>>;

/// Stream locks within one process: one async mutex per locked stream, kept
/// only while someone holds or waits for it.
#[derive(Default)]
pub(crate) struct LocalLocks {
    streams: Mutex<HashMap<StreamId, Slot>>,
    /// How many locks are held now: while none is, appends need not look.
    held: AtomicUsize,
}

impl LocalLocks {
    pub(crate) async fn lock(self: &Arc<Self>, stream: &StreamId) -> StreamLock {
        let slot = self
            .streams
            .lock()
            .entry(stream.clone())
            .or_default()
            .clone();
        let held = slot.clone().lock_owned().await;
        self.held.fetch_add(1, Ordering::SeqCst);
        StreamLock::new(LocalGuard {
            locks: self.clone(),
            stream: stream.clone(),
            slot,
            held: Some(held),
        })
    }

    /// Whether an append to `stream` by a caller holding `lock` (if any) must
    /// yield: someone else holds the stream (see `EventStore::append_after_seen`).
    pub(crate) fn must_yield(
        self: &Arc<Self>,
        stream: &StreamId,
        lock: Option<&StreamLock>,
    ) -> bool {
        if self.held.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let own = lock
            .and_then(|l| l.guard::<LocalGuard>())
            .is_some_and(|g| Arc::ptr_eq(&g.locks, self) && g.stream == *stream);
        if own {
            return false;
        }
        self.streams
            .lock()
            .get(stream)
            .is_some_and(|slot| slot.try_lock().is_err())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.streams.lock().len()
    }
}

struct LocalGuard {
    locks: Arc<LocalLocks>,
    stream: StreamId,
    slot: Slot,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        drop(self.held.take());
        self.locks.held.fetch_sub(1, Ordering::SeqCst);
        let mut streams = self.locks.streams.lock();
        // The map's reference and ours: nobody else holds or waits for it.
        // (Lockers clone it under this same map lock.)
        if Arc::strong_count(&self.slot) == 2 {
            streams.remove(&self.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_stream_and_nothing_kept_after() {
        let locks = Arc::new(LocalLocks::default());
        let (a, b) = (StreamId::new("a"), StreamId::new("b"));
        let held = locks.lock(&a).await;
        assert!(held.is_exclusive());
        // Another stream is free.
        let other = tokio::time::timeout(Duration::from_millis(50), locks.lock(&b)).await;
        assert!(other.is_ok());
        drop(other);
        // The same stream waits until the holder lets go.
        let waiter = tokio::spawn({
            let locks = locks.clone();
            let a = a.clone();
            async move { locks.lock(&a).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiter.is_finished());
        drop(held);
        let second = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter gets the lock once it is released")
            .unwrap();
        assert!(
            locks.must_yield(&a, None),
            "a caller without the lock yields"
        );
        assert!(!locks.must_yield(&a, Some(&second)), "the holder does not");
        assert!(
            !locks.must_yield(&b, Some(&second)),
            "another stream is free"
        );
        let other = Arc::new(LocalLocks::default());
        let foreign = other.lock(&a).await;
        assert!(
            locks.must_yield(&a, Some(&foreign)),
            "another table's lock does not count"
        );
        drop(second);
        assert!(!locks.must_yield(&a, None));
        assert_eq!(locks.len(), 0, "released streams are forgotten");
    }
}
