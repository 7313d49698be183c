//! Consumers: a projection fed from a RabbitMQ queue instead of the log.

use super::{Queue, backoff, connect, declare_exchange, message, short};
use crate::app::BoxError;
use crate::handler::ErrorPolicy;
use crate::handler::HandlerError;
use crate::handler::runner::chain;
use crate::projection::{BatchError, Bound, Projection, ProjectionDatabase};
use crate::store::RecordedEvent;
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::Instrument;

/// How often an idle consumer makes sure its connection is still open.
const LOOK: std::time::Duration = std::time::Duration::from_millis(250);

/// Called with each event a consumer applied, after its transaction
/// committed and before its message is acknowledged.
pub type AfterCommit = Arc<dyn Fn(&RecordedEvent) + Send + Sync>;

/// Runs a [`Projection`] from a RabbitMQ queue that a
/// [`Publisher`](super::Publisher) feeds, usually in another process than
/// the one that records the events.
///
/// It declares the exchange and its [`Queue`] (bindings, dead-letter
/// exchange and queue), takes up to [`prefetch`](Self::prefetch) messages at
/// once (default 256) and applies each run of them in one transaction of the
/// projection's database, in which it also records every event's id in
/// `annals_consumed` (keyed by the consumer's [`name`](Self::name)): an
/// event already recorded there (a redelivery after a crash or a lost
/// connection, or a publisher that published it again) is acknowledged and
/// not applied. Messages are acknowledged only after that transaction
/// committed. One consumer handles its messages one after another, so the
/// order of each stream's events is kept.
///
/// An event the projection fails on is tried again as the
/// [`ErrorPolicy`] says ([`on_error`](Self::on_error); its skip or stop
/// choice does not apply): when it still fails, or cannot be read at all,
/// its message is rejected and the broker moves it to the queue's
/// dead-letter queue, and the consumer goes on. While the broker or the
/// database cannot be reached it retries with a backoff, saying so in
/// `tracing` and its [`ConsumerStatus`].
///
/// ```no_run
/// use annals::rabbitmq::{Consumer, Queue};
/// # async fn run<P: annals::projection::Projection<sqlx::Sqlite>>(pool: sqlx::SqlitePool, history: P) {
/// let consumer = Consumer::new(
///     "amqp://guest:guest@127.0.0.1:5672/%2f",
///     "bank.events",
///     Queue::new("bank.history").bind("Account.*"),
/// )
/// .spawn_projection(pool, history);
/// // ... until asked to stop:
/// consumer.shutdown().await;
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Consumer {
    name: String,
    url: String,
    exchange: String,
    queue: Queue,
    prefetch: u16,
    policy: ErrorPolicy,
    after_commit: Option<AfterCommit>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("exchange", &self.exchange)
            .field("queue", &self.queue)
            .field("prefetch", &self.prefetch)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Consumes `queue`, bound to the topic exchange `exchange` of the
    /// broker at `url`.
    pub fn new(url: impl Into<String>, exchange: impl Into<String>, queue: Queue) -> Self {
        Self {
            name: queue.name().to_owned(),
            url: url.into(),
            exchange: exchange.into(),
            queue,
            prefetch: 256,
            policy: ErrorPolicy::retry(5),
            after_commit: None,
        }
    }

    /// The key of its rows in `annals_consumed` (default: the queue's
    /// name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How many unacknowledged messages the broker hands it at once, at
    /// least 1 (default 256); also the most events applied in one
    /// transaction.
    pub fn prefetch(mut self, messages: u16) -> Self {
        self.prefetch = messages.max(1);
        self
    }

    /// How often, and how far apart, an event the projection fails on is
    /// tried before it goes to the dead-letter queue (default 5 attempts).
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Calls `f` with each event applied, after the transaction committed
    /// and before the message is acknowledged (metrics, or a test that
    /// stops the process right there).
    pub fn after_commit(mut self, f: impl Fn(&RecordedEvent) + Send + Sync + 'static) -> Self {
        self.after_commit = Some(Arc::new(f));
        self
    }

    /// Starts consuming into `projection`, whose read model and
    /// `annals_consumed` live in `pool`'s database, on a task of the
    /// current tokio runtime (it must be called inside one).
    pub fn spawn_projection<DB, P>(self, pool: sqlx::Pool<DB>, projection: P) -> ConsumerHandle
    where
        DB: ProjectionDatabase,
        P: Projection<DB>,
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        let target: Arc<dyn Apply> = Arc::new(Bound {
            pool,
            projection: Arc::new(projection),
        });
        let status = Arc::new(Mutex::new(ConsumerStatus {
            name: self.name.clone(),
            state: ConsumerState::Connecting,
            handled: 0,
            duplicates: 0,
            dead_lettered: 0,
            last_error: None,
        }));
        let (stop, stopped) = watch::channel(false);
        let run = Run {
            config: self,
            target,
            status: status.clone(),
            stop: stopped,
        };
        let span = tracing::info_span!("annals.consumer", consumer = %run.config.name);
        let task = tokio::spawn(run.run().instrument(span));
        ConsumerHandle { status, stop, task }
    }
}

/// What a consumer is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerState {
    /// Connecting to the broker for the first time.
    Connecting,
    /// Consuming its queue.
    Consuming,
    /// The broker (or its connection) failed this many times in a row; it
    /// is reconnecting, with a backoff.
    Disconnected {
        /// Failures in a row.
        attempt: u32,
    },
    /// Its projection's database failed this many times in a row; the
    /// messages in hand are applied again after a backoff.
    Retrying {
        /// Failures in a row.
        attempt: u32,
    },
    /// Shut down.
    ShutDown,
}

/// A consumer's status: see [`ConsumerHandle::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerStatus {
    /// Its name.
    pub name: String,
    /// What it is doing.
    pub state: ConsumerState,
    /// Events applied since it started.
    pub handled: u64,
    /// Redelivered events it had applied already, acknowledged without
    /// applying them again.
    pub duplicates: u64,
    /// Messages sent to the dead-letter queue.
    pub dead_lettered: u64,
    /// The last error, with its sources.
    pub last_error: Option<String>,
}

/// A running [`Consumer`].
#[derive(Debug)]
pub struct ConsumerHandle {
    status: Arc<Mutex<ConsumerStatus>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ConsumerHandle {
    /// What it is doing, and what it did.
    pub fn status(&self) -> ConsumerStatus {
        self.status.lock().clone()
    }

    /// Stops it between two runs of messages (those not acknowledged yet
    /// are delivered again to the next consumer) and waits until it did.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A projection behind one type, applying runs of consumed events.
trait Apply: Send + Sync {
    fn prepare(&self) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    /// Applies the events `consumer` has not taken yet and records their
    /// ids, in one transaction; for each event, whether it was applied
    /// (`false`: taken before).
    fn apply<'a>(
        &'a self,
        consumer: &'a str,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<Vec<bool>, BatchError>>;
}

impl<DB: ProjectionDatabase, P: Projection<DB>> Apply for Bound<DB, P>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    fn prepare(&self) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            DB::create_consumed(&mut conn).await
        })
    }

    fn apply<'a>(
        &'a self,
        consumer: &'a str,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<Vec<bool>, BatchError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await.map_err(BatchError::Database)?;
            let mut applied = Vec::with_capacity(events.len());
            for (index, event) in events.iter().enumerate() {
                let new = DB::claim_event(&mut tx, consumer, event.event_id)
                    .await
                    .map_err(BatchError::Database)?;
                if new && let Err(error) = self.projection.project(&mut tx, event).await {
                    return Err(BatchError::Event(index, error));
                }
                applied.push(new);
            }
            tx.commit().await.map_err(BatchError::Database)?;
            Ok(applied)
        })
    }
}

/// Why a session with the broker ended.
enum Ended {
    ShutDown,
    Failed(BoxError),
}

impl<E: Into<BoxError>> From<E> for Ended {
    fn from(e: E) -> Self {
        Ended::Failed(e.into())
    }
}

struct Run {
    config: Consumer,
    target: Arc<dyn Apply>,
    status: Arc<Mutex<ConsumerStatus>>,
    stop: watch::Receiver<bool>,
}

impl Run {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    async fn pause(&self, pause: std::time::Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(pause) => !self.stopping(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    fn failed(&self, state: ConsumerState, error: &(dyn std::error::Error + 'static)) {
        let mut status = self.status.lock();
        status.state = state;
        status.last_error = Some(chain(error));
    }

    async fn run(self) {
        let mut failures = 0u32;
        while !self.stopping() {
            match self.session(&mut failures).await {
                Ended::ShutDown => break,
                Ended::Failed(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        attempt = failures, error = %chain(&*error),
                        "RabbitMQ consumer lost its connection or could not connect; reconnecting"
                    );
                    self.failed(ConsumerState::Disconnected { attempt: failures }, &*error);
                    // Still `Disconnected` while it tries again.
                    if !self.pause(backoff(failures)).await {
                        break;
                    }
                }
            }
        }
        self.status.lock().state = ConsumerState::ShutDown;
    }

    /// One connection: declare, consume, until shutdown or a failure.
    async fn session(&self, failures: &mut u32) -> Ended {
        if let Err(e) = self.target.prepare().await {
            return Ended::Failed(e.into());
        }
        let connection = match connect(&self.config.url).await {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        let ended = self
            .consume(&connection, failures)
            .await
            .unwrap_or_else(|e| e);
        let _ = connection.close(200, "shutting down".into()).await;
        ended
    }

    async fn consume(
        &self,
        connection: &lapin::Connection,
        failures: &mut u32,
    ) -> Result<Ended, Ended> {
        let channel = connection.create_channel().await?;
        declare_exchange(&channel, &self.config.exchange).await?;
        self.config
            .queue
            .declare(&channel, &self.config.exchange)
            .await?;
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await?;
        let mut deliveries = channel
            .basic_consume(
                short(self.config.queue.name())?,
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        if *failures > 0 {
            tracing::info!("RabbitMQ reachable again; consuming");
        } else {
            tracing::info!(queue = self.config.queue.name(), "consuming");
        }
        *failures = 0;
        self.status.lock().state = ConsumerState::Consuming;
        let mut stop = self.stop.clone();
        // The deliveries' stream does not always end when the broker goes
        // away (a stopping broker may close the socket without a word): the
        // connection's and channel's state is looked at too.
        let mut look = tokio::time::interval(LOOK);
        loop {
            let next = tokio::select! {
                next = deliveries.next() => next,
                _ = stop.wait_for(|s| *s) => return Ok(Ended::ShutDown),
                _ = look.tick() => {
                    if connection.status().connected() && channel.status().connected() {
                        continue;
                    }
                    return Err(Ended::Failed("the connection to RabbitMQ was closed".into()));
                }
            };
            let first = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => return Err(e.into()),
                None => return Err(Ended::Failed("the broker cancelled the consumer".into())),
            };
            let mut batch = vec![first];
            while batch.len() < usize::from(self.config.prefetch) {
                match futures::FutureExt::now_or_never(deliveries.next()) {
                    Some(Some(Ok(delivery))) => batch.push(delivery),
                    _ => break,
                }
            }
            self.process(batch).await?;
        }
    }

    /// Applies a run of deliveries and settles each: acknowledged once
    /// applied (or found applied before), rejected to the dead-letter queue
    /// when it cannot be read or keeps failing.
    async fn process(&self, batch: Vec<Delivery>) -> Result<(), Ended> {
        let mut events = Vec::with_capacity(batch.len());
        let mut held = Vec::with_capacity(batch.len());
        for delivery in batch {
            match message::decode(&delivery.properties, &delivery.data) {
                Ok(event) => {
                    events.push(event);
                    held.push(delivery);
                }
                Err(error) => {
                    tracing::error!(error = %chain(&error), routing_key = %delivery.routing_key,
                        "a message is not an annals event; dead-lettered");
                    self.dead_letter(&delivery, &error).await?;
                }
            }
        }
        let mut rest = 0;
        let mut end = events.len();
        let mut failures = 0u32;
        while rest < events.len() {
            if self.stopping() {
                // Unacknowledged: delivered again after the restart.
                return Err(Ended::ShutDown);
            }
            let run = &events[rest..end];
            let span = tracing::info_span!(
                "annals.consume",
                events = run.len(),
                from = run[0].global_position
            );
            match self
                .target
                .apply(&self.config.name, run)
                .instrument(span)
                .await
            {
                Ok(applied) => {
                    failures = 0;
                    self.settled(run, &applied);
                    for delivery in &held[rest..end] {
                        delivery.acker.ack(BasicAckOptions::default()).await?;
                    }
                    rest = end;
                    end = events.len();
                }
                Err(BatchError::Event(0, error)) => {
                    self.one(&events[rest], &held[rest], error).await?;
                    rest += 1;
                    end = events.len();
                }
                // Apply what came before the failing event first.
                Err(BatchError::Event(index, _)) => end = rest + index,
                Err(BatchError::Database(e)) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(attempt = failures, error = %chain(&e), "consumer's database failed; retrying");
                    self.failed(ConsumerState::Retrying { attempt: failures }, &e);
                    if !self.pause(backoff(failures)).await {
                        return Err(Ended::ShutDown);
                    }
                }
                Err(BatchError::Moved) => {
                    return Err(Ended::Failed("unexpected checkpoint move".into()));
                }
            }
        }
        let mut status = self.status.lock();
        if matches!(status.state, ConsumerState::Retrying { .. }) {
            status.state = ConsumerState::Consuming;
        }
        Ok(())
    }

    fn settled(&self, events: &[RecordedEvent], applied: &[bool]) {
        let new = applied.iter().filter(|a| **a).count() as u64;
        {
            let mut status = self.status.lock();
            status.handled += new;
            status.duplicates += applied.len() as u64 - new;
        }
        if let Some(f) = &self.config.after_commit {
            for (event, _) in events.iter().zip(applied).filter(|(_, a)| **a) {
                f(event);
            }
        }
    }

    /// An event that failed in a run, alone, as the policy says; then
    /// dead-lettered if it still fails.
    async fn one(
        &self,
        event: &RecordedEvent,
        delivery: &Delivery,
        first: HandlerError,
    ) -> Result<(), Ended> {
        let policy = self.config.policy;
        let mut error = first;
        let mut attempt = 1;
        loop {
            let retryable = !matches!(error, HandlerError::Decode { .. });
            if !(retryable && attempt < policy.max_attempts()) {
                tracing::error!(
                    position = event.global_position, stream = %event.stream_id, event_type = %event.event_type,
                    attempts = attempt, error = %chain(&error),
                    "consumer gave up on an event; dead-lettered"
                );
                return self.dead_letter(delivery, &error).await;
            }
            tracing::warn!(position = event.global_position, attempt, error = %chain(&error), "projection failed; retrying");
            self.failed(ConsumerState::Retrying { attempt }, &error);
            if !self.pause(policy.pause(attempt)).await {
                return Err(Ended::ShutDown);
            }
            attempt += 1;
            match self
                .target
                .apply(&self.config.name, std::slice::from_ref(event))
                .await
            {
                Ok(applied) => {
                    self.settled(std::slice::from_ref(event), &applied);
                    self.status.lock().state = ConsumerState::Consuming;
                    delivery.acker.ack(BasicAckOptions::default()).await?;
                    return Ok(());
                }
                Err(BatchError::Event(_, again)) => error = again,
                Err(BatchError::Database(e)) => error = HandlerError::Failed(e.into()),
                Err(BatchError::Moved) => {
                    return Err(Ended::Failed("unexpected checkpoint move".into()));
                }
            }
        }
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        error: &(dyn std::error::Error + Send + Sync + 'static),
    ) -> Result<(), Ended> {
        delivery
            .acker
            .nack(BasicNackOptions {
                requeue: false,
                multiple: false,
            })
            .await?;
        let mut status = self.status.lock();
        status.dead_lettered += 1;
        status.last_error = Some(chain(error));
        Ok(())
    }
}
