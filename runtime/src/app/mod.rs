//! The application: routes commands to aggregates, persists their events.
//!
//! - `builder`: [`AppBuilder`] and the settings it holds;
//! - `options`: [`DispatchOptions`] in, [`Dispatched`] out;
//! - `dispatch`: the one dispatch pipeline every store and entry point takes;
//! - `hydrate`: loading an aggregate from its snapshot and stream;
//! - `retry`: what a conflict costs (backoff, the stream lock);
//! - `middleware`: the seam before and after every command;
//! - `ids`, `json`, `services`, `cache`, `registry`, `error`.

mod builder;
mod cache;
mod dispatch;
mod error;
mod hydrate;
pub(crate) mod ids;
mod json;
mod middleware;
mod options;
mod registry;
mod retry;
mod services;

pub use builder::AppBuilder;
pub use error::{AnyDomainError, BuildError, DispatchError, JsonDispatchError, LoadError};
#[doc(hidden)]
pub use json::dispatch_json;
pub use middleware::{BoxError, CommandContext, CommandOutcome, Middleware, OutcomeKind};
pub use options::{DispatchOptions, Dispatched};
pub use registry::{AggregateRegistration, CommandRoute, JsonDispatchFn, JsonDispatched};
pub use retry::RetryPolicy;
pub(crate) use services::Services;

use crate::aggregate::{Aggregate, Command, Handles};
use crate::store::{AnyStore, StoreError};
use cache::Cache;
use registry::Registry;
use std::fmt;
use std::sync::Arc;

/// An event-sourced application: a store, the registered aggregates, and
/// the services their handlers use. Cheap to clone; clones share everything.
///
/// ```
/// use annals::prelude::*;
///
/// #[event]
/// pub enum CounterEvent {
///     Incremented { by: u32 },
/// }
///
/// #[command(aggregate = Counter)]
/// pub struct Increment {
///     #[id]
///     pub counter: u32,
///     pub by: u32,
/// }
///
/// #[aggregate(events = CounterEvent)]
/// #[derive(Default)]
/// pub struct Counter {
///     total: u64,
/// }
///
/// #[aggregate]
/// impl Counter {
///     #[handle]
///     fn increment(&self, command: Increment) -> CounterEvent {
///         CounterEvent::Incremented { by: command.by }
///     }
///
///     #[apply]
///     fn apply(&mut self, event: &CounterEvent) {
///         match event {
///             CounterEvent::Incremented { by } => self.total += u64::from(*by),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let app = App::builder().store(MemoryStore::new()).build()?;
/// let done = app.dispatch(Increment { counter: 7, by: 2 }).await?;
/// assert_eq!(done.version, 1);
/// assert_eq!(done.stream_id.as_str(), "Counter-7");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: AnyStore,
    cache: Cache,
    services: Services,
    registry: Registry,
    retry: RetryPolicy,
    middleware: Vec<Arc<dyn Middleware>>,
    handlers: crate::handler::Handlers,
    feed: crate::feed::LiveFeed,
}

/// An [`App`] that its own background tasks refer to without keeping it alive.
#[derive(Clone)]
pub(crate) struct WeakApp(std::sync::Weak<Inner>);

impl WeakApp {
    /// The app, unless it is gone (or not finished being built yet).
    pub(crate) fn upgrade(&self) -> Option<App> {
        self.0.upgrade().map(|inner| App { inner })
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("store", &self.inner.store)
            .field("cached_aggregates", &self.inner.cache.len())
            .field("commands", &self.inner.registry.commands.len())
            .field("services", &self.inner.services.len())
            .field("middleware", &self.inner.middleware.len())
            .finish_non_exhaustive()
    }
}

/// What [`App::dispatch`] (and `dispatch_with`, `dispatch_and_inspect`)
/// return: a boxed future of the command's outcome `T`, or its
/// [`DispatchError`]. Boxed once, it is cheap to move, and naming it lets a
/// command nobody handles be one compile error.
pub type DispatchFuture<'a, T, C> = futures::future::BoxFuture<
    'a,
    Result<T, DispatchError<<<C as Command>::Aggregate as Handles<C>>::Error>>,
>;

impl App {
    /// Starts building an app.
    pub fn builder() -> AppBuilder {
        AppBuilder::new()
    }

    /// The app's event store.
    pub fn store(&self) -> &AnyStore {
        &self.inner.store
    }

    /// The app's live feed of its store's log: one follower of the log
    /// shared by every [subscription](crate::feed::LiveFeed::subscribe),
    /// started by the first. See [`feed`](crate::feed).
    pub fn live_feed(&self) -> &crate::feed::LiveFeed {
        &self.inner.feed
    }

    /// How many aggregates are cached now.
    pub fn cached_aggregates(&self) -> usize {
        self.inner.cache.len()
    }

    /// The registered command routes, by command name.
    pub fn commands(&self) -> impl Iterator<Item = &'static CommandRoute> + '_ {
        self.inner.registry.commands.values().copied()
    }

    /// The registered aggregate types, by name.
    pub fn aggregates(&self) -> impl Iterator<Item = &'static AggregateRegistration> + '_ {
        self.inner.registry.aggregates.values().copied()
    }

    /// Dispatches `command` to its aggregate with default options.
    ///
    /// Loads the aggregate (from the cache when warm), runs the handler,
    /// appends its events expecting the version it decided on, and applies
    /// them. If another writer changed the stream in between, it catches up
    /// and tries again, taking turns with the other writers of a contended
    /// stream (see [`RetryPolicy`]). Before returning a domain refusal it
    /// checks the stream's version once, so a refusal is never based on a
    /// cache that another node has made stale.
    pub fn dispatch<C>(&self, command: C) -> DispatchFuture<'_, Dispatched<C::Aggregate>, C>
    where
        C: Command,
        C::Aggregate: Handles<C>,
    {
        Box::pin(self.run(command, DispatchOptions::default(), |done, _| done))
    }

    /// Dispatches `command` with explicit ids and metadata.
    pub fn dispatch_with<C>(
        &self,
        command: C,
        options: DispatchOptions,
    ) -> DispatchFuture<'_, Dispatched<C::Aggregate>, C>
    where
        C: Command,
        C::Aggregate: Handles<C>,
    {
        Box::pin(self.run(command, options, |done, _| done))
    }

    /// Dispatches `command` and runs `inspect` on the aggregate's new state,
    /// before any other command to it can run; returns both results.
    ///
    /// ```
    /// # use annals::prelude::*;
    /// # #[event] pub enum TallyEvent { Added { n: u64 } }
    /// # #[command(aggregate = Tally)] pub struct Add { #[id] pub id: u8, pub n: u64 }
    /// # #[aggregate(events = TallyEvent)] #[derive(Default)] pub struct Tally { sum: u64 }
    /// # #[aggregate] impl Tally {
    /// #     #[handle] fn add(&self, c: Add) -> TallyEvent { TallyEvent::Added { n: c.n } }
    /// #     #[apply] fn apply(&mut self, e: &TallyEvent) { match e { TallyEvent::Added { n } => self.sum += n } }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = App::builder().store(MemoryStore::new()).build()?;
    /// app.dispatch(Add { id: 1, n: 2 }).await?;
    /// let (done, sum) = app
    ///     .dispatch_and_inspect(Add { id: 1, n: 3 }, DispatchOptions::new(), |tally| tally.sum)
    ///     .await?;
    /// assert_eq!((done.version, sum), (2, 5));
    /// # Ok(())
    /// # }
    /// ```
    pub fn dispatch_and_inspect<'a, C, R>(
        &'a self,
        command: C,
        options: DispatchOptions,
        inspect: impl FnOnce(&C::Aggregate) -> R + Send + 'a,
    ) -> DispatchFuture<'a, (Dispatched<C::Aggregate>, R), C>
    where
        C: Command,
        C::Aggregate: Handles<C>,
        R: Send + 'a,
    {
        Box::pin(self.run(command, options, move |done, state| (done, inspect(state))))
    }

    /// Dispatches a command given by name and JSON fields, as an HTTP layer would.
    ///
    /// The command must be registered (any `#[handle]` function registers its command).
    pub async fn dispatch_json(
        &self,
        command: &str,
        fields: serde_json::Value,
        options: DispatchOptions,
    ) -> Result<JsonDispatched, JsonDispatchError> {
        let route = self
            .inner
            .registry
            .commands
            .get(command)
            .ok_or_else(|| JsonDispatchError::UnknownCommand(command.to_owned()))?;
        (route.dispatch_json)(self, fields, options).await
    }

    /// The current state and version of aggregate `id` (loading it if needed).
    pub async fn load<A: Aggregate + Clone>(
        &self,
        id: impl fmt::Display,
    ) -> Result<(A, u64), LoadError> {
        let (stream, slot) = self
            .inner
            .cache
            .slot::<A>(A::TYPE, &format!("{}-{id}", A::TYPE))?;
        let mut loaded = slot.lock().await;
        self.catch_up(&stream, &mut loaded).await?;
        Ok((loaded.state.clone(), loaded.version))
    }

    /// Forgets every cached aggregate, so each is reloaded on its next command.
    pub fn clear_cache(&self) {
        self.inner.cache.sweep_all();
    }

    /// The status of every event handler this app runs, in the order they
    /// were registered: state, position, checkpoint, lag behind the newest
    /// event in the store, counts and last error.
    pub async fn handler_status(&self) -> Vec<crate::handler::HandlerStatus> {
        let mut all = self.inner.handlers.status();
        if !all.is_empty()
            && let Ok(head) = self.inner.store.head_position().await
        {
            for status in &mut all {
                status.lag = head.saturating_sub(status.position);
            }
        }
        all
    }

    /// Starts the handler or projection `name` over from position 0 and
    /// returns once it has been reset: a transactional projection's read
    /// model is emptied ([`Projection::reset`](crate::projection::Projection::reset))
    /// and its checkpoint set to 0 in one transaction, then the events are
    /// applied again as it catches up; an event handler's checkpoint is set
    /// to 0 (undoing what it did elsewhere is its own affair).
    pub async fn rebuild(&self, name: &str) -> Result<(), crate::handler::RebuildError> {
        self.inner.handlers.rebuild(name).await
    }

    /// Waits until the named handlers (every handler this app runs, if
    /// `names` is empty) have handled the global log up to `position`, at
    /// most `timeout`.
    ///
    /// [`DispatchOptions::wait_for_handler`] does this as part of a dispatch.
    pub async fn wait_for_handlers(
        &self,
        position: u64,
        names: &[&str],
        timeout: std::time::Duration,
    ) -> Result<(), crate::handler::NotCaughtUp> {
        let cells = self.inner.handlers.cells();
        let mut chosen = Vec::new();
        if names.is_empty() {
            chosen.extend(cells.iter());
        }
        for name in names {
            match self.inner.handlers.cell(name) {
                Some(cell) => chosen.push(cell),
                None => {
                    return Err(crate::handler::NotCaughtUp {
                        handler: (*name).to_owned(),
                        reason: crate::handler::Lagging::Unknown,
                    });
                }
            }
        }
        wait_cells(&chosen, position, timeout).await
    }

    /// Waits until every handler has handled everything in the store and
    /// nothing new was appended meanwhile, at most `timeout`: the chain of
    /// reactions (a process manager's commands, their events, the read
    /// models that follow them) has settled. For tests, demos and operator
    /// commands; timeouts scheduled for later do not count.
    pub async fn wait_until_settled(
        &self,
        timeout: std::time::Duration,
    ) -> Result<(), crate::handler::NotCaughtUp> {
        let deadline = tokio::time::Instant::now() + timeout;
        let unknown = |e: StoreError| crate::handler::NotCaughtUp {
            handler: format!("(the store: {e})"),
            reason: crate::handler::Lagging::Unknown,
        };
        loop {
            let head = self.inner.store.head_position().await.map_err(unknown)?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.wait_for_handlers(head, &[], left).await?;
            if self.inner.store.head_position().await.map_err(unknown)? == head {
                return Ok(());
            }
        }
    }

    /// What a strongly consistent dispatch waits for.
    pub(crate) async fn consistent(
        &self,
        wanted: &options::Consistency,
        position: u64,
    ) -> Result<(), crate::handler::NotCaughtUp> {
        let mut chosen: Vec<&Arc<crate::handler::StatusCell>> = Vec::new();
        if wanted.strong {
            chosen.extend(self.inner.handlers.cells().iter().filter(|c| c.strong));
        }
        for name in &wanted.handlers {
            match self.inner.handlers.cell(name) {
                Some(cell) => chosen.push(cell),
                None => {
                    return Err(crate::handler::NotCaughtUp {
                        handler: name.clone(),
                        reason: crate::handler::Lagging::Unknown,
                    });
                }
            }
        }
        wait_cells(&chosen, position, wanted.timeout).await
    }

    /// Stops the app: forgets the cache and closes the store (a SQLite store
    /// checkpoints its write-ahead log into the database file). Commands
    /// dispatched afterwards, by this app or its clones, fail with
    /// [`StoreError`]s (with the in-memory store, whose `close` does nothing,
    /// they still work).
    ///
    /// ```
    /// # use annals::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = App::builder().store(MemoryStore::new()).build()?;
    /// // ... serve commands ...
    /// app.shutdown().await?;
    /// assert_eq!(app.cached_aggregates(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        self.inner.feed.stop();
        self.inner.handlers.shutdown().await;
        self.inner.cache.sweep_all();
        self.inner.store.close().await
    }
}

/// Waits until every cell passed `position`, all within one `timeout`.
async fn wait_cells(
    cells: &[&Arc<crate::handler::StatusCell>],
    position: u64,
    timeout: std::time::Duration,
) -> Result<(), crate::handler::NotCaughtUp> {
    let deadline = tokio::time::Instant::now() + timeout;
    for cell in cells {
        let reached = tokio::time::timeout_at(deadline, cell.reached(position)).await;
        let reason = match reached {
            Ok(true) => continue,
            Ok(false) => crate::handler::Lagging::Stopped,
            Err(_) => crate::handler::Lagging::TimedOut(timeout),
        };
        return Err(crate::handler::NotCaughtUp {
            handler: cell.name().to_owned(),
            reason,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use chrono::Utc;
    use std::time::Duration;

    #[event]
    pub enum TickEvent {
        Ticked { n: u32 },
    }

    #[command(aggregate = Ticker)]
    pub struct Tick {
        #[id]
        pub id: u32,
    }

    #[command(aggregate = Ticker)]
    pub struct SlowTick {
        #[id]
        pub id: u32,
    }

    #[aggregate(events = TickEvent)]
    #[derive(Default)]
    pub struct Ticker {
        n: u32,
    }

    #[aggregate]
    impl Ticker {
        #[handle]
        fn tick(&self, _command: Tick) -> TickEvent {
            TickEvent::Ticked { n: self.n + 1 }
        }

        #[handle]
        async fn slow_tick(&self, _command: SlowTick) -> TickEvent {
            tokio::time::sleep(Duration::from_millis(20)).await;
            TickEvent::Ticked { n: self.n + 1 }
        }

        #[apply]
        fn apply(&mut self, event: &TickEvent) {
            match event {
                TickEvent::Ticked { n } => self.n = *n,
            }
        }
    }

    /// A command that never waits records its events at the time it was made
    /// (one clock read for its id and its events): still within the dispatch
    /// call, and never earlier than what the log recorded before it.
    #[tokio::test]
    async fn events_are_recorded_during_the_dispatch_in_log_order() {
        let app = App::builder().store(MemoryStore::new()).build().unwrap();
        let before = Utc::now();
        for id in [1, 2, 1, 2, 1] {
            app.dispatch(Tick { id }).await.unwrap();
        }
        let after = Utc::now();
        let log = app.store().read_all(1, 10).await.unwrap();
        assert_eq!(log.len(), 5);
        assert!(
            log.iter()
                .all(|e| before <= e.recorded_at && e.recorded_at <= after)
        );
        assert!(log.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at));
    }

    /// A command whose handler awaits is recorded at the time of its append,
    /// not at the time it was made.
    #[tokio::test]
    async fn a_command_that_waited_is_recorded_when_it_appends() {
        let app = App::builder().store(MemoryStore::new()).build().unwrap();
        app.dispatch(Tick { id: 7 }).await.unwrap();
        let before = Utc::now();
        app.dispatch(SlowTick { id: 7 }).await.unwrap();
        let log = app.store().read_all(2, 1).await.unwrap();
        // The handler slept at least 20 ms between the command's start and its append.
        assert!(log[0].recorded_at >= before + Duration::from_millis(20));
    }
}
