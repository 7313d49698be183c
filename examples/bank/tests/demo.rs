//! Runs the `bank` binary's scripted demo as a user would: `cargo run -p
//! bank -- demo`. (`cargo run -p bank` serves HTTP: `tests/http.rs`.)

use std::process::Command;

fn run_bank(envs: &[(&str, &str)], dir: &std::path::Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bank"));
    cmd.arg("demo")
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BANK_DB");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the bank binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bank failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The global position of the first recorded event in a run (`@N`).
fn first_position(output: &str) -> u64 {
    let line = output
        .lines()
        .find(|l| l.starts_with("open account"))
        .expect("an open line");
    let at = line
        .split_whitespace()
        .find(|w| w.starts_with('@'))
        .expect("a position");
    at[1..].parse().expect("a number")
}

#[test]
fn the_demo_keeps_its_events_in_a_sqlite_file_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_bank(&[], dir.path());
    assert!(first.contains("store = SQLite file bank.db"), "{first}");
    assert!(dir.path().join("bank.db").exists(), "created on first run");
    assert!(first.contains("refused  insufficient funds"), "{first}");
    assert!(
        first.contains("deposit 5.00 USD     refused  deposits are taken in EUR only, not USD"),
        "{first}"
    );
    assert!(first.contains("close                ok"), "{first}");
    // The cash withdrawals: dispensed with the right PIN, declined without;
    // the read models show the balance and the money movements.
    assert!(
        first.contains("teller: atm-ok       Some(Dispensed)"),
        "{first}"
    );
    assert!(
        first.contains("teller: atm-bad-pin  Some(Declined)"),
        "{first}"
    );
    assert!(
        first.contains("Bob Stone       15000 cents  open"),
        "{first}"
    );
    assert!(first.contains("withdrawal     5000 cents EUR"), "{first}");
    // The file alone holds every event: a copy of `bank.db` without its
    // `-wal` (as a user would copy "the database") reads them all back.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("bank.db"), copy.path().join("bank.db")).unwrap();
    let copied = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = annals::sqlite::SqliteStore::open(copy.path().join("bank.db"))
            .await
            .unwrap();
        let head = annals::EventStore::head_position(&store).await.unwrap();
        store.close().await.unwrap();
        head
    });
    assert_eq!(copied, events_in_store(&first), "bank.db alone holds them");
    let second = run_bank(&[], dir.path());
    assert_eq!(first_position(&first), 1);
    assert_eq!(
        first_position(&second),
        events_in_store(&first) + 1,
        "the second run appends after the first run's events"
    );
}

/// What the run says the store holds at its end.
fn events_in_store(output: &str) -> u64 {
    output
        .lines()
        .find_map(|l| l.strip_prefix("events in the store: "))
        .expect("the closing line")
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn the_store_is_chosen_by_environment() {
    let dir = tempfile::tempdir().unwrap();
    let custom = run_bank(&[("BANK_DB", "custom.db")], dir.path());
    assert!(
        custom.contains("store = SQLite file custom.db") && dir.path().join("custom.db").exists()
    );
    let memory = run_bank(&[("DATABASE_URL", "memory")], dir.path());
    assert!(memory.contains("store = in-memory"), "{memory}");

    let out = Command::new(env!("CARGO_BIN_EXE_bank"))
        .arg("demo")
        .current_dir(dir.path())
        .env("DATABASE_URL", "mysql://root@localhost/bank")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL must start with postgres://")
    );
}

#[test]
fn an_unknown_subcommand_says_how_to_run_the_bank() {
    let out = Command::new(env!("CARGO_BIN_EXE_bank"))
        .arg("deposit")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("unrecognized subcommand 'deposit'") && said.contains("Usage: bank"),
        "{said}"
    );
}
