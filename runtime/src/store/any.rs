use super::{
    AppendResult, EventStore, ExpectedVersion, MemoryStore, NewEvent, RecordedEvent, Snapshot,
    StoreError, StreamId,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// The object-safe twin of [`EventStore`], implemented for every store.
trait DynStore: Send + Sync + 'static {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendResult, StoreError>>;
    fn append_after_seen<'a>(
        &'a self,
        stream: &'a StreamId,
        seen: u64,
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
    fn append_after_seen<'a>(
        &'a self,
        stream: &'a StreamId,
        seen: u64,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendResult, StoreError>> {
        Box::pin(EventStore::append_after_seen(self, stream, seen, events))
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
pub struct AnyStore(Backend);

#[derive(Clone)]
enum Backend {
    /// Called directly: its operations never wait, so they need no boxed future.
    Memory(MemoryStore),
    Other(Arc<dyn DynStore>),
}

impl AnyStore {
    /// Wraps `store`.
    pub fn new<S: EventStore>(store: S) -> Self {
        let any: &dyn Any = &store;
        if let Some(memory) = any.downcast_ref::<MemoryStore>() {
            return Self(Backend::Memory(memory.clone()));
        }
        if let Some(wrapped) = any.downcast_ref::<AnyStore>() {
            return wrapped.clone();
        }
        Self(Backend::Other(Arc::new(store)))
    }

    /// The Rust type name of the wrapped store.
    pub fn backend_name(&self) -> &'static str {
        match &self.0 {
            Backend::Memory(_) => std::any::type_name::<MemoryStore>(),
            Backend::Other(store) => store.type_name(),
        }
    }

    /// [`EventStore::append`] as one boxed future: for a caller that keeps
    /// the future in its own state, 16 bytes instead of this type's `async fn`.
    pub(crate) fn append_boxed<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendResult, StoreError>> {
        match &self.0 {
            Backend::Memory(store) => DynStore::append(store, stream, expected, events),
            Backend::Other(store) => store.append(stream, expected, events),
        }
    }

    /// [`EventStore::append_after_seen`] as one boxed future.
    pub(crate) fn append_after_seen_boxed<'a>(
        &'a self,
        stream: &'a StreamId,
        seen: u64,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendResult, StoreError>> {
        match &self.0 {
            Backend::Memory(store) => DynStore::append_after_seen(store, stream, seen, events),
            Backend::Other(store) => store.append_after_seen(stream, seen, events),
        }
    }

    /// The wrapped store, if it is the in-memory one.
    pub(crate) fn memory(&self) -> Option<&MemoryStore> {
        match &self.0 {
            Backend::Memory(store) => Some(store),
            Backend::Other(_) => None,
        }
    }
}

impl fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyStore")
            .field(&self.backend_name())
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
        match &self.0 {
            Backend::Memory(store) => EventStore::append(store, stream, expected, events).await,
            Backend::Other(store) => DynStore::append(&**store, stream, expected, events).await,
        }
    }

    async fn append_after_seen(
        &self,
        stream: &StreamId,
        seen: u64,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.append_after_seen_boxed(stream, seen, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match &self.0 {
            Backend::Memory(store) => {
                EventStore::read_stream(store, stream, from_version, max_count).await
            }
            Backend::Other(store) => {
                DynStore::read_stream(&**store, stream, from_version, max_count).await
            }
        }
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, StoreError> {
        match &self.0 {
            Backend::Memory(store) => EventStore::stream_version(store, stream).await,
            Backend::Other(store) => DynStore::stream_version(&**store, stream).await,
        }
    }

    async fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match &self.0 {
            Backend::Memory(store) => EventStore::read_all(store, from_position, max_count).await,
            Backend::Other(store) => DynStore::read_all(&**store, from_position, max_count).await,
        }
    }

    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        match &self.0 {
            Backend::Memory(store) => EventStore::subscribe_all(store, from_position),
            Backend::Other(store) => DynStore::subscribe_all(&**store, from_position),
        }
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        match &self.0 {
            Backend::Memory(store) => EventStore::save_snapshot(store, snapshot).await,
            Backend::Other(store) => DynStore::save_snapshot(&**store, snapshot).await,
        }
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        match &self.0 {
            Backend::Memory(store) => EventStore::load_snapshot(store, stream).await,
            Backend::Other(store) => DynStore::load_snapshot(&**store, stream).await,
        }
    }
}
