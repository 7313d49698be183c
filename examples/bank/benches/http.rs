//! HTTP deposits per second against in-process dispatch, on SQLite and
//! PostgreSQL, in one run: `cargo bench -p bank --bench http`.
//!
//! For each store it starts the real `bank` binary (the release build of
//! `cargo run -p bank`) on a fresh database, opens `ACCOUNTS` accounts over
//! HTTP, and drives `POST /accounts/{id}/deposits` with `wrk` (Debian's
//! package) at 1 and 64 connections, each request to a random one of those
//! accounts. Then, with the server stopped, an App built in this process the
//! way the server builds it (`bank::app_builder` and the same read models)
//! dispatches the same deposits on the same database, from 1 and 64 tasks,
//! with the options the endpoint uses (strongly consistent: each answers
//! once the read models show it). The table prints deposits/s, p50 and p99
//! for both, and their ratio.
//!
//! Then, per store, the server's memory with `HTTP_BENCH_FEEDS` (default
//! 10,000) WebSocket feeds open, each subscribed to all events from the
//! head: its resident set (`VmRSS`) before and after they subscribed, and
//! how long one deposit then takes to reach every feed (p50 and p99 over
//! the feeds, measured from the deposit's request).
//!
//! Environment: `HTTP_BENCH_SECS` (seconds per measurement, default 10),
//! `HTTP_BENCH_ROUNDS` (default 1), `HTTP_BENCH_FEEDS` (default 10000; the
//! file-descriptor limit must allow it twice), `ANNALS_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`).

use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals::{AnyStore, App, DispatchOptions};
use bank::accounts::{AccountId, DepositMoney};
use bank::read_models::ReadDb;
use futures::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const ACCOUNTS: usize = 1_000;
const PEPPER: &str = "bench-pepper";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where a measurement's events go.
#[derive(Clone)]
enum Db {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Db {
    fn name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "SQLite",
            Db::Postgres { .. } => "PostgreSQL",
        }
    }

    fn server_env(&self) -> Vec<(&'static str, String)> {
        match self {
            Db::Sqlite(path) => vec![("BANK_DB", path.display().to_string())],
            Db::Postgres { url, schema } => {
                vec![
                    ("DATABASE_URL", url.clone()),
                    ("BANK_SCHEMA", schema.clone()),
                ]
            }
        }
    }

    /// The App the server runs, built here: the same builder and read models.
    async fn app(&self) -> Result<(App, ReadDb), Error> {
        let (store, read) = match self {
            Db::Sqlite(path) => {
                let store = SqliteStore::builder().path(path).open().await?;
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5));
                let read = ReadDb::Sqlite(sqlx::SqlitePool::connect_with(options).await?);
                (AnyStore::new(store), read)
            }
            Db::Postgres { url, schema } => {
                let store = PostgresStore::builder(url)
                    .schema(schema.clone())
                    .connect()
                    .await?;
                let options = url
                    .parse::<sqlx::postgres::PgConnectOptions>()?
                    .options([("search_path", schema.as_str())]);
                let read = ReadDb::Postgres(sqlx::PgPool::connect_with(options).await?);
                (AnyStore::new(store), read)
            }
        };
        let app = read
            .register(bank::app_builder(store, PEPPER))
            .await?
            .build()?;
        Ok((app, read))
    }
}

/// The `bank` binary, serving until dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(db: &Db) -> Result<Self, Error> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bank"))
            .arg("serve")
            .env("BANK_ADDR", "127.0.0.1:0")
            .env("BANK_LOG", "error")
            .env("BANK_PEPPER", PEPPER)
            .env_remove("DATABASE_URL")
            .envs(db.server_env())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                return Err("the bank exited before it listened".into());
            };
            if let Some(addr) = line?.strip_prefix("bank: listening on http://") {
                break addr.trim().to_owned();
            }
        };
        // Keep reading its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, addr })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits: the server checkpoints and closes its store.
    fn stop(mut self) -> Result<(), Error> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("the bank exited with {status}").into());
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One measurement: how many deposits, in how long, and their latencies.
struct Figures {
    ops: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    failed: u64,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// Opens the accounts over HTTP (as a user would) and returns their ids.
async fn open_accounts(addr: &str) -> Result<Vec<String>, Error> {
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(ACCOUNTS);
    for i in 0..ACCOUNTS {
        let response = client
            .post(format!("http://{addr}/accounts"))
            .json(&serde_json::json!({
                "first_name": "Bench",
                "last_name": format!("Customer {i}"),
                "pin": "1234",
            }))
            .send()
            .await?;
        if response.status() != 201 {
            return Err(format!("opening an account: {}", response.status()).into());
        }
        let body: serde_json::Value = response.json().await?;
        let id = body["aggregate_id"]
            .as_str()
            .ok_or("no aggregate_id in the answer")?;
        ids.push(id.to_owned());
    }
    Ok(ids)
}

/// The wrk script: deposits to random accounts, and a JSON summary line.
fn wrk_script(dir: &Path, ids: &[String]) -> Result<PathBuf, Error> {
    let path = dir.join("deposits.lua");
    let mut file = std::fs::File::create(&path)?;
    writeln!(file, "local ids = {{")?;
    for id in ids {
        writeln!(file, "  \"{id}\",")?;
    }
    writeln!(
        file,
        r#"}}
local headers = {{ ["content-type"] = "application/json" }}
local body = '{{"amount":100}}'
setup = function(thread) thread:set("seed", math.random(1, 1000000)) end
init = function(args) math.randomseed(seed) end
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("POST", "/accounts/" .. id .. "/deposits", headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_JSON {{\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d,\"errors\":%d,\"status_errors\":%d}}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end"#
    )?;
    Ok(path)
}

/// `wrk` against the server, `connections` at once, for `secs`.
fn wrk(addr: &str, script: &Path, connections: usize, secs: u64) -> Result<Figures, Error> {
    let threads = connections.min(2);
    let output = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--timeout",
            "30s",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{addr}"))
        .output()
        .map_err(|e| format!("cannot run wrk ({e}): `apt-get install wrk`"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK_JSON "))
        .ok_or_else(|| format!("no summary from wrk: {stdout}"))?;
    let summary: serde_json::Value = serde_json::from_str(line)?;
    let field = |name: &str| summary[name].as_u64().unwrap_or(0);
    Ok(Figures {
        ops: field("requests"),
        elapsed: Duration::from_micros(field("duration_us")),
        p50: Duration::from_micros(field("p50_us")),
        p99: Duration::from_micros(field("p99_us")),
        failed: field("errors") + field("status_errors"),
    })
}

/// The same deposits dispatched in this process, from `tasks` tasks.
async fn in_process(app: &App, ids: &[AccountId], tasks: usize, secs: u64) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let ids: Arc<[AccountId]> = ids.into();
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let (app, stop, ids) = (app.clone(), stop.clone(), ids.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failed = 0u64;
                let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (task as u64 + 1);
                while !stop.load(Ordering::Relaxed) {
                    // xorshift: a random account, as the wrk script picks.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let account_id = ids[(seed % ids.len() as u64) as usize];
                    let begun = Instant::now();
                    let deposit = DepositMoney {
                        account_id,
                        amount: 100,
                        currency: None,
                    };
                    let options = DispatchOptions::new().strongly_consistent();
                    match app.dispatch_with(deposit, options).await {
                        Ok(_) => latencies.push(begun.elapsed()),
                        Err(_) => failed += 1,
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut failed = 0;
    for worker in workers {
        let (mut l, f) = worker.await.expect("a worker does not panic");
        latencies.append(&mut l);
        failed += f;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        ops: latencies.len() as u64,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
        failed,
    }
}

/// The server's resident set size, in KiB, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/<pid>/status".into())
}

/// What `feeds` open WebSocket feeds cost the server.
struct FeedFigures {
    before_kib: u64,
    after_kib: u64,
    fanout_p50: Duration,
    fanout_p99: Duration,
}

/// Opens `feeds` WebSockets to the server, each subscribed to all events
/// from the head, measures the server's memory, then deposits once and
/// times the event's arrival at every feed.
async fn ws_feeds(db: &Db, feeds: usize, account: &str) -> Result<FeedFigures, Error> {
    let server = Server::start(db)?;
    let addr = server.addr.clone();
    // Settle: one request served, so the baseline is a running server's.
    deposit(&addr, account).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_kib = rss_kib(server.pid())?;

    let url = format!("ws://{addr}/ws");
    let subscribe =
        serde_json::json!({"type": "subscribe", "id": "s", "all": true, "after": "head"})
            .to_string();
    let mut sockets = Vec::with_capacity(feeds);
    // Connect in batches, as many clients arriving would.
    for batch in (0..feeds).collect::<Vec<_>>().chunks(250) {
        let opened = futures::future::try_join_all(batch.iter().map(|_| {
            let (url, subscribe) = (url.clone(), subscribe.clone());
            async move {
                let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
                socket.send(Message::text(subscribe)).await?;
                loop {
                    let Some(message) = socket.next().await else {
                        return Err::<_, Error>("a feed closed before it subscribed".into());
                    };
                    if let Message::Text(text) = message? {
                        let answer: serde_json::Value = serde_json::from_str(&text)?;
                        if answer["type"] == "subscribed" {
                            return Ok(socket);
                        }
                        return Err(format!("subscribing: {text}").into());
                    }
                }
            }
        }))
        .await?;
        sockets.extend(opened);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_kib = rss_kib(server.pid())?;

    // One deposit: every feed sees its event.
    let begun = Instant::now();
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                while let Some(message) = socket.next().await {
                    if let Ok(Message::Text(text)) = message
                        && text.contains("\"type\":\"event\"")
                    {
                        return Some(begun.elapsed());
                    }
                }
                None
            })
        })
        .collect();
    deposit(&addr, account).await?;
    let mut arrivals = Vec::with_capacity(feeds);
    for reader in readers {
        match tokio::time::timeout(Duration::from_secs(60), reader).await {
            Ok(Ok(Some(at))) => arrivals.push(at),
            _ => return Err("a feed did not receive the deposit's event".into()),
        }
    }
    arrivals.sort_unstable();
    let at = |q: f64| arrivals[((arrivals.len() as f64 * q) as usize).min(arrivals.len() - 1)];
    let figures = FeedFigures {
        before_kib,
        after_kib,
        fanout_p50: at(0.50),
        fanout_p99: at(0.99),
    };
    server.stop()?;
    Ok(figures)
}

/// One deposit over HTTP.
async fn deposit(addr: &str, account: &str) -> Result<(), Error> {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/accounts/{account}/deposits"))
        .json(&serde_json::json!({"amount": 1}))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("a deposit answered {}", response.status()).into());
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn measure(
    db: &Db,
    secs: u64,
    rounds: usize,
    dir: &Path,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let server = Server::start(db)?;
    let ids = open_accounts(&server.addr).await?;
    let script = wrk_script(dir, &ids)?;
    server.stop()?;
    let account_ids: Vec<AccountId> = ids
        .iter()
        .map(|id| id.parse::<uuid::Uuid>().map(AccountId))
        .collect::<Result<_, _>>()?;
    // Rounds alternate the server and the in-process App, so that a change
    // in the machine's load falls on both.
    let mut http = Vec::new();
    let mut local = Vec::new();
    for _ in 0..rounds {
        let server = Server::start(db)?;
        // Warm the cache and connections as a running service has them.
        wrk(&server.addr, &script, 8, 2)?;
        for connections in [1, 64] {
            http.push((connections, wrk(&server.addr, &script, connections, secs)?));
        }
        server.stop()?;

        let (app, read) = db.app().await?;
        in_process(&app, &account_ids, 8, 2).await;
        for tasks in [1, 64] {
            local.push((tasks, in_process(&app, &account_ids, tasks, secs).await));
        }
        app.shutdown().await?;
        read.close().await;
    }

    let mut rows = Vec::new();
    for ((connections, h), (_, l)) in http.iter().zip(&local) {
        if h.failed > 0 || l.failed > 0 {
            return Err(format!(
                "{} at {connections}: {} HTTP and {} in-process deposits failed",
                db.name(),
                h.failed,
                l.failed
            )
            .into());
        }
        rows.push(format!(
            "| {} | {connections} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2}x |",
            db.name(),
            h.rate(),
            ms(h.p50),
            ms(h.p99),
            l.rate(),
            ms(l.p50),
            ms(l.p99),
            h.rate() / l.rate(),
        ));
    }
    Ok((rows, ids))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let secs: u64 = std::env::var("HTTP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let rounds: usize = std::env::var("HTTP_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let feeds: usize = std::env::var("HTTP_BENCH_FEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let url = std::env::var("ANNALS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let dir = tempfile::tempdir()?;
    let schema = format!("bench_http_{}", std::process::id());
    let dbs = [
        Db::Sqlite(dir.path().join("bank.db")),
        Db::Postgres {
            url: url.clone(),
            schema: schema.clone(),
        },
    ];

    println!("HTTP deposits (wrk, {secs} s each) vs in-process dispatch, {ACCOUNTS} accounts");
    println!(
        "| store | connections / tasks | HTTP deposits/s | HTTP p50 ms | HTTP p99 ms | in-process/s | in-process p50 ms | in-process p99 ms | HTTP / in-process |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut feeds_rows = Vec::new();
    for db in &dbs {
        let result = async {
            let (rows, ids) = measure(db, secs, rounds, dir.path()).await?;
            let f = ws_feeds(db, feeds, &ids[0]).await?;
            feeds_rows.push(format!(
                "| {} | {feeds} | {:.1} | {:.1} | {:.1} | {} | {} |",
                db.name(),
                f.before_kib as f64 / 1024.0,
                f.after_kib as f64 / 1024.0,
                (f.after_kib.saturating_sub(f.before_kib)) as f64 / feeds as f64,
                ms(f.fanout_p50),
                ms(f.fanout_p99),
            ));
            Ok::<_, Error>(rows)
        }
        .await;
        if let Db::Postgres { .. } = db {
            let pool = sqlx::PgPool::connect(&url).await?;
            // The schema is `bench_http_<pid>`: digits and letters of our own.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&pool)
            .await?;
            pool.close().await;
        }
        for row in result? {
            println!("{row}");
        }
    }
    println!();
    println!("The server with {feeds} WebSocket feeds open (each subscribed to all events)");
    println!(
        "| store | feeds | RSS before MiB | RSS with feeds MiB | KiB per feed | one event to every feed p50 ms | p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in feeds_rows {
        println!("{row}");
    }
    Ok(())
}
