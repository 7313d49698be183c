//! A process killed (SIGKILL) in the middle of a projection's transaction,
//! after its events were stored: once restarted, the read model equals a
//! rebuild from zero. Nothing counted twice, nothing missed. On SQLite and
//! PostgreSQL, with real child processes (this test binary run again, as
//! the ignored `child` test selected by an environment variable).

use annals::handler::{HandlerFuture, HandlerOptions};
use annals::prelude::*;
use annals::projection::Projection;
use annals::{HandlerError, RecordedEvent};
use annals_tests::postgres::{fresh_schema, test_url};
use sqlx::AssertSqlSafe;
use std::time::Duration;

/// `sqlite:<path>` or `postgres:<schema>`: set only for the child.
const CHILD: &str = "ANNALS_PROJECTION_CRASH_CHILD";
/// The child's projection stalls forever at this global position.
const STALL_AT: u64 = 130;
const EVENTS: u64 = 200;

#[event]
pub enum LedgerEvent {
    Credited { cents: i64 },
}

#[command(aggregate = Ledger)]
pub struct Credit {
    #[id]
    pub id: u64,
    pub cents: i64,
}

#[aggregate(events = LedgerEvent)]
#[derive(Default)]
pub struct Ledger;

#[aggregate]
impl Ledger {
    #[handle]
    fn credit(&self, c: Credit) -> LedgerEvent {
        LedgerEvent::Credited { cents: c.cents }
    }
    #[apply]
    fn apply(&mut self, _: &LedgerEvent) {}
}

/// Sums per ledger by increments: an event applied twice would show.
pub struct Sums {
    stall_at: Option<u64>,
}

macro_rules! sums_on {
    ($db:ty, $conn:ty) => {
        impl Projection<$db> for Sums {
            const NAME: &'static str = "sums";
            const INTEREST: &'static [&'static [annals::aggregate::EventType]] =
                &[<LedgerEvent as Event>::TYPES];

            fn project<'a>(&'a self, tx: &'a mut $conn, event: &'a RecordedEvent) -> HandlerFuture<'a> {
                Box::pin(async move {
                    let LedgerEvent::Credited { cents } = HandlerError::decode::<LedgerEvent>(event)?;
                    sqlx::query(
                        "INSERT INTO sums (ledger, cents, events) VALUES ($1, $2, 1) \
                         ON CONFLICT (ledger) DO UPDATE SET cents = sums.cents + excluded.cents, \
                         events = sums.events + 1",
                    )
                    .bind(event.stream_id.as_str())
                    .bind(cents)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| HandlerError::Failed(e.into()))?;
                    if self.stall_at == Some(event.global_position) {
                        // The batch's writes so far are in the open transaction.
                        println!("STALLED");
                        std::future::pending::<()>().await;
                    }
                    Ok(())
                })
            }

            fn reset<'a>(
                &'a self,
                tx: &'a mut $conn,
            ) -> futures::future::BoxFuture<'a, Result<(), annals::BoxError>> {
                Box::pin(async move {
                    sqlx::query("DELETE FROM sums").execute(&mut *tx).await?;
                    Ok(())
                })
            }
        }
    };
}

sums_on!(sqlx::Sqlite, sqlx::SqliteConnection);
sums_on!(sqlx::Postgres, sqlx::PgConnection);

const TABLE: &str = "CREATE TABLE IF NOT EXISTS sums (ledger TEXT PRIMARY KEY, cents BIGINT NOT NULL, events BIGINT NOT NULL)";

/// Where one test keeps everything.
#[derive(Clone)]
enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Db {
    fn encode(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite:{}", path.display()),
            Db::Postgres(schema) => format!("postgres:{schema}"),
        }
    }

    fn decode(text: &str) -> Self {
        match text.split_once(':') {
            Some(("sqlite", path)) => Db::Sqlite(path.into()),
            Some(("postgres", schema)) => Db::Postgres(schema.into()),
            _ => panic!("bad {CHILD}: {text}"),
        }
    }

    /// An app on the store, with the projection if `stall` is given.
    async fn app(&self, projection: Option<Sums>) -> App {
        let options = HandlerOptions::new().batch_size(50);
        match self {
            Db::Sqlite(path) => {
                let store = annals::sqlite::SqliteStore::open(path).await.unwrap();
                let builder = App::builder().store(store);
                let builder = match projection {
                    Some(p) => builder.projection_with(self.sqlite_pool().await, p, options),
                    None => builder,
                };
                builder.build().unwrap()
            }
            Db::Postgres(schema) => {
                let store = annals::postgres::PostgresStore::builder(test_url())
                    .schema(schema)
                    .connect()
                    .await
                    .expect("PostgreSQL must be reachable");
                let builder = App::builder().store(store);
                let builder = match projection {
                    Some(p) => builder.projection_with(self.postgres_pool().await, p, options),
                    None => builder,
                };
                builder.build().unwrap()
            }
        }
    }

    async fn sqlite_pool(&self) -> sqlx::SqlitePool {
        let Db::Sqlite(path) = self else {
            unreachable!()
        };
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::query(TABLE).execute(&pool).await.unwrap();
        pool
    }

    async fn postgres_pool(&self) -> sqlx::PgPool {
        let Db::Postgres(schema) = self else {
            unreachable!()
        };
        let path = format!("SET search_path TO \"{schema}\"");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(3)
            .after_connect(move |conn, _| {
                let sql = path.clone();
                Box::pin(async move {
                    sqlx::query(AssertSqlSafe(sql))
                        .execute(&mut *conn)
                        .await
                        .map(drop)
                })
            })
            .connect(&test_url())
            .await
            .unwrap();
        sqlx::query(TABLE).execute(&pool).await.unwrap();
        pool
    }

    async fn sums(&self) -> Vec<(String, i64, i64)> {
        let sql = "SELECT ledger, cents, events FROM sums ORDER BY ledger";
        match self {
            Db::Sqlite(_) => sqlx::query_as(sql)
                .fetch_all(&self.sqlite_pool().await)
                .await
                .unwrap(),
            Db::Postgres(_) => sqlx::query_as(sql)
                .fetch_all(&self.postgres_pool().await)
                .await
                .unwrap(),
        }
    }
}

/// The child: runs the stalling projection until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the crash tests"]
async fn child() {
    let db = Db::decode(&std::env::var(CHILD).expect("only run as a child"));
    let _app = db
        .app(Some(Sums {
            stall_at: Some(STALL_AT),
        }))
        .await;
    std::future::pending::<()>().await;
}

async fn killed_mid_batch_then_restarted(db: Db) {
    let writer = db.app(None).await;
    let mut expected = std::collections::BTreeMap::new();
    for n in 1..=EVENTS {
        let ledger = n % 7;
        let cents = n as i64;
        writer.dispatch(Credit { id: ledger, cents }).await.unwrap();
        let e = expected
            .entry(format!("Ledger-{ledger}"))
            .or_insert((0i64, 0i64));
        e.0 += cents;
        e.1 += 1;
    }
    writer.shutdown().await.unwrap();

    let mut child = annals_tests::child_at(CHILD, &db.encode(), "STALLED");
    // Killed with its batch's writes in an open transaction.
    child.kill().unwrap();
    child.wait().unwrap();
    let before: Vec<_> = db.sums().await;
    let counted: i64 = before.iter().map(|r| r.2).sum();
    assert!(
        counted < STALL_AT as i64,
        "only committed batches count: {counted}"
    );

    let app = db.app(Some(Sums { stall_at: None })).await;
    app.wait_until_settled(Duration::from_secs(30))
        .await
        .unwrap();
    let after = db.sums().await;
    let want: Vec<(String, i64, i64)> = expected.into_iter().map(|(k, (c, e))| (k, c, e)).collect();
    assert_eq!(after, want, "every event counted once after the restart");
    app.rebuild("sums").await.unwrap();
    app.wait_until_settled(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(db.sums().await, after, "equal to a rebuild from zero");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_mid_batch() {
    let dir = tempfile::tempdir().unwrap();
    killed_mid_batch_then_restarted(Db::Sqlite(dir.path().join("ledger.db"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_batch() {
    let schema = fresh_schema();
    killed_mid_batch_then_restarted(Db::Postgres(schema.clone())).await;
    let mut admin = annals_tests::postgres::admin_connection().await;
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
}
