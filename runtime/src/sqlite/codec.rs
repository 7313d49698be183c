//! Rows to domain values and sqlx errors to [`StoreError`]s: never a panic on
//! what the database hands back.

use crate::{Metadata, Payload, RecordedEvent, StoreError, StreamId};
use chrono::{DateTime, Datelike as _, SecondsFormat, Timelike as _, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
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
///
/// The error kept as the source is the one that says what went wrong, not
/// sqlx's wrapper around it: sqlx's `Display` repeats its own source ("error
/// returned from database: (code: 5) database is locked" above "(code: 5)
/// database is locked"), so a printed chain would say everything twice.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    let transient = match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Configuration(_) => return StoreError::Config(e.to_string()),
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| TRANSIENT_CODES.contains(&(c & 0xff))),
        _ => false,
    };
    let source = cause(e);
    if transient {
        StoreError::Unavailable(source)
    } else {
        StoreError::Backend(source)
    }
}

/// The error a sqlx failure is about, for a `#[source]`.
fn cause(e: sqlx::Error) -> Box<dyn std::error::Error + Send + Sync> {
    match e {
        // SQLite's own code and message, e.g. "(code: 5) database is locked".
        sqlx::Error::Database(db) => db,
        sqlx::Error::Io(io) => Box::new(io),
        // sqlx's message already holds its source: keep it, without the chain.
        e if std::error::Error::source(&e).is_some() => Box::new(Flattened(e.to_string())),
        e => Box::new(e),
    }
}

/// A sqlx error whose message already says what its source says.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Flattened(String);

/// Maps a migration failure.
pub(crate) fn migrate(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(inner) => backend(inner),
        sqlx::migrate::MigrateError::ExecuteMigration(inner, version) => match backend(inner) {
            StoreError::Unavailable(source) => {
                StoreError::Unavailable(Box::new(MigrationFailed { version, source }))
            }
            StoreError::Backend(source) => {
                StoreError::Backend(Box::new(MigrationFailed { version, source }))
            }
            other => other,
        },
        other if std::error::Error::source(&other).is_some() => {
            StoreError::Backend(Box::new(Flattened(other.to_string())))
        }
        other => StoreError::Backend(Box::new(other)),
    }
}

/// A migration of the store's schema failed.
#[derive(Debug, thiserror::Error)]
#[error("migration {version} of the SQLite event store failed")]
struct MigrationFailed {
    version: i64,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
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
/// sorts as text (`2025-01-31T09:05:00.000001Z`). What chrono's
/// `to_rfc3339_opts(SecondsFormat::Micros, true)` writes, without its
/// formatting machinery, which costs several times more on every append.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    let (date, time) = (at.date_naive(), at.time());
    let nanos = time.nanosecond();
    if !(0..=9999).contains(&date.year()) || nanos >= 1_000_000_000 {
        // Years chrono writes with a sign, and leap seconds.
        return at.to_rfc3339_opts(SecondsFormat::Micros, true);
    }
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    for (range, value) in [
        (0..4, date.year() as u32),
        (5..7, date.month()),
        (8..10, date.day()),
        (11..13, time.hour()),
        (14..16, time.minute()),
        (17..19, time.second()),
        (20..26, nanos / 1_000),
    ] {
        let mut value = value;
        for digit in text[range].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    // Only ASCII digits were written into an ASCII template.
    String::from_utf8(text.to_vec()).expect("ASCII is UTF-8")
}

fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("bad timestamp `{text}`: {e}"))
}

/// Text to bind: sqlx copies a bound `&str` into a `String` and then into
/// an `Arc`, two allocations per value; an `Arc<str>` is bound as it is.
pub(crate) fn text(value: &str) -> Arc<str> {
    Arc::from(value)
}

/// A uuid as stored: hyphenated lower-case text.
pub(crate) fn uuid_text(id: Uuid) -> Arc<str> {
    // Encoding into a buffer skips the formatting machinery of `to_string`.
    let mut buf = Uuid::encode_buffer();
    text(id.hyphenated().encode_lower(&mut buf))
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

/// A column that must not be NULL: its value, or why it has none ("column
/// payload is NULL", "column event_version: mismatched types ...").
fn required<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, String>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    match optional(row, column)? {
        Some(value) => Ok(value),
        None => Err(format!("column {column} is NULL")),
    }
}

/// A column that may be NULL.
fn optional<'r, T>(row: &'r SqliteRow, column: &str) -> Result<Option<T>, String>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get::<Option<T>, _>(column).map_err(|e| {
        // sqlx's own message names the column again; its source says what is wrong.
        let why = match &e {
            sqlx::Error::ColumnDecode { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        format!("column {column}: {why}")
    })
}

fn required_uuid(row: &SqliteRow, column: &str) -> Result<Uuid, String> {
    let text: &str = required(row, column)?;
    Uuid::parse_str(text).map_err(|e| format!("column {column}: bad uuid `{text}`: {e}"))
}

fn optional_uuid(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, String> {
    optional::<&str>(row, column)?
        .map(|t| Uuid::parse_str(t).map_err(|e| format!("column {column}: bad uuid `{t}`: {e}")))
        .transpose()
}

/// Versions and positions count from 1.
fn positive(value: i64, column: &str) -> Result<u64, String> {
    u64::try_from(value)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("column {column}: {value} is not a positive number"))
}

/// What a corrupt event's error names for a stream id it cannot read.
const UNREADABLE_STREAM: &str = "<unreadable stream id>";

/// Decodes an events row selected with the schema's event columns.
///
/// A row that cannot be read is a [`StoreError::Corrupt`] naming its global
/// position, stream and version (whichever of them can be read) and the
/// first column that is wrong.
pub(crate) fn event(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let position = required::<i64>(row, "position").and_then(|p| positive(p, "position"));
    let stream = required::<&str>(row, "stream_id");
    let version =
        required::<i64>(row, "stream_version").and_then(|v| positive(v, "stream_version"));
    let (stream, version, position) = match (stream, version, position) {
        (Ok(stream), Ok(version), Ok(position)) => (StreamId::new(stream), version, position),
        (stream, version, position) => {
            let reason = [
                stream.as_ref().err(),
                version.as_ref().err(),
                position.as_ref().err(),
            ]
            .into_iter()
            .flatten()
            .next()
            .cloned()
            .unwrap_or_default();
            return Err(StoreError::Corrupt {
                stream: StreamId::new(stream.unwrap_or(UNREADABLE_STREAM)),
                version: version.ok(),
                position: position.ok(),
                reason,
            });
        }
    };
    let decode = || -> Result<RecordedEvent, String> {
        let event_type: String = required(row, "event_type")?;
        let event_version: i64 = required(row, "event_version")?;
        let payload: String = required(row, "payload")?;
        let recorded_at: &str = required(row, "recorded_at")?;
        let custom = match optional::<&str>(row, "metadata")? {
            None => BTreeMap::new(),
            Some(text) => {
                serde_json::from_str(text).map_err(|e| format!("column metadata: bad JSON: {e}"))?
            }
        };
        Ok(RecordedEvent {
            event_id: required_uuid(row, "event_id")?,
            global_position: position,
            event_version: u32::try_from(event_version)
                .map_err(|_| format!("column event_version: out of range: {event_version}"))?,
            payload: Payload::from_json(payload)
                .map_err(|e| format!("column payload (type `{event_type}`): bad JSON: {e}"))?,
            metadata: Metadata {
                correlation_id: optional_uuid(row, "correlation_id")?,
                causation_id: optional_uuid(row, "causation_id")?,
                custom,
            },
            recorded_at: parse_timestamp(recorded_at)
                .map_err(|e| format!("column recorded_at: {e}"))?,
            event_type: Cow::Owned(event_type),
            stream_id: stream.clone(),
            stream_version: version,
        })
    };
    decode().map_err(|reason| StoreError::Corrupt {
        stream: stream.clone(),
        version: Some(version),
        position: Some(position),
        reason,
    })
}

/// Decodes a snapshots row of `stream`.
pub(crate) fn snapshot(stream: &StreamId, row: &SqliteRow) -> Result<crate::Snapshot, StoreError> {
    let version = required::<i64>(row, "stream_version").and_then(|v| {
        u64::try_from(v).map_err(|_| format!("column stream_version: negative value {v}"))
    });
    let decode = || -> Result<crate::Snapshot, String> {
        let snapshot_version: i64 = required(row, "snapshot_version")?;
        let state: String = required(row, "state")?;
        let taken_at: &str = required(row, "taken_at")?;
        Ok(crate::Snapshot {
            stream_id: stream.clone(),
            stream_version: version.clone()?,
            snapshot_version: u32::try_from(snapshot_version).map_err(|_| {
                format!("column snapshot_version: out of range: {snapshot_version}")
            })?,
            state: Payload::from_json(state).map_err(|e| format!("column state: bad JSON: {e}"))?,
            taken_at: parse_timestamp(taken_at).map_err(|e| format!("column taken_at: {e}"))?,
        })
    };
    decode().map_err(|reason| StoreError::Corrupt {
        stream: stream.clone(),
        version: version.clone().ok(),
        position: None,
        reason: format!("snapshot: {reason}"),
    })
}

/// Decodes a row of a listing of streams: `stream_id`, `created_at`,
/// `stream_version`, `position`, `recorded_at` (of its newest event).
pub(crate) fn stream_info(row: &SqliteRow) -> Result<crate::StreamInfo, StoreError> {
    let stream = required::<String>(row, "stream_id").map(StreamId::new);
    let decode = || -> Result<crate::StreamInfo, String> {
        let count = |column: &str| {
            required::<i64>(row, column).and_then(|v| {
                u64::try_from(v).map_err(|_| format!("column {column}: negative value {v}"))
            })
        };
        let time = |column: &str| {
            required::<&str>(row, column)
                .and_then(|t| parse_timestamp(t).map_err(|e| format!("column {column}: {e}")))
        };
        Ok(crate::StreamInfo {
            stream_id: stream.clone()?,
            version: count("stream_version")?,
            last_position: count("position")?,
            created_at: time("created_at")?,
            updated_at: time("recorded_at")?,
        })
    };
    decode().map_err(|reason| StoreError::Corrupt {
        stream: stream
            .clone()
            .unwrap_or_else(|_| StreamId::new("<unreadable>")),
        version: None,
        position: None,
        reason: format!("stream listing: {reason}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let chrono = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut samples = vec![
            Utc::now(),
            Utc.timestamp_opt(0, 0).unwrap(),
            Utc.timestamp_opt(-62_167_219_200, 0).unwrap(), // 0000-01-01
            Utc.timestamp_opt(253_402_300_799, 999_999_999).unwrap(), // 9999-12-31T23:59:59
            Utc.timestamp_opt(253_402_300_800, 0).unwrap(), // +10000
            Utc.timestamp_opt(-62_167_219_201, 0).unwrap(), // -0001
            Utc.timestamp_opt(1_483_228_799, 1_500_000_000).unwrap(), // a leap second
        ];
        // A fixed pseudo-random walk over four centuries, nanoseconds included.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = (x % 12_622_780_800) as i64 - 2_208_988_800; // 1900..2300
            samples.push(
                Utc.timestamp_opt(secs, (x >> 34) as u32 % 1_000_000_000)
                    .unwrap(),
            );
        }
        for at in samples {
            assert_eq!(timestamp(at), chrono(at), "{at:?}");
            if (0..=9999).contains(&at.year()) {
                let back = parse_timestamp(&timestamp(at)).unwrap();
                assert_eq!(back.timestamp_micros(), at.timestamp_micros(), "{at:?}");
            }
        }
    }
}
