//! How PostgreSQL failures become [`StoreError`]s: which kind they are, and a
//! cause chain that says each thing once (sqlx's own messages repeat their
//! source, so the store reports the source itself).

use crate::StoreError;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

type Source = Arc<dyn Error + Send + Sync>;

/// A connection to PostgreSQL could not be opened.
///
/// `Display` says where (`host:port` or the Unix socket, never the
/// password); [`source`](Error::source) says why: for a server that cannot be
/// reached, the I/O error (such as "Connection refused"), for one that
/// refused the login, the server's message. It is the source of the
/// [`StoreError::Unavailable`] (or, for a refused login,
/// [`StoreError::Backend`]) that an operation needing a new connection fails
/// with.
///
/// ```no_run
/// # async fn run() {
/// use annals::postgres::{ConnectError, PostgresStore};
/// use std::error::Error as _;
///
/// let err = PostgresStore::connect("postgres://app:secret@127.0.0.1:5433/app")
///     .await
///     .unwrap_err();
/// let connect = err.source().and_then(|s| s.downcast_ref::<ConnectError>()).unwrap();
/// assert_eq!(connect.to_string(), "cannot connect to PostgreSQL at 127.0.0.1:5433");
/// assert_eq!(connect.address(), "127.0.0.1:5433");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ConnectError {
    address: String,
    source: Source,
    /// Whether retrying later may succeed (the server is down or busy), as
    /// opposed to a refused login or database.
    unavailable: bool,
}

impl ConnectError {
    /// The server's address as configured: `host:port`, or the Unix socket's path.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The error an operation that needed this connection fails with.
    pub(super) fn to_store_error(&self) -> StoreError {
        if self.unavailable {
            StoreError::Unavailable(Box::new(self.clone()))
        } else {
            StoreError::Backend(Box::new(self.clone()))
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot connect to PostgreSQL at {}", self.address)
    }
}

impl Error for ConnectError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// No connection of the store's pool became free in time, while the server
/// did accept a new one: the pool was exhausted.
#[derive(Debug)]
pub(super) struct PoolExhausted {
    pub(super) address: String,
    pub(super) waited: Duration,
    pub(super) size: u32,
}

impl fmt::Display for PoolExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no connection to PostgreSQL at {} became free within {:?} (all {} of the pool's connections were in use)",
            self.address, self.waited, self.size
        )
    }
}

impl Error for PoolExhausted {}

/// `host:port` or the Unix socket that `options` connect to; no credentials.
pub(super) fn server_address(options: &PgConnectOptions) -> String {
    let host = options.get_host();
    let port = options.get_port();
    if let Some(dir) = options.get_socket() {
        format!("{}/.s.PGSQL.{port}", dir.display())
    } else if host.starts_with('/') {
        format!("{host}/.s.PGSQL.{port}")
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Opens one connection, giving up after `timeout`.
pub(super) async fn connect(
    options: &PgConnectOptions,
    address: &str,
    timeout: Duration,
) -> Result<PgConnection, ConnectError> {
    let failed = |source: Source, unavailable| ConnectError {
        address: address.to_owned(),
        source,
        unavailable,
    };
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => {
            let unavailable = matches!(classify_error(&e), ErrorClass::Unavailable);
            Err(failed(Arc::from(cause(e)), unavailable))
        }
        Err(_) => Err(failed(
            Arc::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?}"),
            )),
            true,
        )),
    }
}

/// What kind of failure a sqlx error is.
#[derive(Debug, Clone, Copy)]
pub(super) enum ErrorClass {
    /// A refused, lost or exhausted connection: retry once the server is back.
    Unavailable,
    Config,
    Backend,
}

pub(super) fn classify_error(error: &sqlx::Error) -> ErrorClass {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorClass::Unavailable,
        sqlx::Error::Configuration(_) => ErrorClass::Config,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // 08: connection exception; 57P01-57P05: shutdown, terminated,
            // cannot connect now; 53300: too many connections.
            if code.starts_with("08") || code.starts_with("57P") || code == "53300" {
                ErrorClass::Unavailable
            } else {
                ErrorClass::Backend
            }
        }
        _ => ErrorClass::Backend,
    }
}

/// The error to report as the cause of `error`: for the kinds whose sqlx
/// message only repeats an inner error, that inner error.
pub(super) fn cause(error: sqlx::Error) -> Box<dyn Error + Send + Sync> {
    match error {
        sqlx::Error::Io(e) => Box::new(e),
        sqlx::Error::Tls(e) => e,
        sqlx::Error::Database(e) => e,
        other => Box::new(other),
    }
}

/// Classifies a sqlx error: lost or refused connections are `Unavailable`.
pub(super) fn map_err(error: sqlx::Error) -> StoreError {
    match classify_error(&error) {
        ErrorClass::Unavailable => StoreError::Unavailable(cause(error)),
        ErrorClass::Config => StoreError::Config(error.to_string()),
        ErrorClass::Backend => StoreError::Backend(cause(error)),
    }
}
