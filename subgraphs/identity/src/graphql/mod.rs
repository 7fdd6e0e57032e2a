//! identity's public GraphQL schema (federation subgraph `identity`).
//!
//! Split by domain: `account` (sign-up, sign-in, sessions, `me`), `admin` (user listing,
//! roles), `user` (the `User` entity and its loader). Every root field with an access
//! requirement carries a `RuleGuard` naming it; the rule itself is in the shared table.

mod account;
mod admin;
mod user;

use std::sync::Arc;

use async_graphql::{EmptySubscription, MergedObject, Schema};

pub use user::{User, UserLoader};

use crate::accounts::Accounts;

#[derive(MergedObject, Default)]
pub struct Query(account::AccountQuery, admin::AdminQuery, user::UserEntityQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(account::AccountMutation, admin::AdminMutation);

pub type IdentitySchema = Schema<Query, Mutation, EmptySubscription>;

pub fn build_schema(accounts: Arc<Accounts>) -> IdentitySchema {
    let db = accounts.database().clone();
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .enable_federation()
        .data(vitrina_shared::graphql::data_loader(UserLoader(db)))
        .data(accounts)
        .finish()
}

/// The schema's shape only, for printing SDL without a database.
pub fn build_schema_without_data() -> IdentitySchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .enable_federation()
        .finish()
}
