//! Issue 10: events/s from the store through RabbitMQ into a consumer's
//! projection, next to the same projection fed straight from the store in
//! the same run, and a raw `lapin` publish-confirm loop as the limit; then
//! the end-to-end lag (append to the consumer's commit) p50/p99 of events
//! appended one at a time while everything runs.
//!
//! The store (a SQLite file) holds N deposits (default 20,000,
//! `ANNALS_BENCH_EVENTS`) over 100 streams, appended 100 per call. The
//! projection does one upsert per event into `totals` in a second SQLite
//! file (WAL), fresh for each case:
//!
//! - `store -> projection`: an `App` with the `#[projection]`, timed from
//!   build until its position reached the head.
//! - `store -> RabbitMQ -> consumer`: the consumer (prefetch 256) started
//!   and its queue declared first, then an `App` whose only handler is the
//!   publisher (pages of 4,096, confirms awaited per page), timed from the
//!   build until the consumer applied every event; the publisher's own
//!   time (until its position reached the head) is shown too.
//! - `raw lapin publish-confirm`: the same number of messages of the same
//!   size and headers, published to a queue in pages of 4,096, each page's
//!   confirms awaited: what the broker allows one publishing channel.
//!
//! Each throughput case runs `ANNALS_BENCH_ROUNDS` times (default 3), the
//! median shown. Lag: 2,000 single-event appends 2 ms apart with the
//! publisher and consumer live; each event's lag is from its append's
//! return to the consumer's commit (the `after_commit` hook).
//!
//! `cargo bench -p annals-tests --bench rabbitmq`.

use annals::handler::HandlerOptions;
use annals::prelude::*;
use annals::rabbitmq::lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use annals::rabbitmq::lapin::types::{AMQPValue, FieldTable, LongString};
use annals::rabbitmq::lapin::{self, BasicProperties};
use annals::rabbitmq::{Consumer, Publisher, Queue};
use annals::{AnyStore, ExpectedVersion, NewEvent, StreamId};
use annals_tests::fmt_rate;
use annals_tests::rabbit::{amqp_url, cleanup, unique};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[event]
pub enum BenchEvent {
    Deposited { amount: u64 },
}

const TABLE: &str = "CREATE TABLE IF NOT EXISTS totals (account TEXT PRIMARY KEY, cents BIGINT NOT NULL, events BIGINT NOT NULL)";

pub struct Totals;

#[projection(name = "bench-totals")]
impl Totals {
    async fn on(
        &self,
        tx: &mut sqlx::SqliteConnection,
        event: &BenchEvent,
        meta: &EventMeta<'_>,
    ) -> Result<(), sqlx::Error> {
        let BenchEvent::Deposited { amount } = event;
        sqlx::query(
            "INSERT INTO totals (account, cents, events) VALUES ($1, $2, 1) \
             ON CONFLICT (account) DO UPDATE SET cents = totals.cents + excluded.cents, \
             events = totals.events + 1",
        )
        .bind(meta.stream_id().as_str())
        .bind(*amount as i64)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn read_db(path: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query(TABLE).execute(&pool).await.unwrap();
    pool
}

async fn counted(pool: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(SUM(events), 0) FROM totals")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn fill(store: &AnyStore, events: u64) {
    let streams = 100;
    let mut written = 0;
    while written < events {
        let stream = StreamId::new(format!("Account-{}", (written / 100) % streams));
        let batch: Vec<NewEvent> = (0..100.min(events - written))
            .map(|i| {
                let e = BenchEvent::Deposited { amount: 1 + i };
                NewEvent::new(e.event_type(), e.event_version(), e.encode().unwrap())
            })
            .collect();
        written += batch.len() as u64;
        store
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .unwrap();
    }
}

async fn direct(dir: &Path, round: u64, head: u64) -> Duration {
    let store = &open(dir).await;
    let pool = read_db(&dir.join(format!("direct-{round}.db"))).await;
    let started = Instant::now();
    let app = App::builder()
        .store(store.clone())
        .projection(pool.clone(), Totals)
        .build()
        .unwrap();
    app.wait_for_handlers(head, &[], Duration::from_secs(600))
        .await
        .unwrap();
    let took = started.elapsed();
    app.shutdown().await.unwrap();
    assert_eq!(counted(&pool).await as u64, head);
    took
}

/// Through the broker: (until the consumer applied all, until the
/// publisher published all).
async fn brokered(dir: &Path, round: u64, head: u64) -> (Duration, Duration) {
    let store = &open(dir).await;
    let pool = read_db(&dir.join(format!("brokered-{round}.db"))).await;
    let (exchange, queue) = (unique("bench-ex"), unique("bench-q"));
    let consumer = Consumer::new(amqp_url(), &exchange, Queue::new(&queue).bind("#"))
        .spawn_projection(pool.clone(), Totals);
    while consumer.status().state != annals::rabbitmq::ConsumerState::Consuming {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let name: &'static str = Box::leak(format!("bench-publisher-{round}").into_boxed_str());
    let started = Instant::now();
    let app = App::builder()
        .store(store.clone())
        .publisher(Publisher::new(amqp_url(), &exchange).name(name))
        .build()
        .unwrap();
    let mut published = None;
    while consumer.status().handled < head {
        if published.is_none()
            && app
                .wait_for_handlers(head, &[], Duration::ZERO)
                .await
                .is_ok()
        {
            published = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    app.wait_for_handlers(head, &[], Duration::from_secs(60))
        .await
        .unwrap();
    let published = published.unwrap_or(took);
    app.shutdown().await.unwrap();
    consumer.shutdown().await;
    assert_eq!(counted(&pool).await as u64, head);
    cleanup(&exchange, &[&queue]).await;
    (took, published)
}

async fn raw_lapin(events: u64) -> Duration {
    let conn = lapin::Connection::connect(&amqp_url(), Default::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let queue = unique("bench-raw");
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let body = BenchEvent::Deposited { amount: 42 }.encode().unwrap();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes()));
    let started = Instant::now();
    let mut sent = 0;
    while sent < events {
        let page = 4096.min(events - sent);
        let mut confirms = Vec::with_capacity(page as usize);
        for i in 0..page {
            let mut headers = FieldTable::default();
            let id = uuid::Uuid::now_v7().to_string();
            headers.insert("event-id".into(), text(&id));
            headers.insert("stream".into(), text("Account-17"));
            headers.insert(
                "stream-version".into(),
                AMQPValue::LongLongInt((sent + i) as i64),
            );
            headers.insert("position".into(), AMQPValue::LongLongInt((sent + i) as i64));
            headers.insert("event-type".into(), text("Deposited"));
            headers.insert("event-version".into(), AMQPValue::LongLongInt(1));
            headers.insert("recorded-at".into(), text(&chrono::Utc::now().to_rfc3339()));
            let properties = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_message_id(id.into())
                .with_headers(headers);
            confirms.push(
                channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        body.as_str().as_bytes(),
                        properties,
                    )
                    .await
                    .unwrap(),
            );
        }
        for confirm in confirms {
            assert!(confirm.await.unwrap().is_ack());
        }
        sent += page;
    }
    let took = started.elapsed();
    let _ = channel
        .queue_delete(queue.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "done".into()).await;
    took
}

/// Lag percentiles (p50, p99, max) of single appends through the broker.
async fn lag(dir: &Path, appends: u64) -> (Duration, Duration, Duration) {
    let store = &open(dir).await;
    let pool = read_db(&dir.join("lag.db")).await;
    let (exchange, queue) = (unique("bench-ex"), unique("bench-q"));
    let applied: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let hook = applied.clone();
    let consumer = Consumer::new(amqp_url(), &exchange, Queue::new(&queue).bind("#"))
        .after_commit(move |event| {
            hook.lock().insert(event.global_position, Instant::now());
        })
        .spawn_projection(pool.clone(), Totals);
    while consumer.status().state != annals::rabbitmq::ConsumerState::Consuming {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let app = App::builder()
        .store(store.clone())
        .publisher_with(
            Publisher::new(amqp_url(), &exchange)
                .name("bench-publisher-lag")
                .declare(Queue::new(&queue).bind("#")),
            HandlerOptions::new().start_from(annals::StartFrom::Now),
        )
        .build()
        .unwrap();
    let head = store.head_position().await.unwrap();
    app.wait_for_handlers(head, &[], Duration::from_secs(60))
        .await
        .unwrap();
    let mut appended = HashMap::new();
    for i in 0..appends {
        let e = BenchEvent::Deposited { amount: i + 1 };
        let event = NewEvent::new(e.event_type(), e.event_version(), e.encode().unwrap());
        let done = store
            .append(
                &StreamId::new(format!("Account-{}", i % 100)),
                ExpectedVersion::Any,
                vec![event],
            )
            .await
            .unwrap();
        appended.insert(done.last_position, Instant::now());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    while applied.lock().len() < appends as usize {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut lags: Vec<Duration> = {
        let applied = applied.lock();
        appended
            .iter()
            .map(|(position, at)| applied[position].saturating_duration_since(*at))
            .collect()
    };
    lags.sort();
    app.shutdown().await.unwrap();
    consumer.shutdown().await;
    cleanup(&exchange, &[&queue]).await;
    let at = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    (at(0.50), at(0.99), lags[lags.len() - 1])
}

/// A store handle of its own for each case: an `App`'s shutdown closes
/// the store it was given.
async fn open(dir: &Path) -> AnyStore {
    annals::sqlite::SqliteStore::open(dir.join("events.db"))
        .await
        .unwrap()
        .into()
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let events = env_u64("ANNALS_BENCH_EVENTS", 20_000);
    let rounds = env_u64("ANNALS_BENCH_ROUNDS", 3).max(1);
    let _ = annals_tests::rabbit::broker().await;
    let dir = tempfile::tempdir().unwrap();
    let store: AnyStore = annals::sqlite::SqliteStore::open(dir.path().join("events.db"))
        .await
        .unwrap()
        .into();
    fill(&store, events).await;
    let head = store.head_position().await.unwrap();
    let (mut direct_t, mut broker_t, mut publish_t, mut raw_t) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        direct_t.push(direct(dir.path(), round, head).await);
        let (all, published) = brokered(dir.path(), round, head).await;
        broker_t.push(all);
        publish_t.push(published);
        raw_t.push(raw_lapin(events).await);
    }
    let rate = |d: Duration| fmt_rate(events as f64 / d.as_secs_f64());
    println!("{events} events, SQLite store and read database, median of {rounds} rounds\n");
    println!("| path | events/s | median time (ms) |");
    println!("|---|---:|---:|");
    for (name, times) in [
        ("store -> projection (same process)", direct_t),
        ("store -> RabbitMQ -> consumer projection", broker_t),
        (
            "  of which store -> RabbitMQ (publisher confirmed)",
            publish_t,
        ),
        ("raw lapin publish-confirm, pages of 4,096", raw_t),
    ] {
        let m = median(times);
        println!("| {name} | {} | {} |", rate(m), ms(m));
    }
    let (p50, p99, max) = lag(dir.path(), 2_000).await;
    println!("\nend-to-end lag, append -> consumer commit, 2,000 appends 2 ms apart:");
    println!(
        "| p50 (ms) | p99 (ms) | max (ms) |\n|---:|---:|---:|\n| {} | {} | {} |",
        ms(p50),
        ms(p99),
        ms(max)
    );
}
