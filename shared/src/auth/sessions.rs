//! "Is this session still active?" — the check that makes logout immediate.
//!
//! A signature proves who issued a token, not that its session was not ended since. Every
//! validator therefore asks a [`SessionStatus`]: with `REDIS_URL` set, Redis directly
//! (where identity keeps the sessions); otherwise identity's internal HTTP endpoint. Answers
//! are cached for at most [`STATUS_CACHE_TTL`], which bounds how long a revoked session's
//! tokens keep working (the contract: under one second).

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use moka::future::Cache;
use uuid::Uuid;

/// How long a session's status may be served from memory.
pub const STATUS_CACHE_TTL: Duration = Duration::from_millis(500);

/// Path of identity's session-status endpoint; not routed through the router.
pub const SESSION_STATUS_PATH: &str = "/internal/sessions";

/// The Redis key of a session record, shared by identity (which writes it) and the
/// validators (which only test that it exists).
pub fn redis_session_key(session_id: Uuid) -> String {
    format!("vitrina:identity:session:{session_id}")
}

#[async_trait::async_trait]
pub trait SessionStatus: Send + Sync {
    /// `Err` when the source cannot be reached; validators then fail closed.
    async fn is_active(&self, session_id: Uuid) -> anyhow::Result<bool>;
}

/// identity's `GET /internal/sessions/{id}`: 200 when active, 404 when not.
pub struct RemoteSessionStatus {
    base_url: String,
    http: reqwest::Client,
}

impl RemoteSessionStatus {
    /// `identity_base_url` is identity's origin, e.g. `http://127.0.0.1:4001`.
    pub fn new(identity_base_url: &str) -> Self {
        Self {
            base_url: identity_base_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[async_trait::async_trait]
impl SessionStatus for RemoteSessionStatus {
    async fn is_active(&self, session_id: Uuid) -> anyhow::Result<bool> {
        let url = format!("{}{SESSION_STATUS_PATH}/{session_id}", self.base_url);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("failed to ask identity about a session ({url})"))?;
        match response.status() {
            reqwest::StatusCode::OK => Ok(true),
            reqwest::StatusCode::NOT_FOUND => Ok(false),
            status => anyhow::bail!("identity answered {status} for a session status"),
        }
    }
}

/// The session record's presence in Redis.
pub struct RedisSessionStatus {
    redis: redis::aio::ConnectionManager,
}

impl RedisSessionStatus {
    pub fn new(redis: redis::aio::ConnectionManager) -> Self {
        Self { redis }
    }
}

#[async_trait::async_trait]
impl SessionStatus for RedisSessionStatus {
    async fn is_active(&self, session_id: Uuid) -> anyhow::Result<bool> {
        let mut redis = self.redis.clone();
        let exists: bool = redis::cmd("EXISTS")
            .arg(redis_session_key(session_id))
            .query_async(&mut redis)
            .await
            .context("failed to read a session's status from Redis")?;
        Ok(exists)
    }
}

/// A short-lived memory in front of another status source. Concurrent look-ups of one
/// session share a single call to the source.
pub struct CachedSessionStatus {
    source: Arc<dyn SessionStatus>,
    cache: Cache<Uuid, bool>,
}

impl CachedSessionStatus {
    pub fn new(source: Arc<dyn SessionStatus>) -> Self {
        Self {
            source,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(STATUS_CACHE_TTL)
                .build(),
        }
    }
}

#[async_trait::async_trait]
impl SessionStatus for CachedSessionStatus {
    async fn is_active(&self, session_id: Uuid) -> anyhow::Result<bool> {
        // The source's (boxed) call is made inside the block, so only a miss builds it.
        self.cache
            .try_get_with(session_id, async { self.source.is_active(session_id).await })
            .await
            .map_err(|error: Arc<anyhow::Error>| anyhow::anyhow!("{error:#}"))
    }
}
