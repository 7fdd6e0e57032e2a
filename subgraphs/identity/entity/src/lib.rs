//! sea-orm entities of the identity service, mirroring `migrations/src/identity`.
//!
//! Sessions are not here: they live in Redis (or the embedded store), not in SQL.

pub mod signing_key;
pub mod user_account;
pub mod user_role;
