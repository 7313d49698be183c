//! What a caller gives a command besides the command, and what it gets back.

use crate::aggregate::Aggregate;
use crate::store::StreamId;
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// Per-command options: ids and metadata recorded with the events.
///
/// ```
/// use annals::DispatchOptions;
/// let options = DispatchOptions::new()
///     .correlation_id(uuid::Uuid::now_v7())
///     .metadata("user", "alice");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct DispatchOptions {
    pub(crate) command_id: Option<Uuid>,
    pub(crate) correlation_id: Option<Uuid>,
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) custom: BTreeMap<String, serde_json::Value>,
    /// The aggregate's version the caller decided on, if it insists on it.
    pub(crate) expected_version: Option<u64>,
    /// Boxed: most commands wait for no handler, and this is moved with
    /// every dispatch future.
    pub(crate) consistency: Option<Box<Consistency>>,
}

/// Which handlers a dispatch waits for, and how long.
#[derive(Debug, Clone)]
pub(crate) struct Consistency {
    /// Every handler registered as strongly consistent.
    pub(crate) strong: bool,
    /// These handlers, by name.
    pub(crate) handlers: Vec<String>,
    pub(crate) timeout: std::time::Duration,
}

impl Default for Consistency {
    fn default() -> Self {
        Self {
            strong: false,
            handlers: Vec::new(),
            timeout: std::time::Duration::from_secs(5),
        }
    }
}

impl DispatchOptions {
    /// Default options: a fresh command id, which is also the correlation and causation id.
    pub fn new() -> Self {
        Self::default()
    }

    /// The command's id (default: a fresh uuid v7).
    ///
    /// Give one to make retries safe: the command's event ids are then derived
    /// from it, so dispatching the same command id again records nothing and
    /// fails with [`DispatchError::DuplicateCommand`](crate::DispatchError::DuplicateCommand)
    /// (e.g. a client retrying after a timeout learns the first attempt went through).
    pub fn command_id(mut self, id: Uuid) -> Self {
        self.command_id = Some(id);
        self
    }

    /// The correlation id (default: the command id).
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// The causation id (default: the command id).
    pub fn causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Returns only after every handler registered as strongly consistent
    /// ([`HandlerOptions::strongly_consistent`](crate::handler::HandlerOptions::strongly_consistent))
    /// has handled the command's events, so that a read right after the
    /// dispatch sees them. Past the [timeout](Self::consistency_timeout):
    /// [`DispatchError::NotConsistent`](crate::DispatchError::NotConsistent),
    /// which says the events were stored.
    pub fn strongly_consistent(mut self) -> Self {
        self.consistency.get_or_insert_default().strong = true;
        self
    }

    /// Returns only after the handler named `name` has handled the
    /// command's events (see [`strongly_consistent`](Self::strongly_consistent)).
    pub fn wait_for_handler(mut self, name: impl Into<String>) -> Self {
        self.consistency
            .get_or_insert_default()
            .handlers
            .push(name.into());
        self
    }

    /// How long a strongly consistent dispatch waits for its handlers
    /// (default 5 s).
    pub fn consistency_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.consistency.get_or_insert_default().timeout = timeout;
        self
    }

    /// Runs the command only if the aggregate is at `version` (`0`: not
    /// created yet), the version the caller last read: optimistic
    /// concurrency for a caller that decided on what it saw (an HTTP
    /// client's `If-Match`). Otherwise nothing is written and the dispatch
    /// fails with [`DispatchError::Conflict`](crate::DispatchError::Conflict),
    /// whose `expected` is this version and `actual` the aggregate's.
    ///
    /// Checked against the store, not only the cache: another node's newer
    /// events are a conflict too. The App's own retries after a concurrent
    /// append then end in that conflict instead of deciding again.
    ///
    /// ```
    /// # use annals::prelude::*;
    /// # #[event] pub enum ScoreEvent { Scored { n: u64 } }
    /// # #[command(aggregate = Score)] pub struct AddPoints { #[id] pub id: u8, pub n: u64 }
    /// # #[aggregate(events = ScoreEvent)] #[derive(Default)] pub struct Score { sum: u64 }
    /// # #[aggregate] impl Score {
    /// #     #[handle] fn add(&self, c: AddPoints) -> ScoreEvent { ScoreEvent::Scored { n: c.n } }
    /// #     #[apply] fn apply(&mut self, e: &ScoreEvent) { match e { ScoreEvent::Scored { n } => self.sum += n } }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = App::builder().store(MemoryStore::new()).build()?;
    /// app.dispatch(AddPoints { id: 1, n: 2 }).await?;
    /// let stale = app
    ///     .dispatch_with(AddPoints { id: 1, n: 3 }, DispatchOptions::new().expected_version(0))
    ///     .await;
    /// assert!(matches!(
    ///     stale,
    ///     Err(DispatchError::Conflict { expected: annals::ExpectedVersion::NoStream, actual: Some(1), .. })
    /// ));
    /// app.dispatch_with(AddPoints { id: 1, n: 3 }, DispatchOptions::new().expected_version(1)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn expected_version(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// A user metadata key/value recorded with every event.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.custom.insert(key.into(), value.into());
        self
    }
}

/// What a dispatched command did.
#[derive(Clone)]
pub struct Dispatched<A: Aggregate> {
    /// The events recorded, in order (empty if the handler returned none).
    pub events: Vec<A::Event>,
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream version after the command.
    pub version: u64,
    /// Global positions of the first and last recorded event, if any.
    pub positions: Option<(u64, u64)>,
    /// The command id recorded as causation.
    pub command_id: Uuid,
    /// The correlation id recorded with the events.
    pub correlation_id: Uuid,
}

impl<A: Aggregate> fmt::Debug for Dispatched<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatched")
            .field("events", &self.events)
            .field("stream_id", &self.stream_id)
            .field("version", &self.version)
            .field("positions", &self.positions)
            .field("command_id", &self.command_id)
            .field("correlation_id", &self.correlation_id)
            .finish()
    }
}
