//! `cargo run -p bank`: the bank's HTTP JSON API (see `bank::http`), until
//! Ctrl-C or SIGTERM. `cargo run -p bank -- demo` runs a scripted demo
//! instead: accounts, a cash withdrawal at a teller (a process across two
//! aggregates), and the read models in SQL tables. The operator commands
//! of `annals::cli` come with it: `bank migrate | streams | tail | rebuild
//! <projection> | status | dispatch <Command> '<json>'` (`bank --help`).
//!
//! The events go to a SQLite file, `bank.db` in the working directory (or the
//! path in `BANK_DB`), created on first run; set `DATABASE_URL` to a
//! `postgres://` URL to use PostgreSQL instead, or to `memory` to keep
//! nothing (`BANK_SCHEMA` names the PostgreSQL schema of the events and the
//! read models; default: events in `annals`, read models in the search
//! path). The server listens on `BANK_ADDR` (`host:port`), else on
//! `127.0.0.1:$PORT`, else on `127.0.0.1:3000`; port 0 takes a free one. It
//! prints the address it listens on. Logs go to stderr, at the level in
//! `BANK_LOG` (`error`, `warn`, `info`, `debug`; default `warn`).

use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals::{AnyStore, App, BoxError, DispatchError, MemoryStore};
use bank::accounts::{AccountId, CloseAccount, DepositMoney, OpenAccount, WithdrawMoney};
use bank::read_models::ReadDb;
use bank::tellers::InitiateWithdrawal;
use std::fmt::Debug;
use std::time::Duration;

/// The bank's command line: the server (the default), the demo, and the
/// operator commands every Annals app can embed.
#[derive(clap::Parser)]
#[command(
    name = "bank",
    about = "The Annals bank: an HTTP JSON API over event-sourced accounts"
)]
struct Args {
    #[command(subcommand)]
    command: Option<BankCommand>,
}

#[derive(clap::Subcommand)]
enum BankCommand {
    /// Serve the HTTP API until Ctrl-C or SIGTERM (the default)
    Serve,
    /// Run the scripted demo and exit
    Demo,
    /// Run a read model in this process, fed through RabbitMQ
    /// (`BANK_RABBITMQ_URL`), until Ctrl-C or SIGTERM
    Consume {
        /// The read model
        #[arg(value_enum)]
        read_model: ReadModel,
    },
    #[command(flatten)]
    Ops(annals::cli::Command),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = <Args as clap::Parser>::parse();
    let database = match Database::from_env() {
        Ok(database) => database,
        Err(error) => {
            eprintln!("bank: {}", chain(&*error));
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = match args.command {
        None | Some(BankCommand::Serve) => run(&database, Mode::Serve).await,
        Some(BankCommand::Demo) => run(&database, Mode::Demo).await,
        Some(BankCommand::Consume {
            read_model: ReadModel::History,
        }) => consume_history(&database).await,
        Some(BankCommand::Ops(command)) => {
            logs();
            return annals::cli::execute(&database, command).await;
        }
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bank: {}", chain(&*error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The read models a second process can run.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ReadModel {
    /// The transaction history (`bank_history`)
    History,
}

enum Mode {
    Serve,
    Demo,
}

async fn run(database: &Database, mode: Mode) -> Result<(), Box<dyn std::error::Error>> {
    logs();
    let store = database
        .open_store(true)
        .await
        .map_err(|e| e as Box<dyn std::error::Error>)?;
    let read = database
        .read_db()
        .await
        .map_err(|e| e as Box<dyn std::error::Error>)?;
    let description = database.describe();
    let broker = bank::Broker::from_env();
    let app = read
        .register_with(bank::app_builder(store, &pepper()), broker.as_ref())
        .await?
        .build()?;
    if let Some(broker) = &broker {
        println!(
            "bank: publishing events to RabbitMQ exchange {} (history: bank consume history)",
            broker.exchange
        );
    }
    // Shut down whatever the outcome: handlers stop at a checkpoint, and a
    // SQLite store folds its write-ahead log into `bank.db` only when it is
    // closed, so that the file alone holds every event.
    let outcome = match mode {
        Mode::Serve => serve(&app, &read, &description).await,
        Mode::Demo => {
            println!("annals bank demo: store = {description}");
            demo(&app, &read).await
        }
    };
    let closed = app.shutdown().await;
    read.close().await;
    outcome?;
    closed?;
    if let Mode::Serve = mode {
        println!("bank: stopped; handlers checkpointed, store closed");
    }
    Ok(())
}

/// `bank consume history`: the history projected from the broker's queue
/// into the read models' database, until Ctrl-C or SIGTERM.
async fn consume_history(database: &Database) -> Result<(), Box<dyn std::error::Error>> {
    logs();
    let broker = bank::Broker::from_env()
        .ok_or("set BANK_RABBITMQ_URL (e.g. amqp://guest:guest@127.0.0.1:5672/%2f) to consume")?;
    let read = database
        .read_db()
        .await
        .map_err(|e| e as Box<dyn std::error::Error>)?;
    let consumer = read.consume_history(&broker).await?;
    println!(
        "bank: consuming the history from RabbitMQ queue {} into {}",
        broker.history_queue,
        database.describe()
    );
    stop_signal().await;
    let status = consumer.status();
    consumer.shutdown().await;
    read.close().await;
    println!(
        "bank: consumer stopped ({} applied, {} duplicates, {} dead-lettered)",
        status.handled, status.duplicates, status.dead_lettered
    );
    Ok(())
}

/// The PIN pepper: `BANK_PEPPER`, or the demo's.
fn pepper() -> String {
    std::env::var("BANK_PEPPER").unwrap_or_else(|_| "demo-secret".into())
}

/// Logs to stderr at `BANK_LOG`'s level (default `warn`).
fn logs() {
    let level = match std::env::var("BANK_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("info") => tracing::Level::INFO,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Where to listen: `BANK_ADDR`, else `127.0.0.1:$PORT`, else `127.0.0.1:3000`.
fn address() -> String {
    if let Ok(addr) = std::env::var("BANK_ADDR").map(|a| a.trim().to_owned())
        && !addr.is_empty()
    {
        return addr;
    }
    match std::env::var("PORT").map(|p| p.trim().to_owned()) {
        Ok(port) if !port.is_empty() => format!("127.0.0.1:{port}"),
        _ => "127.0.0.1:3000".into(),
    }
}

async fn serve(
    app: &App,
    read: &ReadDb,
    description: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let addr = address();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    println!("bank: store = {description}");
    println!("bank: listening on http://{local}");
    let state = bank::http::BankState {
        app: app.clone(),
        read: read.clone(),
    };
    bank::http::serve(listener, state, stop_signal()).await?;
    println!("bank: shutting down");
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn demo(app: &App, read: &ReadDb) -> Result<(), Box<dyn std::error::Error>> {
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
    let (balances, history) = (
        read.balances().await?,
        read.history(&bob.to_string()).await?,
    );
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

/// Where the bank keeps its events and read models, from the environment:
/// `DATABASE_URL` (PostgreSQL, a `sqlite:` URL, or `memory`), else the
/// SQLite file `BANK_DB` (default `bank.db`).
enum Database {
    /// `BANK_SCHEMA` keeps the events and the read models in one schema of
    /// their own (several banks on one database).
    Postgres { url: String, schema: Option<String> },
    /// The events and the read models in one SQLite file.
    Sqlite {
        path: std::path::PathBuf,
        shown: String,
    },
    /// Nothing kept.
    Memory,
}

impl Database {
    fn from_env() -> Result<Self, BoxError> {
        Ok(
            match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
                Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    let schema = std::env::var("BANK_SCHEMA").ok().filter(|s| !s.is_empty());
                    Self::Postgres { url, schema }
                }
                Some(url) if url.starts_with("sqlite:") => {
                    let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
                    Self::Sqlite {
                        path: options.get_filename().to_owned(),
                        shown: format!("SQLite ({url})"),
                    }
                }
                Some(url) if url == "memory" => Self::Memory,
                Some(url) => {
                    return Err(format!(
                        "DATABASE_URL must start with postgres://, sqlite: or be `memory`; got `{}`",
                        redact(&url)
                    )
                    .into());
                }
                None => {
                    let path = std::env::var("BANK_DB").unwrap_or_else(|_| "bank.db".into());
                    Self::Sqlite {
                        shown: format!("SQLite file {path}"),
                        path: path.into(),
                    }
                }
            },
        )
    }

    fn describe(&self) -> String {
        match self {
            Self::Postgres {
                url,
                schema: Some(schema),
            } => format!("PostgreSQL ({}, schema {schema})", redact(url)),
            Self::Postgres { url, schema: None } => format!("PostgreSQL ({})", redact(url)),
            Self::Sqlite { shown, .. } => shown.clone(),
            Self::Memory => "in-memory (nothing is kept)".into(),
        }
    }

    /// The event store, migrated on opening unless `migrate` is false.
    async fn open_store(&self, migrate: bool) -> Result<AnyStore, BoxError> {
        Ok(match self {
            Self::Postgres { url, schema } => {
                let mut store = PostgresStore::builder(url).migrate_on_connect(migrate);
                if let Some(schema) = schema {
                    store = store.schema(schema.clone());
                }
                AnyStore::new(store.connect().await?)
            }
            Self::Sqlite { path, .. } => AnyStore::new(
                SqliteStore::builder()
                    .path(path)
                    .migrate_on_open(migrate)
                    .open()
                    .await?,
            ),
            Self::Memory => AnyStore::new(MemoryStore::new()),
        })
    }

    /// The read models' database: the store's SQLite file, or the
    /// PostgreSQL database (in `BANK_SCHEMA` if set).
    async fn read_db(&self) -> Result<ReadDb, BoxError> {
        Ok(match self {
            Self::Postgres { url, schema } => {
                let mut read = url.parse::<sqlx::postgres::PgConnectOptions>()?;
                if let Some(schema) = schema {
                    read = read.options([("search_path", schema.as_str())]);
                }
                ReadDb::Postgres(sqlx::PgPool::connect_with(read).await?)
            }
            Self::Sqlite { path, .. } => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5));
                ReadDb::Sqlite(sqlx::SqlitePool::connect_with(options).await?)
            }
            Self::Memory => ReadDb::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect("sqlite::memory:")
                    .await?,
            ),
        })
    }
}

/// The operator commands open the store and build the bank's app as the
/// server does.
impl annals::cli::Setup for Database {
    async fn open_store(&self, migrate: bool) -> Result<AnyStore, BoxError> {
        Database::open_store(self, migrate).await
    }

    async fn build_app(&self, store: AnyStore) -> Result<App, BoxError> {
        let read = self.read_db().await?;
        let broker = bank::Broker::from_env();
        Ok(read
            .register_with(bank::app_builder(store, &pepper()), broker.as_ref())
            .await?
            .build()?)
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
