//! Transactional projections on SQLite and PostgreSQL: each batch and its
//! checkpoint commit together, so the read model never counts an event
//! twice nor misses one, whatever fails in between; rebuilds start from 0.

use annals::handler::{ErrorPolicy, HandlerFuture, HandlerOptions, HandlerState};
use annals::prelude::*;
use annals::projection::Projection;
use annals::{HandlerError, RecordedEvent};
use annals_tests::conformance::StoreFactory;
use annals_tests::postgres::{PostgresFactory, fresh_schema, test_url};
use sqlx::{AssertSqlSafe, Executor, PgPool, SqlitePool};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[event]
pub enum LedgerEvent {
    Credited { cents: i64 },
}

#[command(aggregate = Ledger)]
pub struct Credit {
    #[id]
    pub id: String,
    pub cents: i64,
}

#[aggregate(events = LedgerEvent)]
#[derive(Default)]
pub struct Ledger;

#[aggregate]
impl Ledger {
    #[handle]
    fn credit(&self, command: Credit) -> LedgerEvent {
        LedgerEvent::Credited {
            cents: command.cents,
        }
    }

    #[apply]
    fn apply(&mut self, _: &LedgerEvent) {}
}

/// Balances per ledger, by increments: an event applied twice would show.
/// Fails on events with `cents == fail_on` for the first `fail_times` tries.
#[derive(Clone, Default)]
pub struct Balances {
    fail_on: Option<i64>,
    fail_times: u32,
    tries: Arc<AtomicU32>,
}

impl Balances {
    fn failing_on(cents: i64, times: u32) -> Self {
        Self {
            fail_on: Some(cents),
            fail_times: times,
            ..Self::default()
        }
    }

    fn check(&self, cents: i64) -> Result<(), HandlerError> {
        if self.fail_on == Some(cents)
            && self.tries.fetch_add(1, Ordering::SeqCst) < self.fail_times
        {
            return Err(HandlerError::Failed(format!("refusing {cents}").into()));
        }
        Ok(())
    }
}

const UPSERT: &str = "INSERT INTO balances (ledger, cents, events) VALUES ($1, $2, 1) \
     ON CONFLICT (ledger) DO UPDATE SET cents = balances.cents + excluded.cents, \
     events = balances.events + 1";

macro_rules! balances_on {
    ($db:ty, $conn:ty) => {
        impl Projection<$db> for Balances {
            const NAME: &'static str = "balances";
            const INTEREST: &'static [&'static [annals::aggregate::EventType]] =
                &[<LedgerEvent as Event>::TYPES];

            fn project<'a>(
                &'a self,
                tx: &'a mut $conn,
                event: &'a RecordedEvent,
            ) -> HandlerFuture<'a> {
                Box::pin(async move {
                    let LedgerEvent::Credited { cents } =
                        HandlerError::decode::<LedgerEvent>(event)?;
                    // Written before the check: a failure must roll it back.
                    sqlx::query(UPSERT)
                        .bind(event.stream_id.as_str())
                        .bind(cents)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| HandlerError::Failed(e.into()))?;
                    self.check(cents)
                })
            }

            fn reset<'a>(
                &'a self,
                tx: &'a mut $conn,
            ) -> futures::future::BoxFuture<'a, Result<(), annals::BoxError>> {
                Box::pin(async move {
                    sqlx::query("DELETE FROM balances")
                        .execute(&mut *tx)
                        .await?;
                    Ok(())
                })
            }
        }
    };
}

balances_on!(sqlx::Sqlite, sqlx::SqliteConnection);
balances_on!(sqlx::Postgres, sqlx::PgConnection);

/// A read database the tests look into.
trait ReadDb: Clone + Send + Sync + 'static {
    fn balances(&self) -> impl Future<Output = Vec<(String, i64, i64)>> + Send;
    fn checkpoint(&self) -> impl Future<Output = Option<i64>> + Send;
    fn damage(&self) -> impl Future<Output = ()> + Send;
    fn bump_checkpoint(&self) -> impl Future<Output = ()> + Send;
    fn register(
        &self,
        builder: annals::AppBuilder,
        p: Balances,
        o: HandlerOptions,
    ) -> annals::AppBuilder;
}

impl ReadDb for SqlitePool {
    async fn bump_checkpoint(&self) {
        self.execute("UPDATE annals_projection_checkpoints SET position = position + 1")
            .await
            .unwrap();
    }
    async fn damage(&self) {
        self.execute("UPDATE balances SET cents = cents * 1000 + 1")
            .await
            .unwrap();
    }
    async fn balances(&self) -> Vec<(String, i64, i64)> {
        sqlx::query_as("SELECT ledger, cents, events FROM balances ORDER BY ledger")
            .fetch_all(self)
            .await
            .unwrap()
    }
    async fn checkpoint(&self) -> Option<i64> {
        sqlx::query_scalar(
            "SELECT position FROM annals_projection_checkpoints WHERE name = 'balances'",
        )
        .fetch_optional(self)
        .await
        .unwrap()
    }
    fn register(
        &self,
        builder: annals::AppBuilder,
        p: Balances,
        o: HandlerOptions,
    ) -> annals::AppBuilder {
        builder.projection_with(self.clone(), p, o)
    }
}

impl ReadDb for PgPool {
    async fn bump_checkpoint(&self) {
        self.execute("UPDATE annals_projection_checkpoints SET position = position + 1")
            .await
            .unwrap();
    }
    async fn damage(&self) {
        self.execute("UPDATE balances SET cents = cents * 1000 + 1")
            .await
            .unwrap();
    }
    async fn balances(&self) -> Vec<(String, i64, i64)> {
        sqlx::query_as("SELECT ledger, cents, events FROM balances ORDER BY ledger")
            .fetch_all(self)
            .await
            .unwrap()
    }
    async fn checkpoint(&self) -> Option<i64> {
        sqlx::query_scalar(
            "SELECT position FROM annals_projection_checkpoints WHERE name = 'balances'",
        )
        .fetch_optional(self)
        .await
        .unwrap()
    }
    fn register(
        &self,
        builder: annals::AppBuilder,
        p: Balances,
        o: HandlerOptions,
    ) -> annals::AppBuilder {
        builder.projection_with(self.clone(), p, o)
    }
}

async fn sqlite_read_db(dir: &tempfile::TempDir) -> SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("read.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    pool.execute("CREATE TABLE balances (ledger TEXT PRIMARY KEY, cents INTEGER NOT NULL, events INTEGER NOT NULL)")
        .await
        .unwrap();
    pool
}

async fn postgres_read_db() -> PgPool {
    let schema = fresh_schema();
    let create = format!("CREATE SCHEMA {schema}");
    let setup = PgPool::connect(&test_url())
        .await
        .expect("PostgreSQL must be reachable");
    sqlx::query(AssertSqlSafe(create))
        .execute(&setup)
        .await
        .unwrap();
    setup.close().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .after_connect(move |conn, _| {
            let path = format!("SET search_path TO {schema}");
            Box::pin(async move {
                sqlx::query(AssertSqlSafe(path))
                    .execute(&mut *conn)
                    .await
                    .map(drop)
            })
        })
        .connect(&test_url())
        .await
        .unwrap();
    pool.execute("CREATE TABLE balances (ledger text PRIMARY KEY, cents bigint NOT NULL, events bigint NOT NULL)")
        .await
        .unwrap();
    pool
}

fn quick() -> HandlerOptions {
    HandlerOptions::new()
        .on_error(ErrorPolicy::retry(3).backoff(Duration::from_millis(1), Duration::from_millis(5)))
}

async fn credit(app: &App, ledger: &str, cents: i64) -> u64 {
    app.dispatch(Credit {
        id: ledger.into(),
        cents,
    })
    .await
    .unwrap()
    .positions
    .unwrap()
    .1
}

async fn caught_up(app: &App, position: u64) {
    app.wait_for_handlers(position, &[], Duration::from_secs(10))
        .await
        .expect("the projection catches up");
}

/// Stored events, then live ones: the read model and the checkpoint in the
/// read database agree; a restarted projection goes on without counting
/// anything twice.
async fn projects_and_resumes<F: StoreFactory, R: ReadDb>(factory: &F, store: &F::Store, db: &R) {
    let writer = App::builder().store(store.clone()).build().unwrap();
    for cents in [100, 200] {
        credit(&writer, "a", cents).await;
    }
    credit(&writer, "b", 5).await;
    let app = db
        .register(
            App::builder().store(factory.open_again(store).await),
            Balances::default(),
            quick(),
        )
        .build()
        .unwrap();
    let last = credit(&app, "b", 7).await;
    caught_up(&app, last).await;
    assert_eq!(
        db.balances().await,
        [
            ("Ledger-a".to_owned(), 300, 2),
            ("Ledger-b".to_owned(), 12, 2)
        ]
    );
    assert_eq!(db.checkpoint().await, Some(last as i64));
    app.shutdown().await.unwrap();

    let again = db
        .register(
            App::builder().store(factory.open_again(store).await),
            Balances::default(),
            quick(),
        )
        .build()
        .unwrap();
    // Strongly consistent: the read model has it when the dispatch returns.
    again
        .dispatch_with(
            Credit {
                id: "a".into(),
                cents: 1,
            },
            annals::DispatchOptions::new().wait_for_handler("balances"),
        )
        .await
        .unwrap();
    assert_eq!(
        db.balances().await,
        [
            ("Ledger-a".to_owned(), 301, 3),
            ("Ledger-b".to_owned(), 12, 2)
        ]
    );
    again.shutdown().await.unwrap();
}

/// An event that fails rolls its batch back: the events before it commit
/// once in a batch of their own, it is retried alone, the rest follow;
/// nothing is counted twice.
async fn a_failing_event_never_doubles_its_batch<F: StoreFactory, R: ReadDb>(
    factory: &F,
    store: &F::Store,
    db: &R,
) {
    let writer = App::builder().store(store.clone()).build().unwrap();
    let mut last = 0;
    for cents in [1, 2, 3, 4, 5] {
        last = credit(&writer, "c", cents).await;
    }
    // Fails twice on 3, then succeeds: one batch of 5 becomes [1,2], [3], [4,5].
    let balances = Balances::failing_on(3, 2);
    let app = db
        .register(
            App::builder().store(factory.open_again(store).await),
            balances.clone(),
            quick(),
        )
        .build()
        .unwrap();
    caught_up(&app, last).await;
    assert_eq!(db.balances().await, [("Ledger-c".to_owned(), 15, 5)]);
    assert_eq!(balances.tries.load(Ordering::SeqCst), 3);
    let status = &app.handler_status().await[0];
    assert_eq!(status.handled, 5);
    assert!(
        status
            .last_error
            .as_ref()
            .unwrap()
            .message
            .contains("refusing 3")
    );
    app.shutdown().await.unwrap();
}

/// Stop: the read model holds exactly the events before the failing one,
/// and the checkpoint says so; skip: it moves past, writing nothing for it.
async fn stop_and_skip_leave_no_partial_writes<F: StoreFactory, R: ReadDb>(
    factory: &F,
    store: &F::Store,
    db: &R,
) {
    let writer = App::builder().store(store.clone()).build().unwrap();
    let two = {
        credit(&writer, "d", 10).await;
        credit(&writer, "d", 20).await
    };
    let bad = credit(&writer, "d", 30).await;
    let last = credit(&writer, "d", 40).await;

    let stopping = Balances::failing_on(30, u32::MAX);
    let app = db
        .register(
            App::builder().store(factory.open_again(store).await),
            stopping,
            quick().on_error(ErrorPolicy::stop()),
        )
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while app.handler_status().await[0].state != HandlerState::Stopped {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the projection stops");
    assert_eq!(db.balances().await, [("Ledger-d".to_owned(), 30, 2)]);
    assert_eq!(db.checkpoint().await, Some(two as i64));
    app.shutdown().await.unwrap();

    let skipping = Balances::failing_on(30, u32::MAX);
    let app = db
        .register(
            App::builder().store(factory.open_again(store).await),
            skipping,
            quick().on_error(ErrorPolicy::skip()),
        )
        .build()
        .unwrap();
    caught_up(&app, last).await;
    assert_eq!(db.balances().await, [("Ledger-d".to_owned(), 70, 3)]);
    let status = &app.handler_status().await[0];
    assert_eq!(
        (status.skipped, status.last_error.as_ref().unwrap().position),
        (1, bad),
        "{status:?}"
    );
    app.shutdown().await.unwrap();
}

/// A rebuild empties the read model and the checkpoint in one transaction,
/// then replays: the same read model as before.
async fn rebuilds_from_zero<F: StoreFactory, R: ReadDb>(factory: &F, store: &F::Store, db: &R) {
    let app = db
        .register(
            App::builder().store(factory.open_again(store).await),
            Balances::default(),
            quick(),
        )
        .build()
        .unwrap();
    for cents in [1, 2, 3] {
        credit(&app, "e", cents).await;
    }
    let last = credit(&app, "f", 4).await;
    caught_up(&app, last).await;
    let before = db.balances().await;
    // Damaged behind the projection's back: the rebuild mends it.
    db.damage().await;
    assert_ne!(db.balances().await, before);
    app.rebuild("balances").await.unwrap();
    caught_up(&app, last).await;
    assert_eq!(db.balances().await, before);
    assert!(matches!(
        app.rebuild("nope").await,
        Err(annals::handler::RebuildError::Unknown(_))
    ));
    app.shutdown().await.unwrap();
}

/// A checkpoint moved by someone else (another runner that took the turn
/// while this one still thought it had it) is never overwritten: the batch
/// is rolled back and the runner starts again from the moved checkpoint.
async fn a_moved_checkpoint_is_never_overwritten<F: StoreFactory, R: ReadDb>(
    factory: &F,
    store: &F::Store,
    db: &R,
) {
    let app = db
        .register(
            App::builder().store(factory.open_again(store).await),
            Balances::default(),
            quick(),
        )
        .build()
        .unwrap();
    let first = credit(&app, "g", 1).await;
    caught_up(&app, first).await;
    // "Another runner" claims the next event.
    db.bump_checkpoint().await;
    credit(&app, "g", 10).await;
    let last = credit(&app, "g", 100).await;
    caught_up(&app, last).await;
    assert_eq!(db.balances().await, [("Ledger-g".to_owned(), 101, 2)]);
    assert_eq!(db.checkpoint().await, Some(last as i64));
    let status = &app.handler_status().await[0];
    assert!(
        status
            .last_error
            .as_ref()
            .unwrap()
            .message
            .contains("lost its turn")
    );
    app.shutdown().await.unwrap();
}

mod sqlite {
    use super::*;
    use annals::sqlite::SqliteStore;

    struct Files(tempfile::TempDir);

    impl StoreFactory for Files {
        type Store = SqliteStore;
        async fn create(&self) -> SqliteStore {
            SqliteStore::open(self.0.path().join("events.db"))
                .await
                .unwrap()
        }
        async fn open_again(&self, store: &SqliteStore) -> SqliteStore {
            SqliteStore::open(store.filename()).await.unwrap()
        }
    }

    macro_rules! on_sqlite {
        ($($check:ident),*) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let files = Files(tempfile::tempdir().unwrap());
                let store = files.create().await;
                let db = sqlite_read_db(&files.0).await;
                super::$check(&files, &store, &db).await;
            }
        )*};
    }

    on_sqlite!(
        projects_and_resumes,
        a_failing_event_never_doubles_its_batch,
        stop_and_skip_leave_no_partial_writes,
        rebuilds_from_zero,
        a_moved_checkpoint_is_never_overwritten
    );
}

mod postgres {
    use super::*;

    macro_rules! on_postgres {
        ($($check:ident),*) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let factory = PostgresFactory;
                let store = factory.create().await;
                let db = postgres_read_db().await;
                super::$check(&factory, &store, &db).await;
            }
        )*};
    }

    on_postgres!(
        projects_and_resumes,
        a_failing_event_never_doubles_its_batch,
        stop_and_skip_leave_no_partial_writes,
        rebuilds_from_zero,
        a_moved_checkpoint_is_never_overwritten
    );
}
