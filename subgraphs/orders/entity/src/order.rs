//! An order (the write model): status, money, and where its payment is.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    /// Derived from the customer and the idempotency key (see the checkout).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// An `OrderStatus` name, e.g. `PENDING_PAYMENT`.
    pub status: String,
    pub currency: String,
    /// Integer minor units of `currency`; the sum of the lines at checkout.
    pub total_minor: i64,
    pub idempotency_key: String,
    pub shipping_address: Json,
    /// Set once PayPal created the payment.
    pub paypal_order_id: Option<String>,
    pub paypal_capture_id: Option<String>,
    pub approval_url: Option<String>,
    /// When an unpaid order expires and gives its stock back.
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::order_line::Entity")]
    Lines,
}

impl Related<super::order_line::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Lines.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
