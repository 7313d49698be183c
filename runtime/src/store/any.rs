use super::{
    AppendResult, EventStore, ExpectedVersion, NewEvent, RecordedEvent, Snapshot, StoreError,
    StreamId,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

/// The object-safe twin of [`EventStore`], implemented for every store.
trait DynStore: Send + Sync + 'static {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendResult, StoreError>>;
    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
        max_count: usize,
    ) -> BoxFuture<'a, Result<Vec<RecordedEvent>, StoreError>>;
    fn stream_version<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;
    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>>;
    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>>;
    fn save_snapshot(&self, snapshot: Snapshot) -> BoxFuture<'_, Result<(), StoreError>>;
    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>>;
    fn type_name(&self) -> &'static str;
}

impl<S: EventStore> DynStore for S {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendResult, StoreError>> {
        Box::pin(EventStore::append(self, stream, expected, events))
    }
    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
        max_count: usize,
    ) -> BoxFuture<'a, Result<Vec<RecordedEvent>, StoreError>> {
        Box::pin(EventStore::read_stream(
            self,
            stream,
            from_version,
            max_count,
        ))
    }
    fn stream_version<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(EventStore::stream_version(self, stream))
    }
    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>> {
        Box::pin(EventStore::read_all(self, from_position, max_count))
    }
    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        EventStore::subscribe_all(self, from_position)
    }
    fn save_snapshot(&self, snapshot: Snapshot) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(EventStore::save_snapshot(self, snapshot))
    }
    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        Box::pin(EventStore::load_snapshot(self, stream))
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<S>()
    }
}

/// Any event store behind one cheaply cloneable type, chosen at run time.
///
/// The [`App`](crate::App) keeps its store as an `AnyStore`, so one binary can
/// pick SQLite, PostgreSQL or memory from its configuration.
///
/// ```
/// use annals::{AnyStore, MemoryStore};
/// let store = AnyStore::new(MemoryStore::new());
/// assert!(store.backend_name().contains("MemoryStore"));
/// ```
#[derive(Clone)]
pub struct AnyStore(Arc<dyn DynStore>);

impl AnyStore {
    /// Wraps `store`.
    pub fn new<S: EventStore>(store: S) -> Self {
        Self(Arc::new(store))
    }

    /// The Rust type name of the wrapped store.
    pub fn backend_name(&self) -> &'static str {
        self.0.type_name()
    }
}

impl fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyStore")
            .field(&self.0.type_name())
            .finish()
    }
}

impl EventStore for AnyStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.0.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(stream, from_version, max_count).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, StoreError> {
        self.0.stream_version(stream).await
    }

    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        self.0.read_all(from_position, max_count)
    }

    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.0.subscribe_all(from_position)
    }

    fn save_snapshot(
        &self,
        snapshot: Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.save_snapshot(snapshot)
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        self.0.load_snapshot(stream).await
    }
}
