//! What the macros register through `inventory`, and the app's view of it.

use super::{App, DispatchOptions, JsonDispatchError};
use crate::aggregate::EventType;
use crate::store::{Payload, StreamId};
use futures::future::BoxFuture;
use std::collections::HashMap;

/// An aggregate type, registered by `#[aggregate(events = ...)]`.
#[derive(Debug)]
pub struct AggregateRegistration {
    /// The aggregate type name (stream prefix).
    pub name: &'static str,
    /// The Rust type's path, for messages.
    pub rust_type: &'static str,
    /// The event types it records.
    pub event_types: &'static [EventType],
}

/// Dispatches a JSON command of one registered type.
pub type JsonDispatchFn = for<'a> fn(
    &'a App,
    serde_json::Value,
    DispatchOptions,
) -> BoxFuture<'a, Result<JsonDispatched, JsonDispatchError>>;

/// A command route, registered by each `#[handle]` function.
#[derive(Debug)]
pub struct CommandRoute {
    /// The command's name.
    pub command: &'static str,
    /// The Rust type's path, for messages.
    pub rust_type: &'static str,
    /// The aggregate type name it targets.
    pub aggregate: &'static str,
    /// The handler function's name.
    pub handler: &'static str,
    /// Decodes and dispatches the command from JSON.
    pub dispatch_json: JsonDispatchFn,
}

inventory::collect!(AggregateRegistration);
inventory::collect!(CommandRoute);

/// The outcome of [`App::dispatch_json`], with events as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonDispatched {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream version after the command.
    pub version: u64,
    /// The recorded events: type name, version, payload.
    pub events: Vec<(&'static str, u32, Payload)>,
    /// Global positions of the first and last recorded event, if any.
    pub positions: Option<(u64, u64)>,
    /// The command id recorded as causation.
    pub command_id: uuid::Uuid,
    /// The correlation id recorded with the events.
    pub correlation_id: uuid::Uuid,
}

/// Everything registered in this binary, checked for duplicates.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) commands: HashMap<&'static str, &'static CommandRoute>,
    pub(crate) aggregates: HashMap<&'static str, &'static AggregateRegistration>,
}

impl Registry {
    /// Every registered aggregate and command, checked; upcaster chains
    /// checked against the aggregates' event types and `handled`.
    pub(crate) fn collect(
        handled: &[crate::aggregate::EventType],
    ) -> Result<Self, super::BuildError> {
        let mut registry = Self::default();
        for agg in inventory::iter::<AggregateRegistration> {
            crate::store::validate_category(agg.name).map_err(|source| {
                super::BuildError::InvalidAggregateName {
                    rust_type: agg.rust_type,
                    source,
                }
            })?;
            if let Some(first) = registry.aggregates.insert(agg.name, agg) {
                return Err(super::BuildError::DuplicateAggregate {
                    name: agg.name,
                    first: first.rust_type,
                    second: agg.rust_type,
                });
            }
        }
        let declared: Vec<crate::aggregate::EventType> = registry
            .aggregates
            .values()
            .flat_map(|agg| agg.event_types.iter().cloned())
            .chain(handled.iter().copied())
            .collect();
        crate::upcast::check(&declared)?;
        for route in inventory::iter::<CommandRoute> {
            if let Some(first) = registry.commands.insert(route.command, route) {
                return Err(super::BuildError::DuplicateCommand {
                    name: route.command,
                    first: format!(
                        "{}::{} ({})",
                        first.aggregate, first.handler, first.rust_type
                    ),
                    second: format!(
                        "{}::{} ({})",
                        route.aggregate, route.handler, route.rust_type
                    ),
                });
            }
        }
        Ok(registry)
    }
}
