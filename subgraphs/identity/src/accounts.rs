//! The identity use cases: register, sign in, refresh, sign out, roles.
//!
//! Resolvers translate GraphQL to these calls and back; everything that must hold
//! whatever the transport (throttling, rotation, reuse detection, "never remove the last
//! admin") is decided here.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    auth::{ClientInfo, Principal, Role},
};

use crate::{
    passwords,
    sessions::{Rotation, RotationRequest, Session, SessionStore},
    throttle::LoginThrottle,
    tokens::{AccessToken, TokenIssuer, new_refresh_token, parse_refresh_token},
    users::{self, UserRecord},
};

/// What a successful sign-in or refresh hands to the client.
pub struct SignedIn {
    pub access: AccessToken,
    pub refresh_token: String,
    pub session_id: Uuid,
    pub user: UserRecord,
}

/// How long sessions live and how forgiving refresh is.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_lifetime: Duration,
    pub reuse_grace: Duration,
}

pub struct Accounts {
    db: DatabaseConnection,
    tokens: TokenIssuer,
    sessions: Arc<dyn SessionStore>,
    throttle: LoginThrottle,
    policy: SessionPolicy,
}

/// The one answer to every failed sign-in, whatever the reason.
fn wrong_credentials() -> AppError {
    AppError::Unauthenticated("email or password is incorrect".to_owned())
}

fn invalid_refresh_token() -> AppError {
    AppError::Unauthenticated("the refresh token is invalid or has expired; sign in again".to_owned())
}

impl Accounts {
    pub fn new(
        db: DatabaseConnection,
        tokens: TokenIssuer,
        sessions: Arc<dyn SessionStore>,
        throttle: LoginThrottle,
        policy: SessionPolicy,
    ) -> Self {
        Self {
            db,
            tokens,
            sessions,
            throttle,
            policy,
        }
    }

    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.sessions
    }

    /// A new customer account.
    pub async fn register(&self, email: &str, password: SecretString, name: &str) -> Result<UserRecord, AppError> {
        let email = users::normalize_email("input.email", email)?;
        let name = users::validate_name("input.name", name)?;
        passwords::check_policy("input.password", &password)?;
        let hash = passwords::hash(password).await?;
        let user = users::create(&self.db, email, name, hash, &[Role::Customer]).await?;
        tracing::info!(user_id = %user.account.id, "user registered");
        Ok(user)
    }

    pub async fn login(&self, email: &str, password: SecretString, client: &ClientInfo) -> Result<SignedIn, AppError> {
        let email = email.trim().to_lowercase();
        let client_ip = client.ip.as_deref();
        self.throttle.check(&email, client_ip).await?;
        let user = users::find_by_email(&self.db, &email).await?;
        let stored = user.as_ref().map(|u| u.account.password_hash.clone());
        if !passwords::verify(password, stored).await? {
            self.throttle.record_failure(&email, client_ip).await?;
            tracing::info!(client_ip, "sign-in failed");
            return Err(wrong_credentials());
        }
        let user = user.ok_or_else(wrong_credentials)?;
        self.throttle.record_success(&email).await?;
        let signed_in = self.open_session(user, client).await?;
        tracing::info!(user_id = %signed_in.user.account.id, session_id = %signed_in.session_id, "signed in");
        Ok(signed_in)
    }

    async fn open_session(&self, user: UserRecord, client: &ClientInfo) -> Result<SignedIn, AppError> {
        let now = Utc::now();
        let session_id = Uuid::new_v4();
        let (refresh_token, refresh_hash) = new_refresh_token(session_id);
        let lifetime = chrono::Duration::from_std(self.policy.idle_lifetime).map_err(AppError::internal)?;
        let session = Session {
            id: session_id,
            user_id: user.account.id,
            created_at: now,
            last_seen_at: now,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            refresh_hash,
            previous_refresh_hash: None,
            rotated_at: None,
            expires_at: now + lifetime,
        };
        self.sessions.create(&session).await.map_err(AppError::Unavailable)?;
        let access = self.tokens.issue(user.account.id, session_id, &user.roles)?;
        Ok(SignedIn {
            access,
            refresh_token,
            session_id,
            user,
        })
    }

    /// Exchanges a refresh token for a new pair. A used token is always refused; outside
    /// the grace window it also ends the whole session, since someone else may hold it.
    /// Within the window (a client retrying after a lost response) the session survives.
    pub async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, AppError> {
        let (session_id, presented_hash) = parse_refresh_token(refresh_token).ok_or_else(invalid_refresh_token)?;
        let (new_token, new_hash) = new_refresh_token(session_id);
        let request = RotationRequest {
            session_id,
            presented_hash,
            new_hash,
            now: Utc::now(),
            grace: self.policy.reuse_grace,
            lifetime: self.policy.idle_lifetime,
        };
        let user_id = match self.sessions.rotate(&request).await.map_err(AppError::Unavailable)? {
            Rotation::Rotated { user_id } => user_id,
            Rotation::ReuseDetected { user_id } => {
                tracing::warn!(%user_id, %session_id, "refresh token reuse detected; session revoked");
                return Err(AppError::Unauthenticated(
                    "this refresh token was already used; the session has been ended for safety".to_owned(),
                ));
            }
            Rotation::AlreadyUsedWithinGrace => {
                tracing::info!(%session_id, "a just-rotated refresh token was presented again within the grace window");
                return Err(AppError::Unauthenticated(
                    "this refresh token was already used; use the newest one or sign in again".to_owned(),
                ));
            }
            Rotation::Unknown => return Err(invalid_refresh_token()),
        };
        let Some(user) = users::find_by_id(&self.db, user_id).await? else {
            self.sessions.revoke(session_id).await.map_err(AppError::Unavailable)?;
            return Err(invalid_refresh_token());
        };
        // Roles are read afresh, so a grant takes effect at the next refresh.
        let access = self.tokens.issue(user_id, session_id, &user.roles)?;
        Ok(SignedIn {
            access,
            refresh_token: new_token,
            session_id,
            user,
        })
    }

    pub async fn logout(&self, principal: &Principal) -> Result<bool, AppError> {
        let ended = self
            .sessions
            .revoke(principal.session_id)
            .await
            .map_err(AppError::Unavailable)?;
        tracing::info!(user_id = %principal.user_id, session_id = %principal.session_id, "signed out");
        Ok(ended)
    }

    pub async fn logout_everywhere(&self, user_id: Uuid) -> Result<u64, AppError> {
        let ended = self.sessions.revoke_all(user_id).await.map_err(AppError::Unavailable)?;
        tracing::info!(%user_id, ended, "signed out of every session");
        Ok(ended)
    }

    /// Ends one of the caller's own sessions (an admin may end anyone's).
    pub async fn revoke_session(&self, principal: &Principal, session_id: Uuid) -> Result<bool, AppError> {
        let session = self
            .sessions
            .get(session_id)
            .await
            .map_err(AppError::Unavailable)?
            .ok_or(AppError::not_found("session"))?;
        if !principal.owns_or_may(session.user_id, vitrina_shared::auth::Permission::UsersManage) {
            // Indistinguishable from a session that does not exist.
            return Err(AppError::not_found("session"));
        }
        self.sessions.revoke(session_id).await.map_err(AppError::Unavailable)
    }

    pub async fn sessions_of(&self, user_id: Uuid) -> Result<Vec<Session>, AppError> {
        self.sessions
            .list_for_user(user_id)
            .await
            .map_err(AppError::Unavailable)
    }

    pub async fn grant_role(&self, actor: &Principal, user_id: Uuid, role: Role) -> Result<UserRecord, AppError> {
        users::find_by_id(&self.db, user_id)
            .await?
            .ok_or(AppError::not_found("user"))?;
        users::grant(&self.db, user_id, role).await?;
        tracing::info!(actor = %actor.user_id, %user_id, %role, "role granted");
        users::find_by_id(&self.db, user_id)
            .await?
            .ok_or(AppError::not_found("user"))
    }

    /// Takes a role away and ends the user's sessions, so tokens still carrying the role
    /// stop working now rather than when they expire.
    pub async fn revoke_role(&self, actor: &Principal, user_id: Uuid, role: Role) -> Result<UserRecord, AppError> {
        let user = users::find_by_id(&self.db, user_id)
            .await?
            .ok_or(AppError::not_found("user"))?;
        if role == Role::Admin && user.roles.contains(&Role::Admin) && users::admin_count(&self.db).await? <= 1 {
            return Err(AppError::Conflict(
                "the last administrator cannot lose the ADMIN role".to_owned(),
            ));
        }
        if users::revoke(&self.db, user_id, role).await? {
            let ended = self.sessions.revoke_all(user_id).await.map_err(AppError::Unavailable)?;
            tracing::info!(actor = %actor.user_id, %user_id, %role, ended, "role revoked; sessions ended");
        }
        users::find_by_id(&self.db, user_id)
            .await?
            .ok_or(AppError::not_found("user"))
    }
}
