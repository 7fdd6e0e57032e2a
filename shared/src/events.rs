//! Domain events: the typed payloads services publish and consume, and their envelope.
//!
//! Events are facts in the past tense, written to the publishing service's outbox in the
//! same transaction as the change ([`crate::outbox`]). Consumers (the cart flags lines of
//! changed products, the router's response cache invalidates) depend on these types, not
//! on the publisher's tables. A payload change that breaks readers bumps its
//! `schema_version`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What every event says about itself; the outbox stores these next to the payload.
pub trait DomainEvent: Serialize {
    /// Stable name, e.g. `ProductUpdated`.
    fn event_type(&self) -> &'static str;
    /// Version of this event's payload shape.
    fn schema_version(&self) -> i16 {
        1
    }
    /// The aggregate kind, e.g. `product`; with the service it names the topic.
    fn aggregate_type(&self) -> &'static str;
    /// The aggregate instance; the partition key that keeps its events ordered.
    fn aggregate_id(&self) -> Uuid;
}

/// An event as it travels: who, what, when, and the typed payload as JSON. Built from an
/// outbox row; keyed by `aggregate_id` on its topic so one aggregate's events stay in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// UUID v7: unique, and sortable by creation time. Consumers deduplicate on it.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i16,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// The request that caused the change, to follow it across services.
    pub request_id: Option<String>,
    pub payload: serde_json::Value,
}

impl EventEnvelope {
    /// `<service>.<aggregate type>`, e.g. `catalog.product`.
    pub fn topic(&self, service: &str) -> String {
        format!("{service}.{}", self.aggregate_type)
    }
}

/// A product as events describe it: what other services keep about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    pub product_id: Uuid,
    pub sku: String,
    pub slug: String,
    pub name: String,
    pub status: String,
    /// Integer minor units of `currency`.
    pub price_minor: i64,
    pub currency: String,
    pub category_id: Option<Uuid>,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

/// Events of the catalog's `product` aggregate (topic `catalog.product`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum CatalogEvent {
    ProductCreated {
        product: ProductSnapshot,
    },
    ProductUpdated {
        product: ProductSnapshot,
        /// Whether the price changed: carts re-validate their lines' price snapshots.
        price_changed: bool,
    },
    ProductDeleted {
        product_id: Uuid,
        sku: String,
    },
    StockChanged {
        product_id: Uuid,
        on_hand: i32,
        reserved: i32,
        available: i32,
        /// The change of `on_hand` (adjustments) or of `reserved` (reservations).
        delta: i32,
        reason: String,
    },
}

impl DomainEvent for CatalogEvent {
    fn event_type(&self) -> &'static str {
        match self {
            CatalogEvent::ProductCreated { .. } => "ProductCreated",
            CatalogEvent::ProductUpdated { .. } => "ProductUpdated",
            CatalogEvent::ProductDeleted { .. } => "ProductDeleted",
            CatalogEvent::StockChanged { .. } => "StockChanged",
        }
    }

    fn aggregate_type(&self) -> &'static str {
        "product"
    }

    fn aggregate_id(&self) -> Uuid {
        match self {
            CatalogEvent::ProductCreated { product } | CatalogEvent::ProductUpdated { product, .. } => {
                product.product_id
            }
            CatalogEvent::ProductDeleted { product_id, .. } | CatalogEvent::StockChanged { product_id, .. } => {
                *product_id
            }
        }
    }
}

/// One product line of a placed order, with the price it was placed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderedLine {
    pub product_id: Uuid,
    pub quantity: u32,
    pub sku: String,
    pub name: String,
    /// Integer minor units of the order's currency.
    pub unit_price_minor: i64,
}

/// Events of the orders service's `order` aggregate (topic `orders.order`). Each carries
/// the customer, so read models can be built from the events alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum OrderEvent {
    /// A customer checked out: the order awaits payment with its stock reserved. The
    /// cart removes the ordered lines; read models start the order.
    OrderPlaced {
        order_id: Uuid,
        user_id: Uuid,
        currency: String,
        total_minor: i64,
        lines: Vec<OrderedLine>,
    },
    /// The payment was captured: the reserved stock leaves the shelf.
    OrderPaid {
        order_id: Uuid,
        user_id: Uuid,
        capture_id: String,
    },
    /// Cancelled before payment (by the customer, a manager, or a declined payment):
    /// the reserved stock is released.
    OrderCancelled {
        order_id: Uuid,
        user_id: Uuid,
        reason: String,
    },
    /// Not paid in time: the reserved stock is released.
    OrderExpired { order_id: Uuid, user_id: Uuid },
    /// The payment was refunded: the units return to stock.
    OrderRefunded { order_id: Uuid, user_id: Uuid },
    /// Shipped to the customer.
    OrderFulfilled { order_id: Uuid, user_id: Uuid },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::OrderPaid { .. } => "OrderPaid",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::OrderExpired { .. } => "OrderExpired",
            OrderEvent::OrderRefunded { .. } => "OrderRefunded",
            OrderEvent::OrderFulfilled { .. } => "OrderFulfilled",
        }
    }

    fn aggregate_type(&self) -> &'static str {
        "order"
    }

    fn aggregate_id(&self) -> Uuid {
        match self {
            OrderEvent::OrderPlaced { order_id, .. }
            | OrderEvent::OrderPaid { order_id, .. }
            | OrderEvent::OrderCancelled { order_id, .. }
            | OrderEvent::OrderExpired { order_id, .. }
            | OrderEvent::OrderRefunded { order_id, .. }
            | OrderEvent::OrderFulfilled { order_id, .. } => *order_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_type_tag_and_camel_case_fields() {
        let event = CatalogEvent::StockChanged {
            product_id: Uuid::nil(),
            on_hand: 5,
            reserved: 1,
            available: 4,
            delta: -2,
            reason: "adjustment".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "StockChanged");
        assert_eq!(json["onHand"], 5);
        assert_eq!(serde_json::from_value::<CatalogEvent>(json).unwrap(), event);
        assert_eq!(event.event_type(), "StockChanged");
    }
}
