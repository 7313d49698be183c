//! PostgreSQL test support: a factory giving each test its own schema,
//! test-only hooks that stall a writer's transaction on purpose, and a relay
//! that makes the server unreachable on demand.
//!
//! The server comes from `ANNALS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test` (trust auth). An unreachable
//! server fails the tests: a silently skipped PostgreSQL suite is not a pass.

use crate::conformance::StoreFactory;
use annals::StreamId;
use annals::postgres::PostgresStore;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The default test server.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test server's URL.
pub fn test_url() -> String {
    std::env::var("ANNALS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A plain connection to the test server, outside any store's pool.
pub async fn admin_connection() -> PgConnection {
    let url = test_url();
    PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL must be reachable at {url} (set ANNALS_TEST_POSTGRES_URL): {e}")
    })
}

/// A fresh schema name, unique per call.
pub fn fresh_schema() -> String {
    format!("annals_test_{}", uuid::Uuid::now_v7().simple())
}

/// Each store gets a new random schema on the shared server, dropped by `dispose`.
pub struct PostgresFactory;

impl StoreFactory for PostgresFactory {
    type Store = PostgresStore;

    async fn create(&self) -> Self::Store {
        let url = test_url();
        PostgresStore::builder(&url)
            .schema(fresh_schema())
            .max_connections(12)
            .poll_interval(Duration::from_millis(200))
            .connect()
            .await
            .unwrap_or_else(|e| {
                panic!("no PostgreSQL store at {url} (set ANNALS_TEST_POSTGRES_URL): {e}")
            })
    }

    async fn open_again(&self, store: &Self::Store) -> Self::Store {
        PostgresStore::builder(test_url())
            .schema(store.schema())
            .max_connections(12)
            .poll_interval(Duration::from_millis(200))
            .connect()
            .await
            .expect("connect to the same schema again")
    }

    async fn write_corrupt_event(&self, store: &Self::Store, stream: &StreamId) -> bool {
        // Metadata that is not a JSON object, as a hand-edited row might hold.
        sqlx::query(
            "INSERT INTO events (stream_id, stream_version, event_id, event_type, event_version, payload, metadata) \
             VALUES ($1, 1, gen_random_uuid(), 'Corrupted', 1, '{}', '\"not an object\"')",
        )
        .bind(stream.as_str())
        .execute(store.pool())
        .await
        .expect("insert a corrupt row");
        true
    }

    async fn dispose(&self, store: Self::Store) {
        drop_schema(&store).await;
    }
}

/// Closes `store` and drops its schema.
pub async fn drop_schema(store: &PostgresStore) {
    store.close().await;
    let mut admin = admin_connection().await;
    // The schema name was validated by the store.
    let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", store.schema());
    sqlx::query(AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
        .expect("drop the test schema");
}

/// The application name of `store`'s connections.
pub fn application_name(store: &PostgresStore) -> String {
    format!("annals:{}", store.schema())
}

/// Test-only stalls installed in one store's schema.
///
/// Appends to a stream named `stall-before-insert-*` block after they have
/// taken their transaction id and drawn their positions, before their events
/// are inserted, while the test holds the advisory lock `before_insert`.
pub struct Stalls {
    admin: PgConnection,
    /// The advisory lock key of the before-insert stall.
    pub before_insert: i64,
}

impl Stalls {
    /// Installs the stall trigger in `store`'s schema and takes its lock.
    pub async fn install(store: &PostgresStore) -> Self {
        let mut admin = admin_connection().await;
        // The low bits of a v7 id are random.
        let before_insert = (uuid::Uuid::now_v7().as_u128() as i64 & 0x3fff_ffff_ffff_ffff) | 1;
        let schema = store.schema();
        // The key is an integer and the schema was validated: nothing here comes from input.
        let sql = format!(
            r#"
            CREATE FUNCTION "{schema}".test_stall() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.stream_id LIKE 'stall-before-insert-%' THEN
                    PERFORM pg_advisory_xact_lock_shared({before_insert});
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_stall BEFORE INSERT ON "{schema}".events
                FOR EACH ROW EXECUTE FUNCTION "{schema}".test_stall();
            "#
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("install the stall trigger");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(before_insert)
            .execute(&mut admin)
            .await
            .expect("take the stall lock");
        Self {
            admin,
            before_insert,
        }
    }

    /// Lets writers stalled on `key` continue.
    pub async fn release(&mut self, key: i64) {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut self.admin)
            .await
            .expect("release a stall lock");
    }

    /// Waits until `count` of `store`'s connections wait on a lock.
    pub async fn wait_for_stalled(&mut self, store: &PostgresStore, count: i64) {
        let started = Instant::now();
        loop {
            let stalled: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
            )
            .bind(application_name(store))
            .fetch_one(&mut self.admin)
            .await
            .expect("query pg_stat_activity");
            if stalled >= count {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "only {stalled} of {count} writers stalled"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Terminates every backend of `store` (never the server), as a network
    /// failure or a failover would.
    pub async fn terminate_connections(&mut self, store: &PostgresStore) -> i64 {
        sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(application_name(store))
        .fetch_one(&mut self.admin)
        .await
        .expect("terminate the store's backends")
    }
}

/// A TCP relay to the test server on a port of its own. Shutting it down
/// makes the server unreachable at that address, as a server that went away
/// would be: open connections break and new ones are refused.
pub struct Relay {
    port: u16,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying `127.0.0.1:<a free port>` to the test server.
    pub fn start() -> Self {
        let url = test_url();
        let (start, end) = address_in(&url);
        let upstream = match &url[start..end] {
            a if a.contains(':') => a.to_owned(),
            host => format!("{host}:5432"),
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a relay port");
        let port = listener.local_addr().expect("the relay's address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let accept = std::thread::spawn({
            let (stop, sockets) = (stop.clone(), sockets.clone());
            move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let (Ok(client), Ok(server)) = (client, TcpStream::connect(&upstream)) else {
                        continue;
                    };
                    for (from, to) in [(&client, &server), (&server, &client)] {
                        let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                            continue;
                        };
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(Shutdown::Both);
                        });
                    }
                    sockets.lock().unwrap().extend([client, server]);
                }
            }
        });
        Self {
            port,
            stop,
            sockets,
            accept: Some(accept),
        }
    }

    /// The relay's address, `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The test server's URL, with the relay's address in place of the server's.
    pub fn url(&self) -> String {
        let url = test_url();
        let (start, end) = address_in(&url);
        format!("{}{}{}", &url[..start], self.address(), &url[end..])
    }

    /// Closes the relay's port (connecting to it is refused from now on) and
    /// breaks every connection it carried.
    pub fn shut_down(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then returns and closes the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        accept.join().expect("the relay's accept loop ends");
        for socket in self.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Where the `host[:port]` part of `url` starts and ends.
fn address_in(url: &str) -> (usize, usize) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let start = url[start..].find('@').map_or(start, |i| start + i + 1);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    (start, end)
}
