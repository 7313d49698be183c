//! The in-memory store: for tests, examples and benchmarks.

use super::{
    AppendResult, EventFilter, EventStore, ExpectedVersion, FilteredPage, LocalLocks, LogWatch,
    Metadata, MigrationReport, NewEvent, Payload, RecordedEvent, Snapshot, StoreError, StoreFuture,
    StreamHint, StreamId, StreamInfo, StreamLock, StreamRange, validate_checkpoint,
    validate_checkpoint_name, validate_events, window_end,
};
use futures::stream::BoxStream;
use parking_lot::Mutex;
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::future::ready;
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
    locks: Arc<LocalLocks>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            head: watch::channel(0).0,
            locks: Arc::default(),
        }
    }
}

struct State {
    events: Log,
    /// Each stream's place in `streams`, by name.
    stream_index: HashMap<StreamId, usize>,
    streams: Vec<Stream>,
    /// Slots of `streams` in order of their ids, for listings: sorted when
    /// a listing is asked for, so appends never pay for it.
    sorted: Vec<usize>,
    /// Every recorded event id, so each is recorded at most once.
    ids: IdIndex,
    snapshots: HashMap<StreamId, Snapshot>,
    /// Durable subscriptions' positions, by name (so listed in name order).
    checkpoints: BTreeMap<String, u64>,
    /// When the last append was recorded.
    last_recorded_at: SystemTime,
}

impl Default for State {
    fn default() -> Self {
        Self {
            events: Log::default(),
            stream_index: HashMap::default(),
            streams: Vec::new(),
            sorted: Vec::new(),
            ids: IdIndex::default(),
            snapshots: HashMap::default(),
            checkpoints: BTreeMap::new(),
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

    /// Appends `events` atomically, as [`EventStore::append`] does. `hint`
    /// is a stream slot from an earlier append (see [`StreamHint`]): when it
    /// still names `stream`, the stream is found without hashing its name.
    fn append_now(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        hint: StreamHint,
    ) -> Result<AppendResult, StoreError> {
        let mut guard = self.inner.state.lock();
        let state = &mut *guard;
        let hinted = usize::try_from(hint.get())
            .ok()
            .and_then(|h| h.checked_sub(1))
            .filter(|&slot| {
                // Usually the very `Arc` the store cloned, so this compares pointers.
                state
                    .streams
                    .get(slot)
                    .is_some_and(|known| known.id == *stream)
            });
        let slot = hinted.or_else(|| state.stream_index.get(stream.as_str()).copied());
        if slot.is_none() {
            // A stream already in the store had its id checked when it was created.
            stream.validate()?;
        }
        validate_events(stream, &events)?;
        let actual = slot.map(|s| state.streams[s].events.len() as u64);
        if !expected.accepts(actual) {
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        state.claim_ids(stream, &events)?;
        let result = state.write(stream, slot, events);
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

    /// Scans at most a window of the log from `from_position`, building only
    /// the events `filter` wants.
    fn read_all_filtered_now(
        &self,
        from_position: u64,
        max_count: usize,
        filter: &EventFilter,
    ) -> FilteredPage {
        let from = from_position.max(1);
        let mut page = FilteredPage {
            events: Vec::new(),
            next_position: from,
            held_back: false,
        };
        if max_count == 0 {
            return page;
        }
        let state = self.inner.state.lock();
        let start = (from - 1).min(state.events.len() as u64) as usize;
        let end = window_end(from, max_count).min(state.events.len() as u64) as usize;
        // Everything up to `end` is scanned unless the page fills first.
        page.next_position = page.next_position.max(end as u64 + 1);
        for (k, e) in state.events.iter_from(start).take(end - start).enumerate() {
            let stream = &state.streams[e.stream].id;
            if filter.matches_type_and_stream(&e.event_type, stream.as_str()) {
                page.events.push(state.recorded(start + k, e));
                if page.events.len() == max_count {
                    page.next_position = (start + k) as u64 + 2;
                    break;
                }
            }
        }
        page
    }
}

impl State {
    /// Records the events' ids, or fails without recording any if one is
    /// recorded already. (`validate_events` has refused ids repeated within
    /// the append.)
    fn claim_ids(&mut self, stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
        if let Some(e) = events.iter().find(|e| self.ids.contains(e.event_id)) {
            return Err(StoreError::DuplicateEventId {
                stream: stream.clone(),
                event_id: e.event_id,
            });
        }
        for e in events {
            self.ids.insert(e.event_id);
        }
        Ok(())
    }

    /// Records `events` (non-empty, already checked) at the end of the log.
    fn write(
        &mut self,
        stream: &StreamId,
        slot: Option<usize>,
        events: Vec<NewEvent>,
    ) -> AppendResult {
        // Recording times never go back along the log, even if the clock does.
        let recorded_at = SystemTime::now().max(self.last_recorded_at);
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
        AppendResult {
            stream_version: indexes.len() as u64,
            first_position,
            last_position: self.events.len() as u64,
            hint: StreamHint::new(slot as u64 + 1),
        }
    }

    /// Up to `limit` streams in `range`, by id.
    fn streams(&mut self, range: &StreamRange, limit: usize) -> Vec<StreamInfo> {
        if self.sorted.len() < self.streams.len() {
            // The streams created since the last listing, merged in.
            let streams = &self.streams;
            let mut new: Vec<usize> = (self.sorted.len()..streams.len()).collect();
            new.sort_unstable_by(|&a, &b| streams[a].id.cmp(&streams[b].id));
            let old = std::mem::take(&mut self.sorted);
            let mut merged = Vec::with_capacity(streams.len());
            let (mut i, mut j) = (0, 0);
            while i < old.len() && j < new.len() {
                if streams[old[i]].id < streams[new[j]].id {
                    merged.push(old[i]);
                    i += 1;
                } else {
                    merged.push(new[j]);
                    j += 1;
                }
            }
            merged.extend_from_slice(&old[i..]);
            merged.extend_from_slice(&new[j..]);
            self.sorted = merged;
        }
        let (lower, exclusive) = range.lower();
        let start = self.sorted.partition_point(|&slot| {
            let id = self.streams[slot].id.as_str();
            if exclusive { id <= lower } else { id < lower }
        });
        self.sorted[start..]
            .iter()
            .map(|&slot| &self.streams[slot])
            .take_while(|stream| range.contains(stream.id.as_str()))
            // A stream is made with its first event: none is passed over.
            .filter_map(|stream| {
                let (&first, &last) = (stream.events.first()?, stream.events.last()?);
                Some(StreamInfo {
                    stream_id: stream.id.clone(),
                    version: stream.events.len() as u64,
                    last_position: last as u64 + 1,
                    created_at: self.events[first].recorded_at.into(),
                    updated_at: self.events[last].recorded_at.into(),
                })
            })
            .take(limit)
            .collect()
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

/// The recorded event ids.
///
/// Event ids are uuid v7s, which sort by the time they were made, so most
/// arrive in increasing order. An id greater than every id recorded before it
/// goes at the end of `rising`, which therefore stays sorted, and is known to
/// be new without a lookup: every recorded id, in `rising` or in `others`, is
/// at most the last of `rising`. Only an id that arrives out of order is
/// looked up (a binary search of `rising`, a probe of `others`). So the common
/// append touches the end of one vector instead of a random place in a large
/// hash table.
#[derive(Default)]
struct IdIndex {
    rising: Vec<u128>,
    others: HashSet<u128>,
}

impl IdIndex {
    fn contains(&self, id: Uuid) -> bool {
        let id = id.as_u128();
        match self.rising.last() {
            Some(&last) if id <= last => {
                self.rising.binary_search(&id).is_ok() || self.others.contains(&id)
            }
            _ => false,
        }
    }

    /// Records `id`, known not to be recorded yet.
    fn insert(&mut self, id: Uuid) {
        let id = id.as_u128();
        match self.rising.last() {
            Some(&last) if id <= last => {
                self.others.insert(id);
            }
            _ => self.rising.push(id),
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
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        Box::pin(ready(self.append_now(
            stream,
            expected,
            events,
            StreamHint::NONE,
        )))
    }

    fn append_after_seen<'a>(
        &'a self,
        stream: &'a StreamId,
        seen: u64,
        hint: StreamHint,
        held: Option<&'a StreamLock>,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        if self.inner.locks.must_yield(stream, held) {
            return Box::pin(ready(Err(StoreError::StreamLocked {
                stream: stream.clone(),
            })));
        }
        Box::pin(ready(self.append_now(
            stream,
            ExpectedVersion::Exact(seen),
            events,
            hint,
        )))
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
        max_count: usize,
    ) -> StoreFuture<'a, Vec<RecordedEvent>> {
        let read = stream
            .validate()
            .map(|()| self.read_stream_now(stream, from_version, max_count))
            .map_err(StoreError::from);
        Box::pin(ready(read))
    }

    fn stream_version<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<u64>> {
        let version = stream.validate().map_err(StoreError::from).map(|()| {
            let state = self.inner.state.lock();
            state
                .stream_index
                .get(stream)
                .map(|&slot| state.streams[slot].events.len() as u64)
        });
        Box::pin(ready(version))
    }

    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> StoreFuture<'_, Vec<RecordedEvent>> {
        Box::pin(ready(Ok(self.read_all_now(from_position, max_count))))
    }

    fn read_all_filtered<'a>(
        &'a self,
        from_position: u64,
        max_count: usize,
        filter: &'a EventFilter,
    ) -> StoreFuture<'a, FilteredPage> {
        Box::pin(ready(Ok(self.read_all_filtered_now(
            from_position,
            max_count,
            filter,
        ))))
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

    /// Woken by every append to this store (or its clones); nothing else can
    /// write to it, so the poll interval ([`LogWatch::DEFAULT_POLL_INTERVAL`])
    /// only bounds the wait.
    fn watch_log(&self) -> LogWatch {
        LogWatch::new(self.inner.head.subscribe(), LogWatch::DEFAULT_POLL_INTERVAL)
    }

    fn head_position(&self) -> StoreFuture<'_, u64> {
        let head = self.inner.state.lock().events.len() as u64;
        Box::pin(std::future::ready(Ok(head)))
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> StoreFuture<'_, ()> {
        let saved = snapshot
            .stream_id
            .validate()
            .map_err(StoreError::from)
            .map(|()| {
                self.inner
                    .state
                    .lock()
                    .snapshots
                    .insert(snapshot.stream_id.clone(), snapshot);
            });
        Box::pin(ready(saved))
    }

    fn load_snapshot<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<Snapshot>> {
        let loaded = stream
            .validate()
            .map_err(StoreError::from)
            .map(|()| self.inner.state.lock().snapshots.get(stream).cloned());
        Box::pin(ready(loaded))
    }

    fn load_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<u64>> {
        let loaded = validate_checkpoint_name(name)
            .map_err(StoreError::from)
            .map(|()| self.inner.state.lock().checkpoints.get(name).copied());
        Box::pin(ready(loaded))
    }

    fn save_checkpoint<'a>(&'a self, name: &'a str, position: u64) -> StoreFuture<'a, ()> {
        let saved = validate_checkpoint(name, position)
            .map_err(StoreError::from)
            .map(|_| {
                let mut state = self.inner.state.lock();
                match state.checkpoints.get_mut(name) {
                    Some(kept) => *kept = position,
                    None => {
                        state.checkpoints.insert(name.to_owned(), position);
                    }
                }
            });
        Box::pin(ready(saved))
    }

    fn delete_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()> {
        let deleted = validate_checkpoint_name(name)
            .map_err(StoreError::from)
            .map(|()| {
                self.inner.state.lock().checkpoints.remove(name);
            });
        Box::pin(ready(deleted))
    }

    fn checkpoints(&self) -> StoreFuture<'_, Vec<(String, u64)>> {
        let state = self.inner.state.lock();
        let all = state
            .checkpoints
            .iter()
            .map(|(name, &position)| (name.clone(), position))
            .collect();
        Box::pin(ready(Ok(all)))
    }

    fn streams<'a>(
        &'a self,
        category: Option<&'a str>,
        after: Option<&'a StreamId>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<StreamInfo>> {
        let listed = match after.map(StreamId::validate).transpose() {
            Err(e) => Err(e.into()),
            Ok(_) => Ok(match StreamRange::new(category, after) {
                Some(range) => self.inner.state.lock().streams(&range, limit),
                None => Vec::new(),
            }),
        };
        Box::pin(ready(listed))
    }

    /// Nothing to migrate: the log lives in this process's memory.
    fn migrate(&self) -> StoreFuture<'_, MigrationReport> {
        Box::pin(ready(Ok(MigrationReport {
            target: "memory (nothing is kept)".to_owned(),
            ..MigrationReport::default()
        })))
    }

    fn lock_stream<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        Box::pin(async move {
            stream.validate()?;
            Ok(self.inner.locks.lock(stream).await)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(
        store: &MemoryStore,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        store.append_now(stream, expected, events, StreamHint::NONE)
    }

    fn event() -> NewEvent {
        NewEvent::new("E", 1, Payload::from_json("{}").unwrap())
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
            append(&store, stream, ExpectedVersion::Any, vec![event]).unwrap();
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
        let recorded = event();
        append(&store, &s, ExpectedVersion::Any, vec![recorded.clone()]).unwrap();
        let fresh = event();
        let err = append(
            &store,
            &s,
            ExpectedVersion::Any,
            vec![fresh.clone(), recorded],
        )
        .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateEventId { .. }),
            "{err:?}"
        );
        let twice = event();
        let err = append(
            &store,
            &s,
            ExpectedVersion::Any,
            vec![twice.clone(), twice.clone()],
        )
        .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateEventId { .. }),
            "{err:?}"
        );
        append(&store, &s, ExpectedVersion::Exact(1), vec![fresh, twice]).unwrap();
        assert_eq!(store.len(), 3);
    }

    /// Ids recorded in order, out of order and from the past are all found;
    /// none is recorded twice.
    #[test]
    fn the_id_index_finds_every_recorded_id() {
        let mut index = IdIndex::default();
        let ids: Vec<Uuid> = [5u128, 9, 7, 12, 1, 30, 20, 31]
            .into_iter()
            .map(Uuid::from_u128)
            .collect();
        for (i, &id) in ids.iter().enumerate() {
            assert!(!index.contains(id), "{id} before it is recorded");
            index.insert(id);
            assert!(ids[..=i].iter().all(|&seen| index.contains(seen)));
        }
        for absent in [0u128, 2, 8, 10, 13, 25, 32, u128::MAX] {
            assert!(!index.contains(Uuid::from_u128(absent)), "{absent}");
        }
        assert_eq!(index.rising, [5, 9, 12, 30, 31]);
    }

    /// A hint finds its stream; a hint of another stream, or out of range,
    /// is ignored rather than trusted.
    #[test]
    fn a_wrong_hint_is_never_trusted() {
        let store = MemoryStore::new();
        let (a, b) = (StreamId::new("a"), StreamId::new("b"));
        let on_a = append(&store, &a, ExpectedVersion::NoStream, vec![event()]).unwrap();
        let on_b = append(
            &store,
            &b,
            ExpectedVersion::NoStream,
            vec![event(), event()],
        )
        .unwrap();
        assert_ne!(on_a.hint, on_b.hint);
        // b's hint for a: a is at 1, not at b's 2.
        let err = store
            .append_now(&a, ExpectedVersion::Exact(2), vec![event()], on_b.hint)
            .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
        for hint in [
            on_b.hint,
            StreamHint::new(u64::MAX),
            StreamHint::NONE,
            on_a.hint,
        ] {
            let version = store.read_stream_now(&a, 1, 100).len() as u64;
            let done = store
                .append_now(&a, ExpectedVersion::Exact(version), vec![event()], hint)
                .unwrap();
            assert_eq!(done.stream_version, version + 1);
            assert_eq!(done.hint, on_a.hint);
        }
        assert_eq!(store.read_stream_now(&b, 1, 100).len(), 2);
    }

    /// The log keeps the clock's reading and hands it out as a date.
    #[test]
    fn recorded_at_is_the_time_of_the_append() {
        let store = MemoryStore::new();
        let s = StreamId::new("s");
        let before = chrono::Utc::now();
        append(&store, &s, ExpectedVersion::NoStream, vec![event()]).unwrap();
        let after = chrono::Utc::now();
        let read = store.read_stream_now(&s, 1, 1);
        assert!(before <= read[0].recorded_at && read[0].recorded_at <= after);
        assert_eq!(read, store.read_all_now(1, 1));
    }
}
