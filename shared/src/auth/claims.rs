//! The claims of a Vitrina access token (a JWT profiled after RFC 9068).

use serde::{Deserialize, Serialize};

use super::Role;

/// The JOSE `typ` header of access tokens. Checking it stops an ID token or any other JWT
/// signed by the same key from being accepted as an access token.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The only signing algorithm accepted. Pinned, so neither `none` nor an HMAC signed with
/// the public key (algorithm confusion) can pass.
pub const ACCESS_TOKEN_ALGORITHM: jsonwebtoken::Algorithm = jsonwebtoken::Algorithm::EdDSA;

/// What an access token asserts. Every field is required: a token lacking one is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    /// Unique token id (UUID v7).
    pub jti: String,
    /// The server-side session id.
    pub sid: String,
    pub roles: Vec<Role>,
    /// Informative for other consumers; Vitrina derives permissions from `roles`.
    #[serde(default)]
    pub permissions: Vec<String>,
}
