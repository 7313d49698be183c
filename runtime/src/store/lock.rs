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

    /// Whether the stream is still this caller's: `false` once the store
    /// knows the lock was lost (on PostgreSQL, when the connection holding
    /// it ended: a network failure, a server restart, a pooler). Locks that
    /// cannot be lost are always held.
    pub async fn still_held(&self) -> bool {
        match &self.check {
            Some(check) => check().await,
            None => true,
        }
    }

    /// A lock that excludes nobody: what a store without locks returns.
    pub fn shared() -> Self {
        Self {
            guard: None,
            check: None,
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
