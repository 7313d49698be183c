//! How far handlers have come towards a position of the log: progress bars
//! on a terminal, a plain line a second otherwise.

use crate::handler::HandlerStatus;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::time::{Duration, Instant};

/// How often a plain progress line is written.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// The progress of some handlers towards `target`, the head of the log
/// when they set out.
pub(super) struct Progress {
    verb: &'static str,
    target: u64,
    started: Instant,
    shown: Shown,
}

enum Shown {
    Bars {
        _all: MultiProgress,
        bars: Vec<(&'static str, ProgressBar)>,
    },
    Lines {
        last: Option<Instant>,
        /// Each handler's position when it set out, for its rate.
        from: Vec<(&'static str, u64)>,
    },
}

impl Progress {
    /// Progress of the handlers `names` towards `target` ("rebuilding",
    /// "catching up"), as bars on standard error or as lines.
    pub(super) fn new(verb: &'static str, names: &[&'static str], target: u64, bars: bool) -> Self {
        let shown = if bars {
            let all = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>16} [{bar:32}] {pos}/{len} positions, {per_sec} ({eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bars = names
                .iter()
                .map(|&name| {
                    let bar = all.add(ProgressBar::new(target));
                    bar.set_style(style.clone());
                    bar.set_prefix(name);
                    (name, bar)
                })
                .collect();
            Shown::Bars { _all: all, bars }
        } else {
            Shown::Lines {
                last: None,
                from: Vec::new(),
            }
        };
        Self {
            verb,
            target,
            started: Instant::now(),
            shown,
        }
    }

    /// Shows where the handlers `statuses` are now: updates their bars,
    /// or writes a line for each to `err` (at once the first time, then at
    /// most once a second).
    pub(super) fn show(
        &mut self,
        statuses: &[HandlerStatus],
        err: &mut (dyn Write + Send),
    ) -> std::io::Result<()> {
        match &mut self.shown {
            Shown::Bars { bars, .. } => {
                for (name, bar) in bars {
                    if let Some(s) = statuses.iter().find(|s| s.name == *name) {
                        bar.set_position(s.position.min(self.target));
                        bar.set_message(format!("{} events", s.handled));
                    }
                }
                Ok(())
            }
            Shown::Lines { last, from } => {
                if last.is_some_and(|at| at.elapsed() < LINE_EVERY) {
                    return Ok(());
                }
                *last = Some(Instant::now());
                let seconds = self.started.elapsed().as_secs_f64().max(0.001);
                for s in statuses {
                    let start = match from.iter().find(|(name, _)| *name == s.name) {
                        Some(&(_, start)) => start,
                        None => {
                            from.push((s.name, s.position));
                            s.position
                        }
                    };
                    let percent = match self.target {
                        0 => 100,
                        target => s.position.min(target) * 100 / target,
                    };
                    let rate = s.position.saturating_sub(start) as f64 / seconds;
                    writeln!(
                        err,
                        "{} {}: position {} of {} ({percent}%), {} events handled, {rate:.0} positions/s",
                        self.verb, s.name, s.position, self.target, s.handled
                    )?;
                }
                err.flush()
            }
        }
    }

    /// Ends the display: the bars stay on the terminal, finished.
    pub(super) fn finish(&mut self) {
        if let Shown::Bars { bars, .. } = &self.shown {
            for (_, bar) in bars {
                bar.finish();
            }
        }
    }
}
