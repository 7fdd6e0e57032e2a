//! Choosing the transport once per process: Kafka when `KAFKA_BROKERS` is set, the
//! embedded event log otherwise, with the same publisher and consumer contracts.
//!
//! Services ask this module for their relay's [`Publisher`] and for consumers of a topic,
//! saying where the topic lives ([`TopicHome`]); they never branch on the transport.

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;

use super::{
    EmbeddedLog, Handler, KafkaConsumerRunner, KafkaPublisher, LogConsumerRunner, Publisher, RemoteLog, RetryPolicy,
    producer_config,
};
use crate::config::Settings;

/// The event transport of this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBus {
    Kafka {
        brokers: String,
    },
    /// Each publishing service's own database holds its topics.
    Embedded,
}

/// Where a consumed topic is stored when the embedded log is in use.
pub enum TopicHome {
    /// The topic is published by this process, into this database.
    ThisProcess(DatabaseConnection),
    /// The topic is published by the service whose GraphQL endpoint this is.
    Service(String),
}

impl EventBus {
    pub fn from_settings(settings: &Settings) -> Self {
        match &settings.kafka_brokers {
            Some(brokers) => EventBus::Kafka {
                brokers: brokers.clone(),
            },
            None => EventBus::Embedded,
        }
    }

    /// Says in the log which transport `service` uses.
    pub fn log_ready(&self, service: &str) {
        match self {
            EventBus::Kafka { brokers } => tracing::info!(service, events = "kafka", brokers, "event bus ready"),
            EventBus::Embedded => tracing::info!(
                service,
                events = "embedded-log",
                "event bus ready (embedded default: KAFKA_BROKERS is not set; topics live in each publishing service's database)"
            ),
        }
    }

    /// Where `db`'s outbox relay publishes.
    pub fn publisher(&self, db: &DatabaseConnection) -> anyhow::Result<Arc<dyn Publisher>> {
        Ok(match self {
            EventBus::Kafka { brokers } => Arc::new(KafkaPublisher::new(&producer_config(brokers))?),
            EventBus::Embedded => Arc::new(EmbeddedLog::new(db.clone())),
        })
    }

    /// `handler` as consumer group `group` of `topic`.
    pub fn consumer<H: Handler>(
        &self,
        group: &str,
        topic: &str,
        home: TopicHome,
        handler: H,
        policy: RetryPolicy,
    ) -> anyhow::Result<EventConsumer<H>> {
        Ok(match self {
            EventBus::Kafka { brokers } => {
                EventConsumer::Kafka(KafkaConsumerRunner::new(brokers, group, &[topic], handler, policy)?)
            }
            EventBus::Embedded => {
                let source: Arc<dyn super::LogSource> = match home {
                    TopicHome::ThisProcess(db) => Arc::new(EmbeddedLog::new(db)),
                    TopicHome::Service(url) => Arc::new(RemoteLog::new(&url)?),
                };
                EventConsumer::Log(LogConsumerRunner::new(source, group, topic, handler, policy))
            }
        })
    }
}

/// A consumer on either transport.
pub enum EventConsumer<H> {
    Kafka(KafkaConsumerRunner<H>),
    Log(LogConsumerRunner<H>),
}

impl<H: Handler> EventConsumer<H> {
    /// On the embedded log, pauses `window` between reads so one read and one commit
    /// carry every event published meanwhile ([`LogConsumerRunner::gathering`]). Kafka's
    /// consumer fetches in batches on its own (`fetch.wait.max.ms`) and ignores it.
    pub fn gathering(self, window: Duration) -> Self {
        match self {
            EventConsumer::Kafka(runner) => EventConsumer::Kafka(runner),
            EventConsumer::Log(runner) => EventConsumer::Log(runner.gathering(window)),
        }
    }

    /// Consumes until `stop` resolves.
    ///
    /// `stop` must be a plain signal (a channel receive, a shutdown listener), never work
    /// that takes a resource: it is polled only between events, so a database query there
    /// would be left half-run, holding its pool permit or connection, while the handler
    /// waits for one (see `projection_state::run`).
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) {
        match self {
            EventConsumer::Kafka(runner) => runner.run_until(stop).await,
            EventConsumer::Log(runner) => runner.run_until(stop).await,
        }
    }
}
