//! The first administrator.
//!
//! At start-up, when no account holds ADMIN and both `BOOTSTRAP_ADMIN_EMAIL` and
//! `BOOTSTRAP_ADMIN_PASSWORD` are set, that account is created as ADMIN (or, if it
//! exists, promoted; its password is left as it is). `vitrina create-admin` does the same
//! on demand, whether or not an admin exists. There is never a default password.

use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use vitrina_shared::{AppError, auth::Role, config::Settings};

use crate::{passwords, users};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapOutcome {
    /// The variables are not both set.
    NotConfigured,
    /// An admin exists already; nothing was changed.
    AdminExists,
    Created,
    Promoted,
}

/// The start-up rule.
pub async fn ensure_admin(db: &DatabaseConnection, settings: &Settings) -> Result<BootstrapOutcome, AppError> {
    let (Some(email), Some(password)) = (&settings.bootstrap_admin.email, &settings.bootstrap_admin.password) else {
        return Ok(BootstrapOutcome::NotConfigured);
    };
    if users::admin_count(db).await? > 0 {
        return Ok(BootstrapOutcome::AdminExists);
    }
    create_or_promote(db, email, password.clone()).await
}

/// Makes `email` an administrator, creating the account with `password` if needed.
pub async fn create_or_promote(
    db: &DatabaseConnection,
    email: &str,
    password: SecretString,
) -> Result<BootstrapOutcome, AppError> {
    let email = users::normalize_email("BOOTSTRAP_ADMIN_EMAIL", email)?;
    if let Some(user) = users::find_by_email(db, &email).await? {
        users::grant(db, user.account.id, Role::Admin).await?;
        tracing::warn!(user_id = %user.account.id, "bootstrap: existing account promoted to ADMIN");
        return Ok(BootstrapOutcome::Promoted);
    }
    passwords::check_policy("BOOTSTRAP_ADMIN_PASSWORD", &password)?;
    let hash = passwords::hash(password).await?;
    let name = email.split('@').next().unwrap_or("admin").to_owned();
    let user = users::create(db, email, name, hash, &[Role::Customer, Role::Admin]).await?;
    tracing::warn!(user_id = %user.account.id, "bootstrap: administrator account created");
    Ok(BootstrapOutcome::Created)
}
