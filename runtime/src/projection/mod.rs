//! Transactional projections: read models in a SQL database, each batch of
//! events applied in one transaction together with the projection's
//! checkpoint, so that a crash never loses an event nor applies one twice.
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
//! use annals::projection::Projection;
//! use annals::handler::HandlerFuture;
//! use annals::RecordedEvent;
//! use sqlx::SqliteConnection;
//!
//! #[event]
//! pub enum TipEvent { Tipped { cents: i64 } }
//!
//! pub struct Totals;
//!
//! impl Projection<sqlx::Sqlite> for Totals {
//!     const NAME: &'static str = "totals";
//!     const INTEREST: &'static [&'static [annals::aggregate::EventType]] = &[<TipEvent as Event>::TYPES];
//!
//!     fn project<'a>(&'a self, tx: &'a mut SqliteConnection, event: &'a RecordedEvent) -> HandlerFuture<'a> {
//!         Box::pin(async move {
//!             let TipEvent::Tipped { cents } = annals::HandlerError::decode::<TipEvent>(event)?;
//!             sqlx::query("INSERT INTO totals (jar, cents) VALUES (?1, ?2) \
//!                          ON CONFLICT (jar) DO UPDATE SET cents = cents + excluded.cents")
//!                 .bind(event.stream_id.as_str())
//!                 .bind(cents)
//!                 .execute(&mut *tx)
//!                 .await
//!                 .map_err(|e| annals::HandlerError::Failed(e.into()))?;
//!             Ok(())
//!         })
//!     }
//! }
//! # }
//! ```

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
/// same transaction as its checkpoint.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a projection on `{DB}`",
    note = "implement `annals::projection::Projection<{DB}>` for it, with the connection type of its database"
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
