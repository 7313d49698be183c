//! The read model of the current documents: the table `annals_documents`,
//! kept by a transactional projection on SQLite or PostgreSQL (the same SQL
//! on both: documents are stored as JSON text).

use super::DocumentEvent;
use crate::app::AppBuilder;
use crate::handler::EventMeta;
use serde_json::Value;

/// The name of the documents' projection (its checkpoint's and turn's key).
pub const DOCUMENTS_PROJECTION: &str = "annals-documents";

/// Keeps `annals_documents`: one row per live document (kind, id, version,
/// the document as JSON text), for every kind. A deleted document's row
/// is removed. Register it with [`DocumentReadModel::register`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentsProjection;

/// One document as the read model has it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    /// The document.
    pub document: Value,
    /// Its stream's version after the write that made it (the `ETag`).
    pub version: u64,
}

/// Why the projection could not take an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentProjectionError {
    /// The database refused a statement.
    #[error("the documents' database failed")]
    Database(#[from] sqlx::Error),
    /// A stored row is not JSON.
    #[error("the stored `{kind}` document `{id}` is not JSON")]
    Corrupt {
        /// The kind.
        kind: String,
        /// The id.
        id: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A patch for a document the read model does not have, or one that no
    /// longer applies to its row.
    #[error(
        "the patch of `{kind}` document `{id}` at version {version} does not apply to the read model's row"
    )]
    Diverged {
        /// The kind.
        kind: String,
        /// The id.
        id: String,
        /// The event's version.
        version: u64,
    },
    /// A version does not fit a signed 64-bit column.
    #[error("version {0} does not fit a BIGINT column")]
    OutOfRange(u64),
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS annals_documents (\
     kind TEXT NOT NULL, id TEXT NOT NULL, version BIGINT NOT NULL, document TEXT NOT NULL, \
     PRIMARY KEY (kind, id))";
const UPSERT: &str = "INSERT INTO annals_documents (kind, id, version, document) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (kind, id) DO UPDATE \
     SET version = excluded.version, document = excluded.document";
const SELECT: &str = "SELECT version, document FROM annals_documents WHERE kind = $1 AND id = $2";
const CLAIM: &str = "UPDATE annals_documents SET version = $3 WHERE kind = $1 AND id = $2 \
     RETURNING version, document";
const DELETE: &str = "DELETE FROM annals_documents WHERE kind = $1 AND id = $2";

fn bigint(n: u64) -> Result<i64, DocumentProjectionError> {
    i64::try_from(n).map_err(|_| DocumentProjectionError::OutOfRange(n))
}

fn stored(
    kind: &str,
    id: &str,
    row: Option<(i64, String)>,
) -> Result<Option<StoredDocument>, DocumentProjectionError> {
    let Some((version, text)) = row else {
        return Ok(None);
    };
    let document =
        serde_json::from_str(&text).map_err(|source| DocumentProjectionError::Corrupt {
            kind: kind.to_owned(),
            id: id.to_owned(),
            source,
        })?;
    Ok(Some(StoredDocument {
        document,
        version: u64::try_from(version).unwrap_or_default(),
    }))
}

/// The projection and queries on one database; the same SQL on each.
macro_rules! on_database {
    ($conn:ty, $pool:ty, $create:ident, $get:ident, $on_event:ident, $clear:ident) => {
        async fn $create(pool: &$pool) -> Result<(), sqlx::Error> {
            sqlx::query(CREATE_TABLE).execute(pool).await.map(drop)
        }

        async fn $get(
            pool: &$pool,
            kind: &str,
            id: &str,
        ) -> Result<Option<StoredDocument>, DocumentProjectionError> {
            let row: Option<(i64, String)> = sqlx::query_as(SELECT)
                .bind(kind)
                .bind(id)
                .fetch_optional(pool)
                .await?;
            stored(kind, id, row)
        }

        #[crate::projection(name = "annals-documents")]
        impl DocumentsProjection {
            async fn $on_event(
                &self,
                tx: &mut $conn,
                event: &DocumentEvent,
                meta: &EventMeta<'_>,
            ) -> Result<(), DocumentProjectionError> {
                let kind = meta.category().unwrap_or_default();
                let id = meta.aggregate_id().unwrap_or_default();
                let version = meta.stream_version();
                let document = match event {
                    DocumentEvent::DocumentCreated { document } => document.clone(),
                    DocumentEvent::DocumentReplaced { patch }
                    | DocumentEvent::DocumentPatched { patch } => {
                        // A write first: a read that a write follows would
                        // have SQLite upgrade the transaction's lock, which
                        // fails at once (busy) while another writer holds it.
                        let row: Option<(i64, String)> = sqlx::query_as(CLAIM)
                            .bind(kind)
                            .bind(id)
                            .bind(bigint(version)?)
                            .fetch_optional(&mut *tx)
                            .await?;
                        let diverged = || DocumentProjectionError::Diverged {
                            kind: kind.to_owned(),
                            id: id.to_owned(),
                            version,
                        };
                        let mut current = stored(kind, id, row)?.ok_or_else(diverged)?.document;
                        json_patch::patch(&mut current, patch).map_err(|_| diverged())?;
                        current
                    }
                    DocumentEvent::DocumentDeleted => {
                        sqlx::query(DELETE)
                            .bind(kind)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        return Ok(());
                    }
                };
                sqlx::query(UPSERT)
                    .bind(kind)
                    .bind(id)
                    .bind(bigint(version)?)
                    .bind(document.to_string())
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }

            #[reset]
            async fn $clear(&self, tx: &mut $conn) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM annals_documents")
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }
        }
    };
}

#[cfg(feature = "sqlite")]
on_database!(
    sqlx::SqliteConnection,
    sqlx::SqlitePool,
    create_sqlite,
    get_sqlite,
    on_document_sqlite,
    clear_sqlite
);
#[cfg(feature = "postgres")]
on_database!(
    sqlx::PgConnection,
    sqlx::PgPool,
    create_postgres,
    get_postgres,
    on_document_postgres,
    clear_postgres
);

/// Where the current documents are kept and read: a SQLite or PostgreSQL
/// pool (the store's database or another one).
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use annals::document::{DOCUMENTS_PROJECTION, DocumentKind, DocumentReadModel};
/// use annals::prelude::*;
/// use serde_json::json;
///
/// let pool = sqlx::sqlite::SqlitePoolOptions::new()
///     .max_connections(1)
///     .connect("sqlite::memory:")
///     .await?;
/// let documents = DocumentReadModel::Sqlite(pool);
/// let app = documents
///     .register(App::builder().store(MemoryStore::new()))
///     .await?
///     .build()?;
/// let notes = DocumentKind::new("notes")?;
/// let options = DispatchOptions::new().wait_for_handler(DOCUMENTS_PROJECTION);
/// app.dispatch_with(notes.create("n1", json!({"title": "Hi"})), options).await?;
/// let stored = documents.get("notes", "n1").await?.expect("projected before the dispatch returned");
/// assert_eq!((stored.version, stored.document), (1, json!({"title": "Hi"})));
/// app.shutdown().await?;
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DocumentReadModel {
    /// A SQLite database.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

impl DocumentReadModel {
    /// Makes `annals_documents` if it is missing.
    pub async fn create_table(&self) -> Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => create_sqlite(pool).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => create_postgres(pool).await,
        }
    }

    /// Makes the table if it is missing and registers
    /// [`DocumentsProjection`] on this database. A write through
    /// [`Api::documents`](crate::http::Api::documents) answers once the
    /// read model shows it, on any App; an in-process dispatch waits for it
    /// with
    /// [`DispatchOptions::wait_for_handler`](crate::DispatchOptions::wait_for_handler)`(`[`DOCUMENTS_PROJECTION`]`)`.
    /// It is not registered strongly consistent, so the App's other
    /// strongly consistent commands do not wait for it.
    pub async fn register(&self, builder: AppBuilder) -> Result<AppBuilder, sqlx::Error> {
        self.create_table().await?;
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => builder.projection(pool.clone(), DocumentsProjection),
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => builder.projection(pool.clone(), DocumentsProjection),
        })
    }

    /// Document `id` of `kind`, if it exists (not deleted).
    pub async fn get(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<StoredDocument>, DocumentProjectionError> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => get_sqlite(pool, kind, id).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => get_postgres(pool, kind, id).await,
        }
    }
}
