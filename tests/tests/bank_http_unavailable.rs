//! The bank's HTTP API when its database goes away: 503 problems with
//! `Retry-After`, never a 500 and never a hang. The bank's router on a real
//! loopback listener, its PostgreSQL behind a relay the test cuts.

use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals_tests::postgres::{Relay, drop_schema, fresh_schema};
use bank::http::BankState;
use bank::read_models::ReadDb;
use serde_json::{Value, json};
use std::time::Duration;

/// The bank on `store` and `read`, served on a free loopback port until the
/// returned sender is dropped.
async fn serve(
    store: impl Into<annals::AnyStore>,
    read: ReadDb,
) -> (annals::App, String, tokio::sync::oneshot::Sender<()>) {
    let app = read
        .register(bank::app_builder(store, "test"))
        .await
        .unwrap()
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = BankState {
        app: app.clone(),
        read,
    };
    tokio::spawn(bank::http::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    (app, base, stop)
}

async fn open_account(http: &reqwest::Client, base: &str) -> String {
    let opened = http
        .post(format!("{base}/accounts"))
        .json(&json!({"first_name": "Ada", "last_name": "Lovelace", "pin": "1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 201);
    let body: Value = opened.json().await.unwrap();
    body["aggregate_id"].as_str().unwrap().to_owned()
}

async fn assert_unavailable(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 503, "{response:?}");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"], "urn:annals:problem:store-unavailable",
        "{body}"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_server_that_went_away_is_a_503_for_commands_and_reads() {
    let mut relay = Relay::start();
    let store = PostgresStore::builder(relay.url())
        .schema(fresh_schema())
        .acquire_timeout(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    // The read models in the store's schema (its pool's search path).
    let (app, base, stop) = serve(store.clone(), ReadDb::Postgres(store.pool().clone())).await;
    let http = reqwest::Client::new();
    let account = open_account(&http, &base).await;

    relay.shut_down();
    let started = std::time::Instant::now();
    let deposit = http
        .post(format!("{base}/accounts/{account}/deposits"))
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    let body = assert_unavailable(deposit).await;
    assert_eq!(body["detail"], "the event store is unavailable");
    let read = http
        .get(format!("{base}/accounts/{account}"))
        .send()
        .await
        .unwrap();
    assert_unavailable(read).await;
    let events = http
        .get(format!("{base}/streams/Account-{account}/events"))
        .send()
        .await
        .unwrap();
    assert_unavailable(events).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "each answer came within the pool's acquire timeout, not a hang"
    );

    drop(stop);
    let _ = app.shutdown().await;
    // A second handle on the server itself, to drop the schema.
    let direct = PostgresStore::builder(annals_tests::postgres::test_url())
        .schema(store.schema())
        .connect()
        .await
        .unwrap();
    drop_schema(&direct).await;
}

/// A store shut down under a running server (an app stopping) answers 503
/// too: `StoreError::Closed`, retry elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_is_a_503() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bank.db")).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("bank.db").display()
    ))
    .await
    .unwrap();
    let (app, base, _stop) = serve(store, ReadDb::Sqlite(pool)).await;
    let http = reqwest::Client::new();
    let account = open_account(&http, &base).await;
    app.shutdown().await.unwrap();
    let deposit = http
        .post(format!("{base}/accounts/{account}/deposits"))
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    let body = assert_unavailable(deposit).await;
    assert!(
        body["detail"].as_str().unwrap().contains("is closed"),
        "{body}"
    );
}
