//! DataLoaders: every by-id look-up goes through one of these so that the N references of
//! a page (cart lines, order lines, product categories) become one SQL query per batch.
//! They hold no cache, so one instance serves all requests without ever going stale.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use catalog_entity::category;
use sea_orm::DatabaseConnection;
use uuid::Uuid;
use vitrina_shared::AppError;

use crate::store::{self, products::ProductRow};

pub struct ProductLoader(pub DatabaseConnection);

impl Loader<Uuid> for ProductLoader {
    type Value = ProductRow;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        store::products::find_by_ids(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct CategoryLoader(pub DatabaseConnection);

impl Loader<Uuid> for CategoryLoader {
    type Value = category::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        store::categories::find_by_ids(&self.0, keys).await.map_err(Arc::new)
    }
}

/// Children of a category, keyed by the parent's id.
pub struct ChildCategoriesLoader(pub DatabaseConnection);

impl Loader<Uuid> for ChildCategoriesLoader {
    type Value = Vec<category::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        store::categories::children_of(&self.0, keys).await.map_err(Arc::new)
    }
}
