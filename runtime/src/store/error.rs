use super::{ExpectedVersion, StreamId};
use uuid::Uuid;

/// A failure of an event store operation.
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
    /// A stored row could not be read back (bad JSON, bad column value).
    #[error("stored event {stream}@{version} is corrupt: {reason}")]
    Corrupt {
        /// Its stream.
        stream: StreamId,
        /// Its stream version.
        version: u64,
        /// What was wrong.
        reason: String,
    },
    /// The database could not be reached or the connection was lost.
    /// The operation may be retried once it is back.
    #[error("event store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store's configuration is invalid (bad table prefix, bad URL, ...).
    #[error("invalid event store configuration: {0}")]
    Config(String),
    /// Any other backend failure.
    #[error("event store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether the operation failed because of a concurrent writer.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::WrongExpectedVersion { .. })
    }
}
