//! Product and stock writes. Each runs in one transaction that also appends the
//! matching event to the outbox, so a change and its event commit (or fail) together.
//! Callers go through [`crate::service::Catalog`], which invalidates the cache after the
//! commit.

use catalog_entity::{category, product, stock};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, SqlErr, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    events::{CatalogEvent, ProductSnapshot},
    outbox,
};

use super::products::ProductRow;
use crate::domain::ProductStatus;

/// A validated product to create.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub sku: String,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub price_minor: i64,
    pub currency: String,
    pub status: ProductStatus,
    pub category_id: Option<Uuid>,
    pub attributes: serde_json::Value,
    pub initial_stock: i32,
}

/// Validated changes to a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub price: Option<(i64, String)>,
    pub status: Option<ProductStatus>,
    /// `Some(None)` removes the product from its category.
    pub category_id: Option<Option<Uuid>>,
    pub attributes: Option<serde_json::Value>,
}

impl ProductChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.slug.is_none()
            && self.description.is_none()
            && self.price.is_none()
            && self.status.is_none()
            && self.category_id.is_none()
            && self.attributes.is_none()
    }
}

/// What callers write on behalf of, for the events' `request_id`.
pub type RequestId<'a> = Option<&'a str>;

pub async fn create(
    db: &DatabaseConnection,
    new: NewProduct,
    request_id: RequestId<'_>,
) -> Result<ProductRow, AppError> {
    let transaction = db.begin().await?;
    if let Some(category_id) = new.category_id {
        ensure_category_exists(&transaction, "input.categoryId", category_id).await?;
    }
    let now = Utc::now();
    let id = Uuid::now_v7();
    let row = product::ActiveModel {
        id: Set(id),
        sku: Set(new.sku),
        slug: Set(new.slug),
        name: Set(new.name),
        description: Set(new.description),
        price_minor: Set(new.price_minor),
        currency: Set(new.currency),
        status: Set(new.status.as_str().to_owned()),
        category_id: Set(new.category_id),
        attributes: Set(new.attributes),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&transaction)
    .await
    .map_err(unique_to_conflict)?;
    let stock = stock::ActiveModel {
        product_id: Set(id),
        on_hand: Set(new.initial_stock),
        reserved: Set(0),
        updated_at: Set(now),
    }
    .insert(&transaction)
    .await?;
    let mut events = vec![CatalogEvent::ProductCreated {
        product: snapshot(&row),
    }];
    if stock.on_hand > 0 {
        events.push(stock_changed(&stock, stock.on_hand, "initial stock"));
    }
    outbox::commit(transaction, &events, request_id).await?;
    Ok((row, Some(stock)))
}

/// Applies `changes` if the product is still at `expected_version`.
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    expected_version: i32,
    changes: ProductChanges,
    request_id: RequestId<'_>,
) -> Result<ProductRow, AppError> {
    let transaction = db.begin().await?;
    if let Some(Some(category_id)) = changes.category_id {
        ensure_category_exists(&transaction, "input.categoryId", category_id).await?;
    }
    let before = find_for_update(&transaction, id).await?;
    if before.version != expected_version {
        return Err(stale_version(before.version));
    }
    let mut update = product::Entity::update_many()
        .col_expr(product::Column::Version, Expr::col(product::Column::Version).add(1))
        .col_expr(product::Column::UpdatedAt, Expr::val(Utc::now()))
        .filter(product::Column::Id.eq(id))
        .filter(product::Column::Version.eq(expected_version));
    if let Some(name) = changes.name {
        update = update.col_expr(product::Column::Name, Expr::val(name));
    }
    if let Some(slug) = changes.slug {
        update = update.col_expr(product::Column::Slug, Expr::val(slug));
    }
    if let Some(description) = changes.description {
        update = update.col_expr(product::Column::Description, Expr::val(description));
    }
    if let Some((price_minor, currency)) = changes.price {
        update = update
            .col_expr(product::Column::PriceMinor, Expr::val(price_minor))
            .col_expr(product::Column::Currency, Expr::val(currency));
    }
    if let Some(status) = changes.status {
        update = update.col_expr(product::Column::Status, Expr::val(status.as_str()));
    }
    if let Some(category_id) = changes.category_id {
        update = update.col_expr(product::Column::CategoryId, Expr::val(category_id));
    }
    if let Some(attributes) = changes.attributes {
        update = update.col_expr(product::Column::Attributes, Expr::val(attributes));
    }
    let result = update.exec(&transaction).await.map_err(unique_to_conflict)?;
    if result.rows_affected == 0 {
        // Another writer committed between our read and our update.
        let current = find_for_update(&transaction, id).await?;
        return Err(stale_version(current.version));
    }
    finish_product_update(transaction, id, &before, request_id).await
}

/// Sets the status (publish, archive) whatever the version; a no-op when it already is.
pub async fn set_status(
    db: &DatabaseConnection,
    id: Uuid,
    status: ProductStatus,
    request_id: RequestId<'_>,
) -> Result<ProductRow, AppError> {
    let transaction = db.begin().await?;
    let before = find_for_update(&transaction, id).await?;
    if before.status == status.as_str() {
        let stock = stock::Entity::find_by_id(id).one(&transaction).await?;
        transaction.commit().await?;
        return Ok((before, stock));
    }
    product::Entity::update_many()
        .col_expr(product::Column::Version, Expr::col(product::Column::Version).add(1))
        .col_expr(product::Column::UpdatedAt, Expr::val(Utc::now()))
        .col_expr(product::Column::Status, Expr::val(status.as_str()))
        .filter(product::Column::Id.eq(id))
        .exec(&transaction)
        .await?;
    finish_product_update(transaction, id, &before, request_id).await
}

async fn finish_product_update(
    transaction: DatabaseTransaction,
    id: Uuid,
    before: &product::Model,
    request_id: RequestId<'_>,
) -> Result<ProductRow, AppError> {
    let (after, stock) = product::Entity::find_by_id(id)
        .find_also_related(stock::Entity)
        .one(&transaction)
        .await?
        .ok_or_else(|| AppError::not_found("product"))?;
    let event = CatalogEvent::ProductUpdated {
        product: snapshot(&after),
        price_changed: before.price_minor != after.price_minor || before.currency != after.currency,
    };
    outbox::commit(transaction, &[event], request_id).await?;
    Ok((after, stock))
}

/// Deletes the product and its stock; orders keep their own snapshot of it.
pub async fn delete(db: &DatabaseConnection, id: Uuid, request_id: RequestId<'_>) -> Result<(), AppError> {
    let transaction = db.begin().await?;
    let row = find_for_update(&transaction, id).await?;
    stock::Entity::delete_by_id(id).exec(&transaction).await?;
    product::Entity::delete_by_id(id).exec(&transaction).await?;
    let event = CatalogEvent::ProductDeleted {
        product_id: id,
        sku: row.sku,
    };
    outbox::commit(transaction, &[event], request_id).await?;
    Ok(())
}

/// Adds `delta` units on hand. Refused (`CONFLICT`) when it would leave fewer units on
/// hand than are reserved: available stock never goes negative.
pub async fn adjust_stock(
    db: &DatabaseConnection,
    id: Uuid,
    delta: i32,
    reason: &str,
    request_id: RequestId<'_>,
) -> Result<ProductRow, AppError> {
    let transaction = db.begin().await?;
    let product = find_for_update(&transaction, id).await?;
    let stock = match stock::Entity::find_by_id(id).one(&transaction).await? {
        // Rows created before stock existed get one on their first adjustment.
        None if delta > 0 => {
            stock::ActiveModel {
                product_id: Set(id),
                on_hand: Set(delta),
                reserved: Set(0),
                updated_at: Set(Utc::now()),
            }
            .insert(&transaction)
            .await?
        }
        None => return Err(insufficient_stock(0, 0, delta)),
        Some(current) => {
            // Conditional, so a reservation committed meanwhile can never be undercut.
            let result = stock::Entity::update_many()
                .col_expr(stock::Column::OnHand, Expr::col(stock::Column::OnHand).add(delta))
                .col_expr(stock::Column::UpdatedAt, Expr::val(Utc::now()))
                .filter(stock::Column::ProductId.eq(id))
                .filter(
                    Expr::col(stock::Column::OnHand)
                        .add(delta)
                        .gte(Expr::col(stock::Column::Reserved)),
                )
                .filter(
                    Expr::col(stock::Column::OnHand)
                        .add(delta)
                        .lte(crate::validation::STOCK_MAX),
                )
                .exec(&transaction)
                .await?;
            if result.rows_affected == 0 {
                return Err(insufficient_stock(current.on_hand, current.reserved, delta));
            }
            stock::Entity::find_by_id(id)
                .one(&transaction)
                .await?
                .ok_or_else(|| AppError::not_found("stock"))?
        }
    };
    outbox::commit(transaction, &[stock_changed(&stock, delta, reason)], request_id).await?;
    Ok((product, Some(stock)))
}

fn insufficient_stock(on_hand: i32, reserved: i32, delta: i32) -> AppError {
    if i64::from(on_hand) + i64::from(delta) > i64::from(crate::validation::STOCK_MAX) {
        return AppError::Conflict(format!(
            "stock cannot exceed {} units (on hand: {on_hand})",
            crate::validation::STOCK_MAX
        ));
    }
    AppError::Conflict(format!(
        "cannot remove {} units: {on_hand} on hand, {reserved} reserved by unpaid orders",
        delta.unsigned_abs()
    ))
}

/// Reads the product row, locking it on PostgreSQL so concurrent writers of the same
/// product queue up (SQLite serialises writers anyway).
pub(crate) async fn find_for_update(transaction: &DatabaseTransaction, id: Uuid) -> Result<product::Model, AppError> {
    use sea_orm::{ConnectionTrait, DbBackend, QuerySelect};
    let query = product::Entity::find_by_id(id);
    let query = if transaction.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    };
    query
        .one(transaction)
        .await?
        .ok_or_else(|| AppError::not_found("product"))
}

/// Refuses a reference to a category that does not exist, naming the input `field`.
pub(crate) async fn ensure_category_exists(
    transaction: &DatabaseTransaction,
    field: &str,
    id: Uuid,
) -> Result<(), AppError> {
    match category::Entity::find_by_id(id).one(transaction).await? {
        Some(_) => Ok(()),
        None => Err(AppError::bad_input(field, "no category has this id")),
    }
}

fn stale_version(current: i32) -> AppError {
    AppError::Conflict(format!(
        "the product was changed since you read it (current version {current}); reload and retry"
    ))
}

/// Maps a unique-constraint violation to `CONFLICT` naming the taken value's field.
pub(crate) fn unique_to_conflict(error: DbErr) -> AppError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            let field = if message.contains("sku") {
                "sku"
            } else if message.contains("slug") {
                "slug"
            } else {
                "value"
            };
            AppError::Conflict(format!("a record with this {field} already exists"))
        }
        _ => error.into(),
    }
}

pub fn snapshot(row: &product::Model) -> ProductSnapshot {
    ProductSnapshot {
        product_id: row.id,
        sku: row.sku.clone(),
        slug: row.slug.clone(),
        name: row.name.clone(),
        status: row.status.clone(),
        price_minor: row.price_minor,
        currency: row.currency.clone(),
        category_id: row.category_id,
        version: row.version,
        updated_at: row.updated_at,
    }
}

pub(crate) fn stock_changed(stock: &stock::Model, delta: i32, reason: &str) -> CatalogEvent {
    CatalogEvent::StockChanged {
        product_id: stock.product_id,
        on_hand: stock.on_hand,
        reserved: stock.reserved,
        available: stock.available(),
        delta,
        reason: reason.to_owned(),
    }
}
