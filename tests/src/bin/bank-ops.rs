//! The bank's operator commands (`annals::cli`), as the bank's own `main`
//! embeds them, for the tests in `tests/cli.rs` to run as a real process:
//! `bank-ops migrate | streams | tail | rebuild <projection> | status |
//! dispatch <Command> '<json>'`.
//!
//! The store is the one the bank uses: `DATABASE_URL` (`postgres://...`,
//! in the schema `BANK_SCHEMA`, default `annals`, with the read models
//! beside it) or else the SQLite file `BANK_DB` (default `bank.db`). Beside
//! the bank's own handlers runs `audit`, which fails on a deposit of 666
//! and then stops: what an operator's `status` must show.

use annals::cli::{self, Setup};
use annals::handler::{ErrorPolicy, HandlerOptions};
use annals::postgres::PostgresStore;
use annals::sqlite::SqliteStore;
use annals::{AnyStore, App, BoxError, event_handler};
use bank::accounts::AccountEvent;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// The bank's command line: the operator commands beside the bank's own.
#[derive(Parser)]
#[command(name = "bank", about = "The Annals bank")]
enum Bank {
    #[command(flatten)]
    Ops(cli::Command),
}

/// Where the bank keeps its events and read models.
enum Database {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Database {
    fn from_env() -> Result<Self, String> {
        match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let schema = std::env::var("BANK_SCHEMA").unwrap_or_else(|_| "annals".into());
                Ok(Self::Postgres { url, schema })
            }
            Some(_) => Err("DATABASE_URL must be a postgres:// URL".into()),
            None => Ok(Self::Sqlite(
                std::env::var("BANK_DB")
                    .unwrap_or_else(|_| "bank.db".into())
                    .into(),
            )),
        }
    }
}

impl Setup for Database {
    async fn open_store(&self, migrate: bool) -> Result<AnyStore, BoxError> {
        Ok(match self {
            Self::Sqlite(path) => AnyStore::new(
                SqliteStore::builder()
                    .path(path)
                    .migrate_on_open(migrate)
                    .open()
                    .await?,
            ),
            Self::Postgres { url, schema } => AnyStore::new(
                PostgresStore::builder(url)
                    .schema(schema)
                    .migrate_on_connect(migrate)
                    .connect()
                    .await?,
            ),
        })
    }

    async fn build_app(&self, store: AnyStore) -> Result<App, BoxError> {
        let builder = bank::app_builder(store, "ops-pepper")
            .handler_with(Audit, HandlerOptions::new().on_error(ErrorPolicy::stop()));
        let builder = match self {
            Self::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5));
                let pool = sqlx::SqlitePool::connect_with(options).await?;
                bank::with_sqlite_read_models(builder, pool).await?
            }
            Self::Postgres { url, schema } => {
                let options: sqlx::postgres::PgConnectOptions = url.parse()?;
                let options = options.options([("search_path", schema.as_str())]);
                let pool = sqlx::PgPool::connect_with(options).await?;
                bank::with_postgres_read_models(builder, pool).await?
            }
        };
        Ok(builder.build()?)
    }
}

/// Fails on a deposit of 666, as a handler with a bug would.
struct Audit;

#[event_handler(name = "audit")]
impl Audit {
    async fn on_account(&self, event: &AccountEvent) -> Result<(), String> {
        match event {
            AccountEvent::MoneyDeposited { amount: 666, .. } => Err("unlucky amount: 666".into()),
            _ => Ok(()),
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let database = match Database::from_env() {
        Ok(database) => database,
        Err(e) => {
            eprintln!("error: {e}");
            return cli::Exit::Usage.into();
        }
    };
    let Bank::Ops(command) = Bank::parse();
    cli::execute(&database, command).await
}
