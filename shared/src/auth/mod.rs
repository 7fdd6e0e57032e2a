//! Identity and access, the same code in every process.
//!
//! The identity subgraph issues access tokens; the router and every subgraph check them
//! here, each on its own (a header a client could forge is never trusted). The pieces:
//! - [`access`]: roles, permissions and the one table mapping the former to the latter;
//! - [`rules`]: the access rule of every mutation and restricted query (RBAC), looked up
//!   by the [`guards`] and by the permission-matrix test;
//! - [`principal`]: who is calling ([`Caller`]), with ownership checks (PBAC);
//! - [`claims`], [`keys`], [`sessions`], [`validator`]: access-token validation beyond the
//!   signature, down to "is the session still active".

pub mod access;
pub mod claims;
pub mod guards;
pub mod keys;
pub mod principal;
pub mod rules;
pub mod sessions;
pub mod validator;

pub use access::{Permission, Role};
pub use guards::{RequireAuth, RequirePermission, RuleGuard};
pub use principal::{Caller, ClientInfo, Principal};
pub use validator::{TokenError, TokenPolicy, TokenValidator};

use std::sync::Arc;

/// The validator of a service other than identity: identity's JWKS over HTTP, session
/// status from Redis when the service has a connection, else from identity's endpoint.
pub fn remote_validator(
    settings: &crate::config::Settings,
    redis: Option<redis::aio::ConnectionManager>,
) -> TokenValidator {
    let base = settings.identity_base_url();
    let keys = Arc::new(keys::JwksClient::new(format!("{base}/.well-known/jwks.json")));
    let status: Arc<dyn sessions::SessionStatus> = match redis {
        Some(redis) => Arc::new(sessions::RedisSessionStatus::new(redis)),
        None => Arc::new(sessions::RemoteSessionStatus::new(&base)),
    };
    let sessions = Arc::new(sessions::CachedSessionStatus::new(status));
    TokenValidator::new(&settings.token_policy(), keys, sessions)
}
