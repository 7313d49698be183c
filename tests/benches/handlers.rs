//! Event handlers (issue 8), side by side in one run, one table per section:
//!
//! 1. `catch-up`: one `#[event_handler]` that counts and sums a field,
//!    started on a store holding N events (default 1,000,000;
//!    `ANNALS_BENCH_EVENTS`; filled by `EventStore::append`, 1,000 events per
//!    call), timed from `App` build to `wait_for_handlers(head)`, on
//!    PostgreSQL, SQLite and memory, with the default `HandlerOptions`, at
//!    several `HandlerOptions::batch_size`s, and once with the caller polling
//!    a counter instead (nobody waiting on the handler's position). To tell the runner's cost from the store's:
//!    `read_all_filtered` in a plain loop, and the same loop reading the next
//!    page while it decodes this one. The raw limit: one sqlx connection
//!    running `SELECT` of the same columns, paged the same way by position
//!    (windows of 4,096 positions, 500 or 4,096 rows a page, each run before
//!    and after the handler runs; rows compare with the best of the four),
//!    every column fetched into a Rust value and each payload parsed into the
//!    event's fields (one serde pass into a struct).
//! 2. `lag`: commands dispatched one at a time at 200/s for 5 s, then at
//!    10/s for 10 s; lag = when the handler saw the event - just before its
//!    dispatch; p50/p99/max.
//! 3. `consistency`: dispatch latency with `wait_for_handler(name)` against
//!    plain dispatch, alternating, at the same pace, p50/p99.
//! 4. `fan-out`: 50 handlers on one PostgreSQL schema: its connections (from
//!    `pg_stat_activity`, by the store's `application_name`), the process's
//!    CPU time and the store calls made over 10 s idle, next to the same app
//!    without handlers, and how long 50 handlers take to see one event.
//!
//! `cargo bench -p annals-tests --bench handlers [-- SECTION...]`, where a
//! section runs when its name contains an argument (`catch-up`, `lag`,
//! `consistency`, `fan-out`; `postgres`, `sqlite`, `memory` narrow sections
//! 1-3 to those stores). Environment: `ANNALS_BENCH_EVENTS` (section 1's N),
//! `ANNALS_BENCH_BATCHES` (comma-separated batch sizes, default
//! `500,1000,2000,4096,10000`), `ANNALS_BENCH_IDLE_SECS` (section 4's idle
//! window, default 10), `ANNALS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), `ANNALS_BENCH_KEEP` (set:
//! keep the PostgreSQL schemas, for profiling). PostgreSQL runs in fresh
//! schemas `bench_handlers_<pid>_*`, dropped at the end; SQLite in a
//! temporary directory.

use annals::handler::HandlerOptions;
use annals::postgres::PostgresStore;
use annals::prelude::*;
use annals::sqlite::SqliteStore;
use annals::{
    AnyStore, AppendResult, EventFilter, EventHandler, ExpectedVersion, FilteredPage, LogWatch,
    Metadata, NewEvent, RecordedEvent, Snapshot, StoreError, StoreFuture, StreamHint, StreamId,
    StreamLock,
};
use annals_tests::fmt_rate;
use annals_tests::postgres::{application_name, test_url};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use serde::Deserialize;
use sqlx::{AssertSqlSafe, Connection as _, Row as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Events per stream when filling a store (one append each).
const PER_STREAM: u64 = 1_000;
/// Appends in flight while filling.
const FILL_CONCURRENCY: usize = 4;
/// Section 2 and 3: commands per second, and for how long.
const RATE: u64 = 200;
const LAG_SECS: u64 = 5;
/// Section 2's second run: a quiet app, where a missed wake-up shows.
const SLOW_RATE: u64 = 10;
const SLOW_SECS: u64 = 10;
/// Section 4: how many handlers.
const FAN_OUT: usize = 50;
/// The positions one filtered read scans at most (the runtime's `SCAN_WINDOW`):
/// the raw reads page the same way.
const WINDOW: i64 = 4096;

// ---------------------------------------------------------------- domain

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

/// The payload of `Deposited`, for the raw reads: one serde pass.
#[derive(Deserialize)]
struct DepositedBody {
    amount: u64,
}

#[command(aggregate = Account)]
pub struct Deposit {
    #[id]
    pub id: u32,
    pub amount: u64,
}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub struct Account {
    balance: u64,
}

#[aggregate]
impl Account {
    #[handle]
    fn deposit(&self, command: Deposit) -> AccountEvent {
        AccountEvent::Deposited {
            amount: command.amount,
        }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        let AccountEvent::Deposited { amount } = event;
        self.balance = self.balance.wrapping_add(*amount);
    }
}

/// Section 1: an in-memory read model, a count and a sum.
#[derive(Clone, Default)]
pub struct Summer {
    count: Arc<AtomicU64>,
    sum: Arc<AtomicU64>,
}

#[event_handler(name = "bench-summer")]
impl Summer {
    fn on_account(&self, event: &AccountEvent) {
        let AccountEvent::Deposited { amount } = event;
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(*amount, Ordering::Relaxed);
    }
}

/// Sections 2 and 3: when it saw each deposit, by its amount (a sequence
/// number): nanoseconds since `base`, plus one (0: not seen).
#[derive(Clone)]
pub struct Clock {
    base: Instant,
    seen: Arc<Vec<AtomicU64>>,
}

impl Clock {
    fn new(base: Instant, slots: usize) -> Self {
        Self {
            base,
            seen: Arc::new((0..slots).map(|_| AtomicU64::new(0)).collect()),
        }
    }
}

#[event_handler(name = "bench-clock")]
impl Clock {
    fn on_account(&self, event: &AccountEvent) {
        let AccountEvent::Deposited { amount } = event;
        let at = self.base.elapsed().as_nanos() as u64 + 1;
        if let Some(slot) = self.seen.get(*amount as usize) {
            slot.store(at, Ordering::Relaxed);
        }
    }
}

/// Section 4: fifty handlers that do nothing, each its own type (a
/// handler's durable name is a constant of its type).
macro_rules! idle_handlers {
    ($($name:ident $label:tt),* $(,)?) => {
        $(
            #[derive(Default)]
            pub struct $name;

            #[event_handler(name = $label)]
            impl $name {
                fn on_account(&self, _event: &AccountEvent) {}
            }
        )*

        fn with_idle_handlers(mut builder: annals::AppBuilder) -> annals::AppBuilder {
            $( builder = builder.handler($name); )*
            builder
        }
    };
}

idle_handlers!(
    H00 "idle-00", H01 "idle-01", H02 "idle-02", H03 "idle-03", H04 "idle-04",
    H05 "idle-05", H06 "idle-06", H07 "idle-07", H08 "idle-08", H09 "idle-09",
    H10 "idle-10", H11 "idle-11", H12 "idle-12", H13 "idle-13", H14 "idle-14",
    H15 "idle-15", H16 "idle-16", H17 "idle-17", H18 "idle-18", H19 "idle-19",
    H20 "idle-20", H21 "idle-21", H22 "idle-22", H23 "idle-23", H24 "idle-24",
    H25 "idle-25", H26 "idle-26", H27 "idle-27", H28 "idle-28", H29 "idle-29",
    H30 "idle-30", H31 "idle-31", H32 "idle-32", H33 "idle-33", H34 "idle-34",
    H35 "idle-35", H36 "idle-36", H37 "idle-37", H38 "idle-38", H39 "idle-39",
    H40 "idle-40", H41 "idle-41", H42 "idle-42", H43 "idle-43", H44 "idle-44",
    H45 "idle-45", H46 "idle-46", H47 "idle-47", H48 "idle-48", H49 "idle-49",
);

// ---------------------------------------------------------------- helpers

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

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

/// The `q` quantile of `sorted` (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// Where each store of a section lives, and how to open another handle on it
/// (as another process would: an `App::shutdown` closes only its own).
#[derive(Clone)]
enum Place {
    Memory(MemoryStore),
    Sqlite(PathBuf),
    Postgres(String),
}

impl Place {
    fn label(&self) -> &'static str {
        match self {
            Place::Memory(_) => "memory",
            Place::Sqlite(_) => "SQLite",
            Place::Postgres(_) => "PostgreSQL",
        }
    }

    async fn open(&self) -> AnyStore {
        match self {
            Place::Memory(store) => AnyStore::new(store.clone()),
            Place::Sqlite(path) => AnyStore::new(SqliteStore::open(path).await.expect("SQLite")),
            Place::Postgres(schema) => AnyStore::new(pg(schema).await),
        }
    }
}

async fn pg(schema: &str) -> PostgresStore {
    let url = test_url();
    PostgresStore::builder(&url)
        .schema(schema)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} (ANNALS_TEST_POSTGRES_URL): {e}"))
}

fn schema_name(tag: &str) -> String {
    format!("bench_handlers_{}_{tag}", std::process::id())
}

async fn drop_schemas(schemas: &[String]) {
    if schemas.is_empty() {
        return;
    }
    let mut admin = annals_tests::postgres::admin_connection().await;
    for schema in schemas {
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("drop a bench schema");
    }
}

// ---------------------------------------------------------------- 1. catch-up

/// Appends `n` deposits, `PER_STREAM` per `EventStore::append` call, a few
/// calls in flight; returns the sum of the amounts and the fill rate.
async fn fill(store: &AnyStore, n: u64) -> (u64, f64) {
    let streams = n.div_ceil(PER_STREAM);
    let started = Instant::now();
    let appends = futures::stream::iter(0..streams).map(|s| {
        let store = store.clone();
        async move {
            let count = PER_STREAM.min(n - s * PER_STREAM);
            let command = Uuid::now_v7();
            let metadata = Metadata {
                correlation_id: Some(command),
                causation_id: Some(command),
                ..Metadata::default()
            };
            let mut sum = 0;
            let events = (0..count)
                .map(|i| {
                    let amount = (s * PER_STREAM + i) % 100 + 1;
                    sum += amount;
                    let event = AccountEvent::Deposited { amount };
                    NewEvent::new(
                        event.event_type(),
                        event.event_version(),
                        event.encode().expect("encode"),
                    )
                    .with_metadata(metadata.clone())
                })
                .collect();
            store
                .append(
                    &StreamId::new(format!("Account-{s}")),
                    ExpectedVersion::NoStream,
                    events,
                )
                .await
                .expect("fill");
            sum
        }
    });
    let sums: Vec<u64> = appends.buffer_unordered(FILL_CONCURRENCY).collect().await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    (sums.into_iter().sum(), rate)
}

/// One catch-up: a fresh handle, the checkpoint deleted, then timed from
/// `App` build to the handler at `head`.
struct CatchUp {
    elapsed: Duration,
    cpu: Duration,
}

impl CatchUp {
    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64()
    }
}

/// With `poll`, the caller looks at the handler's count every millisecond
/// before it waits: nobody waits on the handler's position meanwhile.
/// `batch`: `None` for the default `HandlerOptions`.
async fn catch_up(
    place: &Place,
    head: u64,
    batch: Option<usize>,
    n: u64,
    sum: u64,
    poll: bool,
) -> CatchUp {
    let store = place.open().await;
    store
        .delete_checkpoint(Summer::NAME)
        .await
        .expect("reset the checkpoint");
    let summer = Summer::default();
    let cpu = cpu_time();
    let started = Instant::now();
    let app = App::builder()
        .store(store)
        .handler_with(
            summer.clone(),
            batch.map_or_else(HandlerOptions::new, |b| HandlerOptions::new().batch_size(b)),
        )
        .build()
        .expect("an app with a handler");
    if poll {
        while summer.count.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    app.wait_for_handlers(head, &[], Duration::from_secs(3600))
        .await
        .expect("the handler catches up");
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu;
    assert_eq!(
        summer.count.load(Ordering::Relaxed),
        n,
        "every event handled once"
    );
    assert_eq!(
        summer.sum.load(Ordering::Relaxed),
        sum,
        "every amount summed"
    );
    app.shutdown().await.expect("shut down");
    CatchUp { elapsed, cpu }
}

/// The store without the runner: `read_all_filtered` with the handler's
/// filter in a loop, each event decoded as the handler's method takes it.
async fn store_loop(place: &Place, head: u64, batch: usize, n: u64, sum: u64) -> CatchUp {
    let store = place.open().await;
    let filter = EventFilter::all().event_types(["Deposited"]);
    let cpu = cpu_time();
    let started = Instant::now();
    let (mut next, mut count, mut total) = (1u64, 0u64, 0u64);
    while next <= head {
        let page = store
            .read_all_filtered(next, batch, &filter)
            .await
            .expect("read");
        for event in &page.events {
            let AccountEvent::Deposited { amount } =
                AccountEvent::decode(&event.event_type, event.event_version, &event.payload)
                    .expect("decode");
            count += 1;
            total += amount;
        }
        next = page.next_position;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu;
    assert_eq!((count, total), (n, sum), "the store loop saw every event");
    store.close().await.expect("close");
    CatchUp { elapsed, cpu }
}

/// The store loop with the next page read while this one is decoded: what
/// a runner that reads ahead would get.
async fn store_loop_ahead(place: &Place, head: u64, batch: usize, n: u64, sum: u64) -> CatchUp {
    let store = place.open().await;
    let filter = Arc::new(EventFilter::all().event_types(["Deposited"]));
    let read = |from: u64| {
        let (store, filter) = (store.clone(), filter.clone());
        tokio::spawn(async move { store.read_all_filtered(from, batch, &filter).await })
    };
    let cpu = cpu_time();
    let started = Instant::now();
    let (mut count, mut total) = (0u64, 0u64);
    let mut pending = Some(read(1));
    while let Some(reading) = pending.take() {
        let page = reading.await.expect("the read task").expect("read");
        let next = page.next_position;
        if next <= head {
            pending = Some(read(next));
        }
        for event in &page.events {
            let AccountEvent::Deposited { amount } =
                AccountEvent::decode(&event.event_type, event.event_version, &event.payload)
                    .expect("decode");
            count += 1;
            total += amount;
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu;
    assert_eq!((count, total), (n, sum), "the store loop saw every event");
    store.close().await.expect("close");
    CatchUp { elapsed, cpu }
}

/// The raw limit on PostgreSQL: one connection, the store's columns, paged by
/// position in windows of the runtime's scan window and `page` rows, every
/// column decoded into its Rust type and every payload parsed.
async fn raw_postgres(schema: &str, head: u64, page: usize, n: u64, sum: u64) -> CatchUp {
    let mut conn = sqlx::PgConnection::connect(&test_url())
        .await
        .expect("connect");
    let sql = format!(
        "SELECT position, stream_id, stream_version, event_id, event_type, event_version, \
         payload::text AS payload, correlation_id, causation_id, metadata::text AS metadata, \
         recorded_at FROM \"{schema}\".events WHERE position >= $1 AND position <= $2 \
         ORDER BY position LIMIT $3"
    );
    let cpu = cpu_time();
    let started = Instant::now();
    let (mut next, mut count, mut total) = (1i64, 0u64, 0u64);
    while next <= head as i64 {
        let from = next;
        let rows = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(from)
            .bind(from + WINDOW - 1)
            .bind(page as i64)
            .fetch_all(&mut conn)
            .await
            .expect("raw select");
        for row in &rows {
            let position: i64 = row.get("position");
            let _stream: String = row.get("stream_id");
            let _version: i64 = row.get("stream_version");
            let _id: Uuid = row.get("event_id");
            let _type: String = row.get("event_type");
            let _type_version: i32 = row.get("event_version");
            let payload: &str = row.get("payload");
            let _correlation: Option<Uuid> = row.get("correlation_id");
            let _causation: Option<Uuid> = row.get("causation_id");
            let _metadata: String = row.get("metadata");
            let _at: chrono::DateTime<chrono::Utc> = row.get("recorded_at");
            let body: DepositedBody = serde_json::from_str(payload).expect("payload");
            count += 1;
            total += body.amount;
            next = position + 1;
        }
        // A short page scanned its whole window, as the store's reads do.
        if rows.len() < page {
            next = from + WINDOW;
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu;
    assert_eq!((count, total), (n, sum), "the raw read saw every event");
    CatchUp { elapsed, cpu }
}

/// The raw limit on SQLite: one sqlx connection, the same columns and pages,
/// text columns as `String`s (the store also parses the uuids and
/// timestamps), every payload parsed.
async fn raw_sqlite(path: &Path, head: u64, page: usize, n: u64, sum: u64) -> CatchUp {
    let mut conn = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
    )
    .await
    .expect("connect");
    let sql = "SELECT position, stream_id, stream_version, event_id, event_type, event_version, \
               payload, metadata, correlation_id, causation_id, recorded_at FROM annals_events \
               WHERE position >= ?1 AND position <= ?2 ORDER BY position LIMIT ?3";
    let cpu = cpu_time();
    let started = Instant::now();
    let (mut next, mut count, mut total) = (1i64, 0u64, 0u64);
    while next <= head as i64 {
        let from = next;
        let rows = sqlx::query(sql)
            .bind(from)
            .bind(from + WINDOW - 1)
            .bind(page as i64)
            .fetch_all(&mut conn)
            .await
            .expect("raw select");
        for row in &rows {
            let position: i64 = row.get("position");
            let _stream: String = row.get("stream_id");
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
            count += 1;
            total += body.amount;
            next = position + 1;
        }
        // A short page scanned its whole window, as the store's reads do.
        if rows.len() < page {
            next = from + WINDOW;
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu;
    assert_eq!((count, total), (n, sum), "the raw read saw every event");
    CatchUp { elapsed, cpu }
}

struct CatchUpRow {
    case: String,
    run: CatchUp,
    /// The raw rate this row is compared with.
    raw: Option<f64>,
}

async fn catch_up_section(place: &Place, n: u64, batches: &[usize]) -> Vec<CatchUpRow> {
    let label = place.label();
    let store = place.open().await;
    let (sum, fill_rate) = fill(&store, n).await;
    let head = store.head_position().await.expect("head");
    store.close().await.expect("close the filling handle");
    println!(
        "  {label}: filled {} events ({} streams x {PER_STREAM}, {FILL_CONCURRENCY} \
         `EventStore::append` calls in flight) at {} events/s; head {head}",
        fmt_rate(n as f64),
        n.div_ceil(PER_STREAM),
        fmt_rate(fill_rate)
    );
    let raw = |page: usize| {
        let place = place.clone();
        async move {
            match &place {
                Place::Postgres(schema) => Some(raw_postgres(schema, head, page, n, sum).await),
                Place::Sqlite(path) => Some(raw_sqlite(path, head, page, n, sum).await),
                Place::Memory(_) => None,
            }
        }
    };
    let mut rows = Vec::new();
    // Raw first, then the runner at each batch size, then raw again: the
    // raw rate compared is the best of them (the machine drifts).
    let first_raw = [raw(500).await, raw(4096).await];
    let run = catch_up(place, head, None, n, sum, false).await;
    println!(
        "  {label}: default options: {} events/s",
        fmt_rate(run.rate(n))
    );
    rows.push(CatchUpRow {
        case: format!("{label}: handler, default options (batch_size 4096)"),
        run,
        raw: None,
    });
    for &batch in batches {
        let run = catch_up(place, head, Some(batch), n, sum, false).await;
        println!(
            "  {label}: batch {batch}: {} events/s",
            fmt_rate(run.rate(n))
        );
        rows.push(CatchUpRow {
            case: format!("{label}: handler, batch_size {batch}"),
            run,
            raw: None,
        });
    }
    let run = catch_up(place, head, None, n, sum, true).await;
    println!(
        "  {label}: default options, polled: {} events/s",
        fmt_rate(run.rate(n))
    );
    rows.push(CatchUpRow {
        case: format!(
            "{label}: handler, default options, caller polls a counter (no position waiter)"
        ),
        run,
        raw: None,
    });
    for batch in [500, 4096] {
        let run = store_loop(place, head, batch, n, sum).await;
        println!(
            "  {label}: store loop, batch {batch}: {} events/s",
            fmt_rate(run.rate(n))
        );
        rows.push(CatchUpRow {
            case: format!("{label}: `read_all_filtered` loop, no runner, batch {batch}"),
            run,
            raw: None,
        });
    }
    for batch in [500, 4096] {
        let run = store_loop_ahead(place, head, batch, n, sum).await;
        println!(
            "  {label}: store loop reading ahead, batch {batch}: {} events/s",
            fmt_rate(run.rate(n))
        );
        rows.push(CatchUpRow {
            case: format!("{label}: `read_all_filtered` loop, next page read ahead, batch {batch}"),
            run,
            raw: None,
        });
    }
    let second_raw = [raw(500).await, raw(4096).await];
    let raws: Vec<(usize, CatchUp)> = [500, 4096, 500, 4096]
        .into_iter()
        .zip(first_raw.into_iter().chain(second_raw))
        .filter_map(|(page, run)| run.map(|run| (page, run)))
        .collect();
    let best = raws.iter().map(|(_, r)| r.rate(n)).fold(f64::NAN, f64::max);
    for row in &mut rows {
        row.raw = Some(best);
    }
    for (i, (page, run)) in raws.into_iter().enumerate() {
        rows.push(CatchUpRow {
            case: format!(
                "{label}: raw sqlx SELECT, pages of {page} ({} run)",
                if i < 2 { "first" } else { "second" }
            ),
            run,
            raw: None,
        });
    }
    rows
}

fn print_catch_up(n: u64, rows: &[CatchUpRow]) {
    println!();
    println!(
        "### 1. Catch-up of one handler over {} stored events",
        fmt_rate(n as f64)
    );
    println!();
    println!("| case | seconds | events/s | process CPU | vs best raw |");
    println!("|---|---:|---:|---:|---:|");
    for row in rows {
        let rate = row.run.rate(n);
        println!(
            "| {} | {:.2} | {} | {:.0} % | {} |",
            row.case,
            row.run.elapsed.as_secs_f64(),
            fmt_rate(rate),
            100.0 * row.run.cpu.as_secs_f64() / row.run.elapsed.as_secs_f64(),
            row.raw.map_or(String::new(), |raw| ratio(rate, raw)),
        );
    }
}

// ---------------------------------------------------------------- 2 and 3: lag, consistency

struct LiveRow {
    store: &'static str,
    lag: Vec<Duration>,
    lag_slow: Vec<Duration>,
    plain: Vec<Duration>,
    strong: Vec<Duration>,
}

/// Sections 2 and 3 on one store: a fresh app with the clock handler.
/// Dispatches `count` deposits one at a time, one per tick of `rate`, with
/// amounts `first..first + count`; the lag of each, sorted.
async fn lag_run(app: &App, clock: &Clock, rate: u64, count: usize, first: usize) -> Vec<Duration> {
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut before = Vec::with_capacity(count);
    let mut last = 0;
    for seq in first..first + count {
        tick.tick().await;
        before.push(clock.base.elapsed());
        let done = app
            .dispatch(Deposit {
                id: (seq % 20) as u32,
                amount: seq as u64,
            })
            .await
            .expect("dispatch");
        last = done.positions.unwrap().1;
    }
    app.wait_for_handlers(last, &[], Duration::from_secs(60))
        .await
        .expect("the handler catches up");
    let mut lags: Vec<Duration> = before
        .iter()
        .enumerate()
        .map(|(i, before)| {
            let seen = clock.seen[first + i].load(Ordering::Relaxed);
            assert!(seen > 0, "the handler saw deposit {}", first + i);
            Duration::from_nanos(seen - 1).saturating_sub(*before)
        })
        .collect();
    lags.sort();
    lags
}

/// Sections 2 and 3 on one store: a fresh app with the clock handler.
async fn live(place: &Place, lag: bool, consistency: bool) -> LiveRow {
    let commands = (RATE * LAG_SECS) as usize;
    let slow = (SLOW_RATE * SLOW_SECS) as usize;
    // Amounts: 1..=commands for the lag run, then the slow run's, then consistency's.
    let clock = Clock::new(Instant::now(), 2 * commands + slow + 2);
    let store = place.open().await;
    let app = App::builder()
        .store(store)
        .handler(clock.clone())
        .build()
        .expect("an app with a handler");
    // Warm: the handler started, the aggregates loaded, the pool filled.
    for id in 0..20 {
        let done = app
            .dispatch(Deposit {
                id,
                amount: u64::MAX,
            })
            .await
            .expect("warm-up");
        app.wait_for_handlers(done.positions.unwrap().1, &[], Duration::from_secs(30))
            .await
            .expect("warm");
    }
    let mut row = LiveRow {
        store: place.label(),
        lag: Vec::new(),
        lag_slow: Vec::new(),
        plain: Vec::new(),
        strong: Vec::new(),
    };
    if lag {
        row.lag = lag_run(&app, &clock, RATE, commands, 1).await;
        row.lag_slow = lag_run(&app, &clock, SLOW_RATE, slow, commands + 1).await;
    }
    if consistency {
        let first = commands + slow + 1;
        let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / RATE));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for i in 0..commands {
            tick.tick().await;
            let amount = first + i;
            let command = Deposit {
                id: (i % 20) as u32,
                amount: amount as u64,
            };
            let started = Instant::now();
            if i % 2 == 1 {
                app.dispatch_with(
                    command,
                    DispatchOptions::new().wait_for_handler(Clock::NAME),
                )
                .await
                .expect("strongly consistent dispatch");
                let took = started.elapsed();
                assert!(
                    clock.seen[amount].load(Ordering::Relaxed) > 0,
                    "a strongly consistent dispatch returned before its handler"
                );
                row.strong.push(took);
            } else {
                app.dispatch(command).await.expect("dispatch");
                row.plain.push(started.elapsed());
            }
        }
        row.plain.sort();
        row.strong.sort();
    }
    app.shutdown().await.expect("shut down");
    row
}

fn print_lag(rows: &[LiveRow]) {
    println!();
    println!("### 2. End-to-end lag, append to handler (one command at a time)");
    println!();
    println!("| store | rate | events | p50 ms | p99 ms | max ms |");
    println!("|---|---|---:|---:|---:|---:|");
    for row in rows.iter().filter(|r| !r.lag.is_empty()) {
        for (rate, lags) in [
            (format!("{RATE}/s for {LAG_SECS} s"), &row.lag),
            (format!("{SLOW_RATE}/s for {SLOW_SECS} s"), &row.lag_slow),
        ] {
            println!(
                "| {} | {rate} | {} | {} | {} | {} |",
                row.store,
                lags.len(),
                ms(quantile(lags, 0.5)),
                ms(quantile(lags, 0.99)),
                ms(*lags.last().unwrap()),
            );
        }
    }
}

fn print_consistency(rows: &[LiveRow]) {
    println!();
    println!(
        "### 3. Dispatch latency: `wait_for_handler` against plain (alternating, {RATE} commands/s)"
    );
    println!();
    println!(
        "| store | plain p50 ms | plain p99 ms | wait_for_handler p50 ms | wait_for_handler p99 ms | p50 added |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for row in rows.iter().filter(|r| !r.plain.is_empty()) {
        let (p, s) = (quantile(&row.plain, 0.5), quantile(&row.strong, 0.5));
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.store,
            ms(p),
            ms(quantile(&row.plain, 0.99)),
            ms(s),
            ms(quantile(&row.strong, 0.99)),
            ms(s.saturating_sub(p)),
        );
    }
}

// ---------------------------------------------------------------- 4. fan-out

/// Counts the store calls an app makes, by kind; delegates everything.
#[derive(Clone)]
struct Counted {
    inner: AnyStore,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    filtered_reads: AtomicUsize,
    checkpoint_saves: AtomicUsize,
    other: AtomicUsize,
}

impl Counts {
    fn snapshot(&self) -> [usize; 3] {
        [
            self.filtered_reads.load(Ordering::Relaxed),
            self.checkpoint_saves.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
        ]
    }
}

impl Counted {
    fn other(&self) {
        self.counts.other.fetch_add(1, Ordering::Relaxed);
    }
}

impl EventStore for Counted {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        self.other();
        self.inner.append(stream, expected, events)
    }

    fn append_after_seen<'a>(
        &'a self,
        stream: &'a StreamId,
        seen: u64,
        hint: StreamHint,
        held: Option<&'a StreamLock>,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        self.other();
        self.inner
            .append_after_seen(stream, seen, hint, held, events)
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
        max_count: usize,
    ) -> StoreFuture<'a, Vec<RecordedEvent>> {
        self.other();
        self.inner.read_stream(stream, from_version, max_count)
    }

    fn stream_version<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<u64>> {
        self.other();
        self.inner.stream_version(stream)
    }

    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> StoreFuture<'_, Vec<RecordedEvent>> {
        self.other();
        self.inner.read_all(from_position, max_count)
    }

    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.other();
        self.inner.subscribe_all(from_position)
    }

    fn read_all_filtered<'a>(
        &'a self,
        from_position: u64,
        max_count: usize,
        filter: &'a EventFilter,
    ) -> StoreFuture<'a, FilteredPage> {
        self.counts.filtered_reads.fetch_add(1, Ordering::Relaxed);
        self.inner
            .read_all_filtered(from_position, max_count, filter)
    }

    fn head_position(&self) -> StoreFuture<'_, u64> {
        self.other();
        self.inner.head_position()
    }

    fn watch_log(&self) -> LogWatch {
        self.inner.watch_log()
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> StoreFuture<'_, ()> {
        self.other();
        self.inner.save_snapshot(snapshot)
    }

    fn load_snapshot<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<Snapshot>> {
        self.other();
        self.inner.load_snapshot(stream)
    }

    fn load_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<u64>> {
        self.other();
        self.inner.load_checkpoint(name)
    }

    fn save_checkpoint<'a>(&'a self, name: &'a str, position: u64) -> StoreFuture<'a, ()> {
        self.counts.checkpoint_saves.fetch_add(1, Ordering::Relaxed);
        self.inner.save_checkpoint(name, position)
    }

    fn delete_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()> {
        self.other();
        self.inner.delete_checkpoint(name)
    }

    fn checkpoints(&self) -> StoreFuture<'_, Vec<(String, u64)>> {
        self.other();
        self.inner.checkpoints()
    }

    fn lock_stream<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        self.other();
        self.inner.lock_stream(stream)
    }

    fn lock_turn<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        self.other();
        self.inner.lock_turn(stream)
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        self.inner.close()
    }
}

/// The store's connections, by what they do: (count, what).
async fn connections(store: &PostgresStore) -> (i64, Vec<(i64, String)>) {
    let mut admin = annals_tests::postgres::admin_connection().await;
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT count(*), CASE \
           WHEN query ILIKE 'LISTEN%' THEN 'LISTEN' \
           WHEN query ILIKE '%pg_advisory_lock(%' THEN 'a handler''s turn: pg_advisory_lock held' \
           ELSE state || ': ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60) END AS what \
         FROM pg_stat_activity WHERE application_name = $1 GROUP BY 2 ORDER BY 1 DESC, 2",
    )
    .bind(application_name(store))
    .fetch_all(&mut admin)
    .await
    .expect("pg_stat_activity");
    (rows.iter().map(|r| r.0).sum(), rows)
}

struct IdleRow {
    case: String,
    connections: i64,
    breakdown: Vec<(i64, String)>,
    cpu: Duration,
    window: Duration,
    calls: [usize; 3],
    see_all: Vec<Duration>,
}

/// An app with `handlers` idle handlers (0 or `FAN_OUT`) on a fresh handle
/// of `schema`: its connections and what it costs over `idle` doing nothing.
async fn idle_case(schema: &str, handlers: bool, idle: Duration) -> IdleRow {
    let pg_store = pg(schema).await;
    let counted = Counted {
        inner: AnyStore::new(pg_store.clone()),
        counts: Arc::default(),
    };
    let mut builder = App::builder().store(counted.clone());
    if handlers {
        builder = with_idle_handlers(builder);
    }
    let app = builder.build().expect("an app");
    // Some events, every handler caught up, then quiet.
    let mut last = 0;
    for id in 0..20 {
        last = app
            .dispatch(Deposit { id, amount: 1 })
            .await
            .expect("dispatch")
            .positions
            .unwrap()
            .1;
    }
    app.wait_for_handlers(last, &[], Duration::from_secs(60))
        .await
        .expect("the handlers catch up");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (connections, breakdown) = connections(&pg_store).await;
    let calls = counted.counts.snapshot();
    let cpu = cpu_time();
    let started = Instant::now();
    tokio::time::sleep(idle).await;
    let window = started.elapsed();
    let cpu = cpu_time() - cpu;
    let after = counted.counts.snapshot();
    let calls = [
        after[0] - calls[0],
        after[1] - calls[1],
        after[2] - calls[2],
    ];
    // How long until every handler has seen one new event, 20 times, 10/s.
    let mut see_all = Vec::new();
    if handlers {
        for id in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let started = Instant::now();
            let done = app
                .dispatch(Deposit { id, amount: 1 })
                .await
                .expect("dispatch");
            app.wait_for_handlers(done.positions.unwrap().1, &[], Duration::from_secs(60))
                .await
                .expect("all handlers see it");
            see_all.push(started.elapsed());
        }
        see_all.sort();
    }
    app.shutdown().await.expect("shut down");
    IdleRow {
        case: if handlers {
            format!("{FAN_OUT} handlers, idle")
        } else {
            "no handlers, idle".into()
        },
        connections,
        breakdown,
        cpu,
        window,
        calls,
        see_all,
    }
}

fn print_fan_out(rows: &[IdleRow]) {
    println!();
    println!("### 4. {FAN_OUT} handlers on one PostgreSQL schema");
    println!();
    println!(
        "| case | connections | process CPU over idle | CPU % of one core | filtered reads/s | checkpoint saves/s | other store calls/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let secs = row.window.as_secs_f64();
        println!(
            "| {} | {} | {} ms over {:.1} s | {:.2} % | {:.1} | {:.1} | {:.1} |",
            row.case,
            row.connections,
            row.cpu.as_millis(),
            secs,
            100.0 * row.cpu.as_secs_f64() / secs,
            row.calls[0] as f64 / secs,
            row.calls[1] as f64 / secs,
            row.calls[2] as f64 / secs,
        );
    }
    for row in rows {
        println!();
        println!("{}: connections by use (pg_stat_activity)", row.case);
        println!();
        println!("| connections | use (last query) |");
        println!("|---:|---|");
        for (count, what) in &row.breakdown {
            println!("| {count} | {} |", what.replace('|', "/"));
        }
    }
    if let Some(row) = rows.iter().find(|r| !r.see_all.is_empty()) {
        println!();
        println!(
            "Dispatch until all {FAN_OUT} handlers handled the event ({} commands, 10/s): \
             p50 {} ms, p90 {} ms, max {} ms; {} of them took over 500 ms",
            row.see_all.len(),
            ms(quantile(&row.see_all, 0.5)),
            ms(quantile(&row.see_all, 0.9)),
            ms(*row.see_all.last().unwrap()),
            row.see_all
                .iter()
                .filter(|d| **d > Duration::from_millis(500))
                .count(),
        );
    }
}

// ---------------------------------------------------------------- main

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sections = ["catch-up", "lag", "consistency", "fan-out"];
    let stores = ["postgres", "sqlite", "memory"];
    let section_args: Vec<&String> = filter
        .iter()
        .filter(|f| sections.iter().any(|s| s.contains(f.as_str())))
        .collect();
    let store_args: Vec<&String> = filter
        .iter()
        .filter(|f| stores.iter().any(|s| s.contains(f.as_str())))
        .collect();
    let section = |name: &str| {
        section_args.is_empty() || section_args.iter().any(|f| name.contains(f.as_str()))
    };
    let store =
        |name: &str| store_args.is_empty() || store_args.iter().any(|f| name.contains(f.as_str()));
    let n = env_u64("ANNALS_BENCH_EVENTS", 1_000_000);
    let batches: Vec<usize> = std::env::var("ANNALS_BENCH_BATCHES")
        .ok()
        .map(|v| v.split(',').filter_map(|b| b.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![500, 1000, 2000, 4096, 10_000]);
    let idle = Duration::from_secs(env_u64("ANNALS_BENCH_IDLE_SECS", 10));
    // For profiling: keep the filled schemas.
    let keep = std::env::var_os("ANNALS_BENCH_KEEP").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "Event handlers: tokio multi-thread runtime, {} workers; N = {} events",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fmt_rate(n as f64)
    );
    let total = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut schemas = Vec::new();
    runtime.block_on(async {
        let mut places: Vec<(&str, Place)> = Vec::new();
        if store("postgres") {
            places.push(("postgres", Place::Postgres(String::new())));
        }
        if store("sqlite") {
            places.push(("sqlite", Place::Sqlite(PathBuf::new())));
        }
        if store("memory") {
            places.push(("memory", Place::Memory(MemoryStore::new())));
        }
        let fresh = |kind: &Place, tag: &str, schemas: &mut Vec<String>| match kind {
            Place::Postgres(_) => {
                let schema = schema_name(tag);
                schemas.push(schema.clone());
                Place::Postgres(schema)
            }
            Place::Sqlite(_) => Place::Sqlite(dir.path().join(format!("{tag}.db"))),
            Place::Memory(_) => Place::Memory(MemoryStore::new()),
        };
        if section("catch-up") {
            let mut rows = Vec::new();
            for (_, kind) in &places {
                let place = fresh(kind, "catchup", &mut schemas);
                rows.extend(catch_up_section(&place, n, &batches).await);
                if let Place::Postgres(schema) = &place
                    && !keep
                {
                    drop_schemas(std::slice::from_ref(schema)).await;
                }
            }
            print_catch_up(n, &rows);
        }
        if section("lag") || section("consistency") {
            let mut rows = Vec::new();
            for (_, kind) in &places {
                let place = fresh(kind, "live", &mut schemas);
                rows.push(live(&place, section("lag"), section("consistency")).await);
            }
            if section("lag") {
                print_lag(&rows);
            }
            if section("consistency") {
                print_consistency(&rows);
            }
        }
        if section("fan-out") {
            let schema = schema_name("fanout");
            schemas.push(schema.clone());
            let rows = vec![
                idle_case(&schema, false, idle).await,
                idle_case(&schema, true, idle).await,
            ];
            print_fan_out(&rows);
        }
        if keep {
            println!("(kept PostgreSQL schemas: {})", schemas.join(", "));
        } else {
            drop_schemas(&schemas).await;
        }
    });
    println!();
    println!("(whole bench: {:.0} s)", total.elapsed().as_secs_f64());
}
