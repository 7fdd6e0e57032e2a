//! Issuing tokens: signed access JWTs and opaque refresh tokens.
//!
//! A refresh token is `<session id>.<256 random bits>`; only its SHA-256 is stored, so a
//! leaked session store cannot be replayed. (A fast hash is right here: the secret is
//! random, not a password.)

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::Header;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    auth::{
        Role,
        access::permissions_of,
        claims::{ACCESS_TOKEN_ALGORITHM, ACCESS_TOKEN_TYPE, AccessClaims},
    },
};

use crate::keys::KeyRing;

/// A freshly signed access token.
pub struct AccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

pub struct TokenIssuer {
    keys: Arc<KeyRing>,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

impl TokenIssuer {
    pub fn new(keys: Arc<KeyRing>, issuer: String, audience: String, lifetime: Duration) -> Self {
        Self {
            keys,
            issuer,
            audience,
            lifetime,
        }
    }

    pub fn issue(&self, user_id: Uuid, session_id: Uuid, roles: &[Role]) -> Result<AccessToken, AppError> {
        let now = Utc::now();
        let expires_at = now + chrono::Duration::from_std(self.lifetime).map_err(AppError::internal)?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            exp: expires_at.timestamp(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            jti: Uuid::now_v7().to_string(),
            sid: session_id.to_string(),
            roles: roles.to_vec(),
            permissions: permissions_of(roles).iter().map(|p| p.as_str().to_owned()).collect(),
        };
        let key = self.keys.active();
        let mut header = Header::new(ACCESS_TOKEN_ALGORITHM);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(key.kid);
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|error| AppError::internal(anyhow::anyhow!("failed to sign an access token: {error}")))?;
        Ok(AccessToken { token, expires_at })
    }
}

/// A new refresh token for `session_id`, and the hash to store.
pub fn new_refresh_token(session_id: Uuid) -> (String, String) {
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let hash = hash_secret(&secret);
    (format!("{session_id}.{secret}"), hash)
}

/// The session and secret hash of a presented refresh token; `None` if it is malformed.
pub fn parse_refresh_token(token: &str) -> Option<(Uuid, String)> {
    let (session, secret) = token.trim().split_once('.')?;
    let session_id = Uuid::parse_str(session).ok()?;
    (secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| (session_id, hash_secret(secret)))
}

fn hash_secret(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_parses_back_to_its_session_and_hash() {
        let session = Uuid::now_v7();
        let (token, hash) = new_refresh_token(session);
        assert_eq!(parse_refresh_token(&token), Some((session, hash.clone())));
        assert!(!token.contains(&hash), "the stored hash is not the token");
        assert_eq!(parse_refresh_token("garbage"), None);
        assert_eq!(parse_refresh_token(&format!("{session}.short")), None);
    }
}
