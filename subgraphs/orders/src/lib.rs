//! The orders subgraph: checkout, the order lifecycle (CQRS) and PayPal payments.
//!
//! Layout: [`lifecycle`] is the order state machine every command consults and
//! [`transitions`] the one place an order's status changes (with its event, through the
//! outbox); [`service`] holds the commands, [`order_queries`] the query side over the
//! [`projection`] (the `order_view` read model); [`stock`] and [`cart_client`] talk to
//! the catalog and the cart; [`paypal`] is the PayPal client and its simulator,
//! [`webhooks`] PayPal's notifications; [`stock_effects`] turns order events into stock
//! steps; [`expiry`] lets unpaid orders go; [`graphql`] is the public schema and [`app`]
//! wires the service ([`simulator_app`] runs the PayPal simulator on its own).

pub mod app;
pub mod cart_client;
pub mod checkout;
pub mod expiry;
pub mod graphql;
pub mod lifecycle;
pub mod order_queries;
pub mod paypal;
pub mod projection;
pub mod service;
pub mod simulator_app;
pub mod stock;
pub mod stock_effects;
pub mod transitions;
pub mod webhooks;

pub use app::Application;

/// The PostgreSQL schema (or SQLite file name) the orders service owns.
pub const DATABASE_SCHEMA: &str = "orders";
/// The topic of order events.
pub const TOPIC: &str = "orders.order";

/// The orders service's federation SDL, as published to composition.
pub fn sdl() -> String {
    graphql::build_schema_without_data().sdl_with_options(vitrina_shared::graphql::federation_sdl_options())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_published_sdl_references_users_and_products_owned_elsewhere() {
        let sdl = super::sdl();
        assert!(
            sdl.contains("type User @key(fields: \"id\", resolvable: false)"),
            "{sdl}"
        );
        assert!(
            sdl.contains("type Product @key(fields: \"id\", resolvable: false)"),
            "{sdl}"
        );
        assert!(
            sdl.contains("checkout(input: CheckoutInput!): CheckoutPayload!"),
            "{sdl}"
        );
    }
}
