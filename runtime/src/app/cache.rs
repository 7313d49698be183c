//! The aggregate cache: loaded aggregates stay in memory, so a command on a
//! warm aggregate reads nothing from the store.

use crate::aggregate::Aggregate;
use crate::store::{InvalidStreamId, StreamHint, StreamId, validate_aggregate_stream};
use hashbrown::HashTable;
use parking_lot::Mutex;
use std::any::Any;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// A cached aggregate: its state and the stream version it reflects.
pub(crate) struct Loaded<A> {
    pub(crate) state: A,
    pub(crate) version: u64,
    /// False until the history is read, and again after an append whose outcome is unknown.
    pub(crate) fresh: bool,
    /// Events applied since the last snapshot.
    pub(crate) since_snapshot: u64,
    /// The store's hint from the last append (see `EventStore::append_after_seen`).
    pub(crate) hint: StreamHint,
    /// How many more commands take the stream lock before their first
    /// attempt, after a conflict (see `RetryPolicy`).
    pub(crate) contended: u32,
}

impl<A: Aggregate> Loaded<A> {
    fn new() -> Self {
        Self {
            state: A::default(),
            version: 0,
            fresh: false,
            since_snapshot: 0,
            hint: StreamHint::NONE,
            contended: 0,
        }
    }

    /// Forgets the state, to load it again from the start.
    pub(crate) fn reset(&mut self) {
        self.state = A::default();
        self.version = 0;
        self.fresh = false;
        self.since_snapshot = 0;
    }
}

/// One lock per aggregate: commands to it are serialised, others run in parallel.
pub(crate) type Slot<A> = tokio::sync::Mutex<Loaded<A>>;

struct Entry {
    hash: u64,
    stream: StreamId,
    slot: Arc<dyn Any + Send + Sync>,
    /// When the entry was created or last seen in use by a sweep or an eviction.
    last_used: Instant,
    /// Used since `last_used` was set. A hit only sets this flag: reading the
    /// clock on every command would cost more than the rest of the lookup.
    used: bool,
}

impl Entry {
    /// How long the entry has been unused, counting a flagged use as happening `now`.
    /// Ages are never overestimated, so nothing is evicted early; an idle entry
    /// leaves at most one sweep period late.
    fn idle_for(&mut self, now: Instant) -> Duration {
        if std::mem::take(&mut self.used) {
            self.last_used = now;
        }
        now.duration_since(self.last_used)
    }
}

pub(crate) struct Cache {
    shards: Box<[Mutex<HashTable<Entry>>]>,
    hasher: foldhash::fast::FixedState,
    per_shard: usize,
    idle: Duration,
}

impl Cache {
    pub(crate) fn new(capacity: usize, idle: Duration) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
            hasher: foldhash::fast::FixedState::default(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            idle,
        }
    }

    /// The slot of the aggregate behind stream `key` (`"{category}-{id}"`,
    /// the category `A::TYPE` unless a command chose another), created
    /// empty if absent, once the key is checked.
    pub(crate) fn slot<A: Aggregate>(
        &self,
        category: &str,
        key: &str,
    ) -> Result<(StreamId, Arc<Slot<A>>), InvalidStreamId> {
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shards[hash as usize % SHARDS].lock();
        if let Some(entry) = shard.find_mut(hash, |e| e.hash == hash && e.stream.as_str() == key)
            && let Ok(slot) = Arc::downcast::<Slot<A>>(entry.slot.clone())
        {
            entry.used = true;
            return Ok((entry.stream.clone(), slot));
        }
        // Only a key that is not cached yet is checked: a cached one was.
        validate_aggregate_stream(category, key)?;
        let now = Instant::now();
        if let Ok(occupied) = shard.find_entry(hash, |e| e.hash == hash && e.stream.as_str() == key)
        {
            occupied.remove();
        }
        if shard.len() >= self.per_shard {
            self.evict(&mut shard, now);
        }
        let stream = StreamId::new(key);
        let slot = Arc::new(Slot::<A>::new(Loaded::new()));
        let entry = Entry {
            hash,
            stream: stream.clone(),
            slot: slot.clone(),
            last_used: now,
            used: false,
        };
        shard.insert_unique(hash, entry, |e| e.hash);
        Ok((stream, slot))
    }

    /// Makes room in a full shard: drops idle entries, then the least recently used eighth.
    fn evict(&self, shard: &mut HashTable<Entry>, now: Instant) {
        shard.retain(|e| e.idle_for(now) < self.idle);
        if shard.len() < self.per_shard {
            return;
        }
        let mut ages: Vec<Instant> = shard.iter().map(|e| e.last_used).collect();
        let cut = (ages.len() / 8).max(1);
        let (_, &mut threshold, _) = ages.select_nth_unstable(cut - 1);
        let mut dropped = 0;
        shard.retain(|e| {
            let keep = e.last_used > threshold || dropped >= cut;
            dropped += usize::from(!keep);
            keep
        });
    }

    /// Drops every entry unused for longer than the idle timeout.
    pub(crate) fn sweep_idle(&self) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            shard.lock().retain(|e| e.idle_for(now) < self.idle);
        }
    }

    /// Drops every entry.
    pub(crate) fn sweep_all(&self) {
        for shard in self.shards.iter() {
            shard.lock().clear();
        }
    }

    /// How many aggregates are cached.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub(crate) fn idle(&self) -> Duration {
        self.idle
    }
}
