//! Every dispatched command runs in a span carrying its correlation id.

use annals::{App, DispatchOptions, MemoryStore};
use bank::accounts::{AccountId, DepositMoney, OpenAccount, PinHasher};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// A span's name and its fields as text.
type SpanRecord = (String, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanRecord>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_owned(), fields));
    }
}

#[tokio::test]
async fn each_dispatch_has_a_span_with_command_stream_and_correlation_id() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = App::builder()
        .store(MemoryStore::new())
        .service(PinHasher::new("t"))
        .build()
        .unwrap();
    let id = AccountId::new();
    app.dispatch(OpenAccount {
        account_id: id,
        first_name: "Fay".into(),
        last_name: "Grey".into(),
        pin: "1234".into(),
    })
    .await
    .unwrap();
    let correlation = uuid::Uuid::now_v7();
    app.dispatch_with(
        DepositMoney {
            account_id: id,
            amount: 1,
            currency: None,
        },
        DispatchOptions::new().correlation_id(correlation),
    )
    .await
    .unwrap();

    let spans = spans.0.lock().unwrap();
    let dispatches: Vec<_> = spans
        .iter()
        .filter(|(name, _)| name == "annals.dispatch")
        .collect();
    assert_eq!(dispatches.len(), 2, "one span per command: {spans:?}");
    let field = |i: usize, key: &str| {
        dispatches[i]
            .1
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field(0, "command"), "OpenAccount");
    assert_eq!(field(1, "command"), "DepositMoney");
    assert_eq!(field(1, "stream"), format!("Account-{id}"));
    assert_eq!(field(1, "correlation_id"), correlation.to_string());
    assert!(
        !field(0, "correlation_id").is_empty(),
        "a default correlation id is recorded too"
    );
}

/// A span's name, its parent's name and its fields.
type NestedSpan = (String, Option<String>, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Nested(Arc<Mutex<Vec<NestedSpan>>>);

impl<S> Layer<S> for Nested
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.name().to_owned());
        self.0
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_owned(), parent, fields));
    }
}

/// An HTTP request runs in an `annals.http` span named by its request id,
/// and the command it dispatches runs inside it with that id as its
/// correlation id. (One thread: the subscriber is the test's alone.)
#[tokio::test(flavor = "current_thread")]
async fn an_http_request_has_a_span_the_dispatch_nests_in() {
    let spans = Nested::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let read = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let read = bank::read_models::ReadDb::Sqlite(read);
    let app = read
        .register(bank::app_builder(MemoryStore::new(), "t"))
        .await
        .unwrap()
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = bank::http::BankState {
        app: app.clone(),
        read,
    };
    tokio::spawn(bank::http::serve(listener, state, std::future::pending()));
    let request_id = uuid::Uuid::now_v7();
    let opened = reqwest::Client::new()
        .post(format!("{base}/accounts"))
        .header("x-request-id", request_id.to_string())
        .json(&serde_json::json!({"first_name": "Fay", "last_name": "Grey", "pin": "1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 201);

    app.shutdown().await.unwrap();
    let spans = spans.0.lock().unwrap();
    let field = |fields: &[(String, String)], key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let http: Vec<_> = spans.iter().filter(|s| s.0 == "annals.http").collect();
    assert_eq!(http.len(), 1, "{spans:?}");
    assert_eq!(field(&http[0].2, "request_id"), request_id.to_string());
    assert_eq!(field(&http[0].2, "method"), "POST");
    assert_eq!(field(&http[0].2, "route"), "/accounts");
    let dispatch = spans
        .iter()
        .find(|s| s.0 == "annals.dispatch" && field(&s.2, "command") == "OpenAccount")
        .expect("the command's span");
    assert_eq!(dispatch.1.as_deref(), Some("annals.http"));
    assert_eq!(field(&dispatch.2, "correlation_id"), request_id.to_string());
}
