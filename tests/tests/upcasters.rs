//! Upcaster chains on every reader: events stored in their old shapes (as an
//! older build of the program wrote them, by raw SQL) are read back in the
//! current shape by an aggregate, an event handler and a projection's
//! rebuild, on SQLite and PostgreSQL; and a failing step is a decode error
//! naming it.

use annals::prelude::*;
use annals::{DecodeError, ExpectedVersion, NewEvent, Payload, StreamId};
use annals_tests::postgres::{fresh_schema, test_url};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[event]
pub enum AccountEvent {
    /// v1 had one `owner`; v2 splits it.
    #[event(version = 2)]
    AccountOpened {
        first_name: String,
        last_name: String,
    },
    /// v1 had no currency, v2 has it with "EUR" for the old ones; v3 counts cents.
    #[event(version = 3)]
    MoneyDeposited { cents: u64, currency: String },
    /// Stored as `FundsWithdrawn` before the rename.
    MoneyWithdrawn { amount: u64 },
}

#[command(aggregate = Account)]
pub struct Deposit {
    #[id]
    pub id: String,
    pub cents: u64,
}

#[aggregate(events = AccountEvent)]
#[derive(Clone, Default)]
pub struct Account {
    owner: String,
    cents: u64,
    currencies: Vec<String>,
    withdrawn: u64,
}

#[aggregate]
impl Account {
    #[handle]
    fn deposit(&self, c: Deposit) -> AccountEvent {
        AccountEvent::MoneyDeposited {
            cents: c.cents,
            currency: "EUR".into(),
        }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountOpened {
                first_name,
                last_name,
            } => self.owner = format!("{last_name}, {first_name}"),
            AccountEvent::MoneyDeposited { cents, currency } => {
                self.cents += cents;
                self.currencies.push(currency.clone());
            }
            AccountEvent::MoneyWithdrawn { amount } => self.withdrawn += amount,
        }
    }
}

/// The v1 deposit, as an old build declared it.
#[derive(serde::Deserialize)]
struct DepositedV1 {
    amount: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DepositedV2 {
    amount: u64,
    currency: String,
}

#[upcaster(from = "MoneyDeposited", version = 1)]
fn deposited_gains_a_currency(old: DepositedV1) -> DepositedV2 {
    DepositedV2 {
        amount: old.amount,
        currency: "EUR".into(),
    }
}

#[derive(serde::Serialize)]
struct DepositedV3 {
    cents: u64,
    currency: String,
}

#[upcaster(from = "MoneyDeposited", version = 2)]
fn deposited_counts_cents(old: DepositedV2) -> Result<DepositedV3, String> {
    let cents = old
        .amount
        .checked_mul(100)
        .ok_or_else(|| format!("{} units do not fit in cents", old.amount))?;
    Ok(DepositedV3 {
        cents,
        currency: old.currency,
    })
}

/// No old type kept: the JSON itself.
#[upcaster(from = "AccountOpened", version = 1)]
fn owner_splits(mut old: serde_json::Value) -> serde_json::Value {
    let owner = old["owner"].as_str().unwrap_or_default().to_owned();
    let (first, last) = owner.split_once(' ').unwrap_or((&owner, ""));
    old["first_name"] = first.into();
    old["last_name"] = last.into();
    old
}

#[upcaster(from = "FundsWithdrawn", version = 1, to = "MoneyWithdrawn")]
fn withdrawn_renamed(old: serde_json::Value) -> serde_json::Value {
    old
}

/// Every deposit and withdrawal it sees, as the handler method got it.
#[derive(Clone, Default)]
pub struct Deposits(Arc<Mutex<Vec<(u64, String)>>>);

#[event_handler(name = "deposits")]
impl Deposits {
    fn on_account(&self, event: &AccountEvent) {
        match event {
            AccountEvent::MoneyDeposited { cents, currency } => {
                self.0.lock().unwrap().push((*cents, currency.clone()))
            }
            // Stored as `FundsWithdrawn`: the rename reaches handlers too.
            AccountEvent::MoneyWithdrawn { amount } => {
                self.0.lock().unwrap().push((*amount, "withdrawn".into()))
            }
            AccountEvent::AccountOpened { .. } => {}
        }
    }
}

/// Old rows, as an older build wrote them: straight into the events table.
const OLD: &[(&str, u32, &str)] = &[
    ("AccountOpened", 1, r#"{"owner":"Ada Lovelace"}"#),
    ("MoneyDeposited", 1, r#"{"amount":5}"#),
    ("MoneyDeposited", 2, r#"{"amount":7,"currency":"GBP"}"#),
    ("FundsWithdrawn", 1, r#"{"amount":300}"#),
    ("MoneyDeposited", 3, r#"{"cents":1,"currency":"USD"}"#),
];

async fn insert_sqlite(path: &std::path::Path) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    for (version, (event_type, event_version, payload)) in (1i64..).zip(OLD) {
        sqlx::query(
            "INSERT INTO annals_events (stream_id, stream_version, event_id, event_type, \
             event_version, payload, metadata, recorded_at) \
             VALUES ('Account-ada', ?1, ?2, ?3, ?4, ?5, '{}', '2020-01-01T00:00:00.000000Z')",
        )
        .bind(version)
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(event_type)
        .bind(*event_version as i64)
        .bind(payload)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

async fn insert_postgres(store: &annals::postgres::PostgresStore) {
    for (version, (event_type, event_version, payload)) in (1i64..).zip(OLD) {
        sqlx::query(
            "INSERT INTO events (position, stream_id, stream_version, event_id, event_type, \
             event_version, payload, metadata, transaction_id) \
             VALUES (nextval('events_position_seq'), 'Account-ada', $1, $2, $3, $4, $5::jsonb, \
             '{}'::jsonb, pg_current_xact_id())",
        )
        .bind(version)
        .bind(uuid::Uuid::now_v7())
        .bind(event_type)
        .bind(*event_version as i32)
        .bind(payload)
        .execute(store.pool())
        .await
        .unwrap();
    }
}

/// Every reader sees current events only.
async fn every_reader_sees_the_current_shape(store: impl EventStore + Clone) {
    let deposits = Deposits::default();
    let app = App::builder()
        .store(store.clone())
        .handler(deposits.clone())
        .build()
        .unwrap();
    let (account, version) = app.load::<Account>("ada").await.unwrap();
    assert_eq!(version, 5);
    assert_eq!(account.owner, "Lovelace, Ada");
    assert_eq!(account.cents, 500 + 700 + 1);
    assert_eq!(account.currencies, ["EUR", "GBP", "USD"]);
    assert_eq!(account.withdrawn, 300);
    // New events append after the old ones, in the current shape.
    app.dispatch(Deposit {
        id: "ada".into(),
        cents: 2,
    })
    .await
    .unwrap();
    app.wait_until_settled(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        *deposits.0.lock().unwrap(),
        [
            (500, "EUR".to_owned()),
            (700, "GBP".to_owned()),
            (300, "withdrawn".to_owned()),
            (1, "USD".to_owned()),
            (2, "EUR".to_owned())
        ]
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_rows_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    annals::sqlite::SqliteStore::open(&path)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    insert_sqlite(&path).await;
    let store = annals::sqlite::SqliteStore::open(&path).await.unwrap();
    every_reader_sees_the_current_shape(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_rows_on_postgres() {
    let store = annals::postgres::PostgresStore::builder(test_url())
        .schema(fresh_schema())
        .connect()
        .await
        .expect("PostgreSQL must be reachable");
    insert_postgres(&store).await;
    every_reader_sees_the_current_shape(store.clone()).await;
    annals_tests::postgres::drop_schema(&store).await;
}

#[test]
fn a_failing_step_is_a_decode_error_naming_it() {
    let huge = Payload::from_json(r#"{"amount":18446744073709551615,"currency":"EUR"}"#).unwrap();
    let error = AccountEvent::decode("MoneyDeposited", 2, &huge).unwrap_err();
    match &error {
        DecodeError::Upcast(failed) => {
            assert_eq!(
                (failed.event_type.as_str(), failed.event_version),
                ("MoneyDeposited", 2)
            );
            assert!(
                failed.upcaster.ends_with("::deposited_counts_cents"),
                "{}",
                failed.upcaster
            );
            assert!(
                failed.source.to_string().contains("do not fit"),
                "{}",
                failed.source
            );
        }
        other => panic!("expected the step's failure, got {other:?}"),
    }
    // A version nobody wrote an upcaster for is still unknown, by name.
    let unknown = AccountEvent::decode("MoneyDeposited", 9, &huge).unwrap_err();
    assert!(matches!(
        unknown,
        DecodeError::UnknownType {
            event_version: 9,
            ..
        }
    ));
}

#[tokio::test]
async fn memory_store_old_events_too() {
    let store = MemoryStore::new();
    for (version, (event_type, event_version, payload)) in (0u64..).zip(OLD) {
        let event = NewEvent::new(
            *event_type,
            *event_version,
            Payload::from_json(*payload).unwrap(),
        );
        store
            .append(
                &StreamId::new("Account-ada"),
                ExpectedVersion::Exact(version),
                vec![event],
            )
            .await
            .unwrap();
    }
    every_reader_sees_the_current_shape(store).await;
}
