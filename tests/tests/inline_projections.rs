//! Inline projections on SQLite and PostgreSQL: the read model is written in
//! the append's own transaction, so it commits with the events or not at
//! all. A failing projection fails its command and records nothing, appends
//! written together with it still commit, the stored events are projected
//! once when a projection is first added, and several stores (as several
//! processes) on one database keep one read model.

use annals::handler::HandlerFuture;
use annals::prelude::*;
use annals::projection::Projection;
use annals::{
    DispatchError, ExpectedVersion, HandlerError, NewEvent, RecordedEvent, StoreError, StreamId,
};
use annals_tests::postgres::{fresh_schema, test_url};
use sqlx::{AssertSqlSafe, Executor, PgPool, SqlitePool};
use std::collections::BTreeMap;
use std::time::Duration;

#[event]
pub enum TillEvent {
    Rung { cents: i64 },
    Opened,
}

#[command(aggregate = Till)]
pub struct Ring {
    #[id]
    pub id: String,
    pub cents: i64,
}

#[aggregate(events = TillEvent)]
#[derive(Default)]
pub struct Till {
    total: i64,
}

#[aggregate]
impl Till {
    #[handle]
    fn ring(&self, command: Ring) -> TillEvent {
        TillEvent::Rung {
            cents: command.cents,
        }
    }

    #[apply]
    fn apply(&mut self, event: &TillEvent) {
        if let TillEvent::Rung { cents } = event {
            self.total += cents;
        }
    }
}

/// Totals per till, by increments (an event applied twice would show).
/// Refuses a negative amount after writing it: the write must be rolled back.
pub struct Totals;

const UPSERT: &str = "INSERT INTO totals (till, cents, events) VALUES ($1, $2, 1) \
     ON CONFLICT (till) DO UPDATE SET cents = totals.cents + excluded.cents, \
     events = totals.events + 1";

macro_rules! totals_on {
    ($db:ty, $conn:ty) => {
        impl Projection<$db> for Totals {
            const NAME: &'static str = "totals";
            const INTEREST: &'static [&'static [annals::aggregate::EventType]] =
                &[<TillEvent as Event>::TYPES];

            fn project<'a>(
                &'a self,
                tx: &'a mut $conn,
                event: &'a RecordedEvent,
            ) -> HandlerFuture<'a> {
                Box::pin(async move {
                    let cents = match HandlerError::decode::<TillEvent>(event)? {
                        TillEvent::Rung { cents } => cents,
                        TillEvent::Opened => 0,
                    };
                    sqlx::query(UPSERT)
                        .bind(event.stream_id.as_str())
                        .bind(cents)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| HandlerError::Failed(e.into()))?;
                    if cents < 0 {
                        return Err(HandlerError::Failed(
                            format!("a till cannot ring {cents}").into(),
                        ));
                    }
                    Ok(())
                })
            }

            fn reset<'a>(
                &'a self,
                tx: &'a mut $conn,
            ) -> futures::future::BoxFuture<'a, Result<(), annals::BoxError>> {
                Box::pin(async move {
                    sqlx::query("DELETE FROM totals").execute(&mut *tx).await?;
                    Ok(())
                })
            }
        }
    };
}

totals_on!(sqlx::Sqlite, sqlx::SqliteConnection);
totals_on!(sqlx::Postgres, sqlx::PgConnection);

const CREATE_TOTALS: &str =
    "CREATE TABLE totals (till TEXT PRIMARY KEY, cents BIGINT NOT NULL, events BIGINT NOT NULL)";

/// One database, opened as often as a test likes (each handle as another
/// process would open it), with the read model's table in it.
trait Db: Send + Sync + 'static {
    type Store: EventStore + Clone;
    async fn store(&self) -> Self::Store;
    async fn add(&self, store: &Self::Store) -> Result<u64, StoreError>;
    async fn rebuild(&self, store: &Self::Store, name: &str) -> Result<u64, StoreError>;
    async fn totals(&self) -> Vec<(String, i64, i64)>;
    async fn damage(&self);
    /// How many transactions wrote the events, where the store records it.
    async fn transactions(&self) -> Option<i64>;
}

struct SqliteDb {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    read: SqlitePool,
}

impl SqliteDb {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        // Creates the file and the store's tables.
        annals::sqlite::SqliteStore::open(&path)
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        let read = SqlitePool::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        read.execute(CREATE_TOTALS).await.unwrap();
        Self {
            _dir: dir,
            path,
            read,
        }
    }
}

impl Db for SqliteDb {
    type Store = annals::sqlite::SqliteStore;

    async fn store(&self) -> Self::Store {
        annals::sqlite::SqliteStore::open(&self.path).await.unwrap()
    }
    async fn add(&self, store: &Self::Store) -> Result<u64, StoreError> {
        store.add_inline_projection(Totals).await
    }
    async fn rebuild(&self, store: &Self::Store, name: &str) -> Result<u64, StoreError> {
        store.rebuild_inline_projection(name).await
    }
    async fn totals(&self) -> Vec<(String, i64, i64)> {
        sqlx::query_as("SELECT till, cents, events FROM totals ORDER BY till")
            .fetch_all(&self.read)
            .await
            .unwrap()
    }
    async fn damage(&self) {
        self.read
            .execute("UPDATE totals SET cents = cents * 1000 + 1")
            .await
            .unwrap();
    }
    async fn transactions(&self) -> Option<i64> {
        None
    }
}

struct PgDb {
    schema: String,
    read: PgPool,
}

impl PgDb {
    async fn new() -> Self {
        let schema = fresh_schema();
        // Creates the schema and the store's tables.
        let store = annals::postgres::PostgresStore::builder(test_url())
            .schema(&schema)
            .connect()
            .await
            .expect("PostgreSQL must be reachable");
        store.close().await;
        let path = schema.clone();
        let read = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .after_connect(move |conn, _| {
                let set = format!("SET search_path TO {path}");
                Box::pin(async move {
                    sqlx::query(AssertSqlSafe(set))
                        .execute(&mut *conn)
                        .await
                        .map(drop)
                })
            })
            .connect(&test_url())
            .await
            .unwrap();
        read.execute(CREATE_TOTALS).await.unwrap();
        Self { schema, read }
    }
}

impl Db for PgDb {
    type Store = annals::postgres::PostgresStore;

    async fn store(&self) -> Self::Store {
        annals::postgres::PostgresStore::builder(test_url())
            .schema(&self.schema)
            .max_connections(4)
            .poll_interval(Duration::from_millis(200))
            .connect()
            .await
            .unwrap()
    }
    async fn add(&self, store: &Self::Store) -> Result<u64, StoreError> {
        store.add_inline_projection(Totals).await
    }
    async fn rebuild(&self, store: &Self::Store, name: &str) -> Result<u64, StoreError> {
        store.rebuild_inline_projection(name).await
    }
    async fn totals(&self) -> Vec<(String, i64, i64)> {
        sqlx::query_as("SELECT till, cents, events FROM totals ORDER BY till")
            .fetch_all(&self.read)
            .await
            .unwrap()
    }
    async fn damage(&self) {
        self.read
            .execute("UPDATE totals SET cents = cents * 1000 + 1")
            .await
            .unwrap();
    }
    async fn transactions(&self) -> Option<i64> {
        sqlx::query_scalar("SELECT count(DISTINCT transaction_id) FROM events")
            .fetch_one(&self.read)
            .await
            .ok()
    }
}

fn app(store: impl EventStore) -> App {
    App::builder().store(store).build().unwrap()
}

async fn ring(
    app: &App,
    till: &str,
    cents: i64,
) -> Result<(), DispatchError<std::convert::Infallible>> {
    app.dispatch(Ring {
        id: till.into(),
        cents,
    })
    .await
    .map(drop)
}

fn row(till: &str, cents: i64, events: i64) -> (String, i64, i64) {
    (format!("Till-{till}"), cents, events)
}

fn new_event(event: TillEvent) -> NewEvent {
    NewEvent::new(
        event.event_type(),
        event.event_version(),
        event.encode().unwrap(),
    )
}

fn rung(cents: i64) -> NewEvent {
    new_event(TillEvent::Rung { cents })
}

/// Totals per stream as the stored events say: what the read model must equal.
async fn totals_from_log(store: &impl EventStore) -> Vec<(String, i64, i64)> {
    // PostgreSQL holds back the newest events while an older transaction
    // (another test's) may still commit before them: wait for the head.
    let head = store.head_position().await.unwrap();
    let log = annals_tests::conformance::log_through(store, head).await;
    let mut totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for event in &log {
        let cents = match TillEvent::decode(&event.event_type, event.event_version, &event.payload)
            .unwrap()
        {
            TillEvent::Rung { cents } => cents,
            TillEvent::Opened => 0,
        };
        let entry = totals.entry(event.stream_id.to_string()).or_default();
        entry.0 += cents;
        entry.1 += 1;
    }
    totals.into_iter().map(|(k, (c, n))| (k, c, n)).collect()
}

async fn read_model_commits_with_the_command<D: Db>(db: &D) {
    let store = db.store().await;
    assert_eq!(db.add(&store).await.unwrap(), 0, "nothing stored yet");
    let app = app(store);
    ring(&app, "a", 5).await.unwrap();
    ring(&app, "a", 7).await.unwrap();
    ring(&app, "b", 1).await.unwrap();
    // No waiting: the rows committed with the events.
    assert_eq!(db.totals().await, [row("a", 12, 2), row("b", 1, 1)]);
}

async fn a_failing_projection_fails_its_command<D: Db>(db: &D) {
    let store = db.store().await;
    db.add(&store).await.unwrap();
    let app = app(store.clone());
    ring(&app, "a", 5).await.unwrap();
    let refused = ring(&app, "a", -1).await.unwrap_err();
    match &refused {
        DispatchError::Store(StoreError::Projection {
            projection,
            stream,
            event_type,
            source,
        }) => {
            assert_eq!(*projection, "totals");
            assert_eq!(stream.as_str(), "Till-a");
            assert_eq!(event_type, "Rung");
            assert!(source.to_string().contains("failed"), "{source}");
        }
        other => panic!("expected the projection's failure, got {other:?}"),
    }
    assert!(
        refused.to_string().contains("totals"),
        "the error names the projection: {refused}"
    );
    // Nothing of it was recorded: neither the event nor the row it wrote.
    assert_eq!(
        store
            .stream_version(&StreamId::new("Till-a"))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(db.totals().await, [row("a", 5, 1)]);
    // The App's cached aggregate did not take it either.
    ring(&app, "a", 3).await.unwrap();
    assert_eq!(
        store
            .stream_version(&StreamId::new("Till-a"))
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(db.totals().await, [row("a", 8, 2)]);
}

async fn coalesced_appends_fail_alone<D: Db>(db: &D) {
    let store = db.store().await;
    db.add(&store).await.unwrap();
    let tasks: Vec<_> = (0..48i64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let cents = if i % 6 == 5 { -i } else { i };
                let stream = StreamId::new(format!("Till-{i:02}"));
                let events = vec![new_event(TillEvent::Opened), rung(cents)];
                (
                    i,
                    store
                        .append(&stream, ExpectedVersion::NoStream, events)
                        .await,
                )
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        let (i, result) = task.await.unwrap();
        if i % 6 == 5 {
            assert!(
                matches!(result, Err(StoreError::Projection { .. })),
                "append {i}: {result:?}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("append {i} failed with its neighbour: {e}"));
            written += 1;
        }
    }
    assert_eq!(written, 40);
    let log = totals_from_log(&store).await;
    assert_eq!(log.len(), 40, "only the appends that projected are stored");
    assert!(log.iter().all(|(_, cents, _)| *cents >= 0));
    assert_eq!(db.totals().await, log);
    if let Some(transactions) = db.transactions().await {
        assert!(
            transactions < written,
            "the appends were written together ({transactions} transactions for {written} appends)"
        );
    }
}

async fn stored_events_are_projected_once<D: Db>(db: &D) {
    // Events stored before the projection exists.
    let before = db.store().await;
    for i in 0..1_500i64 {
        let stream = StreamId::new(format!("Till-{}", i % 3));
        before
            .append(&stream, ExpectedVersion::Any, vec![rung(1)])
            .await
            .unwrap();
    }
    let first = db.store().await;
    assert_eq!(db.add(&first).await.unwrap(), 1_500);
    let expected = [row("0", 500, 500), row("1", 500, 500), row("2", 500, 500)];
    assert_eq!(db.totals().await, expected);
    // The next start (another handle) finds it live and projects nothing.
    let again = db.store().await;
    assert_eq!(db.add(&again).await.unwrap(), 0);
    assert_eq!(db.totals().await, expected);
    ring(&app(again), "0", 2).await.unwrap();
    assert_eq!(db.totals().await[0], row("0", 502, 501));
}

async fn rebuild_projects_every_event_again<D: Db>(db: &D) {
    let store = db.store().await;
    db.add(&store).await.unwrap();
    let app = app(store.clone());
    for (till, cents) in [("a", 1), ("b", 2), ("a", 3)] {
        ring(&app, till, cents).await.unwrap();
    }
    db.damage().await;
    assert_ne!(db.totals().await, [row("a", 4, 2), row("b", 2, 1)]);
    assert_eq!(db.rebuild(&store, "totals").await.unwrap(), 3);
    assert_eq!(db.totals().await, [row("a", 4, 2), row("b", 2, 1)]);

    let unknown = db.rebuild(&store, "nope").await.unwrap_err();
    assert!(
        matches!(&unknown, StoreError::Config(m) if m.contains("nope")),
        "{unknown:?}"
    );
    let twice = db.add(&store).await.unwrap_err();
    assert!(
        matches!(&twice, StoreError::Config(m) if m.contains("totals")),
        "{twice:?}"
    );
}

/// Four stores on one database, as four processes: each adds the projection
/// (the first projects what is stored, the others find it live), all
/// dispatch to the same tills, one rebuilds meanwhile; the read model ends
/// equal to the log.
async fn several_apps_keep_one_read_model<D: Db>(db: &D) {
    let seed = db.store().await;
    ring(&app(seed), "0", 100).await.unwrap();
    let mut stores = Vec::new();
    for _ in 0..4 {
        let store = db.store().await;
        db.add(&store).await.unwrap();
        stores.push(store);
    }
    let mut tasks = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        let app = app(store.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25i64 {
                ring(&app, &((i + n as i64) % 5).to_string(), i)
                    .await
                    .unwrap_or_else(|e| panic!("app {n}, command {i}: {e}"));
            }
        }));
    }
    let rebuilt = db.rebuild(&stores[0], "totals").await.unwrap();
    assert!(rebuilt >= 1, "the rebuild replays at least the first event");
    for task in tasks {
        task.await.unwrap();
    }
    let log = totals_from_log(&stores[0]).await;
    assert_eq!(log.iter().map(|(_, _, n)| n).sum::<i64>(), 101);
    assert_eq!(db.totals().await, log);
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&SqliteDb::new().await).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&PgDb::new().await).await;
                }
            )*
        }
    };
}

on_both!(
    read_model_commits_with_the_command,
    a_failing_projection_fails_its_command,
    coalesced_appends_fail_alone,
    stored_events_are_projected_once,
    rebuild_projects_every_event_again,
    several_apps_keep_one_read_model,
);

/// An append too large for one SQLite statement is projected whole, or
/// rolled back whole when its last event fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_sqlite_append_is_projected_whole() {
    let db = SqliteDb::new().await;
    let store = db.store().await;
    db.add(&store).await.unwrap();
    let stream = StreamId::new("Till-big");
    let events: Vec<_> = (0..4_500).map(|_| rung(1)).collect();
    store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    assert_eq!(db.totals().await, [row("big", 4_500, 4_500)]);
    let mut events: Vec<_> = (0..4_499).map(|_| rung(1)).collect();
    events.push(rung(-1));
    let refused = store
        .append(&stream, ExpectedVersion::Exact(4_500), events)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Projection { .. }),
        "{refused:?}"
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(4_500));
    assert_eq!(db.totals().await, [row("big", 4_500, 4_500)]);
}
