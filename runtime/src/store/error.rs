use super::{ExpectedVersion, InvalidCheckpoint, InvalidStreamId, StreamId};
use uuid::Uuid;

/// A failure of an event store operation.
///
/// `Display` says what happened; the underlying cause, when there is one, is
/// [`source`](std::error::Error::source) (print the chain to see it all).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream was not at the version the append expected; nothing was written.
    #[error("stream `{stream}` expected {expected} but is at {}", actual.map_or_else(|| "no stream".to_owned(), |v| format!("version {v}")))]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's actual version (`None` = no stream).
        actual: Option<u64>,
    },
    /// Another caller holds the stream's lock ([`EventStore::lock_stream`](crate::EventStore::lock_stream))
    /// and this append, made without it, yields to it; nothing was written.
    /// Only [`EventStore::append_after_seen`](crate::EventStore::append_after_seen)
    /// yields so: take the lock, catch up and try again.
    #[error("stream `{stream}` is locked by another writer; the append yielded to it")]
    StreamLocked {
        /// The stream appended to.
        stream: StreamId,
    },
    /// An event with this id is already recorded; nothing was written.
    #[error("event id {event_id} is already recorded (appending to stream `{stream}`)")]
    DuplicateEventId {
        /// The stream appended to.
        stream: StreamId,
        /// The id already present.
        event_id: Uuid,
    },
    /// An append carried no events.
    #[error("an append to stream `{stream}` must carry at least one event")]
    EmptyAppend {
        /// The stream appended to.
        stream: StreamId,
    },
    /// The stream id cannot be stored (empty, a NUL character, too long);
    /// nothing was read or written.
    #[error(transparent)]
    InvalidStreamId(#[from] InvalidStreamId),
    /// An event of an append cannot be stored as it is (see
    /// [`NewEvent`](crate::NewEvent) for what every store accepts); nothing
    /// was written.
    #[error(
        "event {event_id} (`{event_type}`) appended to stream `{stream}` cannot be stored: {reason}"
    )]
    InvalidEvent {
        /// The stream appended to.
        stream: StreamId,
        /// The event's id.
        event_id: Uuid,
        /// The event's type name.
        event_type: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored row could not be read back (bad JSON, a NULL or out-of-range
    /// column). Readers of the global log can step past it: see
    /// [`EventStore::read_all`](crate::EventStore::read_all).
    #[error("stored event {stream}@{}{} is corrupt: {reason}", version.map_or_else(|| "?".to_owned(), |v| v.to_string()), position.map_or_else(String::new, |p| format!(" (global position {p})")))]
    Corrupt {
        /// Its stream.
        stream: StreamId,
        /// Its stream version (`None` when that is what cannot be read).
        version: Option<u64>,
        /// Its global position, when known (never for a snapshot).
        position: Option<u64>,
        /// What was wrong.
        reason: String,
    },
    /// An inline projection failed on an event of this append (see
    /// [`SqliteStore::add_inline_projection`](crate::sqlite::SqliteStore::add_inline_projection)):
    /// the append was rolled back, nothing of it was written. Appends
    /// written together with it are unaffected.
    #[error(
        "inline projection `{projection}` failed on a `{event_type}` event of stream `{stream}`; the append was not written"
    )]
    Projection {
        /// The projection's name.
        projection: &'static str,
        /// The stream appended to.
        stream: StreamId,
        /// The type of the event it failed on.
        event_type: String,
        /// Why it failed.
        #[source]
        source: Box<crate::handler::HandlerError>,
    },
    /// An inline projection could not empty its read model for a rebuild;
    /// nothing was changed.
    #[error("inline projection `{projection}` could not be reset")]
    ProjectionReset {
        /// The projection's name.
        projection: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The checkpoint name or position cannot be kept (empty, a NUL
    /// character, too long, a position above `i64::MAX`); nothing was read
    /// or written.
    #[error(transparent)]
    InvalidCheckpoint(#[from] InvalidCheckpoint),
    /// The store does not offer this operation: a store written outside
    /// Annals that keeps the trait's default for it. Every store shipped with
    /// Annals offers every operation.
    #[error("the event store `{store}` does not support `{operation}`")]
    Unsupported {
        /// The store's Rust type.
        store: &'static str,
        /// The [`EventStore`](crate::EventStore) method.
        operation: &'static str,
    },
    /// The database could not be reached or the connection was lost.
    /// The operation may be retried once it is back.
    #[error("the event store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store was closed ([`EventStore::close`](crate::EventStore::close),
    /// [`App::shutdown`](crate::App::shutdown)); open a new one. Unlike
    /// [`Unavailable`](Self::Unavailable), retrying does not help.
    #[error("the event store ({store}) is closed")]
    Closed {
        /// Which store: its kind and file or schema.
        store: String,
    },
    /// The store's configuration is invalid (bad table prefix, bad URL, ...).
    #[error("invalid event store configuration: {0}")]
    Config(String),
    /// Any other backend failure.
    #[error("the event store's backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether the operation failed because of a concurrent writer (a
    /// version conflict, or a lock it yielded to).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Self::WrongExpectedVersion { .. } | Self::StreamLocked { .. }
        )
    }

    /// The global position of the stored event this error is about, for a
    /// [`Corrupt`](Self::Corrupt) event of the global log: a reader of the
    /// log that chooses to step past it continues from this position plus one.
    pub fn corrupt_position(&self) -> Option<u64> {
        match self {
            Self::Corrupt { position, .. } => *position,
            _ => None,
        }
    }
}
