//! The generation of each projection of the orders service (see the catalog's twin).

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
