//! `#[projection]` keeps a read model on SQLite and PostgreSQL: from the
//! stored events (catch-up), then live, across a restart without counting
//! anything twice, and through a rebuild that empties the tables with its
//! `#[reset]` function and replays from position 0.

use annals::handler::{ErrorPolicy, HandlerOptions};
use annals::prelude::*;
use annals::projection::Projection;
use annals::{ExpectedVersion, NewEvent, StreamId};
use annals_tests::conformance::StoreFactory;
use annals_tests::postgres::PostgresFactory;
use sqlx::{Executor, PgPool, SqlitePool};
use std::time::Duration;

#[event]
pub enum TabEvent {
    Opened { owner: String },
    Charged { cents: i64 },
}

/// A second event type, in struct form: routed to its own method.
#[event]
#[derive(Clone, Debug)]
pub struct TabClosed {
    pub reason: String,
}

#[command(aggregate = Tab)]
pub struct OpenTab {
    #[id]
    pub id: String,
    pub owner: String,
}

#[command(aggregate = Tab)]
pub struct Charge {
    #[id]
    pub id: String,
    pub cents: i64,
}

#[aggregate(events = TabEvent)]
#[derive(Default)]
pub struct Tab;

#[aggregate]
impl Tab {
    #[handle]
    fn open(&self, command: OpenTab) -> TabEvent {
        TabEvent::Opened {
            owner: command.owner,
        }
    }

    #[handle]
    fn charge(&self, command: Charge) -> TabEvent {
        TabEvent::Charged {
            cents: command.cents,
        }
    }

    #[apply]
    fn apply(&mut self, _: &TabEvent) {}
}

const TABLE: &str = "CREATE TABLE tabs (tab TEXT PRIMARY KEY, owner TEXT NOT NULL, \
     cents BIGINT NOT NULL, charges BIGINT NOT NULL, closed TEXT, last_position BIGINT NOT NULL)";

/// One projection per database (the connection type decides it), from the
/// same SQL: `$n` parameters work on both.
macro_rules! tabs_on {
    ($projection:ident, $name:literal, $conn:ty) => {
        /// Keeps `tabs`: one row per tab, charges added up.
        pub struct $projection;

        #[projection(name = $name)]
        impl $projection {
            async fn on_tab(
                &self,
                tx: &mut $conn,
                event: &TabEvent,
                meta: &EventMeta<'_>,
            ) -> Result<(), sqlx::Error> {
                let tab = meta.aggregate_id().unwrap_or_default();
                let position = meta.position() as i64;
                match event {
                    TabEvent::Opened { owner } => {
                        sqlx::query(
                            "INSERT INTO tabs (tab, owner, cents, charges, last_position) \
                             VALUES ($1, $2, 0, 0, $3)",
                        )
                        .bind(tab)
                        .bind(owner)
                        .bind(position)
                        .execute(&mut *tx)
                        .await?;
                    }
                    TabEvent::Charged { cents } => {
                        sqlx::query(
                            "UPDATE tabs SET cents = cents + $2, charges = charges + 1, \
                             last_position = $3 WHERE tab = $1",
                        )
                        .bind(tab)
                        .bind(cents)
                        .bind(position)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                Ok(())
            }

            async fn on_closed(
                &self,
                tx: &mut $conn,
                event: &TabClosed,
                meta: &EventMeta<'_>,
            ) -> Result<(), sqlx::Error> {
                sqlx::query("UPDATE tabs SET closed = $2, last_position = $3 WHERE tab = $1")
                    .bind(meta.aggregate_id().unwrap_or_default())
                    .bind(&event.reason)
                    .bind(meta.position() as i64)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }

            #[reset]
            async fn clear(&self, tx: &mut $conn) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM tabs").execute(&mut *tx).await?;
                Ok(())
            }
        }
    };
}

tabs_on!(SqliteTabs, "tabs-sqlite", sqlx::SqliteConnection);
tabs_on!(PgTabs, "tabs-postgres", sqlx::PgConnection);

/// The rows of `tabs`: (tab, owner, cents, charges, closed, last_position).
type Row = (String, String, i64, i64, Option<String>, i64);

/// A read database with its projection.
trait ReadDb: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    fn register(&self, builder: annals::AppBuilder) -> annals::AppBuilder;
    fn rows(&self) -> impl Future<Output = Vec<Row>> + Send;
    fn run(&self, sql: &'static str) -> impl Future<Output = ()> + Send;
}

impl ReadDb for SqlitePool {
    const NAME: &'static str = SqliteTabs::NAME;
    fn register(&self, builder: annals::AppBuilder) -> annals::AppBuilder {
        builder.projection_with(self.clone(), SqliteTabs, quick())
    }
    async fn rows(&self) -> Vec<Row> {
        sqlx::query_as(
            "SELECT tab, owner, cents, charges, closed, last_position FROM tabs ORDER BY tab",
        )
        .fetch_all(self)
        .await
        .unwrap()
    }
    async fn run(&self, sql: &'static str) {
        self.execute(sql).await.unwrap();
    }
}

impl ReadDb for PgPool {
    const NAME: &'static str = PgTabs::NAME;
    fn register(&self, builder: annals::AppBuilder) -> annals::AppBuilder {
        builder.projection_with(self.clone(), PgTabs, quick())
    }
    async fn rows(&self) -> Vec<Row> {
        sqlx::query_as(
            "SELECT tab, owner, cents, charges, closed, last_position FROM tabs ORDER BY tab",
        )
        .fetch_all(self)
        .await
        .unwrap()
    }
    async fn run(&self, sql: &'static str) {
        self.execute(sql).await.unwrap();
    }
}

fn quick() -> HandlerOptions {
    HandlerOptions::new()
        .on_error(ErrorPolicy::retry(3).backoff(Duration::from_millis(1), Duration::from_millis(5)))
}

fn last_position<E: std::fmt::Debug>(
    outcome: Result<annals::Dispatched<Tab>, DispatchError<E>>,
) -> u64 {
    outcome.unwrap().positions.unwrap().1
}

/// Closes a tab: an event of another type than the aggregate's, appended
/// to its stream directly.
async fn close<S: EventStore>(store: &S, tab: &str, reason: &str) -> u64 {
    let closed = TabClosed {
        reason: reason.into(),
    };
    let event = NewEvent::new(
        closed.event_type(),
        closed.event_version(),
        closed.encode().unwrap(),
    );
    store
        .append(
            &StreamId::new(format!("Tab-{tab}")),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
        .unwrap()
        .last_position
}

async fn caught_up(app: &App, position: u64) {
    app.wait_for_handlers(position, &[], Duration::from_secs(10))
        .await
        .expect("the projection catches up");
}

fn row(tab: &str, owner: &str, cents: i64, charges: i64, closed: Option<&str>, at: u64) -> Row {
    (
        tab.into(),
        owner.into(),
        cents,
        charges,
        closed.map(Into::into),
        at as i64,
    )
}

/// Catch-up from stored events, then live, then a restart that goes on
/// where the checkpoint is, then a rebuild: the read model is always what
/// the events say, each counted once.
async fn keeps_the_read_model<F: StoreFactory, R: ReadDb>(factory: &F, store: &F::Store, db: &R) {
    // The interest set is the methods' event types, in order.
    assert_eq!(
        SqliteTabs::INTEREST,
        &[<TabEvent as Event>::TYPES, <TabClosed as Event>::TYPES]
    );
    let writer = App::builder().store(store.clone()).build().unwrap();
    let open = |id: &str, owner: &str| OpenTab {
        id: id.into(),
        owner: owner.into(),
    };
    let charge = |id: &str, cents| Charge {
        id: id.into(),
        cents,
    };
    writer.dispatch(open("a", "ada")).await.unwrap();
    writer.dispatch(charge("a", 100)).await.unwrap();
    let a = last_position(writer.dispatch(charge("a", 200)).await);
    writer.dispatch(open("b", "bob")).await.unwrap();
    let b = last_position(writer.dispatch(charge("b", 5)).await);

    let app = db
        .register(App::builder().store(factory.open_again(store).await))
        .build()
        .unwrap();
    caught_up(&app, b).await;
    assert_eq!(
        db.rows().await,
        [
            row("a", "ada", 300, 2, None, a),
            row("b", "bob", 5, 1, None, b)
        ]
    );

    // Live, both event types.
    let b = last_position(app.dispatch(charge("b", 7)).await);
    let a = close(store, "a", "paid").await;
    caught_up(&app, a.max(b)).await;
    let expected = [
        row("a", "ada", 300, 2, Some("paid"), a),
        row("b", "bob", 12, 2, None, b),
    ];
    assert_eq!(db.rows().await, expected);
    app.shutdown().await.unwrap();

    // Restarted: from its checkpoint, nothing counted twice.
    let again = db
        .register(App::builder().store(factory.open_again(store).await))
        .build()
        .unwrap();
    let b = last_position(again.dispatch(charge("b", 1)).await);
    caught_up(&again, b).await;
    let expected = [expected[0].clone(), row("b", "bob", 13, 3, None, b)];
    assert_eq!(db.rows().await, expected);

    // Rebuilt: `#[reset]` empties the table (a stray row goes), the events
    // are replayed from position 0, and the damage is mended.
    db.run("UPDATE tabs SET cents = -1").await;
    db.run("INSERT INTO tabs (tab, owner, cents, charges, last_position) VALUES ('zz', 'nobody', 0, 0, 0)")
        .await;
    again.rebuild(R::NAME).await.unwrap();
    caught_up(&again, b).await;
    assert_eq!(db.rows().await, expected);
    again.shutdown().await.unwrap();
}

mod sqlite {
    use super::*;
    use annals::sqlite::SqliteStore;

    struct Files(tempfile::TempDir);

    impl StoreFactory for Files {
        type Store = SqliteStore;
        async fn create(&self) -> SqliteStore {
            SqliteStore::open(self.0.path().join("events.db"))
                .await
                .unwrap()
        }
        async fn open_again(&self, store: &SqliteStore) -> SqliteStore {
            SqliteStore::open(store.filename()).await.unwrap()
        }
    }

    /// The read model in a database of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn keeps_the_read_model() {
        let files = Files(tempfile::tempdir().unwrap());
        let store = files.create().await;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(files.0.path().join("read.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let db = SqlitePool::connect_with(options).await.unwrap();
        db.run(TABLE).await;
        super::keeps_the_read_model(&files, &store, &db).await;
    }
}

mod postgres {
    use super::*;

    /// The read model in the store's own database (its schema).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn keeps_the_read_model() {
        let factory = PostgresFactory;
        let store = factory.create().await;
        let db = store.pool().clone();
        db.run(TABLE).await;
        super::keeps_the_read_model(&factory, &store, &db).await;
    }
}
