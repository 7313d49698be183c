//! The store conformance suite against SQLite, one fresh file per test.

use annals::StreamId;
use annals::sqlite::SqliteStore;
use annals_tests::conformance::StoreFactory;
use sqlx::{Connection, SqliteConnection};
use std::future::Future;
use tempfile::TempDir;

/// Opens each store on a new file in its own temporary directory, removed
/// when the test ends.
struct SqliteFactory {
    dir: TempDir,
}

impl SqliteFactory {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

impl StoreFactory for SqliteFactory {
    type Store = SqliteStore;

    fn create(&self) -> impl Future<Output = Self::Store> + Send {
        let path = self.dir.path().join("events.db");
        async move {
            SqliteStore::open(&path)
                .await
                .expect("open a SQLite store in a temporary directory")
        }
    }

    fn open_again(&self, store: &Self::Store) -> impl Future<Output = Self::Store> + Send {
        let path = store.filename().to_owned();
        let prefix = store.table_prefix().to_owned();
        async move {
            SqliteStore::builder()
                .path(path)
                .table_prefix(prefix)
                .open()
                .await
                .expect("open the same SQLite file again")
        }
    }

    /// Closes the store, so that every check also ends with a close (and
    /// its checkpoint) after whatever it left running.
    async fn dispose(&self, store: Self::Store) {
        store.close().await.expect("close the store");
    }

    fn write_corrupt_event(
        &self,
        store: &Self::Store,
        stream: &StreamId,
    ) -> impl Future<Output = bool> + Send {
        let url = format!("sqlite://{}", store.filename().display());
        let table = format!("{}events", store.table_prefix());
        let stream = stream.clone();
        async move {
            let mut conn = SqliteConnection::connect(&url)
                .await
                .expect("a second connection to the file");
            let insert = format!(
                "INSERT INTO {table} (stream_id, stream_version, event_id, event_type, event_version, payload, \
                 recorded_at) VALUES (?1, 1, ?2, 'Counted', 1, '{{\"n\": ', '2025-01-01T00:00:00Z')"
            );
            sqlx::query(sqlx::AssertSqlSafe(insert))
                .bind(stream.as_str())
                .bind(uuid::Uuid::now_v7().to_string())
                .execute(&mut conn)
                .await
                .expect("write a row with a truncated JSON payload");
            true
        }
    }
}

annals_tests::conformance_suite!(SqliteFactory::new());
