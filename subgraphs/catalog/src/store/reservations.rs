//! Stock reservations for orders: hold units at checkout, then commit them (paid),
//! release them (cancelled, expired, failed checkout) or return them (refunded).
//!
//! Never oversells: units are held with a conditional update
//! (`reserved = reserved + q WHERE on_hand - reserved >= q`) inside one transaction for
//! the whole order, so two checkouts racing for the last units cannot both succeed and a
//! partly reservable order reserves nothing. Products are locked in id order, so two
//! orders over the same products cannot deadlock. Every step is idempotent per order:
//! the reservation rows say what was already done. Each change of stock appends a
//! `StockChanged` event in the same transaction.

use std::collections::HashSet;

use catalog_entity::{product, stock, stock_reservation};
use chrono::Utc;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    events::CatalogEvent,
    outbox,
    reservations::{Reservation, ReservationState, ReservationStep, ReserveRequest, ReservedLine},
};

use super::product_writes::{RequestId, find_for_update, stock_changed};
use crate::domain::ProductStatus;

/// Most lines one order may reserve (a cart holds at most 100).
pub const MAX_LINES: usize = 100;
/// Most units of one product per order.
pub const MAX_QUANTITY: i32 = 999;

fn validate(request: &ReserveRequest) -> Result<(), AppError> {
    if request.lines.is_empty() || request.lines.len() > MAX_LINES {
        return Err(AppError::bad_input("lines", format!("between 1 and {MAX_LINES} lines")));
    }
    let mut seen = HashSet::new();
    for (index, line) in request.lines.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(AppError::bad_input(
                format!("lines[{index}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        if !seen.insert(line.product_id) {
            return Err(AppError::bad_input(
                format!("lines[{index}].productId"),
                "each product at most once",
            ));
        }
    }
    Ok(())
}

/// Holds every line's units for the order, or none. A repeated call for the same order
/// answers with the existing reservation.
pub async fn reserve(
    db: &DatabaseConnection,
    request: &ReserveRequest,
    request_id: RequestId<'_>,
) -> Result<Reservation, AppError> {
    validate(request)?;
    let transaction = db.begin().await?;
    let existing = rows_of(&transaction, request.order_id).await?;
    if !existing.is_empty() {
        return reservation(request.order_id, existing);
    }
    let mut lines = request.lines.clone();
    lines.sort_by_key(|line| line.product_id);
    let now = Utc::now();
    let mut rows = Vec::with_capacity(lines.len());
    let mut events = Vec::with_capacity(lines.len());
    for line in &lines {
        let product = find_for_update(&transaction, line.product_id).await?;
        if ProductStatus::parse(&product.status) != Some(ProductStatus::Active) {
            return Err(AppError::Conflict(format!("{} is not for sale", product.name)));
        }
        let held = stock::Entity::update_many()
            .col_expr(
                stock::Column::Reserved,
                Expr::col(stock::Column::Reserved).add(line.quantity),
            )
            .col_expr(stock::Column::UpdatedAt, Expr::val(now))
            .filter(stock::Column::ProductId.eq(line.product_id))
            .filter(
                Expr::col(stock::Column::OnHand)
                    .sub(Expr::col(stock::Column::Reserved))
                    .gte(line.quantity),
            )
            .exec(&transaction)
            .await?;
        if held.rows_affected == 0 {
            let available = stock::Entity::find_by_id(line.product_id)
                .one(&transaction)
                .await?
                .map_or(0, |stock| stock.available());
            return Err(AppError::Conflict(format!(
                "only {available} of {} left; {} requested",
                product.name, line.quantity
            )));
        }
        let stock = current_stock(&transaction, line.product_id).await?;
        events.push(stock_changed(
            &stock,
            line.quantity,
            &format!("reserved for order {}", request.order_id),
        ));
        rows.push(new_row(request.order_id, &product, line.quantity, now));
    }
    stock_reservation::Entity::insert_many(rows.iter().map(insertable))
        .exec_without_returning(&transaction)
        .await?;
    outbox::commit(transaction, &events, request_id).await?;
    reservation(request.order_id, rows)
}

/// Moves an order's units one step on (see [`ReservationStep::transition`]). Repeating a
/// step that is done is a no-op; a step that does not follow from the current state (a
/// release after payment) is a `CONFLICT`.
pub async fn advance(
    db: &DatabaseConnection,
    order_id: Uuid,
    step: ReservationStep,
    request_id: RequestId<'_>,
) -> Result<Reservation, AppError> {
    let (from, to) = step.transition();
    let transaction = db.begin().await?;
    let rows = rows_of(&transaction, order_id).await?;
    if rows.is_empty() {
        return Err(AppError::not_found("reservation"));
    }
    let states: HashSet<&str> = rows.iter().map(|row| row.state.as_str()).collect();
    if states == HashSet::from([to.as_str()]) {
        return reservation(order_id, rows);
    }
    if states != HashSet::from([from.as_str()]) {
        return Err(AppError::Conflict(format!(
            "the reservation of order {order_id} cannot {}: it is {}",
            step.path_segment(),
            rows[0].state
        )));
    }
    let now = Utc::now();
    let mut events: Vec<CatalogEvent> = Vec::with_capacity(rows.len());
    for row in &rows {
        let quantity = row.quantity;
        let (on_hand, reserved) = match step {
            ReservationStep::Commit => (-quantity, -quantity),
            ReservationStep::Release => (0, -quantity),
            ReservationStep::Return => (quantity, 0),
        };
        let changed = stock::Entity::update_many()
            .col_expr(stock::Column::OnHand, Expr::col(stock::Column::OnHand).add(on_hand))
            .col_expr(
                stock::Column::Reserved,
                Expr::col(stock::Column::Reserved).add(reserved),
            )
            .col_expr(stock::Column::UpdatedAt, Expr::val(now))
            .filter(stock::Column::ProductId.eq(row.product_id))
            .exec(&transaction)
            .await?;
        // A product deleted since keeps no stock to give back to.
        if changed.rows_affected == 0 {
            continue;
        }
        let stock = current_stock(&transaction, row.product_id).await?;
        let delta = if on_hand != 0 { on_hand } else { reserved };
        let reason = format!("{} for order {order_id}", to.as_str().to_lowercase());
        events.push(stock_changed(&stock, delta, &reason));
    }
    stock_reservation::Entity::update_many()
        .col_expr(stock_reservation::Column::State, Expr::val(to.as_str()))
        .col_expr(stock_reservation::Column::UpdatedAt, Expr::val(now))
        .filter(stock_reservation::Column::OrderId.eq(order_id))
        .exec(&transaction)
        .await?;
    outbox::commit(transaction, &events, request_id).await?;
    let rows = rows
        .into_iter()
        .map(|row| stock_reservation::Model {
            state: to.as_str().to_owned(),
            updated_at: now,
            ..row
        })
        .collect();
    reservation(order_id, rows)
}

/// The order's reservation rows, locked on PostgreSQL so concurrent steps of one order
/// queue up (SQLite serialises writers anyway).
async fn rows_of(transaction: &DatabaseTransaction, order_id: Uuid) -> Result<Vec<stock_reservation::Model>, AppError> {
    let query = stock_reservation::Entity::find()
        .filter(stock_reservation::Column::OrderId.eq(order_id))
        .order_by_asc(stock_reservation::Column::ProductId);
    let query = if transaction.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    };
    Ok(query.all(transaction).await?)
}

async fn current_stock(transaction: &DatabaseTransaction, product_id: Uuid) -> Result<stock::Model, AppError> {
    stock::Entity::find_by_id(product_id)
        .one(transaction)
        .await?
        .ok_or_else(|| AppError::not_found("stock"))
}

fn new_row(
    order_id: Uuid,
    product: &product::Model,
    quantity: i32,
    now: chrono::DateTime<Utc>,
) -> stock_reservation::Model {
    stock_reservation::Model {
        order_id,
        product_id: product.id,
        quantity,
        sku: product.sku.clone(),
        name: product.name.clone(),
        unit_price_minor: product.price_minor,
        currency: product.currency.clone(),
        state: ReservationState::Held.as_str().to_owned(),
        created_at: now,
        updated_at: now,
    }
}

fn insertable(row: &stock_reservation::Model) -> stock_reservation::ActiveModel {
    stock_reservation::ActiveModel {
        order_id: Set(row.order_id),
        product_id: Set(row.product_id),
        quantity: Set(row.quantity),
        sku: Set(row.sku.clone()),
        name: Set(row.name.clone()),
        unit_price_minor: Set(row.unit_price_minor),
        currency: Set(row.currency.clone()),
        state: Set(row.state.clone()),
        created_at: Set(row.created_at),
        updated_at: Set(row.updated_at),
    }
}

fn reservation(order_id: Uuid, rows: Vec<stock_reservation::Model>) -> Result<Reservation, AppError> {
    let state = rows
        .first()
        .and_then(|row| ReservationState::parse(&row.state))
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("reservation of order {order_id} has an unknown state")))?;
    let lines = rows
        .into_iter()
        .map(|row| ReservedLine {
            product_id: row.product_id,
            quantity: row.quantity,
            sku: row.sku,
            name: row.name,
            unit_price_minor: row.unit_price_minor,
            currency: row.currency,
        })
        .collect();
    Ok(Reservation { order_id, state, lines })
}
