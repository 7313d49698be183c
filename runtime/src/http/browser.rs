//! The event browser: a listing of the store's streams (`GET /streams`)
//! and a page (`GET /browser`, with its script) that shows them, a
//! stream's events, a live tail over the WebSocket and the handlers.

use super::problem::{PROBLEM_JSON, Problem};
use super::request::RequestId;
use crate::app::App;
use crate::store::{StreamId, StreamInfo};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most streams one page of `GET /streams` holds.
pub const MAX_STREAMS_PAGE: usize = 1000;

/// The page, as served at `/browser`.
const PAGE: &str = include_str!("browser/browser.html");

/// The page's script, as served at `/browser/browser.js`.
const SCRIPT: &str = include_str!("browser/browser.js");

/// What the page may load and reach: its own script, its inline style,
/// and its own origin's HTTP and WebSocket endpoints; nothing else, so a
/// payload that slipped into the markup could neither run nor call out.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Which streams to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamsQuery {
    /// Only the streams of this category (ids starting with `"{category}-"`).
    pub category: Option<String>,
    /// Only the streams whose id sorts after this one (byte-wise): the
    /// `next` of the previous page.
    pub after: Option<String>,
    /// How many streams at most (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// One page of the store's streams, by id (byte-wise).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamList {
    /// The streams of this page.
    pub streams: Vec<StreamSummary>,
    /// The `after` of the next page; `null` when this page is the last.
    pub next: Option<String>,
}

/// A stream, as `GET /streams` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamSummary {
    /// The stream's id.
    pub stream_id: String,
    /// Its category: the part of its id before the first `-`, if any.
    pub category: Option<String>,
    /// Its version: how many events it holds.
    pub version: u64,
    /// The global position of its newest event.
    pub last_position: u64,
    /// When its first event was recorded.
    pub created_at: DateTime<Utc>,
    /// When its newest event was recorded.
    pub updated_at: DateTime<Utc>,
}

impl From<StreamInfo> for StreamSummary {
    fn from(s: StreamInfo) -> Self {
        Self {
            category: s.category().map(str::to_owned),
            stream_id: s.stream_id.as_str().to_owned(),
            version: s.version,
            last_position: s.last_position,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The store's streams, a page at a time.
#[utoipa::path(
    get,
    path = "/streams",
    tag = "operations",
    operation_id = "list_streams",
    params(StreamsQuery),
    responses(
        (status = 200, description = "A page of streams", body = StreamList),
        (status = 400, description = "A bad query or `after`", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = PROBLEM_JSON),
    ),
)]
pub(crate) async fn list_streams(
    State(app): State<App>,
    request: RequestId,
    query: Result<Query<StreamsQuery>, QueryRejection>,
) -> Result<Json<StreamList>, Problem> {
    let Query(query) = query.map_err(|e| Problem::invalid(e.body_text()))?;
    let after = query.after.map(StreamId::new);
    if let Some(after) = &after {
        after
            .validate()
            .map_err(|e| Problem::invalid(format!("`after`: {e}")))?;
    }
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_STREAMS_PAGE);
    // One more than the page tells whether another page follows.
    let mut streams = app
        .store()
        .streams(query.category.as_deref(), after.as_ref(), limit + 1)
        .await
        .map_err(|e| Problem::from_store(&e, request))?;
    let more = streams.len() > limit;
    streams.truncate(limit);
    let next = more
        .then(|| streams.last().map(|s| s.stream_id.as_str().to_owned()))
        .flatten();
    Ok(Json(StreamList {
        streams: streams.into_iter().map(StreamSummary::from).collect(),
        next,
    }))
}

/// The event browser page: streams, events, live tail and handlers.
#[utoipa::path(
    get,
    path = "/browser",
    tag = "operations",
    operation_id = "browser",
    responses((status = 200, description = "The event browser page", content_type = "text/html")),
)]
pub(crate) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// The event browser's script.
#[utoipa::path(
    get,
    path = "/browser/browser.js",
    tag = "operations",
    operation_id = "browser_script",
    responses((status = 200, description = "The event browser's script", content_type = "text/javascript")),
)]
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                HeaderName::from_static("referrer-policy"),
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
