//! Upcasters that do more than reshape one payload, on every store and
//! every reader: an event split into events of two types (1 -> N), one
//! dropped (1 -> 0), one rewritten from its metadata, renames (by an
//! upcaster and by `#[event(rename_from)]`), and an
//! event type that moved from one `#[event]` enum to another. An aggregate
//! replays them, an event handler of each enum receives them (the moved one
//! only by the enum that declares it now), and a SQL projection rebuilt
//! from position 0 counts each part once.

use annals::prelude::*;
use annals::projection::Projection;
use annals::upcast::decode_recorded;
use annals::{DecodeError, ExpectedVersion, Metadata, NewEvent, Payload, RecordedEvent, StreamId};
use annals_tests::postgres::{fresh_schema, test_url};
use sqlx::Executor;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// The ledger's events now. Card events moved to their own enum.
#[event(moved = ["CardLocked"])]
pub enum LedgerEvent {
    /// Stored as `Deposited` v1 (no reference) before.
    Credited {
        cents: u64,
        reference: String,
    },
    /// Stored as `Withdrawn` before the rename.
    #[event(rename_from = "Withdrawn")]
    Debited {
        cents: u64,
    },
    FeeCharged {
        cents: u64,
    },
}

/// Card events, which the ledger's enum declared before.
#[event]
pub enum CardEvent {
    CardLocked { reason: String },
}

#[derive(serde::Deserialize)]
struct DepositedV1 {
    cents: u64,
}

#[derive(serde::Serialize)]
struct CreditedV1 {
    cents: u64,
    reference: String,
}

/// A rename that takes a field from the stored event's metadata: the
/// deposit's reference is the id of the request that caused it.
#[upcaster(from = "Deposited", version = 1, to = "Credited")]
fn deposited_is_credited(old: DepositedV1, meta: &EventMeta) -> CreditedV1 {
    let reference = meta
        .correlation_id()
        .map_or_else(|| "none".to_owned(), |id| id.to_string());
    CreditedV1 {
        cents: old.cents,
        reference,
    }
}

#[derive(serde::Deserialize)]
struct TransferredV1 {
    cents: u64,
    fee: u64,
}

/// 1 -> N: a transfer out was one event; it is a debit and a fee now.
#[upcaster(from = "Transferred", version = 1, to = LedgerEvent)]
fn transfer_splits(old: TransferredV1) -> Vec<LedgerEvent> {
    let mut parts = vec![LedgerEvent::Debited { cents: old.cents }];
    if old.fee > 0 {
        parts.push(LedgerEvent::FeeCharged { cents: old.fee });
    }
    parts
}

/// 1 -> 0: notes carried nothing the ledger reads.
#[upcaster(from = "Noted", version = 1, to = LedgerEvent)]
fn notes_are_dropped(_old: serde_json::Value) -> Option<LedgerEvent> {
    None
}

#[command(aggregate = Ledger)]
pub struct Credit {
    #[id]
    pub id: String,
    pub cents: u64,
}

#[aggregate(events = LedgerEvent)]
#[derive(Clone, Default, Debug, PartialEq)]
pub struct Ledger {
    cents: i64,
    fees: u64,
    references: Vec<String>,
}

#[aggregate]
impl Ledger {
    #[handle]
    fn credit(&self, c: Credit) -> LedgerEvent {
        LedgerEvent::Credited {
            cents: c.cents,
            reference: "new".into(),
        }
    }

    #[apply]
    fn apply(&mut self, event: &LedgerEvent) {
        match event {
            LedgerEvent::Credited { cents, reference } => {
                self.cents += *cents as i64;
                self.references.push(reference.clone());
            }
            LedgerEvent::Debited { cents } => self.cents -= *cents as i64,
            LedgerEvent::FeeCharged { cents } => {
                self.cents -= *cents as i64;
                self.fees += cents;
            }
        }
    }
}

/// Every ledger event with its position, as the handler got it.
#[derive(Clone, Default)]
pub struct LedgerLog(Arc<Mutex<Vec<(u64, LedgerEvent)>>>);

#[event_handler(name = "ledger-log")]
impl LedgerLog {
    fn on_ledger(&self, event: &LedgerEvent, meta: &EventMeta<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((meta.position(), event.clone()));
    }
}

/// Every card event with its stream, as the handler got it.
#[derive(Clone, Default)]
pub struct CardLog(Arc<Mutex<Vec<(String, CardEvent)>>>);

#[event_handler(name = "card-log")]
impl CardLog {
    fn on_card(&self, event: &CardEvent, meta: &EventMeta<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((meta.stream_id().to_string(), event.clone()));
    }
}

/// One row per ledger event a projection was given: (position, kind, cents).
macro_rules! lines_on {
    ($projection:ident, $name:literal, $conn:ty) => {
        pub struct $projection;

        #[projection(name = $name)]
        impl $projection {
            async fn on_ledger(
                &self,
                tx: &mut $conn,
                event: &LedgerEvent,
                meta: &EventMeta<'_>,
            ) -> Result<(), sqlx::Error> {
                let (kind, cents) = match event {
                    LedgerEvent::Credited { cents, .. } => ("credit", *cents),
                    LedgerEvent::Debited { cents } => ("debit", *cents),
                    LedgerEvent::FeeCharged { cents } => ("fee", *cents),
                };
                sqlx::query("INSERT INTO ledger_lines (position, kind, cents) VALUES ($1, $2, $3)")
                    .bind(meta.position() as i64)
                    .bind(kind)
                    .bind(cents as i64)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }

            #[reset]
            async fn clear(&self, tx: &mut $conn) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM ledger_lines")
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }
        }
    };
}

lines_on!(SqliteLines, "ledger-lines-sqlite", sqlx::SqliteConnection);
lines_on!(PgLines, "ledger-lines-postgres", sqlx::PgConnection);

const LINES: &str = "CREATE TABLE ledger_lines (position BIGINT NOT NULL, kind TEXT NOT NULL, \
     cents BIGINT NOT NULL)";

/// The request whose id the old deposit's metadata carries.
fn request() -> Uuid {
    Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0042)
}

/// The ledger's stream as an older build stored it, and a card event the
/// ledger's enum declared then.
fn old_events() -> Vec<NewEvent> {
    let raw =
        |name: &'static str, json: &str| NewEvent::new(name, 1, Payload::from_json(json).unwrap());
    vec![
        raw("Deposited", r#"{"cents":100}"#).with_metadata(Metadata {
            correlation_id: Some(request()),
            ..Metadata::default()
        }),
        raw("Transferred", r#"{"cents":30,"fee":2}"#),
        raw("Noted", r#"{"text":"called the customer"}"#),
        raw("CardLocked", r#"{"reason":"lost"}"#),
        raw("Transferred", r#"{"cents":5,"fee":0}"#),
        raw("Withdrawn", r#"{"cents":4}"#),
    ]
}

async fn store_old_events(store: &impl EventStore) {
    store
        .append(
            &StreamId::new("Ledger-ada"),
            ExpectedVersion::NoStream,
            old_events(),
        )
        .await
        .unwrap();
}

/// What every reader must see of [`old_events`], then one new credit.
async fn every_reader_sees_the_parts(
    store: impl EventStore + Clone,
    project: impl FnOnce(annals::AppBuilder) -> annals::AppBuilder,
) -> App {
    let (ledger_log, card_log) = (LedgerLog::default(), CardLog::default());
    let app = project(
        App::builder()
            .store(store.clone())
            .handler(ledger_log.clone())
            .handler(card_log.clone()),
    )
    .build()
    .unwrap();

    let (ledger, version) = app.load::<Ledger>("ada").await.unwrap();
    // Six stored events, whatever they read as now.
    assert_eq!(version, 6);
    assert_eq!(
        ledger,
        Ledger {
            cents: 100 - 30 - 2 - 5 - 4,
            fees: 2,
            references: vec![request().to_string()],
        }
    );

    app.dispatch(Credit {
        id: "ada".into(),
        cents: 7,
    })
    .await
    .unwrap();
    app.wait_until_settled(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        *ledger_log.0.lock().unwrap(),
        [
            (
                1,
                LedgerEvent::Credited {
                    cents: 100,
                    reference: request().to_string()
                }
            ),
            (2, LedgerEvent::Debited { cents: 30 }),
            (2, LedgerEvent::FeeCharged { cents: 2 }),
            (5, LedgerEvent::Debited { cents: 5 }),
            (6, LedgerEvent::Debited { cents: 4 }),
            (
                7,
                LedgerEvent::Credited {
                    cents: 7,
                    reference: "new".into()
                }
            ),
        ]
    );
    assert_eq!(
        *card_log.0.lock().unwrap(),
        [(
            "Ledger-ada".to_owned(),
            CardEvent::CardLocked {
                reason: "lost".into()
            }
        )]
    );
    app
}

/// The projection's rows, after the run and again after a rebuild.
const EXPECTED_LINES: &[(i64, &str, i64)] = &[
    (1, "credit", 100),
    (2, "debit", 30),
    (2, "fee", 2),
    (5, "debit", 5),
    (6, "debit", 4),
    (7, "credit", 7),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store() {
    let store = annals::MemoryStore::new();
    store_old_events(&store).await;
    let app = every_reader_sees_the_parts(store, |b| b).await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_and_projection_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = annals::sqlite::SqliteStore::open(dir.path().join("events.db"))
        .await
        .unwrap();
    store_old_events(&store).await;
    let read = sqlx::SqlitePool::connect(&format!(
        "sqlite:{}?mode=rwc",
        dir.path().join("read.db").display()
    ))
    .await
    .unwrap();
    read.execute(LINES).await.unwrap();
    let pool = read.clone();
    let app = every_reader_sees_the_parts(store, move |b| b.projection(pool, SqliteLines)).await;
    lines_before_and_after_a_rebuild(&app, SqliteLines::NAME, || async {
        sqlx::query_as(SELECT_LINES).fetch_all(&read).await.unwrap()
    })
    .await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_and_projection_rebuild() {
    let store = annals::postgres::PostgresStore::builder(test_url())
        .schema(fresh_schema())
        .connect()
        .await
        .expect("PostgreSQL must be reachable");
    store_old_events(&store).await;
    let pool = store.pool().clone();
    pool.execute(LINES).await.unwrap();
    let read = pool.clone();
    let app =
        every_reader_sees_the_parts(store.clone(), move |b| b.projection(read, PgLines)).await;
    lines_before_and_after_a_rebuild(&app, PgLines::NAME, || async {
        sqlx::query_as(SELECT_LINES).fetch_all(&pool).await.unwrap()
    })
    .await;
    app.shutdown().await.unwrap();
    annals_tests::postgres::drop_schema(&store).await;
}

/// The projection's rows (from `lines`) equal [`EXPECTED_LINES`] as kept
/// live, and again after a rebuild from position 0 (each part of a split
/// counted once).
async fn lines_before_and_after_a_rebuild<F: Future<Output = Vec<(i64, String, i64)>>>(
    app: &App,
    name: &str,
    lines: impl Fn() -> F,
) {
    let expected: Vec<(i64, String, i64)> = EXPECTED_LINES
        .iter()
        .map(|(p, k, c)| (*p, (*k).to_owned(), *c))
        .collect();
    assert_eq!(lines().await, expected, "kept live");
    app.rebuild(name).await.unwrap();
    app.wait_until_settled(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(lines().await, expected, "after a rebuild");
}

const SELECT_LINES: &str = "SELECT position, kind, cents FROM ledger_lines ORDER BY position, kind";

/// The recorded form of one old event, as a store would read it back.
fn recorded(name: &str, json: &str) -> RecordedEvent {
    RecordedEvent {
        event_id: Uuid::now_v7(),
        stream_id: StreamId::new("Ledger-bob"),
        stream_version: 1,
        global_position: 1,
        event_type: name.to_owned().into(),
        event_version: 1,
        payload: Payload::from_json(json).unwrap(),
        metadata: Metadata::default(),
        recorded_at: chrono::Utc::now(),
    }
}

#[test]
fn decode_asks_for_exactly_one_event() {
    let split = Payload::from_json(r#"{"cents":1,"fee":1}"#).unwrap();
    match LedgerEvent::decode("Transferred", 1, &split) {
        Err(DecodeError::NotOne { count: 2, .. }) => {}
        other => panic!("a split read as one event: {other:?}"),
    }
    let note = Payload::from_json("{}").unwrap();
    match LedgerEvent::decode("Noted", 1, &note) {
        Err(DecodeError::NotOne { count: 0, .. }) => {}
        other => panic!("a dropped event read as one event: {other:?}"),
    }
    // Without a recorded event, the metadata reads as empty.
    let deposit = Payload::from_json(r#"{"cents":3}"#).unwrap();
    assert_eq!(
        LedgerEvent::decode("Deposited", 1, &deposit).unwrap(),
        LedgerEvent::Credited {
            cents: 3,
            reference: "none".into()
        }
    );
}

#[test]
fn an_aggregate_refuses_a_type_that_neither_it_nor_its_upcasters_know() {
    // The moved type reads as nothing for the ledger, and as itself for cards.
    let locked = recorded("CardLocked", r#"{"reason":"stolen"}"#);
    assert_eq!(decode_recorded::<LedgerEvent>(&locked).unwrap().count(), 0);
    assert_eq!(
        decode_recorded::<CardEvent>(&locked)
            .unwrap()
            .collect::<Vec<_>>(),
        [CardEvent::CardLocked {
            reason: "stolen".into()
        }]
    );
    // The split's parts are ledger events, not card events: strict readers
    // refuse them.
    let transfer = recorded("Transferred", r#"{"cents":1,"fee":1}"#);
    match decode_recorded::<CardEvent>(&transfer) {
        Err(DecodeError::UnknownType { event_type, .. }) => assert_eq!(event_type, "Debited"),
        other => panic!("card events read a transfer: {other:?}"),
    }
    let unknown = recorded("Audited", "{}");
    match decode_recorded::<LedgerEvent>(&unknown) {
        Err(DecodeError::UnknownType { event_type, .. }) => assert_eq!(event_type, "Audited"),
        other => panic!("an unknown type read as ledger events: {other:?}"),
    }
}
