//! Consuming events from Kafka: one consumer group per handler, at-least-once delivery,
//! bounded retries, and a dead-letter topic for events that keep failing.
//!
//! Where it sits: a service runs one [`KafkaConsumerRunner`] per [`Handler`]. Each event
//! is handled (retried with exponential back-off up to [`RetryPolicy::attempts`]), and
//! only then is its offset committed; a crash before the commit redelivers it, so
//! handlers must be idempotent on `event_id` (they record it with their effect). An
//! event that still fails, or that does not decode, is written to `<topic>.dlq` with the
//! error and the consumer moves on: one poison message never stops a partition. Each
//! partition's lag is a gauge, `event_consumer_lag`, from librdkafka's statistics.

use std::time::Duration;

use super::handling::{
    Failure, Origin, dead_letter_record, dead_letter_topic, handle_with_retries, record_handled, record_lag,
};
use crate::events::EventEnvelope;
use rdkafka::{
    ClientConfig, ClientContext, Message, Statistics,
    consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer},
    message::BorrowedMessage,
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};

/// A handler's failure; its text goes to the logs and the dead-letter record.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    /// `error` with its whole cause chain: the text an operator reads in a dead letter
    /// (an `AppError`'s own text hides its cause from clients, not from operators).
    pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        Self(text)
    }
}

/// What a service does with the events of its subscription.
#[async_trait::async_trait]
pub trait Handler: Send + Sync {
    /// Names the consumer group (`<service>.<name>`) and the metrics.
    fn name(&self) -> &'static str;

    /// Applies one event. Must be idempotent on `event.event_id`.
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError>;

    /// Applies what `handle` deferred for the events handled since the last call; the
    /// runners call it before they commit those events' offsets, so a crash in between
    /// redelivers them. For a handler whose effect is the same for a run of events
    /// (retiring one cache scope): once per run instead of once per event. It cannot fail:
    /// the events already count as handled, so a fallible effect belongs in `handle`.
    async fn flush(&self) {}
}

/// A shared handler (a service keeps using it after handing it to a runner).
#[async_trait::async_trait]
impl<H: Handler + ?Sized> Handler for std::sync::Arc<H> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        (**self).handle(event).await
    }

    async fn flush(&self) {
        (**self).flush().await
    }
}

/// How often and how patiently a failing event is retried before it is dead-lettered.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The settings of a consumer in `group` reading from `brokers`.
pub fn consumer_config(brokers: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        // Offsets are committed by hand, after the handler's effect.
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        // A member lost in a broker outage is replaced after 10 s rather than Kafka's
        // default 45 s: measured, a consumer that was joining when the broker went away
        // resumed 19 s after it returned instead of 89 s.
        .set("session.timeout.ms", "10000")
        // How long a fetch waits for data when there is none: bounds the delivery delay
        // where the broker does not answer a fetch as soon as data arrives (librdkafka's
        // mock cluster: p50 288 ms at the 500 ms default, measured).
        .set("fetch.wait.max.ms", "100")
        .set("heartbeat.interval.ms", "2000")
        // librdkafka's statistics carry each partition's lag (see `LagReporter`).
        .set("statistics.interval.ms", "1000");
    config
}

/// Publishes librdkafka's per-partition consumer lag as the gauge
/// `event_consumer_lag{consumer,topic,partition}` (events between the committed offset
/// and the partition's end), each statistics interval.
struct LagReporter {
    consumer: &'static str,
}

impl ClientContext for LagReporter {
    fn stats(&self, statistics: Statistics) {
        for (topic, details) in &statistics.topics {
            for (partition, state) in &details.partitions {
                // -1 is librdkafka's internal "unassigned" partition; a lag of -1 is unknown.
                if *partition < 0 || state.consumer_lag < 0 {
                    continue;
                }
                record_lag(self.consumer, topic, *partition, state.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for LagReporter {}

pub struct KafkaConsumerRunner<H> {
    consumer: StreamConsumer<LagReporter>,
    dead_letters: FutureProducer,
    handler: H,
    policy: RetryPolicy,
}

impl<H: Handler> KafkaConsumerRunner<H> {
    /// Subscribes `handler` to `topics` as consumer group `group`.
    pub fn new(brokers: &str, group: &str, topics: &[&str], handler: H, policy: RetryPolicy) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let consumer: StreamConsumer<LagReporter> = consumer_config(brokers, group)
            .create_with_context(LagReporter {
                consumer: handler.name(),
            })
            .context("failed to create the Kafka consumer")?;
        consumer
            .subscribe(topics)
            .context("failed to subscribe the Kafka consumer")?;
        let dead_letters = super::producer_config(brokers)
            .create()
            .context("failed to create the dead-letter producer")?;
        Ok(Self {
            consumer,
            dead_letters,
            handler,
            policy,
        })
    }

    /// Consumes until `stop` resolves.
    ///
    /// `stop` must be a plain signal (a channel receive, a shutdown listener), never work
    /// that takes a resource: it is polled only between events, so a database query there
    /// would be left half-run, holding its pool permit or connection, while the handler
    /// waits for one (see `projection_state::run`).
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let message = tokio::select! {
                () = &mut stop => break,
                message = self.consumer.recv() => message,
            };
            match message {
                Ok(message) => self.process(&message).await,
                Err(error) => {
                    tracing::warn!(consumer = self.handler.name(), %error, "Kafka consumer error");
                    tokio::time::sleep(self.policy.first_backoff).await;
                }
            }
        }
    }

    async fn process(&self, message: &BorrowedMessage<'_>) {
        let name = self.handler.name();
        let outcome = match message.payload().map(serde_json::from_slice::<EventEnvelope>) {
            Some(Ok(event)) => handle_with_retries(&self.handler, &self.policy, &event).await,
            Some(Err(error)) => Err(Failure::undecodable(error)),
            None => Err(Failure::undecodable("empty message")),
        };
        match outcome {
            Ok(()) => record_handled(name),
            Err(failure) => {
                let origin = Origin {
                    consumer: name,
                    topic: message.topic(),
                    partition: message.partition(),
                    offset: message.offset(),
                };
                let payload = message.payload().map(String::from_utf8_lossy);
                let record = dead_letter_record(&origin, &failure, payload.as_deref()).to_string();
                // The offset moves on only once the dead letter is safely stored.
                while let Err(reason) = self.dead_letter(message, &record).await {
                    tracing::warn!(consumer = name, reason, "failed to write a dead letter; retrying");
                    tokio::time::sleep(self.policy.max_backoff).await;
                }
            }
        }
        self.handler.flush().await;
        if let Err(error) = self.consumer.commit_message(message, CommitMode::Async) {
            // The event will be delivered again; the handler is idempotent.
            tracing::warn!(consumer = name, %error, "failed to commit an offset");
        }
    }

    async fn dead_letter(&self, message: &BorrowedMessage<'_>, record: &str) -> Result<(), String> {
        let topic = dead_letter_topic(message.topic());
        let mut dead_letter = FutureRecord::to(&topic).payload(record);
        if let Some(key) = message.key() {
            dead_letter = dead_letter.key(key);
        }
        self.dead_letters
            .send(dead_letter, Timeout::After(Duration::from_secs(5)))
            .await
            .map(drop)
            .map_err(|(error, _)| error.to_string())
    }
}
