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
use vitrina_shared::{AppError, events::OrderEvent};

use crate::service::Carts;

/// What handling one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Applied,
    /// The event was handled before (a redelivery).
    AlreadyApplied,
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
        }
    }
}
