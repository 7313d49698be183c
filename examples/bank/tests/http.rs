//! The bank as a user meets it: the real `bank` binary serving HTTP on a
//! loopback port, driven by an HTTP client, on SQLite and on PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The `bank` binary, serving on a free loopback port.
struct Server {
    child: Child,
    base: String,
    stdout: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(dir: &Path, envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bank"));
        command
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .env_remove("BANK_DB")
            .env_remove("BANK_SCHEMA")
            .env_remove("PORT")
            .env("BANK_ADDR", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the bank binary starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let (found, address) = mpsc::channel();
        let pipe = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn({
            let stdout = stdout.clone();
            move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix("bank: listening on ") {
                        let _ = found.send(addr.trim().to_owned());
                    }
                    let mut all = stdout.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            }
        });
        let base = address
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "the bank never said where it listens; it printed:\n{}",
                    stdout.lock().unwrap()
                )
            });
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Self {
            child,
            base,
            stdout,
            reader: Some(reader),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the exit; its status and what it printed.
    fn terminate(mut self) -> (ExitStatus, String) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: sends a signal to our own child, which we have not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the bank did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let printed = self.stdout.lock().unwrap().clone();
        (status, printed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// Asserts a problem+json answer of `status` and `type`; returns its body.
async fn problem(response: reqwest::Response, status: u16, problem_type: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{response:?}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let body = json_of(response).await;
    assert_eq!(body["type"], problem_type, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string(), "{body}");
    body
}

/// What a customer does, and every error status a client can meet, with
/// what its problem says.
async fn scenario(server: &Server) {
    let http = reqwest::Client::new();
    let request_id = Uuid::now_v7();
    let opened = http
        .post(server.url("/accounts"))
        .header("x-request-id", request_id.to_string())
        .json(&json!({"first_name": "Ada", "last_name": "Lovelace", "pin": "1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::CREATED);
    assert_eq!(opened.headers()["x-request-id"], request_id.to_string());
    assert_eq!(opened.headers()["etag"], "\"1\"");
    let location = opened.headers()["location"].to_str().unwrap().to_owned();
    let body = json_of(opened).await;
    let account = body["aggregate_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/accounts/{account}"));
    assert_eq!(body["stream_id"], format!("Account-{account}"));
    assert_eq!(body["correlation_id"], request_id.to_string());
    assert_eq!(
        body["events"],
        json!([{"type": "AccountOpened", "version": 2}])
    );

    // The request id is the stored event's correlation id.
    let stream = json_of(
        http.get(server.url(&format!("/streams/Account-{account}/events")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stream["version"], 1);
    assert_eq!(stream["events"][0]["type"], "AccountOpened");
    assert_eq!(
        stream["events"][0]["metadata"]["correlation_id"],
        request_id.to_string()
    );
    assert_eq!(stream["events"][0]["data"]["last_name"], "Lovelace");
    // A request id that is not a UUID is replaced by a fresh one.
    let replaced = http
        .get(server.url(&location))
        .header("x-request-id", "not-a-uuid")
        .send()
        .await
        .unwrap();
    let echoed = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(Uuid::parse_str(echoed).is_ok(), "{echoed}");

    let post = |path: String, body: Value| http.post(server.url(&path)).json(&body).send();
    let deposited = post(
        format!("/accounts/{account}/deposits"),
        json!({"amount": 10_000}),
    )
    .await
    .unwrap();
    assert_eq!(deposited.status(), StatusCode::OK);
    assert_eq!(deposited.headers()["etag"], "\"2\"");
    let withdrawn = post(
        format!("/accounts/{account}/withdrawals"),
        json!({"amount": 3_000}),
    )
    .await
    .unwrap();
    assert_eq!(withdrawn.status(), StatusCode::OK);
    // Account commands answer once the read models show them.
    let balance = json_of(http.get(server.url(&location)).send().await.unwrap()).await;
    assert_eq!(
        balance,
        json!({"account_id": account, "owner": "Ada Lovelace", "balance": 7_000,
               "currency": "EUR", "status": "open"})
    );

    // Cash at a teller, waiting for the outcome.
    let atm_request = Uuid::now_v7();
    let atm = http
        .post(server.url("/tellers/atm-1/withdrawals"))
        .header("prefer", "wait=10")
        .header("x-request-id", atm_request.to_string())
        .json(&json!({"account_id": account, "amount": 2_000, "pin": "1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(atm.status(), StatusCode::OK);
    let dispensed = json_of(atm).await;
    assert_eq!(dispensed["status"], "dispensed", "{dispensed}");
    assert_eq!(dispensed["amount"], 2_000);
    // The process's commands carry the request's correlation id on: the
    // account's debit and the teller's payout both record it.
    let debit = json_of(
        http.get(server.url(&format!("/streams/Account-{account}/events?from=4")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let debit: Vec<(&str, &str)> = debit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["metadata"]["correlation_id"].as_str().unwrap(),
            )
        })
        .collect();
    let atm_request = atm_request.to_string();
    assert_eq!(
        debit,
        [
            ("WithdrawalAuthorised", atm_request.as_str()),
            ("MoneyWithdrawn", atm_request.as_str())
        ]
    );
    // Without waiting: 202 and where to look; the wrong PIN is declined.
    let asked = http
        .post(server.url("/tellers/atm-1/withdrawals"))
        .json(&json!({"account_id": account, "amount": 1_000, "pin": "0000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let follow = asked.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        follow.starts_with("/tellers/atm-1/withdrawals/"),
        "{follow}"
    );
    let declined = http
        .get(server.url(&follow))
        .header("prefer", "wait=10")
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), StatusCode::OK);
    let declined = json_of(declined).await;
    assert_eq!(declined["status"], "declined");
    assert_eq!(declined["reason"], "wrong PIN");

    let history = json_of(
        http.get(server.url(&format!("/accounts/{account}/history")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let movements: Vec<(String, i64)> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        movements,
        [
            ("deposit".to_owned(), 10_000),
            ("withdrawal".to_owned(), 3_000),
            ("withdrawal".to_owned(), 2_000)
        ]
    );

    // 400: not JSON, and JSON that does not fit, each with serde's message.
    let syntax = http
        .post(server.url(&format!("/accounts/{account}/deposits")))
        .header("content-type", "application/json")
        .body(r#"{"amount": "#)
        .send()
        .await
        .unwrap();
    let syntax = problem(syntax, 400, "urn:annals:problem:malformed-body").await;
    assert_eq!(
        syntax["detail"],
        "EOF while parsing a value at line 1 column 11"
    );
    let shape = post(
        format!("/accounts/{account}/deposits"),
        json!({"amount": "ten"}),
    )
    .await
    .unwrap();
    let shape = problem(shape, 400, "urn:annals:problem:malformed-body").await;
    assert_eq!(
        shape["detail"],
        "invalid type: string \"ten\", expected u64"
    );

    // 422: the domain's refusal, its message and its type.
    let refused = post(
        format!("/accounts/{account}/withdrawals"),
        json!({"amount": 1_000_000}),
    )
    .await
    .unwrap();
    let refused = problem(refused, 422, "urn:bank:problem:insufficient-funds").await;
    assert_eq!(
        refused["detail"],
        "insufficient funds: the balance is 5000, 1000000 was requested"
    );
    assert_eq!(
        (refused["balance"].clone(), refused["requested"].clone()),
        (json!(5_000), json!(1_000_000))
    );

    // Closing needs a zero balance; an empty account closes.
    let not_empty = post(format!("/accounts/{account}/close"), json!({}))
        .await
        .unwrap();
    let not_empty = problem(not_empty, 422, "urn:bank:problem:non-zero-balance").await;
    assert_eq!(not_empty["balance"], 5_000);
    let empty = json_of(
        post(
            "/accounts".into(),
            json!({"first_name": "Al", "last_name": "Khwarizmi", "pin": "9999"}),
        )
        .await
        .unwrap(),
    )
    .await;
    let empty = empty["aggregate_id"].as_str().unwrap().to_owned();
    let closed = http
        .post(server.url(&format!("/accounts/{empty}/close")))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), StatusCode::OK, "a close needs no body");
    let closed = json_of(
        http.get(server.url(&format!("/accounts/{empty}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(closed["status"], "closed");
    let again = post(format!("/accounts/{empty}/deposits"), json!({"amount": 1}))
        .await
        .unwrap();
    problem(again, 422, "urn:bank:problem:account-closed").await;

    // 409: a command that expects a version the account has moved past.
    let version = stream_version(server, &account).await;
    let stale = http
        .post(server.url(&format!("/accounts/{account}/withdrawals")))
        .header("if-match", "\"2\"")
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    let stale = problem(stale, 409, "urn:annals:problem:version-conflict").await;
    assert_eq!(stale["expected_version"], 2);
    assert_eq!(stale["actual_version"], version);
    assert_eq!(
        stream_version(server, &account).await,
        version,
        "nothing was written"
    );
    let current = http
        .post(server.url(&format!("/accounts/{account}/withdrawals")))
        .header("if-match", format!("\"{version}\""))
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), StatusCode::OK);
    assert_eq!(current.headers()["etag"], format!("\"{}\"", version + 1));

    // 404: an account nobody opened, to a command and to a read.
    let nobody = Uuid::now_v7();
    let unknown = post(format!("/accounts/{nobody}/deposits"), json!({"amount": 1}))
        .await
        .unwrap();
    let unknown = problem(unknown, 404, "urn:bank:problem:no-such-account").await;
    assert_eq!(unknown["detail"], "the account is not open");
    let read = http
        .get(server.url(&format!("/accounts/{nobody}")))
        .send()
        .await
        .unwrap();
    problem(read, 404, "urn:annals:problem:not-found").await;
    let no_stream = http
        .get(server.url(&format!("/streams/Account-{nobody}/events")))
        .send()
        .await
        .unwrap();
    problem(no_stream, 404, "urn:annals:problem:not-found").await;
    let no_route = http.get(server.url("/no/such/route")).send().await.unwrap();
    problem(no_route, 404, "urn:annals:problem:not-found").await;

    // 413: too large a body, declared or streamed, is refused unread.
    let big = format!(r#"{{"amount": 1, "pad": "{}"}}"#, "x".repeat(70 * 1024));
    let path = format!("/accounts/{account}/deposits");
    let declared = raw_post(server, &path, &big, false).await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(declared.contains("application/problem+json"), "{declared}");
    assert!(
        declared.contains(r#""type":"urn:annals:problem:body-too-large""#),
        "{declared}"
    );
    assert!(declared.contains(r#""limit":65536"#), "{declared}");
    let streamed = raw_post(server, &path, &big, true).await;
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    assert!(
        streamed.contains(r#""type":"urn:annals:problem:body-too-large""#),
        "{streamed}"
    );
    assert_eq!(
        stream_version(server, &account).await,
        version + 1,
        "no oversized deposit was recorded"
    );

    // 415, and 405 with the methods allowed.
    let form = http
        .post(server.url(&format!("/accounts/{account}/deposits")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("amount=1")
        .send()
        .await
        .unwrap();
    problem(form, 415, "urn:annals:problem:unsupported-media-type").await;
    let method = http.delete(server.url(&location)).send().await.unwrap();
    assert_eq!(method.headers()["allow"], "GET,HEAD");
    problem(method, 405, "about:blank").await;
}

/// POSTs `body` as JSON over a plain socket, with `Content-Length` or in
/// chunks, writing all of it before reading the answer. (A server that
/// answers before reading a body closes with the rest unread; an HTTP
/// client still writing then may report the reset instead of the answer,
/// which the kernel keeps readable.)
async fn raw_post(server: &Server, path: &str, body: &str, chunked: bool) -> String {
    use std::io::{Read, Write};
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\nconnection: close\r\n"
    );
    if chunked {
        request.push_str("transfer-encoding: chunked\r\n\r\n");
        for chunk in body.as_bytes().chunks(8 * 1024) {
            request.push_str(&format!("{:x}\r\n", chunk.len()));
            request.push_str(std::str::from_utf8(chunk).unwrap());
            request.push_str("\r\n");
        }
        request.push_str("0\r\n\r\n");
    } else {
        request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    }
    tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = socket.write_all(request.as_bytes());
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap()
}

/// A customer profile as the README's curl lines use it: create, patch
/// with If-Match, a schema refusal that stores nothing, read, delete.
async fn profiles(server: &Server) {
    let http = reqwest::Client::new();
    let created = http
        .post(server.url("/profiles"))
        .json(&json!({"name": "Ada Lovelace", "email": "ada@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["etag"], "\"1\"");
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/profiles/").unwrap().to_owned();
    let patch = |ops: Value, version: &str| {
        http.patch(server.url(&location))
            .header("content-type", "application/json-patch+json")
            .header("if-match", format!("\"{version}\""))
            .body(ops.to_string())
            .send()
    };
    let ops = json!([{"op": "add", "path": "/address", "value": {"city": "London"}}]);
    let patched = patch(ops.clone(), "1").await.unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    assert_eq!(patched.headers()["etag"], "\"2\"");
    let stale = patch(json!([{"op": "remove", "path": "/address"}]), "1")
        .await
        .unwrap();
    let body = problem(stale, 409, "urn:annals:problem:version-conflict").await;
    assert_eq!(body["actual_version"], 2);
    let refused = patch(
        json!([{"op": "replace", "path": "/email", "value": "not mail"}]),
        "2",
    )
    .await
    .unwrap();
    let body = problem(refused, 422, "urn:annals:problem:schema-violation").await;
    assert_eq!(body["errors"][0]["instance_path"], "/email", "{body}");
    let got = http.get(server.url(&location)).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["etag"], "\"2\"");
    assert_eq!(
        json_of(got).await,
        json!({"name": "Ada Lovelace", "email": "ada@example.org", "address": {"city": "London"}})
    );
    let events = json_of(
        http.get(server.url(&format!("/streams/profiles-{id}/events")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(events["version"], 2, "the refusal stored nothing");
    assert_eq!(events["events"][1]["type"], "DocumentPatched");
    assert_eq!(events["events"][1]["data"]["patch"], ops);
    let deleted = http.delete(server.url(&location)).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = http.get(server.url(&location)).send().await.unwrap();
    problem(gone, 404, "urn:annals:problem:not-found").await;
}

async fn stream_version(server: &Server, account: &str) -> u64 {
    let stream = reqwest::get(server.url(&format!("/streams/Account-{account}/events")))
        .await
        .unwrap();
    json_of(stream).await["version"].as_u64().unwrap()
}

/// Every route the router serves is in `/openapi.json` with its methods:
/// each documented operation is served, and every other method of a
/// documented path is 405; and the routes the API registered are exactly
/// the documented ones.
async fn openapi_is_true(server: &Server) {
    let http = reqwest::Client::new();
    let document = json_of(http.get(server.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let documented: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = paths
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| {
                    [
                        "get", "put", "post", "delete", "patch", "head", "options", "trace",
                    ]
                    .contains(&k.as_str())
                })
                .map(|k| k.to_ascii_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect();
    let registered: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        bank::http::api()
            .endpoints()
            .into_iter()
            .map(|(path, methods)| (path, methods.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(registered, documented);
    for (path, methods) in &documented {
        let concrete = path
            .replace("{account_id}", &Uuid::now_v7().to_string())
            .replace("{stream_id}", "Account-x")
            .replace("{teller_id}", "atm-probe")
            .replace("{withdrawal_id}", "w-probe")
            .replace("{id}", "profile-probe");
        assert!(
            !concrete.contains('{'),
            "a parameter the probe does not know: {path}"
        );
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let answer = http
                .request(method.parse().unwrap(), server.url(&concrete))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            let no_route = status == 404 && body["detail"] == "no route for this path";
            if methods.contains(method) {
                assert!(
                    status != 405 && !no_route,
                    "{method} {path} is documented but answers {status}: {body}"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not documented");
            }
        }
    }
    // Commands document their body without the path's fields.
    let deposit = &paths["/accounts/{account_id}/deposits"]["post"];
    assert_eq!(deposit["operationId"], "DepositMoney");
    let body = &deposit["requestBody"]["content"]["application/json"]["schema"];
    assert!(body["properties"]["amount"].is_object(), "{body}");
    assert!(body["properties"].get("account_id").is_none(), "{body}");
    assert_eq!(deposit["parameters"][0]["name"], "account_id");
    assert!(deposit["responses"]["422"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_customer_meets_every_answer_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    scenario(&server).await;
    profiles(&server).await;
    openapi_is_true(&server).await;
    let (status, printed) = server.terminate();
    assert!(status.success(), "{status:?}: {printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_customer_meets_every_answer_over_http() {
    let url = std::env::var("ANNALS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("bank_http_{}", Uuid::now_v7().simple());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("DATABASE_URL", &url), ("BANK_SCHEMA", &schema)],
    );
    let outcome = async {
        assert!(
            server
                .stdout
                .lock()
                .unwrap()
                .contains(&format!("schema {schema}")),
            "the bank says where its events go"
        );
        scenario(&server).await;
        profiles(&server).await;
    };
    outcome.await;
    let (status, printed) = server.terminate();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("PostgreSQL is reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    assert!(status.success(), "{status:?}: {printed}");
}

/// SIGTERM: the requests are answered, the handlers stop at a checkpoint,
/// the store closes, and `bank.db` alone (without its `-wal`) holds every
/// event; a restart serves the same balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_bank_cleanly_with_every_event_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    let opened = json_of(
        http.post(server.url("/accounts"))
            .json(&json!({"first_name": "", "last_name": "Hopper", "pin": "2468"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let account = opened["aggregate_id"].as_str().unwrap().to_owned();
    http.post(server.url(&format!("/accounts/{account}/deposits")))
        .json(&json!({"amount": 5_000}))
        .send()
        .await
        .unwrap();
    let atm = http
        .post(server.url("/tellers/atm-9/withdrawals"))
        .header("prefer", "wait=10")
        .json(&json!({"account_id": account, "amount": 1_500, "pin": "2468"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(atm).await["status"], "dispensed");
    // Every handler past every event before the signal (under load the
    // process manager may still be reading the teller's last events; a
    // stop then checkpoints where it got to, which is not what this test
    // is about).
    let mut handlers = json!(null);
    for _ in 0..200 {
        handlers = json_of(http.get(server.url("/handlers")).send().await.unwrap()).await;
        let list = handlers["handlers"].as_array().unwrap();
        if list.iter().all(|h| h["lag"].as_u64() == Some(0)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let head = handlers["handlers"][0]["position"].as_u64().unwrap()
        + handlers["handlers"][0]["lag"].as_u64().unwrap();
    assert!(head >= 6, "{handlers}");
    assert!(
        handlers["handlers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["lag"].as_u64() == Some(0)),
        "handlers still behind after 20 s: {handlers}"
    );

    let (status, printed) = server.terminate();
    assert!(status.success(), "{status:?}: {printed}");
    assert!(
        printed.contains("bank: stopped; handlers checkpointed, store closed"),
        "{printed}"
    );
    // The database file alone, copied as a user would copy "the database".
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("bank.db"), copy.path().join("bank.db")).unwrap();
    let store = annals::sqlite::SqliteStore::open(copy.path().join("bank.db"))
        .await
        .unwrap();
    assert_eq!(
        annals::EventStore::head_position(&store).await.unwrap(),
        head
    );
    assert_eq!(
        annals::EventStore::load_checkpoint(&store, "withdrawal")
            .await
            .unwrap(),
        Some(head),
        "the process stopped at a checkpoint past every event"
    );
    store.close().await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        copy.path().join("bank.db").display()
    ))
    .await
    .unwrap();
    let checkpoints: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM annals_projection_checkpoints ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        checkpoints,
        [head as i64, head as i64, head as i64],
        "every read model: documents, balances, history"
    );
    pool.close().await;

    let again = Server::start(dir.path(), &[]);
    let balance = json_of(
        reqwest::get(again.url(&format!("/accounts/{account}")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(balance["balance"], 3_500);
    assert_eq!(balance["owner"], "Hopper");
    let (status, _) = again.terminate();
    assert!(status.success());
}

/// The README's curl lines, run as written against a fresh bank (its
/// `localhost:3000` pointed at the test's port).
#[test]
fn the_readme_curl_lines_open_deposit_withdraw_and_read_the_history() {
    for tool in ["curl", "jq", "bash"] {
        let found = Command::new(tool).arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "`{tool}` is needed to run the README's lines (.ci/run installs it)"
        );
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = readme
        .split("<!-- readme-curl:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- readme-curl:end -->").next())
        .expect("the README marks its curl lines");
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(script.contains("localhost:3000"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c"])
        .arg(format!(
            "{}\necho\necho \"ACCOUNT=$ACCOUNT\"",
            script.replace("localhost:3000", &address)
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Four JSON answers (curl adds no newline), then the account's id.
    let text = stdout.replace("}{", "}\n{");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    let account = lines[4].strip_prefix("ACCOUNT=").unwrap();
    assert!(Uuid::parse_str(account).is_ok(), "{stdout}");
    let answers: Vec<Value> = lines[..4]
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(answers.len(), 4, "{stdout}");
    assert_eq!(answers[0]["events"][0]["type"], "MoneyDeposited");
    assert_eq!(answers[1]["status"], "dispensed", "{stdout}");
    assert_eq!(answers[2]["balance"], 8_000);
    assert_eq!(answers[2]["owner"], "Ada Lovelace");
    let history: Vec<(&str, i64)> = answers[3]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["amount"].as_i64().unwrap()))
        .collect();
    assert_eq!(history, [("deposit", 10_000), ("withdrawal", 2_000)]);
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn the_readme_profile_lines_create_patch_refuse_read_and_delete() {
    for tool in ["curl", "bash"] {
        let found = Command::new(tool).arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "`{tool}` is needed to run the README's lines (.ci/run installs it)"
        );
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = readme
        .split("<!-- readme-profiles:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- readme-profiles:end -->").next())
        .expect("the README marks its profile lines");
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c"])
        .arg(format!(
            "{}\necho\necho \"PROFILE=$PROFILE\"",
            script.replace("localhost:3000", &address)
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Three JSON answers (curl adds no newline), the DELETE's status, then the URL.
    let text = stdout.replace("}{", "}\n{").replace("}204", "}\n204");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    let answers: Vec<Value> = lines[..3]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let profile =
        json!({"name": "Ada Lovelace", "email": "ada@example.org", "address": {"city": "London"}});
    assert_eq!(answers[0], profile);
    assert_eq!(answers[1]["type"], "urn:annals:problem:schema-violation");
    assert_eq!(answers[1]["errors"][0]["instance_path"], "/email");
    assert_eq!(answers[2], profile, "the refusal changed nothing");
    assert_eq!(lines[3], "204");
    assert!(lines[4].starts_with("PROFILE=/profiles/"), "{stdout}");
    let (status, _) = server.terminate();
    assert!(status.success());
}
