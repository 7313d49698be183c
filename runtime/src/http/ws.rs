//! `GET /ws`: the API's commands as WebSocket messages, and live feeds of
//! the log ([`Api::websocket`](super::Api::websocket)).

use super::command::{CommandCall, CommandRunner};
use super::operator::StreamEvent;
use super::problem::Problem;
use super::request::RequestId;
use crate::app::App;
use crate::feed::FeedSelector;
use crate::store::{RecordedEvent, StreamId};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;
use uuid::Uuid;

/// Where [`Api::websocket`](super::Api::websocket) serves the WebSocket.
pub const WEBSOCKET_PATH: &str = "/ws";

/// How many messages wait for a slow client, per connection, unless
/// [`Api::websocket_slow_client`](super::Api::websocket_slow_client) says.
pub const OUTGOING_QUEUE: usize = 1024;

/// How long a subscription waits for room in a full outgoing queue before
/// it is closed with a [`LAGGED`] problem, unless
/// [`Api::websocket_slow_client`](super::Api::websocket_slow_client) says.
/// (A full queue alone is no sign of a slow client: a catch-up fills it
/// faster than any network empties it.)
pub const SLOW_CLIENT_GRACE: Duration = Duration::from_secs(5);

/// How a WebSocket treats slow clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) queue: usize,
    pub(crate) grace: Duration,
    pub(crate) message: usize,
}

/// How many commands of one connection run at once; further messages wait
/// to be read.
pub const COMMANDS_IN_FLIGHT: usize = 32;

/// 429: the client did not take a subscription's events fast enough; the
/// subscription is closed. Members `subscription` and `last_position` (the
/// last event's position it was sent): subscribe again with that `after`.
pub const LAGGED: &str = "urn:annals:problem:lagged";

/// The protocol, as the OpenAPI document describes `GET /ws`.
pub(crate) const PROTOCOL: &str = r#"A WebSocket (upgrade with `GET /ws`). Text frames, one JSON object each, tagged by `type`.

Client to server:
- `{"type":"command","id":"c1","command":"<name>","body":{...},"if_match":3,"idempotency_key":"<uuid>"}`: runs a command this API exposes, by its registered name, decoded and checked as its HTTP endpoint does (`if_match` and `idempotency_key` are optional and mean what `If-Match` and `Idempotency-Key` do). Answer: `{"type":"result","id":"c1","result":<CommandAccepted>}` or `{"type":"problem","id":"c1","problem":<Problem>}` (the problem its HTTP endpoint would answer: 422 domain refusal, 409 conflict, ...).
- `{"type":"subscribe","id":"s1","all":true}`, or `"stream":"Account-42"`, or `"category":"Account"`; plus `"after":<position>` or `"after":"head"` (default 0: from the beginning). Answer: `{"type":"subscribed","id":"s1","head":<position of the newest event>}`, then `{"type":"event","subscription":"s1","event":<StreamEvent with stream_id>}` for every matching event with a position above `after`, in position order: first those stored, then live ones, with no gap and no duplicate. After a reconnect, subscribe with `after` = the last position seen.
- `{"type":"unsubscribe","id":"s1"}`: answer `{"type":"unsubscribed","id":"s1"}`, after which no event of it is sent.

A message that is not JSON, has an unknown `type`, names a command this API does not expose or lacks a field is answered with a `problem` of status 400 (`id` as given, or null); the connection stays open. A client too slow to take a subscription's events gets a `problem` of type `urn:annals:problem:lagged` (status 429) naming the subscription and `last_position`, the last position it was sent; that subscription is closed (subscribe again from there)."#;

/// The commands a WebSocket runs, by name.
pub(crate) type Commands = BTreeMap<&'static str, CommandRunner>;

/// An event of a subscription, as `{"type":"event"}` messages carry it: a
/// [`StreamEvent`] with its stream.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LiveEvent {
    /// The event's stream.
    pub stream_id: String,
    /// The event, as `GET /streams/{stream_id}/events` shows it.
    #[serde(flatten)]
    pub event: StreamEvent,
}

impl From<RecordedEvent> for LiveEvent {
    fn from(event: RecordedEvent) -> Self {
        Self {
            stream_id: event.stream_id.as_str().to_owned(),
            event: StreamEvent::from(event),
        }
    }
}

/// What the server sends.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Outgoing<'a> {
    Result {
        id: &'a Value,
        result: &'a super::CommandAccepted,
    },
    Problem {
        id: &'a Value,
        problem: &'a Problem,
    },
    Subscribed {
        id: &'a str,
        head: u64,
    },
    Event {
        subscription: &'a str,
        event: LiveEvent,
    },
    Unsubscribed {
        id: &'a str,
    },
}

impl Outgoing<'_> {
    fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|error| {
            // A payload is JSON already and the rest are strings and
            // numbers: this cannot fail, but a client is told if it does.
            tracing::error!(%error, "a WebSocket message could not be serialised");
            r#"{"type":"problem","id":null,"problem":{"type":"urn:annals:problem:internal","title":"Internal server error","status":500}}"#.to_owned()
        })
    }
}

/// What the client sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Incoming {
    Command {
        #[serde(rename = "id")]
        _id: Option<Value>,
        command: String,
        #[serde(default)]
        body: Option<Value>,
        #[serde(default)]
        if_match: Option<u64>,
        #[serde(default)]
        idempotency_key: Option<Uuid>,
    },
    Subscribe {
        id: String,
        #[serde(default)]
        all: Option<bool>,
        #[serde(default)]
        stream: Option<String>,
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        after: Option<After>,
    },
    Unsubscribe {
        id: String,
    },
}

/// A subscription's `after`: a position, or `"head"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum After {
    Position(u64),
    Named(String),
}

/// The bytes each connection's read buffer starts with.
const READ_BUFFER: usize = 4 * 1024;

/// The `GET /ws` route of an API with these commands.
pub(crate) fn route<S>(commands: Commands, limits: Limits) -> axum::routing::MethodRouter<S>
where
    App: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    let commands = Arc::new(commands);
    axum::routing::get(
        move |State(state): State<S>, request: RequestId, upgrade: WebSocketUpgrade| {
            let commands = commands.clone();
            async move {
                let app = App::from_ref(&state);
                // tungstenite reserves its whole read buffer (128 KiB by
                // default) per connection up front: most of what an idle
                // feed would cost. Messages here are small; a larger one
                // grows the buffer as it arrives, up to the message limit.
                let response: Response = upgrade
                    .read_buffer_size(READ_BUFFER)
                    .max_message_size(limits.message)
                    .on_upgrade(move |socket| connection(socket, app, commands, request, limits));
                response
            }
        },
    )
}

/// Serves one connection until the client closes it.
async fn connection(
    socket: WebSocket,
    app: App,
    commands: Arc<Commands>,
    request: RequestId,
    limits: Limits,
) {
    let span = tracing::info_span!("annals.ws", connection = %request);
    async move {
        tracing::debug!("connected");
        let (mut sink, mut incoming) = socket.split();
        let (out, mut queue) = mpsc::channel::<String>(limits.queue.max(1));
        let writer = tokio::spawn(async move {
            while let Some(text) = queue.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let mut session = Session {
            app,
            commands,
            out,
            grace: limits.grace,
            in_flight: Arc::new(Semaphore::new(COMMANDS_IN_FLIGHT)),
            subscriptions: HashMap::new(),
        };
        while let Some(message) = incoming.next().await {
            match message {
                Ok(Message::Text(text)) => session.handle(text.as_str()).await,
                Ok(Message::Binary(_)) => {
                    let problem = Problem::malformed("send messages as text frames of JSON");
                    session.problem(&Value::Null, &problem).await;
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
            }
        }
        for (_, subscription) in session.subscriptions.drain() {
            subscription.task.abort();
        }
        drop(session);
        let _ = writer.await;
        tracing::debug!("disconnected");
    }
    .instrument(span)
    .await;
}

struct Session {
    app: App,
    commands: Arc<Commands>,
    out: mpsc::Sender<String>,
    grace: Duration,
    in_flight: Arc<Semaphore>,
    subscriptions: HashMap<String, Running>,
}

struct Running {
    /// Sent to end it: it answers `unsubscribed` itself, after its last event.
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    async fn problem(&self, id: &Value, problem: &Problem) {
        let text = Outgoing::Problem { id, problem }.text();
        let _ = self.out.send(text).await;
    }

    async fn handle(&mut self, text: &str) {
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(error) => {
                let problem = Problem::malformed(format!("the message is not JSON: {error}"));
                return self.problem(&Value::Null, &problem).await;
            }
        };
        let id = value.get("id").cloned().unwrap_or(Value::Null);
        let message = match Incoming::deserialize(&value) {
            Ok(message) => message,
            Err(error) => {
                let problem =
                    Problem::malformed(format!("not a message of this protocol: {error}"));
                return self.problem(&id, &problem).await;
            }
        };
        match message {
            Incoming::Command {
                command,
                body,
                if_match,
                idempotency_key,
                ..
            } => {
                self.command(id, command, body, if_match, idempotency_key)
                    .await;
            }
            Incoming::Subscribe {
                id,
                all,
                stream,
                category,
                after,
            } => self.subscribe(id, all, stream, category, after).await,
            Incoming::Unsubscribe { id } => self.unsubscribe(id).await,
        }
    }

    async fn command(
        &self,
        id: Value,
        name: String,
        body: Option<Value>,
        if_match: Option<u64>,
        idempotency_key: Option<Uuid>,
    ) {
        let Some(runner) = self.commands.get(name.as_str()).cloned() else {
            let problem = Problem::malformed(format!("no command `{name}` is served here"))
                .with("command", name);
            return self.problem(&id, &problem).await;
        };
        let fields = match body {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(fields)) => fields,
            Some(_) => {
                let problem = Problem::malformed("the body must be a JSON object");
                return self.problem(&id, &problem).await;
            }
        };
        // Waits here (and so stops reading the socket) while the
        // connection has its fill of commands running.
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let request_id = RequestId(Uuid::now_v7());
        let span = tracing::info_span!(
            "annals.ws.command",
            command = %name,
            id = %id,
            request_id = %request_id,
            status = tracing::field::Empty,
        );
        let app = self.app.clone();
        let out = self.out.clone();
        let call = CommandCall {
            request_id,
            fields,
            params: Vec::new(),
            if_match,
            idempotency_key,
        };
        tokio::spawn(
            async move {
                let answer = runner(app, call).await;
                let text = match &answer {
                    Ok(answer) => {
                        tracing::Span::current().record("status", answer.status.as_u16());
                        Outgoing::Result {
                            id: &id,
                            result: &answer.accepted,
                        }
                        .text()
                    }
                    Err(problem) => {
                        tracing::Span::current().record("status", problem.status);
                        Outgoing::Problem { id: &id, problem }.text()
                    }
                };
                let _ = out.send(text).await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    async fn subscribe(
        &mut self,
        id: String,
        all: Option<bool>,
        stream: Option<String>,
        category: Option<String>,
        after: Option<After>,
    ) {
        let quoted = Value::String(id.clone());
        let selector = match (all, stream, category) {
            (Some(true), None, None) => FeedSelector::All,
            (None | Some(false), Some(stream), None) => {
                let stream = StreamId::new(stream);
                if let Err(invalid) = stream.validate() {
                    return self
                        .problem(&quoted, &Problem::invalid(invalid.to_string()))
                        .await;
                }
                FeedSelector::Stream(stream)
            }
            (None | Some(false), None, Some(category))
                if !category.is_empty() && !category.contains('-') =>
            {
                FeedSelector::Category(category)
            }
            (None | Some(false), None, Some(category)) => {
                let problem = Problem::invalid(format!(
                    "`{category}` is not a category: a stream id's part before its first `-`"
                ));
                return self.problem(&quoted, &problem).await;
            }
            _ => {
                let problem = Problem::malformed(
                    "subscribe to one of `\"all\": true`, `\"stream\": \"<id>\"` or `\"category\": \"<name>\"`",
                );
                return self.problem(&quoted, &problem).await;
            }
        };
        if self
            .subscriptions
            .get(&id)
            .is_some_and(|s| !s.task.is_finished())
        {
            let problem = Problem::invalid(format!(
                "subscription `{id}` is open; unsubscribe it first or choose another id"
            ));
            return self.problem(&quoted, &problem).await;
        }
        let head = match self.app.store().head_position().await {
            Ok(head) => head,
            Err(error) => {
                let problem = Problem::from_store(&error, RequestId(Uuid::now_v7()));
                return self.problem(&quoted, &problem).await;
            }
        };
        let after = match after {
            None => 0,
            Some(After::Position(position)) => position,
            Some(After::Named(name)) if name == "head" => head,
            Some(After::Named(other)) => {
                let problem = Problem::malformed(format!(
                    "`after` is a position or \"head\", not \"{other}\""
                ));
                return self.problem(&quoted, &problem).await;
            }
        };
        let (stop, stopped) = oneshot::channel();
        let span = tracing::info_span!("annals.ws.subscription", id = %id, after);
        let task = tokio::spawn(
            feed(
                self.app.clone(),
                Out {
                    queue: self.out.clone(),
                    grace: self.grace,
                },
                id.clone(),
                selector,
                (after, head),
                stopped,
            )
            .instrument(span),
        );
        self.subscriptions.insert(
            id,
            Running {
                stop: Some(stop),
                task,
            },
        );
    }

    async fn unsubscribe(&mut self, id: String) {
        match self.subscriptions.remove(&id) {
            Some(mut running) if !running.task.is_finished() => {
                if let Some(stop) = running.stop.take() {
                    let _ = stop.send(());
                }
                // It answers `unsubscribed` itself, after its last event.
                let _ = running.task.await;
            }
            Some(_) => {
                let text = Outgoing::Unsubscribed { id: &id }.text();
                let _ = self.out.send(text).await;
            }
            None => {
                let problem = Problem::not_found(format!("no subscription `{id}`"));
                self.problem(&Value::String(id), &problem).await;
            }
        }
    }
}

/// A subscription's way to its connection's outgoing queue.
struct Out {
    queue: mpsc::Sender<String>,
    grace: Duration,
}

/// One subscription: `subscribed`, its events, and `unsubscribed` when told.
async fn feed(
    app: App,
    Out { queue: out, grace }: Out,
    id: String,
    selector: FeedSelector,
    (after, head): (u64, u64),
    mut stopped: oneshot::Receiver<()>,
) {
    if out
        .send(Outgoing::Subscribed { id: &id, head }.text())
        .await
        .is_err()
    {
        return;
    }
    let mut subscription = app.live_feed().subscribe(selector, after);
    let quoted = Value::String(id.clone());
    // The position of the last event queued for the client.
    let mut delivered = after;
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut stopped => {
                let _ = out.send(Outgoing::Unsubscribed { id: &id }.text()).await;
                return;
            }
            next = subscription.next() => next,
        };
        let problem = match next {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(Problem::unavailable(
                "the app is shutting down; its feed ended",
            )),
            Err(error) => Err(Problem::from_store(&error, RequestId(Uuid::now_v7()))),
        };
        let event = match problem {
            Ok(event) => event,
            Err(problem) => {
                // The subscription ends: the client resumes after `last_position`.
                let problem = problem
                    .with("subscription", id.as_str())
                    .with("last_position", delivered);
                let _ = out
                    .send(
                        Outgoing::Problem {
                            id: &quoted,
                            problem: &problem,
                        }
                        .text(),
                    )
                    .await;
                return;
            }
        };
        let position = event.global_position;
        let text = Outgoing::Event {
            subscription: &id,
            event: LiveEvent::from(event),
        }
        .text();
        let text = match out.try_send(text) {
            Ok(()) => {
                delivered = position;
                continue;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
            Err(mpsc::error::TrySendError::Full(text)) => text,
        };
        // The queue is full: the client has `grace` to make room.
        tokio::select! {
            biased;
            _ = &mut stopped => {
                let _ = out.send(Outgoing::Unsubscribed { id: &id }.text()).await;
                return;
            }
            sent = tokio::time::timeout(grace, out.send(text)) => match sent {
                Ok(Ok(())) => {
                    delivered = position;
                    continue;
                }
                Ok(Err(_closed)) => return,
                Err(_elapsed) => {}
            },
        }
        // Its place in the broadcast goes at once, whenever the client
        // reads the problem.
        drop(subscription);
        tracing::info!(
            last_position = delivered,
            "a slow client lagged; its subscription is closed"
        );
        let problem = Problem::new(StatusCode::TOO_MANY_REQUESTS)
            .with_type(LAGGED, "Subscription lagged")
            .with_detail(format!(
                "the client did not keep up with subscription `{id}`; subscribe again with \"after\": {delivered}"
            ))
            .with("subscription", id.as_str())
            .with("last_position", delivered);
        let _ = out
            .send(
                Outgoing::Problem {
                    id: &quoted,
                    problem: &problem,
                }
                .text(),
            )
            .await;
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Api;
    use crate::store::{ExpectedVersion, MemoryStore, NewEvent, Payload};
    use tokio_tungstenite::tungstenite::Message as Frame;

    const EVENTS: u64 = 800;

    type Client = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

    async fn next_json(client: &mut Client) -> Value {
        loop {
            match client.next().await {
                Some(Ok(Frame::Text(text))) => return serde_json::from_str(text.as_str()).unwrap(),
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
                other => panic!("the connection ended: {other:?}"),
            }
        }
    }

    /// A client that does not read while its feed pours out is told which
    /// position it got to and loses that subscription; subscribing again
    /// from there, it gets every event once, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_too_slow_for_its_feed_is_told_where_to_resume() {
        let app = App::builder().store(MemoryStore::new()).build().unwrap();
        let pad = "x".repeat(16 * 1024);
        for chunk in 0..EVENTS / 20 {
            let events = (0..20)
                .map(|n| {
                    let data = serde_json::json!({ "pad": pad, "n": n });
                    NewEvent::new("Padded", 1, Payload::from_serialize(&data).unwrap())
                })
                .collect();
            let stream = StreamId::new(format!("Pad-{chunk}"));
            app.store()
                .append(&stream, ExpectedVersion::Any, events)
                .await
                .unwrap();
        }
        let router: axum::Router = Api::new()
            .websocket()
            .websocket_slow_client(4, Duration::from_millis(20))
            .into_router()
            .with_state(app.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        // A client with a small receive buffer, which reads nothing until
        // the server has given up on its subscription.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (mut client, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
            .await
            .unwrap();
        let subscribe = |after: u64| {
            Frame::text(
                serde_json::json!({"type": "subscribe", "id": "all", "all": true, "after": after})
                    .to_string(),
            )
        };
        client.send(subscribe(0)).await.unwrap();
        while app.live_feed().subscriptions() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // (Bounded, so that a server that never gives up fails the
        // assertion below instead of hanging the test.)
        let given_up = async {
            while app.live_feed().subscriptions() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(120), given_up).await;

        let mut seen: Vec<u64> = Vec::new();
        let mut lagged = 0;
        loop {
            let message = next_json(&mut client).await;
            match message["type"].as_str() {
                Some("subscribed") => {}
                Some("event") => {
                    seen.push(message["event"]["position"].as_u64().unwrap());
                    if seen.last() == Some(&EVENTS) {
                        break;
                    }
                }
                Some("problem") => {
                    let problem = &message["problem"];
                    assert_eq!(problem["type"], LAGGED, "{message}");
                    assert_eq!(problem["status"], 429);
                    assert_eq!(message["id"], "all");
                    assert_eq!(problem["subscription"], "all");
                    let last = problem["last_position"].as_u64().unwrap();
                    assert_eq!(last, seen.last().copied().unwrap_or(0), "{message}");
                    lagged += 1;
                    client.send(subscribe(last)).await.unwrap();
                }
                _ => panic!("unexpected {message}"),
            }
        }
        assert!(lagged >= 1, "the client that did not read was told");
        assert_eq!(seen, (1..=EVENTS).collect::<Vec<_>>());
    }
}
