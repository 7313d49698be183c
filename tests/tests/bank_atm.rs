//! The bank's cash withdrawal end to end on SQLite and PostgreSQL: a teller,
//! the withdrawal process, the account, and the balance and history read
//! models in SQL tables.

use annals::testing::{assert_same_correlation, eventually_recorded};
use annals::{App, RecordedEvent};
use annals_tests::postgres::{fresh_schema, test_url};
use bank::accounts::{AccountId, DepositMoney, OpenAccount};
use bank::read_models::{BalanceRow, HistoryRow};
use bank::tellers::InitiateWithdrawal;
use sqlx::AssertSqlSafe;
use std::time::Duration;

async fn waits_for(app: &App, event_type: &'static str, withdrawal: &str) -> RecordedEvent {
    let wanted = format!("\"{withdrawal}\"");
    eventually_recorded(&**app.store(), Duration::from_secs(10), move |e| {
        e.event_type == event_type && e.payload.as_str().contains(&wanted)
    })
    .await
}

async fn open(app: &App, (first, last): (&str, &str), pin: &str, cents: u64) -> AccountId {
    let id = AccountId::new();
    app.dispatch(OpenAccount {
        account_id: id,
        first_name: first.into(),
        last_name: last.into(),
        pin: pin.into(),
    })
    .await
    .unwrap();
    app.dispatch(DepositMoney {
        account_id: id,
        amount: cents,
        currency: None,
    })
    .await
    .unwrap();
    id
}

async fn withdraw(app: &App, account: AccountId, withdrawal: &str, cents: u64, pin: &str) {
    app.dispatch(InitiateWithdrawal {
        teller_id: "atm-1".into(),
        withdrawal_id: withdrawal.into(),
        account_id: account,
        amount: cents,
        pin: pin.into(),
    })
    .await
    .unwrap();
}

/// The three outcomes, then the read models, as `balances`/`history` read them.
async fn atm_scenario<B, H>(app: App, balances: B, history: H)
where
    B: AsyncFn() -> Vec<BalanceRow>,
    H: AsyncFn(String) -> Vec<HistoryRow>,
{
    let ada = open(&app, ("Ada", "Lovelace"), "1234", 10_000).await;
    withdraw(&app, ada, "w-ok", 4_000, "1234").await;
    let dispensed = waits_for(&app, "CashDispensed", "w-ok").await;
    let requested = waits_for(&app, "WithdrawalRequested", "w-ok").await;
    assert_same_correlation(&requested, &dispensed);
    assert!(
        !requested.payload.as_str().contains("1234"),
        "the PIN is never stored"
    );

    withdraw(&app, ada, "w-pin", 1_000, "9999").await;
    let declined = waits_for(&app, "WithdrawalDeclined", "w-pin").await;
    assert!(
        declined.payload.as_str().contains("wrong PIN"),
        "{}",
        declined.payload.as_str()
    );
    // The teller declines because the account did.
    let answer = waits_for(&app, "AccountWithdrawalDeclined", "w-pin").await;
    assert_eq!(
        (answer.stream_id.as_str(), declined.metadata.causation_id),
        (format!("Account-{ada}").as_str(), Some(answer.event_id))
    );

    withdraw(&app, ada, "w-funds", 50_000, "1234").await;
    let declined = waits_for(&app, "WithdrawalDeclined", "w-funds").await;
    assert!(
        declined.payload.as_str().contains("insufficient funds"),
        "{}",
        declined.payload.as_str()
    );

    let head = app.store().head_position().await.unwrap();
    app.wait_for_handlers(head, &[], Duration::from_secs(10))
        .await
        .unwrap();
    let (account, _) = app.load::<bank::accounts::Account>(ada).await.unwrap();
    assert_eq!(account.balance(), 6_000);
    assert_eq!(
        balances().await,
        [BalanceRow {
            account_id: ada.to_string(),
            owner: "Ada Lovelace".into(),
            balance: 6_000,
            status: "open".into(),
        }]
    );
    let moves: Vec<(String, i64, String)> = history(ada.to_string())
        .await
        .into_iter()
        .map(|row| (row.kind, row.amount, row.currency))
        .collect();
    assert_eq!(
        moves,
        [
            ("deposit".to_owned(), 10_000, "EUR".to_owned()),
            ("withdrawal".to_owned(), 4_000, "EUR".to_owned())
        ]
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn atm_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    let store = annals::sqlite::SqliteStore::open(&path).await.unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let builder = bank::app_builder(store, "test-pepper");
    let app = bank::with_sqlite_read_models(builder, pool.clone())
        .await
        .unwrap()
        .build()
        .unwrap();
    let (b, h) = (pool.clone(), pool.clone());
    atm_scenario(
        app,
        async || bank::read_models::balances_sqlite(&b).await.unwrap(),
        async |account| {
            bank::read_models::history_sqlite(&h, &account)
                .await
                .unwrap()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn atm_on_postgres() {
    let schema = fresh_schema();
    let store = annals::postgres::PostgresStore::builder(test_url())
        .schema(&schema)
        .connect()
        .await
        .expect("PostgreSQL must be reachable");
    let search_path = schema.clone();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .after_connect(move |conn, _| {
            let sql = format!("SET search_path TO \"{search_path}\"");
            Box::pin(async move {
                sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut *conn)
                    .await
                    .map(drop)
            })
        })
        .connect(&test_url())
        .await
        .unwrap();
    let builder = bank::app_builder(store, "test-pepper");
    let app = bank::with_postgres_read_models(builder, pool.clone())
        .await
        .unwrap()
        .build()
        .unwrap();
    let (b, h) = (pool.clone(), pool.clone());
    atm_scenario(
        app,
        async || bank::read_models::balances_postgres(&b).await.unwrap(),
        async |account| {
            bank::read_models::history_postgres(&h, &account)
                .await
                .unwrap()
        },
    )
    .await;
}
