//! The publisher: a durable subscription that publishes the log to a topic
//! exchange.

use super::{Queue, RabbitError, connect, declare_exchange, message, short};
use crate::store::RecordedEvent;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{Channel, Connection};

/// Publishes every recorded event to a RabbitMQ topic exchange: a durable
/// subscription of the [`App`](crate::App) it is given to
/// ([`AppBuilder::publisher`](crate::AppBuilder::publisher)).
///
/// It runs as an event handler named [`name`](Self::name) (default
/// `"rabbitmq-publisher"`): one process at a time among those sharing the
/// store (its turn), its checkpoint in the store, its state in
/// [`App::handler_status`](crate::App::handler_status). Each page of the log
/// is published in order on one channel with publisher confirms, persistent
/// (delivery mode 2), and the checkpoint moves past it only once the broker
/// confirmed all of it: a crash or a lost connection publishes the page
/// again, so consumers see every event at least once and deduplicate by
/// its id. While the broker cannot be reached, the handler is `Retrying`
/// with the error in its status, and reconnects with a backoff (100 ms
/// doubling to 5 s).
///
/// A topic exchange drops a message no queue is bound to:
/// [`declare`](Self::declare) the queues consumers will read, so events
/// published before a consumer's first start wait for it.
///
/// ```no_run
/// use annals::prelude::*;
/// use annals::rabbitmq::{Publisher, Queue};
/// # fn run(store: annals::AnyStore) -> Result<(), annals::BuildError> {
/// let app = App::builder()
///     .store(store)
///     .publisher(
///         Publisher::new("amqp://guest:guest@127.0.0.1:5672/%2f", "bank.events")
///             .declare(Queue::new("bank.history").bind("Account.*")),
///     )
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Publisher {
    pub(crate) name: &'static str,
    url: String,
    exchange: String,
    queues: Vec<Queue>,
}

impl Publisher {
    /// Publishes to the topic exchange `exchange` (declared durable) of the
    /// broker at `url`.
    pub fn new(url: impl Into<String>, exchange: impl Into<String>) -> Self {
        Self {
            name: "rabbitmq-publisher",
            url: url.into(),
            exchange: exchange.into(),
            queues: Vec::new(),
        }
    }

    /// The subscription's durable name (its checkpoint's key and its turn);
    /// two publishers of one store to two exchanges need two names.
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Declares `queue` (and its bindings and dead-letter queue) whenever it
    /// connects, before publishing.
    pub fn declare(mut self, queue: Queue) -> Self {
        self.queues.push(queue);
        self
    }

    /// The exchange it publishes to.
    pub fn exchange(&self) -> &str {
        &self.exchange
    }
}

/// How often a publisher waiting for confirms looks at its connection.
const LOOK: std::time::Duration = std::time::Duration::from_millis(250);

/// Resolves once the connection or channel is no longer open.
async fn closed(connection: &Connection, channel: &Channel) -> RabbitError {
    loop {
        tokio::time::sleep(LOOK).await;
        if !(connection.status().connected() && channel.status().connected()) {
            return RabbitError::Closed;
        }
    }
}

/// Why a page was not published.
pub(crate) enum PublishError {
    /// The event at this index of the page cannot be a message; nothing
    /// was published.
    Message(usize, message::MessageError),
    /// The broker failed or refused; the connection is dropped and the
    /// page is to be published again, whole.
    Broker(RabbitError),
}

struct Link {
    connection: Connection,
    channel: Channel,
}

/// A [`Publisher`] as the handler runner drives it.
pub(crate) struct PublisherTask {
    config: Publisher,
    exchange: ShortString,
    link: tokio::sync::Mutex<Option<Link>>,
}

impl PublisherTask {
    pub(crate) fn new(config: Publisher) -> Result<Self, RabbitError> {
        Ok(Self {
            exchange: short(&config.exchange)?,
            config,
            link: tokio::sync::Mutex::new(None),
        })
    }

    async fn open(&self) -> Result<Link, RabbitError> {
        let connection = connect(&self.config.url).await?;
        let channel = connection.create_channel().await?;
        declare_exchange(&channel, &self.config.exchange).await?;
        for queue in &self.config.queues {
            queue.declare(&channel, &self.config.exchange).await?;
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        tracing::info!(exchange = %self.config.exchange, "connected to RabbitMQ");
        Ok(Link {
            connection,
            channel,
        })
    }

    /// Publishes `events` in order and waits until the broker confirmed
    /// every one.
    pub(crate) async fn publish(&self, events: &[RecordedEvent]) -> Result<(), PublishError> {
        let mut messages = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            messages.push(message::encode(event).map_err(|e| PublishError::Message(index, e))?);
        }
        let mut link = self.link.lock().await;
        let open = match &mut *link {
            Some(open) => open,
            slot @ None => slot.insert(self.open().await.map_err(PublishError::Broker)?),
        };
        // A confirm may never come when the broker goes away without a
        // word: the connection's state is looked at meanwhile.
        let sent = tokio::select! {
            sent = self.send(&open.channel, events, messages) => sent,
            closed = closed(&open.connection, &open.channel) => Err(closed),
        };
        if sent.is_err() {
            // Whatever the broker holds of this page is published again on
            // a fresh connection.
            if let Some(old) = link.take() {
                let _ = old.connection.close(0, "".into()).await;
            }
        }
        sent.map_err(PublishError::Broker)
    }

    async fn send(
        &self,
        channel: &Channel,
        events: &[RecordedEvent],
        messages: Vec<(ShortString, lapin::BasicProperties)>,
    ) -> Result<(), RabbitError> {
        let mut confirms = Vec::with_capacity(events.len());
        for (event, (key, properties)) in events.iter().zip(messages) {
            let confirm = channel
                .basic_publish(
                    self.exchange.clone(),
                    key,
                    BasicPublishOptions::default(),
                    event.payload.as_str().as_bytes(),
                    properties,
                )
                .await?;
            confirms.push((event.global_position, confirm));
        }
        for (position, confirm) in confirms {
            if !confirm.await?.is_ack() {
                return Err(RabbitError::Nacked(position));
            }
        }
        Ok(())
    }
}
