//! Transactional projections: read models in a SQL database, each batch of
//! events applied in one transaction together with the projection's
//! checkpoint, so that a crash never loses an event nor applies one twice.
//!
//! `#[projection]` on an `impl` block writes [`Projection<DB>`](Projection)
//! for it: one method per event type it wants (an `#[event]` enum of any
//! aggregate), each taking the connection of the batch's transaction, the
//! event and optionally its [`EventMeta`](crate::EventMeta), and an optional
//! `#[reset]` function that empties the read model before a rebuild. The
//! connection type decides the database: `&mut sqlx::SqliteConnection` makes
//! a `Projection<Sqlite>`, `&mut sqlx::PgConnection` a `Projection<Postgres>`.
//!
//! A projection runs like an event handler (from its checkpoint through the
//! stored events it wants, then live; one runner among Apps sharing a
//! PostgreSQL store), but it receives the open transaction with each event,
//! and its checkpoint lives in its own database, in the table
//! `annals_projection_checkpoints`, written in that same transaction. Its
//! database may be the store's or a separate read database: the App's store
//! stays whatever store it is (one dispatch path), and only the projection
//! is tied to a backend, through its sqlx pool.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # mod example {
//! use annals::prelude::*;
//! use sqlx::SqliteConnection;
//! use std::time::Duration;
//!
//! #[event]
//! pub enum JarEvent { Tipped { cents: i64 } }
//!
//! #[command(aggregate = Jar)]
//! pub struct Tip { #[id] pub jar: String, pub cents: i64 }
//!
//! #[aggregate(events = JarEvent)]
//! #[derive(Default)]
//! pub struct Jar;
//!
//! #[aggregate]
//! impl Jar {
//!     #[handle]
//!     fn tip(&self, tip: Tip) -> JarEvent { JarEvent::Tipped { cents: tip.cents } }
//!     #[apply]
//!     fn apply(&mut self, _: &JarEvent) {}
//! }
//!
//! /// Keeps `totals`: the cents in each jar.
//! pub struct Totals;
//!
//! #[projection(name = "totals")]
//! impl Totals {
//!     async fn on_jar(
//!         &self,
//!         tx: &mut SqliteConnection,
//!         event: &JarEvent,
//!         meta: &EventMeta<'_>,
//!     ) -> Result<(), sqlx::Error> {
//!         let JarEvent::Tipped { cents } = event;
//!         sqlx::query("INSERT INTO totals (jar, cents) VALUES (?1, ?2) \
//!                      ON CONFLICT (jar) DO UPDATE SET cents = cents + excluded.cents")
//!             .bind(meta.aggregate_id())
//!             .bind(cents)
//!             .execute(&mut *tx)
//!             .await?;
//!         Ok(())
//!     }
//!
//!     #[reset]
//!     async fn clear(&self, tx: &mut SqliteConnection) -> Result<(), sqlx::Error> {
//!         sqlx::query("DELETE FROM totals").execute(&mut *tx).await?;
//!         Ok(())
//!     }
//! }
//!
//! # pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // One connection: every connection to `:memory:` is a database of its own.
//! let pool = sqlx::sqlite::SqlitePoolOptions::new()
//!     .max_connections(1)
//!     .connect("sqlite::memory:")
//!     .await?;
//! sqlx::query("CREATE TABLE totals (jar TEXT PRIMARY KEY, cents INTEGER NOT NULL)")
//!     .execute(&pool)
//!     .await?;
//! let app = App::builder()
//!     .store(MemoryStore::new())
//!     .projection(pool.clone(), Totals)
//!     .build()?;
//! app.dispatch(Tip { jar: "blue".into(), cents: 50 }).await?;
//! let done = app.dispatch(Tip { jar: "blue".into(), cents: 25 }).await?;
//! app.wait_for_handlers(done.positions.unwrap().1, &["totals"], Duration::from_secs(5)).await?;
//! let cents: i64 = sqlx::query_scalar("SELECT cents FROM totals WHERE jar = 'blue'")
//!     .fetch_one(&pool)
//!     .await?;
//! assert_eq!(cents, 75);
//!
//! // A rebuild empties the table with `#[reset]` and replays every event.
//! app.rebuild("totals").await?;
//! app.wait_for_handlers(done.positions.unwrap().1, &["totals"], Duration::from_secs(5)).await?;
//! let cents: i64 = sqlx::query_scalar("SELECT cents FROM totals WHERE jar = 'blue'")
//!     .fetch_one(&pool)
//!     .await?;
//! assert_eq!(cents, 75);
//! # Ok(())
//! # }
//! # }
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> { example::run().await }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```
//!
//! A hand-written `impl Projection<DB>` (decoding events itself) works the
//! same way; the macro writes exactly that impl.

mod database;
pub(crate) mod inline;

pub use database::ProjectionDatabase;

use crate::aggregate::EventType;
use crate::app::BoxError;
use crate::handler::{HandlerError, HandlerFuture};
use crate::store::RecordedEvent;
use futures::future::BoxFuture;
use std::sync::Arc;

/// A read model kept in a SQL database of backend `DB`, updated in the
/// same transaction as its checkpoint. Written by `#[projection]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a projection on `{DB}`",
    note = "mark its impl block with `#[annals::projection]`, its methods taking the connection of that database (`tx: &mut sqlx::SqliteConnection` or `tx: &mut sqlx::PgConnection`), or implement `annals::projection::Projection<{DB}>` by hand"
)]
pub trait Projection<DB: ProjectionDatabase>: Send + Sync + 'static {
    /// The projection's durable name: its checkpoint's key.
    const NAME: &'static str;

    /// The event types it projects: the [`Event::TYPES`](crate::Event::TYPES)
    /// of each event type it takes.
    const INTEREST: &'static [&'static [EventType]];

    /// Applies one recorded event (one whose type is in
    /// [`INTEREST`](Self::INTEREST)) inside the batch's transaction. An error
    /// rolls the batch back; the events before this one are then applied
    /// again in a transaction of their own, and this one is tried as the
    /// error policy says.
    fn project<'a>(
        &'a self,
        tx: &'a mut DB::Connection,
        event: &'a RecordedEvent,
    ) -> HandlerFuture<'a>;

    /// Empties the read model before a rebuild from position 0 (in the
    /// transaction that also resets the checkpoint). The default does
    /// nothing.
    fn reset<'a>(&'a self, tx: &'a mut DB::Connection) -> BoxFuture<'a, Result<(), BoxError>> {
        let _ = tx;
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Why a batch was not applied.
pub(crate) enum BatchError {
    /// The event at this index of the batch failed; nothing was written.
    Event(usize, HandlerError),
    /// The database failed (begin, checkpoint or commit); nothing was written.
    Database(sqlx::Error),
    /// The checkpoint was not where this runner left it: another runner
    /// (another process that took the turn meanwhile) moved it. Nothing was
    /// written.
    Moved,
}

impl BatchError {
    /// As an error for status and logs.
    pub(crate) fn into_error(self) -> BoxError {
        match self {
            Self::Event(_, e) => e.into(),
            Self::Database(e) => e.into(),
            Self::Moved => "another runner moved the projection's checkpoint".into(),
        }
    }
}

/// A projection bound to its pool, behind one type.
pub(crate) trait DynProjection: Send + Sync + 'static {
    /// Creates the checkpoint table if it is missing.
    fn prepare(&self) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    fn load_checkpoint<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, sqlx::Error>>;
    /// Applies `events` and moves the checkpoint from `from` to
    /// `checkpoint`, in one transaction; [`BatchError::Moved`] if the
    /// checkpoint is not at `from`.
    fn apply<'a>(
        &'a self,
        name: &'a str,
        events: &'a [RecordedEvent],
        from: u64,
        checkpoint: u64,
    ) -> BoxFuture<'a, Result<(), BatchError>>;
    /// Empties the read model and sets the checkpoint to 0, in one
    /// transaction.
    fn reset<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), BatchError>>;
}

pub(crate) struct Bound<DB: ProjectionDatabase, P> {
    pub(crate) pool: sqlx::Pool<DB>,
    pub(crate) projection: Arc<P>,
}

impl<DB: ProjectionDatabase, P: Projection<DB>> DynProjection for Bound<DB, P>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    fn prepare(&self) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            DB::create_checkpoints(&mut conn).await
        })
    }

    fn load_checkpoint<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, sqlx::Error>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            DB::load_checkpoint(&mut conn, name).await
        })
    }

    fn apply<'a>(
        &'a self,
        name: &'a str,
        events: &'a [RecordedEvent],
        from: u64,
        checkpoint: u64,
    ) -> BoxFuture<'a, Result<(), BatchError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await.map_err(BatchError::Database)?;
            for (index, event) in events.iter().enumerate() {
                if let Err(error) = self.projection.project(&mut *tx, event).await {
                    // Dropping the transaction rolls it back.
                    return Err(BatchError::Event(index, error));
                }
            }
            // Checked last, in the same transaction: a runner that lost its
            // turn can never commit what another already applied.
            let moved = !DB::save_checkpoint(&mut tx, name, Some(from), checkpoint)
                .await
                .map_err(BatchError::Database)?;
            if moved {
                return Err(BatchError::Moved);
            }
            tx.commit().await.map_err(BatchError::Database)
        })
    }

    fn reset<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), BatchError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await.map_err(BatchError::Database)?;
            if let Err(error) = self.projection.reset(&mut *tx).await {
                return Err(BatchError::Event(0, HandlerError::Failed(error)));
            }
            DB::save_checkpoint(&mut tx, name, None, 0)
                .await
                .map_err(BatchError::Database)?;
            tx.commit().await.map_err(BatchError::Database)
        })
    }
}
