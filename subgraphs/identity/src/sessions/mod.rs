//! Server-side sessions: what a refresh token belongs to and what `logout` ends.
//!
//! Stored in Redis when `REDIS_URL` is set (shared by every identity instance and read by
//! the other services' validators), otherwise in this process's memory (the embedded
//! default; sessions then end when identity restarts). Refresh-token rotation is one atomic
//! step in both stores, so two concurrent refreshes with one token cannot both win.

mod memory;
mod redis;

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use self::{memory::MemorySessions, redis::RedisSessions};

/// One signed-in device or browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// SHA-256 of the refresh token that may be used next.
    pub refresh_hash: String,
    /// The refresh token used last, accepted again only within the grace window.
    pub previous_refresh_hash: Option<String>,
    pub rotated_at: Option<DateTime<Utc>>,
    /// Idle expiry: pushed forward by every refresh.
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: a new one is now current.
    Rotated { user_id: Uuid },
    /// The previous token, presented again within the grace window (a client retrying
    /// after losing the response): refused, but the session is left alone.
    AlreadyUsedWithinGrace,
    /// An already-used token outside the grace window: the whole session was revoked.
    ReuseDetected { user_id: Uuid },
    /// No such session (ended, expired, or never existed).
    Unknown,
}

/// The parameters of one rotation.
#[derive(Debug, Clone)]
pub struct RotationRequest {
    pub session_id: Uuid,
    pub presented_hash: String,
    pub new_hash: String,
    pub now: DateTime<Utc>,
    pub grace: Duration,
    /// The session's new idle lifetime.
    pub lifetime: Duration,
}

#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    async fn create(&self, session: &Session) -> anyhow::Result<()>;
    /// The session, if it exists and has not expired.
    async fn get(&self, id: Uuid) -> anyhow::Result<Option<Session>>;
    /// The user's live sessions, newest first.
    async fn list_for_user(&self, user_id: Uuid) -> anyhow::Result<Vec<Session>>;
    async fn rotate(&self, request: &RotationRequest) -> anyhow::Result<Rotation>;
    /// Ends one session; `false` if it was not live.
    async fn revoke(&self, id: Uuid) -> anyhow::Result<bool>;
    /// Ends every session of the user; returns how many were live.
    async fn revoke_all(&self, user_id: Uuid) -> anyhow::Result<u64>;
}

/// The rotation rule, shared by the in-memory store (the Redis store runs the same rule
/// as a Lua script).
fn decide(session: &Session, request: &RotationRequest) -> Decision {
    if session.refresh_hash == request.presented_hash {
        return Decision::RotateCurrent;
    }
    let within_grace = session.rotated_at.is_some_and(|rotated| {
        chrono::Duration::from_std(request.grace).is_ok_and(|grace| request.now - rotated < grace)
    });
    if session.previous_refresh_hash.as_deref() == Some(request.presented_hash.as_str()) && within_grace {
        Decision::RefuseWithinGrace
    } else {
        Decision::Revoke
    }
}

enum Decision {
    RotateCurrent,
    RefuseWithinGrace,
    Revoke,
}

#[cfg(test)]
pub(crate) mod contract_tests {
    //! The behaviour both stores must share; each store's tests run these.

    use super::*;

    pub fn session(user_id: Uuid, hash: &str) -> Session {
        let now = Utc::now();
        Session {
            id: Uuid::now_v7(),
            user_id,
            created_at: now,
            last_seen_at: now,
            ip: Some("203.0.113.7".into()),
            user_agent: Some("test".into()),
            refresh_hash: hash.into(),
            previous_refresh_hash: None,
            rotated_at: None,
            expires_at: now + chrono::Duration::days(30),
        }
    }

    fn rotation(session_id: Uuid, presented: &str, new: &str, grace_secs: u64) -> RotationRequest {
        RotationRequest {
            session_id,
            presented_hash: presented.into(),
            new_hash: new.into(),
            now: Utc::now(),
            grace: Duration::from_secs(grace_secs),
            lifetime: Duration::from_secs(3600),
        }
    }

    pub async fn sessions_round_trip_and_list_per_user(store: &dyn SessionStore) {
        let user = Uuid::now_v7();
        let first = session(user, "h1");
        let second = session(user, "h2");
        store.create(&first).await.unwrap();
        store.create(&second).await.unwrap();
        let loaded = store.get(first.id).await.unwrap().expect("stored");
        assert_eq!(loaded.user_id, user);
        assert_eq!(loaded.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(store.list_for_user(user).await.unwrap().len(), 2);
        assert!(store.revoke(first.id).await.unwrap());
        assert!(!store.revoke(first.id).await.unwrap(), "already ended");
        assert!(store.get(first.id).await.unwrap().is_none());
        assert_eq!(store.revoke_all(user).await.unwrap(), 1);
        assert!(store.list_for_user(user).await.unwrap().is_empty());
    }

    pub async fn rotation_accepts_the_current_token_once(store: &dyn SessionStore) {
        let user = Uuid::now_v7();
        let s = session(user, "h1");
        store.create(&s).await.unwrap();
        let outcome = store.rotate(&rotation(s.id, "h1", "h2", 0)).await.unwrap();
        assert_eq!(outcome, Rotation::Rotated { user_id: user });
        let outcome = store.rotate(&rotation(s.id, "h2", "h3", 0)).await.unwrap();
        assert_eq!(outcome, Rotation::Rotated { user_id: user });
        // h2 was used and the grace window is zero: reuse revokes the session.
        let outcome = store.rotate(&rotation(s.id, "h2", "h4", 0)).await.unwrap();
        assert_eq!(outcome, Rotation::ReuseDetected { user_id: user });
        assert!(store.get(s.id).await.unwrap().is_none(), "reuse ends the session");
        let outcome = store.rotate(&rotation(s.id, "h3", "h5", 0)).await.unwrap();
        assert_eq!(outcome, Rotation::Unknown);
    }

    pub async fn the_previous_token_within_the_grace_window_is_refused_without_revoking(store: &dyn SessionStore) {
        let user = Uuid::now_v7();
        let s = session(user, "h1");
        store.create(&s).await.unwrap();
        store.rotate(&rotation(s.id, "h1", "h2", 30)).await.unwrap();
        // The response carrying h2 was lost; the client retries with h1.
        let outcome = store.rotate(&rotation(s.id, "h1", "h3", 30)).await.unwrap();
        assert_eq!(outcome, Rotation::AlreadyUsedWithinGrace);
        let live = store.get(s.id).await.unwrap().expect("the session survives");
        assert_eq!(live.refresh_hash, "h2");
        let outcome = store.rotate(&rotation(s.id, "h2", "h4", 30)).await.unwrap();
        assert_eq!(outcome, Rotation::Rotated { user_id: user });
    }

    pub async fn concurrent_rotations_with_one_token_have_one_winner(store: std::sync::Arc<dyn SessionStore>) {
        let user = Uuid::now_v7();
        let s = session(user, "h1");
        store.create(&s).await.unwrap();
        let attempts = (0..8).map(|i| {
            let store = store.clone();
            let request = rotation(s.id, "h1", &format!("new-{i}"), 0);
            tokio::spawn(async move { store.rotate(&request).await.unwrap() })
        });
        let outcomes = futures::future::join_all(attempts).await;
        let winners = outcomes
            .iter()
            .filter(|outcome| matches!(outcome.as_ref().unwrap(), Rotation::Rotated { .. }))
            .count();
        assert_eq!(winners, 1, "{outcomes:?}");
    }
}
