//! The orders subgraph: checkout, the order lifecycle and PayPal payments.
//!
//! Built in layers; this crate currently holds its payment layer: [`paypal`], a typed
//! client for PayPal's Orders v2, Payments and webhook-verification APIs, and the PayPal
//! simulator that the embedded default (no PayPal credentials) runs the same client
//! against.

pub mod paypal;
