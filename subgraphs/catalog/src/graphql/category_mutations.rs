//! Category writes as GraphQL mutations (permission `catalog:write`).

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, ResultExt};
use vitrina_shared::{AppError, auth::RuleGuard, graphql::context_data};

use super::{category::Category, inputs::parse_id};
use crate::{
    service::Catalog,
    store::category_writes::{CategoryChanges, NewCategory},
    validation,
};

#[derive(Debug, InputObject)]
pub struct CreateCategoryInput {
    pub name: String,
    /// Lowercase words joined by hyphens; unique.
    pub slug: String,
    /// The parent category; none for a top-level category.
    pub parent_id: Option<ID>,
}

#[derive(Debug, InputObject)]
pub struct UpdateCategoryInput {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// `null` makes it a top-level category.
    pub parent_id: MaybeUndefined<ID>,
}

impl CreateCategoryInput {
    fn validate(self) -> Result<NewCategory, AppError> {
        Ok(NewCategory {
            name: validation::name("input.name", &self.name, validation::CATEGORY_NAME_MAX)?,
            slug: validation::slug("input.slug", &self.slug)?,
            parent_id: self
                .parent_id
                .as_ref()
                .map(|id| parse_id("input.parentId", id))
                .transpose()?,
        })
    }
}

impl UpdateCategoryInput {
    fn validate(self) -> Result<CategoryChanges, AppError> {
        let changes = CategoryChanges {
            name: self
                .name
                .map(|name| validation::name("input.name", &name, validation::CATEGORY_NAME_MAX))
                .transpose()?,
            slug: self
                .slug
                .map(|slug| validation::slug("input.slug", &slug))
                .transpose()?,
            parent_id: match self.parent_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(id) => Some(Some(parse_id("input.parentId", &id)?)),
            },
        };
        if changes.name.is_none() && changes.slug.is_none() && changes.parent_id.is_none() {
            return Err(AppError::bad_input("input", "the update changes nothing"));
        }
        Ok(changes)
    }
}

#[derive(Default)]
pub struct CategoryMutation;

#[Object]
impl CategoryMutation {
    #[graphql(guard = "RuleGuard::mutation(\"createCategory\")")]
    async fn create_category(&self, ctx: &Context<'_>, input: CreateCategoryInput) -> Result<Category> {
        let new = input.validate().extend()?;
        let catalog = context_data::<Catalog>(ctx)?;
        Ok(Category::from(catalog.create_category(new).await.extend()?))
    }

    /// Renames or moves a category; it cannot move under itself or its descendants.
    #[graphql(guard = "RuleGuard::mutation(\"updateCategory\")")]
    async fn update_category(&self, ctx: &Context<'_>, id: ID, input: UpdateCategoryInput) -> Result<Category> {
        let id = parse_id("id", &id).extend()?;
        let changes = input.validate().extend()?;
        let catalog = context_data::<Catalog>(ctx)?;
        Ok(Category::from(catalog.update_category(id, changes).await.extend()?))
    }

    /// Deletes an empty category (no sub-categories, no products), else `CONFLICT`.
    #[graphql(guard = "RuleGuard::mutation(\"deleteCategory\")")]
    async fn delete_category(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let id = parse_id("id", &id).extend()?;
        let catalog = context_data::<Catalog>(ctx)?;
        catalog.delete_category(id).await.extend()?;
        Ok(true)
    }
}
