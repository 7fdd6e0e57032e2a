//! `Category`: the browsing tree.

use async_graphql::{Context, ErrorExtensions, ID, Object, Result, ResultExt, dataloader::DataLoader};
use catalog_entity::category;
use vitrina_shared::graphql::context_data;

use super::loaders::{CategoryLoader, ChildCategoriesLoader};
use crate::{service::Catalog, store};

pub struct Category(category::Model);

impl From<category::Model> for Category {
    fn from(model: category::Model) -> Self {
        Self(model)
    }
}

#[Object]
impl Category {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Category>> {
        let Some(parent_id) = self.0.parent_id else {
            return Ok(None);
        };
        let loader = context_data::<DataLoader<CategoryLoader>>(ctx)?;
        let parent = loader.load_one(parent_id).await.map_err(|error| error.extend())?;
        Ok(parent.map(Category))
    }

    /// Direct sub-categories, by name.
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<Category>> {
        let loader = context_data::<DataLoader<ChildCategoriesLoader>>(ctx)?;
        let children = loader.load_one(self.0.id).await.map_err(|error| error.extend())?;
        Ok(children.unwrap_or_default().into_iter().map(Category).collect())
    }
}

#[derive(Default)]
pub struct CategoryQuery;

#[Object]
impl CategoryQuery {
    /// The top-level categories, by name; walk `children` for the rest of the tree.
    async fn categories(&self, ctx: &Context<'_>) -> Result<Vec<Category>> {
        let catalog = context_data::<Catalog>(ctx)?;
        let tree = catalog.category_tree().await.extend()?;
        Ok(store::categories::roots(&tree).into_iter().map(Category).collect())
    }
}
