//! Cache tags: how the catalog tells the router's response cache which of its events can
//! change a response, so a stock change retires the responses that show that product's
//! stock and leaves every other cached response alone.
//!
//! The catalog names its tags in one [`HEADER`] of its GraphQL response, comma-separated
//! (the convention of CDN cache tags); the router keeps the tags with the response it
//! caches, and its
//! consumer of `catalog.product` turns each event into the tags it retires
//! ([`retired_by`]). Events other than stock changes can move a product between any two
//! listings, so they retire every cached response, as before tags.
//!
//! Why only stock is tagged: every checkout changes stock, and nothing else changes
//! nearly as often; tagging it is what lets listings stay cached under a storefront's
//! load.

use http::{HeaderMap, HeaderValue};
use uuid::Uuid;

use crate::events::EventEnvelope;

/// The response header a subgraph names its tags in, comma-separated.
pub const HEADER: &str = "cache-tag";

/// Shown by a response whose membership or count depends on stock: a listing filtered by
/// `inStock`. Any stock change retires it.
pub const STOCK_FILTER: &str = "stock-filter";

/// Shown by a response that reads `product_id`'s stock (its available quantity).
pub fn stock_of(product_id: Uuid) -> String {
    format!("stock:{product_id}")
}

/// Folds the [`HEADER`]s that resolvers appended, one per tag, into one header with each
/// tag once. Sent one per tag, a listing of 100 products would carry over 100 header
/// fields, more than an HTTP client accepts (hyper, the router's, refuses a response with
/// more than 100).
pub fn fold_into_one_header(headers: &mut HeaderMap) {
    let mut tags: Vec<&str> = headers
        .get_all(HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(tags_in)
        .collect();
    if tags.len() < 2 {
        return;
    }
    tags.sort_unstable();
    tags.dedup();
    match HeaderValue::from_str(&tags.join(",")) {
        Ok(folded) => {
            headers.insert(HEADER, folded);
        }
        // Unreachable for values that were valid header values, joined by commas.
        Err(_) => {
            headers.remove(HEADER);
        }
    }
}

/// The tags a [`HEADER`] value names.
pub fn tags_in(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|tag| !tag.is_empty())
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
    fn tags_appended_one_by_one_are_sent_in_one_header_each_once() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for tag in ["stock:b", "stock:a", "stock:b", "stock-filter"] {
            headers.append(HEADER, HeaderValue::from_static(tag));
        }
        fold_into_one_header(&mut headers);
        let values: Vec<_> = headers.get_all(HEADER).iter().collect();
        assert_eq!(values, ["stock-filter,stock:a,stock:b"]);
        assert_eq!(tags_in(values[0].to_str().unwrap()).count(), 3);
        assert_eq!(headers.len(), 2, "other headers are untouched");

        let mut untagged = HeaderMap::new();
        fold_into_one_header(&mut untagged);
        assert!(untagged.is_empty());
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
