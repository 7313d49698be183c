//! The Annals bank: accounts opened with an owner and a PIN, deposits,
//! withdrawals that cannot overdraw, closing at a zero balance, cash
//! withdrawals at tellers (a process across a teller and an account), and
//! read models of balances and transaction history in SQL tables, and
//! customer profiles as JSON documents checked by a JSON Schema.
//!
//! Each slice of the domain lives in its own folder (`accounts/`), with its
//! commands, events and aggregate side by side.

pub mod accounts;
pub mod http;
pub mod profiles;
pub mod read_models;
pub mod tellers;

use annals::document::DocumentReadModel;
use annals::handler::HandlerOptions;
use annals::{AnyStore, App, AppBuilder};

/// The bank's app, without its read models: the accounts, the tellers, the
/// withdrawal process, and the PIN hasher with `pepper`. Add the read models
/// with [`with_sqlite_read_models`] or [`with_postgres_read_models`].
pub fn app_builder(store: impl Into<AnyStore>, pepper: &str) -> AppBuilder {
    App::builder()
        .store(store)
        .service(accounts::PinHasher::new(pepper))
        .process_manager::<tellers::WithdrawalProcess>()
}

/// Keeps the read models in a SQLite database (tables made if missing):
/// balances, history, and the current profiles (`annals_documents`).
/// Balances and history are strongly consistent: a dispatch with
/// `DispatchOptions::strongly_consistent()` (every HTTP command) returns
/// once they show its events; a profile's write answers once the profiles'
/// read model shows it (`annals::http::Api::documents`).
pub async fn with_sqlite_read_models(
    builder: AppBuilder,
    pool: sqlx::SqlitePool,
) -> Result<AppBuilder, sqlx::Error> {
    read_models::create_tables_sqlite(&pool).await?;
    let builder = DocumentReadModel::Sqlite(pool.clone())
        .register(builder)
        .await?;
    let strong = HandlerOptions::new().strongly_consistent();
    Ok(builder
        .projection_with(pool.clone(), read_models::Balances, strong.clone())
        .projection_with(pool, read_models::History, strong))
}

/// Keeps the read models in a PostgreSQL database (tables made if missing),
/// strongly consistent as on SQLite.
pub async fn with_postgres_read_models(
    builder: AppBuilder,
    pool: sqlx::PgPool,
) -> Result<AppBuilder, sqlx::Error> {
    read_models::create_tables_postgres(&pool).await?;
    let builder = DocumentReadModel::Postgres(pool.clone())
        .register(builder)
        .await?;
    let strong = HandlerOptions::new().strongly_consistent();
    Ok(builder
        .projection_with(pool.clone(), read_models::Balances, strong.clone())
        .projection_with(pool, read_models::History, strong))
}

/// The broker of a bank whose transaction history runs in a second process
/// (`bank consume history`), fed through RabbitMQ: the serving process then
/// publishes its events instead of projecting the history itself.
///
/// From the environment: `BANK_RABBITMQ_URL` (unset: no broker, the history
/// is projected in the serving process), `BANK_RABBITMQ_EXCHANGE` (default
/// `bank.events`) and `BANK_HISTORY_QUEUE` (default `bank.history`).
#[derive(Debug, Clone)]
pub struct Broker {
    /// The broker's AMQP URL.
    pub url: String,
    /// The topic exchange the events are published to.
    pub exchange: String,
    /// The queue the history consumer reads.
    pub history_queue: String,
}

impl Broker {
    /// The broker the environment names, if any.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Self {
            url: var("BANK_RABBITMQ_URL")?,
            exchange: var("BANK_RABBITMQ_EXCHANGE").unwrap_or_else(|| "bank.events".into()),
            history_queue: var("BANK_HISTORY_QUEUE").unwrap_or_else(|| "bank.history".into()),
        })
    }

    /// The history's queue: every account event.
    pub fn history_queue(&self) -> annals::rabbitmq::Queue {
        annals::rabbitmq::Queue::new(&self.history_queue).bind("Account.*")
    }

    /// The serving process's publisher, which declares the history's queue
    /// so that nothing published before the consumer first runs is lost.
    pub fn publisher(&self) -> annals::rabbitmq::Publisher {
        annals::rabbitmq::Publisher::new(&self.url, &self.exchange).declare(self.history_queue())
    }

    /// The history's consumer (its rows in `annals_consumed` are
    /// `bank-history`'s).
    pub fn history_consumer(&self) -> annals::rabbitmq::Consumer {
        annals::rabbitmq::Consumer::new(&self.url, &self.exchange, self.history_queue())
            .name("bank-history")
    }
}
