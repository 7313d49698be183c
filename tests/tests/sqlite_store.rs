//! The SQLite store against real files: what the shared conformance suite
//! cannot say because it is specific to a file on disk.

use annals::sqlite::{SqliteStore, Synchronous};
use annals::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Payload, Snapshot, StoreError, StreamId,
};
use futures::StreamExt;
use sqlx::{Connection, Executor, SqliteConnection};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;
use uuid::Uuid;

fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "MoneyDeposited",
        1,
        Payload::from_serialize(&serde_json::json!({ "amount": n })).unwrap(),
    )
}

async fn fresh() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db"))
        .await
        .unwrap();
    (dir, store)
}

async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

/// A generous bound for things that should happen at once; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn events_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested-name.db");
    let stream = StreamId::new("Account-1");
    let metadata = Metadata {
        correlation_id: Some(Uuid::now_v7()),
        causation_id: Some(Uuid::now_v7()),
        custom: BTreeMap::from([("user".to_owned(), serde_json::json!("ada"))]),
    };
    let written = {
        let store = SqliteStore::open(&path).await.unwrap();
        let first = vec![event(1).with_metadata(metadata.clone()), event(2)];
        store
            .append(&stream, ExpectedVersion::NoStream, first)
            .await
            .unwrap();
        store
            .append(&stream, ExpectedVersion::Exact(2), vec![event(3)])
            .await
            .unwrap();
        store.read_stream(&stream, 1, 100).await.unwrap()
    };
    assert_eq!(written.len(), 3);

    let store = SqliteStore::open(&path).await.unwrap();
    let read = store.read_stream(&stream, 1, 100).await.unwrap();
    assert_eq!(
        read, written,
        "a reopened file reads back exactly what was recorded"
    );
    assert_eq!(read[0].metadata, metadata);
    assert_eq!(
        read.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(3));
    // Appending after reopening continues the stream and the global log.
    let next = store
        .append(&stream, ExpectedVersion::Exact(3), vec![event(4)])
        .await
        .unwrap();
    assert_eq!(
        (next.stream_version, next.first_position, next.last_position),
        (4, 4, 4)
    );
}

#[tokio::test]
async fn builder_options_and_url_open_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::builder()
        .path(&path)
        .synchronous(Synchronous::Full)
        .busy_timeout(Duration::from_millis(200))
        .open()
        .await
        .unwrap();
    store
        .append(&"s".into(), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap();
    drop(store);

    let by_url = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(by_url.stream_version(&"s".into()).await.unwrap(), Some(1));

    let mut conn = raw(&path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn table_prefixes_are_validated_and_keep_stores_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    for bad in ["x; DROP TABLE annals_events; --", "1st", "a-b"] {
        let err = SqliteStore::builder()
            .path(&path)
            .table_prefix(bad)
            .open()
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{bad}: {err}");
    }
    let a = SqliteStore::builder()
        .path(&path)
        .table_prefix("a_")
        .open()
        .await
        .unwrap();
    let b = SqliteStore::builder()
        .path(&path)
        .table_prefix("b_")
        .open()
        .await
        .unwrap();
    let stream = StreamId::new("Account-1");
    a.append(&stream, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    b.append(&stream, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    assert_eq!(a.stream_version(&stream).await.unwrap(), Some(1));
    assert_eq!(b.stream_version(&stream).await.unwrap(), Some(2));
    // Migrating again is a no-op.
    a.migrate().await.unwrap();
    assert_eq!(a.read_all(1, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn in_memory_urls_are_refused() {
    let err = SqliteStore::connect("sqlite::memory:").await.unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err}");
}

#[tokio::test]
async fn conflicts_report_the_real_actual_version() {
    let (_dir, store) = fresh().await;
    let s = StreamId::new("Account-1");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    for (expected, actual) in [
        (ExpectedVersion::NoStream, Some(2)),
        (ExpectedVersion::Exact(0), Some(2)),
        (ExpectedVersion::Exact(1), Some(2)),
        (ExpectedVersion::Exact(3), Some(2)),
        (ExpectedVersion::Exact(u64::MAX), Some(2)),
    ] {
        match store.append(&s, expected, vec![event(9)]).await {
            Err(StoreError::WrongExpectedVersion {
                stream,
                expected: e,
                actual: a,
            }) => {
                assert_eq!((stream, e, a), (s.clone(), expected, actual));
            }
            other => panic!("{expected:?}: {other:?}"),
        }
    }
    let missing = StreamId::new("Account-2");
    match store
        .append(&missing, ExpectedVersion::StreamExists, vec![event(1)])
        .await
    {
        Err(StoreError::WrongExpectedVersion { actual: None, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.read_all(1, 100).await.unwrap().len(),
        2,
        "refused appends wrote nothing"
    );
}

#[tokio::test]
async fn duplicate_event_ids_write_nothing() {
    let (_dir, store) = fresh().await;
    let first = event(1);
    let id = first.event_id;
    store
        .append(&"a".into(), ExpectedVersion::Any, vec![first.clone()])
        .await
        .unwrap();

    // Again in another stream, behind a fresh event: the whole append is refused.
    match store
        .append(
            &"b".into(),
            ExpectedVersion::Any,
            vec![event(2), first.clone()],
        )
        .await
    {
        Err(StoreError::DuplicateEventId { stream, event_id }) => {
            assert_eq!((stream.as_str(), event_id), ("b", id))
        }
        other => panic!("{other:?}"),
    }
    // Twice within one append.
    let twin = event(3);
    match store
        .append(
            &"c".into(),
            ExpectedVersion::Any,
            vec![twin.clone(), twin.clone()],
        )
        .await
    {
        Err(StoreError::DuplicateEventId { event_id, .. }) => assert_eq!(event_id, twin.event_id),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.read_all(1, 100).await.unwrap().len(), 1);
    assert_eq!(store.stream_version(&"b".into()).await.unwrap(), None);
    // The failed appends left the stream usable.
    store
        .append(&"b".into(), ExpectedVersion::NoStream, vec![event(4)])
        .await
        .unwrap();
}

#[tokio::test]
async fn appends_larger_than_one_statement_are_atomic() {
    let (_dir, store) = fresh().await;
    let s = StreamId::new("Big-1");
    let events: Vec<_> = (0..4_500).map(event).collect();
    let done = store
        .append(&s, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    assert_eq!(
        (done.stream_version, done.first_position, done.last_position),
        (4_500, 1, 4_500)
    );
    let read = store.read_stream(&s, 1, 10_000).await.unwrap();
    assert!(
        read.iter()
            .enumerate()
            .all(|(i, e)| e.stream_version == i as u64 + 1 && e.global_position == i as u64 + 1)
    );

    // A duplicate in the last chunk undoes the chunks before it.
    let mut events: Vec<_> = (0..4_500).map(event).collect();
    events[4_400].event_id = read[0].event_id;
    let err = store
        .append(&s, ExpectedVersion::Exact(4_500), events)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEventId { .. }), "{err}");
    assert_eq!(store.stream_version(&s).await.unwrap(), Some(4_500));
    assert!(store.read_all(4_501, 10).await.unwrap().is_empty());
}

/// Many callers racing on one stream: the versions come out 1..=N exactly and
/// every loser hears a typed conflict naming a version it did not expect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_to_one_stream_produce_exact_versions() {
    let (_dir, store) = fresh().await;
    let s = StreamId::new("Contended-1");
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                let (mut won, mut lost) = (0u32, 0u32);
                for i in 0..25 {
                    let seen = store.stream_version(&s).await.unwrap().unwrap_or(0);
                    match store
                        .append(&s, ExpectedVersion::Exact(seen), vec![event(t * 100 + i)])
                        .await
                    {
                        Ok(done) => {
                            assert!(done.stream_version > seen);
                            won += 1;
                        }
                        Err(StoreError::WrongExpectedVersion {
                            expected, actual, ..
                        }) => {
                            assert_eq!(expected, ExpectedVersion::Exact(seen));
                            assert!(
                                actual.is_some_and(|a| a > seen),
                                "actual {actual:?} after seeing {seen}"
                            );
                            lost += 1;
                        }
                        Err(e) => panic!("untyped failure: {e}"),
                    }
                }
                (won, lost)
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += t.await.unwrap().0;
    }
    let events = store.read_stream(&s, 1, 10_000).await.unwrap();
    assert_eq!(events.len() as u32, won);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.stream_version == i as u64 + 1)
    );
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        Some(u64::from(won))
    );
}

/// Concurrent appends get coalesced; a conflicting or duplicate append in the
/// same batch must not fail its neighbours, and the log has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coalesced_appends_fail_only_on_their_own_account() {
    let (_dir, store) = fresh().await;
    let shared_event = event(0);
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let store = store.clone();
        let shared_event = shared_event.clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..20u64 {
                // Every task also races for the same fresh stream and the same event id.
                let contested = StreamId::new(format!("Contested-{i}"));
                let own = StreamId::new(format!("Own-{t}"));
                let dup = StreamId::new(format!("Dup-{t}-{i}"));
                let (a, b, c) = tokio::join!(
                    store.append(&own, ExpectedVersion::Exact(i), vec![event(i)]),
                    store.append(&contested, ExpectedVersion::NoStream, vec![event(i)]),
                    store.append(&dup, ExpectedVersion::NoStream, vec![shared_event.clone()]),
                );
                assert_eq!(
                    a.unwrap().stream_version,
                    i + 1,
                    "an uncontested append never fails"
                );
                results.push((b.is_ok(), c.is_ok()));
                if let Err(e) = b {
                    assert!(e.is_conflict(), "{e}");
                }
                if let Err(e) = c {
                    assert!(matches!(e, StoreError::DuplicateEventId { .. }), "{e}");
                }
            }
            results
        }));
    }
    let mut contested_wins = vec![0; 20];
    let mut dup_wins = 0;
    for t in tasks {
        for (i, (b, c)) in t.await.unwrap().into_iter().enumerate() {
            contested_wins[i] += u32::from(b);
            dup_wins += u32::from(c);
        }
    }
    assert!(contested_wins.iter().all(|&w| w == 1), "{contested_wins:?}");
    assert_eq!(dup_wins, 1);
    let all = store.read_all(1, 100_000).await.unwrap();
    assert_eq!(all.len(), 32 * 20 + 20 + 1);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.global_position == i as u64 + 1),
        "no gap in the log"
    );
    let ids: HashSet<_> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), all.len());
}

#[tokio::test]
async fn corrupt_rows_are_typed_errors_naming_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .append(&"Good-1".into(), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();

    let mut conn = raw(&path).await;
    let insert = "INSERT INTO annals_events (stream_id, stream_version, event_id, event_type, event_version, \
                  payload, metadata, correlation_id, causation_id, recorded_at) \
                  VALUES (?1, 1, ?2, 'MoneyDeposited', 1, ?3, ?4, ?5, NULL, '2025-01-01T00:00:00Z')";
    let cases = [
        (
            "BadJson-1",
            Uuid::now_v7().to_string(),
            "{not json",
            None,
            None,
            "payload",
        ),
        (
            "BadUuid-1",
            "not-a-uuid".to_owned(),
            "{}",
            None,
            None,
            "event_id",
        ),
        (
            "BadCorrelation-1",
            Uuid::now_v7().to_string(),
            "{}",
            None,
            Some("xyz"),
            "correlation_id",
        ),
        (
            "BadMetadata-1",
            Uuid::now_v7().to_string(),
            "{}",
            Some("[1,"),
            None,
            "metadata",
        ),
    ];
    for (stream, id, payload, metadata, correlation, _) in &cases {
        sqlx::query(insert)
            .bind(stream)
            .bind(id)
            .bind(payload)
            .bind(metadata)
            .bind(correlation)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for (stream, _, _, _, _, column) in &cases {
        match store.read_stream(&StreamId::new(*stream), 1, 10).await {
            Err(StoreError::Corrupt {
                stream: s,
                version,
                reason,
                ..
            }) => {
                assert_eq!((s.as_str(), version), (*stream, Some(1)));
                assert!(reason.contains(column), "{reason}");
            }
            other => panic!("{stream}: {other:?}"),
        }
    }
    // Other streams are unaffected, and the log fails at, not before, the bad row.
    assert_eq!(
        store
            .read_stream(&"Good-1".into(), 1, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // A read that starts before the bad row returns what precedes it; the
    // read that starts at it fails, naming its position.
    assert_eq!(store.read_all(1, 1).await.unwrap().len(), 1);
    assert_eq!(store.read_all(1, 10).await.unwrap().len(), 1);
    assert!(matches!(
        store.read_all(2, 10).await,
        Err(StoreError::Corrupt {
            position: Some(2),
            ..
        })
    ));
    // A subscription reports the corruption and ends rather than skipping it.
    let mut sub = store.subscribe_all(1);
    assert!(sub.next().await.unwrap().is_ok());
    assert!(matches!(
        sub.next().await,
        Some(Err(StoreError::Corrupt { .. }))
    ));
    assert!(sub.next().await.is_none());
}

#[tokio::test]
async fn recorded_events_cannot_be_updated_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .append(&"a".into(), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let mut conn = raw(&path).await;
    for sql in [
        "UPDATE annals_events SET payload = '{}'",
        "DELETE FROM annals_events",
    ] {
        let err = conn.execute(sql).await.unwrap_err();
        assert!(err.to_string().contains("immutable"), "{err}");
    }
    // Nor can a stream version be skipped by writing around the store.
    let err = conn
        .execute(
            "INSERT INTO annals_events (stream_id, stream_version, event_id, event_type, event_version, \
             payload, recorded_at) VALUES ('a', 5, 'x', 't', 1, '{}', '2025-01-01T00:00:00Z')",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("out of sequence"), "{err}");
}

#[tokio::test]
async fn a_locked_or_unreadable_file_gives_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no-such-dir").join("events.db");
    let err = SqliteStore::open(&missing_dir).await.unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = SqliteStore::open(&garbage).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Backend(_) | StoreError::Unavailable(_)),
        "{err:?}"
    );

    let path = dir.path().join("events.db");
    let store = SqliteStore::builder()
        .path(&path)
        .busy_timeout(Duration::from_millis(100))
        .open()
        .await
        .unwrap();
    let mut locker = raw(&path).await;
    locker.execute("BEGIN EXCLUSIVE").await.unwrap();
    let err = store
        .append(&"a".into(), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    locker.execute("ROLLBACK").await.unwrap();
    // Once the lock is gone the same append goes through.
    store
        .append(&"a".into(), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_wake_on_local_appends_and_poll_for_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let here = SqliteStore::builder()
        .path(&path)
        .poll_interval(Duration::from_millis(50))
        .open()
        .await
        .unwrap();
    // A second store on the same file stands in for another process.
    let elsewhere = SqliteStore::open(&path).await.unwrap();

    let mut sub = here.subscribe_all(1);
    here.append(&"a".into(), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap();
    let e = tokio::time::timeout(PATIENCE, sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(e.global_position, 1);

    elsewhere
        .append(&"b".into(), ExpectedVersion::Any, vec![event(2)])
        .await
        .unwrap();
    let e = tokio::time::timeout(PATIENCE, sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((e.global_position, e.stream_id.as_str()), (2, "b"));
}

#[tokio::test]
async fn snapshots_and_checkpoints_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let s = StreamId::new("Account-1");
    let snapshot = Snapshot {
        stream_id: s.clone(),
        stream_version: 10,
        snapshot_version: 2,
        state: Payload::from_json(r#"{"balance":10}"#).unwrap(),
        taken_at: chrono::Utc::now(),
    };
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .save_snapshot(Snapshot {
                stream_version: 5,
                ..snapshot.clone()
            })
            .await
            .unwrap();
        store.save_snapshot(snapshot.clone()).await.unwrap();
        assert_eq!(store.load_checkpoint("projector").await.unwrap(), None);
        store.save_checkpoint("projector", 42).await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let loaded = store.load_snapshot(&s).await.unwrap().unwrap();
    assert_eq!(
        (
            loaded.stream_version,
            loaded.snapshot_version,
            &loaded.state
        ),
        (10, 2, &snapshot.state)
    );
    // Stored with microsecond precision.
    assert!(
        (loaded.taken_at - snapshot.taken_at)
            .num_microseconds()
            .unwrap()
            .abs()
            < 1
    );
    assert_eq!(
        store.load_snapshot(&"Account-2".into()).await.unwrap(),
        None
    );
    assert_eq!(store.load_checkpoint("projector").await.unwrap(), Some(42));
}

/// Whatever path an append takes (alone, coalesced with a guard, with or
/// without a known base), what it reports is what was recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn append_results_match_what_is_recorded_under_concurrency() {
    let (_dir, store) = fresh().await;
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                for i in 0..30u64 {
                    let (stream, expected) = match i % 3 {
                        0 => (StreamId::new("Shared-any"), ExpectedVersion::Any),
                        1 => (StreamId::new(format!("Own-{t}")), ExpectedVersion::Any),
                        _ => (StreamId::new(format!("Exists-{t}")), ExpectedVersion::Any),
                    };
                    let count = 1 + (i % 4) as usize;
                    let events: Vec<_> = (0..count as u64)
                        .map(|k| event(t * 1000 + i * 10 + k))
                        .collect();
                    let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
                    let done = store.append(&stream, expected, events).await.unwrap();
                    results.push((stream, ids, done));
                }
                results
            })
        })
        .collect();
    for t in tasks {
        for (stream, ids, done) in t.await.unwrap() {
            let n = ids.len() as u64;
            assert_eq!(done.last_position - done.first_position + 1, n);
            let recorded = store
                .read_all(done.first_position, ids.len())
                .await
                .unwrap();
            assert_eq!(recorded.iter().map(|e| e.event_id).collect::<Vec<_>>(), ids);
            for (k, e) in recorded.iter().enumerate() {
                assert_eq!(e.stream_id, stream);
                assert_eq!(e.stream_version, done.stream_version - n + 1 + k as u64);
            }
        }
    }
    let shared = store
        .read_stream(&"Shared-any".into(), 1, 100_000)
        .await
        .unwrap();
    assert!(
        shared
            .iter()
            .enumerate()
            .all(|(i, e)| e.stream_version == i as u64 + 1)
    );
}

/// Two stores on one file stand in for two processes: SQLite's file lock
/// serialises their writers, and the log and streams stay whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_appending_to_one_file_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    let s = StreamId::new("Both-1");
    let run = |store: SqliteStore, s: StreamId| {
        tokio::spawn(async move {
            let mut conflicts = 0;
            for i in 0..100 {
                store
                    .append(&s, ExpectedVersion::Any, vec![event(i)])
                    .await
                    .unwrap();
                let seen = store.stream_version(&s).await.unwrap().unwrap();
                match store
                    .append(&s, ExpectedVersion::Exact(seen), vec![event(i)])
                    .await
                {
                    Ok(_) => {}
                    Err(StoreError::WrongExpectedVersion {
                        actual: Some(actual),
                        ..
                    }) => {
                        assert!(actual > seen);
                        conflicts += 1;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            conflicts
        })
    };
    let (ca, cb) = (run(a.clone(), s.clone()), run(b.clone(), s.clone()));
    let conflicts = ca.await.unwrap() + cb.await.unwrap();
    let events = a.read_stream(&s, 1, 10_000).await.unwrap();
    assert_eq!(events.len(), 400 - conflicts);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.stream_version == i as u64 + 1 && e.global_position == i as u64 + 1)
    );
    assert_eq!(
        b.stream_version(&s).await.unwrap(),
        Some(events.len() as u64)
    );
}

#[tokio::test]
async fn migrations_can_be_run_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::builder()
        .path(&path)
        .migrate_on_open(false)
        .open()
        .await
        .unwrap();
    let err = store
        .append(&"a".into(), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Backend(_)),
        "no tables yet: {err:?}"
    );
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let done = store
        .append(&"a".into(), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap();
    assert_eq!(done.last_position, 1);
    let mut conn = raw(&path).await;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM annals_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied, 2, "every embedded migration");
}

/// Callers that give up mid-append (timeouts, dropped futures) leave no open
/// transaction behind: every append acknowledged is in the file, before and
/// after reopening it, and the store keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_appends_leave_the_store_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..40u64 {
                    let size = if i == 7 { 2_500 } else { 1 + (i % 3) };
                    let events: Vec<_> =
                        (0..size).map(|k| event(t * 10_000 + i * 10 + k)).collect();
                    let first = events[0].event_id;
                    let stream = StreamId::new(format!("Cancel-{t}-{}", i % 5));
                    let patience = Duration::from_micros(50 * (i % 8));
                    let attempt = store.append(&stream, ExpectedVersion::Any, events);
                    if let Ok(Ok(_)) = tokio::time::timeout(patience, attempt).await {
                        acknowledged.push(first);
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    let last = store
        .append(&"After".into(), ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    let log = reopened.read_all(1, 1_000_000).await.unwrap();
    assert_eq!(
        log.last().map(|e| e.global_position),
        Some(last.last_position)
    );
    assert!(
        log.iter()
            .enumerate()
            .all(|(i, e)| e.global_position == i as u64 + 1)
    );
    let ids: HashSet<_> = log.iter().map(|e| e.event_id).collect();
    assert!(
        acknowledged.iter().all(|id| ids.contains(id)),
        "an acknowledged append is missing"
    );
    for t in 0..16 {
        for k in 0..5 {
            let events = reopened
                .read_stream(&format!("Cancel-{t}-{k}").into(), 1, 100_000)
                .await
                .unwrap();
            assert!(
                events
                    .iter()
                    .enumerate()
                    .all(|(i, e)| e.stream_version == i as u64 + 1)
            );
        }
    }
}

/// A lone caller cancelled at every point of a multi-statement append (one
/// that needs its own transaction) must not leave that transaction open.
#[tokio::test]
async fn a_large_append_cancelled_at_any_point_leaves_no_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut acknowledged = 0;
    for step in 0..40u64 {
        let events: Vec<_> = (0..2_500).map(event).collect();
        let stream = StreamId::new(format!("Large-{step}"));
        let attempt = store.append(&stream, ExpectedVersion::NoStream, events);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_micros(250 * step), attempt).await {
            acknowledged += 1;
        }
    }
    let last = store
        .append(&"After".into(), ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    drop(store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        reopened.stream_version(&"After".into()).await.unwrap(),
        Some(1),
        "the last append was committed"
    );
    let log = reopened.read_all(1, 1_000_000).await.unwrap();
    assert_eq!(
        log.last().map(|e| e.global_position),
        Some(last.last_position)
    );
    assert!(log.len() > acknowledged * 2_500);
}

/// Every message in an error's chain, outermost first.
fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut messages = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        messages.push(e.to_string());
        next = e.source();
    }
    messages
}

/// No message repeats its cause's (the Rust API guidelines: a cause is
/// reached through `source()`, or a printed chain says everything twice).
fn assert_chain_does_not_repeat(err: &(dyn std::error::Error + 'static)) {
    let messages = chain(err);
    for pair in messages.windows(2) {
        assert!(
            !pair[0].contains(&pair[1]),
            "`{}` repeats its source `{}` (chain: {messages:?})",
            pair[0],
            pair[1]
        );
    }
}

/// The issue: after clean exits every event was still in `events.db-wal`,
/// and a copy of `events.db` alone (the file the docs name) was an empty
/// store. Closing folds the log into the file.
#[tokio::test]
async fn closing_leaves_every_event_in_the_database_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    for n in 1..=3 {
        store
            .append(
                &StreamId::new(format!("Account-{n}")),
                ExpectedVersion::NoStream,
                vec![event(n), event(n + 10)],
            )
            .await
            .unwrap();
    }
    store
        .save_snapshot(Snapshot {
            stream_id: "Account-1".into(),
            stream_version: 2,
            snapshot_version: 1,
            state: Payload::from_json(r#"{"balance":12}"#).unwrap(),
            taken_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    store.save_checkpoint("projector", 6).await.unwrap();
    let written = store.read_all(1, 100).await.unwrap();
    // Through the trait, as `App::shutdown` does.
    EventStore::close(&store).await.unwrap();

    let wal = dir.path().join("events.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the log is folded in"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let copied = SqliteStore::open(&copy).await.unwrap();
    assert_eq!(copied.read_all(1, 100).await.unwrap(), written);
    assert_eq!(
        copied
            .load_snapshot(&"Account-1".into())
            .await
            .unwrap()
            .map(|s| s.stream_version),
        Some(2)
    );
    assert_eq!(copied.load_checkpoint("projector").await.unwrap(), Some(6));
    copied.close().await.unwrap();
}

/// `App::shutdown` closes the store: the same self-contained file.
#[tokio::test]
async fn app_shutdown_leaves_every_event_in_the_database_file_alone() {
    use bank::accounts::{AccountId, DepositMoney, OpenAccount, PinHasher};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    let app = annals::App::builder()
        .store(SqliteStore::open(&path).await.unwrap())
        .service(PinHasher::new("shutdown"))
        .build()
        .unwrap();
    let id = AccountId::new();
    app.dispatch(OpenAccount {
        account_id: id,
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        pin: "1357".into(),
    })
    .await
    .unwrap();
    app.dispatch(DepositMoney {
        account_id: id,
        amount: 5,
        currency: None,
    })
    .await
    .unwrap();
    app.shutdown().await.unwrap();
    let refused = app
        .dispatch(DepositMoney {
            account_id: id,
            amount: 5,
            currency: None,
        })
        .await;
    assert!(refused.is_err(), "dispatch after shutdown: {refused:?}");

    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let copied = SqliteStore::open(&copy).await.unwrap();
    assert_eq!(copied.read_all(1, 100).await.unwrap().len(), 2);
}

#[tokio::test]
async fn operations_after_close_fail_with_a_typed_error() {
    let (_dir, store) = fresh().await;
    let s = StreamId::new("Account-1");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let mut subscription = store.subscribe_all(2);
    let clone = store.clone();
    store.close().await.unwrap();
    // Closing again is harmless.
    store.close().await.unwrap();
    EventStore::close(&clone).await.unwrap();

    let closed = |what: &str, result: Result<(), StoreError>| {
        let err = result.expect_err(what);
        match &err {
            StoreError::Closed { store: named } => assert!(
                named.contains(&store.filename().display().to_string()),
                "{what}: {named}"
            ),
            other => panic!("{what}: expected Closed, got {other:?}"),
        }
        assert_chain_does_not_repeat(&err);
    };
    let snapshot = Snapshot {
        stream_id: s.clone(),
        stream_version: 1,
        snapshot_version: 1,
        state: Payload::from_json("{}").unwrap(),
        taken_at: chrono::Utc::now(),
    };
    closed(
        "append",
        store
            .append(&s, ExpectedVersion::Exact(1), vec![event(2)])
            .await
            .map(drop),
    );
    closed(
        "append_after_seen",
        clone
            .append_after_seen(&s, 1, annals::StreamHint::NONE, None, vec![event(2)])
            .await
            .map(drop),
    );
    closed("read_stream", store.read_stream(&s, 1, 10).await.map(drop));
    closed("read_all", store.read_all(1, 10).await.map(drop));
    closed("stream_version", store.stream_version(&s).await.map(drop));
    closed("save_snapshot", store.save_snapshot(snapshot).await);
    closed("load_snapshot", store.load_snapshot(&s).await.map(drop));
    closed("lock_stream", store.lock_stream(&s).await.map(drop));
    closed("save_checkpoint", store.save_checkpoint("p", 1).await);
    closed(
        "load_checkpoint",
        store.load_checkpoint("p").await.map(drop),
    );
    closed("migrate", store.migrate().await.map(drop));
    closed("streams", store.streams(None, None, 10).await.map(drop));
    // A subscription waiting for appends ends with the same error.
    let next = tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("a subscription wakes when the store closes")
        .expect("an error, then the end");
    closed("subscribe_all", next.map(drop));
    assert!(subscription.next().await.is_none());
    closed(
        "subscribe_all after close",
        store.subscribe_all(1).next().await.unwrap().map(drop),
    );
}

/// Appends racing `close` are each either recorded (and in the closed file)
/// or refused with the typed error; none is acknowledged and then missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_racing_close_are_recorded_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("Account-{t}"));
                let mut acknowledged = Vec::new();
                for i in 0..200u64 {
                    match store
                        .append(&stream, ExpectedVersion::Exact(i), vec![event(i)])
                        .await
                    {
                        Ok(done) => acknowledged.push(done.last_position),
                        Err(StoreError::Closed { .. }) => break,
                        Err(e) => panic!("append {i} to {stream}: {e:?}"),
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    store.close().await.unwrap();
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    assert!(
        !acknowledged.is_empty(),
        "some appends ran before the close"
    );

    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let copied = SqliteStore::open(&copy).await.unwrap();
    let recorded: HashSet<u64> = copied
        .read_all(1, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.global_position)
        .collect();
    assert_eq!(recorded.len(), acknowledged.len(), "nothing unacknowledged");
    for p in acknowledged {
        assert!(
            recorded.contains(&p),
            "acknowledged position {p} is missing"
        );
    }
}

/// The issue: `connect("sqlite:data/new.db")` failed on a new file with
/// "(code: 14) unable to open database file", naming no path.
#[tokio::test]
async fn connect_creates_a_new_file_like_open() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("sqlite:{}", dir.path().join("new.db").display()),
        format!("sqlite://{}", dir.path().join("other.db").display()),
    ] {
        let store = SqliteStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        store
            .append(&"a".into(), ExpectedVersion::NoStream, vec![event(1)])
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    // A URL that sets `mode` keeps it: `rw` opens only an existing file.
    let absent = dir.path().join("absent.db");
    let err = SqliteStore::connect(&format!("sqlite://{}?mode=rw", absent.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(
        err.to_string().contains(&absent.display().to_string()),
        "{err}"
    );
    assert!(!absent.exists());
    let existing = dir.path().join("new.db");
    SqliteStore::connect(&format!("sqlite://{}?mode=rw", existing.display()))
        .await
        .unwrap();
}

/// A missing directory is not created, and the error says which it is.
#[tokio::test]
async fn a_missing_directory_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("data");
    let file = missing.join("new.db");
    let by_url = SqliteStore::connect(&format!("sqlite:{}", file.display()))
        .await
        .unwrap_err();
    let by_path = SqliteStore::open(&file).await.unwrap_err();
    for err in [by_url, by_path] {
        assert!(matches!(err, StoreError::Config(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid event store configuration: cannot open SQLite database `{}`: \
                 directory `{}` does not exist",
                file.display(),
                missing.display()
            )
        );
    }
    assert!(!missing.exists(), "not created");

    // A file where the directory should be, and a directory where the file should be.
    std::fs::write(&missing, "").unwrap();
    let err = SqliteStore::open(&file).await.unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(err.to_string().contains("it is a directory"), "{err}");
}

/// SQLite's own open failures name the file, and the chain says each thing once.
#[tokio::test]
async fn open_failures_name_the_file_without_repeating_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = SqliteStore::open(&garbage).await.unwrap_err();
    let messages = chain(&err);
    assert_eq!(
        messages[1],
        format!("cannot open SQLite database `{}`", garbage.display()),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("file is not a database"),
        "{messages:?}"
    );
    let open = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<annals::sqlite::OpenError>())
        .unwrap();
    assert_eq!(open.path(), garbage);
    assert_chain_does_not_repeat(&err);

    // A locked file: SQLite's message, once.
    let path = dir.path().join("events.db");
    let store = SqliteStore::builder()
        .path(&path)
        .busy_timeout(Duration::from_millis(50))
        .open()
        .await
        .unwrap();
    let mut locker = raw(&path).await;
    locker.execute("BEGIN EXCLUSIVE").await.unwrap();
    let err = store
        .append(&"a".into(), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(chain(&err).last().unwrap().contains("database is locked"));
    assert_chain_does_not_repeat(&err);
    locker.execute("ROLLBACK").await.unwrap();
}

/// NOT NULL columns a hand-made table lets be NULL: each read names the
/// event (stream, version, global position) and says the column is NULL,
/// instead of reading an empty string ("bad JSON: EOF") or a zero.
#[tokio::test]
async fn null_columns_are_named_as_null() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    // The store's columns without their constraints, as a hand-rebuilt table may be.
    conn.execute(
        "CREATE TABLE annals_events (position INTEGER PRIMARY KEY, stream_id TEXT, \
         stream_version INTEGER, event_id TEXT, event_type TEXT, event_version INTEGER, \
         payload TEXT, metadata TEXT, correlation_id TEXT, causation_id TEXT, recorded_at TEXT);
         CREATE TABLE annals_snapshots (stream_id TEXT PRIMARY KEY, stream_version INTEGER, \
         snapshot_version INTEGER, state TEXT, taken_at TEXT);",
    )
    .await
    .unwrap();
    let columns = [
        "payload",
        "event_type",
        "event_version",
        "recorded_at",
        "event_id",
        "stream_version",
        "stream_id",
    ];
    for (i, column) in columns.iter().enumerate() {
        let insert = format!(
            "INSERT INTO annals_events (position, stream_id, stream_version, event_id, event_type, \
             event_version, payload, recorded_at) VALUES ({position}, 'Null-{column}', 1, '{id}', \
             'MoneyDeposited', 1, '{{}}', '2025-01-01T00:00:00Z')",
            position = 10 + i,
            id = Uuid::now_v7()
        );
        conn.execute(sqlx::AssertSqlSafe(insert)).await.unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!(
            "UPDATE annals_events SET {column} = NULL WHERE position = {}",
            10 + i
        )))
        .await
        .unwrap();
    }
    for column in ["state", "taken_at", "snapshot_version", "stream_version"] {
        conn.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO annals_snapshots VALUES ('Null-{column}', 3, 1, '{{}}', \
             '2025-01-01T00:00:00Z'); \
             UPDATE annals_snapshots SET {column} = NULL WHERE stream_id = 'Null-{column}'"
        )))
        .await
        .unwrap();
    }
    let store = SqliteStore::builder()
        .path(&path)
        .migrate_on_open(false)
        .open()
        .await
        .unwrap();
    for (i, column) in columns.iter().enumerate() {
        let position = 10 + i as u64;
        let err = store.read_all(position, 1).await.unwrap_err();
        let StoreError::Corrupt {
            stream,
            version,
            position: at,
            reason,
        } = &err
        else {
            panic!("{column}: {err:?}")
        };
        assert_eq!(reason, &format!("column {column} is NULL"), "{err}");
        assert_eq!(*at, Some(position), "{err}");
        let (expected_stream, expected_version) = match *column {
            "stream_id" => ("<unreadable stream id>".to_owned(), Some(1)),
            "stream_version" => (format!("Null-{column}"), None),
            _ => (format!("Null-{column}"), Some(1)),
        };
        assert_eq!(
            (stream.as_str(), *version),
            (expected_stream.as_str(), expected_version),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("(global position {position})")),
            "{err}"
        );
        // A NULL stream id or version is not found by stream.
        if !matches!(*column, "stream_id" | "stream_version") {
            let by_stream = store
                .read_stream(&StreamId::new(format!("Null-{column}")), 1, 10)
                .await;
            assert!(
                matches!(&by_stream, Err(StoreError::Corrupt { reason: r, position: Some(p), .. })
                    if r == reason && *p == position),
                "{column}: {by_stream:?}"
            );
        }
    }
    for column in ["state", "taken_at", "snapshot_version", "stream_version"] {
        let err = store
            .load_snapshot(&StreamId::new(format!("Null-{column}")))
            .await
            .unwrap_err();
        let StoreError::Corrupt {
            reason, version, ..
        } = &err
        else {
            panic!("{column}: {err:?}")
        };
        assert_eq!(reason, &format!("snapshot: column {column} is NULL"));
        assert_eq!(
            *version,
            (column != "stream_version").then_some(3),
            "a NULL version is named as unknown, not as 0"
        );
    }
}

/// An append to an existing stream writes its events and nothing else: the
/// stream's row in `streams` is written once, with its first event (it used
/// to be updated by every append, one more page written per commit), and
/// the stream's version is its newest event's.
#[tokio::test]
async fn a_streams_row_is_written_once_with_the_first_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let s = StreamId::new("Account-1");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let first = store.read_stream(&s, 1, 1).await.unwrap().remove(0);
    let mut conn = raw(&path).await;
    let row = || {
        sqlx::query_as::<_, (String, String)>("SELECT stream_id, created_at FROM annals_streams")
    };
    let created = row().fetch_all(&mut conn).await.unwrap();
    assert_eq!(
        created,
        vec![(
            "Account-1".to_owned(),
            first
                .recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )]
    );
    for v in 1..5 {
        store
            .append(&s, ExpectedVersion::Exact(v), vec![event(v + 1)])
            .await
            .unwrap();
    }
    assert_eq!(row().fetch_all(&mut conn).await.unwrap(), created);
    assert_eq!(store.stream_version(&s).await.unwrap(), Some(5));
    assert_eq!(
        store.stream_version(&"Account-2".into()).await.unwrap(),
        None
    );
}
