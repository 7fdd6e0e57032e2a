//! `Product`: the federation entity (`@key(fields: "id")`), its queries and listing.

use async_graphql::{
    Context, ErrorExtensions, ID, Json, Object, Result, ResultExt,
    connection::{Connection, CursorType, Edge, EmptyFields, OpaqueCursor},
    dataloader::DataLoader,
};
use catalog_entity::{product, stock};
use chrono::{DateTime, Utc};
use vitrina_shared::{
    AppError,
    auth::Caller,
    cache::tags,
    graphql::context_data,
    money::{Currency, Money},
    pagination::page_request,
};

use super::{
    category::Category,
    inputs::{ProductFilter, ProductSort, ValidatedFilter, parse_id},
    loaders::{CategoryLoader, PriceHistoryLoader, ProductLoader},
};
use crate::{
    domain::{ProductStatus, Visibility},
    price_history::PricePoint as PricePointRow,
    service::Catalog,
    store::products::{self as store, ListProducts, ProductCursor, ProductRow},
};

/// A product as the catalog publishes it.
pub struct Product {
    row: product::Model,
    stock: Option<stock::Model>,
}

impl From<ProductRow> for Product {
    fn from((row, stock): ProductRow) -> Self {
        Self { row, stock }
    }
}

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// Stock-keeping unit, unique across the catalog.
    async fn sku(&self) -> &str {
        &self.row.sku
    }

    /// URL-safe unique name used in storefront links.
    async fn slug(&self) -> &str {
        &self.row.slug
    }

    async fn name(&self) -> &str {
        &self.row.name
    }

    async fn description(&self) -> Option<&str> {
        self.row.description.as_deref()
    }

    async fn status(&self) -> Result<ProductStatus> {
        ProductStatus::parse(&self.row.status)
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "product {} has unknown status {:?}",
                    self.row.id,
                    self.row.status
                ))
            })
            .extend()
    }

    /// Current price. Carts and orders snapshot it; this is always the live value.
    async fn price(&self) -> Result<Money> {
        let currency = Currency::parse(&self.row.currency)
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "product {} has unknown currency {:?}",
                    self.row.id,
                    self.row.currency
                ))
            })
            .extend()?;
        Ok(Money::from_minor_units(self.row.price_minor, currency))
    }

    /// Units that can be ordered now: on hand minus reserved by unpaid orders.
    async fn available_quantity(&self, ctx: &Context<'_>) -> i32 {
        // Every checkout changes stock: the tag lets a response cache retire the responses
        // that show this product's stock, and only those.
        ctx.append_http_header(tags::HEADER, tags::stock_of(self.row.id));
        self.stock.as_ref().map(stock::Model::available).unwrap_or(0)
    }

    async fn category(&self, ctx: &Context<'_>) -> Result<Option<Category>> {
        let Some(category_id) = self.row.category_id else {
            return Ok(None);
        };
        let loader = context_data::<DataLoader<CategoryLoader>>(ctx)?;
        let category = loader.load_one(category_id).await.map_err(|error| error.extend())?;
        Ok(category.map(Category::from))
    }

    /// Free-form attributes such as colour or material.
    async fn attributes(&self) -> Json<serde_json::Value> {
        Json(self.row.attributes.clone())
    }

    /// Optimistic-concurrency version: updates must send the version they read.
    async fn version(&self) -> i32 {
        self.row.version
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }

    /// The prices of the last 30 days, newest first, ending with the price in effect 30
    /// days ago. Read from the price-history projection, which follows catalog events:
    /// a price change appears here shortly after it commits, not in the same instant.
    async fn price_history(&self, ctx: &Context<'_>) -> Result<Vec<PricePoint>> {
        let points = self.recent_prices(ctx).await?;
        points.iter().map(PricePoint::try_from).collect()
    }

    /// The lowest price of the last 30 days: the reference price EU rules require next
    /// to a price reduction. Null until the price-history projection has seen the
    /// product.
    async fn lowest_price_last_30_days(&self, ctx: &Context<'_>) -> Result<Option<Money>> {
        let points = self.recent_prices(ctx).await?;
        let lowest = points
            .iter()
            .filter(|point| point.currency == self.row.currency)
            .min_by_key(|point| point.price_minor);
        lowest
            .map(|point| PricePoint::try_from(point).map(|point| point.price))
            .transpose()
    }
}

impl Product {
    async fn recent_prices(&self, ctx: &Context<'_>) -> Result<Vec<PricePointRow>> {
        let loader = context_data::<DataLoader<PriceHistoryLoader>>(ctx)?;
        let points = loader.load_one(self.row.id).await.map_err(|error| error.extend())?;
        Ok(points.unwrap_or_default())
    }
}

/// A price a product had, and since when.
#[derive(async_graphql::SimpleObject)]
pub struct PricePoint {
    price: Money,
    effective_from: DateTime<Utc>,
}

impl TryFrom<&PricePointRow> for PricePoint {
    type Error = async_graphql::Error;

    fn try_from(point: &PricePointRow) -> Result<Self> {
        let currency = Currency::parse(&point.currency)
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "price history has unknown currency {:?}",
                    point.currency
                ))
            })
            .extend()?;
        Ok(Self {
            price: Money::from_minor_units(point.price_minor, currency),
            effective_from: point.effective_from,
        })
    }
}

/// Fields of a product listing besides its edges.
pub struct ProductConnectionFields {
    visibility: Visibility,
    filter: Option<store::ProductFilter>,
}

#[Object]
impl ProductConnectionFields {
    /// Number of products matching the filter across all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let Some(filter) = &self.filter else { return Ok(0) };
        let catalog = context_data::<Catalog>(ctx)?;
        let count = catalog.count(self.visibility, filter).await.extend()?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}

pub type ProductConnection = Connection<OpaqueCursor<ProductCursor>, Product, ProductConnectionFields, EmptyFields>;

#[derive(Default)]
pub struct ProductQuery;

/// The caller's view of the catalog: managers see every status.
fn visibility_of(ctx: &Context<'_>) -> Result<Visibility> {
    Ok(Visibility::for_caller(context_data::<Caller>(ctx)?))
}

#[Object]
impl ProductQuery {
    /// A product by id; `null` when it does not exist or is not visible to the caller.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Product>> {
        let id = parse_id("id", &id).extend()?;
        // One id at the root has nothing to batch with: ask the cache-aside layer directly
        // and skip the DataLoader's spawn-and-wait (a third of a cache hit's cost).
        let catalog = context_data::<Catalog>(ctx)?;
        let row = catalog.products_by_ids(&[id]).await.extend()?.remove(&id);
        let visibility = visibility_of(ctx)?;
        Ok(row
            .filter(|(product, _)| store::is_visible(product, visibility))
            .map(Product::from))
    }

    /// A product by its slug, for storefront product pages.
    async fn product_by_slug(&self, ctx: &Context<'_>, slug: String) -> Result<Option<Product>> {
        let catalog = context_data::<Catalog>(ctx)?;
        let row = catalog.product_by_slug(&slug, visibility_of(ctx)?).await.extend()?;
        Ok(row.map(Product::from))
    }

    /// Products as a Relay connection: at most 100 per page, stable cursors, filters and
    /// sort (default: newest first).
    #[allow(clippy::too_many_arguments)]
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ProductFilter>,
        sort: Option<ProductSort>,
    ) -> Result<ProductConnection> {
        let catalog = context_data::<Catalog>(ctx)?;
        let page = page_request(first, last).extend()?;
        let after = decode_cursor("after", after).extend()?;
        let before = decode_cursor("before", before).extend()?;
        let visibility = visibility_of(ctx)?;
        let filter = match filter.unwrap_or_default().validate(catalog).await.extend()? {
            ValidatedFilter::Filter(filter) => filter,
            ValidatedFilter::MatchesNothing => {
                return Ok(Connection::with_additional_fields(
                    false,
                    false,
                    ProductConnectionFields {
                        visibility,
                        filter: None,
                    },
                ));
            }
        };
        if filter.in_stock.is_some() {
            // Which products are listed, and how many, changes with any product's stock.
            ctx.append_http_header(tags::HEADER, tags::STOCK_FILTER);
        }
        let sort = sort.map(Into::into).unwrap_or_default();
        let request = ListProducts {
            visibility,
            filter: filter.clone(),
            sort,
            page,
            after,
            before,
        };
        let result = catalog.list(&request).await.extend()?;
        let mut connection = Connection::with_additional_fields(
            result.has_previous_page,
            result.has_next_page,
            ProductConnectionFields {
                visibility,
                filter: Some(filter),
            },
        );
        connection.edges.extend(result.rows.into_iter().map(|row| {
            let cursor = OpaqueCursor(ProductCursor::for_row(sort.field, &row.0));
            Edge::new(cursor, Product::from(row))
        }));
        Ok(connection)
    }

    /// Federation entity resolver: other subgraphs reference products by id. Resolves
    /// every status, so a cart can still show a product that was archived since.
    #[graphql(entity)]
    async fn find_product_by_id(&self, ctx: &Context<'_>, #[graphql(key)] id: ID) -> Result<Option<Product>> {
        let Ok(id) = uuid::Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        let loader = context_data::<DataLoader<ProductLoader>>(ctx)?;
        let row = loader.load_one(id).await.map_err(|error| error.extend())?;
        Ok(row.map(Product::from))
    }
}

fn decode_cursor(argument: &str, cursor: Option<String>) -> Result<Option<ProductCursor>, AppError> {
    cursor
        .map(|cursor| {
            OpaqueCursor::<ProductCursor>::decode_cursor(&cursor)
                .map(|decoded| decoded.0)
                .map_err(|_| AppError::bad_input(argument, format!("`{argument}` is not a valid cursor")))
        })
        .transpose()
}
