//! Several nodes on one hot aggregate (issue 7): 16 `App`s, each with its
//! own store handle (as separate processes would have), dispatch to ONE
//! stream at once, on each store. Side by side in one run:
//!
//! - **16 Apps, default settings**: what users get (stream lock after a
//!   conflict, jittered backoff);
//! - **16 Apps, retries only**: the same with the lock and the backoff off and
//!   the former default of 5 attempts, i.e. the behaviour before this issue;
//! - **1 App**: one writer, no contention: the best one stream can do through Annals;
//! - **raw**: one connection inserting the same rows in a loop, one per
//!   transaction, the next version known in advance: the database's limit for
//!   one stream (each append must see the one before it).
//!
//! `cargo bench -p annals-tests --bench contention [-- memory|sqlite|postgres]`.
//! Environment: `CONTENTION_PER_APP` (commands per app, default 1000),
//! `ANNALS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! PostgreSQL runs in fresh schemas `bench_contention_*`, dropped at the end;
//! SQLite in a temporary directory.

use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals::{AnyStore, App, MemoryStore, RetryPolicy};
use annals_tests::contention::{self, Counting, HotCounter, HotRun, Tally};
use annals_tests::fmt_rate;
use annals_tests::postgres::test_url;
use sqlx::Connection as _;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const APPS: usize = 16;

fn per_app() -> u64 {
    std::env::var("CONTENTION_PER_APP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// How the apps retry.
#[derive(Clone, Copy)]
enum Policy {
    Default,
    RetriesOnly,
}

fn app(store: AnyStore, tally: &Arc<Tally>, policy: Policy) -> App {
    let builder = App::builder()
        .store(store)
        .middleware(Counting(tally.clone()));
    let builder = match policy {
        Policy::Default => builder,
        Policy::RetriesOnly => builder.retry(
            RetryPolicy::default()
                .max_attempts(5)
                .lock_stream(false)
                .backoff(Duration::ZERO, Duration::ZERO),
        ),
    };
    builder.build().expect("registry")
}

struct Row {
    case: String,
    run: HotRun,
}

/// Runs `apps` apps (each on a store from `open`) on one counter.
async fn case<F, Fut>(
    label: &str,
    apps: usize,
    per_app: u64,
    policy: Policy,
    counter: &str,
    open: &F,
) -> Row
where
    F: Fn() -> Fut,
    Fut: Future<Output = AnyStore>,
{
    let tally = Arc::new(Tally::default());
    let mut list = Vec::new();
    for _ in 0..apps {
        list.push(app(open().await, &tally, policy));
    }
    let run = contention::hot_stream(&list, &tally, counter, per_app).await;
    let applied = run.commands - run.conflicts_returned - run.errors.len() as u64;
    let check = app(open().await, &Arc::new(Tally::default()), Policy::Default);
    let (state, _) = check
        .load::<HotCounter>(counter)
        .await
        .expect("the counter loads");
    assert_eq!(
        state.total, applied,
        "{label}: every acknowledged command applied once"
    );
    for app in list {
        let _ = app.shutdown().await;
    }
    Row {
        case: label.to_owned(),
        run,
    }
}

fn print(store: &str, rows: &[Row], raw: Option<(String, f64)>) {
    println!();
    println!("### {store}: {APPS} apps x 1 stream");
    println!();
    println!(
        "| case | commands | commands/s | conflicts returned to callers | other errors | conflicts met (retried) | handler retries |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let r = &row.run;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.case,
            fmt_rate(r.commands as f64),
            fmt_rate(r.rate()),
            r.conflicts_returned,
            r.errors.len(),
            r.conflicts_met,
            r.retries
        );
        if let Some(first) = r.errors.first() {
            println!("|   first error: {first} | | | | | | |");
        }
    }
    if let Some((what, rate)) = raw {
        println!("| raw: {what} | | {} | | | | |", fmt_rate(rate));
    }
}

/// The three cases of one store, on counters `{prefix}1..3`.
async fn cases<F, Fut>(prefix: &str, per_app: u64, open: F) -> Vec<Row>
where
    F: Fn() -> Fut,
    Fut: Future<Output = AnyStore>,
{
    let counter = |n: u32| format!("{prefix}{n}");
    vec![
        case(
            "16 apps, default settings",
            APPS,
            per_app,
            Policy::Default,
            &counter(1),
            &open,
        )
        .await,
        case(
            "16 apps, retries only (before)",
            APPS,
            per_app,
            Policy::RetriesOnly,
            &counter(2),
            &open,
        )
        .await,
        case(
            "1 app",
            1,
            per_app * APPS as u64,
            Policy::Default,
            &counter(3),
            &open,
        )
        .await,
    ]
}

/// One connection appending rows to one stream, a transaction each, for `secs`.
async fn raw_postgres(url: &str, schema: &str, secs: Duration) -> f64 {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let table = format!("\"{schema}\".raw_hot");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; CREATE TABLE {table} (
            position bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            stream_id text NOT NULL, stream_version bigint NOT NULL,
            event_id uuid NOT NULL UNIQUE, event_type text NOT NULL, payload jsonb NOT NULL,
            UNIQUE (stream_id, stream_version))"
    )))
    .execute(&mut conn)
    .await
    .expect("raw table");
    let insert = format!(
        "INSERT INTO {table} (stream_id, stream_version, event_id, event_type, payload) \
         VALUES ('HotCounter-raw', $1, $2, 'Bumped', '{{\"by\":1}}')"
    );
    let started = Instant::now();
    let mut version = 0i64;
    while started.elapsed() < secs {
        version += 1;
        sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
            .bind(version)
            .bind(uuid::Uuid::now_v7())
            .execute(&mut conn)
            .await
            .expect("raw insert");
    }
    version as f64 / started.elapsed().as_secs_f64()
}

async fn raw_sqlite(path: &std::path::Path, secs: Duration) -> f64 {
    use sqlx::ConnectOptions as _;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .connect()
        .await
        .expect("open");
    sqlx::raw_sql(
        "CREATE TABLE raw_hot (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL,
         stream_version INTEGER NOT NULL, event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL,
         payload TEXT NOT NULL, UNIQUE (stream_id, stream_version))",
    )
    .execute(&mut conn)
    .await
    .expect("raw table");
    let started = Instant::now();
    let mut version = 0i64;
    while started.elapsed() < secs {
        version += 1;
        sqlx::query(
            "INSERT INTO raw_hot (stream_id, stream_version, event_id, event_type, payload) \
             VALUES ('HotCounter-raw', ?1, ?2, 'Bumped', '{\"by\":1}')",
        )
        .bind(version)
        .bind(uuid::Uuid::now_v7().to_string())
        .execute(&mut conn)
        .await
        .expect("raw insert");
    }
    version as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let per_app = per_app();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let total = Instant::now();
    println!(
        "Contention: {APPS} apps, each on its own store handle, {per_app} commands each, one stream; \
         tokio multi-thread runtime, 2 workers"
    );
    runtime.block_on(async {
        if wanted("memory") {
            let store = MemoryStore::new();
            let open = || {
                let store = store.clone();
                async move { AnyStore::new(store) }
            };
            let rows = cases("m", per_app, open).await;
            print("MemoryStore (one store shared)", &rows, None);
        }
        if wanted("sqlite") {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("hot.db");
            let open = || {
                let path = path.clone();
                async move { AnyStore::new(SqliteStore::open(&path).await.expect("open")) }
            };
            let rows = cases("s", per_app, open).await;
            let raw = raw_sqlite(&dir.path().join("raw.db"), Duration::from_secs(4)).await;
            print(
                "SQLite (a handle per app on one file, WAL, synchronous = NORMAL)",
                &rows,
                Some(("one sqlx connection, autocommit INSERT per row".into(), raw)),
            );
        }
        if wanted("postgres") {
            let url = test_url();
            let schema = format!("bench_contention_{}", std::process::id());
            let open = || {
                let url = url.clone();
                let schema = schema.clone();
                async move {
                    AnyStore::new(
                        PostgresStore::builder(url)
                            .schema(schema)
                            .max_connections(3)
                            .connect()
                            .await
                            .expect("PostgreSQL is reachable"),
                    )
                }
            };
            let rows = cases("p", per_app, open).await;
            let raw = raw_postgres(&url, &schema, Duration::from_secs(4)).await;
            print(
                "PostgreSQL (a store per app on one schema, 3 connections each)",
                &rows,
                Some(("one connection, one INSERT per transaction".into(), raw)),
            );
            let mut admin = annals_tests::postgres::admin_connection().await;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(&mut admin)
            .await
            .expect("drop the bench schema");
        }
    });
    println!();
    println!("total bench time: {:.1} s", total.elapsed().as_secs_f64());
}
