//! The PostgreSQL event store (feature `postgres`).
//!
//! # Schema
//! Everything lives in one schema (default `annals`, see
//! [`PostgresStoreBuilder::schema`]), created and migrated on connect by the
//! embedded, versioned migrations in `runtime/migrations/postgres/`:
//! `events`, `streams` (one row per stream, written with its first event),
//! `snapshots`, `checkpoints` and sqlx's `_sqlx_migrations` bookkeeping
//! table. Every connection of the store's pool has its `search_path` set to
//! that schema.
//!
//! # Guarantees and how they are kept
//! - **One statement per append, no lock.** An append is one autocommitted
//!   `INSERT ... SELECT`: it checks the expected version against the stream's
//!   newest event, draws global positions from a sequence and inserts. The
//!   unique `(stream_id, stream_version)` index turns a concurrent write to
//!   the same stream into a conflict, so appends never lock or update a shared
//!   row, and appends to different streams never wait for each other.
//!   [`append_after_seen`](EventStore::append_after_seen) (the `App`'s warm
//!   path) skips reading the stream's head: the index alone refuses a stream
//!   that moved on.
//! - **Coalesced commits.** Up to
//!   [`max_concurrent_appends`](PostgresStoreBuilder::max_concurrent_appends)
//!   appends run at once; appends arriving while all of those are busy are
//!   written together, several streams in one statement and one commit, each
//!   append still checked and failing on its own. Callers answered by one
//!   statement who append again straight away are written together in the
//!   next (group commit). An append returns only after its commit.
//! - **An ordered global log that no reader skips through.** Every event
//!   has a global position; `read_all` and `subscribe_all` return events in
//!   position order, and a reader never skips an event that commits late: it
//!   waits for it instead of passing it by. Positions increase but have
//!   holes: positions drawn by an append that then fails (a conflict, a
//!   duplicate id, a lost connection) are never used.
//! - **How, without a global lock.** Positions are drawn concurrently, so a
//!   transaction can commit after another that drew a higher position. A
//!   writer takes its transaction id before it draws positions. A reader of
//!   the global log first reads the highest position drawn so far, then
//!   takes a transaction id of its own (a *fence*); once no transaction older
//!   than the fence is running (`pg_snapshot_xmin(pg_current_snapshot())`),
//!   every position up to what it read has committed or never will, and the
//!   reader returns events up to there. Each global read thus uses one
//!   transaction id of its own (committed without waiting for the disk), and
//!   a store remembers fences that have not settled yet, so the next read can
//!   return what they cover. A transaction left open for a long time anywhere
//!   on the server holds global readers back until it ends. So `read_all` may
//!   not yet return an event whose `append` just returned while other
//!   transactions run; it does within moments.
//! - **Lock holders go first.** While a caller holds a stream's lock
//!   ([`lock_stream`](EventStore::lock_stream)),
//!   [`append_after_seen`](EventStore::append_after_seen) by a caller without
//!   it writes nothing and fails with [`StoreError::StreamLocked`]: in this
//!   process by the in-process locks, from other processes by the append
//!   statement itself, which takes the stream's advisory lock shared for its
//!   transaction (`pg_try_advisory_xact_lock_shared`) and so fails while
//!   another session holds it. A plain `append` never yields.
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
//! Every error's `Display` says what happened, once; what caused it is its
//! [`source`](std::error::Error::source) (the server's message, the I/O
//! error). A refused or lost connection gives [`StoreError::Unavailable`]; the
//! pool and the writer reconnect on the next operation (a connection of
//! either idle for more than a millisecond is pinged before use, so one the
//! server dropped meanwhile is replaced rather than failing an operation). When no new
//! connection can be opened, the cause is a [`ConnectError`] naming the
//! server's address (never the password), itself caused by, say, the refused
//! TCP connection; [`connect`](PostgresStoreBuilder::connect) reports this at
//! once rather than retrying until it times out. A stored row that cannot be
//! decoded gives [`StoreError::Corrupt`] naming its stream, version and global
//! position and what is wrong with it (a column that is NULL, JSON that does
//! not parse). After [`close`](PostgresStore::close), every operation fails
//! with [`StoreError::Closed`] naming the schema. Appends are never retried
//! behind the caller's back: a commit whose outcome is unknown is reported,
//! not repeated.

mod error;
mod lock;
mod session;
mod writer;

pub use error::ConnectError;
use error::map_err;

use crate::store::DEFAULT_READ_BATCH;
use crate::store::StreamRange;
use crate::store::{
    page_of, stored_position, validate_checkpoint, validate_checkpoint_name, window_end,
};
use crate::{
    AppendResult, EventFilter, EventStore, ExpectedVersion, FilteredPage, LogWatch, Metadata,
    Migration, MigrationReport, NewEvent, Payload, RecordedEvent, Snapshot, StoreError,
    StoreFuture, StreamHint, StreamId, StreamInfo, StreamLock,
};
use futures::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The most connections a store keeps for stream locks.
const MAX_LOCK_CONNECTIONS: u32 = 64;

/// A pooled connection idle for longer than this is pinged before use.
const PING_IF_IDLE_FOR: Duration = Duration::from_millis(1);

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
    max_concurrent_appends: usize,
    lock_timeout: Duration,
}

impl PostgresStoreBuilder {
    /// The schema holding the store's tables (default `annals`). It must match
    /// `^[a-z_][a-z0-9_]{0,62}$`; it is created if missing.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most connections the store's pool opens (default 16). The pool
    /// serves reads, snapshots and [`pool`](PostgresStore::pool) users;
    /// appends run on up to
    /// [`max_concurrent_appends`](Self::max_concurrent_appends) connections
    /// of their own, notifications on two more (`NOTIFY`, `LISTEN`), and
    /// every handler's turn and the watch of the log's head on one more, the
    /// store's session, however many handlers run.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long an operation waits for a connection before failing with
    /// [`StoreError::Unavailable`] (default 10 s), and how long opening one
    /// may take. When the pool has no connection to give in that time, the
    /// store opens one of its own to tell why: the server cannot be reached
    /// (a [`ConnectError`]), or all the pool's connections were in use.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long [`lock_stream`](EventStore::lock_stream) waits for another
    /// holder of the stream before failing (default 10 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How often the store looks for appends it was not told of (default
    /// 1 s): its session reads the head of the log this often (at most every
    /// second) while anyone watches it, and wakes every watcher (handlers,
    /// `subscribe_all`) when it moved.
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

    /// How many append statements may run at once (default 2), each on a
    /// connection of the store's writer, opened in addition to the pool's.
    /// Appends that arrive while all are busy wait and are then written
    /// together, several streams in one statement and one commit: fewer,
    /// larger commits carry more appends per second than one commit each
    /// (see docs/BENCHMARKS.md for the measurements behind the default).
    /// Every caller still hears back only after its events are committed.
    pub fn max_concurrent_appends(mut self, max: usize) -> Self {
        self.max_concurrent_appends = max.max(1);
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
    /// [`StoreError::Unavailable`] caused by a [`ConnectError`] when the server
    /// cannot be reached (or [`StoreError::Backend`] when it refuses the login).
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
        // The first connection is opened here rather than by the pool, which
        // retries a refused connection until it times out and then reports only
        // that: this one says where and why it failed. The writer keeps it.
        let address = error::server_address(&options);
        let writer_options = writer::connect_options(&options);
        let first = error::connect(&writer_options, &address, self.acquire_timeout)
            .await
            .map_err(|e| e.to_store_error())?;
        // sqlx pings a connection when it is returned; pinging it again when
        // it is taken doubled the round trips of a catch-up read. Only one
        // that sat idle is pinged, so one the server dropped meanwhile is
        // replaced rather than failing the read.
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options.clone());
        // Lock holders keep a connection each, waiting or holding; they get
        // their own pool so that they can never starve the reads a holder makes.
        let lock_pool = PgPoolOptions::new()
            .max_connections(MAX_LOCK_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(options.clone());
        let channel: String = format!("annals:{}", self.schema).chars().take(63).collect();
        let notify = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        if self.notifications {
            let notifier_options = options.clone().options([("synchronous_commit", "off")]);
            tasks.push(tokio::spawn(run_notifier(
                notifier_options,
                channel.clone(),
                notify.clone(),
            )));
        }
        let session_options = options.clone();
        let name = store_name(&self.schema);
        let store = PostgresStore {
            shared: Arc::new(Shared {
                pool,
                schema: self.schema,
                channel,
                wake: watch::channel(0).0,
                writer: writer::Writer::new(
                    self.max_concurrent_appends,
                    writer_options,
                    address.clone(),
                    name,
                    self.acquire_timeout,
                    first,
                ),
                address,
                acquire_timeout: self.acquire_timeout,
                horizon: parking_lot::Mutex::new(Horizon::default()),
                fences: parking_lot::Mutex::new(FenceBatch::default()),
                notify: self.notifications.then_some(notify),
                poll_interval: self.poll_interval,
                lock_timeout: self.lock_timeout,
                locks: Arc::default(),
                lock_pool,
                session_options,
                session: parking_lot::Mutex::new(None),
                listener: parking_lot::Mutex::new(None),
                tasks: parking_lot::Mutex::new(tasks),
            }),
        };
        if self.migrate {
            store.run_migrations().await?;
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
    /// The server, as errors name it.
    address: String,
    acquire_timeout: Duration,
    schema: String,
    channel: String,
    /// Bumped after every local append and every `NOTIFY` received.
    wake: watch::Sender<u64>,
    writer: writer::Writer,
    horizon: parking_lot::Mutex<Horizon>,
    /// Readers waiting for a shared fence.
    fences: parking_lot::Mutex<FenceBatch>,
    /// Asks the notifier task to send a `NOTIFY`; `None` when notifications are off.
    notify: Option<Arc<Notify>>,
    poll_interval: Duration,
    lock_timeout: Duration,
    /// Stream locks within this process, taken before the advisory lock.
    locks: Arc<crate::store::LocalLocks>,
    /// Connections holding (or waiting for) stream locks.
    lock_pool: PgPool,
    /// How the session connects.
    session_options: PgConnectOptions,
    /// The one connection for every turn and the head watch, once started.
    session: parking_lot::Mutex<Option<session::Handle>>,
    listener: parking_lot::Mutex<Option<JoinHandle<()>>>,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Runs `op` on the pool, explaining a pool timeout: when no connection
    /// came in time, one direct connect tells an unreachable server (and why)
    /// from a pool whose connections were all in use.
    async fn pooled<T>(
        &self,
        op: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        self.pooled_in(&self.pool, op).await
    }

    /// [`pooled`](Self::pooled) for an operation on `pool`.
    async fn pooled_in<T>(
        &self,
        pool: &PgPool,
        op: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        match op.await {
            Ok(value) => Ok(value),
            Err(sqlx::Error::PoolTimedOut) => Err(self.pool_timed_out(pool).await),
            Err(sqlx::Error::PoolClosed) => Err(StoreError::Closed {
                store: store_name(&self.schema),
            }),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn pool_timed_out(&self, pool: &PgPool) -> StoreError {
        match self.writer.connection().await {
            Err(e) => e.into_store_error(),
            Ok(conn) => {
                self.writer.keep(conn);
                StoreError::Unavailable(Box::new(error::PoolExhausted {
                    address: self.address.clone(),
                    waited: self.acquire_timeout,
                    size: pool.size(),
                }))
            }
        }
    }

    /// Wakes this process's followers, and asks the notifier to tell others.
    fn appended(&self) {
        self.wake.send_modify(|w| *w = w.wrapping_add(1));
        if let Some(notify) = &self.notify {
            notify.notify_one();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
        if let Some(task) = self.listener.get_mut().take() {
            task.abort();
        }
        if let Some(session) = self.session.get_mut().take() {
            session.abort();
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
            max_concurrent_appends: 2,
            lock_timeout: Duration::from_secs(10),
        }
    }

    /// Connects to `url` with the default configuration (schema `annals`) and migrates.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Applies pending migrations to the store's schema, creating it if
    /// missing, and says which it applied. Safe to run concurrently from
    /// several processes (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let before = self.applied_migrations().await?;
        self.run_migrations().await?;
        let after = self.applied_migrations().await?;
        let target = format!(
            "PostgreSQL `{}`, schema `{}`",
            self.shared.address, self.shared.schema
        );
        Ok(MigrationReport::between(target, before, after))
    }

    /// The migrations recorded as applied in the schema (none before the
    /// first, when neither the schema nor its table exists).
    async fn applied_migrations(&self) -> Result<Vec<Migration>, StoreError> {
        let query = sqlx::query_as::<_, (i64, String)>(
            "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.shared.pool);
        let rows = match query.await {
            // undefined_table
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => Vec::new(),
            other => self.shared.pooled(std::future::ready(other)).await?,
        };
        Ok(rows
            .into_iter()
            .map(|(version, description)| Migration {
                version,
                description,
            })
            .collect())
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        let mut migrator =
            sqlx::migrate::Migrator::with_migrations(MIGRATIONS.iter().cloned().collect());
        // Validated by `validate_schema`, so quoting it cannot break out.
        migrator.create_schema(format!("\"{}\"", self.shared.schema));
        match migrator.run(&self.shared.pool).await {
            Ok(()) => Ok(()),
            Err(sqlx::migrate::MigrateError::Execute(sqlx::Error::PoolTimedOut)) => {
                Err(self.shared.pool_timed_out(&self.shared.pool).await)
            }
            Err(sqlx::migrate::MigrateError::Execute(sqlx::Error::PoolClosed)) => {
                Err(StoreError::Closed {
                    store: store_name(&self.shared.schema),
                })
            }
            Err(sqlx::migrate::MigrateError::Execute(e)) => Err(map_err(e)),
            Err(other) => Err(StoreError::Backend(Box::new(other))),
        }
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The connection pool; its connections have `search_path` set to [`schema`](Self::schema).
    /// Useful to keep read models in the same database. A connection is
    /// pinged when returned to it, and when taken only if it sat idle for
    /// more than a millisecond.
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// Closes the pool, waiting for connections in use to be returned, and
    /// the writer's idle connections. Operations after this fail with
    /// [`StoreError::Closed`].
    pub async fn close(&self) {
        // Its connection goes with it, and every turn it held.
        if let Some(session) = self.shared.session.lock().take() {
            session.abort();
        }
        self.shared.lock_pool.close().await;
        self.shared.pool.close().await;
        self.shared.writer.close().await;
    }

    /// Appends through the writer; `seen` as in [`writer::Request`].
    async fn append_now(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        seen: bool,
        yield_to: Option<(i32, i32)>,
    ) -> Result<AppendResult, StoreError> {
        let request = writer::Request {
            stream: stream.clone(),
            expected,
            events,
            seen,
            yield_to,
        };
        writer::append(&self.shared, request).await
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
        // Versions are contiguous, so the page is the range [from, from +
        // max): bounded on both sides, the planner's work is the page's
        // rows even before the table has statistics (with only a lower
        // bound it gathered and sorted every later event of the stream for
        // each page, which made a long replay quadratic).
        let rows = self.shared
            .pooled(sqlx::query(
            "SELECT position, stream_id, stream_version, event_id, event_type, event_version, \
             payload::text AS payload, correlation_id, causation_id, metadata::text AS metadata, \
             recorded_at FROM events WHERE stream_id = $1 AND stream_version >= $2 \
             AND stream_version < $3 ORDER BY stream_version LIMIT $4",
        )
        .bind(stream.as_str())
        .bind(clamp_i64(from_version))
        .bind(clamp_i64(from_version.saturating_add(max_count as u64)))
        .bind(clamp_i64(max_count as u64))
        .fetch_all(&self.shared.pool))
            .await?;
        rows.iter().map(decode_event).collect()
    }

    /// Reads settled events of the global log; `true` when events past what it
    /// returned may still commit (a follower should look again soon).
    async fn read_all_now(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<(Vec<RecordedEvent>, bool), StoreError> {
        let (page, blocked) = self.read_log(from_position, max_count, None).await?;
        Ok((page.events, blocked))
    }

    /// Reads settled events of the global log: all of them, or those `filter`
    /// wants in one scan window; `true` when positions past what it settled
    /// may still commit. A read wholly below the horizon settled by earlier
    /// reads (catch-up) is one statement and takes no transaction id; else
    /// it takes a [`Fence`] first, shared with the readers that asked for one
    /// while it was being taken. Either way it relies only on fences older
    /// than the oldest transaction its own snapshot saw running.
    ///
    /// The filter runs in the query, on the type and stream columns. A
    /// category is matched as the stream id's prefix `"{category}-"` (`LIKE`,
    /// with `%`, `_` and `\` escaped; categories holding `-` can match no
    /// stream and are left out). Neither a stored category column nor an index
    /// on the type: the read scans the position range of its window through
    /// the primary key, which costs the same whatever the filter (a few ms for
    /// a window of 4096 events, measured against 1M events), whereas one more
    /// index to find rare categories fast made bulk inserts twice as slow.
    async fn read_log(
        &self,
        from_position: u64,
        max_count: usize,
        filter: Option<&EventFilter>,
    ) -> Result<(FilteredPage, bool), StoreError> {
        let from = from_position.max(1);
        let nothing = FilteredPage {
            events: Vec::new(),
            next_position: from,
            held_back: false,
        };
        if max_count == 0 {
            return Ok((nothing, false));
        }
        // Below the settled horizon nothing can still commit: a read there
        // needs no fence (no transaction id, one statement). A filtered read
        // knows its range (one window); `read_all` reads to the horizon and
        // still needs the fence when that did not fill its page. The
        // snapshot may rely on the settled position only if the fence that
        // settled it is older than its oldest running transaction (as in
        // `Horizon::settle`); it is, as the snapshot is taken after that
        // fence settled, and it is checked rather than assumed.
        let (settled, settled_xid) = {
            let horizon = self.shared.horizon.lock();
            (horizon.settled, horizon.settled_xid)
        };
        let unfenced_end = match filter {
            Some(_) => Some(window_end(from, max_count)).filter(|&end| end <= settled),
            // Only when the page can fill below the horizon: a follower
            // at the head reads with a fence at once.
            None => (settled.saturating_sub(from) >= max_count as u64).then_some(settled),
        };
        if let Some(end) = unfenced_end {
            let rows = self
                .shared
                .pooled(log_query(from, end, max_count, filter).fetch_all(&self.shared.pool))
                .await?;
            let xmin = row_xmin(&rows)?;
            self.shared.horizon.lock().settle_older_than(xmin);
            let (found, columns) = found_rows(&rows)?;
            // The fence that settled `settled` is older than every
            // transaction still running in this snapshot: it holds every
            // event up to `settled` that will ever commit.
            let reliable = settled_xid < xmin;
            if reliable && (filter.is_some() || found.len() >= max_count) {
                let page = log_page(from, max_count, &found, columns, end)?;
                return Ok((page, false));
            }
        }
        // One fence shared by every reader woken together (taken on a task
        // of its own), then the read.
        let fence = Fence::shared(&self.shared).await?;
        if fence.last < from {
            // Nothing was ever drawn there; nothing can be missed by stopping.
            return Ok((nothing, false));
        }
        let end = match filter {
            None => fence.last,
            Some(_) => window_end(from, max_count).min(fence.last),
        };
        let rows = self
            .shared
            .pooled(log_query(from, end, max_count, filter).fetch_all(&self.shared.pool))
            .await?;
        let xmin = row_xmin(&rows)?;
        let settled = self.shared.horizon.lock().settle(fence, xmin);
        let (found, columns) = found_rows(&rows)?;
        let page = log_page(from, max_count, &found, columns, settled.min(end))?;
        Ok((page, settled < fence.last))
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

/// A page of streams by id, byte-wise (through the index of migration
/// 0003), each with its newest event (one backward seek of the unique
/// `(stream_id, stream_version)` index): `$1` the lower bound (`>` or
/// `>=`), `$2` how many, `$3` the upper bound when there is one.
macro_rules! list_streams_sql {
    ($lower:literal, $upper:literal) => {
        concat!(
            "SELECT s.stream_id, s.created_at, e.stream_version, e.position, e.recorded_at \
             FROM streams AS s CROSS JOIN LATERAL (SELECT stream_version, position, recorded_at \
             FROM events WHERE events.stream_id = s.stream_id \
             ORDER BY stream_version DESC LIMIT 1) AS e \
             WHERE s.stream_id COLLATE \"C\" ",
            $lower,
            " $1",
            $upper,
            " ORDER BY s.stream_id COLLATE \"C\" LIMIT $2"
        )
    };
}

/// [`list_streams_sql`] by `[exclusive as usize * 2 + bounded as usize]`.
const LIST_STREAMS_SQL: [&str; 4] = [
    list_streams_sql!(">=", ""),
    list_streams_sql!(">=", " AND s.stream_id COLLATE \"C\" < $3"),
    list_streams_sql!(">", ""),
    list_streams_sql!(">", " AND s.stream_id COLLATE \"C\" < $3"),
];

/// A row of a listing of streams.
fn decode_stream_info(row: &PgRow) -> Result<StreamInfo, StoreError> {
    let stream = required::<String>(row, "stream_id").map(StreamId::new);
    let decode = || -> Result<StreamInfo, String> {
        let count = |column: &str| {
            required::<i64>(row, column).and_then(|v| {
                u64::try_from(v).map_err(|_| format!("column `{column}` is negative: {v}"))
            })
        };
        Ok(StreamInfo {
            stream_id: stream.clone()?,
            version: count("stream_version")?,
            last_position: count("position")?,
            created_at: required(row, "created_at")?,
            updated_at: required(row, "recorded_at")?,
        })
    };
    decode().map_err(|reason| StoreError::Corrupt {
        stream: stream.unwrap_or_else(|_| StreamId::new("<unreadable>")),
        version: None,
        position: None,
        reason: format!("stream listing: {reason}"),
    })
}

/// A global read: the oldest running transaction (in the statement's
/// snapshot) with the events of a position range, filtered by `$filter`
/// (`$1` from, `$2` to, `$3` how many).
macro_rules! read_log_sql {
    ($filter:literal) => {
        concat!(
            "SELECT s.xmin, e.* FROM \
             (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin) AS s \
             LEFT JOIN LATERAL (SELECT position, stream_id, stream_version, event_id, event_type, \
             event_version, payload::text AS payload, correlation_id, causation_id, \
             metadata::text AS metadata, recorded_at FROM events \
             WHERE position >= $1 AND position <= $2",
            $filter,
            " ORDER BY position LIMIT $3) AS e ON true"
        )
    };
}

const READ_ALL_SQL: &str = read_log_sql!("");

/// `$4`: the event types wanted, `$5`: `LIKE` patterns of the streams wanted
/// (NULL: any).
const READ_FILTERED_SQL: &str = read_log_sql!(
    " AND ($4::text[] IS NULL OR event_type = ANY($4)) \
     AND ($5::text[] IS NULL OR stream_id LIKE ANY($5))"
);

/// The read of the log from `from` to `end` (at most `max_count` events,
/// those `filter` wants), with the oldest running transaction.
fn log_query<'q>(
    from: u64,
    end: u64,
    max_count: usize,
    filter: Option<&'q EventFilter>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let sql = match filter {
        None => READ_ALL_SQL,
        Some(_) => READ_FILTERED_SQL,
    };
    let mut query = sqlx::query(sql)
        .bind(clamp_i64(from))
        .bind(clamp_i64(end))
        .bind(clamp_i64(max_count as u64));
    if let Some(filter) = filter {
        let prefixes = filter
            .storable_categories()
            .map(|categories| categories.into_iter().map(like_prefix).collect::<Vec<_>>());
        query = query.bind(filter.storable_event_types()).bind(prefixes);
    }
    query
}

/// The oldest transaction still running when a log read ran (0 when it
/// returned no row, which its `LEFT JOIN` never does).
fn row_xmin(rows: &[PgRow]) -> Result<u64, StoreError> {
    match rows.first() {
        Some(row) => row
            .try_get::<i64, _>("xmin")
            .map(|x| x.max(0) as u64)
            .map_err(|e| StoreError::Backend(Box::new(e))),
        None => Ok(0),
    }
}

/// One row of a log read that holds an event, with its position (`None`
/// if out of range).
type Found<'r> = (Option<u64>, &'r PgRow);

/// The rows of a log read that hold an event (not the `LEFT JOIN`'s one row
/// of NULLs when nothing was found), with their positions, and where their
/// columns are.
fn found_rows(rows: &[PgRow]) -> Result<(Vec<Found<'_>>, Option<EventColumns>), StoreError> {
    let Some(first) = rows.first() else {
        return Ok((Vec::new(), None));
    };
    let columns = EventColumns::of(first)?;
    let found = rows
        .iter()
        .filter_map(
            |row| match row.try_get::<Option<i64>, _>(columns.position) {
                Ok(Some(p)) => Some((u64::try_from(p).ok(), row)),
                _ => None,
            },
        )
        .collect();
    Ok((found, Some(columns)))
}

/// A page of a log read's `found` rows, up to `safe`.
fn log_page(
    from: u64,
    max_count: usize,
    found: &[Found<'_>],
    columns: Option<EventColumns>,
    safe: u64,
) -> Result<FilteredPage, StoreError> {
    page_of(
        from,
        max_count,
        found,
        safe,
        |(at, _)| at.unwrap_or(0),
        |(at, row)| match &columns {
            Some(columns) => decode_event_at(row, columns, *at),
            None => decode_event(row),
        },
    )
}

/// The `LIKE` pattern of the streams of `category` (which holds no `-`).
fn like_prefix(category: &str) -> String {
    let mut pattern = String::with_capacity(category.len() + 2);
    for c in category.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("-%");
    pattern
}

/// How `StoreError::Closed` names a store.
fn store_name(schema: &str) -> String {
    format!("PostgreSQL schema `{schema}`")
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

/// The version of `stream`: its newest event's (`None` = no stream).
async fn stream_version_of(shared: &Shared, stream: &StreamId) -> Result<Option<u64>, StoreError> {
    let version: Option<i64> = shared
        .pooled(
            sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = $1")
                .bind(stream.as_str())
                .fetch_one(&shared.pool),
        )
        .await?;
    Ok(version.map(|v| v as u64))
}

/// A point of the global log taken by a reader: every position up to `last`
/// had been drawn, by a writer whose transaction id is below `xid`, before
/// `xid` was assigned. Writers take their id before drawing (see
/// `writer::APPEND_ONE_SQL`), so once no transaction older than `xid` runs, no
/// position up to `last` can still commit.
#[derive(Debug, Clone, Copy)]
struct Fence {
    last: u64,
    xid: u64,
}

impl Fence {
    /// Reads the sequence, then takes a transaction id, in that order; the
    /// transaction commits at once (without waiting for the disk: it wrote
    /// nothing that matters).
    async fn take(shared: &Shared, conn: &mut sqlx::PgConnection) -> Result<Self, StoreError> {
        let (last, xid): (i64, i64) = shared
            .pooled(
                sqlx::query_as(
                    "SELECT f.last, pg_current_xact_id()::text::bigint FROM \
             (SELECT coalesce(pg_sequence_last_value('events_position_seq'), 0) AS last, \
             set_config('synchronous_commit', 'off', true) OFFSET 0) AS f",
                )
                .fetch_one(conn),
            )
            .await?;
        Ok(Self {
            last: last.max(0) as u64,
            xid: xid.max(0) as u64,
        })
    }
}

/// Readers waiting for the next fence, and whether one is being taken.
#[derive(Default)]
struct FenceBatch {
    waiting: Vec<tokio::sync::oneshot::Sender<Option<Fence>>>,
    running: bool,
}

impl Fence {
    /// A fence taken after this call, shared with every reader of the store
    /// that asked while the previous one was being taken: readers woken
    /// together take one transaction id between them, and so do not hold
    /// each other back (a reader's fence settles only once no older
    /// transaction runs, a sibling's fence included). On a failure each
    /// reader takes its own, to report its own error.
    async fn shared(shared: &Arc<Shared>) -> Result<Self, StoreError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let lead = {
            let mut batch = shared.fences.lock();
            batch.waiting.push(sender);
            !std::mem::replace(&mut batch.running, true)
        };
        if lead {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                shared.fences.lock().running = false;
                return Self::take_pooled(shared).await;
            };
            // On a task of its own: a reader that gives up must not leave
            // the others waiting.
            runtime.spawn(Self::take_for_batches(shared.clone()));
        }
        match receiver.await {
            Ok(Some(fence)) => Ok(fence),
            _ => Self::take_pooled(shared).await,
        }
    }

    /// [`take`](Self::take) on a connection of the pool.
    async fn take_pooled(shared: &Shared) -> Result<Self, StoreError> {
        let mut conn = shared.pooled(shared.pool.acquire()).await?;
        Self::take(shared, &mut conn).await
    }

    /// Takes fences while readers wait for one.
    async fn take_for_batches(shared: Arc<Shared>) {
        loop {
            let batch = {
                let mut batch = shared.fences.lock();
                if batch.waiting.is_empty() {
                    batch.running = false;
                    return;
                }
                std::mem::take(&mut batch.waiting)
            };
            let fence = Self::take_pooled(&shared).await.ok();
            for reader in batch {
                let _ = reader.send(fence);
            }
        }
    }
}

/// What this store knows about the global log's read horizon.
#[derive(Debug, Default)]
struct Horizon {
    /// No event at or below this position can still commit.
    settled: u64,
    /// The transaction id of the fence that settled `settled`: only a read
    /// whose snapshot has no running transaction older than it may rely on
    /// it (one whose snapshot is older may still miss a commit below it).
    settled_xid: u64,
    /// Fences not yet known to be settled, oldest first.
    pending: Vec<Fence>,
    /// A read was held back since the session last looked: its reader
    /// waits for a wake-up even if another reader settles the horizon.
    held_back_since_look: bool,
}

/// Fences kept waiting to settle; the newest is replaced beyond this.
const MAX_PENDING_FENCES: usize = 32;

impl Horizon {
    /// Whether a reader was held back since the last call, or still is
    /// (fences it read up to have not settled yet): for the session's look,
    /// which then wakes the readers to read again.
    fn take_held_back(&mut self) -> bool {
        std::mem::take(&mut self.held_back_since_look) || !self.pending.is_empty()
    }

    /// Adds `fence`, settles every fence older than `xmin` (the oldest
    /// transaction still running in the reader's snapshot), and returns the
    /// position up to which that snapshot holds every event that will ever
    /// commit: the newest fence older than `xmin` the store knows of.
    ///
    /// Not simply the store's settled position: another reader, whose
    /// snapshot is newer, may have settled a fence this snapshot predates,
    /// and this snapshot may lack an event that committed in between.
    fn settle(&mut self, fence: Fence, xmin: u64) -> u64 {
        if self.pending.len() >= MAX_PENDING_FENCES {
            self.pending.pop();
        }
        self.pending.push(fence);
        let mine = self.settle_older_than(xmin);
        self.held_back_since_look |= mine < fence.last;
        mine
    }

    /// Settles every pending fence older than `xmin` (the oldest
    /// transaction still running in a reader's snapshot) and returns the
    /// position up to which that snapshot holds every event that will ever
    /// commit (see [`settle`](Self::settle)): the store's settled position
    /// only if the fence that settled it is older than `xmin`.
    fn settle_older_than(&mut self, xmin: u64) -> u64 {
        let mut mine = if self.settled_xid < xmin {
            self.settled
        } else {
            0
        };
        let mut newest = (self.settled, self.settled_xid);
        self.pending.retain(|f| {
            if f.xid < xmin {
                mine = mine.max(f.last);
                if f.last > newest.0 {
                    newest = (f.last, f.xid);
                }
                false
            } else {
                true
            }
        });
        (self.settled, self.settled_xid) = newest;
        let settled = self.settled;
        self.pending.retain(|f| f.last > settled);
        mine
    }
}

/// Reads `column`, which the schema declares `NOT NULL`: a NULL (a row edited
/// by hand after dropping the constraint) is reported as such, never read as
/// a default.
fn required<'r, T>(row: &'r PgRow, column: &str) -> Result<T, String>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    required_at(row, column, column)
}

/// [`required`] for the column at `index`, named `column` in errors.
fn required_at<'r, T, I>(row: &'r PgRow, index: I, column: &str) -> Result<T, String>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    I: sqlx::ColumnIndex<PgRow>,
{
    match row.try_get::<Option<T>, _>(index) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(format!("column `{column}` is NULL")),
        Err(sqlx::Error::ColumnDecode { source, .. }) => {
            Err(format!("column `{column}` cannot be decoded: {source}"))
        }
        Err(e) => Err(format!("column `{column}`: {e}")),
    }
}

/// Where an event's columns are in the rows of one statement: looked up by
/// name once, then read by index (a lookup by name per column and row was
/// the top symbol of a catch-up's profile).
#[derive(Debug, Clone, Copy)]
struct EventColumns {
    position: usize,
    stream_id: usize,
    stream_version: usize,
    event_id: usize,
    event_type: usize,
    event_version: usize,
    payload: usize,
    correlation_id: usize,
    causation_id: usize,
    metadata: usize,
    recorded_at: usize,
}

impl EventColumns {
    /// The columns of `row`'s statement; an error if one is missing (a bug
    /// in the statement, not in the data).
    fn of(row: &PgRow) -> Result<Self, StoreError> {
        let at = |name: &str| {
            row.try_column(name)
                .map(sqlx::Column::ordinal)
                .map_err(|e| StoreError::Backend(Box::new(e)))
        };
        Ok(Self {
            position: at("position")?,
            stream_id: at("stream_id")?,
            stream_version: at("stream_version")?,
            event_id: at("event_id")?,
            event_type: at("event_type")?,
            event_version: at("event_version")?,
            payload: at("payload")?,
            correlation_id: at("correlation_id")?,
            causation_id: at("causation_id")?,
            metadata: at("metadata")?,
            recorded_at: at("recorded_at")?,
        })
    }

    /// The position of `row` (`None`: the `LEFT JOIN`'s row of NULLs, or
    /// a position out of range).
    fn position(&self, row: &PgRow) -> Option<u64> {
        row.try_get::<Option<i64>, _>(self.position)
            .ok()
            .flatten()
            .and_then(|p| u64::try_from(p).ok())
    }
}

/// Decodes an event from a row with the store's event columns, found by
/// name (`payload` and `metadata` as text).
pub(crate) fn decode_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let columns = EventColumns::of(row)?;
    let at = columns.position(row);
    decode_event_at(row, &columns, at)
}

/// Decodes an event from a row whose columns are at `columns`, its position
/// (the primary key, never NULL: every error names it) already read as `at`.
fn decode_event_at(
    row: &PgRow,
    columns: &EventColumns,
    at: Option<u64>,
) -> Result<RecordedEvent, StoreError> {
    let stream_id: String =
        required_at(row, columns.stream_id, "stream_id").map_err(|reason| StoreError::Corrupt {
            stream: StreamId::new("<unreadable>"),
            version: None,
            position: at,
            reason,
        })?;
    let stream = StreamId::new(stream_id);
    let raw_version: i64 =
        required_at(row, columns.stream_version, "stream_version").map_err(|reason| {
            StoreError::Corrupt {
                stream: stream.clone(),
                version: None,
                position: at,
                reason,
            }
        })?;
    let version = u64::try_from(raw_version).unwrap_or(0);
    let corrupt = |reason: String| StoreError::Corrupt {
        stream: stream.clone(),
        version: Some(version).filter(|&v| v > 0),
        position: at,
        reason,
    };
    if raw_version <= 0 {
        return Err(corrupt(format!(
            "stream version {raw_version} is not positive"
        )));
    }
    let position: i64 = required_at(row, columns.position, "position").map_err(corrupt)?;
    let global_position = u64::try_from(position)
        .map_err(|_| corrupt(format!("global position {position} is negative")))?;
    let event_type: String = required_at(row, columns.event_type, "event_type").map_err(corrupt)?;
    let with_type = |reason: String| corrupt(format!("{reason} (event type `{event_type}`)"));
    let event_version: i32 =
        required_at(row, columns.event_version, "event_version").map_err(with_type)?;
    let event_version = u32::try_from(event_version)
        .map_err(|_| with_type(format!("event version {event_version} is negative")))?;
    let payload: &str = required_at(row, columns.payload, "payload").map_err(with_type)?;
    // The column is `jsonb`: PostgreSQL checked the JSON when it was written
    // and prints it back well-formed.
    let payload = Payload::from_jsonb_text(payload.to_owned());
    let custom: &str = required_at(row, columns.metadata, "metadata").map_err(with_type)?;
    let custom: BTreeMap<String, serde_json::Value> = if custom == "{}" {
        BTreeMap::new()
    } else {
        serde_json::from_str(custom)
            .map_err(|e| with_type(format!("metadata is not a JSON object: {e}")))?
    };
    let correlation_id = row
        .try_get(columns.correlation_id)
        .map_err(|e| with_type(e.to_string()))?;
    let causation_id = row
        .try_get(columns.causation_id)
        .map_err(|e| with_type(e.to_string()))?;
    Ok(RecordedEvent {
        event_id: required_at(row, columns.event_id, "event_id").map_err(with_type)?,
        stream_id: stream.clone(),
        stream_version: version,
        global_position,
        event_version,
        payload,
        metadata: Metadata {
            correlation_id,
            causation_id,
            custom,
        },
        recorded_at: required_at(row, columns.recorded_at, "recorded_at").map_err(with_type)?,
        event_type: Cow::Owned(event_type),
    })
}

impl PostgresStore {
    async fn save_snapshot_now(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let version = i32::try_from(snapshot.snapshot_version).map_err(|_| {
            StoreError::Config(format!(
                "snapshot version {} does not fit PostgreSQL's integer",
                snapshot.snapshot_version
            ))
        })?;
        let query = sqlx::query(
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
        .bind(snapshot.taken_at);
        self.shared.pooled(query.execute(&self.shared.pool)).await?;
        Ok(())
    }

    async fn load_snapshot_now(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let row = self
            .shared
            .pooled(
                sqlx::query(
                    "SELECT stream_version, snapshot_version, state::text AS state, taken_at \
                 FROM snapshots WHERE stream_id = $1",
                )
                .bind(stream.as_str())
                .fetch_optional(&self.shared.pool),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let snapshot_corrupt = |version: u64, reason: String| StoreError::Corrupt {
            stream: stream.clone(),
            version: Some(version).filter(|&v| v > 0),
            position: None,
            reason: format!("snapshot: {reason}"),
        };
        let raw_version: i64 =
            required(&row, "stream_version").map_err(|reason| snapshot_corrupt(0, reason))?;
        let stream_version = u64::try_from(raw_version).map_err(|_| {
            snapshot_corrupt(0, format!("stream version {raw_version} is negative"))
        })?;
        let corrupt = |reason: String| snapshot_corrupt(stream_version, reason);
        let snapshot_version: i32 = required(&row, "snapshot_version").map_err(corrupt)?;
        let state: String = required(&row, "state").map_err(corrupt)?;
        Ok(Some(Snapshot {
            stream_id: stream.clone(),
            stream_version,
            snapshot_version: u32::try_from(snapshot_version)
                .map_err(|_| corrupt(format!("snapshot version {snapshot_version} is negative")))?,
            state: Payload::from_json(state).map_err(|e| corrupt(format!("state: {e}")))?,
            taken_at: required(&row, "taken_at").map_err(corrupt)?,
        }))
    }
}

impl EventStore for PostgresStore {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        Box::pin(self.append_now(stream, expected, events, false, None))
    }

    fn append_after_seen<'a>(
        &'a self,
        stream: &'a StreamId,
        seen: u64,
        _hint: StreamHint,
        held: Option<&'a StreamLock>,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        // A holder in this process is seen here; one in another process by
        // the statement (see `writer`).
        if self
            .shared
            .locks
            .must_yield(stream, held.and_then(lock::local_part))
        {
            let locked = StoreError::StreamLocked {
                stream: stream.clone(),
            };
            return Box::pin(std::future::ready(Err(locked)));
        }
        // A holder in another process: the statement yields to it while it
        // holds the advisory lock (see `writer::Request::yield_to`).
        let key = lock::key(&self.shared.schema, stream);
        let yield_to = (!lock::holds(held, key)).then_some(key);
        Box::pin(self.append_now(
            stream,
            ExpectedVersion::Exact(seen),
            events,
            seen > 0,
            yield_to,
        ))
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
        max_count: usize,
    ) -> StoreFuture<'a, Vec<RecordedEvent>> {
        Box::pin(async move {
            stream.validate()?;
            self.read_stream_now(stream, from_version, max_count).await
        })
    }

    fn stream_version<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            stream.validate()?;
            stream_version_of(&self.shared, stream).await
        })
    }

    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> StoreFuture<'_, Vec<RecordedEvent>> {
        Box::pin(async move {
            self.read_all_now(from_position, max_count)
                .await
                .map(|(events, _)| events)
        })
    }

    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let state = Follow {
            store: self.clone(),
            watch: self.watch_log(),
            next: from_position.max(1),
            buffer: VecDeque::new(),
            backoff: MIN_BACKOFF,
            failed: false,
        };
        Box::pin(futures::stream::unfold(state, Follow::next))
    }

    /// The filter runs in the query, on the type and stream columns, over
    /// one window of positions per read, and only up to the settled horizon
    /// of [`read_all`](EventStore::read_all): `next_position` stops short of
    /// any position a running transaction may still fill, wanted or not. A
    /// corrupt row the filter does not want by its type and stream columns
    /// is passed over.
    fn read_all_filtered<'a>(
        &'a self,
        from_position: u64,
        max_count: usize,
        filter: &'a EventFilter,
    ) -> StoreFuture<'a, FilteredPage> {
        Box::pin(async move {
            let (mut page, held_back) = self
                .read_log(from_position, max_count, Some(filter))
                .await?;
            page.held_back = held_back;
            Ok(page)
        })
    }

    /// Woken at once by appends through this store (or its clones), and by
    /// the `NOTIFY` other processes' stores send after appending (unless
    /// [`notifications`](PostgresStoreBuilder::notifications) are off).
    /// Watchers do not poll each: the store reads the head of the log
    /// (`pg_sequence_last_value`, which takes no transaction id) every
    /// [`poll_interval`](PostgresStoreBuilder::poll_interval) (at most 1 s)
    /// on its session connection, and wakes them all when it moved or when
    /// a reader was held back below it. Starts the store's listener for
    /// notifications and its session, if it has none yet.
    fn watch_log(&self) -> LogWatch {
        self.ensure_listener();
        if session::watch(&self.shared) {
            LogWatch::watched(self.shared.wake.subscribe(), self.shared.poll_interval)
        } else {
            LogWatch::new(self.shared.wake.subscribe(), self.shared.poll_interval)
        }
    }

    /// The newest committed event's position (a reader may still be held
    /// back below it while a lower position is being committed).
    fn head_position(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let query = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
                .fetch_one(&self.shared.pool);
            let head: i64 = self.shared.pooled(query).await?;
            Ok(u64::try_from(head).unwrap_or(0))
        })
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            snapshot.stream_id.validate()?;
            self.save_snapshot_now(snapshot).await
        })
    }

    /// In the table `checkpoints` of the store's schema.
    fn load_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            validate_checkpoint_name(name)?;
            let query =
                sqlx::query_scalar("SELECT position FROM checkpoints WHERE subscription = $1")
                    .bind(name)
                    .fetch_optional(&self.shared.pool);
            let position: Option<i64> = self.shared.pooled(query).await?;
            position.map(|p| stored_position(name, p)).transpose()
        })
    }

    /// A save that moves the checkpoint forward commits without waiting for
    /// the disk (`synchronous_commit = off` for its transaction): a server
    /// crash may lose the last fraction of a second of such moves, after
    /// which the handler handles those events again. A save that moves it
    /// back (a rebuild) waits for the disk as usual.
    fn save_checkpoint<'a>(&'a self, name: &'a str, position: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let position = validate_checkpoint(name, position)?;
            // A checkpoint that moves forward commits without waiting for the
            // disk (a flush per page cost a catch-up a quarter of its time):
            // lost with the server's last moments, it makes the handler
            // handle those events again, which at-least-once allows. One that
            // moves back (a rebuild) is flushed, or a crash could undo it.
            let query = sqlx::query(
                "WITH c AS MATERIALIZED (SELECT set_config('synchronous_commit', \
                 CASE WHEN coalesce((SELECT position FROM checkpoints WHERE subscription = $1), \
                 -1) <= $2 THEN 'off' ELSE current_setting('synchronous_commit') END, true)) \
                 INSERT INTO checkpoints (subscription, position, updated_at) \
                 SELECT $1, $2, now() FROM c \
                 ON CONFLICT (subscription) DO UPDATE SET position = EXCLUDED.position, \
                 updated_at = EXCLUDED.updated_at",
            )
            .bind(name)
            .bind(position)
            .execute(&self.shared.pool);
            self.shared.pooled(query).await?;
            Ok(())
        })
    }

    fn delete_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            validate_checkpoint_name(name)?;
            let query = sqlx::query("DELETE FROM checkpoints WHERE subscription = $1")
                .bind(name)
                .execute(&self.shared.pool);
            self.shared.pooled(query).await?;
            Ok(())
        })
    }

    /// Sorted byte-wise (`COLLATE "C"`), whatever the database's collation.
    fn checkpoints(&self) -> StoreFuture<'_, Vec<(String, u64)>> {
        Box::pin(async move {
            let query = sqlx::query_as(
                "SELECT subscription, position FROM checkpoints ORDER BY subscription COLLATE \"C\"",
            )
            .fetch_all(&self.shared.pool);
            let rows: Vec<(String, i64)> = self.shared.pooled(query).await?;
            rows.into_iter()
                .map(|(name, p)| stored_position(&name, p).map(|p| (name, p)))
                .collect()
        })
    }

    fn load_snapshot<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<Snapshot>> {
        Box::pin(async move {
            stream.validate()?;
            self.load_snapshot_now(stream).await
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            PostgresStore::close(self).await;
            Ok(())
        })
    }

    /// Through an index of the stream ids in byte-wise order (`COLLATE
    /// "C"`), whatever the database's collation.
    fn streams<'a>(
        &'a self,
        category: Option<&'a str>,
        after: Option<&'a StreamId>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<StreamInfo>> {
        Box::pin(async move {
            if let Some(after) = after {
                after.validate()?;
            }
            let Some(range) = StreamRange::new(category, after) else {
                return Ok(Vec::new());
            };
            if limit == 0 {
                return Ok(Vec::new());
            }
            let (lower, exclusive) = range.lower();
            let sql =
                LIST_STREAMS_SQL[usize::from(exclusive) * 2 + usize::from(range.before.is_some())];
            let mut query = sqlx::query(sql).bind(lower).bind(clamp_i64(limit as u64));
            if let Some(before) = range.before.as_deref() {
                query = query.bind(before);
            }
            let rows = self
                .shared
                .pooled(query.fetch_all(&self.shared.pool))
                .await?;
            rows.iter().map(decode_stream_info).collect()
        })
    }

    /// [`PostgresStore::migrate`].
    fn migrate(&self) -> StoreFuture<'_, MigrationReport> {
        Box::pin(PostgresStore::migrate(self))
    }

    /// First a lock within this process (so one process waits on PostgreSQL
    /// with one connection per stream at most), then a session-level advisory
    /// lock (`pg_advisory_lock`) keyed by the store's schema and a hash of the
    /// stream, which excludes every process whose store uses the same schema.
    /// Lock connections come from a small pool of their own (at most 64), so
    /// waiting lockers never take the connections a holder reads with. Both
    /// are given up on drop (the connection is closed if the advisory lock
    /// cannot be released cleanly, which releases it too); waiting ends with
    /// an error after [`lock_timeout`](PostgresStoreBuilder::lock_timeout).
    fn lock_stream<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        Box::pin(async move {
            stream.validate()?;
            lock::acquire(&self.shared, stream).await
        })
    }

    /// Every turn of this store (and its clones) is a session-level advisory
    /// lock on one connection of its own, the store's session (with the same
    /// key [`lock_stream`](EventStore::lock_stream) gives the stream): a
    /// process holds any number of turns on one connection. A turn another
    /// process holds is tried again (`pg_try_advisory_lock`) every 0.25-0.5 s,
    /// every waiting turn in one statement. When the session's connection
    /// ends, every turn on it is lost: the session notices within a second
    /// (it reads the head on it at least that often while it holds turns),
    /// [`StreamLock::lost`] resolves, and it connects again for the next
    /// taker. Fails when the store cannot be reached or is closed.
    fn lock_turn<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        Box::pin(async move {
            stream.validate()?;
            session::take(&self.shared, stream).await
        })
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(5);

/// The state of one `subscribe_all` follower.
struct Follow {
    store: PostgresStore,
    watch: LogWatch,
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
            self.watch.mark();
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
                        self.watch.changed().await;
                    }
                }
            }
        }
    }
}

impl PostgresStore {
    /// Runs `projection` inside the transaction of every append from now
    /// on, so its read model (tables in this database, found through the
    /// store's `search_path`) commits with the events or not at all: an
    /// append whose projection fails is rolled back and fails with
    /// [`StoreError::Projection`], and appends written together with it are
    /// unaffected.
    ///
    /// The first time a projection of this name is added to the schema, it
    /// projects the events already stored first, in one transaction that
    /// locks the `events` table against appends (from every process; reads
    /// go on); it then records itself as live in
    /// `annals_projection_checkpoints` (as `inline:<name>`), so adding it
    /// again (the next start, another node) projects nothing. Returns how
    /// many stored events it projected. Every process that appends to this
    /// schema must add the same inline projections: an append made without
    /// one is not projected into it.
    ///
    /// See [`SqliteStore::add_inline_projection`](crate::sqlite::SqliteStore::add_inline_projection)
    /// (feature `sqlite`) for a runnable example; it is the same on both
    /// stores, with a `Projection<sqlx::Postgres>`.
    pub async fn add_inline_projection<P>(&self, projection: P) -> Result<u64, StoreError>
    where
        P: crate::projection::Projection<sqlx::Postgres>,
    {
        writer::add_inline(&self.shared, crate::projection::inline::wrap(projection)).await
    }

    /// Empties the inline projection `name` (its
    /// [`reset`](crate::projection::Projection::reset)) and projects every
    /// stored event into it again, in one transaction that locks the
    /// `events` table against appends. Returns how many events it
    /// projected. Fails with [`StoreError::Config`] if no inline projection
    /// of that name was added to this store.
    pub async fn rebuild_inline_projection(&self, name: &str) -> Result<u64, StoreError> {
        writer::rebuild_inline(&self.shared, name).await
    }
}

#[cfg(test)]
mod horizon_tests {
    use super::{Fence, Horizon};

    /// A reader whose snapshot is older than the fence another reader
    /// settled must not read up to it: its snapshot may lack an event that
    /// committed in between, which it would then skip for good.
    #[test]
    fn a_snapshot_older_than_a_settled_fence_does_not_rely_on_it() {
        let mut horizon = Horizon::default();
        // Reader 1 fenced position 5 with transaction 10; a writer of
        // position 5 (transaction 8) was still running in its snapshot.
        let first = Fence { last: 5, xid: 10 };
        // Reader 2 fenced later (transaction 12), read after the writer
        // committed, and settles up to 6.
        assert_eq!(horizon.settle(Fence { last: 6, xid: 12 }, 13), 6);
        // Reader 1's statement had seen transaction 8 running: nothing is
        // settled for it, whatever reader 2 learnt.
        assert_eq!(horizon.settle(first, 8), 0);
        assert!(horizon.take_held_back());
        // Its next read, with a newer snapshot, goes up to both.
        assert_eq!(horizon.settle(Fence { last: 6, xid: 14 }, 15), 6);
        assert!(!horizon.take_held_back());
    }
}
