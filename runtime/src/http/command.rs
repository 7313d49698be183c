//! A command as a POST endpoint: the body (and path) in, [`CommandAccepted`]
//! or a problem out.

use super::problem::{DomainProblem, Problem};
use super::request::{BodyLimit, RequestId};
use crate::aggregate::{Command, Event, Handles};
use crate::app::{App, DispatchError, Dispatched};
use axum::extract::{FromRef, FromRequestParts, Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use uuid::Uuid;

/// How one command is served: its success status, a `Location`, how long it
/// waits for read models, and its OpenAPI summary. Given to
/// [`Api::command_with`](super::Api::command_with).
///
/// ```
/// # use annals::prelude::*;
/// use annals::http::CommandEndpoint;
/// # #[event] pub enum GadgetEvent { GadgetOpened }
/// # #[command(aggregate = Gadget)] #[derive(utoipa::ToSchema)] pub struct OpenGadget { #[id] pub id: String }
/// # #[aggregate(events = GadgetEvent)] #[derive(Default)] pub struct Gadget;
/// # #[aggregate] impl Gadget { #[handle] fn open(&self, _c: OpenGadget) -> GadgetEvent { GadgetEvent::GadgetOpened } #[apply] fn apply(&mut self, _e: &GadgetEvent) {} }
/// let endpoint = CommandEndpoint::<OpenGadget>::new()
///     .created(|open| format!("/things/{}", open.id)) // 201 Created, Location
///     .strongly_consistent()                         // read models see it when it returns
///     .summary("Open a thing");
/// # let _ = endpoint;
/// ```
pub struct CommandEndpoint<C> {
    status: StatusCode,
    location: Option<fn(&C) -> String>,
    strongly_consistent: bool,
    wait_for: Vec<String>,
    summary: Option<String>,
    tag: Option<String>,
}

impl<C> Clone for CommandEndpoint<C> {
    fn clone(&self) -> Self {
        Self {
            status: self.status,
            location: self.location,
            strongly_consistent: self.strongly_consistent,
            wait_for: self.wait_for.clone(),
            summary: self.summary.clone(),
            tag: self.tag.clone(),
        }
    }
}

impl<C> Default for CommandEndpoint<C> {
    fn default() -> Self {
        Self {
            status: StatusCode::OK,
            location: None,
            strongly_consistent: false,
            wait_for: Vec::new(),
            summary: None,
            tag: None,
        }
    }
}

impl<C> std::fmt::Debug for CommandEndpoint<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandEndpoint")
            .field("status", &self.status)
            .field("location", &self.location.is_some())
            .field("strongly_consistent", &self.strongly_consistent)
            .field("wait_for", &self.wait_for)
            .finish_non_exhaustive()
    }
}

impl<C> CommandEndpoint<C> {
    /// 200 OK with a [`CommandAccepted`] body, no waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `status` on success (e.g. 202 Accepted for a command whose
    /// effect follows asynchronously).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Answers 201 Created with a `Location` made from the command.
    pub fn created(mut self, location: fn(&C) -> String) -> Self {
        self.status = StatusCode::CREATED;
        self.location = Some(location);
        self
    }

    /// Sets a `Location` made from the command, keeping the status.
    pub fn location(mut self, location: fn(&C) -> String) -> Self {
        self.location = Some(location);
        self
    }

    /// Answers only once every strongly consistent handler has handled the
    /// command's events ([`DispatchOptions::strongly_consistent`](crate::DispatchOptions::strongly_consistent)), so a
    /// read right after sees them. If one has not within its timeout, the
    /// answer is 202 Accepted: the events were stored.
    pub fn strongly_consistent(mut self) -> Self {
        self.strongly_consistent = true;
        self
    }

    /// Answers only once handler `name` has handled the command's events
    /// ([`DispatchOptions::wait_for_handler`](crate::DispatchOptions::wait_for_handler)); 202 Accepted past its timeout.
    pub fn wait_for_handler(mut self, name: impl Into<String>) -> Self {
        self.wait_for.push(name.into());
        self
    }

    /// The operation's summary in the OpenAPI document (default: the
    /// command's doc comment, through its schema).
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// The operation's tag in the OpenAPI document (default: the aggregate's type name).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    pub(crate) fn success_status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn summary_text(&self) -> Option<&str> {
        self.summary.as_deref()
    }

    pub(crate) fn tag_text(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub(crate) fn has_location(&self) -> bool {
        self.location.is_some()
    }

    pub(crate) fn waits(&self) -> bool {
        self.strongly_consistent || !self.wait_for.is_empty()
    }
}

/// What a command endpoint answers on success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandAccepted {
    /// The command's name.
    pub command: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The aggregate's stream (`GET /streams/{stream_id}/events`).
    pub stream_id: String,
    /// The aggregate's version after the command (also the `ETag`).
    pub version: u64,
    /// The global position of the command's last event; `null` when it
    /// recorded none.
    pub position: Option<u64>,
    /// The events recorded, in order: type name and version.
    pub events: Vec<RecordedType>,
    /// The command's id, the causation id of its events (unknown in a 202
    /// after waiting, unless the request gave an `Idempotency-Key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<Uuid>,
    /// The correlation id of its events: the request id.
    pub correlation_id: Uuid,
    /// Set when the command waited for handlers that had not caught up in
    /// time (status 202): the events were stored; read again later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// An event's type name and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordedType {
    /// The stable type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The schema version.
    pub version: u32,
}

/// A command call, however it came (an HTTP request, a WebSocket
/// message): everything [`execute`] needs besides the App and the endpoint.
pub(crate) struct CommandCall {
    /// The request's (or message's) id: the events' correlation id.
    pub(crate) request_id: RequestId,
    /// The command's fields, from the body.
    pub(crate) fields: Map<String, Value>,
    /// The command's fields from the route's path.
    pub(crate) params: Vec<(String, String)>,
    /// Run only at this version (`If-Match`).
    pub(crate) if_match: Option<u64>,
    /// The command's id (`Idempotency-Key`).
    pub(crate) idempotency_key: Option<Uuid>,
}

/// A command that was run: the status to answer, the body and a `Location`.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) accepted: CommandAccepted,
    pub(crate) location: Option<String>,
}

/// Runs one exposed command from a [`CommandCall`], type-erased: how the
/// WebSocket finds a command by name. The same [`execute`] as the HTTP route.
pub(crate) type CommandRunner =
    Arc<dyn Fn(App, CommandCall) -> BoxFuture<'static, Result<Answer, Problem>> + Send + Sync>;

/// The runner of command `C` as `endpoint` says.
pub(crate) fn runner<C>(endpoint: Arc<CommandEndpoint<C>>) -> CommandRunner
where
    C: Command + DeserializeOwned,
    C::Aggregate: Handles<C>,
    <C::Aggregate as Handles<C>>::Error: DomainProblem,
{
    Arc::new(move |app, call| {
        let endpoint = endpoint.clone();
        Box::pin(async move { execute::<C>(app, &endpoint, call).await })
    })
}

/// The route of command `C` in state `S`.
pub(crate) fn route<C, S>(endpoint: Arc<CommandEndpoint<C>>) -> axum::routing::MethodRouter<S>
where
    C: Command + DeserializeOwned,
    C::Aggregate: Handles<C>,
    <C::Aggregate as Handles<C>>::Error: DomainProblem,
    App: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    axum::routing::post(
        move |axum::extract::State(state): axum::extract::State<S>, request: Request| {
            let endpoint = endpoint.clone();
            async move { run::<C>(App::from_ref(&state), &endpoint, request).await }
        },
    )
}

async fn run<C>(app: App, endpoint: &CommandEndpoint<C>, request: Request) -> Response
where
    C: Command + DeserializeOwned,
    C::Aggregate: Handles<C>,
    <C::Aggregate as Handles<C>>::Error: DomainProblem,
{
    let (mut parts, body) = request.into_parts();
    let limit = parts
        .extensions
        .get::<BodyLimit>()
        .map_or(super::DEFAULT_BODY_LIMIT, |l| l.0);
    let request_id = match RequestId::from_request_parts(&mut parts, &()).await {
        Ok(id) => id,
        Err(never) => match never {},
    };
    let params: Vec<(String, String)> =
        match Option::<Path<Vec<(String, String)>>>::from_request_parts(&mut parts, &()).await {
            Ok(found) => found.map(|Path(p)| p).unwrap_or_default(),
            Err(rejection) => return Problem::invalid(rejection.body_text()).into_response(),
        };
    let call = async {
        let bytes = read_body(body, limit).await?;
        Ok::<_, Problem>(CommandCall {
            request_id,
            fields: body_fields(&parts.headers, &bytes)?,
            params,
            idempotency_key: idempotency_key(&parts.headers)?,
            if_match: if_match(&parts.headers)?,
        })
    };
    let answer = match call.await {
        Ok(call) => execute::<C>(app, endpoint, call).await,
        Err(problem) => Err(problem),
    };
    match answer {
        Ok(answer) => respond(answer),
        Err(problem) => problem.into_response(),
    }
}

/// Decodes and dispatches one command: the one path of every transport.
pub(crate) async fn execute<C>(
    app: App,
    endpoint: &CommandEndpoint<C>,
    call: CommandCall,
) -> Result<Answer, Problem>
where
    C: Command + DeserializeOwned,
    C::Aggregate: Handles<C>,
    <C::Aggregate as Handles<C>>::Error: DomainProblem,
{
    let CommandCall {
        request_id,
        fields,
        params,
        if_match,
        idempotency_key,
    } = call;
    let command = decode_fields::<C>(fields, params)?;
    let mut options = request_id.dispatch_options();
    if let Some(key) = idempotency_key {
        options = options.command_id(key);
    }
    if let Some(version) = if_match {
        options = options.expected_version(version);
    }
    if endpoint.strongly_consistent {
        options = options.strongly_consistent();
    }
    for name in &endpoint.wait_for {
        options = options.wait_for_handler(name.clone());
    }
    let location = endpoint.location.map(|make| make(&command));
    let aggregate_id = command.aggregate_id().to_string();
    match app.dispatch_with(command, options).await {
        Ok(done) => Ok(Answer {
            status: endpoint.status,
            accepted: accepted::<C>(aggregate_id, &done),
            location,
        }),
        Err(DispatchError::NotConsistent {
            stream,
            version,
            position,
            handler,
            reason,
        }) => {
            let pending = format!("handler `{handler}` {reason}");
            let accepted = CommandAccepted {
                command: C::NAME.to_owned(),
                aggregate_id,
                stream_id: stream.as_str().to_owned(),
                version,
                position: Some(position),
                events: Vec::new(),
                command_id: idempotency_key,
                correlation_id: request_id.0,
                pending: Some(pending),
            };
            Ok(Answer {
                status: StatusCode::ACCEPTED,
                accepted,
                location,
            })
        }
        Err(error) => Err(Problem::from_dispatch(&error, request_id)),
    }
}

fn accepted<C: Command>(aggregate_id: String, done: &Dispatched<C::Aggregate>) -> CommandAccepted {
    CommandAccepted {
        command: C::NAME.to_owned(),
        aggregate_id,
        stream_id: done.stream_id.as_str().to_owned(),
        version: done.version,
        position: done.positions.map(|(_, last)| last),
        events: done
            .events
            .iter()
            .map(|e| RecordedType {
                event_type: e.event_type().to_owned(),
                version: e.event_version(),
            })
            .collect(),
        command_id: Some(done.command_id),
        correlation_id: done.correlation_id,
        pending: None,
    }
}

fn respond(
    Answer {
        status,
        accepted,
        location,
    }: Answer,
) -> Response {
    let etag = format!("\"{}\"", accepted.version);
    let mut response = (status, axum::Json(accepted)).into_response();
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// The body, up to `limit` bytes: 413 past it.
pub(super) async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, Problem> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(error) if is_length_limit(&error) => Err(Problem::too_large(limit)),
        Err(error) => Err(Problem::malformed(format!(
            "the body could not be read: {error}"
        ))),
    }
}

/// A JSON body for a route of your own, whose rejections are problems as a
/// command endpoint's are: 400 `malformed-body` with serde's message, 413
/// over the [body limit](super::Api::body_limit), 415 for a body that is
/// not JSON. An empty body reads as `{}`.
///
/// ```
/// use annals::http::JsonBody;
///
/// #[derive(serde::Deserialize)]
/// struct Search { text: String }
///
/// async fn search(JsonBody(search): JsonBody<Search>) -> String {
///     search.text
/// }
/// # let _ = axum::Router::<()>::new().route("/search", axum::routing::post(search));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map_or(super::DEFAULT_BODY_LIMIT, |l| l.0);
        let (parts, body) = request.into_parts();
        let bytes = read_body(body, limit).await?;
        decode(&parts.headers, &bytes, Vec::new()).map(JsonBody)
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `If-Match: "3"` (or `W/"3"`, or `3`): the command runs only at that
/// version; `0` means the aggregate must not exist yet.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse::<u64>().map(Some).map_err(|_| {
        Problem::invalid(format!(
            "If-Match must be the aggregate's version as an entity tag, e.g. \"3\"; got `{text}`"
        ))
    })
}

/// The header naming a command's id, so that a retried request records
/// nothing twice.
pub const IDEMPOTENCY_KEY: header::HeaderName = header::HeaderName::from_static("idempotency-key");

/// `Idempotency-Key: <uuid>`: the command's id. A request repeated with the
/// same key (a client retrying after a timeout) records nothing and is
/// answered 409 `duplicate-command`.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<Uuid>, Problem> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    Uuid::parse_str(text)
        .map(Some)
        .map_err(|_| Problem::invalid(format!("Idempotency-Key must be a UUID; got `{text}`")))
}

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
}

/// The command from the body's JSON object and the path's parameters.
pub(crate) fn decode<C: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    params: Vec<(String, String)>,
) -> Result<C, Problem> {
    decode_fields(body_fields(headers, body)?, params)
}

/// The body's JSON object (an empty body is `{}`).
fn body_fields(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Map::new())
    } else if !is_json(headers) {
        Err(Problem::unsupported_media_type())
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(Problem::malformed("the body must be a JSON object")),
            Err(error) => Err(Problem::malformed(error.to_string())),
        }
    }
}

/// The command from its fields and the path's parameters.
pub(crate) fn decode_fields<C: DeserializeOwned>(
    mut fields: Map<String, Value>,
    params: Vec<(String, String)>,
) -> Result<C, Problem> {
    let mut entries: Vec<(String, Field)> = Vec::with_capacity(fields.len() + params.len());
    for (name, value) in params {
        if let Some(given) = fields.remove(&name) {
            let same = match &given {
                Value::String(s) => *s == value,
                Value::Number(n) => n.to_string() == value,
                Value::Bool(b) => b.to_string() == value,
                _ => false,
            };
            if !same {
                return Err(Problem::malformed(format!(
                    "`{name}` is `{value}` in the path but {given} in the body; leave it out of the body"
                )));
            }
        }
        entries.push((name, Field::Path(value)));
    }
    entries.extend(fields.into_iter().map(|(k, v)| (k, Field::Json(v))));
    let deserializer = de::value::MapDeserializer::<_, serde_json::Error>::new(entries.into_iter());
    C::deserialize(deserializer).map_err(|e| Problem::malformed(e.to_string()))
}

/// A command field: from the body's JSON, or a path parameter, which is
/// text that reads as the number, boolean or string the field wants.
enum Field {
    Json(Value),
    Path(String),
}

impl<'de> IntoDeserializer<'de, serde_json::Error> for Field {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parsed {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
            match self {
                Field::Json(value) => value.$method(visitor),
                Field::Path(text) => match text.parse::<$ty>() {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => Err(de::Error::invalid_value(de::Unexpected::Str(&text), &visitor)),
                },
            }
        }
    )*};
}

macro_rules! as_text {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
            match self {
                Field::Json(value) => value.$method(visitor),
                Field::Path(text) => visitor.visit_string(text),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Field {
    type Error = serde_json::Error;

    as_text!(
        deserialize_any,
        deserialize_str,
        deserialize_string,
        deserialize_identifier,
        deserialize_char,
    );

    parsed!(
        deserialize_bool => visit_bool: bool,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_option(visitor),
            path => visitor.visit_some(path),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_newtype_struct(name, visitor),
            path => visitor.visit_newtype_struct(path),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_enum(name, variants, visitor),
            Field::Path(text) => de::value::StringDeserializer::<serde_json::Error>::new(text)
                .deserialize_enum(name, variants, visitor),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_unit(visitor),
            Field::Path(text) => Err(de::Error::invalid_type(
                de::Unexpected::Str(&text),
                &visitor,
            )),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_unit_struct(name, visitor),
            path => path.deserialize_unit(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_bytes(visitor),
            Field::Path(text) => visitor.visit_string(text),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_seq(visitor),
            Field::Path(text) => Err(de::Error::invalid_type(
                de::Unexpected::Str(&text),
                &visitor,
            )),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_tuple(len, visitor),
            path => path.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_tuple_struct(name, len, visitor),
            path => path.deserialize_seq(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_map(visitor),
            Field::Path(text) => Err(de::Error::invalid_type(
                de::Unexpected::Str(&text),
                &visitor,
            )),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_struct(name, fields, visitor),
            path => path.deserialize_map(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Field::Json(value) => value.deserialize_ignored_any(visitor),
            Field::Path(_) => visitor.visit_unit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Cmd {
        id: u32,
        name: String,
        amount: Option<u64>,
        flag: bool,
        account: Uuid,
    }

    fn json() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers
    }

    #[test]
    fn path_parameters_read_as_the_types_the_fields_want() {
        let account = Uuid::now_v7();
        let cmd: Cmd = decode(
            &json(),
            br#"{"name": "x"}"#,
            vec![
                ("id".into(), "7".into()),
                ("amount".into(), "12".into()),
                ("flag".into(), "true".into()),
                ("account".into(), account.to_string()),
            ],
        )
        .unwrap();
        assert_eq!(
            cmd,
            Cmd {
                id: 7,
                name: "x".into(),
                amount: Some(12),
                flag: true,
                account
            }
        );
    }

    #[test]
    fn a_bad_path_parameter_or_body_is_serdes_message() {
        let bad = decode::<Cmd>(
            &json(),
            br#"{"name": "x", "flag": false, "account": "0190a000-0000-7000-8000-000000000000"}"#,
            vec![("id".into(), "seven".into())],
        )
        .unwrap_err();
        assert_eq!(bad.status, 400);
        assert_eq!(
            bad.detail.as_deref(),
            Some("invalid value: string \"seven\", expected u32")
        );
        let syntax = decode::<Cmd>(&json(), b"{\"name\": ", vec![]).unwrap_err();
        assert_eq!(
            syntax.detail.as_deref(),
            Some("EOF while parsing a value at line 1 column 9")
        );
        let missing = decode::<Cmd>(&json(), b"{}", vec![]).unwrap_err();
        assert_eq!(missing.detail.as_deref(), Some("missing field `id`"));
    }

    #[test]
    fn a_field_given_twice_must_agree() {
        let body = br#"{"id": 8, "name": "x", "flag": true, "account": "0190a000-0000-7000-8000-000000000000"}"#;
        let clash = decode::<Cmd>(&json(), body, vec![("id".into(), "7".into())]).unwrap_err();
        assert!(
            clash
                .detail
                .as_deref()
                .unwrap()
                .starts_with("`id` is `7` in the path but 8"),
            "{clash:?}"
        );
        let same = decode::<Cmd>(&json(), body, vec![("id".into(), "8".into())]).unwrap();
        assert_eq!(same.id, 8);
    }

    #[test]
    fn a_body_must_be_a_json_object_sent_as_json() {
        let form = decode::<Cmd>(&HeaderMap::new(), b"id=7", vec![]).unwrap_err();
        assert_eq!(form.status, 415);
        let array = decode::<Cmd>(&json(), b"[1]", vec![]).unwrap_err();
        assert_eq!(
            array.detail.as_deref(),
            Some("the body must be a JSON object")
        );
    }

    #[test]
    fn if_match_takes_an_entity_tag_of_a_version() {
        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers).unwrap(), None);
        for (given, version) in [("\"3\"", 3), ("W/\"4\"", 4), ("5", 5)] {
            headers.insert(header::IF_MATCH, HeaderValue::from_static(given));
            assert_eq!(if_match(&headers).unwrap(), Some(version));
        }
        headers.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(if_match(&headers).unwrap_err().status, 400);
    }
}
