//! Many `App`s on one database, all dispatching to one stream: what several
//! nodes (or processes) of one service do to a hot aggregate.
//!
//! Each `App` has its own cache (and, for the SQL stores, its own store
//! handle with its own connections, as a separate process would), so every
//! command may find its cached version stale and its append refused.

use annals::prelude::*;
use annals::{CommandContext, CommandOutcome, Middleware};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a hot counter records.
#[event]
pub enum HotEvent {
    /// The counter went up by `by`.
    Bumped {
        /// How much.
        by: u64,
    },
}

/// Raises a hot counter.
#[command(aggregate = HotCounter)]
pub struct Bump {
    /// The counter.
    #[id]
    pub counter: String,
    /// How much.
    pub by: u64,
}

/// A counter many writers raise at once.
#[aggregate(events = HotEvent)]
#[derive(Debug, Clone, Default)]
pub struct HotCounter {
    /// The sum of every bump.
    pub total: u64,
    /// How many bumps.
    pub bumps: u64,
}

#[aggregate]
impl HotCounter {
    #[handle]
    fn bump(&self, command: Bump) -> HotEvent {
        HotEvent::Bumped { by: command.by }
    }

    #[apply]
    fn apply(&mut self, event: &HotEvent) {
        match event {
            HotEvent::Bumped { by } => {
                self.total += by;
                self.bumps += 1;
            }
        }
    }
}

/// Counts what the apps' commands went through (a middleware on each app).
#[derive(Debug, Default)]
pub struct Tally {
    /// Handler runs beyond the first, over all commands.
    pub retries: AtomicU64,
    /// Appends refused for a version conflict, over all commands.
    pub conflicts: AtomicU64,
}

/// The middleware that feeds a [`Tally`].
pub struct Counting(pub Arc<Tally>);

impl Middleware for Counting {
    fn after(&self, _: &CommandContext<'_>, outcome: &CommandOutcome<'_>) {
        self.0.retries.fetch_add(
            u64::from(outcome.attempts().saturating_sub(1)),
            Ordering::Relaxed,
        );
        self.0
            .conflicts
            .fetch_add(u64::from(outcome.conflicts()), Ordering::Relaxed);
    }
}

/// An app on `store` with default settings, counting into `tally`.
pub fn app(store: impl Into<annals::AnyStore>, tally: &Arc<Tally>) -> App {
    App::builder()
        .store(store)
        .middleware(Counting(tally.clone()))
        .build()
        .expect("the registry is consistent")
}

/// What a run did.
#[derive(Debug)]
pub struct HotRun {
    /// Commands dispatched.
    pub commands: u64,
    /// Commands that came back `DispatchError::Conflict`.
    pub conflicts_returned: u64,
    /// Any other error, as text.
    pub errors: Vec<String>,
    /// Conflicts met and retried inside the apps (not returned).
    pub conflicts_met: u64,
    /// Handler runs beyond each command's first.
    pub retries: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl HotRun {
    /// Commands per second.
    pub fn rate(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
}

/// Every app dispatches `per_app` bumps of 1 to counter `counter`, one after
/// another, all apps at once.
pub async fn hot_stream(apps: &[App], tally: &Arc<Tally>, counter: &str, per_app: u64) -> HotRun {
    let started = Instant::now();
    let tasks: Vec<_> = apps
        .iter()
        .cloned()
        .map(|app| {
            let counter = counter.to_owned();
            tokio::spawn(async move {
                let (mut conflicts, mut errors) = (0, Vec::new());
                for _ in 0..per_app {
                    match app
                        .dispatch(Bump {
                            counter: counter.clone(),
                            by: 1,
                        })
                        .await
                    {
                        Ok(_) => {}
                        Err(DispatchError::Conflict { .. }) => conflicts += 1,
                        Err(other) => errors.push(format!("{other}: {:?}", other)),
                    }
                }
                (conflicts, errors)
            })
        })
        .collect();
    let mut run = HotRun {
        commands: per_app * apps.len() as u64,
        conflicts_returned: 0,
        errors: Vec::new(),
        conflicts_met: 0,
        retries: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        // A stalled run fails in bounded time rather than hanging the suite.
        let (conflicts, errors) = tokio::time::timeout(Duration::from_secs(300), task)
            .await
            .expect("the apps finish within 5 minutes")
            .expect("an app's task");
        run.conflicts_returned += conflicts;
        run.errors.extend(errors);
    }
    run.elapsed = started.elapsed();
    run.conflicts_met = tally.conflicts.load(Ordering::Relaxed);
    run.retries = tally.retries.load(Ordering::Relaxed);
    run
}
