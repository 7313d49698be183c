//! Errors as `application/problem+json` (RFC 9457), and how each failure of
//! a command or a read maps to one.

use super::request::RequestId;
use crate::app::{DispatchError, LoadError};
use crate::store::{ExpectedVersion, StoreError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::convert::Infallible;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `type` URIs of the problems Annals itself reports. Stable: clients
/// may match on them. A domain error chooses its own
/// ([`DomainProblem::problem_type`]).
pub mod types {
    /// 400: the body is not JSON, not an object, or does not fit the
    /// command's fields (`detail` is serde's message).
    pub const MALFORMED_BODY: &str = "urn:annals:problem:malformed-body";
    /// 400: a header, query or path parameter has a value that cannot be
    /// used (an `If-Match` that is not a version, a stream id no store can
    /// hold, a `limit` that is not a number).
    pub const INVALID_REQUEST: &str = "urn:annals:problem:invalid-request";
    /// 404: no route, aggregate or resource at that URL.
    pub const NOT_FOUND: &str = "urn:annals:problem:not-found";
    /// 409: the aggregate was not at the version the request expected
    /// (`If-Match`), or other writers kept changing it. Members
    /// `expected_version` and `actual_version` (`0`: no events yet).
    pub const VERSION_CONFLICT: &str = "urn:annals:problem:version-conflict";
    /// 409: a command with this id was recorded before; nothing was written.
    pub const DUPLICATE_COMMAND: &str = "urn:annals:problem:duplicate-command";
    /// 413: the body is larger than the API's limit, refused before parsing.
    /// Member `limit` (bytes).
    pub const BODY_TOO_LARGE: &str = "urn:annals:problem:body-too-large";
    /// 415: a body that is not `application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "urn:annals:problem:unsupported-media-type";
    /// 422: the default type of a domain refusal whose error does not
    /// choose one.
    pub const REFUSED: &str = "urn:annals:problem:refused";
    /// 422: a middleware refused the command. Member `middleware`.
    pub const REJECTED: &str = "urn:annals:problem:rejected";
    /// 503: the event store cannot be reached (or is shut down); retry
    /// later (`Retry-After`).
    pub const STORE_UNAVAILABLE: &str = "urn:annals:problem:store-unavailable";
    /// 500: anything else. The body says nothing of the cause; the server's
    /// log has it under the request id.
    pub const INTERNAL: &str = "urn:annals:problem:internal";

    // JSON documents (`Api::documents`, features `http` and `documents`).
    /// 409: a document with this id exists, or existed.
    pub const DOCUMENT_EXISTS: &str = "urn:annals:problem:document-exists";
    /// 422: the resulting document is not a JSON object or does not match
    /// its kind's JSON Schema; nothing was stored. Member `errors`: each
    /// violation's `instance_path` (a JSON Pointer) and `message`.
    pub const SCHEMA_VIOLATION: &str = "urn:annals:problem:schema-violation";
    /// 409: a `test` operation of the JSON Patch failed: the document is not
    /// what the client assumed. Members `operation` (its index) and `path`.
    pub const PATCH_TEST_FAILED: &str = "urn:annals:problem:patch-test-failed";
    /// 422: an operation of the JSON Patch cannot apply to the document (a
    /// path that does not exist, an index out of range). Members
    /// `operation` and `path`.
    pub const PATCH_FAILED: &str = "urn:annals:problem:patch-failed";
}

/// An RFC 9457 problem: what every error response of [`annals::http`](crate::http) carries.
///
/// ```
/// use annals::http::Problem;
/// use axum::http::StatusCode;
///
/// let problem = Problem::new(StatusCode::NOT_FOUND)
///     .with_type("urn:bank:problem:no-account", "No such account")
///     .with_detail("no account 42")
///     .with("account_id", 42);
/// let json = serde_json::to_value(&problem).unwrap();
/// assert_eq!(json["type"], "urn:bank:problem:no-account");
/// assert_eq!(json["status"], 404);
/// assert_eq!(json["account_id"], 42);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; stable, for clients to match on.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem, the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Extension members, and `instance` (a URI naming this occurrence)
    /// when there is one ([`with_instance`](Self::with_instance)).
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    /// A problem of type `about:blank` whose title is the status's reason phrase.
    pub fn new(status: StatusCode) -> Self {
        Self {
            problem_type: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: None,
            extensions: Map::new(),
        }
    }

    /// Sets the type URI and its title.
    pub fn with_type(mut self, problem_type: impl Into<String>, title: impl Into<String>) -> Self {
        self.problem_type = problem_type.into();
        self.title = title.into();
        self
    }

    /// Sets the detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the standard member `instance`, a URI naming this occurrence.
    pub fn with_instance(self, instance: impl Into<String>) -> Self {
        self.with("instance", instance.into())
    }

    /// Adds an extension member.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.into(), value.into());
        self
    }

    /// The status as a [`StatusCode`] (500 for a number that is not one).
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 400 `malformed-body`: the body does not fit (serde's message as detail).
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST)
            .with_type(types::MALFORMED_BODY, "Malformed request body")
            .with_detail(detail)
    }

    /// 400 `invalid-request`: a header, query or path parameter that cannot be used.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST)
            .with_type(types::INVALID_REQUEST, "Invalid request")
            .with_detail(detail)
    }

    /// 404 `not-found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND)
            .with_type(types::NOT_FOUND, "Not found")
            .with_detail(detail)
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE)
            .with_type(types::BODY_TOO_LARGE, "Request body too large")
            .with_detail(format!("the body is larger than {limit} bytes"))
            .with("limit", limit)
    }

    pub(crate) fn unsupported_media_type() -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .with_type(types::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
            .with_detail("send the body as JSON, with `Content-Type: application/json`")
    }

    /// 503 `store-unavailable`, with `Retry-After`: a database the request
    /// needs cannot be reached now.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_type(types::STORE_UNAVAILABLE, "Event store unavailable")
            .with_detail(detail)
    }

    /// 500 `internal`, saying nothing of `error`: that is logged (at
    /// `error`, with its causes) under the request id, which the detail names.
    pub fn internal(error: &(dyn std::error::Error + 'static), request: RequestId) -> Self {
        let request = request.0;
        tracing::error!(request_id = %request, error = %chain(error), "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR)
            .with_type(types::INTERNAL, "Internal server error")
            .with_detail(format!(
                "the server failed; its log has the cause under request id {request}"
            ))
    }

    /// A store failure: 503 when the store cannot be reached or is shut
    /// down ([`StoreError::Unavailable`], [`StoreError::Closed`]), 400 for a
    /// stream id no store can hold, else as [`internal`](Self::internal).
    pub fn from_store(error: &StoreError, request: RequestId) -> Self {
        match error {
            StoreError::Unavailable(_) | StoreError::Closed { .. } => {
                tracing::warn!(request_id = %request, error = %chain(error), "event store unavailable");
                Self::unavailable(error.to_string())
            }
            StoreError::InvalidStreamId(invalid) => Self::invalid(invalid.to_string()),
            other => Self::internal(other, request),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry = status == StatusCode::SERVICE_UNAVAILABLE;
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// How a domain error reads over HTTP: its status (default 422), a stable
/// type URI and title, and extension members.
///
/// A command can be exposed over HTTP only if its handler's error
/// implements it; the defaults need no more than an empty impl. `detail` is
/// always the error's `Display`.
///
/// ```
/// use annals::http::DomainProblem;
/// use axum::http::StatusCode;
/// use std::borrow::Cow;
///
/// #[derive(Debug, thiserror::Error)]
/// pub enum AccountError {
///     #[error("no such account")]
///     NotOpen,
///     #[error("insufficient funds: the balance is {balance}")]
///     InsufficientFunds { balance: u64 },
/// }
///
/// impl DomainProblem for AccountError {
///     fn status(&self) -> StatusCode {
///         match self {
///             Self::NotOpen => StatusCode::NOT_FOUND,
///             _ => StatusCode::UNPROCESSABLE_ENTITY,
///         }
///     }
///     fn problem_type(&self) -> Cow<'static, str> {
///         match self {
///             Self::NotOpen => "urn:bank:problem:not-open".into(),
///             Self::InsufficientFunds { .. } => "urn:bank:problem:insufficient-funds".into(),
///         }
///     }
///     fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
///         match self {
///             Self::InsufficientFunds { balance } => {
///                 [("balance".to_owned(), (*balance).into())].into_iter().collect()
///             }
///             _ => Default::default(),
///         }
///     }
/// }
///
/// /// An error that takes the defaults: 422, `urn:annals:problem:refused`.
/// #[derive(Debug, thiserror::Error)]
/// #[error("not today")]
/// pub struct NotToday;
/// impl DomainProblem for NotToday {}
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say how it reads over HTTP",
    label = "the handler's domain error",
    note = "add `impl annals::http::DomainProblem for {Self} {{}}` (a 422 of type `urn:annals:problem:refused`), or override its `status` and `problem_type`"
)]
pub trait DomainProblem: std::error::Error {
    /// The response's status (default 422 Unprocessable Content).
    fn status(&self) -> StatusCode {
        StatusCode::UNPROCESSABLE_ENTITY
    }

    /// A URI naming the kind of refusal, stable for clients to match on
    /// (default [`types::REFUSED`]).
    fn problem_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(types::REFUSED)
    }

    /// A short summary of the kind of refusal (default "Command refused").
    fn title(&self) -> Cow<'static, str> {
        Cow::Borrowed("Command refused")
    }

    /// Extension members (default none).
    fn extensions(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// A handler that cannot fail.
impl DomainProblem for Infallible {}

impl Problem {
    /// The problem of a failed dispatch, as the [module docs](super)
    /// tabulate: the domain error's own ([`DomainProblem`]), 409 for a
    /// version conflict or a repeated command, 400 for an id no store can
    /// hold, 503 for an unavailable store, 500 for the rest.
    /// ([`DispatchError::NotConsistent`] is not a failure: the events were
    /// stored; the command endpoints answer it with 202.)
    pub fn from_dispatch<E: DomainProblem + 'static>(
        error: &DispatchError<E>,
        request: RequestId,
    ) -> Problem {
        dispatch_problem(error, request)
    }
}

fn dispatch_problem<E: DomainProblem + 'static>(
    error: &DispatchError<E>,
    request: RequestId,
) -> Problem {
    match error {
        DispatchError::Domain(refusal) => {
            let mut problem = Problem::new(refusal.status())
                .with_type(refusal.problem_type(), refusal.title())
                .with_detail(refusal.to_string());
            problem.extensions = refusal.extensions();
            problem
        }
        DispatchError::Conflict {
            stream,
            expected,
            actual,
            ..
        } => Problem::new(StatusCode::CONFLICT)
            .with_type(types::VERSION_CONFLICT, "Version conflict")
            .with_detail(error.to_string())
            .with("stream_id", stream.as_str())
            .with("expected_version", expected_number(*expected))
            .with("actual_version", actual.unwrap_or(0)),
        DispatchError::DuplicateCommand { command_id, .. } => Problem::new(StatusCode::CONFLICT)
            .with_type(types::DUPLICATE_COMMAND, "Command already recorded")
            .with_detail(error.to_string())
            .with("command_id", command_id.to_string()),
        DispatchError::InvalidId { source, .. } => Problem::invalid(format!("{error}: {source}")),
        DispatchError::Rejected { middleware, source } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
                .with_type(types::REJECTED, "Command rejected")
                .with_detail(source.to_string())
                .with("middleware", *middleware)
        }
        DispatchError::Store(store) | DispatchError::Load(LoadError::Store(store)) => {
            Problem::from_store(store, request)
        }
        DispatchError::Load(LoadError::InvalidId(invalid)) => Problem::invalid(invalid.to_string()),
        other => Problem::internal(other, request),
    }
}

/// An expected version as a number: `0` for "no stream", `null` for "any".
fn expected_number(expected: ExpectedVersion) -> Value {
    match expected {
        ExpectedVersion::Exact(n) => n.into(),
        ExpectedVersion::NoStream => 0.into(),
        ExpectedVersion::Any | ExpectedVersion::StreamExists => Value::Null,
    }
}

/// An error and its causes, `": "`-separated, for the log.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}
