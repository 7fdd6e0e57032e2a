//! Categories (a tree), products and their stock.
//!
//! Money is `price_minor` (integer minor units) plus an ISO 4217 `currency`. Stock lives in
//! its own table so that reservations lock only the stock row and do not bump the
//! product's optimistic-concurrency `version`. Every keyset pagination order has an index
//! ending in `id`, the tie-breaker that keeps cursors stable.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Category {
    Table,
    Id,
    Name,
    Slug,
    ParentId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Product {
    Table,
    Id,
    Sku,
    Slug,
    Name,
    Description,
    PriceMinor,
    Currency,
    Status,
    CategoryId,
    Attributes,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Stock {
    Table,
    ProductId,
    OnHand,
    Reserved,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Category::Table)
                    .col(uuid(Category::Id).primary_key())
                    .col(string_len(Category::Name, 120))
                    .col(string_len_uniq(Category::Slug, 120))
                    .col(uuid_null(Category::ParentId))
                    .col(timestamp_with_time_zone(Category::CreatedAt))
                    .col(timestamp_with_time_zone(Category::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_category_parent")
                            .from(Category::Table, Category::ParentId)
                            .to(Category::Table, Category::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_category_parent")
                    .table(Category::Table)
                    .col(Category::ParentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Product::Table)
                    .col(uuid(Product::Id).primary_key())
                    .col(string_len_uniq(Product::Sku, 64))
                    .col(string_len_uniq(Product::Slug, 120))
                    .col(string_len(Product::Name, 200))
                    .col(text_null(Product::Description))
                    .col(big_integer(Product::PriceMinor).check(Expr::col(Product::PriceMinor).gt(0)))
                    .col(char_len(Product::Currency, 3))
                    .col(string_len(Product::Status, 16))
                    .col(uuid_null(Product::CategoryId))
                    .col(json(Product::Attributes))
                    .col(integer(Product::Version).default(1))
                    .col(timestamp_with_time_zone(Product::CreatedAt))
                    .col(timestamp_with_time_zone(Product::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_product_category")
                            .from(Product::Table, Product::CategoryId)
                            .to(Category::Table, Category::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_product_status_name", Product::Name),
            ("idx_product_status_price", Product::PriceMinor),
            ("idx_product_status_created", Product::CreatedAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Product::Table)
                        .col(Product::Status)
                        .col(column)
                        .col(Product::Id)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_product_category")
                    .table(Product::Table)
                    .col(Product::CategoryId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Stock::Table)
                    .col(uuid(Stock::ProductId).primary_key())
                    .col(integer(Stock::OnHand).default(0).check(Expr::col(Stock::OnHand).gte(0)))
                    .col(
                        integer(Stock::Reserved)
                            .default(0)
                            .check(Expr::col(Stock::Reserved).gte(0)),
                    )
                    .col(timestamp_with_time_zone(Stock::UpdatedAt))
                    .check(Expr::col(Stock::Reserved).lte(Expr::col(Stock::OnHand)))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_stock_product")
                            .from(Stock::Table, Stock::ProductId)
                            .to(Product::Table, Product::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Stock::Table).to_owned()).await?;
        manager
            .drop_table(Table::drop().table(Product::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Category::Table).to_owned())
            .await
    }
}
