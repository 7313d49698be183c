//! What each operator command does.

use super::progress::{Progress, Start};
use super::{
    CliError, Command, Console, DispatchArgs, MigrateArgs, RebuildArgs, Setup, StatusArgs,
    StreamsArgs, TailArgs,
};
use crate::handler::{HandlerState, HandlerStatus, RebuildError};
use crate::store::StoreError;
use crate::{AnyStore, App, DispatchOptions, EventFilter, RecordedEvent, StreamId, StreamInfo};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub(super) async fn run<S: Setup + ?Sized>(
    setup: &S,
    command: Command,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    match command {
        Command::Migrate(args) => migrate(setup, args, console).await,
        Command::Streams(args) => {
            if let Some(category) = &args.category {
                check_category(category)?;
            }
            let store = open(setup).await?;
            let listed = streams(&store, args, console).await;
            closing(listed, store.close().await)
        }
        Command::Tail(args) => {
            for category in &args.category {
                check_category(category)?;
            }
            let store = open(setup).await?;
            let tailed = tail(&store, args, console).await;
            closing(tailed, store.close().await)
        }
        Command::Rebuild(args) => {
            let app = build(setup).await?;
            let rebuilt = rebuild(&app, args, console).await;
            closing(rebuilt, app.shutdown().await)
        }
        Command::Status(args) => {
            let app = build(setup).await?;
            let shown = status(&app, args, console).await;
            closing(shown, app.shutdown().await)
        }
        Command::Dispatch(args) => {
            let fields = fields(&args)?;
            let app = build(setup).await?;
            let done = dispatch(&app, args, fields, console).await;
            closing(done, app.shutdown().await)
        }
    }
}

/// The command's outcome, unless it succeeded and closing the store failed.
fn closing(outcome: Result<(), CliError>, closed: Result<(), StoreError>) -> Result<(), CliError> {
    outcome?;
    closed.map_err(CliError::from)
}

async fn open<S: Setup + ?Sized>(setup: &S) -> Result<AnyStore, CliError> {
    setup.open_store(true).await.map_err(CliError::Open)
}

async fn build<S: Setup + ?Sized>(setup: &S) -> Result<App, CliError> {
    let store = open(setup).await?;
    match setup.build_app(store.clone()).await {
        Ok(app) => Ok(app),
        Err(e) => {
            let _ = store.close().await;
            Err(CliError::Build(e))
        }
    }
}

fn check_category(category: &str) -> Result<(), CliError> {
    if category.contains(['-', '\0']) {
        return Err(CliError::BadCategory(category.to_owned()));
    }
    Ok(())
}

/// A time as every command prints it: RFC 3339, UTC, milliseconds.
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes `rows` as columns padded to their widest cell (the last one not
/// padded), two spaces apart.
fn table(out: &mut (dyn Write + Send), rows: &[Vec<String>]) -> std::io::Result<()> {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

async fn migrate<S: Setup + ?Sized>(
    setup: &S,
    args: MigrateArgs,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let store = setup.open_store(false).await.map_err(CliError::Open)?;
    let migrated = store.migrate().await;
    let closed = store.close().await;
    let report = migrated?;
    closed?;
    let out = &mut *console.out;
    if args.format.json {
        let list = |ms: &[crate::Migration]| {
            ms.iter()
                .map(|m| json!({"version": m.version, "description": m.description}))
                .collect::<Vec<_>>()
        };
        let line = json!({
            "target": report.target,
            "applied": list(&report.applied),
            "already_applied": list(&report.already_applied),
        });
        writeln!(out, "{line}")?;
    } else if report.applied.is_empty() && report.already_applied.is_empty() {
        writeln!(out, "{}: nothing to migrate", report.target)?;
    } else if report.applied.is_empty() {
        let n = report.already_applied.len();
        writeln!(
            out,
            "{}: up to date ({n} migration{} applied before)",
            report.target,
            plural(n)
        )?;
    } else {
        let n = report.applied.len();
        writeln!(out, "{}: applied {n} migration{}", report.target, plural(n))?;
        for m in &report.applied {
            writeln!(out, "  {:04} {}", m.version, m.description)?;
        }
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn streams(
    store: &AnyStore,
    args: StreamsArgs,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let after = args.after.map(StreamId::new);
    let page = store
        .streams(args.category.as_deref(), after.as_ref(), args.limit)
        .await?;
    if args.format.json {
        for s in &page {
            writeln!(console.out, "{}", stream_json(s))?;
        }
    } else if page.is_empty() {
        writeln!(console.err, "no streams")?;
    } else {
        let mut rows = vec![
            ["STREAM", "VERSION", "POSITION", "CREATED", "UPDATED"]
                .map(String::from)
                .to_vec(),
        ];
        rows.extend(page.iter().map(|s| {
            vec![
                s.stream_id.to_string(),
                s.version.to_string(),
                s.last_position.to_string(),
                time(s.created_at),
                time(s.updated_at),
            ]
        }));
        table(console.out, &rows)?;
    }
    if let Some(last) = page.last().filter(|_| page.len() == args.limit) {
        writeln!(
            console.err,
            "more streams may follow: --after {:?}",
            last.stream_id.as_str()
        )?;
    }
    Ok(())
}

fn stream_json(s: &StreamInfo) -> serde_json::Value {
    json!({
        "stream_id": s.stream_id,
        "category": s.category(),
        "version": s.version,
        "last_position": s.last_position,
        "created_at": time(s.created_at),
        "updated_at": time(s.updated_at),
    })
}

/// Resolves at Ctrl-C or, on Unix, SIGTERM; registered as it is made, so
/// a signal that comes before it is awaited is not missed.
fn stop_signal() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            return Box::pin(async move {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            });
        }
    }
    Box::pin(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

/// How many events one read of the log returns at most.
const TAIL_PAGE: usize = 500;

async fn tail(store: &AnyStore, args: TailArgs, console: &mut Console<'_>) -> Result<(), CliError> {
    let mut filter = EventFilter::all();
    if !args.category.is_empty() {
        filter = filter.categories(args.category.clone());
    }
    if !args.event_type.is_empty() {
        filter = filter.event_types(args.event_type.clone());
    }
    let mut stop: Pin<Box<dyn Future<Output = ()> + Send>> = if args.follow {
        stop_signal()
    } else {
        Box::pin(std::future::pending())
    };
    let head = store.head_position().await?;
    let mut next = args
        .from
        .unwrap_or_else(|| head.saturating_sub(args.lines) + 1)
        .max(1);
    // Without --follow, the log up to its head as it was when we started.
    let until = (!args.follow).then_some(head);
    let mut watch = store.watch_log();
    let mut held_back = Duration::from_millis(2);
    while until.is_none_or(|until| next <= until) {
        watch.mark();
        let read = tokio::select! {
            read = store.read_all_filtered(next, TAIL_PAGE, &filter) => read,
            () = &mut stop => break,
        };
        let page = match read {
            Ok(page) => page,
            Err(bad) if bad.corrupt_position().is_some_and(|at| at >= next) => {
                let at = bad.corrupt_position().unwrap_or(next);
                writeln!(
                    console.err,
                    "skipping position {at}: {}",
                    super::error::chain(&bad)
                )?;
                next = at + 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for event in &page.events {
            if until.is_some_and(|until| event.global_position > until) {
                return Ok(console.out.flush()?);
            }
            write_event(console.out, event, &args)?;
        }
        console.out.flush()?;
        if page.events.is_empty() && page.next_position <= next {
            if page.held_back {
                // A transaction below the head is still writing: soon readable.
                tokio::select! {
                    () = tokio::time::sleep(held_back) => {}
                    () = &mut stop => break,
                }
                held_back = (held_back * 2).min(Duration::from_millis(250));
                continue;
            }
            if until.is_some() {
                break;
            }
            tokio::select! {
                _ = watch.changed() => {}
                () = &mut stop => break,
            }
            continue;
        }
        held_back = Duration::from_millis(2);
        next = page.next_position.max(next);
    }
    Ok(console.out.flush()?)
}

fn write_event(
    out: &mut (dyn Write + Send),
    event: &RecordedEvent,
    args: &TailArgs,
) -> std::io::Result<()> {
    if args.format.json {
        let line = json!({
            "position": event.global_position,
            "stream_id": event.stream_id,
            "stream_version": event.stream_version,
            "event_type": event.event_type,
            "event_version": event.event_version,
            "event_id": event.event_id,
            "recorded_at": time(event.recorded_at),
            "correlation_id": event.metadata.correlation_id,
            "causation_id": event.metadata.causation_id,
            "metadata": event.metadata.custom,
            "payload": event.payload.to_value(),
        });
        return writeln!(out, "{line}");
    }
    write!(
        out,
        "{:>7}  {}  {} v{}  {} v{}",
        event.global_position,
        time(event.recorded_at),
        event.stream_id,
        event.stream_version,
        event.event_type,
        event.event_version
    )?;
    if args.payload {
        write!(out, "  {}", event.payload.as_str())?;
    }
    writeln!(out)
}

fn find<'s>(statuses: &'s [HandlerStatus], name: &str) -> Option<&'s HandlerStatus> {
    statuses.iter().find(|s| s.name == name)
}

async fn rebuild(app: &App, args: RebuildArgs, console: &mut Console<'_>) -> Result<(), CliError> {
    let statuses = app.handler_status().await;
    let Some(name) = find(&statuses, &args.name).map(|s| s.name) else {
        return Err(CliError::UnknownHandler {
            name: args.name,
            known: statuses.iter().map(|s| s.name).collect(),
        });
    };
    // Until this app has the handler's turn, another process runs it.
    let deadline = Instant::now() + args.wait;
    loop {
        match app.rebuild(name).await {
            Ok(()) => break,
            Err(RebuildError::NotRunningHere(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(RebuildError::NotRunningHere(_)) => {
                return Err(CliError::Elsewhere {
                    name: args.name,
                    waited: args.wait,
                });
            }
            Err(source) => {
                return Err(CliError::Rebuild {
                    name: args.name,
                    source,
                });
            }
        }
    }
    let started = Instant::now();
    let head = app.store().head_position().await?;
    let handled_before = find(&app.handler_status().await, name).map_or(0, |s| s.handled);
    let start = Start {
        name,
        position: 0,
        handled: handled_before,
    };
    let mut progress = Progress::new("rebuilding", vec![start], head, console.bars);
    let status = loop {
        let reached = app
            .wait_for_handlers(head, &[name], Duration::from_millis(200))
            .await;
        let statuses = app.handler_status().await;
        let Some(status) = find(&statuses, name).cloned() else {
            break None;
        };
        progress.show(std::slice::from_ref(&status), console.err)?;
        if reached.is_ok() {
            break Some(status);
        }
        if matches!(status.state, HandlerState::Stopped | HandlerState::ShutDown) {
            progress.finish();
            let (position, message) = match status.last_error {
                Some(failure) => (failure.position, failure.message),
                None => (status.position + 1, "it stopped".to_owned()),
            };
            return Err(CliError::RebuildStopped {
                name: args.name,
                position,
                cause: message.into(),
            });
        }
    };
    progress.finish();
    let handled = status.map_or(0, |s| s.handled.saturating_sub(handled_before));
    let seconds = started.elapsed().as_secs_f64();
    if args.format.json {
        let line = json!({"handler": name, "head": head, "events": handled, "seconds": seconds});
        writeln!(console.out, "{line}")?;
    } else {
        writeln!(
            console.out,
            "rebuilt {name}: replayed the log up to position {head} ({handled} event{} handled) in {seconds:.1} s",
            plural(handled as usize)
        )?;
    }
    Ok(())
}

/// A state in one word, as `status` prints it.
fn state_name(state: HandlerState) -> &'static str {
    match state {
        // Past the wait: another process holds its turn.
        HandlerState::Starting => "waiting",
        HandlerState::Running => "running",
        HandlerState::Idle => "idle",
        HandlerState::Retrying { .. } => "retrying",
        HandlerState::Stopped => "stopped",
        HandlerState::ShutDown => "shut-down",
    }
}

async fn status(app: &App, args: StatusArgs, console: &mut Console<'_>) -> Result<(), CliError> {
    let store = app.store();
    let deadline = Instant::now() + args.wait;
    let mut progress: Option<Progress> = None;
    loop {
        let statuses = app.handler_status().await;
        let busy =
            |s: &&HandlerStatus| matches!(s.state, HandlerState::Starting | HandlerState::Running);
        if !statuses.iter().any(|s| busy(&s)) || Instant::now() >= deadline {
            break;
        }
        let running: Vec<HandlerStatus> = statuses
            .iter()
            .filter(|s| s.state == HandlerState::Running)
            .cloned()
            .collect();
        if !running.is_empty() {
            if progress.is_none() {
                let head = store.head_position().await?;
                let starts = statuses
                    .iter()
                    .map(|s| Start {
                        name: s.name,
                        position: s.position,
                        handled: s.handled,
                    })
                    .collect();
                progress = Some(Progress::new("catching up", starts, head, console.bars));
            }
            if let Some(progress) = &mut progress {
                progress.show(&running, console.err)?;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(progress) = &mut progress {
        progress.finish();
    }
    let statuses = app.handler_status().await;
    let head = store.head_position().await?;
    let stored = match store.checkpoints().await {
        Ok(all) => all,
        Err(StoreError::Unsupported { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let checkpoint_of = |name: &str| stored.iter().find(|(n, _)| n == name).map(|&(_, p)| p);
    // A handler that waits for its turn shows what the store says of it.
    let row = |s: &HandlerStatus| -> (Option<u64>, Option<u64>) {
        if s.state == HandlerState::Starting {
            let kept = checkpoint_of(s.name);
            (kept, kept)
        } else {
            (Some(s.position), Some(s.checkpoint))
        }
    };
    let others: Vec<&(String, u64)> = stored
        .iter()
        .filter(|(name, _)| !statuses.iter().any(|s| s.name == name))
        .collect();
    if args.format.json {
        let handlers: Vec<serde_json::Value> = statuses
            .iter()
            .map(|s| {
                let (position, checkpoint) = row(s);
                json!({
                    "name": s.name,
                    "state": state_name(s.state),
                    "attempt": match s.state { HandlerState::Retrying { attempt } => Some(attempt), _ => None },
                    "position": position,
                    "lag": position.map(|p| head.saturating_sub(p)),
                    "checkpoint": checkpoint,
                    "handled": s.handled,
                    "skipped": s.skipped,
                    "last_error": s.last_error.as_ref().map(|e| json!({
                        "position": e.position,
                        "message": e.message,
                        "at": time(e.at),
                    })),
                })
            })
            .collect();
        let others: Vec<serde_json::Value> = others
            .iter()
            .map(|(name, position)| json!({"name": name, "position": position}))
            .collect();
        let line = json!({"head": head, "handlers": handlers, "other_checkpoints": others});
        writeln!(console.out, "{line}")?;
    } else {
        writeln!(console.out, "head of the log: {head}")?;
        if statuses.is_empty() {
            writeln!(console.out, "no event handlers run in this app")?;
        } else {
            let mut rows = vec![
                [
                    "HANDLER",
                    "STATE",
                    "POSITION",
                    "LAG",
                    "CHECKPOINT",
                    "HANDLED",
                    "SKIPPED",
                ]
                .map(String::from)
                .to_vec(),
            ];
            let shown = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
            for s in &statuses {
                let (position, checkpoint) = row(s);
                rows.push(vec![
                    s.name.to_owned(),
                    state_name(s.state).to_owned(),
                    shown(position),
                    shown(position.map(|p| head.saturating_sub(p))),
                    shown(checkpoint),
                    s.handled.to_string(),
                    s.skipped.to_string(),
                ]);
            }
            table(console.out, &rows)?;
            for s in &statuses {
                if let Some(e) = &s.last_error {
                    writeln!(
                        console.out,
                        "{}: last error at position {} ({}): {}",
                        s.name,
                        e.position,
                        time(e.at),
                        e.message
                    )?;
                }
            }
            if statuses.iter().any(|s| s.state == HandlerState::Starting) {
                writeln!(
                    console.out,
                    "waiting: another process runs the handler (it holds its turn); \
                     its position is the checkpoint it saved in the store, if any"
                )?;
            }
        }
        for (name, position) in &others {
            writeln!(
                console.out,
                "checkpoint of no handler in this app: {name} at {position}"
            )?;
        }
    }
    let failing: Vec<&'static str> = statuses
        .iter()
        .filter(|s| {
            matches!(
                s.state,
                HandlerState::Stopped | HandlerState::Retrying { .. }
            )
        })
        .map(|s| s.name)
        .collect();
    if failing.is_empty() {
        Ok(())
    } else {
        Err(CliError::Unhealthy(failing))
    }
}

/// The command's fields, read (from standard input for `-`) and parsed
/// before anything is opened.
fn fields(args: &DispatchArgs) -> Result<serde_json::Value, CliError> {
    let text = if args.fields == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|source| CliError::Stdin {
            command: args.command.clone(),
            source,
        })?
    } else {
        args.fields.clone()
    };
    serde_json::from_str(&text).map_err(|source| CliError::FieldsNotJson {
        command: args.command.clone(),
        source,
    })
}

async fn dispatch(
    app: &App,
    args: DispatchArgs,
    fields: serde_json::Value,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    if !app.commands().any(|route| route.command == args.command) {
        let mut known: Vec<&'static str> = app.commands().map(|route| route.command).collect();
        known.sort_unstable();
        return Err(CliError::UnknownCommand {
            name: args.command,
            known,
        });
    }
    let mut options = DispatchOptions::new();
    if let Some(id) = args.command_id {
        options = options.command_id(id);
    }
    if let Some(id) = args.correlation_id {
        options = options.correlation_id(id);
    }
    for (key, value) in args.metadata {
        options = options.metadata(key, value);
    }
    let done = app
        .dispatch_json(&args.command, fields, options)
        .await
        .map_err(|e| CliError::dispatch(&args.command, e))?;
    let out = &mut *console.out;
    if args.format.json {
        let events: Vec<serde_json::Value> = done
            .events
            .iter()
            .map(|(event_type, version, payload)| {
                json!({"event_type": event_type, "event_version": version, "payload": payload.to_value()})
            })
            .collect();
        let line = json!({
            "command": args.command,
            "stream_id": done.stream_id,
            "version": done.version,
            "positions": done.positions,
            "command_id": done.command_id,
            "correlation_id": done.correlation_id,
            "events": events,
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    match done.positions {
        Some((first, last)) => {
            let n = done.events.len();
            let positions = if first == last {
                format!("global position {first}")
            } else {
                format!("global positions {first} to {last}")
            };
            writeln!(
                out,
                "recorded {n} event{} on {}, now at version {} ({positions})",
                plural(n),
                done.stream_id,
                done.version
            )?;
        }
        None => writeln!(
            out,
            "recorded no event on {}, which stays at version {}",
            done.stream_id, done.version
        )?,
    }
    for (event_type, version, payload) in &done.events {
        writeln!(out, "  {event_type} v{version}  {}", payload.as_str())?;
    }
    writeln!(
        out,
        "command id {}, correlation id {}",
        done.command_id, done.correlation_id
    )?;
    Ok(())
}
