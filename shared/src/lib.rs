//! Everything the Vitrina processes have in common.
//!
//! Each subgraph and the launcher build on these pieces so that configuration, logging,
//! error codes, the HTTP surface (`/graphql`, `/health`, `/ready`) and graceful shutdown
//! behave identically everywhere. Domain code lives in the subgraph crates; nothing here
//! knows about products, carts or orders.

pub mod auth;
pub mod bus;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod pagination;
pub mod profile;
pub mod projection_state;
pub mod redis_store;
pub mod reservations;
pub mod shutdown;
pub mod telemetry;

pub use error::{AppError, ErrorCode};
