//! The handlers an [`App`](crate::App) runs: their tasks, stop signal and
//! status.

use super::HandlerRegistration;
use super::RebuildError;
use super::runner::{HandlerSpec, Rebuild, Runner};
use super::status::{HandlerState, HandlerStatus, StatusCell};
use crate::app::{BuildError, WeakApp};
use crate::store::AnyStore;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) struct Handlers {
    cells: Vec<Arc<StatusCell>>,
    /// Rebuild requests, one queue per handler (same order as `cells`).
    rebuilds: Vec<tokio::sync::mpsc::Sender<Rebuild>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Handlers {
    /// Checks the handlers' names and that they can run here: the runtime
    /// to [`start`](Self::start) them on, if there are any.
    pub(crate) fn check(
        specs: &[HandlerSpec],
    ) -> Result<Option<tokio::runtime::Handle>, BuildError> {
        let mut names: HashMap<&'static str, &'static str> = HashMap::new();
        for spec in specs {
            if let Some(first) = names.insert(spec.name, spec.type_name) {
                return Err(BuildError::DuplicateHandler {
                    name: spec.name,
                    first,
                    second: spec.type_name,
                });
            }
        }
        // Two handler types linked into this binary with one name would share
        // a checkpoint wherever both run: refuse it even if only one runs here.
        let mut linked: HashMap<&'static str, &'static str> = HashMap::new();
        for r in inventory::iter::<HandlerRegistration> {
            if let Some(first) = linked.insert(r.name, r.type_name)
                && first != r.type_name
            {
                return Err(BuildError::DuplicateHandler {
                    name: r.name,
                    first,
                    second: r.type_name,
                });
            }
        }
        if specs.is_empty() {
            return Ok(None);
        }
        tokio::runtime::Handle::try_current()
            .map(Some)
            .map_err(|_| BuildError::NoRuntime)
    }

    /// Starts one task per handler on `runtime` (from [`check`](Self::check)).
    pub(crate) fn start(
        specs: Vec<HandlerSpec>,
        store: &AnyStore,
        app: &WeakApp,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        let mut set = Self {
            cells: Vec::with_capacity(specs.len()),
            rebuilds: Vec::with_capacity(specs.len()),
            stop,
            tasks: Mutex::new(Vec::new()),
        };
        let Some(runtime) = runtime else {
            return set;
        };
        let mut tasks = Vec::with_capacity(specs.len() + 1);
        let processes = specs
            .iter()
            .any(|spec| matches!(spec.target, super::runner::Target::Process(_)));
        if processes {
            // Process managers' timeouts: one scheduler per app.
            let scheduler =
                crate::process::scheduler::run(store.clone(), app.clone(), set.stop.subscribe());
            tasks.push(runtime.spawn(scheduler));
        }
        for spec in specs {
            let cell = Arc::new(StatusCell::new(spec.name, spec.options.strong));
            set.cells.push(cell.clone());
            let (rebuild, rebuilds) = tokio::sync::mpsc::channel(4);
            set.rebuilds.push(rebuild);
            let runner = Runner::new(
                spec,
                store.clone(),
                app.clone(),
                cell,
                set.stop.subscribe(),
                rebuilds,
            );
            tasks.push(runtime.spawn(runner.run()));
        }
        *set.tasks.get_mut() = tasks;
        set
    }

    pub(crate) fn status(&self) -> Vec<HandlerStatus> {
        self.cells.iter().map(|c| c.snapshot()).collect()
    }

    pub(crate) fn cell(&self, name: &str) -> Option<&Arc<StatusCell>> {
        self.cells.iter().find(|c| c.name() == name)
    }

    /// Asks the handler `name` to start over from position 0 and waits
    /// until it has (its read model emptied, for a projection).
    pub(crate) async fn rebuild(&self, name: &str) -> Result<(), RebuildError> {
        let index = self
            .cells
            .iter()
            .position(|c| c.name() == name)
            .ok_or_else(|| RebuildError::Unknown(name.to_owned()))?;
        let state = self.cells[index].snapshot().state;
        match state {
            HandlerState::Starting => return Err(RebuildError::NotRunningHere(name.to_owned())),
            HandlerState::Stopped | HandlerState::ShutDown => {
                return Err(RebuildError::Stopped(name.to_owned()));
            }
            _ => {}
        }
        let (done, answer) = tokio::sync::oneshot::channel();
        self.rebuilds[index]
            .send(done)
            .await
            .map_err(|_| RebuildError::Stopped(name.to_owned()))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(RebuildError::Failed {
                handler: name.to_owned(),
                message,
            }),
            Err(_) => Err(RebuildError::Stopped(name.to_owned())),
        }
    }

    pub(crate) fn cells(&self) -> &[Arc<StatusCell>] {
        &self.cells
    }

    /// Asks every handler to stop after the event in hand, saves their
    /// checkpoints, and waits for them.
    pub(crate) async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
        for cell in &self.cells {
            cell.update(|s| {
                if !matches!(s.state, HandlerState::Stopped) {
                    s.state = HandlerState::ShutDown;
                }
            });
        }
    }
}

impl Drop for Handlers {
    fn drop(&mut self) {
        // The app is gone: its handlers stop at their next event.
        self.stop.send_replace(true);
    }
}
