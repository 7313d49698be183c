//! The in-memory store: for tests, examples and benchmarks.

use super::{
    AppendResult, EventStore, ExpectedVersion, NewEvent, RecordedEvent, Snapshot, StoreError,
    StreamId,
};
use chrono::Utc;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::{Future, ready};
use std::sync::Arc;
use tokio::sync::watch;
use uuid::Uuid;

/// foldhash instead of SipHash: every append hashes its stream and event ids.
type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<T> = hashbrown::HashSet<T, foldhash::fast::RandomState>;

/// An [`EventStore`] kept in process memory; clones share the same log.
///
/// It honours the same contract as the SQL stores (the conformance suite runs
/// against it), so application tests on it say something about production.
///
/// ```
/// # tokio_test_block_on(async {
/// use annals::{EventStore, ExpectedVersion, MemoryStore, NewEvent, Payload, StreamId};
/// let store = MemoryStore::new();
/// let stream = StreamId::new("Account-1");
/// let event = NewEvent::new("AccountOpened", 1, Payload::from_json("{}").unwrap());
/// let done = store.append(&stream, ExpectedVersion::NoStream, vec![event]).await.unwrap();
/// assert_eq!(done.stream_version, 1);
/// assert_eq!(store.read_stream(&stream, 1, 10).await.unwrap().len(), 1);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output { futures::executor::block_on(f) }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    head: watch::Sender<u64>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            head: watch::channel(0).0,
        }
    }
}

#[derive(Default)]
struct State {
    events: Log,
    /// Indexes into `events`, in stream order.
    streams: HashMap<StreamId, Vec<usize>>,
    event_ids: HashSet<Uuid>,
    snapshots: HashMap<StreamId, Snapshot>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events the store holds.
    pub fn len(&self) -> usize {
        self.inner.state.lock().events.len()
    }

    /// Whether the store holds no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn append_now(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyAppend {
                stream: stream.clone(),
            });
        }
        let mut guard = self.inner.state.lock();
        let state = &mut *guard;
        let actual = state.streams.get(stream.as_str()).map(|ix| ix.len() as u64);
        if !expected.accepts(actual) {
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        // Claim the ids in one hash probe each; on a duplicate (in the store or
        // repeated in this batch) release the ones this batch claimed, so nothing is written.
        for (i, e) in events.iter().enumerate() {
            if !state.event_ids.insert(e.event_id) {
                for claimed in &events[..i] {
                    state.event_ids.remove(&claimed.event_id);
                }
                return Err(StoreError::DuplicateEventId {
                    stream: stream.clone(),
                    event_id: e.event_id,
                });
            }
        }
        let recorded_at = Utc::now();
        let base_version = actual.unwrap_or(0);
        let first_position = state.events.len() as u64 + 1;
        // Look the stream up by `&str` first: cloning the key is only needed for a new stream.
        let indexes = match actual {
            Some(_) => state
                .streams
                .get_mut(stream.as_str())
                .expect("the stream was found above"),
            None => state.streams.entry(stream.clone()).or_default(),
        };
        for (i, e) in events.into_iter().enumerate() {
            indexes.push(state.events.len());
            state.events.push(RecordedEvent {
                event_id: e.event_id,
                stream_id: stream.clone(),
                stream_version: base_version + i as u64 + 1,
                global_position: state.events.len() as u64 + 1,
                event_type: e.event_type,
                event_version: e.event_version,
                payload: e.payload,
                metadata: e.metadata,
                recorded_at,
            });
        }
        let last_position = state.events.len() as u64;
        let stream_version = indexes.len() as u64;
        // Publish under the lock so the head never moves backwards. Waking
        // receivers costs a lock per notifier even when nobody listens, so only
        // wake when someone does; the value is updated either way, and a
        // subscriber created later reads the log after subscribing.
        self.inner.head.send_if_modified(|head| {
            *head = last_position;
            self.inner.head.receiver_count() > 0
        });
        Ok(AppendResult {
            stream_version,
            first_position,
            last_position,
        })
    }

    fn read_stream_now(
        &self,
        stream: &StreamId,
        from_version: u64,
        max_count: usize,
    ) -> Vec<RecordedEvent> {
        let state = self.inner.state.lock();
        let Some(indexes) = state.streams.get(stream) else {
            return Vec::new();
        };
        let start = from_version.saturating_sub(1).min(indexes.len() as u64) as usize;
        indexes[start..]
            .iter()
            .take(max_count)
            .map(|&i| state.events[i].clone())
            .collect()
    }

    fn read_all_now(&self, from_position: u64, max_count: usize) -> Vec<RecordedEvent> {
        let state = self.inner.state.lock();
        let start = from_position
            .saturating_sub(1)
            .min(state.events.len() as u64) as usize;
        state
            .events
            .iter_from(start)
            .take(max_count)
            .cloned()
            .collect()
    }
}

/// The global log in fixed-size segments: appending never moves recorded
/// events, where one growing `Vec` would copy the whole log on every doubling.
#[derive(Default)]
struct Log {
    segments: Vec<Vec<RecordedEvent>>,
    len: usize,
}

impl Log {
    const SEGMENT: usize = 4096;

    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, event: RecordedEvent) {
        if self.len.is_multiple_of(Self::SEGMENT) {
            self.segments.push(Vec::with_capacity(Self::SEGMENT));
        }
        self.segments
            .last_mut()
            .expect("a segment was just ensured")
            .push(event);
        self.len += 1;
    }

    fn iter_from(&self, start: usize) -> impl Iterator<Item = &RecordedEvent> {
        let (segment, offset) = (start / Self::SEGMENT, start % Self::SEGMENT);
        self.segments
            .get(segment..)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .flat_map(move |(i, s)| s[if i == 0 { offset } else { 0 }..].iter())
    }
}

impl std::ops::Index<usize> for Log {
    type Output = RecordedEvent;

    fn index(&self, i: usize) -> &RecordedEvent {
        &self.segments[i / Self::SEGMENT][i % Self::SEGMENT]
    }
}

impl EventStore for MemoryStore {
    fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send {
        ready(self.append_now(stream, expected, events))
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        ready(Ok(self.read_stream_now(stream, from_version, max_count)))
    }

    fn stream_version(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        let v = self
            .inner
            .state
            .lock()
            .streams
            .get(stream)
            .map(|ix| ix.len() as u64);
        ready(Ok(v))
    }

    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        ready(Ok(self.read_all_now(from_position, max_count)))
    }

    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let store = self.clone();
        let head = self.inner.head.subscribe();
        let start = (store, head, from_position.max(1), VecDeque::new());
        Box::pin(futures::stream::unfold(
            start,
            |(store, mut head, mut next, mut buf)| async move {
                loop {
                    if let Some(e) = buf.pop_front() {
                        return Some((Ok(e), (store, head, next, buf)));
                    }
                    let batch = store.read_all_now(next, super::DEFAULT_READ_BATCH);
                    if let Some(last) = batch.last() {
                        next = last.global_position + 1;
                        buf.extend(batch);
                        continue;
                    }
                    // Nothing new: wait until the head moves past what we have read.
                    if head.wait_for(|&h| h >= next).await.is_err() {
                        return None;
                    }
                }
            },
        ))
    }

    fn save_snapshot(
        &self,
        snapshot: Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner
            .state
            .lock()
            .snapshots
            .insert(snapshot.stream_id.clone(), snapshot);
        ready(Ok(()))
    }

    fn load_snapshot(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send {
        ready(Ok(self.inner.state.lock().snapshots.get(stream).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Payload;

    /// The log is kept in segments: reads must see one sequence across their edges.
    #[test]
    fn reads_cross_log_segments() {
        let store = MemoryStore::new();
        let (a, b) = (StreamId::new("a"), StreamId::new("b"));
        let total = 2 * Log::SEGMENT + 10;
        for i in 0..total {
            let stream = if i % 3 == 0 { &a } else { &b };
            let event = NewEvent::new("E", 1, Payload::from_json(format!("{i}")).unwrap());
            store
                .append_now(stream, ExpectedVersion::Any, vec![event])
                .unwrap();
        }
        for from in [
            1,
            Log::SEGMENT,
            Log::SEGMENT + 1,
            2 * Log::SEGMENT,
            2 * Log::SEGMENT + 1,
            total,
            total + 1,
        ] {
            let read = store.read_all_now(from as u64, usize::MAX);
            assert_eq!(read.len(), total + 1 - from.min(total + 1), "from {from}");
            for (k, e) in read.iter().enumerate() {
                assert_eq!(e.global_position, (from + k) as u64);
                assert_eq!(e.payload.as_str(), (from + k - 1).to_string());
            }
        }
        let b_events = store.read_stream_now(&b, 1, usize::MAX);
        assert_eq!(b_events.len(), (0..total).filter(|i| i % 3 != 0).count());
        assert!(
            b_events
                .iter()
                .enumerate()
                .all(|(k, e)| e.stream_version == k as u64 + 1)
        );
    }

    /// A batch refused for a duplicate id releases the ids it claimed before the duplicate.
    #[test]
    fn a_refused_batch_leaves_its_other_ids_free() {
        let store = MemoryStore::new();
        let s = StreamId::new("s");
        let event = || NewEvent::new("E", 1, Payload::from_json("{}").unwrap());
        let recorded = event();
        store
            .append_now(&s, ExpectedVersion::Any, vec![recorded.clone()])
            .unwrap();
        let fresh = event();
        let err = store
            .append_now(&s, ExpectedVersion::Any, vec![fresh.clone(), recorded])
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateEventId { .. }),
            "{err:?}"
        );
        let twice = event();
        let err = store
            .append_now(&s, ExpectedVersion::Any, vec![twice.clone(), twice.clone()])
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateEventId { .. }),
            "{err:?}"
        );
        store
            .append_now(&s, ExpectedVersion::Exact(1), vec![fresh, twice])
            .unwrap();
        assert_eq!(store.len(), 3);
    }
}
