//! `cargo run -p bank`: a short demo of an event-sourced bank account.
//!
//! The events go to a SQLite file, `bank.db` in the working directory (or the
//! path in `BANK_DB`), created on first run; set `DATABASE_URL` to a
//! `postgres://` URL to use PostgreSQL instead, or to `memory` to keep
//! nothing. Run it twice: the global positions keep growing, because the
//! store is durable.

use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals::{AnyStore, App, DispatchError, MemoryStore};
use bank::accounts::{
    AccountId, CloseAccount, DepositMoney, OpenAccount, PinHasher, WithdrawMoney,
};
use std::fmt::Debug;

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
    let (store, description) = open_store().await?;
    println!("annals bank demo: store = {description}");
    let app = App::builder()
        .store(store)
        .service(PinHasher::new("demo-secret"))
        .build()?;

    let id = AccountId::new();
    println!("account {id}");
    report(
        "open account for Ada",
        app.dispatch(OpenAccount {
            account_id: id,
            owner: "Ada".into(),
            pin: "1234".into(),
        })
        .await,
    );
    report(
        "deposit 100.00",
        app.dispatch(DepositMoney {
            account_id: id,
            amount: 10_000,
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
        })
        .await,
    );
    // Stops the app and closes the store: SQLite folds its write-ahead log
    // into the database file, so `bank.db` alone holds every event.
    app.shutdown().await?;
    Ok(())
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

async fn open_store() -> Result<(AnyStore, String), Box<dyn std::error::Error>> {
    match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PostgresStore::connect(&url).await?;
            Ok((
                AnyStore::new(store),
                format!("PostgreSQL ({})", redact(&url)),
            ))
        }
        Some(url) if url.starts_with("sqlite:") => {
            let store = SqliteStore::connect(&url).await?;
            Ok((AnyStore::new(store), format!("SQLite ({url})")))
        }
        Some(url) if url == "memory" => Ok((
            AnyStore::new(MemoryStore::new()),
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
            Ok((AnyStore::new(store), format!("SQLite file {path}")))
        }
    }
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
