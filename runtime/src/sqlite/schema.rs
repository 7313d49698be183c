//! Table names, migrations and the SQL text the store runs, all derived from
//! one validated table prefix.

use crate::StoreError;
use sqlx::migrate::{Migration, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use std::fmt::Write as _;
use std::sync::Arc;

/// The migrations as written, with `{prefix}` placeholders.
static TEMPLATE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The longest table prefix accepted.
const MAX_PREFIX_LEN: usize = 48;

/// Checks that `prefix` is safe to splice into SQL as the start of a table name.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    let ok = prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphabetic() || c == '_')
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "table prefix `{prefix}` is not a valid identifier: use at most {MAX_PREFIX_LEN} ASCII \
             letters, digits and underscores, not starting with a digit"
        )))
    }
}

/// A SQL string that can be handed to sqlx repeatedly without copying.
#[derive(Clone)]
pub(crate) struct Sql(Arc<str>);

impl Sql {
    fn new(text: String) -> Self {
        Self(text.into())
    }

    /// The text, as sqlx wants it.
    pub(crate) fn q(&self) -> impl SqlSafeStr + use<> {
        // Only ever built from our own templates and a validated prefix.
        AssertSqlSafe(self.0.clone())
    }
}

/// Every fixed statement the store runs, for one prefix.
pub(crate) struct Schema {
    pub(crate) prefix: String,
    pub(crate) read_stream: Sql,
    pub(crate) read_all: Sql,
    /// The filtered read: the log's head, then the wanted events of a window.
    pub(crate) read_filtered: Sql,
    pub(crate) stream_version: Sql,
    pub(crate) event_id_exists: Sql,
    pub(crate) save_snapshot: Sql,
    pub(crate) load_snapshot: Sql,
    pub(crate) save_checkpoint: Sql,
    pub(crate) load_checkpoint: Sql,
    pub(crate) delete_checkpoint: Sql,
    pub(crate) list_checkpoints: Sql,
    pub(crate) head_position: Sql,
    /// A page of streams by id, past `?1` (`>` when exclusive, else `>=`),
    /// up to `?2` of them, below `?3` when bounded: by
    /// `[exclusive as usize * 2 + bounded as usize]`.
    pub(crate) list_streams: [Sql; 4],
    /// The applied migrations, by version (fails while there is no table).
    pub(crate) applied_migrations: Sql,
    /// What one append statement wrote, by stream, from its position range.
    pub(crate) written_between: Sql,
    /// The single-append, single-event insert without `RETURNING`, built once.
    pub(crate) append_one: Sql,
    /// A plain one-event insert with explicit versions, built once.
    pub(crate) insert_one: Sql,
}

/// The columns every event read selects, in the order `decode` expects.
const EVENT_COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
    event_version, payload, metadata, correlation_id, causation_id, recorded_at";

/// Most events written by one append statement. The statements bind at most
/// 10 parameters per event (or 7 per event and 4 per append), so at most
/// 20,000: below SQLite's limit of 32,766.
pub(crate) const MAX_EVENTS_PER_STATEMENT: usize = 2_000;

impl Schema {
    pub(crate) fn new(prefix: &str) -> Result<Self, StoreError> {
        validate_prefix(prefix)?;
        let p = prefix;
        Ok(Self {
            prefix: prefix.to_owned(),
            read_stream: Sql::new(format!(
                "SELECT {EVENT_COLUMNS} FROM {p}events WHERE stream_id = ?1 AND stream_version >= ?2 \
                 ORDER BY stream_version LIMIT ?3"
            )),
            read_all: Sql::new(format!(
                "SELECT {EVENT_COLUMNS} FROM {p}events WHERE position >= ?1 ORDER BY position LIMIT ?2"
            )),
            // The head comes from the statement's own snapshot: a position past
            // it may still be written, so the read never moves beyond it. The
            // lists are JSON arrays (NULL: no list). The category is the part of
            // the stream id before its first `-`, compared whole.
            read_filtered: Sql::new(format!(
                "SELECT h.head, e.* FROM (SELECT coalesce(max(position), 0) AS head FROM {p}events) AS h \
                 LEFT JOIN (SELECT {EVENT_COLUMNS} FROM {p}events \
                 WHERE position >= ?1 AND position <= ?2 \
                 AND (?4 IS NULL OR event_type IN (SELECT value FROM json_each(?4))) \
                 AND (?5 IS NULL OR (instr(stream_id, '-') > 0 \
                 AND substr(stream_id, 1, instr(stream_id, '-') - 1) IN (SELECT value FROM json_each(?5)))) \
                 ORDER BY position LIMIT ?3) AS e ON 1 ORDER BY e.position"
            )),
            head_position: Sql::new(format!("SELECT coalesce(max(position), 0) FROM {p}events")),
            list_streams: [(false, false), (false, true), (true, false), (true, true)]
                .map(|(exclusive, bounded)| list_streams_sql(p, exclusive, bounded)),
            applied_migrations: Sql::new(format!(
                "SELECT version, description FROM {p}migrations WHERE success ORDER BY version"
            )),
            // One row, NULL for a stream without events.
            stream_version: Sql::new(format!(
                "SELECT max(stream_version) FROM {p}events WHERE stream_id = ?1"
            )),
            event_id_exists: Sql::new(format!("SELECT 1 FROM {p}events WHERE event_id = ?1")),
            save_snapshot: Sql::new(format!(
                "INSERT INTO {p}snapshots (stream_id, stream_version, snapshot_version, state, taken_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (stream_id) DO UPDATE SET stream_version = excluded.stream_version, \
                 snapshot_version = excluded.snapshot_version, state = excluded.state, \
                 taken_at = excluded.taken_at"
            )),
            load_snapshot: Sql::new(format!(
                "SELECT stream_version, snapshot_version, state, taken_at FROM {p}snapshots \
                 WHERE stream_id = ?1"
            )),
            save_checkpoint: Sql::new(format!(
                "INSERT INTO {p}checkpoints (name, position, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
                 updated_at = excluded.updated_at"
            )),
            load_checkpoint: Sql::new(format!(
                "SELECT position FROM {p}checkpoints WHERE name = ?1"
            )),
            delete_checkpoint: Sql::new(format!("DELETE FROM {p}checkpoints WHERE name = ?1")),
            // BINARY collation: byte-wise, as the other stores sort.
            list_checkpoints: Sql::new(format!(
                "SELECT name, position FROM {p}checkpoints ORDER BY name"
            )),
            written_between: Sql::new(format!(
                "SELECT stream_id, max(stream_version), min(position), max(position) FROM {p}events \
                 WHERE position BETWEEN ?1 AND ?2 GROUP BY stream_id"
            )),
            append_one: append_sql(p, &[1], false),
            insert_one: insert_sql(p, 1),
        })
    }

    /// The embedded migrations with this schema's prefix substituted, tracked
    /// in the table `{prefix}migrations`.
    pub(crate) fn migrator(&self) -> Migrator {
        let migrations = TEMPLATE
            .iter()
            .map(|m| {
                let sql = m.sql.as_str().replace("{prefix}", &self.prefix);
                Migration::new(
                    m.version,
                    m.description.clone(),
                    m.migration_type,
                    AssertSqlSafe(sql).into_sql_str(),
                    m.no_tx,
                )
            })
            .collect();
        let mut migrator = Migrator::with_migrations(migrations);
        migrator.dangerous_set_table_name(format!("{}migrations", self.prefix));
        migrator
    }

    /// The append statement for appends to distinct streams carrying
    /// `counts[i]` events each.
    pub(crate) fn append(&self, counts: &[usize], returning: bool) -> Sql {
        if counts == [1] && !returning {
            self.append_one.clone()
        } else {
            append_sql(&self.prefix, counts, returning)
        }
    }

    /// A plain insert of `count` events of one stream with explicit versions.
    pub(crate) fn insert(&self, count: usize) -> Sql {
        if count == 1 {
            self.insert_one.clone()
        } else {
            insert_sql(&self.prefix, count)
        }
    }
}

/// A page of the streams table in id order (the primary key, byte-wise),
/// each joined to its newest event through the unique (stream, version)
/// index: one seek per stream listed.
fn list_streams_sql(p: &str, exclusive: bool, bounded: bool) -> Sql {
    let lower = if exclusive { ">" } else { ">=" };
    let upper = if bounded { " AND s.stream_id < ?3" } else { "" };
    Sql::new(format!(
        "SELECT s.stream_id, s.created_at, e.stream_version, e.position, e.recorded_at \
         FROM {p}streams AS s JOIN {p}events AS e ON e.stream_id = s.stream_id \
         AND e.stream_version = (SELECT max(m.stream_version) FROM {p}events AS m \
         WHERE m.stream_id = s.stream_id) \
         WHERE s.stream_id {lower} ?1{upper} ORDER BY s.stream_id LIMIT ?2"
    ))
}

/// A plain multi-row insert binding, per event, `(stream_id, stream_version,
/// event_id, event_type, event_version, payload, metadata, correlation_id,
/// causation_id, recorded_at)`.
///
/// For an append whose expectation fixes its versions (no stream, or exactly
/// n) this is the whole check: the contiguity trigger refuses version n + 1
/// unless the stream is at n, so the guard of [`append_sql`] is not needed
/// and the statement costs what a raw insert does.
fn insert_sql(p: &str, count: usize) -> Sql {
    let mut s = format!(
        "INSERT INTO {p}events (stream_id, stream_version, event_id, event_type, event_version, \
         payload, metadata, correlation_id, causation_id, recorded_at) VALUES "
    );
    for i in 0..count {
        s.push_str(if i == 0 {
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        });
    }
    Sql::new(s)
}

/// One statement that appends to several distinct streams, each guarded by its
/// expected version.
///
/// Per append it binds `(stream_id, kind, expected, recorded_at)`; per event
/// `(event_id, event_type, event_version, payload, metadata, correlation_id,
/// causation_id)`. `kind` is 0 = any, 1 = no stream, 2 = stream exists,
/// 3 = exactly `expected`. The stream versions are read once (a materialised
/// CTE) before any row is written; an append whose guard fails writes nothing
/// and the others go on. With `returning`, the written rows come back as
/// `(stream_id, stream_version, position)`; that costs sqlx a message per row,
/// so callers that can work out the result from the row count do without.
///
/// The text depends only on the shape, so sqlx's statement cache reuses it.
fn append_sql(p: &str, counts: &[usize], returning: bool) -> Sql {
    let mut s = String::with_capacity(512 + counts.iter().sum::<usize>() * 48);
    s.push_str("WITH a(i, stream_id, kind, expected, recorded_at) AS (VALUES ");
    for i in 0..counts.len() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "({i}, ?, ?, ?, ?)");
    }
    let _ = write!(
        s,
        "), b(i, stream_id, v, recorded_at) AS MATERIALIZED (\
         SELECT i, stream_id, coalesce(v, 0), recorded_at FROM (\
         SELECT a.*, (SELECT max(stream_version) FROM {p}events e WHERE e.stream_id = a.stream_id) AS v \
         FROM a) \
         WHERE CASE kind WHEN 0 THEN 1 WHEN 1 THEN v IS NULL \
         WHEN 2 THEN v IS NOT NULL ELSE coalesce(v, 0) = expected END) \
         INSERT INTO {p}events (stream_id, stream_version, event_id, event_type, event_version, \
         payload, metadata, correlation_id, causation_id, recorded_at) \
         SELECT b.stream_id, b.v + e.column3, e.column4, e.column5, e.column6, e.column7, \
         e.column8, e.column9, e.column10, b.recorded_at FROM (VALUES "
    );
    let mut seq = 0usize;
    for (i, &n) in counts.iter().enumerate() {
        for k in 1..=n {
            if seq > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "({seq}, {i}, {k}, ?, ?, ?, ?, ?, ?, ?)");
            seq += 1;
        }
    }
    s.push_str(") AS e JOIN b ON b.i = e.column2 ORDER BY e.column1");
    if returning {
        s.push_str(" RETURNING stream_id, stream_version, position");
    }
    Sql::new(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_that_could_inject_sql_are_refused() {
        for bad in [
            "1abc",
            "a-b",
            "a b",
            "x;DROP TABLE y",
            "é",
            "a\"b",
            &"a".repeat(49),
        ] {
            assert!(
                matches!(validate_prefix(bad), Err(StoreError::Config(_))),
                "{bad}"
            );
        }
        for good in ["", "annals_", "_x", "App2_"] {
            assert!(validate_prefix(good).is_ok(), "{good}");
        }
    }

    /// A file written by the first schema (streams kept their version in a
    /// row updated by every append) keeps its streams, versions and
    /// guarantees under the second (the version is the newest event's).
    #[tokio::test]
    async fn the_second_migration_keeps_what_the_first_recorded() {
        use crate::sqlite::SqliteStore;
        use crate::{EventStore, ExpectedVersion, NewEvent, Payload, StoreError, StreamId};
        use sqlx::{ConnectOptions as _, Executor as _};

        let dir = std::env::temp_dir().join(format!("annals-migrate-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v1.db");
        let schema = Schema::new("annals_").unwrap();
        let mut first =
            Migrator::with_migrations(schema.migrator().iter().take(1).cloned().collect());
        first.dangerous_set_table_name("annals_migrations");
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        first.run_direct(None, &mut conn, false).await.unwrap();
        for (stream, version, at) in [
            ("a", 1, "01"),
            ("a", 2, "02"),
            ("b", 1, "03"),
            ("a", 3, "04"),
        ] {
            conn.execute(AssertSqlSafe(format!(
                "INSERT INTO annals_events (stream_id, stream_version, event_id, event_type, \
                 event_version, payload, recorded_at) VALUES ('{stream}', {version}, '{}', 'T', 1, \
                 '{{}}', '2025-01-{at}T00:00:00.000000Z')",
                uuid::Uuid::now_v7()
            )))
            .await
            .unwrap();
        }
        drop(conn);

        let store = SqliteStore::open(&path).await.unwrap();
        let (a, b) = (StreamId::new("a"), StreamId::new("b"));
        assert_eq!(store.stream_version(&a).await.unwrap(), Some(3));
        assert_eq!(store.stream_version(&b).await.unwrap(), Some(1));
        assert_eq!(store.stream_version(&"c".into()).await.unwrap(), None);
        let event = || NewEvent::new("T", 1, Payload::from_json("{}").unwrap());
        let refused = store
            .append(&a, ExpectedVersion::Exact(2), vec![event()])
            .await;
        assert!(
            matches!(
                refused,
                Err(StoreError::WrongExpectedVersion {
                    actual: Some(3),
                    ..
                })
            ),
            "{refused:?}"
        );
        let refused = store
            .append(&b, ExpectedVersion::NoStream, vec![event()])
            .await;
        assert!(
            matches!(refused, Err(StoreError::WrongExpectedVersion { .. })),
            "{refused:?}"
        );
        let done = store
            .append(&a, ExpectedVersion::Exact(3), vec![event()])
            .await
            .unwrap();
        assert_eq!(done.stream_version, 4);
        let done = store
            .append(&b, ExpectedVersion::StreamExists, vec![event()])
            .await
            .unwrap();
        assert_eq!(done.stream_version, 2);
        store
            .append(&"c".into(), ExpectedVersion::Any, vec![event()])
            .await
            .unwrap();
        store.close().await.unwrap();

        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        let streams: Vec<(String, String)> =
            sqlx::query_as("SELECT stream_id, created_at FROM annals_streams ORDER BY stream_id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(streams.len(), 3);
        assert_eq!(
            streams[0],
            ("a".to_owned(), "2025-01-01T00:00:00.000000Z".to_owned())
        );
        assert_eq!(
            streams[1],
            ("b".to_owned(), "2025-01-03T00:00:00.000000Z".to_owned())
        );
        // Written around the store, a version out of sequence is still refused.
        let gap = conn
            .execute(
                "INSERT INTO annals_events (stream_id, stream_version, event_id, event_type, \
                 event_version, payload, recorded_at) VALUES ('a', 6, 'x', 'T', 1, '{}', 'now')",
            )
            .await
            .unwrap_err();
        assert!(gap.to_string().contains("out of sequence"), "{gap}");
        drop(conn);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn every_placeholder_is_substituted() {
        let schema = Schema::new("t_").unwrap();
        for m in schema.migrator().iter() {
            assert!(!m.sql.as_str().contains('{'), "{}", m.sql.as_str());
            assert!(m.sql.as_str().contains("t_events"));
        }
    }
}
