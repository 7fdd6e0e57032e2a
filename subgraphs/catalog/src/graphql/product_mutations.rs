//! Product and stock writes as GraphQL mutations. Each validates its whole input first
//! (`BAD_USER_INPUT` naming the field), then calls the [`Catalog`] use case, which
//! commits the change with its outbox event and invalidates the cache before returning.

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Json, MaybeUndefined, Object, Result, ResultExt};
use vitrina_shared::{AppError, auth::RuleGuard, graphql::context_data, http::RequestId, money::MoneyInput};

use super::{inputs::parse_id, product::Product};
use crate::{
    domain::ProductStatus,
    service::Catalog,
    store::product_writes::{NewProduct, ProductChanges},
    validation,
};

#[derive(Debug, InputObject)]
pub struct CreateProductInput {
    /// Stock-keeping unit; stored upper case and unique.
    pub sku: String,
    /// Lowercase words joined by hyphens; unique.
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    /// Greater than zero, with at most the currency's minor digits.
    pub price: MoneyInput,
    pub category_id: Option<ID>,
    /// Units on hand to start with (default 0).
    pub initial_stock: Option<i32>,
    /// Default `DRAFT`: nothing reaches the storefront until it is published.
    pub status: Option<ProductStatus>,
    /// A JSON object of at most 50 keys (colour, size, material …).
    pub attributes: Option<Json<serde_json::Value>>,
}

#[derive(Debug, InputObject)]
pub struct UpdateProductInput {
    /// The version you read; if the product changed since, the update is a `CONFLICT`.
    pub version: i32,
    pub name: Option<String>,
    pub slug: Option<String>,
    /// `null` clears the description.
    pub description: MaybeUndefined<String>,
    pub price: Option<MoneyInput>,
    pub status: Option<ProductStatus>,
    /// `null` removes the product from its category.
    pub category_id: MaybeUndefined<ID>,
    pub attributes: Option<Json<serde_json::Value>>,
}

impl CreateProductInput {
    fn validate(self) -> Result<NewProduct, AppError> {
        let (price_minor, currency) = self.price.to_positive_minor_units("input.price")?;
        Ok(NewProduct {
            sku: validation::sku("input.sku", &self.sku)?,
            slug: validation::slug("input.slug", &self.slug)?,
            name: validation::name("input.name", &self.name, validation::PRODUCT_NAME_MAX)?,
            description: validation::description("input.description", self.description.as_deref())?,
            price_minor,
            currency: currency.code().to_owned(),
            status: self.status.unwrap_or(ProductStatus::Draft),
            category_id: self
                .category_id
                .as_ref()
                .map(|id| parse_id("input.categoryId", id))
                .transpose()?,
            attributes: match self.attributes {
                Some(Json(value)) => validation::attributes("input.attributes", value)?,
                None => serde_json::json!({}),
            },
            initial_stock: validation::initial_stock("input.initialStock", self.initial_stock.unwrap_or(0))?,
        })
    }
}

impl UpdateProductInput {
    fn validate(self) -> Result<(i32, ProductChanges), AppError> {
        let changes = ProductChanges {
            name: self
                .name
                .map(|name| validation::name("input.name", &name, validation::PRODUCT_NAME_MAX))
                .transpose()?,
            slug: self
                .slug
                .map(|slug| validation::slug("input.slug", &slug))
                .transpose()?,
            description: match self.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(text) => Some(validation::description("input.description", Some(&text))?),
            },
            price: self
                .price
                .map(|price| {
                    price
                        .to_positive_minor_units("input.price")
                        .map(|(minor, currency)| (minor, currency.code().to_owned()))
                })
                .transpose()?,
            status: self.status,
            category_id: match self.category_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(id) => Some(Some(parse_id("input.categoryId", &id)?)),
            },
            attributes: self
                .attributes
                .map(|Json(value)| validation::attributes("input.attributes", value))
                .transpose()?,
        };
        if changes.is_empty() {
            return Err(AppError::bad_input("input", "the update changes nothing"));
        }
        Ok((self.version, changes))
    }
}

/// The id of the request being served, recorded in the events it causes.
pub(super) fn request_id<'a>(ctx: &Context<'a>) -> Option<&'a str> {
    ctx.data_opt::<RequestId>().map(|id| id.0.as_str())
}

#[derive(Default)]
pub struct ProductMutation;

#[Object]
impl ProductMutation {
    /// Creates a product (default status `DRAFT`) with its initial stock.
    #[graphql(guard = "RuleGuard::mutation(\"createProduct\")")]
    async fn create_product(&self, ctx: &Context<'_>, input: CreateProductInput) -> Result<Product> {
        let new = input.validate().extend()?;
        let catalog = context_data::<Catalog>(ctx)?;
        let row = catalog.create_product(new, request_id(ctx)).await.extend()?;
        Ok(Product::from(row))
    }

    /// Changes a product, if `input.version` is still its version (else `CONFLICT`).
    #[graphql(guard = "RuleGuard::mutation(\"updateProduct\")")]
    async fn update_product(&self, ctx: &Context<'_>, id: ID, input: UpdateProductInput) -> Result<Product> {
        let id = parse_id("id", &id).extend()?;
        let (version, changes) = input.validate().extend()?;
        let catalog = context_data::<Catalog>(ctx)?;
        let row = catalog
            .update_product(id, version, changes, request_id(ctx))
            .await
            .extend()?;
        Ok(Product::from(row))
    }

    /// Makes a product visible to shoppers.
    #[graphql(guard = "RuleGuard::mutation(\"publishProduct\")")]
    async fn publish_product(&self, ctx: &Context<'_>, id: ID) -> Result<Product> {
        self.set_status(ctx, id, ProductStatus::Active).await
    }

    /// Withdraws a product from the storefront; carts and orders still resolve it.
    #[graphql(guard = "RuleGuard::mutation(\"archiveProduct\")")]
    async fn archive_product(&self, ctx: &Context<'_>, id: ID) -> Result<Product> {
        self.set_status(ctx, id, ProductStatus::Archived).await
    }

    /// Deletes a product and its stock; `true` when done, `NOT_FOUND` when it did not exist.
    #[graphql(guard = "RuleGuard::mutation(\"deleteProduct\")")]
    async fn delete_product(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let id = parse_id("id", &id).extend()?;
        let catalog = context_data::<Catalog>(ctx)?;
        catalog.delete_product(id, request_id(ctx)).await.extend()?;
        Ok(true)
    }

    /// Adds (positive `delta`) or removes units on hand. Removing more than is on hand
    /// minus reserved is a `CONFLICT`: available stock never goes negative.
    #[graphql(guard = "RuleGuard::mutation(\"adjustStock\")")]
    async fn adjust_stock(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        delta: i32,
        #[graphql(desc = "Why, as recorded in the StockChanged event (default \"adjustment\").")] reason: Option<
            String,
        >,
    ) -> Result<Product> {
        let id = parse_id("productId", &product_id).extend()?;
        let delta = validation::stock_delta("delta", delta).extend()?;
        let reason = validation::reason("reason", reason.as_deref()).extend()?;
        let catalog = context_data::<Catalog>(ctx)?;
        let row = catalog
            .adjust_stock(id, delta, &reason, request_id(ctx))
            .await
            .extend()?;
        Ok(Product::from(row))
    }
}

impl ProductMutation {
    async fn set_status(&self, ctx: &Context<'_>, id: ID, status: ProductStatus) -> Result<Product> {
        let id = parse_id("id", &id).extend()?;
        let catalog = context_data::<Catalog>(ctx)?;
        let row = catalog
            .set_product_status(id, status, request_id(ctx))
            .await
            .map_err(|error| error.extend())?;
        Ok(Product::from(row))
    }
}
