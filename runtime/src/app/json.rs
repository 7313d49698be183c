//! Commands given by name and JSON fields (see [`App::dispatch_json`]).

use super::{
    AnyDomainError, App, DispatchError, DispatchOptions, JsonDispatchError, JsonDispatched,
};
use crate::aggregate::{Command, Event, Handles};

/// Decodes `fields` into a `C` and dispatches it: each `#[handle]` function
/// registers this for its command.
#[doc(hidden)]
pub fn dispatch_json<C>(
    app: &App,
    fields: serde_json::Value,
    options: DispatchOptions,
) -> futures::future::BoxFuture<'_, Result<JsonDispatched, JsonDispatchError>>
where
    C: Command + serde::de::DeserializeOwned,
    C::Aggregate: Handles<C>,
{
    Box::pin(async move {
        let command: C =
            serde_json::from_value(fields).map_err(|source| JsonDispatchError::Malformed {
                command: C::NAME,
                source,
            })?;
        let done = app
            .dispatch_with(command, options)
            .await
            .map_err(|e| JsonDispatchError::Dispatch(e.map_domain(AnyDomainError::new)))?;
        let events = done
            .events
            .iter()
            .map(|e| {
                let payload = e.encode().map_err(|source| {
                    JsonDispatchError::Dispatch(DispatchError::Encode {
                        event_type: e.event_type(),
                        source,
                    })
                })?;
                Ok((e.event_type(), e.event_version(), payload))
            })
            .collect::<Result<_, JsonDispatchError>>()?;
        Ok(JsonDispatched {
            stream_id: done.stream_id,
            version: done.version,
            events,
            positions: done.positions,
            command_id: done.command_id,
            correlation_id: done.correlation_id,
        })
    })
}
