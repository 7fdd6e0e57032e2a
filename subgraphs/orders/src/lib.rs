//! The orders subgraph: checkout, the order lifecycle and PayPal payments.
//!
//! Built in layers; so far: [`lifecycle`], the order state machine every command
//! consults; [`stock`], the client of the catalog's stock reservations; and [`paypal`],
//! a typed client for PayPal's Orders v2, Payments and webhook-verification APIs with
//! the PayPal simulator that the embedded default (no PayPal credentials) runs the same
//! client against.

pub mod checkout;
pub mod lifecycle;
pub mod paypal;
pub mod projection;
pub mod service;
pub mod stock;
pub mod stock_effects;
pub mod transitions;
