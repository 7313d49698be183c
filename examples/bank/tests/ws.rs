//! The bank's WebSocket (`GET /ws`) as a client meets it: a real server on
//! a loopback port, a `tokio-tungstenite` client, on SQLite and on
//! PostgreSQL, with a second App appending to the same database.

use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals::{AnyStore, App, ExpectedVersion, NewEvent, Payload, StreamId};
use bank::accounts::{AccountId, DepositMoney, OpenAccount};
use bank::http::BankState;
use bank::read_models::ReadDb;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client of the bank.
struct Client {
    socket: Socket,
}

impl Client {
    async fn connect(addr: &str) -> Self {
        let (socket, response) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("the WebSocket upgrade succeeds");
        assert_eq!(response.status(), 101);
        Self { socket }
    }

    async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text.to_owned()))
            .await
            .expect("the server takes the message");
    }

    /// The next JSON message (a guard against hanging forever, not a
    /// timing assertion).
    async fn recv(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(120), self.socket.next())
                .await
                .expect("a message within two minutes");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("a JSON message");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("the connection ended: {other:?}"),
            }
        }
    }

    /// The next message that is not an event.
    async fn answer(&mut self) -> Value {
        loop {
            let message = self.recv().await;
            if message["type"] != "event" {
                return message;
            }
        }
    }
}

/// An app serving the bank's API on a loopback port, and a second app on
/// the same database.
struct Bank {
    addr: String,
    app: App,
    other: App,
    server: tokio::task::JoinHandle<()>,
    cleanup: Option<String>,
    _dir: tempfile::TempDir,
}

impl Bank {
    async fn start(
        first: AnyStore,
        second: AnyStore,
        read: ReadDb,
        dir: tempfile::TempDir,
    ) -> Self {
        let app = bank::app_builder(first, "pepper").build().unwrap();
        let other = bank::app_builder(second, "pepper").build().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = BankState {
            app: app.clone(),
            read,
        };
        let server = tokio::spawn(async move {
            axum::serve(listener, bank::http::router(state))
                .await
                .unwrap();
        });
        Self {
            addr,
            app,
            other,
            server,
            cleanup: None,
            _dir: dir,
        }
    }

    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.db");
        let open = || SqliteStore::builder().path(&path).open();
        let first = AnyStore::new(open().await.unwrap());
        let second = AnyStore::new(open().await.unwrap());
        let read = ReadDb::Sqlite(
            sqlx::SqlitePool::connect(&format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("read.db").display()
            ))
            .await
            .unwrap(),
        );
        Self::start(first, second, read, dir).await
    }

    async fn postgres() -> Self {
        let url = std::env::var("ANNALS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("bank_ws_{}", Uuid::now_v7().simple());
        let connect = || {
            PostgresStore::builder(&url)
                .schema(schema.clone())
                .connect()
        };
        let first = AnyStore::new(connect().await.expect("PostgreSQL is reachable"));
        let second = AnyStore::new(connect().await.expect("PostgreSQL is reachable"));
        let read = ReadDb::Postgres(sqlx::PgPool::connect(&url).await.unwrap());
        let mut bank = Self::start(first, second, read, tempfile::tempdir().unwrap()).await;
        bank.cleanup = Some(format!("{url}\n{schema}"));
        bank
    }

    async fn stop(self) {
        self.server.abort();
        let _ = self.app.shutdown().await;
        let _ = self.other.shutdown().await;
        if let Some(cleanup) = &self.cleanup {
            let (url, schema) = cleanup.split_once('\n').unwrap();
            let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(&mut admin)
            .await
            .unwrap();
        }
    }

    /// Every stored event's (position, stream), in position order, up to
    /// the head as it is now. (A PostgreSQL read may hold back events
    /// behind a transaction still running anywhere in the database: read
    /// until the head.)
    async fn log(&self) -> Vec<(u64, String)> {
        let head = self.app.store().head_position().await.unwrap();
        let mut all = Vec::new();
        let mut from = 1;
        while from <= head {
            let page = self.app.store().read_all(from, 1000).await.unwrap();
            match page.last() {
                Some(last) => from = last.global_position + 1,
                None => tokio::time::sleep(Duration::from_millis(10)).await,
            }
            all.extend(
                page.into_iter()
                    .filter(|e| e.global_position <= head)
                    .map(|e| (e.global_position, e.stream_id.as_str().to_owned())),
            );
        }
        all
    }
}

fn open_account(id: AccountId) -> OpenAccount {
    OpenAccount {
        account_id: id,
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        pin: "1234".into(),
    }
}

fn deposit(id: AccountId, amount: u64) -> DepositMoney {
    DepositMoney {
        account_id: id,
        amount,
        currency: None,
    }
}

/// A command over the WebSocket is answered with what its HTTP endpoint
/// answers: a result, a domain refusal as its 422 problem, a conflict as
/// 409; a malformed message gets a 400 problem and the connection stays
/// usable.
async fn commands(bank: &Bank) {
    let mut client = Client::connect(&bank.addr).await;
    let account = AccountId::new();
    client
        .send(json!({"type": "command", "id": "c1", "command": "OpenAccount",
            "body": {"account_id": account.to_string(), "first_name": "Ada", "last_name": "Lovelace", "pin": "1234"}}))
        .await;
    let opened = client.answer().await;
    assert_eq!(opened["type"], "result", "{opened}");
    assert_eq!(opened["id"], "c1");
    let result = &opened["result"];
    assert_eq!(result["command"], "OpenAccount");
    assert_eq!(result["stream_id"], format!("Account-{account}"));
    assert_eq!(result["version"], 1);
    assert_eq!(result["events"][0]["type"], "AccountOpened");
    // The message's request id is the event's correlation id.
    let stored = bank
        .app
        .store()
        .read_stream(&StreamId::new(format!("Account-{account}")), 1, 10)
        .await
        .unwrap();
    assert_eq!(
        stored[0].metadata.correlation_id.map(|id| id.to_string()),
        result["correlation_id"].as_str().map(str::to_owned)
    );

    // The domain refuses: 422 with the error's type and members.
    client
        .send(
            json!({"type": "command", "id": "c2", "command": "WithdrawMoney",
            "body": {"account_id": account.to_string(), "amount": 500}}),
        )
        .await;
    let refused = client.answer().await;
    assert_eq!(refused["type"], "problem", "{refused}");
    assert_eq!(refused["id"], "c2");
    assert_eq!(refused["problem"]["status"], 422);
    assert_eq!(
        refused["problem"]["type"],
        "urn:bank:problem:insufficient-funds"
    );
    assert_eq!(refused["problem"]["balance"], 0);
    assert_eq!(refused["problem"]["requested"], 500);

    // Not at the version it expected: 409 with both versions.
    client
        .send(
            json!({"type": "command", "id": "c3", "command": "DepositMoney", "if_match": 7,
            "body": {"account_id": account.to_string(), "amount": 5}}),
        )
        .await;
    let conflict = client.answer().await;
    assert_eq!(conflict["problem"]["status"], 409, "{conflict}");
    assert_eq!(
        conflict["problem"]["type"],
        "urn:annals:problem:version-conflict"
    );
    assert_eq!(conflict["problem"]["expected_version"], 7);
    assert_eq!(conflict["problem"]["actual_version"], 1);

    // An idempotency key records a command once.
    let key = Uuid::now_v7().to_string();
    let once = json!({"type": "command", "id": "c4", "command": "DepositMoney", "idempotency_key": key,
        "body": {"account_id": account.to_string(), "amount": 250}});
    client.send(once.clone()).await;
    let first = client.answer().await;
    assert_eq!(first["type"], "result", "{first}");
    assert_eq!(first["result"]["command_id"], key.as_str());
    client.send(once).await;
    let again = client.answer().await;
    assert_eq!(
        again["problem"]["type"], "urn:annals:problem:duplicate-command",
        "{again}"
    );

    // Malformed messages: each a 400 problem, with the id when there is one.
    for (text, id, problem_type) in [
        (
            "this is not json",
            Value::Null,
            "urn:annals:problem:malformed-body",
        ),
        (
            r#"{"type": "dance", "id": "x1"}"#,
            json!("x1"),
            "urn:annals:problem:malformed-body",
        ),
        (
            r#"{"type": "command", "id": "x2", "command": "LaunchRocket", "body": {}}"#,
            json!("x2"),
            "urn:annals:problem:malformed-body",
        ),
        (
            r#"{"type": "command", "id": "x3", "command": "DepositMoney", "body": {"amount": "lots"}}"#,
            json!("x3"),
            "urn:annals:problem:malformed-body",
        ),
        (
            r#"{"type": "subscribe", "id": "x4", "all": true, "stream": "Account-1"}"#,
            json!("x4"),
            "urn:annals:problem:malformed-body",
        ),
        (
            r#"{"type": "unsubscribe", "id": "never"}"#,
            json!("never"),
            "urn:annals:problem:not-found",
        ),
    ] {
        client.send_text(text).await;
        let answer = client.answer().await;
        assert_eq!(answer["type"], "problem", "{text}: {answer}");
        assert_eq!(answer["id"], id, "{text}: {answer}");
        assert_eq!(answer["problem"]["type"], problem_type, "{text}: {answer}");
        let status = answer["problem"]["status"].as_u64().unwrap();
        assert!(status == 400 || status == 404, "{answer}");
    }
    // The connection still works.
    client
        .send(
            json!({"type": "command", "id": "c5", "command": "DepositMoney",
            "body": {"account_id": account.to_string(), "amount": 1}}),
        )
        .await;
    let deposited = client.answer().await;
    assert_eq!(deposited["type"], "result", "{deposited}");
    assert_eq!(deposited["result"]["version"], 3);
}

/// Collects `count` events of each subscription, in the order they came.
async fn collect(
    client: &mut Client,
    wanted: &BTreeMap<&str, usize>,
) -> BTreeMap<String, Vec<(u64, String)>> {
    let mut got: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    while wanted
        .iter()
        .any(|(id, count)| got.get(*id).map_or(0, Vec::len) < *count)
    {
        let message = client.recv().await;
        assert_eq!(message["type"], "event", "{message}");
        let event = &message["event"];
        got.entry(message["subscription"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                event["position"].as_u64().unwrap(),
                event["stream_id"].as_str().unwrap().to_owned(),
            ));
    }
    got
}

/// A subscription to all events, one stream or one category sees the
/// stored ones, then live ones (appended by the other app too), in
/// position order, each once.
async fn feeds(bank: &Bank) {
    let (a, b) = (AccountId::new(), AccountId::new());
    bank.other.dispatch(open_account(a)).await.unwrap();
    bank.app.dispatch(open_account(b)).await.unwrap();
    bank.other.dispatch(deposit(a, 10)).await.unwrap();
    let audit = |n: u32| {
        NewEvent::new(
            "Audited",
            1,
            Payload::from_serialize(&json!({ "n": n })).unwrap(),
        )
    };
    bank.other
        .store()
        .append(
            &StreamId::new("Audit-1"),
            ExpectedVersion::Any,
            vec![audit(1)],
        )
        .await
        .unwrap();
    let stream_a = format!("Account-{a}");

    let mut client = Client::connect(&bank.addr).await;
    for subscribe in [
        json!({"type": "subscribe", "id": "all", "all": true}),
        json!({"type": "subscribe", "id": "one", "stream": stream_a}),
        json!({"type": "subscribe", "id": "accounts", "category": "Account", "after": 0}),
    ] {
        client.send(subscribe).await;
    }
    let head = bank.app.store().head_position().await.unwrap();
    let mut subscribed = 0;
    let mut early = Vec::new();
    while subscribed < 3 {
        let message = client.recv().await;
        if message["type"] == "subscribed" {
            assert_eq!(message["head"], head, "{message}");
            subscribed += 1;
        } else {
            assert_eq!(message["type"], "event", "{message}");
            early.push(message);
        }
    }

    // Live: appended by both apps while the subscriptions run.
    bank.app.dispatch(deposit(a, 20)).await.unwrap();
    bank.other.dispatch(deposit(b, 30)).await.unwrap();
    bank.other
        .store()
        .append(
            &StreamId::new("Audit-1"),
            ExpectedVersion::Any,
            vec![audit(2)],
        )
        .await
        .unwrap();
    bank.other.dispatch(deposit(a, 40)).await.unwrap();

    let log = bank.log().await;
    let expected: BTreeMap<&str, Vec<(u64, String)>> = [
        ("all", log.clone()),
        (
            "one",
            log.iter()
                .filter(|(_, s)| *s == stream_a)
                .cloned()
                .collect(),
        ),
        (
            "accounts",
            log.iter()
                .filter(|(_, s)| s.starts_with("Account-"))
                .cloned()
                .collect(),
        ),
    ]
    .into_iter()
    .collect();
    assert!(
        expected["one"].len() == 4 && expected["accounts"].len() < log.len(),
        "{log:?}"
    );
    let wanted: BTreeMap<&str, usize> = expected.iter().map(|(k, v)| (*k, v.len())).collect();
    let mut got: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for message in early {
        let event = &message["event"];
        got.entry(message["subscription"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                event["position"].as_u64().unwrap(),
                event["stream_id"].as_str().unwrap().to_owned(),
            ));
    }
    let remaining: BTreeMap<&str, usize> = wanted
        .iter()
        .map(|(k, n)| (*k, n - got.get(*k).map_or(0, Vec::len)))
        .collect();
    for (id, events) in collect(&mut client, &remaining).await {
        got.entry(id).or_default().extend(events);
    }
    for (id, events) in &expected {
        assert_eq!(&got[*id], events, "subscription {id}");
    }

    // An event carries what `GET /streams/{id}/events` shows, and its stream.
    client
        .send(json!({"type": "subscribe", "id": "last", "stream": stream_a, "after": log.last().unwrap().0 - 1}))
        .await;
    let subscribed = client.recv().await;
    assert_eq!(subscribed["type"], "subscribed");
    let last = client.recv().await;
    assert_eq!(last["subscription"], "last", "{last}");
    let event = &last["event"];
    assert_eq!(event["stream_id"], stream_a.as_str());
    assert_eq!(event["type"], "MoneyDeposited");
    assert_eq!(event["stream_version"], 4);
    assert_eq!(event["data"]["amount"], 40);
    assert!(event["event_id"].is_string() && event["recorded_at"].is_string());
    assert!(event["metadata"]["correlation_id"].is_string(), "{event}");

    // `after: "head"`: only what comes next.
    client
        .send(json!({"type": "subscribe", "id": "new", "all": true, "after": "head"}))
        .await;
    assert_eq!(client.recv().await["type"], "subscribed");
    bank.other
        .store()
        .append(
            &StreamId::new("Audit-1"),
            ExpectedVersion::Any,
            vec![audit(3)],
        )
        .await
        .unwrap();
    let (first, second) = (client.recv().await, client.recv().await);
    let mut by: Vec<&str> = [&first, &second]
        .map(|m| m["subscription"].as_str().unwrap())
        .to_vec();
    by.sort_unstable();
    assert_eq!(by, ["all", "new"], "{first} {second}");
    assert_eq!(first["event"], second["event"]);
    assert_eq!(first["event"]["stream_id"], "Audit-1");
}

/// A client that disconnects in the middle of a feed and subscribes again
/// from the last position it saw misses nothing and sees nothing twice,
/// while both apps keep appending.
async fn reconnects(bank: &Bank) {
    const PER_WRITER: u64 = 40;
    let (a, b) = (AccountId::new(), AccountId::new());
    bank.app.dispatch(open_account(a)).await.unwrap();
    bank.other.dispatch(open_account(b)).await.unwrap();
    let mut writers = [(bank.app.clone(), a), (bank.other.clone(), b)].map(|(app, id)| {
        tokio::spawn(async move {
            for n in 1..=PER_WRITER {
                app.dispatch(deposit(id, n)).await.unwrap();
            }
        })
    });
    let mut seen: Vec<u64> = Vec::new();
    let mut after = 0;
    // Three connections cut after 15 events each, then one to the end.
    for round in 0..4 {
        let mut client = Client::connect(&bank.addr).await;
        client
            .send(json!({"type": "subscribe", "id": format!("r{round}"), "all": true, "after": after}))
            .await;
        assert_eq!(client.recv().await["type"], "subscribed");
        let done = round == 3;
        if done {
            for writer in &mut writers {
                writer.await.unwrap();
            }
        }
        let head = bank.app.store().head_position().await.unwrap();
        let mut taken = 0;
        loop {
            if done && after >= head {
                break;
            }
            if !done && taken == 15 {
                break;
            }
            let message = client.recv().await;
            assert_eq!(message["type"], "event", "{message}");
            let position = message["event"]["position"].as_u64().unwrap();
            seen.push(position);
            after = position;
            taken += 1;
        }
        // Cut the connection mid-feed: no close handshake.
        drop(client);
    }
    let log: Vec<u64> = bank.log().await.into_iter().map(|(p, _)| p).collect();
    assert_eq!(log.len() as u64, 2 + 2 * PER_WRITER);
    assert_eq!(seen, log, "every event once, in order, across reconnects");
}

/// After `unsubscribed`, no event of that subscription comes.
async fn unsubscribes(bank: &Bank) {
    let account = AccountId::new();
    bank.app.dispatch(open_account(account)).await.unwrap();
    let stream = format!("Account-{account}");
    let mut client = Client::connect(&bank.addr).await;
    client
        .send(json!({"type": "subscribe", "id": "s1", "stream": stream}))
        .await;
    assert_eq!(client.recv().await["type"], "subscribed");
    let opened = client.recv().await;
    assert_eq!(opened["subscription"], "s1");
    bank.other.dispatch(deposit(account, 5)).await.unwrap();
    let live = client.recv().await;
    assert_eq!(live["event"]["type"], "MoneyDeposited", "{live}");
    client
        .send(json!({"type": "unsubscribe", "id": "s1"}))
        .await;
    let gone = client.recv().await;
    assert_eq!(gone, json!({"type": "unsubscribed", "id": "s1"}));
    // Another deposit to the stream; a second subscription sees it, and
    // the first one stays silent.
    let head = bank.app.store().head_position().await.unwrap();
    client
        .send(json!({"type": "subscribe", "id": "s2", "stream": stream, "after": head}))
        .await;
    assert_eq!(client.recv().await["type"], "subscribed");
    bank.other.dispatch(deposit(account, 6)).await.unwrap();
    client
        .send(
            json!({"type": "command", "id": "c1", "command": "DepositMoney",
            "body": {"account_id": account.to_string(), "amount": 7}}),
        )
        .await;
    let mut s2 = 0;
    let mut answered = false;
    while s2 < 2 || !answered {
        let message = client.recv().await;
        match message["type"].as_str() {
            Some("event") => {
                assert_eq!(message["subscription"], "s2", "{message}");
                s2 += 1;
            }
            Some("result") => answered = true,
            _ => panic!("unexpected {message}"),
        }
    }
    // The id is free again.
    client
        .send(json!({"type": "subscribe", "id": "s1", "stream": stream, "after": "head"}))
        .await;
    assert_eq!(client.recv().await["type"], "subscribed");
}

macro_rules! on_both_stores {
    ($($scenario:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let bank = Bank::sqlite().await;
            $scenario(&bank).await;
            bank.stop().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let bank = Bank::postgres().await;
            $scenario(&bank).await;
            bank.stop().await;
        }
    )*};
}

on_both_stores! {
    commands => on_sqlite_commands_over_the_websocket_answer_as_http_does,
        on_postgres_commands_over_the_websocket_answer_as_http_does;
    feeds => on_sqlite_feeds_of_all_a_stream_and_a_category_catch_up_then_go_live,
        on_postgres_feeds_of_all_a_stream_and_a_category_catch_up_then_go_live;
    reconnects => on_sqlite_a_reconnecting_client_misses_nothing_and_sees_nothing_twice,
        on_postgres_a_reconnecting_client_misses_nothing_and_sees_nothing_twice;
    unsubscribes => on_sqlite_unsubscribe_stops_the_events,
        on_postgres_unsubscribe_stops_the_events;
}
