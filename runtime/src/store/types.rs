use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::{Borrow, Cow};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// The name of a stream: for aggregates, `"{AggregateType}-{id}"`.
///
/// Cheap to clone (a shared string). The aggregate type (the stream's
/// *category*) never contains `-`, so the first `-` separates it from the
/// aggregate's id, which may contain any character but NUL.
///
/// Stores refuse, with [`StoreError::InvalidStreamId`](crate::StoreError::InvalidStreamId),
/// a stream id that is empty, holds a NUL character or is longer than
/// [`StreamId::MAX_LEN`] bytes, before anything is read or written.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(Arc<str>);

impl StreamId {
    /// A stream id from any string.
    ///
    /// ```
    /// let id = annals::StreamId::new("Account-42");
    /// assert_eq!(id.as_str(), "Account-42");
    /// ```
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The longest stream id, in bytes, that every store accepts.
    pub const MAX_LEN: usize = 1024;

    /// The stream of aggregate `id` of type `category`: `"{category}-{id}"`,
    /// checked as [`validate`](Self::validate) does and so that no two
    /// (category, id) pairs can name the same stream.
    ///
    /// ```
    /// use annals::{InvalidStreamId, StreamId};
    /// let stream = StreamId::for_aggregate("Account", "7-b").unwrap();
    /// assert_eq!(stream.as_str(), "Account-7-b");
    /// assert_eq!(stream.category(), Some("Account"));
    /// assert_eq!(stream.aggregate_id(), Some("7-b"));
    /// assert!(matches!(StreamId::for_aggregate("Account", ""), Err(InvalidStreamId::EmptyAggregateId { .. })));
    /// assert!(matches!(StreamId::for_aggregate("Acct-x", "R"), Err(InvalidStreamId::BadCategory { .. })));
    /// ```
    pub fn for_aggregate(category: &str, id: impl fmt::Display) -> Result<Self, InvalidStreamId> {
        let stream = format!("{category}-{id}");
        validate_aggregate_stream(category, &stream)?;
        Ok(Self::new(stream))
    }

    /// Checks that every store can hold this stream id: not empty, no NUL
    /// character, at most [`MAX_LEN`](Self::MAX_LEN) bytes.
    ///
    /// ```
    /// use annals::{InvalidStreamId, StreamId};
    /// assert!(StreamId::new("Account-1").validate().is_ok());
    /// assert_eq!(StreamId::new("").validate(), Err(InvalidStreamId::Empty));
    /// assert!(matches!(StreamId::new("a\0b").validate(), Err(InvalidStreamId::Nul { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), InvalidStreamId> {
        validate_stream(&self.0)
    }

    /// The aggregate type of an aggregate's stream: the part before the first
    /// `-` (`None` when there is none).
    pub fn category(&self) -> Option<&str> {
        self.0.split_once('-').map(|(category, _)| category)
    }

    /// The aggregate id of an aggregate's stream: the part after the first
    /// `-` (`None` when there is none).
    pub fn aggregate_id(&self) -> Option<&str> {
        self.0.split_once('-').map(|(_, id)| id)
    }
}

/// Why a stream id (or an aggregate type name or id) cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidStreamId {
    /// The stream id is empty.
    #[error("a stream id must not be empty")]
    Empty,
    /// An aggregate's id is empty, so its stream would be just `"{category}-"`.
    #[error("the id of a `{category}` aggregate must not be empty")]
    EmptyAggregateId {
        /// The aggregate type.
        category: String,
    },
    /// The stream id holds a NUL character, which PostgreSQL cannot store.
    #[error("stream id {stream:?} contains a NUL character")]
    Nul {
        /// The stream id (at most its first 100 characters).
        stream: String,
    },
    /// The stream id is longer than [`StreamId::MAX_LEN`] bytes.
    #[error(
        "a stream id of {len} bytes is longer than the limit of {max} bytes (starts {start:?})"
    )]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
        /// Its first 40 characters.
        start: String,
    },
    /// An aggregate type name that cannot prefix stream names: empty, or
    /// containing `-` (which would let two aggregates share a stream),
    /// whitespace or a NUL.
    #[error("aggregate type name {category:?} cannot name streams: {reason}")]
    BadCategory {
        /// The aggregate type name.
        category: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn truncated(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// What keeps a name (a stream id, a checkpoint name) out of every store.
pub(crate) enum NameFlaw {
    Empty,
    /// Longer than the limit; the name's first 40 characters.
    TooLong {
        start: String,
    },
    /// A NUL character, which PostgreSQL cannot store; the first 100 characters.
    Nul {
        shown: String,
    },
}

/// Checks a name every store must be able to keep: not empty, at most `max`
/// bytes, no NUL character.
pub(crate) fn name_flaw(name: &str, max: usize) -> Option<NameFlaw> {
    if name.is_empty() {
        Some(NameFlaw::Empty)
    } else if name.len() > max {
        Some(NameFlaw::TooLong {
            start: truncated(name, 40),
        })
    } else if memchr::memchr(0, name.as_bytes()).is_some() {
        Some(NameFlaw::Nul {
            shown: truncated(name, 100),
        })
    } else {
        None
    }
}

fn validate_stream(stream: &str) -> Result<(), InvalidStreamId> {
    match name_flaw(stream, StreamId::MAX_LEN) {
        None => Ok(()),
        Some(NameFlaw::Empty) => Err(InvalidStreamId::Empty),
        Some(NameFlaw::TooLong { start }) => Err(InvalidStreamId::TooLong {
            len: stream.len(),
            max: StreamId::MAX_LEN,
            start,
        }),
        Some(NameFlaw::Nul { shown }) => Err(InvalidStreamId::Nul { stream: shown }),
    }
}

/// Checks an aggregate type name: what `#[aggregate(name = ..)]` also checks
/// at compile time.
pub(crate) fn validate_category(category: &str) -> Result<(), InvalidStreamId> {
    let reason = if category.is_empty() {
        "it is empty"
    } else if category.contains('-') {
        "it contains `-`, which separates the type from the id in a stream name"
    } else if category.contains('\0') {
        "it contains a NUL character"
    } else if category.chars().any(char::is_whitespace) {
        "it contains whitespace"
    } else {
        return Ok(());
    };
    Err(InvalidStreamId::BadCategory {
        category: truncated(category, 100),
        reason,
    })
}

/// Checks `stream`, the stream `"{category}-{id}"` of an aggregate.
pub(crate) fn validate_aggregate_stream(
    category: &str,
    stream: &str,
) -> Result<(), InvalidStreamId> {
    validate_category(category)?;
    if stream.len() == category.len() + 1 {
        return Err(InvalidStreamId::EmptyAggregateId {
            category: category.to_owned(),
        });
    }
    validate_stream(stream)
}

impl Borrow<str> for StreamId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for StreamId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for StreamId {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// The stream version an append expects to find, checked atomically with the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version (`0` = no stream).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` (`None` = no stream) satisfies this expectation.
    ///
    /// ```
    /// use annals::ExpectedVersion;
    /// assert!(ExpectedVersion::NoStream.accepts(None));
    /// assert!(ExpectedVersion::Exact(0).accepts(None));
    /// assert!(!ExpectedVersion::Exact(2).accepts(Some(3)));
    /// ```
    pub fn accepts(self, actual: Option<u64>) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual.is_none(),
            Self::StreamExists => actual.is_some(),
            Self::Exact(0) => actual.is_none(),
            Self::Exact(n) => actual == Some(n),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(n) => write!(f, "version {n}"),
        }
    }
}

/// An event's JSON payload, kept as text so stores can write it without re-encoding.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<serde_json::value::RawValue>);

impl Payload {
    /// Serialises `value` to a payload.
    ///
    /// ```
    /// let p = annals::Payload::from_serialize(&serde_json::json!({"amount": 5})).unwrap();
    /// assert_eq!(p.as_str(), r#"{"amount":5}"#);
    /// ```
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        thread_local! {
            static BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
        }
        // `to_raw_value` writes into a fresh 128-byte buffer and then shrinks it
        // (a malloc and a realloc per event); encoding into a reused buffer and
        // copying out exactly the JSON text costs one exact-size allocation.
        // Taking the buffer out of the cell keeps a nested call (a Serialize
        // impl that encodes a payload itself) safe: it just gets an empty one.
        let mut buffer = BUFFER.take();
        buffer.clear();
        let written = serde_json::to_writer(&mut buffer, value);
        let text = match written {
            Ok(()) if buffer.is_empty() => Err(<serde_json::Error as serde::ser::Error>::custom(
                "the value serialised to no JSON at all",
            )),
            // SAFETY: serde_json writes only UTF-8 (its own `to_string` relies on it
            // the same way); `to_vec` allocates exactly the text's length.
            Ok(()) => Ok(unsafe { String::from_utf8_unchecked(buffer.to_vec()) }),
            Err(error) => Err(error),
        };
        if buffer.capacity() <= 64 * 1024 {
            BUFFER.set(buffer);
        }
        let text = text?;
        // SAFETY: `text` is what serde_json's serializer wrote for one value
        // (not empty, checked above): one well-formed JSON value without
        // surrounding whitespace, the same text `to_raw_value` would hold.
        Ok(Self(unsafe {
            serde_json::value::RawValue::from_string_unchecked(text)
        }))
    }

    /// Parses JSON text, checking that it is well-formed.
    pub fn from_json(text: impl Into<String>) -> Result<Self, serde_json::Error> {
        serde_json::value::RawValue::from_string(text.into()).map(Self)
    }

    /// Takes `text` as one well-formed JSON value without checking it: for
    /// text PostgreSQL printed from a `jsonb` column, which it checked when
    /// the value was stored.
    #[cfg(feature = "postgres")]
    pub(crate) fn from_jsonb_text(text: String) -> Self {
        // SAFETY: not a memory-safety matter (RawValue holds a str either
        // way); PostgreSQL prints a jsonb value as well-formed JSON with no
        // surrounding whitespace, the text `RawValue::from_string` accepts.
        Self(unsafe { serde_json::value::RawValue::from_string_unchecked(text) })
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The payload as raw JSON, for zero-copy deserialisation.
    pub fn as_raw(&self) -> &serde_json::value::RawValue {
        &self.0
    }

    /// Parses the payload into a JSON value tree.
    pub fn to_value(&self) -> serde_json::Value {
        // A Payload is only ever built from well-formed JSON.
        serde_json::from_str(self.0.get()).expect("a payload always holds well-formed JSON")
    }
}

/// Payloads compare by their JSON text.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is recorded with an event besides its payload.
///
/// Correlation and causation ids are first-class, so stores can index them;
/// anything else goes in `custom`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// The id shared by everything one original request caused.
    pub correlation_id: Option<Uuid>,
    /// The id of the command or event that directly caused this event.
    pub causation_id: Option<Uuid>,
    /// User key/values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, serde_json::Value>,
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id (uuid v7); the store records an id at most once.
    pub event_id: Uuid,
    /// The stable type name, e.g. `"MoneyDeposited"`.
    pub event_type: Cow<'static, str>,
    /// The schema version of this type.
    pub event_version: u32,
    /// The JSON payload.
    pub payload: Payload,
    /// Correlation, causation and user metadata.
    pub metadata: Metadata,
}

impl NewEvent {
    /// A new event with a fresh v7 id and empty metadata.
    pub fn new(
        event_type: impl Into<Cow<'static, str>>,
        event_version: u32,
        payload: Payload,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            event_version,
            payload,
            metadata: Metadata::default(),
        }
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as the store recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Unique id (uuid v7).
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its position in the stream, from 1.
    pub stream_version: u64,
    /// Its position in the global log, from 1, increasing in read order.
    pub global_position: u64,
    /// The stable type name.
    pub event_type: Cow<'static, str>,
    /// The schema version of the type.
    pub event_version: u32,
    /// The JSON payload.
    pub payload: Payload,
    /// Correlation, causation and user metadata.
    pub metadata: Metadata,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append.
    pub stream_version: u64,
    /// The global position of the first appended event.
    pub first_position: u64,
    /// The global position of the last appended event.
    pub last_position: u64,
    /// Where the store keeps the stream, for the next
    /// [`append_after_seen`](crate::EventStore::append_after_seen) to it.
    pub hint: StreamHint,
}

impl AppendResult {
    /// An append's result without a [`StreamHint`].
    pub fn new(stream_version: u64, first_position: u64, last_position: u64) -> Self {
        Self {
            stream_version,
            first_position,
            last_position,
            hint: StreamHint::NONE,
        }
    }
}

/// An opaque note a store returns with an append ([`AppendResult::hint`]) and
/// takes back with the next append to the same stream
/// ([`EventStore::append_after_seen`](crate::EventStore::append_after_seen)),
/// so it can find the stream faster. Only the store that made a hint can read
/// it; a store must stay correct whatever hint it is given (a stale one, one
/// of another stream, or [`StreamHint::NONE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StreamHint(u64);

impl StreamHint {
    /// No hint.
    pub const NONE: Self = Self(0);

    /// A hint carrying `value` (for stores; `0` is [`NONE`](Self::NONE)).
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The value the store put in.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// An aggregate's state at a stream version, so loads can skip the events before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream version the state includes.
    pub stream_version: u64,
    /// The aggregate's snapshot schema version; a different one is ignored on load.
    pub snapshot_version: u32,
    /// The serialised state.
    pub state: Payload,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// One stream, as [`EventStore::streams`](crate::EventStore::streams) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream.
    pub stream_id: StreamId,
    /// Its version: how many events it holds.
    pub version: u64,
    /// The global position of its newest event.
    pub last_position: u64,
    /// When its first event was recorded.
    pub created_at: DateTime<Utc>,
    /// When its newest event was recorded.
    pub updated_at: DateTime<Utc>,
}

impl StreamInfo {
    /// The stream's category: the part of its id before the first `-`
    /// (see [`StreamId::category`]).
    pub fn category(&self) -> Option<&str> {
        self.stream_id.category()
    }
}

/// The bounds of a listing of streams in byte-wise order of their ids:
/// past `after`, and within `category` (ids from `"{category}-"` up to,
/// not including, `"{category}."`, `.` being the byte after `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamRange {
    /// Ids must be greater than this (`""`: no cursor; no stream id is empty).
    pub(crate) after: String,
    /// Ids must be at least this (`""` without a category).
    pub(crate) from: String,
    /// Ids must be less than this (`None` without a category).
    pub(crate) before: Option<String>,
}

impl StreamRange {
    /// The range of `category` past `after`; `None` when no stream can be
    /// in it (a category holding `-`, which ends a category, or a NUL).
    pub(crate) fn new(category: Option<&str>, after: Option<&StreamId>) -> Option<Self> {
        let (from, before) = match category {
            Some(c) if c.contains(['-', '\0']) => return None,
            Some(c) => (format!("{c}-"), Some(format!("{c}."))),
            None => (String::new(), None),
        };
        Some(Self {
            after: after.map_or_else(String::new, |a| a.as_str().to_owned()),
            from,
            before,
        })
    }

    /// Whether `id` lies in the range (compared byte-wise).
    pub(crate) fn contains(&self, id: &str) -> bool {
        id > self.after.as_str()
            && id >= self.from.as_str()
            && self.before.as_deref().is_none_or(|b| id < b)
    }

    /// The lower bound, exclusive when `.1`: the greater of `after` and `from`.
    pub(crate) fn lower(&self) -> (&str, bool) {
        if self.after.as_str() >= self.from.as_str() {
            (&self.after, true)
        } else {
            (&self.from, false)
        }
    }
}

/// One schema migration of a store (see [`MigrationReport`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Its version (the number its file name starts with).
    pub version: i64,
    /// What it does (the rest of its file name).
    pub description: String,
}

/// What [`EventStore::migrate`](crate::EventStore::migrate) did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationReport {
    /// Which database, for people: `SQLite `bank.db` (tables `annals_*`)`.
    pub target: String,
    /// The migrations this call applied, in order.
    pub applied: Vec<Migration>,
    /// The migrations that were applied already, in order.
    pub already_applied: Vec<Migration>,
}

impl MigrationReport {
    /// The report of a migration of `target` that found the migrations
    /// `before` applied and left `after` applied.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn between(target: String, before: Vec<Migration>, after: Vec<Migration>) -> Self {
        let applied = after
            .into_iter()
            .filter(|m| !before.iter().any(|b| b.version == m.version))
            .collect();
        Self {
            target,
            applied,
            already_applied: before,
        }
    }
}
