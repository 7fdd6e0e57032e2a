//! What every consumer runner does with one event, whatever the transport: handle it with
//! bounded retries and back-off, and describe it as a dead letter when it keeps failing.
//!
//! Kept apart from the runners so the Kafka consumer and the embedded log's consumer have
//! exactly the same retry and dead-letter behaviour.

use serde_json::json;

use super::{Handler, RetryPolicy};
use crate::events::EventEnvelope;

/// Why an event ends in the dead-letter topic.
#[derive(Debug)]
pub(super) struct Failure {
    pub error: String,
    /// 0 when the message never reached the handler (it did not decode).
    pub attempts: u32,
}

impl Failure {
    pub fn undecodable(error: impl std::fmt::Display) -> Self {
        Self {
            error: format!("undecodable event: {error}"),
            attempts: 0,
        }
    }
}

/// Runs `handler` on `event` until it succeeds or `policy.attempts` are used up.
pub(super) async fn handle_with_retries<H: Handler + ?Sized>(
    handler: &H,
    policy: &RetryPolicy,
    event: &EventEnvelope,
) -> Result<(), Failure> {
    let mut backoff = policy.first_backoff;
    let mut attempt = 1;
    loop {
        match handler.handle(event).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= policy.attempts => {
                return Err(Failure {
                    error: error.0,
                    attempts: attempt,
                });
            }
            Err(error) => {
                tracing::warn!(consumer = handler.name(), event_id = %event.event_id, attempt, %error, "handler failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(policy.max_backoff);
                attempt += 1;
            }
        }
    }
}

/// The dead-letter topic of `topic`.
pub(super) fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Where the dead letter came from, so an operator can find and replay it.
pub(super) struct Origin<'a> {
    pub consumer: &'static str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// The dead-letter record: the original message with where it came from and why it failed.
pub(super) fn dead_letter_record(origin: &Origin<'_>, failure: &Failure, message: Option<&str>) -> serde_json::Value {
    metrics::counter!("events_dead_lettered_total", "consumer" => origin.consumer).increment(1);
    tracing::error!(
        consumer = origin.consumer,
        topic = origin.topic,
        offset = origin.offset,
        attempts = failure.attempts,
        error = failure.error,
        "event dead-lettered"
    );
    json!({
        "consumer": origin.consumer,
        "topic": origin.topic,
        "partition": origin.partition,
        "offset": origin.offset,
        "attempts": failure.attempts,
        "error": failure.error,
        "message": message,
    })
}

/// Counts a handled event.
pub(super) fn record_handled(consumer: &'static str) {
    metrics::counter!("events_handled_total", "consumer" => consumer).increment(1);
}

/// Publishes a consumer's lag on one partition.
pub(super) fn record_lag(consumer: &'static str, topic: &str, partition: i32, lag: i64) {
    metrics::gauge!(
        "event_consumer_lag",
        "consumer" => consumer,
        "topic" => topic.to_owned(),
        "partition" => partition.to_string()
    )
    .set(lag as f64);
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicU32, Ordering},
        time::Duration,
    };

    use super::*;
    use crate::bus::HandlerError;

    struct FailsTwice(AtomicU32);

    #[async_trait::async_trait]
    impl Handler for FailsTwice {
        fn name(&self) -> &'static str {
            "fails-twice"
        }

        async fn handle(&self, _event: &EventEnvelope) -> Result<(), HandlerError> {
            match self.0.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(HandlerError("not yet".to_owned())),
                _ => Ok(()),
            }
        }
    }

    fn event() -> EventEnvelope {
        EventEnvelope {
            event_id: uuid::Uuid::now_v7(),
            event_type: "Test".to_owned(),
            schema_version: 1,
            aggregate_type: "test".to_owned(),
            aggregate_id: uuid::Uuid::now_v7(),
            occurred_at: chrono::Utc::now(),
            request_id: None,
            payload: json!({}),
        }
    }

    fn policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn a_handler_is_retried_until_it_succeeds_within_the_policy() {
        let handler = FailsTwice(AtomicU32::new(0));
        handle_with_retries(&handler, &policy(3), &event()).await.unwrap();
        assert_eq!(handler.0.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_handler_that_outlasts_the_policy_fails_with_its_last_error_and_attempt_count() {
        let handler = FailsTwice(AtomicU32::new(0));
        let failure = handle_with_retries(&handler, &policy(2), &event()).await.unwrap_err();
        assert_eq!((failure.error.as_str(), failure.attempts), ("not yet", 2));
        let origin = Origin {
            consumer: "fails-twice",
            topic: "test.test",
            partition: 3,
            offset: 42,
        };
        let record = dead_letter_record(&origin, &failure, Some("{}"));
        assert_eq!(
            record,
            json!({ "consumer": "fails-twice", "topic": "test.test", "partition": 3, "offset": 42,
                    "attempts": 2, "error": "not yet", "message": "{}" })
        );
        assert_eq!(dead_letter_topic("test.test"), "test.test.dlq");
    }
}
