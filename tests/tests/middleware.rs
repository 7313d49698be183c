//! Middleware runs around every command, on every entry point: `before` in
//! the order added (and may refuse or enrich), `after` with the outcome.

use annals::prelude::*;
use annals::{BoxError, CommandContext, CommandOutcome, Middleware, OutcomeKind};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};

#[event]
pub enum DoorEvent {
    Opened { by: String },
}

#[derive(Debug, thiserror::Error)]
#[error("the door is already open")]
pub struct AlreadyOpen;

#[command(aggregate = Door)]
pub struct OpenDoor {
    #[id]
    pub door: u32,
    pub by: String,
}

#[aggregate(events = DoorEvent)]
#[derive(Default)]
pub struct Door {
    open: bool,
}

#[aggregate]
impl Door {
    #[handle]
    fn open(&self, command: OpenDoor) -> Result<DoorEvent, AlreadyOpen> {
        if self.open {
            return Err(AlreadyOpen);
        }
        Ok(DoorEvent::Opened { by: command.by })
    }

    #[apply]
    fn apply(&mut self, event: &DoorEvent) {
        match event {
            DoorEvent::Opened { .. } => self.open = true,
        }
    }
}

type Log = Arc<Mutex<Vec<String>>>;

/// Logs what it sees; refuses commands by "mallory"; stamps a `checked_by`.
struct Guard {
    name: &'static str,
    log: Log,
}

impl Middleware for Guard {
    fn before<'a>(
        &'a self,
        command: &'a mut CommandContext<'_>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let by = command
                .command::<OpenDoor>()
                .map(|c| c.by.clone())
                .unwrap_or_default();
            self.log
                .lock()
                .unwrap()
                .push(format!("{} before {by}", self.name));
            if by == "mallory" {
                return Err("mallory may not open doors".into());
            }
            command.insert_metadata("checked_by", self.name);
            Ok(())
        })
    }

    fn after(&self, command: &CommandContext<'_>, outcome: &CommandOutcome<'_>) {
        self.log.lock().unwrap().push(format!(
            "{} after {} {} {:?} attempts={} events={}",
            self.name,
            command.command_name(),
            command.stream_id(),
            outcome.kind(),
            outcome.attempts(),
            outcome.events(),
        ));
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

fn app(store: &MemoryStore, log: &Log) -> App {
    App::builder()
        .store(store.clone())
        .middleware(Guard {
            name: "first",
            log: log.clone(),
        })
        .middleware(Guard {
            name: "second",
            log: log.clone(),
        })
        .build()
        .unwrap()
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test]
async fn middleware_runs_in_order_around_every_outcome() {
    let store = MemoryStore::new();
    let log = Log::default();
    let app = app(&store, &log);

    app.dispatch(OpenDoor {
        door: 1,
        by: "ada".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        take(&log),
        [
            "first before ada",
            "second before ada",
            "first after OpenDoor Door-1 Ok attempts=1 events=1",
            "second after OpenDoor Door-1 Ok attempts=1 events=1",
        ]
    );
    // The metadata `before` added is recorded with the event (the last write wins).
    let recorded = store.read_all(1, 10).await.unwrap();
    assert_eq!(recorded[0].metadata.custom["checked_by"], "second");

    let refused = app
        .dispatch(OpenDoor {
            door: 1,
            by: "ada".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(refused, DispatchError::Domain(AlreadyOpen)));
    assert_eq!(
        take(&log)[2],
        "first after OpenDoor Door-1 Domain attempts=1 events=0"
    );

    // A refusal by the first middleware: the second never sees the command
    // before, both see the outcome after, and nothing is written.
    match app
        .dispatch(OpenDoor {
            door: 2,
            by: "mallory".into(),
        })
        .await
        .unwrap_err()
    {
        DispatchError::Rejected { middleware, source } => {
            assert_eq!(middleware, "first");
            assert_eq!(source.to_string(), "mallory may not open doors");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(
        take(&log),
        [
            "first before mallory",
            "first after OpenDoor Door-2 Rejected attempts=0 events=0",
            "second after OpenDoor Door-2 Rejected attempts=0 events=0",
        ]
    );
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn json_commands_go_through_the_same_middleware() {
    let store = MemoryStore::new();
    let log = Log::default();
    let app = app(&store, &log);
    let refused = app
        .dispatch_json(
            "OpenDoor",
            serde_json::json!({ "door": 3, "by": "mallory" }),
            DispatchOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            annals::JsonDispatchError::Dispatch(DispatchError::Rejected { .. })
        ),
        "{refused:?}"
    );
    assert_eq!(take(&log).len(), 3);
    assert!(store.is_empty());
    assert_eq!(refused_kind(&refused), Some(OutcomeKind::Rejected));
}

fn refused_kind(error: &annals::JsonDispatchError) -> Option<OutcomeKind> {
    match error {
        annals::JsonDispatchError::Dispatch(e) => Some(e.kind()),
        _ => None,
    }
}
