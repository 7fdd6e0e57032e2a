//! Moving one order through its lifecycle: the one place where an order's status
//! changes. Each move is one transaction that locks the order, asks the state machine
//! ([`crate::lifecycle`]), writes the new status and appends the event to the outbox
//! (and, for webhook-driven moves, records the webhook as processed), so a state change,
//! its event and its deduplication record commit together or not at all.

use chrono::Utc;
use orders_entity::{order, processed_webhook};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, IntoActiveModel, QuerySelect, TransactionTrait,
};
use uuid::Uuid;
use vitrina_shared::{AppError, events::OrderEvent, outbox};

use crate::lifecycle::{OrderAction, OrderStatus, Transition};

/// A PayPal webhook delivery that caused a move, recorded with it.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    pub event_id: String,
    pub event_type: String,
}

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// The order changed status (the row as it is now).
    Changed(order::Model),
    /// The order was already there (a repeat), or the webhook was already processed.
    Unchanged(order::Model),
}

impl Moved {
    pub fn order(&self) -> &order::Model {
        match self {
            Moved::Changed(order) | Moved::Unchanged(order) => order,
        }
    }
}

/// The stored status of an order.
pub fn status_of(order: &order::Model) -> Result<OrderStatus, AppError> {
    OrderStatus::parse(&order.status).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "order {} has unknown status {:?}",
            order.id,
            order.status
        ))
    })
}

/// Reads an order, locking it on PostgreSQL so moves of one order queue up.
pub async fn find_for_update(transaction: &DatabaseTransaction, id: Uuid) -> Result<Option<order::Model>, AppError> {
    let query = order::Entity::find_by_id(id);
    let query = if transaction.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    };
    Ok(query.one(transaction).await?)
}

/// Applies `action` to order `id`. `event` builds the event of a real move from the
/// order; `capture_id` is stored with a payment.
pub async fn apply(
    db: &DatabaseConnection,
    id: Uuid,
    action: OrderAction,
    webhook: Option<&WebhookDelivery>,
    capture_id: Option<&str>,
    request_id: Option<&str>,
    event: impl FnOnce(&order::Model) -> OrderEvent,
) -> Result<Moved, AppError> {
    let transaction = db.begin().await?;
    let Some(current) = find_for_update(&transaction, id).await? else {
        return Err(AppError::not_found("order"));
    };
    if let Some(webhook) = webhook {
        let already = processed_webhook::Entity::find_by_id(webhook.event_id.clone())
            .one(&transaction)
            .await?;
        if already.is_some() {
            return Ok(Moved::Unchanged(current));
        }
        processed_webhook::ActiveModel {
            event_id: Set(webhook.event_id.clone()),
            event_type: Set(webhook.event_type.clone()),
            received_at: Set(Utc::now()),
        }
        .insert(&transaction)
        .await?;
    }
    let status = status_of(&current)?;
    let next = match status.on(action) {
        Transition::To(next) => next,
        Transition::AlreadyDone => {
            // The webhook record (if any) still commits: a redelivery is then skipped.
            transaction.commit().await?;
            return Ok(Moved::Unchanged(current));
        }
        Transition::Refused => {
            return Err(AppError::Conflict(format!(
                "the order is {status}: it cannot be {}",
                past_tense(action)
            )));
        }
    };
    let event = event(&current);
    let mut row = current.into_active_model();
    row.status = Set(next.as_str().to_owned());
    row.updated_at = Set(Utc::now());
    if let Some(capture_id) = capture_id {
        row.paypal_capture_id = Set(Some(capture_id.to_owned()));
    }
    let updated = row.update(&transaction).await?;
    outbox::commit(transaction, &[event], request_id).await?;
    tracing::info!(order_id = %id, from = %status, to = %next, "order moved");
    Ok(Moved::Changed(updated))
}

fn past_tense(action: OrderAction) -> &'static str {
    match action {
        OrderAction::Pay => "paid",
        OrderAction::Fulfil => "fulfilled",
        OrderAction::Cancel => "cancelled",
        OrderAction::Expire => "expired",
        OrderAction::Refund => "refunded",
    }
}
