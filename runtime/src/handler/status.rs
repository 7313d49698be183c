//! What each running handler is doing, for status pages, operators and
//! strongly consistent dispatch.

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::watch;

/// What a handler is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerState {
    /// Not started yet, or waiting for its turn (another node runs it).
    Starting,
    /// Handling stored events.
    Running,
    /// Caught up with the log, waiting for new events.
    Idle,
    /// Failed on an event and waiting to try it again.
    Retrying {
        /// The attempt that failed (1 for the first).
        attempt: u32,
    },
    /// Stopped at an event it failed on ([`ErrorPolicy::then_stop`](super::ErrorPolicy::then_stop));
    /// a restart tries that event again.
    Stopped,
    /// Shut down with the app.
    ShutDown,
}

/// A handler's error, as its status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerFailure {
    /// The position of the event it failed on.
    pub position: u64,
    /// The error and its sources, `": "`-separated.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One handler's status: see [`App::handler_status`](crate::App::handler_status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerStatus {
    /// Its durable name.
    pub name: &'static str,
    /// What it is doing.
    pub state: HandlerState,
    /// Every event up to this global position is handled (or not of
    /// interest to it).
    pub position: u64,
    /// The last position it saved as its checkpoint.
    pub checkpoint: u64,
    /// How many positions of the global log it is behind the newest event
    /// it knows of.
    pub lag: u64,
    /// Events handled since the app started.
    pub handled: u64,
    /// Events skipped after failing, since the app started.
    pub skipped: u64,
    /// The last failure, if any (kept after a later success).
    pub last_error: Option<HandlerFailure>,
}

/// The shared, live status of one handler.
#[derive(Debug)]
pub(crate) struct StatusCell {
    /// Waited for by strongly consistent dispatches.
    pub(crate) strong: bool,
    status: Mutex<HandlerStatus>,
    /// The handled position, for waiters (strong consistency).
    position: watch::Sender<u64>,
}

impl StatusCell {
    pub(crate) fn new(name: &'static str, strong: bool) -> Self {
        Self {
            strong,
            status: Mutex::new(HandlerStatus {
                name,
                state: HandlerState::Starting,
                position: 0,
                checkpoint: 0,
                lag: 0,
                handled: 0,
                skipped: 0,
                last_error: None,
            }),
            position: watch::channel(0).0,
        }
    }

    pub(crate) fn snapshot(&self) -> HandlerStatus {
        self.status.lock().clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut HandlerStatus)) {
        let mut status = self.status.lock();
        let state = status.state;
        f(&mut status);
        let (position, state_changed) = (status.position, status.state != state);
        drop(status);
        // Waiters wake when the position moves, and when the state changes
        // (a handler that stops will never reach their position).
        self.position.send_if_modified(|p| {
            let moved = *p != position;
            *p = position;
            moved || state_changed
        });
    }

    pub(crate) fn set_state(&self, state: HandlerState) {
        self.update(|s| s.state = state);
    }

    /// Waits until the handler has passed `position`; `false` if it stopped
    /// or shut down first.
    pub(crate) fn name(&self) -> &'static str {
        self.status.lock().name
    }

    pub(crate) async fn reached(&self, position: u64) -> bool {
        let mut rx = self.position.subscribe();
        loop {
            if *rx.borrow_and_update() >= position {
                return true;
            }
            if matches!(
                self.status.lock().state,
                HandlerState::Stopped | HandlerState::ShutDown
            ) {
                return false;
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    }
}
