//! Command metrics through the [`metrics`] facade (feature `metrics`).
//!
//! Add [`Metrics`] to an app and install any `metrics` recorder (Prometheus,
//! StatsD, ...); every dispatched command then records:
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `annals_commands_total` | counter | `aggregate`, `command`, `outcome` | commands dispatched, by [`OutcomeKind`](crate::OutcomeKind) (`ok`, `domain`, `conflict`, `rejected`, `invalid`, `store`, `other`) |
//! | `annals_command_duration_seconds` | histogram | `aggregate`, `command` | time from dispatch to outcome, middleware included |
//! | `annals_command_conflicts_total` | counter | `aggregate` | appends refused because another writer changed the stream first (each was retried unless the attempts ran out) |
//! | `annals_command_retries_total` | counter | `aggregate` | handler runs beyond each command's first (after conflicts and stale refusals) |
//!
//! ```
//! use annals::metrics::Metrics;
//! use annals::{App, MemoryStore};
//! let app = App::builder().store(MemoryStore::new()).middleware(Metrics::new()).build().unwrap();
//! # drop(app);
//! ```

use crate::{CommandContext, CommandOutcome, Middleware};

/// The middleware that records command metrics; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    _private: (),
}

impl Metrics {
    /// The middleware, recording to whatever `metrics` recorder is installed.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Middleware for Metrics {
    fn after(&self, command: &CommandContext<'_>, outcome: &CommandOutcome<'_>) {
        let aggregate = command.aggregate_type();
        let name = command.command_name();
        metrics::counter!(
            "annals_commands_total",
            "aggregate" => aggregate,
            "command" => name,
            "outcome" => outcome.kind().as_str(),
        )
        .increment(1);
        metrics::histogram!(
            "annals_command_duration_seconds",
            "aggregate" => aggregate,
            "command" => name,
        )
        .record(outcome.elapsed().as_secs_f64());
        if outcome.conflicts() > 0 {
            metrics::counter!("annals_command_conflicts_total", "aggregate" => aggregate)
                .increment(u64::from(outcome.conflicts()));
        }
        let retries = outcome.attempts().saturating_sub(1);
        if retries > 0 {
            metrics::counter!("annals_command_retries_total", "aggregate" => aggregate)
                .increment(u64::from(retries));
        }
    }

    fn name(&self) -> &'static str {
        "annals::metrics::Metrics"
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;
    use crate::prelude::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use std::collections::BTreeMap;

    #[event]
    pub enum GaugeEvent {
        Set { to: i64 },
    }

    #[derive(Debug, thiserror::Error)]
    #[error("negative")]
    pub struct Negative;

    #[command(aggregate = Gauge)]
    pub struct SetGauge {
        #[id]
        pub id: u32,
        pub to: i64,
    }

    #[aggregate(events = GaugeEvent)]
    #[derive(Default)]
    pub struct Gauge {
        value: i64,
    }

    #[aggregate]
    impl Gauge {
        #[handle]
        fn set(&self, command: SetGauge) -> Result<GaugeEvent, Negative> {
            if command.to < 0 {
                return Err(Negative);
            }
            Ok(GaugeEvent::Set { to: command.to })
        }

        #[apply]
        fn apply(&mut self, event: &GaugeEvent) {
            match event {
                GaugeEvent::Set { to } => self.value = *to,
            }
        }
    }

    /// Each metric's labels (sorted `k=v` joined by `,`) and value.
    fn snapshot(recorder: &DebuggingRecorder) -> BTreeMap<(String, String), DebugValue> {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                ((key.name().to_owned(), labels.join(",")), value)
            })
            .collect()
    }

    /// A plain test, not a tokio one: `with_local_recorder` holds only for
    /// synchronous code, so the commands run to completion inside it with
    /// `block_on` (the memory store never waits).
    #[test]
    fn outcomes_latency_conflicts_and_retries_are_recorded_per_aggregate() {
        let recorder = DebuggingRecorder::new();
        let store = MemoryStore::new();
        let app = App::builder()
            .store(store.clone())
            .middleware(Metrics::new())
            .build()
            .unwrap();
        let other = App::builder().store(store.clone()).build().unwrap();
        let run = async {
            app.dispatch(SetGauge { id: 1, to: 5 }).await.unwrap();
            app.dispatch(SetGauge { id: 1, to: -1 }).await.unwrap_err();
            // Another app moves the stream: the next command here conflicts once, then retries.
            other.dispatch(SetGauge { id: 1, to: 7 }).await.unwrap();
            app.dispatch(SetGauge { id: 1, to: 8 }).await.unwrap();
        };
        metrics::with_local_recorder(&recorder, || futures::executor::block_on(run));
        let got = snapshot(&recorder);
        let counter =
            |name: &str, labels: &str| match got.get(&(name.to_owned(), labels.to_owned())) {
                Some(DebugValue::Counter(n)) => *n,
                other => panic!("{name}{{{labels}}}: {other:?} in {got:#?}"),
            };
        let by = "aggregate=Gauge,command=SetGauge";
        assert_eq!(
            counter("annals_commands_total", &format!("{by},outcome=ok")),
            2
        );
        assert_eq!(
            counter("annals_commands_total", &format!("{by},outcome=domain")),
            1
        );
        assert_eq!(
            counter("annals_command_conflicts_total", "aggregate=Gauge"),
            1
        );
        assert_eq!(
            counter("annals_command_retries_total", "aggregate=Gauge"),
            1
        );
        match got.get(&("annals_command_duration_seconds".to_owned(), by.to_owned())) {
            Some(DebugValue::Histogram(samples)) => {
                assert_eq!(samples.len(), 3);
                assert!(samples.iter().all(|s| s.into_inner() >= 0.0));
            }
            other => panic!("duration histogram: {other:?}"),
        }
    }
}
