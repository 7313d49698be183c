//! Process managers: long-running processes across aggregates, driven by
//! events, issuing commands.
//!
//! A process manager is an event handler with state per *instance*: each
//! event it wants is routed to one instance (started, continued or stopped by
//! an id taken from the event), the instance decides which commands to
//! dispatch, then folds the event into its state. The runner persists each
//! instance's state, after every event, as a snapshot of the stream
//! `$process-<name>-<id>` in the App's store, with the position of the last
//! event it handled.
//!
//! - **Causation and correlation.** Every command is dispatched with the
//!   triggering event's id as its causation id and the event's correlation
//!   id, so a whole process reads as one request.
//! - **Idempotent under redelivery.** An instance skips an event at or below
//!   the position its state was saved at. Each command's id is derived from
//!   the process, the instance, the event and the command's index: if the
//!   process crashed after dispatching but before saving its state, the
//!   redelivered event dispatches the same command id again, which the App
//!   recognises ([`DispatchError::DuplicateCommand`])
//!   and records nothing.
//! - **Errors** follow the handler's [`ErrorPolicy`](crate::handler::ErrorPolicy):
//!   a command refused by its aggregate is a failure of the event.
//! - **One at a time**: a process manager handles one event at a time, in
//!   log order (its instances span streams, so per-stream lanes would not
//!   keep an instance's events in order).
//!
//! `#[process_manager]` on the state type's `impl` block writes
//! [`ProcessManager`] from one function per step and event type: a
//! `#[route]` for each event type it wants (which instance), optionally a
//! `#[handle]` (which commands) and an `#[apply]` (how the state changes).
//! [`Route`] and [`Dispatch`] are in the prelude beside the macro.
//!
//! ```
//! use annals::prelude::*;
//! use annals::process::ProcessManager;
//! use annals::testing::eventually_recorded;
//! use std::time::Duration;
//!
//! #[event]
//! pub enum OrderEvent {
//!     Placed { amount: u64 },
//!     Shipped,
//! }
//!
//! #[event]
//! pub enum PaymentEvent {
//!     Charged { order: String, amount: u64 },
//! }
//!
//! #[command(aggregate = Order)]
//! pub struct Place { #[id] pub order: String, pub amount: u64 }
//!
//! #[command(aggregate = Order)]
//! pub struct Ship { #[id] pub order: String }
//!
//! #[command(aggregate = Payment)]
//! pub struct Charge { #[id] pub card: String, pub order: String, pub amount: u64 }
//!
//! #[aggregate(events = OrderEvent)]
//! #[derive(Default)]
//! pub struct Order;
//!
//! #[aggregate]
//! impl Order {
//!     #[handle]
//!     fn place(&self, c: Place) -> OrderEvent { OrderEvent::Placed { amount: c.amount } }
//!     #[handle]
//!     fn ship(&self, _: Ship) -> OrderEvent { OrderEvent::Shipped }
//!     #[apply]
//!     fn apply(&mut self, event: &OrderEvent) {
//!         match event { OrderEvent::Placed { .. } | OrderEvent::Shipped => {} }
//!     }
//! }
//!
//! #[aggregate(events = PaymentEvent)]
//! #[derive(Default)]
//! pub struct Payment;
//!
//! #[aggregate]
//! impl Payment {
//!     #[handle]
//!     fn charge(&self, c: Charge) -> PaymentEvent {
//!         PaymentEvent::Charged { order: c.order, amount: c.amount }
//!     }
//!     #[apply]
//!     fn apply(&mut self, event: &PaymentEvent) {
//!         match event { PaymentEvent::Charged { .. } => {} }
//!     }
//! }
//!
//! /// One order: charged when placed, shipped once paid in full.
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! pub struct Checkout {
//!     order: String,
//!     due: u64,
//! }
//!
//! #[process_manager(name = "checkout")]
//! impl Checkout {
//!     #[route]
//!     fn route_order(event: &OrderEvent, meta: &EventMeta<'_>) -> Route {
//!         let order = meta.stream_id().aggregate_id().unwrap_or_default().to_owned();
//!         match event {
//!             OrderEvent::Placed { .. } => Route::Start(order),
//!             OrderEvent::Shipped => Route::Stop(order),
//!         }
//!     }
//!
//!     #[route]
//!     fn route_payment(event: &PaymentEvent) -> Route {
//!         let PaymentEvent::Charged { order, .. } = event;
//!         Route::Continue(order.clone())
//!     }
//!
//!     #[handle]
//!     fn on_order(&self, event: &OrderEvent, meta: &EventMeta<'_>) -> Vec<Dispatch> {
//!         let OrderEvent::Placed { amount } = event else { return Vec::new() };
//!         let order = meta.stream_id().aggregate_id().unwrap_or_default().to_owned();
//!         vec![Dispatch::command(Charge { card: "card-1".into(), order, amount: *amount })]
//!     }
//!
//!     #[handle]
//!     fn on_payment(&self, event: &PaymentEvent) -> Vec<Dispatch> {
//!         let PaymentEvent::Charged { amount, .. } = event;
//!         if *amount < self.due {
//!             return Vec::new();
//!         }
//!         vec![Dispatch::command(Ship { order: self.order.clone() })]
//!     }
//!
//!     #[apply]
//!     fn apply_order(&mut self, event: &OrderEvent, meta: &EventMeta<'_>) {
//!         if let OrderEvent::Placed { amount } = event {
//!             self.order = meta.stream_id().aggregate_id().unwrap_or_default().to_owned();
//!             self.due = *amount;
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! assert_eq!(Checkout::NAME, "checkout");
//! assert_eq!(Checkout::INTEREST, &[OrderEvent::TYPES, PaymentEvent::TYPES]);
//!
//! let app = App::builder()
//!     .store(MemoryStore::new())
//!     .process_manager::<Checkout>()
//!     .build()?;
//! app.dispatch(Place { order: "o-1".into(), amount: 30 }).await?;
//!
//! // Placed -> Charge (to the payment) -> Charged -> Ship (to the order) -> Shipped.
//! let shipped = eventually_recorded(&**app.store(), Duration::from_secs(5), |e| {
//!     e.event_type == "Shipped"
//! })
//! .await;
//! assert_eq!(shipped.stream_id.as_str(), "Order-o-1");
//! let charged = eventually_recorded(&**app.store(), Duration::from_secs(5), |e| {
//!     e.event_type == "Charged"
//! })
//! .await;
//! assert_eq!(charged.stream_id.as_str(), "Payment-card-1");
//! assert_eq!(shipped.metadata.causation_id, Some(charged.event_id));
//! app.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub(crate) mod scheduler;

use crate::aggregate::{Command, EventType, Handles};
use crate::app::{App, BoxError};
use crate::handler::HandlerError;
use crate::{DispatchError, DispatchOptions, RecordedEvent};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use uuid::Uuid;

/// Where an event goes among a process manager's instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the instance `id`, starting it (from `Default`) if it does not
    /// exist or has stopped.
    Start(String),
    /// To the running instance `id`; ignored if there is none.
    Continue(String),
    /// To the running instance `id`, which then stops: its state is
    /// dropped after this event (later `Continue`s are ignored).
    Stop(String),
    /// Nowhere.
    Ignore,
}

/// Dispatches one command through an app, with the options a process gives.
type RunCommand =
    Box<dyn FnOnce(App, DispatchOptions) -> BoxFuture<'static, Result<(), BoxError>> + Send>;

/// A command a process manager dispatches: built with [`Dispatch::command`]
/// (now) or [`Dispatch::later`] (a timeout, persisted).
pub struct Dispatch {
    name: &'static str,
    run: RunCommand,
    /// For a later one: when, and the command's fields.
    later: Option<(std::time::Duration, serde_json::Value)>,
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatch")
            .field("command", &self.name)
            .finish()
    }
}

impl Dispatch {
    /// Dispatches `command` to its aggregate. A command already dispatched
    /// with the same id (a redelivered event) counts as done.
    pub fn command<C>(command: C) -> Self
    where
        C: Command,
        C::Aggregate: Handles<C>,
    {
        Self {
            name: C::NAME,
            run: Box::new(move |app: App, options: DispatchOptions| {
                Box::pin(async move {
                    match app.dispatch_with(command, options).await {
                        Ok(_) | Err(DispatchError::DuplicateCommand { .. }) => Ok(()),
                        Err(e) => Err(Box::new(CommandFailed {
                            command: C::NAME,
                            message: crate::handler::runner::chain(&e),
                        }) as BoxError),
                    }
                })
            }),
            later: None,
        }
    }

    /// Dispatches `command` once `after` has passed: a timeout, such as
    /// cancelling a withdrawal not completed in 30 seconds. The schedule is
    /// an event in the store (stream `$schedule-<process>-<instance>`), so it
    /// survives restarts; the App's scheduler dispatches it when it is due
    /// (by name and JSON fields, so the command must be one a `#[handle]`
    /// registers), with the triggering event as its cause. A command that is
    /// due while no App runs is dispatched when one starts.
    pub fn later<C>(command: C, after: std::time::Duration) -> Result<Self, HandlerError>
    where
        C: Command + Serialize,
        C::Aggregate: Handles<C>,
    {
        let fields = serde_json::to_value(&command).map_err(failed)?;
        let mut dispatch = Self::command(command);
        dispatch.later = Some((after, fields));
        Ok(dispatch)
    }

    /// The command's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// A command a process manager dispatched was not carried out.
#[derive(Debug, thiserror::Error)]
#[error("command `{command}` failed: {message}")]
pub struct CommandFailed {
    /// The command's name.
    pub command: &'static str,
    /// Its error, with its sources.
    pub message: String,
}

/// A process manager: state per instance, routed by events, dispatching
/// commands. Its state is serialised (serde) after every event.
///
/// Written by `#[process_manager]` (see the [module](self) docs) rather
/// than by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a process manager",
    label = "not a process manager",
    note = "mark its impl block with `#[annals::process_manager]`, with a `#[route]` function per event type it wants"
)]
pub trait ProcessManager: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The process manager's durable name (its checkpoint's key, and part
    /// of its instances' stream names).
    const NAME: &'static str;

    /// The event types it wants.
    const INTEREST: &'static [&'static [EventType]];

    /// Which instance `event` concerns.
    fn route(event: &RecordedEvent) -> Result<Route, HandlerError>;

    /// The commands the instance dispatches for `event`, in order.
    fn handle(&self, event: &RecordedEvent) -> Result<Vec<Dispatch>, HandlerError>;

    /// Folds `event` into the instance's state (after its commands were
    /// dispatched).
    fn apply(&mut self, event: &RecordedEvent) -> Result<(), HandlerError>;
}

/// What is saved of one instance.
#[derive(Serialize, serde::Deserialize)]
struct Saved<P> {
    /// `None` once the instance stopped.
    state: Option<P>,
}

/// A process manager's instances, behind one type.
pub(crate) trait DynProcess: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        app: &'a App,
        event: &'a RecordedEvent,
    ) -> crate::handler::HandlerFuture<'a>;
}

pub(crate) struct Instances<P>(std::marker::PhantomData<fn() -> P>);

impl<P> Default for Instances<P> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// The stream an instance's state is saved under.
fn instance_stream(name: &str, id: &str) -> crate::StreamId {
    crate::StreamId::new(format!("$process-{name}-{id}"))
}

/// The id of the `index`th command an instance dispatches for an event: the
/// same on every delivery of that event.
fn command_id(name: &str, id: &str, event: Uuid, index: usize) -> Uuid {
    let seed = format!("annals.process/{name}/{id}/{event}/{index}");
    Uuid::new_v5(&Uuid::NAMESPACE_OID, seed.as_bytes())
}

fn failed(e: impl Into<BoxError>) -> HandlerError {
    HandlerError::Failed(e.into())
}

impl<P: ProcessManager> DynProcess for Instances<P> {
    fn handle<'a>(
        &'a self,
        app: &'a App,
        event: &'a RecordedEvent,
    ) -> crate::handler::HandlerFuture<'a> {
        Box::pin(async move {
            let (id, starts, stops) = match P::route(event)? {
                Route::Ignore => return Ok(()),
                Route::Start(id) => (id, true, false),
                Route::Continue(id) => (id, false, false),
                Route::Stop(id) => (id, false, true),
            };
            let stream = instance_stream(P::NAME, &id);
            stream.validate().map_err(failed)?;
            let store = app.store();
            let saved = store.load_snapshot(&stream).await.map_err(failed)?;
            let (state, position) = match saved {
                Some(snapshot) => {
                    let saved: Saved<P> =
                        serde_json::from_str(snapshot.state.as_str()).map_err(failed)?;
                    (saved.state, snapshot.stream_version)
                }
                None => (None, 0),
            };
            if event.global_position <= position {
                // Handled before a crash, or a restart, already.
                return Ok(());
            }
            let mut state = match state {
                Some(state) => state,
                None if starts => P::default(),
                None => {
                    tracing::debug!(process = P::NAME, instance = %id, "no running instance: ignored");
                    return Ok(());
                }
            };
            let commands = state.handle(event)?;
            for (index, command) in commands.into_iter().enumerate() {
                let command_id = command_id(P::NAME, &id, event.event_id, index);
                if let Some((after, fields)) = command.later {
                    let due = chrono::Duration::from_std(after)
                        .ok()
                        .and_then(|after| event.recorded_at.checked_add_signed(after))
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
                    scheduler::schedule(
                        &**store,
                        &scheduler::stream(P::NAME, &id),
                        command_id,
                        command.name,
                        fields,
                        due,
                        event,
                    )
                    .await
                    .map_err(failed)?;
                    continue;
                }
                let mut options = DispatchOptions::new()
                    .command_id(command_id)
                    .causation_id(event.event_id);
                if let Some(correlation) = event.metadata.correlation_id {
                    options = options.correlation_id(correlation);
                }
                (command.run)(app.clone(), options)
                    .await
                    .map_err(HandlerError::Failed)?;
            }
            state.apply(event)?;
            let saved = Saved {
                state: (!stops).then_some(state),
            };
            let snapshot = crate::Snapshot {
                stream_id: stream,
                stream_version: event.global_position,
                snapshot_version: 1,
                state: crate::Payload::from_serialize(&saved).map_err(failed)?,
                taken_at: chrono::Utc::now(),
            };
            store.save_snapshot(snapshot).await.map_err(failed)
        })
    }
}
