//! Annals: event sourcing and CQRS for Rust, declared with macros.
#![deny(missing_docs)]

extern crate self as annals;

pub mod store;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use store::{
    AnyStore, AppendResult, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent, Payload,
    RecordedEvent, Snapshot, StoreError, StreamId,
};
