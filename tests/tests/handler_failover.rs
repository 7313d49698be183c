//! Handler failover between real processes on one PostgreSQL schema, and
//! (the last test) on one SQLite file.
//!
//! Each test runs this test binary again as child processes (the ignored
//! `child` test, selected by an environment variable), each with an App that
//! runs the same `#[event_handler]`. The handler writes every event it
//! handles into a log table in the same database, `handled(seq, position,
//! pid, at)`, with no unique key, so that a duplicate is a second row. A
//! trigger logs every checkpoint save into `checkpoint_log`; both logs draw
//! `seq` from one sequence, so they show what happened in which order across
//! the processes. The parent appends through an App of its own that runs no
//! handler.
//!
//! What is checked: one process handles at a time; when it is killed
//! (SIGKILL) another takes over and nothing is lost; events are handled
//! twice only across the kill, exactly those after the victim's last
//! checkpoint; a clean shutdown hands over with no duplicate.
//!
//! Children never outlive a test: each is killed when its guard drops, and
//! one whose parent died sees its stdin close and shuts down.

use annals::EventMeta;
use annals::handler::HandlerOptions;
use annals::postgres::PostgresStore;
use annals::prelude::*;
use annals::sqlite::SqliteStore;
use annals_tests::postgres::{
    admin_connection, application_name, drop_schema, fresh_schema, test_url,
};
use sqlx::{AssertSqlSafe, PgPool};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The schema a child process works in; set only for children.
const CHILD: &str = "ANNALS_FAILOVER_CHILD";
/// A child's checkpoint every N events (and pages of 20, and an hour
/// between timed checkpoints), instead of the defaults.
const CHECKPOINT_EVERY: &str = "ANNALS_FAILOVER_CHECKPOINT_EVERY";
/// A child's handler never finishes the event at this position.
const STALL_AT: &str = "ANNALS_FAILOVER_STALL_AT";
/// A child's handler takes this many milliseconds per event.
const PAUSE_MS: &str = "ANNALS_FAILOVER_PAUSE_MS";
/// A child's store gives up waiting for a stream lock after this many
/// milliseconds (the store's `lock_timeout`), instead of 10 s.
const LOCK_TIMEOUT_MS: &str = "ANNALS_FAILOVER_LOCK_TIMEOUT_MS";

/// The SQLite database a child process works on, instead of a schema.
const SQLITE_CHILD: &str = "ANNALS_FAILOVER_SQLITE_CHILD";
/// The file a SQLite child's handler logs what it handled into.
const SQLITE_LOG: &str = "ANNALS_FAILOVER_SQLITE_LOG";

/// The handler's name: its checkpoint and its turn.
const HANDLER: &str = "failover-recorder";

/// Events appended at once, just before a child is killed or shut down.
const BURST: u64 = 60;

/// How long a child may take to take over after the holder is gone.
const TAKEOVER_BOUND: Duration = Duration::from_secs(15);

#[event]
pub enum PingEvent {
    Pinged { n: u64 },
}

#[command(aggregate = Pinger)]
pub struct Ping {
    #[id]
    pub id: String,
    pub n: u64,
}

#[aggregate(events = PingEvent)]
#[derive(Default)]
pub struct Pinger {
    pings: u64,
}

#[aggregate]
impl Pinger {
    #[handle]
    fn ping(&self, command: Ping) -> PingEvent {
        PingEvent::Pinged { n: command.n }
    }

    #[apply]
    fn apply(&mut self, _: &PingEvent) {
        self.pings += 1;
    }
}

/// Writes each event it handles into `handled`, with its process id.
pub struct Recorder {
    pool: PgPool,
    pid: i32,
    stall_at: Option<u64>,
    pause: Duration,
}

#[event_handler(name = "failover-recorder")]
impl Recorder {
    async fn on_ping(&self, _: &PingEvent, meta: &EventMeta<'_>) -> Result<(), sqlx::Error> {
        if self.stall_at == Some(meta.position()) {
            // As a handler stuck on a slow call when the process dies.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.pause).await;
        sqlx::query("INSERT INTO handled (position, pid) VALUES ($1, $2)")
            .bind(meta.position() as i64)
            .bind(self.pid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Appends `position pid` to a log file for each event it handles: one
/// `write` of a short line with `O_APPEND`, so lines of two processes never
/// mix.
pub struct FileRecorder {
    log: std::fs::File,
    pause: Duration,
}

#[event_handler(name = "failover-recorder-sqlite")]
impl FileRecorder {
    async fn on_ping(&self, _: &PingEvent, meta: &EventMeta<'_>) -> Result<(), std::io::Error> {
        tokio::time::sleep(self.pause).await;
        let line = format!("{} {}\n", meta.position(), std::process::id());
        (&self.log).write_all(line.as_bytes())
    }
}

/// A SQLite child: like `child`, on the file `path`, logging into the file
/// that `SQLITE_LOG` names.
async fn sqlite_child(path: String) {
    let store = SqliteStore::open(&path).await.expect("open the database");
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(std::env::var(SQLITE_LOG).expect("a log file"))
        .expect("open the log file");
    let pause = Duration::from_millis(
        std::env::var(PAUSE_MS).map_or(0, |ms| ms.parse().expect("milliseconds")),
    );
    let app = App::builder()
        .store(store)
        .handler(FileRecorder { log, pause })
        .build()
        .expect("an app with the handler");
    println!("ready");
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()))
        .await
        .expect("read stdin")
        .expect("read stdin");
    app.shutdown().await.expect("a clean shutdown");
    println!("shut down");
}

/// One child process: runs the handler until its stdin closes, then shuts
/// its App down cleanly. Started by the tests below, never on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the failover tests"]
async fn child() {
    if let Ok(path) = std::env::var(SQLITE_CHILD) {
        return sqlite_child(path).await;
    }
    let Ok(schema) = std::env::var(CHILD) else {
        eprintln!("not started by a failover test: nothing to do");
        return;
    };
    let mut builder = PostgresStore::builder(test_url())
        .schema(schema)
        .max_connections(4);
    if let Ok(ms) = std::env::var(LOCK_TIMEOUT_MS) {
        builder = builder.lock_timeout(Duration::from_millis(ms.parse().expect("milliseconds")));
    }
    let store = builder.connect().await.expect("PostgreSQL is reachable");
    let mut options = HandlerOptions::new();
    if let Ok(every) = std::env::var(CHECKPOINT_EVERY) {
        let every = every.parse().expect("a number of events");
        options = options
            .batch_size(20)
            .checkpoint_every(every, Duration::from_secs(3600));
    }
    let recorder = Recorder {
        pool: store.pool().clone(),
        pid: std::process::id() as i32,
        stall_at: std::env::var(STALL_AT)
            .ok()
            .map(|p| p.parse().expect("a position")),
        pause: Duration::from_millis(
            std::env::var(PAUSE_MS).map_or(0, |ms| ms.parse().expect("milliseconds")),
        ),
    };
    let app = App::builder()
        .store(store)
        .handler_with(recorder, options)
        .build()
        .expect("an app with the handler");
    println!("ready");
    // The handler's state as it changes: `state Starting` while it waits for
    // its turn (see `Child::waiting`).
    let watched = app.clone();
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let state = watched
                .handler_status()
                .await
                .into_iter()
                .find(|s| s.name == HANDLER)
                .map(|s| s.state);
            if state != last {
                if let Some(state) = &state {
                    println!("state {state:?}");
                }
                last = state;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // Until the parent closes our stdin (or dies).
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()))
        .await
        .expect("read stdin")
        .expect("read stdin");
    app.shutdown().await.expect("a clean shutdown");
    println!("shut down");
}

/// A running child; killed when dropped, its stderr shown if the test failed.
struct Child {
    process: std::process::Child,
    name: &'static str,
    stdout: mpsc::Receiver<String>,
    /// Every line it printed so far.
    printed: Mutex<Vec<String>>,
    log: PathBuf,
}

impl Child {
    fn start(
        name: &'static str,
        schema: &str,
        dir: &tempfile::TempDir,
        env: &[(&str, String)],
    ) -> Self {
        let log = dir.path().join(format!("{name}.log"));
        let mut command = Command::new(std::env::current_exe().expect("this test binary"));
        command
            .args(["--exact", "child", "--ignored", "--nocapture"])
            .env(CHILD, schema)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("a log file"));
        for (key, value) in env {
            command.env(key, value);
        }
        let mut process = command.spawn().expect("start a child process");
        let out = process.stdout.take().expect("piped");
        let (send, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Self {
            process,
            name,
            stdout,
            printed: Mutex::new(Vec::new()),
            log,
        }
    }

    fn pid(&self) -> i32 {
        self.process.id() as i32
    }

    /// Every line printed so far.
    fn lines(&self) -> Vec<String> {
        let mut printed = self.printed.lock().unwrap();
        printed.extend(self.stdout.try_iter());
        printed.clone()
    }

    /// Whether its handler waits for its turn: its last state is `Starting`
    /// (after the first look at the turn, which takes a moment).
    fn waiting(&self) -> bool {
        let lines = self.lines();
        let last = lines.iter().rev().find(|l| l.starts_with("state "));
        last.is_some_and(|l| l == "state Starting")
    }

    /// Waits until the child printed `line`.
    async fn printed(&self, line: &str) {
        let started = Instant::now();
        loop {
            if self.lines().iter().any(|got| got == line) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "child {} did not print {line:?} in 30 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILL, and reap it.
    fn kill(&mut self) {
        // SAFETY: kill(2) on the id of a child we have not reaped yet.
        let sent = unsafe { libc::kill(self.pid(), libc::SIGKILL) };
        assert_eq!(sent, 0, "SIGKILL {}", self.name);
        let status = self.process.wait().expect("reap the child");
        assert!(!status.success(), "{} was killed: {status}", self.name);
    }

    /// Closes its stdin: it shuts its App down and exits.
    fn close_stdin(&mut self) {
        drop(self.process.stdin.take());
    }

    /// Waits for it to exit, successfully, within `timeout`.
    async fn exited(&mut self, timeout: Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.process.try_wait().expect("poll the child") {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{} did not exit in {timeout:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
        if std::thread::panicking() {
            let mut log = String::new();
            let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut log));
            eprintln!(
                "--- stderr of child {} (pid {}) ---\n{log}",
                self.name,
                self.process.id()
            );
        }
    }
}

/// Drops a test's schema when the test ends, passed or failed (after its
/// children, which are declared later and so dropped first).
struct SchemaGuard(String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let schema = std::mem::take(&mut self.0);
        // On a thread of its own: this may run inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut admin = admin_connection().await;
                // The schema name was validated by the store.
                let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                sqlx::query(AssertSqlSafe(sql)).execute(&mut admin).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(_))) && !std::thread::panicking() {
            panic!("cannot drop the test schema: {dropped:?}");
        }
    }
}

/// A fresh schema with the store's tables, the handler's log table and the
/// checkpoint log; and an App there that runs no handler.
async fn setup() -> (PostgresStore, App, SchemaGuard) {
    let store = PostgresStore::builder(test_url())
        .schema(fresh_schema())
        .max_connections(4)
        .connect()
        .await
        .expect("PostgreSQL is reachable");
    let guard = SchemaGuard(store.schema().to_owned());
    let schema = store.schema();
    // The schema name was validated by the store.
    let sql = format!(
        r#"
        CREATE SEQUENCE "{schema}".failover_seq;
        CREATE TABLE "{schema}".handled (
            seq      bigint NOT NULL DEFAULT nextval('"{schema}".failover_seq'),
            position bigint NOT NULL,
            pid      int NOT NULL,
            at       timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE TABLE "{schema}".checkpoint_log (
            seq      bigint NOT NULL DEFAULT nextval('"{schema}".failover_seq'),
            name     text NOT NULL,
            position bigint NOT NULL
        );
        CREATE FUNCTION "{schema}".log_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO "{schema}".checkpoint_log (name, position) VALUES (NEW.subscription, NEW.position);
            RETURN NULL;
        END $$;
        CREATE TRIGGER log_checkpoint AFTER INSERT OR UPDATE ON "{schema}".checkpoints
            FOR EACH ROW EXECUTE FUNCTION "{schema}".log_checkpoint();
        "#
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(store.pool())
        .await
        .expect("create the log tables");
    let app = App::builder().store(store.clone()).build().expect("an app");
    (store, app, guard)
}

/// One row of `handled`.
#[derive(Debug, Clone, Copy)]
struct Handled {
    seq: i64,
    position: u64,
    pid: i32,
    /// Seconds since the epoch, server clock.
    at: f64,
}

async fn handled(store: &PostgresStore) -> Vec<Handled> {
    let rows: Vec<(i64, i64, i32, f64)> = sqlx::query_as(
        "SELECT seq, position, pid, extract(epoch FROM at)::float8 FROM handled ORDER BY seq",
    )
    .fetch_all(store.pool())
    .await
    .expect("read the handled log");
    rows.into_iter()
        .map(|(seq, position, pid, at)| Handled {
            seq,
            position: position as u64,
            pid,
            at,
        })
        .collect()
}

/// A `seq` drawn now, and the server's clock (seconds since the epoch).
async fn mark(store: &PostgresStore) -> (i64, f64) {
    sqlx::query_as("SELECT nextval('failover_seq'), extract(epoch FROM clock_timestamp())::float8")
        .fetch_one(store.pool())
        .await
        .expect("draw a mark")
}

/// The last checkpoint saved before `seq`, as the checkpoint log has it.
async fn checkpoint_before(store: &PostgresStore, seq: i64) -> u64 {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT max(position) FROM checkpoint_log WHERE name = $1 AND seq < $2")
            .bind(HANDLER)
            .bind(seq)
            .fetch_one(store.pool())
            .await
            .expect("read the checkpoint log");
    position.unwrap_or(0) as u64
}

/// How many of `children` wait for the handler's turn, as they print it.
fn waiting_for_turn(children: &[&Child]) -> usize {
    children.iter().filter(|c| c.waiting()).count()
}

/// Polls `check` every 20 ms until it returns something, at most `timeout`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Dispatches a ping every few milliseconds, round the streams, until stopped.
struct Appender {
    positions: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Appender {
    fn start(app: &App) -> Self {
        let positions = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (app, positions, stop) = (app.clone(), positions.clone(), stop.clone());
            async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let position = ping(&app, n).await;
                    positions.lock().unwrap().push(position);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        Self {
            positions,
            stop,
            task,
        }
    }

    fn count(&self) -> usize {
        self.positions.lock().unwrap().len()
    }

    /// Stops, and returns every position appended.
    async fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the appender");
        Arc::try_unwrap(self.positions)
            .expect("the appender is done")
            .into_inner()
            .unwrap()
    }
}

async fn ping(app: &App, n: u64) -> u64 {
    let done = app
        .dispatch(Ping {
            id: format!("p{}", n % 4),
            n,
        })
        .await
        .expect("a ping is appended");
    done.positions.expect("one event").1
}

/// Appends [`BURST`] pings at once, each to a stream of its own.
async fn burst(app: &App) -> Vec<u64> {
    futures::future::join_all((0..BURST).map(|i| async move {
        let id = format!("burst-{i}");
        let done = app.dispatch(Ping { id, n: i }).await.expect("a burst ping");
        done.positions.expect("one event").1
    }))
    .await
}

/// Waits until the handler's checkpoint passed every position in
/// `appended`, then checks that each was handled at least once.
async fn all_handled(store: &PostgresStore, appended: &[u64]) -> Vec<Handled> {
    let last = appended.iter().max().copied().unwrap_or(0);
    eventually(
        "the handler passes every event",
        Duration::from_secs(20),
        || async {
            let checkpoint = store.load_checkpoint(HANDLER).await.unwrap();
            checkpoint.is_some_and(|c| c >= last).then_some(())
        },
    )
    .await;
    let rows = handled(store).await;
    let seen: BTreeSet<u64> = rows.iter().map(|r| r.position).collect();
    let skipped: Vec<u64> = appended
        .iter()
        .filter(|p| !seen.contains(p))
        .copied()
        .collect();
    assert!(skipped.is_empty(), "never handled: {skipped:?}");
    rows
}

/// How many times each position was handled.
fn counts(rows: &[Handled]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(row.position).or_insert(0) += 1;
    }
    counts
}

/// The processes that handled, in the order their runs of rows came: a
/// handover from A to B is `[A, B]`; interleaving shows as `[A, B, A, ..]`.
fn runs(rows: &[Handled]) -> Vec<i32> {
    let mut runs: Vec<i32> = Vec::new();
    for row in rows {
        if runs.last() != Some(&row.pid) {
            runs.push(row.pid);
        }
    }
    runs
}

/// Asserts that the processes handled in these runs, one after the other.
#[track_caller]
fn assert_runs(rows: &[Handled], expected: &[i32], what: &str) {
    let runs = runs(rows);
    assert!(
        runs == expected,
        "{what}: expected runs of {expected:?}, got {} runs, beginning {:?}",
        runs.len(),
        &runs[..runs.len().min(8)]
    );
}

/// Two children; the one handling is killed while events keep coming; the
/// other takes over. One at a time while both lived, nothing lost, and
/// duplicates only after the victim's last checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_at_a_time_and_takeover_after_sigkill() {
    let (store, app, _schema) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    // A handler that takes a few milliseconds per event, so that the kill
    // can land in the middle of a page.
    let slow = [(PAUSE_MS, "2".to_owned())];
    let mut a = Child::start("A", store.schema(), &dir, &slow);
    let mut b = Child::start("B", store.schema(), &dir, &slow);
    let appender = Appender::start(&app);
    a.printed("ready").await;
    b.printed("ready").await;

    // One of them handles; the other waits for its turn.
    let holder = eventually(
        "a child handles events",
        Duration::from_secs(15),
        || async { handled(&store).await.first().map(|r| r.pid) },
    )
    .await;
    assert!(
        holder == a.pid() || holder == b.pid(),
        "pid {holder} is no child"
    );
    // Both alive, events flowing: time for a second runner, were there
    // one, to show itself.
    let before = appender.count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows = handled(&store).await;
    assert_runs(
        &rows,
        &[holder],
        &format!(
            "only one child handles while both live ({} events appended meanwhile)",
            appender.count() - before
        ),
    );
    assert_eq!(
        waiting_for_turn(&[&a, &b]),
        1,
        "the other child waits for its turn"
    );

    let (victim, survivor) = if holder == a.pid() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // A burst, and the kill while the holder is in the middle of it: what
    // it handled of the burst is after its last checkpoint.
    let burst = burst(&app).await;
    eventually(
        "the holder is in the middle of the burst",
        Duration::from_secs(10),
        || async {
            let rows = handled(&store).await;
            (rows.iter().filter(|r| burst.contains(&r.position)).count() >= 10).then_some(())
        },
    )
    .await;
    let checkpoint_read = store.load_checkpoint(HANDLER).await.unwrap().unwrap_or(0);
    let (kill_seq, kill_at) = mark(&store).await;
    victim.kill();
    let victim_pid = victim.pid();
    let survivor_pid = survivor.pid();

    let first = eventually("the survivor takes over", TAKEOVER_BOUND, || async {
        handled(&store)
            .await
            .into_iter()
            .find(|r| r.pid == survivor_pid)
    })
    .await;
    let takeover = Duration::from_secs_f64((first.at - kill_at).max(0.0));
    // Some more events, live, then everything must be handled.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut appended = appender.stop().await;
    appended.extend(burst);
    appended.sort_unstable();
    let rows = all_handled(&store, &appended).await;

    assert_runs(
        &rows,
        &[victim_pid, survivor_pid],
        "the victim, then the survivor: never both in turn",
    );
    let first = rows.iter().find(|r| r.pid == survivor_pid).unwrap();
    assert!(
        first.seq > kill_seq,
        "the survivor handled position {} before the victim was killed",
        first.position
    );
    let extra: Vec<u64> = counts(&rows)
        .keys()
        .filter(|p| !appended.contains(p))
        .copied()
        .collect();
    assert!(
        extra.is_empty(),
        "handled what was never appended: {extra:?}"
    );

    // At least once: what the survivor handled again is exactly what the
    // victim handled after its last checkpoint.
    let checkpoint = checkpoint_before(&store, first.seq).await;
    assert!(
        checkpoint >= checkpoint_read,
        "the checkpoint log ({checkpoint}) is behind the store ({checkpoint_read})"
    );
    let resumed_at = appended.iter().find(|&&p| p > checkpoint).copied();
    assert_eq!(
        Some(first.position),
        resumed_at,
        "the survivor resumes right after the victim's checkpoint {checkpoint}"
    );
    let counts = counts(&rows);
    let duplicates: Vec<u64> = counts
        .iter()
        .filter(|&(_, &n)| n > 1)
        .map(|(&p, _)| p)
        .collect();
    assert!(
        counts.values().all(|&n| n <= 2),
        "handled three times or more: {counts:?}"
    );
    assert!(
        duplicates.iter().all(|&p| p > checkpoint),
        "handled twice at or before the checkpoint {checkpoint}: {duplicates:?}"
    );
    let unsaved: Vec<u64> = rows
        .iter()
        .filter(|r| r.pid == victim_pid && r.position > checkpoint)
        .map(|r| r.position)
        .collect();
    assert_eq!(
        duplicates, unsaved,
        "the replays are what the victim handled after its checkpoint"
    );
    eprintln!(
        "takeover after SIGKILL: {takeover:.2?}; {} events, {} duplicates (victim's checkpoint {checkpoint}, \
         read before the kill {checkpoint_read})",
        appended.len(),
        duplicates.len(),
    );
    assert!(takeover < TAKEOVER_BOUND);

    survivor.close_stdin();
    survivor.exited(Duration::from_secs(15)).await;
    assert_eq!(
        store.load_checkpoint(HANDLER).await.unwrap(),
        appended.last().copied(),
        "the survivor's shutdown saves its checkpoint at the end"
    );
    drop_schema(&store).await;
}

/// The handling child shuts down cleanly; the waiting one takes over from
/// its checkpoint: every event handled exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_hands_over_without_duplicates() {
    let (store, app, _schema) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let slow = [(PAUSE_MS, "2".to_owned())];
    let appender = Appender::start(&app);
    let mut a = Child::start("A", store.schema(), &dir, &slow);
    let a_pid = a.pid();
    eventually("A handles events", Duration::from_secs(15), || async {
        handled(&store).await.first().map(|_| ())
    })
    .await;
    let mut b = Child::start("B", store.schema(), &dir, &slow);
    let b_pid = b.pid();
    b.printed("ready").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_runs(&handled(&store).await, &[a_pid], "only A handles");
    eventually("B waits for its turn", Duration::from_secs(15), || async {
        (waiting_for_turn(&[&b]) == 1).then_some(())
    })
    .await;

    // A shuts down in the middle of a burst: it stops after the event in
    // hand and checkpoints there, and B goes on from the next one.
    let burst = burst(&app).await;
    eventually(
        "A is in the middle of the burst",
        Duration::from_secs(10),
        || async {
            let rows = handled(&store).await;
            (rows.iter().filter(|r| burst.contains(&r.position)).count() >= 10).then_some(())
        },
    )
    .await;
    let (_, closed_at) = mark(&store).await;
    a.close_stdin();
    a.exited(Duration::from_secs(15)).await;
    let first = eventually("B takes over", TAKEOVER_BOUND, || async {
        handled(&store).await.into_iter().find(|r| r.pid == b_pid)
    })
    .await;
    let handover = Duration::from_secs_f64((first.at - closed_at).max(0.0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut appended = appender.stop().await;
    appended.extend(&burst);
    appended.sort_unstable();
    let rows = all_handled(&store, &appended).await;

    assert_runs(&rows, &[a_pid, b_pid], "A, then B");
    let twice: Vec<(u64, usize)> = counts(&rows).into_iter().filter(|&(_, n)| n > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    assert_eq!(rows.len(), appended.len(), "each event once");
    let of_burst = |pid| {
        rows.iter()
            .filter(|r| r.pid == pid && burst.contains(&r.position))
            .count()
    };
    eprintln!(
        "handover after a clean shutdown: {handover:.2?} from closing A's stdin; {} events, 0 duplicates; \
         of the burst of {BURST}, A handled {} and B {}",
        appended.len(),
        of_burst(a_pid),
        of_burst(b_pid),
    );

    b.close_stdin();
    b.exited(Duration::from_secs(15)).await;
    drop_schema(&store).await;
}

/// A child that checkpoints every 100 events is killed while handling the
/// 150th; a new child handles everything after that checkpoint again:
/// nothing skipped, and the replays are exactly events 101 to 149.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_checkpoint_replays_never_skips() {
    let (store, app, _schema) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let mut appended = Vec::new();
    for n in 1..=300 {
        appended.push(ping(&app, n).await);
    }
    let stall = appended[149];
    let mut victim = Child::start(
        "victim",
        store.schema(),
        &dir,
        &[
            (CHECKPOINT_EVERY, "100".into()),
            (STALL_AT, stall.to_string()),
        ],
    );
    eventually(
        "the victim handles 149 events",
        Duration::from_secs(15),
        || async { (handled(&store).await.len() >= 149).then_some(()) },
    )
    .await;
    // Stuck on the 150th: nothing more is handled or saved.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = handled(&store).await;
    let positions: Vec<u64> = before.iter().map(|r| r.position).collect();
    assert_eq!(
        positions,
        appended[..149],
        "the victim handled 1 to 149, in order"
    );
    let saved = store.load_checkpoint(HANDLER).await.unwrap();
    victim.kill();
    let checkpoint = store.load_checkpoint(HANDLER).await.unwrap().unwrap_or(0);
    assert_eq!(Some(checkpoint), saved, "the kill saved nothing");

    let mut heir = Child::start(
        "heir",
        store.schema(),
        &dir,
        &[(CHECKPOINT_EVERY, "100".into())],
    );
    let heir_pid = heir.pid();
    let rows = all_handled(&store, &appended).await;
    heir.close_stdin();
    heir.exited(Duration::from_secs(15)).await;

    let after: Vec<u64> = appended
        .iter()
        .filter(|&&p| p > checkpoint)
        .copied()
        .collect();
    let heir_handled: Vec<u64> = rows
        .iter()
        .filter(|r| r.pid == heir_pid)
        .map(|r| r.position)
        .collect();
    assert_eq!(
        heir_handled, after,
        "the heir handles everything after the checkpoint {checkpoint}, once, in order"
    );
    let counts = counts(&rows);
    assert!(
        counts.values().all(|&n| n <= 2),
        "nothing handled three times"
    );
    let replayed: Vec<u64> = counts
        .iter()
        .filter(|&(_, &n)| n > 1)
        .map(|(&p, _)| p)
        .collect();
    let unsaved: Vec<u64> = positions
        .iter()
        .filter(|&&p| p > checkpoint)
        .copied()
        .collect();
    assert_eq!(
        replayed, unsaved,
        "the replays are exactly what the victim handled after its checkpoint {checkpoint}"
    );
    // The premise: its one checkpoint came after 100 events (5 pages of 20),
    // so the crash lost 49 handled events' worth of checkpoint.
    assert_eq!(checkpoint, appended[99], "the victim's checkpoint");
    assert_eq!(replayed, appended[100..149]);
    eprintln!(
        "crash before the checkpoint: checkpoint at event 100 (position {checkpoint}), {} events replayed",
        replayed.len()
    );
    drop_schema(&store).await;
}

/// A child that has waited for its turn a long while (9 s, with a store
/// `lock_timeout` of 200 ms) still takes over at once.
///
/// Written when a wait for the turn timed out after `lock_timeout` and came
/// back as a store error: were it backed off from like a failing store, a
/// long-waiting child would mostly be pausing, not waiting. Turns now wait
/// without a timeout (`EventStore::lock_turn`, tried again every 0.25-0.5 s
/// on PostgreSQL); the test keeps a long wait from ever slowing a takeover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_waiting_child_takes_over_at_once() {
    let (store, app, _schema) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let short = [(LOCK_TIMEOUT_MS, "200".to_owned())];
    let appender = Appender::start(&app);
    let mut a = Child::start("A", store.schema(), &dir, &short);
    eventually("A handles events", Duration::from_secs(15), || async {
        handled(&store).await.first().map(|_| ())
    })
    .await;
    let b = Child::start("B", store.schema(), &dir, &short);
    let b_pid = b.pid();
    b.printed("ready").await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let (_, kill_at) = mark(&store).await;
    a.kill();
    let first = eventually("B takes over", TAKEOVER_BOUND, || async {
        handled(&store).await.into_iter().find(|r| r.pid == b_pid)
    })
    .await;
    let takeover = Duration::from_secs_f64((first.at - kill_at).max(0.0));
    let appended = appender.stop().await;
    all_handled(&store, &appended).await;
    eprintln!("takeover after 9 s of waiting (lock waits of 200 ms): {takeover:.2?}");
    assert!(
        takeover < Duration::from_secs(1),
        "B took {takeover:.2?} to take over: it was pausing between lock waits, not waiting"
    );
    drop(b);
    drop_schema(&store).await;
}

/// The holder's lock connection dies (the server ends it, as a network
/// failure, a proxy or an operator would): PostgreSQL releases its advisory
/// lock, so the waiting child takes the turn. The old holder must then stop
/// handling: soon, only one child handles.
///
/// Fails with the runner of this branch: once it has its turn, it only
/// keeps the `StreamLock` and never learns that the lock is gone, so both
/// children handle every event from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_lost_its_lock_connection_stops_handling() {
    let (store, app, _schema) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let a = Child::start("A", store.schema(), &dir, &[]);
    let b = Child::start("B", store.schema(), &dir, &[]);
    let appender = Appender::start(&app);
    a.printed("ready").await;
    b.printed("ready").await;
    let holder = eventually(
        "a child handles events",
        Duration::from_secs(15),
        || async { handled(&store).await.first().map(|r| r.pid) },
    )
    .await;
    eventually(
        "the other child waits for its turn",
        Duration::from_secs(15),
        || async { (waiting_for_turn(&[&a, &b]) == 1).then_some(()) },
    )
    .await;
    let other = if holder == a.pid() { b.pid() } else { a.pid() };

    let ended: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l \
         JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.mode = 'ExclusiveLock' AND l.granted \
         AND a.application_name = $1",
    )
    .bind(application_name(&store))
    .fetch_one(store.pool())
    .await
    .expect("end the holder's lock connection");
    assert_eq!(ended, 1, "one connection held the turn");
    eventually("the other child takes the turn", TAKEOVER_BOUND, || async {
        handled(&store).await.into_iter().find(|r| r.pid == other)
    })
    .await;
    // Time for the old holder to notice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (since, _) = mark(&store).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let appended = appender.stop().await;
    let rows = all_handled(&store, &appended).await;
    let late: Vec<Handled> = rows.iter().filter(|r| r.seq > since).copied().collect();
    let pids: BTreeSet<i32> = late.iter().map(|r| r.pid).collect();
    let twice = counts(&rows).values().filter(|&&n| n > 1).count();
    eprintln!(
        "lost lock connection: in the last second, {} events handled by {pids:?} (holder {holder}, other {other}); \
         {twice} of {} events handled twice",
        late.len(),
        appended.len()
    );
    assert_eq!(
        pids.len(),
        1,
        "3 s after the turn passed on, both children still handle: the old holder does not know it lost its lock"
    );
    drop_schema(&store).await;
}

/// What the SQLite children's handler logged, in the order it was written
/// (`seq` is the line number; `at` is not recorded).
fn logged(log: &std::path::Path) -> Vec<Handled> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(seq, line)| {
            let (position, pid) = line.split_once(' ').expect("`position pid`");
            Handled {
                seq: seq as i64,
                position: position.parse().expect("a position"),
                pid: pid.parse().expect("a pid"),
                at: 0.0,
            }
        })
        .collect()
}

/// Two real processes run one handler on one SQLite file: one at a time
/// while both live (the handler's turn is a stream lock, which on SQLite
/// excludes other processes through an OFD lock on the database's `-locks`
/// file), and when the holder is SIGKILLed the kernel frees its lock and
/// the other takes over within seconds, with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_once_at_a_time_and_takeover_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let log = dir.path().join("handled.log");
    let store = SqliteStore::open(&db).await.expect("open the database");
    let app = App::builder().store(store).build().expect("an app");
    let env = [
        (SQLITE_CHILD, db.display().to_string()),
        (SQLITE_LOG, log.display().to_string()),
        (PAUSE_MS, "2".to_owned()),
    ];
    let mut a = Child::start("A", "", &dir, &env);
    let mut b = Child::start("B", "", &dir, &env);
    let appender = Appender::start(&app);
    a.printed("ready").await;
    b.printed("ready").await;

    let holder = eventually(
        "a child handles events",
        Duration::from_secs(15),
        || async { logged(&log).first().map(|r| r.pid) },
    )
    .await;
    let before = appender.count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_runs(
        &logged(&log),
        &[holder],
        &format!(
            "only one child handles while both live ({} events appended meanwhile)",
            appender.count() - before
        ),
    );

    let (victim, survivor) = if holder == a.pid() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    victim.kill();
    let killed = Instant::now();
    let (victim_pid, survivor_pid) = (victim.pid(), survivor.pid());
    eventually(
        "the survivor takes over",
        Duration::from_secs(10),
        || async {
            logged(&log)
                .iter()
                .any(|r| r.pid == survivor_pid)
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "the survivor took over {:?} after the kill",
        killed.elapsed()
    );
    let appended = appender.stop().await;
    let rows = eventually(
        "every appended event is handled",
        Duration::from_secs(20),
        || async {
            let rows = logged(&log);
            let seen: BTreeSet<u64> = rows.iter().map(|r| r.position).collect();
            appended.iter().all(|p| seen.contains(p)).then_some(rows)
        },
    )
    .await;
    assert_runs(
        &rows,
        &[victim_pid, survivor_pid],
        "the survivor after the victim",
    );
    // At least once: only what the victim handled after its last
    // checkpoint may be handled again.
    let twice: Vec<u64> = counts(&rows)
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(p, _)| p)
        .collect();
    assert!(
        twice
            .iter()
            .all(|p| rows.iter().any(|r| r.position == *p && r.pid == victim_pid)),
        "handled twice without the victim: {twice:?}"
    );
    survivor.close_stdin();
    survivor.exited(Duration::from_secs(10)).await;
}
