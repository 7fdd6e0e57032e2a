//! Schema migrations, one set per service.
//!
//! Each service's set lives in its own module and runs against that service's own
//! PostgreSQL schema (or SQLite file), with its own `seaql_migrations` history table, so
//! services migrate independently. Migrations are applied at service start-up and by the
//! explicit `vitrina migrate` command for production roll-outs. An applied migration is
//! never edited: changes come as new `mYYYYMMDD_NNNNNN_*` files.

pub mod catalog;
pub mod event_log;
pub mod identity;
pub mod orders;
pub mod outbox;
pub mod projection_state;

pub use sea_orm_migration::MigratorTrait;
