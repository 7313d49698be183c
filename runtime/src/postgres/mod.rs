//! The PostgreSQL event store (feature `postgres`).
//!
//! # Schema
//! Everything lives in one schema (default `annals`, see
//! [`PostgresStoreBuilder::schema`]), created and migrated on connect by the
//! embedded, versioned migrations in `runtime/migrations/postgres/`:
//! `events`, `streams`, `snapshots`, `checkpoints`, the function
//! `append_events` and sqlx's `_sqlx_migrations` bookkeeping table. Every
//! connection of the store's pool has its `search_path` set to that schema.
//!
//! # Guarantees and how they are kept
//! - **One round trip per append.** The SQL function `append_events` locks
//!   the stream's row in `streams` and checks the expected version, draws the
//!   global positions from a sequence, then writes the stream row and the
//!   events. Appends to different streams never wait for each other.
//! - **Gap-safe global order without a global lock.** Positions are drawn
//!   concurrently, so a transaction can commit after another that drew a
//!   higher position. Each event records a read horizon: a transaction id
//!   drawn (by a subtransaction) after its positions, so above every
//!   transaction that could hold a lower position. Readers of the global log
//!   return events in position order and stop at the first one whose horizon
//!   is above the oldest running transaction
//!   (`pg_snapshot_xmin(pg_current_snapshot())`). A reader therefore never
//!   skips an event that commits late. A transaction left open for a long
//!   time anywhere on the server holds global readers back until it ends.
//!   So `read_all` may not yet return an event whose `append` just returned
//!   while other transactions run; it does within moments. Positions drawn by
//!   an append that then fails are skipped, leaving gaps in the numbering.
//! - **Immutability.** A trigger rejects `UPDATE`, `DELETE` and `TRUNCATE` of
//!   `events`. An administrator who must rewrite history (erasure, repair)
//!   runs `SET LOCAL annals.admin = 'on'` first in the same transaction.
//! - **Idempotency.** Re-appending an event id already recorded fails with
//!   [`StoreError::DuplicateEventId`] and writes nothing.
//! - **Payloads are stored as `jsonb`**: their meaning is kept, but key order
//!   and whitespace come back normalised (compare with
//!   [`Payload::to_value`](crate::Payload::to_value), not by text).
//!
//! # Errors
//! A refused or lost connection gives [`StoreError::Unavailable`]; the pool
//! reconnects on the next operation. A stored row that cannot be decoded gives
//! [`StoreError::Corrupt`] naming its stream and version. Appends are never
//! retried behind the caller's back: a commit whose outcome is unknown is
//! reported, not repeated.

use crate::store::DEFAULT_READ_BATCH;
use crate::{
    AppendResult, EventStore, ExpectedVersion, Metadata, NewEvent, Payload, RecordedEvent,
    Snapshot, StoreError, StreamId,
};
use futures::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The default schema of a [`PostgresStore`].
pub const DEFAULT_SCHEMA: &str = "annals";

/// Configures and connects a [`PostgresStore`]; made by [`PostgresStore::builder`].
#[derive(Debug, Clone)]
pub struct PostgresStoreBuilder {
    url: String,
    schema: String,
    max_connections: u32,
    acquire_timeout: Duration,
    poll_interval: Duration,
    notifications: bool,
    migrate: bool,
}

impl PostgresStoreBuilder {
    /// The schema holding the store's tables (default `annals`). It must match
    /// `^[a-z_][a-z0-9_]{0,62}$`; it is created if missing.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most connections the store's pool opens (default 16).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long an operation waits for a connection before failing with
    /// [`StoreError::Unavailable`] (default 10 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How often `subscribe_all` polls when it has not been woken (default 1 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Whether appends are announced with `NOTIFY` so subscribers in other
    /// processes wake at once (default `true`; without it they poll).
    /// Subscribers in the same process are always woken directly.
    pub fn notifications(mut self, on: bool) -> Self {
        self.notifications = on;
        self
    }

    /// Whether [`connect`](Self::connect) applies pending migrations (default
    /// `true`). When off, run [`PostgresStore::migrate`] yourself.
    pub fn migrate_on_connect(mut self, on: bool) -> Self {
        self.migrate = on;
        self
    }

    /// Connects, and migrates the schema unless told not to.
    ///
    /// Fails with [`StoreError::Config`] for a bad URL or schema name and with
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        validate_schema(&self.schema)?;
        let quoted = format!("\"{}\"", self.schema);
        let options = PgConnectOptions::from_str(&self.url)
            .map_err(|e| StoreError::Config(format!("bad PostgreSQL URL: {e}")))?
            .application_name(&format!("annals:{}", self.schema))
            .options([
                ("search_path", quoted.as_str()),
                // The read horizon relies on read-committed statement snapshots.
                ("default_transaction_isolation", "read committed"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(options.clone())
            .await
            .map_err(map_err)?;
        let channel: String = format!("annals:{}", self.schema).chars().take(63).collect();
        let notify = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        if self.notifications {
            let notifier_options = options.options([("synchronous_commit", "off")]);
            tasks.push(tokio::spawn(run_notifier(
                notifier_options,
                channel.clone(),
                notify.clone(),
            )));
        }
        let store = PostgresStore {
            shared: Arc::new(Shared {
                pool,
                schema: self.schema,
                channel,
                wake: watch::channel(0).0,
                notify: self.notifications.then_some(notify),
                poll_interval: self.poll_interval,
                listener: parking_lot::Mutex::new(None),
                tasks: parking_lot::Mutex::new(tasks),
            }),
        };
        if self.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }
}

/// An [`EventStore`] in PostgreSQL (15 or newer); clones share one connection pool.
///
/// See the [module docs](self) for the schema and how the guarantees are kept.
///
/// ```no_run
/// # async fn run() -> Result<(), annals::StoreError> {
/// use annals::postgres::PostgresStore;
/// use annals::{EventStore, ExpectedVersion, NewEvent, Payload, StreamId};
///
/// let store = PostgresStore::builder("postgres://postgres@127.0.0.1:5432/app")
///     .schema("bank")
///     .connect()
///     .await?;
/// let event = NewEvent::new("AccountOpened", 1, Payload::from_json(r#"{"owner":"ada"}"#).unwrap());
/// let stream = StreamId::new("Account-1");
/// store.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
/// assert_eq!(store.stream_version(&stream).await?, Some(1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: PgPool,
    schema: String,
    channel: String,
    /// Bumped after every local append and every `NOTIFY` received.
    wake: watch::Sender<u64>,
    /// Asks the notifier task to send a `NOTIFY`; `None` when notifications are off.
    notify: Option<Arc<Notify>>,
    poll_interval: Duration,
    listener: parking_lot::Mutex<Option<JoinHandle<()>>>,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
        if let Some(task) = self.listener.get_mut().take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.shared.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Starts configuring a store for the database at `url`
    /// (`postgres://user:password@host:port/database`).
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            notifications: true,
            migrate: true,
        }
    }

    /// Connects to `url` with the default configuration (schema `annals`) and migrates.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Applies pending migrations to the store's schema, creating it if missing.
    /// Safe to run concurrently from several processes (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator =
            sqlx::migrate::Migrator::with_migrations(MIGRATIONS.iter().cloned().collect());
        // Validated by `validate_schema`, so quoting it cannot break out.
        migrator.create_schema(format!("\"{}\"", self.shared.schema));
        migrator.run(&self.shared.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => map_err(e),
            other => StoreError::Backend(Box::new(other)),
        })
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The connection pool; its connections have `search_path` set to [`schema`](Self::schema).
    /// Useful to keep read models in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.shared.pool.close().await;
    }

    async fn append_now(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyAppend {
                stream: stream.clone(),
            });
        }
        for (i, e) in events.iter().enumerate() {
            if events[..i].iter().any(|o| o.event_id == e.event_id) {
                return Err(StoreError::DuplicateEventId {
                    stream: stream.clone(),
                    event_id: e.event_id,
                });
            }
        }
        let (kind, n): (i16, i64) = match expected {
            ExpectedVersion::Any => (0, 0),
            ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => (1, 0),
            ExpectedVersion::StreamExists => (2, 0),
            // No stream reaches i64::MAX, so a larger expectation simply fails.
            ExpectedVersion::Exact(n) => (3, i64::try_from(n).unwrap_or(i64::MAX)),
        };
        let count = events.len();
        let mut ids = Vec::with_capacity(count);
        let mut types = Vec::with_capacity(count);
        let mut versions = Vec::with_capacity(count);
        let mut payloads = Vec::with_capacity(count);
        let mut correlation = Vec::with_capacity(count);
        let mut causation = Vec::with_capacity(count);
        let mut metadata = Vec::with_capacity(count);
        for e in &events {
            ids.push(e.event_id);
            types.push(e.event_type.as_ref());
            versions.push(i32::try_from(e.event_version).map_err(|_| {
                StoreError::Config(format!(
                    "event version {} of `{}` does not fit PostgreSQL's integer",
                    e.event_version, e.event_type
                ))
            })?);
            payloads.push(e.payload.as_str());
            correlation.push(e.metadata.correlation_id);
            causation.push(e.metadata.causation_id);
            metadata.push(if e.metadata.custom.is_empty() {
                None
            } else {
                Some(
                    serde_json::to_string(&e.metadata.custom)
                        .map_err(|e| StoreError::Backend(Box::new(e)))?,
                )
            });
        }
        // `out_ok` is NULL when another writer created the stream between our
        // look and our write; that append wrote nothing, so `Any` may retry.
        let mut attempts = 0;
        let (ok, version, row) = loop {
            let row = sqlx::query(
                "SELECT out_ok, out_version, out_first, out_last \
                 FROM append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(stream.as_str())
            .bind(kind)
            .bind(n)
            .bind(&ids)
            .bind(&types)
            .bind(&versions)
            .bind(&payloads)
            .bind(&correlation)
            .bind(&causation)
            .bind(&metadata)
            .fetch_one(&self.shared.pool)
            .await;
            let row = match row {
                Ok(row) => row,
                Err(e) => return Err(self.append_error(stream, expected, &ids, e).await),
            };
            let decode = |e: sqlx::Error| StoreError::Backend(Box::new(e));
            let ok: Option<bool> = row.try_get("out_ok").map_err(decode)?;
            let version: Option<i64> = row.try_get("out_version").map_err(decode)?;
            attempts += 1;
            if ok.is_none() && expected == ExpectedVersion::Any && attempts < 3 {
                continue;
            }
            break (ok.unwrap_or(false), version, row);
        };
        let decode = |e: sqlx::Error| StoreError::Backend(Box::new(e));
        if !ok {
            let actual = version.map(|v| v as u64);
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        let first: Option<i64> = row.try_get("out_first").map_err(decode)?;
        let last: Option<i64> = row.try_get("out_last").map_err(decode)?;
        self.shared.wake.send_modify(|w| *w = w.wrapping_add(1));
        if let Some(notify) = &self.shared.notify {
            notify.notify_one();
        }
        Ok(AppendResult {
            stream_version: version.unwrap_or_default() as u64,
            first_position: first.unwrap_or_default() as u64,
            last_position: last.unwrap_or_default() as u64,
        })
    }

    /// Turns a failed append into the error the trait promises.
    async fn append_error(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        ids: &[Uuid],
        error: sqlx::Error,
    ) -> StoreError {
        let Some(db) = error.as_database_error() else {
            return map_err(error);
        };
        if db.code().as_deref() != Some("23505") {
            return map_err(error);
        }
        match db.constraint() {
            Some("events_event_id_key") => {
                let from_detail = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .and_then(|pg| pg.detail())
                    .and_then(|d| d.split_once("=("))
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .and_then(|(id, _)| Uuid::parse_str(id).ok());
                let event_id = from_detail
                    .or_else(|| ids.first().copied())
                    .unwrap_or_default();
                StoreError::DuplicateEventId {
                    stream: stream.clone(),
                    event_id,
                }
            }
            // The streams row and the events disagree only if someone wrote
            // events around the store; report the version we now see.
            Some("events_stream_version_key") | Some("streams_pkey") => {
                match self.stream_version_now(stream).await {
                    Ok(actual) => StoreError::WrongExpectedVersion {
                        stream: stream.clone(),
                        expected,
                        actual,
                    },
                    Err(e) => e,
                }
            }
            _ => map_err(error),
        }
    }

    async fn stream_version_now(&self, stream: &StreamId) -> Result<Option<u64>, StoreError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = $1")
                .bind(stream.as_str())
                .fetch_optional(&self.shared.pool)
                .await
                .map_err(map_err)?;
        Ok(version.map(|v| v as u64))
    }

    async fn read_stream_now(
        &self,
        stream: &StreamId,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max_count == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT position, stream_id, stream_version, event_id, event_type, event_version, \
             payload::text AS payload, correlation_id, causation_id, metadata::text AS metadata, \
             recorded_at FROM events WHERE stream_id = $1 AND stream_version >= $2 \
             ORDER BY stream_version LIMIT $3",
        )
        .bind(stream.as_str())
        .bind(clamp_i64(from_version))
        .bind(clamp_i64(max_count as u64))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(decode_event).collect()
    }

    /// Reads settled events of the global log; `true` when it stopped at an
    /// event that is visible but not yet settled (a reader should retry soon).
    async fn read_all_now(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<(Vec<RecordedEvent>, bool), StoreError> {
        if max_count == 0 {
            return Ok((Vec::new(), false));
        }
        let rows = sqlx::query(
            "SELECT position, stream_id, stream_version, event_id, event_type, event_version, \
             payload::text AS payload, correlation_id, causation_id, metadata::text AS metadata, \
             recorded_at, horizon <= pg_snapshot_xmin(pg_current_snapshot()) AS settled \
             FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
        )
        .bind(clamp_i64(from_position))
        .bind(clamp_i64(max_count as u64))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let settled: bool = row.try_get("settled").unwrap_or(false);
            if !settled {
                return Ok((out, true));
            }
            out.push(decode_event(row)?);
        }
        Ok((out, false))
    }

    fn ensure_listener(&self) {
        let Some(_) = &self.shared.notify else { return };
        let mut slot = self.shared.listener.lock();
        if slot.is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.shared.pool.clone();
        let channel = self.shared.channel.clone();
        let wake = Arc::downgrade(&self.shared);
        *slot = Some(runtime.spawn(run_listener(pool, channel, wake)));
    }
}

/// Sends one `NOTIFY` per burst of appends, on its own connection with
/// `synchronous_commit = off`: NOTIFY inside the append would take PostgreSQL's
/// database-wide notify lock at every commit and serialise all writers.
async fn run_notifier(options: PgConnectOptions, channel: String, notify: Arc<Notify>) {
    let mut conn = None;
    loop {
        notify.notified().await;
        if conn.is_none() {
            conn = sqlx::postgres::PgConnection::connect_with(&options)
                .await
                .ok();
        }
        let Some(c) = conn.as_mut() else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if sqlx::query("SELECT pg_notify($1, '')")
            .bind(&channel)
            .execute(&mut *c)
            .await
            .is_err()
        {
            conn = None;
        }
        // Coalesce: at most one NOTIFY per few milliseconds, however busy.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run_listener(pool: PgPool, channel: String, shared: std::sync::Weak<Shared>) {
    loop {
        if let Ok(mut listener) = PgListener::connect_with(&pool).await
            && listener.listen(&channel).await.is_ok()
        {
            // Notifications may have been missed while (re)connecting.
            let Some(s) = shared.upgrade() else { return };
            s.wake.send_modify(|w| *w = w.wrapping_add(1));
            drop(s);
            while let Ok(Some(_)) = listener.try_recv().await {
                let Some(s) = shared.upgrade() else { return };
                s.wake.send_modify(|w| *w = w.wrapping_add(1));
            }
        }
        if shared.strong_count() == 0 {
            return;
        }
        // Subscribers keep polling meanwhile.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn validate_schema(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 && !schema.starts_with("pg_") {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "schema `{schema}` must match ^[a-z_][a-z0-9_]{{0,62}}$ and not start with `pg_`"
        )))
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Classifies a sqlx error: lost or refused connections are `Unavailable`.
fn map_err(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(error)),
        sqlx::Error::Configuration(_) => StoreError::Config(error.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // 08: connection exception; 57P01-57P05: shutdown, terminated,
            // cannot connect now; 53300: too many connections.
            if code.starts_with("08") || code.starts_with("57P") || code == "53300" {
                StoreError::Unavailable(Box::new(error))
            } else {
                StoreError::Backend(Box::new(error))
            }
        }
        _ => StoreError::Backend(Box::new(error)),
    }
}

fn decode_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let stream_id: String = row.try_get("stream_id").map_err(|e| StoreError::Corrupt {
        stream: StreamId::new("<unreadable>"),
        version: 0,
        reason: e.to_string(),
    })?;
    let stream = StreamId::new(stream_id);
    let raw_version: i64 = row
        .try_get("stream_version")
        .map_err(|e| StoreError::Corrupt {
            stream: stream.clone(),
            version: 0,
            reason: e.to_string(),
        })?;
    let version = u64::try_from(raw_version).unwrap_or(0);
    let corrupt = |reason: String| StoreError::Corrupt {
        stream: stream.clone(),
        version,
        reason,
    };
    if raw_version <= 0 {
        return Err(corrupt(format!(
            "stream version {raw_version} is not positive"
        )));
    }
    let get_err = |e: sqlx::Error| corrupt(e.to_string());
    let position: i64 = row.try_get("position").map_err(get_err)?;
    let event_type: String = row.try_get("event_type").map_err(get_err)?;
    let with_type = |reason: String| corrupt(format!("{reason} (event type `{event_type}`)"));
    let event_version: i32 = row
        .try_get("event_version")
        .map_err(|e| with_type(e.to_string()))?;
    let event_version = u32::try_from(event_version)
        .map_err(|_| with_type(format!("event version {event_version} is negative")))?;
    let payload: String = row
        .try_get("payload")
        .map_err(|e| with_type(e.to_string()))?;
    let payload = Payload::from_json(payload).map_err(|e| with_type(format!("payload: {e}")))?;
    let custom: String = row
        .try_get("metadata")
        .map_err(|e| with_type(e.to_string()))?;
    let custom: BTreeMap<String, serde_json::Value> = serde_json::from_str(&custom)
        .map_err(|e| with_type(format!("metadata is not a JSON object: {e}")))?;
    Ok(RecordedEvent {
        event_id: row
            .try_get("event_id")
            .map_err(|e| with_type(e.to_string()))?,
        stream_id: stream.clone(),
        stream_version: version,
        global_position: u64::try_from(position)
            .map_err(|_| with_type(format!("global position {position} is negative")))?,
        event_version,
        payload,
        metadata: Metadata {
            correlation_id: row
                .try_get("correlation_id")
                .map_err(|e| with_type(e.to_string()))?,
            causation_id: row
                .try_get("causation_id")
                .map_err(|e| with_type(e.to_string()))?,
            custom,
        },
        recorded_at: row
            .try_get("recorded_at")
            .map_err(|e| with_type(e.to_string()))?,
        event_type: Cow::Owned(event_type),
    })
}

impl EventStore for PostgresStore {
    fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send {
        self.append_now(stream, expected, events)
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        self.read_stream_now(stream, from_version, max_count)
    }

    fn stream_version(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        self.stream_version_now(stream)
    }

    async fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all_now(from_position, max_count)
            .await
            .map(|(events, _)| events)
    }

    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.ensure_listener();
        let state = Follow {
            store: self.clone(),
            wake: self.shared.wake.subscribe(),
            next: from_position.max(1),
            buffer: VecDeque::new(),
            backoff: MIN_BACKOFF,
            failed: false,
        };
        Box::pin(futures::stream::unfold(state, Follow::next))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let version = i32::try_from(snapshot.snapshot_version).map_err(|_| {
            StoreError::Config(format!(
                "snapshot version {} does not fit PostgreSQL's integer",
                snapshot.snapshot_version
            ))
        })?;
        sqlx::query(
            "INSERT INTO snapshots (stream_id, stream_version, snapshot_version, state, taken_at) \
                 VALUES ($1, $2, $3, $4::jsonb, $5) \
                 ON CONFLICT (stream_id) DO UPDATE SET stream_version = EXCLUDED.stream_version, \
                 snapshot_version = EXCLUDED.snapshot_version, state = EXCLUDED.state, \
                 taken_at = EXCLUDED.taken_at",
        )
        .bind(snapshot.stream_id.as_str())
        .bind(clamp_i64(snapshot.stream_version))
        .bind(version)
        .bind(snapshot.state.as_str())
        .bind(snapshot.taken_at)
        .execute(&self.shared.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT stream_version, snapshot_version, state::text AS state, taken_at \
                 FROM snapshots WHERE stream_id = $1",
        )
        .bind(stream.as_str())
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let raw_version: i64 = row.try_get("stream_version").unwrap_or(-1);
        let corrupt = |reason: String| StoreError::Corrupt {
            stream: stream.clone(),
            version: u64::try_from(raw_version).unwrap_or(0),
            reason: format!("snapshot: {reason}"),
        };
        let stream_version = u64::try_from(raw_version)
            .map_err(|_| corrupt(format!("stream version {raw_version}")))?;
        let snapshot_version: i32 = row
            .try_get("snapshot_version")
            .map_err(|e| corrupt(e.to_string()))?;
        let state: String = row.try_get("state").map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(Snapshot {
            stream_id: stream.clone(),
            stream_version,
            snapshot_version: u32::try_from(snapshot_version)
                .map_err(|_| corrupt(format!("snapshot version {snapshot_version}")))?,
            state: Payload::from_json(state).map_err(|e| corrupt(e.to_string()))?,
            taken_at: row
                .try_get("taken_at")
                .map_err(|e| corrupt(e.to_string()))?,
        }))
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(5);

/// The state of one `subscribe_all` follower.
struct Follow {
    store: PostgresStore,
    wake: watch::Receiver<u64>,
    next: u64,
    buffer: VecDeque<RecordedEvent>,
    backoff: Duration,
    failed: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<RecordedEvent, StoreError>, Self)> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some((Ok(event), self));
            }
            self.wake.borrow_and_update();
            match self.store.read_all_now(self.next, DEFAULT_READ_BATCH).await {
                Err(e) => {
                    self.failed = true;
                    return Some((Err(e), self));
                }
                Ok((events, blocked)) => {
                    if let Some(last) = events.last() {
                        self.next = last.global_position + 1;
                        self.buffer.extend(events);
                        self.backoff = MIN_BACKOFF;
                    } else if blocked {
                        // A lower position may still commit: look again soon.
                        tokio::time::sleep(self.backoff).await;
                        self.backoff = (self.backoff * 2).min(self.store.shared.poll_interval);
                    } else {
                        let poll = self.store.shared.poll_interval;
                        let _ = tokio::time::timeout(poll, self.wake.changed()).await;
                    }
                }
            }
        }
    }
}
