//! One price a product has had: the price-history read model, written only by the
//! projection from `catalog.product` events.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "price_history")]
pub struct Model {
    /// The event that set this price: a redelivered event finds its row already there.
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    pub product_id: Uuid,
    pub price_minor: i64,
    pub currency: String,
    /// When the price took effect (the event's `occurred_at`).
    pub effective_from: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
