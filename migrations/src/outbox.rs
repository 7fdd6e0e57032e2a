//! The transactional outbox table, identical in every service that publishes events.
//!
//! A service inserts its events here in the same transaction as the state change they
//! describe; the relay (event backbone) publishes unpublished rows in `position` order and
//! stamps `published_at`. `position` is assigned at insert, and one aggregate's changes
//! are serialised by the aggregate's own row lock, so an aggregate's events keep their
//! order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Position,
    EventId,
    EventType,
    SchemaVersion,
    AggregateType,
    AggregateId,
    Payload,
    RequestId,
    OccurredAt,
    PublishedAt,
    Attempts,
    LastError,
}

/// Creates the `outbox` table and the index the relay scans.
pub async fn create_outbox_table(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Outbox::Table)
                .col(big_pk_auto(Outbox::Position))
                .col(uuid_uniq(Outbox::EventId))
                .col(string_len(Outbox::EventType, 80))
                .col(small_integer(Outbox::SchemaVersion))
                .col(string_len(Outbox::AggregateType, 40))
                .col(uuid(Outbox::AggregateId))
                .col(json(Outbox::Payload))
                .col(string_len_null(Outbox::RequestId, 128))
                .col(timestamp_with_time_zone(Outbox::OccurredAt))
                .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                .col(integer(Outbox::Attempts).default(0))
                .col(text_null(Outbox::LastError))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_outbox_unpublished")
                .table(Outbox::Table)
                .col(Outbox::PublishedAt)
                .col(Outbox::Position)
                .to_owned(),
        )
        .await
}

pub async fn drop_outbox_table(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager.drop_table(Table::drop().table(Outbox::Table).to_owned()).await
}
