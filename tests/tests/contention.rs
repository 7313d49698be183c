//! Several `App`s (as several nodes or processes would be) on one database,
//! all dispatching to one stream, end with no conflict reaching a caller under
//! default settings, nothing lost and nothing applied twice: on every store,
//! and with real processes on PostgreSQL and on one SQLite file.

use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals::{App, MemoryStore};
use annals_tests::contention::{self, HotCounter, HotRun, Tally};
use annals_tests::postgres::{drop_schema, fresh_schema, test_url};
use std::sync::Arc;
use std::time::Duration;

const APPS: usize = 16;
/// Commands per app: 16 x 63 is about 1,000 commands on the one stream.
const PER_APP: u64 = 63;

/// The counter holds every command exactly once, read by a fresh app.
async fn assert_all_applied(run: &HotRun, fresh: &App, counter: &str, expected: u64) {
    assert_eq!(
        run.conflicts_returned, 0,
        "conflicts reached callers: {run:?}"
    );
    assert!(run.errors.is_empty(), "errors: {:#?}", run.errors);
    let (state, version) = fresh
        .load::<HotCounter>(counter)
        .await
        .expect("the counter loads");
    assert_eq!(
        (state.total, state.bumps, version),
        (expected, expected, expected)
    );
    eprintln!(
        "{} commands in {:.2?} ({:.0}/s), {} conflicts met and retried, {} retries",
        run.commands,
        run.elapsed,
        run.rate(),
        run.conflicts_met,
        run.retries
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_apps_on_one_memory_store() {
    let store = MemoryStore::new();
    let tally = Arc::new(Tally::default());
    let apps: Vec<_> = (0..APPS)
        .map(|_| contention::app(store.clone(), &tally))
        .collect();
    let run = contention::hot_stream(&apps, &tally, "mem", PER_APP).await;
    let fresh = contention::app(store, &tally);
    assert_all_applied(&run, &fresh, "mem", PER_APP * APPS as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_apps_with_their_own_sqlite_stores_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let tally = Arc::new(Tally::default());
    let mut apps = Vec::new();
    for _ in 0..APPS {
        let store = SqliteStore::open(&path).await.expect("open the file");
        apps.push(contention::app(store, &tally));
    }
    let run = contention::hot_stream(&apps, &tally, "lite", PER_APP).await;
    let fresh = contention::app(SqliteStore::open(&path).await.unwrap(), &tally);
    assert_all_applied(&run, &fresh, "lite", PER_APP * APPS as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_apps_with_their_own_postgres_stores_on_one_schema() {
    let schema = fresh_schema();
    let connect = || {
        PostgresStore::builder(test_url())
            .schema(schema.clone())
            .max_connections(3)
            .connect()
    };
    let tally = Arc::new(Tally::default());
    let mut stores = Vec::new();
    for _ in 0..APPS {
        stores.push(connect().await.expect("PostgreSQL is reachable"));
    }
    let apps: Vec<_> = stores
        .iter()
        .map(|s| contention::app(s.clone(), &tally))
        .collect();
    let run = contention::hot_stream(&apps, &tally, "pg", PER_APP).await;
    let fresh = contention::app(stores[0].clone(), &tally);
    assert_all_applied(&run, &fresh, "pg", PER_APP * APPS as u64).await;
    for store in &stores[1..] {
        store.close().await;
    }
    drop_schema(&stores[0]).await;
}

/// The environment variable that makes `worker` (below) a worker process.
const WORKER: &str = "ANNALS_CONTENTION_WORKER";

/// Two real processes (this test binary, run again as workers) dispatch to one
/// PostgreSQL stream at once, 4 apps each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_stream() {
    let schema = fresh_schema();
    let store = PostgresStore::builder(test_url())
        .schema(schema.clone())
        .connect()
        .await
        .expect("PostgreSQL is reachable");
    let per_process = 4 * PER_APP;
    let exe = std::env::current_exe().unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "worker", "--ignored", "--nocapture"])
                .env(WORKER, &schema)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a worker process")
        })
        .collect();
    for worker in workers {
        let out = tokio::task::spawn_blocking(move || worker.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            out.status.success(),
            "a worker failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let fresh = contention::app(store.clone(), &Arc::new(Tally::default()));
    let (state, version) = fresh.load::<HotCounter>("proc").await.unwrap();
    assert_eq!(
        (state.total, version),
        (2 * per_process, 2 * per_process),
        "every command of both processes applied once"
    );
    drop_schema(&store).await;
}

/// One worker process of `two_processes_on_one_postgres_stream`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a worker process by two_processes_on_one_postgres_stream"]
async fn worker() {
    let schema = std::env::var(WORKER).expect("started by the contention test");
    let store = PostgresStore::builder(test_url())
        .schema(schema)
        .max_connections(4)
        .connect()
        .await
        .expect("PostgreSQL is reachable");
    let tally = Arc::new(Tally::default());
    let apps: Vec<_> = (0..4)
        .map(|_| contention::app(store.clone(), &tally))
        .collect();
    let run = contention::hot_stream(&apps, &tally, "proc", PER_APP).await;
    assert_eq!(run.conflicts_returned, 0, "{run:?}");
    assert!(run.errors.is_empty(), "{:#?}", run.errors);
    store.close().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// The environment variable that makes `sqlite_worker` (below) a worker
/// process, naming the database file.
const SQLITE_WORKER: &str = "ANNALS_CONTENTION_SQLITE_WORKER";
/// Worker processes on the SQLite file, and apps (each with a store of its
/// own) in each: 8 x 2 x 63 is about 1,000 commands on the one stream.
const SQLITE_PROCESSES: usize = 8;
const SQLITE_APPS_PER_PROCESS: usize = 2;

/// Real processes (this test binary, run again as workers) dispatch to one
/// stream of one SQLite file at once, several apps each, with default
/// settings: the stream lock must exclude the other processes too, or their
/// writers keep beating each other and conflicts reach callers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_on_one_sqlite_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    // Created (and migrated) once, before the workers race to open it.
    let store = SqliteStore::open(&path).await.expect("open the file");
    let exe = std::env::current_exe().unwrap();
    let workers: Vec<_> = (0..SQLITE_PROCESSES)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "sqlite_worker", "--ignored", "--nocapture"])
                .env(SQLITE_WORKER, &path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a worker process")
        })
        .collect();
    let (mut returned, mut met) = (0, 0);
    for worker in workers {
        let out = tokio::task::spawn_blocking(move || worker.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "a worker failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let counts: Vec<u64> = stdout
            .lines()
            .find_map(|line| line.strip_prefix("conflicts returned, met: "))
            .expect("the worker reports its conflicts")
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        returned += counts[0];
        met += counts[1];
    }
    let commands = (SQLITE_PROCESSES * SQLITE_APPS_PER_PROCESS) as u64 * PER_APP;
    eprintln!("{commands} commands, {met} conflicts met and retried, {returned} returned");
    assert_eq!(returned, 0, "conflicts reached callers ({met} met in all)");
    let fresh = contention::app(store, &Arc::new(Tally::default()));
    let (state, version) = fresh.load::<HotCounter>("proc").await.unwrap();
    assert_eq!(
        (state.total, state.bumps, version),
        (commands, commands, commands),
        "every command of every process applied once"
    );
}

/// One worker process of `processes_on_one_sqlite_stream`: reports its
/// conflicts on stdout instead of asserting, so the parent can add them up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a worker process by processes_on_one_sqlite_stream"]
async fn sqlite_worker() {
    let path = std::env::var_os(SQLITE_WORKER).expect("started by the contention test");
    let tally = Arc::new(Tally::default());
    let mut apps = Vec::new();
    for _ in 0..SQLITE_APPS_PER_PROCESS {
        let store = SqliteStore::open(&path).await.expect("open the file");
        apps.push(contention::app(store, &tally));
    }
    let run = contention::hot_stream(&apps, &tally, "proc", PER_APP).await;
    assert!(run.errors.is_empty(), "{:#?}", run.errors);
    println!(
        "conflicts returned, met: {} {}",
        run.conflicts_returned, run.conflicts_met
    );
    for app in apps {
        app.shutdown().await.expect("a clean shutdown");
    }
}
