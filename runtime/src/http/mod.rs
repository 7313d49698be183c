//! An HTTP JSON API over an [`App`] (feature `http`, axum 0.8): chosen
//! commands as POST endpoints, your read models as GET endpoints, errors as
//! `application/problem+json`, and an OpenAPI 3.1 document made from the
//! routes.
//!
//! An [`Api`] is a builder of an [`axum::Router`]. It serves only the
//! commands you name ([`Api::command`]): every command linked into the
//! binary is registered with the App, but exposing one is a decision. A
//! command is decoded from the body's JSON object and the route's path
//! parameters (`/accounts/{account_id}/deposits` fills the command's
//! `account_id` field), dispatched, and answered with [`CommandAccepted`].
//! Your own routes (read models, anything) are axum handlers annotated with
//! `#[utoipa::path]` and added with [`Api::routes`], so the document
//! describes every route the router serves. Their handlers take the App as
//! `State<App>`, from the router's state `S` through [`FromRef`].
//!
//! ```
//! use annals::http::{Api, DomainProblem};
//! use annals::prelude::*;
//! use axum::Json;
//! use axum::extract::{Path, State};
//!
//! #[event]
//! pub enum ClickEvent {
//!     Clicked { by: u32 },
//! }
//!
//! /// Add to a clicker.
//! #[command(aggregate = Clicker)]
//! #[derive(utoipa::ToSchema)]
//! pub struct Click {
//!     #[id]
//!     pub clicker: String,
//!     pub by: u32,
//! }
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("a clicker counts up")]
//! pub struct Zero;
//! impl DomainProblem for Zero {} // 422, type `urn:annals:problem:refused`
//!
//! #[aggregate(events = ClickEvent)]
//! #[derive(Default, Clone)]
//! pub struct Clicker {
//!     total: u64,
//! }
//!
//! #[aggregate]
//! impl Clicker {
//!     #[handle]
//!     fn increment(&self, command: Click) -> Result<ClickEvent, Zero> {
//!         if command.by == 0 {
//!             return Err(Zero);
//!         }
//!         Ok(ClickEvent::Clicked { by: command.by })
//!     }
//!
//!     #[apply]
//!     fn apply(&mut self, event: &ClickEvent) {
//!         match event {
//!             ClickEvent::Clicked { by } => self.total += u64::from(*by),
//!         }
//!     }
//! }
//!
//! /// A clicker's total, read from its aggregate.
//! #[utoipa::path(get, path = "/clickers/{clicker}", responses((status = 200, body = u64)))]
//! async fn total(State(app): State<App>, Path(clicker): Path<String>) -> Json<u64> {
//!     let (state, _) = app.load::<Clicker>(&clicker).await.expect("a readable store");
//!     Json(state.total)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = App::builder().store(MemoryStore::new()).build()?;
//! let router: axum::Router = Api::new()
//!     .title("Clickers")
//!     .command::<Click>("/clickers/{clicker}/increments")
//!     .routes(utoipa_axum::routes!(total))
//!     .stream_events()
//!     .into_router()
//!     .with_state(app);
//!
//! // Serve it: `axum::serve(tokio::net::TcpListener::bind(addr).await?, router).await?`.
//! # use tower::ServiceExt;
//! let request = axum::http::Request::post("/clickers/c-1/increments")
//!     .header("content-type", "application/json")
//!     .body(axum::body::Body::from(r#"{"by": 2}"#))?;
//! let response = router.clone().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["etag"], "\"1\"");
//! let refused = axum::http::Request::post("/clickers/c-1/increments")
//!     .header("content-type", "application/json")
//!     .body(axum::body::Body::from(r#"{"by": 0}"#))?;
//! let response = router.oneshot(refused).await?;
//! assert_eq!(response.status(), 422);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! # Ok(())
//! # }
//! ```
//!
//! # What every route does
//!
//! - **Request id.** `x-request-id`, when it is a UUID, else a new uuid v7;
//!   echoed in the response, the `request_id` of the request's
//!   `annals.http` tracing span (method, route, status), and the
//!   correlation id of every event a command records
//!   ([`RequestId`], an extractor for your routes).
//! - **Body limit.** A body over [`Api::body_limit`] (default
//!   [`DEFAULT_BODY_LIMIT`], 64 KiB) is refused with 413 before it is
//!   parsed: at once when `Content-Length` says so, else as soon as
//!   more has been read.
//! - **Errors** are `application/problem+json` ([`Problem`], RFC 9457),
//!   axum's own too (an unknown path is 404, a wrong method 405). Their
//!   `type`s are in [`types`]:
//!
//! | status | type | when |
//! |---|---|---|
//! | 400 | `malformed-body` | the body is not JSON, not an object, or does not fit the command (serde's message) |
//! | 400 | `invalid-request` | a bad `If-Match`, `Idempotency-Key`, stream id or aggregate id |
//! | 404 | `not-found` | no route; or a domain error that says so |
//! | 409 | `version-conflict` | not at the `If-Match` version, or other writers kept changing it (`expected_version`, `actual_version`) |
//! | 409 | `duplicate-command` | the `Idempotency-Key` was used before; nothing was written |
//! | 413 | `body-too-large` | the body is over the limit (`limit`) |
//! | 415 | `unsupported-media-type` | a body that is not `application/json` |
//! | 422 | the domain error's ([`DomainProblem`]) | the command was refused (`detail` is the error's message) |
//! | 422 | `rejected` | a middleware refused it |
//! | 503 | `store-unavailable` | the store cannot be reached or is shut down (`Retry-After`) |
//! | 500 | `internal` | anything else; the body names only the request id, the log has the cause |
//!
//! # A command endpoint
//!
//! `POST` with a JSON object (or no body, when the path holds every
//! field). Headers it reads: `If-Match: "<version>"` (the command runs only
//! if the aggregate is at that version, `"0"` for a new one: 409
//! otherwise; the version is in each answer's `ETag` and
//! [`CommandAccepted::version`]), `Idempotency-Key: <uuid>` (the command's
//! id: a retried request records nothing twice and gets 409
//! `duplicate-command`). On success: the endpoint's status (200, or as
//! [`CommandEndpoint`] says), `ETag`, maybe `Location`, and
//! [`CommandAccepted`]. An endpoint that waits for read models
//! ([`CommandEndpoint::strongly_consistent`]) answers 202 when they are
//! late: the events were stored.
//!
//! # The WebSocket
//!
//! [`Api::websocket`] serves `GET /ws` ([`WEBSOCKET_PATH`]): text frames of
//! one JSON object each, tagged by `type`.
//!
//! - `{"type":"command","id":"c1","command":"Deposit","body":{..},"if_match":3,"idempotency_key":"<uuid>"}`
//!   runs a command the API exposes ([`Api::command`], [`Api::command_with`],
//!   [`Api::websocket_command`]) by its registered name, through the code
//!   of its HTTP endpoint: the same decoding, options and problems. Answer:
//!   `{"type":"result","id":"c1","result":<CommandAccepted>}` or
//!   `{"type":"problem","id":"c1","problem":<Problem>}`. Each message has a
//!   new request id (the events' correlation id) and an
//!   `annals.ws.command` span.
//! - `{"type":"subscribe","id":"s1","all":true}` (or `"stream":"Account-42"`,
//!   or `"category":"Account"`), with `"after": <position> | "head"`
//!   (default 0). Answer `{"type":"subscribed","id":"s1","head":<u64>}`,
//!   then `{"type":"event","subscription":"s1","event":<LiveEvent>}` for
//!   each matching event past `after`, in position order, stored ones then
//!   live ones, none missed or repeated: the App's [live feed](crate::feed).
//!   A client that reconnects subscribes with `after` = the last position
//!   it saw.
//! - `{"type":"unsubscribe","id":"s1"}`: `{"type":"unsubscribed","id":"s1"}`,
//!   and no more of its events.
//!
//! A message that is not JSON, not of the protocol, or names a command not
//! exposed gets a 400 `problem` (its `id`, or `null`); the connection stays
//! open. Each connection queues at most [`OUTGOING_QUEUE`] messages: a
//! subscription whose event finds the queue full for
//! [`SLOW_CLIENT_GRACE`] is closed with a 429 [`LAGGED`] problem naming
//! `last_position`, the last position sent (subscribe again from there).
//! While it waits it does not take the live feed's pages: memory stays
//! bounded, and it catches up from the store if it falls behind them. A message is at most the API's
//! [body limit](Api::body_limit).

mod browser;
mod command;
#[cfg(all(feature = "documents", any(feature = "sqlite", feature = "postgres")))]
mod document;
mod operator;
mod problem;
mod request;
mod ws;

pub use browser::{MAX_STREAMS_PAGE, StreamList, StreamSummary, StreamsQuery};
pub use command::{CommandAccepted, CommandEndpoint, IDEMPOTENCY_KEY, JsonBody, RecordedType};
#[cfg(all(feature = "documents", any(feature = "sqlite", feature = "postgres")))]
pub use document::JSON_PATCH;
pub use operator::{
    EventsQuery, HandlerFailureReport, HandlerReport, Handlers, MAX_PAGE, StoredMetadata,
    StreamEvent, StreamEvents,
};
pub use problem::{DomainProblem, PROBLEM_JSON, Problem, types};
pub use request::{REQUEST_ID_HEADER, RequestId};
pub use ws::{
    COMMANDS_IN_FLIGHT, LAGGED, LiveEvent, OUTGOING_QUEUE, SLOW_CLIENT_GRACE, WEBSOCKET_PATH,
};

use crate::aggregate::{Command, Handles};
use crate::app::App;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;
use utoipa::openapi::path::{
    HttpMethod, Operation, ParameterBuilder, ParameterIn, PathItem, Paths,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required,
    ResponseBuilder,
};

/// The body limit of an [`Api`] unless set: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Where an [`Api`] serves its OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Where [`Api::browser`] serves the event browser page.
pub const BROWSER_PATH: &str = "/browser";

const STREAMS_PATH: &str = "/streams";
const STREAM_EVENTS_PATH: &str = "/streams/{stream_id}/events";
const HANDLERS_PATH: &str = "/handlers";

/// A route's methods, as [`Api::endpoints`] lists them.
pub type Methods = BTreeSet<&'static str>;

/// The routes of a method router annotated with `#[utoipa::path]`: what
/// `utoipa_axum::routes!(handler, ..)` returns.
pub type DocumentedRoutes<S> = utoipa_axum::router::UtoipaMethodRouter<S>;

/// Builds the router of an HTTP API over an [`App`]: see the [module docs](self).
///
/// `S` is the router's state; the App is taken from it with [`FromRef`]
/// (`S = App` itself, or your struct with `#[derive(FromRef)]` holding the
/// App beside, say, a read model's pool).
#[must_use]
pub struct Api<S = App> {
    router: Router<S>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
    served: BTreeMap<String, Methods>,
    body_limit: usize,
    /// The commands the WebSocket runs, by name.
    commands: ws::Commands,
    websocket: bool,
    slow_client: (usize, std::time::Duration),
    title: String,
    version: String,
    description: Option<String>,
}

impl<S> Default for Api<S>
where
    S: Clone + Send + Sync + 'static,
    App: FromRef<S>,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<S> std::fmt::Debug for Api<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("title", &self.title)
            .field("routes", &self.served)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl<S> Api<S>
where
    S: Clone + Send + Sync + 'static,
    App: FromRef<S>,
{
    /// An API with no route yet but its OpenAPI document.
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            paths: Paths::new(),
            schemas: Vec::new(),
            served: BTreeMap::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            commands: ws::Commands::new(),
            websocket: false,
            slow_client: (OUTGOING_QUEUE, SLOW_CLIENT_GRACE),
            title: "Annals API".into(),
            version: "0.1.0".into(),
            description: None,
        }
    }

    /// The document's title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The API's version, in the document.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The API's description, in the document (CommonMark).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The largest request body, in bytes (default [`DEFAULT_BODY_LIMIT`]);
    /// a larger one is refused with 413 before it is parsed. It holds for
    /// your routes' extractors (`Json`, `Bytes`) too.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Serves command `C` as `POST path`, answered with 200 OK: see
    /// [`command_with`](Self::command_with).
    pub fn command<C>(self, path: &str) -> Self
    where
        C: Command + DeserializeOwned + ToSchema,
        C::Aggregate: Handles<C>,
        <C::Aggregate as Handles<C>>::Error: DomainProblem,
    {
        self.command_with(path, CommandEndpoint::<C>::new())
    }

    /// Serves command `C` as `POST path`, as `endpoint` says.
    ///
    /// Each `{name}` of the path fills the command's field `name` (and
    /// may be left out of the body: a body that has it must agree). The
    /// command's schema (`#[derive(utoipa::ToSchema)]`) documents the body
    /// and the path parameters; its doc comment is the operation's summary.
    /// Its handler's domain error says its status and type through
    /// [`DomainProblem`].
    pub fn command_with<C>(mut self, path: &str, endpoint: CommandEndpoint<C>) -> Self
    where
        C: Command + DeserializeOwned + ToSchema,
        C::Aggregate: Handles<C>,
        <C::Aggregate as Handles<C>>::Error: DomainProblem,
    {
        let operation = command_operation::<C>(path, &endpoint, &mut self.schemas);
        self.paths
            .add_path_operation(path, vec![HttpMethod::Post], operation);
        self.served
            .entry(path.to_owned())
            .or_default()
            .insert("POST");
        let endpoint = std::sync::Arc::new(endpoint);
        self.commands
            .insert(C::NAME, command::runner::<C>(endpoint.clone()));
        self.router = self.router.route(path, command::route::<C, S>(endpoint));
        self
    }

    /// Lets the WebSocket ([`websocket`](Self::websocket)) run command `C`
    /// too, by its name, without an HTTP endpoint of its own. (A command
    /// added with [`command`](Self::command) or
    /// [`command_with`](Self::command_with) is run there already, as its
    /// endpoint says.)
    pub fn websocket_command<C>(mut self) -> Self
    where
        C: Command + DeserializeOwned,
        C::Aggregate: Handles<C>,
        <C::Aggregate as Handles<C>>::Error: DomainProblem,
    {
        let endpoint = std::sync::Arc::new(CommandEndpoint::<C>::new());
        self.commands
            .insert(C::NAME, command::runner::<C>(endpoint));
        self
    }

    /// How the WebSocket treats a slow client: each connection queues up to
    /// `queue` messages (default [`OUTGOING_QUEUE`]); a subscription whose
    /// event waits `grace` (default [`SLOW_CLIENT_GRACE`]) for room in a
    /// full queue is closed with a [`LAGGED`] problem.
    pub fn websocket_slow_client(mut self, queue: usize, grace: std::time::Duration) -> Self {
        self.slow_client = (queue, grace);
        self
    }

    /// Serves `GET /ws` ([`WEBSOCKET_PATH`]), a WebSocket that runs this
    /// API's commands as messages and feeds live events of the log, as the
    /// [module docs](self#the-websocket) describe. The commands are those of
    /// the whole API, whenever they are added.
    pub fn websocket(mut self) -> Self {
        self.websocket = true;
        let operation = utoipa::openapi::path::OperationBuilder::new()
            .operation_id(Some("websocket"))
            .summary(Some("Commands and live event feeds over a WebSocket"))
            .description(Some(ws::PROTOCOL))
            .tag("operations")
            .response(
                "101",
                ResponseBuilder::new().description("Switching to the WebSocket protocol"),
            )
            .response("400", problem_response("Not a WebSocket upgrade request"))
            .build();
        self.paths
            .add_path_operation(WEBSOCKET_PATH, vec![HttpMethod::Get], operation);
        self.served
            .entry(WEBSOCKET_PATH.to_owned())
            .or_default()
            .insert("GET");
        self
    }

    /// Adds routes annotated with `#[utoipa::path]`:
    /// `.routes(utoipa_axum::routes!(get_account, list_accounts))`. Each
    /// handler is served at the path and method its annotation names, and
    /// documented as it says.
    pub fn routes(mut self, routes: DocumentedRoutes<S>) -> Self {
        let (schemas, paths, method_router) = routes;
        for (path, item) in &paths.paths {
            self.served
                .entry(path.clone())
                .or_default()
                .extend(methods_of(item));
            self.router = self.router.route(path, method_router.clone());
        }
        self.paths.merge(paths);
        self.schemas.extend(schemas);
        self
    }

    /// Serves a kind of JSON document (features `documents` and `sqlite`
    /// or `postgres`): `POST /{kind}` creates one (201, `Location`,
    /// `ETag`), `GET /{kind}/{id}` reads it from the read model
    /// ([`DocumentReadModel`](crate::document::DocumentReadModel), taken
    /// from the state with [`FromRef`]), `PUT` replaces it, `PATCH` applies
    /// an RFC 6902 JSON Patch (`application/json-patch+json`), `DELETE`
    /// deletes it (204). Every write is a
    /// [`DocumentCommand`](crate::document::DocumentCommand), answered once
    /// the read model shows it, with the document as it now is and its
    /// version as the `ETag`; `If-Match: "<version>"` makes a write
    /// conditional (409 `version-conflict` with `expected_version` and
    /// `actual_version` otherwise). The kind's schema, if any, documents
    /// the bodies. A `POST` with `Idempotency-Key: <uuid>` creates the
    /// document with that id, so a retried create is 409
    /// `document-exists` rather than a second document. Past 5 s without
    /// the read model showing a write, the answer is 202 (`version`,
    /// `pending`): it was stored. See [`annals::document`](crate::document)
    /// for what is journaled and refused.
    ///
    /// | status | type | when |
    /// |---|---|---|
    /// | 400 | `malformed-body` | not JSON, not an object, not an RFC 6902 patch |
    /// | 404 | `not-found` | no such document, or deleted |
    /// | 409 | `version-conflict` | not at the `If-Match` version |
    /// | 409 | `patch-test-failed` | a `test` operation failed (`operation`, `path`) |
    /// | 409 | `document-exists` | a create with an `Idempotency-Key` that made a document before |
    /// | 415 | `unsupported-media-type` | a document not sent as JSON, a patch not as `application/json-patch+json` |
    /// | 422 | `schema-violation` | the resulting document does not match the schema (`errors`: `instance_path`, `message`); nothing stored |
    /// | 422 | `patch-failed` | an operation cannot apply (a missing path, an index out of range) |
    #[cfg(all(feature = "documents", any(feature = "sqlite", feature = "postgres")))]
    pub fn documents(mut self, kind: crate::document::DocumentKind) -> Self
    where
        crate::document::DocumentReadModel: FromRef<S>,
    {
        let collection = format!("/{}", kind.name());
        let item = format!("/{}/{{id}}", kind.name());
        for (path, method, operation) in document_operations(&kind) {
            self.paths
                .add_path_operation(path.as_str(), vec![method], operation);
        }
        self.served
            .entry(collection.clone())
            .or_default()
            .insert("POST");
        self.served
            .entry(item.clone())
            .or_default()
            .extend(["GET", "PUT", "PATCH", "DELETE"]);
        self.router = self
            .router
            .route(&collection, document::collection::<S>(kind.clone()))
            .route(&item, document::item::<S>(kind));
        self
    }

    /// Serves `GET /streams/{stream_id}/events?from=&limit=`: a stream's
    /// stored events with their metadata ([`StreamEvents`]), for operators.
    /// It shows payloads as stored: expose it only where they may be read.
    /// Served once, however often it is asked for (as by [`browser`](Self::browser)).
    pub fn stream_events(self) -> Self {
        if self.serves(STREAM_EVENTS_PATH) {
            return self;
        }
        self.routes(utoipa_axum::routes!(operator::stream_events))
    }

    /// Serves `GET /handlers`: each event handler's, projection's and
    /// process manager's state, position, lag and last error ([`Handlers`]).
    /// Served once, however often it is asked for (as by [`browser`](Self::browser)).
    pub fn handler_status(self) -> Self {
        if self.serves(HANDLERS_PATH) {
            return self;
        }
        self.routes(utoipa_axum::routes!(operator::handler_status))
    }

    /// Serves `GET /streams?category=&after=&limit=`: the store's streams,
    /// a page at a time, each with its version and the position of its
    /// newest event ([`StreamList`]). Served once, however often it is
    /// asked for (as by [`browser`](Self::browser)).
    pub fn streams(self) -> Self {
        if self.serves(STREAMS_PATH) {
            return self;
        }
        self.routes(utoipa_axum::routes!(browser::list_streams))
    }

    /// Serves the event browser at `GET /browser` (a page with a little
    /// script at `/browser/browser.js`, embedded in the binary: no build
    /// step, nothing loaded from elsewhere), and what it reads:
    /// [`streams`](Self::streams), [`stream_events`](Self::stream_events),
    /// [`handler_status`](Self::handler_status) and
    /// [`websocket`](Self::websocket) (which also runs this API's commands
    /// as messages, the ones it serves over HTTP already).
    ///
    /// The page lists the streams (by category, a page at a time), shows a
    /// stream's events with their metadata and data, tails every new event
    /// live over the WebSocket (when the connection drops, the tail says
    /// so and resubscribes from the last position it showed: no event
    /// missed, none twice), and refreshes each handler's state,
    /// position, lag and last error every two seconds. It shows payloads
    /// as stored: serve it only where they may be read. Event data is put
    /// on the page as text, never as markup, and a Content-Security-Policy
    /// lets the page run only its own script.
    ///
    /// ```
    /// use annals::http::Api;
    /// use annals::prelude::*;
    /// # use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = App::builder().store(MemoryStore::new()).build()?;
    /// let api: Api = Api::new().browser();
    /// assert!(api.endpoints().contains_key("/streams"));
    /// assert!(api.endpoints().contains_key("/ws"));
    /// let router = api.into_router().with_state(app);
    /// let page = axum::http::Request::get("/browser").body(axum::body::Body::empty())?;
    /// let response = router.oneshot(page).await?;
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    /// # Ok(())
    /// # }
    /// ```
    pub fn browser(self) -> Self {
        let mut api = self.streams().stream_events().handler_status();
        if !api.serves(WEBSOCKET_PATH) {
            api = api.websocket();
        }
        if api.serves(BROWSER_PATH) {
            return api;
        }
        api.routes(utoipa_axum::routes!(browser::page))
            .routes(utoipa_axum::routes!(browser::script))
    }

    fn serves(&self, path: &str) -> bool {
        self.served.contains_key(path)
    }

    /// Every route the router serves and its methods, the OpenAPI document's
    /// own route included. `GET` implies `HEAD`, as in axum.
    pub fn endpoints(&self) -> BTreeMap<String, Methods> {
        let mut served = self.served.clone();
        served
            .entry(OPENAPI_PATH.to_owned())
            .or_default()
            .insert("GET");
        served
    }

    /// The OpenAPI 3.1 document of every route, served at [`OPENAPI_PATH`].
    pub fn openapi(&self) -> OpenApi {
        let mut paths = self.paths.clone();
        let document = utoipa::openapi::path::OperationBuilder::new()
            .operation_id(Some("openapi"))
            .summary(Some("This OpenAPI document"))
            .tag("operations")
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The document")
                    .content("application/json", ContentBuilder::new().build()),
            )
            .build();
        paths.add_path_operation(OPENAPI_PATH, vec![HttpMethod::Get], document);
        let mut components = ComponentsBuilder::new()
            .schema_from::<Problem>()
            .schema_from::<CommandAccepted>()
            .schema_from::<RecordedType>();
        for (name, schema) in &self.schemas {
            components = components.schema(name.clone(), schema.clone());
        }
        OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title(self.title.clone())
                    .version(self.version.clone())
                    .description(self.description.clone())
                    .build(),
            )
            .paths(paths)
            .components(Some(components.build()))
            .build()
    }

    /// The router: every route, the OpenAPI document at [`OPENAPI_PATH`],
    /// a 404 problem for any other path, and the layer every request goes
    /// through (request id and span, body limit, problem+json errors). Give
    /// it its state with `.with_state(state)`.
    pub fn into_router(self) -> Router<S> {
        let document = serde_json::to_string(&self.openapi())
            .expect("an OpenAPI document of strings, numbers and maps serialises");
        let limit = self.body_limit;
        let mut router = self.router;
        if self.websocket {
            let limits = ws::Limits {
                queue: self.slow_client.0,
                grace: self.slow_client.1,
                message: limit,
            };
            router = router.route(WEBSOCKET_PATH, ws::route::<S>(self.commands, limits));
        }
        router
            .route(
                OPENAPI_PATH,
                axum::routing::get(move || {
                    let document = document.clone();
                    async move {
                        (
                            [(axum::http::header::CONTENT_TYPE, "application/json")],
                            document,
                        )
                    }
                }),
            )
            .fallback(request::no_route)
            .layer(DefaultBodyLimit::max(limit))
            .layer(axum::middleware::from_fn(move |request, next| {
                request::around(limit, request, next)
            }))
    }
}

fn methods_of(item: &PathItem) -> impl Iterator<Item = &'static str> + '_ {
    [
        ("GET", item.get.is_some()),
        ("PUT", item.put.is_some()),
        ("POST", item.post.is_some()),
        ("DELETE", item.delete.is_some()),
        ("OPTIONS", item.options.is_some()),
        ("HEAD", item.head.is_some()),
        ("PATCH", item.patch.is_some()),
        ("TRACE", item.trace.is_some()),
    ]
    .into_iter()
    .filter_map(|(method, present)| present.then_some(method))
}

/// The `{name}`s of a route's path.
fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*').to_owned())
        .collect()
}

fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn string_schema(format: Option<KnownFormat>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(format.map(SchemaFormat::KnownFormat))
        .build()
        .into()
}

/// A schema from its JSON text; a plain object schema when utoipa cannot
/// read it (a JSON Schema keyword it does not model).
#[cfg(all(feature = "documents", any(feature = "sqlite", feature = "postgres")))]
fn schema_from_json(schema: Option<&serde_json::Value>) -> RefOr<Schema> {
    schema
        .and_then(|s| serde_json::from_value::<Schema>(s.clone()).ok())
        .unwrap_or_else(|| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .build()
                .into()
        })
        .into()
}

/// The operations of a kind of document: `POST /{kind}` and `GET`, `PUT`,
/// `PATCH`, `DELETE /{kind}/{id}`.
#[cfg(all(feature = "documents", any(feature = "sqlite", feature = "postgres")))]
fn document_operations(
    kind: &crate::document::DocumentKind,
) -> Vec<(String, HttpMethod, Operation)> {
    use utoipa::openapi::path::OperationBuilder;
    let name = kind.name();
    let collection = format!("/{name}");
    let item = format!("/{name}/{{id}}");
    let document = schema_from_json(kind.json_schema());
    let patch = schema_from_json(Some(&serde_json::json!({
        "type": "array",
        "description": "RFC 6902 operations, applied all or none",
        "items": {
            "type": "object",
            "required": ["op", "path"],
            "properties": {
                "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
                "path": {"type": "string", "description": "a JSON Pointer"},
                "from": {"type": "string", "description": "a JSON Pointer (move, copy)"},
                "value": {"description": "any JSON value (add, replace, test)"}
            }
        }
    })));
    let with_document = |status: &str, description: &str| {
        (
            status.to_owned(),
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(document.clone())).build(),
                )
                .header(
                    "ETag",
                    utoipa::openapi::header::Header::new(string_schema(None)),
                )
                .build(),
        )
    };
    let id = || {
        ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(string_schema(None)))
    };
    let if_match = || {
        ParameterBuilder::new()
            .name("If-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Write only if the document is at this version, as an entity tag (`\"3\"`); 409 otherwise",
            ))
            .schema(Some(string_schema(None)))
    };
    let body = |media: &str, schema: &RefOr<Schema>| {
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(
                media,
                ContentBuilder::new().schema(Some(schema.clone())).build(),
            )
            .build()
    };
    let problems = |operation: OperationBuilder, statuses: &[(&str, &str)]| {
        statuses
            .iter()
            .fold(operation, |operation, (status, about)| {
                operation.response(*status, problem_response(about))
            })
    };
    let common = [
        ("500", "Internal error"),
        ("503", "The event store or the read model is unavailable"),
    ];
    let writes = [
        ("400", "Malformed body, or a bad header or id"),
        ("404", "No such document, or deleted"),
        (
            "409",
            "Not at the If-Match version, or a patch's test failed",
        ),
        ("413", "The body is over the limit"),
        (
            "415",
            "Not JSON (a document), not application/json-patch+json (a patch)",
        ),
        (
            "422",
            "The result does not match the schema, or the patch cannot apply",
        ),
    ];
    let base = |verb: &str, summary: String| {
        OperationBuilder::new()
            .operation_id(Some(format!("{verb}_{name}")))
            .summary(Some(summary))
            .tag(name)
    };
    let mut created = ResponseBuilder::new()
        .description("Created: the document, its version as ETag, its URL as Location")
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(document.clone())).build(),
        )
        .header(
            "ETag",
            utoipa::openapi::header::Header::new(string_schema(None)),
        );
    created = created.header(
        "Location",
        utoipa::openapi::header::Header::new(string_schema(None)),
    );
    let idempotency_key = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The new document's id: a repeated create makes nothing and gets 409 `document-exists`",
        ))
        .schema(Some(string_schema(Some(KnownFormat::Uuid))));
    let create = problems(
        base("create", format!("Create a `{name}` document"))
            .parameter(idempotency_key)
            .request_body(Some(body("application/json", &document)))
            .response("201", created.build()),
        &[
            (
                "400",
                "Malformed body, or an Idempotency-Key that is not a UUID",
            ),
            ("409", "A document with the Idempotency-Key as id exists"),
            ("413", "The body is over the limit"),
            ("415", "Not JSON"),
            ("422", "The document does not match the schema"),
        ],
    );
    let create = problems(create, &common).build();
    let (status, ok) = with_document("200", "The document and its version (ETag)");
    let get = problems(
        base("get", format!("Read a `{name}` document")).parameter(id()),
        &[("404", "No such document, or deleted")],
    );
    let get = problems(get, &common)
        .response(status.clone(), ok.clone())
        .build();
    let write = |verb: &str, summary: String, request| {
        let operation = base(verb, summary)
            .parameter(id())
            .parameter(if_match())
            .request_body(request);
        problems(problems(operation, &writes), &common)
    };
    let replace = write(
        "replace",
        format!("Replace a `{name}` document"),
        Some(body("application/json", &document)),
    )
    .response(status.clone(), ok.clone())
    .build();
    let patched = write(
        "patch",
        format!("Apply an RFC 6902 JSON Patch to a `{name}` document"),
        Some(body(document::JSON_PATCH, &patch)),
    )
    .response(status, ok)
    .build();
    let delete = write("delete", format!("Delete a `{name}` document"), None)
        .response(
            "204",
            ResponseBuilder::new()
                .description("Deleted; ETag is the version that deleted it")
                .header(
                    "ETag",
                    utoipa::openapi::header::Header::new(string_schema(None)),
                )
                .build(),
        )
        .build();
    vec![
        (collection, HttpMethod::Post, create),
        (item.clone(), HttpMethod::Get, get),
        (item.clone(), HttpMethod::Put, replace),
        (item.clone(), HttpMethod::Patch, patched),
        (item, HttpMethod::Delete, delete),
    ]
}

/// The operation of command `C` at `path`.
fn command_operation<C: Command + ToSchema>(
    path: &str,
    endpoint: &CommandEndpoint<C>,
    schemas: &mut Vec<(String, RefOr<Schema>)>,
) -> Operation {
    C::schemas(schemas);
    let names = path_parameters(path);
    let mut body = C::schema();
    let mut description = None;
    let mut from_path = BTreeMap::new();
    if let RefOr::T(Schema::Object(object)) = &mut body {
        description = object.description.clone();
        for name in &names {
            if let Some(schema) = object.properties.remove(name) {
                from_path.insert(name.clone(), schema);
            }
            object.required.retain(|r| r != name);
        }
    }
    let body_required = match &body {
        RefOr::T(Schema::Object(object)) => !object.required.is_empty(),
        _ => true,
    };
    let summary = endpoint.summary_text().map(str::to_owned).or_else(|| {
        description
            .as_deref()
            .and_then(|d| d.lines().next())
            .map(str::to_owned)
    });
    let mut operation = utoipa::openapi::path::OperationBuilder::new()
        .operation_id(Some(C::NAME))
        .summary(summary)
        .description(description)
        .tag(
            endpoint
                .tag_text()
                .unwrap_or(<C::Aggregate as crate::Aggregate>::TYPE),
        );
    for name in &names {
        let schema = from_path
            .remove(name)
            .unwrap_or_else(|| RefOr::T(string_schema(None)));
        operation = operation.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(schema)),
        );
    }
    for (header, about, format) in [
        (
            "If-Match",
            "Run only if the aggregate is at this version, as an entity tag (`\"3\"`; `\"0\"`: not created yet); 409 otherwise",
            None,
        ),
        (
            "Idempotency-Key",
            "The command's id: a repeated request records nothing and gets 409 `duplicate-command`",
            Some(KnownFormat::Uuid),
        ),
        (
            "x-request-id",
            "The request's id (else a new one), echoed, and the correlation id of the events",
            Some(KnownFormat::Uuid),
        ),
    ] {
        operation = operation.parameter(
            ParameterBuilder::new()
                .name(header)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(about))
                .schema(Some(string_schema(format))),
        );
    }
    operation = operation.request_body(Some(
        RequestBodyBuilder::new()
            .required(Some(if body_required {
                Required::True
            } else {
                Required::False
            }))
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(body)).build(),
            )
            .build(),
    ));
    let accepted = |description: &str| {
        let mut response = ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("CommandAccepted")))
                    .build(),
            )
            .header(
                "ETag",
                utoipa::openapi::header::Header::new(string_schema(None)),
            );
        if endpoint.has_location() {
            response = response.header(
                "Location",
                utoipa::openapi::header::Header::new(string_schema(None)),
            );
        }
        response.build()
    };
    let status = endpoint.success_status();
    operation = operation.response(
        status.as_str(),
        accepted("The command's events were stored"),
    );
    if endpoint.waits() && status != axum::http::StatusCode::ACCEPTED {
        operation = operation.response(
            "202",
            accepted("Stored, but the read models had not caught up in time (`pending`)"),
        );
    }
    for (status, about) in [
        ("400", "Malformed body, or a bad header or id"),
        ("404", "No such aggregate (when its domain error says so)"),
        (
            "409",
            "Not at the If-Match version, or a repeated Idempotency-Key",
        ),
        ("413", "The body is over the limit"),
        ("415", "The body is not JSON"),
        ("422", "The domain refused the command"),
        ("500", "Internal error"),
        ("503", "The event store is unavailable"),
    ] {
        operation = operation.response(status, problem_response(about));
    }
    operation.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[event]
    pub enum LampEvent {
        SwitchedOn,
    }

    /// Switch a lamp on.
    #[command(aggregate = Lamp)]
    #[derive(utoipa::ToSchema)]
    pub struct SwitchOn {
        #[id]
        pub lamp: u32,
    }

    #[aggregate(events = LampEvent)]
    #[derive(Default)]
    pub struct Lamp;

    #[aggregate]
    impl Lamp {
        #[handle]
        fn switch_on(&self, _command: SwitchOn) -> LampEvent {
            LampEvent::SwitchedOn
        }

        #[apply]
        fn apply(&mut self, _event: &LampEvent) {}
    }

    fn api() -> Api {
        Api::new()
            .command::<SwitchOn>("/lamps/{lamp}/on")
            .stream_events()
            .handler_status()
            .websocket()
            .browser()
    }

    /// What the API routed is what its document lists, method for method.
    #[test]
    fn the_document_lists_every_route_with_its_methods() {
        let api = api();
        let document = serde_json::to_value(api.openapi()).unwrap();
        let documented: BTreeMap<String, BTreeSet<String>> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(path, item)| {
                let methods = item
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| !matches!(k.as_str(), "parameters" | "summary" | "description"))
                    .map(|k| k.to_ascii_uppercase())
                    .collect();
                (path.clone(), methods)
            })
            .collect();
        let routed: BTreeMap<String, BTreeSet<String>> = api
            .endpoints()
            .into_iter()
            .map(|(path, methods)| (path, methods.into_iter().map(str::to_owned).collect()))
            .collect();
        assert_eq!(routed, documented);
        assert_eq!(
            routed.keys().collect::<Vec<_>>(),
            [
                "/browser",
                "/browser/browser.js",
                "/handlers",
                "/lamps/{lamp}/on",
                "/openapi.json",
                "/streams",
                "/streams/{stream_id}/events",
                "/ws"
            ]
        );
        let ws = &document["paths"]["/ws"]["get"];
        assert!(ws["responses"]["101"].is_object(), "{ws}");
        assert!(
            ws["description"]
                .as_str()
                .unwrap()
                .contains(r#"{"type":"subscribe""#)
        );
        // The path's field is a parameter of its type, not a body field.
        let on = &document["paths"]["/lamps/{lamp}/on"]["post"];
        assert_eq!(on["summary"], "Switch a lamp on.");
        assert_eq!(on["parameters"][0]["schema"]["type"], "integer");
        assert_eq!(on["requestBody"]["required"], false);
    }

    /// A path parameter fills a numeric id; axum's own errors become problems.
    #[tokio::test]
    async fn commands_and_misses_over_the_router() {
        let app = App::builder().store(MemoryStore::new()).build().unwrap();
        let router = api().into_router().with_state(app);
        let send = |method: &str, uri: &str| {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap();
            router.clone().oneshot(request)
        };
        let on = send("POST", "/lamps/7/on").await.unwrap();
        assert_eq!(on.status(), StatusCode::OK);
        let body = axum::body::to_bytes(on.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["stream_id"], "Lamp-7");
        let bad = send("POST", "/lamps/seven/on").await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        for (method, uri, status) in [
            ("GET", "/lamps/7/on", StatusCode::METHOD_NOT_ALLOWED),
            ("GET", "/lamps", StatusCode::NOT_FOUND),
        ] {
            let miss = send(method, uri).await.unwrap();
            assert_eq!(miss.status(), status);
            assert_eq!(miss.headers()["content-type"], PROBLEM_JSON);
            assert!(miss.headers().contains_key(REQUEST_ID_HEADER));
        }
    }

    async fn get_json(router: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// `GET /streams` pages through the streams by id, each with its
    /// version and newest position, within a category when asked.
    #[tokio::test]
    async fn streams_are_listed_a_page_at_a_time() {
        let app = App::builder().store(MemoryStore::new()).build().unwrap();
        for lamp in [3, 1, 2, 1] {
            app.dispatch(SwitchOn { lamp }).await.unwrap();
        }
        let router = api().into_router().with_state(app);
        let (status, first) = get_json(&router, "/streams?limit=2").await;
        assert_eq!(status, StatusCode::OK);
        let ids: Vec<&str> = first["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stream_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["Lamp-1", "Lamp-2"]);
        assert_eq!(first["streams"][0]["version"], 2);
        assert_eq!(first["streams"][0]["last_position"], 4);
        assert_eq!(first["streams"][0]["category"], "Lamp");
        assert_eq!(first["next"], "Lamp-2");
        let (_, second) = get_json(&router, "/streams?limit=2&after=Lamp-2").await;
        assert_eq!(second["streams"][0]["stream_id"], "Lamp-3");
        assert_eq!(second["streams"].as_array().unwrap().len(), 1);
        assert_eq!(second["next"], serde_json::Value::Null);
        let (_, none) = get_json(&router, "/streams?category=Door").await;
        assert_eq!(none["streams"], serde_json::json!([]));
        let (status, bad) = get_json(&router, "/streams?limit=many").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(bad["type"], types::INVALID_REQUEST);
    }

    /// The page and its script are served with a policy that runs only
    /// the page's own script; asking for the browser twice serves it once.
    #[tokio::test]
    async fn the_browser_page_is_served_under_its_policy() {
        let app = App::builder().store(MemoryStore::new()).build().unwrap();
        let router = api()
            .browser()
            .stream_events()
            .into_router()
            .with_state(app);
        for (uri, content_type, holds) in [
            ("/browser", "text/html; charset=utf-8", "browser/browser.js"),
            (
                "/browser/browser.js",
                "text/javascript; charset=utf-8",
                "new WebSocket",
            ),
        ] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            assert_eq!(response.headers()["content-type"], content_type);
            let policy = response.headers()["content-security-policy"]
                .to_str()
                .unwrap();
            assert!(policy.contains("script-src 'self'"), "{policy}");
            assert!(!policy.contains("unsafe-eval"), "{policy}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body = std::str::from_utf8(&body).unwrap();
            assert!(body.contains(holds), "{uri}");
            // Data reaches the page as text only.
            for markup in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!body.contains(markup), "{uri} uses {markup}");
            }
        }
    }

    /// A command allowed on the WebSocket only: run there by its name, not
    /// routed over HTTP.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_allowed_on_the_websocket_only() {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let app = App::builder().store(MemoryStore::new()).build().unwrap();
        let router: Router = Api::new()
            .websocket()
            .websocket_command::<SwitchOn>()
            .into_router()
            .with_state(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = router.clone();
        tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
        let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        let message = serde_json::json!({"type": "command", "id": 1, "command": "SwitchOn", "body": {"lamp": 9}});
        client
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        let answer = loop {
            if let Some(Ok(Message::Text(text))) = client.next().await {
                break serde_json::from_str::<serde_json::Value>(text.as_str()).unwrap();
            }
        };
        assert_eq!(answer["type"], "result", "{answer}");
        assert_eq!(answer["id"], 1);
        assert_eq!(answer["result"]["stream_id"], "Lamp-9");
        let over_http = Request::post("/lamps/9/on").body(Body::empty()).unwrap();
        let missing = router.oneshot(over_http).await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
