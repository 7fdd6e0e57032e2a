//! The writing half of the transactional outbox: [`commit`] inserts events into the
//! service's `outbox` table inside the caller's transaction and commits it, so an event
//! exists if and only if its change committed. Publishing the rows is the event
//! backbone's job; [`commit`] then wakes this process's relay, which otherwise waits.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseTransaction, EntityTrait};

use crate::{
    bus::doorbell::{ANY_OUTBOX, OUTBOX_COMMITS},
    error::AppError,
    events::DomainEvent,
};

/// The `outbox` table (created by `vitrina_migrations::outbox`).
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        /// Insert order; the relay publishes in this order.
        #[sea_orm(primary_key)]
        pub position: i64,
        #[sea_orm(unique)]
        pub event_id: Uuid,
        pub event_type: String,
        pub schema_version: i16,
        pub aggregate_type: String,
        pub aggregate_id: Uuid,
        pub payload: Json,
        /// The request that caused the change, for tracing an event back to it.
        pub request_id: Option<String>,
        pub occurred_at: DateTimeUtc,
        /// Set once the broker acknowledged the event.
        pub published_at: Option<DateTimeUtc>,
        pub attempts: i32,
        pub last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Inserts `events` into the outbox through `transaction`, commits it, and tells the
/// relay. The commit is part of the call so that no writer can forget the wake-up (its
/// events would then wait for the relay's safety-net poll).
pub async fn commit<E: DomainEvent>(
    transaction: DatabaseTransaction,
    events: &[E],
    request_id: Option<&str>,
) -> Result<(), AppError> {
    if events.is_empty() {
        transaction.commit().await?;
        return Ok(());
    }
    let now = Utc::now();
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        rows.push(entity::ActiveModel {
            event_id: Set(uuid::Uuid::now_v7()),
            event_type: Set(event.event_type().to_owned()),
            schema_version: Set(event.schema_version()),
            aggregate_type: Set(event.aggregate_type().to_owned()),
            aggregate_id: Set(event.aggregate_id()),
            payload: Set(serde_json::to_value(event).map_err(AppError::internal)?),
            request_id: Set(request_id.map(str::to_owned)),
            occurred_at: Set(now),
            published_at: Set(None),
            attempts: Set(0),
            last_error: Set(None),
            ..Default::default()
        });
    }
    entity::Entity::insert_many(rows).exec(&transaction).await?;
    transaction.commit().await?;
    OUTBOX_COMMITS.ring(ANY_OUTBOX);
    Ok(())
}
