//! Catalog vocabulary shared by the store and the GraphQL layer.

use async_graphql::Enum;

/// Lifecycle of a product. Only `ACTIVE` products are visible to shoppers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "DRAFT",
            ProductStatus::Active => "ACTIVE",
            ProductStatus::Archived => "ARCHIVED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "DRAFT" => Some(ProductStatus::Draft),
            "ACTIVE" => Some(ProductStatus::Active),
            "ARCHIVED" => Some(ProductStatus::Archived),
            _ => None,
        }
    }
}

/// Which products a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Shoppers (anonymous or signed in): `ACTIVE` products only.
    Storefront,
    /// Catalog managers: every status.
    Everything,
}

impl Visibility {
    /// What `caller` may see: unpublished products need `catalog:write`.
    pub fn for_caller(caller: &vitrina_shared::auth::Caller) -> Self {
        if caller.may(vitrina_shared::auth::Permission::CatalogWrite) {
            Visibility::Everything
        } else {
            Visibility::Storefront
        }
    }
}

/// The column a product listing is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize, serde::Deserialize)]
pub enum ProductSortField {
    Name,
    Price,
    CreatedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum SortDirection {
    Asc,
    Desc,
}
