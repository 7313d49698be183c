//! Test kit: given-when-then tests of aggregates and event handlers without
//! a store, and waits for what handlers cause asynchronously.
//!
//! ```
//! use annals::prelude::*;
//! use annals::testing::AggregateTest;
//!
//! #[event]
//! pub enum LightEvent { SwitchedOn, SwitchedOff }
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! #[error("the light is already on")]
//! pub struct AlreadyOn;
//!
//! #[command(aggregate = Light)]
//! pub struct SwitchOn { #[id] pub room: String }
//!
//! #[aggregate(events = LightEvent)]
//! #[derive(Default)]
//! pub struct Light { on: bool }
//!
//! #[aggregate]
//! impl Light {
//!     #[handle]
//!     fn switch_on(&self, _cmd: SwitchOn) -> Result<LightEvent, AlreadyOn> {
//!         if self.on { Err(AlreadyOn) } else { Ok(LightEvent::SwitchedOn) }
//!     }
//!     #[apply]
//!     fn apply(&mut self, event: &LightEvent) {
//!         match event {
//!             LightEvent::SwitchedOn => self.on = true,
//!             LightEvent::SwitchedOff => self.on = false,
//!         }
//!     }
//! }
//!
//! AggregateTest::<Light>::given([LightEvent::SwitchedOff])
//!     .when(SwitchOn { room: "hall".into() })
//!     .then_events([LightEvent::SwitchedOn])
//!     .then_state(|light| assert!(light.on));
//!
//! AggregateTest::<Light>::given([LightEvent::SwitchedOn])
//!     .when(SwitchOn { room: "hall".into() })
//!     .then_error(AlreadyOn);
//! ```
//!
//! The checks panic with a readable message, like `assert!`: they are for tests.

use crate::aggregate::{Aggregate, Command, Event, Handles};
use crate::app::Services;
use std::any::type_name;
use std::fmt;

/// An aggregate under test: its state is folded from the `given` events.
#[must_use]
pub struct AggregateTest<A: Aggregate> {
    state: A,
    services: Services,
}

impl<A: Aggregate> AggregateTest<A> {
    /// Starts from an aggregate that has recorded `events`.
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Self {
        let mut state = A::default();
        for event in events {
            state.apply(&event);
        }
        Self {
            state,
            services: Services::default(),
        }
    }

    /// Starts from an aggregate with no history.
    pub fn given_no_events() -> Self {
        Self::given([])
    }

    /// Provides a service that handlers take as an argument.
    pub fn with_service<S: Send + Sync + 'static>(mut self, service: S) -> Self {
        self.services.insert(service);
        self
    }

    /// Runs the handler of `command`, blocking on it (fine for handlers that
    /// do not need a tokio runtime; otherwise use [`when_async`](Self::when_async)).
    #[must_use = "a `when` without `then_*` checks asserts nothing"]
    pub fn when<C>(self, command: C) -> Then<A, <A as Handles<C>>::Error>
    where
        C: Command<Aggregate = A>,
        A: Handles<C>,
    {
        futures::executor::block_on(self.when_async(command))
    }

    /// Runs the handler of `command`.
    #[must_use = "a `when` without `then_*` checks asserts nothing"]
    pub async fn when_async<C>(self, command: C) -> Then<A, <A as Handles<C>>::Error>
    where
        C: Command<Aggregate = A>,
        A: Handles<C>,
    {
        let services = self.services.get::<<A as Handles<C>>::Services>();
        let Some(services) = services else {
            panic!(
                "handler `{}` takes service `{}`: provide it with `.with_service(..)`",
                <A as Handles<C>>::HANDLER,
                type_name::<<A as Handles<C>>::Services>()
            );
        };
        let result = self.state.handle(command, services).await;
        let mut state = self.state;
        if let Ok(events) = &result {
            for event in events {
                state.apply(event);
            }
        }
        Then { state, result }
    }
}

/// The outcome of [`AggregateTest::when`], to check.
pub struct Then<A: Aggregate, E> {
    state: A,
    result: Result<Vec<A::Event>, E>,
}

impl<A: Aggregate, E: fmt::Debug> Then<A, E> {
    /// Asserts the handler recorded exactly `expected`, and that each event
    /// survives a store round trip (encode, then decode to an equal event).
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = A::Event>) -> Self
    where
        A::Event: PartialEq,
    {
        let expected: Vec<_> = expected.into_iter().collect();
        match &self.result {
            Ok(events) => {
                assert_eq!(
                    events, &expected,
                    "the handler recorded other events than expected"
                );
                for event in events {
                    let payload = event
                        .encode()
                        .unwrap_or_else(|e| panic!("{event:?} does not encode: {e}"));
                    let back =
                        A::Event::decode(event.event_type(), event.event_version(), &payload)
                            .unwrap_or_else(|e| {
                                panic!(
                                    "{event:?} encodes to {payload:?}, which does not decode: {e}"
                                )
                            });
                    assert_eq!(
                        &back, event,
                        "the event changes in a store round trip (payload {payload:?})"
                    );
                }
            }
            Err(error) => panic!("expected events {expected:?}, but the handler failed: {error:?}"),
        }
        self
    }

    /// Asserts the handler succeeded without recording anything.
    #[track_caller]
    pub fn then_no_events(self) -> Self
    where
        A::Event: PartialEq,
    {
        self.then_events([])
    }

    /// Asserts the handler failed with `expected`.
    #[track_caller]
    pub fn then_error(self, expected: E) -> Self
    where
        E: PartialEq,
    {
        match &self.result {
            Err(error) => assert_eq!(error, &expected, "the handler failed with another error"),
            Ok(events) => {
                panic!("expected error {expected:?}, but the handler recorded {events:?}")
            }
        }
        self
    }

    /// Asserts the handler failed with an error that passes `check`.
    #[track_caller]
    pub fn then_error_matches(self, check: impl FnOnce(&E) -> bool) -> Self {
        match &self.result {
            Err(error) => assert!(
                check(error),
                "the handler failed with an unexpected error: {error:?}"
            ),
            Ok(events) => panic!("expected an error, but the handler recorded {events:?}"),
        }
        self
    }

    /// Runs `check` on the state after the recorded events were applied.
    pub fn then_state(self, check: impl FnOnce(&A)) -> Self {
        check(&self.state);
        self
    }

    /// The handler's result, for checks of your own.
    pub fn into_result(self) -> Result<Vec<A::Event>, E> {
        self.result
    }
}

/// Event handlers under test, without an App or a store: events are given
/// as domain values and handed to the handler in order, with metadata as a
/// store would record it.
///
/// ```
/// use annals::prelude::*;
/// use annals::testing::HandlerTest;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[event]
/// pub enum TipEvent { Tipped { cents: u64 } }
///
/// #[derive(Default)]
/// pub struct TipJar { total: AtomicU64 }
///
/// #[event_handler]
/// impl TipJar {
///     fn on_tip(&self, event: &TipEvent) {
///         let TipEvent::Tipped { cents } = event;
///         self.total.fetch_add(*cents, Ordering::Relaxed);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let jar = HandlerTest::new(TipJar::default())
///     .given("Jar-1", [TipEvent::Tipped { cents: 50 }, TipEvent::Tipped { cents: 25 }])
///     .await
///     .expect("handled")
///     .into_handler();
/// assert_eq!(jar.total.load(Ordering::Relaxed), 75);
/// # }
/// ```
pub struct HandlerTest<H> {
    handler: H,
    position: u64,
    versions: std::collections::HashMap<String, u64>,
    correlation_id: uuid::Uuid,
}

impl<H: crate::handler::EventHandler> HandlerTest<H> {
    /// A handler that has seen nothing yet.
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            position: 0,
            versions: Default::default(),
            correlation_id: uuid::Uuid::now_v7(),
        }
    }

    /// The correlation id the next events are recorded with (default: one
    /// fresh id for the whole test).
    pub fn correlation_id(mut self, id: uuid::Uuid) -> Self {
        self.correlation_id = id;
        self
    }

    /// Records `events` in `stream` (after any given before) and hands each
    /// to the handler, as the runner would: an event type the handler does
    /// not take is skipped. Stops at the first error.
    pub async fn given<E: Event>(
        mut self,
        stream: &str,
        events: impl IntoIterator<Item = E>,
    ) -> Result<Self, crate::handler::HandlerError> {
        for event in events {
            let recorded = self.record(stream, &event);
            if crate::handler::route(H::INTEREST, &recorded.event_type, recorded.event_version)
                .is_some()
            {
                self.handler.handle(&recorded).await?;
            }
        }
        Ok(self)
    }

    /// The event as the store would have recorded it next in `stream`.
    fn record<E: Event>(&mut self, stream: &str, event: &E) -> crate::store::RecordedEvent {
        self.position += 1;
        let version = self.versions.entry(stream.to_owned()).or_default();
        *version += 1;
        let payload = event.encode().unwrap_or_else(|e| {
            panic!("{} does not serialise: {e}", type_name::<E>());
        });
        crate::store::RecordedEvent {
            event_id: uuid::Uuid::now_v7(),
            stream_id: crate::store::StreamId::new(stream),
            stream_version: *version,
            global_position: self.position,
            event_type: event.event_type().into(),
            event_version: event.event_version(),
            payload,
            metadata: crate::store::Metadata {
                correlation_id: Some(self.correlation_id),
                causation_id: Some(self.correlation_id),
                custom: Default::default(),
            },
            recorded_at: chrono::Utc::now(),
        }
    }

    /// The handler, to check what it did.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, by value.
    pub fn into_handler(self) -> H {
        self.handler
    }
}

/// Waits until the store holds an event that `matches`, at most `timeout`,
/// and returns it; panics with what was recorded if none came. For tests of
/// what handlers and process managers cause asynchronously.
///
/// ```
/// use annals::{EventStore, ExpectedVersion, MemoryStore, NewEvent, Payload, StreamId};
/// use annals::testing::eventually_recorded;
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let writer = store.clone();
/// tokio::spawn(async move {
///     let event = NewEvent::new("Dispensed", 1, Payload::from_json("{}").unwrap());
///     writer.append(&StreamId::new("Teller-1"), ExpectedVersion::Any, vec![event]).await
/// });
/// let found = eventually_recorded(&store, Duration::from_secs(5), |e| e.event_type == "Dispensed").await;
/// assert_eq!(found.stream_id.as_str(), "Teller-1");
/// # Ok(())
/// # }
/// ```
pub async fn eventually_recorded(
    store: &dyn crate::EventStore,
    timeout: std::time::Duration,
    matches: impl Fn(&crate::store::RecordedEvent) -> bool,
) -> crate::store::RecordedEvent {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut watch = store.watch_log();
    let mut next = 1;
    let mut seen: Vec<String> = Vec::new();
    loop {
        watch.mark();
        let page = store
            .read_all(next, crate::store::DEFAULT_READ_BATCH)
            .await
            .unwrap_or_else(|e| panic!("eventually_recorded: the store failed: {e}"));
        for event in page {
            next = event.global_position + 1;
            if matches(&event) {
                return event;
            }
            seen.push(format!(
                "{} v{} in `{}` at {}",
                event.event_type, event.event_version, event.stream_id, event.global_position
            ));
        }
        if tokio::time::timeout_at(deadline, watch.changed())
            .await
            .is_err()
        {
            panic!(
                "no matching event was recorded within {timeout:?}; recorded meanwhile: [{}]",
                seen.join(", ")
            );
        }
    }
}

/// Asserts that two recorded events share one correlation id (one original
/// request caused both), panicking with both ids if not.
pub fn assert_same_correlation(a: &crate::store::RecordedEvent, b: &crate::store::RecordedEvent) {
    let (x, y) = (a.metadata.correlation_id, b.metadata.correlation_id);
    assert!(
        x.is_some() && x == y,
        "`{}` at {} has correlation id {x:?}, `{}` at {} has {y:?}",
        a.event_type,
        a.global_position,
        b.event_type,
        b.global_position
    );
}
