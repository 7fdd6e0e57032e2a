//! PayPal payments: a thin typed client for Orders v2 (create, get, capture), Payments
//! (refund) and webhook-signature verification, and a simulator of those endpoints.
//!
//! Where it sits: checkout creates a PayPal order for the amount of our own price
//! snapshot, the buyer approves it on PayPal's page, and `capturePayment` (or the
//! `CHECKOUT.ORDER.APPROVED` webhook) captures it. With PayPal credentials configured the
//! client talks to PayPal (sandbox by default); without them, to the [`simulator`],
//! which implements the same HTTP API, an approval page and signed webhook deliveries,
//! so the real client code runs offline.

pub mod amount;
mod client;
pub mod simulator;
mod types;

pub use client::{PayPalClient, PayPalConfig, PayPalError};
pub use types::{Capture, CreatedOrder, OrderStatus, PayPalOrder, Refund, WebhookHeaders};
