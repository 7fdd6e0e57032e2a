//! Database access of the catalog. Functions take a connection and return domain rows or
//! `AppError`s; they know nothing about GraphQL.

pub mod categories;
pub mod category_writes;
pub mod product_writes;
pub mod products;
pub mod reservations;
