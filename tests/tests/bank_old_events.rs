//! An existing bank's database, as the bank wrote it before its events
//! evolved (owners in one field, deposits without a currency, declined
//! withdrawals stored as `WithdrawalRefused`), inserted by raw SQL into a
//! SQLite file and a fresh PostgreSQL schema, then run by today's bank
//! through every reader: the aggregates, the balance and history
//! projections built from position 0 and rebuilt, and the withdrawal
//! process, which was waiting for the account's answer when the old bank
//! stopped. New commands then append after the old events.

use annals::sqlite::SqliteStore;
use annals::{App, Event, EventStore, Payload, Snapshot, StreamId};
use annals_tests::postgres::{drop_schema, fresh_schema, test_url};
use bank::accounts::{Account, AccountId, AccountStatus, DepositMoney, PinHasher};
use bank::read_models::{BalanceRow, HistoryRow};
use bank::tellers::{InitiateWithdrawal, Teller, TellerEvent, WithdrawalState};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use std::time::Duration;
use uuid::Uuid;

const PEPPER: &str = "test-pepper";
const SETTLED: Duration = Duration::from_secs(20);

fn ada() -> AccountId {
    AccountId(Uuid::from_u128(0xada))
}

fn grace() -> AccountId {
    AccountId(Uuid::from_u128(0x6ace))
}

/// One event row as the old bank stored it; its global position is its
/// place in [`old_rows`], from 1, and its event id is derived from that.
struct OldRow {
    stream: String,
    version: i64,
    event_type: &'static str,
    event_version: i32,
    payload: Value,
}

fn event_id(position: usize) -> Uuid {
    Uuid::from_u128(0xe000 + position as u128)
}

fn recorded_at(position: usize) -> String {
    format!("2024-05-01T09:00:{position:02}.000000Z")
}

/// The position of the old `WithdrawalRefused`: the last row.
const REFUSED_AT: usize = 10;

/// The old bank's log: two accounts opened and paid into, one cash
/// withdrawal dispensed, and a second one with a wrong PIN that the account
/// refused, which the teller had not declined yet when the bank stopped.
fn old_rows() -> Vec<OldRow> {
    let pins = PinHasher::new(PEPPER);
    let (ada, grace) = (ada(), grace());
    let (ada_stream, grace_stream) = (format!("Account-{ada}"), format!("Account-{grace}"));
    let teller = "Teller-atm-1".to_owned();
    let row = |stream: &String, version, event_type, payload| OldRow {
        stream: stream.clone(),
        version,
        event_type,
        event_version: 1,
        payload,
    };
    vec![
        row(
            &ada_stream,
            1,
            "AccountOpened",
            json!({"owner": "Ada King Lovelace", "pin_hash": pins.hash(ada, "1234")}),
        ),
        row(&ada_stream, 2, "MoneyDeposited", json!({"amount": 10_000})),
        row(
            &grace_stream,
            1,
            "AccountOpened",
            json!({"owner": "Grace", "pin_hash": pins.hash(grace, "2468")}),
        ),
        row(&grace_stream, 2, "MoneyDeposited", json!({"amount": 500})),
        row(
            &teller,
            1,
            "WithdrawalRequested",
            json!({"withdrawal_id": "w-1", "account_id": ada, "amount": 3_000,
                   "pin_hash": pins.hash(ada, "1234")}),
        ),
        row(
            &ada_stream,
            3,
            "WithdrawalAuthorised",
            json!({"withdrawal_id": "w-1", "amount": 3_000}),
        ),
        row(&ada_stream, 4, "MoneyWithdrawn", json!({"amount": 3_000})),
        row(
            &teller,
            2,
            "CashDispensed",
            json!({"withdrawal_id": "w-1", "amount": 3_000}),
        ),
        row(
            &teller,
            3,
            "WithdrawalRequested",
            json!({"withdrawal_id": "w-2", "account_id": ada, "amount": 1_000,
                   "pin_hash": pins.hash(ada, "9999")}),
        ),
        row(
            &ada_stream,
            5,
            "WithdrawalRefused",
            json!({"withdrawal_id": "w-2", "reason": "wrong PIN"}),
        ),
    ]
}

/// What the old withdrawal process had saved when the bank stopped: it had
/// handled w-2's request (position 9) and waited for the account's answer.
/// (Its 30-second timeout, scheduled then, is left out: it would only
/// decline a withdrawal that is declined by then.)
async fn old_process_progress(store: &impl EventStore) {
    let waited_at = REFUSED_AT as u64 - 1;
    store
        .save_checkpoint("withdrawal", waited_at)
        .await
        .unwrap();
    store
        .save_snapshot(Snapshot {
            stream_id: StreamId::new("$process-withdrawal-w-2"),
            stream_version: waited_at,
            snapshot_version: 1,
            state: Payload::from_serialize(
                &json!({"state": {"teller_id": "atm-1", "amount": 1_000}}),
            )
            .unwrap(),
            taken_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
}

async fn insert_sqlite(path: &std::path::Path) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    for (position, row) in (1..).zip(old_rows()) {
        sqlx::query(
            "INSERT INTO annals_events (position, stream_id, stream_version, event_id, event_type, \
             event_version, payload, metadata, recorded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '{}', ?8)",
        )
        .bind(position as i64)
        .bind(&row.stream)
        .bind(row.version)
        .bind(event_id(position).to_string())
        .bind(row.event_type)
        .bind(row.event_version)
        .bind(row.payload.to_string())
        .bind(recorded_at(position))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

async fn insert_postgres(store: &annals::postgres::PostgresStore) {
    for (position, row) in (1..).zip(old_rows()) {
        sqlx::query(
            "INSERT INTO events (position, stream_id, stream_version, event_id, event_type, \
             event_version, payload, metadata, recorded_at, transaction_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, '{}'::jsonb, $8::timestamptz, \
             pg_current_xact_id())",
        )
        .bind(position as i64)
        .bind(&row.stream)
        .bind(row.version)
        .bind(event_id(position))
        .bind(row.event_type)
        .bind(row.event_version)
        .bind(row.payload.to_string())
        .bind(recorded_at(position))
        .execute(store.pool())
        .await
        .unwrap();
    }
    // Positions were given by hand: the identity continues after them.
    sqlx::query("SELECT setval(pg_get_serial_sequence('events', 'position'), $1)")
        .bind(old_rows().len() as i64)
        .execute(store.pool())
        .await
        .unwrap();
}

fn balance(account: AccountId, owner: &str, cents: i64) -> BalanceRow {
    BalanceRow {
        account_id: account.to_string(),
        owner: owner.into(),
        balance: cents,
        status: "open".into(),
    }
}

fn movement(position: u64, account: AccountId, kind: &str, cents: i64) -> HistoryRow {
    HistoryRow {
        position: position as i64,
        account_id: account.to_string(),
        kind: kind.into(),
        amount: cents,
        currency: "EUR".into(),
    }
}

/// The read models as their query functions give them: every balance, and
/// Ada's and Grace's histories.
type ReadModels = (Vec<BalanceRow>, Vec<HistoryRow>, Vec<HistoryRow>);

/// Where the read models are: the store's database.
enum ReadDb {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl ReadDb {
    async fn read(&self) -> ReadModels {
        let (ada, grace) = (ada().to_string(), grace().to_string());
        match self {
            Self::Sqlite(pool) => {
                use bank::read_models::{balances_sqlite, history_sqlite};
                (
                    balances_sqlite(pool).await.unwrap(),
                    history_sqlite(pool, &ada).await.unwrap(),
                    history_sqlite(pool, &grace).await.unwrap(),
                )
            }
            Self::Postgres(pool) => {
                use bank::read_models::{balances_postgres, history_postgres};
                (
                    balances_postgres(pool).await.unwrap(),
                    history_postgres(pool, &ada).await.unwrap(),
                    history_postgres(pool, &grace).await.unwrap(),
                )
            }
        }
    }
}

/// The old bank's SQLite file, opened by today's bank with its read models
/// in the same file.
async fn old_bank_on_sqlite(dir: &tempfile::TempDir) -> (App, ReadDb) {
    let path = dir.path().join("bank.db");
    SqliteStore::open(&path)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    insert_sqlite(&path).await;
    let store = SqliteStore::open(&path).await.unwrap();
    old_process_progress(&store).await;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let app = bank::with_sqlite_read_models(bank::app_builder(store, PEPPER), pool.clone())
        .await
        .unwrap()
        .build()
        .unwrap();
    (app, ReadDb::Sqlite(pool))
}

/// A pool whose connections work in `schema`.
async fn pool_in(schema: &str) -> sqlx::PgPool {
    let search_path = schema.to_owned();
    sqlx::postgres::PgPoolOptions::new()
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
        .unwrap()
}

/// The old bank's PostgreSQL schema, opened by today's bank with its read
/// models in the same schema; drop it with [`drop_schema`].
async fn old_bank_on_postgres() -> (App, ReadDb, annals::postgres::PostgresStore) {
    let store = annals::postgres::PostgresStore::builder(test_url())
        .schema(fresh_schema())
        .connect()
        .await
        .expect("PostgreSQL must be reachable");
    insert_postgres(&store).await;
    old_process_progress(&store).await;
    let pool = pool_in(store.schema()).await;
    let builder = bank::app_builder(store.clone(), PEPPER);
    let app = bank::with_postgres_read_models(builder, pool.clone())
        .await
        .unwrap()
        .build()
        .unwrap();
    (app, ReadDb::Postgres(pool), store)
}

/// Account state a user sees: names, PIN hash, balance, status.
fn state(account: &Account) -> (&str, &str, &str, u64, AccountStatus) {
    (
        account.first_name(),
        account.last_name(),
        account.pin_hash(),
        account.balance(),
        account.status(),
    )
}

/// The aggregates and the projections read the old events in today's
/// shapes, and new commands append after them.
async fn accounts_and_read_models(app: &App, read: &ReadDb) {
    let pins = PinHasher::new(PEPPER);
    let (ada, grace) = (ada(), grace());

    // The aggregates: names split, deposits counted, the refusal folded.
    let (account, version) = app.load::<Account>(ada).await.unwrap();
    let ada_pin = pins.hash(ada, "1234");
    assert_eq!(
        (state(&account), version),
        (
            (
                "Ada King",
                "Lovelace",
                ada_pin.as_str(),
                7_000,
                AccountStatus::Open
            ),
            5
        )
    );
    assert_eq!(account.full_name(), "Ada King Lovelace");
    let (account, version) = app.load::<Account>(grace).await.unwrap();
    let grace_pin = pins.hash(grace, "2468");
    assert_eq!(
        (state(&account), version),
        (
            ("", "Grace", grace_pin.as_str(), 500, AccountStatus::Open),
            2
        )
    );

    // The projections, built from position 0 over the old events.
    app.wait_until_settled(SETTLED).await.unwrap();
    let old_ada_history = vec![
        movement(2, ada, "deposit", 10_000),
        movement(7, ada, "withdrawal", 3_000),
    ];
    let grace_history = vec![movement(4, grace, "deposit", 500)];
    assert_eq!(
        read.read().await,
        (
            vec![
                balance(ada, "Ada King Lovelace", 7_000),
                balance(grace, "Grace", 500),
            ],
            old_ada_history.clone(),
            grace_history.clone()
        )
    );

    // New commands append after the old events, in today's shapes: a
    // deposit, and a cash withdrawal checked against the PIN hash stored
    // in the old AccountOpened.
    app.dispatch(DepositMoney {
        account_id: ada,
        amount: 250,
        currency: None,
    })
    .await
    .unwrap();
    app.dispatch(InitiateWithdrawal {
        teller_id: "atm-1".into(),
        withdrawal_id: "w-3".into(),
        account_id: ada,
        amount: 2_000,
        pin: "1234".into(),
    })
    .await
    .unwrap();
    app.wait_until_settled(SETTLED).await.unwrap();
    let (teller, _) = app.load::<Teller>("atm-1").await.unwrap();
    assert_eq!(teller.withdrawal("w-3"), Some(WithdrawalState::Dispensed));
    let new = app
        .store()
        .read_stream(&StreamId::new(format!("Account-{ada}")), 6, 10)
        .await
        .unwrap();
    let stored: Vec<(u64, &str, u32, Value)> = new
        .iter()
        .map(|e| {
            (
                e.stream_version,
                &*e.event_type,
                e.event_version,
                serde_json::from_str(e.payload.as_str()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        [
            (
                6,
                "MoneyDeposited",
                2,
                json!({"amount": 250, "currency": "EUR"})
            ),
            (
                7,
                "WithdrawalAuthorised",
                1,
                json!({"withdrawal_id": "w-3", "amount": 2_000})
            ),
            (8, "MoneyWithdrawn", 1, json!({"amount": 2_000})),
        ]
    );
    let (account, _) = app.load::<Account>(ada).await.unwrap();
    assert_eq!(account.balance(), 5_250);

    // A rebuild replays the old and the new events alike.
    let mut ada_history = old_ada_history;
    ada_history.push(movement(new[0].global_position, ada, "deposit", 250));
    ada_history.push(movement(new[2].global_position, ada, "withdrawal", 2_000));
    let expected = (
        vec![
            balance(ada, "Ada King Lovelace", 5_250),
            balance(grace, "Grace", 500),
        ],
        ada_history,
        grace_history,
    );
    assert_eq!(read.read().await, expected);
    for projection in ["bank-balances", "bank-history"] {
        app.rebuild(projection).await.unwrap();
    }
    app.wait_until_settled(SETTLED).await.unwrap();
    assert_eq!(read.read().await, expected, "after a rebuild");
}

/// The withdrawal process takes the stored `WithdrawalRefused` as the
/// account's declined withdrawal it was waiting for, and has the teller
/// decline w-2 because of it.
async fn the_waiting_withdrawal_is_declined(app: &App) {
    app.wait_until_settled(SETTLED).await.unwrap();
    let (teller, _) = app.load::<Teller>("atm-1").await.unwrap();
    assert_eq!(
        (teller.withdrawal("w-1"), teller.withdrawal("w-2")),
        (
            Some(WithdrawalState::Dispensed),
            Some(WithdrawalState::Declined)
        ),
        "the withdrawal process did not answer the stored WithdrawalRefused"
    );
    let teller_log = app
        .store()
        .read_stream(&StreamId::new("Teller-atm-1"), 4, 10)
        .await
        .unwrap();
    let declined: Vec<_> = teller_log
        .iter()
        .map(|e| {
            let event = TellerEvent::decode(&e.event_type, e.event_version, &e.payload).unwrap();
            (event, e.metadata.causation_id)
        })
        .collect();
    assert_eq!(
        declined,
        [(
            TellerEvent::WithdrawalDeclined {
                withdrawal_id: "w-2".into(),
                reason: "wrong PIN".into()
            },
            Some(event_id(REFUSED_AT))
        )]
    );
}

/// Runs `check` on the old bank in a fresh PostgreSQL schema, then drops
/// the schema whether `check` passed or not.
async fn on_postgres<F>(check: impl FnOnce(App, ReadDb) -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let (app, read, store) = old_bank_on_postgres().await;
    let checked = tokio::spawn(check(app.clone(), read)).await;
    app.shutdown().await.unwrap();
    drop_schema(&store).await;
    if let Err(failed) = checked {
        std::panic::resume_unwind(failed.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accounts_and_read_models_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (app, read) = old_bank_on_sqlite(&dir).await;
    accounts_and_read_models(&app, &read).await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accounts_and_read_models_on_postgres() {
    on_postgres(async |app, read| accounts_and_read_models(&app, &read).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn withdrawal_process_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _read) = old_bank_on_sqlite(&dir).await;
    the_waiting_withdrawal_is_declined(&app).await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn withdrawal_process_on_postgres() {
    on_postgres(async |app, _read| the_waiting_withdrawal_is_declined(&app).await).await;
}

/// `bank_history` as an older bank made it, before movements had a
/// currency, with one of its rows.
const OLD_HISTORY: [&str; 2] = [
    "CREATE TABLE bank_history (position BIGINT PRIMARY KEY, account_id TEXT NOT NULL, \
     kind TEXT NOT NULL, amount BIGINT NOT NULL)",
    "INSERT INTO bank_history VALUES (2, '00000000-0000-0000-0000-000000000ada', 'deposit', 10000)",
];

#[tokio::test]
async fn an_old_history_table_gains_the_currency_on_sqlite() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    for sql in OLD_HISTORY {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    // Every start of the bank makes its tables: the second finds them done.
    for _ in 0..2 {
        bank::read_models::create_tables_sqlite(&pool)
            .await
            .unwrap();
    }
    assert_eq!(
        bank::read_models::history_sqlite(&pool, &ada().to_string())
            .await
            .unwrap(),
        [movement(2, ada(), "deposit", 10_000)]
    );
}

#[tokio::test]
async fn an_old_history_table_gains_the_currency_on_postgres() {
    let schema = fresh_schema();
    let mut admin = annals_tests::postgres::admin_connection().await;
    let create = format!("CREATE SCHEMA \"{schema}\"");
    sqlx::query(AssertSqlSafe(create))
        .execute(&mut admin)
        .await
        .unwrap();
    let pool = pool_in(&schema).await;
    for sql in OLD_HISTORY {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    for _ in 0..2 {
        bank::read_models::create_tables_postgres(&pool)
            .await
            .unwrap();
    }
    let history = bank::read_models::history_postgres(&pool, &ada().to_string())
        .await
        .unwrap();
    pool.close().await;
    let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
    sqlx::query(AssertSqlSafe(drop))
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(history, [movement(2, ada(), "deposit", 10_000)]);
}
