//! Publishing through RabbitMQ and consuming into a projection, against the
//! real broker (`ANNALS_TEST_RABBITMQ_URL`, default the local one; the tests
//! fail when it cannot be reached): every event lands in the projection
//! exactly once across a publisher killed between the broker's confirms and
//! its checkpoint, and a consumer killed between its commit and its acks
//! (real child processes: the `rabbit-node` binary); a poison event goes to
//! the dead-letter queue and the consumer moves on; one consumer keeps each
//! stream's order. The broker restart is in `rabbitmq_broker_restart.rs`, a
//! binary of its own, since it disturbs every connection to the broker.

use annals::App;
use annals::handler::{ErrorPolicy, HandlerOptions, HandlerState};
use annals::rabbitmq::lapin::options::BasicGetOptions;
use annals::rabbitmq::lapin::types::AMQPValue;
use annals::rabbitmq::{Consumer, Publisher, Queue};
use annals_tests::postgres::fresh_schema;
use annals_tests::rabbit::{Db, POISON, amqp_url, append, broker, cleanup, eventually, unique};
use sqlx::Connection;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// A `rabbit-node` child and the lines it printed.
struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Node {
    fn start(args: &[&str], marker: &str) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rabbit-node"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rabbit-node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut node = Node { child, lines };
        node.wait_for(marker);
        node
    }

    /// The first line from now that starts with `marker`.
    fn wait_for(&mut self, marker: &str) -> String {
        loop {
            match self.lines.recv_timeout(LIMIT) {
                Ok(line) if line.starts_with(marker) => return line,
                Ok(_) => {}
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("rabbit-node never printed {marker}: {e}");
                }
            }
        }
    }

    fn sigkill(mut self) {
        self.child.kill().expect("SIGKILL the child");
        self.child.wait().expect("reap the child");
    }

    /// Closes its stdin (it shuts down) and returns its last line.
    fn finish(mut self, marker: &str) -> String {
        drop(self.child.stdin.take());
        let line = self.wait_for(marker);
        self.child.wait().expect("reap the child");
        line
    }
}

fn stat(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

/// Every event once: as many rows as events, each event id once.
fn assert_once(rows: &[annals_tests::rabbit::Row], events: usize) {
    let ids: HashSet<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids.len(), events, "every event applied");
    assert_eq!(rows.len(), events, "no event applied twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_killed_between_confirms_and_checkpoint_publishes_again_and_the_consumer_applies_once()
 {
    let _ = broker().await;
    let (exchange, queue) = (unique("ex"), unique("q"));
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.db");
    let db = Db::Sqlite(events.clone());
    let store = db.store().await;
    const EVENTS: usize = 300;
    for s in 0..6 {
        append(&store, &format!("Tally-{s}"), (1..=50).map(|n| n as i64)).await;
    }
    // The consumer reads into a PostgreSQL schema.
    let pool = Db::Postgres(fresh_schema()).pool().await;
    let consumer = pool.consume(Consumer::new(
        amqp_url(),
        &exchange,
        Queue::new(&queue).bind("#"),
    ));

    // The store's database is write-locked (readers go on, WAL): the
    // publisher's checkpoint cannot move, so it is killed after the broker
    // confirmed everything and before its checkpoint moved.
    store
        .save_checkpoint("rabbitmq-publisher", 0)
        .await
        .unwrap();
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", events.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();

    let publisher = Node::start(&["publish", &db.encode(), &exchange, &queue], "PUBLISHING");
    eventually(LIMIT, "the consumer applied every event", || async {
        consumer.status().handled == EVENTS as u64
    })
    .await;
    publisher.sigkill();
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(
        store.load_checkpoint("rabbitmq-publisher").await.unwrap(),
        Some(0),
        "killed before its checkpoint moved"
    );

    // A new publisher starts from the checkpoint: everything again.
    let publisher = Node::start(&["publish", &db.encode(), &exchange, &queue], "PUBLISHING");
    eventually(
        LIMIT,
        "every event published again and recognised",
        || async { consumer.status().duplicates == EVENTS as u64 },
    )
    .await;
    let head = store.head_position().await.unwrap();
    eventually(
        LIMIT,
        "the publisher's checkpoint reached the head",
        || async { store.load_checkpoint("rabbitmq-publisher").await.unwrap() == Some(head) },
    )
    .await;
    publisher.finish("DONE");
    assert_once(&pool.rows().await, EVENTS);
    assert_eq!(consumer.status().handled, EVENTS as u64);
    consumer.shutdown().await;
    cleanup(&exchange, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_between_commit_and_ack_gets_the_messages_again_and_applies_them_once() {
    let _ = broker().await;
    let (exchange, queue) = (unique("ex"), unique("q"));
    let dir = tempfile::tempdir().unwrap();
    let store_db = Db::Sqlite(dir.path().join("events.db"));
    let read_db = Db::Sqlite(dir.path().join("read.db"));
    let store = store_db.store().await;
    const EVENTS: usize = 400;
    for s in 0..4 {
        append(&store, &format!("Tally-{s}"), (1..=100).map(|n| n as i64)).await;
    }
    let app = App::builder()
        .store(store.clone())
        .publisher(Publisher::new(amqp_url(), &exchange).declare(Queue::new(&queue).bind("#")))
        .build()
        .unwrap();

    // The first consumer stops for good inside its hook after 150 applied
    // events: their transaction committed, their messages unacknowledged.
    let first = Node::start(
        &["consume", &read_db.encode(), &exchange, &queue, "150"],
        "CONSUMING",
    );
    let mut first = first;
    first.wait_for("STALLED");
    first.sigkill();
    let pool = read_db.pool().await;
    let applied = pool.count().await;
    assert!(
        applied >= 150,
        "the stalled run was committed ({applied} rows)"
    );

    let second = Node::start(
        &["consume", &read_db.encode(), &exchange, &queue, "0"],
        "CONSUMING",
    );
    eventually(LIMIT, "every event applied", || async {
        pool.count().await >= EVENTS as i64
    })
    .await;
    // Let the last acks go out before asking for the status.
    let status = second.finish("STATUS");
    assert!(
        stat(&status, "duplicates") > 0,
        "redelivered messages were recognised: {status}"
    );
    assert_eq!(stat(&status, "dead"), 0);
    assert_once(&pool.rows().await, EVENTS);
    app.shutdown().await.unwrap();
    cleanup(&exchange, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_goes_to_the_dead_letter_queue_and_the_consumer_moves_on() {
    let conn = broker().await;
    let (exchange, queue) = (unique("ex"), unique("q"));
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(dir.path().join("all.db"));
    let store = db.store().await;
    let pool = db.pool().await;
    let consumer = pool.consume(
        Consumer::new(amqp_url(), &exchange, Queue::new(&queue).bind("Tally.*")).on_error(
            ErrorPolicy::retry(3).backoff(Duration::from_millis(5), Duration::from_millis(20)),
        ),
    );
    eventually(LIMIT, "the consumer declared its queue", || async {
        consumer.status().state == annals::rabbitmq::ConsumerState::Consuming
    })
    .await;
    let app = App::builder()
        .store(store.clone())
        .publisher(Publisher::new(amqp_url(), &exchange))
        .build()
        .unwrap();
    append(&store, "Tally-1", [1, 2, POISON, 4, 5]).await;
    append(&store, "Tally-2", [6, 7]).await;
    eventually(LIMIT, "the six good events applied", || async {
        consumer.status().handled == 6
    })
    .await;
    let status = consumer.status();
    assert_eq!(status.dead_lettered, 1);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("refuses 666"),
        "{status:?}"
    );
    let rows = pool.rows().await;
    assert_eq!(
        rows.iter().map(|r| r.n).collect::<Vec<_>>(),
        [1, 2, 4, 5, 6, 7]
    );

    let poison = store
        .read_stream(&annals::StreamId::new("Tally-1"), 3, 1)
        .await
        .unwrap()
        .remove(0);
    let channel = conn.create_channel().await.unwrap();
    let dead = channel
        .basic_get(
            format!("{queue}.dead-letter").as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("the poison event waits in the dead-letter queue");
    let headers = dead.delivery.properties.headers().clone().unwrap();
    let id = match headers.inner().get("event-id") {
        Some(AMQPValue::LongString(s)) => String::from_utf8(s.as_bytes().to_vec()).unwrap(),
        other => panic!("event-id header: {other:?}"),
    };
    assert_eq!(id, poison.event_id.to_string());
    assert_eq!(dead.delivery.routing_key.as_str(), "Tally.Counted");
    assert_eq!(dead.delivery.data, poison.payload.as_str().as_bytes());

    app.shutdown().await.unwrap();
    consumer.shutdown().await;
    cleanup(&exchange, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consumer_keeps_each_streams_order_and_the_events_metadata() {
    let _ = broker().await;
    let (exchange, queue) = (unique("ex"), unique("q"));
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(dir.path().join("events.db"));
    let store = db.store().await;
    let read = Db::Postgres(fresh_schema()).pool().await;
    let consumer = read
        .consume(Consumer::new(amqp_url(), &exchange, Queue::new(&queue).bind("#")).prefetch(7));
    let app = App::builder()
        .store(store.clone())
        .publisher_with(
            Publisher::new(amqp_url(), &exchange).declare(Queue::new(&queue).bind("#")),
            HandlerOptions::new().batch_size(13),
        )
        .build()
        .unwrap();
    // Five streams written at once, in many small appends.
    let writers: Vec<_> = (0..5)
        .map(|s| {
            let store = store.clone();
            tokio::spawn(async move {
                for chunk in 0..20 {
                    append(&store, &format!("Tally-{s}"), (0..3).map(|i| chunk * 3 + i)).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    eventually(LIMIT, "every event applied", || async {
        read.count().await == 300
    })
    .await;
    let rows = read.rows().await;
    assert_once(&rows, 300);
    let mut seen: BTreeMap<&str, i64> = BTreeMap::new();
    for row in &rows {
        let last = seen.entry(row.stream.as_str()).or_insert(0);
        assert_eq!(
            row.version,
            *last + 1,
            "{} out of order at seq {}",
            row.stream,
            row.seq
        );
        *last = row.version;
    }
    // What the handler sees of each event is what the store recorded.
    let recorded = store.read_all(1, 1000).await.unwrap();
    for (event, row) in recorded.iter().map(|e| {
        (
            e,
            rows.iter()
                .find(|r| r.event_id == e.event_id.to_string())
                .unwrap(),
        )
    }) {
        assert_eq!(row.position as u64, event.global_position);
        assert_eq!(
            row.correlation,
            event.metadata.correlation_id.map(|c| c.to_string())
        );
    }
    let status = app.handler_status().await;
    let publisher = status
        .iter()
        .find(|s| s.name == "rabbitmq-publisher")
        .unwrap();
    assert_eq!(publisher.handled, 300);
    assert!(matches!(
        publisher.state,
        HandlerState::Idle | HandlerState::Running
    ));
    app.shutdown().await.unwrap();
    consumer.shutdown().await;
    cleanup(&exchange, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_publishing_one_store_take_turns_and_every_event_lands_once() {
    let _ = broker().await;
    let (exchange, queue) = (unique("ex"), unique("q"));
    let db = Db::Postgres(fresh_schema());
    let read = db.pool().await;
    let consumer = read.consume(Consumer::new(
        amqp_url(),
        &exchange,
        Queue::new(&queue).bind("#"),
    ));
    let publisher = || Publisher::new(amqp_url(), &exchange).declare(Queue::new(&queue).bind("#"));
    // Two nodes on one PostgreSQL store, each with the publisher: one holds
    // the turn and publishes; when it shuts down, the other takes over from
    // the checkpoint.
    let (store_a, store_b) = (db.store().await, db.store().await);
    let options = || HandlerOptions::new().batch_size(20);
    let a = App::builder()
        .store(store_a.clone())
        .publisher_with(publisher(), options())
        .build()
        .unwrap();
    let b = App::builder()
        .store(store_b.clone())
        .publisher_with(publisher(), options())
        .build()
        .unwrap();
    for s in 0..4 {
        append(&store_a, &format!("Tally-{s}"), 1..=50).await;
    }
    eventually(LIMIT, "some events applied", || async {
        consumer.status().handled >= 100
    })
    .await;
    let publishing = |app: &App| {
        let app = app.clone();
        async move {
            let status = app.handler_status().await;
            status
                .iter()
                .any(|s| s.name == "rabbitmq-publisher" && s.handled > 0)
        }
    };
    let (a_published, b_published) = (publishing(&a).await, publishing(&b).await);
    assert!(a_published ^ b_published, "one node publishes at a time");
    // Shutting an app down closes its store: the other node writes on.
    let (first, second, store) = if a_published {
        (a, b, store_b)
    } else {
        (b, a, store_a)
    };
    first.shutdown().await.unwrap();
    for s in 0..4 {
        append(&store, &format!("Tally-{s}"), 51..=100).await;
    }
    eventually(LIMIT, "every event applied", || async {
        read.count().await >= 400
    })
    .await;
    assert!(publishing(&second).await, "the other node took over");
    assert_once(&read.rows().await, 400);
    second.shutdown().await.unwrap();
    consumer.shutdown().await;
    cleanup(&exchange, &[&queue]).await;
}
