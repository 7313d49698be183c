//! Endpoints for looking into the store and the handlers: a stream's
//! events, and each handler's position, lag and last error.

use super::problem::{PROBLEM_JSON, Problem};
use super::request::RequestId;
use crate::app::App;
use crate::handler::{HandlerState, HandlerStatus};
use crate::store::{Payload, RecordedEvent, StreamId};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The most events one page of a stream holds.
pub const MAX_PAGE: usize = 1000;

/// Which events of a stream to read.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The first stream version to return (default 1).
    pub from: Option<u64>,
    /// How many events at most (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// One page of a stream's events.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamEvents {
    /// The stream.
    pub stream_id: String,
    /// The stream's version now (its last event's).
    pub version: u64,
    /// The events, by stream version.
    pub events: Vec<StreamEvent>,
    /// The `from` of the next page; `null` at the end of the stream.
    pub next: Option<u64>,
}

/// A stored event, with its metadata.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamEvent {
    /// Its unique id.
    pub event_id: Uuid,
    /// The stable type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The schema version it was stored in (older than the code's when an
    /// upcaster reads it).
    pub event_version: u32,
    /// Its version in the stream, from 1.
    pub stream_version: u64,
    /// Its position in the global log.
    pub position: u64,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The payload as stored.
    #[schema(value_type = Object)]
    pub data: Payload,
    /// Correlation, causation and user metadata.
    pub metadata: StoredMetadata,
}

/// An event's metadata.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredMetadata {
    /// Shared by everything one request caused (its request id).
    pub correlation_id: Option<Uuid>,
    /// The command or event that caused it.
    pub causation_id: Option<Uuid>,
    /// User key/values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, serde_json::Value>,
}

impl From<RecordedEvent> for StreamEvent {
    fn from(e: RecordedEvent) -> Self {
        Self {
            event_id: e.event_id,
            event_type: e.event_type.into_owned(),
            event_version: e.event_version,
            stream_version: e.stream_version,
            position: e.global_position,
            recorded_at: e.recorded_at,
            data: e.payload,
            metadata: StoredMetadata {
                correlation_id: e.metadata.correlation_id,
                causation_id: e.metadata.causation_id,
                custom: e.metadata.custom,
            },
        }
    }
}

/// A stream's events, from a stream version on.
#[utoipa::path(
    get,
    path = "/streams/{stream_id}/events",
    tag = "operations",
    operation_id = "stream_events",
    params(
        ("stream_id" = String, Path, description = "The stream, e.g. `Account-<id>`"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "The events", body = StreamEvents),
        (status = 400, description = "A bad stream id or query", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No event in that stream", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = PROBLEM_JSON),
    ),
)]
pub(crate) async fn stream_events(
    State(app): State<App>,
    request: RequestId,
    Path(stream_id): Path<String>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<StreamEvents>, Problem> {
    let Query(query) = query.map_err(|e| Problem::invalid(e.body_text()))?;
    let stream = StreamId::new(stream_id);
    stream
        .validate()
        .map_err(|e| Problem::invalid(e.to_string()))?;
    let store = app.store();
    let version = store
        .stream_version(&stream)
        .await
        .map_err(|e| Problem::from_store(&e, request))?
        .ok_or_else(|| Problem::not_found(format!("no event in stream `{stream}`")))?;
    let from = query.from.unwrap_or(1).max(1);
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let events = store
        .read_stream(&stream, from, limit)
        .await
        .map_err(|e| Problem::from_store(&e, request))?;
    let next = events
        .last()
        .map(|e| e.stream_version + 1)
        .filter(|&n| n <= version);
    Ok(Json(StreamEvents {
        stream_id: stream.as_str().to_owned(),
        version,
        events: events.into_iter().map(StreamEvent::from).collect(),
        next,
    }))
}

/// Every event handler, projection and process manager the app runs.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Handlers {
    /// In the order they were registered.
    pub handlers: Vec<HandlerReport>,
}

/// What one handler is doing.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HandlerReport {
    /// Its durable name.
    pub name: String,
    /// `starting`, `running`, `idle`, `retrying`, `stopped` or `shut_down`.
    pub state: String,
    /// The attempt that failed, while `retrying`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Every event up to this global position is handled.
    pub position: u64,
    /// The last position saved as its checkpoint.
    pub checkpoint: u64,
    /// How far behind the newest event it is, in global positions.
    pub lag: u64,
    /// Events handled since the app started.
    pub handled: u64,
    /// Events skipped after failing, since the app started.
    pub skipped: u64,
    /// The last failure, kept after a later success.
    pub last_error: Option<HandlerFailureReport>,
}

/// A handler's last failure.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HandlerFailureReport {
    /// The position of the event it failed on.
    pub position: u64,
    /// The error and its causes.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<HandlerStatus> for HandlerReport {
    fn from(s: HandlerStatus) -> Self {
        let (state, attempt) = match s.state {
            HandlerState::Starting => ("starting", None),
            HandlerState::Running => ("running", None),
            HandlerState::Idle => ("idle", None),
            HandlerState::Retrying { attempt } => ("retrying", Some(attempt)),
            HandlerState::Stopped => ("stopped", None),
            HandlerState::ShutDown => ("shut_down", None),
        };
        Self {
            name: s.name.to_owned(),
            state: state.to_owned(),
            attempt,
            position: s.position,
            checkpoint: s.checkpoint,
            lag: s.lag,
            handled: s.handled,
            skipped: s.skipped,
            last_error: s.last_error.map(|f| HandlerFailureReport {
                position: f.position,
                message: f.message,
                at: f.at,
            }),
        }
    }
}

/// Each handler's state, position, lag behind the store and last error.
#[utoipa::path(
    get,
    path = "/handlers",
    tag = "operations",
    operation_id = "handler_status",
    responses((status = 200, description = "Every handler the app runs", body = Handlers)),
)]
pub(crate) async fn handler_status(State(app): State<App>) -> Json<Handlers> {
    let handlers = app.handler_status().await;
    Json(Handlers {
        handlers: handlers.into_iter().map(HandlerReport::from).collect(),
    })
}
