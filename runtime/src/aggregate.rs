//! The traits the macros implement: [`Event`], [`Aggregate`], [`Command`], [`Handles`].
//!
//! You rarely implement these by hand: `#[event]`, `#[aggregate]` and
//! `#[command]` write them, and check at compile time that they fit together.

use crate::store::Payload;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;

/// A stable event type name and schema version, as recorded in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventType {
    /// The stable name, e.g. `"MoneyDeposited"`.
    pub name: &'static str,
    /// The schema version, from 1.
    pub version: u32,
}

/// Why stored event data could not be turned back into a domain event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No event of this type name and version exists in the event type.
    #[error("unknown event type `{event_type}` version {event_version}")]
    UnknownType {
        /// The stored type name.
        event_type: String,
        /// The stored version.
        event_version: u32,
    },
    /// An upcaster of the stored event's chain failed (see [`crate::upcast`]).
    #[error(transparent)]
    Upcast(Box<crate::upcast::UpcastError>),
    /// A stored event upcasts into no event or several, where one was asked
    /// for ([`Event::decode`]); read it with
    /// [`decode_recorded`](crate::upcast::decode_recorded).
    #[error(
        "`{event_type}` version {event_version} upcasts into {count} events, not one; read it with `annals::upcast::decode_recorded`"
    )]
    NotOne {
        /// The stored type name.
        event_type: String,
        /// The stored version.
        event_version: u32,
        /// How many events it upcasts into.
        count: usize,
    },
    /// The payload does not have the shape the event type expects.
    #[error("payload of `{event_type}` version {event_version} does not decode")]
    Payload {
        /// The stored type name.
        event_type: String,
        /// The stored version.
        event_version: u32,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// A domain event type: an enum of events (or a single struct) with stable
/// type names, versions and a decode table. Written by `#[event]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type",
    label = "not an event type",
    note = "mark it with `#[annals::event]`"
)]
pub trait Event: Clone + fmt::Debug + Send + Sync + 'static {
    /// Every (type name, version) this type can decode.
    const TYPES: &'static [EventType];

    /// This event's stable type name.
    fn event_type(&self) -> &'static str;

    /// This event's schema version.
    fn event_version(&self) -> u32;

    /// Serialises the event's fields (without its type name) to a payload.
    fn encode(&self) -> Result<Payload, serde_json::Error>;

    /// Stored type names this type no longer reads because they moved to
    /// another event type (`#[event(moved = ["CardLocked"])]`): a replay of
    /// this type's streams skips them. Empty unless declared.
    const MOVED: &'static [&'static str] = &[];

    /// Builds an event back from its stored type name, version and payload:
    /// a declared `(type, version)` directly, an older one through its
    /// [upcasters](crate::upcast), which must turn it into exactly one
    /// event ([`DecodeError::NotOne`] otherwise; readers of recorded
    /// events use [`decode_recorded`](crate::upcast::decode_recorded),
    /// which reads every event it turns into).
    fn decode(event_type: &str, event_version: u32, payload: &Payload)
    -> Result<Self, DecodeError>;

    /// Decodes a `(type, version)` this type declares; `None` for any other,
    /// which [`decode_recorded`](crate::upcast::decode_recorded) then reads
    /// through its upcasters. `#[event]` writes it as one `match`.
    #[doc(hidden)]
    fn decode_declared(
        event_type: &str,
        event_version: u32,
        payload: &Payload,
    ) -> Option<Result<Self, DecodeError>> {
        Self::TYPES
            .iter()
            .any(|t| t.name == event_type && t.version == event_version)
            .then(|| Self::decode(event_type, event_version, payload))
    }
}

/// An event-sourced aggregate: state folded from its events, deciding commands.
/// Written by `#[aggregate(events = ...)]` on the state type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregate",
    label = "not an aggregate",
    note = "mark the state type with `#[annals::aggregate(events = YourEvents)]` and its impl block with `#[annals::aggregate]`"
)]
pub trait Aggregate: Default + Send + Sync + 'static {
    /// The aggregate type name; streams are named `"{TYPE}-{id}"`.
    ///
    /// Not empty, and without `-`, NUL or whitespace: a `-` would let one
    /// aggregate's streams alias another's (`Acct` with id `x-R` and `Acct-x`
    /// with id `R` are both `Acct-x-R`). `#[aggregate(name = "..")]` rejects
    /// such a name at compile time.
    const TYPE: &'static str;

    /// The events this aggregate records and folds.
    type Event: Event;

    /// Take a snapshot every this many events (`None`: never).
    const SNAPSHOT_EVERY: Option<u64> = None;

    /// The snapshot schema version; snapshots with another one are ignored.
    const SNAPSHOT_VERSION: u32 = 1;

    /// Folds one event into the state. Must not fail: events are facts.
    fn apply(&mut self, event: &Self::Event);

    /// Serialises the state for a snapshot (only called when `SNAPSHOT_EVERY` is set).
    fn snapshot(&self) -> Option<Result<Payload, serde_json::Error>> {
        None
    }

    /// Restores the state from a snapshot taken by [`Aggregate::snapshot`].
    fn restore(_state: &Payload) -> Option<Result<Self, serde_json::Error>> {
        None
    }
}

/// A command: a request to one aggregate instance, named by its `#[id]` field.
/// Written by `#[command(aggregate = ...)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command",
    label = "not a command",
    note = "mark it with `#[annals::command(aggregate = YourAggregate)]` and an `#[id]` field"
)]
pub trait Command: Clone + Send + Sync + 'static {
    /// The command's stable name, used for routing JSON commands.
    const NAME: &'static str;

    /// The aggregate type the command is for.
    type Aggregate: Aggregate;

    /// The identity of the target aggregate instance.
    fn aggregate_id(&self) -> &dyn fmt::Display;

    /// The category of the target's stream, `"{category}-{id}"`: the
    /// aggregate's [`Aggregate::TYPE`], unless the command says otherwise.
    /// Only an aggregate that serves several categories of streams
    /// overrides it, like the built-in document aggregate (one category
    /// per kind of document, `profiles-<id>`); the category follows the
    /// rules of [`Aggregate::TYPE`] and is checked before anything is read
    /// (a bad one is [`DispatchError::InvalidId`](crate::DispatchError::InvalidId)).
    fn stream_category(&self) -> &str {
        <Self::Aggregate as Aggregate>::TYPE
    }
}

/// `Self` handles command `C`. Written by `#[handle]` functions in an
/// `#[aggregate] impl` block; a second handler for one command does not compile.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no handler for command `{C}`",
    label = "no `#[handle]` function takes this command",
    note = "add `#[handle] fn name(&self, command: {C}) -> ...` to an `#[aggregate] impl {Self}` block"
)]
pub trait Handles<C: Command>: Aggregate {
    /// The domain error the handler returns (`Infallible` if it cannot fail).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The services the handler takes (`()` for none), registered with
    /// [`AppBuilder::service`](crate::AppBuilder::service).
    type Services: Send + Sync + 'static;

    /// The handler function's name, for logs and the registry.
    const HANDLER: &'static str;

    /// Decides the command against the current state.
    fn handle<'a>(
        &'a self,
        command: C,
        services: &'a Self::Services,
    ) -> impl Future<Output = Result<Vec<Self::Event>, Self::Error>> + Send + 'a;
}

/// What a handler may return: one event, several, none, or a `Result` of those
/// with a domain error.
#[diagnostic::on_unimplemented(
    message = "a handler of `{Ev}` events cannot return `{Self}`",
    label = "handlers of this aggregate return `{Ev}` events",
    note = "return an event, `Vec<{Ev}>`, `Option<{Ev}>`, `()`, or a `Result` of those with an error type that implements `std::error::Error`"
)]
pub trait HandlerOutput<Ev> {
    /// The domain error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Splits the output into events or an error.
    fn into_result(self) -> Result<Vec<Ev>, Self::Error>;
}

/// Values that stand for zero or more events of type `Ev`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not stand for `{Ev}` events",
    note = "use an event, `Vec<{Ev}>`, `Option<{Ev}>` or `()`"
)]
pub trait IntoEvents<Ev> {
    /// The events.
    fn into_events(self) -> Vec<Ev>;
}

impl<Ev: Event> IntoEvents<Ev> for Ev {
    fn into_events(self) -> Vec<Ev> {
        vec![self]
    }
}

impl<Ev: Event> IntoEvents<Ev> for Vec<Ev> {
    fn into_events(self) -> Vec<Ev> {
        self
    }
}

impl<Ev: Event> IntoEvents<Ev> for Option<Ev> {
    fn into_events(self) -> Vec<Ev> {
        self.into_iter().collect()
    }
}

impl<Ev: Event, const N: usize> IntoEvents<Ev> for [Ev; N] {
    fn into_events(self) -> Vec<Ev> {
        self.into()
    }
}

impl<Ev: Event> IntoEvents<Ev> for () {
    fn into_events(self) -> Vec<Ev> {
        Vec::new()
    }
}

macro_rules! infallible_output {
    ($($(#[$gen:ident])? $ty:ty),* $(,)?) => {$(
        impl<Ev: Event $(, const $gen: usize)?> HandlerOutput<Ev> for $ty {
            type Error = Infallible;
            fn into_result(self) -> Result<Vec<Ev>, Infallible> {
                Ok(self.into_events())
            }
        }
    )*};
}

infallible_output!(
    Ev,
    Vec<Ev>,
    Option<Ev>,
    (),
    #[N]
    [Ev; N]
);

impl<Ev: Event, T: IntoEvents<Ev>, E: std::error::Error + Send + Sync + 'static> HandlerOutput<Ev>
    for Result<T, E>
{
    type Error = E;
    fn into_result(self) -> Result<Vec<Ev>, E> {
        self.map(IntoEvents::into_events)
    }
}
