//! A kind of JSON document as routes: `POST /{kind}`, and `GET`, `PUT`,
//! `PATCH`, `DELETE /{kind}/{id}` (see [`Api::documents`](super::Api::documents)).

use super::command::{idempotency_key, if_match, is_json, read_body};
use super::problem::{DomainProblem, Problem, types};
use super::request::{BodyLimit, RequestId};
use crate::app::{App, DispatchOptions};
use crate::document::{
    DOCUMENTS_PROJECTION, DocumentCommand, DocumentError, DocumentKind, DocumentProjectionError,
    DocumentReadModel, Patch,
};
use axum::extract::{FromRef, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::time::Duration;

/// The media type of a `PATCH` body (RFC 6902).
pub const JSON_PATCH: &str = "application/json-patch+json";

impl DomainProblem for DocumentError {
    /// 404 for a missing or deleted document; 409 for a create of an id
    /// that exists and for a patch whose `test` failed (the document is
    /// not in the state the client assumed, as a stale `If-Match`; RFC
    /// 5789's "conflicting state"); 422 for a document that fails its
    /// schema and for a patch that cannot apply to the document at all
    /// (RFC 5789's "unprocessable request").
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::AlreadyExists { .. } | Self::TestFailed { .. } => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn problem_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::NotFound { .. } => types::NOT_FOUND,
            Self::AlreadyExists { .. } => types::DOCUMENT_EXISTS,
            Self::Invalid { .. } => types::SCHEMA_VIOLATION,
            Self::TestFailed { .. } => types::PATCH_TEST_FAILED,
            _ => types::PATCH_FAILED,
        })
    }

    fn title(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::NotFound { .. } => "Not found",
            Self::AlreadyExists { .. } => "Document exists",
            Self::Invalid { .. } => "Document does not match its schema",
            Self::TestFailed { .. } => "Patch test failed",
            _ => "Patch cannot be applied",
        })
    }

    fn extensions(&self) -> Map<String, Value> {
        let mut members = Map::new();
        match self {
            Self::Invalid { errors, .. } => {
                members.insert(
                    "errors".into(),
                    serde_json::to_value(errors).unwrap_or_default(),
                );
            }
            Self::TestFailed { operation, path }
            | Self::PatchFailed {
                operation, path, ..
            } => {
                members.insert("operation".into(), (*operation).into());
                members.insert("path".into(), path.clone().into());
            }
            _ => {}
        }
        members
    }
}

/// What a route needs from the router's state.
fn parts_of<S>(state: &S) -> (App, DocumentReadModel)
where
    App: FromRef<S>,
    DocumentReadModel: FromRef<S>,
{
    (App::from_ref(state), DocumentReadModel::from_ref(state))
}

/// `POST /{kind}`.
pub(crate) fn collection<S>(kind: DocumentKind) -> axum::routing::MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    App: FromRef<S>,
    DocumentReadModel: FromRef<S>,
{
    axum::routing::post(
        move |axum::extract::State(state): axum::extract::State<S>, request: Request| {
            let kind = kind.clone();
            async move {
                let (app, read) = parts_of(&state);
                create(app, read, kind, request).await
            }
        },
    )
}

/// `GET`, `PUT`, `PATCH` and `DELETE /{kind}/{id}`.
pub(crate) fn item<S>(kind: DocumentKind) -> axum::routing::MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    App: FromRef<S>,
    DocumentReadModel: FromRef<S>,
{
    let on = |method: Method, kind: DocumentKind| {
        move |axum::extract::State(state): axum::extract::State<S>, request: Request| {
            let kind = kind.clone();
            async move {
                let (app, read) = parts_of(&state);
                item_request(method, app, read, kind, request).await
            }
        }
    };
    axum::routing::get(on(Method::Get, kind.clone()))
        .put(on(Method::Put, kind.clone()))
        .patch(on(Method::Patch, kind.clone()))
        .delete(on(Method::Delete, kind))
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Put,
    Patch,
    Delete,
}

async fn request_id(parts: &mut Parts) -> RequestId {
    match RequestId::from_request_parts(parts, &()).await {
        Ok(id) => id,
        Err(never) => match never {},
    }
}

fn limit_of(parts: &Parts) -> usize {
    parts
        .extensions
        .get::<BodyLimit>()
        .map_or(super::DEFAULT_BODY_LIMIT, |l| l.0)
}

/// A document body: a JSON object sent as JSON.
async fn document_body(parts: &Parts, body: axum::body::Body) -> Result<Value, Problem> {
    let bytes = read_body(body, limit_of(parts)).await?;
    if !is_json(&parts.headers) {
        return Err(Problem::unsupported_media_type());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(document @ Value::Object(_)) => Ok(document),
        Ok(_) => Err(Problem::malformed("a document must be a JSON object")),
        Err(error) => Err(Problem::malformed(error.to_string())),
    }
}

/// A patch body: an RFC 6902 array of operations, sent as `application/json-patch+json`.
async fn patch_body(parts: &Parts, body: axum::body::Body) -> Result<Patch, Problem> {
    let bytes = read_body(body, limit_of(parts)).await?;
    let media = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media.as_deref() != Some(JSON_PATCH) {
        return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .with_type(types::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
            .with_detail(format!(
                "send the patch as an RFC 6902 JSON Patch, with `Content-Type: {JSON_PATCH}`"
            )));
    }
    serde_json::from_slice::<Patch>(&bytes)
        .map_err(|error| Problem::malformed(format!("not an RFC 6902 JSON Patch: {error}")))
}

async fn create(
    app: App,
    read: DocumentReadModel,
    kind: DocumentKind,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let request_id = request_id(&mut parts).await;
    let document = match document_body(&parts, body).await {
        Ok(document) => document,
        Err(problem) => return problem.into_response(),
    };
    // With an Idempotency-Key the key is the id, so a retried create finds
    // the document it made (409 `document-exists`) instead of making another.
    let id = match idempotency_key(&parts.headers) {
        Ok(Some(key)) => key.to_string(),
        Ok(None) => uuid::Uuid::now_v7().to_string(),
        Err(problem) => return problem.into_response(),
    };
    let location = format!("/{}/{id}", kind.name());
    let command = kind.create(id, document);
    write(
        app,
        read,
        request_id,
        command,
        None,
        StatusCode::CREATED,
        Some(location),
    )
    .await
}

async fn item_request(
    method: Method,
    app: App,
    read: DocumentReadModel,
    kind: DocumentKind,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let request_id = request_id(&mut parts).await;
    let id = match Path::<String>::from_request_parts(&mut parts, &()).await {
        Ok(Path(id)) => id,
        Err(rejection) => return Problem::invalid(rejection.body_text()).into_response(),
    };
    if let Method::Get = method {
        return get(&read, &kind, &id, request_id).await;
    }
    let expected = match if_match(&parts.headers) {
        Ok(expected) => expected,
        Err(problem) => return problem.into_response(),
    };
    let command = match method {
        Method::Put => match document_body(&parts, body).await {
            Ok(document) => kind.replace(id, document),
            Err(problem) => return problem.into_response(),
        },
        Method::Patch => match patch_body(&parts, body).await {
            Ok(patch) => kind.patch(id, patch),
            Err(problem) => return problem.into_response(),
        },
        Method::Delete | Method::Get => kind.delete(id),
    };
    write(
        app,
        read,
        request_id,
        command,
        expected,
        StatusCode::OK,
        None,
    )
    .await
}

async fn get(
    read: &DocumentReadModel,
    kind: &DocumentKind,
    id: &str,
    request: RequestId,
) -> Response {
    match read.get(kind.name(), id).await {
        Ok(Some(stored)) => {
            document_response(StatusCode::OK, stored.version, Some(&stored.document), None)
        }
        Ok(None) => {
            Problem::not_found(format!("no `{}` document `{id}`", kind.name())).into_response()
        }
        Err(DocumentProjectionError::Database(
            error @ (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed),
        )) => {
            tracing::warn!(request_id = %request, %error, "documents' database unavailable");
            Problem::unavailable("the documents' database is unavailable").into_response()
        }
        Err(error) => Problem::internal(&error, request).into_response(),
    }
}

/// How long a write waits for the read model to show it before answering
/// 202 (the write was stored).
const CONSISTENCY_TIMEOUT: Duration = Duration::from_secs(5);

/// Dispatches a write, waits until the read model shows it, and answers
/// with the document as it now is (204 once deleted).
async fn write(
    app: App,
    read: DocumentReadModel,
    request_id: RequestId,
    command: DocumentCommand,
    expected: Option<u64>,
    status: StatusCode,
    location: Option<String>,
) -> Response {
    let mut options: DispatchOptions = request_id.dispatch_options();
    if let Some(version) = expected {
        options = options.expected_version(version);
    }
    let (kind, id) = (command.kind().name().to_owned(), command.id().to_owned());
    let (done, document) = match app
        .dispatch_and_inspect(command, options, |document| document.current().cloned())
        .await
    {
        Ok(done) => done,
        Err(error) => return Problem::from_dispatch(&error, request_id).into_response(),
    };
    let position = done.positions.map_or(0, |(_, last)| last);
    let deleted = document.is_none();
    if !shown(&app, &read, &kind, &id, done.version, position, deleted).await {
        tracing::warn!(
            request_id = %request_id,
            stream = %done.stream_id,
            version = done.version,
            "the documents' read model did not show a write in time"
        );
        let body = serde_json::json!({
            "version": done.version,
            "pending": format!(
                "stored, but the read model `{DOCUMENTS_PROJECTION}` did not show it within {}s",
                CONSISTENCY_TIMEOUT.as_secs()
            ),
        });
        let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
        set_headers(&mut response, done.version, location);
        return response;
    }
    match document {
        Some(document) => document_response(status, done.version, Some(&document), location),
        None => document_response(StatusCode::NO_CONTENT, done.version, None, None),
    }
}

/// Whether the read model shows the write that made `version` (at global
/// `position`) within [`CONSISTENCY_TIMEOUT`]. This App's projection says
/// so when it runs it; else (another App holds its turn) the row itself
/// does, read again at growing intervals: either way a `GET` on any App
/// right after the answer sees the write.
async fn shown(
    app: &App,
    read: &DocumentReadModel,
    kind: &str,
    id: &str,
    version: u64,
    position: u64,
    deleted: bool,
) -> bool {
    let here = async {
        let names = [DOCUMENTS_PROJECTION];
        if app
            .wait_for_handlers(position, &names, CONSISTENCY_TIMEOUT)
            .await
            .is_ok()
        {
            return;
        }
        std::future::pending::<()>().await;
    };
    let row = async {
        let deadline = tokio::time::Instant::now() + CONSISTENCY_TIMEOUT;
        let mut pause = Duration::from_millis(5);
        loop {
            match read.get(kind, id).await {
                Ok(None) if deleted => return true,
                Ok(Some(stored)) if !deleted && stored.version >= version => return true,
                _ => {}
            }
            if tokio::time::Instant::now() + pause > deadline {
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    };
    tokio::select! {
        () = here => true,
        seen = row => seen,
    }
}

fn document_response(
    status: StatusCode,
    version: u64,
    document: Option<&Value>,
    location: Option<String>,
) -> Response {
    let mut response = match document {
        Some(document) => (status, axum::Json(document)).into_response(),
        None => status.into_response(),
    };
    set_headers(&mut response, version, location);
    response
}

fn set_headers(response: &mut Response, version: u64, location: Option<String>) {
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
}
