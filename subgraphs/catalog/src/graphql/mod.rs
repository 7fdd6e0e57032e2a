//! The catalog's public GraphQL schema (federation subgraph `catalog`).

mod category;
mod inputs;
mod loaders;
mod product;

use async_graphql::{EmptyMutation, EmptySubscription, MergedObject, Schema, dataloader::DataLoader};
use sea_orm::DatabaseConnection;

pub use category::Category;
pub use loaders::{CategoryLoader, ChildCategoriesLoader, ProductLoader};
pub use product::Product;

#[derive(MergedObject, Default)]
pub struct Query(product::ProductQuery, category::CategoryQuery);

pub type CatalogSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The executable schema, with its database and DataLoaders as context data.
pub fn build_schema(db: DatabaseConnection) -> CatalogSchema {
    Schema::build(Query::default(), EmptyMutation, EmptySubscription)
        .enable_federation()
        .extension(vitrina_shared::graphql::ErrorCodes)
        .data(DataLoader::new(ProductLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(CategoryLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(ChildCategoriesLoader(db.clone()), tokio::spawn))
        .data(db)
        .finish()
}

/// The schema's shape only, for printing SDL without a database.
pub fn build_schema_without_data() -> CatalogSchema {
    Schema::build(Query::default(), EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}
