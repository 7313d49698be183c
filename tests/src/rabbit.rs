//! RabbitMQ test support: the broker's URL (tests fail, never skip, when it
//! cannot be reached), unique names, and the `Tally` projection the
//! publisher and consumer tests and the `rabbit-node` child process share.
//!
//! `Tally` inserts one row per application, with no unique key on the
//! event, so an event applied twice shows as two rows; `seq` numbers the
//! applications in order, so the order a stream's events arrived in shows.

use crate::postgres::test_url;
use annals::handler::HandlerFuture;
use annals::prelude::*;
use annals::projection::Projection;
use annals::rabbitmq::lapin;
use annals::{AnyStore, ExpectedVersion, HandlerError, NewEvent, RecordedEvent, StreamId};
use sqlx::AssertSqlSafe;
use std::time::Duration;

/// The default test broker.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The test broker's URL: `ANNALS_TEST_RABBITMQ_URL`, or the default.
pub fn amqp_url() -> String {
    std::env::var("ANNALS_TEST_RABBITMQ_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned())
}

/// A connection to the broker; panics (the test fails) when it cannot be
/// reached.
pub async fn broker() -> lapin::Connection {
    let url = amqp_url();
    lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!("RabbitMQ must be reachable at {url} (set ANNALS_TEST_RABBITMQ_URL): {e}")
        })
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("annals-test.{prefix}.{}", uuid::Uuid::now_v7().simple())
}

/// Deletes a test's exchange and queues (best effort).
pub async fn cleanup(exchange: &str, queues: &[&str]) {
    let Ok(conn) = lapin::Connection::connect(&amqp_url(), Default::default()).await else {
        return;
    };
    let Ok(channel) = conn.create_channel().await else {
        return;
    };
    for queue in queues {
        for name in [queue.to_string(), format!("{queue}.dead-letter")] {
            let _ = channel
                .queue_delete(name.as_str().into(), Default::default())
                .await;
            let _ = channel
                .exchange_delete(name.as_str().into(), Default::default())
                .await;
        }
    }
    let _ = channel
        .exchange_delete(exchange.into(), Default::default())
        .await;
    let _ = conn.close(200, "done".into()).await;
}

/// The events the tests publish.
#[event]
pub enum TallyEvent {
    /// One count; `666` is a poison the projection always fails on.
    Counted {
        /// The number.
        n: i64,
    },
}

/// The number the projection refuses.
pub const POISON: i64 = 666;

/// Records each event it applies as one row of `tally`.
pub struct Tally;

/// Creates `tally` (SQLite and PostgreSQL alike).
pub const TALLY_TABLE: &str = "CREATE TABLE IF NOT EXISTS tally (\
    seq BIGINT NOT NULL, event_id TEXT NOT NULL, stream TEXT NOT NULL, \
    version BIGINT NOT NULL, position BIGINT NOT NULL, n BIGINT NOT NULL, \
    correlation TEXT)";

#[derive(Debug, thiserror::Error)]
#[error("the tally refuses {0}")]
struct Refused(i64);

macro_rules! tally_on {
    ($db:ty, $conn:ty) => {
        impl Projection<$db> for Tally {
            const NAME: &'static str = "tally";
            const INTEREST: &'static [&'static [annals::aggregate::EventType]] =
                &[<TallyEvent as Event>::TYPES];

            fn project<'a>(
                &'a self,
                tx: &'a mut $conn,
                event: &'a RecordedEvent,
            ) -> HandlerFuture<'a> {
                Box::pin(async move {
                    let TallyEvent::Counted { n } = HandlerError::decode::<TallyEvent>(event)?;
                    if n == POISON {
                        return Err(HandlerError::Failed(Refused(n).into()));
                    }
                    sqlx::query(
                        "INSERT INTO tally (seq, event_id, stream, version, position, n, correlation) \
                         SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4, $5, $6 FROM tally",
                    )
                    .bind(event.event_id.to_string())
                    .bind(event.stream_id.as_str())
                    .bind(event.stream_version as i64)
                    .bind(event.global_position as i64)
                    .bind(n)
                    .bind(event.metadata.correlation_id.map(|c| c.to_string()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| HandlerError::Failed(e.into()))?;
                    Ok(())
                })
            }
        }
    };
}

tally_on!(sqlx::Sqlite, sqlx::SqliteConnection);
tally_on!(sqlx::Postgres, sqlx::PgConnection);

/// One row of `tally`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Row {
    /// The order of application.
    pub seq: i64,
    /// The event's id.
    pub event_id: String,
    /// Its stream.
    pub stream: String,
    /// Its version in the stream.
    pub version: i64,
    /// Its global position.
    pub position: i64,
    /// Its number.
    pub n: i64,
    /// Its correlation id.
    pub correlation: Option<String>,
}

/// A database a test keeps a store or a read model in: a SQLite file, or a
/// PostgreSQL schema on the test server. As text (`sqlite:<path>`,
/// `postgres:<schema>`) for child processes.
#[derive(Debug, Clone)]
pub enum Db {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A schema of the test server.
    Postgres(String),
}

/// A pool on a [`Db`].
#[derive(Debug, Clone)]
pub enum Pool {
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}

impl Db {
    /// As text for a child process.
    pub fn encode(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite:{}", path.display()),
            Db::Postgres(schema) => format!("postgres:{schema}"),
        }
    }

    /// From [`encode`](Self::encode)'s text.
    pub fn decode(text: &str) -> Self {
        match text.split_once(':') {
            Some(("sqlite", path)) => Db::Sqlite(path.into()),
            Some(("postgres", schema)) => Db::Postgres(schema.into()),
            _ => panic!("not a database: {text}"),
        }
    }

    /// A pool on it, with `tally` created.
    pub async fn pool(&self) -> Pool {
        match self {
            Db::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10));
                let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
                sqlx::query(TALLY_TABLE).execute(&pool).await.unwrap();
                Pool::Sqlite(pool)
            }
            Db::Postgres(schema) => {
                let mut admin = crate::postgres::admin_connection().await;
                sqlx::query(AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
                )))
                .execute(&mut admin)
                .await
                .unwrap();
                let path = format!("SET search_path TO \"{schema}\"");
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
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
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL must be reachable at {}: {e}", test_url())
                    });
                sqlx::query(TALLY_TABLE).execute(&pool).await.unwrap();
                Pool::Postgres(pool)
            }
        }
    }

    /// An event store on it.
    pub async fn store(&self) -> AnyStore {
        match self {
            Db::Sqlite(path) => annals::sqlite::SqliteStore::open(path)
                .await
                .unwrap()
                .into(),
            Db::Postgres(schema) => annals::postgres::PostgresStore::builder(test_url())
                .schema(schema)
                .connect()
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {}: {e}", test_url()))
                .into(),
        }
    }
}

impl Pool {
    /// Every row of `tally`, in application order.
    pub async fn rows(&self) -> Vec<Row> {
        let sql = "SELECT seq, event_id, stream, version, position, n, correlation FROM tally ORDER BY seq";
        match self {
            Pool::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
            Pool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
        }
    }

    /// How many rows `tally` has.
    pub async fn count(&self) -> i64 {
        let sql = "SELECT COUNT(*) FROM tally";
        match self {
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        }
    }

    /// Runs `consumer` into `Tally` on this database.
    pub fn consume(
        &self,
        consumer: annals::rabbitmq::Consumer,
    ) -> annals::rabbitmq::ConsumerHandle {
        match self {
            Pool::Sqlite(p) => consumer.spawn_projection(p.clone(), Tally),
            Pool::Postgres(p) => consumer.spawn_projection(p.clone(), Tally),
        }
    }
}

/// Appends `counts` to `stream`, one event each, each with a correlation id.
pub async fn append(store: &AnyStore, stream: &str, counts: impl IntoIterator<Item = i64>) {
    let events: Vec<NewEvent> = counts
        .into_iter()
        .map(|n| {
            let e = TallyEvent::Counted { n };
            NewEvent::new(e.event_type(), e.event_version(), e.encode().unwrap()).with_metadata(
                annals::Metadata {
                    correlation_id: Some(uuid::Uuid::now_v7()),
                    ..Default::default()
                },
            )
        })
        .collect();
    store
        .append(&StreamId::new(stream), ExpectedVersion::Any, events)
        .await
        .unwrap();
}

/// Waits until `done` holds, checking every 20 ms; panics after `limit`
/// (a hung test, not a timed assertion).
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
