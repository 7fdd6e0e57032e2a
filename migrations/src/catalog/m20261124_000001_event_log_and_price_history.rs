//! The catalog's embedded event log (used when `KAFKA_BROKERS` is unset), and the
//! price-history read model: a CQRS projection built only from `catalog.product` events.
//!
//! `price_history` holds one row per price a product has had (`event_id` unique: the
//! row is the record that the event was applied, so a redelivery inserts nothing).
//! `projection_state` holds each projection's generation: a rebuild clears the read
//! model and bumps it, and the projection's consumer group (named after the generation)
//! then reads its topic again from offset 0.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{event_log, projection_state};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PriceHistory {
    Table,
    EventId,
    ProductId,
    PriceMinor,
    Currency,
    EffectiveFrom,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        event_log::create_event_log_tables(manager).await?;
        manager
            .create_table(
                Table::create()
                    .table(PriceHistory::Table)
                    .col(uuid(PriceHistory::EventId).primary_key())
                    .col(uuid(PriceHistory::ProductId))
                    .col(big_integer(PriceHistory::PriceMinor))
                    .col(string_len(PriceHistory::Currency, 3))
                    .col(timestamp_with_time_zone(PriceHistory::EffectiveFrom))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_price_history_product")
                    .table(PriceHistory::Table)
                    .col(PriceHistory::ProductId)
                    .col(PriceHistory::EffectiveFrom)
                    .to_owned(),
            )
            .await?;
        projection_state::create_projection_state_table(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        projection_state::drop_projection_state_table(manager).await?;
        manager
            .drop_table(Table::drop().table(PriceHistory::Table).to_owned())
            .await?;
        event_log::drop_event_log_tables(manager).await
    }
}
