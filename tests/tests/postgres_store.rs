//! PostgreSQL-only guarantees of the event store: the database rejects changes
//! to recorded events, forced commit races never make a reader skip, and lost
//! connections give typed errors the store recovers from.
//! Server: `ANNALS_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/test).

use annals::postgres::PostgresStore;
use annals::{EventStore, ExpectedVersion, RecordedEvent, StoreError, StreamId};
use annals_tests::conformance::{StoreFactory, event, next_event};
use annals_tests::postgres::{PostgresFactory, Stalls, test_url};
use futures::StreamExt;
use std::time::Duration;

async fn positions<S: EventStore>(store: &S) -> Vec<u64> {
    annals_tests::conformance::read_whole_log(store)
        .await
        .iter()
        .map(|e| e.global_position)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recorded_events_cannot_be_updated_deleted_or_truncated() {
    let store = PostgresFactory.create().await;
    let stream = StreamId::new("Immutable-1");
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event("Kept", 1)])
        .await
        .unwrap();
    let pool = store.pool();
    for sql in [
        "UPDATE events SET payload = '{\"n\": 2}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let err = sqlx::query(sql).execute(pool).await.unwrap_err();
        assert!(
            err.to_string().contains("recorded events are immutable"),
            "`{sql}` must be rejected, got: {err}"
        );
    }
    let read = store.read_stream(&stream, 1, 10).await.unwrap();
    assert_eq!(read[0].payload.to_value(), serde_json::json!({ "n": 1 }));

    // The documented admin escape hatch works, for its transaction only.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL annals.admin = 'on'")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET payload = '{\"n\": \"erased\"}'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let read = store.read_stream(&stream, 1, 10).await.unwrap();
    assert_eq!(
        read[0].payload.to_value(),
        serde_json::json!({ "n": "erased" })
    );
    let err = sqlx::query("DELETE FROM events")
        .execute(pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "got {err}");
    PostgresFactory.dispose(store).await;
}

/// A writer that drew a lower position but commits last must hold readers back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reader_waits_for_a_stalled_lower_position() {
    let store = PostgresFactory.create().await;
    let mut stalls = Stalls::install(&store).await;
    let mut follower = store.subscribe_all(1);

    let slow = tokio::spawn({
        let store = store.clone();
        async move {
            let stream = StreamId::new("stall-before-insert-1");
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event("Slow", 1)])
                .await
        }
    });
    stalls.wait_for_stalled(&store, 1).await;
    let fast = store
        .append(
            &StreamId::new("Fast-1"),
            ExpectedVersion::NoStream,
            vec![event("Fast", 2)],
        )
        .await
        .unwrap();

    // The later writer has committed, the earlier one has not: nothing is readable.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(positions(&store).await, Vec::<u64>::new());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), follower.next())
            .await
            .is_err(),
        "the follower must wait for the stalled writer"
    );

    stalls.release(stalls.before_insert).await;
    let slow = slow.await.unwrap().unwrap();
    assert!(slow.first_position < fast.first_position);
    let first = next_event(&mut follower).await;
    let second = next_event(&mut follower).await;
    assert_eq!(
        (first.global_position, second.global_position),
        (slow.first_position, fast.first_position)
    );
    assert_eq!(
        annals_tests::conformance::log_through(&store, fast.last_position)
            .await
            .len(),
        2
    );
    PostgresFactory.dispose(store).await;
}

/// The race a transaction-id filter alone gets wrong: writer A takes its
/// transaction id first but draws its position last; writer B takes a later id,
/// draws a lower position and stalls; A commits. A's id is below every running
/// transaction, yet B's lower position is still to come: readers must wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reader_waits_when_ids_and_positions_are_ordered_differently() {
    let store = PostgresFactory.create().await;
    let mut stalls = Stalls::install(&store).await;
    let locked = StreamId::new("Locked-1");
    let base = store
        .append(&locked, ExpectedVersion::NoStream, vec![event("Base", 0)])
        .await
        .unwrap();
    annals_tests::conformance::log_through(&store, base.last_position).await;
    let mut follower = store.subscribe_all(base.last_position + 1);

    // Hold A's stream row: A gets its id, then waits before drawing a position.
    let mut holder = annals_tests::postgres::admin_connection().await;
    let mut row_lock = sqlx::Connection::begin(&mut holder).await.unwrap();
    let sql = format!(
        "SELECT 1 FROM \"{}\".streams WHERE stream_id = 'Locked-1' FOR UPDATE",
        store.schema()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *row_lock)
        .await
        .unwrap();
    let early_id = tokio::spawn({
        let store = store.clone();
        let locked = locked.clone();
        async move {
            store
                .append(&locked, ExpectedVersion::Exact(1), vec![event("A", 1)])
                .await
        }
    });
    stalls.wait_for_stalled(&store, 1).await;
    let low_position = tokio::spawn({
        let store = store.clone();
        async move {
            let stream = StreamId::new("stall-before-insert-1");
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event("B", 2)])
                .await
        }
    });
    stalls.wait_for_stalled(&store, 2).await;

    row_lock.commit().await.unwrap();
    let a = early_id.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(positions(&store).await, [base.last_position]);
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(300), follower.next()).await {
        panic!("the follower must wait for the lower position, got {got:?}");
    }

    stalls.release(stalls.before_insert).await;
    let b = low_position.await.unwrap().unwrap();
    assert!(
        b.first_position < a.first_position,
        "B drew the lower position"
    );
    let got: Vec<RecordedEvent> = vec![
        next_event(&mut follower).await,
        next_event(&mut follower).await,
    ];
    assert_eq!(
        got.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        [b.first_position, a.first_position]
    );
    PostgresFactory.dispose(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_give_unavailable_and_the_store_recovers() {
    let store = PostgresFactory.create().await;
    let mut stalls = Stalls::install(&store).await;
    let stalled = tokio::spawn({
        let store = store.clone();
        async move {
            let stream = StreamId::new("stall-before-insert-1");
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event("Lost", 1)])
                .await
        }
    });
    stalls.wait_for_stalled(&store, 1).await;
    assert!(stalls.terminate_connections(&store).await >= 1);
    match stalled.await.unwrap() {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    stalls.release(stalls.before_insert).await;

    // The interrupted append left nothing; the next operations succeed.
    let stream = StreamId::new("stall-before-insert-1");
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
    let done = store
        .append(
            &StreamId::new("After-1"),
            ExpectedVersion::NoStream,
            vec![event("Back", 2)],
        )
        .await
        .unwrap();
    assert_eq!(done.stream_version, 1);

    // A follower survives too: killed idle connections are replaced.
    let mut follower = store.subscribe_all(1);
    assert_eq!(
        next_event(&mut follower).await.global_position,
        done.first_position
    );
    stalls.terminate_connections(&store).await;
    let later = store
        .append(
            &StreamId::new("After-1"),
            ExpectedVersion::Exact(1),
            vec![event("Again", 3)],
        )
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut follower).await.global_position,
        later.first_position
    );
    PostgresFactory.dispose(store).await;
}

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    let result = PostgresStore::builder("postgres://postgres@127.0.0.1:1/test")
        .acquire_timeout(Duration::from_secs(2))
        .connect()
        .await;
    match result {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn schema_names_are_validated() {
    let long = "a".repeat(64);
    for bad in [
        "",
        "Annals",
        "1events",
        "a-b",
        "x\"; DROP SCHEMA public; --",
        "pg_temp",
        long.as_str(),
    ] {
        match PostgresStore::builder(test_url())
            .schema(bad)
            .connect()
            .await
        {
            Err(StoreError::Config(_)) => {}
            other => panic!("schema `{bad}` must be refused, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_explicit() {
    let schema = annals_tests::postgres::fresh_schema();
    let store = PostgresStore::builder(test_url())
        .schema(schema.clone())
        .migrate_on_connect(false)
        .connect()
        .await
        .unwrap();
    let before = store
        .append(
            &StreamId::new("M-1"),
            ExpectedVersion::Any,
            vec![event("Early", 1)],
        )
        .await;
    assert!(before.is_err(), "no tables before migrating");
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store
        .append(
            &StreamId::new("M-1"),
            ExpectedVersion::NoStream,
            vec![event("Late", 1)],
        )
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(applied >= 1);
    let in_schema: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = '_sqlx_migrations')",
    )
    .bind(&schema)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        in_schema,
        "migration bookkeeping lives in the store's schema"
    );
    annals_tests::postgres::drop_schema(&store).await;
}
