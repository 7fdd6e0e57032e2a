//! Publishing to Kafka with rdkafka's idempotent producer.
//!
//! `acks=all` and idempotence mean an acknowledged event is on every in-sync replica and
//! retries never duplicate or reorder a partition's messages. Delivery has no timeout:
//! while the broker is away the producer keeps the batch and retries, so a relay waits
//! out an outage instead of failing part of a batch (which could reorder an aggregate's
//! events when the rest is sent again).

use std::time::Duration;

use futures::future::join_all;
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};

use super::{PublishError, Publisher};
use crate::events::EventEnvelope;

/// The producer settings every publisher uses, for `brokers`.
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // 0 = no delivery timeout: an outage delays a batch, it never splits it.
        .set("message.timeout.ms", "0")
        .set("linger.ms", "2")
        .set("compression.type", "lz4");
    config
}

pub struct KafkaPublisher {
    producer: FutureProducer,
}

impl KafkaPublisher {
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let producer = config.create().context("failed to create the Kafka producer")?;
        Ok(Self { producer })
    }
}

#[async_trait::async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, service: &str, events: &[EventEnvelope]) -> Result<(), PublishError> {
        let mut encoded = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_vec(event).map_err(|error| PublishError {
                acknowledged: 0,
                reason: error.to_string(),
            })?;
            encoded.push((event.topic(service), event.aggregate_id.to_string(), payload));
        }
        // Enqueue everything first (in order), then wait: one round of acknowledgements.
        let deliveries = encoded.iter().map(|(topic, key, payload)| {
            self.producer.send(
                FutureRecord::to(topic).key(key).payload(payload),
                Timeout::After(Duration::from_secs(5)),
            )
        });
        let results = join_all(deliveries).await;
        match results.iter().position(Result::is_err) {
            None => Ok(()),
            Some(acknowledged) => {
                let reason = match &results[acknowledged] {
                    Err((error, _)) => error.to_string(),
                    Ok(_) => String::new(),
                };
                Err(PublishError { acknowledged, reason })
            }
        }
    }

    fn kind(&self) -> &'static str {
        "kafka"
    }
}
