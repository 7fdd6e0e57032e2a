//! Events the cart consumes. The event backbone delivers each event at least once with
//! its id; handlers here are idempotent on that id.
//!
//! - `OrderPlaced` takes the ordered lines out of the customer's cart.
//! - Catalog product events (`ProductUpdated`, `ProductDeleted`) are deliberately not
//!   consumed: a cart judges every line against the
//!   catalog's live price, status and stock on each read (`view`), so a changed price is
//!   flagged `priceChanged` and an archived or deleted product `available: false` the
//!   moment the catalog knows, with no window in which an event is still in flight.

use uuid::Uuid;
use vitrina_shared::{
    AppError,
    bus::{Handler, HandlerError},
    events::{EventEnvelope, OrderEvent},
};

use crate::service::Carts;

/// What handling one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Applied,
    /// The event was handled before (a redelivery).
    AlreadyApplied,
    /// The event does not concern carts.
    Ignored,
}

pub struct CartEvents {
    carts: Carts,
}

impl CartEvents {
    pub fn new(carts: Carts) -> Self {
        Self { carts }
    }

    pub async fn on_order_event(&self, event_id: Uuid, event: &OrderEvent) -> Result<Handled, AppError> {
        match event {
            OrderEvent::OrderPlaced { user_id, lines, .. } => {
                let applied = self.carts.apply_order_placed(event_id, *user_id, lines).await?;
                Ok(if applied {
                    Handled::Applied
                } else {
                    Handled::AlreadyApplied
                })
            }
            // Payment, cancellation and the rest do not concern the cart.
            _ => Ok(Handled::Ignored),
        }
    }
}

/// The consumer of `orders.order`: decodes the envelope's payload and applies it.
#[async_trait::async_trait]
impl Handler for CartEvents {
    fn name(&self) -> &'static str {
        "order-events"
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        // Order events the cart has no use for (payment, fulfilment, …) pass by.
        if event.event_type != "OrderPlaced" {
            return Ok(());
        }
        let order_event: OrderEvent = serde_json::from_value(event.payload.clone())
            .map_err(|error| HandlerError(format!("undecodable OrderPlaced payload: {error}")))?;
        match self.on_order_event(event.event_id, &order_event).await {
            Ok(Handled::Applied) => tracing::info!(event_id = %event.event_id, "ordered lines removed from the cart"),
            Ok(Handled::AlreadyApplied) => tracing::debug!(event_id = %event.event_id, "OrderPlaced already applied"),
            Ok(Handled::Ignored) => {}
            Err(error) => return Err(HandlerError::with_causes(&error)),
        }
        Ok(())
    }
}
