use super::OutcomeKind;
use crate::aggregate::DecodeError;
use crate::store::{ExpectedVersion, InvalidStreamId, StoreError, StreamId};

/// Why a dispatched command did not produce events.
///
/// `E` is the handler's own domain error type, returned intact in
/// [`DispatchError::Domain`]; every other variant is infrastructure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError<E> {
    /// The handler rejected the command.
    #[error(transparent)]
    Domain(E),
    /// The stream was not at the version the command needed: other writers
    /// kept changing it and the App gave up after `attempts` tries, or it
    /// was not at the version the caller insisted on
    /// ([`DispatchOptions::expected_version`](crate::DispatchOptions::expected_version)).
    /// Nothing was written.
    #[error("stream `{stream}` was not at the expected version: expected {expected}, found {} (attempts: {attempts})", actual.map_or_else(|| "no stream".to_owned(), |v| format!("version {v}")))]
    Conflict {
        /// The aggregate's stream.
        stream: StreamId,
        /// The version the last attempt expected.
        expected: ExpectedVersion,
        /// The version found instead.
        actual: Option<u64>,
        /// How many times the command was tried.
        attempts: u32,
    },
    /// A stored event of the aggregate could not be decoded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An event the handler produced could not be serialised.
    #[error("event `{event_type}` could not be serialised")]
    Encode {
        /// The event's type name.
        event_type: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The handler takes a service the app was not built with.
    #[error(
        "handler `{handler}` for `{command}` needs service `{service}`: register it with `App::builder().service(..)`"
    )]
    MissingService {
        /// The service's type name.
        service: &'static str,
        /// The command's name.
        command: &'static str,
        /// The handler's name.
        handler: &'static str,
    },
    /// A command with this id was already recorded on this stream; nothing was written.
    #[error("command {command_id} was already recorded on stream `{stream}`")]
    DuplicateCommand {
        /// The command id given in the options.
        command_id: uuid::Uuid,
        /// The aggregate's stream.
        stream: StreamId,
    },
    /// The command's aggregate id cannot name a stream (empty, a NUL
    /// character, too long: see [`StreamId`]); nothing was read or written.
    #[error("command `{command}` names an aggregate id that cannot be stored")]
    InvalidId {
        /// The command's name.
        command: &'static str,
        /// What is wrong with the id.
        #[source]
        source: InvalidStreamId,
    },
    /// A middleware refused the command; nothing was written.
    #[error("middleware `{middleware}` refused the command")]
    Rejected {
        /// The middleware's name ([`Middleware::name`](crate::Middleware::name)).
        middleware: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store failed. If it failed during an append, whether the events
    /// were recorded is unknown; the aggregate is reloaded before its next command.
    #[error(transparent)]
    Store(StoreError),
    /// The command's events **were stored**, but an event handler the
    /// dispatch waited for ([`DispatchOptions::wait_for_handler`](crate::DispatchOptions::wait_for_handler),
    /// [`strongly_consistent`](crate::DispatchOptions::strongly_consistent))
    /// had not handled them when the dispatch returned. Do not dispatch the
    /// command again: read later, or wait with [`App::wait_for_handlers`](crate::App::wait_for_handlers).
    #[error(
        "the command's events were stored (stream `{stream}` version {version}, global position {position}), but handler `{handler}` {reason}"
    )]
    NotConsistent {
        /// The aggregate's stream.
        stream: StreamId,
        /// The stream version after the command.
        version: u64,
        /// The global position of the command's last event.
        position: u64,
        /// The handler that had not caught up.
        handler: String,
        /// Why it had not.
        reason: crate::handler::Lagging,
    },
}

impl<E> DispatchError<E> {
    /// The domain error, if the handler rejected the command.
    pub fn domain(&self) -> Option<&E> {
        match self {
            Self::Domain(e) => Some(e),
            _ => None,
        }
    }

    /// What became of the command, in broad classes.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Self::Domain(_) => OutcomeKind::Domain,
            Self::Conflict { .. } => OutcomeKind::Conflict,
            Self::Rejected { .. } => OutcomeKind::Rejected,
            Self::InvalidId { .. } | Self::DuplicateCommand { .. } => OutcomeKind::Invalid,
            Self::Load(_) | Self::Store(_) => OutcomeKind::Store,
            Self::Encode { .. } | Self::MissingService { .. } | Self::NotConsistent { .. } => {
                OutcomeKind::Other
            }
        }
    }

    /// Converts the domain error, keeping every other variant.
    pub fn map_domain<F>(self, f: impl FnOnce(E) -> F) -> DispatchError<F> {
        match self {
            Self::Domain(e) => DispatchError::Domain(f(e)),
            Self::Conflict {
                stream,
                expected,
                actual,
                attempts,
            } => DispatchError::Conflict {
                stream,
                expected,
                actual,
                attempts,
            },
            Self::Load(e) => DispatchError::Load(e),
            Self::Encode { event_type, source } => DispatchError::Encode { event_type, source },
            Self::MissingService {
                service,
                command,
                handler,
            } => DispatchError::MissingService {
                service,
                command,
                handler,
            },
            Self::DuplicateCommand { command_id, stream } => {
                DispatchError::DuplicateCommand { command_id, stream }
            }
            Self::InvalidId { command, source } => DispatchError::InvalidId { command, source },
            Self::Rejected { middleware, source } => DispatchError::Rejected { middleware, source },
            Self::Store(e) => DispatchError::Store(e),
            Self::NotConsistent {
                stream,
                version,
                position,
                handler,
                reason,
            } => DispatchError::NotConsistent {
                stream,
                version,
                position,
                handler,
                reason,
            },
        }
    }
}

/// An aggregate's stored history could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A stored event does not decode into the aggregate's event type.
    #[error(
        "stream `{stream}` version {version} (global position {position}): cannot decode `{event_type}` v{event_version}"
    )]
    Decode {
        /// The stream.
        stream: StreamId,
        /// The event's stream version.
        version: u64,
        /// The event's global position.
        position: u64,
        /// The stored type name.
        event_type: String,
        /// The stored type version.
        event_version: u32,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// The store returned events out of order or with gaps.
    #[error("stream `{stream}` is inconsistent: expected version {expected}, read version {found}")]
    Gap {
        /// The stream.
        stream: StreamId,
        /// The version expected next.
        expected: u64,
        /// The version read.
        found: u64,
    },
    /// The aggregate id cannot name a stream; nothing was read.
    #[error(transparent)]
    InvalidId(#[from] InvalidStreamId),
    /// The store failed while reading.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E> From<StoreError> for DispatchError<E> {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The app could not be built from its registry and settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `App::builder()` was not given a store.
    #[error("no event store configured: call `App::builder().store(..)`")]
    NoStore,
    /// Two command types registered the same command name.
    #[error(
        "command name `{name}` is registered twice: by `{first}` and by `{second}`; give one `#[command(name = \"...\")]`"
    )]
    DuplicateCommand {
        /// The shared name.
        name: &'static str,
        /// The first handler (`Aggregate::handler`).
        first: String,
        /// The second.
        second: String,
    },
    /// An aggregate type name cannot prefix stream names (empty, or with
    /// `-`, whitespace or a NUL).
    #[error("aggregate `{rust_type}` has a type name that cannot name streams")]
    InvalidAggregateName {
        /// The Rust type.
        rust_type: &'static str,
        /// What is wrong with the name.
        #[source]
        source: InvalidStreamId,
    },
    /// Two event handlers share one durable name (their checkpoint's key).
    #[error(
        "event handler name `{name}` is used twice: by `{first}` and by `{second}`; give one `#[event_handler(name = \"...\")]`"
    )]
    DuplicateHandler {
        /// The shared name.
        name: &'static str,
        /// The first handler's Rust type.
        first: &'static str,
        /// The second handler's Rust type.
        second: &'static str,
    },
    /// Two upcasters are registered for one stored `(type, version)`.
    #[error(
        "two upcasters take `{event_type}` version {event_version}: `{first}` and `{second}`; keep one"
    )]
    DuplicateUpcaster {
        /// The stored type name.
        event_type: &'static str,
        /// The stored version.
        event_version: u32,
        /// One upcaster's function path.
        first: &'static str,
        /// The other's.
        second: &'static str,
    },
    /// An event type that the app reads (an aggregate's, or one its
    /// handlers, projections or process managers handle) is at version
    /// `current`, and neither declares nor upcasts the older version
    /// `missing_from`: a stored event of that version could not be read.
    #[error(
        "`{event_type}` is at version {current} but no upcaster takes version {missing_from}: add `#[upcaster(from = \"{event_type}\", version = {missing_from})]`"
    )]
    UpcasterGap {
        /// The type name.
        event_type: &'static str,
        /// The version with no step.
        missing_from: u32,
        /// The version the event type declares.
        current: u32,
    },
    /// A RabbitMQ publisher cannot publish as configured (its exchange's
    /// name is longer than AMQP allows).
    #[cfg(feature = "rabbitmq")]
    #[error("RabbitMQ publisher `{name}` is misconfigured")]
    Publisher {
        /// The publisher's name.
        name: &'static str,
        /// What is wrong.
        #[source]
        source: crate::rabbitmq::RabbitError,
    },
    /// Event handlers were registered, but the app was built outside a
    /// tokio runtime, where they cannot run.
    #[error(
        "event handlers need a tokio runtime: build the app inside one (e.g. in `#[tokio::main]`)"
    )]
    NoRuntime,
    /// Two aggregate types registered the same type name.
    #[error(
        "aggregate type name `{name}` is registered twice: by `{first}` and by `{second}`; give one `#[aggregate(name = \"...\")]`"
    )]
    DuplicateAggregate {
        /// The shared name.
        name: &'static str,
        /// The first Rust type.
        first: &'static str,
        /// The second Rust type.
        second: &'static str,
    },
}

/// A JSON command could not be dispatched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonDispatchError {
    /// No registered command has this name.
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    /// The JSON does not match the command's fields.
    #[error("malformed `{command}` command")]
    Malformed {
        /// The command's name.
        command: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The command was dispatched and failed.
    #[error(transparent)]
    Dispatch(DispatchError<AnyDomainError>),
}

/// A domain error whose type is known only at run time (from [`App::dispatch_json`](crate::App::dispatch_json)).
#[derive(Debug)]
pub struct AnyDomainError(Box<dyn std::error::Error + Send + Sync>);

impl AnyDomainError {
    /// Wraps a domain error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }

    /// The error as its concrete type, if it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Display for AnyDomainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for AnyDomainError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
