//! The catalog's stock-reservation API, as both sides see it: the catalog serves it on
//! internal routes, the orders service calls it during checkout and on each later step of
//! an order (payment commits the units, cancellation and expiry release them, a refund
//! returns them). Every operation is idempotent per order id, so a retried call (after a
//! timeout, or by a redelivered event) never reserves or releases twice.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where the routes live on the catalog.
pub const RESERVATIONS_PATH: &str = "/internal/reservations";

/// Units of a product an order wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestedLine {
    pub product_id: Uuid,
    pub quantity: i32,
}

/// `POST /internal/reservations`: hold these units for `order_id`, all or none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReserveRequest {
    pub order_id: Uuid,
    pub lines: Vec<RequestedLine>,
}

/// What became of an order's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationState {
    /// Counted in the product's reserved stock.
    Held,
    /// Left stock when the order was paid.
    Committed,
    /// Back to availability (cancelled, expired, or a failed checkout).
    Released,
    /// Back on hand after a refund.
    Returned,
}

impl ReservationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationState::Held => "HELD",
            ReservationState::Committed => "COMMITTED",
            ReservationState::Released => "RELEASED",
            ReservationState::Returned => "RETURNED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Held, Self::Committed, Self::Released, Self::Returned]
            .into_iter()
            .find(|state| state.as_str() == value)
    }
}

/// A reserved line with the product as it was when the units were taken: the price
/// snapshot an order is placed at, read under the same lock as the stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedLine {
    pub product_id: Uuid,
    pub quantity: i32,
    pub sku: String,
    pub name: String,
    /// Integer minor units of `currency`.
    pub unit_price_minor: i64,
    pub currency: String,
}

/// An order's reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub order_id: Uuid,
    pub state: ReservationState,
    pub lines: Vec<ReservedLine>,
}

/// The state transitions after `Held`, by route name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStep {
    /// `POST …/{orderId}/commit`
    Commit,
    /// `POST …/{orderId}/release`
    Release,
    /// `POST …/{orderId}/return`
    Return,
}

impl ReservationStep {
    pub fn path_segment(self) -> &'static str {
        match self {
            ReservationStep::Commit => "commit",
            ReservationStep::Release => "release",
            ReservationStep::Return => "return",
        }
    }

    pub fn parse(segment: &str) -> Option<Self> {
        [Self::Commit, Self::Release, Self::Return]
            .into_iter()
            .find(|step| step.path_segment() == segment)
    }

    /// The state the units must be in for this step, and the state they end in.
    pub fn transition(self) -> (ReservationState, ReservationState) {
        match self {
            ReservationStep::Commit => (ReservationState::Held, ReservationState::Committed),
            ReservationStep::Release => (ReservationState::Held, ReservationState::Released),
            ReservationStep::Return => (ReservationState::Committed, ReservationState::Returned),
        }
    }
}
