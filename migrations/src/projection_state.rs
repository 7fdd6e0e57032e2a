//! The `projection_state` table, identical in every service with CQRS projections: each
//! projection's generation (see `vitrina_shared::projection_state`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum ProjectionState {
    Table,
    Projection,
    Generation,
    RebuiltAt,
}

pub async fn create_projection_state_table(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(ProjectionState::Table)
                .col(string_len(ProjectionState::Projection, 80).primary_key())
                .col(integer(ProjectionState::Generation))
                .col(timestamp_with_time_zone_null(ProjectionState::RebuiltAt))
                .to_owned(),
        )
        .await
}

pub async fn drop_projection_state_table(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(ProjectionState::Table).to_owned())
        .await
}
