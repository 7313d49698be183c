//! Snapshots: a cold load reads the newest snapshot and only the events after it.

use annals::prelude::*;
use annals::{AnyStore, Snapshot, StreamId};
use serde::{Deserialize, Serialize};

#[event]
pub enum TallyEvent {
    Added { n: u64 },
}

#[command(aggregate = Tally)]
pub struct Add {
    #[id]
    pub id: u32,
    pub n: u64,
}

#[aggregate(events = TallyEvent, snapshot_every = 4, snapshot_version = 2)]
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct Tally {
    sum: u64,
    seen: u64,
}

#[aggregate]
impl Tally {
    #[handle]
    fn add(&self, cmd: Add) -> TallyEvent {
        TallyEvent::Added { n: cmd.n }
    }

    #[apply]
    fn apply(&mut self, event: &TallyEvent) {
        match event {
            TallyEvent::Added { n } => {
                self.sum += n;
                self.seen += 1;
            }
        }
    }
}

async fn fill(store: &MemoryStore, id: u32, commands: u64) {
    let app = App::builder().store(store.clone()).build().unwrap();
    for n in 1..=commands {
        app.dispatch(Add { id, n }).await.unwrap();
    }
}

#[tokio::test]
async fn snapshots_are_taken_every_n_events_and_used_by_cold_loads() {
    let store = MemoryStore::new();
    fill(&store, 1, 10).await;
    let stream = StreamId::new("Tally-1");
    let snapshot = store
        .load_snapshot(&stream)
        .await
        .unwrap()
        .expect("a snapshot was taken");
    assert_eq!((snapshot.stream_version, snapshot.snapshot_version), (8, 2));

    // A new app (cold cache) must rebuild the same state from the snapshot plus the tail.
    let cold = App::builder().store(store.clone()).build().unwrap();
    let (tally, version) = cold.load::<Tally>(1).await.unwrap();
    assert_eq!((tally.sum, tally.seen, version), (55, 10, 10));

    // Prove the snapshot was used: make it say something the events do not.
    let forged = Snapshot {
        state: annals::Payload::from_json(r#"{"sum":1000,"seen":8}"#).unwrap(),
        ..snapshot
    };
    store.save_snapshot(forged).await.unwrap();
    let cold = App::builder()
        .store(AnyStore::new(store.clone()))
        .build()
        .unwrap();
    let (tally, _) = cold.load::<Tally>(1).await.unwrap();
    assert_eq!(
        tally.sum,
        1000 + 9 + 10,
        "state = snapshot + events 9 and 10 only"
    );
}

#[tokio::test]
async fn a_snapshot_of_another_version_or_unreadable_is_ignored() {
    let store = MemoryStore::new();
    fill(&store, 2, 5).await;
    let stream = StreamId::new("Tally-2");
    let taken = store.load_snapshot(&stream).await.unwrap().unwrap();
    let old = Snapshot {
        snapshot_version: 1,
        state: annals::Payload::from_json(r#"{"sum":1000,"seen":4}"#).unwrap(),
        ..taken.clone()
    };
    store.save_snapshot(old).await.unwrap();
    let cold = App::builder().store(store.clone()).build().unwrap();
    assert_eq!(
        cold.load::<Tally>(2).await.unwrap().0.sum,
        15,
        "old snapshot_version ignored: full replay"
    );

    let garbage = Snapshot {
        state: annals::Payload::from_json(r#"{"sum":"many"}"#).unwrap(),
        ..taken
    };
    store.save_snapshot(garbage).await.unwrap();
    let cold = App::builder().store(store.clone()).build().unwrap();
    assert_eq!(
        cold.load::<Tally>(2).await.unwrap().0.sum,
        15,
        "an undecodable snapshot is ignored"
    );
}

/// A snapshot that claims a version its stream never reached (a restored
/// backup, a hand-edited row) is ignored: loads report the stream's real
/// version and state, and the next command appends right after it, never
/// leaving a gap. On every store.
/// The warnings logged while it lives (on this thread), as "stream: message".
#[derive(Clone, Default)]
struct Warnings(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(String, String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.1 = format!("{value:?}"),
                    "stream" => self.0 = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut fields = Fields(String::new(), String::new());
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push(format!("{}: {}", fields.0, fields.1));
        }
    }
}

async fn a_snapshot_ahead_of_its_stream_is_ignored_on(store: impl Into<AnyStore>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let warnings = Warnings::default();
    let _logging =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    let store: AnyStore = store.into();
    let app = App::builder().store(store.clone()).build().unwrap();
    for n in 1..=3 {
        app.dispatch(Add { id: 3, n }).await.unwrap();
    }
    let stream = StreamId::new("Tally-3");
    store
        .save_snapshot(Snapshot {
            stream_id: stream.clone(),
            stream_version: 10,
            snapshot_version: 2,
            state: annals::Payload::from_json(r#"{"sum":1000,"seen":10}"#).unwrap(),
            taken_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let cold = App::builder().store(store.clone()).build().unwrap();
    let (tally, version) = cold.load::<Tally>(3).await.unwrap();
    assert_eq!((tally.sum, tally.seen, version), (6, 3, 3));
    // Ignored visibly, naming the stream.
    assert_eq!(
        *warnings.0.lock().unwrap(),
        ["Tally-3: ignoring a snapshot ahead of its stream; replaying the stream"]
    );
    let next = cold.dispatch(Add { id: 3, n: 4 }).await.unwrap();
    assert_eq!(next.version, 4, "appended right after the real head");
    let versions: Vec<u64> = store
        .read_stream(&stream, 1, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    let again = App::builder().store(store.clone()).build().unwrap();
    assert_eq!(again.load::<Tally>(3).await.unwrap().0.sum, 10);
}

#[tokio::test]
async fn a_snapshot_ahead_of_its_stream_is_ignored_in_memory() {
    a_snapshot_ahead_of_its_stream_is_ignored_on(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_snapshot_ahead_of_its_stream_is_ignored_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = annals::sqlite::SqliteStore::open(dir.path().join("s.db"))
        .await
        .unwrap();
    a_snapshot_ahead_of_its_stream_is_ignored_on(store).await;
}

#[tokio::test]
async fn a_snapshot_ahead_of_its_stream_is_ignored_on_postgres() {
    use annals_tests::conformance::StoreFactory;
    let factory = annals_tests::postgres::PostgresFactory;
    let store = factory.create().await;
    a_snapshot_ahead_of_its_stream_is_ignored_on(store.clone()).await;
    factory.dispose(store).await;
}
