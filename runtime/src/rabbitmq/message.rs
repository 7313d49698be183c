//! A recorded event as an AMQP message, and back.
//!
//! The body is the event's JSON payload as stored; everything else a
//! handler may ask of [`EventMeta`](crate::EventMeta) travels in headers, so
//! a consumer rebuilds the very [`RecordedEvent`] the store returned.

use crate::store::{Metadata, Payload, RecordedEvent, StreamId};
use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use std::borrow::Cow;
use uuid::Uuid;

/// Header: the event's id (text).
pub const EVENT_ID: &str = "event-id";
/// Header: the stream it was recorded in (text).
pub const STREAM: &str = "stream";
/// Header: its version in its stream (64-bit integer).
pub const STREAM_VERSION: &str = "stream-version";
/// Header: its position in the global log (64-bit integer).
pub const POSITION: &str = "position";
/// Header: its stored type name (text; also the message's `type`).
pub const EVENT_TYPE: &str = "event-type";
/// Header: its schema version (64-bit integer).
pub const EVENT_VERSION: &str = "event-version";
/// Header: when the store recorded it (RFC 3339 text).
pub const RECORDED_AT: &str = "recorded-at";
/// Header: the correlation id, when it has one (text).
pub const CORRELATION_ID: &str = "correlation-id";
/// Header: the causation id, when it has one (text).
pub const CAUSATION_ID: &str = "causation-id";
/// Header: the user metadata as a JSON object, when there is any (text).
pub const METADATA: &str = "metadata";

/// Why a recorded event cannot be published, or a message cannot be read
/// back as one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The routing key `<category>.<event type>` is longer than AMQP's 255
    /// bytes.
    #[error(
        "the routing key of event at position {position} is {len} bytes long, above AMQP's 255"
    )]
    RoutingKeyTooLong {
        /// The event's global position.
        position: u64,
        /// The key's length in bytes.
        len: usize,
    },
    /// A header the consumer needs is missing or has the wrong type.
    #[error("message header `{0}` is missing or not of the type annals writes")]
    Header(&'static str),
    /// A header could not be parsed.
    #[error("message header `{header}` is not valid")]
    BadHeader {
        /// The header.
        header: &'static str,
        /// Why.
        #[source]
        source: crate::app::BoxError,
    },
    /// The body is not JSON text.
    #[error("the message body is not a JSON payload")]
    Body(#[source] crate::app::BoxError),
}

/// The routing key an event is published with: `<category>.<event type>`
/// (`"Account.MoneyDeposited"`), the category being the stream id's part
/// before its first `-`, or the whole id for a stream without one.
///
/// ```
/// use annals::StreamId;
/// assert_eq!(annals::rabbitmq::routing_key(&StreamId::new("Account-42"), "MoneyDeposited"), "Account.MoneyDeposited");
/// ```
pub fn routing_key(stream: &StreamId, event_type: &str) -> String {
    let category = stream.category().unwrap_or(stream.as_str());
    format!("{category}.{event_type}")
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes()))
}

fn number(value: u64) -> AMQPValue {
    // Positions, versions are at most i64::MAX in every store.
    AMQPValue::LongLongInt(i64::try_from(value).unwrap_or(i64::MAX))
}

/// The routing key and properties of `event`'s message.
pub(crate) fn encode(
    event: &RecordedEvent,
) -> Result<(ShortString, BasicProperties), MessageError> {
    let key = routing_key(&event.stream_id, &event.event_type);
    let len = key.len();
    let key = ShortString::try_new(key).map_err(|_| MessageError::RoutingKeyTooLong {
        position: event.global_position,
        len,
    })?;
    let mut headers = FieldTable::default();
    let id = event.event_id.to_string();
    headers.insert(EVENT_ID.into(), text(&id));
    headers.insert(STREAM.into(), text(event.stream_id.as_str()));
    headers.insert(STREAM_VERSION.into(), number(event.stream_version));
    headers.insert(POSITION.into(), number(event.global_position));
    headers.insert(EVENT_TYPE.into(), text(&event.event_type));
    headers.insert(EVENT_VERSION.into(), number(u64::from(event.event_version)));
    headers.insert(RECORDED_AT.into(), text(&event.recorded_at.to_rfc3339()));
    if let Some(id) = event.metadata.correlation_id {
        headers.insert(CORRELATION_ID.into(), text(&id.to_string()));
    }
    if let Some(id) = event.metadata.causation_id {
        headers.insert(CAUSATION_ID.into(), text(&id.to_string()));
    }
    if !event.metadata.custom.is_empty() {
        let json = serde_json::to_string(&event.metadata.custom).unwrap_or_default();
        headers.insert(METADATA.into(), text(&json));
    }
    let mut properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(id.into())
        .with_timestamp(u64::try_from(event.recorded_at.timestamp()).unwrap_or(0))
        .with_headers(headers);
    if let Ok(kind) = ShortString::try_new(event.event_type.as_ref()) {
        properties = properties.with_type(kind);
    }
    Ok((key, properties))
}

fn header_text<'a>(
    headers: &'a FieldTable,
    name: &'static str,
) -> Result<Option<&'a str>, MessageError> {
    match headers.inner().get(name) {
        None => Ok(None),
        Some(AMQPValue::LongString(s)) => {
            std::str::from_utf8(s.as_bytes())
                .map(Some)
                .map_err(|e| MessageError::BadHeader {
                    header: name,
                    source: e.into(),
                })
        }
        Some(AMQPValue::ShortString(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(MessageError::Header(name)),
    }
}

fn required_text<'a>(headers: &'a FieldTable, name: &'static str) -> Result<&'a str, MessageError> {
    header_text(headers, name)?.ok_or(MessageError::Header(name))
}

fn header_number(headers: &FieldTable, name: &'static str) -> Result<u64, MessageError> {
    let value = match headers.inner().get(name) {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortUInt(n)) => i64::from(*n),
        _ => return Err(MessageError::Header(name)),
    };
    u64::try_from(value).map_err(|e| MessageError::BadHeader {
        header: name,
        source: e.into(),
    })
}

fn uuid(headers: &FieldTable, name: &'static str) -> Result<Option<Uuid>, MessageError> {
    header_text(headers, name)?
        .map(|s| {
            Uuid::parse_str(s).map_err(|e| MessageError::BadHeader {
                header: name,
                source: e.into(),
            })
        })
        .transpose()
}

/// Reads a message annals published back as the recorded event.
pub(crate) fn decode(
    properties: &BasicProperties,
    body: &[u8],
) -> Result<RecordedEvent, MessageError> {
    let empty = FieldTable::default();
    let headers = properties.headers().as_ref().unwrap_or(&empty);
    let event_id = uuid(headers, EVENT_ID)?.ok_or(MessageError::Header(EVENT_ID))?;
    let stream_id = StreamId::new(required_text(headers, STREAM)?);
    stream_id.validate().map_err(|e| MessageError::BadHeader {
        header: STREAM,
        source: e.into(),
    })?;
    let event_version = u32::try_from(header_number(headers, EVENT_VERSION)?).map_err(|e| {
        MessageError::BadHeader {
            header: EVENT_VERSION,
            source: e.into(),
        }
    })?;
    let recorded_at = DateTime::parse_from_rfc3339(required_text(headers, RECORDED_AT)?)
        .map_err(|e| MessageError::BadHeader {
            header: RECORDED_AT,
            source: e.into(),
        })?
        .with_timezone(&Utc);
    let custom = match header_text(headers, METADATA)? {
        None => Default::default(),
        Some(json) => serde_json::from_str(json).map_err(|e| MessageError::BadHeader {
            header: METADATA,
            source: e.into(),
        })?,
    };
    let body = std::str::from_utf8(body).map_err(|e| MessageError::Body(e.into()))?;
    let payload = Payload::from_json(body).map_err(|e| MessageError::Body(e.into()))?;
    Ok(RecordedEvent {
        event_id,
        stream_id,
        stream_version: header_number(headers, STREAM_VERSION)?,
        global_position: header_number(headers, POSITION)?,
        event_type: Cow::Owned(required_text(headers, EVENT_TYPE)?.to_owned()),
        event_version,
        payload,
        metadata: Metadata {
            correlation_id: uuid(headers, CORRELATION_ID)?,
            causation_id: uuid(headers, CAUSATION_ID)?,
            custom,
        },
        recorded_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> RecordedEvent {
        let mut custom = std::collections::BTreeMap::new();
        custom.insert("tenant".to_owned(), serde_json::json!({"id": 7}));
        RecordedEvent {
            event_id: Uuid::now_v7(),
            stream_id: StreamId::new("Account-42"),
            stream_version: 3,
            global_position: 1_234_567,
            event_type: Cow::Borrowed("MoneyDeposited"),
            event_version: 2,
            payload: Payload::from_json(r#"{"amount":100,"currency":"EUR"}"#).unwrap(),
            metadata: Metadata {
                correlation_id: Some(Uuid::now_v7()),
                causation_id: Some(Uuid::now_v7()),
                custom,
            },
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn a_message_reads_back_as_the_event_the_store_recorded() {
        let event = recorded();
        let (key, properties) = encode(&event).unwrap();
        assert_eq!(key.as_str(), "Account.MoneyDeposited");
        assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
        let back = decode(&properties, event.payload.as_str().as_bytes()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_message_without_annals_headers_or_with_a_body_that_is_not_json_is_refused() {
        let event = recorded();
        let bare = decode(&BasicProperties::default(), b"{}").unwrap_err();
        assert!(matches!(bare, MessageError::Header(EVENT_ID)), "{bare:?}");
        let (_, properties) = encode(&event).unwrap();
        let body = decode(&properties, b"not json").unwrap_err();
        assert!(matches!(body, MessageError::Body(_)), "{body:?}");
    }

    #[test]
    fn a_routing_key_over_255_bytes_is_an_error_not_a_panic() {
        let mut event = recorded();
        event.stream_id = StreamId::new(format!("{}-1", "A".repeat(300)));
        let refused = encode(&event).unwrap_err();
        assert!(
            matches!(
                refused,
                MessageError::RoutingKeyTooLong {
                    position: 1_234_567,
                    ..
                }
            ),
            "{refused:?}"
        );
    }
}
