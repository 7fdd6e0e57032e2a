//! The generation of each projection: a rebuild clears the read model and bumps it, and
//! the projection's consumer group (named after it) starts again from offset 0.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projection_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub projection: String,
    pub generation: i32,
    pub rebuilt_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
