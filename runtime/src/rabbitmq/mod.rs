//! Asynchronous processing across processes through RabbitMQ (feature
//! `rabbitmq`, on [`lapin`]).
//!
//! Two halves, usually in different processes:
//!
//! - A [`Publisher`] is a durable subscription of an [`App`](crate::App)
//!   (`AppBuilder::publisher`): it follows the global log like any event
//!   handler (its turn, its checkpoint in the store) and publishes each
//!   event to a topic exchange, persistent, with the routing key
//!   `<category>.<event type>` ([`routing_key`]) and headers naming the
//!   event ([`message`]). It checkpoints a page only after the broker
//!   confirmed every message of it, so a crash publishes again and never
//!   drops; consumers deduplicate by event id.
//! - A [`Consumer`] (features `sqlite` or `postgres` too) runs a
//!   [`Projection`](crate::projection::Projection) from a queue bound to that
//!   exchange instead of the store's log: manual acks after the
//!   projection's transaction committed, a prefetch, the retry policy, then
//!   a dead-letter queue, and an idempotent-consumer table
//!   (`annals_consumed`) written in the projection's own transaction, so a
//!   redelivered event is never applied twice.
//!
//! Both declare what they use (the exchange; the queue, its bindings, its
//! dead-letter exchange and queue) with the same arguments ([`Queue`]), and
//! both reconnect with a backoff when the broker goes away, saying so in
//! `tracing` and in their status.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod consumer;
pub mod message;
mod publisher;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use consumer::{AfterCommit, Consumer, ConsumerHandle, ConsumerState, ConsumerStatus};
pub use lapin;
pub use message::{MessageError, routing_key};
pub use publisher::Publisher;
pub(crate) use publisher::{PublishError, PublisherTask};

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;

/// A durable queue bound to the events' exchange, with its dead-letter
/// exchange and queue: what a [`Consumer`] reads, and what a [`Publisher`]
/// may declare up front so that nothing published before the consumer's
/// first start is lost.
///
/// Its dead-letter exchange is `"<queue>.dead-letter"` (fanout) and the
/// queue behind it `"<queue>.dead-letter"` too; the broker moves an event
/// there when the consumer gives up on it.
///
/// ```
/// use annals::rabbitmq::Queue;
/// let history = Queue::new("bank.history").bind("Account.*").bind("Teller.*");
/// assert_eq!(history.dead_letter_queue(), "bank.history.dead-letter");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    name: String,
    patterns: Vec<String>,
}

impl Queue {
    /// A queue named `name`, bound to nothing yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            patterns: Vec::new(),
        }
    }

    /// Binds it with a topic pattern: `"Account.*"` (every event of the
    /// `Account` category), `"*.MoneyDeposited"`, `"#"` (everything).
    pub fn bind(mut self, pattern: impl Into<String>) -> Self {
        self.patterns.push(pattern.into());
        self
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue its dead letters go to.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letter", self.name)
    }

    /// Declares the queue, its bindings on `exchange`, and its dead-letter
    /// exchange and queue. Idempotent; every declarer passes the same
    /// arguments.
    pub(crate) async fn declare(
        &self,
        channel: &Channel,
        exchange: &str,
    ) -> Result<(), RabbitError> {
        let dead = self.dead_letter_queue();
        let name = short(&self.name)?;
        let dead_name = short(&dead)?;
        channel
            .exchange_declare(
                dead_name.clone(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                dead_name.clone(),
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                dead_name.clone(),
                dead_name.clone(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(dead.as_bytes())),
        );
        channel
            .queue_declare(name.clone(), QueueDeclareOptions::durable(), arguments)
            .await?;
        for pattern in &self.patterns {
            channel
                .queue_bind(
                    name.clone(),
                    short(exchange)?,
                    short(pattern)?,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }
}

/// What went wrong talking to RabbitMQ.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RabbitError {
    /// The broker or the connection failed (unreachable, closed, refused
    /// an operation).
    #[error("RabbitMQ failed")]
    Broker(#[from] lapin::Error),
    /// The connection to the broker was closed while waiting on it.
    #[error("the connection to RabbitMQ was closed")]
    Closed,
    /// The broker did not complete a connection in time.
    #[error("RabbitMQ did not complete the connection within {0:?}")]
    ConnectTimeout(Duration),
    /// The broker refused to take a message (a negative confirm).
    #[error("RabbitMQ did not confirm the message of event at position {0}")]
    Nacked(u64),
    /// A name is longer than AMQP's 255 bytes.
    #[error("`{0}` is longer than AMQP's 255 bytes")]
    NameTooLong(String),
}

pub(crate) fn short(name: &str) -> Result<ShortString, RabbitError> {
    ShortString::try_new(name).map_err(|_| RabbitError::NameTooLong(name.to_owned()))
}

/// How long a connection attempt may take: a broker that accepts the TCP
/// connection but does not answer (it is stopping or starting) is tried
/// again rather than waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `url` (`amqp://guest:guest@127.0.0.1:5672/%2f`).
pub(crate) async fn connect(url: &str) -> Result<Connection, RabbitError> {
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    {
        Ok(connected) => Ok(connected?),
        Err(_) => Err(RabbitError::ConnectTimeout(CONNECT_TIMEOUT)),
    }
}

/// Declares the events' topic exchange (durable).
pub(crate) async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), RabbitError> {
    channel
        .exchange_declare(
            short(exchange)?,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// The pause before reconnecting after `failures` failures in a row: from
/// 100 ms, doubling, at most 5 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(5))
}
