//! # Annals: event sourcing and CQRS for Rust, declared with macros
//!
//! Annotate plain domain types and get an event-sourced application:
//!
//! - [`#[event]`](macro@event) gives an enum of events stable type names,
//!   versions, serde and a decode table;
//! - [`#[command]`](macro@command) names the aggregate a command targets and
//!   the field that identifies the instance;
//! - [`#[aggregate]`](macro@aggregate) on the state type and on its `impl`
//!   block writes the dispatch table (command → `#[handle]` function) and the
//!   fold (`#[apply]`), checked at compile time;
//! - [`#[event_handler]`](macro@event_handler) on an `impl` block with one
//!   method per event type writes an [`EventHandler`]: its interest set,
//!   routing, decoding and metadata, checked at compile time;
//! - [`#[process_manager]`](macro@process_manager) on an `impl` block of
//!   `#[route]`, `#[handle]` and `#[apply]` functions writes a
//!   [`ProcessManager`](process::ProcessManager): instances routed by
//!   events from any aggregates, dispatching commands;
//! - [`#[projection]`](macro@projection) on an `impl` block with one method
//!   per event type, each taking the connection of the batch's transaction
//!   (`&mut SqliteConnection` or `&mut PgConnection`), writes a
//!   transactional `projection::Projection<DB>`: a read model in SQL whose
//!   writes commit with its checkpoint (features `sqlite`, `postgres`);
//! - [`#[upcaster]`](macro@upcaster) on a function from an old payload to
//!   the next registers one step of a stored event's [`upcast`] chain, which
//!   every reader runs on old rows;
//! - an [`App`] routes commands to cached aggregates and persists their events
//!   in an [`EventStore`]: [`MemoryStore`] here, SQLite and PostgreSQL behind
//!   the `sqlite` and `postgres` features;
//! - `annals::http` (feature `http`) serves the commands an app chooses and
//!   its read models as an HTTP JSON API (axum), with problem+json errors
//!   and an OpenAPI document made from the routes;
//! - `annals::document` (feature `documents`) keeps JSON documents of any
//!   kind in a built-in aggregate whose events journal RFC 6902 patches,
//!   with an optional JSON Schema per kind, a read model of the current
//!   documents and, with `http`, CRUD and PATCH routes.
//!
//! ```
//! use annals::prelude::*;
//!
//! #[event]
//! pub enum WalletEvent {
//!     MoneyDeposited { amount: u64 },
//!     MoneyWithdrawn { amount: u64 },
//! }
//!
//! #[derive(Debug, thiserror::Error)]
//! pub enum WalletError {
//!     #[error("insufficient funds: balance {balance}, asked {asked}")]
//!     InsufficientFunds { balance: u64, asked: u64 },
//! }
//!
//! #[command(aggregate = Wallet)]
//! pub struct PayIn { #[id] pub account: String, pub amount: u64 }
//!
//! #[command(aggregate = Wallet)]
//! pub struct PayOut { #[id] pub account: String, pub amount: u64 }
//!
//! #[aggregate(events = WalletEvent)]
//! #[derive(Default)]
//! pub struct Wallet { balance: u64 }
//!
//! #[aggregate]
//! impl Wallet {
//!     #[handle]
//!     fn pay_in(&self, cmd: PayIn) -> WalletEvent {
//!         WalletEvent::MoneyDeposited { amount: cmd.amount }
//!     }
//!
//!     #[handle]
//!     fn pay_out(&self, cmd: PayOut) -> Result<WalletEvent, WalletError> {
//!         if cmd.amount > self.balance {
//!             return Err(WalletError::InsufficientFunds { balance: self.balance, asked: cmd.amount });
//!         }
//!         Ok(WalletEvent::MoneyWithdrawn { amount: cmd.amount })
//!     }
//!
//!     #[apply]
//!     fn apply(&mut self, event: &WalletEvent) {
//!         match event {
//!             WalletEvent::MoneyDeposited { amount } => self.balance += amount,
//!             WalletEvent::MoneyWithdrawn { amount } => self.balance -= amount,
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = App::builder().store(MemoryStore::new()).build()?;
//! app.dispatch(PayIn { account: "a-1".into(), amount: 50 }).await?;
//! let refused = app.dispatch(PayOut { account: "a-1".into(), amount: 80 }).await;
//! assert!(matches!(
//!     refused.unwrap_err().domain(),
//!     Some(WalletError::InsufficientFunds { balance: 50, asked: 80 })
//! ));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

extern crate self as annals;

pub mod aggregate;
mod app;
pub mod feed;
pub mod handler;
pub mod process;
pub mod store;
pub mod testing;
pub mod upcast;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "documents")]
pub mod document;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod projection;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// The README's example runs as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use aggregate::{
    Aggregate, Command, DecodeError, Event, EventType, HandlerOutput, Handles, IntoEvents,
};
pub use annals_macros::{
    aggregate, command, event, event_handler, process_manager, projection, upcaster,
};
pub use app::{
    AggregateRegistration, AnyDomainError, App, AppBuilder, BoxError, BuildError, CommandContext,
    CommandOutcome, CommandRoute, DispatchError, DispatchFuture, DispatchOptions, Dispatched,
    JsonDispatchError, JsonDispatchFn, JsonDispatched, LoadError, Middleware, OutcomeKind,
    RetryPolicy,
};
pub use handler::{EventHandler, EventMeta, HandlerError, StartFrom};
pub use store::{
    AnyStore, AppendResult, EventFilter, EventStore, ExpectedVersion, FilteredPage,
    InvalidCheckpoint, InvalidStreamId, LogWatch, MemoryStore, Metadata, Migration,
    MigrationReport, NewEvent, Payload, RecordedEvent, Snapshot, StoreError, StoreFuture,
    StreamHint, StreamId, StreamInfo, StreamLock, WakeCause,
};
pub use uuid::Uuid;

/// Everything an application module usually needs: `use annals::prelude::*;`.
pub mod prelude {
    pub use crate::process::{Dispatch, Route};
    pub use crate::process_manager;
    pub use crate::projection;
    pub use crate::{
        Aggregate, App, Command, DispatchError, DispatchOptions, Event, EventMeta, EventStore,
        Handles, MemoryStore, aggregate, command, event, event_handler, upcaster,
    };
}
