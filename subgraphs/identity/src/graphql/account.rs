//! Sign-up, sign-in, token refresh, sign-out, and the caller's own account and sessions.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use vitrina_shared::{
    AppError,
    auth::{Caller, ClientInfo, RuleGuard},
    graphql::context_data,
};

use super::user::User;
use crate::{
    accounts::{Accounts, SignedIn},
    sessions, users,
};

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    pub name: String,
}

/// Tokens of a signed-in session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Short-lived JWT for `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque; exchange it with `refreshSession` before `expiresAt`. Single use.
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    pub session_id: ID,
    pub user: User,
}

impl From<SignedIn> for AuthPayload {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            access_token: signed_in.access.token,
            refresh_token: signed_in.refresh_token,
            expires_at: signed_in.access.expires_at,
            session_id: ID(signed_in.session_id.to_string()),
            user: User::disclosed(signed_in.user),
        }
    }
}

/// A signed-in device or browser of the caller.
#[derive(SimpleObject)]
#[graphql(name = "Session")]
pub struct SessionView {
    pub id: ID,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// Whether this is the session of the token making the request.
    pub current: bool,
}

fn session_view(session: sessions::Session, current: uuid::Uuid) -> SessionView {
    SessionView {
        id: ID(session.id.to_string()),
        created_at: session.created_at,
        last_seen_at: session.last_seen_at,
        ip_address: session.ip,
        user_agent: session.user_agent,
        current: session.id == current,
    }
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user.
    #[graphql(guard = "RuleGuard::query(\"me\")")]
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        let user = users::find_by_id(accounts.database(), principal.user_id)
            .await
            .extend()?
            .ok_or_else(|| AppError::Unauthenticated("this account no longer exists".to_owned()).extend())?;
        Ok(User::disclosed(user))
    }

    /// The signed-in user's live sessions, newest first.
    #[graphql(guard = "RuleGuard::query(\"mySessions\")")]
    async fn my_sessions(&self, ctx: &Context<'_>) -> Result<Vec<SessionView>> {
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        let sessions = accounts.sessions_of(principal.user_id).await.extend()?;
        Ok(sessions
            .into_iter()
            .map(|session| session_view(session, principal.session_id))
            .collect())
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates a customer account. Sign in afterwards with `login`.
    #[graphql(guard = "RuleGuard::mutation(\"register\")")]
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<User> {
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        let user = accounts
            .register(&input.email, SecretString::from(input.password), &input.name)
            .await
            .extend()?;
        Ok(User::disclosed(user))
    }

    /// Signs in and opens a session. Unknown email and wrong password get the same
    /// answer; repeated failures are throttled per account and per client.
    #[graphql(guard = "RuleGuard::mutation(\"login\")")]
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> Result<AuthPayload> {
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        let client = ctx.data_opt::<ClientInfo>().cloned().unwrap_or_default();
        let signed_in = accounts
            .login(&email, SecretString::from(password), &client)
            .await
            .extend()?;
        Ok(signed_in.into())
    }

    /// Exchanges a refresh token for new tokens. Each refresh token works once.
    #[graphql(guard = "RuleGuard::mutation(\"refreshSession\")")]
    async fn refresh_session(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        Ok(accounts.refresh(&refresh_token).await.extend()?.into())
    }

    /// Ends the current session: its access and refresh tokens stop working.
    #[graphql(guard = "RuleGuard::mutation(\"logout\")")]
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        accounts.logout(principal).await.extend()
    }

    /// Ends every session of the signed-in user; returns how many were ended.
    #[graphql(guard = "RuleGuard::mutation(\"logoutAllSessions\")")]
    async fn logout_all_sessions(&self, ctx: &Context<'_>) -> Result<i32> {
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        let ended = accounts.logout_everywhere(principal.user_id).await.extend()?;
        Ok(i32::try_from(ended).unwrap_or(i32::MAX))
    }

    /// Ends one of the signed-in user's sessions (e.g. a lost phone).
    #[graphql(guard = "RuleGuard::mutation(\"revokeSession\")")]
    async fn revoke_session(&self, ctx: &Context<'_>, session_id: ID) -> Result<bool> {
        let principal = context_data::<Caller>(ctx)?.require_user().extend()?;
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        let session_id = uuid::Uuid::parse_str(session_id.as_str())
            .map_err(|_| AppError::bad_input("sessionId", "`sessionId` is not a valid id").extend())?;
        accounts.revoke_session(principal, session_id).await.extend()
    }
}
