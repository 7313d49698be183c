//! A process manager killed (SIGKILL) after it dispatched commands for some
//! events but before its checkpoint moved past them: once restarted, those
//! events are delivered again, and no command is carried out twice. On
//! SQLite and PostgreSQL, with a real child process (this test binary run
//! again, as the ignored `child` test selected by an environment variable).

use annals::prelude::*;
use annals::{AnyStore, EventStore, StreamId};
use annals_tests::postgres::{fresh_schema, test_url};
use sqlx::AssertSqlSafe;
use std::time::Duration;

/// `sqlite:<path>` or `postgres:<schema>`: set only for the child.
const CHILD: &str = "ANNALS_PROCESS_MANAGER_CRASH_CHILD";
/// Orders placed before the child starts; the last one stalls the child.
const ORDERS: usize = 20;

#[event]
pub enum OrderEvent {
    Placed { order: String },
}

#[event]
pub enum ShipperEvent {
    Shipped { order: String },
}

#[command(aggregate = Order)]
pub struct Place {
    #[id]
    pub order: String,
}

#[command(aggregate = Shipper)]
pub struct Ship {
    #[id]
    pub shipper: String,
    pub order: String,
}

#[aggregate(events = OrderEvent)]
#[derive(Default)]
pub struct Order;

#[aggregate]
impl Order {
    #[handle]
    fn place(&self, c: Place) -> OrderEvent {
        OrderEvent::Placed { order: c.order }
    }
    #[apply]
    fn apply(&mut self, _: &OrderEvent) {}
}

#[aggregate(events = ShipperEvent)]
#[derive(Default)]
pub struct Shipper;

#[aggregate]
impl Shipper {
    #[handle]
    fn ship(&self, c: Ship) -> ShipperEvent {
        ShipperEvent::Shipped { order: c.order }
    }
    #[apply]
    fn apply(&mut self, _: &ShipperEvent) {}
}

/// Ships every order placed.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Shipping;

#[process_manager(name = "shipping")]
impl Shipping {
    #[route]
    fn route_order(event: &OrderEvent) -> Route {
        let OrderEvent::Placed { order } = event;
        Route::Start(order.clone())
    }

    #[route]
    fn route_shipper(event: &ShipperEvent) -> Route {
        let ShipperEvent::Shipped { order } = event;
        Route::Stop(order.clone())
    }

    #[handle]
    fn on_order(&self, event: &OrderEvent) -> Vec<Dispatch> {
        let OrderEvent::Placed { order } = event;
        if order == "stall" && std::env::var_os(CHILD).is_some() {
            // The commands of the events before this one, in the same page,
            // are carried out; the page's checkpoint is not saved.
            println!("STALLED");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        vec![Dispatch::command(Ship {
            shipper: "depot".into(),
            order: order.clone(),
        })]
    }

    #[handle]
    fn on_shipper(&self, _: &ShipperEvent) -> Vec<Dispatch> {
        Vec::new()
    }
}

#[derive(Clone)]
enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Db {
    fn encode(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite:{}", path.display()),
            Db::Postgres(schema) => format!("postgres:{schema}"),
        }
    }

    fn decode(text: &str) -> Self {
        match text.split_once(':') {
            Some(("sqlite", path)) => Db::Sqlite(path.into()),
            Some(("postgres", schema)) => Db::Postgres(schema.into()),
            _ => panic!("bad {CHILD}: {text}"),
        }
    }

    async fn store(&self) -> AnyStore {
        match self {
            Db::Sqlite(path) => annals::sqlite::SqliteStore::open(path)
                .await
                .unwrap()
                .into(),
            Db::Postgres(schema) => annals::postgres::PostgresStore::builder(test_url())
                .schema(schema)
                .connect()
                .await
                .expect("PostgreSQL must be reachable")
                .into(),
        }
    }

    async fn app(&self, shipping: bool) -> App {
        let builder = App::builder().store(self.store().await);
        let builder = if shipping {
            builder.process_manager::<Shipping>()
        } else {
            builder
        };
        builder.build().unwrap()
    }
}

/// How many `Shipped` events there are, per order.
async fn shipped(store: &dyn EventStore) -> std::collections::BTreeMap<String, usize> {
    let mut shipped = std::collections::BTreeMap::new();
    let head = store.head_position().await.unwrap();
    for event in annals_tests::conformance::log_through(store, head).await {
        if event.event_type == "Shipped" {
            let payload: serde_json::Value = serde_json::from_str(event.payload.as_str()).unwrap();
            *shipped
                .entry(payload["order"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    shipped
}

/// The child: runs the process manager until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the crash tests"]
async fn child() {
    let db = Db::decode(&std::env::var(CHILD).expect("only run as a child"));
    let _app = db.app(true).await;
    std::future::pending::<()>().await;
}

async fn killed_after_its_commands_then_restarted(db: Db) {
    let writer = db.app(false).await;
    for n in 0..ORDERS {
        writer
            .dispatch(Place {
                order: format!("o{n:02}"),
            })
            .await
            .unwrap();
    }
    let stall = writer
        .dispatch(Place {
            order: "stall".into(),
        })
        .await
        .unwrap();
    let stall_at = stall.positions.unwrap().1;

    let mut child = annals_tests::child_at(CHILD, &db.encode(), "STALLED");
    // Killed after the commands of the orders before the stall were carried out.
    child.kill().unwrap();
    child.wait().unwrap();

    let store = writer.store().clone();
    let before = shipped(&*store).await;
    assert_eq!(before.len(), ORDERS, "every order before the stall shipped");
    assert!(before.values().all(|&n| n == 1));
    let checkpoint = store.load_checkpoint("shipping").await.unwrap();
    assert!(
        checkpoint.unwrap_or(0) < stall_at,
        "the child died before its checkpoint passed the orders ({checkpoint:?})"
    );

    // Restarted: the orders are delivered again, and only the stalled one ships.
    let app = db.app(true).await;
    annals::testing::eventually_recorded(&**app.store(), Duration::from_secs(30), |e| {
        e.event_type == "Shipped" && e.payload.as_str().contains("\"stall\"")
    })
    .await;
    app.wait_until_settled(Duration::from_secs(30))
        .await
        .unwrap();
    let after = shipped(&**app.store()).await;
    assert_eq!(after.len(), ORDERS + 1);
    assert!(
        after.values().all(|&n| n == 1),
        "no order shipped twice: {after:?}"
    );
    assert!(
        app.store()
            .load_checkpoint("shipping")
            .await
            .unwrap()
            .is_some_and(|c| c >= stall_at),
        "the restarted manager moved past the orders"
    );
    assert_eq!(
        app.store()
            .stream_version(&StreamId::new("Shipper-depot"))
            .await
            .unwrap(),
        Some(ORDERS as u64 + 1)
    );
    app.shutdown().await.unwrap();
    writer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_after_its_commands() {
    let dir = tempfile::tempdir().unwrap();
    killed_after_its_commands_then_restarted(Db::Sqlite(dir.path().join("orders.db"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_after_its_commands() {
    let schema = fresh_schema();
    killed_after_its_commands_then_restarted(Db::Postgres(schema.clone())).await;
    let mut admin = annals_tests::postgres::admin_connection().await;
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
}
