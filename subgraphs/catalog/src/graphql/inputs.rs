//! Listing arguments as clients send them, and their validation into store types.

use async_graphql::{ID, InputObject};
use rust_decimal::Decimal;
use uuid::Uuid;
use vitrina_shared::AppError;

use crate::{
    domain::{ProductSortField, SortDirection},
    service::Catalog,
    store::{self, products},
};

/// Longest accepted search text; longer input is a client error, not a slow query.
const MAX_SEARCH_LENGTH: usize = 200;

#[derive(Debug, Clone, Default, InputObject)]
pub struct ProductFilter {
    /// Products of this category and of all categories below it.
    pub category_id: Option<ID>,
    /// Case-insensitive text matched against name and SKU.
    pub search: Option<String>,
    /// Inclusive lower bound of the price, in the product's currency.
    pub min_price: Option<Decimal>,
    /// Inclusive upper bound of the price, in the product's currency.
    pub max_price: Option<Decimal>,
    /// `true`: only products with available stock; `false`: only those without.
    pub in_stock: Option<bool>,
}

#[derive(Debug, Clone, Copy, InputObject)]
pub struct ProductSort {
    pub field: ProductSortField,
    pub direction: SortDirection,
}

impl From<ProductSort> for products::ProductSort {
    fn from(sort: ProductSort) -> Self {
        Self {
            field: sort.field,
            direction: sort.direction,
        }
    }
}

/// The result of validating a filter: either a store filter, or the certainty that
/// nothing can match (an unknown category), which needs no query at all.
pub enum ValidatedFilter {
    Filter(products::ProductFilter),
    MatchesNothing,
}

impl ProductFilter {
    pub async fn validate(self, catalog: &Catalog) -> Result<ValidatedFilter, AppError> {
        if let Some(search) = &self.search
            && search.chars().count() > MAX_SEARCH_LENGTH
        {
            return Err(AppError::bad_input(
                "filter.search",
                format!("search text must be at most {MAX_SEARCH_LENGTH} characters"),
            ));
        }
        if let (Some(min), Some(max)) = (self.min_price, self.max_price)
            && min > max
        {
            return Err(AppError::bad_input(
                "filter.minPrice",
                "minPrice must not be greater than maxPrice",
            ));
        }
        let category_ids = match &self.category_id {
            None => None,
            Some(id) => {
                let id = parse_id("filter.categoryId", id)?;
                match store::categories::subtree(&catalog.category_tree().await?, id) {
                    Some(ids) => Some(ids),
                    None => return Ok(ValidatedFilter::MatchesNothing),
                }
            }
        };
        Ok(ValidatedFilter::Filter(products::ProductFilter {
            category_ids,
            search: self.search,
            min_price: self.min_price,
            max_price: self.max_price,
            in_stock: self.in_stock,
        }))
    }
}

/// Parses a GraphQL `ID` that must be one of our UUIDs.
pub fn parse_id(field: &str, id: &ID) -> Result<Uuid, AppError> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input(field, format!("`{field}` is not a valid id")))
}
