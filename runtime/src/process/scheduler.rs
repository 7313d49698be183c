//! Commands dispatched later (process managers' timeouts), persisted as
//! events so that they survive restarts.
//!
//! A schedule is a `CommandScheduled` event in a stream of the category
//! `$schedule` (its id is the command's id); a dispatched one is followed by
//! `ScheduledCommandFired` with the same command id. The App's scheduler
//! (one per database at a time, through its turn lock, like a handler)
//! reads both from the start of the log (a filtered read of the `$schedule`
//! category), keeps what is still pending, and dispatches each command by
//! name and JSON fields when it is due, with the schedule's command id: a
//! command fired again after a crash is recognised by the App and not
//! carried out twice.

use crate::app::WeakApp;
use crate::store::{
    AnyStore, EventFilter, EventStore, ExpectedVersion, Metadata, NewEvent, Payload, RecordedEvent,
    StoreError, StreamId,
};
use crate::{DispatchOptions, JsonDispatchError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

const CATEGORY: &str = "$schedule";
const SCHEDULED: &str = "CommandScheduled";
const FIRED: &str = "ScheduledCommandFired";

/// The stream of one process instance's schedules.
pub(crate) fn stream(process: &str, instance: &str) -> StreamId {
    StreamId::new(format!("{CATEGORY}-{process}.{instance}"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Scheduled {
    command: String,
    fields: serde_json::Value,
    due: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Fired {
    command_id: Uuid,
    outcome: String,
}

/// Records that `command` is to be dispatched at `due`, caused by `cause`.
/// Scheduling one command id twice (a redelivered event) records it once.
pub(crate) async fn schedule(
    store: &dyn EventStore,
    stream: &StreamId,
    command_id: Uuid,
    command: &str,
    fields: serde_json::Value,
    due: DateTime<Utc>,
    cause: &RecordedEvent,
) -> Result<(), StoreError> {
    let body = Scheduled {
        command: command.to_owned(),
        fields,
        due,
    };
    let payload = Payload::from_serialize(&body).map_err(|e| StoreError::Backend(e.into()))?;
    let mut event = NewEvent::new(SCHEDULED, 1, payload).with_metadata(Metadata {
        correlation_id: cause.metadata.correlation_id,
        causation_id: Some(cause.event_id),
        custom: Default::default(),
    });
    event.event_id = command_id;
    match store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_) | Err(StoreError::DuplicateEventId { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A schedule not fired yet.
struct Pending {
    stream: StreamId,
    command: String,
    fields: serde_json::Value,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
}

/// Runs the scheduler until the app shuts down.
pub(crate) async fn run(store: AnyStore, app: WeakApp, mut stop: watch::Receiver<bool>) {
    let turn = crate::handler::runner::turn_stream("$scheduler");
    let filter = EventFilter::all().categories([CATEGORY]);
    'turn: loop {
        let lock = tokio::select! {
            lock = store.lock_turn(&turn) => lock,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(held) = lock else {
            if pause(&mut stop, Duration::from_millis(200)).await {
                continue;
            }
            return;
        };
        // Due time -> command id; command id -> what to dispatch.
        let mut due: BTreeMap<(DateTime<Utc>, Uuid), ()> = BTreeMap::new();
        let mut pending: BTreeMap<Uuid, Pending> = BTreeMap::new();
        let mut next = 1;
        let mut watch = store.watch_log();
        let mut checked = tokio::time::Instant::now();
        let mut lost = false;
        loop {
            if *stop.borrow() {
                return;
            }
            if lost || checked.elapsed() >= Duration::from_secs(1) {
                if !held.still_held().await {
                    tracing::warn!("the scheduler lost its turn; waiting for it again");
                    continue 'turn;
                }
                checked = tokio::time::Instant::now();
                lost = false;
            }
            watch.mark();
            let page = match store.read_all_filtered(next, 500, &filter).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "the scheduler cannot read the log; retrying");
                    if let Some(at) = e.corrupt_position() {
                        next = at + 1;
                    }
                    if !pause(&mut stop, Duration::from_millis(200)).await {
                        return;
                    }
                    continue;
                }
            };
            let advanced = page.next_position > next;
            next = page.next_position.max(next);
            for event in page.events {
                take(&event, &mut due, &mut pending);
            }
            // Fire what is due.
            let now = Utc::now();
            while let Some((&(at, id), ())) = due.first_key_value() {
                if at > now || *stop.borrow() {
                    break;
                }
                due.pop_first();
                if let Some(job) = pending.remove(&id) {
                    fire(&store, &app, id, job).await;
                }
            }
            if advanced {
                continue;
            }
            // Until the next command is due, something is appended, or the
            // turn is lost: nothing is read meanwhile.
            let sleep = due
                .first_key_value()
                .map(|(&(at, _), ())| (at - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = watch.changed() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.wait_for(|s| *s) => return,
                () = held.lost() => lost = true,
            }
        }
    }
}

/// Folds one `$schedule` event into what is pending.
fn take(
    event: &RecordedEvent,
    due: &mut BTreeMap<(DateTime<Utc>, Uuid), ()>,
    pending: &mut BTreeMap<Uuid, Pending>,
) {
    match event.event_type.as_ref() {
        SCHEDULED => match serde_json::from_str::<Scheduled>(event.payload.as_str()) {
            Ok(s) => {
                due.insert((s.due, event.event_id), ());
                pending.insert(
                    event.event_id,
                    Pending {
                        stream: event.stream_id.clone(),
                        command: s.command,
                        fields: s.fields,
                        correlation_id: event.metadata.correlation_id,
                        causation_id: event.metadata.causation_id,
                    },
                );
            }
            Err(e) => {
                tracing::error!(position = event.global_position, error = %e, "unreadable schedule skipped")
            }
        },
        FIRED => {
            if let Ok(f) = serde_json::from_str::<Fired>(event.payload.as_str()) {
                pending.remove(&f.command_id);
            }
        }
        _ => {}
    }
}

/// Dispatches a due command and records that it fired.
async fn fire(store: &AnyStore, app: &WeakApp, id: Uuid, job: Pending) {
    let Some(app) = app.upgrade() else { return };
    let mut options = DispatchOptions::new().command_id(id);
    if let Some(c) = job.correlation_id {
        options = options.correlation_id(c);
    }
    if let Some(c) = job.causation_id {
        options = options.causation_id(c);
    }
    let outcome = match app.dispatch_json(&job.command, job.fields, options).await {
        Ok(_) => "dispatched".to_owned(),
        Err(JsonDispatchError::Dispatch(crate::DispatchError::DuplicateCommand { .. })) => {
            "dispatched before".to_owned()
        }
        Err(e) => {
            let message = crate::handler::runner::chain(&e);
            tracing::warn!(command = %job.command, error = %message, "a scheduled command failed");
            format!("failed: {message}")
        }
    };
    tracing::debug!(command = %job.command, %outcome, "scheduled command fired");
    let body = Fired {
        command_id: id,
        outcome,
    };
    let Ok(payload) = Payload::from_serialize(&body) else {
        return;
    };
    let event = NewEvent::new(FIRED, 1, payload).with_metadata(Metadata {
        correlation_id: job.correlation_id,
        causation_id: Some(id),
        custom: Default::default(),
    });
    if let Err(e) = store
        .append(&job.stream, ExpectedVersion::Any, vec![event])
        .await
    {
        // Fired again after a restart: recognised by its command id.
        tracing::warn!(error = %e, "cannot record a fired command");
    }
}

/// Sleeps for `pause`; `false` if the app began shutting down meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    let slept = tokio::select! {
        _ = tokio::time::sleep(pause) => true,
        _ = stop.wait_for(|s| *s) => false,
    };
    slept && !*stop.borrow()
}
