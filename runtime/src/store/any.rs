use super::EventStore;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Any event store behind one cheaply cloneable type, chosen at run time.
///
/// The [`App`](crate::App) keeps its store as an `AnyStore`, so one binary can
/// pick SQLite, PostgreSQL or memory from its configuration. It dereferences
/// to `dyn EventStore`, so every store operation is called on it directly;
/// a generic function takes it as `&*store` when it accepts
/// `S: EventStore + ?Sized`.
///
/// ```
/// use annals::{AnyStore, EventStore, MemoryStore};
/// # futures::executor::block_on(async {
/// let store = AnyStore::new(MemoryStore::new());
/// assert!(store.backend_name().contains("MemoryStore"));
/// assert!(store.read_all(1, 10).await.unwrap().is_empty());
/// # });
/// ```
#[derive(Clone)]
pub struct AnyStore {
    store: Arc<dyn EventStore>,
    name: &'static str,
}

impl AnyStore {
    /// Wraps `store`.
    pub fn new<S: EventStore>(store: S) -> Self {
        Self {
            store: Arc::new(store),
            name: std::any::type_name::<S>(),
        }
    }

    /// The Rust type name of the wrapped store.
    pub fn backend_name(&self) -> &'static str {
        self.name
    }
}

impl<S: EventStore> From<S> for AnyStore {
    fn from(store: S) -> Self {
        Self::new(store)
    }
}

impl Deref for AnyStore {
    type Target = dyn EventStore;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyStore").field(&self.name).finish()
    }
}
