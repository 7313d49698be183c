//! The operator commands embedded in the `bank` binary, on a fresh SQLite
//! file: `migrate` creates the store, `dispatch` records a command by name
//! (and a refusal exits 3), `streams`, `tail` and `status` show what is
//! stored and handled, and `rebuild` restores a read model that was spoilt.

use std::process::{Command, Output};

/// Runs `bank` with `args` in `dir` (its `bank.db`).
fn bank(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bank"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BANK_DB")
        .output()
        .expect("the bank binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const ACCOUNT: &str = "0192a0f0-0000-7000-8000-00000000000a";

#[test]
fn operator_commands_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    let migrated = bank(dir, &["migrate"]);
    assert!(migrated.status.success(), "{migrated:?}");
    assert!(
        stdout(&migrated).contains("applied 2 migrations"),
        "{migrated:?}"
    );

    let open = format!(
        r#"{{"account_id":"{ACCOUNT}","first_name":"Ada","last_name":"Lovelace","pin":"1234"}}"#
    );
    let opened = bank(dir, &["dispatch", "OpenAccount", &open]);
    assert!(opened.status.success(), "{opened:?}");
    let deposit = format!(r#"{{"account_id":"{ACCOUNT}","amount":500}}"#);
    let deposited = bank(dir, &["dispatch", "DepositMoney", &deposit]);
    assert!(
        stdout(&deposited).contains(&format!("Account-{ACCOUNT}, now at version 2")),
        "{deposited:?}"
    );

    // A refusal is exit code 3, and says why.
    let too_much = format!(r#"{{"account_id":"{ACCOUNT}","amount":99999}}"#);
    let refused = bank(dir, &["dispatch", "WithdrawMoney", &too_much]);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("insufficient funds"),
        "{refused:?}"
    );

    let streams = stdout(&bank(dir, &["streams"]));
    assert!(
        streams
            .lines()
            .any(|l| l.starts_with(&format!("Account-{ACCOUNT}")) && l.contains(" 2 ")),
        "{streams}"
    );
    let tail = stdout(&bank(dir, &["tail"]));
    assert!(
        tail.contains("AccountOpened v2") && tail.contains("MoneyDeposited v2"),
        "{tail}"
    );

    let status = bank(dir, &["status"]);
    assert!(status.status.success(), "{status:?}");
    for handler in ["withdrawal", "bank-balances", "bank-history"] {
        assert!(stdout(&status).contains(handler), "{status:?}");
    }

    // Spoil the balance read model, then rebuild it from the events.
    let db = dir.join("bank.db");
    sql(&db, "UPDATE bank_balances SET balance = 1");
    assert_eq!(read_balance(&db), 1);
    let rebuilt = bank(dir, &["rebuild", "bank-balances"]);
    assert!(rebuilt.status.success(), "{rebuilt:?}");
    let balance = read_balance(&db);
    assert_eq!(balance, 500);
}

/// Runs `query` on the bank's SQLite file, returning the first column of
/// its first row if it has one.
fn sql(db: &std::path::Path, query: &'static str) -> Option<i64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
            .await
            .unwrap();
        let row: Option<(i64,)> = sqlx::query_as(query).fetch_optional(&pool).await.unwrap();
        pool.close().await;
        row.map(|(n,)| n)
    })
}

fn read_balance(db: &std::path::Path) -> i64 {
    sql(db, "SELECT balance FROM bank_balances").expect("one account")
}
