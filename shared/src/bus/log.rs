//! The embedded event log: the broker of the embedded default (`KAFKA_BROKERS` unset).
//!
//! Where it sits: a publishing service's relay appends its events to the `event_log`
//! table of the service's own database ([`EmbeddedLog`] is then the relay's
//! [`Publisher`]); consumer groups read a topic by offset and commit their position in
//! `event_log_offsets`, as Kafka keeps committed offsets. Consumers in the publishing
//! process read the table directly; other processes read it over HTTP
//! ([`super::feed`]). Both sides see the same [`LogSource`] operations, so one consumer
//! runner ([`super::LogConsumerRunner`]) serves either.
//!
//! Semantics match the Kafka path: the outbox stays the durable record, the relay marks
//! events published only after the append committed (a crash in between appends them
//! again: at least once), a topic is totally ordered by offset (stronger than Kafka's
//! per-partition order), and the log survives restarts because it is in the database.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};

use super::{PublishError, Publisher, doorbell::LOG_APPENDS};
use crate::events::EventEnvelope;

/// The `event_log` and `event_log_offsets` tables (created by `vitrina_migrations::event_log`).
pub mod entity {
    pub mod record {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "event_log")]
        pub struct Model {
            /// One sequence for the whole log; a topic's records are in increasing order.
            #[sea_orm(primary_key)]
            pub log_offset: i64,
            pub topic: String,
            /// The aggregate id, like a Kafka message key.
            pub record_key: Option<String>,
            pub payload: Json,
            pub appended_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod offset {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "event_log_offsets")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub consumer_group: String,
            #[sea_orm(primary_key, auto_increment = false)]
            pub topic: String,
            /// The last offset whose effect the group has applied; 0 before the first.
            pub committed_offset: i64,
            pub updated_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{offset, record};

/// How long a waiting read is left alone unless an append in this process rings its
/// topic (see [`super::doorbell`]): the safety net for records appended by another
/// replica sharing the database.
const IDLE_AT_MOST: Duration = Duration::from_millis(250);

/// One record of a topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    pub offset: i64,
    pub key: Option<String>,
    pub payload: serde_json::Value,
}

/// Records after a position, and how many more are waiting behind them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogBatch {
    pub records: Vec<LogRecord>,
    /// Records of the topic after the last one returned (the reader's lag).
    pub remaining: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log database error: {0}")]
    Database(#[from] DbErr),
    #[error("event log at {origin} failed: {reason}")]
    Remote { origin: String, reason: String },
    #[error("{0}")]
    Refused(String),
}

/// The operations a consumer needs from a log, local or remote.
#[async_trait::async_trait]
pub trait LogSource: Send + Sync {
    /// Up to `max` records of `topic` after offset `after`, waiting up to `wait` for the
    /// first one to appear.
    async fn read(&self, topic: &str, after: i64, max: u64, wait: Duration) -> Result<LogBatch, LogError>;
    /// The offset `group` last committed on `topic` (0: none yet, start at the beginning).
    async fn committed(&self, group: &str, topic: &str) -> Result<i64, LogError>;
    async fn commit(&self, group: &str, topic: &str, offset: i64) -> Result<(), LogError>;
    /// Appends a dead letter to `topic` (only `*.dlq` topics are writable this way).
    async fn append_dead_letter(
        &self,
        topic: &str,
        key: Option<&str>,
        record: &serde_json::Value,
    ) -> Result<(), LogError>;
    /// Where the log lives, for logs.
    fn origin(&self) -> String;
}

/// The log in this process's database.
#[derive(Clone)]
pub struct EmbeddedLog {
    db: DatabaseConnection,
}

impl EmbeddedLog {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn read_now(&self, topic: &str, after: i64, max: u64) -> Result<LogBatch, LogError> {
        let rows = record::Entity::find()
            .filter(record::Column::Topic.eq(topic))
            .filter(record::Column::LogOffset.gt(after))
            .order_by_asc(record::Column::LogOffset)
            .limit(max)
            .all(&self.db)
            .await?;
        // Only a full batch can have more behind it; counting is then worth its cost.
        let remaining = match rows.last() {
            Some(last) if rows.len() as u64 == max => {
                record::Entity::find()
                    .filter(record::Column::Topic.eq(topic))
                    .filter(record::Column::LogOffset.gt(last.log_offset))
                    .count(&self.db)
                    .await?
            }
            _ => 0,
        };
        let records = rows
            .into_iter()
            .map(|row| LogRecord {
                offset: row.log_offset,
                key: row.record_key,
                payload: row.payload,
            })
            .collect();
        Ok(LogBatch { records, remaining })
    }

    async fn append(&self, rows: Vec<record::ActiveModel>) -> Result<(), DbErr> {
        let mut topics: Vec<String> = rows.iter().filter_map(|row| row.topic.try_as_ref().cloned()).collect();
        topics.sort_unstable();
        topics.dedup();
        // One statement: the records get consecutive offsets in their order, atomically.
        record::Entity::insert_many(rows).exec(&self.db).await?;
        for topic in &topics {
            LOG_APPENDS.ring(topic);
        }
        Ok(())
    }
}

fn new_record(topic: String, key: Option<String>, payload: serde_json::Value) -> record::ActiveModel {
    record::ActiveModel {
        topic: Set(topic),
        record_key: Set(key),
        payload: Set(payload),
        appended_at: Set(Utc::now()),
        ..Default::default()
    }
}

#[async_trait::async_trait]
impl Publisher for EmbeddedLog {
    async fn publish(&self, service: &str, events: &[EventEnvelope]) -> Result<(), PublishError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_value(event).map_err(|error| PublishError {
                acknowledged: 0,
                reason: error.to_string(),
            })?;
            rows.push(new_record(
                event.topic(service),
                Some(event.aggregate_id.to_string()),
                payload,
            ));
        }
        self.append(rows).await.map_err(|error| PublishError {
            acknowledged: 0,
            reason: error.to_string(),
        })
    }

    fn kind(&self) -> &'static str {
        "embedded-log"
    }
}

#[async_trait::async_trait]
impl LogSource for EmbeddedLog {
    async fn read(&self, topic: &str, after: i64, max: u64, wait: Duration) -> Result<LogBatch, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut appends = LOG_APPENDS.listen(topic);
        loop {
            // Before the look: an append after it must end the wait below.
            appends.mark_seen();
            let batch = self.read_now(topic, after, max).await?;
            let now = tokio::time::Instant::now();
            if !batch.records.is_empty() || now >= deadline {
                return Ok(batch);
            }
            appends.wait((deadline - now).min(IDLE_AT_MOST)).await;
        }
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<i64, LogError> {
        let row = offset::Entity::find_by_id((group.to_owned(), topic.to_owned()))
            .one(&self.db)
            .await?;
        Ok(row.map_or(0, |row| row.committed_offset))
    }

    async fn commit(&self, group: &str, topic: &str, committed: i64) -> Result<(), LogError> {
        let row = offset::ActiveModel {
            consumer_group: Set(group.to_owned()),
            topic: Set(topic.to_owned()),
            committed_offset: Set(committed),
            updated_at: Set(Utc::now()),
        };
        offset::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([offset::Column::ConsumerGroup, offset::Column::Topic])
                    .update_columns([offset::Column::CommittedOffset, offset::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn append_dead_letter(
        &self,
        topic: &str,
        key: Option<&str>,
        record: &serde_json::Value,
    ) -> Result<(), LogError> {
        if !topic.ends_with(".dlq") {
            return Err(LogError::Refused(format!(
                "only dead-letter topics (*.dlq) can be appended to directly, not {topic}"
            )));
        }
        self.append(vec![new_record(
            topic.to_owned(),
            key.map(str::to_owned),
            record.clone(),
        )])
        .await?;
        Ok(())
    }

    fn origin(&self) -> String {
        "this process's database".to_owned()
    }
}
