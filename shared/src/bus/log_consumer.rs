//! Consuming the embedded event log: the same contract as the Kafka consumer (at least
//! once, offsets committed after the effect, bounded retries, a dead-letter topic, the
//! `event_consumer_lag` gauge), over a [`LogSource`] in this process or another.
//!
//! A topic of the embedded log is one ordered sequence (one "partition", reported as 0).
//! The runner handles a batch record by record, flushes the handler, then commits the last
//! offset; a crash before the commit redelivers the batch, which idempotent handlers
//! absorb.
//!
//! A read returns as soon as one record is there, so under a steady stream each read
//! carries one event, and each costs the topic's home a read and a commit. A consumer
//! that can wait a little for its events ([`LogConsumerRunner::gathering`]) pauses after
//! each batch instead, and the next read carries everything published meanwhile.

use std::{sync::Arc, time::Duration};

use futures::FutureExt as _;

use super::{
    Handler, RetryPolicy,
    handling::{
        Failure, Origin, dead_letter_record, dead_letter_topic, handle_with_retries, record_handled, record_lag,
    },
    log::{LogRecord, LogSource},
};
use crate::events::EventEnvelope;

/// Records per read.
const BATCH: u64 = 500;
/// How long one read waits for new records (a long poll).
const WAIT: Duration = Duration::from_secs(2);

pub struct LogConsumerRunner<H> {
    source: Arc<dyn LogSource>,
    group: String,
    topic: String,
    handler: H,
    policy: RetryPolicy,
    /// The pause after a batch that reached the topic's end: an event waits at most this
    /// long beyond its predecessor, and one read and one commit serve every event
    /// published during the pause. Zero: read again at once.
    gather: Duration,
}

impl<H: Handler> LogConsumerRunner<H> {
    /// `handler` as consumer group `group` on `topic` of `source`.
    pub fn new(source: Arc<dyn LogSource>, group: &str, topic: &str, handler: H, policy: RetryPolicy) -> Self {
        Self {
            source,
            group: group.to_owned(),
            topic: topic.to_owned(),
            handler,
            policy,
            gather: Duration::ZERO,
        }
    }

    /// Pauses `window` after each batch that reached the topic's end (see the module
    /// header).
    pub fn gathering(mut self, window: Duration) -> Self {
        self.gather = window;
        self
    }

    /// Consumes until `stop` resolves; an event being handled is finished and committed
    /// first.
    ///
    /// `stop` must be a plain signal (a channel receive, a shutdown listener), never work
    /// that takes a resource: it is polled only between events, so a database query there
    /// would be left half-run, holding its pool permit or connection, while the handler
    /// waits for one (see `projection_state::run`).
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let name = self.handler.name();
        tracing::info!(
            consumer = name,
            group = self.group,
            topic = self.topic,
            log = self.source.origin(),
            "event log consumer started"
        );
        let mut backoff = self.policy.first_backoff;
        let mut position = loop {
            let committed = tokio::select! {
                () = &mut stop => return,
                committed = self.source.committed(&self.group, &self.topic) => committed,
            };
            match committed {
                Ok(position) => break position,
                Err(error) => {
                    tracing::warn!(consumer = name, %error, "cannot read the committed offset; retrying");
                    tokio::select! {
                        () = &mut stop => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                }
            }
        };
        backoff = self.policy.first_backoff;
        loop {
            let batch = tokio::select! {
                () = &mut stop => break,
                batch = self.source.read(&self.topic, position, BATCH, WAIT) => batch,
            };
            let batch = match batch {
                Ok(batch) => {
                    backoff = self.policy.first_backoff;
                    batch
                }
                Err(error) => {
                    tracing::warn!(consumer = name, %error, "cannot read the event log; retrying");
                    tokio::select! {
                        () = &mut stop => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                    continue;
                }
            };
            let mut handled = position;
            let mut stopping = false;
            for record in &batch.records {
                self.process(record).await;
                handled = record.offset;
                if (&mut stop).now_or_never().is_some() {
                    stopping = true;
                    break;
                }
            }
            let unprocessed = batch.records.iter().filter(|record| record.offset > handled).count() as u64;
            record_lag(name, &self.topic, 0, (batch.remaining + unprocessed) as i64);
            if handled > position {
                self.handler.flush().await;
                // A failed commit only means redelivery after a restart.
                match self.source.commit(&self.group, &self.topic, handled).await {
                    Ok(()) => {}
                    Err(error) => tracing::warn!(consumer = name, %error, "failed to commit an offset"),
                }
                position = handled;
            }
            if stopping {
                break;
            }
            if !self.gather.is_zero() && !batch.records.is_empty() && batch.remaining == 0 {
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(self.gather) => {}
                }
            }
        }
        tracing::info!(consumer = name, topic = self.topic, "event log consumer stopped");
    }

    async fn process(&self, record: &LogRecord) {
        let name = self.handler.name();
        let outcome = match serde_json::from_value::<EventEnvelope>(record.payload.clone()) {
            Ok(event) => handle_with_retries(&self.handler, &self.policy, &event).await,
            Err(error) => Err(Failure::undecodable(error)),
        };
        let failure = match outcome {
            Ok(()) => return record_handled(name),
            Err(failure) => failure,
        };
        let origin = Origin {
            consumer: name,
            topic: &self.topic,
            partition: 0,
            offset: record.offset,
        };
        let message = record.payload.to_string();
        let dead_letter = dead_letter_record(&origin, &failure, Some(&message));
        let topic = dead_letter_topic(&self.topic);
        // The offset moves on only once the dead letter is safely stored.
        while let Err(error) = self
            .source
            .append_dead_letter(&topic, record.key.as_deref(), &dead_letter)
            .await
        {
            tracing::warn!(consumer = name, %error, "failed to write a dead letter; retrying");
            tokio::time::sleep(self.policy.max_backoff).await;
        }
    }
}
