//! Where validators find the public key named by a token's `kid`.
//!
//! Subgraphs and the router use [`JwksClient`]: identity's JWKS, cached, refetched when it
//! is old or when a token names a key it does not hold, at most once per
//! `min_refetch_interval` so that tokens with made-up `kid`s cannot turn every request
//! into a JWKS download. The identity service resolves its own keys directly.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use jsonwebtoken::{
    DecodingKey,
    jwk::{AlgorithmParameters, JwkSet},
};
use tokio::sync::{Mutex, RwLock};

/// A source of token verification keys.
#[async_trait::async_trait]
pub trait KeyResolver: Send + Sync {
    /// The key with this id; `Ok(None)` when it is unknown, `Err` when the source cannot
    /// be reached.
    async fn resolve(&self, kid: &str) -> anyhow::Result<Option<Arc<DecodingKey>>>;
}

/// Decoding keys of the usable (Ed25519 signing) entries of a JWKS.
pub fn decoding_keys(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
    set.keys
        .iter()
        .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::OctetKeyPair(_)))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, Arc::new(key)))
        })
        .collect()
}

/// A fixed set of keys (tests, and the identity service's own key ring snapshot).
pub struct StaticKeys(pub HashMap<String, Arc<DecodingKey>>);

#[async_trait::async_trait]
impl KeyResolver for StaticKeys {
    async fn resolve(&self, kid: &str) -> anyhow::Result<Option<Arc<DecodingKey>>> {
        Ok(self.0.get(kid).cloned())
    }
}

/// identity's JWKS over HTTP, cached.
pub struct JwksClient {
    url: String,
    http: reqwest::Client,
    keys: RwLock<Cached>,
    /// Serialises downloads: concurrent misses wait for one fetch instead of each starting one.
    fetching: Mutex<()>,
    /// Keys older than this are refetched even when the `kid` is known (rotation).
    max_age: Duration,
    /// Lower bound between two downloads, whatever tokens arrive.
    min_refetch_interval: Duration,
    fetches: AtomicU64,
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
    /// The last download attempt and whether it failed, for the refetch bound.
    attempted_at: Option<Instant>,
    last_attempt_failed: bool,
}

struct Lookup {
    key: Option<Arc<DecodingKey>>,
    fresh: bool,
    attempted_recently: bool,
    last_attempt_failed: bool,
}

impl JwksClient {
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_intervals(url, Duration::from_secs(300), Duration::from_secs(10))
    }

    pub fn with_intervals(url: impl Into<String>, max_age: Duration, min_refetch_interval: Duration) -> Self {
        Self {
            url: url.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
            keys: RwLock::new(Cached::default()),
            fetching: Mutex::new(()),
            max_age,
            min_refetch_interval,
            fetches: AtomicU64::new(0),
        }
    }

    /// How many times the JWKS was downloaded (tests of the refetch bound).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// What the cache knows about `kid`, read under one lock.
    async fn lookup(&self, kid: &str) -> Lookup {
        let cached = self.keys.read().await;
        Lookup {
            key: cached.keys.get(kid).cloned(),
            fresh: cached.fetched_at.is_some_and(|at| at.elapsed() < self.max_age),
            attempted_recently: cached
                .attempted_at
                .is_some_and(|at| at.elapsed() < self.min_refetch_interval),
            last_attempt_failed: cached.last_attempt_failed,
        }
    }

    async fn download(&self) -> anyhow::Result<()> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let outcome = self.fetch_set().await;
        let mut cached = self.keys.write().await;
        cached.attempted_at = Some(Instant::now());
        cached.last_attempt_failed = outcome.is_err();
        let keys = outcome?;
        tracing::debug!(url = %self.url, keys = keys.len(), "JWKS refreshed");
        cached.keys = keys;
        cached.fetched_at = cached.attempted_at;
        Ok(())
    }

    async fn fetch_set(&self) -> anyhow::Result<HashMap<String, Arc<DecodingKey>>> {
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("failed to fetch the JWKS from {}", self.url))?
            .json()
            .await
            .context("failed to parse the JWKS")?;
        Ok(decoding_keys(&set))
    }
}

#[async_trait::async_trait]
impl KeyResolver for JwksClient {
    async fn resolve(&self, kid: &str) -> anyhow::Result<Option<Arc<DecodingKey>>> {
        let found = self.lookup(kid).await;
        if found.key.is_some() && found.fresh {
            return Ok(found.key);
        }
        let _one_download = self.fetching.lock().await;
        // Someone may have downloaded while this request waited.
        let Lookup {
            key,
            fresh,
            attempted_recently,
            last_attempt_failed,
        } = self.lookup(kid).await;
        if key.is_some() && fresh {
            return Ok(key);
        }
        if attempted_recently {
            if last_attempt_failed && key.is_none() {
                anyhow::bail!("the JWKS at {} could not be fetched recently", self.url);
            }
            return Ok(key);
        }
        match self.download().await {
            Ok(()) => Ok(self.lookup(kid).await.key),
            // A known key stays usable while the JWKS endpoint is briefly unreachable.
            Err(error) if key.is_some() => {
                tracing::warn!(error = format!("{error:#}"), "JWKS refresh failed; using cached keys");
                Ok(key)
            }
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use ed25519_dalek::SigningKey;
    use jsonwebtoken::jwk::{CommonParameters, EllipticCurve, Jwk, OctetKeyPairParameters, OctetKeyPairType};

    use super::*;

    fn jwks_with(kid: &str) -> JwkSet {
        let signing_key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let jwk = Jwk {
            common: CommonParameters {
                key_id: Some(kid.to_owned()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(signing_key.verifying_key().as_bytes()),
            }),
        };
        JwkSet { keys: vec![jwk] }
    }

    async fn serve(set: JwkSet) -> String {
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let set = set.clone();
                async move { axum::Json(set) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{address}/jwks.json")
    }

    #[tokio::test]
    async fn unknown_key_ids_cause_at_most_one_download_per_interval() {
        let url = serve(jwks_with("k1")).await;
        let client = JwksClient::with_intervals(url, Duration::from_secs(300), Duration::from_secs(60));
        assert!(client.resolve("k1").await.unwrap().is_some());
        assert_eq!(client.fetch_count(), 1);
        for attempt in 0..20 {
            assert!(client.resolve(&format!("made-up-{attempt}")).await.unwrap().is_none());
        }
        assert_eq!(client.fetch_count(), 1, "made-up key ids must not trigger downloads");
        assert!(client.resolve("k1").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_unreachable_jwks_is_an_error_not_an_unknown_key() {
        let client = JwksClient::new("http://127.0.0.1:9/jwks.json");
        assert!(client.resolve("k1").await.is_err());
        assert!(
            client.resolve("k1").await.is_err(),
            "still an outage within the interval"
        );
    }
}
