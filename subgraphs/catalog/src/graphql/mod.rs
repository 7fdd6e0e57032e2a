//! The catalog's public GraphQL schema (federation subgraph `catalog`).

mod category;
mod category_mutations;
mod inputs;
mod loaders;
mod product;
mod product_mutations;

use async_graphql::{EmptySubscription, MergedObject, Schema};

pub use category::Category;
pub use loaders::{CategoryLoader, ChildCategoriesLoader, PriceHistoryLoader, ProductLoader};
pub use product::Product;
use vitrina_shared::graphql::data_loader;

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
        .data(data_loader(PriceHistoryLoader(price_history)))
        .data(data_loader(ProductLoader(catalog.clone())))
        .data(data_loader(CategoryLoader(catalog.clone())))
        .data(data_loader(ChildCategoriesLoader(catalog.clone())))
        .data(catalog)
        .finish()
}

/// The schema's shape only, for printing SDL without a database.
pub fn build_schema_without_data() -> CatalogSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .enable_federation()
        .finish()
}
