//! The bank's asynchronous way: the serving process publishes its events to
//! RabbitMQ instead of projecting the transaction history, and a second
//! process, `bank consume history`, projects it from the broker into the
//! read models' database, where the server's `GET .../history` reads it.
//! Real processes, the real broker (the test fails when it cannot reach it).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The test broker: `ANNALS_TEST_RABBITMQ_URL`, else the local one.
fn amqp() -> String {
    std::env::var("ANNALS_TEST_RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A `bank` process and the lines it printed.
struct Bank {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bank {
    fn start(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bank"));
        command
            .args(args)
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .env_remove("BANK_DB")
            .env_remove("BANK_SCHEMA")
            .env("BANK_ADDR", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the bank binary starts");
        let pipe = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    fn line_starting(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => panic!("the bank never printed `{prefix}`"),
            }
        }
    }

    /// SIGTERM, then the line starting with `prefix` it printed on its way out.
    fn terminate(mut self, prefix: &str) -> String {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: a signal to our own child, not reaped yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let line = self.line_starting(prefix);
        assert!(self.child.wait().unwrap().success());
        line
    }
}

impl Drop for Bank {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn history(http: &reqwest::Client, base: &str, account: &str) -> Vec<(String, i64)> {
    let body: Value = http
        .get(format!("{base}/accounts/{account}/history"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["amount"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn history_reaches(http: &reqwest::Client, base: &str, account: &str, want: &[(&str, i64)]) {
    let want: Vec<(String, i64)> = want.iter().map(|(k, a)| (k.to_string(), *a)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = history(http, base, account).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "history stuck at {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_runs_in_a_second_process_fed_through_rabbitmq() {
    lapin_reachable().await;
    let dir = tempfile::tempdir().unwrap();
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (exchange, queue) = (format!("bank-test.{id}"), format!("bank-test.history.{id}"));
    let amqp = amqp();
    let envs = [
        ("BANK_RABBITMQ_URL", amqp.as_str()),
        ("BANK_RABBITMQ_EXCHANGE", exchange.as_str()),
        ("BANK_HISTORY_QUEUE", queue.as_str()),
    ];
    let mut server = Bank::start(dir.path(), &["serve"], &envs);
    server.line_starting("bank: publishing events to RabbitMQ");
    let base = server
        .line_starting("bank: listening on ")
        .trim_start_matches("bank: listening on ")
        .to_owned();
    let http = reqwest::Client::new();
    let opened: Value = http
        .post(format!("{base}/accounts"))
        .json(&json!({"first_name": "Ada", "last_name": "Lovelace", "pin": "1234"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = opened["aggregate_id"].as_str().unwrap().to_owned();
    let deposit = http
        .post(format!("{base}/accounts/{account}/deposits"))
        .json(&json!({"amount": 500}))
        .send()
        .await
        .unwrap();
    assert!(deposit.status().is_success(), "{deposit:?}");
    // The balance is still the server's own, strongly consistent.
    let account_view: Value = http
        .get(format!("{base}/accounts/{account}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account_view["balance"], 500);
    // No history in the serving process.
    assert_eq!(history(&http, &base, &account).await, []);

    // The consumer starts later: the queue the publisher declared kept
    // the events for it.
    let mut consumer = Bank::start(dir.path(), &["consume", "history"], &envs);
    consumer.line_starting("bank: consuming the history");
    history_reaches(&http, &base, &account, &[("deposit", 500)]).await;
    http.post(format!("{base}/accounts/{account}/deposits"))
        .json(&json!({"amount": 250}))
        .send()
        .await
        .unwrap();
    history_reaches(
        &http,
        &base,
        &account,
        &[("deposit", 500), ("deposit", 250)],
    )
    .await;

    let stopped = consumer.terminate("bank: consumer stopped");
    // The opening (which writes no history row) and the two deposits.
    assert!(
        stopped.contains("(3 applied, 0 duplicates, 0 dead-lettered)"),
        "{stopped}"
    );
    server.terminate("bank: stopped");
}

async fn lapin_reachable() {
    let stream = tokio::net::TcpStream::connect("127.0.0.1:5672").await;
    assert!(
        stream.is_ok(),
        "RabbitMQ must be reachable at 127.0.0.1:5672: {stream:?}"
    );
}
