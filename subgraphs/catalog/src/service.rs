//! The catalog's use cases over its store and its cache: every read the schema makes
//! goes through here (cache-aside), and every write invalidates what it changed after
//! its transaction commits and before it returns, so a client never reads its own write
//! stale.
//!
//! Cache scopes: `product:<id>` holds that product's row (with its stock); `products`
//! holds listing pages, totals and slug look-ups that do not depend on stock, and
//! `products:stock` those that do (an `inStock` filter); `categories` holds the category
//! tree. A listing page is cached as its products' ids, and its rows are read by id, so a
//! stock change (every order takes stock) retires the product's row and the stock-filtered
//! listings only: other pages keep their order and membership, and show the new stock
//! through the row. Any other product write retires every listing (lists are cheap to
//! rebuild, and a change can move a product between any two pages).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use catalog_entity::category;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    cache::{Cache, CacheKey},
    db::StatementCounter,
    reservations::{Reservation, ReservationStep, ReserveRequest},
};

use crate::{
    domain::{ProductStatus, Visibility},
    store::{
        categories,
        category_writes::{self, CategoryChanges, NewCategory},
        product_writes::{self, NewProduct, ProductChanges},
        products::{self, ListProducts, ProductFilter, ProductPage, ProductRow},
        reservations,
    },
};

const LISTINGS: &str = "products";
const STOCK_LISTINGS: &str = "products:stock";
const CATEGORIES: &str = "categories";

fn product_scope(id: Uuid) -> String {
    format!("product:{id}")
}

/// The scope of listings and totals under `filter`: whether a stock change can alter them.
fn listing_scope(filter: &ProductFilter) -> &'static str {
    if filter.in_stock.is_some() {
        STOCK_LISTINGS
    } else {
        LISTINGS
    }
}

/// A listing page as cached: its products' ids in order, a fifth of the size of the rows,
/// which are cached (and retired) per product.
#[derive(Serialize, Deserialize)]
struct ListedPage {
    ids: Vec<Uuid>,
    has_previous_page: bool,
    has_next_page: bool,
}

/// A short, stable digest of a request's `Debug` form, for cache entry names.
fn digest(value: &impl std::fmt::Debug) -> String {
    let hash = Sha256::digest(format!("{value:?}").as_bytes());
    hex::encode(&hash[..16])
}

/// The catalog: database, cache, and the statement count tests read.
#[derive(Clone)]
pub struct Catalog {
    db: DatabaseConnection,
    cache: Cache,
    statements: StatementCounter,
}

impl Catalog {
    pub fn new(db: DatabaseConnection, cache: Cache, statements: StatementCounter) -> Self {
        Self { db, cache, statements }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// SQL statements executed so far (for batching assertions and benchmarks).
    pub fn statements_executed(&self) -> u64 {
        self.statements.get()
    }

    // ---- reads -----------------------------------------------------------------------

    /// Products by id, whatever their status; ids that do not exist are left out. One
    /// cache round trip, and one SQL query for all the misses together.
    pub async fn products_by_ids(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, ProductRow>, AppError> {
        let keys = ids
            .iter()
            .map(|id| (*id, CacheKey::new(product_scope(*id), "row")))
            .collect();
        let db = self.db.clone();
        self.cache
            .get_or_load_many(keys, move |missing: Vec<Uuid>| async move {
                products::find_by_ids(&db, &missing).await
            })
            .await
    }

    pub async fn product_by_slug(&self, slug: &str, visibility: Visibility) -> Result<Option<ProductRow>, AppError> {
        let db = self.db.clone();
        let owned = slug.to_owned();
        // The slug's product id; its row (and stock) is read by id, as a listing's are.
        let id: Option<Uuid> = self
            .cache
            .get_or_load(CacheKey::new(LISTINGS, format!("slug:{slug}")), move || async move {
                let row = products::find_by_slug(&db, &owned, Visibility::Everything).await?;
                Ok(row.map(|(product, _)| product.id))
            })
            .await?;
        let Some(id) = id else { return Ok(None) };
        let row = self.products_by_ids(&[id]).await?.remove(&id);
        Ok(row.filter(|(product, _)| products::is_visible(product, visibility)))
    }

    pub async fn list(&self, request: &ListProducts) -> Result<ProductPage, AppError> {
        let db = self.db.clone();
        let owned = request.clone();
        // The rows of the listing query, when this call ran it: read by id otherwise.
        let loaded: Arc<Mutex<Option<Vec<ProductRow>>>> = Arc::default();
        let loaded_here = Arc::clone(&loaded);
        let listed: ListedPage = self
            .cache
            .get_or_load(
                CacheKey::new(listing_scope(&request.filter), format!("list:{}", digest(request))),
                move || async move {
                    let page = products::list(&db, &owned).await?;
                    let listed = ListedPage {
                        ids: page.rows.iter().map(|(product, _)| product.id).collect(),
                        has_previous_page: page.has_previous_page,
                        has_next_page: page.has_next_page,
                    };
                    *loaded_here.lock().unwrap_or_else(PoisonError::into_inner) = Some(page.rows);
                    Ok(listed)
                },
            )
            .await?;
        let loaded = loaded.lock().unwrap_or_else(PoisonError::into_inner).take();
        let rows = match loaded {
            Some(rows) => rows,
            None => {
                let mut found = self.products_by_ids(&listed.ids).await?;
                // A product written since the page was listed shows as it is now; one that
                // left the caller's view (archived, deleted) in between is left out.
                listed
                    .ids
                    .iter()
                    .filter_map(|id| found.remove(id))
                    .filter(|(product, _)| products::is_visible(product, request.visibility))
                    .collect()
            }
        };
        Ok(ProductPage {
            rows,
            has_previous_page: listed.has_previous_page,
            has_next_page: listed.has_next_page,
        })
    }

    pub async fn count(&self, visibility: Visibility, filter: &ProductFilter) -> Result<u64, AppError> {
        let db = self.db.clone();
        let owned = filter.clone();
        self.cache
            .get_or_load(
                CacheKey::new(
                    listing_scope(filter),
                    format!("count:{}", digest(&(visibility, filter))),
                ),
                move || async move { products::count(&db, visibility, &owned).await },
            )
            .await
    }

    /// The whole category tree (small: hundreds of nodes), cached as one entry. Every
    /// category-filtered listing reads it twice (the filter, then each product's
    /// category), so readers share one decoded copy.
    pub async fn category_tree(&self) -> Result<Arc<Vec<category::Model>>, AppError> {
        let db = self.db.clone();
        self.cache
            .get_or_load_shared(CacheKey::new(CATEGORIES, "tree"), move || async move {
                categories::all(&db).await
            })
            .await
    }

    // ---- product writes --------------------------------------------------------------

    pub async fn create_product(&self, new: NewProduct, request_id: Option<&str>) -> Result<ProductRow, AppError> {
        let row = product_writes::create(&self.db, new, request_id).await?;
        self.invalidate_product(row.0.id).await;
        Ok(row)
    }

    pub async fn update_product(
        &self,
        id: Uuid,
        version: i32,
        changes: ProductChanges,
        request_id: Option<&str>,
    ) -> Result<ProductRow, AppError> {
        let row = product_writes::update(&self.db, id, version, changes, request_id).await?;
        self.invalidate_product(id).await;
        Ok(row)
    }

    pub async fn set_product_status(
        &self,
        id: Uuid,
        status: ProductStatus,
        request_id: Option<&str>,
    ) -> Result<ProductRow, AppError> {
        let row = product_writes::set_status(&self.db, id, status, request_id).await?;
        self.invalidate_product(id).await;
        Ok(row)
    }

    pub async fn delete_product(&self, id: Uuid, request_id: Option<&str>) -> Result<(), AppError> {
        product_writes::delete(&self.db, id, request_id).await?;
        self.invalidate_product(id).await;
        Ok(())
    }

    pub async fn adjust_stock(
        &self,
        id: Uuid,
        delta: i32,
        reason: &str,
        request_id: Option<&str>,
    ) -> Result<ProductRow, AppError> {
        let row = product_writes::adjust_stock(&self.db, id, delta, reason, request_id).await?;
        self.invalidate_stock(std::iter::once(id)).await;
        Ok(row)
    }

    // ---- stock reservations (the orders service's internal API) ----------------------

    /// Holds an order's units (all or none); idempotent per order.
    pub async fn reserve(&self, request: &ReserveRequest, request_id: Option<&str>) -> Result<Reservation, AppError> {
        let reservation = reservations::reserve(&self.db, request, request_id).await?;
        self.invalidate_stock(reservation.lines.iter().map(|line| line.product_id))
            .await;
        Ok(reservation)
    }

    /// Commits, releases or returns an order's units; idempotent per order and step.
    pub async fn advance_reservation(
        &self,
        order_id: Uuid,
        step: ReservationStep,
        request_id: Option<&str>,
    ) -> Result<Reservation, AppError> {
        let reservation = reservations::advance(&self.db, order_id, step, request_id).await?;
        self.invalidate_stock(reservation.lines.iter().map(|line| line.product_id))
            .await;
        Ok(reservation)
    }

    /// Retires the rows of products whose stock changed, and the listings that filter on
    /// stock; the other listings hold only ids, which a stock change does not move.
    async fn invalidate_stock(&self, ids: impl Iterator<Item = Uuid>) {
        let mut scopes: Vec<String> = ids.map(product_scope).collect();
        scopes.push(STOCK_LISTINGS.to_owned());
        self.cache.invalidate(&scopes).await;
    }

    /// Retires the product's cached row and every listing (a price, name or status decides
    /// where a product is listed, and whether). Public for writers outside this type (data
    /// repairs, tests that arrange rows directly).
    pub async fn invalidate_product(&self, id: Uuid) {
        self.cache
            .invalidate(&[product_scope(id), LISTINGS.to_owned(), STOCK_LISTINGS.to_owned()])
            .await;
    }

    // ---- category writes -------------------------------------------------------------

    pub async fn create_category(&self, new: NewCategory) -> Result<category::Model, AppError> {
        let row = category_writes::create(&self.db, new).await?;
        self.invalidate_categories().await;
        Ok(row)
    }

    pub async fn update_category(&self, id: Uuid, changes: CategoryChanges) -> Result<category::Model, AppError> {
        let row = category_writes::update(&self.db, id, changes).await?;
        self.invalidate_categories().await;
        Ok(row)
    }

    pub async fn delete_category(&self, id: Uuid) -> Result<(), AppError> {
        category_writes::delete(&self.db, id).await?;
        self.invalidate_categories().await;
        Ok(())
    }

    /// Retires the tree and the listings (a category filter covers the subtree, which a
    /// move changes).
    pub async fn invalidate_categories(&self) {
        self.cache
            .invalidate(&[CATEGORIES.to_owned(), LISTINGS.to_owned(), STOCK_LISTINGS.to_owned()])
            .await;
    }
}
