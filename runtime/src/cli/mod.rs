//! Operator commands (feature `cli`): `migrate`, `streams`, `tail`,
//! `rebuild`, `status` and `dispatch`, a [`clap`] command set any Annals
//! app embeds in its own command line, as Commanded's and EventStore's mix
//! tasks serve an Elixir app.
//!
//! - [`Command`] is a [`clap::Subcommand`]: flatten it into the app's own
//!   subcommands (`#[command(flatten)]`, so `bank migrate`, `bank status`,
//!   ...) or nest it under one (`bank ops status`).
//! - [`Setup`] tells the commands how to open the app's store and build its
//!   [`App`]: `migrate`, `streams` and `tail` only open the store; `rebuild`,
//!   `status` and `dispatch` build the app. An [`App`] is a `Setup` itself.
//! - [`execute`] runs a command on standard output and error and returns the
//!   process's [`ExitCode`](std::process::ExitCode) (see [`Exit`] for what
//!   each code means); [`run`] writes to any [`Console`] and returns a typed
//!   [`CliError`].
//!
//! Results go to the output, one line per stream or event, stable and
//! readable; every command takes `--json` to print JSON instead (one object
//! per line). Progress and notes go to the error stream: a rebuild, and the
//! handlers `status` waits for, show progress bars ([`indicatif`]) when it is
//! a terminal, and a plain line a second otherwise.
//!
//! The commands that build the app run it as one more node of it: its
//! handlers, projections and process managers start as they do in any
//! process of the app, each taking its turn among the processes sharing the
//! database (where the app's server runs, they wait for their turns there),
//! and the app is shut down, at a checkpoint, when the command ends.
//!
//! ```
//! use annals::cli::{self, Console, Exit, Setup};
//! use annals::prelude::*;
//! use annals::{AnyStore, BoxError};
//! use clap::Parser;
//!
//! #[event]
//! pub enum PiggyEvent { Saved { cents: u64 } }
//!
//! #[command(aggregate = Piggy)]
//! pub struct Save { #[id] pub piggy: String, pub cents: u64 }
//!
//! #[aggregate(events = PiggyEvent)]
//! #[derive(Default)]
//! pub struct Piggy;
//!
//! #[aggregate]
//! impl Piggy {
//!     #[handle]
//!     fn save(&self, save: Save) -> PiggyEvent { PiggyEvent::Saved { cents: save.cents } }
//!     #[apply]
//!     fn apply(&mut self, _: &PiggyEvent) {}
//! }
//!
//! /// The app's own command line: its commands beside the operator's.
//! #[derive(Parser)]
//! #[command(name = "piggies")]
//! enum Piggies {
//!     /// Serve the app (not shown here).
//!     Serve,
//!     #[command(flatten)]
//!     Ops(cli::Command),
//! }
//!
//! /// How the operator commands open the store and build the app.
//! struct PiggiesSetup { store: MemoryStore }
//!
//! impl Setup for PiggiesSetup {
//!     async fn open_store(&self, _migrate: bool) -> Result<AnyStore, BoxError> {
//!         Ok(AnyStore::new(self.store.clone()))
//!     }
//!     async fn build_app(&self, store: AnyStore) -> Result<App, BoxError> {
//!         Ok(App::builder().store(store).build()?)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let setup = PiggiesSetup { store: MemoryStore::new() };
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! for line in [
//!     &["piggies", "dispatch", "Save", r#"{"piggy": "p-1", "cents": 50}"#][..],
//!     &["piggies", "streams"],
//! ] {
//!     let Piggies::Ops(command) = Piggies::parse_from(line) else { unreachable!() };
//!     cli::run(&setup, command, &mut Console::new(&mut out, &mut err)).await.unwrap();
//! }
//! let printed = String::from_utf8(out).unwrap();
//! assert!(printed.contains("recorded 1 event on Piggy-p-1"), "{printed}");
//! assert!(printed.lines().last().unwrap().starts_with("Piggy-p-1 "), "{printed}");
//!
//! // A command the app does not know: a usage error, exit status 2.
//! let Piggies::Ops(command) = Piggies::parse_from(["piggies", "dispatch", "Sav", "{}"]) else { unreachable!() };
//! let error = cli::run(&setup, command, &mut Console::new(&mut Vec::new(), &mut Vec::new()))
//!     .await
//!     .unwrap_err();
//! assert_eq!(error.exit(), Exit::Usage);
//! assert!(error.to_string().starts_with("unknown command `Sav`; the app's commands are: "));
//! assert!(error.to_string().contains("Save"));
//! # }
//! ```

mod commands;
mod error;
mod progress;

pub use error::{CliError, Exit};

use crate::app::BoxError;
use crate::{AnyStore, App};
use std::future::Future;
use std::io::Write;
use std::time::Duration;

/// The operator commands; see the [module docs](self) for how an app
/// embeds them.
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Create or update the event store's tables, and say which migrations ran
    Migrate(MigrateArgs),
    /// List the streams, in order of their ids, a page at a time
    Streams(StreamsArgs),
    /// Print the newest events of the global log (or those from a position);
    /// with --follow, go on printing new ones until Ctrl-C
    Tail(TailArgs),
    /// Empty a projection (or restart a handler) and replay every event into it
    Rebuild(RebuildArgs),
    /// Show each event handler's state, position, lag and last error
    Status(StatusArgs),
    /// Dispatch a command given by name and JSON fields
    Dispatch(DispatchArgs),
}

/// How a command prints its results.
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct Format {
    /// Print JSON, one object per line, instead of text
    #[arg(long)]
    pub json: bool,
}

/// `migrate`.
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct MigrateArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub format: Format,
}

/// `streams [--category C] [--after ID] [--limit N]`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct StreamsArgs {
    /// Only streams of this category (the part of a stream id before its first `-`)
    #[arg(long, short)]
    pub category: Option<String>,
    /// Only streams after this id (the last one of the previous page)
    #[arg(long)]
    pub after: Option<String>,
    /// How many streams at most
    #[arg(long, short = 'n', default_value_t = 100)]
    pub limit: usize,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub format: Format,
}

/// `tail [--from POSITION] [--lines N] [--follow] [--category C].. [--type T]..`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct TailArgs {
    /// The first global position to print (default: the newest --lines positions)
    #[arg(long)]
    pub from: Option<u64>,
    /// Without --from, how many of the newest positions of the log to print
    #[arg(long, short = 'n', default_value_t = 20)]
    pub lines: u64,
    /// Go on printing events as they are appended, until Ctrl-C
    #[arg(long, short)]
    pub follow: bool,
    /// Only events of streams of this category (repeat for several)
    #[arg(long, short)]
    pub category: Vec<String>,
    /// Only events of this type (repeat for several)
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    pub event_type: Vec<String>,
    /// Print each event's payload too
    #[arg(long, short)]
    pub payload: bool,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub format: Format,
}

/// `rebuild NAME [--wait DURATION]`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct RebuildArgs {
    /// The projection or handler to rebuild, by name (as `status` lists it)
    pub name: String,
    /// How long to wait for its turn while another process runs it (e.g. 10s, 500ms)
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub wait: Duration,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub format: Format,
}

/// `status [--wait DURATION]`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct StatusArgs {
    /// How long to let the handlers start and catch up before reporting (e.g. 2s)
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub wait: Duration,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub format: Format,
}

/// `dispatch COMMAND FIELDS [--command-id UUID] [--correlation-id UUID] [--meta KEY=VALUE]..`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct DispatchArgs {
    /// The command's registered name, e.g. OpenAccount
    pub command: String,
    /// Its fields as JSON; `-` reads them from standard input
    pub fields: String,
    /// The command's id: dispatching the same id again records nothing
    #[arg(long)]
    pub command_id: Option<uuid::Uuid>,
    /// The correlation id to record with the events
    #[arg(long)]
    pub correlation_id: Option<uuid::Uuid>,
    /// Metadata to record with the events, KEY=VALUE (VALUE as JSON, or else a string); repeat for several
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub metadata: Vec<(String, serde_json::Value)>,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub format: Format,
}

/// How the operator commands open an app's event store and build its
/// [`App`]: the same way the app's own entry point does, from the same
/// configuration.
///
/// Implement it with `async fn`s. [`App`] implements it too (its store,
/// and itself), for an app already built.
pub trait Setup: Send + Sync {
    /// Opens the app's event store. With `migrate` false, it must not apply
    /// the store's migrations while opening (`SqliteStoreBuilder::migrate_on_open(false)`,
    /// `PostgresStoreBuilder::migrate_on_connect(false)`): the `migrate`
    /// command applies them itself, to say which it applied. The other
    /// commands ask for `true`.
    fn open_store(&self, migrate: bool) -> impl Future<Output = Result<AnyStore, BoxError>> + Send;

    /// Builds the app on `store` (from `open_store(true)`), with its
    /// handlers, projections, process managers and services.
    fn build_app(&self, store: AnyStore) -> impl Future<Output = Result<App, BoxError>> + Send;
}

/// An app already built: its own store, and itself (the commands shut it
/// down when they end, as they do an app they build).
impl Setup for App {
    fn open_store(
        &self,
        _migrate: bool,
    ) -> impl Future<Output = Result<AnyStore, BoxError>> + Send {
        std::future::ready(Ok(self.store().clone()))
    }

    fn build_app(&self, _store: AnyStore) -> impl Future<Output = Result<App, BoxError>> + Send {
        std::future::ready(Ok(self.clone()))
    }
}

/// Where a command writes: its results to `out`, progress and notes to
/// `err`.
pub struct Console<'a> {
    out: &'a mut (dyn Write + Send),
    err: &'a mut (dyn Write + Send),
    bars: bool,
}

impl<'a> Console<'a> {
    /// Results to `out`, progress as plain lines to `err`.
    pub fn new(out: &'a mut (dyn Write + Send), err: &'a mut (dyn Write + Send)) -> Self {
        Self {
            out,
            err,
            bars: false,
        }
    }

    /// Whether progress is drawn as bars on the process's standard error
    /// (a terminal) rather than written as lines to `err`; off by default.
    /// [`execute`] turns it on when standard error is a terminal.
    pub fn progress_bars(mut self, on: bool) -> Self {
        self.bars = on;
        self
    }
}

impl std::fmt::Debug for Console<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("bars", &self.bars)
            .finish_non_exhaustive()
    }
}

/// Runs `command` for the app `setup` describes, writing to `console`.
///
/// The store opened (and the app built) for the command is closed (shut
/// down) when it ends, whatever the outcome. A closed output (`| head`)
/// ends the command early without an error.
pub async fn run<S: Setup + ?Sized>(
    setup: &S,
    command: Command,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    match commands::run(setup, command, console).await {
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Runs `command` on standard output and error (progress bars when
/// standard error is a terminal), prints a failure as `error: ` and its
/// chain of causes to standard error, and returns the exit code to end the
/// process with ([`Exit`]).
///
/// ```no_run
/// # use annals::cli::{self, Setup};
/// # async fn main_of(setup: impl Setup, command: cli::Command) -> std::process::ExitCode {
/// cli::execute(&setup, command).await
/// # }
/// ```
pub async fn execute<S: Setup + ?Sized>(setup: &S, command: Command) -> std::process::ExitCode {
    use std::io::IsTerminal as _;
    let bars = std::io::stderr().is_terminal();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut console = Console::new(&mut out, &mut err).progress_bars(bars);
    match run(setup, command, &mut console).await {
        Ok(()) => Exit::Success.into(),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {}", error::chain(&error));
            error.exit().into()
        }
    }
}

/// Parses `10s`, `500ms`, `2m` or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

/// Parses `KEY=VALUE`, VALUE as JSON or else as a string.
fn parse_meta(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("`{text}` has no key"));
    }
    let value =
        serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_metadata_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
        assert_eq!(
            parse_meta("user=alice"),
            Ok(("user".into(), serde_json::json!("alice")))
        );
        assert_eq!(parse_meta("n=3"), Ok(("n".into(), serde_json::json!(3))));
        assert_eq!(
            parse_meta("tags=[\"a\"]"),
            Ok(("tags".into(), serde_json::json!(["a"])))
        );
        assert!(parse_meta("novalue").is_err());
        assert!(parse_meta("=x").is_err());
    }
}
