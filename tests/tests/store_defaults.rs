//! What a store written outside Annals gets from the trait's defaults: the
//! filtered read and the log watch work on `read_all` alone (checked by the
//! conformance checks of filtered reads), and checkpoints fail with a typed
//! `Unsupported` error rather than a panic or a silent no-op.

use annals::{
    AnyStore, AppendResult, EventFilter, EventStore, ExpectedVersion, MemoryStore, NewEvent,
    RecordedEvent, Snapshot, StoreError, StoreFuture, StreamId, WakeCause,
};
use annals_tests::conformance::{self, StoreFactory};
use futures::stream::BoxStream;
use std::time::Duration;

/// Implements only what the trait requires, by delegating to a `MemoryStore`.
#[derive(Clone, Default)]
struct Minimal(MemoryStore);

impl EventStore for Minimal {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, AppendResult> {
        self.0.append(stream, expected, events)
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
        max_count: usize,
    ) -> StoreFuture<'a, Vec<RecordedEvent>> {
        self.0.read_stream(stream, from_version, max_count)
    }

    fn stream_version<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<u64>> {
        self.0.stream_version(stream)
    }

    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> StoreFuture<'_, Vec<RecordedEvent>> {
        self.0.read_all(from_position, max_count)
    }

    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.0.subscribe_all(from_position)
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> StoreFuture<'_, ()> {
        self.0.save_snapshot(snapshot)
    }

    fn load_snapshot<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<Snapshot>> {
        self.0.load_snapshot(stream)
    }
}

struct MinimalFactory;

impl StoreFactory for MinimalFactory {
    type Store = Minimal;

    async fn create(&self) -> Minimal {
        Minimal::default()
    }
}

macro_rules! default_checks {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let store = MinimalFactory.create().await;
            conformance::$check(&MinimalFactory, &store).await;
        }
    )*};
}

default_checks!(
    filtered_reads_select_by_type_category_or_both,
    filtered_reads_page_each_match_once_in_order,
    filtered_reads_move_past_unwanted_events,
);

#[tokio::test]
async fn checkpoints_are_unsupported_with_a_typed_error() {
    let store = AnyStore::new(Minimal::default());
    let unsupported = |error: StoreError, operation: &str| match error {
        StoreError::Unsupported {
            store,
            operation: op,
        } => {
            assert!(store.ends_with("Minimal"), "{store}");
            assert_eq!(op, operation);
        }
        other => panic!("{operation}: expected Unsupported, got {other:?}"),
    };
    unsupported(
        store.load_checkpoint("p").await.unwrap_err(),
        "load_checkpoint",
    );
    unsupported(
        store.save_checkpoint("p", 1).await.unwrap_err(),
        "save_checkpoint",
    );
    unsupported(
        store.delete_checkpoint("p").await.unwrap_err(),
        "delete_checkpoint",
    );
    unsupported(store.checkpoints().await.unwrap_err(), "checkpoints");
    let shown = store.checkpoints().await.unwrap_err().to_string();
    assert!(shown.contains("does not support `checkpoints`"), "{shown}");
}

/// The default watch only polls: an append through the store is found after
/// the poll interval, never signalled.
#[tokio::test(start_paused = true)]
async fn the_default_log_watch_polls() {
    let store = Minimal::default();
    let mut watch = store.watch_log();
    assert_eq!(watch.poll_interval(), Duration::from_millis(500));
    watch.mark();
    store
        .append(
            &StreamId::new("Polled-1"),
            ExpectedVersion::NoStream,
            vec![conformance::event("Polled", 1)],
        )
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(watch.changed().await, WakeCause::PollInterval);
    assert_eq!(started.elapsed(), Duration::from_millis(500));
    let page = store
        .read_all_filtered(1, 10, &EventFilter::all())
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
}
