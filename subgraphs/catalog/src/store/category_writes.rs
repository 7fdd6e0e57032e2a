//! Category writes. The tree stays a tree: a parent must exist and may not be the
//! category itself or one of its descendants; a category with children or products cannot
//! be deleted (move or delete them first), so no product is silently uncategorised.

use catalog_entity::{category, product};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    TransactionTrait,
};
use uuid::Uuid;
use vitrina_shared::AppError;

use super::{
    categories::subtree,
    product_writes::{ensure_category_exists, unique_to_conflict},
};

#[derive(Debug, Clone)]
pub struct NewCategory {
    pub name: String,
    pub slug: String,
    pub parent_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default)]
pub struct CategoryChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// `Some(None)` makes it a top-level category.
    pub parent_id: Option<Option<Uuid>>,
}

pub async fn create(db: &DatabaseConnection, new: NewCategory) -> Result<category::Model, AppError> {
    let transaction = db.begin().await?;
    if let Some(parent_id) = new.parent_id {
        ensure_category_exists(&transaction, "input.parentId", parent_id).await?;
    }
    let now = Utc::now();
    let row = category::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(new.name),
        slug: Set(new.slug),
        parent_id: Set(new.parent_id),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&transaction)
    .await
    .map_err(unique_to_conflict)?;
    transaction.commit().await?;
    Ok(row)
}

pub async fn update(db: &DatabaseConnection, id: Uuid, changes: CategoryChanges) -> Result<category::Model, AppError> {
    let transaction = db.begin().await?;
    let current = category::Entity::find_by_id(id)
        .one(&transaction)
        .await?
        .ok_or_else(|| AppError::not_found("category"))?;
    if let Some(Some(parent_id)) = changes.parent_id {
        ensure_category_exists(&transaction, "input.parentId", parent_id).await?;
        let all = category::Entity::find().all(&transaction).await?;
        let below = subtree(&all, id).unwrap_or_default();
        if below.contains(&parent_id) {
            return Err(AppError::bad_input(
                "input.parentId",
                "a category cannot be moved under itself or one of its descendants",
            ));
        }
    }
    let mut row: category::ActiveModel = current.into();
    if let Some(name) = changes.name {
        row.name = Set(name);
    }
    if let Some(slug) = changes.slug {
        row.slug = Set(slug);
    }
    if let Some(parent_id) = changes.parent_id {
        row.parent_id = Set(parent_id);
    }
    row.updated_at = Set(Utc::now());
    let row = row.update(&transaction).await.map_err(unique_to_conflict)?;
    transaction.commit().await?;
    Ok(row)
}

pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<(), AppError> {
    let transaction = db.begin().await?;
    category::Entity::find_by_id(id)
        .one(&transaction)
        .await?
        .ok_or_else(|| AppError::not_found("category"))?;
    let children = category::Entity::find()
        .filter(category::Column::ParentId.eq(id))
        .count(&transaction)
        .await?;
    if children > 0 {
        return Err(AppError::Conflict(format!(
            "the category has {children} sub-categories; move or delete them first"
        )));
    }
    let products = product::Entity::find()
        .filter(product::Column::CategoryId.eq(id))
        .count(&transaction)
        .await?;
    if products > 0 {
        return Err(AppError::Conflict(format!(
            "the category has {products} products; move or delete them first"
        )));
    }
    category::Entity::delete_by_id(id).exec(&transaction).await?;
    transaction.commit().await?;
    Ok(())
}
