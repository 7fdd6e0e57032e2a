//! Stock reservations of orders: which units each order holds, and what became of them.
//!
//! One row per (order, product). `HELD` units are counted in `stock.reserved`;
//! `COMMITTED` units left `on_hand` when the order was paid; `RELEASED` units went back to
//! availability (cancelled, expired, failed checkout); `RETURNED` units came back on hand
//! after a refund. The rows make every reservation operation idempotent per order, and
//! keep the product as it was when reserved (the order's price snapshot), so a retried
//! reservation answers with the same prices.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StockReservation {
    Table,
    OrderId,
    ProductId,
    Quantity,
    Sku,
    Name,
    UnitPriceMinor,
    Currency,
    State,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StockReservation::Table)
                    .col(uuid(StockReservation::OrderId))
                    .col(uuid(StockReservation::ProductId))
                    .col(integer(StockReservation::Quantity))
                    .col(string_len(StockReservation::Sku, 64))
                    .col(string_len(StockReservation::Name, 200))
                    .col(big_integer(StockReservation::UnitPriceMinor))
                    .col(string_len(StockReservation::Currency, 3))
                    .col(string_len(StockReservation::State, 16))
                    .col(timestamp_with_time_zone(StockReservation::CreatedAt))
                    .col(timestamp_with_time_zone(StockReservation::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(StockReservation::OrderId)
                            .col(StockReservation::ProductId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StockReservation::Table).to_owned())
            .await
    }
}
