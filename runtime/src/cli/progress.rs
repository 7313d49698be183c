//! How far handlers have come towards a position of the log: progress bars
//! on a terminal, a plain line a second otherwise.

use crate::handler::HandlerStatus;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::time::{Duration, Instant};

/// How often a plain progress line is written.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Where a handler stood when its progress started to be shown.
pub(super) struct Start {
    pub(super) name: &'static str,
    pub(super) position: u64,
    pub(super) handled: u64,
}

/// The progress of some handlers towards `target`, the head of the log
/// when they set out.
pub(super) struct Progress {
    verb: &'static str,
    target: u64,
    started: Instant,
    starts: Vec<Start>,
    shown: Shown,
}

enum Shown {
    Bars {
        _all: MultiProgress,
        bars: Vec<ProgressBar>,
    },
    Lines {
        last: Option<Instant>,
    },
}

impl Progress {
    /// Progress of the handlers `starts` towards `target` ("rebuilding",
    /// "catching up"), as bars on standard error or as lines.
    pub(super) fn new(verb: &'static str, starts: Vec<Start>, target: u64, bars: bool) -> Self {
        let shown = if bars {
            let all = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>16} [{bar:32}] {pos}/{len} positions ({elapsed}, {eta} left) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bars = starts
                .iter()
                .map(|start| {
                    let bar = all.add(ProgressBar::new(target));
                    bar.set_style(style.clone());
                    bar.set_prefix(start.name);
                    bar.set_position(start.position.min(target));
                    bar
                })
                .collect();
            Shown::Bars { _all: all, bars }
        } else {
            Shown::Lines { last: None }
        };
        Self {
            verb,
            target,
            started: Instant::now(),
            starts,
            shown,
        }
    }

    /// Shows where the handlers `statuses` (of those it follows) are now:
    /// updates their bars, or writes a line for each to `err` (at once the
    /// first time, then at most once a second).
    pub(super) fn show(
        &mut self,
        statuses: &[HandlerStatus],
        err: &mut (dyn Write + Send),
    ) -> std::io::Result<()> {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let lines = match &mut self.shown {
            Shown::Lines { last } if last.is_none_or(|at| at.elapsed() >= LINE_EVERY) => {
                *last = Some(Instant::now());
                true
            }
            _ => false,
        };
        for (i, start) in self.starts.iter().enumerate() {
            let Some(s) = statuses.iter().find(|s| s.name == start.name) else {
                continue;
            };
            let events = s.handled.saturating_sub(start.handled);
            let rate = s.position.saturating_sub(start.position) as f64 / seconds;
            match &self.shown {
                Shown::Bars { bars, .. } => {
                    bars[i].set_position(s.position.min(self.target));
                    bars[i].set_message(format!("{rate:.0} positions/s, {events} events"));
                }
                Shown::Lines { .. } if lines => {
                    let percent = match self.target {
                        0 => 100,
                        target => s.position.min(target) * 100 / target,
                    };
                    writeln!(
                        err,
                        "{} {}: position {} of {} ({percent}%), {events} events handled, {rate:.0} positions/s",
                        self.verb, start.name, s.position, self.target
                    )?;
                }
                Shown::Lines { .. } => {}
            }
        }
        if lines { err.flush() } else { Ok(()) }
    }

    /// Ends the display: the bars stay on the terminal, finished.
    pub(super) fn finish(&mut self) {
        if let Shown::Bars { bars, .. } = &self.shown {
            for bar in bars {
                bar.finish();
            }
        }
    }
}
