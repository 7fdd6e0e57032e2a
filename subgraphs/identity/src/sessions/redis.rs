//! Sessions in Redis: one hash per session (`vitrina:identity:session:<id>`, the key the
//! other services' validators test for), plus a set of session ids per user for listing
//! and "sign out everywhere". Keys expire with the session's idle lifetime.

use std::{collections::HashMap, sync::LazyLock};

use anyhow::Context as _;
use chrono::{DateTime, TimeZone, Utc};
use redis::{AsyncCommands, aio::ConnectionManager};
use uuid::Uuid;
use vitrina_shared::auth::sessions::redis_session_key;

use super::{Rotation, RotationRequest, Session, SessionStore};

fn user_key(user_id: Uuid) -> String {
    format!("vitrina:identity:user-sessions:{user_id}")
}

/// The rotation rule of `super::decide`, run atomically inside Redis.
static ROTATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local key = KEYS[1]
local f = redis.call('HMGET', key, 'user_id', 'refresh_hash', 'previous_refresh_hash', 'rotated_at')
local user_id, current, previous, rotated = f[1], f[2], f[3], tonumber(f[4] or '')
if not user_id then return {'unknown', ''} end
local presented, new_hash, now, grace, expires, lifetime = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
if presented == current then
  redis.call('HSET', key, 'previous_refresh_hash', current, 'refresh_hash', new_hash,
    'rotated_at', ARGV[3], 'last_seen_at', ARGV[3], 'expires_at', expires)
elseif previous and presented == previous and rotated and now - rotated < grace then
  return {'grace', user_id}
else
  redis.call('DEL', key)
  return {'reused', user_id}
end
redis.call('PEXPIRE', key, lifetime)
return {'rotated', user_id}
",
    )
});

pub struct RedisSessions {
    redis: ConnectionManager,
}

impl RedisSessions {
    pub fn new(redis: ConnectionManager) -> Self {
        Self { redis }
    }
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(value: Option<&String>) -> Option<DateTime<Utc>> {
    value
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

fn parse(id: Uuid, fields: &HashMap<String, String>) -> Option<Session> {
    let text = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    Some(Session {
        id,
        user_id: Uuid::parse_str(fields.get("user_id")?).ok()?,
        created_at: from_millis(fields.get("created_at"))?,
        last_seen_at: from_millis(fields.get("last_seen_at"))?,
        ip: text("ip"),
        user_agent: text("user_agent"),
        refresh_hash: fields.get("refresh_hash")?.clone(),
        previous_refresh_hash: text("previous_refresh_hash"),
        rotated_at: from_millis(fields.get("rotated_at")),
        expires_at: from_millis(fields.get("expires_at"))?,
    })
}

#[async_trait::async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, session: &Session) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        let key = redis_session_key(session.id);
        let fields: Vec<(&str, String)> = vec![
            ("user_id", session.user_id.to_string()),
            ("created_at", millis(session.created_at).to_string()),
            ("last_seen_at", millis(session.last_seen_at).to_string()),
            ("ip", session.ip.clone().unwrap_or_default()),
            ("user_agent", session.user_agent.clone().unwrap_or_default()),
            ("refresh_hash", session.refresh_hash.clone()),
            ("expires_at", millis(session.expires_at).to_string()),
        ];
        let users = user_key(session.user_id);
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &fields)
            .ignore()
            .pexpire_at(&key, millis(session.expires_at))
            .ignore()
            .sadd(&users, session.id.to_string())
            .ignore()
            .pexpire_at(&users, millis(session.expires_at))
            .ignore()
            .query_async::<()>(&mut redis)
            .await
            .context("failed to store a session in Redis")
    }

    async fn get(&self, id: Uuid) -> anyhow::Result<Option<Session>> {
        let mut redis = self.redis.clone();
        let fields: HashMap<String, String> = redis
            .hgetall(redis_session_key(id))
            .await
            .context("failed to read a session from Redis")?;
        Ok(parse(id, &fields).filter(|s| s.expires_at > Utc::now()))
    }

    async fn list_for_user(&self, user_id: Uuid) -> anyhow::Result<Vec<Session>> {
        let mut redis = self.redis.clone();
        let ids: Vec<String> = redis
            .smembers(user_key(user_id))
            .await
            .context("failed to list sessions in Redis")?;
        let mut sessions = Vec::new();
        let mut gone = Vec::new();
        for raw in ids {
            let Ok(id) = Uuid::parse_str(&raw) else {
                gone.push(raw);
                continue;
            };
            match self.get(id).await? {
                Some(session) => sessions.push(session),
                None => gone.push(raw),
            }
        }
        if !gone.is_empty() {
            let _: () = redis
                .srem(user_key(user_id), gone)
                .await
                .context("failed to prune ended sessions in Redis")?;
        }
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(sessions)
    }

    async fn rotate(&self, request: &RotationRequest) -> anyhow::Result<Rotation> {
        let mut redis = self.redis.clone();
        let lifetime_ms = i64::try_from(request.lifetime.as_millis()).unwrap_or(i64::MAX / 4);
        let now = millis(request.now);
        let (outcome, user_id): (String, String) = ROTATE
            .key(redis_session_key(request.session_id))
            .arg(&request.presented_hash)
            .arg(&request.new_hash)
            .arg(now)
            .arg(i64::try_from(request.grace.as_millis()).unwrap_or(i64::MAX / 4))
            .arg(now + lifetime_ms)
            .arg(lifetime_ms)
            .invoke_async(&mut redis)
            .await
            .context("failed to rotate a refresh token in Redis")?;
        let user = || Uuid::parse_str(&user_id).context("session without a user id");
        Ok(match outcome.as_str() {
            "rotated" => Rotation::Rotated { user_id: user()? },
            "grace" => Rotation::AlreadyUsedWithinGrace,
            "reused" => {
                let user_id = user()?;
                let _: () = redis
                    .srem(user_key(user_id), request.session_id.to_string())
                    .await
                    .context("failed to unlist a revoked session")?;
                Rotation::ReuseDetected { user_id }
            }
            _ => Rotation::Unknown,
        })
    }

    async fn revoke(&self, id: Uuid) -> anyhow::Result<bool> {
        let mut redis = self.redis.clone();
        let key = redis_session_key(id);
        let user_id: Option<String> = redis.hget(&key, "user_id").await.context("failed to read a session")?;
        let deleted: u64 = redis.del(&key).await.context("failed to delete a session")?;
        if let Some(user_id) = user_id.and_then(|u| Uuid::parse_str(&u).ok()) {
            let _: () = redis
                .srem(user_key(user_id), id.to_string())
                .await
                .context("failed to unlist a session")?;
        }
        Ok(deleted > 0)
    }

    async fn revoke_all(&self, user_id: Uuid) -> anyhow::Result<u64> {
        let mut redis = self.redis.clone();
        let ids: Vec<String> = redis
            .smembers(user_key(user_id))
            .await
            .context("failed to list sessions")?;
        let mut keys: Vec<String> = ids
            .iter()
            .filter_map(|raw| Uuid::parse_str(raw).ok())
            .map(redis_session_key)
            .collect();
        let live: u64 = if keys.is_empty() {
            0
        } else {
            redis.exists(&keys).await.context("failed to count sessions")?
        };
        keys.push(user_key(user_id));
        let _: u64 = redis.del(keys).await.context("failed to delete sessions")?;
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{super::contract_tests as contract, *};

    async fn store() -> RedisSessions {
        let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let redis = vitrina_shared::redis_store::connect(&url.into())
            .await
            .expect("the test Redis at TEST_REDIS_URL (default 127.0.0.1:6379)");
        RedisSessions::new(redis)
    }

    #[tokio::test]
    async fn redis_sessions_round_trip_and_list_per_user() {
        contract::sessions_round_trip_and_list_per_user(&store().await).await;
    }

    #[tokio::test]
    async fn redis_rotation_accepts_the_current_token_once() {
        contract::rotation_accepts_the_current_token_once(&store().await).await;
    }

    #[tokio::test]
    async fn redis_previous_token_within_the_grace_window_is_refused_without_revoking() {
        contract::the_previous_token_within_the_grace_window_is_refused_without_revoking(&store().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_concurrent_rotations_with_one_token_have_one_winner() {
        contract::concurrent_rotations_with_one_token_have_one_winner(Arc::new(store().await)).await;
    }
}
