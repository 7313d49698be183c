//! The seam around every dispatched command, as Commanded's router has:
//! `before` (validate, authorise, enrich metadata) and `after` (observe).

use crate::store::{Metadata, StreamId};
use futures::future::BoxFuture;
use std::any::Any;
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

/// An error a middleware refuses a command with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A step around every dispatched command, registered with
/// [`AppBuilder::middleware`](crate::AppBuilder::middleware).
///
/// `before` runs once per command, before its aggregate is loaded: it may
/// read the command, add metadata recorded with its events, or refuse it
/// (the caller gets [`DispatchError::Rejected`](crate::DispatchError::Rejected)
/// and nothing is written). `after` runs once per command with its outcome,
/// whatever it was, including a refusal by a middleware.
///
/// ```
/// use annals::prelude::*;
/// use annals::{CommandContext, CommandOutcome, Middleware};
/// use futures::future::BoxFuture;
///
/// /// Refuses commands without a `user` and counts the ones that went through.
/// #[derive(Default)]
/// struct RequireUser(std::sync::atomic::AtomicUsize);
///
/// impl Middleware for RequireUser {
///     fn before<'a>(
///         &'a self,
///         command: &'a mut CommandContext<'_>,
///     ) -> BoxFuture<'a, Result<(), annals::BoxError>> {
///         Box::pin(async move {
///             if command.metadata().custom.contains_key("user") {
///                 command.insert_metadata("checked", true);
///                 Ok(())
///             } else {
///                 Err(format!("`{}` needs a user", command.command_name()).into())
///             }
///         })
///     }
///
///     fn after(&self, _command: &CommandContext<'_>, outcome: &CommandOutcome<'_>) {
///         if outcome.is_ok() {
///             self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         }
///     }
/// }
/// # #[event] pub enum NoteEvent { Noted { text: String } }
/// # #[command(aggregate = Note)] pub struct Write { #[id] pub id: u32, pub text: String }
/// # #[aggregate(events = NoteEvent)] #[derive(Default)] pub struct Note;
/// # #[aggregate] impl Note {
/// #     #[handle] fn write(&self, c: Write) -> NoteEvent { NoteEvent::Noted { text: c.text } }
/// #     #[apply] fn apply(&mut self, e: &NoteEvent) { match e { NoteEvent::Noted { .. } => {} } }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let app = App::builder().store(MemoryStore::new()).middleware(RequireUser::default()).build()?;
/// let refused = app.dispatch(Write { id: 1, text: "hi".into() }).await.unwrap_err();
/// assert!(matches!(refused, DispatchError::Rejected { .. }));
/// let done = app
///     .dispatch_with(Write { id: 1, text: "hi".into() }, DispatchOptions::new().metadata("user", "ada"))
///     .await?;
/// assert_eq!(done.version, 1);
/// let recorded = app.store().read_all(1, 10).await?;
/// assert_eq!(recorded[0].metadata.custom["checked"], true);
/// # Ok(())
/// # }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Runs before the command; an error refuses it. Does nothing by default.
    fn before<'a>(
        &'a self,
        command: &'a mut CommandContext<'_>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        let _ = command;
        Box::pin(std::future::ready(Ok(())))
    }

    /// Observes the command's outcome. Does nothing by default.
    fn after(&self, command: &CommandContext<'_>, outcome: &CommandOutcome<'_>) {
        let _ = (command, outcome);
    }

    /// The middleware's name in errors and logs (default: its type's name).
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// The command a middleware sees: its names, ids, metadata and value.
pub struct CommandContext<'c> {
    pub(crate) command_name: &'static str,
    pub(crate) aggregate_type: &'static str,
    pub(crate) stream: StreamId,
    pub(crate) command_id: Uuid,
    pub(crate) metadata: Metadata,
    pub(crate) command: &'c (dyn Any + Send + Sync),
}

impl CommandContext<'_> {
    /// The command's name (`#[command(name = ..)]`, by default its type's).
    pub fn command_name(&self) -> &'static str {
        self.command_name
    }

    /// The aggregate type the command is for.
    pub fn aggregate_type(&self) -> &'static str {
        self.aggregate_type
    }

    /// The aggregate's stream.
    pub fn stream_id(&self) -> &StreamId {
        &self.stream
    }

    /// The command's id, recorded as the causation of its events by default.
    pub fn command_id(&self) -> Uuid {
        self.command_id
    }

    /// The metadata the command's events will be recorded with.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The metadata, to change (in `before`): correlation and causation ids
    /// and user keys.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Adds a user metadata key/value recorded with every event of the command.
    pub fn insert_metadata(&mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.metadata.custom.insert(key.into(), value.into());
    }

    /// The command itself, if it is a `C`.
    pub fn command<C: 'static>(&self) -> Option<&C> {
        self.command.downcast_ref()
    }
}

impl fmt::Debug for CommandContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandContext")
            .field("command", &self.command_name)
            .field("aggregate", &self.aggregate_type)
            .field("stream", &self.stream)
            .field("command_id", &self.command_id)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// What became of a command, in broad classes (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// Its events (possibly none) were recorded.
    Ok,
    /// The handler refused it with the domain's error.
    Domain,
    /// Other writers kept changing the stream until the attempts ran out.
    Conflict,
    /// A middleware refused it.
    Rejected,
    /// It was malformed: an invalid aggregate id, or a command id recorded before.
    Invalid,
    /// The store failed, or a stored event could not be loaded.
    Store,
    /// Anything else (an event that does not serialise, a missing service).
    Other,
}

impl OutcomeKind {
    /// A short lowercase name: `ok`, `domain`, `conflict`, `rejected`,
    /// `invalid`, `store` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Domain => "domain",
            Self::Conflict => "conflict",
            Self::Rejected => "rejected",
            Self::Invalid => "invalid",
            Self::Store => "store",
            Self::Other => "other",
        }
    }
}

/// What a middleware's `after` learns of a dispatched command.
#[derive(Debug)]
pub struct CommandOutcome<'a> {
    pub(crate) kind: OutcomeKind,
    pub(crate) error: Option<&'a (dyn std::error::Error + 'static)>,
    pub(crate) events: usize,
    pub(crate) version: u64,
    pub(crate) attempts: u32,
    pub(crate) conflicts: u32,
    pub(crate) elapsed: Duration,
}

impl CommandOutcome<'_> {
    /// Whether the command succeeded.
    pub fn is_ok(&self) -> bool {
        self.kind == OutcomeKind::Ok
    }

    /// What became of it.
    pub fn kind(&self) -> OutcomeKind {
        self.kind
    }

    /// Why it failed, if it did.
    pub fn error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error
    }

    /// How many events it recorded.
    pub fn events(&self) -> usize {
        self.events
    }

    /// The aggregate's version after it (as far as the app knows on failure).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many times its handler ran (1 unless it was retried).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How many of its appends met a version conflict.
    pub fn conflicts(&self) -> u32 {
        self.conflicts
    }

    /// How long the dispatch took, middleware included.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}
