//! The in-memory store: for tests, examples and benchmarks.

use super::{
    AppendResult, EventStore, ExpectedVersion, Metadata, NewEvent, Payload, RecordedEvent,
    Snapshot, StoreError, StreamId,
};
use futures::stream::BoxStream;
use parking_lot::Mutex;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::{Future, ready};
use std::sync::Arc;
use std::time::SystemTime;
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

struct State {
    events: Log,
    /// Each stream's place in `streams`, by name.
    stream_index: HashMap<StreamId, usize>,
    streams: Vec<Stream>,
    ids: IdIndex,
    snapshots: HashMap<StreamId, Snapshot>,
    /// When the last append was recorded.
    last_recorded_at: SystemTime,
}

impl Default for State {
    fn default() -> Self {
        Self {
            events: Log::default(),
            stream_index: HashMap::default(),
            streams: Vec::new(),
            ids: IdIndex::default(),
            snapshots: HashMap::default(),
            last_recorded_at: SystemTime::UNIX_EPOCH,
        }
    }
}

struct Stream {
    id: StreamId,
    /// Indexes into the log, in stream order.
    events: Vec<usize>,
}

/// An event as kept in the log: what a [`RecordedEvent`] needs, without the
/// parts the log already knows (the stream's name, the global position) and
/// with the time as the clock gave it (turned into a date only when read).
struct Stored {
    event_id: Uuid,
    stream: usize,
    stream_version: u64,
    event_type: Cow<'static, str>,
    event_version: u32,
    payload: Payload,
    metadata: Metadata,
    recorded_at: SystemTime,
}

/// The recorded event ids, so each is recorded at most once.
///
/// While every event in the store came from the [`App`](crate::App) with an id
/// it made fresh (see `app::ids`: one process-wide sequence that never repeats
/// a value), no id can clash and the set stays empty. The first append whose
/// ids need checking (any other caller, or a command with its own id) puts
/// every recorded id in the set, and from then on every append is checked.
#[derive(Default)]
struct IdIndex {
    set: HashSet<Uuid>,
    /// Whether `set` holds every recorded id.
    complete: bool,
}

impl IdIndex {
    fn complete(&mut self, log: &Log) {
        if !self.complete {
            self.set.reserve(log.len());
            self.set.extend(log.iter_from(0).map(|e| e.event_id));
            self.complete = true;
        }
    }

    /// Claims the ids in one hash probe each; on a duplicate (in the store or
    /// repeated in this batch) releases the ones this batch claimed, so nothing is written.
    fn claim(&mut self, stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
        for (i, e) in events.iter().enumerate() {
            if !self.set.insert(e.event_id) {
                for claimed in &events[..i] {
                    self.set.remove(&claimed.event_id);
                }
                return Err(StoreError::DuplicateEventId {
                    stream: stream.clone(),
                    event_id: e.event_id,
                });
            }
        }
        Ok(())
    }
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

    /// Appends `events` atomically, as [`EventStore::append`] does.
    ///
    /// `fresh_ids` is the caller's promise that every event id was made by
    /// `app::ids::FreshId` for this append, which never hands out a value
    /// twice: such ids are not looked up while the store holds only such ids.
    /// Without the promise (or once any append was checked) ids are checked.
    ///
    /// `slot_hint` is where the caller last saw the stream in this store
    /// (anything, the first time): when it still names the stream, the stream
    /// is found without hashing its name. It is updated to the stream's slot.
    ///
    /// `now`, if given, is a clock reading the caller took for this append
    /// just before (see `App::decide_and_append`); the events are recorded at
    /// it, or at the previous append's time if that is later, so recording
    /// times never go back along the log. Without it the store reads the clock.
    pub(crate) fn append_iter(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: impl ExactSizeIterator<Item = NewEvent>,
        fresh_ids: bool,
        slot_hint: &mut usize,
        now: Option<SystemTime>,
    ) -> Result<AppendResult, StoreError> {
        if events.len() == 0 {
            return Err(StoreError::EmptyAppend {
                stream: stream.clone(),
            });
        }
        let mut guard = self.inner.state.lock();
        let state = &mut *guard;
        let slot = match state.streams.get(*slot_hint) {
            // Usually the very `Arc` the store cloned, so this compares pointers.
            Some(known) if known.id == *stream => Some(*slot_hint),
            _ => state.stream_index.get(stream.as_str()).copied(),
        };
        let actual = slot.map(|s| state.streams[s].events.len() as u64);
        if !expected.accepts(actual) {
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        let (result, slot) = if fresh_ids && !state.ids.complete {
            state.write(stream, slot, events, now)
        } else {
            state.ids.complete(&state.events);
            let events: Vec<NewEvent> = events.collect();
            state.ids.claim(stream, &events)?;
            state.write(stream, slot, events.into_iter(), now)
        };
        *slot_hint = slot;
        // Publish under the lock so the head never moves backwards. Sending
        // takes the channel's lock, so only send when someone listens: a
        // subscriber subscribes before it reads the log, so it either sees
        // this append in the log or is counted here and woken.
        if self.inner.head.receiver_count() > 0 {
            self.inner.head.send_replace(result.last_position);
        }
        Ok(result)
    }

    fn read_stream_now(
        &self,
        stream: &StreamId,
        from_version: u64,
        max_count: usize,
    ) -> Vec<RecordedEvent> {
        let state = self.inner.state.lock();
        let Some(&slot) = state.stream_index.get(stream) else {
            return Vec::new();
        };
        let indexes = &state.streams[slot].events;
        let start = from_version.saturating_sub(1).min(indexes.len() as u64) as usize;
        indexes[start..]
            .iter()
            .take(max_count)
            .map(|&i| state.recorded(i, &state.events[i]))
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
            .enumerate()
            .map(|(k, e)| state.recorded(start + k, e))
            .collect()
    }
}

impl State {
    /// Records `events` (non-empty, already checked) at the end of the log;
    /// returns what happened and the stream's slot.
    fn write(
        &mut self,
        stream: &StreamId,
        slot: Option<usize>,
        events: impl Iterator<Item = NewEvent>,
        now: Option<SystemTime>,
    ) -> (AppendResult, usize) {
        let recorded_at = match now {
            Some(now) => now.max(self.last_recorded_at),
            None => SystemTime::now(),
        };
        self.last_recorded_at = recorded_at;
        let first_position = self.events.len() as u64 + 1;
        // Only a new stream clones its name (into the index and the stream list).
        let slot = slot.unwrap_or_else(|| {
            self.streams.push(Stream {
                id: stream.clone(),
                events: Vec::new(),
            });
            self.stream_index
                .insert(stream.clone(), self.streams.len() - 1);
            self.streams.len() - 1
        });
        let indexes = &mut self.streams[slot].events;
        for e in events {
            indexes.push(self.events.len());
            self.events.push(Stored {
                event_id: e.event_id,
                stream: slot,
                stream_version: indexes.len() as u64,
                event_type: e.event_type,
                event_version: e.event_version,
                payload: e.payload,
                metadata: e.metadata,
                recorded_at,
            });
        }
        let result = AppendResult {
            stream_version: indexes.len() as u64,
            first_position,
            last_position: self.events.len() as u64,
        };
        (result, slot)
    }

    /// The event at log index `index`, as readers see it.
    fn recorded(&self, index: usize, e: &Stored) -> RecordedEvent {
        RecordedEvent {
            event_id: e.event_id,
            stream_id: self.streams[e.stream].id.clone(),
            stream_version: e.stream_version,
            global_position: index as u64 + 1,
            event_type: e.event_type.clone(),
            event_version: e.event_version,
            payload: e.payload.clone(),
            metadata: e.metadata.clone(),
            recorded_at: e.recorded_at.into(),
        }
    }
}

/// The global log in fixed-size segments: appending never moves recorded
/// events, where one growing `Vec` would copy the whole log on every doubling.
#[derive(Default)]
struct Log {
    segments: Vec<Vec<Stored>>,
    len: usize,
}

impl Log {
    const SEGMENT: usize = 4096;

    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, event: Stored) {
        if self.len.is_multiple_of(Self::SEGMENT) {
            self.segments.push(Vec::with_capacity(Self::SEGMENT));
        }
        self.segments
            .last_mut()
            .expect("a segment was just ensured")
            .push(event);
        self.len += 1;
    }

    fn iter_from(&self, start: usize) -> impl Iterator<Item = &Stored> {
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
    type Output = Stored;

    fn index(&self, i: usize) -> &Stored {
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
        ready(self.append_iter(stream, expected, events.into_iter(), false, &mut 0, None))
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
        let state = self.inner.state.lock();
        let version = state
            .stream_index
            .get(stream)
            .map(|&slot| state.streams[slot].events.len() as u64);
        ready(Ok(version))
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

    impl MemoryStore {
        fn append_now(
            &self,
            stream: &StreamId,
            expected: ExpectedVersion,
            events: Vec<NewEvent>,
        ) -> Result<AppendResult, StoreError> {
            self.append_iter(stream, expected, events.into_iter(), false, &mut 0, None)
        }
    }

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

    /// Ids the app made fresh are not looked up while the store holds only
    /// such ids, yet an append that repeats one of them is still refused, and
    /// once any append was checked, fresh ones are checked too.
    #[test]
    fn an_id_recorded_unchecked_is_still_recorded_once() {
        use crate::app::ids::FreshId;
        let store = MemoryStore::new();
        let s = StreamId::new("s");
        let fresh_event = || {
            let id = FreshId::new().event_id(0).expect("slot 0 exists");
            let mut event = NewEvent::new("E", 1, Payload::from_json("{}").unwrap());
            event.event_id = id;
            event
        };
        let first = fresh_event();
        for (version, event) in [first.clone(), fresh_event()].into_iter().enumerate() {
            store
                .append_iter(
                    &s,
                    ExpectedVersion::Exact(version as u64),
                    std::iter::once(event),
                    true,
                    &mut 0,
                    None,
                )
                .unwrap();
        }
        assert!(
            store.inner.state.lock().ids.set.is_empty(),
            "not indexed yet"
        );

        let err = store
            .append_now(&s, ExpectedVersion::Any, vec![first.clone()])
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateEventId { event_id, .. } if event_id == first.event_id),
            "{err:?}"
        );
        assert_eq!(store.len(), 2, "nothing written");

        let later = fresh_event();
        store
            .append_iter(
                &s,
                ExpectedVersion::Exact(2),
                std::iter::once(later.clone()),
                true,
                &mut 0,
                None,
            )
            .unwrap();
        for event in [first, later] {
            let err = store
                .append_iter(
                    &s,
                    ExpectedVersion::Any,
                    std::iter::once(event),
                    true,
                    &mut 0,
                    None,
                )
                .unwrap_err();
            assert!(
                matches!(err, StoreError::DuplicateEventId { .. }),
                "{err:?}"
            );
        }
        assert_eq!(store.len(), 3);
    }

    /// The log keeps the clock's reading and hands it out as a date.
    #[test]
    fn recorded_at_is_the_time_of_the_append() {
        let store = MemoryStore::new();
        let s = StreamId::new("s");
        let before = chrono::Utc::now();
        store
            .append_now(
                &s,
                ExpectedVersion::NoStream,
                vec![NewEvent::new("E", 1, Payload::from_json("{}").unwrap())],
            )
            .unwrap();
        let after = chrono::Utc::now();
        let read = store.read_stream_now(&s, 1, 1);
        assert!(before <= read[0].recorded_at && read[0].recorded_at <= after);
        assert_eq!(read, store.read_all_now(1, 1));
    }
}
