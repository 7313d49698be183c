//! The dispatch pipeline: one path for every store and every entry point.
//!
//! A command finds its aggregate's slot in the cache (validating the id the
//! first time), runs the middleware's `before`, takes the slot's lock, loads
//! what it has not seen, decides, appends with
//! [`EventStore::append_after_seen`](crate::EventStore::append_after_seen)
//! and applies what was recorded. Conflicts are retried as the app's
//! [`RetryPolicy`](super::RetryPolicy) says.

use super::cache::Loaded;
use super::ids::EventIds;
use super::middleware::{BoxError, CommandContext, CommandOutcome, OutcomeKind};
use super::{App, DispatchError, DispatchOptions, Dispatched};
use crate::aggregate::{Aggregate, Command, Event, Handles};
use crate::store::{ExpectedVersion, Metadata, NewEvent, StoreError, StreamId, StreamLock};
use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

thread_local! {
    static KEY: RefCell<String> = RefCell::new(String::with_capacity(64));
}

/// The error type of dispatching `C`.
type Error<C> = DispatchError<<<C as Command>::Aggregate as Handles<C>>::Error>;

/// The events a command recorded, and their first and last global positions.
type Decided<A> = (Vec<<A as Aggregate>::Event>, Option<(u64, u64)>);

/// What dispatching one command took, for middleware.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tries {
    attempts: u32,
    conflicts: u32,
}

impl App {
    /// The one dispatch future every entry point awaits. Not an `async fn`
    /// wrapper chain: each layer would move the (large) future once more.
    #[allow(clippy::type_complexity)]
    ///
    /// `finish` makes the caller's result from what was dispatched and the
    /// aggregate's new state, before any other command to it can run.
    pub(super) fn run<C, T>(
        &self,
        command: C,
        options: DispatchOptions,
        finish: impl FnOnce(Dispatched<C::Aggregate>, &C::Aggregate) -> T + Send,
    ) -> impl Future<Output = Result<T, Error<C>>> + Send
    where
        C: Command,
        C::Aggregate: Handles<C>,
        T: Send,
    {
        let event_ids = EventIds::new(options.command_id);
        let command_id = event_ids.command_id();
        let correlation_id = options.correlation_id.unwrap_or(command_id);
        let (found, span) = KEY.with_borrow_mut(|key| {
            key.clear();
            let category = command.stream_category();
            key.push_str(category);
            key.push('-');
            // Writing into a String cannot fail; a Display impl that errors only truncates the key.
            let _ = write!(key, "{}", command.aggregate_id());
            // Without a tracing subscriber that wants it, no span at all: a
            // disabled one would still be formatted for the `log` crate on
            // every enter and exit (sqlx turns tracing's `log` feature on).
            let span = if tracing::enabled!(tracing::Level::INFO) {
                tracing::info_span!(
                    "annals.dispatch",
                    command = C::NAME,
                    stream = %key,
                    %correlation_id,
                    %command_id,
                )
            } else {
                tracing::Span::none()
            };
            (self.inner.cache.slot::<C::Aggregate>(category, key), span)
        });
        // The (rare) error boxed: this future is moved on every command.
        let found = found.map_err(Box::new);
        let consistency = options.consistency;
        let expected_version = options.expected_version;
        let metadata = Metadata {
            correlation_id: Some(correlation_id),
            causation_id: Some(options.causation_id.unwrap_or(command_id)),
            custom: options.custom,
        };
        async move {
            let (stream, slot) = found.map_err(|source| {
                let error = DispatchError::InvalidId {
                    command: C::NAME,
                    source: *source,
                };
                tracing::debug!(%error, "rejected");
                error
            })?;
            let mut metadata = metadata;
            let mut tries = Tries::default();
            // Middleware: only when there is some, boxed so that it does not
            // make every dispatch future larger.
            let started = (!self.inner.middleware.is_empty()).then(Instant::now);
            if started.is_some() {
                let before = Box::pin(self.before::<C>(&stream, command_id, metadata, &command));
                let (enriched, refused) = before.await;
                metadata = enriched;
                if metadata.correlation_id != Some(correlation_id) {
                    let id = metadata.correlation_id.unwrap_or_default();
                    tracing::Span::current().record("correlation_id", tracing::field::display(id));
                }
                if let Err(error) = refused {
                    tracing::debug!(%error, "rejected");
                    let context = context::<C>(&stream, command_id, metadata, &command);
                    self.observe(&context, Err(&error), 0, 0, tries, started);
                    return Err(error);
                }
            }
            let mut loaded = match slot.try_lock() {
                Ok(free) => free,
                // Boxed: only a command that waits for another one pays for it.
                Err(_) => Box::pin(slot.lock()).await,
            };
            let outcome = self
                .decide_and_append(
                    &stream,
                    &mut loaded,
                    &command,
                    event_ids,
                    &metadata,
                    expected_version,
                    &mut tries,
                )
                .await;
            match &outcome {
                Ok((events, positions)) => {
                    tracing::debug!(events = events.len(), ?positions, "dispatched")
                }
                Err(error) => tracing::debug!(%error, "rejected"),
            }
            if started.is_some() {
                let context = context::<C>(&stream, command_id, metadata.clone(), &command);
                let (result, events) = match &outcome {
                    Ok((events, _)) => (Ok(()), events.len()),
                    Err(error) => (Err(error), 0),
                };
                self.observe(&context, result, events, loaded.version, tries, started);
            }
            let wait = match (&consistency, &outcome) {
                (Some(wanted), Ok((_, Some((_, last))))) => {
                    Some((wanted, *last, stream.clone(), loaded.version))
                }
                _ => None,
            };
            let result = outcome.map(|(events, positions)| {
                let done = Dispatched {
                    events,
                    stream_id: stream,
                    version: loaded.version,
                    positions,
                    command_id,
                    correlation_id: metadata.correlation_id.unwrap_or(correlation_id),
                };
                finish(done, &loaded.state)
            });
            if let Some((wanted, position, stream, version)) = wait {
                // Not holding the aggregate: other commands to it go on.
                drop(loaded);
                let waited = Box::pin(self.consistent(wanted, position)).await;
                if let Err(crate::handler::NotCaughtUp { handler, reason }) = waited {
                    let error = DispatchError::NotConsistent {
                        stream,
                        version,
                        position,
                        handler,
                        reason,
                    };
                    tracing::warn!(%error, "not consistent in time");
                    return Err(error);
                }
            }
            result
        }
        .instrument(span)
    }

    /// Runs every middleware's `before`, in order, until one refuses; returns
    /// the metadata as they left it.
    async fn before<C: Command>(
        &self,
        stream: &StreamId,
        command_id: uuid::Uuid,
        metadata: Metadata,
        command: &C,
    ) -> (Metadata, Result<(), Error<C>>)
    where
        C::Aggregate: Handles<C>,
    {
        let mut context = context::<C>(stream, command_id, metadata, command);
        for middleware in &self.inner.middleware {
            if let Err(source) = middleware.before(&mut context).await {
                let refused = DispatchError::Rejected {
                    middleware: middleware.name(),
                    source: source as BoxError,
                };
                return (context.metadata, Err(refused));
            }
        }
        (context.metadata, Ok(()))
    }

    /// Runs every middleware's `after`.
    fn observe<E: std::error::Error + 'static>(
        &self,
        context: &CommandContext<'_>,
        result: Result<(), &DispatchError<E>>,
        events: usize,
        version: u64,
        tries: Tries,
        started: Option<Instant>,
    ) {
        let (kind, error) = match result {
            Ok(()) => (OutcomeKind::Ok, None),
            Err(error) => (
                error.kind(),
                Some(error as &(dyn std::error::Error + 'static)),
            ),
        };
        let outcome = CommandOutcome {
            kind,
            error,
            events,
            version,
            attempts: tries.attempts,
            conflicts: tries.conflicts,
            elapsed: started.map(|s| s.elapsed()).unwrap_or_default(),
        };
        for middleware in &self.inner.middleware {
            middleware.after(context, &outcome);
        }
    }

    /// The command's work once its aggregate is locked. Not an `async fn`:
    /// that would keep its arguments twice in the future (as captures and as
    /// locals). Eight arguments, not a struct of them: each is borrowed from
    /// another part of the caller's future.
    #[allow(clippy::manual_async_fn, clippy::too_many_arguments)]
    fn decide_and_append<'a, C>(
        &'a self,
        stream: &'a StreamId,
        loaded: &'a mut Loaded<C::Aggregate>,
        command: &'a C,
        event_ids: EventIds,
        metadata: &'a Metadata,
        expected_version: Option<u64>,
        tries: &'a mut Tries,
    ) -> impl Future<Output = Result<Decided<C::Aggregate>, Error<C>>> + Send + 'a
    where
        C: Command,
        C::Aggregate: Handles<C>,
    {
        async move {
            let policy = &self.inner.retry;
            // Held from a conflict (or a recent one) to the end of the command.
            let mut lock: Option<StreamLock> = None;
            if policy.lock_stream && loaded.contended > 0 {
                loaded.contended -= 1;
                lock = Box::pin(self.lock(stream)).await;
                // Whatever another writer recorded before we held the lock is read now.
                self.catch_up_boxed(stream, loaded).await?;
            } else if !loaded.fresh {
                self.catch_up_boxed(stream, loaded).await?;
            }
            let services = self
                .inner
                .services
                .get::<<C::Aggregate as Handles<C>>::Services>()
                .ok_or(DispatchError::MissingService {
                    service: std::any::type_name::<<C::Aggregate as Handles<C>>::Services>(),
                    command: C::NAME,
                    handler: <C::Aggregate as Handles<C>>::HANDLER,
                })?;
            loop {
                tries.attempts += 1;
                if let Some(expected) = expected_version
                    && loaded.version != expected
                {
                    // The cache may be behind another node (or claim too
                    // much): one version read, on this rare path, tells.
                    let current = self.inner.store.stream_version(stream).await?.unwrap_or(0);
                    if current != loaded.version {
                        loaded.fresh &= current > loaded.version;
                        self.catch_up_boxed(stream, loaded).await?;
                    }
                    if loaded.version != expected {
                        return Err(DispatchError::Conflict {
                            stream: stream.clone(),
                            expected: match expected {
                                0 => ExpectedVersion::NoStream,
                                n => ExpectedVersion::Exact(n),
                            },
                            actual: (loaded.version > 0).then_some(loaded.version),
                            attempts: tries.attempts,
                        });
                    }
                }
                let decided = loaded.state.handle(command.clone(), services).await;
                let events = match decided {
                    Ok(events) => events,
                    Err(refusal) => {
                        // A refusal is only as good as the state it was decided on: another
                        // node may have moved the stream past our cache. One version read
                        // (only on this rare path) tells; if stale, catch up and decide again.
                        let current = self.inner.store.stream_version(stream).await?.unwrap_or(0);
                        if current == loaded.version || tries.attempts >= policy.max_attempts {
                            return Err(DispatchError::Domain(refusal));
                        }
                        // Behind the cache: the cache (or a snapshot) claimed too much.
                        loaded.fresh &= current > loaded.version;
                        self.catch_up_boxed(stream, loaded).await?;
                        continue;
                    }
                };
                if events.is_empty() {
                    return Ok((events, None));
                }
                let new_events = encode_all(&events, event_ids, metadata)?;
                let appended = self
                    .inner
                    .store
                    .append_after_seen(
                        stream,
                        loaded.version,
                        loaded.hint,
                        lock.as_ref(),
                        new_events,
                    )
                    .await;
                match appended {
                    Ok(done) => {
                        for event in &events {
                            loaded.state.apply(event);
                        }
                        loaded.version = done.stream_version;
                        loaded.hint = done.hint;
                        loaded.since_snapshot += events.len() as u64;
                        if C::Aggregate::SNAPSHOT_EVERY
                            .is_some_and(|every| loaded.since_snapshot >= every)
                        {
                            Box::pin(self.snapshot(stream, loaded)).await;
                        }
                        return Ok((events, Some((done.first_position, done.last_position))));
                    }
                    Err(
                        error @ (StoreError::WrongExpectedVersion { .. }
                        | StoreError::StreamLocked { .. }),
                    ) => {
                        // Another writer got in first, or holds the stream's turn.
                        let (expected, actual, behind) = match error {
                            StoreError::WrongExpectedVersion {
                                expected, actual, ..
                            } => (expected, actual, actual.unwrap_or(0) <= loaded.version),
                            // A yield to a lock says nothing of the version.
                            _ => (ExpectedVersion::Exact(loaded.version), None, false),
                        };
                        tries.conflicts += 1;
                        loaded.contended = policy.contended_commands;
                        if tries.attempts >= policy.max_attempts {
                            return Err(DispatchError::Conflict {
                                stream: stream.clone(),
                                expected,
                                actual,
                                attempts: tries.attempts,
                            });
                        }
                        tracing::debug!(
                            attempt = tries.attempts,
                            ?actual,
                            "another writer changed the stream; catching up"
                        );
                        // A stream not past what the cache holds means the cache (or
                        // the snapshot it came from) is wrong: reload it all.
                        loaded.fresh &= !behind;
                        if lock.is_none() && policy.lock_stream {
                            lock = Box::pin(self.lock(stream)).await;
                        }
                        // Only a writer without the lock backs off: for the
                        // holder it is its turn, and a pause would hand the
                        // stream to a writer that has not met a conflict yet
                        // (and so does not lock), again and again.
                        if lock.is_none() {
                            Box::pin(pause(policy.pause(tries.conflicts))).await;
                        }
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

    /// The store's lock on `stream`. The lock only makes contending writers
    /// take turns (the expected version keeps the stream consistent), so a
    /// store that cannot give it now is not a reason to fail the command.
    async fn lock(&self, stream: &StreamId) -> Option<StreamLock> {
        match self.inner.store.lock_stream(stream).await {
            Ok(lock) => Some(lock),
            Err(error) => {
                tracing::warn!(%stream, %error, "could not lock a contended stream; retrying without the lock");
                None
            }
        }
    }
}

/// Sleeps for `pause`, where a timer exists (a tokio runtime with time).
async fn pause(pause: std::time::Duration) {
    if !pause.is_zero() && tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(pause).await;
    }
}

fn context<'c, C: Command>(
    stream: &StreamId,
    command_id: uuid::Uuid,
    metadata: Metadata,
    command: &'c C,
) -> CommandContext<'c> {
    CommandContext {
        command_name: C::NAME,
        aggregate_type: C::Aggregate::TYPE,
        stream: stream.clone(),
        command_id,
        metadata,
        command,
    }
}

fn encode<Ev: Event, E>(
    event: &Ev,
    event_id: uuid::Uuid,
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
    let mut encoded = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        encoded.push(encode(event, ids.event_id(index), metadata)?);
    }
    Ok(encoded)
}
