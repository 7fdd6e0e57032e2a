//! `Order` and `OrderLine` as clients see them, built from either side of the CQRS split:
//! the write model (command answers) or the `order_view` projection (queries).

use async_graphql::{ComplexObject, ID, Result, SimpleObject};
use chrono::{DateTime, Utc};
use orders_entity::order_view;
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    events::OrderedLine,
    money::{Currency, Money},
};

use crate::{lifecycle::OrderStatus, service::PlacedOrder, transitions::status_of};

/// identity's user, referenced by id (identity resolves the other fields).
#[derive(SimpleObject)]
#[graphql(unresolvable = "id")]
pub struct User {
    pub id: ID,
}

/// The catalog's product, referenced by id (the catalog resolves the other fields).
#[derive(SimpleObject)]
#[graphql(unresolvable = "id")]
pub struct Product {
    pub id: ID,
}

/// A customer's order.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Order {
    #[graphql(skip)]
    pub order_id: Uuid,
    #[graphql(skip)]
    pub user_id: Uuid,
    pub status: OrderStatus,
    /// Sum of the lines at the prices of the checkout (never the catalog's later prices).
    pub total: Money,
    pub lines: Vec<OrderLine>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[ComplexObject]
impl Order {
    async fn id(&self) -> ID {
        ID(self.order_id.to_string())
    }

    /// The customer who placed the order.
    async fn customer(&self) -> User {
        User {
            id: ID(self.user_id.to_string()),
        }
    }
}

/// A line of an order, with the product as it was when the order was placed.
#[derive(SimpleObject)]
pub struct OrderLine {
    /// The product now (the catalog's live view; it may since have changed).
    pub product: Product,
    /// SKU at checkout.
    pub sku: String,
    /// Product name at checkout.
    pub name: String,
    pub quantity: i32,
    /// Unit price at checkout.
    pub unit_price: Money,
    pub line_total: Money,
}

fn currency_of(code: &str) -> Result<Currency, AppError> {
    Currency::parse(code).ok_or_else(|| AppError::internal(anyhow::anyhow!("order in unknown currency {code:?}")))
}

fn line(line: OrderedLine, currency: Currency) -> Result<OrderLine, AppError> {
    let quantity = i32::try_from(line.quantity)
        .map_err(|_| AppError::internal(anyhow::anyhow!("order line quantity {} out of range", line.quantity)))?;
    let line_total = line
        .unit_price_minor
        .checked_mul(i64::from(quantity))
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("order line total overflows")))?;
    Ok(OrderLine {
        product: Product {
            id: ID(line.product_id.to_string()),
        },
        sku: line.sku,
        name: line.name,
        quantity,
        unit_price: Money::from_minor_units(line.unit_price_minor, currency),
        line_total: Money::from_minor_units(line_total, currency),
    })
}

impl Order {
    /// From the projection (queries).
    pub fn from_view(row: order_view::Model) -> Result<Self, AppError> {
        let currency = currency_of(&row.currency)?;
        let status = OrderStatus::parse(&row.status)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("order view has unknown status {:?}", row.status)))?;
        let lines: Vec<OrderedLine> = serde_json::from_value(row.lines)
            .map_err(|error| AppError::internal(anyhow::anyhow!("order view lines: {error}")))?;
        Ok(Self {
            order_id: row.order_id,
            user_id: row.user_id,
            status,
            total: Money::from_minor_units(row.total_minor, currency),
            lines: lines
                .into_iter()
                .map(|ordered| line(ordered, currency))
                .collect::<Result<_, _>>()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// From the write model (command answers: the caller reads its own write at once).
    pub fn from_placed(placed: PlacedOrder) -> Result<Self, AppError> {
        let currency = currency_of(&placed.order.currency)?;
        let status = status_of(&placed.order)?;
        let lines = placed
            .lines
            .into_iter()
            .map(|row| {
                line(
                    OrderedLine {
                        product_id: row.product_id,
                        quantity: row.quantity.unsigned_abs(),
                        sku: row.sku,
                        name: row.name,
                        unit_price_minor: row.unit_price_minor,
                    },
                    currency,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            order_id: placed.order.id,
            user_id: placed.order.user_id,
            status,
            total: Money::from_minor_units(placed.order.total_minor, currency),
            lines,
            created_at: placed.order.created_at,
            updated_at: placed.order.updated_at,
        })
    }
}
