//! Inline projections: a [`Projection`] run by a SQL store inside the
//! transaction of each append, so the read model and the events commit or
//! fail together.
//!
//! A store with inline projections writes each append in a transaction
//! (several appends written together share one, each behind a savepoint),
//! reads back the events it just inserted and hands every one a projection
//! wants to it, on the same connection. An error from a projection rolls back
//! that append alone, and its caller gets [`StoreError::Projection`]; the
//! appends written with it are unaffected.
//!
//! Adding an inline projection to a database for the first time projects the
//! events already stored, in one transaction while appends wait, and records
//! that it is live (a row `inline:<name>` in `annals_projection_checkpoints`);
//! adding it again later (the next start of the process) finds it live and
//! projects nothing. Every process that appends to the database must add the
//! same inline projections: an append written by a process that does not
//! know a projection is not projected.

use super::{Projection, ProjectionDatabase};
use crate::app::BoxError;
use crate::handler::HandlerFuture;
use crate::store::{RecordedEvent, StoreError};
use futures::future::BoxFuture;
use std::sync::Arc;
use tracing::Instrument as _;

/// How many events a catch-up reads at once.
pub(crate) const CATCH_UP_PAGE: usize = 1_000;

/// A projection as a store runs it inline.
pub(crate) trait Inline<DB: ProjectionDatabase>: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn wants(&self, event_type: &str, event_version: u32) -> bool;
    fn project<'a>(
        &'a self,
        conn: &'a mut DB::Connection,
        event: &'a RecordedEvent,
    ) -> HandlerFuture<'a>;
    fn reset<'a>(&'a self, conn: &'a mut DB::Connection) -> BoxFuture<'a, Result<(), BoxError>>;
}

struct Wrapped<P>(P);

impl<DB: ProjectionDatabase, P: Projection<DB>> Inline<DB> for Wrapped<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn wants(&self, event_type: &str, event_version: u32) -> bool {
        crate::handler::route(P::INTEREST, event_type, event_version).is_some()
    }

    fn project<'a>(
        &'a self,
        conn: &'a mut DB::Connection,
        event: &'a RecordedEvent,
    ) -> HandlerFuture<'a> {
        self.0.project(conn, event)
    }

    fn reset<'a>(&'a self, conn: &'a mut DB::Connection) -> BoxFuture<'a, Result<(), BoxError>> {
        self.0.reset(conn)
    }
}

/// A store's inline projections, in the order they were added.
pub(crate) struct InlineSet<DB: ProjectionDatabase> {
    projections: parking_lot::Mutex<Arc<[Arc<dyn Inline<DB>>]>>,
}

impl<DB: ProjectionDatabase> Default for InlineSet<DB> {
    fn default() -> Self {
        Self {
            projections: parking_lot::Mutex::new(Arc::from(Vec::new())),
        }
    }
}

impl<DB: ProjectionDatabase> InlineSet<DB> {
    /// The projections now (an append projects into these).
    pub(crate) fn current(&self) -> Arc<[Arc<dyn Inline<DB>>]> {
        self.projections.lock().clone()
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<dyn Inline<DB>>> {
        self.current().iter().find(|p| p.name() == name).cloned()
    }

    /// Adds `projection`; refused if one of that name is already there.
    pub(crate) fn add(&self, projection: Arc<dyn Inline<DB>>) -> Result<(), StoreError> {
        let mut projections = self.projections.lock();
        if projections.iter().any(|p| p.name() == projection.name()) {
            return Err(duplicate(projection.name()));
        }
        let mut next = projections.to_vec();
        next.push(projection);
        *projections = next.into();
        Ok(())
    }
}

/// `projection`, ready to add to a store.
pub(crate) fn wrap<DB: ProjectionDatabase, P: Projection<DB>>(
    projection: P,
) -> Arc<dyn Inline<DB>> {
    Arc::new(Wrapped(projection))
}

/// Refuses a second inline projection of one name.
pub(crate) fn duplicate(name: &str) -> StoreError {
    StoreError::Config(format!(
        "an inline projection named `{name}` is already added to this store"
    ))
}

/// Refuses a rebuild of a projection the store does not run.
pub(crate) fn unknown(name: &str) -> StoreError {
    StoreError::Config(format!(
        "no inline projection named `{name}` is added to this store"
    ))
}

/// Runs every projection of `set` on each of `events` that it wants, in
/// order, on `conn` (inside the append's transaction).
pub(crate) async fn project<DB: ProjectionDatabase>(
    set: &[Arc<dyn Inline<DB>>],
    conn: &mut DB::Connection,
    events: &[RecordedEvent],
) -> Result<(), StoreError> {
    for event in events {
        for projection in set {
            if projection.wants(&event.event_type, event.event_version) {
                project_one(projection.as_ref(), conn, event).await?;
            }
        }
    }
    Ok(())
}

async fn project_one<DB: ProjectionDatabase>(
    projection: &dyn Inline<DB>,
    conn: &mut DB::Connection,
    event: &RecordedEvent,
) -> Result<(), StoreError> {
    let span = tracing::debug_span!(
        "annals.inline_projection",
        projection = projection.name(),
        stream = %event.stream_id,
        position = event.global_position,
        correlation_id = ?event.metadata.correlation_id,
    );
    projection
        .project(conn, event)
        .instrument(span)
        .await
        .map_err(|source| StoreError::Projection {
            projection: projection.name(),
            stream: event.stream_id.clone(),
            event_type: event.event_type.to_string(),
            source: Box::new(source),
        })
}

/// Reads the stored log in pages, on the connection of a catch-up.
pub(crate) trait LogPages<DB: ProjectionDatabase>: Sync {
    /// Up to [`CATCH_UP_PAGE`] events from position `from` on, in order.
    fn page<'a>(
        &'a self,
        conn: &'a mut DB::Connection,
        from: u64,
    ) -> BoxFuture<'a, Result<Vec<RecordedEvent>, StoreError>>;

    /// A database error as the store reports it.
    fn error(&self, error: sqlx::Error) -> StoreError;
}

/// The checkpoint row that says an inline projection is live.
fn checkpoint_name(projection: &dyn Inline<impl ProjectionDatabase>) -> String {
    format!("inline:{}", projection.name())
}

/// Brings `projection` up to the end of the stored log on `conn`, which is
/// in a transaction that no append can interleave with: projects every
/// stored event it wants unless it is already live (`rebuild` empties it
/// first and projects them all again). Returns how many events it projected.
pub(crate) async fn catch_up<DB: ProjectionDatabase>(
    projection: &dyn Inline<DB>,
    conn: &mut DB::Connection,
    rebuild: bool,
    log: &impl LogPages<DB>,
) -> Result<u64, StoreError> {
    let name = checkpoint_name(projection);
    DB::create_checkpoints(conn)
        .await
        .map_err(|e| log.error(e))?;
    let live = DB::load_checkpoint(conn, &name)
        .await
        .map_err(|e| log.error(e))?;
    if live.is_some() && !rebuild {
        return Ok(0);
    }
    if rebuild {
        projection
            .reset(conn)
            .await
            .map_err(|source| StoreError::ProjectionReset {
                projection: projection.name(),
                source,
            })?;
    }
    let (mut from, mut projected, mut last) = (1, 0, 0);
    loop {
        let page = log.page(conn, from).await?;
        let Some(end) = page.last().map(|e| e.global_position) else {
            break;
        };
        for event in &page {
            if projection.wants(&event.event_type, event.event_version) {
                project_one(projection, conn, event).await?;
                projected += 1;
            }
        }
        last = end;
        from = end + 1;
        if page.len() < CATCH_UP_PAGE {
            break;
        }
    }
    DB::save_checkpoint(conn, &name, None, last)
        .await
        .map_err(|e| log.error(e))?;
    tracing::info!(
        projection = projection.name(),
        projected,
        through = last,
        rebuild,
        "inline projection caught up with the stored events"
    );
    Ok(projected)
}
