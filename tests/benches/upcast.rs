//! Schema evolution (issue 12): what reading events through one upcaster
//! step costs against reading them in their current shape, side by side in
//! one run.
//!
//! Each store is filled twice, in two stores of its kind, with one
//! aggregate stream of N deposits (default 100,000; `ANNALS_BENCH_EVENTS`),
//! appended through `EventStore::append` in calls of 5,000 events:
//!
//! - **current**: `Deposited` version 2, the shape `AccountEvent` declares,
//!   so no upcaster runs;
//! - **upcast**: `Deposited` version 1, as an older build stored it (a plain
//!   `NewEvent` with the type name and version 1), read through one typed
//!   `#[upcaster]` step (the deposit gains a currency). Its references are
//!   17 characters longer, so both streams hold the same payload bytes.
//!
//! Sections (a section runs when its name contains an argument; `postgres`,
//! `sqlite`, `memory` narrow the stores):
//!
//! 1. `replay`: a cold `App::load` of the aggregate (no snapshot, a fresh
//!    store handle and `App` each round), timed around the `load` call.
//! 2. `catch-up`: an `#[event_handler]` from position 0 to the head, timed
//!    from `App` build to `wait_for_handlers(head)`, the checkpoint deleted
//!    before each round.
//! 3. `decode`: the floor, with no store: the same N recorded events (read
//!    from memory beforehand) decoded with `decode_recorded` as the
//!    aggregate does, and by hand with serde (`from_str` into the current
//!    struct, or into the old struct and then the new), the least a typed
//!    upcast can cost; and a chain of two steps (a `serde_json::Value`
//!    step, then a typed one) against its current shape.
//!
//! Every case runs `ANNALS_BENCH_ROUNDS` rounds (default 7), the current and
//! upcast case alternated within a round and their order swapped every
//! round; the table shows the median round, and every round is checked (the
//! loaded state, the handler's count and sums, the decoded sums).
//!
//! `cargo bench -p annals-tests --bench upcast [-- SECTION|STORE...]`.
//! Environment: `ANNALS_BENCH_EVENTS`, `ANNALS_BENCH_ROUNDS`,
//! `ANNALS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), `ANNALS_BENCH_KEEP` (set:
//! keep the PostgreSQL schemas, for profiling), `ANNALS_BENCH_NO_ANALYZE`
//! (set: no `ANALYZE` of the filled PostgreSQL tables). PostgreSQL runs in
//! fresh schemas `bench_upcast_<pid>_*`, each `ANALYZE`d once filled (as
//! autovacuum would soon do) and dropped at the end; SQLite in a temporary
//! directory.

use annals::postgres::PostgresStore;
use annals::prelude::*;
use annals::sqlite::SqliteStore;
use annals::upcast::decode_recorded;
use annals::{
    AnyStore, EventHandler, ExpectedVersion, Metadata, NewEvent, Payload, RecordedEvent, StreamId,
};
use annals_tests::fmt_rate;
use annals_tests::postgres::test_url;
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Events per `EventStore::append` call when filling.
const FILL_BATCH: u64 = 5_000;
/// The aggregate's id: its stream is `Account-1`.
const ID: u32 = 1;

// ---------------------------------------------------------------- domain

#[event]
pub enum AccountEvent {
    /// Version 1 had no currency: every deposit was in euros.
    #[event(version = 2)]
    Deposited {
        amount: u64,
        currency: String,
        reference: String,
    },
}

/// `Deposited` version 1, as the old build declared it.
#[derive(Deserialize)]
struct DepositedV1 {
    amount: u64,
    reference: String,
}

/// `Deposited` version 2's payload.
#[derive(Serialize, Deserialize)]
struct DepositedV2 {
    amount: u64,
    currency: String,
    reference: String,
}

#[upcaster(from = "Deposited", version = 1)]
fn deposited_gains_a_currency(old: DepositedV1) -> DepositedV2 {
    DepositedV2 {
        amount: old.amount,
        currency: "EUR".into(),
        reference: old.reference,
    }
}

/// Section 3's chain of two steps: `Credited` version 1 had no currency
/// (a step on the JSON itself), version 2 counted whole units (a typed
/// step).
#[event]
pub enum LedgerEvent {
    #[event(version = 3)]
    Credited {
        cents: u64,
        currency: String,
        reference: String,
    },
}

#[upcaster(from = "Credited", version = 1)]
fn credited_gains_a_currency(mut old: serde_json::Value) -> serde_json::Value {
    old["currency"] = "EUR".into();
    old
}

#[derive(Deserialize)]
struct CreditedV2 {
    amount: u64,
    currency: String,
    reference: String,
}

#[derive(Serialize)]
struct CreditedV3 {
    cents: u64,
    currency: String,
    reference: String,
}

#[upcaster(from = "Credited", version = 2)]
fn credited_counts_cents(old: CreditedV2) -> CreditedV3 {
    CreditedV3 {
        cents: old.amount * 100,
        currency: old.currency,
        reference: old.reference,
    }
}

#[command(aggregate = Account)]
pub struct Deposit {
    #[id]
    pub id: u32,
    pub amount: u64,
}

#[aggregate(events = AccountEvent)]
#[derive(Clone, Default)]
pub struct Account {
    deposits: u64,
    balance: u64,
    in_euros: u64,
}

#[aggregate]
impl Account {
    #[handle]
    fn deposit(&self, command: Deposit) -> AccountEvent {
        AccountEvent::Deposited {
            amount: command.amount,
            currency: "EUR".into(),
            reference: format!("dep-{:07}", self.deposits + 1),
        }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        let AccountEvent::Deposited {
            amount, currency, ..
        } = event;
        self.deposits += 1;
        self.balance += amount;
        self.in_euros += u64::from(currency == "EUR");
    }
}

/// Section 2: a count, a sum, and how many deposits were in euros.
#[derive(Clone, Default)]
pub struct Summer {
    count: Arc<AtomicU64>,
    sum: Arc<AtomicU64>,
    in_euros: Arc<AtomicU64>,
}

#[event_handler(name = "bench-upcast-summer")]
impl Summer {
    fn on_account(&self, event: &AccountEvent) {
        let AccountEvent::Deposited {
            amount, currency, ..
        } = event;
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(*amount, Ordering::Relaxed);
        if currency == "EUR" {
            self.in_euros.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Which of the two streams.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Version 2, declared: no upcaster runs.
    Current,
    /// Version 1, through one upcaster step.
    Upcast,
}

impl Shape {
    /// This round's order: alternated, and swapped every round so neither
    /// always runs first.
    fn order(round: usize) -> [Shape; 2] {
        if round.is_multiple_of(2) {
            [Shape::Current, Shape::Upcast]
        } else {
            [Shape::Upcast, Shape::Current]
        }
    }

    fn index(self) -> usize {
        match self {
            Shape::Current => 0,
            Shape::Upcast => 1,
        }
    }
}

/// The `i`-th deposit's amount.
fn amount(i: u64) -> u64 {
    i % 100 + 1
}

/// The `i`-th event, as `shape` stores it.
fn stored(shape: Shape, i: u64) -> NewEvent {
    let (version, payload) = match shape {
        Shape::Current => (
            2,
            format!(
                r#"{{"amount":{},"currency":"EUR","reference":"dep-{i:07}"}}"#,
                amount(i)
            ),
        ),
        // `,"currency":"EUR"` is 17 characters: so is `imported-deposit-`.
        Shape::Upcast => (
            1,
            format!(
                r#"{{"amount":{},"reference":"imported-deposit-dep-{i:07}"}}"#,
                amount(i)
            ),
        ),
    };
    NewEvent::new(
        "Deposited",
        version,
        Payload::from_json(payload).expect("JSON"),
    )
}

/// The `i`-th credit of section 3's chain, as `shape` stores it: version 3,
/// or version 1 (two steps away).
fn ledger_stored(shape: Shape, i: u64) -> NewEvent {
    let (version, payload) = match shape {
        Shape::Current => (
            3,
            format!(
                r#"{{"cents":{},"currency":"EUR","reference":"dep-{i:07}"}}"#,
                amount(i) * 100
            ),
        ),
        Shape::Upcast => (
            1,
            format!(
                r#"{{"amount":{},"reference":"imported-deposit-dep-{i:07}"}}"#,
                amount(i)
            ),
        ),
    };
    NewEvent::new(
        "Credited",
        version,
        Payload::from_json(payload).expect("JSON"),
    )
}

// ---------------------------------------------------------------- helpers

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// Where a store lives, and how to open another handle on it (an
/// `App::shutdown` closes its handle).
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
            Place::Postgres(schema) => {
                let url = test_url();
                AnyStore::new(
                    PostgresStore::builder(&url)
                        .schema(schema)
                        .connect()
                        .await
                        .unwrap_or_else(|e| {
                            panic!("PostgreSQL at {url} (ANNALS_TEST_POSTGRES_URL): {e}")
                        }),
                )
            }
        }
    }
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

/// Appends the `n` events of `shape` (`stored` or `ledger_stored`) to
/// `Account-1`, `FILL_BATCH` per call; returns the fill rate.
async fn fill(place: &Place, stored: Stored, shape: Shape, n: u64) -> f64 {
    let store = place.open().await;
    let stream = StreamId::new(format!("Account-{ID}"));
    let started = Instant::now();
    let mut version = 0;
    while version < n {
        let command = Uuid::now_v7();
        let metadata = Metadata {
            correlation_id: Some(command),
            causation_id: Some(command),
            ..Metadata::default()
        };
        let events = (version..n.min(version + FILL_BATCH))
            .map(|i| stored(shape, i).with_metadata(metadata.clone()))
            .collect::<Vec<_>>();
        let count = events.len() as u64;
        store
            .append(&stream, ExpectedVersion::Exact(version), events)
            .await
            .expect("fill");
        version += count;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    if !matches!(place, Place::Memory(_)) {
        store.close().await.expect("close");
    }
    if let Place::Postgres(schema) = place
        && std::env::var_os("ANNALS_BENCH_NO_ANALYZE").is_none()
    {
        analyze(schema).await;
    }
    rate
}

/// Gives the planner statistics of the filled table, as autovacuum would
/// soon after a bulk load: without them it reads each page of the stream
/// by a bitmap scan of every later event and a sort.
async fn analyze(schema: &str) {
    let mut admin = annals_tests::postgres::admin_connection().await;
    sqlx::raw_sql(AssertSqlSafe(format!("ANALYZE \"{schema}\".events")))
        .execute(&mut admin)
        .await
        .expect("analyze");
}

type Stored = fn(Shape, u64) -> NewEvent;

/// What every reader must have seen: the count, the sum of the amounts.
fn expected(n: u64) -> (u64, u64) {
    (n, (0..n).map(amount).sum())
}

/// One result row: a reader's median round per shape, and every round.
struct Row {
    store: &'static str,
    reader: String,
    times: [Vec<Duration>; 2],
}

impl Row {
    fn new(store: &'static str, reader: impl Into<String>) -> Self {
        Self {
            store,
            reader: reader.into(),
            times: [Vec::new(), Vec::new()],
        }
    }

    fn push(&mut self, shape: Shape, elapsed: Duration) {
        self.times[shape.index()].push(elapsed);
    }
}

fn print_rows(title: &str, n: u64, rows: &[Row]) {
    println!();
    println!("### {title}");
    println!();
    println!(
        "| store | reader | current events/s | upcast events/s | ratio (upcast/current time) | per-round ratios (min-max) | rounds, current ms | rounds, upcast ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---|---|");
    for row in rows {
        let [current, upcast] = [median(&row.times[0]), median(&row.times[1])];
        let rate = |d: Duration| fmt_rate(n as f64 / d.as_secs_f64());
        let per_round: Vec<f64> = row.times[0]
            .iter()
            .zip(&row.times[1])
            .map(|(a, b)| b.as_secs_f64() / a.as_secs_f64())
            .collect();
        let min = per_round.iter().copied().fold(f64::INFINITY, f64::min);
        let max = per_round.iter().copied().fold(0.0, f64::max);
        let list = |times: &[Duration]| {
            times
                .iter()
                .map(|t| format!("{:.1}", t.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {} | {} | {} | {} | **{:.2}x** | {:.2}-{:.2}x | {} | {} |",
            row.store,
            row.reader,
            rate(current),
            rate(upcast),
            upcast.as_secs_f64() / current.as_secs_f64(),
            min,
            max,
            list(&row.times[0]),
            list(&row.times[1]),
        );
    }
}

// ---------------------------------------------------------------- 1. replay

/// A cold load of `Account-1`: a fresh handle and `App`, timed around `load`.
async fn replay(place: &Place, n: u64) -> Duration {
    let app = App::builder()
        .store(place.open().await)
        .build()
        .expect("an app");
    let started = Instant::now();
    let (state, version) = app.load::<Account>(ID).await.expect("load");
    let elapsed = started.elapsed();
    let (count, sum) = expected(n);
    assert_eq!(version, n, "the whole stream replayed");
    assert_eq!(
        (state.deposits, state.balance, state.in_euros),
        (count, sum, count),
        "every deposit applied once, in euros"
    );
    app.shutdown().await.expect("shut down");
    elapsed
}

// ---------------------------------------------------------------- 2. catch-up

/// The handler from position 0 to `n`: a fresh handle, the checkpoint
/// deleted, timed from `App` build to `wait_for_handlers(n)`.
async fn catch_up(place: &Place, n: u64) -> Duration {
    let store = place.open().await;
    store
        .delete_checkpoint(Summer::NAME)
        .await
        .expect("reset the checkpoint");
    let summer = Summer::default();
    let started = Instant::now();
    let app = App::builder()
        .store(store)
        .handler(summer.clone())
        .build()
        .expect("an app with a handler");
    app.wait_for_handlers(n, &[], Duration::from_secs(3600))
        .await
        .expect("the handler catches up");
    let elapsed = started.elapsed();
    let (count, sum) = expected(n);
    assert_eq!(
        (
            summer.count.load(Ordering::Relaxed),
            summer.sum.load(Ordering::Relaxed),
            summer.in_euros.load(Ordering::Relaxed),
        ),
        (count, sum, count),
        "every deposit handled once, in euros"
    );
    app.shutdown().await.expect("shut down");
    elapsed
}

// ---------------------------------------------------------------- 3. decode

/// The recorded events of `shape`, from a memory store.
async fn recorded(stored: Stored, shape: Shape, n: u64) -> Vec<RecordedEvent> {
    let place = Place::Memory(MemoryStore::new());
    fill(&place, stored, shape, n).await;
    let store = place.open().await;
    let events = store
        .read_stream(&StreamId::new(format!("Account-{ID}")), 1, n as usize)
        .await
        .expect("read");
    assert_eq!(events.len() as u64, n);
    events
}

/// `decode_recorded`, as an aggregate's replay decodes.
fn decode_all(events: &[RecordedEvent]) -> Duration {
    let started = Instant::now();
    let (mut count, mut sum, mut in_euros) = (0, 0, 0);
    for event in events {
        for AccountEvent::Deposited {
            amount, currency, ..
        } in decode_recorded::<AccountEvent>(black_box(event)).expect("decode")
        {
            count += 1;
            sum += amount;
            in_euros += u64::from(currency == "EUR");
        }
    }
    let elapsed = started.elapsed();
    let (n, total) = expected(events.len() as u64);
    assert_eq!((count, sum, in_euros), (n, total, n), "every event decoded");
    elapsed
}

/// `decode_recorded` of section 3's chain (two steps for the old shape).
fn decode_chain(events: &[RecordedEvent]) -> Duration {
    let started = Instant::now();
    let (mut count, mut sum, mut in_euros) = (0, 0, 0);
    for event in events {
        for LedgerEvent::Credited {
            cents, currency, ..
        } in decode_recorded::<LedgerEvent>(black_box(event)).expect("decode")
        {
            count += 1;
            sum += cents;
            in_euros += u64::from(currency == "EUR");
        }
    }
    let elapsed = started.elapsed();
    let (n, total) = expected(events.len() as u64);
    assert_eq!(
        (count, sum, in_euros),
        (n, total * 100, n),
        "every event decoded"
    );
    elapsed
}

/// By hand: one serde pass into the current struct, or into the old one
/// and then the new (what a typed upcast costs at least).
fn decode_by_hand(shape: Shape, events: &[RecordedEvent]) -> Duration {
    let started = Instant::now();
    let (mut count, mut sum, mut in_euros) = (0, 0, 0);
    for event in events {
        let payload = black_box(event).payload.as_str();
        let new = match shape {
            Shape::Current => serde_json::from_str::<DepositedV2>(payload).expect("v2"),
            Shape::Upcast => deposited_gains_a_currency(serde_json::from_str(payload).expect("v1")),
        };
        let event = AccountEvent::Deposited {
            amount: new.amount,
            currency: new.currency,
            reference: new.reference,
        };
        let AccountEvent::Deposited {
            amount, currency, ..
        } = black_box(event);
        count += 1;
        sum += amount;
        in_euros += u64::from(currency == "EUR");
    }
    let elapsed = started.elapsed();
    let (n, total) = expected(events.len() as u64);
    assert_eq!((count, sum, in_euros), (n, total, n), "every event decoded");
    elapsed
}

// ---------------------------------------------------------------- main

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sections = ["replay", "catch-up", "decode"];
    let stores = ["postgres", "sqlite", "memory"];
    let section_args: Vec<&String> = args
        .iter()
        .filter(|f| sections.iter().any(|s| s.contains(f.as_str())))
        .collect();
    let store_args: Vec<&String> = args
        .iter()
        .filter(|f| stores.iter().any(|s| s.contains(f.as_str())))
        .collect();
    let section = |name: &str| {
        section_args.is_empty() || section_args.iter().any(|f| name.contains(f.as_str()))
    };
    let store =
        |name: &str| store_args.is_empty() || store_args.iter().any(|f| name.contains(f.as_str()));
    let n = env_u64("ANNALS_BENCH_EVENTS", 100_000);
    let rounds = env_u64("ANNALS_BENCH_ROUNDS", 7).max(1) as usize;
    let keep = std::env::var_os("ANNALS_BENCH_KEEP").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bytes = |shape: Shape| {
        (0..n)
            .map(|i| stored(shape, i).payload.as_str().len() as f64)
            .sum::<f64>()
            / n as f64
    };
    println!(
        "Upcasting: tokio multi-thread runtime, {} workers; N = {} events in one stream; \
         {rounds} rounds, current and upcast alternated; mean payload {:.1} bytes current, \
         {:.1} bytes upcast",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fmt_rate(n as f64),
        bytes(Shape::Current),
        bytes(Shape::Upcast),
    );
    let total = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut schemas = Vec::new();
    runtime.block_on(async {
        let mut replays = Vec::new();
        let mut catch_ups = Vec::new();
        if section("replay") || section("catch-up") {
            for kind in stores.into_iter().filter(|s| store(s)) {
                let places = [Shape::Current, Shape::Upcast].map(|shape| {
                    let tag = match shape {
                        Shape::Current => "current",
                        Shape::Upcast => "upcast",
                    };
                    match kind {
                        "postgres" => {
                            let schema = format!("bench_upcast_{}_{tag}", std::process::id());
                            schemas.push(schema.clone());
                            Place::Postgres(schema)
                        }
                        "sqlite" => Place::Sqlite(dir.path().join(format!("{tag}.db"))),
                        _ => Place::Memory(MemoryStore::new()),
                    }
                });
                for (place, shape) in places.iter().zip([Shape::Current, Shape::Upcast]) {
                    let rate = fill(place, stored, shape, n).await;
                    println!(
                        "({}: filled the {} stream at {} events/s)",
                        place.label(),
                        if shape == Shape::Current {
                            "current"
                        } else {
                            "upcast"
                        },
                        fmt_rate(rate)
                    );
                }
                let label = places[0].label();
                if section("replay") {
                    let mut row = Row::new(label, "cold `App::load` (replay)");
                    for round in 0..rounds {
                        for shape in Shape::order(round) {
                            row.push(shape, replay(&places[shape.index()], n).await);
                        }
                    }
                    replays.push(row);
                }
                if section("catch-up") {
                    let mut row = Row::new(label, "`#[event_handler]` catch-up");
                    for round in 0..rounds {
                        for shape in Shape::order(round) {
                            row.push(shape, catch_up(&places[shape.index()], n).await);
                        }
                    }
                    catch_ups.push(row);
                }
            }
        }
        if !replays.is_empty() {
            print_rows("1. Replay of one stream", n, &replays);
        }
        if !catch_ups.is_empty() {
            print_rows("2. Catch-up of one handler", n, &catch_ups);
        }
        if section("decode") {
            let events = [
                recorded(stored, Shape::Current, n).await,
                recorded(stored, Shape::Upcast, n).await,
            ];
            let chain = [
                recorded(ledger_stored, Shape::Current, n).await,
                recorded(ledger_stored, Shape::Upcast, n).await,
            ];
            let mut through = Row::new("none", "`decode_recorded` (the aggregate's decode)");
            let mut by_hand = Row::new("none", "serde by hand (old struct, then the new)");
            let mut two_steps = Row::new(
                "none",
                "`decode_recorded`, two steps (a `serde_json::Value` one, then a typed one)",
            );
            for round in 0..rounds {
                for shape in Shape::order(round) {
                    through.push(shape, decode_all(&events[shape.index()]));
                }
                for shape in Shape::order(round) {
                    by_hand.push(shape, decode_by_hand(shape, &events[shape.index()]));
                }
                for shape in Shape::order(round) {
                    two_steps.push(shape, decode_chain(&chain[shape.index()]));
                }
            }
            print_rows(
                "3. Decode alone, no store",
                n,
                &[through, by_hand, two_steps],
            );
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
