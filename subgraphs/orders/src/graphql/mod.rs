//! The orders subgraph's public GraphQL schema (federation subgraph `orders`).
//!
//! Commands (`checkout`, `capturePayment`, `cancelOrder`, `refundOrder`,
//! `fulfillOrder`) go through [`crate::service::Orders`] and answer from the write model,
//! so a client reads its own write at once; queries (`order`, `myOrders`, `orders`) read
//! the `order_view` projection. `Order.customer` is identity's `User` and
//! `OrderLine.product` the catalog's `Product`: both are references the router resolves.

mod mutations;
mod order;
mod queries;

use async_graphql::{EmptySubscription, MergedObject, Schema};

pub use order::{Order, OrderLine};

use crate::{cart_client::CartClient, order_queries::OrderQueries, service::Orders};

#[derive(MergedObject, Default)]
pub struct Query(queries::OrderQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(mutations::OrderMutation);

pub type OrdersSchema = Schema<Query, Mutation, EmptySubscription>;

/// The executable schema, with the use cases as context data.
pub fn build_schema(orders: Orders, queries: OrderQueries, cart: std::sync::Arc<CartClient>) -> OrdersSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .enable_federation()
        .data(orders)
        .data(queries)
        .data(cart)
        .finish()
}

/// The schema's shape only, for printing SDL without a database.
pub fn build_schema_without_data() -> OrdersSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .enable_federation()
        .finish()
}
