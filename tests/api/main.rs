//! Vitrina's integration tests: one binary (faster to link), one module per area.
//!
//! Every test gets its own services on free ports and, on PostgreSQL, its own fresh
//! database, so tests run in parallel and never see each other's data.

mod cart;
mod catalog;
mod catalog_writes;
mod contract;
mod docs;
mod edge;
mod events;
mod faults;
mod helpers;
mod hostile;
mod identity;
mod launcher;
mod observability;
mod orders;
mod paypal;
mod permissions;
mod projection;
mod reservations;
mod secrets;
mod supergraph;
mod webhooks;
