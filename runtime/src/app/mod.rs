//! The application: routes commands to aggregates, persists their events.

mod cache;
mod error;
pub(crate) mod ids;
mod registry;

pub use error::{AnyDomainError, BuildError, DispatchError, JsonDispatchError, LoadError};
pub use registry::{AggregateRegistration, CommandRoute, JsonDispatchFn, JsonDispatched};

use crate::aggregate::{Aggregate, Command, Event, Handles};
use crate::store::{
    AnyStore, AppendResult, DEFAULT_READ_BATCH, EventStore, ExpectedVersion, MemoryStore, Metadata,
    NewEvent, Snapshot, StoreError, StreamId,
};
use cache::{Cache, Loaded};
use ids::FreshId;
use registry::Registry;
use std::any::{Any, TypeId, type_name};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};
use tracing::Instrument;
use uuid::Uuid;

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
    services: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    registry: Registry,
    max_attempts: u32,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("store", &self.inner.store)
            .field("cached_aggregates", &self.inner.cache.len())
            .field("commands", &self.inner.registry.commands.len())
            .finish_non_exhaustive()
    }
}

/// Builds an [`App`]; from [`App::builder`].
#[must_use]
pub struct AppBuilder {
    store: Option<AnyStore>,
    services: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    cache_capacity: usize,
    cache_idle: Duration,
    max_attempts: u32,
}

impl AppBuilder {
    /// The event store (required).
    pub fn store(mut self, store: impl EventStore) -> Self {
        self.store = Some(AnyStore::new(store));
        self
    }

    /// Registers a service value that handlers can take as an argument
    /// (`fn open(&self, cmd: OpenAccount, hasher: &PinHasher)`). One per type.
    pub fn service<S: Send + Sync + 'static>(mut self, service: S) -> Self {
        self.services.insert(TypeId::of::<S>(), Box::new(service));
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

    /// How many times a command is tried when another writer changed its
    /// stream in between (default 5); then [`DispatchError::Conflict`].
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Builds the app, checking the registry of aggregates and commands.
    ///
    /// Called inside a tokio runtime, it also starts a task that drops idle
    /// aggregates from the cache; elsewhere they are dropped as the cache fills.
    pub fn build(self) -> Result<App, BuildError> {
        let store = self.store.ok_or(BuildError::NoStore)?;
        let inner = Arc::new(Inner {
            store,
            cache: Cache::new(self.cache_capacity, self.cache_idle),
            services: self.services,
            registry: Registry::collect()?,
            max_attempts: self.max_attempts,
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

/// Per-command options: ids and metadata recorded with the events.
///
/// ```
/// use annals::DispatchOptions;
/// let options = DispatchOptions::new()
///     .correlation_id(uuid::Uuid::now_v7())
///     .metadata("user", "alice");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct DispatchOptions {
    command_id: Option<Uuid>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    custom: BTreeMap<String, serde_json::Value>,
}

impl DispatchOptions {
    /// Default options: a fresh command id, which is also the correlation and causation id.
    pub fn new() -> Self {
        Self::default()
    }

    /// The command's id (default: a fresh uuid v7).
    ///
    /// Give one to make retries safe: the command's event ids are then derived
    /// from it, so dispatching the same command id again records nothing and
    /// fails with [`DispatchError::DuplicateCommand`] (e.g. a client retrying
    /// after a timeout learns the first attempt went through).
    pub fn command_id(mut self, id: Uuid) -> Self {
        self.command_id = Some(id);
        self
    }

    /// The correlation id (default: the command id).
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// The causation id (default: the command id).
    pub fn causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// A user metadata key/value recorded with every event.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.custom.insert(key.into(), value.into());
        self
    }
}

/// What a dispatched command did.
#[derive(Clone)]
pub struct Dispatched<A: Aggregate> {
    /// The events recorded, in order (empty if the handler returned none).
    pub events: Vec<A::Event>,
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream version after the command.
    pub version: u64,
    /// Global positions of the first and last recorded event, if any.
    pub positions: Option<(u64, u64)>,
    /// The command id recorded as causation.
    pub command_id: Uuid,
    /// The correlation id recorded with the events.
    pub correlation_id: Uuid,
}

impl<A: Aggregate> fmt::Debug for Dispatched<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatched")
            .field("events", &self.events)
            .field("stream_id", &self.stream_id)
            .field("version", &self.version)
            .field("positions", &self.positions)
            .field("command_id", &self.command_id)
            .field("correlation_id", &self.correlation_id)
            .finish()
    }
}

thread_local! {
    static KEY: RefCell<String> = RefCell::new(String::with_capacity(64));
}

impl App {
    /// Starts building an app.
    pub fn builder() -> AppBuilder {
        AppBuilder {
            store: None,
            services: HashMap::new(),
            cache_capacity: 100_000,
            cache_idle: Duration::from_secs(600),
            max_attempts: 5,
        }
    }

    /// The app's event store.
    pub fn store(&self) -> &AnyStore {
        &self.inner.store
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
    /// and tries again (see [`AppBuilder::max_attempts`]). Before returning a
    /// domain refusal it checks the stream's version once, so a refusal is
    /// never based on a cache that another node has made stale.
    pub async fn dispatch<C>(
        &self,
        command: C,
    ) -> Result<Dispatched<C::Aggregate>, DispatchError<<C::Aggregate as Handles<C>>::Error>>
    where
        C: Command,
        C::Aggregate: Handles<C>,
    {
        self.run(command, DispatchOptions::default(), |_| ())
            .await
            .map(|(done, ())| done)
    }

    /// Dispatches `command` with explicit ids and metadata.
    pub async fn dispatch_with<C>(
        &self,
        command: C,
        options: DispatchOptions,
    ) -> Result<Dispatched<C::Aggregate>, DispatchError<<C::Aggregate as Handles<C>>::Error>>
    where
        C: Command,
        C::Aggregate: Handles<C>,
    {
        self.run(command, options, |_| ())
            .await
            .map(|(done, ())| done)
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
    pub async fn dispatch_and_inspect<C, R>(
        &self,
        command: C,
        options: DispatchOptions,
        inspect: impl FnOnce(&C::Aggregate) -> R + Send,
    ) -> Result<(Dispatched<C::Aggregate>, R), DispatchError<<C::Aggregate as Handles<C>>::Error>>
    where
        C: Command,
        C::Aggregate: Handles<C>,
    {
        self.run(command, options, inspect).await
    }

    /// The one dispatch future every entry point awaits. Not an `async fn`
    /// wrapper chain: each layer would move the (large) future once more.
    #[allow(clippy::type_complexity)]
    fn run<C, R>(
        &self,
        command: C,
        options: DispatchOptions,
        inspect: impl FnOnce(&C::Aggregate) -> R + Send,
    ) -> impl std::future::Future<
        Output = Result<
            (Dispatched<C::Aggregate>, R),
            DispatchError<<C::Aggregate as Handles<C>>::Error>,
        >,
    > + Send
    where
        C: Command,
        C::Aggregate: Handles<C>,
    {
        let (stream, slot) = KEY.with_borrow_mut(|key| {
            key.clear();
            key.push_str(C::Aggregate::TYPE);
            key.push('-');
            // Writing into a String cannot fail; a Display impl that errors only truncates the key.
            let _ = write!(key, "{}", command.aggregate_id());
            self.inner.cache.slot::<C::Aggregate>(key)
        });
        // One clock read per command: its fresh id, and (if it never waits) the
        // time its events are recorded at (see `decide_and_append`).
        let (event_ids, mut clock) = match options.command_id {
            Some(id) => (EventIds::Derived(id), None),
            None => {
                let now = SystemTime::now();
                (EventIds::Fresh(FreshId::at(now)), Some(now))
            }
        };
        let command_id = event_ids.command_id();
        let correlation_id = options.correlation_id.unwrap_or(command_id);
        let span = tracing::info_span!(
            "annals.dispatch",
            command = C::NAME,
            stream = %stream,
            %correlation_id,
            %command_id,
        );
        let metadata = Metadata {
            correlation_id: Some(correlation_id),
            causation_id: Some(options.causation_id.unwrap_or(command_id)),
            custom: options.custom,
        };
        async move {
            let mut loaded = match slot.try_lock() {
                Ok(free) => free,
                Err(_) => {
                    clock = None;
                    slot.lock().await
                }
            };
            let outcome = self
                .decide_and_append(
                    &stream,
                    &mut loaded,
                    &command,
                    event_ids,
                    &metadata,
                    &mut clock,
                )
                .await;
            match &outcome {
                Ok((events, positions)) => {
                    tracing::debug!(events = events.len(), ?positions, "dispatched")
                }
                Err(error) => tracing::debug!(%error, "rejected"),
            }
            outcome.map(|(events, positions)| {
                let done = Dispatched {
                    events,
                    stream_id: stream,
                    version: loaded.version,
                    positions,
                    command_id: event_ids.command_id(),
                    correlation_id: metadata.correlation_id.unwrap_or_default(),
                };
                (done, inspect(&loaded.state))
            })
        }
        .instrument(span)
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
        let (stream, slot) = self.inner.cache.slot::<A>(&format!("{}-{id}", A::TYPE));
        let mut loaded = slot.lock().await;
        self.catch_up(&stream, &mut loaded).await?;
        Ok((loaded.state.clone(), loaded.version))
    }

    /// Forgets every cached aggregate, so each is reloaded on its next command.
    pub fn clear_cache(&self) {
        self.inner.cache.sweep_all();
    }

    /// The command's work once its aggregate is locked. Not an `async fn`: that
    /// would keep its arguments twice in the future (as captures and as locals).
    ///
    /// `clock` is the time the command was made at, if it has not waited for
    /// anything since. If it still has not when it appends (no catch-up, no
    /// handler that awaited, no retry), the in-memory store records its events
    /// at that time instead of reading the clock again: the two readings could
    /// only differ by the synchronous work in between. Otherwise the store
    /// reads the clock, as every other store does.
    #[allow(
        clippy::type_complexity,
        clippy::manual_async_fn,
        clippy::too_many_arguments
    )]
    fn decide_and_append<'a, C>(
        &'a self,
        stream: &'a StreamId,
        loaded: &'a mut Loaded<C::Aggregate>,
        command: &'a C,
        event_ids: EventIds,
        metadata: &'a Metadata,
        clock: &'a mut Option<SystemTime>,
    ) -> impl std::future::Future<
        Output = Result<
            (Vec<<C::Aggregate as Aggregate>::Event>, Option<(u64, u64)>),
            DispatchError<<C::Aggregate as Handles<C>>::Error>,
        >,
    > + Send
    + 'a
    where
        C: Command,
        C::Aggregate: Handles<C>,
    {
        async move {
            if !loaded.fresh {
                *clock = None;
                self.catch_up_boxed(stream, loaded).await?;
            }
            let services = self.service::<C, <C::Aggregate as Handles<C>>::Services>()?;
            let mut attempt = 1;
            loop {
                let decided = {
                    let mut handling =
                        std::pin::pin!(loaded.state.handle(command.clone(), services));
                    std::future::poll_fn(|cx| {
                        let poll = handling.as_mut().poll(cx);
                        if poll.is_pending() {
                            *clock = None;
                        }
                        poll
                    })
                    .await
                };
                let events = match decided {
                    Ok(events) => events,
                    Err(refusal) => {
                        // A refusal is only as good as the state it was decided on: another
                        // node may have moved the stream past our cache. One version read
                        // (only on this rare path) tells; if stale, catch up and decide again.
                        let current = Box::pin(self.inner.store.stream_version(stream))
                            .await?
                            .unwrap_or(0);
                        if current == loaded.version || attempt >= self.inner.max_attempts {
                            return Err(DispatchError::Domain(refusal));
                        }
                        attempt += 1;
                        *clock = None;
                        self.catch_up_boxed(stream, loaded).await?;
                        continue;
                    }
                };
                if events.is_empty() {
                    return Ok((events, None));
                }
                let expected = ExpectedVersion::Exact(loaded.version);
                let appended = match self.inner.store.memory() {
                    Some(memory) => append_to_memory(
                        memory,
                        stream,
                        expected,
                        &events,
                        event_ids,
                        metadata,
                        &mut loaded.store_slot,
                        *clock,
                    )?,
                    None => {
                        let new_events = encode_all(&events, event_ids, metadata)?;
                        let store = &self.inner.store;
                        if loaded.version > 0 {
                            // The cached version was read or written here: seen.
                            store
                                .append_after_seen_boxed(stream, loaded.version, new_events)
                                .await
                        } else {
                            store.append_boxed(stream, expected, new_events).await
                        }
                    }
                };
                match appended {
                    Ok(done) => {
                        for event in &events {
                            loaded.state.apply(event);
                        }
                        loaded.version = done.stream_version;
                        loaded.since_snapshot += events.len() as u64;
                        if C::Aggregate::SNAPSHOT_EVERY
                            .is_some_and(|every| loaded.since_snapshot >= every)
                        {
                            Box::pin(self.snapshot(stream, loaded)).await;
                        }
                        return Ok((events, Some((done.first_position, done.last_position))));
                    }
                    Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                        if attempt >= self.inner.max_attempts {
                            return Err(DispatchError::Conflict {
                                stream: stream.clone(),
                                expected,
                                actual,
                                attempts: attempt,
                            });
                        }
                        tracing::debug!(
                            attempt,
                            ?actual,
                            "another writer changed the stream; catching up"
                        );
                        attempt += 1;
                        *clock = None;
                        self.catch_up_boxed(stream, loaded).await?;
                    }
                    Err(StoreError::DuplicateEventId { .. })
                        if let EventIds::Derived(command_id) = event_ids =>
                    {
                        // Event ids derive from the command id: this command was recorded before.
                        return Err(DispatchError::DuplicateCommand {
                            command_id,
                            stream: stream.clone(),
                        });
                    }
                    Err(error) => {
                        // The append may or may not have been recorded: reload before the next command.
                        loaded.fresh = false;
                        return Err(DispatchError::Store(error));
                    }
                }
            }
        }
    }

    fn service<C: Command, S: Send + Sync + 'static>(
        &self,
    ) -> Result<&S, DispatchError<<C::Aggregate as Handles<C>>::Error>>
    where
        C::Aggregate: Handles<C>,
    {
        static UNIT: () = ();
        if let Some(unit) = (&UNIT as &dyn Any).downcast_ref::<S>() {
            return Ok(unit);
        }
        self.inner
            .services
            .get(&TypeId::of::<S>())
            .and_then(|s| s.downcast_ref::<S>())
            .ok_or(DispatchError::MissingService {
                service: type_name::<S>(),
                command: C::NAME,
                handler: <C::Aggregate as Handles<C>>::HANDLER,
            })
    }

    /// [`App::catch_up`] behind a box. Dispatch needs it rarely (first load,
    /// conflicts, stale refusals); awaited inline, its state would make every
    /// dispatch future larger, and that future is moved on every command.
    fn catch_up_boxed<'a, A: Aggregate>(
        &'a self,
        stream: &'a StreamId,
        loaded: &'a mut Loaded<A>,
    ) -> futures::future::BoxFuture<'a, Result<(), LoadError>> {
        Box::pin(self.catch_up(stream, loaded))
    }

    /// Brings a cached aggregate up to the stream's current version.
    async fn catch_up<A: Aggregate>(
        &self,
        stream: &StreamId,
        loaded: &mut Loaded<A>,
    ) -> Result<(), LoadError> {
        if !loaded.fresh {
            *loaded = Loaded {
                state: A::default(),
                version: 0,
                fresh: false,
                since_snapshot: 0,
                store_slot: loaded.store_slot,
            };
            if A::SNAPSHOT_EVERY.is_some() {
                self.restore_snapshot(stream, loaded).await?;
            }
        }
        loop {
            let batch = self
                .inner
                .store
                .read_stream(stream, loaded.version + 1, DEFAULT_READ_BATCH)
                .await?;
            let full = batch.len() == DEFAULT_READ_BATCH;
            for recorded in batch {
                if recorded.stream_version != loaded.version + 1 {
                    return Err(LoadError::Gap {
                        stream: stream.clone(),
                        expected: loaded.version + 1,
                        found: recorded.stream_version,
                    });
                }
                let event = A::Event::decode(
                    &recorded.event_type,
                    recorded.event_version,
                    &recorded.payload,
                )
                .map_err(|source| LoadError::Decode {
                    stream: stream.clone(),
                    version: recorded.stream_version,
                    event_type: recorded.event_type.clone().into_owned(),
                    event_version: recorded.event_version,
                    source,
                })?;
                loaded.state.apply(&event);
                loaded.version = recorded.stream_version;
                loaded.since_snapshot += 1;
            }
            if !full {
                break;
            }
        }
        loaded.fresh = true;
        Ok(())
    }

    async fn restore_snapshot<A: Aggregate>(
        &self,
        stream: &StreamId,
        loaded: &mut Loaded<A>,
    ) -> Result<(), LoadError> {
        let Some(snapshot) = self.inner.store.load_snapshot(stream).await? else {
            return Ok(());
        };
        if snapshot.snapshot_version != A::SNAPSHOT_VERSION {
            tracing::debug!(
                found = snapshot.snapshot_version,
                wanted = A::SNAPSHOT_VERSION,
                "ignoring snapshot of another version"
            );
            return Ok(());
        }
        match A::restore(&snapshot.state) {
            Some(Ok(state)) => {
                loaded.state = state;
                loaded.version = snapshot.stream_version;
            }
            Some(Err(error)) => {
                tracing::warn!(%stream, %error, "ignoring a snapshot that does not decode; replaying the stream")
            }
            None => {}
        }
        Ok(())
    }

    /// Saves a snapshot of `loaded` (called when one is due).
    async fn snapshot<A: Aggregate>(&self, stream: &StreamId, loaded: &mut Loaded<A>) {
        let state = match loaded.state.snapshot() {
            Some(Ok(state)) => state,
            Some(Err(error)) => {
                tracing::warn!(%stream, %error, "could not serialise a snapshot");
                return;
            }
            None => return,
        };
        let snapshot = Snapshot {
            stream_id: stream.clone(),
            stream_version: loaded.version,
            snapshot_version: A::SNAPSHOT_VERSION,
            state,
            taken_at: chrono::Utc::now(),
        };
        // A snapshot is an optimisation: failing to save one must not fail the command.
        match self.inner.store.save_snapshot(snapshot).await {
            Ok(()) => loaded.since_snapshot = 0,
            Err(error) => tracing::warn!(%stream, %error, "could not save a snapshot"),
        }
    }
}

/// Where a command's id and its events' ids come from.
#[derive(Debug, Clone, Copy)]
enum EventIds {
    /// The caller gave the command id: event ids derive from it, so a retry collides.
    Derived(Uuid),
    /// A fresh command id, whose events take the ids that follow it.
    Fresh(FreshId),
}

impl EventIds {
    fn command_id(self) -> Uuid {
        match self {
            Self::Derived(id) => id,
            Self::Fresh(fresh) => fresh.command_id(),
        }
    }

    fn event_id(self, index: usize) -> Uuid {
        match self {
            Self::Derived(id) => derived_event_id(id, index),
            // Past the ids a fresh command numbers itself, a random one (which the store checks).
            Self::Fresh(fresh) => fresh.event_id(index).unwrap_or_else(Uuid::now_v7),
        }
    }

    /// Whether all `count` event ids come from the fresh sequence.
    fn all_fresh(self, count: usize) -> bool {
        matches!(self, Self::Fresh(_)) && count <= FreshId::MAX_EVENTS
    }
}

/// The id of event `index` of command `command_id`: a uuid v7 carrying the
/// command id's timestamp (its first 48 bits) and 74 bits hashed from the command
/// id and the index. Deterministic, so a retried command collides with itself.
fn derived_event_id(command_id: Uuid, index: usize) -> Uuid {
    let hashed = Uuid::new_v5(&command_id, &(index as u64).to_be_bytes()).as_u128();
    let time = command_id.as_u128() & (!0u128 << 80);
    let rand = hashed & !(!0u128 << 80);
    let bits = (time | rand) & !(0xF << 76) & !(0b11 << 62);
    Uuid::from_u128(bits | (0x7 << 76) | (0b10 << 62))
}

fn encode<Ev: Event, E>(
    event: &Ev,
    event_id: Uuid,
    metadata: &Metadata,
) -> Result<NewEvent, DispatchError<E>> {
    let payload = event.encode().map_err(|source| DispatchError::Encode {
        event_type: event.event_type(),
        source,
    })?;
    Ok(NewEvent {
        event_id,
        event_type: event.event_type().into(),
        event_version: event.event_version(),
        payload,
        metadata: metadata.clone(),
    })
}

fn encode_all<Ev: Event, E>(
    events: &[Ev],
    ids: EventIds,
    metadata: &Metadata,
) -> Result<Vec<NewEvent>, DispatchError<E>> {
    events
        .iter()
        .enumerate()
        .map(|(index, event)| encode(event, ids.event_id(index), metadata))
        .collect()
}

/// Appends to the in-memory store directly: no boxed future, and for the
/// common single event no `Vec` either. The outer `Result` is the encoding's.
#[allow(clippy::too_many_arguments)] // one caller; these are the append's parts
fn append_to_memory<Ev: Event, E>(
    memory: &MemoryStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[Ev],
    ids: EventIds,
    metadata: &Metadata,
    slot_hint: &mut usize,
    now: Option<SystemTime>,
) -> Result<Result<AppendResult, StoreError>, DispatchError<E>> {
    let fresh = ids.all_fresh(events.len());
    Ok(match events {
        [event] => {
            let event = encode(event, ids.event_id(0), metadata)?;
            memory.append_iter(
                stream,
                expected,
                std::iter::once(event),
                fresh,
                slot_hint,
                now,
            )
        }
        _ => {
            let events = encode_all(events, ids, metadata)?;
            memory.append_iter(stream, expected, events.into_iter(), fresh, slot_hint, now)
        }
    })
}

#[doc(hidden)]
pub fn dispatch_json<C>(
    app: &App,
    fields: serde_json::Value,
    options: DispatchOptions,
) -> futures::future::BoxFuture<'_, Result<JsonDispatched, JsonDispatchError>>
where
    C: Command + serde::de::DeserializeOwned,
    C::Aggregate: Handles<C>,
{
    Box::pin(async move {
        let command: C =
            serde_json::from_value(fields).map_err(|source| JsonDispatchError::Malformed {
                command: C::NAME,
                source,
            })?;
        let done = app
            .dispatch_with(command, options)
            .await
            .map_err(|e| JsonDispatchError::Dispatch(e.map_domain(AnyDomainError::new)))?;
        let events = done
            .events
            .iter()
            .map(|e| {
                let payload = e.encode().map_err(|source| {
                    JsonDispatchError::Dispatch(DispatchError::Encode {
                        event_type: e.event_type(),
                        source,
                    })
                })?;
                Ok((e.event_type(), e.event_version(), payload))
            })
            .collect::<Result<_, JsonDispatchError>>()?;
        Ok(JsonDispatched {
            stream_id: done.stream_id,
            version: done.version,
            events,
        })
    })
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
