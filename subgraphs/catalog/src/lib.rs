//! The catalog subgraph: products, categories, prices and stock.
//!
//! Code-first async-graphql over sea-orm. `Product` is the federation entity other
//! subgraphs (cart, orders) reference by `id`; entity look-ups always go through a
//! DataLoader so a page of cart lines costs one SQL query. Layout: `store` talks to the
//! database, `service` puts the cache in front of it and invalidates after writes,
//! `validation` holds the input rules, `graphql` maps it all to the public schema, `app`
//! wires the HTTP service.

pub mod app;
pub mod domain;
pub mod graphql;
pub mod internal;
pub mod price_history;
pub mod seed;
pub mod service;
pub mod store;
pub mod validation;

pub use app::Application;

/// The PostgreSQL schema (or SQLite file name) the catalog owns.
pub const DATABASE_SCHEMA: &str = "catalog";

/// The catalog's federation SDL, as published to composition.
pub fn sdl() -> String {
    graphql::build_schema_without_data().sdl_with_options(vitrina_shared::graphql::federation_sdl_options())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_published_sdl_declares_product_as_a_federation_entity() {
        let sdl = super::sdl();
        assert!(sdl.contains("type Product @key(fields: \"id\")"), "{sdl}");
        assert!(sdl.contains("url: \"https://specs.apollo.dev/federation/v2"), "{sdl}");
        if let Ok(path) = std::env::var("VITRINA_WRITE_SDL") {
            std::fs::write(path, &sdl).unwrap();
        }
    }
}
