//! The orders service's commands: checkout, payment capture, cancellation, expiry,
//! refund and fulfilment. Each writes the order's state and its event through the outbox
//! ([`crate::transitions`]); side effects on other services (stock commit, release and
//! return; clearing the cart) follow from the events, idempotently.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use orders_entity::{order, order_line};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    auth::{Permission, Principal},
    db::is_unique_violation,
    events::{OrderEvent, OrderedLine},
    outbox,
    reservations::{RequestedLine, ReservationState, ReservationStep},
};

use crate::{
    checkout::{self, Address},
    lifecycle::{OrderAction, OrderStatus},
    paypal::{OrderStatus as PayPalStatus, PayPalClient, PayPalError, amount},
    stock::StockClient,
    transitions::{self, Moved, WebhookDelivery, status_of},
};

/// How the orders service is configured.
#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// How long an unpaid order keeps its stock.
    pub payment_ttl: Duration,
    /// Where PayPal sends the buyer after approving, and after cancelling.
    pub return_url: String,
    pub cancel_url: String,
}

/// An order with its lines, as the write model holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub order: order::Model,
    pub lines: Vec<order_line::Model>,
}

#[derive(Clone)]
pub struct Orders {
    db: DatabaseConnection,
    stock: Arc<StockClient>,
    paypal: Arc<PayPalClient>,
    config: Arc<OrdersConfig>,
}

fn paypal_unavailable(error: PayPalError) -> AppError {
    match error {
        PayPalError::Unavailable(_) => AppError::Unavailable(anyhow::Error::new(error).context("PayPal")),
        other => AppError::internal(anyhow::Error::new(other).context("PayPal")),
    }
}

impl Orders {
    pub fn new(
        db: DatabaseConnection,
        stock: Arc<StockClient>,
        paypal: Arc<PayPalClient>,
        config: OrdersConfig,
    ) -> Self {
        Self {
            db,
            stock,
            paypal,
            config: Arc::new(config),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The order with its lines, or `None`.
    pub async fn find(&self, id: Uuid) -> Result<Option<PlacedOrder>, AppError> {
        let Some(order) = order::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        let lines = order_line::Entity::find()
            .filter(order_line::Column::OrderId.eq(id))
            .order_by_asc(order_line::Column::ProductId)
            .all(&self.db)
            .await?;
        Ok(Some(PlacedOrder { order, lines }))
    }

    /// The order if `principal` may see it: its customer, or an order reader. Others get
    /// `NOT_FOUND`, so order ids cannot be probed.
    pub async fn find_visible(&self, principal: &Principal, id: Uuid) -> Result<PlacedOrder, AppError> {
        match self.find(id).await? {
            Some(placed) if principal.owns_or_may(placed.order.user_id, Permission::OrdersReadAny) => Ok(placed),
            _ => Err(AppError::not_found("order")),
        }
    }

    /// The order an earlier checkout with this key placed (its payment ensured), if any:
    /// a repeated checkout answers with it without looking at the cart again, which the
    /// first one emptied.
    pub async fn existing_checkout(
        &self,
        principal: &Principal,
        idempotency_key: &str,
    ) -> Result<Option<PlacedOrder>, AppError> {
        checkout::validate_idempotency_key(idempotency_key)?;
        let order_id = checkout::order_id(principal.user_id, idempotency_key);
        match self.find(order_id).await? {
            Some(existing) => Ok(Some(self.ensure_payment(existing).await?)),
            None => Ok(None),
        }
    }

    /// Places an order for `cart` (the caller's cart lines): re-validates prices, status
    /// and stock in the catalog by reserving the units, snapshots the prices, creates the
    /// PayPal payment for our own total. The same key returns the same order.
    pub async fn checkout(
        &self,
        principal: &Principal,
        idempotency_key: &str,
        address: &Address,
        cart: Vec<RequestedLine>,
        request_id: Option<&str>,
    ) -> Result<PlacedOrder, AppError> {
        let address = checkout::validate_address(address)?;
        if let Some(existing) = self.existing_checkout(principal, idempotency_key).await? {
            return Ok(existing);
        }
        let order_id = checkout::order_id(principal.user_id, idempotency_key);
        if cart.is_empty() {
            return Err(AppError::bad_input("cart", "the cart is empty"));
        }
        let reservation = self.stock.reserve(order_id, cart).await?;
        if reservation.state != ReservationState::Held {
            return Err(AppError::Conflict(
                "an earlier checkout with this idempotency key was abandoned; use a new key".to_owned(),
            ));
        }
        let placed = match self
            .place(
                principal.user_id,
                order_id,
                idempotency_key,
                &address,
                &reservation,
                request_id,
            )
            .await
        {
            Ok(placed) => placed,
            Err(error) => {
                // Nothing was placed: give the units back before reporting.
                if let Err(release) = self.stock.advance(order_id, ReservationStep::Release).await {
                    tracing::error!(%order_id, error = %release, "failed to release the stock of a failed checkout; it expires with the reservation sweep");
                }
                return Err(error);
            }
        };
        self.ensure_payment(placed).await
    }

    /// Inserts the order, its lines and `OrderPlaced` in one transaction; a concurrent
    /// checkout with the same key that got there first wins, and its order is returned.
    async fn place(
        &self,
        user_id: Uuid,
        order_id: Uuid,
        idempotency_key: &str,
        address: &Address,
        reservation: &vitrina_shared::reservations::Reservation,
        request_id: Option<&str>,
    ) -> Result<PlacedOrder, AppError> {
        let currency = reservation.lines[0].currency.clone();
        if reservation.lines.iter().any(|line| line.currency != currency) {
            return Err(AppError::bad_input("cart", "the cart mixes currencies"));
        }
        let mut total: i64 = 0;
        for line in &reservation.lines {
            total = i64::from(line.quantity)
                .checked_mul(line.unit_price_minor)
                .and_then(|subtotal| total.checked_add(subtotal))
                .ok_or_else(|| AppError::bad_input("cart", "the order total is too large"))?;
        }
        amount::to_paypal(total, &currency).map_err(|error| AppError::bad_input("cart", error.to_string()))?;
        let now = Utc::now();
        let expires_at =
            now + chrono::Duration::from_std(self.config.payment_ttl).unwrap_or_else(|_| chrono::Duration::minutes(30));
        let order = order::Model {
            id: order_id,
            user_id,
            status: OrderStatus::PendingPayment.as_str().to_owned(),
            currency: currency.clone(),
            total_minor: total,
            idempotency_key: idempotency_key.to_owned(),
            shipping_address: serde_json::to_value(address).map_err(AppError::internal)?,
            paypal_order_id: None,
            paypal_capture_id: None,
            approval_url: None,
            expires_at,
            created_at: now,
            updated_at: now,
        };
        let lines: Vec<order_line::Model> = reservation
            .lines
            .iter()
            .map(|line| order_line::Model {
                order_id,
                product_id: line.product_id,
                sku: line.sku.clone(),
                name: line.name.clone(),
                quantity: line.quantity,
                unit_price_minor: line.unit_price_minor,
            })
            .collect();
        let event = OrderEvent::OrderPlaced {
            order_id,
            user_id,
            currency,
            total_minor: total,
            lines: lines
                .iter()
                .map(|line| OrderedLine {
                    product_id: line.product_id,
                    quantity: line.quantity.unsigned_abs(),
                    sku: line.sku.clone(),
                    name: line.name.clone(),
                    unit_price_minor: line.unit_price_minor,
                })
                .collect(),
        };
        let transaction = self.db.begin().await?;
        let inserted = order::Entity::insert(order.clone().into_active_model_for_insert())
            .exec_without_returning(&transaction)
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                drop(transaction);
                return self
                    .find(order_id)
                    .await?
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("order {order_id} vanished")));
            }
            Err(error) => return Err(error.into()),
        }
        order_line::Entity::insert_many(
            lines
                .iter()
                .cloned()
                .map(IntoActiveModelForInsert::into_active_model_for_insert),
        )
        .exec_without_returning(&transaction)
        .await?;
        outbox::commit(transaction, &[event], request_id).await?;
        tracing::info!(%order_id, total, "order placed");
        Ok(PlacedOrder { order, lines })
    }

    /// Creates the order's PayPal payment if it has none yet (PayPal-idempotent per
    /// order), and stores its id and approval link.
    async fn ensure_payment(&self, placed: PlacedOrder) -> Result<PlacedOrder, AppError> {
        if placed.order.paypal_order_id.is_some() || status_of(&placed.order)? != OrderStatus::PendingPayment {
            return Ok(placed);
        }
        let order = &placed.order;
        let created = match self
            .paypal
            .create_order(
                order.id,
                order.total_minor,
                &order.currency,
                &self.config.return_url,
                &self.config.cancel_url,
            )
            .await
        {
            Ok(created) => created,
            Err(error @ PayPalError::Refused { .. }) => {
                // PayPal will not take this payment: the order cannot go on.
                tracing::error!(order_id = %order.id, %error, "PayPal refused the payment; cancelling the order");
                self.move_order(
                    order.id,
                    OrderAction::Cancel,
                    None,
                    None,
                    None,
                    "PayPal refused the payment",
                )
                .await?;
                return Err(AppError::Conflict("the payment provider refused this order".to_owned()));
            }
            Err(error) => return Err(paypal_unavailable(error)),
        };
        let mut row = placed.order.clone().into_active_model();
        row.paypal_order_id = Set(Some(created.id));
        row.approval_url = Set(Some(created.approval_url));
        row.updated_at = Set(Utc::now());
        let order = row.update(&self.db).await?;
        Ok(PlacedOrder { order, ..placed })
    }

    /// Captures the order's approved payment (the buyer's `capturePayment`, or the
    /// `CHECKOUT.ORDER.APPROVED` webhook) and marks it paid. Idempotent: a paid order is
    /// returned as it is, and PayPal captures once per order whatever is retried.
    pub async fn capture(
        &self,
        order_id: Uuid,
        webhook: Option<&WebhookDelivery>,
        request_id: Option<&str>,
    ) -> Result<order::Model, AppError> {
        let Some(placed) = self.find(order_id).await? else {
            return Err(AppError::not_found("order"));
        };
        let order = placed.order;
        match status_of(&order)? {
            OrderStatus::PendingPayment => {}
            OrderStatus::Paid | OrderStatus::Fulfilled | OrderStatus::Refunded => return Ok(order),
            other => return Err(AppError::Conflict(format!("the order is {other}: it cannot be paid"))),
        }
        let Some(paypal_order_id) = order.paypal_order_id.clone() else {
            return Err(AppError::Conflict(
                "the order has no payment yet; repeat the checkout".to_owned(),
            ));
        };
        let paypal_order = self
            .paypal
            .get_order(&paypal_order_id)
            .await
            .map_err(paypal_unavailable)?;
        let capture = match paypal_order.status {
            PayPalStatus::Completed => match paypal_order.capture() {
                Some(capture) => (capture.id.clone(), capture.status.clone()),
                None => {
                    return Err(AppError::internal(anyhow::anyhow!(
                        "PayPal order {paypal_order_id} completed without a capture"
                    )));
                }
            },
            PayPalStatus::Approved => {
                let capture = self
                    .paypal
                    .capture(&paypal_order_id)
                    .await
                    .map_err(paypal_unavailable)?;
                (capture.capture_id, capture.status)
            }
            _ => {
                return Err(AppError::Conflict(
                    "the buyer has not approved the payment yet".to_owned(),
                ));
            }
        };
        self.record_capture(order_id, &capture.0, &capture.1, webhook, request_id)
            .await
    }

    /// Records a capture PayPal reported (by our capture call or a webhook).
    pub async fn record_capture(
        &self,
        order_id: Uuid,
        capture_id: &str,
        capture_status: &str,
        webhook: Option<&WebhookDelivery>,
        request_id: Option<&str>,
    ) -> Result<order::Model, AppError> {
        let moved = match capture_status {
            "COMPLETED" => {
                transitions::apply(
                    &self.db,
                    order_id,
                    OrderAction::Pay,
                    webhook,
                    Some(capture_id),
                    request_id,
                    |order| OrderEvent::OrderPaid {
                        order_id,
                        user_id: order.user_id,
                        capture_id: capture_id.to_owned(),
                    },
                )
                .await?
            }
            "DECLINED" | "FAILED" => {
                self.move_order(
                    order_id,
                    OrderAction::Cancel,
                    webhook,
                    None,
                    request_id,
                    "payment declined",
                )
                .await?
            }
            // PENDING: PayPal reports the outcome later by webhook.
            _ => {
                return Ok(self
                    .find(order_id)
                    .await?
                    .ok_or_else(|| AppError::not_found("order"))?
                    .order);
            }
        };
        Ok(moved.order().clone())
    }

    /// Moves an order that needs nothing from PayPal (cancel, expire, fulfil) or whose
    /// PayPal side is done (refund recorded).
    pub async fn move_order(
        &self,
        order_id: Uuid,
        action: OrderAction,
        webhook: Option<&WebhookDelivery>,
        capture_id: Option<&str>,
        request_id: Option<&str>,
        reason: &str,
    ) -> Result<Moved, AppError> {
        transitions::apply(&self.db, order_id, action, webhook, capture_id, request_id, |order| {
            let (order_id, user_id) = (order.id, order.user_id);
            match action {
                OrderAction::Pay => OrderEvent::OrderPaid {
                    order_id,
                    user_id,
                    capture_id: capture_id.unwrap_or_default().to_owned(),
                },
                OrderAction::Cancel => OrderEvent::OrderCancelled {
                    order_id,
                    user_id,
                    reason: reason.to_owned(),
                },
                OrderAction::Expire => OrderEvent::OrderExpired { order_id, user_id },
                OrderAction::Refund => OrderEvent::OrderRefunded { order_id, user_id },
                OrderAction::Fulfil => OrderEvent::OrderFulfilled { order_id, user_id },
            }
        })
        .await
    }

    /// Expires up to `limit` unpaid orders whose time is up. An order PayPal already
    /// approved or captured is not expired: it is captured instead (the buyer paid).
    pub async fn expire_due(&self, limit: u64) -> Result<usize, AppError> {
        let due = order::Entity::find()
            .filter(order::Column::Status.eq(OrderStatus::PendingPayment.as_str()))
            .filter(order::Column::ExpiresAt.lte(Utc::now()))
            .order_by_asc(order::Column::ExpiresAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut expired = 0;
        for order in due {
            if let Some(paypal_order_id) = &order.paypal_order_id {
                match self.paypal.get_order(paypal_order_id).await {
                    Ok(paypal) if matches!(paypal.status, PayPalStatus::Approved | PayPalStatus::Completed) => {
                        if let Err(error) = self.capture(order.id, None, None).await {
                            tracing::warn!(order_id = %order.id, %error, "an approved order due to expire could not be captured yet");
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        // Without PayPal's word the order must not expire: it may be paid.
                        tracing::warn!(order_id = %order.id, %error, "cannot ask PayPal about an order due to expire; trying later");
                        continue;
                    }
                }
            }
            if let Moved::Changed(_) = self
                .move_order(order.id, OrderAction::Expire, None, None, None, "")
                .await?
            {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Refunds a paid order's capture at PayPal, then records it.
    pub async fn refund(&self, order_id: Uuid, request_id: Option<&str>) -> Result<order::Model, AppError> {
        let placed = self.find(order_id).await?.ok_or_else(|| AppError::not_found("order"))?;
        match status_of(&placed.order)? {
            OrderStatus::Paid => {}
            OrderStatus::Refunded => return Ok(placed.order),
            other => {
                return Err(AppError::Conflict(format!(
                    "the order is {other}: it cannot be refunded"
                )));
            }
        }
        let Some(capture_id) = placed.order.paypal_capture_id.as_deref() else {
            return Err(AppError::internal(anyhow::anyhow!(
                "paid order {order_id} has no capture id"
            )));
        };
        self.paypal.refund(capture_id).await.map_err(paypal_unavailable)?;
        let moved = self
            .move_order(order_id, OrderAction::Refund, None, None, request_id, "")
            .await?;
        Ok(moved.order().clone())
    }

    /// The order paid by this PayPal capture.
    pub async fn find_by_capture(&self, capture_id: &str) -> Result<Option<order::Model>, AppError> {
        Ok(order::Entity::find()
            .filter(order::Column::PaypalCaptureId.eq(capture_id))
            .one(&self.db)
            .await?)
    }

    /// The order whose PayPal order this is.
    pub async fn find_by_paypal_order(&self, paypal_order_id: &str) -> Result<Option<order::Model>, AppError> {
        Ok(order::Entity::find()
            .filter(order::Column::PaypalOrderId.eq(paypal_order_id))
            .one(&self.db)
            .await?)
    }
}

/// Every field `Set`, for inserting a row built as a model.
trait IntoActiveModelForInsert {
    type ActiveModel;
    fn into_active_model_for_insert(self) -> Self::ActiveModel;
}

impl IntoActiveModelForInsert for order::Model {
    type ActiveModel = order::ActiveModel;
    fn into_active_model_for_insert(self) -> order::ActiveModel {
        order::ActiveModel {
            id: Set(self.id),
            user_id: Set(self.user_id),
            status: Set(self.status),
            currency: Set(self.currency),
            total_minor: Set(self.total_minor),
            idempotency_key: Set(self.idempotency_key),
            shipping_address: Set(self.shipping_address),
            paypal_order_id: Set(self.paypal_order_id),
            paypal_capture_id: Set(self.paypal_capture_id),
            approval_url: Set(self.approval_url),
            expires_at: Set(self.expires_at),
            created_at: Set(self.created_at),
            updated_at: Set(self.updated_at),
        }
    }
}

impl IntoActiveModelForInsert for order_line::Model {
    type ActiveModel = order_line::ActiveModel;
    fn into_active_model_for_insert(self) -> order_line::ActiveModel {
        order_line::ActiveModel {
            order_id: Set(self.order_id),
            product_id: Set(self.product_id),
            sku: Set(self.sku),
            name: Set(self.name),
            quantity: Set(self.quantity),
            unit_price_minor: Set(self.unit_price_minor),
        }
    }
}
