//! Login throttling: repeated failures lock out an account and a client for a while.
//!
//! Counted per account (so a password cannot be guessed slowly from many addresses) and
//! per client address (so one client cannot try many accounts). Unknown emails are
//! counted like known ones, so the lock-out itself does not reveal which accounts exist.
//! Counters live in Redis when configured (shared by identity instances), else in memory.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use vitrina_shared::AppError;

/// Failure counters that expire a fixed window after their first failure.
#[async_trait::async_trait]
pub trait Counters: Send + Sync {
    async fn get(&self, key: &str) -> anyhow::Result<u64>;
    async fn increment(&self, key: &str, window: Duration) -> anyhow::Result<u64>;
    async fn reset(&self, key: &str) -> anyhow::Result<()>;
}

#[derive(Default)]
pub struct MemoryCounters {
    counters: Mutex<HashMap<String, (u64, Instant)>>,
}

impl MemoryCounters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl Counters for MemoryCounters {
    async fn get(&self, key: &str) -> anyhow::Result<u64> {
        let now = Instant::now();
        Ok(self
            .lock()
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map_or(0, |(count, _)| *count))
    }

    async fn increment(&self, key: &str, window: Duration) -> anyhow::Result<u64> {
        let now = Instant::now();
        let mut counters = self.lock();
        counters.retain(|_, (_, expires)| *expires > now);
        let entry = counters.entry(key.to_owned()).or_insert((0, now + window));
        entry.0 += 1;
        Ok(entry.0)
    }

    async fn reset(&self, key: &str) -> anyhow::Result<()> {
        self.lock().remove(key);
        Ok(())
    }
}

pub struct RedisCounters {
    redis: ConnectionManager,
}

impl RedisCounters {
    pub fn new(redis: ConnectionManager) -> Self {
        Self { redis }
    }
}

#[async_trait::async_trait]
impl Counters for RedisCounters {
    async fn get(&self, key: &str) -> anyhow::Result<u64> {
        let mut redis = self.redis.clone();
        let count: Option<u64> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut redis)
            .await
            .context("failed to read a login counter")?;
        Ok(count.unwrap_or(0))
    }

    async fn increment(&self, key: &str, window: Duration) -> anyhow::Result<u64> {
        let mut redis = self.redis.clone();
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(key)
            .cmd("PEXPIRE")
            .arg(key)
            .arg(window.as_millis() as u64)
            .arg("NX")
            .ignore()
            .query_async(&mut redis)
            .await
            .context("failed to count a login failure")?;
        Ok(count)
    }

    async fn reset(&self, key: &str) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        redis::cmd("DEL")
            .arg(key)
            .query_async::<()>(&mut redis)
            .await
            .context("failed to reset a login counter")
    }
}

/// Limits and window of the throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub failures_per_account: u64,
    pub failures_per_client: u64,
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            failures_per_account: 5,
            failures_per_client: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

pub struct LoginThrottle {
    counters: Box<dyn Counters>,
    policy: ThrottlePolicy,
}

impl LoginThrottle {
    pub fn new(counters: Box<dyn Counters>, policy: ThrottlePolicy) -> Self {
        Self { counters, policy }
    }

    fn account_key(email: &str) -> String {
        // Hashed: the counter key need not hold the address itself.
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(email.as_bytes()));
        format!("vitrina:identity:login-failures:account:{digest}")
    }

    fn client_key(ip: &str) -> String {
        format!("vitrina:identity:login-failures:client:{ip}")
    }

    /// Refuses the attempt when the account or the client is locked out.
    pub async fn check(&self, email: &str, client_ip: Option<&str>) -> Result<(), AppError> {
        let account = self
            .counters
            .get(&Self::account_key(email))
            .await
            .map_err(AppError::Unavailable)?;
        let client = match client_ip {
            Some(ip) => self
                .counters
                .get(&Self::client_key(ip))
                .await
                .map_err(AppError::Unavailable)?,
            None => 0,
        };
        if account >= self.policy.failures_per_account || client >= self.policy.failures_per_client {
            tracing::warn!(client_ip, "sign-in throttled after repeated failures");
            return Err(AppError::Unauthenticated(format!(
                "too many failed sign-in attempts; try again in {} minutes",
                self.policy.window.as_secs().div_ceil(60)
            )));
        }
        Ok(())
    }

    pub async fn record_failure(&self, email: &str, client_ip: Option<&str>) -> Result<(), AppError> {
        let window = self.policy.window;
        self.counters
            .increment(&Self::account_key(email), window)
            .await
            .map_err(AppError::Unavailable)?;
        if let Some(ip) = client_ip {
            self.counters
                .increment(&Self::client_key(ip), window)
                .await
                .map_err(AppError::Unavailable)?;
        }
        Ok(())
    }

    /// A successful sign-in clears the account's failures (not the client's).
    pub async fn record_success(&self, email: &str) -> Result<(), AppError> {
        self.counters
            .reset(&Self::account_key(email))
            .await
            .map_err(AppError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(
            Box::<MemoryCounters>::default(),
            ThrottlePolicy {
                failures_per_account: 3,
                failures_per_client: 5,
                window: Duration::from_secs(60),
            },
        )
    }

    #[tokio::test]
    async fn an_account_locks_after_its_failure_limit() {
        let throttle = throttle();
        for _ in 0..3 {
            throttle.check("a@example.com", Some("203.0.113.1")).await.unwrap();
            throttle
                .record_failure("a@example.com", Some("203.0.113.1"))
                .await
                .unwrap();
        }
        let error = throttle.check("a@example.com", Some("198.51.100.9")).await.unwrap_err();
        assert_eq!(error.code(), vitrina_shared::ErrorCode::Unauthenticated);
        throttle.check("b@example.com", Some("198.51.100.9")).await.unwrap();
    }

    #[tokio::test]
    async fn a_client_locks_after_failing_across_many_accounts() {
        let throttle = throttle();
        for n in 0..5 {
            throttle
                .record_failure(&format!("{n}@example.com"), Some("203.0.113.1"))
                .await
                .unwrap();
        }
        assert!(throttle.check("fresh@example.com", Some("203.0.113.1")).await.is_err());
        assert!(throttle.check("fresh@example.com", Some("203.0.113.2")).await.is_ok());
    }

    #[tokio::test]
    async fn success_clears_the_account_counter() {
        let throttle = throttle();
        for _ in 0..2 {
            throttle.record_failure("a@example.com", None).await.unwrap();
        }
        throttle.record_success("a@example.com").await.unwrap();
        throttle.record_failure("a@example.com", None).await.unwrap();
        throttle.check("a@example.com", None).await.unwrap();
    }
}
