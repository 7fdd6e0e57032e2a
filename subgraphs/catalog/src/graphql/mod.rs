//! The catalog's public GraphQL schema (federation subgraph `catalog`).

mod category;
mod category_mutations;
mod inputs;
mod loaders;
mod product;
mod product_mutations;

use async_graphql::{EmptySubscription, MergedObject, Schema, dataloader::DataLoader};

pub use category::Category;
pub use loaders::{CategoryLoader, ChildCategoriesLoader, PriceHistoryLoader, ProductLoader};
pub use product::Product;

use crate::{price_history::PriceHistory, service::Catalog};

#[derive(MergedObject, Default)]
pub struct Query(product::ProductQuery, category::CategoryQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(product_mutations::ProductMutation, category_mutations::CategoryMutation);

pub type CatalogSchema = Schema<Query, Mutation, EmptySubscription>;

/// The executable schema, with the catalog and its DataLoaders as context data.
pub fn build_schema(catalog: Catalog, price_history: PriceHistory) -> CatalogSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .enable_federation()
        .extension(vitrina_shared::graphql::ErrorCodes)
        .extension(vitrina_shared::graphql::ParsedQueries::default())
        .data(DataLoader::new(PriceHistoryLoader(price_history), tokio::spawn))
        .data(DataLoader::new(ProductLoader(catalog.clone()), tokio::spawn))
        .data(DataLoader::new(CategoryLoader(catalog.clone()), tokio::spawn))
        .data(DataLoader::new(ChildCategoriesLoader(catalog.clone()), tokio::spawn))
        .data(catalog)
        .finish()
}

/// The schema's shape only, for printing SDL without a database.
pub fn build_schema_without_data() -> CatalogSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .enable_federation()
        .finish()
}
