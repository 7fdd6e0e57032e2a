//! The catalog's event outbox, and full-text search on PostgreSQL.
//!
//! Search: a stored generated `tsvector` over name, SKU and description with a GIN index,
//! using the `simple` configuration (no stemming: product names are brand words and
//! codes, in any language). The embedded SQLite default has no such index and matches
//! with `LIKE`; it holds demo-sized catalogs.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

use crate::outbox;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        outbox::create_outbox_table(manager).await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            let connection = manager.get_connection();
            connection
                .execute_unprepared(
                    "ALTER TABLE product ADD COLUMN search_document tsvector GENERATED ALWAYS AS \
                     (to_tsvector('simple', name || ' ' || sku || ' ' || coalesce(description, ''))) STORED",
                )
                .await?;
            connection
                .execute_unprepared("CREATE INDEX idx_product_search ON product USING GIN (search_document)")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            let connection = manager.get_connection();
            connection
                .execute_unprepared("DROP INDEX IF EXISTS idx_product_search")
                .await?;
            connection
                .execute_unprepared("ALTER TABLE product DROP COLUMN IF EXISTS search_document")
                .await?;
        }
        outbox::drop_outbox_table(manager).await
    }
}
