//! The subscription runner: one task per handler, from its checkpoint
//! through the stored log, then live.
//!
//! Each task takes the handler's turn first ([`EventStore::lock_turn`] on
//! a stream named after the handler: on PostgreSQL a session advisory lock
//! on the store's one session connection, so among processes sharing the
//! database one runs it at a time and another takes over when the holder's
//! connection ends; a runner whose turn is lost stops at once and waits for
//! it again), then reads the events the
//! handler wants ([`EventStore::read_all_filtered`]) page by page, hands
//! them to the handler (events of one stream in order, up to the handler's
//! concurrency at once), and saves its checkpoint in batches. Caught up, it
//! waits on the store's [`LogWatch`](crate::store::LogWatch).

use super::options::HandlerOptions;
use super::status::{HandlerFailure, HandlerState, StatusCell};
use super::{EventHandler, HandlerError, HandlerFuture, StartFrom, interest_names};
use crate::app::{BoxError, WeakApp};
use crate::store::{
    AnyStore, EventFilter, FilteredPage, RecordedEvent, StoreError, StreamId, StreamLock,
};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;

/// A handler behind one type.
pub(crate) trait DynHandler: Send + Sync {
    fn handle<'a>(&'a self, event: &'a RecordedEvent) -> HandlerFuture<'a>;
}

impl<H: EventHandler> DynHandler for H {
    fn handle<'a>(&'a self, event: &'a RecordedEvent) -> HandlerFuture<'a> {
        EventHandler::handle(self, event)
    }
}

/// What the runner hands events to.
pub(crate) enum Target {
    /// An event handler: checkpoints in the store, effects its own.
    Handler(Arc<dyn DynHandler>),
    /// A transactional projection: each batch and its checkpoint in one
    /// transaction on the projection's database.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    Projection(Arc<dyn crate::projection::DynProjection>),
    /// A process manager: dispatches commands through the app.
    Process(Arc<dyn crate::process::DynProcess>),
    /// A RabbitMQ publisher: each page published and confirmed, then
    /// checkpointed in the store.
    #[cfg(feature = "rabbitmq")]
    Publisher(Arc<crate::rabbitmq::PublisherTask>),
}

/// A process manager bound to the app it dispatches through, for one page.
struct WithApp<'a> {
    process: &'a dyn crate::process::DynProcess,
    app: crate::App,
}

impl DynHandler for WithApp<'_> {
    fn handle<'a>(&'a self, event: &'a RecordedEvent) -> HandlerFuture<'a> {
        self.process.handle(&self.app, event)
    }
}

/// Everything the runner needs to know of one handler.
pub(crate) struct HandlerSpec {
    pub(crate) name: &'static str,
    pub(crate) type_name: &'static str,
    pub(crate) target: Target,
    pub(crate) filter: EventFilter,
    /// The event types it reads, for the App's check of upcaster chains.
    pub(crate) interest: &'static [&'static [crate::aggregate::EventType]],
    pub(crate) start_from: StartFrom,
    pub(crate) concurrency: usize,
    pub(crate) options: HandlerOptions,
}

impl HandlerSpec {
    pub(crate) fn new<H: EventHandler>(handler: H, options: HandlerOptions) -> Self {
        Self {
            name: H::NAME,
            type_name: std::any::type_name::<H>(),
            target: Target::Handler(Arc::new(handler)),
            filter: EventFilter::all().event_types(interest_names(H::INTEREST)),
            interest: H::INTEREST,
            start_from: options.start_from.unwrap_or(H::START_FROM),
            concurrency: options.concurrency.unwrap_or(H::CONCURRENCY).max(1),
            options,
        }
    }

    /// A process manager: from the origin, one event at a time.
    pub(crate) fn process<P: crate::process::ProcessManager>(options: HandlerOptions) -> Self {
        Self {
            name: P::NAME,
            type_name: std::any::type_name::<P>(),
            target: Target::Process(Arc::new(crate::process::Instances::<P>::default())),
            filter: EventFilter::all().event_types(interest_names(P::INTEREST)),
            interest: P::INTEREST,
            start_from: StartFrom::Origin,
            concurrency: 1,
            options,
        }
    }

    /// A RabbitMQ publisher of every event: from the origin, one page at a
    /// time.
    #[cfg(feature = "rabbitmq")]
    pub(crate) fn publisher(
        publisher: crate::rabbitmq::Publisher,
        options: HandlerOptions,
    ) -> Result<Self, crate::rabbitmq::RabbitError> {
        Ok(Self {
            name: publisher.name,
            type_name: std::any::type_name::<crate::rabbitmq::Publisher>(),
            target: Target::Publisher(Arc::new(crate::rabbitmq::PublisherTask::new(publisher)?)),
            filter: EventFilter::all(),
            interest: &[],
            start_from: options.start_from.unwrap_or(StartFrom::Origin),
            concurrency: 1,
            options,
        })
    }

    /// A projection on `pool`: from the origin, one batch at a time.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn projection<DB, P>(
        pool: sqlx::Pool<DB>,
        projection: P,
        options: HandlerOptions,
    ) -> Self
    where
        DB: crate::projection::ProjectionDatabase,
        P: crate::projection::Projection<DB>,
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        Self {
            name: P::NAME,
            type_name: std::any::type_name::<P>(),
            target: Target::Projection(Arc::new(crate::projection::Bound {
                pool,
                projection: Arc::new(projection),
            })),
            filter: EventFilter::all().event_types(interest_names(P::INTEREST)),
            interest: P::INTEREST,
            start_from: StartFrom::Origin,
            concurrency: 1,
            options,
        }
    }
}

/// How often a running handler makes sure its turn is still its own.
const TURN_CHECK: Duration = Duration::from_secs(1);

/// The first pause before reading again after a read held back by the
/// store's read horizon; it doubles while the horizon holds, up to
/// [`HELD_BACK_MAX`] (and a quarter of the store's poll interval).
const HELD_BACK_FIRST: Duration = Duration::from_millis(2);

/// The longest pause between reads held back by the read horizon.
const HELD_BACK_MAX: Duration = Duration::from_millis(250);

/// The stream whose lock is a handler's turn to run.
pub(crate) fn turn_stream(name: &str) -> StreamId {
    StreamId::new(format!("$handler-{name}"))
}

/// A read of the page from `from`, running in a task of its own while the
/// runner handles the page before it; dropping it abandons the read.
struct ReadAhead {
    from: u64,
    task: tokio::task::JoinHandle<Result<FilteredPage, StoreError>>,
}

impl ReadAhead {
    fn start(store: &AnyStore, from: u64, batch: usize, filter: &EventFilter) -> Self {
        let (store, filter) = (store.clone(), filter.clone());
        let task = tokio::spawn(
            async move { store.read_all_filtered(from, batch, &filter).await }.in_current_span(),
        );
        Self { from, task }
    }

    /// The read's result; `None` if its task was cancelled (the runtime is
    /// shutting down): read again.
    async fn result(mut self) -> Option<Result<FilteredPage, StoreError>> {
        match (&mut self.task).await {
            Ok(read) => Some(read),
            // The read panicked: as if it had been called here.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a page, or a part of one, ended.
enum Ended {
    /// Every event was handled (or skipped by the policy).
    Done,
    /// Stopped before the event at this position: the policy said stop.
    Stopped(u64),
    /// The app is shutting down; the event at this position was not handled.
    ShutDown(u64),
    /// A projection's checkpoint was moved by another runner: this one
    /// lost its turn. (Only projections, which need a SQL feature, end so.)
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    Moved,
}

pub(crate) struct Runner {
    spec: HandlerSpec,
    store: AnyStore,
    /// For process managers, which dispatch commands.
    app: WeakApp,
    status: Arc<StatusCell>,
    stop: watch::Receiver<bool>,
    /// Rebuild requests: each answered once the handler starts again from 0.
    rebuilds: tokio::sync::mpsc::Receiver<Rebuild>,
}

/// A request to replay a handler from position 0, answered when done.
pub(crate) type Rebuild = tokio::sync::oneshot::Sender<Result<(), String>>;

impl Runner {
    pub(crate) fn new(
        spec: HandlerSpec,
        store: AnyStore,
        app: WeakApp,
        status: Arc<StatusCell>,
        stop: watch::Receiver<bool>,
        rebuilds: tokio::sync::mpsc::Receiver<Rebuild>,
    ) -> Self {
        Self {
            spec,
            store,
            app,
            status,
            stop,
            rebuilds,
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps for `pause`; `false` if the app began shutting down meanwhile.
    async fn pause(&self, pause: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(pause) => !self.stopping(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Records a store error and backs off; `false` if shutting down.
    async fn store_failed(
        &self,
        error: &(dyn std::error::Error + Send + Sync + 'static),
        failures: &mut u32,
    ) -> bool {
        *failures += 1;
        let position = self.status.snapshot().position;
        tracing::warn!(handler = self.spec.name, error = %chain(error), "event store error; retrying");
        self.status.update(|s| {
            s.last_error = Some(HandlerFailure {
                position,
                message: chain(error),
                at: chrono::Utc::now(),
            });
        });
        let pause = Duration::from_millis(50u64 << (*failures).min(7)).min(Duration::from_secs(5));
        self.pause(pause).await
    }

    pub(crate) async fn run(mut self) {
        let name = self.spec.name;
        let span = tracing::info_span!("annals.handler", handler = name);
        async move {
            // Our turn first: one runner of this handler at a time. A turn
            // that is lost (its connection ended) is waited for again.
            let turn = turn_stream(name);
            let mut failures = 0;
            loop {
                let held = loop {
                    let asked = Instant::now();
                    let mut stop = self.stop.clone();
                    let lock = tokio::select! {
                        lock = self.store.lock_turn(&turn) => lock,
                        _ = stop.wait_for(|s| *s) => return self.status.set_state(HandlerState::ShutDown),
                    };
                    match lock {
                        Ok(lock) => break lock,
                        Err(e) => {
                            // A wait that ran out (the store's lock timeout: the
                            // turn is another process's) spaced the attempts
                            // already: only failures that come fast back off
                            // further, or a long-waiting task would mostly be
                            // pausing, not waiting, when the holder goes.
                            if asked.elapsed() >= Duration::from_millis(100) {
                                failures = 0;
                            }
                            if !self.store_failed(&e, &mut failures).await {
                                return self.status.set_state(HandlerState::ShutDown);
                            }
                        }
                    }
                };
                let Some(position) = self.start().await else {
                    return self.status.set_state(HandlerState::ShutDown);
                };
                tracing::debug!(position, "handler started");
                match self.follow(position, &held).await {
                    Some(end) => return self.status.set_state(end),
                    None => {
                        let message = "lost its turn (the store no longer holds its lock): \
                                       waiting for it again";
                        tracing::warn!(handler = name, "{message}");
                        self.status.update(|s| {
                            s.state = HandlerState::Starting;
                            s.last_error = Some(HandlerFailure {
                                position: s.position,
                                message: message.to_owned(),
                                at: chrono::Utc::now(),
                            });
                        });
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The position to continue after: the checkpoint, or where
    /// [`StartFrom`] says.
    async fn start(&mut self) -> Option<u64> {
        let mut failures = 0;
        loop {
            if self.stopping() {
                return None;
            }
            let found = match self.load_checkpoint().await {
                Ok(Some(position)) => Ok(position),
                Ok(None) => match self.spec.start_from {
                    StartFrom::Origin => Ok(0),
                    StartFrom::Now => match self.store.head_position().await {
                        Ok(head) => self.save_checkpoint(head).await.map(|()| head),
                        Err(e) => Err(e.into()),
                    },
                },
                Err(e) => Err(e),
            };
            match found {
                Ok(position) => {
                    self.status.update(|s| {
                        s.position = position;
                        s.checkpoint = position;
                        s.state = HandlerState::Running;
                    });
                    return Some(position);
                }
                Err(e) => {
                    if !self.store_failed(&*e, &mut failures).await {
                        return None;
                    }
                }
            }
        }
    }

    /// The checkpoint, from the store or the projection's database (whose
    /// table is created first if missing).
    async fn load_checkpoint(&self) -> Result<Option<u64>, BoxError> {
        match &self.spec.target {
            Target::Handler(_) | Target::Process(_) => {
                Ok(self.store.load_checkpoint(self.spec.name).await?)
            }
            #[cfg(feature = "rabbitmq")]
            Target::Publisher(_) => Ok(self.store.load_checkpoint(self.spec.name).await?),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Target::Projection(p) => {
                p.prepare().await?;
                Ok(p.load_checkpoint(self.spec.name).await?)
            }
        }
    }

    async fn save_checkpoint(&self, position: u64) -> Result<(), BoxError> {
        match &self.spec.target {
            Target::Handler(_) | Target::Process(_) => {
                Ok(self.store.save_checkpoint(self.spec.name, position).await?)
            }
            #[cfg(feature = "rabbitmq")]
            Target::Publisher(_) => {
                Ok(self.store.save_checkpoint(self.spec.name, position).await?)
            }
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Target::Projection(p) => {
                let from = self.status.snapshot().checkpoint;
                p.apply(self.spec.name, &[], from, position)
                    .await
                    .map_err(crate::projection::BatchError::into_error)
            }
        }
    }

    /// Handles the log after `position` until the app shuts down or the
    /// policy stops the handler (the final state), or until the handler's
    /// turn is found lost (`None`: nothing more is saved, another runner may
    /// be ahead).
    async fn follow(&mut self, mut position: u64, turn: &StreamLock) -> Option<HandlerState> {
        let mut watch = self.store.watch_log();
        let mut saved = position;
        let mut last_save = Instant::now();
        let mut unsaved = 0u64;
        let mut failures = 0;
        let mut pending: Option<Rebuild> = None;
        let mut checked = Instant::now();
        // Set when the store said the turn was lost while we waited.
        let mut lost = false;
        let mut held_back = HELD_BACK_FIRST;
        let mut ahead: Option<ReadAhead> = None;
        let max_held_back = (watch.poll_interval() / 4).clamp(HELD_BACK_FIRST, HELD_BACK_MAX);
        loop {
            // A store that knows at once (a lost session) says so for free.
            let told = futures::FutureExt::now_or_never(turn.lost()).is_some();
            if lost || told || checked.elapsed() >= TURN_CHECK {
                if !turn.still_held().await {
                    return None;
                }
                checked = Instant::now();
                lost = false;
            }
            if self.stopping() {
                self.save(&mut saved, position).await;
                return Some(HandlerState::ShutDown);
            }
            if let Some(done) = pending.take().or_else(|| self.rebuilds.try_recv().ok()) {
                ahead = None;
                let reset = self.reset().await;
                if reset.is_ok() {
                    (position, saved, unsaved) = (0, 0, 0);
                    self.status.update(|s| {
                        s.position = 0;
                        s.checkpoint = 0;
                    });
                    tracing::info!(handler = self.spec.name, "rebuilding from position 0");
                }
                let _ = done.send(reset);
                continue;
            }
            let read_ahead = match ahead.take() {
                Some(next) if next.from == position + 1 => next.result().await,
                _ => None,
            };
            let read = match read_ahead {
                Some(read) => read,
                None => {
                    watch.mark();
                    self.store
                        .read_all_filtered(position + 1, self.spec.options.batch, &self.spec.filter)
                        .await
                }
            };
            let page = match read {
                Ok(page) => page,
                Err(bad) if bad.corrupt_position().is_some() => {
                    // An event the handler wants that cannot be read back:
                    // the same as one it cannot decode.
                    let at = bad.corrupt_position().unwrap_or(position + 1);
                    match self.give_up(at, &bad) {
                        true => {
                            self.save(&mut saved, at - 1).await;
                            return Some(HandlerState::Stopped);
                        }
                        false => {
                            position = at;
                            self.status.update(|s| s.position = at);
                            continue;
                        }
                    }
                }
                Err(e) => {
                    if !self.store_failed(&e, &mut failures).await {
                        self.save(&mut saved, position).await;
                        return Some(HandlerState::ShutDown);
                    }
                    continue;
                }
            };
            failures = 0;
            let scanned_to = page.next_position.saturating_sub(1).max(position);
            if page.events.is_empty() && scanned_to == position {
                // Nothing new, or nothing readable yet.
                self.status.update(|s| {
                    s.lag = 0;
                    s.state = HandlerState::Idle;
                });
                self.save(&mut saved, position).await;
                last_save = Instant::now();
                unsaved = 0;
                let mut stop = self.stop.clone();
                if page.held_back {
                    // A transaction older than the read is still running: what
                    // it may write, and what was appended after it, becomes
                    // readable when it ends, with no append to wake us then.
                    let pause = held_back;
                    held_back = (held_back * 2).min(max_held_back);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = watch.changed() => {}
                        _ = stop.wait_for(|s| *s) => {}
                        request = self.rebuilds.recv() => pending = request,
                        () = turn.lost() => lost = true,
                    }
                    continue;
                }
                held_back = HELD_BACK_FIRST;
                tokio::select! {
                    _ = watch.changed() => {}
                    _ = stop.wait_for(|s| *s) => {}
                    request = self.rebuilds.recv() => pending = request,
                    () = turn.lost() => lost = true,
                }
                continue;
            }
            held_back = HELD_BACK_FIRST;
            if page.events.is_empty() {
                // A stretch of the log with nothing the handler wants: on
                // to the next one at once.
                position = scanned_to;
                self.status.update(|s| s.position = position);
                let opts = &self.spec.options;
                if last_save.elapsed() >= opts.checkpoint_interval {
                    self.save(&mut saved, position).await;
                    last_save = Instant::now();
                    unsaved = 0;
                }
                continue;
            }
            self.status.update(|s| {
                s.state = HandlerState::Running;
                s.lag = scanned_to.saturating_sub(position);
            });
            let count = page.events.len() as u64;
            // The next page is read (and decoded) while this one is handled.
            watch.mark();
            ahead = Some(ReadAhead::start(
                &self.store,
                scanned_to + 1,
                self.spec.options.batch,
                &self.spec.filter,
            ));
            match self.handle_page(page.events, scanned_to).await {
                Ended::Done => {
                    position = scanned_to;
                    unsaved += count;
                    self.status.update(|s| s.position = position);
                    if self.commits_checkpoints() {
                        saved = position;
                    }
                }
                Ended::Stopped(at) => {
                    self.save(&mut saved, at - 1).await;
                    return Some(HandlerState::Stopped);
                }
                Ended::ShutDown(at) => {
                    self.save(&mut saved, at - 1).await;
                    return Some(HandlerState::ShutDown);
                }
                Ended::Moved => return None,
            }
            let opts = &self.spec.options;
            if unsaved >= opts.checkpoint_events || last_save.elapsed() >= opts.checkpoint_interval
            {
                self.save(&mut saved, position).await;
                last_save = Instant::now();
                unsaved = 0;
            }
        }
    }

    /// Saves the checkpoint if it moved; a failure is reported and the next
    /// save tries again (at worst, events are handled again after a crash).
    async fn save(&self, saved: &mut u64, position: u64) {
        if position == *saved {
            return;
        }
        match self.save_checkpoint(position).await {
            Ok(()) => {
                *saved = position;
                self.status.update(|s| s.checkpoint = position);
            }
            Err(e) => {
                tracing::warn!(handler = self.spec.name, error = %chain(&*e), "cannot save checkpoint");
                self.status.update(|s| {
                    s.last_error = Some(HandlerFailure {
                        position,
                        message: format!("cannot save checkpoint: {}", chain(&*e)),
                        at: chrono::Utc::now(),
                    });
                });
            }
        }
    }

    /// Hands a page to the handler: with concurrency 1 in order, else split
    /// by stream into up to `concurrency` lanes, each in order.
    async fn handle_page(&self, events: Vec<RecordedEvent>, scanned_to: u64) -> Ended {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if let Target::Projection(p) = &self.spec.target {
            return self.project_page(&**p, &events, scanned_to).await;
        }
        #[cfg(feature = "rabbitmq")]
        if let Target::Publisher(p) = &self.spec.target {
            return self.publish_page(p, &events).await;
        }
        let _ = scanned_to;
        let bound;
        let handler: &dyn DynHandler = match &self.spec.target {
            Target::Handler(handler) => &**handler,
            Target::Process(process) => {
                // The app is there unless it is being dropped (or, for a
                // moment, still being built).
                let app = loop {
                    if let Some(app) = self.app.upgrade() {
                        break app;
                    }
                    if !self.pause(Duration::from_millis(5)).await {
                        return Ended::ShutDown(events[0].global_position);
                    }
                };
                bound = WithApp {
                    process: &**process,
                    app,
                };
                &bound
            }
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Target::Projection(_) => return Ended::Done,
            #[cfg(feature = "rabbitmq")]
            Target::Publisher(_) => return Ended::Done,
        };
        let lanes = self.spec.concurrency.min(events.len()).max(1);
        if lanes == 1 {
            return self.handle_lane(handler, &events, true).await;
        }
        let hasher = foldhash::fast::FixedState::with_seed(0x616e6e616c73);
        let mut split: Vec<Vec<RecordedEvent>> = (0..lanes).map(|_| Vec::new()).collect();
        for event in events {
            let mut h = hasher.build_hasher();
            event.stream_id.as_str().hash(&mut h);
            let lane = (std::hash::Hasher::finish(&h) % lanes as u64) as usize;
            split[lane].push(event);
        }
        let ended = futures::future::join_all(
            split
                .iter()
                .filter(|lane| !lane.is_empty())
                .map(|lane| self.handle_lane(handler, lane, false)),
        )
        .await;
        // The checkpoint may not pass the first event any lane left unhandled.
        let mut first: Option<Ended> = None;
        for end in ended {
            let at = match end {
                Ended::Done | Ended::Moved => continue,
                Ended::Stopped(at) | Ended::ShutDown(at) => at,
            };
            let earlier = match &first {
                Some(Ended::Stopped(f) | Ended::ShutDown(f)) => at < *f,
                _ => true,
            };
            if earlier {
                first = Some(end);
            }
        }
        first.unwrap_or(Ended::Done)
    }

    /// Handles `events` in order, then counts them in the status at once
    /// (one update, one wake-up of position waiters, per lane rather than per
    /// event). With `track` (only valid when this lane holds the whole page),
    /// a lane that ends early also moves the status position to the last
    /// event it handled; a page handled to its end moves it in `follow`.
    async fn handle_lane(
        &self,
        handler: &dyn DynHandler,
        events: &[RecordedEvent],
        track: bool,
    ) -> Ended {
        let mut handled = 0;
        let mut ended = Ended::Done;
        let mut last = None;
        for event in events {
            if self.stopping() {
                ended = Ended::ShutDown(event.global_position);
                break;
            }
            match self.handle_one(handler, event, &mut handled).await {
                Ended::Done => last = Some(event.global_position),
                other => {
                    ended = other;
                    break;
                }
            }
        }
        let early = !matches!(ended, Ended::Done);
        self.status.update(|s| {
            s.handled += handled;
            if let (true, true, Some(last)) = (track, early, last) {
                s.position = last;
            }
        });
        ended
    }

    /// One event, tried as the error policy says; counted in `handled` if
    /// the handler succeeded (not if skipped).
    async fn handle_one(
        &self,
        handler: &dyn DynHandler,
        event: &RecordedEvent,
        handled: &mut u64,
    ) -> Ended {
        let policy = self.spec.options.policy;
        let at = event.global_position;
        let mut attempt = 1;
        loop {
            let span = tracing::info_span!(
                "annals.event",
                handler = self.spec.name,
                event_type = %event.event_type,
                stream = %event.stream_id,
                position = at,
                correlation_id = tracing::field::Empty,
            );
            if let Some(id) = event.metadata.correlation_id {
                span.record("correlation_id", tracing::field::display(id));
            }
            let result = handler.handle(event).instrument(span).await;
            let error = match result {
                Ok(()) => {
                    *handled += 1;
                    if attempt > 1 {
                        self.status.update(|s| {
                            if matches!(s.state, HandlerState::Retrying { .. }) {
                                s.state = HandlerState::Running;
                            }
                        });
                    }
                    return Ended::Done;
                }
                Err(error) => error,
            };
            let message = chain(&error);
            self.status.update(|s| {
                s.last_error = Some(HandlerFailure {
                    position: at,
                    message: message.clone(),
                    at: chrono::Utc::now(),
                });
            });
            let retryable = !matches!(error, HandlerError::Decode { .. });
            if retryable && attempt < policy.max_attempts() {
                tracing::warn!(
                    handler = self.spec.name, position = at, attempt, error = %message,
                    "handler failed; retrying"
                );
                self.status.set_state(HandlerState::Retrying { attempt });
                let pause = policy.pause(attempt);
                let mut stop = self.stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => return Ended::ShutDown(at),
                }
                attempt += 1;
                continue;
            }
            if self.give_up(at, &error) {
                return Ended::Stopped(at);
            }
            return Ended::Done;
        }
    }

    /// Starts the handler over: a projection's read model is emptied and its
    /// checkpoint set to 0 in one transaction; a handler's checkpoint is
    /// set to 0 (what it did outside is its own to undo).
    async fn reset(&self) -> Result<(), String> {
        let result: Result<(), BoxError> = match &self.spec.target {
            Target::Handler(_) | Target::Process(_) => self
                .store
                .save_checkpoint(self.spec.name, 0)
                .await
                .map_err(Into::into),
            #[cfg(feature = "rabbitmq")]
            Target::Publisher(_) => self
                .store
                .save_checkpoint(self.spec.name, 0)
                .await
                .map_err(Into::into),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Target::Projection(p) => p
                .reset(self.spec.name)
                .await
                .map_err(crate::projection::BatchError::into_error),
        };
        result.map_err(|e| chain(&*e))
    }

    /// Whether a handled page also saved the checkpoint (projections commit
    /// it with their writes).
    fn commits_checkpoints(&self) -> bool {
        match &self.spec.target {
            Target::Handler(_) | Target::Process(_) => false,
            #[cfg(feature = "rabbitmq")]
            Target::Publisher(_) => false,
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Target::Projection(_) => true,
        }
    }

    /// Applies a page to a projection: all of it in one transaction with the
    /// checkpoint at `scanned_to`; when an event fails, the events before it
    /// in a transaction of their own, then that event as the policy says,
    /// then the rest.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    async fn project_page(
        &self,
        projection: &dyn crate::projection::DynProjection,
        events: &[RecordedEvent],
        scanned_to: u64,
    ) -> Ended {
        use crate::projection::BatchError;
        let mut rest = events;
        let mut end = rest.len();
        let mut failures = 0;
        loop {
            let batch = &rest[..end];
            let checkpoint = match batch.last() {
                Some(last) if end < rest.len() => last.global_position,
                _ => scanned_to,
            };
            if self.stopping() {
                return Ended::ShutDown(rest.first().map_or(scanned_to + 1, |e| e.global_position));
            }
            let span = tracing::info_span!(
                "annals.project",
                handler = self.spec.name,
                events = batch.len(),
                from = batch.first().map(|e| e.global_position),
                checkpoint,
            );
            match projection
                .apply(
                    self.spec.name,
                    batch,
                    self.status.snapshot().checkpoint,
                    checkpoint,
                )
                .instrument(span)
                .await
            {
                Ok(()) => {
                    failures = 0;
                    self.status.update(|s| {
                        s.handled += batch.len() as u64;
                        s.checkpoint = checkpoint;
                        s.position = checkpoint;
                        if matches!(s.state, HandlerState::Retrying { .. }) {
                            s.state = HandlerState::Running;
                        }
                    });
                    rest = &rest[end..];
                    end = rest.len();
                    if checkpoint == scanned_to {
                        return Ended::Done;
                    }
                }
                Err(BatchError::Database(e)) => {
                    if !self.store_failed(&e, &mut failures).await {
                        return Ended::ShutDown(
                            rest.first().map_or(scanned_to + 1, |e| e.global_position),
                        );
                    }
                }
                Err(BatchError::Event(0, error)) => {
                    match self.project_one(projection, &rest[0], error).await {
                        Ended::Done => {
                            rest = &rest[1..];
                            end = rest.len();
                        }
                        other => return other,
                    }
                }
                // Commit what came before the failing event first.
                Err(BatchError::Event(index, _)) => end = index,
                Err(BatchError::Moved) => return Ended::Moved,
            }
        }
    }

    /// One event that failed in a batch, on its own, as the policy says:
    /// retried in transactions of its own; given up, skipped (the checkpoint
    /// moves past it, nothing else is written) or stopped before.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    async fn project_one(
        &self,
        projection: &dyn crate::projection::DynProjection,
        event: &RecordedEvent,
        first: HandlerError,
    ) -> Ended {
        use crate::projection::BatchError;
        let policy = self.spec.options.policy;
        let at = event.global_position;
        let mut error = first;
        let mut attempt = 1;
        let mut failures = 0;
        loop {
            let retryable = !matches!(error, HandlerError::Decode { .. });
            let message = chain(&error);
            if !(retryable && attempt < policy.max_attempts()) {
                if self.give_up(at, &error) {
                    return Ended::Stopped(at);
                }
                // Skipped: only the checkpoint moves past it.
                loop {
                    let from = self.status.snapshot().checkpoint;
                    match projection.apply(self.spec.name, &[], from, at).await {
                        Err(BatchError::Moved) => return Ended::Moved,
                        Ok(()) => {
                            self.status.update(|s| {
                                s.checkpoint = at;
                                s.position = at;
                            });
                            return Ended::Done;
                        }
                        Err(BatchError::Database(e)) => {
                            if !self.store_failed(&e, &mut failures).await {
                                return Ended::ShutDown(at);
                            }
                        }
                        Err(BatchError::Event(_, e)) => {
                            if !self.store_failed(&e, &mut failures).await {
                                return Ended::ShutDown(at);
                            }
                        }
                    }
                }
            }
            tracing::warn!(
                handler = self.spec.name, position = at, attempt, error = %message,
                "projection failed; retrying"
            );
            self.status.update(|s| {
                s.state = HandlerState::Retrying { attempt };
                s.last_error = Some(HandlerFailure {
                    position: at,
                    message,
                    at: chrono::Utc::now(),
                });
            });
            if !self.pause(policy.pause(attempt)).await {
                return Ended::ShutDown(at);
            }
            attempt += 1;
            match projection
                .apply(
                    self.spec.name,
                    std::slice::from_ref(event),
                    self.status.snapshot().checkpoint,
                    at,
                )
                .await
            {
                Ok(()) => {
                    self.status.update(|s| {
                        s.handled += 1;
                        s.checkpoint = at;
                        s.position = at;
                        s.state = HandlerState::Running;
                    });
                    return Ended::Done;
                }
                Err(BatchError::Event(_, again)) => error = again,
                Err(BatchError::Moved) => return Ended::Moved,
                Err(BatchError::Database(e)) => error = HandlerError::Failed(e.into()),
            }
        }
    }

    /// Publishes a page, and waits for the broker's confirms: the
    /// checkpoint moves past it only then. While the broker is away the
    /// page is published again (whole) after a backoff, and the status says
    /// `Retrying` with the broker's error. An event that cannot be a
    /// message (its routing key too long) is given up as the policy says,
    /// after the events before it are published.
    #[cfg(feature = "rabbitmq")]
    async fn publish_page(
        &self,
        publisher: &crate::rabbitmq::PublisherTask,
        events: &[RecordedEvent],
    ) -> Ended {
        use crate::rabbitmq::PublishError;
        let mut rest = events;
        let mut end = rest.len();
        let mut failures = 0u32;
        while !rest.is_empty() {
            let at = rest[0].global_position;
            if self.stopping() {
                return Ended::ShutDown(at);
            }
            let batch = &rest[..end];
            let span = tracing::info_span!(
                "annals.publish",
                handler = self.spec.name,
                events = batch.len(),
                from = at,
            );
            match publisher.publish(batch).instrument(span).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(
                            handler = self.spec.name,
                            "RabbitMQ reachable again; publishing"
                        );
                        self.status.set_state(HandlerState::Running);
                        failures = 0;
                    }
                    self.status.update(|s| s.handled += batch.len() as u64);
                    rest = &rest[end..];
                    end = rest.len();
                }
                Err(PublishError::Message(0, error)) => {
                    if self.give_up(at, &error) {
                        return Ended::Stopped(at);
                    }
                    rest = &rest[1..];
                    end = rest.len();
                }
                Err(PublishError::Message(index, _)) => end = index,
                Err(PublishError::Broker(error)) => {
                    failures = failures.saturating_add(1);
                    let message = chain(&error);
                    tracing::warn!(
                        handler = self.spec.name, attempt = failures, error = %message,
                        "RabbitMQ unreachable or refused a page; reconnecting and publishing it again"
                    );
                    self.status.update(|s| {
                        s.state = HandlerState::Retrying { attempt: failures };
                        s.last_error = Some(HandlerFailure {
                            position: at,
                            message,
                            at: chrono::Utc::now(),
                        });
                    });
                    if !self.pause(crate::rabbitmq::backoff(failures)).await {
                        return Ended::ShutDown(at);
                    }
                }
            }
        }
        Ended::Done
    }

    /// Applies the policy's last word to the event at `at`; `true` to stop.
    fn give_up(&self, at: u64, error: &dyn std::error::Error) -> bool {
        let message = chain(error);
        let stop = self.spec.options.policy.stops();
        if stop {
            tracing::error!(
                handler = self.spec.name, position = at, error = %message,
                "handler stopped before an event it failed on; it tries it again when restarted"
            );
        } else {
            tracing::error!(
                handler = self.spec.name, position = at, error = %message,
                "handler skipped an event it failed on"
            );
            self.status.update(|s| s.skipped += 1);
        }
        self.status.update(|s| {
            s.last_error = Some(HandlerFailure {
                position: at,
                message,
                at: chrono::Utc::now(),
            });
        });
        stop
    }
}

/// An error and its sources, `": "`-separated.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
