//! The event store contract every backend implements, and the types it speaks.
//!
//! A store is a log of [`RecordedEvent`]s grouped into streams. Every event has
//! a position in its stream (`stream_version`, from 1, without gaps) and a
//! position in the global log (`global_position`, strictly increasing in the
//! order readers see events). Stores never interpret payloads: decoding into
//! domain types happens in the [`App`](crate::App).

mod any;
mod checkpoint;
mod error;
mod filter;
mod lock;
pub mod memory;
mod types;
mod validate;
mod watch;

pub use any::AnyStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use checkpoint::stored_position;
pub use checkpoint::{
    InvalidCheckpoint, MAX_CHECKPOINT_NAME_LEN, MAX_CHECKPOINT_POSITION, validate_checkpoint,
    validate_checkpoint_name,
};
pub use error::StoreError;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use filter::page_of;
pub(crate) use filter::window_end;
pub use filter::{EventFilter, FilteredPage};
pub(crate) use lock::LocalLocks;
pub use lock::StreamLock;
pub use memory::MemoryStore;
pub(crate) use types::StreamRange;
pub use types::{
    AppendResult, ExpectedVersion, InvalidStreamId, Metadata, Migration, MigrationReport, NewEvent,
    Payload, RecordedEvent, Snapshot, StreamHint, StreamId, StreamInfo,
};
pub(crate) use types::{validate_aggregate_stream, validate_category};
pub use validate::validate_append;
pub(crate) use validate::validate_events;
pub use watch::{LogWatch, WakeCause};

use futures::future::BoxFuture;
use futures::stream::BoxStream;

/// How many events a single read returns at most when the caller does not say.
pub const DEFAULT_READ_BATCH: usize = 1_000;

/// The future every [`EventStore`] operation returns.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// An append-only event store.
///
/// Implementations must guarantee:
/// - `append` is atomic: all of the given events are recorded, or none;
/// - the expected version is checked in the same atomic step as the write,
///   and stream versions stay contiguous (1, 2, 3, ...) whatever a caller
///   expects or claims to have seen;
/// - an event id is recorded at most once in the whole store;
/// - a reader of the global log (`read_all`, `subscribe_all`) never skips an
///   event that becomes visible later with a lower position;
/// - what one store refuses, every store refuses, with the same error: stream
///   ids and events are checked with [`validate_append`] and
///   [`StreamId::validate`] before anything is read or written.
///
/// The conformance suite in the workspace's `tests/` crate proves these for
/// every store shipped with Annals.
///
/// The trait is object safe: [`AnyStore`] holds any store behind one type, and
/// a method added here (with a default) reaches every store and `AnyStore`
/// at once. Operations return boxed futures; a store implements them with
/// `Box::pin(async move { .. })`.
///
/// ```
/// use annals::{EventStore, ExpectedVersion, MemoryStore, NewEvent, Payload, StreamId};
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// let stream = StreamId::new("Account-1");
/// let opened = NewEvent::new("AccountOpened", 1, Payload::from_json(r#"{"owner":"ada"}"#)?);
/// let done = store.append(&stream, ExpectedVersion::NoStream, vec![opened]).await?;
/// assert_eq!(done.stream_version, 1);
///
/// // A second writer that expected no stream is refused, and nothing is written.
/// let late = NewEvent::new("AccountOpened", 1, Payload::from_json(r#"{"owner":"bob"}"#)?);
/// let refused = store.append(&stream, ExpectedVersion::NoStream, vec![late]).await;
/// assert!(refused.unwrap_err().is_conflict());
/// assert_eq!(store.read_all(1, 100).await?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event store",
    note = "use `annals::MemoryStore`, or implement `annals::EventStore` for your backend"
)]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically, if the stream is at `expected`.
    ///
    /// Fails with [`StoreError::WrongExpectedVersion`] when it is not (never
    /// for [`ExpectedVersion::Any`]), with [`StoreError::DuplicateEventId`]
    /// when an event id is already recorded, and with the errors of
    /// [`validate_append`]; in every case nothing is written.
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult>;

    /// Appends `events` to `stream` right after version `seen`, the version
    /// the caller last saw recorded in it (`0`: the stream must not exist),
    /// with the [`StreamHint`] of the caller's last append to it (or
    /// [`StreamHint::NONE`]) and the caller's [lock](Self::lock_stream) on
    /// the stream, if it holds one.
    ///
    /// Like [`append`](Self::append) with [`ExpectedVersion::Exact`]`(seen)`:
    /// a `seen` the stream never reached (a stale cache, a snapshot ahead of
    /// its stream) is a [`StoreError::WrongExpectedVersion`], never a gap. A
    /// store may use the hint to find the stream faster, but must stay
    /// correct whatever hint it is given.
    ///
    /// A caller that does not hold the stream's lock yields to one that does:
    /// a store with locks refuses such an append with
    /// [`StoreError::StreamLocked`] while another caller holds the stream, so
    /// that writers that never met a conflict (and so never lock) cannot keep
    /// beating the writer whose turn it is. [`App`](crate::App) appends this
    /// way. This default ignores the hint and the lock and calls `append`.
    fn append_after_seen<'a>(
        &'a self,
        stream: &'a StreamId,
        seen: u64,
        hint: StreamHint,
        held: Option<&'a StreamLock>,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        let _ = (hint, held);
        self.append(stream, ExpectedVersion::Exact(seen), events)
    }

    /// Reads up to `max_count` events of `stream` whose version is `>= from_version`,
    /// in version order. A stream that does not exist reads as empty.
    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
        max_count: usize,
    ) -> StoreFuture<'a, Vec<RecordedEvent>>;

    /// The current version of `stream`, or `None` when it has no events.
    fn stream_version<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<u64>>;

    /// Reads up to `max_count` events of the global log whose position is
    /// `>= from_position`, in position order.
    ///
    /// Only events that can no longer be preceded by a late-committing event
    /// are returned, so a reader that continues from the last position it saw
    /// plus one never skips anything. Positions increase but may have holes
    /// (an append that failed may have drawn positions it never used).
    ///
    /// A stored event that cannot be read back is a
    /// [`StoreError::Corrupt`] naming its stream, version and global
    /// position. The events before it are returned first (by this call, when
    /// it starts before the bad one); the call that starts at it fails. A
    /// reader decides what to do: stop, or step past it by reading on from
    /// [`StoreError::corrupt_position`] plus one.
    ///
    /// ```
    /// # use annals::{EventStore, StoreError};
    /// # async fn follow(store: &impl EventStore) -> Result<(), StoreError> {
    /// let mut next = 1;
    /// loop {
    ///     match store.read_all(next, 500).await {
    ///         Ok(page) if page.is_empty() => break,
    ///         Ok(page) => next = page.last().unwrap().global_position + 1,
    ///         Err(bad) if bad.corrupt_position().is_some() => {
    ///             tracing::error!(error = %bad, "skipping a corrupt event");
    ///             next = bad.corrupt_position().unwrap() + 1;
    ///         }
    ///         Err(other) => return Err(other),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    fn read_all(&self, from_position: u64, max_count: usize)
    -> StoreFuture<'_, Vec<RecordedEvent>>;

    /// Follows the global log from `from_position`: first what is stored, then
    /// new events as they are appended, forever.
    ///
    /// The stream ends after yielding an error. For a corrupt event, that
    /// error comes after every event before it, and names its position
    /// ([`StoreError::corrupt_position`]); subscribing again from that
    /// position plus one steps past it.
    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>>;

    /// Reads up to `max_count` events of the global log whose position is
    /// `>= from_position` and that `filter` wants, in position order, with
    /// the position the next read continues from.
    ///
    /// [`FilteredPage::next_position`] is where the next read continues:
    /// every matching event below it has been returned, by this page or an
    /// earlier one. It may be far past the last event returned when the read
    /// scanned many events the filter does not want, so a reader that wants
    /// one rare event type and checkpoints `next_position - 1` never scans
    /// those again. A page may be empty with `next_position` moved on (only
    /// unwanted events were scanned): read on from there. An empty page with
    /// `next_position == from_position` means nothing more for now (wait with
    /// [`watch_log`](Self::watch_log)), unless it is
    /// [`held_back`](FilteredPage::held_back): then look again shortly. A
    /// read scans a bounded stretch of the log (4,096 positions, or
    /// `max_count` if more), so a page can be shorter than `max_count` before
    /// the log's end.
    /// Position 0 reads as 1; `max_count` 0 reads nothing.
    ///
    /// The safe horizon of [`read_all`](Self::read_all) holds: `next_position`
    /// never passes an event that may still become visible (on PostgreSQL, a
    /// position drawn by a transaction that has not committed yet, whether or
    /// not that event will match).
    ///
    /// A corrupt event the filter wants is reported as `read_all` reports it:
    /// the good events before it come first, with `next_position` at it; the
    /// read that starts at it fails with [`StoreError::Corrupt`] naming its
    /// position. The SQL stores filter by the type and stream columns before
    /// decoding anything, so a corrupt event that the filter does not want by
    /// those columns (or whose type or stream column cannot be read, when a
    /// list is set for it) is passed over like any unwanted event. This
    /// default reads [`read_all`](Self::read_all) and filters the events
    /// here: it reports every corrupt event, wanted or not.
    ///
    /// ```
    /// use annals::{EventFilter, EventStore, ExpectedVersion, MemoryStore, NewEvent, Payload, StreamId};
    /// # futures::executor::block_on(async {
    /// let store = MemoryStore::new();
    /// let event = |t: &'static str| NewEvent::new(t, 1, Payload::from_json("{}").unwrap());
    /// store.append(&StreamId::new("Account-1"), ExpectedVersion::Any, vec![event("Opened"), event("Deposited")]).await?;
    /// store.append(&StreamId::new("Loan-1"), ExpectedVersion::Any, vec![event("Deposited")]).await?;
    ///
    /// let wanted = EventFilter::all().event_types(["Deposited"]).categories(["Account"]);
    /// let page = store.read_all_filtered(1, 100, &wanted).await?;
    /// assert_eq!(page.events.len(), 1);
    /// assert_eq!(page.events[0].global_position, 2);
    /// // Everything up to the log's end was scanned: a checkpoint of 3 is safe.
    /// assert_eq!(page.next_position, 4);
    /// let nothing_new = store.read_all_filtered(page.next_position, 100, &wanted).await?;
    /// assert!(nothing_new.events.is_empty());
    /// assert_eq!(nothing_new.next_position, 4);
    /// # Ok::<(), annals::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn read_all_filtered<'a>(
        &'a self,
        from_position: u64,
        max_count: usize,
        filter: &'a EventFilter,
    ) -> StoreFuture<'a, FilteredPage> {
        Box::pin(async move {
            let from = from_position.max(1);
            if max_count == 0 {
                return Ok(FilteredPage {
                    events: Vec::new(),
                    next_position: from,
                    held_back: false,
                });
            }
            let read = self
                .read_all(from, max_count.max(DEFAULT_READ_BATCH))
                .await?;
            Ok(filter::filter_page(from, max_count, read, filter))
        })
    }

    /// The global position of the newest event in the log (0 when it is
    /// empty): how far a reader is behind (a handler's lag), and where a
    /// reader that wants only new events starts.
    ///
    /// ```
    /// use annals::{EventStore, ExpectedVersion, MemoryStore, NewEvent, Payload, StreamId};
    /// # futures::executor::block_on(async {
    /// let store = MemoryStore::new();
    /// assert_eq!(store.head_position().await?, 0);
    /// let event = NewEvent::new("Pinged", 1, Payload::from_json("{}")?);
    /// let done = store.append(&StreamId::new("Pinger-1"), ExpectedVersion::Any, vec![event]).await?;
    /// assert_eq!(store.head_position().await?, done.last_position);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// This default is [`StoreError::Unsupported`].
    fn head_position(&self) -> StoreFuture<'_, u64> {
        unsupported::<Self, _>("head_position")
    }

    /// A wake-up signal for a reader of the global log: see [`LogWatch`].
    /// This default cannot tell when there are new events and only polls,
    /// every [`LogWatch::DEFAULT_POLL_INTERVAL`].
    ///
    /// ```
    /// use annals::{EventFilter, EventStore, StoreError};
    ///
    /// /// Hands every event of type `Deposited` to `handle`, forever.
    /// async fn follow(store: &dyn EventStore, mut handle: impl FnMut(&annals::RecordedEvent)) -> Result<(), StoreError> {
    ///     let wanted = EventFilter::all().event_types(["Deposited"]);
    ///     let mut watch = store.watch_log();
    ///     let mut next = 1;
    ///     loop {
    ///         watch.mark();
    ///         let page = store.read_all_filtered(next, 500, &wanted).await?;
    ///         page.events.iter().for_each(&mut handle);
    ///         if page.events.is_empty() && page.next_position == next {
    ///             watch.changed().await;
    ///         }
    ///         next = page.next_position;
    ///     }
    /// }
    /// ```
    fn watch_log(&self) -> LogWatch {
        LogWatch::polling(LogWatch::DEFAULT_POLL_INTERVAL)
    }

    /// Stores `snapshot`, replacing an older one of the same stream.
    fn save_snapshot(&self, snapshot: Snapshot) -> StoreFuture<'_, ()>;

    /// Loads the newest snapshot of `stream`, if any.
    fn load_snapshot<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<Snapshot>>;

    /// The last global position the durable subscription `name` has
    /// handled, or `None` when it has no checkpoint.
    ///
    /// Checkpoints live in the store's own database (a table beside the
    /// events in the SQL stores), so they survive restarts and every process
    /// on the database sees the same ones. A name must be valid
    /// ([`validate_checkpoint_name`]), or the call fails with
    /// [`StoreError::InvalidCheckpoint`] before anything is read. This default
    /// fails with [`StoreError::Unsupported`]; every store shipped with
    /// Annals keeps checkpoints.
    ///
    /// ```
    /// use annals::{EventStore, MemoryStore};
    /// # futures::executor::block_on(async {
    /// let store = MemoryStore::new();
    /// assert_eq!(store.load_checkpoint("balances").await?, None);
    /// store.save_checkpoint("balances", 42).await?;
    /// assert_eq!(store.load_checkpoint("balances").await?, Some(42));
    /// // A rebuild starts over: a checkpoint may move backwards, or go.
    /// store.save_checkpoint("balances", 7).await?;
    /// store.save_checkpoint("audit", 40).await?;
    /// assert_eq!(store.checkpoints().await?, [("audit".to_owned(), 40), ("balances".to_owned(), 7)]);
    /// store.delete_checkpoint("balances").await?;
    /// assert_eq!(store.load_checkpoint("balances").await?, None);
    /// # Ok::<(), annals::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn load_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<u64>> {
        let _ = name;
        unsupported::<Self, _>("load_checkpoint")
    }

    /// Records `position` as the last global position `name` has handled,
    /// inserting or replacing its checkpoint. A later save may move it
    /// backwards (a reset and rebuild).
    ///
    /// Fails with [`StoreError::InvalidCheckpoint`] for an invalid name or a
    /// position above [`MAX_CHECKPOINT_POSITION`], writing nothing. This
    /// default fails with [`StoreError::Unsupported`].
    fn save_checkpoint<'a>(&'a self, name: &'a str, position: u64) -> StoreFuture<'a, ()> {
        let _ = (name, position);
        unsupported::<Self, _>("save_checkpoint")
    }

    /// Forgets `name`'s checkpoint (a reset); nothing happens when there is
    /// none. Fails with [`StoreError::InvalidCheckpoint`] for an invalid name.
    /// This default fails with [`StoreError::Unsupported`].
    fn delete_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()> {
        let _ = name;
        unsupported::<Self, _>("delete_checkpoint")
    }

    /// Every checkpoint, as `(name, position)`, sorted by name (byte-wise):
    /// for status pages and operator commands. This default fails with
    /// [`StoreError::Unsupported`].
    fn checkpoints(&self) -> StoreFuture<'_, Vec<(String, u64)>> {
        unsupported::<Self, _>("checkpoints")
    }

    /// Up to `limit` streams whose id is greater than `after` (all, when
    /// `None`), in byte-wise order of their ids, each with its version, the
    /// position of its newest event and when its first and newest events
    /// were recorded: for operator commands and stream browsers, a page at
    /// a time (pass the last id of a page as the next page's `after`).
    ///
    /// With `category`, only the streams of that category (whose id starts
    /// with `"{category}-"`, see [`StreamId::category`]); a category holding
    /// `-` or a NUL names no stream. A stream is listed once it has an
    /// event. An `after` no store can hold is a
    /// [`StoreError::InvalidStreamId`], as for every stream id. The SQL
    /// stores read the page through their index of stream ids (one seek per
    /// stream listed), so a page costs the same however many streams there
    /// are. This default fails with [`StoreError::Unsupported`].
    ///
    /// ```
    /// use annals::{EventStore, ExpectedVersion, MemoryStore, NewEvent, Payload, StreamId};
    /// # futures::executor::block_on(async {
    /// let store = MemoryStore::new();
    /// let event = || NewEvent::new("Opened", 1, Payload::from_json("{}").unwrap());
    /// for id in ["Account-2", "Loan-1", "Account-10"] {
    ///     store.append(&StreamId::new(id), ExpectedVersion::Any, vec![event(), event()]).await?;
    /// }
    /// let accounts = store.streams(Some("Account"), None, 10).await?;
    /// let ids: Vec<&str> = accounts.iter().map(|s| s.stream_id.as_str()).collect();
    /// assert_eq!(ids, ["Account-10", "Account-2"]);
    /// assert_eq!((accounts[1].version, accounts[1].last_position), (2, 2));
    /// // The next page starts after the last id of this one.
    /// let next = store.streams(None, Some(&accounts[1].stream_id), 10).await?;
    /// assert_eq!(next[0].stream_id.as_str(), "Loan-1");
    /// # Ok::<(), annals::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn streams<'a>(
        &'a self,
        category: Option<&'a str>,
        after: Option<&'a StreamId>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<StreamInfo>> {
        let _ = (category, after, limit);
        unsupported::<Self, _>("streams")
    }

    /// Applies the store's embedded schema migrations that its database
    /// lacks, and says which it applied and which it found applied already
    /// (the SQL stores open with their migrations applied unless told not
    /// to; `migrate` after such an open applies nothing). Safe to run from
    /// several processes at once. This default has nothing to migrate: a
    /// store whose schema needs migrations overrides it.
    ///
    /// ```
    /// use annals::{EventStore, MemoryStore};
    /// # futures::executor::block_on(async {
    /// let report = MemoryStore::new().migrate().await?;
    /// assert!(report.applied.is_empty() && report.already_applied.is_empty());
    /// # Ok::<(), annals::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn migrate(&self) -> StoreFuture<'_, MigrationReport> {
        let report = MigrationReport {
            target: std::any::type_name::<Self>().to_owned(),
            ..MigrationReport::default()
        };
        Box::pin(std::future::ready(Ok(report)))
    }

    /// Waits until this caller alone among the store's lockers holds `stream`,
    /// until the returned [`StreamLock`] is dropped.
    ///
    /// The lock is advisory: appends do not take it, and the expected-version
    /// check stays what keeps a stream consistent. It is how writers that keep
    /// colliding on one hot stream take turns instead of starving each other
    /// ([`App`](crate::App) takes it after a conflict). How far it reaches is
    /// the store's: the in-memory store excludes lockers in this process,
    /// SQLite every process on the file (on Linux; elsewhere this process's)
    /// and PostgreSQL every process on the database. This default excludes
    /// nobody.
    ///
    /// ```
    /// use annals::{EventStore, MemoryStore, StreamHint, StreamId, StoreError};
    /// # use annals::{NewEvent, Payload};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), StoreError> {
    /// let store = MemoryStore::new();
    /// let stream = StreamId::new("Counter-1");
    /// # let event = || NewEvent::new("Bumped", 1, Payload::from_json("{}").unwrap());
    /// let turn = store.lock_stream(&stream).await?;
    /// // Others' `append_after_seen` without the lock yields while we hold it...
    /// let theirs = store.append_after_seen(&stream, 0, StreamHint::NONE, None, vec![event()]).await;
    /// assert!(matches!(theirs, Err(StoreError::StreamLocked { .. })));
    /// // ...ours goes through.
    /// store.append_after_seen(&stream, 0, StreamHint::NONE, Some(&turn), vec![event()]).await?;
    /// drop(turn);
    /// # Ok(())
    /// # }
    /// ```
    fn lock_stream<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        let _ = stream;
        Box::pin(std::future::ready(Ok(StreamLock::shared())))
    }

    /// Waits until this caller alone among the store's lockers holds the
    /// *turn* `stream`, for a long hold: one runner of an event handler, a
    /// process manager or the scheduler at a time among every process
    /// sharing the store ([`App`](crate::App) takes `$handler-<name>`).
    ///
    /// Unlike [`lock_stream`](Self::lock_stream), the wait has no timeout
    /// (drop the future to stop waiting) and may take a while to notice that
    /// the turn became free (PostgreSQL: about a second), and a store may
    /// keep every turn of a process on one connection: a turn can then be
    /// lost with that connection, which the holder learns from
    /// [`StreamLock::still_held`] and [`StreamLock::lost`]. This default is
    /// [`lock_stream`](Self::lock_stream).
    ///
    /// ```
    /// use annals::{EventStore, MemoryStore, StreamId};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), annals::StoreError> {
    /// let store = MemoryStore::new();
    /// let turn = store.lock_turn(&StreamId::new("$handler-audit")).await?;
    /// assert!(turn.is_exclusive() && turn.still_held().await);
    /// # Ok(())
    /// # }
    /// ```
    fn lock_turn<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        self.lock_stream(stream)
    }

    /// Flushes what the store buffers and closes its connections; operations
    /// after it fail. [`App::shutdown`](crate::App::shutdown) calls it. This
    /// default does nothing.
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The failure of a trait default that store `S` does not override.
fn unsupported<S: ?Sized, T: Send + 'static>(operation: &'static str) -> StoreFuture<'static, T> {
    Box::pin(std::future::ready(Err(StoreError::Unsupported {
        store: std::any::type_name::<S>(),
        operation,
    })))
}
