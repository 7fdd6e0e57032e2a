//! sea-orm entities of the catalog service, mirroring `migrations/src/catalog`.

pub mod category;
pub mod price_history;
pub mod product;
pub mod stock;
pub mod stock_reservation;
