//! The subscription runner: one task per handler, from its checkpoint
//! through the stored log, then live.
//!
//! Each task takes the handler's turn first ([`EventStore::lock_stream`] on
//! a stream named after the handler: on PostgreSQL a session advisory lock,
//! so among processes sharing the database one runs it at a time and another
//! takes over when the holder's connection ends), then reads the events the
//! handler wants ([`EventStore::read_all_filtered`]) page by page, hands
//! them to the handler (events of one stream in order, up to the handler's
//! concurrency at once), and saves its checkpoint in batches. Caught up, it
//! waits on the store's [`LogWatch`](crate::store::LogWatch).

use super::options::HandlerOptions;
use super::status::{HandlerFailure, HandlerState, StatusCell};
use super::{EventHandler, HandlerError, HandlerFuture, StartFrom, interest_names};
use crate::store::{AnyStore, EventFilter, RecordedEvent, StoreError, StreamId};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;

/// A handler behind one type.
pub(crate) trait DynHandler: Send + Sync + 'static {
    fn handle<'a>(&'a self, event: &'a RecordedEvent) -> HandlerFuture<'a>;
}

impl<H: EventHandler> DynHandler for H {
    fn handle<'a>(&'a self, event: &'a RecordedEvent) -> HandlerFuture<'a> {
        EventHandler::handle(self, event)
    }
}

/// Everything the runner needs to know of one handler.
pub(crate) struct HandlerSpec {
    pub(crate) name: &'static str,
    pub(crate) type_name: &'static str,
    pub(crate) handler: Arc<dyn DynHandler>,
    pub(crate) filter: EventFilter,
    pub(crate) start_from: StartFrom,
    pub(crate) concurrency: usize,
    pub(crate) options: HandlerOptions,
}

impl HandlerSpec {
    pub(crate) fn new<H: EventHandler>(handler: H, options: HandlerOptions) -> Self {
        Self {
            name: H::NAME,
            type_name: std::any::type_name::<H>(),
            handler: Arc::new(handler),
            filter: EventFilter::all().event_types(interest_names(H::INTEREST)),
            start_from: options.start_from.unwrap_or(H::START_FROM),
            concurrency: options.concurrency.unwrap_or(H::CONCURRENCY).max(1),
            options,
        }
    }
}

/// The stream whose lock is a handler's turn to run.
pub(crate) fn turn_stream(name: &str) -> StreamId {
    StreamId::new(format!("$handler-{name}"))
}

/// How a page, or a part of one, ended.
enum Ended {
    /// Every event was handled (or skipped by the policy).
    Done,
    /// Stopped before the event at this position: the policy said stop.
    Stopped(u64),
    /// The app is shutting down; the event at this position was not handled.
    ShutDown(u64),
}

pub(crate) struct Runner {
    spec: HandlerSpec,
    store: AnyStore,
    status: Arc<StatusCell>,
    stop: watch::Receiver<bool>,
}

impl Runner {
    pub(crate) fn new(
        spec: HandlerSpec,
        store: AnyStore,
        status: Arc<StatusCell>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self {
            spec,
            store,
            status,
            stop,
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
    async fn store_failed(&self, error: &StoreError, failures: &mut u32) -> bool {
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
            // Our turn first: one runner of this handler at a time.
            let turn = turn_stream(name);
            let mut failures = 0;
            let _turn = loop {
                let asked = Instant::now();
                let lock = tokio::select! {
                    lock = self.store.lock_stream(&turn) => lock,
                    _ = self.stop.wait_for(|s| *s) => return self.status.set_state(HandlerState::ShutDown),
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
            let end = self.follow(position).await;
            self.status.set_state(end);
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
            let found = match self.store.load_checkpoint(self.spec.name).await {
                Ok(Some(position)) => Ok(position),
                Ok(None) => match self.spec.start_from {
                    StartFrom::Origin => Ok(0),
                    StartFrom::Now => match self.store.head_position().await {
                        Ok(head) => self
                            .store
                            .save_checkpoint(self.spec.name, head)
                            .await
                            .map(|()| head),
                        Err(e) => Err(e),
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
                    if !self.store_failed(&e, &mut failures).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Handles the log after `position` until the app shuts down or the
    /// policy stops the handler; returns the final state.
    async fn follow(&mut self, mut position: u64) -> HandlerState {
        let mut watch = self.store.watch_log();
        let mut saved = position;
        let mut last_save = Instant::now();
        let mut unsaved = 0u64;
        let mut failures = 0;
        loop {
            if self.stopping() {
                self.save(&mut saved, position).await;
                return HandlerState::ShutDown;
            }
            watch.mark();
            let read = self
                .store
                .read_all_filtered(position + 1, self.spec.options.batch, &self.spec.filter)
                .await;
            let page = match read {
                Ok(page) => page,
                Err(bad) if bad.corrupt_position().is_some() => {
                    // An event the handler wants that cannot be read back:
                    // the same as one it cannot decode.
                    let at = bad.corrupt_position().unwrap_or(position + 1);
                    match self.give_up(at, &bad) {
                        true => {
                            self.save(&mut saved, at - 1).await;
                            return HandlerState::Stopped;
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
                        return HandlerState::ShutDown;
                    }
                    continue;
                }
            };
            failures = 0;
            let scanned_to = page.next_position.saturating_sub(1).max(position);
            if page.events.is_empty() {
                position = scanned_to;
                self.status.update(|s| {
                    s.position = position;
                    s.lag = 0;
                    s.state = HandlerState::Idle;
                });
                self.save(&mut saved, position).await;
                last_save = Instant::now();
                unsaved = 0;
                tokio::select! {
                    _ = watch.changed() => {}
                    _ = self.stop.wait_for(|s| *s) => {}
                }
                continue;
            }
            self.status.update(|s| {
                s.state = HandlerState::Running;
                s.lag = scanned_to.saturating_sub(position);
            });
            let count = page.events.len() as u64;
            match self.handle_page(page.events).await {
                Ended::Done => {
                    position = scanned_to;
                    unsaved += count;
                    self.status.update(|s| s.position = position);
                }
                Ended::Stopped(at) => {
                    self.save(&mut saved, at - 1).await;
                    return HandlerState::Stopped;
                }
                Ended::ShutDown(at) => {
                    self.save(&mut saved, at - 1).await;
                    return HandlerState::ShutDown;
                }
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
        match self.store.save_checkpoint(self.spec.name, position).await {
            Ok(()) => {
                *saved = position;
                self.status.update(|s| s.checkpoint = position);
            }
            Err(e) => {
                tracing::warn!(handler = self.spec.name, error = %chain(&e), "cannot save checkpoint");
                self.status.update(|s| {
                    s.last_error = Some(HandlerFailure {
                        position,
                        message: format!("cannot save checkpoint: {}", chain(&e)),
                        at: chrono::Utc::now(),
                    });
                });
            }
        }
    }

    /// Hands a page to the handler: with concurrency 1 in order, else split
    /// by stream into up to `concurrency` lanes, each in order.
    async fn handle_page(&self, events: Vec<RecordedEvent>) -> Ended {
        let lanes = self.spec.concurrency.min(events.len()).max(1);
        if lanes == 1 {
            return self.handle_lane(&events, true).await;
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
                .map(|lane| self.handle_lane(lane, false)),
        )
        .await;
        // The checkpoint may not pass the first event any lane left unhandled.
        let mut first: Option<Ended> = None;
        for end in ended {
            let at = match end {
                Ended::Done => continue,
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

    /// Handles `events` in order. With `track`, the status position follows
    /// each event (only valid when this lane holds the whole page).
    async fn handle_lane(&self, events: &[RecordedEvent], track: bool) -> Ended {
        for event in events {
            if self.stopping() {
                return Ended::ShutDown(event.global_position);
            }
            match self.handle_one(event).await {
                Ended::Done => {
                    if track {
                        self.status.update(|s| s.position = event.global_position);
                    }
                }
                other => return other,
            }
        }
        Ended::Done
    }

    /// One event, tried as the error policy says.
    async fn handle_one(&self, event: &RecordedEvent) -> Ended {
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
            let result = self.spec.handler.handle(event).instrument(span).await;
            let error = match result {
                Ok(()) => {
                    self.status.update(|s| {
                        s.handled += 1;
                        if matches!(s.state, HandlerState::Retrying { .. }) {
                            s.state = HandlerState::Running;
                        }
                    });
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
