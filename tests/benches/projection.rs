//! Issue 8: a transactional `#[projection]` doing one upsert per event,
//! against a raw sqlx loop doing the same upserts with commits of the same
//! batch size, side by side in one run, on PostgreSQL and SQLite.
//!
//! The store holds N deposits (default 200,000, `ANNALS_BENCH_EVENTS`) over
//! S streams (default 1,000, `ANNALS_BENCH_STREAMS`), appended 100 events
//! per call, streams interleaved. Then, `ANNALS_BENCH_ROUNDS` times
//! (default 2), alternating:
//!
//! - `#[projection]`: an `App` with the projection (batch size B, default
//!   500, `ANNALS_BENCH_BATCH`), timed from build to `wait_for_handlers(head)`:
//!   the runner reads each page from the store and applies it in one
//!   transaction on the read database, one upsert per event, then the
//!   checkpoint, then commit.
//! - `raw sqlx`: one connection reading the same columns of the events
//!   table, paged the same way (windows of 4,096 positions, B rows a page),
//!   each payload parsed, and one connection to the read database running,
//!   per page, `BEGIN`, the same upsert per event, a checkpoint upsert,
//!   `COMMIT`.
//! - `store read + project(), no runner`: the store's `read_all_filtered`
//!   and the generated `Projection::project` in the same per-page
//!   transaction, in a plain loop (spawned): the projection minus the runner;
//!   and `store read + direct upsert`: the same loop decoding the event and
//!   running the upsert itself, without the generated code.
//!
//! Both write to a `totals` table in the read database (PostgreSQL: the
//! store's schema; SQLite: a second file, WAL, `synchronous = NORMAL`),
//! emptied before each run, and each run is checked to have counted every
//! event once.
//!
//! `cargo bench -p annals-tests --bench projection [-- postgres|sqlite]`.
//! PostgreSQL runs in a fresh schema `bench_projection_<pid>`, dropped at
//! the end (`ANNALS_BENCH_KEEP` keeps it); SQLite in a temporary directory.

use annals::handler::HandlerOptions;
use annals::postgres::PostgresStore;
use annals::prelude::*;
use annals::sqlite::SqliteStore;
use annals::{AnyStore, EventFilter, ExpectedVersion, NewEvent, StreamId};
use annals_tests::fmt_rate;
use annals_tests::postgres::test_url;
use futures::StreamExt as _;
use serde::Deserialize;
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, Row as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Events per append while filling.
const CHUNK: u64 = 100;
/// The positions one filtered read scans at most (the runtime's
/// `SCAN_WINDOW`): the raw loop pages the same way.
const WINDOW: i64 = 4096;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

/// `AccountEvent::Deposited`'s stored payload, for the raw loop.
#[derive(Deserialize)]
struct DepositedBody {
    amount: u64,
}

const TABLE: &str = "CREATE TABLE IF NOT EXISTS totals (account TEXT PRIMARY KEY, cents BIGINT NOT NULL, events BIGINT NOT NULL)";

/// The one statement per event, the same for both sides and databases.
const UPSERT: &str = "INSERT INTO totals (account, cents, events) VALUES ($1, $2, 1) \
     ON CONFLICT (account) DO UPDATE SET cents = totals.cents + excluded.cents, \
     events = totals.events + 1";

/// The raw loop's checkpoint, one statement per page (the projection's
/// runner writes its own in the same place).
const RAW_CHECKPOINT: &str = "INSERT INTO raw_checkpoint (name, position) VALUES ('raw', $1) \
     ON CONFLICT (name) DO UPDATE SET position = excluded.position";

macro_rules! upserts_on {
    ($projection:ident, $name:literal, $conn:ty) => {
        pub struct $projection;

        #[projection(name = $name)]
        impl $projection {
            async fn on_account(
                &self,
                tx: &mut $conn,
                event: &AccountEvent,
                meta: &EventMeta<'_>,
            ) -> Result<(), sqlx::Error> {
                let AccountEvent::Deposited { amount } = event;
                sqlx::query(UPSERT)
                    .bind(meta.stream_id().as_str())
                    .bind(*amount as i64)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }
        }
    };
}

upserts_on!(PgUpserts, "bench-upserts-postgres", sqlx::PgConnection);
upserts_on!(
    SqliteUpserts,
    "bench-upserts-sqlite",
    sqlx::SqliteConnection
);

/// The process's CPU time, user and system.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we pass; zeroed is a valid rusage.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Appends `n` deposits over `streams` streams, `CHUNK` per call, streams
/// interleaved; returns the sum of the amounts.
async fn fill(store: &AnyStore, n: u64, streams: u64) -> u64 {
    let per_stream = n / streams;
    let calls = (0..per_stream.div_ceil(CHUNK))
        .flat_map(|round| (0..streams).map(move |s| (round, s)))
        .map(|(round, s)| {
            let store = store.clone();
            async move {
                let count = CHUNK.min(per_stream - round * CHUNK);
                let mut sum = 0;
                let events = (0..count)
                    .map(|i| {
                        let amount = (round * CHUNK + i) % 100 + 1;
                        sum += amount;
                        let event = AccountEvent::Deposited { amount };
                        NewEvent::new(
                            event.event_type(),
                            event.event_version(),
                            event.encode().expect("encode"),
                        )
                    })
                    .collect();
                store
                    .append(
                        &StreamId::new(format!("Account-{s}")),
                        ExpectedVersion::Any,
                        events,
                    )
                    .await
                    .expect("fill");
                sum
            }
        });
    let sums: Vec<u64> = futures::stream::iter(calls)
        .buffer_unordered(4)
        .collect()
        .await;
    sums.into_iter().sum()
}

/// The read database: PostgreSQL (in the store's schema) or SQLite.
#[derive(Clone)]
enum ReadDb {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl ReadDb {
    async fn run(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            ReadDb::Postgres(pool) => pool.execute(sql).await.map(drop),
            ReadDb::Sqlite(pool) => pool.execute(sql).await.map(drop),
        }
        .expect("read database statement");
    }

    /// Empty tables and no checkpoints.
    async fn clear(&self) {
        self.run(TABLE).await;
        self.run("CREATE TABLE IF NOT EXISTS raw_checkpoint (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
            .await;
        self.run("DELETE FROM totals").await;
        self.run("DELETE FROM raw_checkpoint").await;
        if let ReadDb::Postgres(pool) = self {
            // PostgreSQL keeps dead rows until a vacuum: start each run alike.
            sqlx::raw_sql("VACUUM totals")
                .execute(pool)
                .await
                .expect("vacuum");
        }
        // The runner makes it again.
        self.run("DROP TABLE IF EXISTS annals_projection_checkpoints")
            .await;
    }

    /// (rows, cents, events) in `totals`.
    async fn totals(&self) -> (i64, i64, i64) {
        let sql = "SELECT count(*), CAST(coalesce(sum(cents), 0) AS BIGINT), \
                   CAST(coalesce(sum(events), 0) AS BIGINT) FROM totals";
        match self {
            ReadDb::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
            ReadDb::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await,
        }
        .expect("totals")
    }
}

/// Where the store lives.
#[derive(Clone)]
enum Place {
    Postgres(String),
    Sqlite(PathBuf),
}

impl Place {
    fn label(&self) -> &'static str {
        match self {
            Place::Postgres(_) => "PostgreSQL",
            Place::Sqlite(_) => "SQLite",
        }
    }

    async fn open(&self) -> AnyStore {
        match self {
            Place::Postgres(schema) => AnyStore::new(
                PostgresStore::builder(test_url())
                    .schema(schema)
                    .connect()
                    .await
                    .expect("PostgreSQL (ANNALS_TEST_POSTGRES_URL)"),
            ),
            Place::Sqlite(path) => AnyStore::new(SqliteStore::open(path).await.expect("SQLite")),
        }
    }

    async fn read_db(&self) -> ReadDb {
        match self {
            Place::Postgres(schema) => {
                let path = format!("SET search_path TO \"{schema}\"");
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .after_connect(move |conn, _| {
                        let path = path.clone();
                        Box::pin(async move { conn.execute(AssertSqlSafe(path)).await.map(drop) })
                    })
                    .connect(&test_url())
                    .await
                    .expect("PostgreSQL read pool");
                ReadDb::Postgres(pool)
            }
            Place::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path.with_extension("read.db"))
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(2)
                    .connect_with(options)
                    .await
                    .expect("SQLite read pool");
                ReadDb::Sqlite(pool)
            }
        }
    }
}

/// The projection over the whole log: from `App` build to its checkpoint
/// at `head`.
async fn projection_run(place: &Place, db: &ReadDb, head: u64, batch: usize) -> Duration {
    let store = place.open().await;
    let options = HandlerOptions::new().batch_size(batch);
    let started = Instant::now();
    let builder = App::builder().store(store);
    let builder = match db {
        ReadDb::Postgres(pool) => builder.projection_with(pool.clone(), PgUpserts, options),
        ReadDb::Sqlite(pool) => builder.projection_with(pool.clone(), SqliteUpserts, options),
    };
    let app = builder.build().expect("app");
    app.wait_for_handlers(head, &[], Duration::from_secs(900))
        .await
        .expect("the projection catches up");
    let elapsed = started.elapsed();
    app.shutdown().await.expect("shutdown");
    elapsed
}

/// The projection without its runner: `read_all_filtered` page by page,
/// each page through the generated `project` in one transaction with the
/// same checkpoint upsert as the raw loop. Splits the store's read path and
/// the generated code from the runner.
async fn store_loop(
    place: &Place,
    db: &ReadDb,
    head: u64,
    batch: usize,
    generated: bool,
) -> Duration {
    use annals::projection::Projection;
    let store = place.open().await;
    let filter = EventFilter::all().event_types(["Deposited"]);
    let started = Instant::now();
    let mut next = 1u64;
    while next <= head {
        let page = store
            .read_all_filtered(next, batch, &filter)
            .await
            .expect("read");
        next = page.next_position;
        match db {
            ReadDb::Postgres(pool) => {
                let mut tx = pool.begin().await.expect("begin");
                for event in &page.events {
                    if generated {
                        PgUpserts.project(&mut tx, event).await.expect("project");
                    } else {
                        let AccountEvent::Deposited { amount } = AccountEvent::decode(
                            &event.event_type,
                            event.event_version,
                            &event.payload,
                        )
                        .expect("decode");
                        sqlx::query(UPSERT)
                            .bind(event.stream_id.as_str())
                            .bind(amount as i64)
                            .execute(&mut *tx)
                            .await
                            .expect("upsert");
                    }
                }
                sqlx::query(RAW_CHECKPOINT)
                    .bind(next as i64 - 1)
                    .execute(&mut *tx)
                    .await
                    .expect("checkpoint");
                tx.commit().await.expect("commit");
            }
            ReadDb::Sqlite(pool) => {
                let mut tx = pool.begin().await.expect("begin");
                for event in &page.events {
                    if generated {
                        SqliteUpserts
                            .project(&mut tx, event)
                            .await
                            .expect("project");
                    } else {
                        let AccountEvent::Deposited { amount } = AccountEvent::decode(
                            &event.event_type,
                            event.event_version,
                            &event.payload,
                        )
                        .expect("decode");
                        sqlx::query(UPSERT)
                            .bind(event.stream_id.as_str())
                            .bind(amount as i64)
                            .execute(&mut *tx)
                            .await
                            .expect("upsert");
                    }
                }
                sqlx::query(RAW_CHECKPOINT)
                    .bind(next as i64 - 1)
                    .execute(&mut *tx)
                    .await
                    .expect("checkpoint");
                tx.commit().await.expect("commit");
            }
        }
    }
    started.elapsed()
}

/// The raw loop on PostgreSQL: read a page, apply it in one transaction.
async fn raw_postgres(schema: &str, db: &ReadDb, head: u64, batch: usize) -> Duration {
    let ReadDb::Postgres(pool) = db else {
        unreachable!("the PostgreSQL raw loop writes to PostgreSQL")
    };
    let mut read = sqlx::PgConnection::connect(&test_url())
        .await
        .expect("connect");
    let mut write = pool.acquire().await.expect("write connection");
    let sql = format!(
        "SELECT position, stream_id, stream_version, event_id, event_type, event_version, \
         payload::text AS payload, correlation_id, causation_id, metadata::text AS metadata, \
         recorded_at FROM \"{schema}\".events WHERE position >= $1 AND position <= $2 \
         ORDER BY position LIMIT $3"
    );
    let started = Instant::now();
    let mut next = 1i64;
    while next <= head as i64 {
        let from = next;
        let rows = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(from)
            .bind(from + WINDOW - 1)
            .bind(batch as i64)
            .fetch_all(&mut read)
            .await
            .expect("raw select");
        let mut tx = write.begin().await.expect("begin");
        for row in &rows {
            let position: i64 = row.get("position");
            let stream: String = row.get("stream_id");
            let _version: i64 = row.get("stream_version");
            let _id: uuid::Uuid = row.get("event_id");
            let _type: String = row.get("event_type");
            let _type_version: i32 = row.get("event_version");
            let payload: &str = row.get("payload");
            let _correlation: Option<uuid::Uuid> = row.get("correlation_id");
            let _causation: Option<uuid::Uuid> = row.get("causation_id");
            let _metadata: String = row.get("metadata");
            let _at: chrono::DateTime<chrono::Utc> = row.get("recorded_at");
            let body: DepositedBody = serde_json::from_str(payload).expect("payload");
            sqlx::query(UPSERT)
                .bind(&stream)
                .bind(body.amount as i64)
                .execute(&mut *tx)
                .await
                .expect("upsert");
            next = position + 1;
        }
        if rows.len() < batch {
            next = from + WINDOW;
        }
        sqlx::query(RAW_CHECKPOINT)
            .bind(next - 1)
            .execute(&mut *tx)
            .await
            .expect("checkpoint");
        tx.commit().await.expect("commit");
    }
    started.elapsed()
}

/// The raw loop on SQLite: the same, reading the store's file.
async fn raw_sqlite(path: &Path, db: &ReadDb, head: u64, batch: usize) -> Duration {
    let ReadDb::Sqlite(pool) = db else {
        unreachable!("the SQLite raw loop writes to SQLite")
    };
    let mut read = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
    )
    .await
    .expect("connect");
    let mut write = pool.acquire().await.expect("write connection");
    let sql = "SELECT position, stream_id, stream_version, event_id, event_type, event_version, \
               payload, metadata, correlation_id, causation_id, recorded_at FROM annals_events \
               WHERE position >= ?1 AND position <= ?2 ORDER BY position LIMIT ?3";
    let started = Instant::now();
    let mut next = 1i64;
    while next <= head as i64 {
        let from = next;
        let rows = sqlx::query(sql)
            .bind(from)
            .bind(from + WINDOW - 1)
            .bind(batch as i64)
            .fetch_all(&mut read)
            .await
            .expect("raw select");
        let mut tx = write.begin().await.expect("begin");
        for row in &rows {
            let position: i64 = row.get("position");
            let stream: String = row.get("stream_id");
            let _version: i64 = row.get("stream_version");
            let _id: String = row.get("event_id");
            let _type: String = row.get("event_type");
            let _type_version: i64 = row.get("event_version");
            let payload: &str = row.get("payload");
            let _metadata: Option<String> = row.get("metadata");
            let _correlation: Option<String> = row.get("correlation_id");
            let _causation: Option<String> = row.get("causation_id");
            let _at: String = row.get("recorded_at");
            let body: DepositedBody = serde_json::from_str(payload).expect("payload");
            sqlx::query(UPSERT)
                .bind(&stream)
                .bind(body.amount as i64)
                .execute(&mut *tx)
                .await
                .expect("upsert");
            next = position + 1;
        }
        if rows.len() < batch {
            next = from + WINDOW;
        }
        sqlx::query(RAW_CHECKPOINT)
            .bind(next - 1)
            .execute(&mut *tx)
            .await
            .expect("checkpoint");
        tx.commit().await.expect("commit");
    }
    started.elapsed()
}

const PROJECTION: &str = "#[projection]";
/// `read_all_filtered` and the generated `project`, no runner, spawned.
const STORE_LOOP: &str = "store read + project(), no runner";
/// The same loop with the upsert written out instead of `project()`.
const STORE_UPSERT: &str = "store read + direct upsert, no runner";
/// The raw loop as a spawned task, on the runtime's worker threads.
const RAW_SPAWNED: &str = "raw sqlx, spawned task";
/// The raw loop on the thread that runs `block_on` (the bench's main future).
const RAW_CALLER: &str = "raw sqlx, caller's thread";

struct Row {
    store: &'static str,
    case: &'static str,
    round: u64,
    elapsed: Duration,
    /// Process CPU (user + system) per event, in microseconds.
    cpu_us: f64,
    rate: f64,
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let n = env_u64("ANNALS_BENCH_EVENTS", 200_000);
    let streams = env_u64("ANNALS_BENCH_STREAMS", 1_000).max(1);
    let batch = env_u64("ANNALS_BENCH_BATCH", 500).max(1) as usize;
    let rounds = env_u64("ANNALS_BENCH_ROUNDS", 2).max(1);
    let keep = std::env::var_os("ANNALS_BENCH_KEEP").is_some();
    let n = n / streams * streams;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "Projection vs raw upserts: tokio multi-thread runtime, {} workers; N = {} events over {} streams, batch {batch}, {rounds} rounds",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fmt_rate(n as f64),
        fmt_rate(streams as f64),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = format!("bench_projection_{}", std::process::id());
    let mut places = Vec::new();
    if wanted("postgres") {
        places.push(Place::Postgres(schema.clone()));
    }
    if wanted("sqlite") {
        places.push(Place::Sqlite(dir.path().join("events.db")));
    }
    let total = Instant::now();
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        for place in &places {
            let store = place.open().await;
            let filled = Instant::now();
            let sum = fill(&store, n, streams).await;
            let head = store.head_position().await.expect("head");
            println!(
                "{}: filled {} events in {:.1} s",
                place.label(),
                fmt_rate(n as f64),
                filled.elapsed().as_secs_f64()
            );
            drop(store);
            let db = place.read_db().await;
            for round in 1..=rounds {
                for case in [
                    PROJECTION,
                    STORE_LOOP,
                    STORE_UPSERT,
                    RAW_SPAWNED,
                    RAW_CALLER,
                ] {
                    db.clear().await;
                    let raw = {
                        let (place, db) = (place.clone(), db.clone());
                        async move {
                            match &place {
                                Place::Postgres(schema) => {
                                    raw_postgres(schema, &db, head, batch).await
                                }
                                Place::Sqlite(path) => raw_sqlite(path, &db, head, batch).await,
                            }
                        }
                    };
                    let cpu = cpu_time();
                    let looped = |generated| {
                        let (place, db) = (place.clone(), db.clone());
                        async move { store_loop(&place, &db, head, batch, generated).await }
                    };
                    let elapsed = match case {
                        PROJECTION => projection_run(place, &db, head, batch).await,
                        STORE_LOOP => tokio::spawn(looped(true)).await.expect("store loop task"),
                        STORE_UPSERT => tokio::spawn(looped(false)).await.expect("store loop task"),
                        RAW_SPAWNED => tokio::spawn(raw).await.expect("raw loop task"),
                        _ => raw.await,
                    };
                    assert_eq!(
                        db.totals().await,
                        (streams as i64, sum as i64, n as i64),
                        "{case} on {} counted every event once",
                        place.label()
                    );
                    rows.push(Row {
                        store: place.label(),
                        case,
                        round,
                        elapsed,
                        cpu_us: (cpu_time() - cpu).as_secs_f64() * 1e6 / n as f64,
                        rate: n as f64 / elapsed.as_secs_f64(),
                    });
                }
            }
        }
        if !keep && places.iter().any(|p| matches!(p, Place::Postgres(_))) {
            let mut admin = annals_tests::postgres::admin_connection().await;
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .expect("drop the bench schema");
        }
        rows
    });
    println!();
    println!(
        "| store | case | round | time | process CPU per event | events/s | vs raw, spawned task (same round) | vs raw, caller's thread (same round) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let raw_rate = |row: &Row, case: &str| {
        rows.iter()
            .find(|r| r.store == row.store && r.round == row.round && r.case == case)
            .map_or(f64::NAN, |r| r.rate)
    };
    for row in &rows {
        println!(
            "| {} | {} | {} | {:.2} s | {:.1} us | {} | {:.2}x | {:.2}x |",
            row.store,
            row.case,
            row.round,
            row.elapsed.as_secs_f64(),
            row.cpu_us,
            fmt_rate(row.rate),
            row.rate / raw_rate(row, RAW_SPAWNED),
            row.rate / raw_rate(row, RAW_CALLER),
        );
    }
    for place in &places {
        let of = |case: &str| -> f64 {
            let rates: Vec<f64> = rows
                .iter()
                .filter(|r| r.store == place.label() && r.case == case)
                .map(|r| r.rate)
                .collect();
            rates.iter().sum::<f64>() / rates.len() as f64
        };
        println!(
            "{}: #[projection] {} events/s; raw, spawned task {} ({:.2}x); raw, caller's thread {} ({:.2}x) (means of {rounds} rounds)",
            place.label(),
            fmt_rate(of(PROJECTION)),
            fmt_rate(of(RAW_SPAWNED)),
            of(PROJECTION) / of(RAW_SPAWNED),
            fmt_rate(of(RAW_CALLER)),
            of(PROJECTION) / of(RAW_CALLER),
        );
    }
    println!("total {:.1} s", total.elapsed().as_secs_f64());
}
