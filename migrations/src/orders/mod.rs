//! The orders service's migrations (PostgreSQL schema `orders`).

use sea_orm_migration::prelude::*;

mod m20261124_000001_create_orders;
mod m20261125_000001_index_capture_ids;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_orders::Migration),
            Box::new(m20261125_000001_index_capture_ids::Migration),
        ]
    }
}
