//! Password hashing (Argon2id) and the password policy.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool, never on the async
//! workers. Verifying against an unknown account still hashes (against a fixed dummy), so
//! response times do not tell which emails are registered.

use std::sync::LazyLock;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use secrecy::{ExposeSecret, SecretString};
use vitrina_shared::AppError;

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A hash of a password nobody knows, verified against when the account does not exist.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking(&SecretString::from(uuid::Uuid::new_v4().to_string())).unwrap_or_default());

/// Checks the policy; `field` names the input in the error.
pub fn check_policy(field: &str, password: &SecretString) -> Result<(), AppError> {
    let length = password.expose_secret().chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Err(AppError::bad_input(
            field,
            format!("password must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(AppError::bad_input(
            field,
            format!("password must have at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

fn hash_blocking(password: &SecretString) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("failed to hash a password: {error}"))
}

/// An Argon2id PHC string for `password`.
pub async fn hash(password: SecretString) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
}

/// Whether `password` matches `stored`; `None` (unknown account) costs the same and fails.
pub async fn verify(password: SecretString, stored: Option<String>) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let matches = PasswordHash::new(&stored)
            .map(|hash| {
                Argon2::default()
                    .verify_password(password.expose_secret().as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false);
        known && matches
    })
    .await
    .map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash(SecretString::from("correct horse battery")).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            verify(SecretString::from("correct horse battery"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify(SecretString::from("correct horse battery!"), Some(hash))
                .await
                .unwrap()
        );
        assert!(!verify(SecretString::from("anything at all"), None).await.unwrap());
    }

    #[test]
    fn short_and_huge_passwords_are_refused_naming_the_field() {
        let error = check_policy("input.password", &SecretString::from("short")).unwrap_err();
        assert_eq!(error.code(), vitrina_shared::ErrorCode::BadUserInput);
        assert!(check_policy("p", &SecretString::from("x".repeat(129))).is_err());
        assert!(check_policy("p", &SecretString::from("ten chars!")).is_ok());
    }
}
