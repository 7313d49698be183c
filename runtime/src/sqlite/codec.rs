//! Rows to domain values and sqlx errors to [`StoreError`]s: never a panic on
//! what the database hands back.

use crate::{Metadata, Payload, RecordedEvent, StoreError, StreamId};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use std::borrow::Cow;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Result codes (primary, the low byte of the extended code) that mean the
/// database cannot be used right now but may be later.
const TRANSIENT_CODES: &[i64] = &[
    5,  // SQLITE_BUSY
    6,  // SQLITE_LOCKED
    7,  // SQLITE_NOMEM
    8,  // SQLITE_READONLY (e.g. file permissions changed)
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
    15, // SQLITE_PROTOCOL
];

/// Maps a sqlx failure to the store's error kinds.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        sqlx::Error::Configuration(_) => StoreError::Config(e.to_string()),
        sqlx::Error::Database(db) => {
            let primary = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .map(|c| c & 0xff);
            if primary.is_some_and(|c| TRANSIENT_CODES.contains(&c)) {
                StoreError::Unavailable(Box::new(e))
            } else {
                StoreError::Backend(Box::new(e))
            }
        }
        _ => StoreError::Backend(Box::new(e)),
    }
}

/// Maps a migration failure.
pub(crate) fn migrate(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(inner) => backend(inner),
        other => StoreError::Backend(Box::new(other)),
    }
}

/// How a failed append statement failed.
pub(crate) enum AppendFailure {
    /// The unique index on event ids refused a row.
    DuplicateEventId,
    /// The stream moved under us (unique (stream, version) or the contiguity
    /// trigger): someone else wrote between our guard and our insert.
    StreamMoved,
    /// Anything else.
    Other(sqlx::Error),
}

pub(crate) fn classify_append_error(e: sqlx::Error) -> AppendFailure {
    if let sqlx::Error::Database(db) = &e {
        let msg = db.message();
        if msg.starts_with("UNIQUE constraint failed") && msg.ends_with("events.event_id") {
            return AppendFailure::DuplicateEventId;
        }
        if (msg.starts_with("UNIQUE constraint failed") && msg.contains("events.stream_id"))
            || msg.contains("annals: stream version out of sequence")
        {
            return AppendFailure::StreamMoved;
        }
    }
    AppendFailure::Other(e)
}

/// The text form timestamps are stored in: RFC 3339, UTC, microseconds, so it
/// sorts as text.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("bad timestamp `{text}`: {e}"))
}

/// Metadata's user part as stored: a JSON object, or NULL when empty.
pub(crate) fn custom_metadata(metadata: &Metadata) -> Option<String> {
    if metadata.custom.is_empty() {
        None
    } else {
        // A map of strings to JSON values always serialises.
        Some(serde_json::to_string(&metadata.custom).expect("a JSON map always serialises"))
    }
}

fn uuid_column(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, String> {
    let text: Option<String> = row
        .try_get(column)
        .map_err(|e| format!("column {column}: {e}"))?;
    text.map(|t| Uuid::parse_str(&t).map_err(|e| format!("column {column}: bad uuid `{t}`: {e}")))
        .transpose()
}

fn column<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, String>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column)
        .map_err(|e| format!("column {column}: {e}"))
}

fn non_negative(value: i64, column: &str) -> Result<u64, String> {
    u64::try_from(value).map_err(|_| format!("column {column}: negative value {value}"))
}

/// Decodes an events row selected with the schema's event columns.
pub(crate) fn event(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    // Name the event in the error even when the row is partly unreadable.
    let stream: Result<String, _> = row.try_get("stream_id");
    let version: Result<i64, _> = row.try_get("stream_version");
    // The position is the rowid (never NULL): every error names it.
    let position: Option<u64> = row
        .try_get::<i64, _>("position")
        .ok()
        .and_then(|p| u64::try_from(p).ok());
    let corrupt = |reason: String| StoreError::Corrupt {
        position,
        stream: StreamId::new(stream.as_deref().unwrap_or("<unreadable stream id>")),
        version: version
            .as_ref()
            .ok()
            .and_then(|&v| u64::try_from(v).ok())
            .unwrap_or(0),
        reason,
    };
    let stream_id = StreamId::new(
        stream
            .as_deref()
            .map_err(|e| corrupt(format!("column stream_id: {e}")))?,
    );
    let stream_version = non_negative(
        *version
            .as_ref()
            .map_err(|e| corrupt(format!("column stream_version: {e}")))?,
        "stream_version",
    )
    .map_err(&corrupt)?;
    let decode = || -> Result<RecordedEvent, String> {
        let event_type: String = column(row, "event_type")?;
        let event_version: i64 = column(row, "event_version")?;
        let payload: String = column(row, "payload")?;
        let metadata: Option<String> = column(row, "metadata")?;
        let recorded_at: String = column(row, "recorded_at")?;
        let custom = match metadata {
            None => BTreeMap::new(),
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| format!("column metadata: bad JSON: {e}"))?,
        };
        Ok(RecordedEvent {
            event_id: uuid_column(row, "event_id")?.ok_or("column event_id: NULL")?,
            global_position: non_negative(column(row, "position")?, "position")?,
            event_version: u32::try_from(event_version)
                .map_err(|_| format!("column event_version: out of range: {event_version}"))?,
            payload: Payload::from_json(payload)
                .map_err(|e| format!("column payload (type `{event_type}`): bad JSON: {e}"))?,
            metadata: Metadata {
                correlation_id: uuid_column(row, "correlation_id")?,
                causation_id: uuid_column(row, "causation_id")?,
                custom,
            },
            recorded_at: parse_timestamp(&recorded_at)
                .map_err(|e| format!("column recorded_at: {e}"))?,
            event_type: Cow::Owned(event_type),
            stream_id: stream_id.clone(),
            stream_version,
        })
    };
    decode().map_err(corrupt)
}

/// Decodes a snapshots row of `stream`.
pub(crate) fn snapshot(stream: &StreamId, row: &SqliteRow) -> Result<crate::Snapshot, StoreError> {
    let decode = || -> Result<crate::Snapshot, String> {
        let snapshot_version: i64 = column(row, "snapshot_version")?;
        let state: String = column(row, "state")?;
        let taken_at: String = column(row, "taken_at")?;
        Ok(crate::Snapshot {
            stream_id: stream.clone(),
            stream_version: non_negative(column(row, "stream_version")?, "stream_version")?,
            snapshot_version: u32::try_from(snapshot_version).map_err(|_| {
                format!("column snapshot_version: out of range: {snapshot_version}")
            })?,
            state: Payload::from_json(state).map_err(|e| format!("column state: bad JSON: {e}"))?,
            taken_at: parse_timestamp(&taken_at).map_err(|e| format!("column taken_at: {e}"))?,
        })
    };
    decode().map_err(|reason| StoreError::Corrupt {
        stream: stream.clone(),
        version: 0,
        position: None,
        reason: format!("snapshot: {reason}"),
    })
}
