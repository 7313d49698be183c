//! The event store conformance suite: written once, run against every store.
//!
//! A store's test binary is its factory plus one macro call:
//!
//! ```ignore
//! annals_tests::conformance_suite!(annals_tests::conformance::MemoryFactory);
//! ```
//!
//! The macro expands to one `#[tokio::test]` per check below, each on a fresh
//! store from the factory, so a failure names the broken guarantee.

use annals::{
    EventFilter, EventStore, ExpectedVersion, InvalidCheckpoint, InvalidStreamId, Metadata,
    NewEvent, Payload, RecordedEvent, Snapshot, StoreError, StreamHint, StreamId, StreamInfo,
    WakeCause,
};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// Makes fresh, isolated stores for the suite.
pub trait StoreFactory: Send + Sync + 'static {
    /// The store under test.
    type Store: EventStore + Clone;

    /// An empty store that no other test sees (a new schema, a new file, ...).
    /// Panics when the backend is unreachable: a suite that cannot run fails.
    fn create(&self) -> impl Future<Output = Self::Store> + Send;

    /// Writes, bypassing the store, an event at version 1 of `stream` that the
    /// store cannot decode. Returns `false` when the backend cannot hold bad
    /// data (the in-memory store), which skips that check.
    fn write_corrupt_event(
        &self,
        store: &Self::Store,
        stream: &StreamId,
    ) -> impl Future<Output = bool> + Send {
        let _ = (store, stream);
        async { false }
    }

    /// Another handle on the same database as `store`, with connections and
    /// caches of its own, as a second process would open it. The in-memory
    /// store has no such thing: a clone shares everything.
    fn open_again(&self, store: &Self::Store) -> impl Future<Output = Self::Store> + Send {
        let again = store.clone();
        async move { again }
    }

    /// Releases what `create` made. Not called when a check panics.
    fn dispose(&self, store: Self::Store) -> impl Future<Output = ()> + Send {
        drop(store);
        async {}
    }
}

/// Expands to one `#[tokio::test]` per conformance check, each on a fresh store
/// from `$factory` (an expression implementing
/// [`StoreFactory`](crate::conformance::StoreFactory)). The calling crate needs
/// `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@checks $factory;
            append_and_read_back,
            append_is_atomic,
            empty_append_is_rejected,
            expected_version_any,
            expected_version_no_stream,
            expected_version_stream_exists,
            expected_version_exact,
            append_after_seen_refuses_a_moved_stream,
            append_after_seen_never_writes_a_gap,
            stream_hints_are_never_trusted_blindly,
            expected_any_never_conflicts,
            invalid_stream_ids_are_refused_before_anything_is_touched,
            invalid_events_are_refused_alike,
            stream_locks_exclude_other_lockers,
            append_after_seen_yields_to_a_lock_holder,
            concurrent_writers_of_one_stream_never_overwrite,
            duplicate_event_id_is_rejected_and_nothing_written,
            concurrent_appends_fail_alone,
            read_stream_pages,
            read_all_pages,
            gap_safe_global_order_with_concurrent_writers,
            subscribe_all_from_a_position,
            snapshots_save_load_replace,
            corrupt_event_is_a_typed_error,
            a_corrupt_event_does_not_hold_back_the_others,
            closing_keeps_everything_for_the_next_opener,
            head_position_follows_the_log,
            checkpoints_are_kept_replaced_listed_and_deleted,
            checkpoint_names_and_positions_are_refused_alike,
            filtered_reads_select_by_type_category_or_both,
            filtered_reads_page_each_match_once_in_order,
            filtered_reads_move_past_unwanted_events,
            filtered_reads_pass_over_corrupt_events_they_do_not_want,
            log_watch_wakes_on_appends_and_polls_otherwise,
            streams_are_listed_by_id_a_page_at_a_time,
            stream_listings_filter_by_category,
            stream_listings_refuse_bad_cursors_alike,
            migrating_an_up_to_date_store_applies_nothing,
        );
    };
    (@checks $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                use $crate::conformance::StoreFactory as _;
                let factory = $factory;
                let store = factory.create().await;
                $crate::conformance::$check(&factory, &store).await;
                factory.dispose(store).await;
            }
        )*
    };
}

/// A factory of [`annals::MemoryStore`]s: the reference behaviour.
pub struct MemoryFactory;

impl StoreFactory for MemoryFactory {
    type Store = annals::MemoryStore;

    async fn create(&self) -> Self::Store {
        annals::MemoryStore::new()
    }
}

/// An event of type `type_` with payload `{"n": n}` and a fresh id.
pub fn event(type_: &'static str, n: u64) -> NewEvent {
    NewEvent::new(
        type_,
        1,
        Payload::from_serialize(&serde_json::json!({ "n": n })).expect("a json! value serialises"),
    )
}

fn events(count: u64) -> Vec<NewEvent> {
    (1..=count).map(|n| event("Counted", n)).collect()
}

/// Reads the whole global log page by page, as a follower would.
pub async fn read_whole_log<S: EventStore + ?Sized>(store: &S) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut next = 1;
    loop {
        let page = store.read_all(next, 100).await.expect("read_all");
        let Some(last) = page.last() else { return all };
        next = last.global_position + 1;
        all.extend(page);
    }
}

/// The global log up to at least `last_position`, waiting (10 s at most) for it
/// to become readable: a store may hold back the newest events until no
/// earlier-positioned event can still commit.
pub async fn log_through<S: EventStore + ?Sized>(
    store: &S,
    last_position: u64,
) -> Vec<RecordedEvent> {
    let started = std::time::Instant::now();
    loop {
        let log = read_whole_log(store).await;
        if log
            .last()
            .is_some_and(|e| e.global_position >= last_position)
        {
            return log;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "position {last_position} never became readable; the log ends at {:?}",
            log.last().map(|e| e.global_position)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn assert_strictly_increasing(events: &[RecordedEvent]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].global_position < pair[1].global_position,
            "global positions must increase in read order: {} then {}",
            pair[0].global_position,
            pair[1].global_position
        );
    }
}

#[track_caller]
fn assert_wrong_version(
    result: Result<annals::AppendResult, StoreError>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: Option<u64>,
) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(
                (&s, e, a),
                (stream, expected, actual),
                "wrong-version error fields"
            );
        }
        other => panic!(
            "expected WrongExpectedVersion {{ {expected:?}, actual {actual:?} }}, got {other:?}"
        ),
    }
}

/// Events come back as appended, with versions from 1, increasing positions,
/// payload, type, version and metadata intact.
pub async fn append_and_read_back<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Account-1");
    let correlation = Uuid::now_v7();
    let mut custom = BTreeMap::new();
    custom.insert("user".to_owned(), serde_json::json!("ada"));
    let metadata = Metadata {
        correlation_id: Some(correlation),
        causation_id: Some(Uuid::now_v7()),
        custom,
    };
    let mut sent = vec![
        event("Opened", 1).with_metadata(metadata.clone()),
        NewEvent::new(
            "Deposited",
            3,
            Payload::from_json(r#"{"amount": 10, "note": "a"}"#).unwrap(),
        ),
        event("Deposited", 2),
    ];
    sent[2].metadata.correlation_id = Some(correlation);
    let done = store
        .append(&stream, ExpectedVersion::NoStream, sent.clone())
        .await
        .expect("append");
    assert_eq!(done.stream_version, 3);
    assert_eq!(
        done.last_position - done.first_position,
        2,
        "one batch takes consecutive positions"
    );

    let read = store
        .read_stream(&stream, 1, 10)
        .await
        .expect("read_stream");
    assert_eq!(read.len(), 3);
    for (i, (got, want)) in read.iter().zip(&sent).enumerate() {
        assert_eq!(got.stream_id, stream);
        assert_eq!(got.stream_version, i as u64 + 1);
        assert_eq!(got.global_position, done.first_position + i as u64);
        assert_eq!(got.event_id, want.event_id);
        assert_eq!(got.event_type, want.event_type);
        assert_eq!(got.event_version, want.event_version);
        // Stores may normalise JSON text (PostgreSQL's jsonb), never its meaning.
        assert_eq!(got.payload.to_value(), want.payload.to_value());
        assert_eq!(got.metadata, want.metadata);
    }
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(3));
    assert_eq!(
        store
            .stream_version(&StreamId::new("Account-none"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(log_through(store, done.last_position).await, read);
}

/// A batch is recorded entirely or not at all: a failing batch leaves no trace.
pub async fn append_is_atomic<F: StoreFactory>(_: &F, store: &F::Store) {
    let a = StreamId::new("Atomic-a");
    let b = StreamId::new("Atomic-b");
    let taken = event("Taken", 0);
    store
        .append(&a, ExpectedVersion::NoStream, vec![taken.clone()])
        .await
        .unwrap();

    // The last event of the batch collides: the first two must not be recorded.
    let mut batch = events(2);
    batch.push(NewEvent {
        event_id: taken.event_id,
        ..event("Collides", 3)
    });
    let err = store
        .append(&b, ExpectedVersion::Any, batch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId { .. }),
        "got {err:?}"
    );
    assert_eq!(store.stream_version(&b).await.unwrap(), None);
    assert!(store.read_stream(&b, 1, 10).await.unwrap().is_empty());

    // A 50-event batch lands contiguously in the stream and the global log.
    let done = store
        .append(&b, ExpectedVersion::NoStream, events(50))
        .await
        .unwrap();
    assert_eq!(done.stream_version, 50);
    // The failed batch, had it written anything, would sit before this one.
    let log = log_through(store, done.last_position).await;
    assert_eq!(log.len(), 51);
    let batch: Vec<_> = log.iter().filter(|e| e.stream_id == b).collect();
    assert!(
        batch
            .windows(2)
            .all(|w| w[1].global_position == w[0].global_position + 1)
    );
    assert_eq!(batch.first().unwrap().global_position, done.first_position);
    assert_eq!(batch.last().unwrap().global_position, done.last_position);
}

/// An append without events is refused.
pub async fn empty_append_is_rejected<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Empty-1");
    let err = store
        .append(&stream, ExpectedVersion::Any, Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EmptyAppend { .. }), "got {err:?}");
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
}

/// `Any` appends to new and existing streams.
pub async fn expected_version_any<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Any-1");
    assert_eq!(
        store
            .append(&stream, ExpectedVersion::Any, events(2))
            .await
            .unwrap()
            .stream_version,
        2
    );
    assert_eq!(
        store
            .append(&stream, ExpectedVersion::Any, events(1))
            .await
            .unwrap()
            .stream_version,
        3
    );
}

/// `NoStream` (and `Exact(0)`) only create.
pub async fn expected_version_no_stream<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("New-1");
    store
        .append(&stream, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    let second = store
        .append(&stream, ExpectedVersion::NoStream, events(1))
        .await;
    assert_wrong_version(second, &stream, ExpectedVersion::NoStream, Some(2));
    let zero = store
        .append(&stream, ExpectedVersion::Exact(0), events(1))
        .await;
    assert_wrong_version(zero, &stream, ExpectedVersion::Exact(0), Some(2));
    let other = StreamId::new("New-2");
    assert_eq!(
        store
            .append(&other, ExpectedVersion::Exact(0), events(1))
            .await
            .unwrap()
            .stream_version,
        1
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(2));
}

/// `StreamExists` refuses a missing stream.
pub async fn expected_version_stream_exists<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Exists-1");
    let missing = store
        .append(&stream, ExpectedVersion::StreamExists, events(1))
        .await;
    assert_wrong_version(missing, &stream, ExpectedVersion::StreamExists, None);
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
    store
        .append(&stream, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let done = store
        .append(&stream, ExpectedVersion::StreamExists, events(2))
        .await
        .unwrap();
    assert_eq!(done.stream_version, 3);
}

/// `Exact(n)` appends only at version n, and the error says where the stream is.
pub async fn expected_version_exact<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Exact-1");
    let missing = store
        .append(&stream, ExpectedVersion::Exact(1), events(1))
        .await;
    assert_wrong_version(missing, &stream, ExpectedVersion::Exact(1), None);
    store
        .append(&stream, ExpectedVersion::Exact(0), events(3))
        .await
        .unwrap();
    for stale in [1, 2, 4, u64::MAX] {
        let r = store
            .append(&stream, ExpectedVersion::Exact(stale), events(1))
            .await;
        assert_wrong_version(r, &stream, ExpectedVersion::Exact(stale), Some(3));
    }
    assert_eq!(
        store
            .append(&stream, ExpectedVersion::Exact(3), events(2))
            .await
            .unwrap()
            .stream_version,
        5
    );
    assert_eq!(store.read_stream(&stream, 1, 100).await.unwrap().len(), 5);
}

/// `append_after_seen` appends after a version the caller saw, and refuses,
/// writing nothing, when the stream has moved past it: the `App`'s warm path.
pub async fn append_after_seen_refuses_a_moved_stream<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Seen-1");
    store
        .append(&stream, ExpectedVersion::NoStream, events(3))
        .await
        .unwrap();
    let done = store
        .append_after_seen(&stream, 3, StreamHint::NONE, None, vec![event("Next", 4)])
        .await
        .unwrap();
    assert_eq!(done.stream_version, 4);
    match store
        .append_after_seen(&stream, 3, done.hint, None, vec![event("Stale", 5)])
        .await
    {
        Err(StoreError::WrongExpectedVersion {
            expected, actual, ..
        }) => {
            assert_eq!(expected, ExpectedVersion::Exact(3));
            assert_eq!(actual, Some(4));
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    let two = store
        .append_after_seen(&stream, 4, done.hint, None, events(2))
        .await
        .unwrap();
    assert_eq!(two.stream_version, 6);
    let read = store.read_stream(&stream, 1, 100).await.unwrap();
    assert_eq!(read.len(), 6, "the refused append wrote nothing");
    assert_eq!(read[3].event_type, "Next");
    assert_eq!(read[3].global_position, done.first_position);
}

/// A `seen` version the stream never reached (a stale cache, a snapshot ahead
/// of its stream, a wrong caller) is a conflict naming the actual version,
/// never a gap; versions stay contiguous.
pub async fn append_after_seen_never_writes_a_gap<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Seen-gap");
    store
        .append(&stream, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    for claimed in [
        2,
        5,
        i64::MAX as u64 - 1,
        i64::MAX as u64,
        u64::MAX - 1,
        u64::MAX,
    ] {
        match store
            .append_after_seen(&stream, claimed, StreamHint::NONE, None, events(1))
            .await
        {
            Err(StoreError::WrongExpectedVersion {
                expected, actual, ..
            }) => {
                assert_eq!(expected, ExpectedVersion::Exact(claimed));
                assert_eq!(actual, Some(1), "seen {claimed}");
            }
            other => panic!("seen {claimed} on a stream at 1: expected a conflict, got {other:?}"),
        }
    }
    // `0` means "no stream": a conflict on an existing one, a creation on a new one.
    let zero = store
        .append_after_seen(&stream, 0, StreamHint::NONE, None, events(1))
        .await;
    assert_wrong_version(zero, &stream, ExpectedVersion::Exact(0), Some(1));
    let new = StreamId::new("Seen-new");
    let created = store
        .append_after_seen(&new, 0, StreamHint::NONE, None, events(2))
        .await
        .unwrap();
    assert_eq!(created.stream_version, 2);
    let far = store
        .append_after_seen(
            &StreamId::new("Seen-none"),
            3,
            StreamHint::NONE,
            None,
            events(1),
        )
        .await;
    assert_wrong_version(
        far,
        &StreamId::new("Seen-none"),
        ExpectedVersion::Exact(3),
        None,
    );
    let read = store.read_stream(&stream, 1, 100).await.unwrap();
    assert_eq!(read.len(), 1, "nothing was written past the head");
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(1));
    let next = store
        .append_after_seen(&stream, 1, StreamHint::NONE, None, events(1))
        .await
        .unwrap();
    assert_eq!(next.stream_version, 2);
}

/// A store may use the hint an append returned to find the stream on the
/// next one, but a hint of another stream, a stale one or garbage must not
/// change any outcome.
pub async fn stream_hints_are_never_trusted_blindly<F: StoreFactory>(_: &F, store: &F::Store) {
    let (a, b) = (StreamId::new("Hint-a"), StreamId::new("Hint-b"));
    let on_a = store
        .append(&a, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let on_b = store
        .append(&b, ExpectedVersion::NoStream, events(3))
        .await
        .unwrap();
    // b's hint, b's version, on a: a is at 1.
    let wrong = store
        .append_after_seen(&a, 3, on_b.hint, None, events(1))
        .await;
    assert_wrong_version(wrong, &a, ExpectedVersion::Exact(3), Some(1));
    let mut version = 1;
    for hint in [
        on_b.hint,
        StreamHint::new(u64::MAX),
        StreamHint::new(1),
        StreamHint::NONE,
        on_a.hint,
    ] {
        let done = store
            .append_after_seen(&a, version, hint, None, events(1))
            .await
            .unwrap_or_else(|e| panic!("hint {hint:?}: {e}"));
        version += 1;
        assert_eq!(done.stream_version, version);
        let stale = store
            .append_after_seen(&a, version - 1, done.hint, None, events(1))
            .await;
        assert_wrong_version(
            stale,
            &a,
            ExpectedVersion::Exact(version - 1),
            Some(version),
        );
    }
    assert_eq!(store.read_stream(&b, 1, 100).await.unwrap().len(), 3);
    assert_eq!(
        store.read_stream(&a, 1, 100).await.unwrap().len(),
        version as usize
    );
}

/// Appends with `Any`, from many tasks on two handles of one database, to a
/// few shared streams, single events and batches: every one succeeds (no
/// version conflict, no failure caused by another append's rows), and every
/// stream ends contiguous.
pub async fn expected_any_never_conflicts<F: StoreFactory>(factory: &F, store: &F::Store) {
    const TASKS: u64 = 16;
    const APPENDS: u64 = 60;
    const STREAMS: u64 = 6;
    let other = factory.open_again(store).await;
    let writers: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = if t % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                let mut written = 0;
                for i in 0..APPENDS {
                    let stream = StreamId::new(format!("AnyRace-{}", (t + i) % STREAMS));
                    let batch = if i % 3 == 0 { events(3) } else { events(1) };
                    written += batch.len() as u64;
                    if let Err(e) = store.append(&stream, ExpectedVersion::Any, batch).await {
                        panic!("task {t} append {i} to {stream}: {e:?}");
                    }
                }
                written
            })
        })
        .collect();
    let mut written = 0;
    for w in writers {
        written += w.await.expect("writer task");
    }
    let mut total = 0;
    for s in 0..STREAMS {
        let stream = StreamId::new(format!("AnyRace-{s}"));
        let read = store.read_stream(&stream, 1, 10_000).await.unwrap();
        assert!(
            read.iter()
                .enumerate()
                .all(|(i, e)| e.stream_version == i as u64 + 1),
            "{stream} is contiguous"
        );
        total += read.len() as u64;
    }
    assert_eq!(total, written);
}

/// A stream id no store can hold (empty, a NUL, too long) is refused with
/// `InvalidStreamId` by every operation, before anything is read or written.
pub async fn invalid_stream_ids_are_refused_before_anything_is_touched<F: StoreFactory>(
    _: &F,
    store: &F::Store,
) {
    let too_long = "x".repeat(StreamId::MAX_LEN + 1);
    let longest = StreamId::new("y".repeat(StreamId::MAX_LEN));
    for bad in ["", "Account-a\0b", too_long.as_str()] {
        let stream = StreamId::new(bad);
        let expect = |what: &str, error: StoreError| {
            assert!(
                matches!(error, StoreError::InvalidStreamId(_)),
                "{what} of {:?}: expected InvalidStreamId, got {error:?}",
                &bad[..bad.len().min(20)]
            );
        };
        expect(
            "append",
            store
                .append(&stream, ExpectedVersion::Any, events(1))
                .await
                .unwrap_err(),
        );
        expect(
            "append_after_seen",
            store
                .append_after_seen(&stream, 0, StreamHint::NONE, None, events(1))
                .await
                .unwrap_err(),
        );
        expect(
            "read_stream",
            store.read_stream(&stream, 1, 10).await.unwrap_err(),
        );
        expect(
            "stream_version",
            store.stream_version(&stream).await.unwrap_err(),
        );
        expect(
            "load_snapshot",
            store.load_snapshot(&stream).await.unwrap_err(),
        );
        let snapshot = Snapshot {
            stream_id: stream.clone(),
            stream_version: 1,
            snapshot_version: 1,
            state: Payload::from_json("{}").unwrap(),
            taken_at: chrono::Utc::now(),
        };
        expect(
            "save_snapshot",
            store.save_snapshot(snapshot).await.unwrap_err(),
        );
    }
    assert!(matches!(
        StreamId::new("").validate(),
        Err(InvalidStreamId::Empty)
    ));
    // The longest allowed id is stored and read back.
    let done = store
        .append(&longest, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    assert_eq!(store.read_stream(&longest, 1, 10).await.unwrap().len(), 1);
    let log = log_through(store, done.last_position).await;
    assert_eq!(log.len(), 1, "only the valid append was written");
}

/// An event no store can hold as it is (a type version above `i32::MAX`, an
/// empty type name, a NUL in its payload or metadata) is refused with
/// `InvalidEvent` naming it, and its append writes nothing.
pub async fn invalid_events_are_refused_alike<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Invalid-1");
    let mut big = event("Big", 1);
    big.event_version = i32::MAX as u32 + 1;
    let mut untyped = event("Untyped", 2);
    untyped.event_type = "".into();
    let nul = NewEvent::new(
        "Nul",
        1,
        Payload::from_json(r#"{"name":"a\u0000b"}"#).unwrap(),
    );
    let mut nul_meta = event("NulMeta", 3);
    nul_meta
        .metadata
        .custom
        .insert("who".into(), serde_json::json!("a\u{0}"));
    for bad in [big, untyped, nul, nul_meta] {
        let id = bad.event_id;
        match store
            .append(&stream, ExpectedVersion::Any, vec![event("Fine", 0), bad])
            .await
        {
            Err(StoreError::InvalidEvent {
                stream: s,
                event_id,
                ..
            }) => assert_eq!((s, event_id), (stream.clone(), id)),
            other => panic!("expected InvalidEvent, got {other:?}"),
        }
    }
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
    // The largest version every store keeps is kept.
    let mut largest = event("Largest", 4);
    largest.event_version = i32::MAX as u32;
    store
        .append(&stream, ExpectedVersion::NoStream, vec![largest])
        .await
        .unwrap();
    let read = store.read_stream(&stream, 1, 10).await.unwrap();
    assert_eq!(read[0].event_version, i32::MAX as u32);
}

/// `lock_stream` lets one locker of a stream in at a time, across handles of
/// the same database where the store says it reaches them; other streams are
/// not held up; dropping the lock lets the next locker in.
pub async fn stream_locks_exclude_other_lockers<F: StoreFactory>(factory: &F, store: &F::Store) {
    let other = factory.open_again(store).await;
    let (a, b) = (StreamId::new("Locked-a"), StreamId::new("Locked-b"));
    let held = store.lock_stream(&a).await.unwrap();
    assert!(held.is_exclusive(), "shipped stores lock for real");
    let free = tokio::time::timeout(Duration::from_secs(5), other.lock_stream(&b))
        .await
        .expect("another stream is not held up")
        .unwrap();
    drop(free);
    let waiter = tokio::spawn({
        let other = other.clone();
        let a = a.clone();
        async move {
            other
                .lock_stream(&a)
                .await
                .map(|lock| (lock, std::time::Instant::now()))
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "a second locker of the stream waits");
    let released = std::time::Instant::now();
    drop(held);
    let (second, got) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter gets the stream once it is released")
        .unwrap()
        .unwrap();
    assert!(got >= released);
    drop(second);
    // Released for good: the first handle takes it again at once.
    let again = tokio::time::timeout(Duration::from_secs(10), store.lock_stream(&a))
        .await
        .expect("a released stream can be locked again")
        .unwrap();
    drop(again);
}

/// Writers racing on one stream with `Exact` each win or get a typed conflict;
/// the stream ends with no version lost or written twice.
pub async fn concurrent_writers_of_one_stream_never_overwrite<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
) {
    let stream = StreamId::new("Contended-1");
    // Half the writers on a second handle of the database, as another process.
    let other = factory.open_again(store).await;
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let store = if w % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            let stream = stream.clone();
            tokio::spawn(async move {
                let mut won = 0u64;
                let mut conflicts = 0u64;
                while won < 5 {
                    let at = store.stream_version(&stream).await.unwrap().unwrap_or(0);
                    match store
                        .append(&stream, ExpectedVersion::Exact(at), vec![event("Raced", w)])
                        .await
                    {
                        Ok(done) => {
                            assert_eq!(done.stream_version, at + 1);
                            won += 1;
                        }
                        Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                            assert!(
                                actual.unwrap_or(0) > at,
                                "a conflict reports a newer version"
                            );
                            conflicts += 1;
                        }
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                conflicts
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer task");
    }
    let read = store.read_stream(&stream, 1, 1000).await.unwrap();
    assert_eq!(read.len(), 40);
    assert!(
        read.iter()
            .enumerate()
            .all(|(i, e)| e.stream_version == i as u64 + 1)
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(40));
}

/// Re-appending a recorded event id fails with `DuplicateEventId` and writes nothing,
/// whether in the same stream, another stream or twice in one batch.
pub async fn duplicate_event_id_is_rejected_and_nothing_written<F: StoreFactory>(
    _: &F,
    store: &F::Store,
) {
    let stream = StreamId::new("Dup-1");
    let first = event("Once", 1);
    store
        .append(&stream, ExpectedVersion::Any, vec![first.clone()])
        .await
        .unwrap();

    for (target, expected) in [
        (stream.clone(), ExpectedVersion::Any),
        (stream.clone(), ExpectedVersion::Exact(1)),
        (StreamId::new("Dup-2"), ExpectedVersion::NoStream),
    ] {
        match store.append(&target, expected, vec![first.clone()]).await {
            Err(StoreError::DuplicateEventId {
                stream: s,
                event_id,
            }) => {
                assert_eq!(s, target);
                assert_eq!(event_id, first.event_id);
            }
            other => panic!("expected DuplicateEventId, got {other:?}"),
        }
    }
    let twice = event("Twice", 2);
    let err = store
        .append(
            &StreamId::new("Dup-3"),
            ExpectedVersion::Any,
            vec![twice.clone(), twice.clone()],
        )
        .await;
    assert!(
        matches!(err, Err(StoreError::DuplicateEventId { event_id, .. }) if event_id == twice.event_id),
        "got {err:?}"
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(1));
    for s in ["Dup-2", "Dup-3"] {
        assert_eq!(store.stream_version(&StreamId::new(s)).await.unwrap(), None);
    }
    let marker = store
        .append(
            &StreamId::new("Dup-marker"),
            ExpectedVersion::NoStream,
            events(1),
        )
        .await
        .unwrap();
    assert_eq!(
        log_through(store, marker.last_position).await.len(),
        2,
        "rejected appends left events behind"
    );
}

/// Many appends at once, a few of them bad (a wrong expected version, a
/// recorded event id, a new stream that already exists): each bad one fails
/// with its own typed error and writes nothing, every other one commits whole.
/// Stores that write concurrent appends together must keep them apart.
pub async fn concurrent_appends_fail_alone<F: StoreFactory>(_: &F, store: &F::Store) {
    const STREAMS: u64 = 24;
    let recorded = event("Recorded", 0);
    for s in 0..STREAMS {
        let first = if s == 0 {
            recorded.clone()
        } else {
            event("Opened", s)
        };
        store
            .append(
                &StreamId::new(format!("Mixed-{s}")),
                ExpectedVersion::NoStream,
                vec![first],
            )
            .await
            .unwrap();
    }
    // What each stream gets, and what must become of it.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Fate {
        Written(usize),
        WrongVersion,
        Duplicate,
    }
    let plan = |s: u64| -> (ExpectedVersion, Vec<NewEvent>, Fate) {
        match s {
            5 => (ExpectedVersion::Exact(7), events(1), Fate::WrongVersion),
            11 => (ExpectedVersion::NoStream, events(2), Fate::WrongVersion),
            17 => (
                ExpectedVersion::Exact(1),
                vec![event("Fresh", 1), recorded.clone()],
                Fate::Duplicate,
            ),
            s if s % 3 == 0 => (ExpectedVersion::Exact(1), events(3), Fate::Written(3)),
            s if s % 3 == 1 => (ExpectedVersion::Any, events(1), Fate::Written(1)),
            _ => (ExpectedVersion::StreamExists, events(2), Fate::Written(2)),
        }
    };
    let tasks: Vec<_> = (0..STREAMS)
        .map(|s| {
            let store = store.clone();
            let (expected, batch, fate) = plan(s);
            tokio::spawn(async move {
                let stream = StreamId::new(format!("Mixed-{s}"));
                (s, fate, store.append(&stream, expected, batch).await)
            })
        })
        .collect();
    let mut last = 0;
    for t in tasks {
        let (s, fate, result) = t.await.expect("append task");
        let stream = StreamId::new(format!("Mixed-{s}"));
        match (fate, result) {
            (Fate::Written(n), Ok(done)) => {
                assert_eq!(done.stream_version, 1 + n as u64, "stream {s}");
                last = last.max(done.last_position);
                let read = store.read_stream(&stream, 2, 10).await.unwrap();
                assert_eq!(read.len(), n, "stream {s}");
                assert_eq!(read[0].global_position, done.first_position);
                assert_eq!(read[n - 1].global_position, done.last_position);
            }
            (Fate::WrongVersion, Err(StoreError::WrongExpectedVersion { actual, .. })) => {
                assert_eq!(actual, Some(1), "stream {s}");
            }
            (Fate::Duplicate, Err(StoreError::DuplicateEventId { event_id, .. })) => {
                assert_eq!(event_id, recorded.event_id, "stream {s}");
            }
            (fate, result) => panic!("stream {s}: expected {fate:?}, got {result:?}"),
        }
        if !matches!(fate, Fate::Written(_)) {
            assert_eq!(store.stream_version(&stream).await.unwrap(), Some(1));
        }
    }
    let written: usize = (0..STREAMS)
        .map(|s| match plan(s).2 {
            Fate::Written(n) => n,
            _ => 0,
        })
        .sum();
    let log = log_through(store, last).await;
    assert_eq!(log.len(), STREAMS as usize + written);
    assert_strictly_increasing(&log);
}

/// `read_stream` pages by version and bounds by count.
pub async fn read_stream_pages<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Paged-1");
    store
        .append(&stream, ExpectedVersion::NoStream, events(12))
        .await
        .unwrap();
    store
        .append(
            &StreamId::new("Paged-2"),
            ExpectedVersion::NoStream,
            events(3),
        )
        .await
        .unwrap();
    store
        .append(&stream, ExpectedVersion::Exact(12), events(13))
        .await
        .unwrap();

    let mut versions = Vec::new();
    let mut from = 1;
    loop {
        let page = store.read_stream(&stream, from, 10).await.unwrap();
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        from = last.stream_version + 1;
        versions.extend(page.iter().map(|e| e.stream_version));
    }
    assert_eq!(versions, (1..=25).collect::<Vec<_>>());
    let tail = store.read_stream(&stream, 24, 10).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [24, 25]
    );
    assert!(store.read_stream(&stream, 26, 10).await.unwrap().is_empty());
    assert!(store.read_stream(&stream, 1, 0).await.unwrap().is_empty());
    assert!(
        store
            .read_stream(&StreamId::new("Paged-none"), 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Version 0 does not exist: reading from it reads from the start.
    assert_eq!(
        store.read_stream(&stream, 0, 2).await.unwrap()[0].stream_version,
        1
    );
}

/// `read_all` pages through the global log from any position.
pub async fn read_all_pages<F: StoreFactory>(_: &F, store: &F::Store) {
    let mut appended = Vec::new();
    for round in 0..5u64 {
        for s in 0..4u64 {
            let stream = StreamId::new(format!("Global-{s}"));
            let n = (round + s) % 3 + 1;
            let done = store
                .append(&stream, ExpectedVersion::Any, events(n))
                .await
                .unwrap();
            appended.push((stream, done, n));
        }
    }
    let total: u64 = appended.iter().map(|a| a.2).sum();
    let settled = log_through(store, appended.last().unwrap().1.last_position).await;
    let mut log = Vec::new();
    let mut next = 0;
    loop {
        let page = store.read_all(next, 7).await.unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        next = last.global_position + 1;
        log.extend(page);
    }
    assert_eq!(log.len() as u64, total);
    assert_strictly_increasing(&log);
    assert_eq!(settled, log);
    for (stream, done, n) in &appended {
        let mine: Vec<_> = log
            .iter()
            .filter(|e| (done.first_position..=done.last_position).contains(&e.global_position))
            .collect();
        assert_eq!(mine.len() as u64, *n);
        assert!(mine.iter().all(|e| &e.stream_id == stream));
        assert_eq!(mine.last().unwrap().stream_version, done.stream_version);
    }
    let from_middle = store.read_all(log[10].global_position, 3).await.unwrap();
    assert_eq!(from_middle, log[10..13]);
    assert!(
        store
            .read_all(log.last().unwrap().global_position + 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.read_all(1, 0).await.unwrap().is_empty());
}

/// A follower of the global log, running while 8 writers append to their own
/// streams, ends with exactly the log's events, in order, none skipped; so does
/// a reader paging with `read_all`.
pub async fn gap_safe_global_order_with_concurrent_writers<F: StoreFactory>(
    _: &F,
    store: &F::Store,
) {
    const WRITERS: u64 = 8;
    const APPENDS: u64 = 40;
    let expected_total: u64 = (0..WRITERS)
        .map(|w| (0..APPENDS).map(|a| (w + a) % 3 + 1).sum::<u64>())
        .sum();

    let follower = {
        let mut sub = store.subscribe_all(1);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while (seen.len() as u64) < expected_total {
                match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
                    Ok(Some(Ok(e))) => seen.push(e),
                    Ok(Some(Err(e))) => panic!("subscription failed: {e}"),
                    Ok(None) => panic!("subscription ended"),
                    Err(_) => panic!(
                        "follower stalled after {} of {expected_total} events",
                        seen.len()
                    ),
                }
            }
            seen
        })
    };
    let pager = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen: Vec<RecordedEvent> = Vec::new();
            let started = std::time::Instant::now();
            while (seen.len() as u64) < expected_total {
                let next = seen.last().map_or(1, |e| e.global_position + 1);
                let page = store.read_all(next, 50).await.expect("read_all");
                if page.is_empty() {
                    assert!(started.elapsed() < Duration::from_secs(60), "pager stalled");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                seen.extend(page);
            }
            seen
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("Writer-{w}"));
                let mut last = 0;
                for a in 0..APPENDS {
                    last = store
                        .append(&stream, ExpectedVersion::Any, events((w + a) % 3 + 1))
                        .await
                        .expect("append")
                        .last_position;
                }
                last
            })
        })
        .collect();
    let mut last = 0;
    for w in writers {
        last = last.max(w.await.expect("writer task"));
    }
    let followed = follower.await.expect("follower task");
    let paged = pager.await.expect("pager task");
    let table = log_through(store, last).await;
    assert_eq!(table.len() as u64, expected_total);
    assert_strictly_increasing(&table);
    let ids = |v: &[RecordedEvent]| {
        v.iter()
            .map(|e| (e.global_position, e.event_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&followed),
        ids(&table),
        "the follower saw the log, in order, nothing skipped"
    );
    assert_eq!(
        ids(&paged),
        ids(&table),
        "the pager saw the log, in order, nothing skipped"
    );
    for w in 0..WRITERS {
        let stream = StreamId::new(format!("Writer-{w}"));
        let versions: Vec<_> = table
            .iter()
            .filter(|e| e.stream_id == stream)
            .map(|e| e.stream_version)
            .collect();
        assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    }
}

/// The next event of a subscription, failing the test after 10 s.
pub async fn next_event(
    sub: &mut futures::stream::BoxStream<'static, Result<RecordedEvent, StoreError>>,
) -> RecordedEvent {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("subscription delivers within 10 s")
        .expect("subscription continues")
        .expect("no error")
}

/// `subscribe_all` starts at the given position and then follows new appends.
pub async fn subscribe_all_from_a_position<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Sub-1");
    let done = store
        .append(&stream, ExpectedVersion::NoStream, events(5))
        .await
        .unwrap();
    let log = log_through(store, done.last_position).await;
    let mut sub = store.subscribe_all(log[3].global_position);
    assert_eq!(next_event(&mut sub).await, log[3]);
    assert_eq!(next_event(&mut sub).await, log[4]);
    let later = store
        .append(&stream, ExpectedVersion::Exact(5), events(2))
        .await
        .unwrap();
    let sixth = next_event(&mut sub).await;
    assert_eq!(
        (sixth.stream_version, sixth.global_position),
        (6, later.first_position)
    );
    assert_eq!(
        next_event(&mut sub).await.global_position,
        later.last_position
    );
    // Nothing more arrives until something is appended.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sub.next())
            .await
            .is_err()
    );
}

/// A snapshot is saved, loaded, and replaced by the next one of its stream.
pub async fn snapshots_save_load_replace<F: StoreFactory>(_: &F, store: &F::Store) {
    let stream = StreamId::new("Snap-1");
    assert_eq!(store.load_snapshot(&stream).await.unwrap(), None);
    let taken_at = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
    let first = Snapshot {
        stream_id: stream.clone(),
        stream_version: 10,
        snapshot_version: 1,
        state: Payload::from_json(r#"{"balance": 100, "owner": "ada"}"#).unwrap(),
        taken_at,
    };
    store.save_snapshot(first.clone()).await.unwrap();
    let loaded = store
        .load_snapshot(&stream)
        .await
        .unwrap()
        .expect("saved snapshot");
    assert_eq!(
        (
            loaded.stream_version,
            loaded.snapshot_version,
            loaded.taken_at,
            loaded.state.to_value()
        ),
        (10, 1, taken_at, first.state.to_value())
    );
    let second = Snapshot {
        stream_version: 20,
        snapshot_version: 2,
        state: Payload::from_json("[1,2]").unwrap(),
        ..first
    };
    store.save_snapshot(second).await.unwrap();
    let loaded = store
        .load_snapshot(&stream)
        .await
        .unwrap()
        .expect("replaced snapshot");
    assert_eq!((loaded.stream_version, loaded.snapshot_version), (20, 2));
    assert_eq!(loaded.state.to_value(), serde_json::json!([1, 2]));
    assert_eq!(
        store.load_snapshot(&StreamId::new("Snap-2")).await.unwrap(),
        None
    );
}

/// A row the store cannot decode gives `Corrupt` naming its stream and version;
/// other streams still read.
pub async fn corrupt_event_is_a_typed_error<F: StoreFactory>(factory: &F, store: &F::Store) {
    let healthy = StreamId::new("Healthy-1");
    store
        .append(&healthy, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    let bad = StreamId::new("Broken-1");
    if !factory.write_corrupt_event(store, &bad).await {
        return;
    }
    match store.read_stream(&bad, 1, 10).await {
        Err(StoreError::Corrupt {
            stream,
            version,
            reason,
            ..
        }) => {
            assert_eq!(
                (stream, version),
                (bad.clone(), Some(1)),
                "names the row: {reason}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let started = std::time::Instant::now();
    let mut next = 1;
    loop {
        match store.read_all(next, 100).await {
            Err(StoreError::Corrupt {
                stream, version, ..
            }) => {
                assert_eq!((stream, version), (bad, Some(1)));
                break;
            }
            // The healthy events first; nothing while the bad row is not yet readable.
            Ok(events) if started.elapsed() < Duration::from_secs(10) => {
                assert!(events.iter().all(|e| e.stream_id == healthy));
                match events.last() {
                    Some(last) => next = last.global_position + 1,
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
            other => panic!("expected Corrupt from read_all, got {other:?}"),
        }
    }
    assert_eq!(store.read_stream(&healthy, 1, 10).await.unwrap().len(), 2);
    store
        .append(&healthy, ExpectedVersion::Exact(2), events(1))
        .await
        .unwrap();
    assert_eq!(store.stream_version(&healthy).await.unwrap(), Some(3));
}

/// One corrupt event in the global log does not stall it: the events before
/// it come back, the error names its stream, version and global position,
/// and a reader that chooses to step past it reads on from the next position,
/// with `read_all` and with `subscribe_all` alike.
pub async fn a_corrupt_event_does_not_hold_back_the_others<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
) {
    let before = StreamId::new("Before-1");
    store
        .append(&before, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    let bad = StreamId::new("Broken-2");
    if !factory.write_corrupt_event(store, &bad).await {
        return;
    }
    let after = StreamId::new("After-1");
    let last = store
        .append(&after, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    // Wait until the whole log is readable: the bad event is then settled too.
    let started = std::time::Instant::now();
    let bad_position = loop {
        match store.read_all(last.last_position, 10).await {
            Err(e) => panic!("reading past the bad event failed: {e:?}"),
            Ok(page) if page.is_empty() => {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the log never settled"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(_) => break last.first_position - 1,
        }
    };
    // From the start: the two good events before it, then (next call) the error.
    let page = store
        .read_all(1, 100)
        .await
        .expect("the events before the bad one");
    assert_eq!(
        page.iter().map(|e| e.stream_id.clone()).collect::<Vec<_>>(),
        vec![before.clone(), before.clone()],
        "read_all returns the good events before the bad one"
    );
    let from = page.last().unwrap().global_position + 1;
    let error = store.read_all(from, 100).await.unwrap_err();
    match &error {
        StoreError::Corrupt {
            stream,
            version,
            position,
            ..
        } => assert_eq!(
            (stream, *version, *position),
            (&bad, Some(1), Some(bad_position))
        ),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(error.corrupt_position(), Some(bad_position));
    let rest = store.read_all(bad_position + 1, 100).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.stream_id.clone()).collect::<Vec<_>>(),
        vec![after.clone(), after.clone()]
    );

    // A subscription delivers the good events, then the named error, then ends.
    let mut live = store.subscribe_all(1);
    for _ in 0..2 {
        assert_eq!(next_event(&mut live).await.stream_id, before);
    }
    let failed = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .expect("the subscription reports the bad event")
        .expect("an item, not the end");
    assert_eq!(failed.unwrap_err().corrupt_position(), Some(bad_position));
    assert!(
        tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("the subscription ends")
            .is_none()
    );
    // Subscribing again past it steps over it.
    let mut resumed = store.subscribe_all(bad_position + 1);
    for _ in 0..2 {
        assert_eq!(next_event(&mut resumed).await.stream_id, after);
    }
}

/// `close` loses nothing: everything appended and saved before it is there
/// for whoever opens the database next, and closing twice is harmless.
pub async fn closing_keeps_everything_for_the_next_opener<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
) {
    let (a, b) = (StreamId::new("Closing-a"), StreamId::new("Closing-b"));
    store
        .append(&a, ExpectedVersion::NoStream, events(3))
        .await
        .unwrap();
    store
        .append(&b, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let last = store
        .append_after_seen(&a, 3, StreamHint::NONE, None, events(2))
        .await
        .unwrap()
        .last_position;
    let snapshot = Snapshot {
        stream_id: a.clone(),
        stream_version: 5,
        snapshot_version: 1,
        state: Payload::from_json(r#"{"n":5}"#).unwrap(),
        taken_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    };
    store.save_snapshot(snapshot.clone()).await.unwrap();
    store
        .save_checkpoint("Closing.projector", last)
        .await
        .unwrap();
    // A store may hold back the newest events until they settle: wait for them.
    let written = log_through(store, last).await;
    store.close().await.unwrap();
    store.close().await.unwrap();

    let again = factory.open_again(store).await;
    let read = log_through(&again, last).await;
    assert_eq!(
        read.iter()
            .map(|e| (e.event_id, e.global_position))
            .collect::<Vec<_>>(),
        written
            .iter()
            .map(|e| (e.event_id, e.global_position))
            .collect::<Vec<_>>()
    );
    assert_eq!(again.stream_version(&a).await.unwrap(), Some(5));
    assert_eq!(again.stream_version(&b).await.unwrap(), Some(1));
    let loaded = again
        .load_snapshot(&a)
        .await
        .unwrap()
        .expect("the snapshot");
    assert_eq!(
        (loaded.stream_version, loaded.taken_at),
        (5, snapshot.taken_at)
    );
    assert_eq!(
        again.checkpoints().await.unwrap(),
        [("Closing.projector".to_owned(), last)]
    );
    again.close().await.unwrap();
}

/// While one caller holds a stream's lock, `append_after_seen` by a caller
/// without it (on another handle of the database, as another process would
/// be) yields with `StreamLocked` and writes nothing; the holder appends; a
/// plain `append` never yields; once released, everyone appends again.
pub async fn append_after_seen_yields_to_a_lock_holder<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
) {
    let other = factory.open_again(store).await;
    let stream = StreamId::new("Turn-1");
    let free = StreamId::new("Turn-2");
    store
        .append(&stream, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let held = store.lock_stream(&stream).await.unwrap();
    for handle in [store, &other] {
        match handle
            .append_after_seen(&stream, 1, StreamHint::NONE, None, events(1))
            .await
        {
            Err(StoreError::StreamLocked { stream: s }) => assert_eq!(s, stream),
            other => panic!("expected StreamLocked, got {other:?}"),
        }
    }
    assert!(
        StoreError::StreamLocked {
            stream: stream.clone()
        }
        .is_conflict()
    );
    // Another stream is not held up.
    other
        .append_after_seen(&free, 0, StreamHint::NONE, None, events(1))
        .await
        .unwrap();
    // A lock of another stream does not count as this one's.
    let elsewhere = store.lock_stream(&free).await.unwrap();
    assert!(matches!(
        other
            .append_after_seen(&stream, 1, StreamHint::NONE, Some(&elsewhere), events(1))
            .await,
        Err(StoreError::StreamLocked { .. })
    ));
    drop(elsewhere);
    let mine = store
        .append_after_seen(&stream, 1, StreamHint::NONE, Some(&held), events(1))
        .await
        .expect("the holder appends");
    assert_eq!(mine.stream_version, 2);
    // A plain append, with an expected version, is never held up by a lock.
    other
        .append(&stream, ExpectedVersion::Exact(2), events(1))
        .await
        .expect("append does not yield");
    drop(held);
    // Released (a store may release asynchronously): appends go through again.
    let started = std::time::Instant::now();
    loop {
        match other
            .append_after_seen(&stream, 3, StreamHint::NONE, None, events(1))
            .await
        {
            Ok(done) => {
                assert_eq!(done.stream_version, 4);
                break;
            }
            Err(StoreError::StreamLocked { .. }) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => panic!("after the release: {other:?}"),
        }
    }
    assert_eq!(store.read_stream(&stream, 1, 10).await.unwrap().len(), 4);
}

/// Checkpoints: none until saved; a save inserts or replaces (backwards too,
/// as a rebuild does); a delete forgets one, and deleting what is not there
/// is no error; the list is sorted by name, byte-wise; another handle on the
/// database sees the same checkpoints.
pub async fn checkpoints_are_kept_replaced_listed_and_deleted<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
) {
    assert_eq!(store.load_checkpoint("projector").await.unwrap(), None);
    assert_eq!(store.checkpoints().await.unwrap(), []);
    store.save_checkpoint("projector", 42).await.unwrap();
    assert_eq!(store.load_checkpoint("projector").await.unwrap(), Some(42));
    store.save_checkpoint("projector", 7).await.unwrap();
    assert_eq!(
        store.load_checkpoint("projector").await.unwrap(),
        Some(7),
        "a checkpoint may move backwards"
    );
    store.save_checkpoint("projector", 0).await.unwrap();
    assert_eq!(store.load_checkpoint("projector").await.unwrap(), Some(0));
    let largest = i64::MAX as u64;
    for (name, position) in [
        ("projector", 9),
        ("b", 2),
        ("ä", largest),
        ("a.b", 3),
        ("B", 4),
        ("a", 5),
    ] {
        store.save_checkpoint(name, position).await.unwrap();
    }
    let listed = vec![
        ("B".to_owned(), 4),
        ("a".to_owned(), 5),
        ("a.b".to_owned(), 3),
        ("b".to_owned(), 2),
        ("projector".to_owned(), 9),
        ("ä".to_owned(), largest),
    ];
    assert_eq!(store.checkpoints().await.unwrap(), listed);
    assert_eq!(store.load_checkpoint("ä").await.unwrap(), Some(largest));
    assert_eq!(store.load_checkpoint("A").await.unwrap(), None);

    let other = factory.open_again(store).await;
    assert_eq!(other.checkpoints().await.unwrap(), listed);
    other.delete_checkpoint("a").await.unwrap();
    other.delete_checkpoint("a").await.unwrap();
    other.delete_checkpoint("never-saved").await.unwrap();
    assert_eq!(store.load_checkpoint("a").await.unwrap(), None);
    assert_eq!(store.load_checkpoint("a.b").await.unwrap(), Some(3));
    other.save_checkpoint("b", 20).await.unwrap();
    assert_eq!(store.load_checkpoint("b").await.unwrap(), Some(20));
    let names: Vec<String> = store
        .checkpoints()
        .await
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["B", "a.b", "b", "projector", "ä"]);
}

/// A checkpoint name no store can hold (empty, a NUL, longer than 1024
/// bytes) and a position above `i64::MAX` are refused by every checkpoint
/// operation with the same `InvalidCheckpoint`, and nothing is written.
pub async fn checkpoint_names_and_positions_are_refused_alike<F: StoreFactory>(
    _: &F,
    store: &F::Store,
) {
    let too_long = "é".repeat(513);
    let bad_names = [
        ("", InvalidCheckpoint::EmptyName),
        (
            "a\0b",
            InvalidCheckpoint::NulInName {
                name: "a\0b".to_owned(),
            },
        ),
        (
            too_long.as_str(),
            InvalidCheckpoint::NameTooLong {
                len: 1026,
                max: 1024,
                start: "é".repeat(40),
            },
        ),
    ];
    for (name, expected) in bad_names {
        let shown = &name[..name.len().min(8)];
        let check = |what: &str, error: StoreError| match error {
            StoreError::InvalidCheckpoint(e) => assert_eq!(e, expected, "{what} of {shown:?}"),
            other => panic!("{what} of {shown:?}: expected InvalidCheckpoint, got {other:?}"),
        };
        check("load", store.load_checkpoint(name).await.unwrap_err());
        check("save", store.save_checkpoint(name, 1).await.unwrap_err());
        check("delete", store.delete_checkpoint(name).await.unwrap_err());
    }
    for position in [i64::MAX as u64 + 1, u64::MAX] {
        match store.save_checkpoint("projector", position).await {
            Err(StoreError::InvalidCheckpoint(InvalidCheckpoint::PositionTooLarge {
                name,
                position: p,
                max,
            })) => assert_eq!(
                (name.as_str(), p, max),
                ("projector", position, i64::MAX as u64)
            ),
            other => panic!("position {position}: expected PositionTooLarge, got {other:?}"),
        }
    }
    assert_eq!(
        store.checkpoints().await.unwrap(),
        [],
        "nothing was written"
    );
    // The longest name every store keeps is kept, multi-byte characters included.
    let longest = "é".repeat(512);
    store.save_checkpoint(&longest, 1).await.unwrap();
    assert_eq!(store.load_checkpoint(&longest).await.unwrap(), Some(1));
}

/// Every page of a filtered read of the whole log from position 1, `max_count`
/// at a time, until a read returns nothing and stays where it started; the
/// events, and where the reader ends.
pub async fn read_filtered_log<S: EventStore + ?Sized>(
    store: &S,
    filter: &EventFilter,
    max_count: usize,
) -> (Vec<RecordedEvent>, u64) {
    let mut all: Vec<RecordedEvent> = Vec::new();
    let mut next = 1;
    for _ in 0..10_000 {
        let page = store
            .read_all_filtered(next, max_count, filter)
            .await
            .unwrap_or_else(|e| panic!("read_all_filtered({next}, {max_count}): {e:?}"));
        assert!(
            page.events.len() <= max_count,
            "a page holds at most max_count events"
        );
        assert!(page.next_position >= next, "next_position never moves back");
        if let Some(last) = page.events.last() {
            assert!(
                page.next_position > last.global_position,
                "next_position {} is past the last event returned ({})",
                page.next_position,
                last.global_position
            );
        }
        for e in &page.events {
            assert!(e.global_position >= next, "an event below from_position");
            assert!(
                filter.matches(e),
                "an event the filter does not want: {e:?}"
            );
        }
        if page.events.is_empty() && page.next_position == next {
            assert_strictly_increasing(&all);
            return (all, next);
        }
        next = page.next_position;
        all.extend(page.events);
    }
    panic!("a filtered read of a settled log never came to its end");
}

/// Appends each batch to its stream, in order, and returns the global log once
/// it is readable through the last, with the last position.
async fn append_all<S: EventStore + ?Sized>(
    store: &S,
    plan: impl IntoIterator<Item = (String, Vec<NewEvent>)>,
) -> (Vec<RecordedEvent>, u64) {
    let mut last = 0;
    for (stream, batch) in plan {
        last = store
            .append(&StreamId::new(stream), ExpectedVersion::Any, batch)
            .await
            .unwrap()
            .last_position;
    }
    (log_through(store, last).await, last)
}

fn stream_and_type(events: &[RecordedEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e.stream_id.to_string(), e.event_type.to_string()))
        .collect()
}

/// A filtered read returns exactly the events of the wanted types, of the
/// wanted categories (the part of the stream id before the first `-`,
/// compared whole: `Acc` is not `Account`, and `_` or `%` are not wildcards),
/// or both, in log order; an empty list wants nothing; the default wants all.
pub async fn filtered_reads_select_by_type_category_or_both<F: StoreFactory>(
    _: &F,
    store: &F::Store,
) {
    let plan: [(&str, &[&'static str]); 8] = [
        ("Account-1", &["Opened", "Deposited", "Withdrawn"]),
        ("Acc-1", &["Deposited"]),
        ("Loan-1", &["Deposited", "Opened"]),
        ("Accounting-1", &["Opened"]),
        ("nocategory", &["Deposited"]),
        ("Account-2", &["Deposited"]),
        ("Ac_-x-1", &["Opened"]),
        ("Account-1", &["Deposited"]),
    ];
    let (log, last) = append_all(
        store,
        plan.iter().map(|(stream, types)| {
            (
                stream.to_string(),
                types.iter().map(|t| event(t, 0)).collect(),
            )
        }),
    )
    .await;
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(s, t)| (s.to_string(), t.to_string()))
            .collect()
    };
    let cases: Vec<(EventFilter, Vec<(String, String)>)> = vec![
        (
            EventFilter::all().event_types(["Deposited"]),
            pairs(&[
                ("Account-1", "Deposited"),
                ("Acc-1", "Deposited"),
                ("Loan-1", "Deposited"),
                ("nocategory", "Deposited"),
                ("Account-2", "Deposited"),
                ("Account-1", "Deposited"),
            ]),
        ),
        (
            EventFilter::all().event_types(["Withdrawn", "Opened", "Withdrawn"]),
            pairs(&[
                ("Account-1", "Opened"),
                ("Account-1", "Withdrawn"),
                ("Loan-1", "Opened"),
                ("Accounting-1", "Opened"),
                ("Ac_-x-1", "Opened"),
            ]),
        ),
        (
            EventFilter::all().categories(["Account"]),
            pairs(&[
                ("Account-1", "Opened"),
                ("Account-1", "Deposited"),
                ("Account-1", "Withdrawn"),
                ("Account-2", "Deposited"),
                ("Account-1", "Deposited"),
            ]),
        ),
        (
            EventFilter::all().categories(["Acc"]),
            pairs(&[("Acc-1", "Deposited")]),
        ),
        (
            EventFilter::all().categories(["Ac_", "Loan"]),
            pairs(&[
                ("Loan-1", "Deposited"),
                ("Loan-1", "Opened"),
                ("Ac_-x-1", "Opened"),
            ]),
        ),
        (
            EventFilter::all()
                .categories(["Account", "Acc"])
                .event_types(["Deposited"]),
            pairs(&[
                ("Account-1", "Deposited"),
                ("Acc-1", "Deposited"),
                ("Account-2", "Deposited"),
                ("Account-1", "Deposited"),
            ]),
        ),
        // Neither a wildcard nor a prefix, nor a category holding `-`.
        (
            EventFilter::all().categories(["Ac%", "A_c", "Ac", "Account-1", "nocategory", ""]),
            vec![],
        ),
        (
            EventFilter::all().event_types(Vec::<&'static str>::new()),
            vec![],
        ),
        (
            EventFilter::all()
                .categories(Vec::<String>::new())
                .event_types(["Opened"]),
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        let (read, end) = read_filtered_log(store, &filter, 100).await;
        assert_eq!(stream_and_type(&read), expected, "{filter:?}");
        let oracle: Vec<RecordedEvent> =
            log.iter().filter(|e| filter.matches(e)).cloned().collect();
        assert_eq!(
            read, oracle,
            "{filter:?}: the events as read_all returns them"
        );
        assert!(
            end > last,
            "{filter:?}: the reader ends past the log ({end} <= {last})"
        );
    }
    let (everything, _) = read_filtered_log(store, &EventFilter::all(), 100).await;
    assert_eq!(everything, log);
}

/// Paging a filtered read with a small `max_count` returns every wanted
/// event exactly once, in order, whatever the page size.
pub async fn filtered_reads_page_each_match_once_in_order<F: StoreFactory>(
    _: &F,
    store: &F::Store,
) {
    let plan = (0..60u64).map(|i| {
        let (stream, type_) = match i % 5 {
            0 => (format!("Order-{}", i % 3), "Placed"),
            1 => (format!("Order-{}", i % 3), "Shipped"),
            2 => (format!("Invoice-{}", i % 2), "Placed"),
            3 => (format!("Order-{}", i % 3), "Placed"),
            _ => (format!("Other-{i}"), "Noise"),
        };
        (stream, (0..1 + i % 3).map(|n| event(type_, n)).collect())
    });
    let (log, _) = append_all(store, plan).await;
    let filter = EventFilter::all()
        .categories(["Order"])
        .event_types(["Placed"]);
    let expected: Vec<_> = log
        .iter()
        .filter(|e| e.stream_id.as_str().starts_with("Order-") && e.event_type == "Placed")
        .cloned()
        .collect();
    assert!(expected.len() > 20);
    for max_count in [1, 2, 3, 7, 1000] {
        let (read, _) = read_filtered_log(store, &filter, max_count).await;
        assert_eq!(
            read.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            expected.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            "pages of {max_count}"
        );
    }
    // A page that fills stops right after its last event.
    let page = store.read_all_filtered(1, 3, &filter).await.unwrap();
    assert_eq!(page.events, expected[..3]);
    assert_eq!(page.next_position, expected[2].global_position + 1);
    // Position 0 reads as 1, and `max_count` 0 reads nothing.
    assert_eq!(store.read_all_filtered(0, 3, &filter).await.unwrap(), page);
    let none = store.read_all_filtered(5, 0, &filter).await.unwrap();
    assert!(none.events.is_empty());
    assert_eq!(none.next_position, 5);
}

/// A reader of a rare event type gets past a long run of events it does not
/// want in a bounded number of reads, and its `next_position` moves past
/// them even when nothing matched, so a checkpoint never makes it scan them
/// again.
pub async fn filtered_reads_move_past_unwanted_events<F: StoreFactory>(_: &F, store: &F::Store) {
    let noise = StreamId::new("Noise-1");
    let rare = StreamId::new("Signal-1");
    let unwanted = store
        .append(&noise, ExpectedVersion::NoStream, events(50))
        .await
        .unwrap();
    let wanted = store
        .append(&rare, ExpectedVersion::NoStream, vec![event("Rare", 1)])
        .await
        .unwrap();
    log_through(store, wanted.last_position).await;
    let filter = EventFilter::all().event_types(["Rare"]);
    let mut next = 1;
    let mut reads = 0;
    let found = loop {
        reads += 1;
        assert!(
            reads <= 2,
            "50 unwanted events took more than 2 reads of 10 to pass (at {next})"
        );
        let page = store.read_all_filtered(next, 10, &filter).await.unwrap();
        if let Some(e) = page.events.first() {
            next = page.next_position;
            break e.clone();
        }
        assert!(page.next_position > next, "an empty page moved nowhere");
        next = page.next_position;
    };
    assert_eq!(found.global_position, wanted.first_position);
    assert!(found.global_position > unwanted.last_position);

    // 50 more unwanted events and nothing wanted: the reader's position still
    // moves past them.
    let more = store
        .append(&noise, ExpectedVersion::Exact(50), events(50))
        .await
        .unwrap();
    log_through(store, more.last_position).await;
    let started = std::time::Instant::now();
    while next <= more.last_position {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "next_position stuck at {next}, before the unwanted events end at {}",
            more.last_position
        );
        let page = store.read_all_filtered(next, 10, &filter).await.unwrap();
        assert!(
            page.events.is_empty(),
            "nothing is wanted: {:?}",
            page.events
        );
        assert!(page.next_position >= next);
        next = page.next_position;
    }
    let idle = store.read_all_filtered(next, 10, &filter).await.unwrap();
    assert!(idle.events.is_empty());
    assert_eq!(idle.next_position, next, "nothing more for now");
    // Having moved on never skips what comes next.
    let another = store
        .append(&rare, ExpectedVersion::Exact(1), vec![event("Rare", 2)])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let page = store.read_all_filtered(next, 10, &filter).await.unwrap();
        if let Some(e) = page.events.first() {
            assert_eq!(e.global_position, another.first_position);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the next wanted event was never read from {next}"
        );
        next = page.next_position;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A corrupt event the filter wants is reported as `read_all` reports it
/// (the good events first, then the error naming its position); one it does
/// not want, by its stream or type, does not stop the reader.
pub async fn filtered_reads_pass_over_corrupt_events_they_do_not_want<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
) {
    let (good, later) = (StreamId::new("Good-1"), StreamId::new("Good-2"));
    let bad = StreamId::new("Broken-3");
    store
        .append(
            &good,
            ExpectedVersion::NoStream,
            vec![event("Wanted", 1), event("Wanted", 2)],
        )
        .await
        .unwrap();
    if !factory.write_corrupt_event(store, &bad).await {
        return;
    }
    let after = store
        .append(
            &later,
            ExpectedVersion::NoStream,
            vec![event("Wanted", 3), event("Wanted", 4)],
        )
        .await
        .unwrap();
    let bad_position = after.first_position - 1;
    // Wait until the whole log, the bad event included, is readable.
    let started = std::time::Instant::now();
    while store
        .read_all(after.last_position, 10)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the log never settled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for filter in [
        EventFilter::all().categories(["Good"]),
        EventFilter::all().event_types(["Wanted"]),
    ] {
        let (read, end) = read_filtered_log(store, &filter, 100).await;
        assert_eq!(
            read.iter().map(|e| e.stream_id.clone()).collect::<Vec<_>>(),
            [good.clone(), good.clone(), later.clone(), later.clone()],
            "{filter:?}"
        );
        assert!(end > after.last_position);
    }
    let broken = EventFilter::all().categories(["Broken"]);
    let error = store.read_all_filtered(1, 100, &broken).await.unwrap_err();
    assert_eq!(error.corrupt_position(), Some(bad_position), "{error:?}");
    let past = store
        .read_all_filtered(bad_position + 1, 100, &broken)
        .await
        .unwrap();
    assert!(past.events.is_empty());
    assert!(past.next_position > after.last_position);

    let everything = EventFilter::all();
    let page = store.read_all_filtered(1, 100, &everything).await.unwrap();
    assert_eq!(
        page.events
            .iter()
            .map(|e| e.stream_id.clone())
            .collect::<Vec<_>>(),
        [good.clone(), good.clone()],
        "the good events before the bad one"
    );
    assert_eq!(
        page.next_position, bad_position,
        "the next read starts at the bad one"
    );
    let error = store
        .read_all_filtered(page.next_position, 100, &everything)
        .await
        .unwrap_err();
    assert_eq!(error.corrupt_position(), Some(bad_position));
    let rest = store
        .read_all_filtered(bad_position + 1, 100, &everything)
        .await
        .unwrap();
    assert_eq!(rest.events.len(), 2);
}

/// `watch_log`: with nothing appended, `changed` either resolves after the
/// poll interval (not before) or, for a store that looks for writes on its
/// readers' behalf (`LogWatch::watched`), not at all: no reader is woken
/// for nothing. An append through the store signals it, also when it lands
/// between `mark` and `changed`, and also from another task; an append
/// through another handle on the database (as another process would make)
/// wakes it within the poll interval, by a signal or by polling, and a read
/// then finds the event.
pub async fn log_watch_wakes_on_appends_and_polls_otherwise<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
) {
    let mut watch = store.watch_log();
    let poll = watch.poll_interval();
    let bound = poll * 10 + Duration::from_secs(1);
    // A store may signal when it starts listening and when it first looks
    // at the log; after that, silence: polls, or no wake-up at all.
    let (mut polled, mut signalled, mut quiet) = (0, 0, 0);
    for _ in 0..4 {
        watch.mark();
        let started = tokio::time::Instant::now();
        match tokio::time::timeout(poll * 3, watch.changed()).await {
            Ok(WakeCause::PollInterval) => {
                assert!(started.elapsed() >= poll, "the poll interval is waited out");
                polled += 1;
            }
            Ok(WakeCause::Signal) => signalled += 1,
            Err(_) => quiet += 1,
        }
    }
    assert!(
        signalled <= 2 && polled + quiet >= 2,
        "without appends, {signalled} of 4 waits were signalled ({polled} polled, {quiet} not woken)"
    );

    // An append between mark and changed is not lost.
    let stream = StreamId::new("Watched-1");
    watch.mark();
    let first = store
        .append(&stream, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let cause = tokio::time::timeout(bound, watch.changed())
        .await
        .expect("changed() resolves");
    assert_eq!(cause, WakeCause::Signal, "the append signalled");

    // An append from another task, while waiting.
    watch.mark();
    let writer = tokio::spawn({
        let store = store.clone();
        let stream = stream.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            store
                .append(&stream, ExpectedVersion::Exact(1), events(1))
                .await
                .unwrap()
        }
    });
    let started = std::time::Instant::now();
    // Each wait ends by a signal or the poll interval; the append must signal.
    while tokio::time::timeout(bound, watch.changed())
        .await
        .expect("changed() resolves")
        != WakeCause::Signal
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "an append from another task never signalled"
        );
    }
    let second = writer.await.unwrap();
    assert!(second.first_position > first.last_position);
    log_through(store, second.last_position).await;

    // Another handle appends: a reader waiting on this store finds it.
    let other = factory.open_again(store).await;
    let elsewhere = StreamId::new("Watched-2");
    watch.mark();
    let theirs = other
        .append(&elsewhere, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        tokio::time::timeout(bound, watch.changed())
            .await
            .expect("changed() resolves within the poll interval");
        watch.mark();
        let page = store
            .read_all_filtered(second.last_position + 1, 10, &EventFilter::all())
            .await
            .unwrap();
        if let Some(e) = page.events.first() {
            assert_eq!(e.global_position, theirs.first_position);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "another handle's append was never found"
        );
    }
}

/// `head_position`: 0 on an empty log, then the newest event's position,
/// also as a second handle on the same database sees it.
pub async fn head_position_follows_the_log<F: StoreFactory>(factory: &F, store: &F::Store) {
    assert_eq!(store.head_position().await.unwrap(), 0);
    let first = store
        .append(&StreamId::new("Head-1"), ExpectedVersion::Any, events(3))
        .await
        .unwrap();
    assert_eq!(store.head_position().await.unwrap(), first.last_position);
    let second = store
        .append(&StreamId::new("Head-2"), ExpectedVersion::Any, events(2))
        .await
        .unwrap();
    assert_eq!(store.head_position().await.unwrap(), second.last_position);
    let again = factory.open_again(store).await;
    assert_eq!(again.head_position().await.unwrap(), second.last_position);
}

/// Stream ids whose byte-wise order differs from a dictionary's: upper case
/// before lower case, `-` before letters and digits, `10` before `2`, a
/// multi-byte character after every ASCII one, and ids without a category.
const LISTED: [&str; 9] = [
    "Account-2",
    "a-1",
    "Account-10",
    "Accountant-1",
    "Account-",
    "ä-1",
    "Zebra-1",
    "nodash",
    "Account-1",
];

/// Appends to each of `ids` as many events as its place in the list plus
/// one, interleaved, and returns every stream's expected listing entry
/// (from the events read back), in byte-wise order of ids.
async fn append_streams<S: EventStore + ?Sized>(store: &S, ids: &[&str]) -> Vec<StreamInfo> {
    for round in 0..ids.len() {
        for (i, id) in ids.iter().enumerate() {
            if round <= i {
                let stream = StreamId::new(*id);
                store
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        vec![event("Counted", round as u64)],
                    )
                    .await
                    .unwrap();
            }
        }
    }
    let mut expected = Vec::new();
    for id in ids {
        let stream = StreamId::new(*id);
        let events = store.read_stream(&stream, 1, 1000).await.unwrap();
        let (first, last) = (&events[0], events.last().unwrap());
        expected.push(StreamInfo {
            stream_id: stream,
            version: last.stream_version,
            last_position: last.global_position,
            created_at: first.recorded_at,
            updated_at: last.recorded_at,
        });
    }
    expected.sort_by(|a, b| {
        a.stream_id
            .as_str()
            .as_bytes()
            .cmp(b.stream_id.as_str().as_bytes())
    });
    expected
}

fn ids(listed: &[StreamInfo]) -> Vec<&str> {
    listed.iter().map(|s| s.stream_id.as_str()).collect()
}

/// `streams` lists every stream once, in byte-wise order of ids whatever
/// the database's collation, with its version, newest position and the
/// times of its first and newest events; pages follow one another through
/// `after` (an id that is no stream works as well), another handle sees the
/// same, and a new stream appears in its place.
pub async fn streams_are_listed_by_id_a_page_at_a_time<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
) {
    assert_eq!(store.streams(None, None, 10).await.unwrap(), []);
    let expected = append_streams(store, &LISTED).await;
    assert_eq!(
        ids(&expected),
        [
            "Account-",
            "Account-1",
            "Account-10",
            "Account-2",
            "Accountant-1",
            "Zebra-1",
            "a-1",
            "nodash",
            "ä-1"
        ]
    );
    assert_eq!(expected[1].version, 9, "Account-1 has the most events");
    assert_eq!(store.streams(None, None, 100).await.unwrap(), expected);
    assert_eq!(store.streams(None, None, 0).await.unwrap(), []);
    for page_size in [1, 2, 4] {
        let mut listed = Vec::new();
        let mut after: Option<StreamId> = None;
        loop {
            let page = store
                .streams(None, after.as_ref(), page_size)
                .await
                .unwrap();
            assert!(page.len() <= page_size);
            let Some(last) = page.last() else { break };
            after = Some(last.stream_id.clone());
            listed.extend(page);
        }
        assert_eq!(listed, expected, "pages of {page_size}");
    }
    let past = StreamId::new("Account-11");
    assert_eq!(
        ids(&store.streams(None, Some(&past), 2).await.unwrap()),
        ["Account-2", "Accountant-1"],
        "an id that is no stream is a cursor too"
    );
    let other = factory.open_again(store).await;
    assert_eq!(other.streams(None, None, 100).await.unwrap(), expected);

    // A new stream appears in its place; a stream appended to moves on.
    let new = StreamId::new("Account-15");
    let done = other
        .append(&new, ExpectedVersion::NoStream, vec![event("Counted", 1)])
        .await
        .unwrap();
    let moved = StreamId::new("Account-2");
    let again = other
        .append(&moved, ExpectedVersion::Any, vec![event("Counted", 2)])
        .await
        .unwrap();
    let after = StreamId::new("Account-10");
    let listed = store.streams(None, Some(&after), 2).await.unwrap();
    assert_eq!(ids(&listed), ["Account-15", "Account-2"]);
    assert_eq!(
        (listed[0].version, listed[0].last_position),
        (1, done.last_position)
    );
    assert_eq!(listed[0].created_at, listed[0].updated_at);
    assert_eq!(
        (listed[1].version, listed[1].last_position),
        (again.stream_version, again.last_position)
    );
    assert_eq!(listed[1].created_at, expected[3].created_at);
    assert!(listed[1].updated_at >= expected[3].updated_at);
}

/// With a category, only the streams whose id starts with
/// `"{category}-"` are listed (not those of a longer category that starts
/// alike, nor ids without `-`), a page at a time; a category holding `-`
/// names no stream.
pub async fn stream_listings_filter_by_category<F: StoreFactory>(_: &F, store: &F::Store) {
    let expected = append_streams(store, &LISTED).await;
    let accounts: Vec<StreamInfo> = expected
        .iter()
        .filter(|s| s.category() == Some("Account"))
        .cloned()
        .collect();
    assert_eq!(
        ids(&accounts),
        ["Account-", "Account-1", "Account-10", "Account-2"]
    );
    assert_eq!(
        store.streams(Some("Account"), None, 100).await.unwrap(),
        accounts
    );
    let mut listed = Vec::new();
    let mut after: Option<StreamId> = None;
    loop {
        let page = store
            .streams(Some("Account"), after.as_ref(), 3)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.stream_id.clone());
        listed.extend(page);
    }
    assert_eq!(listed, accounts);
    // A cursor before the category's range, and one past it.
    let before = StreamId::new("A");
    assert_eq!(
        ids(&store
            .streams(Some("Account"), Some(&before), 2)
            .await
            .unwrap()),
        ["Account-", "Account-1"]
    );
    let past = StreamId::new("B");
    assert_eq!(
        store
            .streams(Some("Account"), Some(&past), 2)
            .await
            .unwrap(),
        []
    );
    for (category, wanted) in [
        ("ä", vec!["ä-1"]),
        ("Zebra", vec!["Zebra-1"]),
        ("Acc", vec![]),
        ("nodash", vec![]),
        ("Account-1", vec![]),
        ("a\0b", vec![]),
        ("%", vec![]),
    ] {
        let listed = store.streams(Some(category), None, 100).await.unwrap();
        assert_eq!(ids(&listed), wanted, "category {category:?}");
    }
}

/// A cursor no store can hold is refused as every stream id is.
pub async fn stream_listings_refuse_bad_cursors_alike<F: StoreFactory>(_: &F, store: &F::Store) {
    store
        .append(
            &StreamId::new("a-1"),
            ExpectedVersion::Any,
            vec![event("Counted", 1)],
        )
        .await
        .unwrap();
    for (bad, expected) in [
        ("", InvalidStreamId::Empty),
        (
            "a\0b",
            InvalidStreamId::Nul {
                stream: "a\0b".to_owned(),
            },
        ),
    ] {
        match store.streams(None, Some(&StreamId::new(bad)), 10).await {
            Err(StoreError::InvalidStreamId(e)) => assert_eq!(e, expected, "{bad:?}"),
            other => panic!("cursor {bad:?}: expected InvalidStreamId, got {other:?}"),
        }
    }
}

/// Migrating a store that is up to date (as opening one leaves it) applies
/// nothing and lists what was applied before, in order; so does a second
/// handle. The in-memory store has nothing to migrate.
pub async fn migrating_an_up_to_date_store_applies_nothing<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
) {
    let report = store.migrate().await.unwrap();
    assert_eq!(report.applied, []);
    assert!(!report.target.is_empty());
    let versions: Vec<i64> = report.already_applied.iter().map(|m| m.version).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(
        report
            .already_applied
            .iter()
            .all(|m| !m.description.is_empty())
    );
    let again = factory.open_again(store).await.migrate().await.unwrap();
    assert_eq!(again, report);
    store
        .append(
            &StreamId::new("a-1"),
            ExpectedVersion::Any,
            vec![event("Counted", 1)],
        )
        .await
        .unwrap();
    assert_eq!(store.streams(None, None, 10).await.unwrap().len(), 1);
}
