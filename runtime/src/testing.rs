//! Given-when-then tests of aggregates, without a store.
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
