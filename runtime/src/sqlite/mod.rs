//! The SQLite event store (feature `sqlite`): the embedded default, one file,
//! zero setup.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), annals::StoreError> {
//! use annals::sqlite::SqliteStore;
//! use annals::{EventStore, ExpectedVersion, NewEvent, Payload, StreamId};
//!
//! let dir = std::env::temp_dir().join(format!("annals-doc-{}", uuid::Uuid::now_v7()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let store = SqliteStore::open(dir.join("events.db")).await?;
//!
//! let stream = StreamId::new("Account-1");
//! let opened = NewEvent::new("AccountOpened", 1, Payload::from_json(r#"{"owner":"ada"}"#).unwrap());
//! store.append(&stream, ExpectedVersion::NoStream, vec![opened]).await?;
//!
//! let events = store.read_stream(&stream, 1, 100).await?;
//! assert_eq!(events[0].event_type, "AccountOpened");
//! # drop(store);
//! # std::fs::remove_dir_all(dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! # Layout and guarantees
//!
//! Four tables share a prefix (default `annals_`, see
//! [`SqliteStoreBuilder::table_prefix`]): `events` (the log; the global
//! position is the rowid), `streams` (one row per stream, written with its
//! first event: when it was created), `snapshots` and `checkpoints`.
//! Embedded, versioned migrations create them when the store is opened;
//! [`SqliteStore::migrate`] runs them explicitly. A stream's version is its
//! newest event's, found in the unique `(stream_id, stream_version)` index.
//! Triggers refuse a stream version out of sequence whoever writes it, and
//! refuse `UPDATE` and `DELETE` of recorded events.
//!
//! Every append is checked and written by one statement, so the expected
//! version is checked atomically with the write. An append that expects no
//! stream or an exact version (as [`App`](crate::App) appends, through
//! [`EventStore::append_after_seen`]) is a plain `INSERT` of the versions
//! that follow it, which the out-of-sequence trigger refuses unless the
//! stream is at the expected version: no other row is read or written. SQLite admits one writer at a
//! time and positions are assigned inside the write, so the global log never
//! shows a gap to readers. Concurrent appends from one process are coalesced
//! into shared statements (see [`EventStore::append`] below) and each caller
//! is answered once its append has committed.
//!
//! The store runs in WAL mode: readers never block the writer. Several
//! processes may open the same file; [`EventStore::subscribe_all`] and
//! [`EventStore::watch_log`] wake at once on appends made through this
//! process's store and poll for the others'.
//!
//! [`EventStore::lock_stream`] excludes every process on the file, not only
//! this one: see its doc below. It keeps a fourth file, `events.db-locks`,
//! which holds no data (it only carries the locks) and may be deleted while
//! no process has the database open.
//!
//! # The files on disk: the database, its `-wal` and its `-shm`
//!
//! In WAL mode a commit is appended to the write-ahead log, `events.db-wal`
//! next to `events.db`, and copied into the database file only at a
//! *checkpoint*: SQLite runs one when the log passes about 4 MB, and when the
//! last connection to the file closes. `events.db-shm` is an index of the log
//! shared by the connections; it holds nothing that cannot be rebuilt.
//! So while a store is open, and after a process ended without closing it,
//! recent events may be only in the `-wal` file, and the `.db` file alone
//! can look empty.
//!
//! Nothing is lost that way: a commit in the log is as durable as one in the
//! database file (see [`Synchronous`]), and whoever opens the database next,
//! with the `-wal` file beside it, sees every event, and folds the log in.
//! Dropping the last handle to a store without closing it, or a crash,
//! therefore loses no committed event. What the log changes is what to copy:
//!
//! - [`SqliteStore::close`] (which [`App::shutdown`](crate::App::shutdown)
//!   calls) folds the log into the database file and closes the connections;
//!   afterwards `events.db` alone holds everything, and the `-wal` and `-shm`
//!   files are gone (or empty, if another connection still has the file open).
//!   Close before copying the file, or shipping it elsewhere.
//! - To back up a database in use, do not copy the `.db` file: it may miss
//!   what the log holds, and a copy taken during a checkpoint may be torn.
//!   Copy the database, its `-wal` and `-shm` files together while no process
//!   has it open, or, while it is open, let SQLite write a consistent copy:
//!   `VACUUM INTO '/backups/events.db'` on any connection to the file (or the
//!   `sqlite3` shell's `.backup`), which also takes what the log holds.

mod codec;
mod locks;
mod schema;
mod writer;

use crate::store::StreamRange;
use crate::store::{
    DEFAULT_READ_BATCH, page_of, stored_position, validate_checkpoint, validate_checkpoint_name,
    window_end,
};
use crate::{
    AppendResult, EventFilter, EventStore, ExpectedVersion, FilteredPage, LogWatch, Migration,
    MigrationReport, NewEvent, RecordedEvent, Snapshot, StoreError, StoreFuture, StreamHint,
    StreamId, StreamInfo, StreamLock,
};
use futures::stream::BoxStream;
use locks::SqliteLocks;
use schema::Schema;
use sqlx::ConnectOptions as _;
use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use writer::Writer;

/// The `synchronous` setting: how hard SQLite works to make a commit survive a
/// crash. The store always runs in WAL mode, where:
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// No syncing at all: an operating-system crash or power loss can lose
    /// recent commits and corrupt the file. For throwaway data only.
    Off,
    /// The default. A commit survives the process crashing; on power loss or
    /// an operating-system crash the last commits may be lost, but the file
    /// stays consistent. SQLite syncs at each WAL checkpoint rather than each
    /// commit, which makes commits several times cheaper than `Full`.
    #[default]
    Normal,
    /// Sync the WAL at every commit: a commit that returned survives power
    /// loss. Choose it when a lost acknowledged event is unacceptable even on
    /// power failure.
    Full,
    /// `Full`, and also sync the directory after deleting a journal.
    Extra,
}

impl Synchronous {
    fn to_sqlx(self) -> SqliteSynchronous {
        match self {
            Self::Off => SqliteSynchronous::Off,
            Self::Normal => SqliteSynchronous::Normal,
            Self::Full => SqliteSynchronous::Full,
            Self::Extra => SqliteSynchronous::Extra,
        }
    }
}

/// Options for opening a [`SqliteStore`]; from [`SqliteStore::builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), annals::StoreError> {
/// use annals::sqlite::{SqliteStore, Synchronous};
/// use std::time::Duration;
///
/// let dir = std::env::temp_dir().join(format!("annals-doc-{}", uuid::Uuid::now_v7()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = SqliteStore::builder()
///     .path(dir.join("bank.db"))
///     .synchronous(Synchronous::Full)
///     .busy_timeout(Duration::from_secs(10))
///     .table_prefix("bank_")
///     .open()
///     .await?;
/// assert_eq!(store.table_prefix(), "bank_");
/// # drop(store);
/// # std::fs::remove_dir_all(dir).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStoreBuilder {
    target: Option<Target>,
    synchronous: Synchronous,
    busy_timeout: Duration,
    table_prefix: String,
    readers: u32,
    poll_interval: Duration,
    migrate: bool,
}

#[derive(Debug, Clone)]
enum Target {
    Path(PathBuf),
    Url(String),
}

impl Default for SqliteStoreBuilder {
    fn default() -> Self {
        Self {
            target: None,
            synchronous: Synchronous::default(),
            busy_timeout: Duration::from_secs(5),
            table_prefix: "annals_".to_owned(),
            readers: 4,
            poll_interval: Duration::from_millis(500),
            migrate: true,
        }
    }
}

impl SqliteStoreBuilder {
    /// The database file; created (with its tables) if missing. Its
    /// directory must exist.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.target = Some(Target::Path(path.into()));
        self
    }

    /// A `sqlite:` URL instead of a path, e.g. `sqlite:data/events.db` or
    /// `sqlite://data/events.db?mode=rw`.
    ///
    /// The URL's own options apply. Without `mode` the file is created if
    /// missing, as with a path; `mode=rw` (or `ro`) opens only an existing
    /// file. The directory must exist either way. In-memory databases are
    /// refused: use [`MemoryStore`](crate::MemoryStore).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.target = Some(Target::Url(url.into()));
        self
    }

    /// The durability of a commit; default [`Synchronous::Normal`].
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long a statement waits for another process's lock on the file
    /// before failing with [`StoreError::Unavailable`]; default 5 s.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The prefix of the store's table names; default `annals_`, so the tables
    /// are `annals_events`, `annals_streams`, `annals_snapshots`,
    /// `annals_checkpoints` and `annals_migrations`. Several stores with
    /// different prefixes can share a file.
    ///
    /// It must be at most 48 ASCII letters, digits and underscores, not
    /// starting with a digit (it may be empty); anything else makes `open`
    /// fail with [`StoreError::Config`].
    pub fn table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }

    /// How many connections serve reads concurrently; default 4. Writes use
    /// one more connection of their own.
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// How often a [`subscribe_all`](EventStore::subscribe_all) stream, or a
    /// [`LogWatch`] from [`watch_log`](EventStore::watch_log), looks for
    /// events appended by other processes; default 500 ms. Appends made
    /// through this store wake them at once.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Whether `open` applies pending migrations; default `true`. When off,
    /// call [`SqliteStore::migrate`] before using the store.
    pub fn migrate_on_open(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Opens the store: connects (creating the file unless a URL's `mode`
    /// says not to), switches the file to WAL mode and applies pending
    /// migrations.
    ///
    /// Fails with [`StoreError::Config`] for a missing target, a bad URL, a
    /// bad prefix, a directory that does not exist and a file that does not
    /// exist and may not be created, each message naming the path;
    /// [`StoreError::Unavailable`] when the file cannot be opened otherwise
    /// (permissions) or is locked, and [`StoreError::Backend`] when it is not
    /// a database. The source of those two is an [`OpenError`] naming the
    /// file, caused by SQLite's own error.
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        let schema = Arc::new(Schema::new(&self.table_prefix)?);
        let (options, create) = match &self.target {
            None => return Err(StoreError::Config("no SQLite path or URL given".into())),
            Some(Target::Path(path)) => (SqliteConnectOptions::new().filename(path), true),
            Some(Target::Url(url)) => {
                if url.contains(":memory:") || url.contains("mode=memory") {
                    return Err(StoreError::Config(format!(
                        "`{url}` is an in-memory SQLite database; use annals::MemoryStore for an in-memory store"
                    )));
                }
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Config(format!("bad SQLite URL `{url}`: {e}")))?;
                // Like a path, unless the URL says otherwise.
                (options, !url_sets_mode(url))
            }
        };
        let path = options.get_filename().to_owned();
        let options = options
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(self.synchronous.to_sqlx())
            .busy_timeout(self.busy_timeout);
        let mut conn = match options.connect().await {
            Ok(conn) => conn,
            Err(e) => return Err(open_failure(&path, create, e)),
        };
        if self.migrate {
            schema
                .migrator()
                .run_direct(None, &mut conn, false)
                .await
                .map_err(|e| at_open(&path, codec::migrate(e)))?;
        }
        let head: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(max(position), 0) FROM {}events",
            schema.prefix
        )))
        .fetch_one(&mut conn)
        .await
        .or_else(|e| match &e {
            // Not migrated yet: the log is empty as far as we know.
            sqlx::Error::Database(db)
                if !self.migrate && db.message().contains("no such table") =>
            {
                Ok(0)
            }
            _ => Err(at_open(&path, codec::backend(e))),
        })?;
        let readers = SqlitePoolOptions::new()
            .max_connections(self.readers)
            .min_connections(0)
            .connect_lazy_with(options.clone());
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Arc::new(Writer::new(conn, schema.clone(), path.clone(), head as u64)),
                locks: shared_locks(&path, &schema.prefix),
                readers,
                schema,
                filename: path,
                poll_interval: self.poll_interval,
                closed: AtomicBool::new(false),
            }),
        })
    }
}

/// Whether a `sqlite:` URL sets `mode` (`ro`, `rw`, `rwc`) itself.
fn url_sets_mode(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("mode"))
    })
}

/// Why the file at `path` could not be opened: a missing directory, a
/// directory where the file should be or a missing file the URL does not let
/// SQLite create are configuration errors naming the path; anything else is
/// SQLite's own error, under an [`OpenError`] naming the path.
fn open_failure(path: &Path, create: bool, e: sqlx::Error) -> StoreError {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        let why = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        return StoreError::Config(format!(
            "cannot open SQLite database `{shown}`: directory `{}` {why}",
            dir.display()
        ));
    }
    if path.is_dir() {
        return StoreError::Config(format!(
            "cannot open SQLite database `{shown}`: it is a directory"
        ));
    }
    if !create && !path.exists() {
        return StoreError::Config(format!(
            "cannot open SQLite database `{shown}`: the file does not exist, and the URL's \
             `mode` does not let it be created (`mode=rwc` does)"
        ));
    }
    at_open(path, codec::backend(e))
}

/// Puts a failure of opening the store under an [`OpenError`] naming the file.
fn at_open(path: &Path, e: StoreError) -> StoreError {
    let wrap = |source| {
        Box::new(OpenError {
            path: path.to_owned(),
            source,
        })
    };
    match e {
        StoreError::Unavailable(source) => StoreError::Unavailable(wrap(source)),
        StoreError::Backend(source) => StoreError::Backend(wrap(source)),
        other => other,
    }
}

/// The file a [`SqliteStore`] could not be opened on; the
/// [`source`](std::error::Error::source) of the [`StoreError`] that
/// [`SqliteStoreBuilder::open`] returns then, and itself caused by SQLite's
/// error.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use annals::sqlite::{OpenError, SqliteStore};
/// use std::error::Error as _;
///
/// let dir = std::env::temp_dir().join(format!("annals-doc-{}", uuid::Uuid::now_v7()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let garbage = dir.join("not-a-database.db");
/// std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
///
/// let err = SqliteStore::open(&garbage).await.unwrap_err();
/// let open = err.source().and_then(|e| e.downcast_ref::<OpenError>()).unwrap();
/// assert_eq!(open.path(), garbage);
/// assert!(open.source().unwrap().to_string().contains("not a database"));
/// # std::fs::remove_dir_all(dir).ok();
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[error("cannot open SQLite database `{}`", path.display())]
pub struct OpenError {
    path: PathBuf,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl OpenError {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The error of an operation on a closed store.
pub(crate) fn closed(path: &Path) -> StoreError {
    StoreError::Closed {
        store: format!("SQLite `{}`", path.display()),
    }
}

/// An [`EventStore`] in a SQLite database file; clones share the connections.
///
/// Open one with [`SqliteStore::open`] (a path), [`SqliteStore::connect`] (a
/// `sqlite://` URL) or [`SqliteStore::builder`] for the options. The module
/// docs describe the schema and the guarantees.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Arc<Writer>,
    locks: Arc<SqliteLocks>,
    readers: SqlitePool,
    schema: Arc<Schema>,
    filename: PathBuf,
    poll_interval: Duration,
    /// Set by [`SqliteStore::close`].
    closed: AtomicBool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("file", &self.inner.filename)
            .field("table_prefix", &self.inner.schema.prefix)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path` with the
    /// default options: WAL mode, [`Synchronous::Normal`], tables prefixed
    /// `annals_`, migrations applied. The directory must exist: if it does
    /// not, this fails with a [`StoreError::Config`] that says so.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), annals::StoreError> {
    /// use annals::sqlite::SqliteStore;
    /// use annals::{EventStore, ExpectedVersion, NewEvent, Payload, StreamId};
    ///
    /// let dir = std::env::temp_dir().join(format!("annals-doc-{}", uuid::Uuid::now_v7()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("events.db");
    ///
    /// let store = SqliteStore::open(&path).await?;
    /// let stream = StreamId::new("Account-7");
    /// let deposit = NewEvent::new("MoneyDeposited", 1, Payload::from_json(r#"{"amount":5}"#).unwrap());
    /// let done = store.append(&stream, ExpectedVersion::NoStream, vec![deposit]).await?;
    /// assert_eq!(done.stream_version, 1);
    /// drop(store);
    ///
    /// // The events are in the file.
    /// let again = SqliteStore::open(&path).await?;
    /// assert_eq!(again.stream_version(&stream).await?, Some(1));
    /// # drop(again);
    /// # std::fs::remove_dir_all(dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder().path(path.as_ref()).open().await
    }

    /// Opens the database a `sqlite://` URL names, with the default options;
    /// see [`SqliteStoreBuilder::url`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().url(url).open().await
    }

    /// Options for opening a store.
    pub fn builder() -> SqliteStoreBuilder {
        SqliteStoreBuilder::default()
    }

    /// Folds the write-ahead log into the database file and closes the
    /// store's connections, once the operations under way have finished.
    /// [`App::shutdown`](crate::App::shutdown) calls it.
    ///
    /// Afterwards the database file alone holds every event (see the module
    /// docs on the WAL), and every operation on this store or its clones
    /// fails with [`StoreError::Closed`].
    /// Closing again does nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), annals::StoreError> {
    /// use annals::sqlite::SqliteStore;
    /// use annals::{EventStore, ExpectedVersion, NewEvent, Payload, StreamId};
    ///
    /// let dir = std::env::temp_dir().join(format!("annals-doc-{}", uuid::Uuid::now_v7()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let store = SqliteStore::open(dir.join("events.db")).await?;
    /// let opened = NewEvent::new("AccountOpened", 1, Payload::from_json("{}").unwrap());
    /// store.append(&StreamId::new("Account-1"), ExpectedVersion::NoStream, vec![opened]).await?;
    /// store.close().await?;
    ///
    /// // The file is self-contained: a copy of it alone holds the event.
    /// std::fs::copy(dir.join("events.db"), dir.join("backup.db")).unwrap();
    /// let backup = SqliteStore::open(dir.join("backup.db")).await?;
    /// assert_eq!(backup.read_all(1, 10).await?.len(), 1);
    /// # backup.close().await?;
    /// # std::fs::remove_dir_all(dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Fails only if SQLite fails to checkpoint or to close; the store is
    /// closed all the same. When another connection to the file (another
    /// process, or another `SqliteStore` on it) is reading at that moment,
    /// part of the log may stay in the `-wal` file, committed; it is folded in
    /// when that connection closes (a warning is logged).
    pub async fn close(&self) -> Result<(), StoreError> {
        self.inner.closed.store(true, Ordering::Release);
        // Reads under way finish first, so that none holds the checkpoint back.
        self.inner.readers.close().await;
        self.inner.writer.close().await
    }

    /// The reader connections, unless the store is closed.
    fn readers(&self) -> Result<&SqlitePool, StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed(&self.inner.filename));
        }
        Ok(&self.inner.readers)
    }

    /// The error of a failed read: the store's own when it was closed meanwhile.
    fn read_failed(&self, e: sqlx::Error) -> StoreError {
        match e {
            sqlx::Error::PoolClosed => closed(&self.inner.filename),
            e => codec::backend(e),
        }
    }

    /// Applies the embedded migrations that are not yet applied, and says
    /// which it applied; a no-op when the schema is current. `open` does
    /// this unless told not to
    /// ([`migrate_on_open`](SqliteStoreBuilder::migrate_on_open)).
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let mut conn = self.inner.writer.conn().await?;
        let before = self.applied_migrations(&mut conn).await?;
        self.inner
            .schema
            .migrator()
            .run_direct(None, &mut *conn, false)
            .await
            .map_err(codec::migrate)?;
        let after = self.applied_migrations(&mut conn).await?;
        let target = format!(
            "SQLite `{}` (tables `{}*`)",
            self.inner.filename.display(),
            self.inner.schema.prefix
        );
        Ok(MigrationReport::between(target, before, after))
    }

    /// The migrations recorded as applied (none before the first).
    async fn applied_migrations(
        &self,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<Vec<Migration>, StoreError> {
        let rows: Result<Vec<(i64, String)>, sqlx::Error> =
            sqlx::query_as(self.inner.schema.applied_migrations.q())
                .fetch_all(&mut *conn)
                .await;
        match rows {
            Ok(rows) => Ok(rows
                .into_iter()
                .map(|(version, description)| Migration {
                    version,
                    description,
                })
                .collect()),
            Err(sqlx::Error::Database(db)) if db.message().contains("no such table") => {
                Ok(Vec::new())
            }
            Err(e) => Err(codec::backend(e)),
        }
    }

    async fn streams_now(
        &self,
        category: Option<&str>,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamInfo>, StoreError> {
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
        let sql = &self.inner.schema.list_streams
            [usize::from(exclusive) * 2 + usize::from(range.before.is_some())];
        let mut query = sqlx::query(sql.q())
            .bind(lower)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Some(before) = range.before.as_deref() {
            query = query.bind(before);
        }
        let rows = query
            .fetch_all(self.readers()?)
            .await
            .map_err(|e| self.read_failed(e))?;
        rows.iter().map(codec::stream_info).collect()
    }

    /// The database file.
    pub fn filename(&self) -> &Path {
        &self.inner.filename
    }

    /// The prefix of the store's table names.
    pub fn table_prefix(&self) -> &str {
        &self.inner.schema.prefix
    }

    async fn load_checkpoint_now(&self, name: &str) -> Result<Option<u64>, StoreError> {
        validate_checkpoint_name(name)?;
        let position: Option<i64> = sqlx::query_scalar(self.inner.schema.load_checkpoint.q())
            .bind(name)
            .fetch_optional(self.readers()?)
            .await
            .map_err(|e| self.read_failed(e))?;
        position.map(|p| stored_position(name, p)).transpose()
    }

    /// Writes a checkpoint on the writer connection, between appends.
    async fn save_checkpoint_now(&self, name: &str, position: u64) -> Result<(), StoreError> {
        let position = validate_checkpoint(name, position)?;
        let mut conn = self.inner.writer.conn().await?;
        sqlx::query(self.inner.schema.save_checkpoint.q())
            .bind(name)
            .bind(position)
            .bind(codec::timestamp(chrono::Utc::now()))
            .execute(&mut *conn)
            .await
            .map_err(codec::backend)?;
        Ok(())
    }

    async fn delete_checkpoint_now(&self, name: &str) -> Result<(), StoreError> {
        validate_checkpoint_name(name)?;
        let mut conn = self.inner.writer.conn().await?;
        sqlx::query(self.inner.schema.delete_checkpoint.q())
            .bind(name)
            .execute(&mut *conn)
            .await
            .map_err(codec::backend)?;
        Ok(())
    }

    async fn checkpoints_now(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(self.inner.schema.list_checkpoints.q())
            .fetch_all(self.readers()?)
            .await
            .map_err(|e| self.read_failed(e))?;
        rows.into_iter()
            .map(|(name, p)| stored_position(&name, p).map(|p| (name, p)))
            .collect()
    }

    /// One statement: the head of the log in its snapshot, and the wanted
    /// events of one scan window, the filter applied by SQLite on the type
    /// and stream columns (unwanted rows are never decoded).
    async fn read_all_filtered_now(
        &self,
        from_position: u64,
        max_count: usize,
        filter: &EventFilter,
    ) -> Result<FilteredPage, StoreError> {
        let from = from_position.max(1);
        if max_count == 0 {
            return Ok(FilteredPage {
                events: Vec::new(),
                next_position: from,
                held_back: false,
            });
        }
        let list = |items: Option<Vec<&str>>| {
            // A list of strings always serialises.
            items.map(|items| serde_json::to_string(&items).expect("strings serialise to JSON"))
        };
        let end = window_end(from, max_count);
        let rows = sqlx::query(self.inner.schema.read_filtered.q())
            .bind(clamp(from))
            .bind(clamp(end))
            .bind(clamp(max_count as u64))
            .bind(list(filter.storable_event_types()))
            .bind(list(filter.storable_categories()))
            .fetch_all(self.readers()?)
            .await
            .map_err(|e| self.read_failed(e))?;
        let head: i64 = match rows.first() {
            Some(row) => row.try_get("head").map_err(codec::backend)?,
            None => 0,
        };
        // The LEFT JOIN's one row of NULLs when nothing matched.
        let matched: Vec<_> = rows
            .iter()
            .filter(|row| {
                row.try_get::<Option<i64>, _>("position")
                    .is_ok_and(|p| p.is_some())
            })
            .collect();
        // Positions are assigned in commit order, so nothing can still appear
        // at or below the head this snapshot saw.
        let safe = end.min(u64::try_from(head).unwrap_or(0));
        page_of(
            from,
            max_count,
            &matched,
            safe,
            |row| {
                row.try_get::<i64, _>("position")
                    .map_or(0, |p| u64::try_from(p).unwrap_or(0))
            },
            |row| codec::event(row),
        )
    }

    async fn read_all_now(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // The good events before a corrupt one come first; the read that
        // starts at the corrupt one reports it.
        let (events, failure) = self.read_all_partial(from_position, max_count).await?;
        match failure {
            Some(e) if events.is_empty() => Err(e),
            _ => Ok(events),
        }
    }

    /// The events before the first undecodable one, and its error.
    async fn read_all_partial(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<(Vec<RecordedEvent>, Option<StoreError>), StoreError> {
        if max_count == 0 {
            return Ok((Vec::new(), None));
        }
        let rows = sqlx::query(self.inner.schema.read_all.q())
            .bind(clamp(from_position))
            .bind(clamp(max_count as u64))
            .fetch_all(self.readers()?)
            .await
            .map_err(|e| self.read_failed(e))?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            match codec::event(row) {
                Ok(e) => events.push(e),
                Err(e) => return Ok((events, Some(e))),
            }
        }
        Ok((events, None))
    }
}

/// The stream locks of one file's store (its path and table prefix): shared
/// by every `SqliteStore` this process opens on it, so that separate `App`s
/// with stores of their own take turns on a hot stream without a system call,
/// and excluding other processes through the file's sidecar lock file.
fn shared_locks(filename: &Path, prefix: &str) -> Arc<SqliteLocks> {
    type Registry = std::collections::HashMap<(PathBuf, String), std::sync::Weak<SqliteLocks>>;
    static REGISTRY: std::sync::Mutex<Option<Registry>> = std::sync::Mutex::new(None);
    // The file exists once opened; a path that cannot be resolved is used as given.
    let path = std::fs::canonicalize(filename).unwrap_or_else(|_| filename.to_owned());
    let mut registry = REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let registry = registry.get_or_insert_with(Default::default);
    registry.retain(|_, locks| locks.strong_count() > 0);
    if let Some(locks) = registry
        .get(&(path.clone(), prefix.to_owned()))
        .and_then(std::sync::Weak::upgrade)
    {
        return locks;
    }
    let locks = Arc::new(SqliteLocks::new(&path, prefix));
    registry.insert((path, prefix.to_owned()), Arc::downgrade(&locks));
    locks
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Appends in one statement that checks `expected` against the stream's
    /// newest version and inserts the events, committed before this returns.
    ///
    /// Appends that arrive while another is being written queue up, and the
    /// next writer takes them all: appends to distinct streams go into one
    /// statement, where each is checked on its own, so a conflict fails only
    /// the append it concerns. Every caller is answered after the commit that
    /// holds its events.
    async fn append_now(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        crate::store::validate_append(stream, &events)?;
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed(&self.inner.filename));
        }
        self.inner.writer.append(stream, expected, events).await
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
        let rows = sqlx::query(self.inner.schema.read_stream.q())
            .bind(stream.as_str())
            .bind(clamp(from_version))
            .bind(clamp(max_count as u64))
            .fetch_all(self.readers()?)
            .await
            .map_err(|e| self.read_failed(e))?;
        rows.iter().map(codec::event).collect()
    }

    async fn stream_version_now(&self, stream: &StreamId) -> Result<Option<u64>, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(self.inner.schema.stream_version.q())
            .bind(stream.as_str())
            .fetch_one(self.readers()?)
            .await
            .map_err(|e| self.read_failed(e))?;
        Ok(version.map(|v| v as u64))
    }

    /// Follows the log. Appends through this store (or its clones) wake the
    /// stream at once; appends by other processes are found by polling every
    /// [`poll_interval`](SqliteStoreBuilder::poll_interval).
    fn subscribe_all_now(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        struct Follow {
            store: SqliteStore,
            watch: LogWatch,
            next: u64,
            buf: VecDeque<RecordedEvent>,
            /// Reported once the events before it are delivered; then the stream ends.
            failure: Option<StoreError>,
        }
        let start = Follow {
            store: self.clone(),
            watch: self.watch_log_now(),
            next: from_position.max(1),
            buf: VecDeque::new(),
            failure: None,
        };
        Box::pin(futures::stream::unfold(Some(start), |state| async move {
            let mut f = state?;
            loop {
                if let Some(e) = f.buf.pop_front() {
                    return Some((Ok(e), Some(f)));
                }
                if let Some(e) = f.failure.take() {
                    return Some((Err(e), None));
                }
                // Anything committed before this mark is visible to the read below;
                // anything after it changes the head and ends the wait.
                f.watch.mark();
                match f.store.read_all_partial(f.next, DEFAULT_READ_BATCH).await {
                    Ok((batch, failure)) if !batch.is_empty() || failure.is_some() => {
                        if let Some(last) = batch.last() {
                            f.next = last.global_position + 1;
                        }
                        f.buf.extend(batch);
                        f.failure = failure;
                    }
                    Ok(_) => {
                        f.watch.changed().await;
                    }
                    Err(e) => return Some((Err(e), None)),
                }
            }
        }))
    }

    /// Woken by the appends of this process's store (and its clones) on
    /// this file; others' are found by polling.
    fn watch_log_now(&self) -> LogWatch {
        LogWatch::new(self.inner.writer.head.subscribe(), self.inner.poll_interval)
    }

    async fn save_snapshot_now(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let bad = |what: &str| {
            StoreError::Config(format!(
                "snapshot of `{}`: {what} out of range",
                snapshot.stream_id
            ))
        };
        let version = i64::try_from(snapshot.stream_version).map_err(|_| bad("stream version"))?;
        let mut conn = self.inner.writer.conn().await?;
        sqlx::query(self.inner.schema.save_snapshot.q())
            .bind(snapshot.stream_id.as_str())
            .bind(version)
            .bind(i64::from(snapshot.snapshot_version))
            .bind(snapshot.state.as_str())
            .bind(codec::timestamp(snapshot.taken_at))
            .execute(&mut *conn)
            .await
            .map_err(codec::backend)?;
        Ok(())
    }

    async fn load_snapshot_now(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(self.inner.schema.load_snapshot.q())
            .bind(stream.as_str())
            .fetch_optional(self.readers()?)
            .await
            .map_err(|e| self.read_failed(e))?;
        row.map(|row| codec::snapshot(stream, &row)).transpose()
    }
}

impl EventStore for SqliteStore {
    /// Appends in one statement that checks `expected` against the stream's
    /// newest version and inserts the events, committed before this returns.
    ///
    /// Appends that arrive while another is being written queue up, and the
    /// next writer takes them all: appends to distinct streams go into one
    /// statement, where each is checked on its own, so a conflict fails only
    /// the append it concerns. Every caller is answered after the commit that
    /// holds its events.
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        Box::pin(self.append_now(stream, expected, events))
    }

    /// Yields to another holder of the stream's lock, in this process
    /// (through any `SqliteStore` of this file) or in another (see
    /// [`lock_stream`](EventStore::lock_stream)); otherwise `append` with the
    /// exact version.
    fn append_after_seen<'a>(
        &'a self,
        stream: &'a StreamId,
        seen: u64,
        _hint: StreamHint,
        held: Option<&'a StreamLock>,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        if self.inner.locks.must_yield(stream, held) {
            let locked = StoreError::StreamLocked {
                stream: stream.clone(),
            };
            return Box::pin(std::future::ready(Err(locked)));
        }
        Box::pin(self.append_now(stream, ExpectedVersion::Exact(seen), events))
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
            self.stream_version_now(stream).await
        })
    }

    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> StoreFuture<'_, Vec<RecordedEvent>> {
        Box::pin(self.read_all_now(from_position, max_count))
    }

    /// Follows the log. Appends through this store (or its clones) wake the
    /// stream at once; appends by other processes are found by polling every
    /// [`poll_interval`](SqliteStoreBuilder::poll_interval).
    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.subscribe_all_now(from_position)
    }

    /// The filter runs in SQLite, over one window of positions per read (see
    /// the trait); the category is compared whole, as the part of the stream
    /// id before its first `-`. A corrupt row the filter does not want by its
    /// type and stream columns is passed over.
    fn read_all_filtered<'a>(
        &'a self,
        from_position: u64,
        max_count: usize,
        filter: &'a EventFilter,
    ) -> StoreFuture<'a, FilteredPage> {
        Box::pin(self.read_all_filtered_now(from_position, max_count, filter))
    }

    /// Woken at once by appends through this store (or its clones); appends
    /// by other processes are found by polling every
    /// [`poll_interval`](SqliteStoreBuilder::poll_interval).
    fn watch_log(&self) -> LogWatch {
        self.watch_log_now()
    }

    fn head_position(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let head: i64 = sqlx::query_scalar(self.inner.schema.head_position.q())
                .fetch_one(self.readers()?)
                .await
                .map_err(|e| self.read_failed(e))?;
            Ok(u64::try_from(head).unwrap_or(0))
        })
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            snapshot.stream_id.validate()?;
            self.save_snapshot_now(snapshot).await
        })
    }

    fn load_snapshot<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<Snapshot>> {
        Box::pin(async move {
            stream.validate()?;
            self.load_snapshot_now(stream).await
        })
    }

    /// In the table `{prefix}checkpoints` of the store's file.
    fn load_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<u64>> {
        Box::pin(self.load_checkpoint_now(name))
    }

    /// Written on the writer connection, between appends.
    fn save_checkpoint<'a>(&'a self, name: &'a str, position: u64) -> StoreFuture<'a, ()> {
        Box::pin(self.save_checkpoint_now(name, position))
    }

    fn delete_checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.delete_checkpoint_now(name))
    }

    fn checkpoints(&self) -> StoreFuture<'_, Vec<(String, u64)>> {
        Box::pin(self.checkpoints_now())
    }

    /// Excludes every other locker of the stream: in this process (through
    /// any `SqliteStore` of this file), and, on Linux, in other processes.
    ///
    /// A locker first waits for the stream among this process's lockers, in
    /// turn and without a system call; then it takes an open-file-description
    /// lock (`F_OFD_SETLK`) on one byte of `<database>-locks` next to the
    /// database file, trying again after a short, jittered pause (at most
    /// 16 ms) while another process holds it, without blocking a tokio
    /// worker. Dropping the lock closes that file description, which releases
    /// the byte; the kernel releases it too when the holding process dies, so
    /// a killed holder (say, of an event handler's turn) is replaced within
    /// milliseconds. An append without the lock looks (`F_OFD_GETLK`, one
    /// system call) whether any process holds the stream's byte, and yields
    /// if so.
    ///
    /// Streams hash (with the table prefix) to 65,536 bytes, so two streams
    /// may share one: then they only wait for each other. The lock decides
    /// whose turn it is, never what is recorded (the expected version does),
    /// so a collision costs waiting, never correctness.
    ///
    /// Fails with [`StoreError::Unavailable`] when the lock file cannot be
    /// opened or locked (a read-only directory). On systems other than Linux
    /// the lock excludes lockers in this process only.
    fn lock_stream<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, StreamLock> {
        Box::pin(async move {
            stream.validate()?;
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(closed(&self.inner.filename));
            }
            self.inner.locks.lock(stream).await
        })
    }

    /// Through the primary key of `{prefix}streams`, in SQLite's `BINARY`
    /// order (byte-wise).
    fn streams<'a>(
        &'a self,
        category: Option<&'a str>,
        after: Option<&'a StreamId>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<StreamInfo>> {
        Box::pin(self.streams_now(category, after, limit))
    }

    /// [`SqliteStore::migrate`].
    fn migrate(&self) -> StoreFuture<'_, MigrationReport> {
        Box::pin(SqliteStore::migrate(self))
    }

    /// [`SqliteStore::close`]: folds the WAL into the database file and
    /// closes the connections.
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::close(self))
    }
}

impl SqliteStore {
    /// Runs `projection` inside the transaction of every append from now
    /// on, so its read model (tables in this database) commits with the
    /// events or not at all: an append whose projection fails is rolled back
    /// and fails with [`StoreError::Projection`], and appends written together
    /// with it are unaffected.
    ///
    /// The first time a projection of this name is added to the database,
    /// it projects the events already stored first, in one transaction
    /// during which appends wait; it then records itself as live in
    /// `annals_projection_checkpoints` (as `inline:<name>`), so adding it
    /// again (the next start) projects nothing. Returns how many stored
    /// events it projected. Every process that appends to this database must
    /// add the same inline projections: an append made without one is not
    /// projected into it.
    ///
    /// Inline projections suit small read models that a command's caller
    /// must see at once (a uniqueness table, a balance); the append waits for
    /// them. Larger ones belong in a transactional
    /// [`Projection`](crate::projection::Projection) run by the App, after
    /// the commit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use annals::handler::HandlerFuture;
    /// use annals::projection::Projection;
    /// use annals::sqlite::SqliteStore;
    /// use annals::{EventStore, ExpectedVersion, NewEvent, Payload, RecordedEvent, StreamId};
    ///
    /// struct Counts;
    ///
    /// impl Projection<sqlx::Sqlite> for Counts {
    ///     const NAME: &'static str = "counts";
    ///     const INTEREST: &'static [&'static [annals::aggregate::EventType]] =
    ///         &[&[annals::aggregate::EventType { name: "Tipped", version: 1 }]];
    ///
    ///     fn project<'a>(&'a self, tx: &'a mut sqlx::SqliteConnection, event: &'a RecordedEvent) -> HandlerFuture<'a> {
    ///         Box::pin(async move {
    ///             sqlx::query("INSERT INTO counts (stream, n) VALUES (?1, 1) \
    ///                          ON CONFLICT (stream) DO UPDATE SET n = n + 1")
    ///                 .bind(event.stream_id.as_str())
    ///                 .execute(&mut *tx)
    ///                 .await
    ///                 .map_err(|e| annals::HandlerError::Failed(e.into()))?;
    ///             Ok(())
    ///         })
    ///     }
    /// }
    ///
    /// let dir = std::env::temp_dir().join(format!("annals-doc-{}", uuid::Uuid::now_v7()));
    /// std::fs::create_dir_all(&dir)?;
    /// let store = SqliteStore::open(dir.join("events.db")).await?;
    /// let readers = sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.join("events.db").display())).await?;
    /// sqlx::query("CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    ///     .execute(&readers)
    ///     .await?;
    /// store.add_inline_projection(Counts).await?;
    ///
    /// let tip = NewEvent::new("Tipped", 1, Payload::from_json("{}")?);
    /// store.append(&StreamId::new("Jar-1"), ExpectedVersion::Any, vec![tip]).await?;
    /// // Committed with the event: no waiting for a handler.
    /// let n: i64 = sqlx::query_scalar("SELECT n FROM counts WHERE stream = 'Jar-1'")
    ///     .fetch_one(&readers)
    ///     .await?;
    /// assert_eq!(n, 1);
    /// # readers.close().await;
    /// # store.close().await?;
    /// # std::fs::remove_dir_all(dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn add_inline_projection<P>(&self, projection: P) -> Result<u64, StoreError>
    where
        P: crate::projection::Projection<sqlx::Sqlite>,
    {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed(&self.inner.filename));
        }
        self.inner
            .writer
            .add_inline(crate::projection::inline::wrap(projection))
            .await
    }

    /// Empties the inline projection `name` (its
    /// [`reset`](crate::projection::Projection::reset)) and projects every
    /// stored event into it again, in one transaction during which appends
    /// wait. Returns how many events it projected. Fails with
    /// [`StoreError::Config`] if no inline projection of that name was added
    /// to this store.
    pub async fn rebuild_inline_projection(&self, name: &str) -> Result<u64, StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed(&self.inner.filename));
        }
        self.inner.writer.rebuild_inline(name).await
    }
}
