//! sea-orm entities of the catalog service, mirroring `migrations/src/catalog`.

pub mod category;
pub mod product;
pub mod stock;
