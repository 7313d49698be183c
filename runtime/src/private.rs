//! Paths used by macro-generated code. Not public API: no stability promise.

pub use crate::app::dispatch_json;
pub use inventory;
pub use serde;
pub use serde_json;
pub use std::future::{Future, ready};
pub use std::result::Result;
pub use std::vec::Vec;

use crate::aggregate::{Aggregate, Command};

/// The fold of an aggregate, written by its `#[apply]` function.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` has no `#[apply]` function",
    label = "its events cannot be folded",
    note = "add `#[apply] fn apply(&mut self, event: &YourEvents) {{ match event {{ .. }} }}` to an `#[aggregate] impl {Self}` block"
)]
pub trait ApplyEvents: Aggregate {
    fn apply_event(&mut self, event: &Self::Event);
}

/// `Self` is a command whose `#[command(aggregate = ..)]` names `A`.
///
/// Implemented by `#[command]` for its one aggregate, not by a blanket impl:
/// a handler for a command of another aggregate then fails on this single
/// bound, with this message, instead of on a type mismatch.
#[diagnostic::on_unimplemented(
    message = "command `{Self}` is not for aggregate `{A}`",
    label = "this command's `#[command(aggregate = ..)]` names another aggregate",
    note = "move this handler into the `#[aggregate] impl` of the aggregate the command names, or change the command's `aggregate = ..`"
)]
pub trait CommandFor<A>: Command<Aggregate = A> + serde::de::DeserializeOwned {}

/// The JSON route of command `C` handled by `A`. Its only bounds are the ones
/// the generated handler guarantees, so a wrong target is one error, not two.
pub fn dispatch_json_via<C, A>(
    app: &crate::App,
    fields: serde_json::Value,
    options: crate::DispatchOptions,
) -> futures::future::BoxFuture<'_, Result<crate::JsonDispatched, crate::JsonDispatchError>>
where
    C: CommandFor<A>,
    A: crate::Handles<C>,
{
    dispatch_json::<C>(app, fields, options)
}

pub const fn assert_aggregate<A: Aggregate>() {}

pub const fn assert_event<E: crate::aggregate::Event>() {}

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
