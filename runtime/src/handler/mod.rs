//! Event handlers: code that reacts to what the application decided.
//!
//! `#[event_handler]` on an `impl` block writes [`EventHandler`] for it: one
//! method per event type it wants (an `#[event]` enum of any aggregate),
//! each taking `&Event` and optionally `&EventMeta`. The macro writes the
//! routing and the interest set ([`EventHandler::INTEREST`]) at compile time,
//! so the runner reads only those events from the store and never decodes
//! one the handler does not want.
//!
//! ```
//! use annals::prelude::*;
//! use annals::{EventHandler, ExpectedVersion, HandlerError, NewEvent, StreamId};
//! use std::sync::Mutex;
//!
//! #[event]
//! pub enum AccountEvent {
//!     Opened { owner: String },
//!     Deposited { amount: u64 },
//! }
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("the ledger refused the deposit")]
//! pub struct LedgerError;
//!
//! /// Keeps a running total of deposits, with where each came from.
//! #[derive(Default)]
//! pub struct DepositLedger {
//!     lines: Mutex<Vec<(String, u64, u64)>>,
//! }
//!
//! #[event_handler(name = "deposit-ledger", concurrency = 4)]
//! impl DepositLedger {
//!     async fn on_account(&self, event: &AccountEvent, meta: &EventMeta<'_>) -> Result<(), LedgerError> {
//!         match event {
//!             AccountEvent::Opened { .. } => Ok(()),
//!             AccountEvent::Deposited { amount: 0 } => Err(LedgerError),
//!             AccountEvent::Deposited { amount } => {
//!                 let stream = meta.stream_id().to_string();
//!                 self.lines.lock().unwrap().push((stream, meta.position(), *amount));
//!                 Ok(())
//!             }
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! assert_eq!(DepositLedger::NAME, "deposit-ledger");
//! assert_eq!(DepositLedger::INTEREST, &[AccountEvent::TYPES]);
//!
//! let store = MemoryStore::new();
//! let events = [AccountEvent::Opened { owner: "ada".into() }, AccountEvent::Deposited { amount: 5 }]
//!     .iter()
//!     .map(|e| Ok(NewEvent::new(e.event_type(), e.event_version(), e.encode()?)))
//!     .collect::<Result<Vec<_>, serde_json::Error>>()?;
//! store.append(&StreamId::new("Account-7"), ExpectedVersion::NoStream, events).await?;
//!
//! // What a runner does with each event it reads.
//! let ledger = DepositLedger::default();
//! for event in store.read_all(1, 100).await? {
//!     ledger.handle(&event).await?;
//! }
//! assert_eq!(*ledger.lines.lock().unwrap(), [("Account-7".to_string(), 2, 5)]);
//!
//! // A method's error comes back as `HandlerError::Failed`, with it as the source.
//! let mut refused = store.read_all(2, 1).await?.remove(0);
//! refused.payload = AccountEvent::Deposited { amount: 0 }.encode()?;
//! let failed = ledger.handle(&refused).await.unwrap_err();
//! assert!(matches!(failed, HandlerError::Failed(ref e) if e.is::<LedgerError>()));
//! # Ok(())
//! # }
//! ```

mod options;
pub(crate) mod runner;
mod set;
mod status;

pub use options::{ErrorPolicy, HandlerOptions};
pub(crate) use set::Handlers;
pub(crate) use status::StatusCell;
pub use status::{HandlerFailure, HandlerState, HandlerStatus};

use crate::aggregate::{DecodeError, Event, EventType};
use crate::app::BoxError;
use crate::store::{Metadata, RecordedEvent, StreamId};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use uuid::Uuid;

/// Where a handler that has no checkpoint yet starts reading the global log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// From the first event ever recorded (the default): the handler sees
    /// the whole history.
    #[default]
    Origin,
    /// From the events recorded after the handler first starts.
    Now,
}

/// What a handler knows about the event it handles, besides its payload.
///
/// A view of a [`RecordedEvent`]; cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct EventMeta<'a> {
    event: &'a RecordedEvent,
}

impl<'a> EventMeta<'a> {
    /// The metadata of `event`.
    pub fn of(event: &'a RecordedEvent) -> Self {
        Self { event }
    }

    /// The event's unique id.
    pub fn event_id(&self) -> Uuid {
        self.event.event_id
    }

    /// The stream it was recorded in (`"Account-42"`).
    pub fn stream_id(&self) -> &'a StreamId {
        &self.event.stream_id
    }

    /// The stream's category: the aggregate type (`"Account"`); `None` for
    /// a stream without a `-`, which no aggregate writes.
    pub fn category(&self) -> Option<&'a str> {
        self.event.stream_id.category()
    }

    /// The aggregate's id within its category (`"42"`); `None` for a stream
    /// without a `-`, which no aggregate writes.
    pub fn aggregate_id(&self) -> Option<&'a str> {
        self.event.stream_id.aggregate_id()
    }

    /// Its position in its stream, from 1.
    pub fn stream_version(&self) -> u64 {
        self.event.stream_version
    }

    /// Its position in the global log.
    pub fn position(&self) -> u64 {
        self.event.global_position
    }

    /// Its stable type name.
    pub fn event_type(&self) -> &'a str {
        &self.event.event_type
    }

    /// The schema version it was recorded with.
    pub fn event_version(&self) -> u32 {
        self.event.event_version
    }

    /// When the store recorded it.
    pub fn recorded_at(&self) -> DateTime<Utc> {
        self.event.recorded_at
    }

    /// The id shared by everything one original request caused.
    pub fn correlation_id(&self) -> Option<Uuid> {
        self.event.metadata.correlation_id
    }

    /// The id of the command or event that caused this event.
    pub fn causation_id(&self) -> Option<Uuid> {
        self.event.metadata.causation_id
    }

    /// All of its metadata, user key/values included.
    pub fn metadata(&self) -> &'a Metadata {
        &self.event.metadata
    }

    /// The whole recorded event.
    pub fn recorded(&self) -> &'a RecordedEvent {
        self.event
    }
}

/// Why a handler did not handle an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The stored event could not be decoded into the type the handler takes.
    #[error(
        "cannot decode event at position {position} ({event_type} v{event_version}) of stream `{stream_id}`"
    )]
    Decode {
        /// Its global position.
        position: u64,
        /// Its stream.
        stream_id: StreamId,
        /// Its stored type name.
        event_type: String,
        /// Its stored schema version.
        event_version: u32,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// The handler's method returned an error.
    #[error("the handler failed")]
    Failed(#[source] BoxError),
}

impl HandlerError {
    /// Decodes `event` as one `E`, or says which stored event could not be.
    pub fn decode<E: Event>(event: &RecordedEvent) -> Result<E, HandlerError> {
        E::decode(&event.event_type, event.event_version, &event.payload)
            .map_err(|source| Self::decoding(event, source))
    }

    /// Decodes `event` as the events of `E` it reads as through its
    /// [upcasters](crate::upcast) (usually one; none or several when an
    /// upcaster dropped or split it; shapes of types `E` does not declare
    /// are skipped), or says which stored event could not be. The macros'
    /// routing reads events so.
    pub fn decode_all<E: Event>(
        event: &RecordedEvent,
    ) -> Result<crate::upcast::Decoded<E>, HandlerError> {
        crate::upcast::decode_handled(event).map_err(|source| Self::decoding(event, source))
    }

    fn decoding(event: &RecordedEvent, source: DecodeError) -> HandlerError {
        HandlerError::Decode {
            position: event.global_position,
            stream_id: event.stream_id.clone(),
            event_type: event.event_type.to_string(),
            event_version: event.event_version,
            source,
        }
    }
}

/// Why a handler had not handled an event a caller waited for: see
/// [`DispatchError::NotConsistent`](crate::DispatchError::NotConsistent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Lagging {
    /// It was still behind when the wait timed out.
    #[error("had not handled them within {0:?}")]
    TimedOut(std::time::Duration),
    /// It has stopped (its error policy) or shut down.
    #[error("has stopped before them")]
    Stopped,
    /// No handler of this name runs in this app.
    #[error("does not run in this app")]
    Unknown,
}

/// A handler had not passed a position: from [`App::wait_for_handlers`](crate::App::wait_for_handlers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handler `{handler}` {reason}")]
pub struct NotCaughtUp {
    /// The handler's name.
    pub handler: String,
    /// Why it had not.
    pub reason: Lagging,
}

/// Why [`App::rebuild`](crate::App::rebuild) did not start a handler over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// No handler or projection of this name runs in this app.
    #[error("no handler `{0}` runs in this app")]
    Unknown(String),
    /// It waits for its turn: another App (another process) runs it now;
    /// rebuild it there.
    #[error("handler `{0}` runs in another app now (this one waits for its turn)")]
    NotRunningHere(String),
    /// It has stopped or shut down.
    #[error("handler `{0}` has stopped")]
    Stopped(String),
    /// Resetting its read model or checkpoint failed; nothing changed.
    #[error("handler `{handler}` could not be reset: {message}")]
    Failed {
        /// The handler.
        handler: String,
        /// The error and its sources.
        message: String,
    },
}

/// The future [`EventHandler::handle`] returns.
pub type HandlerFuture<'a> = BoxFuture<'a, Result<(), HandlerError>>;

/// Code that reacts to recorded events. Written by `#[event_handler]`.
///
/// Delivery is at least once: after a crash, the events since the last
/// checkpoint are handled again, so a handler's effects should be idempotent
/// (or be a transactional projection, whose checkpoint commits with them).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event handler",
    label = "not an event handler",
    note = "mark its impl block with `#[annals::event_handler]`, with one method per event type it handles"
)]
pub trait EventHandler: Send + Sync + 'static {
    /// The handler's durable name: its checkpoint's key. Renaming a handler
    /// makes it start again from [`START_FROM`](Self::START_FROM).
    const NAME: &'static str;

    /// The event types it handles: the [`Event::TYPES`] of each event type
    /// one of its methods takes, in method order.
    const INTEREST: &'static [&'static [EventType]];

    /// Where it starts when it has no checkpoint.
    const START_FROM: StartFrom = StartFrom::Origin;

    /// How many events it handles at once at most; events of one stream are
    /// always handled one after another, in order.
    const CONCURRENCY: usize = 1;

    /// Handles one recorded event whose type is in [`INTEREST`](Self::INTEREST)
    /// (others are ignored: `Ok(())`).
    fn handle<'a>(&'a self, event: &'a RecordedEvent) -> HandlerFuture<'a>;
}

/// What an `#[event_handler]` method may return: `()`, or a `Result<(), E>`
/// whose error converts into a [`BoxError`].
#[diagnostic::on_unimplemented(
    message = "an event handler method cannot return `{Self}`",
    label = "return `()` or `Result<(), E>` with `E: std::error::Error + Send + Sync`",
    note = "a handler reports failure with an error; the runner retries, skips or stops as its policy says"
)]
pub trait HandlerReturn {
    /// The outcome as a result.
    fn into_result(self) -> Result<(), BoxError>;
}

impl HandlerReturn for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> HandlerReturn for Result<(), E> {
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// The index in `interest` of the event list that reads a stored `(type,
/// version)`, if any: the list that declares its name, or else the first
/// that declares a type its [upcasters](crate::upcast) may turn it into (a
/// renamed or moved event).
pub fn route(interest: &[&[EventType]], event_type: &str, event_version: u32) -> Option<usize> {
    interest
        .iter()
        .position(|types| types.iter().any(|t| t.name == event_type))
        .or_else(|| crate::upcast::route(interest, event_type, event_version))
}

/// Every stored event type name a reader of `interest` reads, once each:
/// the names it declares, and every older name an upcaster turns into one
/// of them.
pub fn interest_names(interest: &[&[EventType]]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = interest
        .iter()
        .flat_map(|types| types.iter().map(|t| t.name))
        .collect();
    names.sort_unstable();
    names.dedup();
    let older = crate::upcast::sources_of(&names);
    names.extend(older);
    names.sort_unstable();
    names.dedup();
    names
}

/// A handler type linked into the binary, registered by `#[event_handler]`.
///
/// The [`App`](crate::App) runs the handler values given to its builder;
/// the registry lets it refuse two handler types with one durable name,
/// naming both.
#[derive(Debug)]
pub struct HandlerRegistration {
    /// The durable name ([`EventHandler::NAME`]).
    pub name: &'static str,
    /// The handler's Rust type name.
    pub type_name: &'static str,
    /// Where it is declared (`file:line`).
    pub location: &'static str,
}

inventory::collect!(HandlerRegistration);
