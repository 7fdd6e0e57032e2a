//! sea-orm entities of the orders service, mirroring `migrations/src/orders`.

pub mod order;
pub mod order_line;
pub mod order_view;
pub mod processed_webhook;
