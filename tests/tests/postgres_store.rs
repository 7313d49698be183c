//! PostgreSQL-only guarantees of the event store: the database rejects changes
//! to recorded events, forced commit races never make a reader skip, and lost
//! connections give typed errors the store recovers from.
//! Server: `ANNALS_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/test).

use annals::postgres::{ConnectError, PostgresStore};
use annals::{
    EventFilter, EventStore, ExpectedVersion, RecordedEvent, StoreError, StreamId, WakeCause,
};
use annals_tests::conformance::{StoreFactory, event, next_event, read_filtered_log};
use annals_tests::postgres::{
    PostgresFactory, Relay, Stalls, admin_connection, application_name, test_url,
};
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

/// A filtered reader keeps the global log's horizon: while a writer that drew
/// a lower position has not committed, it returns nothing after it and its
/// `next_position` does not pass it, whether that event turns out to be wanted
/// or not; once it commits, the reader gets it in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filtered_reads_never_pass_a_stalled_lower_position() {
    let store = PostgresFactory.create().await;
    let mut stalls = Stalls::install(&store).await;
    let slow = tokio::spawn({
        let store = store.clone();
        async move {
            let stream = StreamId::new("stall-before-insert-1");
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event("Wanted", 1)])
                .await
        }
    });
    stalls.wait_for_stalled(&store, 1).await;
    // Later writers commit first: unwanted events, then a wanted one.
    let noise = (0..5).map(|n| event("Unwanted", n)).collect();
    store
        .append(&StreamId::new("Fast-1"), ExpectedVersion::NoStream, noise)
        .await
        .unwrap();
    let fast = store
        .append(
            &StreamId::new("Fast-2"),
            ExpectedVersion::NoStream,
            vec![event("Wanted", 2)],
        )
        .await
        .unwrap();
    let wanted = EventFilter::all().event_types(["Wanted"]);
    // The stalled event is not in this category: its position holds readers back all the same.
    let fast_only = EventFilter::all().categories(["Fast"]);
    let filters = [wanted.clone(), fast_only.clone(), EventFilter::all()];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut reached = Vec::new();
    for filter in &filters {
        for from in [1, 2] {
            let page = store.read_all_filtered(from, 100, filter).await.unwrap();
            assert!(
                page.events.is_empty(),
                "{filter:?} from {from}: read past a stalled writer: {:?}",
                page.events
            );
            reached.push((filter.clone(), from, page.next_position));
        }
    }

    stalls.release(stalls.before_insert).await;
    let slow = slow.await.unwrap().unwrap();
    assert!(slow.first_position < fast.first_position);
    for (filter, from, next) in reached {
        assert!(
            next <= slow.first_position.max(from),
            "{filter:?}: next_position {next} passed the stalled position {}",
            slow.first_position
        );
    }
    annals_tests::conformance::log_through(&store, fast.last_position).await;
    let (got, _) = read_filtered_log(&store, &wanted, 1).await;
    assert_eq!(
        got.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        [slow.first_position, fast.first_position]
    );
    let (got, end) = read_filtered_log(&store, &fast_only, 100).await;
    assert_eq!(got.len(), 6);
    assert!(end > fast.last_position);
    PostgresFactory.dispose(store).await;
}

/// A `LogWatch` of one store is woken by the `NOTIFY` another store (another
/// process) sends after appending to the same schema, long before its poll
/// interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notify_from_another_store_wakes_a_log_watch() {
    let writer = PostgresFactory.create().await;
    let watcher = PostgresStore::builder(test_url())
        .schema(writer.schema())
        .poll_interval(Duration::from_secs(600))
        .connect()
        .await
        .unwrap();
    let mut watch = watcher.watch_log();
    assert_eq!(watch.poll_interval(), Duration::from_secs(600));
    // Wait until the watcher listens (only it does: the writer never watches).
    let mut admin = admin_connection().await;
    let started = std::time::Instant::now();
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
        )
        .bind(application_name(&watcher))
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if listening > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the watcher never listened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The wake-up it gives itself once listening (for what it may have missed) is behind us.
    tokio::time::sleep(Duration::from_millis(200)).await;
    watch.mark();
    let done = writer
        .append(
            &StreamId::new("Notified-1"),
            ExpectedVersion::NoStream,
            vec![event("Notified", 1)],
        )
        .await
        .unwrap();
    let cause = tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .expect("the other store's NOTIFY wakes the watch within seconds, not 10 minutes");
    assert_eq!(cause, WakeCause::Signal);
    let seen = annals_tests::conformance::log_through(&watcher, done.last_position).await;
    assert_eq!(seen.len(), 1);
    watcher.close().await;
    PostgresFactory.dispose(writer).await;
}

/// The race a transaction-id filter alone gets wrong: writer A takes its
/// transaction id first but draws its position last; writer B takes a later id,
/// draws a lower position and stalls; A commits. A's id is below every running
/// transaction, yet B's lower position is still to come: readers must wait.
///
/// A is written by hand on another connection, following the store's rule for
/// writers (take the transaction id, then draw positions), so that it can
/// pause between the two; B is a real append, stalled before its insert.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reader_waits_when_ids_and_positions_are_ordered_differently() {
    let store = PostgresFactory.create().await;
    let mut stalls = Stalls::install(&store).await;
    let base = store
        .append(
            &StreamId::new("Base-1"),
            ExpectedVersion::NoStream,
            vec![event("Base", 0)],
        )
        .await
        .unwrap();
    annals_tests::conformance::log_through(&store, base.last_position).await;
    let mut follower = store.subscribe_all(base.last_position + 1);

    // A: an early transaction id...
    let mut early = annals_tests::postgres::admin_connection().await;
    let mut a_tx = sqlx::Connection::begin(&mut early).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *a_tx)
        .await
        .unwrap();
    // B: a later id, a lower position, then a stall.
    let low_position = tokio::spawn({
        let store = store.clone();
        async move {
            let stream = StreamId::new("stall-before-insert-1");
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event("B", 2)])
                .await
        }
    });
    stalls.wait_for_stalled(&store, 1).await;
    // ...then A draws its (higher) position and commits.
    let sql = format!(
        "INSERT INTO \"{}\".events (position, stream_id, stream_version, event_id, event_type, \
         event_version, payload) VALUES (nextval('\"{}\".events_position_seq'), 'A-1', 1, \
         gen_random_uuid(), 'A', 1, '{{\"n\": 1}}') RETURNING position",
        store.schema(),
        store.schema()
    );
    let a_position: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *a_tx)
        .await
        .unwrap();
    a_tx.commit().await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(positions(&store).await, [base.last_position]);
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(300), follower.next()).await {
        panic!("the follower must wait for the lower position, got {got:?}");
    }

    stalls.release(stalls.before_insert).await;
    let b = low_position.await.unwrap().unwrap();
    assert!(
        b.first_position < a_position as u64,
        "B drew the lower position"
    );
    let got: Vec<RecordedEvent> = vec![
        next_event(&mut follower).await,
        next_event(&mut follower).await,
    ];
    assert_eq!(
        got.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        [b.first_position, a_position as u64]
    );
    PostgresFactory.dispose(store).await;
}

/// A store in a fresh schema with one append slot: appends that arrive while
/// one is written queue, and are written together.
async fn one_slot_store() -> PostgresStore {
    PostgresStore::builder(test_url())
        .schema(annals_tests::postgres::fresh_schema())
        .max_concurrent_appends(1)
        .connect()
        .await
        .unwrap()
}

/// Appends that arrive while every append slot is busy are written together,
/// several streams in one statement and one commit, and each caller still gets
/// its own result, with its stream's appends in the order they queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_appends_share_commits_and_keep_their_results() {
    const APPENDS: u64 = 40;
    const STREAMS: u64 = 20;
    let store = one_slot_store().await;
    let tasks: Vec<_> = (0..APPENDS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("Shared-{}", i % STREAMS));
                let batch = (0..i % 3 + 1).map(|n| event("Queued", n)).collect();
                let done = store.append(&stream, ExpectedVersion::Any, batch).await;
                (stream, i % 3 + 1, done.expect("append"))
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    for s in 0..STREAMS {
        let stream = StreamId::new(format!("Shared-{s}"));
        let read = store.read_stream(&stream, 1, 100).await.unwrap();
        let mut mine: Vec<_> = results.iter().filter(|r| r.0 == stream).collect();
        mine.sort_by_key(|r| r.2.stream_version);
        assert_eq!(read.len() as u64, mine.iter().map(|r| r.1).sum::<u64>());
        let mut at = 0;
        for (_, n, done) in mine {
            let part = &read[at..at + *n as usize];
            at += *n as usize;
            assert_eq!(part[0].global_position, done.first_position);
            assert_eq!(part.last().unwrap().global_position, done.last_position);
            assert_eq!(part.last().unwrap().stream_version, done.stream_version);
        }
        assert!(
            read.windows(2)
                .all(|w| w[0].global_position < w[1].global_position),
            "a stream's events are in global order"
        );
    }
    let commits: i64 = sqlx::query_scalar("SELECT count(DISTINCT transaction_id) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        commits < APPENDS as i64,
        "{APPENDS} appends through one slot took {commits} commits: none were shared"
    );
    let streams: i64 = sqlx::query_scalar("SELECT count(*) FROM streams")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(streams, STREAMS as i64, "one streams row per stream");
    annals_tests::postgres::drop_schema(&store).await;
}

/// The conformance check for bad appends among good ones, on a store with one
/// append slot, so that the appends are written in shared statements: a
/// refused expectation fails alone inside one, a duplicate id fails the
/// statement, which is then halved until the culprit is alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_appends_in_shared_commits_fail_alone() {
    let store = one_slot_store().await;
    annals_tests::conformance::concurrent_appends_fail_alone(&PostgresFactory, &store).await;
    // The concurrent appends are the ones past version 1, 21 of them succeeded.
    let (commits, appends): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT transaction_id), count(DISTINCT stream_id) \
         FROM events WHERE stream_version > 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(appends, 21);
    assert!(
        commits < appends,
        "no statement carried two appends ({commits} commits)"
    );
    annals_tests::postgres::drop_schema(&store).await;
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

/// After `close`, appends (on the writer's own connections), reads (on the
/// pool) and locks (on theirs) all fail with `Closed`, naming the store, not
/// `Unavailable` (retrying does not help); nothing is written.
#[tokio::test]
async fn a_closed_store_refuses_work_with_closed() {
    let store = PostgresFactory.create().await;
    let stream = StreamId::new("Closed-1");
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event("Before", 1)])
        .await
        .unwrap();
    store.close().await;
    let appended = store
        .append(&stream, ExpectedVersion::Exact(1), vec![event("After", 2)])
        .await
        .map(|_| ());
    let read = store.read_stream(&stream, 1, 10).await.map(|_| ());
    let locked = store.lock_stream(&stream).await.map(|_| ());
    for (what, result) in [("append", appended), ("read", read), ("lock", locked)] {
        match result {
            Err(StoreError::Closed { store: named }) => assert_eq!(
                named,
                format!("PostgreSQL schema `{}`", store.schema()),
                "{what}"
            ),
            other => panic!("{what}: expected Closed, got {other:?}"),
        }
    }
    let reopened = PostgresStore::builder(test_url())
        .schema(store.schema())
        .connect()
        .await
        .unwrap();
    assert_eq!(reopened.stream_version(&stream).await.unwrap(), Some(1));
    annals_tests::postgres::drop_schema(&reopened).await;
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

/// A column the schema declares `NOT NULL` that a hand-edited row nulls out
/// (after dropping the constraint) is reported as NULL, naming the row, and
/// never read as a default (a version 0, an empty payload).
#[tokio::test]
async fn null_columns_are_reported_as_null() {
    let store = PostgresFactory.create().await;
    let pool = store.pool();
    let columns = [
        "stream_id",
        "stream_version",
        "event_id",
        "event_type",
        "event_version",
        "payload",
        "metadata",
        "recorded_at",
    ];
    for column in columns {
        let sql = format!("ALTER TABLE events ALTER COLUMN {column} DROP NOT NULL");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap();
    }
    let mut positions = Vec::new();
    for column in columns {
        let stream = format!("Null-{column}");
        // Version 2: the streams trigger (version 1) would refuse a NULL stream id.
        let values = [
            ("stream_id", "$1"),
            ("stream_version", "2"),
            ("event_id", "gen_random_uuid()"),
            ("event_type", "'Edited'"),
            ("event_version", "1"),
            ("payload", "'{}'"),
            ("metadata", "'{}'"),
            ("recorded_at", "now()"),
        ]
        .map(|(c, v)| match (c == column, c) {
            (false, _) => v,
            // Still uses the bound parameter.
            (true, "stream_id") => "NULLIF($1, $1)",
            (true, _) => "NULL",
        })
        .join(", ");
        let sql = format!(
            "INSERT INTO events (stream_id, stream_version, event_id, event_type, \
             event_version, payload, metadata, recorded_at) VALUES ({values}) RETURNING position"
        );
        let position: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(&stream)
            .fetch_one(pool)
            .await
            .unwrap();
        positions.push(position as u64);
    }
    for (column, position) in columns.iter().zip(positions) {
        let expected = format!("column `{column}` is NULL");
        let err = first_error_at(&store, position).await;
        match &err {
            StoreError::Corrupt {
                position: at,
                version,
                reason,
                ..
            } => {
                assert_eq!(*at, Some(position), "{column}: names the row");
                assert!(reason.starts_with(&expected), "{column}: {err}");
                let stream_version_known = *column != "stream_version" && *column != "stream_id";
                let read_version = stream_version_known.then_some(2);
                assert_eq!(*version, read_version, "{column}");
            }
            other => panic!("{column}: expected Corrupt, got {other:?}"),
        }
        if *column != "stream_version" && *column != "stream_id" {
            let stream = StreamId::new(format!("Null-{column}"));
            match store.read_stream(&stream, 1, 10).await {
                Err(StoreError::Corrupt { reason, .. }) => {
                    assert!(reason.starts_with(&expected), "{column}: {reason}")
                }
                other => panic!("{column}: expected Corrupt from read_stream, got {other:?}"),
            }
        }
    }

    // The same for snapshots.
    let stream = StreamId::new("NullSnapshot-1");
    for column in ["stream_version", "snapshot_version", "state", "taken_at"] {
        let sql = format!(
            "ALTER TABLE snapshots ALTER COLUMN {column} DROP NOT NULL;
             DELETE FROM snapshots;
             INSERT INTO snapshots (stream_id, stream_version, snapshot_version, state, taken_at)
             VALUES ('{stream}', 1, 1, '{{}}', now());
             UPDATE snapshots SET {column} = NULL;"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap();
        match store.load_snapshot(&stream).await {
            Err(StoreError::Corrupt { reason, .. }) => assert_eq!(
                reason,
                format!("snapshot: column `{column}` is NULL"),
                "{column}"
            ),
            other => panic!("snapshot {column}: expected Corrupt, got {other:?}"),
        }
    }
    PostgresFactory.dispose(store).await;
}

/// The error `read_all` gives from `position`, once the log has settled there.
async fn first_error_at(store: &PostgresStore, position: u64) -> StoreError {
    let started = std::time::Instant::now();
    loop {
        match store.read_all(position, 1).await {
            Err(e) => return e,
            Ok(events) if events.is_empty() => {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "position {position} never settled"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(events) => panic!("position {position} must not decode: {events:?}"),
        }
    }
}

/// Each error of `error`'s chain says something its source does not: no
/// message repeats the one below it.
fn assert_says_each_thing_once(error: &(dyn std::error::Error + 'static)) {
    let mut current = Some(error);
    while let Some(e) = current {
        let source = e.source();
        if let Some(source) = source {
            let (outer, inner) = (e.to_string(), source.to_string());
            assert!(
                !outer.contains(&inner),
                "`{outer}` repeats its source `{inner}`"
            );
        }
        current = source;
    }
}

/// The whole chain of `error`, one message per line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        out.push_str(&format!("\n  caused by: {e}"));
        current = e.source();
    }
    out
}

/// The connect error at the bottom of `error`'s chain, and its own source.
fn connect_error(error: &StoreError) -> (&ConnectError, &(dyn std::error::Error + 'static)) {
    let mut current = std::error::Error::source(error);
    while let Some(e) = current {
        if let Some(connect) = e.downcast_ref::<ConnectError>() {
            let cause = std::error::Error::source(connect).expect("a connect error has a cause");
            return (connect, cause);
        }
        current = e.source();
    }
    panic!("no ConnectError in {}", chain(error));
}

/// A free port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A wrong port says at once what failed and where (without the password),
/// with the refused connection as its cause, instead of retrying until a
/// pool times out.
#[tokio::test]
async fn a_closed_port_says_where_and_why() {
    let port = closed_port();
    let started = std::time::Instant::now();
    let result =
        PostgresStore::builder(format!("postgres://postgres:s3cret@127.0.0.1:{port}/test"))
            .acquire_timeout(Duration::from_secs(10))
            .connect()
            .await;
    let err = result.expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}: a refused connection is not retried until the timeout",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let (connect, cause) = connect_error(&err);
    assert_eq!(
        connect.to_string(),
        format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")
    );
    assert_eq!(connect.address(), format!("127.0.0.1:{port}"));
    let io = cause
        .downcast_ref::<std::io::Error>()
        .unwrap_or_else(|| panic!("the cause is the I/O error: {}", chain(&err)));
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_says_each_thing_once(&err);
    let everything = format!("{}\n{err:?}", chain(&err));
    assert!(!everything.contains("s3cret"), "{everything}");
}

/// The writer's own connections, and the pool's after it, say the same when
/// the server has gone away since the store connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_away_says_where_and_why() {
    let mut relay = Relay::start();
    let store = PostgresStore::builder(relay.url())
        .schema(annals_tests::postgres::fresh_schema())
        .acquire_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let stream = StreamId::new("Gone-1");
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event("Before", 1)])
        .await
        .unwrap();
    relay.shut_down();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let appended = store
        .append(&stream, ExpectedVersion::Exact(1), vec![event("After", 2)])
        .await;
    let read = store.read_stream(&stream, 1, 10).await;
    for (what, err) in [
        ("append", appended.unwrap_err()),
        ("read", read.unwrap_err()),
    ] {
        assert!(matches!(err, StoreError::Unavailable(_)), "{what}: {err:?}");
        let (connect, cause) = connect_error(&err);
        assert_eq!(connect.address(), relay.address(), "{what}");
        assert_eq!(
            cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{what}: {}",
            chain(&err)
        );
        assert_says_each_thing_once(&err);
    }

    // The schema is reachable directly, and dropped that way.
    let direct = PostgresStore::builder(test_url())
        .schema(store.schema())
        .connect()
        .await
        .unwrap();
    annals_tests::postgres::drop_schema(&direct).await;
}

/// Failures of statements, shared by coalesced appends or not, say what
/// happened once, with the server's message as their cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statement_errors_say_each_thing_once() {
    // No tables: every statement fails.
    let store = PostgresStore::builder(test_url())
        .schema(annals_tests::postgres::fresh_schema())
        .max_concurrent_appends(1)
        .migrate_on_connect(false)
        .connect()
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("Missing-{i}"));
                let events = (0..2).map(|n| event("Lost", n)).collect();
                store.append(&stream, ExpectedVersion::Any, events).await
            })
        })
        .collect();
    let mut shared = 0;
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert_says_each_thing_once(&err);
        let text = chain(&err);
        assert!(text.contains("\"events\" does not exist"), "{text}");
        shared += usize::from(text.contains("other appends failed"));
    }
    assert!(shared > 0, "no statement carried several appends");
    let read = store.read_stream(&StreamId::new("Missing-1"), 1, 10).await;
    let err = read.unwrap_err();
    assert_says_each_thing_once(&err);
    annals_tests::postgres::drop_schema(&store).await;
}

/// Group commit: writers that append again as soon as their previous append
/// returns all share one statement and one commit per round, rather than the
/// quickest of them taking a commit of its own each time while the others
/// wait for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_appending_again_at_once_share_the_next_commit() {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 30;
    let store = one_slot_store().await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("Group-{w}"));
                for n in 0..ROUNDS as u64 {
                    store
                        .append(&stream, ExpectedVersion::Exact(n), vec![event("Again", n)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let commits: i64 = sqlx::query_scalar("SELECT count(DISTINCT transaction_id) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    // About one commit per round (two when the quickest writer of each
    // round is not waited for).
    assert!(
        commits <= (ROUNDS + ROUNDS / 2) as i64,
        "{} appends in {ROUNDS} rounds took {commits} commits",
        WRITERS * ROUNDS
    );
    annals_tests::postgres::drop_schema(&store).await;
}
