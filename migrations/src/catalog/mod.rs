//! The catalog service's migrations (PostgreSQL schema `catalog`).

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_catalog;
mod m20261123_000002_outbox_and_search;
mod m20261124_000001_event_log_and_price_history;
mod m20261124_000002_stock_reservations;
mod m20261201_000001_category_listing_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_catalog::Migration),
            Box::new(m20261123_000002_outbox_and_search::Migration),
            Box::new(m20261124_000001_event_log_and_price_history::Migration),
            Box::new(m20261124_000002_stock_reservations::Migration),
            Box::new(m20261201_000001_category_listing_indexes::Migration),
        ]
    }
}
