//! JSON documents over real HTTP on loopback (`Api::documents`), on SQLite
//! and PostgreSQL: create, read, replace, patch, delete, schema refusals
//! that store nothing, `If-Match`, and racing patches, from one App and from
//! two Apps on one database.

use annals::App;
use annals::document::{DocumentKind, DocumentReadModel};
use annals::http::Api;
use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals_tests::postgres::{fresh_schema, test_url};
use axum::extract::FromRef;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use std::path::PathBuf;

#[derive(Clone)]
struct State {
    app: App,
    read: DocumentReadModel,
}

impl FromRef<State> for App {
    fn from_ref(state: &State) -> App {
        state.app.clone()
    }
}

impl FromRef<State> for DocumentReadModel {
    fn from_ref(state: &State) -> DocumentReadModel {
        state.read.clone()
    }
}

/// Where the events and the read model live.
enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

/// An App serving the `notes` kind on a loopback port.
struct Node {
    app: App,
    base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        self.app.shutdown().await.unwrap();
    }
}

fn notes() -> DocumentKind {
    DocumentKind::new("notes")
        .unwrap()
        .schema(json!({
            "type": "object",
            "required": ["title"],
            "properties": {
                "title": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "stars": {"type": "integer", "minimum": 0}
            }
        }))
        .unwrap()
}

async fn node(database: &Database) -> Node {
    let (builder, read) = match database {
        Database::Sqlite(path) => {
            let store = SqliteStore::open(path).await.unwrap();
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(10));
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            (App::builder().store(store), DocumentReadModel::Sqlite(pool))
        }
        Database::Postgres(schema) => {
            let store = PostgresStore::builder(test_url())
                .schema(schema)
                .connect()
                .await
                .expect("PostgreSQL must be reachable (ANNALS_TEST_POSTGRES_URL)");
            let search_path = schema.clone();
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .after_connect(move |conn, _| {
                    let sql = format!("SET search_path TO \"{search_path}\"");
                    Box::pin(async move {
                        sqlx::query(AssertSqlSafe(sql))
                            .execute(&mut *conn)
                            .await
                            .map(drop)
                    })
                })
                .connect(&test_url())
                .await
                .expect("PostgreSQL must be reachable (ANNALS_TEST_POSTGRES_URL)");
            (
                App::builder().store(store),
                DocumentReadModel::Postgres(pool),
            )
        }
    };
    let app = read.register(builder).await.unwrap().build().unwrap();
    let router = Api::new()
        .documents(notes())
        .stream_events()
        .into_router()
        .with_state(State {
            app: app.clone(),
            read,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Node { app, base, server }
}

fn etag(response: &Response) -> &str {
    response.headers()["etag"].to_str().unwrap()
}

/// Asserts a problem+json answer of `status` and `type`; returns its body.
async fn problem(response: Response, status: u16, problem_type: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{response:?}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], problem_type, "{body}");
    body
}

async fn patch(http: &Client, url: &str, if_match: Option<&str>, ops: Value) -> Response {
    let mut request = http
        .patch(url)
        .header("content-type", "application/json-patch+json")
        .body(ops.to_string());
    if let Some(version) = if_match {
        request = request.header("if-match", format!("\"{version}\""));
    }
    request.send().await.unwrap()
}

/// The stream's stored events: (type, data).
async fn journal(node: &Node, id: &str) -> Vec<(String, Value)> {
    let events: Value = reqwest::get(node.url(&format!("/streams/notes-{id}/events")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["data"].clone()))
        .collect()
}

/// Everything a client does with one document, and every refusal.
async fn lifecycle(node: &Node) {
    let http = Client::new();
    let created = http
        .post(node.url("/notes"))
        .json(&json!({"title": "groceries", "tags": ["home"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(etag(&created), "\"1\"");
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/notes/").unwrap().to_owned();
    assert_eq!(
        created.json::<Value>().await.unwrap(),
        json!({"title": "groceries", "tags": ["home"]})
    );
    let url = node.url(&location);

    // Read right after the write: strongly consistent.
    let got = http.get(&url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(etag(&got), "\"1\"");
    assert_eq!(
        got.json::<Value>().await.unwrap(),
        json!({"title": "groceries", "tags": ["home"]})
    );

    // Replace.
    let replaced = http
        .put(&url)
        .header("if-match", "\"1\"")
        .json(&json!({"title": "groceries", "tags": ["home", "weekly"], "stars": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK);
    assert_eq!(etag(&replaced), "\"2\"");

    // Patch with If-Match.
    let ops = json!([
        {"op": "test", "path": "/stars", "value": 1},
        {"op": "replace", "path": "/stars", "value": 2},
        {"op": "add", "path": "/tags/-", "value": "urgent"}
    ]);
    let patched = patch(&http, &url, Some("2"), ops.clone()).await;
    assert_eq!(patched.status(), StatusCode::OK);
    assert_eq!(etag(&patched), "\"3\"");
    let now = json!({"title": "groceries", "tags": ["home", "weekly", "urgent"], "stars": 2});
    assert_eq!(patched.json::<Value>().await.unwrap(), now);
    let got = http.get(&url).send().await.unwrap();
    assert_eq!(etag(&got), "\"3\"");
    assert_eq!(got.json::<Value>().await.unwrap(), now);

    // A stale If-Match: 409 with both versions.
    let stale = patch(
        &http,
        &url,
        Some("2"),
        json!([{"op": "remove", "path": "/stars"}]),
    )
    .await;
    let body = problem(stale, 409, "urn:annals:problem:version-conflict").await;
    assert_eq!(
        (
            body["expected_version"].clone(),
            body["actual_version"].clone()
        ),
        (json!(2), json!(3))
    );

    // Schema refusals store nothing.
    let before = journal(node, &id).await;
    let wrong_type = patch(
        &http,
        &url,
        None,
        json!([{"op": "replace", "path": "/title", "value": 5}]),
    )
    .await;
    let body = problem(wrong_type, 422, "urn:annals:problem:schema-violation").await;
    assert_eq!(body["errors"][0]["instance_path"], "/title", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("string"),
        "{body}"
    );
    let missing_title = http
        .put(&url)
        .json(&json!({"tags": ["x"], "stars": -1}))
        .send()
        .await
        .unwrap();
    let body = problem(missing_title, 422, "urn:annals:problem:schema-violation").await;
    let mut paths: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["instance_path"].as_str().unwrap().to_owned())
        .collect();
    paths.sort();
    assert_eq!(paths, ["", "/stars"], "{body}");
    assert_eq!(journal(node, &id).await, before);
    let got = http.get(&url).send().await.unwrap();
    assert_eq!(etag(&got), "\"3\"");
    assert_eq!(got.json::<Value>().await.unwrap(), now);

    // Patches that cannot apply: a failed test is a conflict, a bad path unprocessable.
    let test_failed = patch(
        &http,
        &url,
        None,
        json!([{"op": "test", "path": "/stars", "value": 9}]),
    )
    .await;
    let body = problem(test_failed, 409, "urn:annals:problem:patch-test-failed").await;
    assert_eq!(
        (body["operation"].clone(), body["path"].clone()),
        (json!(0), json!("/stars"))
    );
    let bad_path = patch(
        &http,
        &url,
        None,
        json!([{"op": "add", "path": "/stars", "value": 3}, {"op": "remove", "path": "/nope"}]),
    )
    .await;
    let body = problem(bad_path, 422, "urn:annals:problem:patch-failed").await;
    assert_eq!(body["operation"], 1);

    // Malformed requests.
    let not_json = http
        .patch(&url)
        .header("content-type", "application/json-patch+json")
        .body("[{")
        .send()
        .await
        .unwrap();
    problem(not_json, 400, "urn:annals:problem:malformed-body").await;
    let not_a_patch = patch(
        &http,
        &url,
        None,
        json!([{"op": "frobnicate", "path": "/x"}]),
    )
    .await;
    problem(not_a_patch, 400, "urn:annals:problem:malformed-body").await;
    let plain_json = http
        .patch(&url)
        .json(&json!([{"op": "remove", "path": "/stars"}]))
        .send()
        .await
        .unwrap();
    problem(plain_json, 415, "urn:annals:problem:unsupported-media-type").await;
    let array = http.put(&url).json(&json!([1])).send().await.unwrap();
    problem(array, 400, "urn:annals:problem:malformed-body").await;
    let bad_if_match = http
        .delete(&url)
        .header("if-match", "*")
        .send()
        .await
        .unwrap();
    problem(bad_if_match, 400, "urn:annals:problem:invalid-request").await;
    assert_eq!(journal(node, &id).await, before);

    // The journal: the whole document, then patches.
    let events = journal(node, &id).await;
    let types: Vec<_> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["DocumentCreated", "DocumentReplaced", "DocumentPatched"]
    );
    assert_eq!(
        events[0].1["document"],
        json!({"title": "groceries", "tags": ["home"]})
    );
    let mut diff: Vec<Value> = events[1].1["patch"].as_array().unwrap().clone();
    diff.sort_by_key(|op| op["path"].as_str().unwrap().to_owned());
    assert_eq!(
        diff,
        [
            json!({"op": "add", "path": "/stars", "value": 1}),
            json!({"op": "add", "path": "/tags/1", "value": "weekly"}),
        ]
    );
    assert_eq!(events[2].1["patch"], ops);

    // Delete, then it is gone for every method.
    let deleted = http
        .delete(&url)
        .header("if-match", "\"3\"")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(etag(&deleted), "\"4\"");
    problem(
        http.get(&url).send().await.unwrap(),
        404,
        "urn:annals:problem:not-found",
    )
    .await;
    let after = patch(
        &http,
        &url,
        None,
        json!([{"op": "remove", "path": "/stars"}]),
    )
    .await;
    problem(after, 404, "urn:annals:problem:not-found").await;
    let put = http
        .put(&url)
        .json(&json!({"title": "back"}))
        .send()
        .await
        .unwrap();
    problem(put, 404, "urn:annals:problem:not-found").await;
    let never = http
        .get(node.url("/notes/never-made"))
        .send()
        .await
        .unwrap();
    problem(never, 404, "urn:annals:problem:not-found").await;
    assert_eq!(journal(node, &id).await.len(), 4);

    // An Idempotency-Key is the new document's id: a retry makes no second one.
    let key = uuid::Uuid::now_v7();
    for attempt in 0..2 {
        let create = http
            .post(node.url("/notes"))
            .header("idempotency-key", key.to_string())
            .json(&json!({"title": "once"}))
            .send()
            .await
            .unwrap();
        if attempt == 0 {
            assert_eq!(create.status(), StatusCode::CREATED);
            assert_eq!(create.headers()["location"], format!("/notes/{key}"));
        } else {
            problem(create, 409, "urn:annals:problem:document-exists").await;
        }
    }
    assert_eq!(journal(node, &key.to_string()).await.len(), 1);

    // A document that fails the schema is never created.
    let refused = http
        .post(node.url("/notes"))
        .json(&json!({"stars": 1}))
        .send()
        .await
        .unwrap();
    let body = problem(refused, 422, "urn:annals:problem:schema-violation").await;
    assert_eq!(body["errors"][0]["instance_path"], "");
}

/// Patches sent together with the same If-Match, spread over `nodes`:
/// exactly one is applied, the others are 409 with both versions.
async fn racing_patches(nodes: &[&Node]) {
    let http = Client::new();
    let created = http
        .post(nodes[0].url("/notes"))
        .json(&json!({"title": "race", "stars": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let racers = 8;
    let answers = futures::future::join_all((0..racers).map(|i| {
        let url = nodes[i % nodes.len()].url(&location);
        let http = http.clone();
        async move {
            let ops = json!([{"op": "replace", "path": "/stars", "value": i + 1}]);
            let answer = patch(&http, &url, Some("1"), ops).await;
            let status = answer.status();
            (i, status, answer.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let winners: Vec<_> = answers
        .iter()
        .filter(|(_, s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    let winner = winners[0].0;
    for (_, status, body) in answers.iter().filter(|(i, _, _)| *i != winner) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["type"], "urn:annals:problem:version-conflict");
        assert_eq!(
            (
                body["expected_version"].clone(),
                body["actual_version"].clone()
            ),
            (json!(1), json!(2))
        );
    }
    let expected = json!({"title": "race", "stars": winner + 1});
    for node in nodes {
        // Read from every App right after the answer: the write shows,
        // whichever App runs the read model's projection.
        let got = http.get(node.url(&location)).send().await.unwrap();
        assert_eq!(etag(&got), "\"2\"");
        assert_eq!(got.json::<Value>().await.unwrap(), expected);
    }
    // Every App writes in turn, each from the version the last one made,
    // and every App reads it at once.
    for (n, node) in nodes.iter().enumerate() {
        let version = (n + 2).to_string();
        let ops = json!([{"op": "add", "path": "/tags", "value": [format!("node {n}")]}]);
        let answer = patch(&http, &node.url(&location), Some(&version), ops).await;
        assert_eq!(answer.status(), StatusCode::OK, "{answer:?}");
        assert_eq!(etag(&answer), format!("\"{}\"", n + 3));
        for reader in nodes {
            let got = http.get(reader.url(&location)).send().await.unwrap();
            assert_eq!(etag(&got), format!("\"{}\"", n + 3));
            assert_eq!(
                got.json::<Value>().await.unwrap()["tags"],
                json!([format!("node {n}")])
            );
        }
    }
}

/// The document's routes are in the OpenAPI document, the schema as the body.
async fn documented(node: &Node) {
    let document: Value = reqwest::get(node.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = &document["paths"];
    assert!(paths["/notes"]["post"].is_object(), "{paths}");
    for method in ["get", "put", "patch", "delete"] {
        assert!(
            paths["/notes/{id}"][method].is_object(),
            "{method}: {paths}"
        );
    }
    let body = &paths["/notes/{id}"]["put"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["required"], json!(["title"]), "{body}");
    assert!(
        paths["/notes/{id}"]["patch"]["requestBody"]["content"]["application/json-patch+json"]
            .is_object()
    );
}

fn sqlite() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("documents.db");
    (dir, Database::Sqlite(path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_over_http_on_sqlite() {
    let (_dir, database) = sqlite();
    let node = node(&database).await;
    lifecycle(&node).await;
    documented(&node).await;
    racing_patches(&[&node]).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_over_http_on_postgres() {
    let database = Database::Postgres(fresh_schema());
    let node = node(&database).await;
    lifecycle(&node).await;
    racing_patches(&[&node]).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_patches_from_two_apps_on_one_sqlite_file() {
    let (_dir, database) = sqlite();
    let (one, two) = (node(&database).await, node(&database).await);
    racing_patches(&[&one, &two]).await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_patches_from_two_apps_on_one_postgres_database() {
    let database = Database::Postgres(fresh_schema());
    let (one, two) = (node(&database).await, node(&database).await);
    racing_patches(&[&one, &two]).await;
    one.stop().await;
    two.stop().await;
}
