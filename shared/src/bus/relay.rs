//! The outbox relay: publishes a service's committed events, in commit order, and marks
//! each published only after the broker acknowledged it.
//!
//! On PostgreSQL one batch is one database transaction that first takes a transaction
//! advisory lock, so when several replicas of a service run relays, one publishes and
//! the others wait (two relays publishing interleaved batches could reorder an
//! aggregate's events). The embedded SQLite database has one process and so one relay. Rows are read by `position` (insert order); a failed batch is
//! recorded on its first unacknowledged row (`attempts`, `last_error`) and retried after
//! a back-off; the acknowledged prefix is marked. A crash between acknowledgement and
//! marking republishes those events: delivery is at least once, and consumers
//! deduplicate by event id. Two changes of one aggregate are ordered by the aggregate's
//! row lock, taken before the outbox insert, so their positions follow commit order.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
    sea_query::{Expr, ExprTrait as _},
};

use super::{
    Publisher,
    doorbell::{ANY_OUTBOX, OUTBOX_COMMITS},
};
use crate::{
    events::EventEnvelope,
    outbox::entity::{self as outbox, Column},
};

/// Events per batch: one round of broker acknowledgements.
const BATCH: u64 = 500;
/// How long an empty outbox is left alone unless a commit in this process rings (see
/// [`super::doorbell`]): the safety net for rows committed by another replica.
const IDLE_AT_MOST: Duration = Duration::from_secs(1);
/// Pause after a ring before publishing, so commits landing together share one batch
/// (one database transaction and one broker round) instead of one each; like Kafka's
/// `linger.ms`.
const LINGER: Duration = Duration::from_millis(5);
/// Pause when another replica's relay holds the lock: it may have read the outbox before
/// our rows committed, so look again soon rather than at the safety net.
const LOCK_BUSY: Duration = Duration::from_millis(20);
/// Pause after a failure, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database error: {0}")]
    Database(#[from] DbErr),
    #[error("{0}")]
    Publish(#[from] super::PublishError),
}

pub struct OutboxRelay {
    db: DatabaseConnection,
    service: &'static str,
    publisher: Arc<dyn Publisher>,
}

impl OutboxRelay {
    /// A relay for `service`'s outbox in `db` (its topics are `<service>.<aggregate>`).
    pub fn new(db: DatabaseConnection, service: &'static str, publisher: Arc<dyn Publisher>) -> Self {
        Self { db, service, publisher }
    }

    /// Publishes one batch; returns how many events it marked published.
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        Ok(self.try_publish_batch().await?.unwrap_or(0))
    }

    /// Publishes one batch; `None` when another replica's relay holds the lock.
    #[tracing::instrument(skip_all, fields(service = self.service))]
    async fn try_publish_batch(&self) -> Result<Option<usize>, RelayError> {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            // The embedded SQLite database serves one process with one relay per service:
            // no lock needed, and no long write transaction to collide with the writers.
            return self.publish_batch_on(&self.db).await.map(Some);
        }
        let transaction = self.db.begin().await?;
        if !take_relay_lock(&transaction, self.service).await? {
            return Ok(None);
        }
        let published = self.publish_batch_on(&transaction).await;
        transaction.commit().await?;
        published.map(Some)
    }

    async fn publish_batch_on(&self, connection: &impl ConnectionTrait) -> Result<usize, RelayError> {
        let rows = outbox::Entity::find()
            .filter(Column::PublishedAt.is_null())
            .order_by_asc(Column::Position)
            .limit(BATCH)
            .all(connection)
            .await?;
        if rows.is_empty() {
            self.record_backlog(0);
            return Ok(0);
        }
        let events: Vec<EventEnvelope> = rows.iter().map(envelope).collect();
        let outcome = self.publisher.publish(self.service, &events).await;
        let acknowledged = match &outcome {
            Ok(()) => rows.len(),
            Err(error) => error.acknowledged,
        };
        if acknowledged > 0 {
            outbox::Entity::update_many()
                .col_expr(Column::PublishedAt, Expr::value(Utc::now()))
                .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
                .filter(Column::Position.is_in(rows[..acknowledged].iter().map(|row| row.position)))
                .exec(connection)
                .await?;
        }
        if let Err(error) = &outcome {
            outbox::Entity::update_many()
                .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
                .col_expr(
                    Column::LastError,
                    Expr::value(error.reason.chars().take(1000).collect::<String>()),
                )
                .filter(Column::Position.eq(rows[acknowledged].position))
                .exec(connection)
                .await?;
        }
        metrics::counter!("outbox_events_published_total", "service" => self.service).increment(acknowledged as u64);
        let backlog = if (rows.len() as u64) < BATCH {
            (rows.len() - acknowledged) as u64
        } else {
            outbox::Entity::find()
                .filter(Column::PublishedAt.is_null())
                .count(connection)
                .await?
                .saturating_sub(acknowledged as u64)
        };
        self.record_backlog(backlog);
        outcome.map(|()| acknowledged).map_err(RelayError::from)
    }

    /// `outbox_backlog{service}`: committed events not yet acknowledged by the broker. It
    /// grows while the broker is away and must return to 0 after.
    fn record_backlog(&self, backlog: u64) {
        metrics::gauge!("outbox_backlog", "service" => self.service).set(backlog as f64);
    }

    /// Publishes until `stop` resolves: batch after batch, waiting for a commit when the
    /// outbox is empty and backing off after failures. `stop` is polled only between
    /// batches, so it must be a plain signal that holds nothing (see the consumers'
    /// `run_until`).
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) {
        tracing::info!(
            service = self.service,
            publisher = self.publisher.kind(),
            "outbox relay started"
        );
        tokio::pin!(stop);
        let mut commits = OUTBOX_COMMITS.listen(ANY_OUTBOX);
        let mut backoff = FIRST_BACKOFF;
        loop {
            // Before the look: a commit after it must end the idle wait below.
            commits.mark_seen();
            let outcome = self.try_publish_batch().await;
            let failure_pause = backoff;
            match &outcome {
                Ok(Some(published)) if *published > 0 => backoff = FIRST_BACKOFF,
                Err(error) => {
                    tracing::warn!(service = self.service, %error, "outbox relay failed; retrying");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Ok(_) => {}
            }
            // Only the pause races `stop`: a batch is never abandoned half-run.
            let pause = async {
                match outcome {
                    Ok(Some(0)) => {
                        commits.wait(IDLE_AT_MOST).await;
                        tokio::time::sleep(LINGER).await;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => tokio::time::sleep(LOCK_BUSY).await,
                    Err(_) => tokio::time::sleep(failure_pause).await,
                }
            };
            tokio::select! {
                () = &mut stop => break,
                () = pause => {}
            }
        }
        tracing::info!(service = self.service, "outbox relay stopped");
    }
}

/// Takes the service's relay lock for this transaction; false when another holds it.
async fn take_relay_lock(transaction: &impl ConnectionTrait, service: &str) -> Result<bool, DbErr> {
    let row = transaction
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked",
            [format!("vitrina-outbox-relay:{service}").into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<bool>("", "locked")?,
        None => false,
    })
}

fn envelope(row: &outbox::Model) -> EventEnvelope {
    EventEnvelope {
        event_id: row.event_id,
        event_type: row.event_type.clone(),
        schema_version: row.schema_version,
        aggregate_type: row.aggregate_type.clone(),
        aggregate_id: row.aggregate_id,
        occurred_at: row.occurred_at,
        request_id: row.request_id.clone(),
        payload: row.payload.clone(),
    }
}
