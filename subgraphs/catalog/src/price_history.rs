//! The price-history projection: the CQRS read side of the catalog, built only from
//! `catalog.product` events and rebuildable from offset 0.
//!
//! Where it sits: the relay publishes the catalog's outbox to `catalog.product`; this
//! projection consumes it as consumer group `catalog.price-history.g<generation>` and
//! keeps one `price_history` row per price a product has had. The storefront reads it as
//! `Product.priceHistory` and `Product.lowestPriceLast30Days`: EU price-indication rules
//! (Omnibus directive, art. 6a) require a reduction to show the lowest price of the
//! previous 30 days. The write model keeps only the current price, so this history
//! exists only because the events do.
//!
//! Idempotence: a row's key is the event that set the price, inserted with
//! `ON CONFLICT DO NOTHING`, so a redelivered event changes nothing; deletion of a
//! product deletes its rows, which is idempotent too. A rebuild clears the rows and bumps
//! the generation in one transaction; the running consumer notices the new generation
//! and replays the topic from the start under the new group.

use std::collections::HashMap;

use catalog_entity::price_history;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    bus::{Handler, HandlerError},
    events::{CatalogEvent, EventEnvelope},
    projection_state::{self, ReadModel},
};

/// The projection's name in `projection_state` and in its consumer group.
pub const PROJECTION: &str = "price-history";
/// The topic it is built from.
pub const TOPIC: &str = "catalog.product";
/// The look-back window of the lowest-price rule.
pub const WINDOW_DAYS: i64 = 30;

/// A price a product had from `effective_from` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricePoint {
    pub price_minor: i64,
    pub currency: String,
    pub effective_from: DateTime<Utc>,
}

impl From<price_history::Model> for PricePoint {
    fn from(row: price_history::Model) -> Self {
        Self {
            price_minor: row.price_minor,
            currency: row.currency,
            effective_from: row.effective_from,
        }
    }
}

/// The read model and the handler that maintains it.
#[derive(Clone)]
pub struct PriceHistory {
    db: DatabaseConnection,
}

impl PriceHistory {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Applies one event of `catalog.product`. Events of other types are not price
    /// changes and are skipped, including types this build does not know yet.
    pub async fn apply(&self, event: &EventEnvelope) -> Result<(), AppError> {
        if !matches!(
            event.event_type.as_str(),
            "ProductCreated" | "ProductUpdated" | "ProductDeleted"
        ) {
            return Ok(());
        }
        let decoded: CatalogEvent = serde_json::from_value(event.payload.clone())
            .map_err(|error| AppError::bad_input("payload", format!("not a {}: {error}", event.event_type)))?;
        match decoded {
            CatalogEvent::ProductCreated { product }
            | CatalogEvent::ProductUpdated {
                product,
                price_changed: true,
            } => {
                let row = price_history::ActiveModel {
                    event_id: Set(event.event_id),
                    product_id: Set(product.product_id),
                    price_minor: Set(product.price_minor),
                    currency: Set(product.currency),
                    effective_from: Set(event.occurred_at),
                };
                // The primary key is the event id: a redelivered event inserts nothing.
                price_history::Entity::insert(row)
                    .on_conflict_do_nothing()
                    .exec(&self.db)
                    .await?;
            }
            CatalogEvent::ProductDeleted { product_id, .. } => {
                price_history::Entity::delete_many()
                    .filter(price_history::Column::ProductId.eq(product_id))
                    .exec(&self.db)
                    .await?;
            }
            CatalogEvent::ProductUpdated { .. } | CatalogEvent::StockChanged { .. } => {}
        }
        Ok(())
    }

    /// Clears the read model and starts a new generation, replayed from offset 0.
    pub async fn rebuild(&self) -> Result<i32, AppError> {
        projection_state::rebuild(self).await
    }

    /// Each product's prices since `since`, newest first, ending with the price in effect
    /// at `since` (if the product existed then).
    pub async fn since(
        &self,
        product_ids: &[Uuid],
        since: DateTime<Utc>,
    ) -> Result<HashMap<Uuid, Vec<PricePoint>>, AppError> {
        let recent = price_history::Entity::find()
            .filter(price_history::Column::ProductId.is_in(product_ids.iter().copied()))
            .filter(price_history::Column::EffectiveFrom.gte(since))
            .order_by_desc(price_history::Column::EffectiveFrom)
            .all(&self.db)
            .await?;
        let in_effect_at_start = futures::future::try_join_all(product_ids.iter().map(|product_id| {
            price_history::Entity::find()
                .filter(price_history::Column::ProductId.eq(*product_id))
                .filter(price_history::Column::EffectiveFrom.lt(since))
                .order_by_desc(price_history::Column::EffectiveFrom)
                .limit(1)
                .one(&self.db)
        }))
        .await?;
        let mut points: HashMap<Uuid, Vec<PricePoint>> = HashMap::new();
        for row in recent.into_iter().chain(in_effect_at_start.into_iter().flatten()) {
            points.entry(row.product_id).or_default().push(row.into());
        }
        Ok(points)
    }
}

#[async_trait::async_trait]
impl Handler for PriceHistory {
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
impl ReadModel for PriceHistory {
    const SERVICE: &'static str = "catalog";
    const TOPIC: &'static str = TOPIC;

    fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn clear(&self, transaction: &DatabaseTransaction) -> Result<(), AppError> {
        price_history::Entity::delete_many().exec(transaction).await?;
        Ok(())
    }
}
