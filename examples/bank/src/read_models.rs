//! Read models in SQL tables, kept by transactional projections: each batch
//! of events and the projection's checkpoint commit together.
//!
//! - `bank_balances`: one row per account (owner, balance, status);
//! - `bank_history`: one row per money movement, by global position.
//!
//! Both work on SQLite and PostgreSQL (the same SQL);
//! [`create_tables_sqlite`] and [`create_tables_postgres`] make the tables
//! if they are missing.

use crate::accounts::AccountEvent;
use annals::handler::HandlerFuture;
use annals::projection::Projection;
use annals::{Event, HandlerError, RecordedEvent};

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
    /// The owner's name.
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
}

const TABLES: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS bank_balances (account_id TEXT PRIMARY KEY, owner TEXT NOT NULL, \
     balance BIGINT NOT NULL, status TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bank_history (position BIGINT PRIMARY KEY, account_id TEXT NOT NULL, \
     kind TEXT NOT NULL, amount BIGINT NOT NULL)",
];

fn failed(e: sqlx::Error) -> HandlerError {
    HandlerError::Failed(e.into())
}

fn cents(amount: u64) -> Result<i64, HandlerError> {
    i64::try_from(amount).map_err(|e| HandlerError::Failed(e.into()))
}

/// The account id of an `Account-<id>` stream.
fn account_of(event: &RecordedEvent) -> &str {
    event.stream_id.aggregate_id().unwrap_or_default()
}

macro_rules! on_database {
    ($db:ty, $conn:ty, $pool:ty, $create:ident, $balances:ident, $history:ident) => {
        /// Creates the read model tables if they are missing.
        pub async fn $create(pool: &$pool) -> Result<(), sqlx::Error> {
            for table in TABLES {
                sqlx::query(table).execute(pool).await?;
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

        /// An account's money movements, oldest first.
        pub async fn $history(pool: &$pool, account: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
            sqlx::query_as(
                "SELECT position, account_id, kind, amount FROM bank_history \
                 WHERE account_id = $1 ORDER BY position",
            )
            .bind(account)
            .fetch_all(pool)
            .await
        }

        impl Projection<$db> for Balances {
            const NAME: &'static str = "bank-balances";
            const INTEREST: &'static [&'static [annals::aggregate::EventType]] =
                &[<AccountEvent as Event>::TYPES];

            fn project<'a>(&'a self, tx: &'a mut $conn, event: &'a RecordedEvent) -> HandlerFuture<'a> {
                Box::pin(async move {
                    let account = account_of(event);
                    let change = match HandlerError::decode::<AccountEvent>(event)? {
                        AccountEvent::AccountOpened { owner, .. } => {
                            sqlx::query(
                                "INSERT INTO bank_balances (account_id, owner, balance, status) \
                                 VALUES ($1, $2, 0, 'open') ON CONFLICT (account_id) DO NOTHING",
                            )
                            .bind(account)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await
                            .map_err(failed)?;
                            return Ok(());
                        }
                        AccountEvent::MoneyDeposited { amount } => cents(amount)?,
                        AccountEvent::MoneyWithdrawn { amount } => -cents(amount)?,
                        AccountEvent::AccountClosed => {
                            sqlx::query("UPDATE bank_balances SET status = 'closed' WHERE account_id = $1")
                                .bind(account)
                                .execute(&mut *tx)
                                .await
                                .map_err(failed)?;
                            return Ok(());
                        }
                        AccountEvent::WithdrawalAuthorised { .. }
                        | AccountEvent::WithdrawalRefused { .. } => return Ok(()),
                    };
                    sqlx::query("UPDATE bank_balances SET balance = balance + $2 WHERE account_id = $1")
                        .bind(account)
                        .bind(change)
                        .execute(&mut *tx)
                        .await
                        .map_err(failed)?;
                    Ok(())
                })
            }

            fn reset<'a>(
                &'a self,
                tx: &'a mut $conn,
            ) -> futures::future::BoxFuture<'a, Result<(), annals::BoxError>> {
                Box::pin(async move {
                    sqlx::query("DELETE FROM bank_balances").execute(&mut *tx).await?;
                    Ok(())
                })
            }
        }

        impl Projection<$db> for History {
            const NAME: &'static str = "bank-history";
            const INTEREST: &'static [&'static [annals::aggregate::EventType]] =
                &[<AccountEvent as Event>::TYPES];

            fn project<'a>(&'a self, tx: &'a mut $conn, event: &'a RecordedEvent) -> HandlerFuture<'a> {
                Box::pin(async move {
                    let (kind, amount) = match HandlerError::decode::<AccountEvent>(event)? {
                        AccountEvent::MoneyDeposited { amount } => ("deposit", amount),
                        AccountEvent::MoneyWithdrawn { amount } => ("withdrawal", amount),
                        _ => return Ok(()),
                    };
                    let position = i64::try_from(event.global_position)
                        .map_err(|e| HandlerError::Failed(e.into()))?;
                    sqlx::query(
                        "INSERT INTO bank_history (position, account_id, kind, amount) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(position)
                    .bind(account_of(event))
                    .bind(kind)
                    .bind(cents(amount)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                    Ok(())
                })
            }

            fn reset<'a>(
                &'a self,
                tx: &'a mut $conn,
            ) -> futures::future::BoxFuture<'a, Result<(), annals::BoxError>> {
                Box::pin(async move {
                    sqlx::query("DELETE FROM bank_history").execute(&mut *tx).await?;
                    Ok(())
                })
            }
        }
    };
}

on_database!(
    sqlx::Sqlite,
    sqlx::SqliteConnection,
    sqlx::SqlitePool,
    create_tables_sqlite,
    balances_sqlite,
    history_sqlite
);
on_database!(
    sqlx::Postgres,
    sqlx::PgConnection,
    sqlx::PgPool,
    create_tables_postgres,
    balances_postgres,
    history_postgres
);
