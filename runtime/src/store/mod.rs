//! The event store contract every backend implements, and the types it speaks.
//!
//! A store is a log of [`RecordedEvent`]s grouped into streams. Every event has
//! a position in its stream (`stream_version`, from 1, without gaps) and a
//! position in the global log (`global_position`, strictly increasing in the
//! order readers see events). Stores never interpret payloads: decoding into
//! domain types happens in the [`App`](crate::App).

mod any;
mod error;
pub mod memory;
mod types;

pub use any::AnyStore;
pub use error::StoreError;
pub use memory::MemoryStore;
pub use types::{
    AppendResult, ExpectedVersion, Metadata, NewEvent, Payload, RecordedEvent, Snapshot, StreamId,
};

use futures::stream::BoxStream;
use std::future::Future;

/// How many events a single read returns at most when the caller does not say.
pub const DEFAULT_READ_BATCH: usize = 1_000;

/// An append-only event store.
///
/// Implementations must guarantee:
/// - `append` is atomic: all of the given events are recorded, or none;
/// - the expected version is checked in the same atomic step as the write;
/// - an event id is recorded at most once in the whole store;
/// - a reader of the global log (`read_all`, `subscribe_all`) never skips an
///   event that becomes visible later with a lower position.
///
/// The conformance suite in the workspace's `tests/` crate proves these for
/// every store shipped with Annals.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event store",
    note = "use `annals::MemoryStore`, or implement `annals::EventStore` for your backend"
)]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically, if the stream is at `expected`.
    ///
    /// Fails with [`StoreError::WrongExpectedVersion`] when it is not, and with
    /// [`StoreError::DuplicateEventId`] when an event id is already recorded;
    /// in both cases nothing is written.
    fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// Appends `events` to `stream` after version `seen`, a version the caller
    /// has seen recorded in this stream (the version it loaded, or its last
    /// append's). The same as [`append`](Self::append) with
    /// [`ExpectedVersion::Exact`]`(seen)`, which is what this default does; a
    /// store may skip checking that the stream reached `seen` (recorded events
    /// are never removed) and only make sure it has not moved past it.
    /// [`App`](crate::App) appends to the aggregates it caches this way.
    fn append_after_seen(
        &self,
        stream: &StreamId,
        seen: u64,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send {
        self.append(stream, ExpectedVersion::Exact(seen), events)
    }

    /// Reads up to `max_count` events of `stream` whose version is `>= from_version`,
    /// in version order. A stream that does not exist reads as empty.
    fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The current version of `stream`, or `None` when it has no events.
    fn stream_version(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Reads up to `max_count` events of the global log whose position is
    /// `>= from_position`, in position order.
    ///
    /// Only events that can no longer be preceded by a late-committing event
    /// are returned, so a reader that continues from the last position it saw
    /// plus one never skips anything.
    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Follows the global log from `from_position`: first what is stored, then
    /// new events as they are appended, forever. The stream ends only on error.
    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>>;

    /// Stores `snapshot`, replacing an older one of the same stream.
    fn save_snapshot(
        &self,
        snapshot: Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Loads the newest snapshot of `stream`, if any.
    fn load_snapshot(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;
}
