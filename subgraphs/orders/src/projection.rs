//! The order read model (`order_view`): the CQRS query side, built only from
//! `orders.order` events and rebuildable from offset 0. `order`, `myOrders` and the
//! managers' `orders` read it.
//!
//! `OrderPlaced` inserts the order (ignored if present: a redelivery); every later event
//! sets the status the event implies. Events of one order arrive in order (one
//! aggregate, one key), so the last applied status is the order's status.

use chrono::Utc;
use orders_entity::order_view;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};
use vitrina_shared::{
    AppError,
    bus::{Handler, HandlerError},
    events::{EventEnvelope, OrderEvent},
    projection_state::{self, ReadModel},
};

use crate::lifecycle::OrderStatus;

/// The projection's name (consumer group `orders.order-view.g<generation>`).
pub const PROJECTION: &str = "order-view";

#[derive(Clone)]
pub struct OrderView {
    db: DatabaseConnection,
}

impl OrderView {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Clears the read model and starts a new generation, replayed from offset 0.
    pub async fn rebuild(&self) -> Result<i32, AppError> {
        projection_state::rebuild(self).await
    }

    pub async fn apply(&self, event: &EventEnvelope) -> Result<(), AppError> {
        let decoded: OrderEvent = serde_json::from_value(event.payload.clone())
            .map_err(|error| AppError::bad_input("payload", format!("not an order event: {error}")))?;
        let (order_id, status) = match decoded {
            OrderEvent::OrderPlaced {
                order_id,
                user_id,
                currency,
                total_minor,
                lines,
            } => {
                let row = order_view::ActiveModel {
                    order_id: Set(order_id),
                    user_id: Set(user_id),
                    status: Set(OrderStatus::PendingPayment.as_str().to_owned()),
                    currency: Set(currency),
                    total_minor: Set(total_minor),
                    lines: Set(serde_json::to_value(lines).map_err(AppError::internal)?),
                    created_at: Set(event.occurred_at),
                    updated_at: Set(event.occurred_at),
                };
                order_view::Entity::insert(row)
                    .on_conflict(OnConflict::column(order_view::Column::OrderId).do_nothing().to_owned())
                    .exec_without_returning(&self.db)
                    .await?;
                return Ok(());
            }
            OrderEvent::OrderPaid { order_id, .. } => (order_id, OrderStatus::Paid),
            OrderEvent::OrderCancelled { order_id, .. } => (order_id, OrderStatus::Cancelled),
            OrderEvent::OrderExpired { order_id, .. } => (order_id, OrderStatus::Expired),
            OrderEvent::OrderRefunded { order_id, .. } => (order_id, OrderStatus::Refunded),
            OrderEvent::OrderFulfilled { order_id, .. } => (order_id, OrderStatus::Fulfilled),
        };
        order_view::Entity::update_many()
            .col_expr(order_view::Column::Status, Expr::val(status.as_str()))
            .col_expr(order_view::Column::UpdatedAt, Expr::val(Utc::now()))
            .filter(order_view::Column::OrderId.eq(order_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handler for OrderView {
    fn name(&self) -> &'static str {
        PROJECTION
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.apply(event)
            .await
            .map_err(|error| HandlerError::with_causes(&error))
    }
}

#[async_trait::async_trait]
impl ReadModel for OrderView {
    const SERVICE: &'static str = "orders";
    const TOPIC: &'static str = crate::TOPIC;

    fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn clear(&self, transaction: &DatabaseTransaction) -> Result<(), AppError> {
        order_view::Entity::delete_many().exec(transaction).await?;
        Ok(())
    }
}
