//! SQLite append throughput: the Annals store next to the same row written by
//! raw sqlx and by rusqlite, side by side in one run, WAL + synchronous=NORMAL.
//!
//! `cargo bench -p annals-tests --bench sqlite_store` (add `-- N` for N appends
//! per case, default 20000). Single-event appends of deposits to 1,000
//! accounts, each with the exact expected version, as the App issues them.

use annals::sqlite::SqliteStore;
use annals::{EventStore, ExpectedVersion, NewEvent, Payload, StreamId};
use sqlx::{Connection, Executor, SqliteConnection};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 1_000;
const CONCURRENCY: usize = 16;

/// The events table the raw clients write: the same columns and indexes as the
/// store's, without its triggers and streams table.
const RAW_SCHEMA: &str = "
    CREATE TABLE events (
        position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL,
        event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL, event_version INTEGER NOT NULL,
        payload TEXT NOT NULL, metadata TEXT, correlation_id TEXT, causation_id TEXT,
        recorded_at TEXT NOT NULL, UNIQUE (stream_id, stream_version));
    CREATE INDEX events_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL;
    CREATE INDEX events_causation ON events (causation_id) WHERE causation_id IS NOT NULL;";

const RAW_INSERT: &str = "INSERT INTO events (stream_id, stream_version, event_id, event_type, event_version, \
    payload, metadata, correlation_id, causation_id, recorded_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, NULL, NULL, NULL, ?6)";

const ANNALS_INSERT: &str = "INSERT INTO annals_events (stream_id, stream_version, event_id, event_type, \
    event_version, payload, metadata, correlation_id, causation_id, recorded_at) \
    VALUES (?1, ?2, ?3, ?4, 1, ?5, NULL, NULL, NULL, ?6)";

fn deposit(n: usize) -> NewEvent {
    NewEvent::new(
        "MoneyDeposited",
        1,
        Payload::from_json(format!(r#"{{"amount":{}}}"#, n % 100 + 1)).unwrap(),
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Appends `count` deposits from `callers` concurrent tasks; each task owns the
/// accounts `t, t + callers, ...` and knows their versions.
async fn annals_store(path: &Path, count: usize, callers: usize) -> Duration {
    let store = SqliteStore::open(path).await.unwrap();
    let streams: Arc<Vec<StreamId>> = Arc::new(
        (0..ACCOUNTS)
            .map(|i| StreamId::new(format!("Account-{i}")))
            .collect(),
    );
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|t| {
            let (store, streams) = (store.clone(), streams.clone());
            tokio::spawn(async move {
                let mine: Vec<usize> = (t..ACCOUNTS).step_by(callers).collect();
                let mut versions = vec![0u64; mine.len()];
                for n in 0..count / callers {
                    let k = n % mine.len();
                    let done = store
                        .append(
                            &streams[mine[k]],
                            ExpectedVersion::Exact(versions[k]),
                            vec![deposit(n)],
                        )
                        .await
                        .unwrap();
                    versions[k] = done.stream_version;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

async fn raw_connection(path: &Path, schema: Schema) -> SqliteConnection {
    if schema == Schema::Annals {
        // The store's own tables, streams table and triggers included.
        drop(SqliteStore::open(path).await.unwrap());
    }
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
        .await
        .unwrap();
    if schema == Schema::Plain {
        conn.execute(RAW_SCHEMA).await.unwrap();
    } else {
        conn.execute("CREATE VIEW events AS SELECT * FROM annals_events")
            .await
            .unwrap();
    }
    conn
}

#[derive(Clone, Copy, PartialEq)]
enum Schema {
    /// One table with the same columns and indexes as the store's events.
    Plain,
    /// The store's schema, written around the store.
    Annals,
}

/// One autocommit sqlx INSERT per append; concurrent callers share the one
/// connection (SQLite has one writer), behind a mutex.
async fn raw_sqlx(path: &Path, count: usize, callers: usize, schema: Schema) -> Duration {
    let conn = Arc::new(tokio::sync::Mutex::new(raw_connection(path, schema).await));
    let insert = if schema == Schema::Plain {
        RAW_INSERT
    } else {
        ANNALS_INSERT
    };
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|t| {
            let conn = conn.clone();
            tokio::spawn(async move {
                let mine: Vec<usize> = (t..ACCOUNTS).step_by(callers).collect();
                let mut versions = vec![0i64; mine.len()];
                for n in 0..count / callers {
                    let k = n % mine.len();
                    versions[k] += 1;
                    let e = deposit(n);
                    let mut conn = conn.lock().await;
                    sqlx::query(insert)
                        .bind(format!("Account-{}", mine[k]))
                        .bind(versions[k])
                        .bind(e.event_id.to_string())
                        .bind(&*e.event_type)
                        .bind(e.payload.as_str())
                        .bind(now())
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

/// rusqlite on one connection: begin, insert, commit per append.
fn rusqlite_rows(path: &Path, count: usize) -> Duration {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
        .unwrap();
    conn.execute_batch(RAW_SCHEMA).unwrap();
    let mut versions = vec![0i64; ACCOUNTS];
    let start = Instant::now();
    for n in 0..count {
        let k = n % ACCOUNTS;
        versions[k] += 1;
        let e = deposit(n);
        let tx = conn.transaction().unwrap();
        tx.prepare_cached(RAW_INSERT)
            .unwrap()
            .execute(rusqlite::params![
                format!("Account-{k}"),
                versions[k],
                e.event_id.to_string(),
                &*e.event_type,
                e.payload.as_str(),
                now()
            ])
            .unwrap();
        tx.commit().unwrap();
    }
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    // Best of three rounds, cases interleaved, so a burst of load elsewhere on
    // the machine does not decide a comparison.
    let mut best = [0f64; 7];
    for round in 0..3 {
        for (c, callers) in [1, CONCURRENCY].into_iter().enumerate() {
            let file = |name: &str| dir.path().join(format!("{name}-{callers}-{round}.db"));
            let r = rate(raw_sqlx(&file("raw"), count, callers, Schema::Plain).await);
            best[c * 3] = best[c * 3].max(r);
            let r = rate(raw_sqlx(&file("raw-annals"), count, callers, Schema::Annals).await);
            best[c * 3 + 1] = best[c * 3 + 1].max(r);
            let r = rate(annals_store(&file("annals"), count, callers).await);
            best[c * 3 + 2] = best[c * 3 + 2].max(r);
        }
        let path = dir.path().join(format!("rusqlite-{round}.db"));
        let r = rate(
            tokio::task::spawn_blocking(move || rusqlite_rows(&path, count))
                .await
                .unwrap(),
        );
        best[6] = best[6].max(r);
    }

    println!(
        "\n{count} single-event appends per case, best of 3 rounds, WAL, synchronous=NORMAL\n"
    );
    println!("| case | appends/s | vs sqlx INSERT at same concurrency |");
    println!("|---|---:|---:|");
    for (c, callers) in [1, CONCURRENCY].into_iter().enumerate() {
        let raw = best[c * 3];
        for (k, name) in [
            "sqlx, one autocommit INSERT per append (plain table)",
            "sqlx, one autocommit INSERT per append into the annals schema (triggers)",
            "annals `SqliteStore::append`",
        ]
        .into_iter()
        .enumerate()
        {
            let r = best[c * 3 + k];
            println!("| {name}, {callers} caller(s) | {r:.0} | {:.2}x |", r / raw);
        }
    }
    println!(
        "| rusqlite, begin + insert + commit (plain table), 1 caller | {:.0} | - |",
        best[6]
    );
}
