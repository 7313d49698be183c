//! The operator commands (`annals::cli`) through a real process: the
//! bank's commands as `src/bin/bank-ops.rs` embeds them, on a fresh SQLite
//! file and a fresh PostgreSQL schema, checking what a script sees: the
//! exit code, and the output when the error stream is not a terminal
//! (plain lines, no progress bars).

use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals::{AnyStore, App};
use annals_tests::postgres::{admin_connection, fresh_schema, test_url};
use sqlx::{AssertSqlSafe, Connection};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bank-ops");

/// A database of the bank's: a SQLite file in a directory of its own, or a
/// PostgreSQL schema of its own.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

/// What a run of the binary gave.
#[derive(Debug)]
struct Ran {
    code: i32,
    out: String,
    err: String,
}

impl Db {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().expect("a temporary directory"))
    }

    fn postgres() -> Self {
        Self::Postgres(fresh_schema())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("BANK_DB")
            .env_remove("BANK_SCHEMA");
        match self {
            Self::Sqlite(dir) => command.env("BANK_DB", dir.path().join("bank.db")),
            Self::Postgres(schema) => command
                .env("DATABASE_URL", test_url())
                .env("BANK_SCHEMA", schema),
        };
        command
    }

    fn run(&self, args: &[&str]) -> Ran {
        self.run_with_input(args, None)
    }

    fn run_with_input(&self, args: &[&str], input: Option<&str>) -> Ran {
        let mut child = self
            .command(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bank-ops");
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        let output = child.wait_with_output().expect("bank-ops ran");
        Ran {
            code: output.status.code().expect("an exit code, not a signal"),
            out: String::from_utf8(output.stdout).expect("UTF-8 output"),
            err: String::from_utf8(output.stderr).expect("UTF-8 errors"),
        }
    }

    /// Runs and insists on exit code 0.
    fn ok(&self, args: &[&str]) -> Ran {
        let ran = self.run(args);
        assert_eq!(ran.code, 0, "{args:?}: {ran:?}");
        ran
    }

    /// How many migrations the store has.
    fn migrations(&self) -> usize {
        match self {
            Self::Sqlite(_) => 2,
            Self::Postgres(_) => 3,
        }
    }

    /// The bank's app in this process, on the same database, as a server
    /// would run it.
    async fn app(&self) -> App {
        match self {
            Self::Sqlite(dir) => {
                let path = dir.path().join("bank.db");
                let store = SqliteStore::open(&path).await.unwrap();
                let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
                    .await
                    .unwrap();
                bank::with_sqlite_read_models(bank::app_builder(AnyStore::new(store), "p"), pool)
                    .await
                    .unwrap()
                    .build()
                    .unwrap()
            }
            Self::Postgres(schema) => {
                let store = PostgresStore::builder(test_url())
                    .schema(schema.as_str())
                    .connect()
                    .await
                    .unwrap();
                let options: sqlx::postgres::PgConnectOptions = test_url().parse().unwrap();
                let pool = sqlx::PgPool::connect_with(options.options([("search_path", schema)]))
                    .await
                    .unwrap();
                bank::with_postgres_read_models(bank::app_builder(AnyStore::new(store), "p"), pool)
                    .await
                    .unwrap()
                    .build()
                    .unwrap()
            }
        }
    }

    /// The read models, as text rows in a fixed order.
    async fn read_models(&self) -> (Vec<String>, Vec<String>) {
        let balances = "SELECT account_id || ' ' || owner || ' ' || balance || ' ' || status \
                        FROM bank_balances ORDER BY account_id";
        let history = "SELECT position || ' ' || account_id || ' ' || kind || ' ' || amount || ' ' \
                       || currency FROM bank_history ORDER BY position";
        let mut rows = self.sql_rows(&[balances, history]).await;
        let history = rows.pop().expect("two queries");
        (rows.pop().expect("two queries"), history)
    }

    /// Each query's rows (one text column).
    async fn sql_rows(&self, queries: &[&str]) -> Vec<Vec<String>> {
        let mut all = Vec::new();
        match self {
            Self::Sqlite(dir) => {
                let url = format!("sqlite:{}", dir.path().join("bank.db").display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                for q in queries {
                    all.push(
                        sqlx::query_scalar(AssertSqlSafe(*q))
                            .fetch_all(&mut conn)
                            .await
                            .unwrap(),
                    );
                }
            }
            Self::Postgres(schema) => {
                let mut conn = admin_connection().await;
                sqlx::query(AssertSqlSafe(format!("SET search_path = {schema}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                for q in queries {
                    all.push(
                        sqlx::query_scalar(AssertSqlSafe(*q))
                            .fetch_all(&mut conn)
                            .await
                            .unwrap(),
                    );
                }
            }
        }
        all
    }

    async fn execute(&self, statements: &[&str]) {
        match self {
            Self::Sqlite(dir) => {
                let url = format!("sqlite:{}", dir.path().join("bank.db").display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                for s in statements {
                    sqlx::query(AssertSqlSafe(*s))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
            }
            Self::Postgres(schema) => {
                let mut conn = admin_connection().await;
                sqlx::query(AssertSqlSafe(format!("SET search_path = {schema}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                for s in statements {
                    sqlx::query(AssertSqlSafe(*s))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
            }
        }
    }

    async fn dispose(self) {
        if let Self::Postgres(schema) = self {
            let mut conn = admin_connection().await;
            sqlx::query(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}

fn account() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn open(db: &Db, id: &str) -> Ran {
    let fields = format!(
        r#"{{"account_id": "{id}", "first_name": "Ada", "last_name": "Lovelace", "pin": "1234"}}"#
    );
    db.ok(&["dispatch", "OpenAccount", &fields])
}

fn deposit(db: &Db, id: &str, amount: u64) -> Ran {
    let fields = format!(r#"{{"account_id": "{id}", "amount": {amount}}}"#);
    db.ok(&["dispatch", "DepositMoney", &fields])
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

/// `migrate` on an empty database applies every migration and names them;
/// again, it finds them applied; the store is then usable and empty.
async fn migrate_on_an_empty_database(db: &Db) {
    let n = db.migrations();
    let first = db.ok(&["migrate"]);
    let lines: Vec<&str> = first.out.lines().collect();
    assert!(
        lines[0].ends_with(&format!(": applied {n} migrations")),
        "{first:?}"
    );
    assert_eq!(lines[1], "  0001 event store");
    assert_eq!(lines.len(), n + 1, "{first:?}");
    let again = db.ok(&["migrate"]);
    assert!(
        again
            .out
            .trim_end()
            .ends_with(&format!(": up to date ({n} migrations applied before)")),
        "{again:?}"
    );
    let report = &json_lines(&db.ok(&["migrate", "--json"]).out)[0];
    assert_eq!(report["applied"], serde_json::json!([]));
    assert_eq!(report["already_applied"].as_array().unwrap().len(), n);
    assert_eq!(report["already_applied"][0]["version"], 1);
    let streams = db.ok(&["streams"]);
    assert_eq!(
        (streams.out.as_str(), streams.err.as_str()),
        ("", "no streams\n")
    );
}

/// A dispatched command's events show in `streams` and `tail`, in text and
/// in JSON, a page or a filter at a time.
async fn dispatch_then_streams_and_tail(db: &Db) {
    let id = account();
    let stream = format!("Account-{id}");
    let opened = open(db, &id);
    assert!(
        opened.out.starts_with(&format!(
            "recorded 1 event on {stream}, now at version 1 (global position "
        )),
        "{opened:?}"
    );
    assert!(opened.out.contains("\n  AccountOpened v2  {"), "{opened:?}");
    let fields = format!(r#"{{"account_id": "{id}", "amount": 250}}"#);
    let deposited = &json_lines(&db.ok(&["dispatch", "DepositMoney", &fields, "--json"]).out)[0];
    assert_eq!(deposited["stream_id"], stream.as_str());
    assert_eq!(deposited["version"], 2);
    let position = deposited["positions"][1].as_u64().unwrap();
    assert_eq!(deposited["positions"][0].as_u64(), Some(position));
    assert_eq!(deposited["events"][0]["event_type"], "MoneyDeposited");
    assert_eq!(deposited["events"][0]["payload"]["amount"], 250);
    assert_eq!(deposited["command_id"], deposited["correlation_id"]);

    let listed = db.ok(&["streams"]);
    let rows: Vec<Vec<&str>> = listed
        .out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["STREAM", "VERSION", "POSITION", "CREATED", "UPDATED"]
    );
    assert_eq!(rows[1][..3], [stream.as_str(), "2", &position.to_string()]);
    assert_eq!(rows.len(), 2, "{listed:?}");

    let other = account();
    open(db, &other);
    let first_page = db.ok(&["streams", "--limit", "1"]);
    assert_eq!(first_page.out.lines().count(), 2);
    assert!(
        first_page.out.contains(&stream),
        "ids are time-ordered: {first_page:?}"
    );
    assert_eq!(
        first_page.err,
        format!("more streams may follow: --after \"{stream}\"\n")
    );
    let next_page = db.ok(&["streams", "--after", &stream, "--json"]);
    let next = json_lines(&next_page.out);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["stream_id"], format!("Account-{other}"));
    assert_eq!(next[0]["category"], "Account");
    assert_eq!(next[0]["version"], 1);
    let tellers = db.ok(&["streams", "--category", "Teller"]);
    assert_eq!(
        (tellers.out.as_str(), tellers.err.as_str()),
        ("", "no streams\n")
    );
    let accounts = db.ok(&["streams", "--category", "Account", "--json"]);
    assert_eq!(json_lines(&accounts.out).len(), 2);
    let bad = db.run(&["streams", "--category", "Account-1"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.err.contains("is not a category"), "{bad:?}");

    // The whole log is three events: each line names its position, time,
    // stream and version, type and type version.
    let tailed = db.ok(&["tail"]);
    let lines: Vec<Vec<&str>> = tailed
        .out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 3, "{tailed:?}");
    assert_eq!(lines[1][0], position.to_string());
    assert_eq!(
        lines[1][2..],
        [stream.as_str(), "v2", "MoneyDeposited", "v2"]
    );
    assert_eq!(
        lines[0][2..],
        [stream.as_str(), "v1", "AccountOpened", "v2"]
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(lines[0][1]).is_ok(),
        "{tailed:?}"
    );
    let newest = db.ok(&["tail", "-n", "1"]);
    assert_eq!(newest.out.lines().count(), 1);
    assert!(
        newest.out.contains(&format!("Account-{other} v1")),
        "{newest:?}"
    );
    let deposits = json_lines(&db.ok(&["tail", "--type", "MoneyDeposited", "--json"]).out);
    assert_eq!(deposits.len(), 1);
    assert_eq!(deposits[0]["position"], position);
    assert_eq!(deposits[0]["payload"]["currency"], "EUR");
    let with_payload = db.ok(&["tail", "--from", &position.to_string(), "--payload"]);
    // The payload as stored (PostgreSQL's jsonb spaces it out).
    let line = with_payload.out.lines().next().unwrap();
    assert!(
        line.ends_with("\"EUR\"}") && line.contains("250"),
        "{with_payload:?}"
    );
}

/// A refusal, fields that are not JSON or do not make the command, an
/// unknown command and a repeated command id each end the process with the
/// code a script can act on, write nothing and say why.
async fn refused_and_malformed_commands_exit_non_zero(db: &Db) {
    let id = account();
    open(db, &id);
    deposit(db, &id, 100);
    let withdraw = format!(r#"{{"account_id": "{id}", "amount": 900}}"#);
    let refused = db.run(&["dispatch", "WithdrawMoney", &withdraw]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert_eq!(refused.out, "");
    assert_eq!(
        refused.err,
        "error: `WithdrawMoney` was refused: insufficient funds: the balance is 100, 900 was requested\n"
    );
    let listed = json_lines(&db.ok(&["streams", "--json"]).out);
    assert_eq!(listed[0]["version"], 2, "nothing was written");

    let missing = db.run(&[
        "dispatch",
        "DepositMoney",
        &format!(r#"{{"account_id": "{id}"}}"#),
    ]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing.err.starts_with(
            "error: the fields given do not make a `DepositMoney` command: missing field `amount`"
        ),
        "{missing:?}"
    );
    let not_json = db.run(&["dispatch", "DepositMoney", "{amount: 5"]);
    assert_eq!(not_json.code, 2, "{not_json:?}");
    assert!(
        not_json
            .err
            .starts_with("error: the fields given for `DepositMoney` are not JSON: "),
        "{not_json:?}"
    );
    let unknown = db.run(&["dispatch", "FreezeAccount", "{}"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.err.starts_with(
            "error: unknown command `FreezeAccount`; the app's commands are: CloseAccount, \
             DeclineWithdrawal, DepositMoney,"
        ),
        "{unknown:?}"
    );

    // Fields from standard input, and a command id sent twice.
    let command_id = uuid::Uuid::now_v7().to_string();
    let fields = format!(r#"{{"account_id": "{id}", "amount": 5}}"#);
    let args = [
        "dispatch",
        "DepositMoney",
        "-",
        "--command-id",
        &command_id,
        "--meta",
        "user=ops",
    ];
    let piped = db.run_with_input(&args, Some(&fields));
    assert_eq!(piped.code, 0, "{piped:?}");
    assert!(
        piped.out.contains(&format!("command id {command_id}")),
        "{piped:?}"
    );
    let again = db.run_with_input(&args, Some(&fields));
    assert_eq!(again.code, 3, "{again:?}");
    assert!(again.err.contains("was already recorded"), "{again:?}");
    let last = &json_lines(&db.ok(&["tail", "-n", "1", "--json"]).out)[0];
    assert_eq!(last["metadata"]["user"], "ops");
    assert_eq!(last["stream_version"], 3);
}

/// `rebuild` empties a projection's read model and replays the log into
/// it: a read model spoilt by hand comes back as the events say.
async fn rebuild_gives_the_same_read_model(db: &Db) {
    let (ada, bob) = (account(), account());
    open(db, &ada);
    open(db, &bob);
    deposit(db, &ada, 1_000);
    deposit(db, &bob, 300);
    let withdraw = format!(r#"{{"account_id": "{ada}", "amount": 250}}"#);
    db.ok(&["dispatch", "WithdrawMoney", &withdraw]);
    // Lets the projections catch up (in that process), then reports them.
    let status = db.ok(&["status", "--wait", "20s"]);
    assert!(status.out.starts_with("head of the log: 5\n"), "{status:?}");
    let (balances, history) = db.read_models().await;
    assert_eq!(balances.len(), 2, "{balances:?}");
    assert!(
        balances.contains(&format!("{ada} Ada Lovelace 750 open")),
        "{balances:?}"
    );
    assert_eq!(history.len(), 3, "{history:?}");

    db.execute(&[
        "UPDATE bank_balances SET balance = balance + 1000",
        "DELETE FROM bank_history",
    ])
    .await;
    let rebuilt = db.ok(&["rebuild", "bank-balances"]);
    assert_eq!(
        rebuilt
            .out
            .lines()
            .next()
            .unwrap()
            .split(" in ")
            .next()
            .unwrap(),
        "rebuilt bank-balances: replayed the log up to position 5 (5 events handled)"
    );
    // Not a terminal: plain progress lines, no bar.
    assert!(
        rebuilt
            .err
            .starts_with("rebuilding bank-balances: position "),
        "{rebuilt:?}"
    );
    assert!(!rebuilt.err.contains('\u{1b}'), "{rebuilt:?}");
    let report = &json_lines(&db.ok(&["rebuild", "bank-history", "--json"]).out)[0];
    assert_eq!(
        (report["handler"].as_str(), report["head"].as_u64()),
        (Some("bank-history"), Some(5))
    );
    assert_eq!(db.read_models().await, (balances, history));

    let unknown = db.run(&["rebuild", "balances"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.err.contains(
            "its handlers are: withdrawal, audit, annals-documents, bank-balances, bank-history"
        ),
        "{unknown:?}"
    );
}

/// A handler that stopped at an event it fails on shows in `status`, with
/// the error, and makes the process exit 5; the others are idle.
async fn status_shows_a_failed_handler(db: &Db) {
    let id = account();
    open(db, &id);
    deposit(db, &id, 666);
    let status = db.run(&["status", "--wait", "20s"]);
    assert_eq!(status.code, 5, "{status:?}");
    // Before the error, plain progress lines may show the handlers catching
    // up, when `status` saw them still running (how many depends on timing).
    let (progress, error) = status
        .err
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", &status.err));
    assert_eq!(
        error.trim_end(),
        "error: handlers failing: audit",
        "{status:?}"
    );
    assert!(
        progress.lines().all(|l| l.starts_with("catching up ")),
        "{status:?}"
    );
    let rows: Vec<Vec<&str>> = status
        .out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let audit = rows.iter().find(|r| r[0] == "audit").expect("an audit row");
    assert_eq!(audit[1..4], ["stopped", "1", "1"], "{status:?}");
    assert!(
        status.out.contains("audit: last error at position 2 ("),
        "{status:?}"
    );
    assert!(
        status
            .out
            .contains("): the handler failed: unlucky amount: 666\n"),
        "{status:?}"
    );
    for name in ["bank-balances", "bank-history", "withdrawal"] {
        let row = rows.iter().find(|r| r[0] == name).expect("a row");
        assert_eq!(row[1..4], ["idle", "2", "0"], "{name}: {status:?}");
    }

    let json = db.run(&["status", "--json", "--wait", "20s"]);
    assert_eq!(json.code, 5, "{json:?}");
    let report = &json_lines(&json.out)[0];
    let audit = report["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "audit")
        .unwrap();
    assert_eq!(audit["state"], "stopped");
    assert_eq!(audit["last_error"]["position"], 2);
    assert!(
        audit["last_error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("unlucky amount: 666")
    );
}

/// `tail --follow` prints the stored events, then one appended after it
/// started, and ends cleanly (exit 0) on SIGTERM.
async fn tail_follow_prints_later_events(db: &Db) {
    let id = account();
    open(db, &id);
    let mut child = db
        .command(&["tail", "--follow", "--from", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tail --follow");
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let next = || {
        received
            .recv_timeout(Duration::from_secs(30))
            .expect("a line in time")
    };
    let first = next();
    assert!(first.contains("AccountOpened v2"), "{first}");
    deposit(db, &id, 42);
    let second = next();
    assert!(
        second.ends_with(&format!("Account-{id} v2  MoneyDeposited v2")),
        "{second}"
    );
    // SAFETY: kill(2) with the id of our own child, which has not been waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tail did not end on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        received.recv_timeout(Duration::from_secs(5)).is_err(),
        "nothing more"
    );
}

/// While another process runs the bank (and so holds its handlers'
/// turns), `rebuild` waits for the turn, then gives up with exit 4; and
/// `status` says those handlers are waiting, with what the store keeps of
/// them.
async fn rebuild_waits_for_a_turn_another_process_holds(db: &Db) {
    let id = account();
    open(db, &id);
    let server = db.app().await;
    server
        .wait_until_settled(Duration::from_secs(20))
        .await
        .expect("the server's handlers have their turns and catch up");
    let busy = db.run(&["rebuild", "bank-balances", "--wait", "1s"]);
    assert_eq!(busy.code, 4, "{busy:?}");
    assert!(
        busy.err.starts_with(
            "error: handler `bank-balances` runs in another process, which holds its turn"
        ),
        "{busy:?}"
    );
    let status = db.ok(&["status", "--wait", "1s"]);
    let rows: Vec<Vec<&str>> = status
        .out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let balances = rows.iter().find(|r| r[0] == "bank-balances").unwrap();
    assert_eq!(balances[1..4], ["waiting", "-", "-"], "{status:?}");
    // A process manager keeps its checkpoint in the store.
    let withdrawal = rows.iter().find(|r| r[0] == "withdrawal").unwrap();
    assert_eq!(withdrawal[1..4], ["waiting", "1", "0"], "{status:?}");
    assert!(
        status
            .out
            .contains("\nwaiting: another process runs the handler"),
        "{status:?}"
    );
    server.shutdown().await.unwrap();
    // Once it is gone, the rebuild goes through.
    db.ok(&["rebuild", "bank-balances"]);
}

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let db = super::Db::sqlite();
                    super::$scenario(&db).await;
                    db.dispose().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let db = super::Db::postgres();
                    super::$scenario(&db).await;
                    db.dispose().await;
                }
            )*
        }
    };
}

on_both_stores!(
    migrate_on_an_empty_database,
    dispatch_then_streams_and_tail,
    refused_and_malformed_commands_exit_non_zero,
    rebuild_gives_the_same_read_model,
    status_shows_a_failed_handler,
    tail_follow_prints_later_events,
    rebuild_waits_for_a_turn_another_process_holds,
);
