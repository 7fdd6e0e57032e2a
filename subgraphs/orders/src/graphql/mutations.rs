//! Order commands. Each answers from the write model, so the caller sees its own change
//! at once (the order history catches up within milliseconds).
//!
//! Who may do what: a customer checks out its own cart and captures or cancels its own
//! orders; `ORDER_MANAGER` (`orders:manage`) may capture, cancel, refund and fulfil any.
//! An order the caller may not touch is `NOT_FOUND`, as in the queries.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, Result, ResultExt, SimpleObject};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    auth::{Caller, Permission, Principal, RuleGuard},
    graphql::context_data,
    http::{RequestHeaders, RequestId},
};

use super::order::Order;
use crate::{
    cart_client::CartClient,
    checkout::Address,
    lifecycle::OrderAction,
    service::{Orders, PlacedOrder},
};

#[derive(Debug, InputObject)]
pub struct CheckoutInput {
    /// Any string of 8–64 letters, digits, `-` or `_`, new for each purchase: retrying a
    /// checkout with the same key returns the same order and never charges twice.
    pub idempotency_key: String,
    pub shipping_address: Address,
}

/// A placed order and where the buyer approves its payment.
#[derive(SimpleObject)]
pub struct CheckoutPayload {
    pub order: Order,
    /// PayPal's approval page for this order's payment; after approval, call
    /// `capturePayment` (PayPal's webhook also captures it).
    pub approval_url: Option<String>,
}

fn request_id(ctx: &Context<'_>) -> Option<String> {
    ctx.data_opt::<RequestId>().map(|RequestId(id)| id.clone())
}

/// The order with its lines from the write model, as a command's answer.
async fn answer(orders: &Orders, order_id: Uuid) -> Result<Order> {
    let placed = orders
        .find(order_id)
        .await
        .extend()?
        .ok_or_else(|| AppError::not_found("order").extend())?;
    Order::from_placed(placed).extend()
}

fn parse_order_id(id: &ID) -> Result<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| AppError::bad_input("orderId", "`orderId` is not a valid order id").extend())
}

/// The order, if `principal` owns it or holds `permission`; `NOT_FOUND` otherwise.
async fn order_for(
    orders: &Orders,
    principal: &Principal,
    order_id: Uuid,
    permission: Permission,
) -> Result<PlacedOrder> {
    match orders.find(order_id).await.extend()? {
        Some(placed) if principal.owns_or_may(placed.order.user_id, permission) => Ok(placed),
        _ => Err(AppError::not_found("order").extend()),
    }
}

#[derive(Default)]
pub struct OrderMutation;

#[Object]
impl OrderMutation {
    /// Places an order for the signed-in customer's cart: re-checks every line's price,
    /// status and stock in the catalog, reserves the units, snapshots the prices and
    /// creates the PayPal payment for that total. The cart empties once the order is
    /// placed; unpaid orders expire and give their stock back.
    #[graphql(guard = "RuleGuard::mutation(\"checkout\")")]
    async fn checkout(&self, ctx: &Context<'_>, input: CheckoutInput) -> Result<CheckoutPayload> {
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let orders = context_data::<Orders>(ctx)?;
        let request_id = request_id(ctx);
        let placed = match orders
            .existing_checkout(principal, &input.idempotency_key)
            .await
            .extend()?
        {
            Some(placed) => placed,
            None => {
                let authorization = context_data::<RequestHeaders>(ctx)?
                    .0
                    .get(http::header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok())
                    .ok_or_else(|| AppError::Unauthenticated("sign in to check out".to_owned()).extend())?;
                let cart = context_data::<Arc<CartClient>>(ctx)?
                    .lines_of(authorization, request_id.as_deref())
                    .await
                    .extend()?;
                orders
                    .checkout(
                        principal,
                        &input.idempotency_key,
                        &input.shipping_address,
                        cart,
                        request_id.as_deref(),
                    )
                    .await
                    .extend()?
            }
        };
        let approval_url = placed.order.approval_url.clone();
        Ok(CheckoutPayload {
            order: Order::from_placed(placed).extend()?,
            approval_url,
        })
    }

    /// Captures the payment the buyer approved and marks the order `PAID`. Repeating it
    /// is harmless: PayPal captures once.
    #[graphql(guard = "RuleGuard::mutation(\"capturePayment\")")]
    async fn capture_payment(&self, ctx: &Context<'_>, order_id: ID) -> Result<Order> {
        let order_id = parse_order_id(&order_id)?;
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let orders = context_data::<Orders>(ctx)?;
        order_for(orders, principal, order_id, Permission::OrdersManage).await?;
        orders
            .capture(order_id, None, request_id(ctx).as_deref())
            .await
            .extend()?;
        answer(orders, order_id).await
    }

    /// Cancels an unpaid order and gives its stock back. A paid order is refunded
    /// instead (`refundOrder`).
    #[graphql(guard = "RuleGuard::mutation(\"cancelOrder\")")]
    async fn cancel_order(&self, ctx: &Context<'_>, order_id: ID) -> Result<Order> {
        let order_id = parse_order_id(&order_id)?;
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let orders = context_data::<Orders>(ctx)?;
        order_for(orders, principal, order_id, Permission::OrdersManage).await?;
        let reason = if principal.may(Permission::OrdersManage) {
            "cancelled by staff"
        } else {
            "cancelled by the customer"
        };
        orders
            .move_order(
                order_id,
                OrderAction::Cancel,
                None,
                None,
                request_id(ctx).as_deref(),
                reason,
            )
            .await
            .extend()?;
        answer(orders, order_id).await
    }

    /// Refunds a paid order's payment at PayPal and returns its stock (order managers).
    #[graphql(guard = "RuleGuard::mutation(\"refundOrder\")")]
    async fn refund_order(&self, ctx: &Context<'_>, order_id: ID) -> Result<Order> {
        let order_id = parse_order_id(&order_id)?;
        let orders = context_data::<Orders>(ctx)?;
        orders.refund(order_id, request_id(ctx).as_deref()).await.extend()?;
        answer(orders, order_id).await
    }

    /// Marks a paid order as shipped (order managers).
    #[graphql(guard = "RuleGuard::mutation(\"fulfillOrder\")")]
    async fn fulfill_order(&self, ctx: &Context<'_>, order_id: ID) -> Result<Order> {
        let order_id = parse_order_id(&order_id)?;
        let orders = context_data::<Orders>(ctx)?;
        orders
            .move_order(
                order_id,
                OrderAction::Fulfil,
                None,
                None,
                request_id(ctx).as_deref(),
                "",
            )
            .await
            .extend()?;
        answer(orders, order_id).await
    }
}
