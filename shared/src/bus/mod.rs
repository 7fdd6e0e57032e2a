//! The event backbone's transport: where outbox rows go once committed.
//!
//! Where it sits: each publishing service runs an [`OutboxRelay`] over its `outbox`
//! table; the relay hands ordered batches of [`EventEnvelope`]s to a [`Publisher`] and
//! marks them published only after the publisher reports the broker's acknowledgement.
//! The publisher is Kafka ([`KafkaPublisher`], `KAFKA_BROKERS`) or, as the embedded
//! default, the [`InProcessBus`]: topic logs in this process with the same ordering.
//! Consumers run a [`Handler`] per consumer group with retries and a dead-letter topic
//! ([`KafkaConsumerRunner`]).

mod consumer;
mod kafka;
mod memory;
mod relay;

pub use consumer::{Handler, HandlerError, KafkaConsumerRunner, RetryPolicy, consumer_config};
pub use kafka::{KafkaPublisher, producer_config};
pub use memory::InProcessBus;
pub use relay::{OutboxRelay, RelayError};

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
