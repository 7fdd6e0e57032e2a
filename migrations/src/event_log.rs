//! The embedded event log: where a publishing service keeps its topics when no Kafka is
//! configured, identical in every service that publishes events.
//!
//! The relay appends each published event to `event_log` (one global `log_offset`
//! sequence; a topic is the subset with its name), and consumer groups keep their
//! position per topic in `event_log_offsets`, as Kafka keeps a group's committed offsets.
//! Only the relay appends, under its lock, so offsets become visible in increasing order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum EventLog {
    Table,
    LogOffset,
    Topic,
    RecordKey,
    Payload,
    AppendedAt,
}

#[derive(DeriveIden)]
enum EventLogOffsets {
    Table,
    ConsumerGroup,
    Topic,
    CommittedOffset,
    UpdatedAt,
}

/// Creates `event_log` and `event_log_offsets`.
pub async fn create_event_log_tables(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(EventLog::Table)
                .col(big_pk_auto(EventLog::LogOffset))
                .col(string_len(EventLog::Topic, 120))
                .col(string_len_null(EventLog::RecordKey, 64))
                .col(json(EventLog::Payload))
                .col(timestamp_with_time_zone(EventLog::AppendedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_event_log_topic_offset")
                .table(EventLog::Table)
                .col(EventLog::Topic)
                .col(EventLog::LogOffset)
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table(EventLogOffsets::Table)
                .col(string_len(EventLogOffsets::ConsumerGroup, 120))
                .col(string_len(EventLogOffsets::Topic, 120))
                .col(big_integer(EventLogOffsets::CommittedOffset))
                .col(timestamp_with_time_zone(EventLogOffsets::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(EventLogOffsets::ConsumerGroup)
                        .col(EventLogOffsets::Topic),
                )
                .to_owned(),
        )
        .await
}

pub async fn drop_event_log_tables(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(EventLogOffsets::Table).to_owned())
        .await?;
    manager
        .drop_table(Table::drop().table(EventLog::Table).to_owned())
        .await
}
