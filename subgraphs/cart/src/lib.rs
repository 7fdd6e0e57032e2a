//! The cart subgraph: shopping carts, with Redis as their database.
//!
//! Schema-first: `schema.graphql` is the API, turned into an async-graphql dynamic
//! schema at start-up by `schema` (resolvers bound by type and field name, drift between
//! the two stops start-up). Layout: `model` holds the cart document and its rules,
//! `store` keeps documents in Redis (or in process) with atomic compare-and-set commits,
//! `catalog_client` asks the catalog for live prices and stock, `service` runs the use
//! cases, `view` judges lines against the catalog for clients, `events` consumes order
//! events, `app` wires HTTP.

pub mod app;
pub mod catalog_client;
pub mod events;
pub mod model;
pub mod schema;
pub mod service;
pub mod store;
pub mod view;

pub use app::Application;

/// The cart's API, compiled in so the binary cannot run with another file's schema.
pub const SCHEMA_SDL: &str = include_str!("../schema.graphql");

/// The dynamic schema of [`SCHEMA_SDL`] with every resolver bound; no request data.
pub fn build_schema(
    configure: impl FnOnce(async_graphql::dynamic::SchemaBuilder) -> async_graphql::dynamic::SchemaBuilder,
) -> Result<async_graphql::dynamic::Schema, schema::SchemaError> {
    schema::build(SCHEMA_SDL, schema::cart_resolvers(), configure)
}

/// The cart's federation SDL as the running service publishes it.
pub fn sdl() -> String {
    match build_schema(|builder| builder) {
        Ok(schema) => schema.sdl_with_options(vitrina_shared::graphql::federation_sdl_options()),
        Err(error) => panic!("the cart schema does not build: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Resolvers, SchemaError, cart_resolvers};

    #[test]
    fn the_sdl_the_service_publishes_is_the_schema_file() {
        let printed = sdl();
        if let Ok(path) = std::env::var("VITRINA_WRITE_SDL") {
            std::fs::write(path, &printed).unwrap();
        }
        assert!(
            printed == SCHEMA_SDL,
            "the printed SDL differs from subgraphs/cart/schema.graphql:\n{printed}"
        );
    }

    fn build_with(sdl: &str, resolvers: Resolvers) -> Result<async_graphql::dynamic::Schema, SchemaError> {
        schema::build(sdl, resolvers, |builder| builder)
    }

    #[test]
    fn a_field_without_a_resolver_stops_start_up_naming_it() {
        let error = build_with(SCHEMA_SDL, cart_resolvers().without("CartLine", "addedAt")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "field `CartLine.addedAt` is in the SDL but has no resolver"
        );
        let grown = SCHEMA_SDL.replacen("type Cart {", "type Cart {\n\towner: String", 1);
        let error = build_with(&grown, cart_resolvers()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "field `Cart.owner` is in the SDL but has no resolver"
        );
    }

    #[test]
    fn a_resolver_without_a_field_stops_start_up_naming_it() {
        let resolvers = cart_resolvers().on("Cart", "owner", |_| {
            async_graphql::dynamic::FieldFuture::from_value(None)
        });
        let error = build_with(SCHEMA_SDL, resolvers).unwrap_err();
        assert_eq!(error.to_string(), "resolver `Cart.owner` has no field in the SDL");
    }

    #[test]
    fn a_mutation_without_an_access_rule_stops_start_up() {
        let grown = SCHEMA_SDL.replacen("type Mutation {", "type Mutation {\n\tabandonCart: Cart!", 1);
        let resolvers = cart_resolvers().on("Mutation", "abandonCart", |_| {
            async_graphql::dynamic::FieldFuture::from_value(None)
        });
        let error = build_with(&grown, resolvers).unwrap_err();
        assert_eq!(
            error.to_string(),
            "mutation `abandonCart` has no row in the access-rule table"
        );
    }

    #[test]
    fn the_schema_references_the_catalog_product_without_resolving_it() {
        assert!(SCHEMA_SDL.contains("type Product @key(fields: \"id\", resolvable: false)"));
    }
}
