//! Cache tags: how the catalog tells the router's response cache which of its events can
//! change a response, so a stock change retires the responses that show that product's
//! stock and leaves every other cached response alone.
//!
//! The catalog sends one [`HEADER`] per tag with its GraphQL response (the convention of
//! CDN cache tags); the router keeps the tags with the response it caches, and its
//! consumer of `catalog.product` turns each event into the tags it retires
//! ([`retired_by`]). Events other than stock changes can move a product between any two
//! listings, so they retire every cached response, as before tags.
//!
//! Why only stock is tagged: every checkout changes stock, and nothing else changes
//! nearly as often; tagging it is what lets listings stay cached under a storefront's
//! load.

use uuid::Uuid;

use crate::events::EventEnvelope;

/// The response header a subgraph names one tag in (repeated for more).
pub const HEADER: &str = "cache-tag";

/// Shown by a response whose membership or count depends on stock: a listing filtered by
/// `inStock`. Any stock change retires it.
pub const STOCK_FILTER: &str = "stock-filter";

/// Shown by a response that reads `product_id`'s stock (its available quantity).
pub fn stock_of(product_id: Uuid) -> String {
    format!("stock:{product_id}")
}

/// What a `catalog.product` event retires in a response cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retirement {
    /// Responses tagged with any of these.
    Tagged(Vec<String>),
    /// Every response: the event can change what any of them shows.
    Everything,
}

/// What `event` (of the catalog's `product` aggregate) retires. An event type this
/// release does not know retires everything: it could change anything.
pub fn retired_by(event: &EventEnvelope) -> Retirement {
    if event.event_type == "StockChanged" {
        Retirement::Tagged(vec![stock_of(event.aggregate_id), STOCK_FILTER.to_owned()])
    } else {
        Retirement::Everything
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{CatalogEvent, DomainEvent as _};

    fn envelope(event: &CatalogEvent) -> EventEnvelope {
        EventEnvelope {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            aggregate_type: event.aggregate_type().to_owned(),
            aggregate_id: event.aggregate_id(),
            occurred_at: chrono::Utc::now(),
            request_id: None,
            payload: serde_json::to_value(event).unwrap(),
        }
    }

    #[test]
    fn a_stock_change_retires_the_products_stock_and_stock_filtered_listings_only() {
        let product_id = Uuid::new_v4();
        let event = CatalogEvent::StockChanged {
            product_id,
            on_hand: 5,
            reserved: 1,
            available: 4,
            delta: 1,
            reason: "reservation".into(),
        };
        assert_eq!(
            retired_by(&envelope(&event)),
            Retirement::Tagged(vec![format!("stock:{product_id}"), "stock-filter".to_owned()])
        );
    }

    #[test]
    fn any_other_product_event_retires_everything() {
        let product_id = Uuid::new_v4();
        let deleted = CatalogEvent::ProductDeleted {
            product_id,
            sku: "SKU-1".into(),
        };
        assert_eq!(retired_by(&envelope(&deleted)), Retirement::Everything);
        let mut unknown = envelope(&deleted);
        unknown.event_type = "ProductMerged".into();
        assert_eq!(retired_by(&unknown), Retirement::Everything);
    }
}
