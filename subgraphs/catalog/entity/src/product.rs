//! A sellable product. `status` is one of `DRAFT`, `ACTIVE`, `ARCHIVED`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "product")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub sku: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    /// Price in integer minor units of `currency` (cents for EUR).
    pub price_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    pub status: String,
    pub category_id: Option<Uuid>,
    /// Free-form attributes (colour, size, material …) shown on the product page.
    pub attributes: Json,
    /// Optimistic-concurrency version; every update must present the current one.
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::category::Entity",
        from = "Column::CategoryId",
        to = "super::category::Column::Id",
        on_delete = "SetNull"
    )]
    Category,
    #[sea_orm(has_one = "super::stock::Entity")]
    Stock,
}

impl Related<super::category::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Category.def()
    }
}

impl Related<super::stock::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Stock.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
