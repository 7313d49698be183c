//! Building an [`App`]: its store, services, cache, retry policy and middleware.

use super::cache::Cache;
use super::registry::Registry;
use super::{App, BuildError, Inner, Middleware, RetryPolicy, Services};
use crate::handler::runner::HandlerSpec;
use crate::handler::{EventHandler, HandlerOptions, Handlers};
use crate::store::AnyStore;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Builds an [`App`]; from [`App::builder`].
#[must_use]
pub struct AppBuilder {
    store: Option<AnyStore>,
    services: Services,
    cache_capacity: usize,
    cache_idle: Duration,
    retry: RetryPolicy,
    middleware: Vec<Arc<dyn Middleware>>,
    handlers: Vec<HandlerSpec>,
    /// A misconfiguration found while building, reported by `build`.
    refused: Option<BuildError>,
}

impl AppBuilder {
    pub(super) fn new() -> Self {
        Self {
            store: None,
            services: Services::default(),
            cache_capacity: 100_000,
            cache_idle: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            middleware: Vec::new(),
            handlers: Vec::new(),
            refused: None,
        }
    }

    /// The event store (required): any [`EventStore`](crate::EventStore), or
    /// an [`AnyStore`] chosen at run time.
    pub fn store(mut self, store: impl Into<AnyStore>) -> Self {
        self.store = Some(store.into());
        self
    }

    /// Registers a service value that handlers can take as an argument
    /// (`fn open(&self, cmd: OpenAccount, hasher: &PinHasher)`). One per type.
    pub fn service<S: Send + Sync + 'static>(mut self, service: S) -> Self {
        self.services.insert(service);
        self
    }

    /// How many aggregates stay cached at most (default 100,000).
    pub fn cache_capacity(mut self, aggregates: usize) -> Self {
        self.cache_capacity = aggregates;
        self
    }

    /// How long an unused aggregate stays cached (default 10 minutes).
    pub fn cache_idle_timeout(mut self, idle: Duration) -> Self {
        self.cache_idle = idle;
        self
    }

    /// What a command does after another writer changed its stream in
    /// between (see [`RetryPolicy`] for the defaults).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How many times a command is tried at most (default 10): a shorthand
    /// for [`RetryPolicy::max_attempts`]. Then [`DispatchError::Conflict`](crate::DispatchError::Conflict).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry = self.retry.max_attempts(attempts);
        self
    }

    /// Adds a middleware around every dispatched command. Middleware runs in
    /// the order added before the command, and in the same order after it.
    pub fn middleware(mut self, middleware: impl Middleware) -> Self {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// Runs an event handler (written by `#[event_handler]`) with the
    /// default [`HandlerOptions`]: from its checkpoint in the store, through
    /// the stored events it wants, then live, until the app shuts down.
    pub fn handler<H: EventHandler>(self, handler: H) -> Self {
        self.handler_with(handler, HandlerOptions::default())
    }

    /// Runs an event handler with these options (error policy, batching,
    /// strong consistency).
    pub fn handler_with<H: EventHandler>(mut self, handler: H, options: HandlerOptions) -> Self {
        self.handlers.push(HandlerSpec::new(handler, options));
        self
    }

    /// Runs a transactional [`Projection`](crate::projection::Projection)
    /// on `pool` (the store's database or a separate read database): each
    /// batch of events and the projection's checkpoint commit in one
    /// transaction there.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn projection<DB, P>(self, pool: sqlx::Pool<DB>, projection: P) -> Self
    where
        DB: crate::projection::ProjectionDatabase,
        P: crate::projection::Projection<DB>,
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        self.projection_with(pool, projection, HandlerOptions::default())
    }

    /// [`projection`](Self::projection) with these options (error policy,
    /// batch size, strong consistency).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn projection_with<DB, P>(
        mut self,
        pool: sqlx::Pool<DB>,
        projection: P,
        options: HandlerOptions,
    ) -> Self
    where
        DB: crate::projection::ProjectionDatabase,
        P: crate::projection::Projection<DB>,
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        self.handlers
            .push(HandlerSpec::projection(pool, projection, options));
        self
    }

    /// Publishes every recorded event to RabbitMQ: see
    /// [`Publisher`](crate::rabbitmq::Publisher). It runs as an event handler
    /// of the publisher's name, with the default [`HandlerOptions`].
    #[cfg(feature = "rabbitmq")]
    pub fn publisher(self, publisher: crate::rabbitmq::Publisher) -> Self {
        self.publisher_with(publisher, HandlerOptions::default())
    }

    /// [`publisher`](Self::publisher) with these options: the batch size is
    /// the most events published before waiting for the broker's confirms;
    /// the checkpoint interval how often the confirmed position is saved.
    #[cfg(feature = "rabbitmq")]
    pub fn publisher_with(
        mut self,
        publisher: crate::rabbitmq::Publisher,
        options: HandlerOptions,
    ) -> Self {
        let name = publisher.name;
        match HandlerSpec::publisher(publisher, options) {
            Ok(spec) => self.handlers.push(spec),
            Err(source) => {
                self.refused
                    .get_or_insert(BuildError::Publisher { name, source });
            }
        }
        self
    }

    /// Runs a [`ProcessManager`](crate::process::ProcessManager): from its
    /// checkpoint through the events it wants, then live, dispatching its
    /// commands through this app.
    pub fn process_manager<P: crate::process::ProcessManager>(self) -> Self {
        self.process_manager_with::<P>(HandlerOptions::default())
    }

    /// [`process_manager`](Self::process_manager) with these options (error
    /// policy, batching, strong consistency).
    pub fn process_manager_with<P: crate::process::ProcessManager>(
        mut self,
        options: HandlerOptions,
    ) -> Self {
        self.handlers.push(HandlerSpec::process::<P>(options));
        self
    }

    /// Builds the app, checking the registry of aggregates and commands and
    /// the handlers' names, and starts its event handlers.
    ///
    /// Called inside a tokio runtime, it also starts a task that drops idle
    /// aggregates from the cache; elsewhere they are dropped as the cache
    /// fills. Event handlers need a runtime: with handlers and none,
    /// [`BuildError::NoRuntime`].
    pub fn build(self) -> Result<App, BuildError> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        let store = self.store.ok_or(BuildError::NoStore)?;
        // Upcaster chains are checked against every type the app reads: its
        // aggregates' and its handlers'.
        let handled: Vec<crate::aggregate::EventType> = self
            .handlers
            .iter()
            .flat_map(|h| h.interest.iter().flat_map(|types| types.iter().copied()))
            .collect();
        let registry = Registry::collect(&handled)?;
        let runtime = Handlers::check(&self.handlers)?;
        let specs = self.handlers;
        // Process managers dispatch through the app their runner belongs to:
        // a weak handle, so that the app's tasks never keep it alive.
        let inner = Arc::new_cyclic(|weak| {
            let app = super::WeakApp(weak.clone());
            let handlers = Handlers::start(specs, &store, &app, runtime);
            Inner {
                feed: crate::feed::LiveFeed::new(store.clone()),
                store,
                cache: Cache::new(self.cache_capacity, self.cache_idle),
                services: self.services,
                registry,
                handlers,
                retry: self.retry,
                middleware: self.middleware,
            }
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(sweep_idle(Arc::downgrade(&inner)));
        }
        Ok(App { inner })
    }
}

async fn sweep_idle(inner: Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(i) => (i.cache.idle() / 2).clamp(Duration::from_millis(10), Duration::from_secs(60)),
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        match inner.upgrade() {
            Some(i) => i.cache.sweep_idle(),
            None => return,
        }
    }
}
