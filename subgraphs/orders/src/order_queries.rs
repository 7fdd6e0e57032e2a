//! The query side of orders: `order`, `myOrders` and the managers' `orders` read the
//! `order_view` projection, never the write model. Pages are keyset-paginated on
//! `(created_at, order_id)`, newest first, which the projection's indexes serve for
//! both a customer's orders and a status filter.

use chrono::{DateTime, Utc};
use orders_entity::order_view;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Select,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vitrina_shared::AppError;

use crate::lifecycle::OrderStatus;

/// Which orders a listing covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderScope {
    /// One customer's orders (`myOrders`); `None` is every customer (`orders`).
    pub user_id: Option<Uuid>,
    pub status: Option<OrderStatus>,
}

/// Where a page starts: the last order of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCursor {
    #[serde(rename = "t")]
    pub created_at: DateTime<Utc>,
    #[serde(rename = "i")]
    pub order_id: Uuid,
}

impl OrderCursor {
    pub fn of(row: &order_view::Model) -> Self {
        Self {
            created_at: row.created_at,
            order_id: row.order_id,
        }
    }
}

/// A page of orders and whether more follow.
#[derive(Debug, Clone)]
pub struct OrderPage {
    pub rows: Vec<order_view::Model>,
    pub has_next_page: bool,
}

#[derive(Clone)]
pub struct OrderQueries {
    db: DatabaseConnection,
}

impl OrderQueries {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn find(&self, order_id: Uuid) -> Result<Option<order_view::Model>, AppError> {
        Ok(order_view::Entity::find_by_id(order_id).one(&self.db).await?)
    }

    fn scoped(scope: &OrderScope) -> Select<order_view::Entity> {
        let mut query = order_view::Entity::find();
        if let Some(user_id) = scope.user_id {
            query = query.filter(order_view::Column::UserId.eq(user_id));
        }
        if let Some(status) = scope.status {
            query = query.filter(order_view::Column::Status.eq(status.as_str()));
        }
        query
    }

    /// Up to `size` orders of `scope` after `after`, newest first.
    pub async fn page(
        &self,
        scope: &OrderScope,
        after: Option<&OrderCursor>,
        size: u64,
    ) -> Result<OrderPage, AppError> {
        let mut query = Self::scoped(scope);
        if let Some(cursor) = after {
            query = query.filter(
                Condition::any()
                    .add(order_view::Column::CreatedAt.lt(cursor.created_at))
                    .add(
                        Condition::all()
                            .add(order_view::Column::CreatedAt.eq(cursor.created_at))
                            .add(order_view::Column::OrderId.lt(cursor.order_id)),
                    ),
            );
        }
        let mut rows = query
            .order_by_desc(order_view::Column::CreatedAt)
            .order_by_desc(order_view::Column::OrderId)
            .limit(size + 1)
            .all(&self.db)
            .await?;
        let has_next_page = rows.len() as u64 > size;
        rows.truncate(size as usize);
        Ok(OrderPage { rows, has_next_page })
    }

    /// How many orders `scope` covers, over every page.
    pub async fn count(&self, scope: &OrderScope) -> Result<u64, AppError> {
        Ok(Self::scoped(scope).count(&self.db).await?)
    }
}
