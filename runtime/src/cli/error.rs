//! What can go wrong in an operator command, and the exit status it gives.

use crate::app::{AnyDomainError, BoxError, DispatchError, JsonDispatchError};
use crate::handler::RebuildError;
use crate::store::StoreError;
use std::time::Duration;

/// How an operator command ended, as the process's exit status: scripts
/// tell a refusal from a failure, and a failure worth retrying from one
/// that is not.
///
/// | code | meaning |
/// |---|---|
/// | 0 | done |
/// | 1 | failed: the store, the app or the output failed (the message says why) |
/// | 2 | usage: bad arguments, an unknown command or handler, fields that are not JSON or do not make the command (clap's own usage errors exit 2 too) |
/// | 3 | refused: the domain refused the command, a middleware rejected it, or its command id was already recorded; nothing was written |
/// | 4 | try again: a version conflict that outlasted the retries, the store unavailable, a handler whose turn another process holds |
/// | 5 | unhealthy: `status` found a handler stopped at, or retrying, an event it fails on |
///
/// ```
/// use annals::cli::Exit;
/// assert_eq!(Exit::Refused.code(), 3);
/// let _: std::process::ExitCode = Exit::Unhealthy.into();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exit {
    /// 0: the command did what it was asked.
    Success,
    /// 1: the store, the app or the output failed.
    Failed,
    /// 2: the command line (or what it names) is wrong.
    Usage,
    /// 3: the command was refused; nothing was written.
    Refused,
    /// 4: a temporary condition; the same command may succeed later.
    TryAgain,
    /// 5: `status` found a handler stopped or failing.
    Unhealthy,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failed => 1,
            Self::Usage => 2,
            Self::Refused => 3,
            Self::TryAgain => 4,
            Self::Unhealthy => 5,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

/// Why an operator command failed; [`exit`](Self::exit) is its exit status.
/// `Display` says what happened, `source()` why (print the chain).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The app's [`Setup::open_store`](super::Setup::open_store) failed.
    #[error("cannot open the event store")]
    Open(#[source] BoxError),
    /// The app's [`Setup::build_app`](super::Setup::build_app) failed.
    #[error("cannot build the app")]
    Build(#[source] BoxError),
    /// An operation of the event store failed.
    #[error("the event store failed")]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
    /// A category named on the command line cannot be one.
    #[error("`{0}` is not a category: a category is the part of a stream id before its first `-`")]
    BadCategory(String),
    /// No command of this name is registered in the app.
    #[error("unknown command `{name}`; the app's commands are: {}", known.join(", "))]
    UnknownCommand {
        /// The name given.
        name: String,
        /// The registered command names, sorted.
        known: Vec<&'static str>,
    },
    /// No handler or projection of this name runs in the app.
    #[error("no handler or projection `{name}` runs in this app; its handlers are: {}", known.join(", "))]
    UnknownHandler {
        /// The name given.
        name: String,
        /// The app's handler names, in registration order.
        known: Vec<&'static str>,
    },
    /// The fields given for a command are not JSON.
    #[error("the fields given for `{command}` are not JSON")]
    FieldsNotJson {
        /// The command's name.
        command: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The fields could not be read from standard input (`-`).
    #[error("cannot read the fields of `{command}` from standard input")]
    Stdin {
        /// The command's name.
        command: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The fields do not make the command (a missing or mistyped field).
    #[error("the fields given do not make a `{command}` command")]
    Malformed {
        /// The command's name.
        command: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The domain refused the command; nothing was written.
    #[error("`{command}` was refused")]
    Refused {
        /// The command's name.
        command: String,
        /// The domain's error.
        #[source]
        source: AnyDomainError,
    },
    /// The command was dispatched and failed otherwise.
    #[error("`{command}` failed")]
    Dispatch {
        /// The command's name.
        command: String,
        /// What failed.
        #[source]
        source: Box<DispatchError<AnyDomainError>>,
    },
    /// Another process runs the handler (it holds the handler's turn), so
    /// it cannot be rebuilt here.
    #[error(
        "handler `{name}` runs in another process, which holds its turn (waited {waited:?}): \
         stop that process, or try again once it has stopped"
    )]
    Elsewhere {
        /// The handler.
        name: String,
        /// How long this process waited for the turn.
        waited: Duration,
    },
    /// The rebuild could not start.
    #[error("cannot rebuild `{name}`")]
    Rebuild {
        /// The handler.
        name: String,
        /// Why.
        #[source]
        source: RebuildError,
    },
    /// The handler stopped at an event it failed on while replaying.
    #[error("`{name}` stopped at position {position} while rebuilding")]
    RebuildStopped {
        /// The handler.
        name: String,
        /// The position of the event it stopped at.
        position: u64,
        /// Its failure, as its status reports it.
        #[source]
        cause: BoxError,
    },
    /// `status` found handlers stopped at, or retrying, an event they fail on.
    #[error("handlers failing: {}", .0.join(", "))]
    Unhealthy(Vec<&'static str>),
}

impl CliError {
    /// The exit status this error gives.
    pub fn exit(&self) -> Exit {
        match self {
            Self::Store(e) => store_exit(e),
            Self::BadCategory(_)
            | Self::UnknownCommand { .. }
            | Self::UnknownHandler { .. }
            | Self::FieldsNotJson { .. }
            | Self::Malformed { .. } => Exit::Usage,
            Self::Refused { .. } => Exit::Refused,
            Self::Dispatch { source, .. } => match &**source {
                DispatchError::Rejected { .. } | DispatchError::DuplicateCommand { .. } => {
                    Exit::Refused
                }
                DispatchError::InvalidId { .. } => Exit::Usage,
                DispatchError::Conflict { .. } => Exit::TryAgain,
                DispatchError::Store(e) | DispatchError::Load(crate::LoadError::Store(e)) => {
                    store_exit(e)
                }
                _ => Exit::Failed,
            },
            Self::Elsewhere { .. } => Exit::TryAgain,
            Self::Unhealthy(_) => Exit::Unhealthy,
            Self::Open(_)
            | Self::Build(_)
            | Self::Output(_)
            | Self::Stdin { .. }
            | Self::Rebuild { .. }
            | Self::RebuildStopped { .. } => Exit::Failed,
        }
    }

    /// Sorts a failed JSON dispatch of `command` into refusals, bad
    /// fields and failures.
    pub(crate) fn dispatch(command: &str, error: JsonDispatchError) -> Self {
        match error {
            JsonDispatchError::UnknownCommand(name) => Self::UnknownCommand {
                name,
                known: Vec::new(),
            },
            JsonDispatchError::Malformed { command, source } => Self::Malformed { command, source },
            JsonDispatchError::Dispatch(DispatchError::Domain(source)) => Self::Refused {
                command: command.to_owned(),
                source,
            },
            JsonDispatchError::Dispatch(source) => Self::Dispatch {
                command: command.to_owned(),
                source: Box::new(source),
            },
        }
    }
}

fn store_exit(e: &StoreError) -> Exit {
    match e {
        StoreError::Unavailable(_) | StoreError::WrongExpectedVersion { .. } => Exit::TryAgain,
        StoreError::StreamLocked { .. } => Exit::TryAgain,
        StoreError::InvalidStreamId(_) => Exit::Usage,
        _ => Exit::Failed,
    }
}

/// An error and its sources, `": "`-separated: how a command's error is
/// printed.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
