//! Product reads: by id (batched), by slug, and keyset-paginated listings.
//!
//! Listings use keyset pagination on `(sort column, id)`: a cursor names the last row seen,
//! and the next page is "rows after that tuple". Unlike offsets, this never skips or
//! repeats rows when products are inserted between two page requests, and it costs the
//! same on page 1 and page 10,000 (one index range scan).

use std::collections::HashMap;

use catalog_entity::{product, stock};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbBackend, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query, SimpleExpr},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    pagination::{PageDirection, PageRequest},
};

use crate::domain::{ProductSortField, ProductStatus, SortDirection, Visibility};

/// A product with its stock row (absent only for products created before stock existed).
pub type ProductRow = (product::Model, Option<stock::Model>);

/// Filters of a listing, already validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProductFilter {
    /// The category and all of its descendants.
    pub category_ids: Option<Vec<Uuid>>,
    pub search: Option<String>,
    pub min_price: Option<Decimal>,
    pub max_price: Option<Decimal>,
    pub in_stock: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductSort {
    pub field: ProductSortField,
    pub direction: SortDirection,
}

impl Default for ProductSort {
    fn default() -> Self {
        Self {
            field: ProductSortField::CreatedAt,
            direction: SortDirection::Desc,
        }
    }
}

/// The position of a row in a listing; serialized into an opaque cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCursor {
    /// The sort the cursor was issued for; a cursor is meaningless under another sort.
    #[serde(rename = "f")]
    pub field: ProductSortField,
    #[serde(rename = "k")]
    pub key: SortKey,
    #[serde(rename = "i")]
    pub id: Uuid,
}

/// The sort-column value of a cursor's row. Tagged, so a product named like a timestamp
/// can never be read back as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    #[serde(rename = "n")]
    Integer(i64),
    #[serde(rename = "t")]
    Timestamp(DateTime<Utc>),
    #[serde(rename = "s")]
    Text(String),
}

impl SortKey {
    fn fits(&self, field: ProductSortField) -> bool {
        matches!(
            (self, field),
            (SortKey::Text(_), ProductSortField::Name)
                | (SortKey::Integer(_), ProductSortField::Price)
                | (SortKey::Timestamp(_), ProductSortField::CreatedAt)
        )
    }
}

impl ProductCursor {
    pub fn for_row(field: ProductSortField, row: &product::Model) -> Self {
        let key = match field {
            ProductSortField::Name => SortKey::Text(row.name.clone()),
            ProductSortField::Price => SortKey::Integer(row.price_minor),
            ProductSortField::CreatedAt => SortKey::Timestamp(row.created_at),
        };
        Self { field, key, id: row.id }
    }
}

/// One page of a listing.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProductPage {
    pub rows: Vec<ProductRow>,
    pub has_previous_page: bool,
    pub has_next_page: bool,
}

/// A listing request: filters, order, page size and position.
#[derive(Debug, Clone)]
pub struct ListProducts {
    pub visibility: Visibility,
    pub filter: ProductFilter,
    pub sort: ProductSort,
    pub page: PageRequest,
    pub after: Option<ProductCursor>,
    pub before: Option<ProductCursor>,
}

pub async fn find_by_ids(db: &DatabaseConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, ProductRow>, AppError> {
    let rows = product::Entity::find()
        .filter(product::Column::Id.is_in(ids.iter().copied()))
        .find_also_related(stock::Entity)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|row| (row.0.id, row)).collect())
}

pub async fn find_by_slug(
    db: &DatabaseConnection,
    slug: &str,
    visibility: Visibility,
) -> Result<Option<ProductRow>, AppError> {
    let query = product::Entity::find().filter(product::Column::Slug.eq(slug));
    Ok(visible(query, visibility)
        .find_also_related(stock::Entity)
        .one(db)
        .await?)
}

/// Whether `row` may be shown to a caller with `visibility`.
pub fn is_visible(row: &product::Model, visibility: Visibility) -> bool {
    visibility == Visibility::Everything || row.status == ProductStatus::Active.as_str()
}

pub async fn list(db: &DatabaseConnection, request: &ListProducts) -> Result<ProductPage, AppError> {
    for (argument, cursor) in [("after", &request.after), ("before", &request.before)] {
        if let Some(cursor) = cursor
            && (cursor.field != request.sort.field || !cursor.key.fits(cursor.field))
        {
            return Err(AppError::bad_input(
                argument,
                "the cursor belongs to a listing with another sort order",
            ));
        }
    }
    let column = sort_column(request.sort.field);
    let ascending = request.sort.direction == SortDirection::Asc;
    let mut query = filtered(db.get_database_backend(), request.visibility, &request.filter);
    if let Some(after) = &request.after {
        query = query.filter(beyond(column, after, ascending));
    }
    if let Some(before) = &request.before {
        query = query.filter(beyond(column, before, !ascending));
    }
    // A backward page is read in reverse order from the cursor, then flipped back.
    let read_ascending = ascending == (request.page.direction == PageDirection::Forward);
    let order = if read_ascending { Order::Asc } else { Order::Desc };
    let mut rows = query
        .order_by(column, order.clone())
        .order_by(product::Column::Id, order)
        .limit(request.page.size + 1)
        .find_also_related(stock::Entity)
        .all(db)
        .await?;
    let has_more = rows.len() as u64 > request.page.size;
    rows.truncate(request.page.size as usize);
    Ok(match request.page.direction {
        PageDirection::Forward => ProductPage {
            rows,
            has_previous_page: request.after.is_some(),
            has_next_page: has_more,
        },
        PageDirection::Backward => {
            rows.reverse();
            ProductPage {
                rows,
                has_previous_page: has_more,
                has_next_page: request.before.is_some(),
            }
        }
    })
}

/// Number of products a listing with `filter` contains, across all pages.
pub async fn count(db: &DatabaseConnection, visibility: Visibility, filter: &ProductFilter) -> Result<u64, AppError> {
    Ok(filtered(db.get_database_backend(), visibility, filter)
        .count(db)
        .await?)
}

fn visible(query: Select<product::Entity>, visibility: Visibility) -> Select<product::Entity> {
    match visibility {
        Visibility::Storefront => query.filter(product::Column::Status.eq(ProductStatus::Active.as_str())),
        Visibility::Everything => query,
    }
}

fn filtered(backend: DbBackend, visibility: Visibility, filter: &ProductFilter) -> Select<product::Entity> {
    let mut query = visible(product::Entity::find(), visibility);
    if let Some(ids) = &filter.category_ids {
        query = query.filter(product::Column::CategoryId.is_in(ids.iter().copied()));
    }
    // A blank search is no filter (forms send ""); text without a single letter or digit
    // matches nothing rather than everything.
    if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let words = search_words(search);
        query = if words.is_empty() {
            query.filter(Expr::cust("1 = 0"))
        } else {
            query.filter(matches_search(backend, &words))
        };
    }
    if let Some(min) = filter.min_price {
        query = query.filter(price_bound(min, Bound::AtLeast));
    }
    if let Some(max) = filter.max_price {
        query = query.filter(price_bound(max, Bound::AtMost));
    }
    if let Some(in_stock) = filter.in_stock {
        // A subquery, not a join: listings already join `stock` to return quantities.
        let available = Expr::col(stock::Column::OnHand)
            .sub(Expr::col(stock::Column::Reserved))
            .gt(0);
        let with_stock = Query::select()
            .column(stock::Column::ProductId)
            .from(stock::Entity)
            .and_where(available)
            .to_owned();
        query = if in_stock {
            query.filter(product::Column::Id.in_subquery(with_stock))
        } else {
            query.filter(product::Column::Id.not_in_subquery(with_stock))
        };
    }
    query
}

/// The words of a search text: runs of letters and digits, lower-cased, at most 8 (a
/// longer text narrows nothing further and only costs time).
fn search_words(search: &str) -> Vec<String> {
    search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(8)
        .map(str::to_lowercase)
        .collect()
}

/// Every word must start a word of the name, SKU or description. PostgreSQL answers from
/// the GIN index on `search_document` (prefix `tsquery`); SQLite, the embedded default for
/// small catalogs, scans with `LIKE` (where a word may match inside another word too).
fn matches_search(backend: DbBackend, words: &[String]) -> Condition {
    if backend == DbBackend::Postgres {
        // Words contain only letters and digits, so `word:*` is always a valid tsquery term.
        let query = words
            .iter()
            .map(|word| format!("{word}:*"))
            .collect::<Vec<_>>()
            .join(" & ");
        return Condition::all().add(Expr::cust_with_values(
            "\"product\".\"search_document\" @@ to_tsquery('simple', $1)",
            [query],
        ));
    }
    let mut all = Condition::all();
    for word in words {
        let pattern = format!("%{word}%");
        let like = |column: product::Column| {
            Expr::expr(Func::lower(Expr::col((product::Entity, column)))).like(LikeExpr::new(pattern.clone()))
        };
        all = all.add(
            Condition::any()
                .add(like(product::Column::Name))
                .add(like(product::Column::Sku))
                .add(like(product::Column::Description)),
        );
    }
    all
}

fn sort_column(field: ProductSortField) -> product::Column {
    match field {
        ProductSortField::Name => product::Column::Name,
        ProductSortField::Price => product::Column::PriceMinor,
        ProductSortField::CreatedAt => product::Column::CreatedAt,
    }
}

/// Rows strictly after `cursor` in the given order: `(key, id) > (k, i)` when ascending.
fn beyond(column: product::Column, cursor: &ProductCursor, ascending: bool) -> Condition {
    let key: SimpleExpr = match &cursor.key {
        SortKey::Integer(value) => Expr::val(*value),
        SortKey::Timestamp(value) => Expr::val(*value),
        SortKey::Text(value) => Expr::val(value.clone()),
    };
    let column_expr = Expr::col((product::Entity, column));
    let id_expr = Expr::col((product::Entity, product::Column::Id));
    if ascending {
        Condition::any()
            .add(column_expr.clone().gt(key.clone()))
            .add(Condition::all().add(column_expr.eq(key)).add(id_expr.gt(cursor.id)))
    } else {
        Condition::any()
            .add(column_expr.clone().lt(key.clone()))
            .add(Condition::all().add(column_expr.eq(key)).add(id_expr.lt(cursor.id)))
    }
}

#[derive(Clone, Copy)]
enum Bound {
    AtLeast,
    AtMost,
}

/// `price >= amount` (or `<=`) in every currency: amounts are stored in minor units, so
/// the bound is scaled by each currency's exponent (JPY has none, USD two, BHD three).
fn price_bound(amount: Decimal, bound: Bound) -> Condition {
    let mut any = Condition::any();
    for (exponent, codes) in currencies_by_exponent() {
        // Out-of-range bounds saturate: `>= 1e40` matches nothing, `<= 1e40` everything.
        let saturated = if amount.is_sign_negative() { i64::MIN } else { i64::MAX };
        let minor = amount
            .checked_mul(Decimal::from(10_i64.pow(*exponent)))
            .map(|scaled| match bound {
                Bound::AtLeast => scaled.ceil(),
                Bound::AtMost => scaled.floor(),
            })
            .and_then(|minor| i64::try_from(minor).ok())
            .unwrap_or(saturated);
        let price = Expr::col((product::Entity, product::Column::PriceMinor));
        let price_condition = match bound {
            Bound::AtLeast => price.gte(minor),
            Bound::AtMost => price.lte(minor),
        };
        any = any.add(
            Condition::all()
                .add(product::Column::Currency.is_in(codes.iter().copied()))
                .add(price_condition),
        );
    }
    any
}

fn currencies_by_exponent() -> &'static [(u32, Vec<&'static str>)] {
    static GROUPS: std::sync::OnceLock<Vec<(u32, Vec<&'static str>)>> = std::sync::OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut groups: std::collections::BTreeMap<u32, Vec<&'static str>> = Default::default();
        use iso_currency::IntoEnumIterator;
        for currency in iso_currency::Currency::iter() {
            if let Some(exponent) = currency.exponent() {
                groups.entry(u32::from(exponent)).or_default().push(currency.code());
            }
        }
        groups.into_iter().collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_alphanumeric_runs_so_they_are_always_safe_tsquery_terms() {
        assert_eq!(
            search_words("  Blue  t-shirt's & | !:* (XL)"),
            ["blue", "t", "shirt", "s", "xl"]
        );
        assert!(search_words("&|!:*()").is_empty());
        assert_eq!(search_words("a b c d e f g h i j").len(), 8);
    }

    #[test]
    fn postgres_searches_the_indexed_tsvector_with_prefix_terms_and_sqlite_uses_like() {
        use sea_orm::QueryTrait;
        let filter = ProductFilter {
            search: Some("Blue shi".into()),
            ..Default::default()
        };
        let postgres = filtered(DbBackend::Postgres, Visibility::Storefront, &filter)
            .build(DbBackend::Postgres)
            .to_string();
        // The exact predicate `idx_product_search` serves (checked with EXPLAIN in the
        // integration tests).
        assert!(
            postgres.contains("\"product\".\"search_document\" @@ to_tsquery('simple', 'blue:* & shi:*')"),
            "{postgres}"
        );
        let sqlite = filtered(DbBackend::Sqlite, Visibility::Storefront, &filter)
            .build(DbBackend::Sqlite)
            .to_string();
        assert!(
            sqlite.contains("LIKE '%blue%'") && sqlite.contains("LIKE '%shi%'"),
            "{sqlite}"
        );
    }

    #[test]
    fn a_name_that_looks_like_a_timestamp_stays_a_name() {
        let key = SortKey::Text("2026-01-01T00:00:00Z".into());
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<SortKey>(&json).unwrap(), key);
        assert!(key.fits(ProductSortField::Name) && !key.fits(ProductSortField::CreatedAt));
    }

    #[test]
    fn cursors_round_trip_through_json_for_every_sort_key() {
        for key in [
            SortKey::Integer(1999),
            SortKey::Text("Mug".into()),
            SortKey::Timestamp(Utc::now()),
        ] {
            let cursor = ProductCursor {
                field: ProductSortField::Name,
                key,
                id: Uuid::now_v7(),
            };
            let json = serde_json::to_string(&cursor).unwrap();
            assert_eq!(serde_json::from_str::<ProductCursor>(&json).unwrap(), cursor);
        }
    }

    #[test]
    fn every_currency_with_minor_units_is_in_exactly_one_exponent_group() {
        let groups = currencies_by_exponent();
        let usd = groups.iter().find(|(_, codes)| codes.contains(&"USD")).unwrap();
        assert_eq!(usd.0, 2);
        let jpy = groups.iter().find(|(_, codes)| codes.contains(&"JPY")).unwrap();
        assert_eq!(jpy.0, 0);
        let total: usize = groups.iter().map(|(_, codes)| codes.len()).sum();
        let mut all: Vec<_> = groups.iter().flat_map(|(_, codes)| codes.iter()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), total);
    }
}
