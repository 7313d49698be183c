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

/// How a process manager's route, dispatches and apply combine over the
/// several events one stored event reads as (an upcaster split it).
pub trait Combine {
    /// For no event at all.
    fn none() -> Self;
    /// `self` for the events before, then `next`.
    fn combine(self, next: Self) -> Self;
}

impl Combine for crate::process::Route {
    fn none() -> Self {
        crate::process::Route::Ignore
    }

    /// The first route that does not ignore the event.
    fn combine(self, next: Self) -> Self {
        match self {
            crate::process::Route::Ignore => next,
            first => first,
        }
    }
}

impl Combine for Vec<crate::process::Dispatch> {
    fn none() -> Self {
        Vec::new()
    }

    fn combine(mut self, next: Self) -> Self {
        self.extend(next);
        self
    }
}

impl Combine for () {
    fn none() -> Self {}

    fn combine(self, _next: Self) -> Self {}
}

/// An `#[upcaster]`'s returned payloads, stored as `(to, to_version)`.
pub fn payload_shapes<T: serde::Serialize>(
    to: &'static str,
    to_version: u32,
    items: impl IntoIterator<Item = T>,
) -> Result<crate::upcast::Decoded<crate::upcast::StoredShape>, serde_json::Error> {
    items
        .into_iter()
        .map(|item| {
            Ok(crate::upcast::StoredShape {
                event_type: to,
                event_version: to_version,
                payload: crate::Payload::from_serialize(&item)?,
            })
        })
        .collect()
}

/// The `#[event]` type an `#[upcaster(to = Type)]` returns values of: its
/// types for the registration and its values' shapes for the step, through
/// one bound, so a `to` that is not an event type is one error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type",
    label = "not an `#[event]` type",
    note = "`to = Type` names the `#[event]` type whose events the upcaster returns; to return payloads of one stored type, name it: `to = \"TypeName\"`"
)]
pub trait EventTarget: Sized {
    /// `Event::TYPES`.
    const TYPES: &'static [crate::EventType];

    /// The returned events, each as its own type and version.
    fn shapes(
        items: impl IntoIterator<Item = Self>,
    ) -> Result<crate::upcast::Decoded<crate::upcast::StoredShape>, serde_json::Error>;
}

impl<E: crate::Event> EventTarget for E {
    const TYPES: &'static [crate::EventType] = E::TYPES;

    fn shapes(
        items: impl IntoIterator<Item = Self>,
    ) -> Result<crate::upcast::Decoded<crate::upcast::StoredShape>, serde_json::Error> {
        items
            .into_iter()
            .map(|event| {
                Ok(crate::upcast::StoredShape {
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload: event.encode()?,
                })
            })
            .collect()
    }
}

/// An `#[event_handler]` method takes `&E` for an `#[event]` type `E`.
pub const fn handled_event<E: HandledEvent>() -> bool {
    true
}

/// What an `#[event_handler]` method may take as its event.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type, so an event handler method cannot take it",
    label = "not an `#[event]` type",
    note = "a handler method takes `&E` where `E` is an `#[annals::event]` enum or struct: mark `{Self}` with `#[annals::event]`, or take the events enum it belongs to"
)]
pub trait HandledEvent {}

impl<E: Event> HandledEvent for E {}

/// The outcome of an `#[event_handler]` method returning `()` or
/// `Result<(), E>` under another name (an alias): checked as a whole.
///
/// Return types are checked through the value the method returns, never by
/// naming them in generated code, so a misspelt type is only rustc's error
/// at the signature.
pub fn handler_outcome<R: crate::handler::HandlerReturn>(
    returned: R,
) -> Result<(), crate::BoxError> {
    returned.into_result()
}

/// The outcome of an `#[event_handler]` method returning `Result<T, E>`:
/// `T` must be `()` and `E` an error, each with its own message.
pub fn result_outcome<T: HandlerOk, E: HandlerErrorType>(
    returned: Result<T, E>,
) -> Result<(), crate::BoxError> {
    returned.map(drop).map_err(HandlerErrorType::into_box_error)
}

/// See [`result_outcome`].
#[diagnostic::on_unimplemented(
    message = "an event handler method returns `Result<(), E>`, not `Result<{Self}, E>`",
    label = "a handler reacts to an event and returns nothing but success or failure",
    note = "return `Ok(())`; a value the handler computes has nowhere to go: record it in the handler's own state or in a store"
)]
pub trait HandlerOk {}

impl HandlerOk for () {}

/// See [`result_outcome`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an event handler's error: it does not convert into `Box<dyn std::error::Error + Send + Sync>`",
    label = "the runner reports a failed handler with this error as `HandlerError::Failed`'s source",
    note = "use an error type that implements `std::error::Error + Send + Sync + 'static`, e.g. `#[derive(Debug, thiserror::Error)] enum NotifyError {{ .. }}`"
)]
pub trait HandlerErrorType {
    /// The error, boxed.
    fn into_box_error(self) -> crate::BoxError;
}

impl<E: Into<crate::BoxError>> HandlerErrorType for E {
    fn into_box_error(self) -> crate::BoxError {
        self.into()
    }
}

/// An event handler can move between tasks; checked before
/// [`handler_sync`], so a handler with an `Rc` in it is one error.
pub const fn handler_send<H: HandlerSend>() -> bool {
    true
}

/// An event handler can be shared between tasks.
pub const fn handler_sync<H: HandlerSync>() -> bool {
    true
}

/// See [`handler_send`].
#[diagnostic::on_unimplemented(
    message = "event handler `{Self}` is not `Send + 'static`",
    label = "the runner keeps a handler for as long as the app runs and moves it between tasks",
    note = "keep `Rc`, `RefCell`, `Cell` and borrowed data out of `{Self}`: use `Arc`, atomics or a `Mutex`"
)]
pub trait HandlerSend {}

impl<H: Send + 'static> HandlerSend for H {}

/// See [`handler_sync`].
#[diagnostic::on_unimplemented(
    message = "event handler `{Self}` is not `Sync`",
    label = "the runner calls one handler from several tasks at once",
    note = "keep `RefCell` and `Cell` out of `{Self}`: count with atomics, or use a `Mutex`"
)]
pub trait HandlerSync {}

impl<H: Sync> HandlerSync for H {}

/// The first event type name in both `a` and `b`: events are routed to an
/// `#[event_handler]` method by type name alone, so two event types it takes
/// must not share one.
pub const fn shared_event_type(a: &[EventType], b: &[EventType]) -> Option<&'static str> {
    let mut i = 0;
    while i < a.len() {
        let mut j = 0;
        while j < b.len() {
            if str_eq(a[i].name, b[j].name) {
                return Some(a[i].name);
            }
            j += 1;
        }
        i += 1;
    }
    None
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A message assembled at compile time, for a `const` panic that names
/// something only known then (an event type name behind `Event::TYPES`).
pub struct ConstMessage {
    buf: [u8; 1024],
    len: usize,
}

impl ConstMessage {
    /// An empty message.
    pub const fn new() -> Self {
        Self {
            buf: [0; 1024],
            len: 0,
        }
    }

    /// The message with `part` appended; a part that does not fit is
    /// replaced by `..`, so the message stays valid UTF-8.
    pub const fn push(mut self, part: &str) -> Self {
        let bytes = part.as_bytes();
        let bytes = if bytes.len() <= self.buf.len() - self.len {
            bytes
        } else {
            b".."
        };
        let mut i = 0;
        while i < bytes.len() && self.len < self.buf.len() {
            self.buf[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    /// The message.
    pub const fn as_str(&self) -> &str {
        match std::str::from_utf8(self.buf.split_at(self.len).0) {
            Ok(s) => s,
            Err(_) => "annals bug: a const message is not UTF-8",
        }
    }
}

impl Default for ConstMessage {
    fn default() -> Self {
        Self::new()
    }
}

/// A `#[process_manager]`'s state can start an instance and be saved:
/// checked before [`handler_send`] and [`handler_sync`], which it then
/// shares with event handlers.
pub const fn process_state<P: ProcessState>() -> bool {
    true
}

/// See [`process_state`].
#[diagnostic::on_unimplemented(
    message = "process manager `{Self}` cannot keep its instances' state: it needs `Default`, `Serialize` and `Deserialize`",
    label = "an instance starts as `Default::default()` and is saved as JSON after every event",
    note = "add `#[derive(Default, serde::Serialize, serde::Deserialize)]` to `{Self}`"
)]
pub trait ProcessState {}

impl<P: Default + serde::Serialize + serde::de::DeserializeOwned> ProcessState for P {}

/// The outcome of a `#[route]` function, which returns a `Route`.
pub fn route_outcome<R: RouteOutput>(returned: R) -> crate::process::Route {
    returned.into_route()
}

/// See [`route_outcome`].
#[diagnostic::on_unimplemented(
    message = "a `#[route]` function returns `Route`, not `{Self}`",
    label = "the runner needs to know which instance the event goes to",
    note = "return `Route::Start(id)`, `Route::Continue(id)`, `Route::Stop(id)` or `Route::Ignore`; an event that cannot be routed is `Route::Ignore`"
)]
pub trait RouteOutput {
    /// The route.
    fn into_route(self) -> crate::process::Route;
}

impl RouteOutput for crate::process::Route {
    fn into_route(self) -> crate::process::Route {
        self
    }
}

/// The outcome of a `#[handle]` function returning `Vec<Dispatch>` or
/// `Result<Vec<Dispatch>, E>` under another name (an alias): checked as a whole.
pub fn handle_outcome<R: HandleOutput>(
    returned: R,
) -> Result<Vec<crate::process::Dispatch>, crate::handler::HandlerError> {
    returned.into_dispatches()
}

/// The outcome of a `#[handle]` function returning `Result<T, E>`: `T`
/// must be `Vec<Dispatch>` and `E` an error, each with its own message.
pub fn handle_result<T: DispatchList, E: HandlerErrorType>(
    returned: Result<T, E>,
) -> Result<Vec<crate::process::Dispatch>, crate::handler::HandlerError> {
    returned
        .map(DispatchList::into_vec)
        .map_err(|e| process_failed(e.into_box_error()))
}

/// A `#[handle]` function's error, as the runner sees it: a `HandlerError`
/// (such as one from `Dispatch::later`, passed on with `?`) stays itself.
fn process_failed(error: crate::BoxError) -> crate::handler::HandlerError {
    match error.downcast::<crate::handler::HandlerError>() {
        Ok(error) => *error,
        Err(error) => crate::handler::HandlerError::Failed(error),
    }
}

/// See [`handle_outcome`].
#[diagnostic::on_unimplemented(
    message = "a `#[handle]` function returns `Vec<Dispatch>` or `Result<Vec<Dispatch>, E>`, not `{Self}`",
    label = "the commands the instance dispatches for the event",
    note = "return `vec![Dispatch::command(..)]`, or `Vec::new()` to dispatch nothing"
)]
pub trait HandleOutput {
    /// The commands, or why there are none.
    fn into_dispatches(self)
    -> Result<Vec<crate::process::Dispatch>, crate::handler::HandlerError>;
}

impl HandleOutput for Vec<crate::process::Dispatch> {
    fn into_dispatches(
        self,
    ) -> Result<Vec<crate::process::Dispatch>, crate::handler::HandlerError> {
        Ok(self)
    }
}

impl<E: Into<crate::BoxError>> HandleOutput for Result<Vec<crate::process::Dispatch>, E> {
    fn into_dispatches(
        self,
    ) -> Result<Vec<crate::process::Dispatch>, crate::handler::HandlerError> {
        self.map_err(|e| process_failed(e.into()))
    }
}

/// See [`handle_result`].
#[diagnostic::on_unimplemented(
    message = "a `#[handle]` function returns `Result<Vec<Dispatch>, E>`, not `Result<{Self}, E>`",
    label = "the commands the instance dispatches for the event",
    note = "return `Ok(vec![Dispatch::command(..)])`, or `Ok(Vec::new())` to dispatch nothing"
)]
pub trait DispatchList {
    /// The commands.
    fn into_vec(self) -> Vec<crate::process::Dispatch>;
}

impl DispatchList for Vec<crate::process::Dispatch> {
    fn into_vec(self) -> Vec<crate::process::Dispatch> {
        self
    }
}

/// A `#[projection]` can move between tasks; checked before
/// [`projection_sync`], so a projection with an `Rc` in it is one error.
pub const fn projection_send<P: ProjectionSend>() -> bool {
    true
}

/// A `#[projection]` can be shared between tasks.
pub const fn projection_sync<P: ProjectionSync>() -> bool {
    true
}

/// See [`projection_send`].
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` is not `Send + 'static`",
    label = "the runner keeps a projection for as long as the app runs and moves it between tasks",
    note = "keep `Rc`, `RefCell`, `Cell` and borrowed data out of `{Self}`: its state is its read model, in the database"
)]
pub trait ProjectionSend {}

impl<P: Send + 'static> ProjectionSend for P {}

/// See [`projection_sync`].
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` is not `Sync`",
    label = "the runner shares one projection value between tasks",
    note = "keep `RefCell` and `Cell` out of `{Self}`: its state is its read model, in the database"
)]
pub trait ProjectionSync {}

impl<P: Sync> ProjectionSync for P {}

/// A `#[projection]` method takes `&E` for an `#[event]` type `E`.
pub const fn projected_event<E: ProjectedEvent>() -> bool {
    true
}

/// What a `#[projection]` method may take as its event.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type, so a projection method cannot take it",
    label = "not an `#[event]` type",
    note = "a projection method takes `&E` where `E` is an `#[annals::event]` enum or struct: mark `{Self}` with `#[annals::event]`, or take the events enum it belongs to"
)]
pub trait ProjectedEvent {}

impl<E: Event> ProjectedEvent for E {}

/// The database a `#[projection]` on a `SqliteConnection` keeps its read
/// model in, named in its impl's header.
#[cfg(feature = "sqlite")]
pub use sqlx::Sqlite;

/// The database a `#[projection]` on a `PgConnection` keeps its read model
/// in, named in its impl's header.
#[cfg(feature = "postgres")]
pub use sqlx::Postgres;

/// A `#[projection]` function's `tx: &mut C` names a connection it can
/// write through.
pub const fn projection_connection<C: ProjectionConnection>() -> bool {
    true
}

/// The connection of a database a projection can keep its read model in;
/// its database is the projection's.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connection a projection can write through",
    label = "the batch's transaction is handed to the projection as its connection",
    note = "take `tx: &mut sqlx::SqliteConnection` or `tx: &mut sqlx::PgConnection` (with annals' `sqlite` or `postgres` feature), and run queries on `&mut *tx`"
)]
pub trait ProjectionConnection {
    /// The database it connects to.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    type Database: crate::projection::ProjectionDatabase<Connection = Self>;
}

#[cfg(feature = "sqlite")]
impl ProjectionConnection for sqlx::SqliteConnection {
    type Database = sqlx::Sqlite;
}

#[cfg(feature = "postgres")]
impl ProjectionConnection for sqlx::PgConnection {
    type Database = sqlx::Postgres;
}

/// Every function of one `#[projection]` takes the connection of one
/// database: checked for each after the first.
pub const fn same_connection<C: SameConnection<First>, First>() -> bool {
    true
}

/// See [`same_connection`]: implemented only for `C` itself, through which
/// the generated code hands the batch's connection to each function.
#[diagnostic::on_unimplemented(
    message = "this projection function takes a `{Self}`, but the first one takes a `{First}`",
    label = "another database's connection than the projection's first function takes",
    note = "a projection keeps its read model and its checkpoint in one database, and each batch in one transaction there: take the same connection type in every function of the `#[projection]` impl, and write a second projection for the other database"
)]
pub trait SameConnection<First: ?Sized> {
    /// The connection, as this type.
    fn same(conn: &mut First) -> &mut Self;
}

impl<C: ?Sized> SameConnection<C> for C {
    fn same(conn: &mut C) -> &mut C {
        conn
    }
}
