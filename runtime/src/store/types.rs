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
/// Cheap to clone (a shared string).
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
