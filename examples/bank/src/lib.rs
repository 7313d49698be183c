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
