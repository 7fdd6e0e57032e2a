//! Orders (the write model), their lines, processed PayPal webhooks, the outbox and the
//! embedded event log, and the `order_view` read model (the CQRS query side, built only
//! from `orders.order` events).
//!
//! An order's id is derived from its customer and idempotency key, so concurrent
//! checkouts with one key converge on one row (the primary key) and one reservation.
//! `paypal_order_id` is set once PayPal created the payment; `expires_at` is when an
//! unpaid order gives its stock back.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{event_log, outbox, projection_state};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    UserId,
    Status,
    Currency,
    TotalMinor,
    IdempotencyKey,
    ShippingAddress,
    PaypalOrderId,
    PaypalCaptureId,
    ApprovalUrl,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrderLines {
    Table,
    OrderId,
    ProductId,
    Sku,
    Name,
    Quantity,
    UnitPriceMinor,
}

#[derive(DeriveIden)]
enum ProcessedWebhooks {
    Table,
    EventId,
    EventType,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum OrderView {
    Table,
    OrderId,
    UserId,
    Status,
    Currency,
    TotalMinor,
    Lines,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(uuid(Orders::Id).primary_key())
                    .col(uuid(Orders::UserId))
                    .col(string_len(Orders::Status, 20))
                    .col(string_len(Orders::Currency, 3))
                    .col(big_integer(Orders::TotalMinor))
                    .col(string_len(Orders::IdempotencyKey, 100))
                    .col(json(Orders::ShippingAddress))
                    .col(string_len_null(Orders::PaypalOrderId, 64))
                    .col(string_len_null(Orders::PaypalCaptureId, 64))
                    .col(text_null(Orders::ApprovalUrl))
                    .col(timestamp_with_time_zone(Orders::ExpiresAt))
                    .col(timestamp_with_time_zone(Orders::CreatedAt))
                    .col(timestamp_with_time_zone(Orders::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_paypal_order")
                    .table(Orders::Table)
                    .col(Orders::PaypalOrderId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_expiry")
                    .table(Orders::Table)
                    .col(Orders::Status)
                    .col(Orders::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderLines::Table)
                    .col(uuid(OrderLines::OrderId))
                    .col(uuid(OrderLines::ProductId))
                    .col(string_len(OrderLines::Sku, 64))
                    .col(string_len(OrderLines::Name, 200))
                    .col(integer(OrderLines::Quantity))
                    .col(big_integer(OrderLines::UnitPriceMinor))
                    .primary_key(Index::create().col(OrderLines::OrderId).col(OrderLines::ProductId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(OrderLines::Table, OrderLines::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProcessedWebhooks::Table)
                    .col(string_len(ProcessedWebhooks::EventId, 64).primary_key())
                    .col(string_len(ProcessedWebhooks::EventType, 80))
                    .col(timestamp_with_time_zone(ProcessedWebhooks::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        outbox::create_outbox_table(manager).await?;
        event_log::create_event_log_tables(manager).await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderView::Table)
                    .col(uuid(OrderView::OrderId).primary_key())
                    .col(uuid(OrderView::UserId))
                    .col(string_len(OrderView::Status, 20))
                    .col(string_len(OrderView::Currency, 3))
                    .col(big_integer(OrderView::TotalMinor))
                    .col(json(OrderView::Lines))
                    .col(timestamp_with_time_zone(OrderView::CreatedAt))
                    .col(timestamp_with_time_zone(OrderView::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_order_view_customer",
                vec![OrderView::UserId, OrderView::CreatedAt, OrderView::OrderId],
            ),
            (
                "idx_order_view_status",
                vec![OrderView::Status, OrderView::CreatedAt, OrderView::OrderId],
            ),
            ("idx_order_view_created", vec![OrderView::CreatedAt, OrderView::OrderId]),
        ] {
            let mut index = Index::create();
            index.name(name).table(OrderView::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        projection_state::create_projection_state_table(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        projection_state::drop_projection_state_table(manager).await?;
        for table in [
            OrderView::Table.into_iden(),
            ProcessedWebhooks::Table.into_iden(),
            OrderLines::Table.into_iden(),
            Orders::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        event_log::drop_event_log_tables(manager).await?;
        outbox::drop_outbox_table(manager).await
    }
}
