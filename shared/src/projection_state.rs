//! Rebuildable CQRS projections: one runner for every read model built only from events.
//!
//! Each service's `projection_state` table (created by
//! `vitrina_migrations::projection_state`) holds a generation per projection. The
//! projection consumes its topic as consumer group `<service>.<projection>.g<generation>`;
//! a rebuild clears the read model and bumps the generation in one transaction, and the
//! running consumer notices the new generation and replays the topic from offset 0 under
//! the new group. Handlers must be idempotent anyway (delivery is at least once), so a
//! replay over a cleared model converges to the same rows.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, DatabaseTransaction, EntityTrait, TransactionTrait, sea_query::OnConflict,
};

use crate::{
    AppError,
    bus::{EventBus, Handler, RetryPolicy, TopicHome},
    shutdown::Shutdown,
};

/// How often a running projection checks whether a rebuild was requested.
const GENERATION_CHECK: Duration = Duration::from_secs(1);
/// How long a projection on the embedded event log gathers events between reads. Read
/// one at a time, every event cost a read and an offset commit: under checkout load the
/// catalog's price history (which reads every stock change) made about 46 of each a
/// second. Read models are eventually consistent anyway; this adds at most 100 ms.
const PROJECTION_GATHERING: Duration = Duration::from_millis(100);

pub mod entity {
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
}

/// A read model kept by a [`Handler`]; the handler's `name()` is the projection's name.
#[async_trait::async_trait]
pub trait ReadModel: Handler + Clone {
    /// The owning service, the first part of the consumer group.
    const SERVICE: &'static str;
    /// The topic the read model is built from.
    const TOPIC: &'static str;

    /// The database holding the read model and its `projection_state`.
    fn database(&self) -> &DatabaseConnection;

    /// Where the topic lives when the embedded event log is in use: by default the
    /// service publishes it itself, into the database that holds the read model.
    fn topic_home(&self) -> TopicHome {
        TopicHome::ThisProcess(self.database().clone())
    }

    /// Deletes every row of the read model, inside the rebuild's transaction.
    async fn clear(&self, transaction: &DatabaseTransaction) -> Result<(), AppError>;
}

/// The consumer group of one generation of a projection.
pub fn consumer_group(service: &str, projection: &str, generation: i32) -> String {
    format!("{service}.{projection}.g{generation}")
}

/// The projection's current generation (0 until the first rebuild).
pub async fn generation(db: &DatabaseConnection, projection: &str) -> Result<i32, AppError> {
    let state = entity::Entity::find_by_id(projection).one(db).await?;
    Ok(state.map_or(0, |state| state.generation))
}

/// Clears the read model and starts a new generation, which the running projection
/// replays from offset 0. Returns the new generation.
pub async fn rebuild<M: ReadModel>(model: &M) -> Result<i32, AppError> {
    let projection = model.name();
    let transaction = model.database().begin().await?;
    let current = entity::Entity::find_by_id(projection)
        .one(&transaction)
        .await?
        .map_or(0, |state| state.generation);
    let next = current + 1;
    model.clear(&transaction).await?;
    entity::Entity::insert(entity::ActiveModel {
        projection: Set(projection.to_owned()),
        generation: Set(next),
        rebuilt_at: Set(Some(Utc::now())),
    })
    .on_conflict(
        OnConflict::column(entity::Column::Projection)
            .update_columns([entity::Column::Generation, entity::Column::RebuiltAt])
            .to_owned(),
    )
    .exec(&transaction)
    .await?;
    transaction.commit().await?;
    tracing::info!(projection, generation = next, "projection rebuild requested");
    Ok(next)
}

/// Keeps `model` up to date until shutdown: consumes its topic under the current
/// generation's group, and starts over when a rebuild bumps the generation.
pub async fn run<M: ReadModel>(model: M, bus: EventBus, mut shutdown: Shutdown) {
    let projection = model.name();
    while !shutdown.is_shutdown() {
        let generation = match generation(model.database(), projection).await {
            Ok(generation) => generation,
            Err(error) => {
                tracing::warn!(projection, %error, "cannot read the projection's generation; retrying");
                tokio::select! {
                    () = shutdown.recv() => {}
                    () = tokio::time::sleep(GENERATION_CHECK) => {}
                }
                continue;
            }
        };
        let group = consumer_group(M::SERVICE, projection, generation);
        let consumer = match bus.consumer(
            &group,
            M::TOPIC,
            model.topic_home(),
            model.clone(),
            RetryPolicy::default(),
        ) {
            Ok(consumer) => consumer.gathering(PROJECTION_GATHERING),
            Err(error) => {
                tracing::error!(
                    projection,
                    error = format!("{error:#}"),
                    "cannot start the projection's consumer"
                );
                shutdown.recv().await;
                break;
            }
        };
        // The watcher queries the database, so it runs as its own task and the consumer
        // only awaits its end, a plain signal. A consumer polls its stop condition only
        // between events; a query polled there and then left unpolled while the consumer
        // handles an event keeps its pool permit or connection, and on the embedded
        // store's single connection the handler then waits for it forever.
        let db = model.database().clone();
        let mut rebuilt = tokio::spawn(async move { generation_changed(&db, projection, generation).await });
        consumer
            .run_until(async {
                tokio::select! {
                    () = shutdown.recv() => {}
                    _ = &mut rebuilt => {}
                }
            })
            .await;
        rebuilt.abort();
    }
}

/// Resolves once the projection's generation is no longer `generation`.
async fn generation_changed(db: &DatabaseConnection, projection: &str, generation: i32) {
    loop {
        tokio::time::sleep(GENERATION_CHECK).await;
        if self::generation(db, projection)
            .await
            .is_ok_and(|current| current != generation)
        {
            return;
        }
    }
}
