//! Order queries: read the `order_view` projection. Customers see their own orders;
//! `ORDER_MANAGER` (permission `orders:read:any`) sees everyone's.

use async_graphql::{
    Context, ErrorExtensions, ID, InputObject, Object, Result, ResultExt,
    connection::{Connection, CursorType, Edge, EmptyFields, OpaqueCursor},
};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    auth::{Caller, Permission, RuleGuard},
    graphql::context_data,
    pagination::{PageDirection, page_request},
};

use super::order::Order;
use crate::{
    lifecycle::OrderStatus,
    order_queries::{OrderCursor, OrderQueries, OrderScope},
};

/// Narrows the managers' order listing.
#[derive(Debug, Default, InputObject)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
}

/// Fields of an order listing besides its edges.
pub struct OrderConnectionFields {
    scope: OrderScope,
}

#[Object]
impl OrderConnectionFields {
    /// Number of orders in the listing across all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let count = context_data::<OrderQueries>(ctx)?.count(&self.scope).await.extend()?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}

pub type OrderConnection = Connection<OpaqueCursor<OrderCursor>, Order, OrderConnectionFields, EmptyFields>;

fn parse_order_id(id: &ID) -> Result<Uuid, AppError> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input("id", "`id` is not a valid order id"))
}

/// A page of `scope`, newest first.
async fn list(
    ctx: &Context<'_>,
    scope: OrderScope,
    first: Option<i32>,
    after: Option<String>,
) -> Result<OrderConnection> {
    let page = page_request(first, None).extend()?;
    debug_assert_eq!(page.direction, PageDirection::Forward);
    let after = match after {
        Some(cursor) => Some(
            OpaqueCursor::<OrderCursor>::decode_cursor(&cursor)
                .map_err(|_| AppError::bad_input("after", "`after` is not a cursor of this listing").extend())?
                .0,
        ),
        None => None,
    };
    let queries = context_data::<OrderQueries>(ctx)?;
    let result = queries.page(&scope, after.as_ref(), page.size).await.extend()?;
    let mut connection =
        Connection::with_additional_fields(after.is_some(), result.has_next_page, OrderConnectionFields { scope });
    for row in result.rows {
        let cursor = OpaqueCursor(OrderCursor::of(&row));
        connection
            .edges
            .push(Edge::new(cursor, Order::from_view(row).extend()?));
    }
    Ok(connection)
}

#[derive(Default)]
pub struct OrderQuery;

#[Object]
impl OrderQuery {
    /// One order: the caller's own, or any for an order manager. Others' orders are
    /// `NOT_FOUND`, so ids cannot be probed. Read from the order history, which follows
    /// a command within milliseconds.
    #[graphql(guard = "RuleGuard::query(\"order\")")]
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Order> {
        let order_id = parse_order_id(&id).extend()?;
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let row = context_data::<OrderQueries>(ctx)?.find(order_id).await.extend()?;
        match row {
            Some(row) if principal.owns_or_may(row.user_id, Permission::OrdersReadAny) => {
                Order::from_view(row).extend()
            }
            _ => Err(AppError::not_found("order").extend()),
        }
    }

    /// The signed-in customer's orders, newest first.
    #[graphql(guard = "RuleGuard::query(\"myOrders\")")]
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, at most 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<OrderConnection> {
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let scope = OrderScope {
            user_id: Some(principal.user_id),
            status: None,
        };
        list(ctx, scope, first, after).await
    }

    /// Every customer's orders, newest first (order managers).
    #[graphql(guard = "RuleGuard::query(\"orders\")")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, at most 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        filter: Option<OrderFilter>,
    ) -> Result<OrderConnection> {
        let scope = OrderScope {
            user_id: None,
            status: filter.unwrap_or_default().status,
        };
        list(ctx, scope, first, after).await
    }
}
