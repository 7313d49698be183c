//! Many handlers' turns on one PostgreSQL schema, and several Apps there.
//!
//! A process holds every turn of a store on one connection (the store's
//! session), so a hundred handlers use the store's pool and a few more
//! connections, not one each; idle handlers read nothing; several Apps on
//! one schema run each handler once at a time; a session whose connection
//! is ended makes its runners stop at once, then take their turns again (in
//! their App or another), and a projection applies nothing twice.

use annals::handler::HandlerFuture;
use annals::handler::HandlerState;
use annals::postgres::PostgresStore;
use annals::prelude::*;
use annals::projection::Projection;
use annals::{
    AnyStore, AppendResult, EventFilter, EventMeta, ExpectedVersion, FilteredPage, HandlerError,
    LogWatch, NewEvent, RecordedEvent, Snapshot, StoreError, StoreFuture, StreamHint, StreamId,
    StreamLock,
};
use annals_tests::postgres::{
    admin_connection, application_name, drop_schema, fresh_schema, test_url,
};
use futures::stream::BoxStream;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The store's pool in these tests.
const POOL: u32 = 6;
/// Connections a store opens besides its pool: two writers, the notifier,
/// `LISTEN`, the session, and one for a stream lock.
const BESIDES_THE_POOL: i64 = 6;
/// How often idle stores look for new events.
const POLL: Duration = Duration::from_millis(200);

#[event]
pub enum TickEvent {
    Ticked { n: u64 },
}

#[command(aggregate = Ticker)]
pub struct Tick {
    #[id]
    pub id: String,
    pub n: u64,
}

#[aggregate(events = TickEvent)]
#[derive(Default)]
pub struct Ticker;

#[aggregate]
impl Ticker {
    #[handle]
    fn tick(&self, command: Tick) -> TickEvent {
        TickEvent::Ticked { n: command.n }
    }

    #[apply]
    fn apply(&mut self, _: &TickEvent) {}
}

/// What the handlers did, in the order they did it: (handler, position, app).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<(usize, u64, usize)>>>);

impl Log {
    fn rows(&self) -> Vec<(usize, u64, usize)> {
        self.0.lock().unwrap().clone()
    }

    /// How many times handler `h` handled each position.
    fn counts(&self) -> BTreeMap<(usize, u64), usize> {
        let mut counts = BTreeMap::new();
        for (h, p, _) in self.rows() {
            *counts.entry((h, p)).or_insert(0) += 1;
        }
        counts
    }

    /// Waits until each of the first `handlers` handled every position in
    /// `appended`.
    async fn complete(&self, handlers: usize, appended: &[u64]) {
        let started = Instant::now();
        loop {
            let counts = self.counts();
            let missing: Vec<(usize, u64)> = (0..handlers)
                .flat_map(|h| appended.iter().map(move |&p| (h, p)))
                .filter(|key| !counts.contains_key(key))
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} of {} (handler, event) pairs never handled, beginning {:?}; appended {appended:?}",
                missing.len(),
                handlers * appended.len(),
                &missing[..missing.len().min(5)]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// For each handler, the apps that handled for it, one entry per run of
    /// consecutive events: `[0, 1]` is a handover; `[0, 1, 0, ..]` two apps
    /// handling at once.
    fn runs(&self) -> BTreeMap<usize, Vec<usize>> {
        let mut runs: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (h, _, app) in self.rows() {
            let of = runs.entry(h).or_default();
            if of.last() != Some(&app) {
                of.push(app);
            }
        }
        runs
    }
}

macro_rules! handlers {
    ($($name:ident $label:literal),* $(,)?) => {
        $(
            pub struct $name {
                log: Log,
                index: usize,
                app: usize,
            }

            #[event_handler(name = $label)]
            impl $name {
                fn on_tick(&self, _: &TickEvent, meta: &EventMeta<'_>) {
                    self.log.0.lock().unwrap().push((self.index, meta.position(), self.app));
                }
            }
        )*

        /// `builder` with the first `count` handlers, logging as `app`.
        fn with_handlers(
            mut builder: annals::AppBuilder,
            count: usize,
            log: &Log,
            app: usize,
        ) -> annals::AppBuilder {
            let mut index = 0;
            $(
                if index < count {
                    builder = builder.handler($name { log: log.clone(), index, app });
                }
                index += 1;
            )*
            let _ = index;
            builder
        }
    };
}

handlers!(
    T00 "turns-00", T01 "turns-01", T02 "turns-02", T03 "turns-03", T04 "turns-04",
    T05 "turns-05", T06 "turns-06", T07 "turns-07", T08 "turns-08", T09 "turns-09",
    T10 "turns-10", T11 "turns-11", T12 "turns-12", T13 "turns-13", T14 "turns-14",
    T15 "turns-15", T16 "turns-16", T17 "turns-17", T18 "turns-18", T19 "turns-19",
    T20 "turns-20", T21 "turns-21", T22 "turns-22", T23 "turns-23", T24 "turns-24",
    T25 "turns-25", T26 "turns-26", T27 "turns-27", T28 "turns-28", T29 "turns-29",
    T30 "turns-30", T31 "turns-31", T32 "turns-32", T33 "turns-33", T34 "turns-34",
    T35 "turns-35", T36 "turns-36", T37 "turns-37", T38 "turns-38", T39 "turns-39",
    T40 "turns-40", T41 "turns-41", T42 "turns-42", T43 "turns-43", T44 "turns-44",
    T45 "turns-45", T46 "turns-46", T47 "turns-47", T48 "turns-48", T49 "turns-49",
    T50 "turns-50", T51 "turns-51", T52 "turns-52", T53 "turns-53", T54 "turns-54",
    T55 "turns-55", T56 "turns-56", T57 "turns-57", T58 "turns-58", T59 "turns-59",
    T60 "turns-60", T61 "turns-61", T62 "turns-62", T63 "turns-63", T64 "turns-64",
    T65 "turns-65", T66 "turns-66", T67 "turns-67", T68 "turns-68", T69 "turns-69",
    T70 "turns-70", T71 "turns-71", T72 "turns-72", T73 "turns-73", T74 "turns-74",
    T75 "turns-75", T76 "turns-76", T77 "turns-77", T78 "turns-78", T79 "turns-79",
    T80 "turns-80", T81 "turns-81", T82 "turns-82", T83 "turns-83", T84 "turns-84",
    T85 "turns-85", T86 "turns-86", T87 "turns-87", T88 "turns-88", T89 "turns-89",
    T90 "turns-90", T91 "turns-91", T92 "turns-92", T93 "turns-93", T94 "turns-94",
    T95 "turns-95", T96 "turns-96", T97 "turns-97", T98 "turns-98", T99 "turns-99",
);

/// Counts each event's applications in `applied`, in the projection's
/// transaction: an event applied twice is two rows.
struct Applied {
    app: i32,
}

impl Projection<sqlx::Postgres> for Applied {
    const NAME: &'static str = "turns-applied";
    const INTEREST: &'static [&'static [annals::aggregate::EventType]] =
        &[<TickEvent as Event>::TYPES];

    fn project<'a>(
        &'a self,
        tx: &'a mut sqlx::PgConnection,
        event: &'a RecordedEvent,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            sqlx::query("INSERT INTO applied (position, app) VALUES ($1, $2)")
                .bind(event.global_position as i64)
                .bind(self.app)
                .execute(&mut *tx)
                .await
                .map_err(|e| HandlerError::Failed(e.into()))?;
            Ok(())
        })
    }

    fn reset<'a>(
        &'a self,
        tx: &'a mut sqlx::PgConnection,
    ) -> futures::future::BoxFuture<'a, Result<(), annals::BoxError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM applied").execute(&mut *tx).await?;
            Ok(())
        })
    }
}

/// A store on `schema`, as one process would open it.
async fn store(schema: &str) -> PostgresStore {
    PostgresStore::builder(test_url())
        .schema(schema)
        .max_connections(POOL)
        .poll_interval(POLL)
        .connect()
        .await
        .expect("PostgreSQL is reachable")
}

/// The connections of every store on `store`'s schema.
async fn connections(store: &PostgresStore) -> i64 {
    let mut admin = admin_connection().await;
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(application_name(store))
        .fetch_one(&mut admin)
        .await
        .expect("read pg_stat_activity")
}

/// Dispatches `n` ticks round five streams; their positions.
async fn ticks(app: &App, from: u64, n: u64) -> Vec<u64> {
    let mut positions = Vec::new();
    for i in from..from + n {
        let done = app
            .dispatch(Tick {
                id: format!("t{}", i % 5),
                n: i,
            })
            .await
            .expect("a tick is appended");
        positions.push(done.positions.expect("one event").1);
    }
    positions
}

/// Dispatches a tick every few milliseconds until stopped.
struct Appender {
    positions: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Appender {
    fn start(app: &App) -> Self {
        let positions = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (app, positions, stop) = (app.clone(), positions.clone(), stop.clone());
            async move {
                let mut n = 1_000_000;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let done = ticks(&app, n, 1).await;
                    positions.lock().unwrap().extend(done);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Self {
            positions,
            stop,
            task,
        }
    }

    async fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the appender");
        self.positions.lock().unwrap().clone()
    }
}

/// A hundred handlers in one App: every one handles every event, the
/// store's connections stay within its pool and a few more, and idle
/// handlers read nothing.
///
/// Before one session per store, each handler held a connection of its own
/// for its turn (from a lock pool of at most 64): 36 of the hundred never
/// got one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_handlers_use_a_bounded_number_of_connections() {
    let schema = fresh_schema();
    let store = store(&schema).await;
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = Counted {
        inner: AnyStore::new(store.clone()),
        reads: reads.clone(),
    };
    let log = Log::default();
    let app = with_handlers(App::builder().store(counted), 100, &log, 0)
        .build()
        .expect("an app with a hundred handlers");
    let appended = ticks(&app, 0, 20).await;
    log.complete(100, &appended).await;
    let twice: Vec<_> = log.counts().into_iter().filter(|&(_, n)| n > 1).collect();
    assert!(twice.is_empty(), "handled twice: {twice:?}");

    let open = connections(&store).await;
    assert!(
        open <= i64::from(POOL) + BESIDES_THE_POOL,
        "a hundred handlers use {open} connections (pool of {POOL})"
    );

    // Idle: once the last reads have settled, nothing is read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = reads.load(Ordering::SeqCst);
    tokio::time::sleep(POLL * 15).await;
    let idle = reads.load(Ordering::SeqCst) - before;
    assert!(
        idle < 100,
        "{idle} reads by a hundred idle handlers in {:?} (each polling would make 1,500)",
        POLL * 15
    );

    // Another handle appends (as another process): every handler wakes.
    let other = store_app(&schema).await;
    let later = ticks(&other, 100, 5).await;
    log.complete(100, &later).await;
    app.shutdown().await.expect("a clean shutdown");
    other.shutdown().await.expect("a clean shutdown");
    drop_schema(&store).await;
}

/// An App without handlers on a new store handle of `schema`.
async fn store_app(schema: &str) -> App {
    App::builder()
        .store(store(schema).await)
        .build()
        .expect("an app")
}

/// Two Apps (two store handles, as two processes) with the same hundred
/// handlers: each event is handled once by each handler, by one App at a
/// time; when one App shuts down, the other takes its turns over.
///
/// Before one session per store, the two Apps needed a connection per
/// handler each: past PostgreSQL's `max_connections` of 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_run_each_handler_once_at_a_time() {
    let schema = fresh_schema();
    let (a, b) = (store(&schema).await, store(&schema).await);
    let log = Log::default();
    let app_a = with_handlers(App::builder().store(a.clone()), 100, &log, 0)
        .build()
        .expect("app A");
    let app_b = with_handlers(App::builder().store(b.clone()), 100, &log, 1)
        .build()
        .expect("app B");
    let writer = store_app(&schema).await;
    let first = ticks(&writer, 0, 20).await;
    log.complete(100, &first).await;
    let open = connections(&a).await;
    assert!(
        open <= 3 * (i64::from(POOL) + BESIDES_THE_POOL),
        "three stores with two hundred handlers use {open} connections (pools of {POOL})"
    );

    // A goes; B takes its turns over from their checkpoints.
    app_a.shutdown().await.expect("A shuts down");
    let later = ticks(&writer, 20, 20).await;
    log.complete(100, &later).await;
    let twice: Vec<_> = log.counts().into_iter().filter(|&(_, n)| n > 1).collect();
    assert!(twice.is_empty(), "handled twice: {twice:?}");
    for (handler, runs) in log.runs() {
        assert!(
            runs.len() <= 2 && runs.last() == Some(&1),
            "handler {handler}: runs by apps {runs:?}, expected one app at a time and B last"
        );
    }
    let by_b = log
        .rows()
        .iter()
        .filter(|&&(_, p, app)| later.contains(&p) && app == 1)
        .count();
    assert_eq!(
        by_b,
        100 * later.len(),
        "B handles everything after A is gone"
    );
    app_b.shutdown().await.expect("B shuts down");
    writer.shutdown().await.expect("the writer shuts down");
    b.close().await;
    drop_schema(&a).await;
}

/// The server ends the connection that holds App A's turns (as a network
/// failure, a proxy or an operator would), while events keep coming and App
/// B waits for the same turns: A's runners stop (their status says the turn
/// was lost), the turns go on in A or B, and once A has noticed, never in
/// both; every event is handled, and the projection applies each exactly
/// once.
///
/// B may take a turn the moment the server ends A's connection, before A can
/// know: until A's session next speaks to the server (within the poll
/// interval) and its runners finish the event in hand, both may handle.
/// That is why a projection checks its checkpoint in its transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_stops_its_runners_and_they_resume() {
    const HANDLERS: usize = 20;
    let schema = fresh_schema();
    let (a, b) = (store(&schema).await, store(&schema).await);
    sqlx::query("CREATE TABLE applied (position bigint NOT NULL, app int NOT NULL)")
        .execute(a.pool())
        .await
        .expect("create the projection's table");
    let log = Log::default();
    let app = |store: &PostgresStore, id: usize| {
        with_handlers(App::builder().store(store.clone()), HANDLERS, &log, id)
            .projection(store.pool().clone(), Applied { app: id as i32 })
            .build()
            .expect("an app")
    };
    let app_a = app(&a, 0);
    let writer = store_app(&schema).await;
    let first = ticks(&writer, 0, 10).await;
    log.complete(HANDLERS, &first).await;
    app_a
        .wait_for_handlers(*first.last().unwrap(), &[], Duration::from_secs(30))
        .await
        .expect("A's projection catches up");
    // A holds every turn; B waits for them.
    let app_b = app(&b, 1);
    let appender = Appender::start(&writer);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut admin = admin_connection().await;
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a \
         WHERE a.application_name = $1 AND EXISTS (SELECT 1 FROM pg_locks l \
         WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.mode = 'ExclusiveLock' \
         AND l.granted)",
    )
    .bind(application_name(&a))
    .fetch_one(&mut admin)
    .await
    .expect("end the connection holding the turns");
    assert_eq!(ended, 1, "one connection held every turn");

    // Every runner of A heard of it.
    let started = Instant::now();
    loop {
        let status = app_a.handler_status().await;
        let unaware: Vec<&str> = status
            .iter()
            .filter(|s| {
                !s.last_error
                    .as_ref()
                    .is_some_and(|e| e.message.contains("lost its turn"))
            })
            .map(|s| s.name)
            .collect();
        if unaware.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "A's runners never stopped: {unaware:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let noticed = log.rows().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let appended: Vec<u64> = first.into_iter().chain(appender.stop().await).collect();
    log.complete(HANDLERS, &appended).await;
    let mut since: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (handler, _, app) in &log.rows()[noticed..] {
        since.entry(*handler).or_default().insert(*app);
    }
    for (handler, apps) in &since {
        assert_eq!(
            apps.len(),
            1,
            "handler {handler}: handled by apps {apps:?} after A noticed it lost its turns"
        );
    }
    // Every handler and the projection runs again, in A or B.
    let started = Instant::now();
    loop {
        let running: BTreeSet<&str> = app_a
            .handler_status()
            .await
            .into_iter()
            .chain(app_b.handler_status().await)
            .filter(|s| matches!(s.state, HandlerState::Running | HandlerState::Idle))
            .map(|s| s.name)
            .collect();
        if running.len() == HANDLERS + 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "only {} of {} handlers run again",
            running.len(),
            HANDLERS + 1
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let applied: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT position, count(*) FROM applied GROUP BY position ORDER BY position",
    )
    .fetch_all(a.pool())
    .await
    .expect("read what the projection applied");
    let twice: Vec<i64> = applied.iter().filter(|r| r.1 > 1).map(|r| r.0).collect();
    assert!(twice.is_empty(), "the projection applied twice: {twice:?}");
    let positions: BTreeSet<u64> = applied.iter().map(|r| r.0 as u64).collect();
    assert!(
        appended.iter().all(|p| positions.contains(p)),
        "the projection missed events"
    );
    eprintln!(
        "lost session: runs per handler {:?}",
        log.runs().values().collect::<BTreeSet<_>>()
    );
    app_a.shutdown().await.expect("A shuts down");
    app_b.shutdown().await.expect("B shuts down");
    writer.shutdown().await.expect("the writer shuts down");
    b.close().await;
    drop_schema(&a).await;
}

/// A handler that wants one event after 20,000 it does not want, with
/// nothing appended meanwhile: it reads on through the stretches (one scan
/// window after the other) instead of waiting to be woken, which no append
/// would do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_event_is_reached_through_long_stretches_without_wake_ups() {
    let schema = fresh_schema();
    let store = store(&schema).await;
    let noise = StreamId::new("Noise-1");
    for _ in 0..20 {
        let events = (0..1000)
            .map(|_| NewEvent::new("Noise", 1, annals::Payload::from_json("{}").unwrap()))
            .collect();
        store
            .append(&noise, ExpectedVersion::Any, events)
            .await
            .expect("append noise");
    }
    let wanted = ticks(&store_app(&schema).await, 0, 1).await;
    let log = Log::default();
    let app = with_handlers(App::builder().store(store.clone()), 1, &log, 0)
        .build()
        .expect("an app");
    log.complete(1, &wanted).await;
    app.shutdown().await.expect("a clean shutdown");
    drop_schema(&store).await;
}

/// Counts the filtered reads an app makes; delegates everything.
#[derive(Clone)]
struct Counted {
    inner: AnyStore,
    reads: Arc<AtomicUsize>,
}

impl EventStore for Counted {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
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
        self.inner
            .append_after_seen(stream, seen, hint, held, events)
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
        max_count: usize,
    ) -> StoreFuture<'a, Vec<RecordedEvent>> {
        self.inner.read_stream(stream, from_version, max_count)
    }

    fn stream_version<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<u64>> {
        self.inner.stream_version(stream)
    }

    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> StoreFuture<'_, Vec<RecordedEvent>> {
        self.inner.read_all(from_position, max_count)
    }

    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.inner.subscribe_all(from_position)
    }

    fn read_all_filtered<'a>(
        &'a self,
        from_position: u64,
        max_count: usize,
        filter: &'a EventFilter,
    ) -> StoreFuture<'a, FilteredPage> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner
            .read_all_filtered(from_position, max_count, filter)
    }

    fn head_position(&self) -> StoreFuture<'_, u64> {
        self.inner.head_position()
    }

    fn watch_log(&self) -> LogWatch {
        self.inner.watch_log()
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> StoreFuture<'_, ()> {
        self.inner.save_snapshot(snapshot)
    }

    fn load_snapshot<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<Snapshot>> {
        self.inner.load_snapshot(stream)
    }

    fn load_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<u64>> {
        self.inner.load_checkpoint(name)
    }

    fn save_checkpoint<'a>(&'a self, name: &'a str, position: u64) -> StoreFuture<'a, ()> {
        self.inner.save_checkpoint(name, position)
    }

    fn delete_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()> {
        self.inner.delete_checkpoint(name)
    }

    fn checkpoints(&self) -> StoreFuture<'_, Vec<(String, u64)>> {
        self.inner.checkpoints()
    }

    fn lock_stream<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        self.inner.lock_stream(stream)
    }

    fn lock_turn<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        self.inner.lock_turn(stream)
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        self.inner.close()
    }
}
