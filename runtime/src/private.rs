//! Paths used by macro-generated code. Not public API: no stability promise.
//!
//! Generated code checks each thing it relies on once, in a `const` that
//! calls one of the check functions below at the user's token, and threads
//! the result on: through [`Checked`], which is then an error type, and
//! through impl bounds `where [(); CHECK as usize]:`, which then make the
//! impl and its uses quiet. So a failed check is one error, and nothing built
//! on it reports a second one.

pub use inventory;
pub use serde;
pub use serde_json;
pub use std::future::ready;

use crate::aggregate::{Aggregate, Command, Event, EventType, HandlerOutput, Handles, IntoEvents};
use crate::app::{JsonDispatchFn, dispatch_json};
use std::fmt::Display;

/// `T`, once the check whose result is `OK` has passed; an error type if it failed.
pub type Checked<T, const OK: bool> = <T as Gate<OK>>::Type;

/// Implemented only for `true`: see [`Checked`].
pub trait Gate<const OK: bool> {
    type Type: ?Sized;
}

impl<T: ?Sized> Gate<true> for T {
    type Type = T;
}

/// `events = E` names an `#[event]` type.
pub const fn is_event<E: Event>() -> bool {
    true
}

/// An aggregate's state can start from `Default`.
pub const fn state_default<A: StateDefault>() -> bool {
    true
}

/// An aggregate's state can move between tasks; checked before
/// [`state_sync`], so a state with an `Rc` in it is one error.
pub const fn state_send<A: StateSend>() -> bool {
    true
}

/// An aggregate's state can be shared between tasks.
pub const fn state_sync<A: StateSync>() -> bool {
    true
}

/// Written by `#[aggregate]` on the state struct: whether the state passed
/// its checks. Commands and impl blocks read it, so a state that failed them
/// is reported once, at the struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregate",
    label = "not an `#[aggregate]` type",
    note = "mark the state type with `#[annals::aggregate(events = YourEvents)]` and its impl block with `#[annals::aggregate]`"
)]
pub trait AggregateDeclared {
    const OK: bool;
}

/// Written by `#[command]`: whether the command passed its checks (its
/// aggregate is one). Handlers read it, so a command that failed them is
/// reported once, at the command.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command",
    label = "not a `#[command]` type",
    note = "mark it with `#[annals::command(aggregate = YourAggregate)]` and an `#[id]` field"
)]
pub trait CommandDeclared {
    const OK: bool;
}

/// See [`state_default`].
#[diagnostic::on_unimplemented(
    message = "the state of aggregate `{Self}` does not implement `Default`",
    label = "an aggregate starts as `Default::default()`, before its first event",
    note = "add `#[derive(Default)]` to `{Self}`, or implement `Default` for it"
)]
pub trait StateDefault {}

impl<A: Default> StateDefault for A {}

/// See [`state_send`].
#[diagnostic::on_unimplemented(
    message = "the state of aggregate `{Self}` is not `Send + 'static`",
    label = "an aggregate's state is cached by the `App` and moved between tasks",
    note = "keep `Rc`, `RefCell`, `Cell` and borrowed data out of `{Self}`: use `Arc`, owned data, or a service passed to the handlers"
)]
pub trait StateSend {}

impl<A: Send + 'static> StateSend for A {}

/// See [`state_sync`].
#[diagnostic::on_unimplemented(
    message = "the state of aggregate `{Self}` is not `Sync`",
    label = "an aggregate's state is cached by the `App` and shared between tasks",
    note = "keep `RefCell` and `Cell` out of `{Self}`: use a `Mutex`, or a service passed to the handlers"
)]
pub trait StateSync {}

impl<A: Sync> StateSync for A {}

/// A handler in `A`'s impl block takes a command whose `aggregate = ..` is `A`.
pub const fn command_for<C: CommandFor<A>, A>() -> bool {
    true
}

/// A handler's return type is an output of `Ev` events.
pub const fn handler_output<O: HandlerOutput<Ev>, Ev>() -> bool {
    true
}

/// The `T` of a handler's `Result<T, E>` stands for `Ev` events.
pub const fn handler_events<T: IntoEvents<Ev>, Ev>() -> bool {
    true
}

/// The `E` of a handler's `Result<T, E>` is a domain error.
pub const fn domain_error<E: DomainError>() -> bool {
    true
}

/// `snapshot_every` on a state that can be stored; checked one trait at a
/// time (the second behind the first) so a state with neither is one error.
pub const fn snapshot_serialize<A: SnapshotState>() -> bool {
    true
}

/// See [`snapshot_serialize`].
pub const fn snapshot_deserialize<A: SnapshotRestore>() -> bool {
    true
}

/// `Self` is a command whose `#[command(aggregate = ..)]` names `A`.
///
/// Implemented by `#[command]` for its one aggregate, not by a blanket impl,
/// so a handler for another aggregate's command fails on this bound, with
/// this message.
#[diagnostic::on_unimplemented(
    message = "command `{Self}` is not for aggregate `{A}`",
    label = "this command's `#[command(aggregate = ..)]` names another aggregate",
    note = "move this handler into the `#[aggregate] impl` of the aggregate the command names, or change the command's `aggregate = ..`"
)]
pub trait CommandFor<A> {}

/// What a handler's `Result<_, E>` may carry.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler's domain error: it does not implement `std::error::Error + Send + Sync + 'static`",
    label = "a domain error type is returned to `dispatch` intact, as a `std::error::Error`",
    note = "declare an error type for this aggregate's refusals, e.g. `#[derive(Debug, thiserror::Error)] enum AccountError {{ #[error(\"insufficient funds\")] InsufficientFunds }}`, and return `Result<_, AccountError>`"
)]
pub trait DomainError {}

impl<E: std::error::Error + Send + Sync + 'static> DomainError for E {}

/// What an `#[id]` field's type needs.
#[diagnostic::on_unimplemented(
    message = "the `#[id]` field's type `{Self}` does not implement `Display`",
    label = "`#[id]` names the aggregate instance, through `Display`",
    note = "the command's stream is `\"{{aggregate name}}-{{id}}\"`: implement `std::fmt::Display` for `{Self}`, or put `#[id]` on a field whose type does (`String`, `Uuid`, an integer)"
)]
pub trait IdDisplay {
    fn as_display(&self) -> &dyn Display;
}

impl<T: Display> IdDisplay for T {
    fn as_display(&self) -> &dyn Display {
        self
    }
}

/// The `#[id]` field, as the command's `aggregate_id()`.
pub fn id_display<T: IdDisplay>(id: &T) -> &dyn Display {
    id.as_display()
}

/// The state of an aggregate with `snapshot_every`.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` has `snapshot_every` but its state does not implement `Serialize`",
    label = "snapshots store the state as JSON",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}`, or remove `snapshot_every`"
)]
pub trait SnapshotState {}

impl<A: serde::Serialize> SnapshotState for A {}

/// See [`SnapshotState`].
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` has `snapshot_every` but its state does not implement `Deserialize`",
    label = "snapshots restore the state from JSON",
    note = "add `#[derive(serde::Deserialize)]` to `{Self}`, or remove `snapshot_every`"
)]
pub trait SnapshotRestore {}

impl<A: serde::de::DeserializeOwned> SnapshotRestore for A {}

/// A handler's output once [`handler_output`] (or its two halves) passed:
/// the conversion the generated `Handles` impl uses.
pub trait Output<Ev, const OK: bool> {
    type Error;
    fn into_result(self) -> Result<Vec<Ev>, Self::Error>;
}

impl<O: HandlerOutput<Ev>, Ev> Output<Ev, true> for O {
    type Error = O::Error;
    fn into_result(self) -> Result<Vec<Ev>, Self::Error> {
        HandlerOutput::into_result(self)
    }
}

/// The JSON route of command `C` handled by `A`, once [`command_for`] passed.
pub trait Route<A, const OK: bool> {
    const DISPATCH_JSON: JsonDispatchFn;
}

impl<C, A> Route<A, true> for C
where
    C: Command<Aggregate = A> + serde::de::DeserializeOwned,
    A: Handles<C>,
{
    const DISPATCH_JSON: JsonDispatchFn = dispatch_json::<C>;
}

/// The fold of an aggregate, written by its `#[apply]` function.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` has no `#[apply]` function",
    label = "its events cannot be folded",
    note = "add `#[apply] fn apply(&mut self, event: &YourEvents) {{ match event {{ .. }} }}` to an `#[aggregate] impl {Self}` block"
)]
pub trait ApplyEvents: Aggregate {
    fn apply_event(&mut self, event: &Self::Event);
}

/// The event types an aggregate registers, read through the aggregate so an
/// events type that failed [`is_event`] adds no error here.
pub const fn event_types<A: Aggregate>() -> &'static [EventType] {
    <A::Event as Event>::TYPES
}

/// Builds the decode error for a (type, version) the event type does not know.
pub fn unknown_type(event_type: &str, event_version: u32) -> crate::aggregate::DecodeError {
    crate::aggregate::DecodeError::UnknownType {
        event_type: event_type.to_owned(),
        event_version,
    }
}

/// Decodes a payload into `T`, naming the event type on failure.
pub fn decode_payload<T: serde::de::DeserializeOwned>(
    event_type: &str,
    event_version: u32,
    payload: &crate::store::Payload,
) -> Result<T, crate::aggregate::DecodeError> {
    serde_json::from_str(payload.as_str()).map_err(|source| {
        crate::aggregate::DecodeError::Payload {
            event_type: event_type.to_owned(),
            event_version,
            source,
        }
    })
}
