//! The SQL each backend needs for projection checkpoints.

use futures::future::BoxFuture;

/// A sqlx database a [`Projection`](super::Projection) can keep its read
/// model and checkpoint in: SQLite (feature `sqlite`) and PostgreSQL
/// (feature `postgres`). Sealed.
pub trait ProjectionDatabase: sqlx::Database + private::Sealed {
    #[doc(hidden)]
    fn create_checkpoints(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    #[doc(hidden)]
    fn load_checkpoint<'a>(
        conn: &'a mut Self::Connection,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, sqlx::Error>>;
    /// Moves the checkpoint to `position` if it is at `expected` (any
    /// position when `None`, or when there is no checkpoint yet); `false`
    /// when another runner moved it.
    #[doc(hidden)]
    fn save_checkpoint<'a>(
        conn: &'a mut Self::Connection,
        name: &'a str,
        expected: Option<u64>,
        position: u64,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>>;
    /// Creates the idempotent consumers' table (`annals_consumed`) if it
    /// is missing.
    #[doc(hidden)]
    fn create_consumed(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    /// Records that `consumer` took event `event_id`; `false` if it had
    /// already (a redelivery), writing nothing.
    #[doc(hidden)]
    fn claim_event<'a>(
        conn: &'a mut Self::Connection,
        consumer: &'a str,
        event_id: uuid::Uuid,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>>;
}

mod private {
    pub trait Sealed {}
}

/// Positions are stored as signed 64-bit integers.
fn to_i64(position: u64) -> Result<i64, sqlx::Error> {
    i64::try_from(position).map_err(|_| {
        sqlx::Error::Protocol(format!("checkpoint position {position} is out of range"))
    })
}

fn to_u64(position: i64) -> Result<u64, sqlx::Error> {
    u64::try_from(position).map_err(|_| {
        sqlx::Error::Protocol(format!("stored checkpoint position {position} is negative"))
    })
}

#[cfg(feature = "sqlite")]
impl private::Sealed for sqlx::Sqlite {}

#[cfg(feature = "sqlite")]
impl ProjectionDatabase for sqlx::Sqlite {
    fn create_checkpoints(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS annals_projection_checkpoints (\
                 name TEXT NOT NULL PRIMARY KEY, \
                 position INTEGER NOT NULL CHECK (position >= 0), \
                 updated_at TEXT NOT NULL) WITHOUT ROWID",
            )
            .execute(conn)
            .await
            .map(drop)
        })
    }

    fn load_checkpoint<'a>(
        conn: &'a mut Self::Connection,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, sqlx::Error>> {
        Box::pin(async move {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT position FROM annals_projection_checkpoints WHERE name = ?1",
            )
            .bind(name)
            .fetch_optional(conn)
            .await?;
            found.map(to_u64).transpose()
        })
    }

    fn save_checkpoint<'a>(
        conn: &'a mut Self::Connection,
        name: &'a str,
        expected: Option<u64>,
        position: u64,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let expected = expected.map(to_i64).transpose()?;
            sqlx::query(
                "INSERT INTO annals_projection_checkpoints (name, position, updated_at) \
                 VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
                 updated_at = excluded.updated_at \
                 WHERE ?3 IS NULL OR annals_projection_checkpoints.position = ?3",
            )
            .bind(name)
            .bind(to_i64(position)?)
            .bind(expected)
            .execute(conn)
            .await
            .map(|done| done.rows_affected() == 1)
        })
    }

    fn create_consumed(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS annals_consumed (\
                 consumer TEXT NOT NULL, \
                 event_id TEXT NOT NULL, \
                 consumed_at TEXT NOT NULL, \
                 PRIMARY KEY (consumer, event_id)) WITHOUT ROWID",
            )
            .execute(conn)
            .await
            .map(drop)
        })
    }

    fn claim_event<'a>(
        conn: &'a mut Self::Connection,
        consumer: &'a str,
        event_id: uuid::Uuid,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO annals_consumed (consumer, event_id, consumed_at) \
                 VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
                 ON CONFLICT (consumer, event_id) DO NOTHING",
            )
            .bind(consumer)
            .bind(event_id.to_string())
            .execute(conn)
            .await
            .map(|done| done.rows_affected() == 1)
        })
    }
}

#[cfg(feature = "postgres")]
impl private::Sealed for sqlx::Postgres {}

#[cfg(feature = "postgres")]
impl ProjectionDatabase for sqlx::Postgres {
    fn create_checkpoints(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        // Two concurrent `CREATE TABLE IF NOT EXISTS` of one table can both
        // pass the check and one then fails on the catalog's unique index:
        // projections starting together on a fresh database would fail (and
        // retry). A transaction-scoped advisory lock on the table's name in
        // the current schema makes the creates take turns; one statement, so
        // it is its own transaction in autocommit and part of the caller's
        // inside one (the inline projections' catch-up).
        Box::pin(async move {
            sqlx::query(
                "DO $$ BEGIN \
                 PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.annals_projection_checkpoints')); \
                 CREATE TABLE IF NOT EXISTS annals_projection_checkpoints (\
                 name text PRIMARY KEY, \
                 position bigint NOT NULL CHECK (position >= 0), \
                 updated_at timestamptz NOT NULL DEFAULT now()); \
                 END $$",
            )
            .execute(conn)
            .await
            .map(drop)
        })
    }

    fn load_checkpoint<'a>(
        conn: &'a mut Self::Connection,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, sqlx::Error>> {
        Box::pin(async move {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT position FROM annals_projection_checkpoints WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(conn)
            .await?;
            found.map(to_u64).transpose()
        })
    }

    fn save_checkpoint<'a>(
        conn: &'a mut Self::Connection,
        name: &'a str,
        expected: Option<u64>,
        position: u64,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let expected = expected.map(to_i64).transpose()?;
            sqlx::query(
                "INSERT INTO annals_projection_checkpoints (name, position, updated_at) \
                 VALUES ($1, $2, now()) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
                 updated_at = excluded.updated_at \
                 WHERE $3::bigint IS NULL OR annals_projection_checkpoints.position = $3",
            )
            .bind(name)
            .bind(to_i64(position)?)
            .bind(expected)
            .execute(conn)
            .await
            .map(|done| done.rows_affected() == 1)
        })
    }

    fn create_consumed(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        // Concurrent creates take turns, as the checkpoints' table's do.
        Box::pin(async move {
            sqlx::query(
                "DO $$ BEGIN \
                 PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.annals_consumed')); \
                 CREATE TABLE IF NOT EXISTS annals_consumed (\
                 consumer text NOT NULL, \
                 event_id uuid NOT NULL, \
                 consumed_at timestamptz NOT NULL DEFAULT now(), \
                 PRIMARY KEY (consumer, event_id)); \
                 END $$",
            )
            .execute(conn)
            .await
            .map(drop)
        })
    }

    fn claim_event<'a>(
        conn: &'a mut Self::Connection,
        consumer: &'a str,
        event_id: uuid::Uuid,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO annals_consumed (consumer, event_id) VALUES ($1, $2) \
                 ON CONFLICT (consumer, event_id) DO NOTHING",
            )
            .bind(consumer)
            .bind(event_id)
            .execute(conn)
            .await
            .map(|done| done.rows_affected() == 1)
        })
    }
}
