//! Read models in SQL tables, kept by transactional projections
//! (`#[projection]`): each batch of events and the projection's checkpoint
//! commit together, so a crash never loses or double-counts an event.
//!
//! - `bank_balances`: one row per account (owner, balance, status);
//! - `bank_history`: one row per money movement (amount and currency), by
//!   global position.
//!
//! Both work on SQLite and PostgreSQL (the same SQL, in one `#[projection]`
//! impl block per database: the connection a block's methods take makes it
//! a projection on that database);
//! [`create_tables_sqlite`] and [`create_tables_postgres`] make the tables
//! if they are missing, and add what an older bank's tables lack.

use crate::accounts::{AccountEvent, CURRENCY, full_name};
use annals::{AppBuilder, EventMeta, projection};

/// Keeps `bank_balances`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Balances;

/// Keeps `bank_history`.
#[derive(Debug, Clone, Copy, Default)]
pub struct History;

/// One row of `bank_balances`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BalanceRow {
    /// The account id.
    pub account_id: String,
    /// The owner's name in full ([`full_name`]).
    pub owner: String,
    /// The balance in cents.
    pub balance: i64,
    /// `open` or `closed`.
    pub status: String,
}

/// One row of `bank_history`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRow {
    /// The event's global position.
    pub position: i64,
    /// The account id.
    pub account_id: String,
    /// `deposit` or `withdrawal`.
    pub kind: String,
    /// The amount in cents.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

const TABLES: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS bank_balances (account_id TEXT PRIMARY KEY, owner TEXT NOT NULL, \
     balance BIGINT NOT NULL, status TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bank_history (position BIGINT PRIMARY KEY, account_id TEXT NOT NULL, \
     kind TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL)",
];

/// A `bank_history` made before movements had a currency lacks the column;
/// every movement then was in euros.
const HISTORY_HAS_CURRENCY: &str = "SELECT currency FROM bank_history LIMIT 0";
const HISTORY_GAINS_CURRENCY: &str =
    "ALTER TABLE bank_history ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR'";

/// Why a read model could not take an event.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// The database refused a statement.
    #[error("the read model's database failed")]
    Database(#[from] sqlx::Error),
    /// An amount or position does not fit a signed 64-bit column.
    #[error("{0} does not fit a BIGINT column")]
    OutOfRange(u64),
}

fn bigint(n: u64) -> Result<i64, ReadModelError> {
    i64::try_from(n).map_err(|_| ReadModelError::OutOfRange(n))
}

/// The read models on one database: the query functions, and an
/// `#[projection]` impl block per read model, whose connection type makes
/// it a projection on that database. The SQL is the same on both.
macro_rules! on_database {
    (
        $conn:ty, $pool:ty, $create:ident, $balances:ident, $balance:ident, $history:ident,
        $on_balance:ident, $clear_balances:ident, $on_history:ident, $clear_history:ident
    ) => {
        /// Creates the read model tables if they are missing, and adds the
        /// `currency` column to a `bank_history` an older bank made.
        pub async fn $create(pool: &$pool) -> Result<(), sqlx::Error> {
            for table in TABLES {
                sqlx::query(table).execute(pool).await?;
            }
            if sqlx::query(HISTORY_HAS_CURRENCY).execute(pool).await.is_err() {
                sqlx::query(HISTORY_GAINS_CURRENCY).execute(pool).await?;
            }
            Ok(())
        }

        /// Every account's balance, by account id.
        pub async fn $balances(pool: &$pool) -> Result<Vec<BalanceRow>, sqlx::Error> {
            sqlx::query_as(
                "SELECT account_id, owner, balance, status FROM bank_balances ORDER BY account_id",
            )
            .fetch_all(pool)
            .await
        }

        /// One account's balance, if it was opened.
        pub async fn $balance(pool: &$pool, account: &str) -> Result<Option<BalanceRow>, sqlx::Error> {
            sqlx::query_as(
                "SELECT account_id, owner, balance, status FROM bank_balances WHERE account_id = $1",
            )
            .bind(account)
            .fetch_optional(pool)
            .await
        }

        /// An account's money movements, oldest first.
        pub async fn $history(pool: &$pool, account: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
            sqlx::query_as(
                "SELECT position, account_id, kind, amount, currency FROM bank_history \
                 WHERE account_id = $1 ORDER BY position",
            )
            .bind(account)
            .fetch_all(pool)
            .await
        }

        #[projection(name = "bank-balances")]
        impl Balances {
            async fn $on_balance(
                &self,
                tx: &mut $conn,
                event: &AccountEvent,
                meta: &EventMeta<'_>,
            ) -> Result<(), ReadModelError> {
                let account = meta.aggregate_id().unwrap_or_default();
                let change = match event {
                    AccountEvent::AccountOpened {
                        first_name,
                        last_name,
                        ..
                    } => {
                        sqlx::query(
                            "INSERT INTO bank_balances (account_id, owner, balance, status) \
                             VALUES ($1, $2, 0, 'open') ON CONFLICT (account_id) DO NOTHING",
                        )
                        .bind(account)
                        .bind(full_name(first_name, last_name))
                        .execute(&mut *tx)
                        .await?;
                        return Ok(());
                    }
                    AccountEvent::MoneyDeposited { amount, .. } => bigint(*amount)?,
                    AccountEvent::MoneyWithdrawn { amount } => -bigint(*amount)?,
                    AccountEvent::AccountClosed => {
                        sqlx::query("UPDATE bank_balances SET status = 'closed' WHERE account_id = $1")
                            .bind(account)
                            .execute(&mut *tx)
                            .await?;
                        return Ok(());
                    }
                    AccountEvent::WithdrawalAuthorised { .. }
                    | AccountEvent::WithdrawalDeclined { .. } => return Ok(()),
                };
                sqlx::query("UPDATE bank_balances SET balance = balance + $2 WHERE account_id = $1")
                    .bind(account)
                    .bind(change)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }

            #[reset]
            async fn $clear_balances(&self, tx: &mut $conn) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM bank_balances").execute(&mut *tx).await?;
                Ok(())
            }
        }

        #[projection(name = "bank-history")]
        impl History {
            async fn $on_history(
                &self,
                tx: &mut $conn,
                event: &AccountEvent,
                meta: &EventMeta<'_>,
            ) -> Result<(), ReadModelError> {
                let (kind, amount, currency) = match event {
                    AccountEvent::MoneyDeposited { amount, currency } => {
                        ("deposit", amount, currency.as_str())
                    }
                    // Paid out in the account's currency.
                    AccountEvent::MoneyWithdrawn { amount } => ("withdrawal", amount, CURRENCY),
                    _ => return Ok(()),
                };
                sqlx::query(
                    "INSERT INTO bank_history (position, account_id, kind, amount, currency) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(bigint(meta.position())?)
                .bind(meta.aggregate_id().unwrap_or_default())
                .bind(kind)
                .bind(bigint(*amount)?)
                .bind(currency)
                .execute(&mut *tx)
                .await?;
                Ok(())
            }

            #[reset]
            async fn $clear_history(&self, tx: &mut $conn) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM bank_history").execute(&mut *tx).await?;
                Ok(())
            }
        }
    };
}

on_database!(
    sqlx::SqliteConnection,
    sqlx::SqlitePool,
    create_tables_sqlite,
    balances_sqlite,
    balance_sqlite,
    history_sqlite,
    on_account_sqlite,
    clear_sqlite,
    on_movement_sqlite,
    clear_sqlite
);
on_database!(
    sqlx::PgConnection,
    sqlx::PgPool,
    create_tables_postgres,
    balances_postgres,
    balance_postgres,
    history_postgres,
    on_account_postgres,
    clear_postgres,
    on_movement_postgres,
    clear_postgres
);

/// Where the read models live: a SQLite or a PostgreSQL pool.
#[derive(Debug, Clone)]
pub enum ReadDb {
    /// A SQLite database (the store's file, or an in-memory one).
    Sqlite(sqlx::SqlitePool),
    /// A PostgreSQL database.
    Postgres(sqlx::PgPool),
}

impl ReadDb {
    /// Every account's balance, by account id.
    pub async fn balances(&self) -> Result<Vec<BalanceRow>, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => balances_sqlite(pool).await,
            Self::Postgres(pool) => balances_postgres(pool).await,
        }
    }

    /// One account's balance, if it was opened.
    pub async fn balance(&self, account: &str) -> Result<Option<BalanceRow>, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => balance_sqlite(pool, account).await,
            Self::Postgres(pool) => balance_postgres(pool, account).await,
        }
    }

    /// An account's money movements, oldest first.
    pub async fn history(&self, account: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => history_sqlite(pool, account).await,
            Self::Postgres(pool) => history_postgres(pool, account).await,
        }
    }

    /// Makes the tables if they are missing and registers the read models'
    /// projections, strongly consistent (an HTTP command waits for them).
    pub async fn register(&self, builder: AppBuilder) -> Result<AppBuilder, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => crate::with_sqlite_read_models(builder, pool.clone()).await,
            Self::Postgres(pool) => crate::with_postgres_read_models(builder, pool.clone()).await,
        }
    }

    /// As [`register`](Self::register), but with `broker` the history is
    /// not projected here: the app publishes its events to the broker, and
    /// `bank consume history` ([`consume_history`](Self::consume_history))
    /// projects them in another process. The balances stay here, strongly
    /// consistent.
    pub async fn register_with(
        &self,
        builder: AppBuilder,
        broker: Option<&crate::Broker>,
    ) -> Result<AppBuilder, sqlx::Error> {
        let Some(broker) = broker else {
            return self.register(builder).await;
        };
        self.create_tables().await?;
        let strong = annals::handler::HandlerOptions::new().strongly_consistent();
        let builder = match self {
            Self::Sqlite(pool) => builder.projection_with(pool.clone(), Balances, strong),
            Self::Postgres(pool) => builder.projection_with(pool.clone(), Balances, strong),
        };
        Ok(builder.publisher(broker.publisher()))
    }

    /// Makes the tables if they are missing.
    pub async fn create_tables(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => create_tables_sqlite(pool).await,
            Self::Postgres(pool) => create_tables_postgres(pool).await,
        }
    }

    /// Runs the history from `broker`'s queue into this database, until
    /// the handle is shut down.
    pub async fn consume_history(
        &self,
        broker: &crate::Broker,
    ) -> Result<annals::rabbitmq::ConsumerHandle, sqlx::Error> {
        self.create_tables().await?;
        let consumer = broker.history_consumer();
        Ok(match self {
            Self::Sqlite(pool) => consumer.spawn_projection(pool.clone(), History),
            Self::Postgres(pool) => consumer.spawn_projection(pool.clone(), History),
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}
