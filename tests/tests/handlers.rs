//! Event handlers run by the App on every store: catch-up then live,
//! checkpoints that survive a restart, the error policies, per-stream order
//! under concurrency, strong consistency, and one runner per handler among
//! several Apps on one database.

use annals::handler::{ErrorPolicy, HandlerOptions, HandlerState, Lagging};
use annals::prelude::*;
use annals::{DispatchOptions, EventMeta, ExpectedVersion, NewEvent, Payload, StreamId};
use annals_tests::conformance::{MemoryFactory, StoreFactory};
use annals_tests::postgres::PostgresFactory;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

#[event]
pub enum TallyEvent {
    Added { n: u64 },
}

#[event]
pub enum NoiseEvent {
    Noise,
}

#[command(aggregate = Tally)]
pub struct Add {
    #[id]
    pub id: String,
    pub n: u64,
}

#[command(aggregate = Noisy)]
pub struct MakeNoise {
    #[id]
    pub id: String,
}

#[aggregate(events = TallyEvent)]
#[derive(Default)]
pub struct Tally {
    total: u64,
}

#[aggregate]
impl Tally {
    #[handle]
    fn add(&self, command: Add) -> TallyEvent {
        TallyEvent::Added { n: command.n }
    }

    #[apply]
    fn apply(&mut self, event: &TallyEvent) {
        match event {
            TallyEvent::Added { n } => self.total += n,
        }
    }
}

#[aggregate(events = NoiseEvent)]
#[derive(Default)]
pub struct Noisy;

#[aggregate]
impl Noisy {
    #[handle]
    fn noise(&self, _: MakeNoise) -> NoiseEvent {
        NoiseEvent::Noise
    }

    #[apply]
    fn apply(&mut self, _: &NoiseEvent) {}
}

/// What a handler saw: (stream, version, n, position, correlation id).
type Seen = Arc<parking_lot::Mutex<Vec<(String, u64, u64, u64, Option<uuid::Uuid>)>>>;

#[derive(Debug, thiserror::Error)]
#[error("boom on n = {0}")]
pub struct Boom(u64);

/// Records every `Added`; fails on `n == fail_on` while `failing` is set,
/// for the first `fail_times` attempts (all of them when `u32::MAX`).
#[derive(Clone, Default)]
pub struct Recorder {
    seen: Seen,
    fail_on: Option<u64>,
    failing: Arc<AtomicBool>,
    fail_times: u32,
    attempts: Arc<AtomicU32>,
    pause: Option<Duration>,
}

impl Recorder {
    fn failing_on(n: u64, times: u32) -> Self {
        Self {
            fail_on: Some(n),
            failing: Arc::new(AtomicBool::new(true)),
            fail_times: times,
            ..Self::default()
        }
    }

    fn ns(&self) -> Vec<u64> {
        self.seen.lock().iter().map(|s| s.2).collect()
    }
}

#[event_handler(name = "recorder")]
impl Recorder {
    async fn on_tally(&self, event: &TallyEvent, meta: &EventMeta<'_>) -> Result<(), Boom> {
        let TallyEvent::Added { n } = event;
        if self.fail_on == Some(*n) && self.failing.load(Ordering::SeqCst) {
            let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
            if attempt <= self.fail_times {
                return Err(Boom(*n));
            }
        }
        if let Some(pause) = self.pause {
            tokio::time::sleep(pause).await;
        }
        self.seen.lock().push((
            meta.stream_id().to_string(),
            meta.stream_version(),
            *n,
            meta.position(),
            meta.correlation_id(),
        ));
        Ok(())
    }
}

/// Starts where it is first run, not at the origin.
#[derive(Clone, Default)]
pub struct Latecomer {
    seen: Seen,
}

#[event_handler(name = "latecomer", start_from = now)]
impl Latecomer {
    fn on_tally(&self, event: &TallyEvent, meta: &EventMeta<'_>) {
        let TallyEvent::Added { n } = event;
        self.seen.lock().push((
            meta.stream_id().to_string(),
            meta.stream_version(),
            *n,
            meta.position(),
            None,
        ));
    }
}

/// Reacts to a big `Added` by making noise, as one request: same
/// correlation id, caused by the event.
#[derive(Clone, Default)]
pub struct Reactor {
    app: Arc<std::sync::OnceLock<App>>,
}

#[event_handler(name = "reactor")]
impl Reactor {
    async fn on_tally(
        &self,
        event: &TallyEvent,
        meta: &EventMeta<'_>,
    ) -> Result<(), DispatchError<std::convert::Infallible>> {
        let TallyEvent::Added { n } = event;
        if *n < 100 {
            return Ok(());
        }
        let app = self.app.get().expect("set after build");
        let mut options = DispatchOptions::new().causation_id(meta.event_id());
        if let Some(correlation) = meta.correlation_id() {
            options = options.correlation_id(correlation);
        }
        app.dispatch_with(
            MakeNoise {
                id: format!("after-{n}"),
            },
            options,
        )
        .await
        .map(drop)
    }
}

fn app(store: impl EventStore, recorder: &Recorder, options: HandlerOptions) -> App {
    App::builder()
        .store(store)
        .handler_with(recorder.clone(), options)
        .build()
        .expect("an app with a handler")
}

fn quick() -> HandlerOptions {
    HandlerOptions::new().checkpoint_every(1_000, Duration::from_millis(20))
}

async fn add(app: &App, id: &str, n: u64) -> u64 {
    let done = app
        .dispatch(Add { id: id.into(), n })
        .await
        .expect("dispatched");
    done.positions.expect("one event").1
}

async fn caught_up(app: &App, position: u64) {
    app.wait_for_handlers(position, &[], Duration::from_secs(10))
        .await
        .expect("the handlers catch up");
}

/// Stored events first, then live ones, each once, in order, with metadata.
async fn catches_up_then_follows_live<F: StoreFactory>(factory: &F, store: &F::Store) {
    let writer = App::builder().store(store.clone()).build().unwrap();
    let first = writer
        .dispatch(Add {
            id: "a".into(),
            n: 1,
        })
        .await
        .unwrap();
    add(&writer, "b", 2).await;
    add(&writer, "a", 3).await;
    writer.dispatch(MakeNoise { id: "x".into() }).await.unwrap();

    // Slow enough that a dispatch that did not wait would return first.
    let recorder = Recorder {
        pause: Some(Duration::from_millis(30)),
        ..Recorder::default()
    };
    let app = app(factory.open_again(store).await, &recorder, quick());
    let last = add(&app, "b", 4).await;
    caught_up(&app, last).await;
    assert_eq!(recorder.ns(), [1, 2, 3, 4]);
    let seen = recorder.seen.lock().clone();
    assert_eq!(seen[0].0, "Tally-a");
    assert_eq!(seen[0].1, 1);
    assert_eq!(seen[0].3, first.positions.unwrap().0);
    assert_eq!(seen[0].4, Some(first.correlation_id));
    assert_eq!((seen[2].0.as_str(), seen[2].1), ("Tally-a", 2));

    // Live, and strongly consistent: handled before the dispatch returns.
    let done = app
        .dispatch_with(
            Add {
                id: "c".into(),
                n: 5,
            },
            DispatchOptions::new().wait_for_handler("recorder"),
        )
        .await
        .unwrap();
    assert_eq!(recorder.ns(), [1, 2, 3, 4, 5]);

    let status = app.handler_status().await;
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].name, "recorder");
    assert_eq!(status[0].handled, 5);
    assert!(status[0].position >= done.positions.unwrap().1);
    assert_eq!(status[0].lag, 0);
    assert!(status[0].last_error.is_none());

    app.shutdown().await.unwrap();
    let again = factory.open_again(store).await;
    assert_eq!(
        again.load_checkpoint("recorder").await.unwrap(),
        Some(status[0].position),
        "shutdown saves the checkpoint"
    );
}

/// A restarted handler goes on from its checkpoint: nothing twice.
async fn resumes_from_its_checkpoint<F: StoreFactory>(factory: &F, store: &F::Store) {
    let first = Recorder::default();
    let app1 = app(factory.open_again(store).await, &first, quick());
    for n in 1..=3 {
        add(&app1, "r", n).await;
    }
    let last = add(&app1, "s", 4).await;
    caught_up(&app1, last).await;
    app1.shutdown().await.unwrap();

    let second = Recorder::default();
    let app2 = app(factory.open_again(store).await, &second, quick());
    let last = add(&app2, "r", 5).await;
    caught_up(&app2, last).await;
    assert_eq!(first.ns(), [1, 2, 3, 4]);
    assert_eq!(second.ns(), [5]);
    app2.shutdown().await.unwrap();
}

/// A failing event is retried with backoff until it succeeds, in order.
async fn retries_until_it_succeeds<F: StoreFactory>(factory: &F, store: &F::Store) {
    let recorder = Recorder::failing_on(2, 2);
    let policy = ErrorPolicy::retry(5).backoff(Duration::from_millis(1), Duration::from_millis(5));
    let app = app(
        factory.open_again(store).await,
        &recorder,
        quick().on_error(policy),
    );
    for n in 1..=2 {
        add(&app, "t", n).await;
    }
    let last = add(&app, "t", 3).await;
    caught_up(&app, last).await;
    assert_eq!(recorder.ns(), [1, 2, 3]);
    assert_eq!(recorder.attempts.load(Ordering::SeqCst), 3);
    let status = &app.handler_status().await[0];
    assert_eq!(status.handled, 3);
    assert_eq!(status.skipped, 0);
    let error = status
        .last_error
        .as_ref()
        .expect("the failures are reported");
    assert!(error.message.contains("boom on n = 2"), "{}", error.message);
    app.shutdown().await.unwrap();
}

/// `then_skip`: the event is skipped, reported, and the handler goes on.
async fn skips_what_keeps_failing<F: StoreFactory>(factory: &F, store: &F::Store) {
    let recorder = Recorder::failing_on(2, u32::MAX);
    let policy = ErrorPolicy::retry(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .then_skip();
    let app = app(
        factory.open_again(store).await,
        &recorder,
        quick().on_error(policy),
    );
    add(&app, "u", 1).await;
    let bad = add(&app, "u", 2).await;
    let last = add(&app, "u", 3).await;
    caught_up(&app, last).await;
    assert_eq!(recorder.ns(), [1, 3]);
    assert_eq!(recorder.attempts.load(Ordering::SeqCst), 2);
    let status = &app.handler_status().await[0];
    assert_eq!(status.skipped, 1);
    assert_eq!(status.last_error.as_ref().unwrap().position, bad);
    app.shutdown().await.unwrap();
}

/// `stop`: the handler stops before the event, visibly; a restart (once
/// the cause is fixed) handles it and what follows.
async fn stops_before_a_failing_event<F: StoreFactory>(factory: &F, store: &F::Store) {
    let recorder = Recorder::failing_on(2, u32::MAX);
    let app1 = app(
        factory.open_again(store).await,
        &recorder,
        quick().on_error(ErrorPolicy::stop()),
    );
    let one = add(&app1, "v", 1).await;
    let refused = app1
        .dispatch_with(
            Add {
                id: "v".into(),
                n: 2,
            },
            DispatchOptions::new().wait_for_handler("recorder"),
        )
        .await
        .unwrap_err();
    match refused {
        DispatchError::NotConsistent {
            reason: Lagging::Stopped,
            version: 2,
            ..
        } => {}
        other => panic!("expected NotConsistent(Stopped), got {other:?}"),
    }
    add(&app1, "v", 3).await;
    let status = &app1.handler_status().await[0];
    assert_eq!(status.state, HandlerState::Stopped);
    assert_eq!(status.position, one);
    assert!(status.lag >= 2, "lag {}", status.lag);
    assert_eq!(recorder.ns(), [1]);
    app1.shutdown().await.unwrap();

    recorder.failing.store(false, Ordering::SeqCst);
    let app2 = app(factory.open_again(store).await, &recorder, quick());
    let last = add(&app2, "v", 4).await;
    caught_up(&app2, last).await;
    assert_eq!(recorder.ns(), [1, 2, 3, 4]);
    app2.shutdown().await.unwrap();
}

/// With concurrency, events of one stream are still handled in order, and
/// every event once.
async fn concurrency_keeps_order_per_stream<F: StoreFactory>(factory: &F, store: &F::Store) {
    let writer = App::builder().store(store.clone()).build().unwrap();
    let mut last = 0;
    for round in 0..15 {
        for stream in 0..8 {
            last = add(&writer, &format!("p{stream}"), round * 8 + stream).await;
        }
    }
    let recorder = Recorder {
        pause: Some(Duration::from_micros(300)),
        ..Recorder::default()
    };
    let app = app(
        factory.open_again(store).await,
        &recorder,
        quick().concurrency(4).batch_size(40),
    );
    caught_up(&app, last).await;
    let seen = recorder.seen.lock().clone();
    assert_eq!(seen.len(), 120);
    let mut per_stream: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (stream, version, ..) in seen {
        per_stream.entry(stream).or_default().push(version);
    }
    assert_eq!(per_stream.len(), 8);
    for (stream, versions) in per_stream {
        assert_eq!(versions, (1..=15).collect::<Vec<_>>(), "{stream}");
    }
    app.shutdown().await.unwrap();
}

/// `start_from = now` ignores what was stored before its first start.
async fn starts_from_now_when_asked<F: StoreFactory>(factory: &F, store: &F::Store) {
    let writer = App::builder().store(store.clone()).build().unwrap();
    add(&writer, "w", 1).await;
    let late = Latecomer::default();
    let app = App::builder()
        .store(factory.open_again(store).await)
        .handler(late.clone())
        .build()
        .unwrap();
    // Its first checkpoint is the head when it started.
    tokio::time::timeout(Duration::from_secs(10), async {
        while app.handler_status().await[0].state == HandlerState::Starting {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let last = add(&app, "w", 2).await;
    caught_up(&app, last).await;
    let ns: Vec<u64> = late.seen.lock().iter().map(|s| s.2).collect();
    assert_eq!(ns, [2]);
    app.shutdown().await.unwrap();
}

/// Several Apps on one database (as several processes): each handler runs
/// in one of them at a time, and another takes over when it shuts down.
async fn one_runner_per_handler_among_apps<F: StoreFactory>(factory: &F, store: &F::Store) {
    let (ra, rb) = (Recorder::default(), Recorder::default());
    let a = app(factory.open_again(store).await, &ra, quick());
    let b = app(factory.open_again(store).await, &rb, quick());
    let mut last = 0;
    for n in 1..=20 {
        let via = if n % 2 == 0 { &a } else { &b };
        last = add(via, "m", n).await;
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while ra.ns().len() + rb.ns().len() < 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("one of them handles every event");
    // Give a second runner, if there wrongly were one, time to show itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (holder, holder_rec, other, other_rec) = if ra.ns().is_empty() {
        (b, rb, a, ra)
    } else {
        (a, ra, b, rb)
    };
    assert_eq!(holder_rec.ns(), (1..=20).collect::<Vec<_>>());
    assert!(other_rec.ns().is_empty(), "both ran: {:?}", other_rec.ns());
    let waiting = &other.handler_status().await[0];
    assert_eq!(waiting.state, HandlerState::Starting);
    let _ = last;

    holder.shutdown().await.unwrap();
    let last = add(&other, "m", 21).await;
    caught_up(&other, last).await;
    assert_eq!(other_rec.ns(), [21], "takes over from the checkpoint");
    other.shutdown().await.unwrap();
}

/// What a handler causes is found with the test kit, and carries the
/// request's correlation id and the event as its cause.
async fn reactions_share_the_correlation_id<F: StoreFactory>(factory: &F, store: &F::Store) {
    let reactor = Reactor::default();
    let app = App::builder()
        .store(factory.open_again(store).await)
        .handler(reactor.clone())
        .build()
        .unwrap();
    reactor.app.set(app.clone()).ok().unwrap();
    add(&app, "big", 5).await;
    add(&app, "big", 500).await;
    let noise =
        annals::testing::eventually_recorded(&**app.store(), Duration::from_secs(10), |e| {
            e.event_type == "Noise"
        })
        .await;
    let cause = annals::testing::eventually_recorded(&**app.store(), Duration::from_secs(1), |e| {
        e.stream_id.as_str() == "Tally-big" && e.stream_version == 2
    })
    .await;
    annals::testing::assert_same_correlation(&noise, &cause);
    assert_eq!(noise.metadata.causation_id, Some(cause.event_id));
    assert_eq!(noise.stream_id.as_str(), "Noisy-after-500");
    app.shutdown().await.unwrap();
}

macro_rules! handler_suite {
    ($factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let factory = $factory;
                let store = factory.create().await;
                super::$check(&factory, &store).await;
                factory.dispose(store).await;
            }
        )*
    };
    ($factory:expr) => {
        handler_suite!($factory;
            catches_up_then_follows_live,
            resumes_from_its_checkpoint,
            retries_until_it_succeeds,
            skips_what_keeps_failing,
            stops_before_a_failing_event,
            concurrency_keeps_order_per_stream,
            starts_from_now_when_asked,
            one_runner_per_handler_among_apps,
            reactions_share_the_correlation_id,
        );
    };
}

mod memory {
    use super::*;
    handler_suite!(MemoryFactory);
}

mod sqlite {
    use super::*;
    use annals::sqlite::SqliteStore;

    pub struct SqliteFactory(tempfile::TempDir);

    impl StoreFactory for SqliteFactory {
        type Store = SqliteStore;

        async fn create(&self) -> SqliteStore {
            SqliteStore::open(self.0.path().join("events.db"))
                .await
                .expect("a SQLite store")
        }

        async fn open_again(&self, store: &SqliteStore) -> SqliteStore {
            SqliteStore::open(store.filename()).await.expect("reopen")
        }
    }

    handler_suite!(SqliteFactory(tempfile::tempdir().unwrap()));
}

mod postgres {
    use super::*;
    handler_suite!(PostgresFactory);
}

#[tokio::test]
async fn one_app_cannot_run_one_handler_twice() {
    let refused = App::builder()
        .store(MemoryStore::new())
        .handler(Recorder::default())
        .handler(Recorder::default())
        .build()
        .unwrap_err();
    assert!(
        matches!(
            refused,
            annals::BuildError::DuplicateHandler {
                name: "recorder",
                ..
            }
        ),
        "{refused:?}"
    );
}

#[test]
fn handlers_need_a_runtime() {
    let refused = App::builder()
        .store(MemoryStore::new())
        .handler(Recorder::default())
        .build()
        .unwrap_err();
    assert!(
        matches!(refused, annals::BuildError::NoRuntime),
        "{refused:?}"
    );
}

#[tokio::test]
async fn handlers_are_tested_without_an_app() {
    let recorder = annals::testing::HandlerTest::new(Recorder::default())
        .given(
            "Tally-k",
            [TallyEvent::Added { n: 1 }, TallyEvent::Added { n: 2 }],
        )
        .await
        .unwrap()
        .given("Noisy-k", [NoiseEvent::Noise])
        .await
        .unwrap()
        .into_handler();
    let seen = recorder.seen.lock().clone();
    assert_eq!(recorder.ns(), [1, 2]);
    assert_eq!(
        (seen[1].0.as_str(), seen[1].1, seen[1].3),
        ("Tally-k", 2, 2)
    );

    let failing = annals::testing::HandlerTest::new(Recorder::failing_on(2, u32::MAX))
        .given(
            "Tally-k",
            [TallyEvent::Added { n: 1 }, TallyEvent::Added { n: 2 }],
        )
        .await;
    assert!(matches!(failing, Err(annals::HandlerError::Failed(_))));
}

/// A PostgreSQL store that polls only once a minute: a handler that waits
/// for a poll shows as a test that times out.
async fn slow_polling_store() -> annals::postgres::PostgresStore {
    annals::postgres::PostgresStore::builder(annals_tests::postgres::test_url())
        .schema(annals_tests::postgres::fresh_schema())
        .poll_interval(Duration::from_secs(60))
        .connect()
        .await
        .expect("a PostgreSQL store")
}

/// A read held back by PostgreSQL's read horizon (a transaction older than
/// the read was still running) is tried again shortly: once that
/// transaction ends, the handler gets the event within moments, with no
/// further append to wake it and a poll interval of a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_back_read_is_tried_again_without_a_wake_up() {
    let store = slow_polling_store().await;
    let recorder = Recorder::default();
    let app = app(store.clone(), &recorder, quick());
    caught_up(&app, add(&app, "a", 1).await).await;

    // A transaction with an id older than the next append's, left open.
    let mut admin = annals_tests::postgres::admin_connection().await;
    let mut older = sqlx::Connection::begin(&mut admin).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *older)
        .await
        .unwrap();
    let position = add(&app, "a", 2).await;
    // The append's wake-ups (in process, and its NOTIFY) came and went.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        recorder.ns(),
        [1],
        "nothing passes a transaction that may still write below it"
    );

    older.commit().await.unwrap();
    app.wait_for_handlers(position, &[], Duration::from_secs(5))
        .await
        .expect("the handler reads again once the older transaction ended, not at the next poll");
    assert_eq!(recorder.ns(), [1, 2]);
    app.shutdown().await.unwrap();
    annals_tests::postgres::drop_schema(&store).await;
}

/// Catching up over stretches of the log with nothing the handler wants
/// (more than one filtered read's scan window each) goes straight on to the
/// next stretch: it does not wait for a wake-up, as it does once caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catch_up_passes_long_stretches_of_unwanted_events_at_once() {
    let store = slow_polling_store().await;
    let noise = || {
        (0..1_000)
            .map(|_| NewEvent::new("Unwanted", 1, Payload::from_json("{}").unwrap()))
            .collect::<Vec<_>>()
    };
    let stream = StreamId::new("Other-1");
    for _ in 0..13 {
        store
            .append(&stream, ExpectedVersion::Any, noise())
            .await
            .unwrap();
    }
    let writer = App::builder().store(store.clone()).build().unwrap();
    let position = add(&writer, "a", 7).await;
    assert!(
        position > 3 * 4096,
        "the wanted event is past three scan windows"
    );

    let recorder = Recorder::default();
    let app = app(store.clone(), &recorder, quick());
    app.wait_for_handlers(position, &[], Duration::from_secs(10))
        .await
        .expect("the handler scans on through unwanted events without waiting for a poll");
    assert_eq!(recorder.ns(), [7]);
    app.shutdown().await.unwrap();
    annals_tests::postgres::drop_schema(&store).await;
}
