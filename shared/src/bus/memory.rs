//! The embedded bus: one append-only log per topic in this process, used when
//! `KAFKA_BROKERS` is unset. Appends are acknowledged at once and read back in order by
//! offset, like a single-partition Kafka topic; the outbox stays the durable record, so a
//! restart republishes whatever was not marked published.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::{PublishError, Publisher};
use crate::events::EventEnvelope;

#[derive(Clone, Default)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    topics: Mutex<HashMap<String, Vec<EventEnvelope>>>,
}

impl InProcessBus {
    /// Up to `max` events of `topic` from `offset` on.
    pub fn read(&self, topic: &str, offset: usize, max: usize) -> Vec<EventEnvelope> {
        let Ok(topics) = self.inner.topics.lock() else {
            return Vec::new();
        };
        topics
            .get(topic)
            .map(|log| log.iter().skip(offset).take(max).cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Publisher for InProcessBus {
    async fn publish(&self, service: &str, events: &[EventEnvelope]) -> Result<(), PublishError> {
        let mut topics = self.inner.topics.lock().map_err(|_| PublishError {
            acknowledged: 0,
            reason: "the in-process bus is poisoned".to_owned(),
        })?;
        for event in events {
            topics.entry(event.topic(service)).or_default().push(event.clone());
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }
}
