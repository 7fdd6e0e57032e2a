//! DataLoaders: every by-id look-up goes through one of these so that the N references of
//! a page (cart lines, order lines, product categories) become one cache round trip and
//! at most one SQL query per batch. They hold no per-loader cache (the shared cache-aside
//! layer in [`Catalog`] does the caching and its invalidation), so one instance serves all
//! requests without ever going stale.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use catalog_entity::category;
use uuid::Uuid;
use vitrina_shared::AppError;

use crate::{
    price_history::{PriceHistory, PricePoint, WINDOW_DAYS},
    service::Catalog,
    store::{categories, products::ProductRow},
};

pub struct ProductLoader(pub Catalog);

impl Loader<Uuid> for ProductLoader {
    type Value = ProductRow;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.products_by_ids(keys).await.map_err(Arc::new)
    }
}

pub struct CategoryLoader(pub Catalog);

impl Loader<Uuid> for CategoryLoader {
    type Value = category::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let tree = self.0.category_tree().await.map_err(Arc::new)?;
        Ok(categories::by_ids(&tree, keys))
    }
}

/// Children of a category, keyed by the parent's id.
pub struct ChildCategoriesLoader(pub Catalog);

impl Loader<Uuid> for ChildCategoriesLoader {
    type Value = Vec<category::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let tree = self.0.category_tree().await.map_err(Arc::new)?;
        Ok(categories::children_of(&tree, keys))
    }
}

/// A product's prices of the lowest-price window (see [`crate::price_history`]).
pub struct PriceHistoryLoader(pub PriceHistory);

impl Loader<Uuid> for PriceHistoryLoader {
    type Value = Vec<PricePoint>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let since = chrono::Utc::now() - chrono::Duration::days(WINDOW_DAYS);
        self.0.since(keys, since).await.map_err(Arc::new)
    }
}
