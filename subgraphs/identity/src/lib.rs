//! The identity subgraph: users, sign-in, access tokens, server-side sessions and roles.
//!
//! Code-first async-graphql. identity is the only issuer of access tokens (Ed25519-signed
//! JWTs, `kid` in the header, public keys at `/.well-known/jwks.json`) and the owner of
//! sessions; every other process validates tokens with `vitrina_shared::auth`. Layout:
//! `accounts` holds the use cases; `users`, `keys`, `sessions` and `throttle` the state;
//! `tokens` and `passwords` the cryptography; `graphql` and `routes` the API; `app` the
//! wiring.

pub mod accounts;
pub mod app;
pub mod bootstrap;
pub mod graphql;
pub mod keys;
pub mod passwords;
pub mod routes;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

pub use app::Application;

/// The PostgreSQL schema (or SQLite file name) identity owns.
pub const DATABASE_SCHEMA: &str = "identity";

/// identity's federation SDL, as published to composition.
pub fn sdl() -> String {
    graphql::build_schema_without_data().sdl_with_options(vitrina_shared::graphql::federation_sdl_options())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_published_sdl_declares_user_as_a_federation_entity() {
        let sdl = super::sdl();
        assert!(sdl.contains("type User @key(fields: \"id\")"), "{sdl}");
        assert!(
            sdl.contains("refreshSession(refreshToken: String!): AuthPayload!"),
            "{sdl}"
        );
    }
}
