//! What the API does around every request: its id, its span, the body
//! limit, and problem+json for every error response.

use super::problem::{PROBLEM_JSON, Problem};
use crate::app::DispatchOptions;
use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

/// The header a request id is read from and echoed in.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id: the `x-request-id` header when it is a UUID, else a
/// new uuid v7. It is echoed in the response's `x-request-id`, names the
/// request's `annals.http` span, and becomes the correlation id of the
/// events a command records.
///
/// An extractor, for routes of your own:
///
/// ```
/// use annals::App;
/// use annals::http::RequestId;
/// use axum::extract::State;
///
/// # #[derive(Clone)] struct Ping;
/// async fn ping(State(app): State<App>, request: RequestId) -> String {
///     let options = request.dispatch_options(); // correlation id = request id
///     # let _ = (app, options);
///     request.to_string()
/// }
/// # let _ = axum::Router::<App>::new().route("/ping", axum::routing::get(ping));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub Uuid);

impl RequestId {
    /// Dispatch options whose correlation id is this request's id.
    pub fn dispatch_options(self) -> DispatchOptions {
        DispatchOptions::new().correlation_id(self.0)
    }

    fn of(headers: &axum::http::HeaderMap) -> Self {
        let given = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v.trim()).ok());
        Self(given.unwrap_or_else(Uuid::now_v7))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        // Outside the API's layer (a route mounted elsewhere), read the header.
        Ok(match parts.extensions.get::<RequestId>() {
            Some(id) => *id,
            None => Self::of(&parts.headers),
        })
    }
}

/// The API's body limit, for the routes that read the body themselves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

/// The layer around every route of an [`Api`](super::Api).
pub(crate) async fn around(limit: usize, mut request: Request, next: Next) -> Response {
    let id = RequestId::of(request.headers());
    request.extensions_mut().insert(id);
    request.extensions_mut().insert(BodyLimit(limit));
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    let span = tracing::info_span!(
        "annals.http",
        method = %request.method(),
        route = %route,
        request_id = %id,
        status = tracing::field::Empty,
    );
    async move {
        let started = Instant::now();
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let response = match declared {
            // Refused before a byte of the body is read.
            Some(length) if length > limit as u64 => Problem::too_large(limit).into_response(),
            _ => next.run(request).await,
        };
        let mut response = as_problem(response, limit).await;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        tracing::debug!(
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "answered"
        );
        if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }
    .instrument(span)
    .await
}

/// An error response that is not JSON (axum's own: no route, a method not
/// allowed, an extractor's rejection in a route of the app's) becomes a
/// problem with the same status, headers and, as detail, its text.
async fn as_problem(response: Response, limit: usize) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.starts_with(PROBLEM_JSON) || v.starts_with("application/json")
        });
    if json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let problem = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::too_large(limit),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::unsupported_media_type(),
        StatusCode::NOT_FOUND => Problem::not_found(if text.is_empty() {
            "no route for this path".to_owned()
        } else {
            text
        }),
        _ if text.is_empty() => Problem::new(status),
        _ => Problem::new(status).with_detail(text),
    };
    let mut fresh = problem.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    for (name, value) in fresh.headers() {
        parts.headers.insert(name, value.clone());
    }
    *fresh.headers_mut() = parts.headers;
    fresh
}

/// The 404 of a path no route matches.
pub(crate) async fn no_route() -> Problem {
    Problem::not_found("no route for this path")
}
