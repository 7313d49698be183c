//! Commands to different aggregates run in parallel; to one aggregate, one at a time.

use annals::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

#[event]
pub enum DoorEvent {
    Passed,
}

/// Passing a door waits until the gate is opened (a slow service call).
#[command(aggregate = Door)]
pub struct WaitAndPass {
    #[id]
    pub door: u32,
}

/// Opens the gate, then passes.
#[command(aggregate = Door)]
pub struct OpenGate {
    #[id]
    pub door: u32,
}

pub struct Gate {
    open: Notify,
    inside: AtomicUsize,
    most_inside: AtomicUsize,
}

#[aggregate(events = DoorEvent)]
#[derive(Default, Clone)]
pub struct Door {
    passed: u32,
}

#[aggregate]
impl Door {
    #[handle]
    async fn wait_and_pass(&self, _cmd: WaitAndPass, gate: &Arc<Gate>) -> DoorEvent {
        gate.open.notified().await;
        DoorEvent::Passed
    }

    #[handle]
    async fn open_gate(&self, _cmd: OpenGate, gate: &Arc<Gate>) -> DoorEvent {
        let now = gate.inside.fetch_add(1, Ordering::SeqCst) + 1;
        gate.most_inside.fetch_max(now, Ordering::SeqCst);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        gate.inside.fetch_sub(1, Ordering::SeqCst);
        gate.open.notify_one();
        DoorEvent::Passed
    }

    #[apply]
    fn apply(&mut self, event: &DoorEvent) {
        match event {
            DoorEvent::Passed => self.passed += 1,
        }
    }
}

fn gate() -> Arc<Gate> {
    Arc::new(Gate {
        open: Notify::new(),
        inside: AtomicUsize::new(0),
        most_inside: AtomicUsize::new(0),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_command_does_not_hold_up_another_aggregate() {
    let gate = gate();
    let app = App::builder()
        .store(MemoryStore::new())
        .service(gate.clone())
        .build()
        .unwrap();
    // Door 1's handler is parked until door 2's command opens the gate:
    // if dispatch serialised all aggregates, this would never finish.
    let waiting = tokio::spawn({
        let app = app.clone();
        async move { app.dispatch(WaitAndPass { door: 1 }).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let opened = tokio::time::timeout(Duration::from_secs(5), app.dispatch(OpenGate { door: 2 }))
        .await
        .expect("door 2 was held up by door 1's pending command");
    opened.unwrap();
    let passed = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("door 1 finishes")
        .unwrap();
    assert_eq!(passed.unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_of_one_aggregate_never_overlap() {
    let gate = gate();
    let app = App::builder()
        .store(MemoryStore::new())
        .service(gate.clone())
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.dispatch(OpenGate { door: 7 }).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        gate.most_inside.load(Ordering::SeqCst),
        1,
        "two handlers of door 7 ran at once"
    );
    let (door, version) = app.load::<Door>(7).await.unwrap();
    assert_eq!((door.passed, version), (16, 16));
}
