//! The event backbone's transport: where outbox rows go once committed, and how
//! consumers receive them.
//!
//! Where it sits: each publishing service runs an [`OutboxRelay`] over its `outbox`
//! table; the relay hands ordered batches of [`EventEnvelope`]s to a [`Publisher`] and
//! marks them published only after the publisher reports the broker's acknowledgement.
//! The publisher is Kafka ([`KafkaPublisher`], `KAFKA_BROKERS`) or, as the embedded
//! default, the [`EmbeddedLog`]: topics in the publishing service's own database, read
//! by other processes over HTTP ([`feed_routes`], [`RemoteLog`]). Consumers run a
//! [`Handler`] per consumer group with the same retries and dead-letter topic on either
//! transport ([`KafkaConsumerRunner`], [`LogConsumerRunner`]); [`EventBus`] picks one.
//! The waiting loops (the relay on an empty outbox, a read at the end of a topic) are
//! woken by the writers ([`doorbell`]), not by polling.

mod consumer;
pub(crate) mod doorbell;
mod feed;
mod handling;
mod kafka;
mod log;
mod log_consumer;
mod relay;
mod wiring;

pub use consumer::{Handler, HandlerError, KafkaConsumerRunner, RetryPolicy, consumer_config};
pub use feed::{RemoteLog, feed_routes};
pub use kafka::{KafkaPublisher, producer_config};
pub use log::{EmbeddedLog, LogBatch, LogError, LogRecord, LogSource, entity as log_entity};
pub use log_consumer::LogConsumerRunner;
pub use relay::{OutboxRelay, RelayError};
pub use wiring::{EventBus, EventConsumer, TopicHome};

use crate::events::EventEnvelope;

/// Why a batch was not (fully) acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("publishing failed after {acknowledged} acknowledged event(s): {reason}")]
pub struct PublishError {
    /// How many events at the front of the batch the broker did acknowledge.
    pub acknowledged: usize,
    pub reason: String,
}

/// Sends events to their topics, keyed by aggregate id.
#[async_trait::async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes `events` of `service` in order; returns once every one is acknowledged,
    /// or with the first failure.
    async fn publish(&self, service: &str, events: &[EventEnvelope]) -> Result<(), PublishError>;

    /// Which transport this is, for logs.
    fn kind(&self) -> &'static str;
}
