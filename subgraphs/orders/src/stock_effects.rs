//! What the orders service's own events do to stock: a consumer of `orders.order` that
//! commits an order's reserved units when it is paid, releases them when it is
//! cancelled or expires, and returns them when it is refunded.
//!
//! Driven by the events (not done inline by the commands) so that a catalog outage
//! delays the stock step instead of leaving it undone: the event stays in the log and is
//! retried, then dead-lettered with its error. The catalog's reservation steps are
//! idempotent per order, so redeliveries are harmless.

use std::sync::Arc;

use vitrina_shared::{
    bus::{Handler, HandlerError},
    events::{EventEnvelope, OrderEvent},
    reservations::ReservationStep,
};

use crate::stock::StockClient;

pub struct StockEffects {
    stock: Arc<StockClient>,
}

impl StockEffects {
    pub fn new(stock: Arc<StockClient>) -> Self {
        Self { stock }
    }
}

#[async_trait::async_trait]
impl Handler for StockEffects {
    fn name(&self) -> &'static str {
        "stock-effects"
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let decoded: OrderEvent = serde_json::from_value(event.payload.clone())
            .map_err(|error| HandlerError(format!("undecodable order event: {error}")))?;
        let (order_id, step) = match decoded {
            OrderEvent::OrderPaid { order_id, .. } => (order_id, ReservationStep::Commit),
            OrderEvent::OrderCancelled { order_id, .. } | OrderEvent::OrderExpired { order_id, .. } => {
                (order_id, ReservationStep::Release)
            }
            OrderEvent::OrderRefunded { order_id, .. } => (order_id, ReservationStep::Return),
            OrderEvent::OrderPlaced { .. } | OrderEvent::OrderFulfilled { .. } => return Ok(()),
        };
        self.stock
            .advance(order_id, step)
            .await
            .map(drop)
            .map_err(|error| HandlerError::with_causes(&error))
    }
}
