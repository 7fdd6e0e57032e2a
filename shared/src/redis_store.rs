//! Connections to Redis, when `REDIS_URL` is configured.
//!
//! One multiplexed, auto-reconnecting connection per process ([`ConnectionManager`]); it
//! is cheap to clone into every store that needs it. Timeouts are short so that a Redis
//! outage turns into a fast, coded error (or a fallback) rather than a hung request.

use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

pub use redis::aio::ConnectionManager as RedisConnection;

/// A client for `url` (no connection yet).
pub fn client(url: &SecretString) -> anyhow::Result<redis::Client> {
    redis::Client::open(url.expose_secret()).context("REDIS_URL is not a valid Redis URL")
}

/// Connects to `url` and checks the server answers.
pub async fn connect(url: &SecretString) -> anyhow::Result<ConnectionManager> {
    let client = client(url)?;
    // A command issued while the connection is down waits for the reconnection, retries
    // included: one retry after at most 250 ms keeps that wait near the connection
    // timeout. (The crate's default backoff starts at 1 s and multiplies by `factor`,
    // 100 by default: a dead Redis held each request for about two minutes, measured.)
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(2))
        .set_number_of_retries(1)
        .set_factor(2)
        .set_max_delay(250);
    let mut connection = ConnectionManager::new_with_config(client, config)
        .await
        .context("failed to connect to Redis")?;
    let _: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .context("Redis did not answer PING")?;
    Ok(connection)
}

/// A connection when `REDIS_URL` is configured; `None` selects the embedded stores.
pub async fn connect_if_configured(settings: &crate::config::Settings) -> anyhow::Result<Option<ConnectionManager>> {
    match &settings.redis_url {
        Some(url) => connect(url).await.map(Some),
        None => Ok(None),
    }
}

/// `/ready` probe for services that depend on Redis.
pub struct RedisProbe(pub ConnectionManager);

#[async_trait::async_trait]
impl crate::http::ReadinessProbe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        let mut connection = self.0.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
            .map_err(|_| "redis unreachable".to_owned())
    }
}
