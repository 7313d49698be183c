//! The event browser as an operator meets it: the real `bank` binary on
//! SQLite, its `/browser` page in a real headless Chromium driven through
//! chromedriver. The test fails, never skips, when Chromium or chromedriver
//! is missing (`.ci/run` installs Debian's `chromium` and `chromium-driver`).

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long the page may take to show something before the test gives up.
/// A bound on a wait, not a claim about speed.
const PATIENCE: Duration = Duration::from_secs(60);

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// Sends SIGTERM and waits until the process exited (the bank stops at
    /// a checkpoint and closes its store).
    fn terminate(mut self) {
        let pid = libc::pid_t::try_from(self.0.id()).expect("a pid fits pid_t");
        // SAFETY: sends a signal to our own child, which we have not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.0.try_wait().expect("the child can be waited for") {
                assert!(status.success(), "the bank exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the bank did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `bank` binary serving on `addr` (port 0: a free one), in `dir`.
fn start_bank(dir: &Path, addr: &str, envs: &[(&str, &str)]) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bank"))
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BANK_DB")
        .env_remove("BANK_SCHEMA")
        .env_remove("PORT")
        .env("BANK_ADDR", addr)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the bank binary starts");
    let pipe = child.stdout.take().expect("piped stdout");
    let printed = Arc::new(Mutex::new(String::new()));
    let (found, address) = mpsc::channel();
    std::thread::spawn({
        let printed = printed.clone();
        move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("bank: listening on ") {
                    let _ = found.send(addr.trim().to_owned());
                }
                let mut all = printed.lock().expect("no reader panicked");
                all.push_str(&line);
                all.push('\n');
            }
        }
    });
    let process = Process(child);
    let base = address.recv_timeout(PATIENCE).unwrap_or_else(|_| {
        panic!(
            "the bank never said where it listens; it printed:\n{}",
            printed.lock().unwrap()
        )
    });
    (process, base)
}

/// The first of `names` found on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// chromedriver on a free port, and a session of a headless Chromium.
async fn start_browser(profile: &Path) -> (Process, Client) {
    let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]).expect(
        "Chromium is not installed: `apt-get install chromium chromium-driver` (.ci/run does)",
    );
    let driver = on_path(&["chromedriver"])
        .expect("chromedriver is not installed: `apt-get install chromium-driver` (.ci/run does)");
    let port = free_port();
    let process = Process(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("chromedriver starts"),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ready = http.get(format!("{webdriver}/status")).send().await;
        if let Ok(answer) = ready
            && let Ok(status) = answer.json::<Value>().await
            && status["value"]["ready"] == true
        {
            break;
        }
        assert!(Instant::now() < deadline, "chromedriver never got ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                // Root in a container: Chromium's sandbox needs user namespaces.
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--window-size=1500,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&webdriver)
        .await
        .expect("chromedriver opens a Chromium session");
    (process, client)
}

/// Runs `probe` (a script returning a value) in the page until `done`
/// accepts its value; panics with the last value after [`PATIENCE`].
async fn eventually(
    client: &Client,
    what: &str,
    probe: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = client
            .execute(probe, vec![])
            .await
            .unwrap_or_else(|e| panic!("{what}: the probe failed: {e}"));
        if done(&value) {
            return value;
        }
        if Instant::now() > deadline {
            let page = client.source().await.unwrap_or_default();
            panic!("{what}: never happened; the probe last saw {value}; the page:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The events shown under `selector`: position, type, stream, data text
/// and the correlation id shown.
fn events_probe(selector: &str) -> String {
    format!(
        "return Array.from(document.querySelectorAll({selector:?})).map(e => ({{\
           position: Number(e.dataset.position), type: e.dataset.type, \
           stream: e.dataset.streamId, data: e.querySelector('pre.data').textContent, \
           correlation: e.querySelector('[data-field=\"correlation id\"]').textContent }}));"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_browser_shows_streams_events_handlers_and_a_live_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (bank, base) = start_bank(dir.path(), "127.0.0.1:0", &[]);
    browse(&base, "browser.png").await;
    bank.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_browser_shows_streams_events_handlers_and_a_live_tail() {
    let url = std::env::var("ANNALS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("bank_browser_{}", Uuid::now_v7().simple());
    let dir = tempfile::tempdir().unwrap();
    let (bank, base) = start_bank(
        dir.path(),
        "127.0.0.1:0",
        &[("DATABASE_URL", &url), ("BANK_SCHEMA", &schema)],
    );
    browse(&base, "browser-postgres.png").await;
    bank.terminate();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("PostgreSQL is reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

/// What an operator does on the page of the bank at `base`; the page's
/// screenshot is kept as `target/browser-test/{screenshot}`.
async fn browse(base: &str, screenshot_name: &str) {
    let http = reqwest::Client::new();

    // An account whose owner's name is markup: the page must show it as text.
    let markup = "<img src=x onerror=window.__pwned=1>";
    let opened_by = Uuid::now_v7();
    let opened: Value = http
        .post(format!("{base}/accounts"))
        .header("x-request-id", opened_by.to_string())
        .json(&json!({"first_name": markup, "last_name": "Lovelace", "pin": "1234"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = opened["aggregate_id"]
        .as_str()
        .expect("an account id")
        .to_owned();
    let stream = format!("Account-{account}");
    let deposited = http
        .post(format!("{base}/accounts/{account}/deposits"))
        .json(&json!({"amount": 2_500}))
        .send()
        .await
        .unwrap();
    assert!(deposited.status().is_success(), "{deposited:?}");

    let profile = tempfile::tempdir().unwrap();
    let (_driver, client) = start_browser(profile.path()).await;
    client.goto(&format!("{base}/browser")).await.unwrap();
    assert_eq!(client.title().await.unwrap(), "Annals event browser");

    // The stream list shows the account's stream at version 2.
    let listed = eventually(
        &client,
        "the stream list shows the account",
        &format!(
            "const li = document.querySelector('#streams li[data-stream-id=\"{stream}\"]'); \
             return li ? li.textContent : null;"
        ),
        |v| v.is_string(),
    )
    .await;
    assert!(listed.as_str().unwrap().contains("v2"), "{listed}");

    // Opening it shows both events with their metadata, the markup as text.
    client
        .find(Locator::Css(&format!(
            "#streams li[data-stream-id=\"{stream}\"]"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shown = eventually(
        &client,
        "the stream's events",
        &events_probe("#events .event"),
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    )
    .await;
    assert_eq!(shown[0]["type"], "AccountOpened");
    assert_eq!(shown[1]["type"], "MoneyDeposited");
    assert_eq!(shown[0]["correlation"], opened_by.to_string());
    assert!(
        shown[0]["data"].as_str().unwrap().contains(markup),
        "{shown}"
    );
    let title = client
        .find(Locator::Id("events-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(title, stream);

    // The handlers are listed with their position and lag.
    let handlers = eventually(
        &client,
        "the handlers table",
        "return Array.from(document.querySelectorAll('#handlers tr')).map(r => r.dataset.handler);",
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    )
    .await;
    for name in ["bank-balances", "bank-history"] {
        assert!(
            handlers.as_array().unwrap().iter().any(|h| h == name),
            "{name} is not in {handlers}"
        );
    }

    // An event appended after the page opened reaches the live tail (once
    // the tail is subscribed, it shows every event from then on).
    eventually(
        &client,
        "the live tail subscribes",
        "return document.getElementById('tail-status').textContent;",
        |v| v == "live",
    )
    .await;
    let later: Value = http
        .post(format!("{base}/accounts/{account}/deposits"))
        .json(&json!({"amount": 700}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let position = later["position"].as_u64().expect("the deposit's position");
    let tail = eventually(
        &client,
        "the live tail shows the deposit",
        &events_probe("#tail .event"),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|e| e["position"] == position))
        },
    )
    .await;
    let tailed = tail
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["position"] == position)
        .unwrap();
    assert_eq!(tailed["type"], "MoneyDeposited");
    assert_eq!(tailed["stream"], stream.as_str());
    assert!(tailed["data"].as_str().unwrap().contains("700"), "{tailed}");
    // The opened stream, read to its end, grows by the tailed event too.
    eventually(
        &client,
        "the open stream shows the deposit",
        &events_probe("#events .event"),
        |v| v.as_array().is_some_and(|a| a.len() == 3),
    )
    .await;

    // The stream list follows: the account's stream moves on to version 3,
    // and an account opened now joins the list.
    eventually(
        &client,
        "the stream list shows version 3",
        &format!(
            "return document.querySelector('#streams li[data-stream-id=\"{stream}\"] .meta').textContent;"
        ),
        |v| v.as_str().is_some_and(|t| t.starts_with("v3 ")),
    )
    .await;
    let second: Value = http
        .post(format!("{base}/accounts"))
        .json(&json!({"first_name": "Grace", "last_name": "Hopper", "pin": "4321"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = format!("Account-{}", second["aggregate_id"].as_str().unwrap());
    let listed = eventually(
        &client,
        "the new account's stream is listed",
        "return Array.from(document.querySelectorAll('#streams li')).map(li => li.dataset.streamId);",
        |v| v.as_array().is_some_and(|a| a.iter().any(|id| id == second.as_str())),
    )
    .await;
    let mut sorted = listed.as_array().unwrap().clone();
    sorted.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(listed.as_array().unwrap(), &sorted, "in id order");

    // The handlers' table is refreshed: the balances caught up with it all.
    eventually(
        &client,
        "the handlers' positions move on",
        "const row = document.querySelector('#handlers tr[data-handler=\"bank-balances\"]'); \
         return row ? [Number(row.children[2].textContent), Number(row.children[3].textContent)] : null;",
        |v| v[0].as_u64().is_some_and(|p| p > position) && v[1] == 0,
    )
    .await;

    // No markup from the data ran or was parsed into elements.
    let injected = client
        .execute(
            "return [window.__pwned === undefined, document.querySelectorAll('main img').length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected, json!([true, 0]));

    let screenshot = client.screenshot().await.unwrap();
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory holds tmp/")
        .join("browser-test");
    std::fs::create_dir_all(&kept).unwrap();
    let file = kept.join(screenshot_name);
    std::fs::write(&file, &screenshot).unwrap();
    let written = std::fs::read(&file).unwrap();
    assert!(written.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(written.len() > 1000, "a {} byte screenshot", written.len());
    client.close().await.unwrap();
}

/// Deposits `amount` into `account` through the bank at `base`; the
/// event's global position.
async fn deposit(base: &str, account: &str, amount: u64) -> u64 {
    let accepted: Value = reqwest::Client::new()
        .post(format!("{base}/accounts/{account}/deposits"))
        .json(&json!({ "amount": amount }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    accepted["position"]
        .as_u64()
        .expect("the deposit's position")
}

/// The positions the live tail shows, oldest first.
const TAIL_POSITIONS: &str = "return Array.from(document.querySelectorAll('#tail .event')).map(e => Number(e.dataset.position)).reverse();";

/// The page outlives the server: while the bank is down it says so, and
/// once the bank is back the tail resumes from the last event it showed:
/// an event recorded while it was away is shown (no gap), and none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_live_tail_resumes_after_a_restart_with_no_gap_and_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let (bank, base) = start_bank(dir.path(), &addr, &[]);
    let opened: Value = reqwest::Client::new()
        .post(format!("{base}/accounts"))
        .json(&json!({"first_name": "Ada", "last_name": "Lovelace", "pin": "1234"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = opened["aggregate_id"]
        .as_str()
        .expect("an account id")
        .to_owned();

    let profile = tempfile::tempdir().unwrap();
    let (_driver, client) = start_browser(profile.path()).await;
    client.goto(&format!("{base}/browser")).await.unwrap();
    eventually(
        &client,
        "the live tail subscribes",
        "return document.getElementById('tail-status').textContent;",
        |v| v == "live",
    )
    .await;
    let first = deposit(&base, &account, 100).await;
    eventually(
        &client,
        "the tail shows the first deposit",
        TAIL_POSITIONS,
        |v| *v == json!([first]),
    )
    .await;

    // The bank stops; the page notices.
    bank.terminate();
    eventually(
        &client,
        "the tail says it is disconnected",
        "return document.getElementById('tail-status').textContent;",
        |v| v.as_str().is_some_and(|s| s.starts_with("disconnected")),
    )
    .await;

    // Meanwhile another bank process records a deposit in the same file.
    let (other, other_base) = start_bank(dir.path(), "127.0.0.1:0", &[]);
    let while_away = deposit(&other_base, &account, 200).await;
    other.terminate();

    // The bank is back where the page knows it: the tail catches up with
    // what it missed, then goes on live.
    let (_bank, base) = start_bank(dir.path(), &addr, &[]);
    eventually(
        &client,
        "the tail catches up after reconnecting",
        TAIL_POSITIONS,
        |v| *v == json!([first, while_away]),
    )
    .await;
    let after = deposit(&base, &account, 300).await;
    let shown = eventually(
        &client,
        "the tail shows the live deposit",
        TAIL_POSITIONS,
        |v| v.as_array().is_some_and(|a| a.len() >= 3),
    )
    .await;
    assert_eq!(
        shown,
        json!([first, while_away, after]),
        "each once, in order"
    );
    client.close().await.unwrap();
}
