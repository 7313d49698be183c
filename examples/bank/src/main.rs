//! `cargo run -p bank`: a short demo of an event-sourced bank account, a cash
//! withdrawal at a teller (a process across two aggregates), and read models
//! in SQL tables.
//!
//! The events go to a SQLite file, `bank.db` in the working directory (or the
//! path in `BANK_DB`), created on first run; set `DATABASE_URL` to a
//! `postgres://` URL to use PostgreSQL instead, or to `memory` to keep
//! nothing. Run it twice: the global positions keep growing, because the
//! store is durable.

use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals::{AnyStore, DispatchError, MemoryStore};
use bank::accounts::{AccountId, CloseAccount, DepositMoney, OpenAccount, WithdrawMoney};
use bank::tellers::InitiateWithdrawal;
use std::fmt::Debug;
use std::time::Duration;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bank: {}", chain(&*error));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (store, read, description) = open_store().await?;
    println!("annals bank demo: store = {description}");
    let builder = bank::app_builder(store, "demo-secret");
    let app = match &read {
        ReadDb::Sqlite(pool) => bank::with_sqlite_read_models(builder, pool.clone()).await?,
        ReadDb::Postgres(pool) => bank::with_postgres_read_models(builder, pool.clone()).await?,
    }
    .build()?;
    // Shut down whatever the demo's outcome: a SQLite store folds its
    // write-ahead log into `bank.db` only when it is closed.
    let outcome = demo(&app, &read).await;
    // Stops the handlers at a checkpoint and closes the store: SQLite folds
    // its write-ahead log into the database file, so `bank.db` alone holds
    // every event.
    let closed = app.shutdown().await;
    outcome?;
    closed?;
    Ok(())
}

async fn demo(app: &annals::App, read: &ReadDb) -> Result<(), Box<dyn std::error::Error>> {
    let id = AccountId::new();
    println!("account {id}");
    report(
        "open account for Ada",
        app.dispatch(OpenAccount {
            account_id: id,
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            pin: "1234".into(),
        })
        .await,
    );
    report(
        "deposit 100.00",
        app.dispatch(DepositMoney {
            account_id: id,
            amount: 10_000,
            currency: None,
        })
        .await,
    );
    report(
        "deposit 5.00 USD",
        app.dispatch(DepositMoney {
            account_id: id,
            amount: 500,
            currency: Some("USD".into()),
        })
        .await,
    );
    report(
        "withdraw 30.00",
        app.dispatch(WithdrawMoney {
            account_id: id,
            amount: 3_000,
        })
        .await,
    );
    report(
        "withdraw 500.00",
        app.dispatch(WithdrawMoney {
            account_id: id,
            amount: 50_000,
        })
        .await,
    );
    report("close", app.dispatch(CloseAccount { account_id: id }).await);
    report(
        "withdraw 70.00",
        app.dispatch(WithdrawMoney {
            account_id: id,
            amount: 7_000,
        })
        .await,
    );
    report("close", app.dispatch(CloseAccount { account_id: id }).await);
    report(
        "deposit 1.00",
        app.dispatch(DepositMoney {
            account_id: id,
            amount: 100,
            currency: None,
        })
        .await,
    );

    // A cash withdrawal at a teller: the teller records the request, the
    // withdrawal process asks the account (PIN, funds), then has the teller
    // dispense or decline.
    let bob = AccountId::new();
    app.dispatch(OpenAccount {
        account_id: bob,
        first_name: "Bob".into(),
        last_name: "Stone".into(),
        pin: "4321".into(),
    })
    .await?;
    app.dispatch(DepositMoney {
        account_id: bob,
        amount: 20_000,
        currency: Some("EUR".into()),
    })
    .await?;
    for (withdrawal, amount, pin) in [("atm-ok", 5_000, "4321"), ("atm-bad-pin", 1_000, "0000")] {
        let withdrawal = format!("{withdrawal}-{}", bob.0.simple());
        report(
            &format!("ATM {withdrawal:.11}"),
            app.dispatch(InitiateWithdrawal {
                teller_id: "atm-1".into(),
                withdrawal_id: withdrawal,
                account_id: bob,
                amount,
                pin: pin.into(),
            })
            .await,
        );
    }
    // The process and the read models follow asynchronously: wait for them.
    app.wait_until_settled(Duration::from_secs(10)).await?;
    let (teller, _) = app.load::<bank::tellers::Teller>("atm-1").await?;
    for withdrawal in ["atm-ok", "atm-bad-pin"] {
        let id = format!("{withdrawal}-{}", bob.0.simple());
        println!("teller: {withdrawal:<12} {:?}", teller.withdrawal(&id));
    }
    let (balances, history) = match read {
        ReadDb::Sqlite(pool) => (
            bank::read_models::balances_sqlite(pool).await?,
            bank::read_models::history_sqlite(pool, &bob.to_string()).await?,
        ),
        ReadDb::Postgres(pool) => (
            bank::read_models::balances_postgres(pool).await?,
            bank::read_models::history_postgres(pool, &bob.to_string()).await?,
        ),
    };
    for row in balances
        .iter()
        .filter(|row| row.account_id == bob.to_string() || row.account_id == id.to_string())
    {
        println!(
            "read model: {} {:<12} {:>8} cents  {}",
            row.account_id, row.owner, row.balance, row.status
        );
    }
    for row in history {
        println!(
            "history:    @{:<5} {:<10} {:>8} cents {}",
            row.position, row.kind, row.amount, row.currency
        );
    }

    println!(
        "events in the store: {}",
        app.store().head_position().await?
    );
    Ok(())
}

/// Where the read models live: the store's database (or, for the in-memory
/// store, an in-memory SQLite database).
enum ReadDb {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// An error and its causes, `: `-separated (errors name their cause through
/// `source()`, not in their own message).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

async fn open_store() -> Result<(AnyStore, ReadDb, String), Box<dyn std::error::Error>> {
    match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PostgresStore::connect(&url).await?;
            let read = sqlx::PgPool::connect(&url).await?;
            Ok((
                AnyStore::new(store),
                ReadDb::Postgres(read),
                format!("PostgreSQL ({})", redact(&url)),
            ))
        }
        Some(url) if url.starts_with("sqlite:") => {
            let store = SqliteStore::connect(&url).await?;
            let read = sqlite_pool(store.filename()).await?;
            Ok((AnyStore::new(store), read, format!("SQLite ({url})")))
        }
        Some(url) if url == "memory" => Ok((
            AnyStore::new(MemoryStore::new()),
            ReadDb::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect("sqlite::memory:")
                    .await?,
            ),
            "in-memory (nothing is kept)".into(),
        )),
        Some(url) => Err(format!(
            "DATABASE_URL must start with postgres://, sqlite: or be `memory`; got `{}`",
            redact(&url)
        )
        .into()),
        None => {
            let path = std::env::var("BANK_DB").unwrap_or_else(|_| "bank.db".into());
            let store = SqliteStore::open(&path).await?;
            let read = sqlite_pool(store.filename()).await?;
            Ok((AnyStore::new(store), read, format!("SQLite file {path}")))
        }
    }
}

/// A pool on the store's SQLite file, for the read models.
async fn sqlite_pool(path: &std::path::Path) -> Result<ReadDb, sqlx::Error> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    Ok(ReadDb::Sqlite(
        sqlx::SqlitePool::connect_with(options).await?,
    ))
}

/// Hides a password in a database URL before printing it.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn report<A: annals::Aggregate, E: std::error::Error + 'static>(
    what: &str,
    outcome: Result<annals::Dispatched<A>, DispatchError<E>>,
) where
    A::Event: Debug,
{
    match outcome {
        Ok(done) => {
            let position = done
                .positions
                .map_or(String::from("-"), |(_, last)| last.to_string());
            println!(
                "{what:<20} ok       v{} @{position:<5} {:?}",
                done.version, done.events
            );
        }
        Err(DispatchError::Domain(refused)) => println!("{what:<20} refused  {refused}"),
        Err(other) => println!("{what:<20} failed   {}", chain(&other)),
    }
}
