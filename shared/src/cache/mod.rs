//! Cache-aside caching of reads, shared by every subgraph that wants it.
//!
//! Where it sits: a subgraph's DataLoaders and list resolvers call [`Cache::get_or_load`]
//! / [`Cache::get_or_load_many`] with a loader that reads the database; writers call
//! [`Cache::invalidate`] after their transaction commits. The backend is Redis when
//! `REDIS_URL` is set ([`redis_backend`]) and a bounded in-process cache otherwise
//! ([`memory_backend`]).
//!
//! Correctness rests on *generations*. Every entry lives in a scope (one product, "all
//! product listings", …) and its key embeds the scope's current generation, a random
//! token. Invalidating a scope replaces its generation, which orphans every entry of the
//! old one at once. A reader reads the generation *before* it reads the database, and
//! stores what it loaded under that generation; so a reader racing a writer can only ever
//! store a value under a generation that the writer has already retired (or is about to),
//! and no one reads it again. A read after a successful write therefore never sees the
//! old value, without locks or delete/fill fences. Random generations cannot repeat, so a
//! generation key that Redis evicts or expires only causes misses.
//!
//! Other duties: TTL with jitter (entries filled together do not expire together),
//! single flight per key (one database load per key however many readers miss at once),
//! and degradation: a Redis error or timeout opens a short circuit breaker and reads go
//! straight to the database; they never fail because of the cache. Invalidations that
//! could not reach Redis are kept and retried, and the cache is not read again until they
//! have been applied, so an outage cannot resurrect stale entries either.

mod backend;
mod memory;
mod near;
mod redis_backend;
mod single_flight;
pub mod tags;

use std::{
    any::Any,
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::Rng as _;
use serde::{Serialize, de::DeserializeOwned};

pub use backend::{Backend, BackendError, Slot};
pub use memory::memory_backend;
pub use redis_backend::{redis_backend, redis_backend_with_near_cache};

use crate::{config::Settings, error::AppError};
use single_flight::SingleFlight;

/// How long a Redis call may take before the cache gives up and reads the database.
const BACKEND_TIMEOUT: Duration = Duration::from_millis(250);
/// How long reads bypass Redis after it failed, so an outage costs one timeout per
/// breaker period instead of one per request.
const BREAKER_OPEN_FOR: Duration = if cfg!(test) {
    Duration::from_millis(200)
} else {
    Duration::from_secs(2)
};
/// Relative spread of entry lifetimes (±10 %).
const TTL_JITTER: f64 = 0.1;

/// The address of a cached value: the scope whose invalidation drops it, and its name
/// within that scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub scope: String,
    pub entry: String,
}

impl CacheKey {
    pub fn new(scope: impl Into<String>, entry: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            entry: entry.into(),
        }
    }
}

/// Hit and miss counts, also exported as `cache_requests_total{cache, result}`.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    /// Reads that skipped or lost the backend and went to the database.
    pub degraded: AtomicU64,
}

impl CacheStats {
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    pub fn degraded(&self) -> u64 {
        self.degraded.load(Ordering::Relaxed)
    }
}

/// A named cache (one per subgraph, e.g. `catalog`) over a backend.
#[derive(Clone)]
pub struct Cache {
    inner: Option<Arc<Inner>>,
    stats: Arc<CacheStats>,
}

struct Inner {
    name: &'static str,
    backend: Arc<dyn Backend>,
    ttl: Duration,
    flights: SingleFlight,
    breaker: Mutex<Breaker>,
    /// Decoded copies of the values read through [`Cache::get_or_load_shared`].
    decoded: DecodedValues,
}

/// Versioned address → a decoded value (an `Arc<V>`), for the few whole values that
/// many requests read.
type DecodedValues = moka::sync::Cache<String, Arc<dyn Any + Send + Sync>>;

/// How many decoded values a cache keeps: they are meant for a handful of hot entries.
const MAX_DECODED_VALUES: u64 = 64;

/// Backend health as this process sees it.
#[derive(Default)]
struct Breaker {
    open_until: Option<Instant>,
    /// Scopes whose invalidation has not reached the backend yet.
    pending_invalidations: Vec<String>,
}

/// Values are stored as JSON; an empty value records "the loader found nothing", so
/// look-ups of missing ids are cached too.
const ABSENT: &[u8] = b"";

impl Cache {
    /// A cache named `name` (the key prefix and metric label) over `backend`.
    pub fn new(name: &'static str, backend: Arc<dyn Backend>, ttl: Duration) -> Self {
        Self {
            inner: Some(Arc::new(Inner {
                name,
                backend,
                ttl,
                flights: SingleFlight::default(),
                breaker: Mutex::new(Breaker::default()),
                decoded: moka::sync::Cache::builder()
                    .max_capacity(MAX_DECODED_VALUES)
                    .time_to_live(ttl)
                    .build(),
            })),
            stats: Arc::default(),
        }
    }

    /// A cache that never stores anything: every read is a load.
    pub fn disabled() -> Self {
        Self {
            inner: None,
            stats: Arc::default(),
        }
    }

    /// The cache `settings` ask for: off, Redis (when a connection is given; with a near
    /// cache unless `CACHE_NEAR_ENABLED=false`) or memory.
    pub fn from_settings(
        name: &'static str,
        settings: &Settings,
        redis: Option<crate::redis_store::RedisConnection>,
    ) -> Self {
        let ttl = Duration::from_secs(settings.cache.ttl_seconds.max(1));
        Self::from_settings_with_ttl(name, settings, redis, ttl)
    }

    /// As [`Cache::from_settings`], with entries living `ttl` instead of
    /// `CACHE_TTL_SECONDS` (for caches whose entries must be short-lived).
    pub fn from_settings_with_ttl(
        name: &'static str,
        settings: &Settings,
        redis: Option<crate::redis_store::RedisConnection>,
        ttl: Duration,
    ) -> Self {
        let cache = &settings.cache;
        if !cache.enabled {
            tracing::info!(cache = name, "cache disabled (CACHE_ENABLED=false)");
            return Self::disabled();
        }
        let max_bytes = cache.memory_max_mb.saturating_mul(1024 * 1024);
        let backend = match (redis, &settings.redis_url) {
            (Some(connection), Some(url)) if cache.near_enabled => {
                let near = crate::redis_store::client(url)
                    .map_err(|error| BackendError(error.to_string()))
                    .and_then(|client| {
                        redis_backend_with_near_cache(connection.clone(), &client, name, max_bytes, ttl)
                    });
                match near {
                    Ok(backend) => {
                        tracing::info!(cache = name, backend = "redis", near_cache = true, "cache ready");
                        backend
                    }
                    Err(error) => {
                        tracing::warn!(cache = name, %error, "near cache unavailable; reading Redis on every hit");
                        redis_backend(connection, name)
                    }
                }
            }
            (Some(connection), _) => {
                tracing::info!(cache = name, backend = "redis", near_cache = false, "cache ready");
                redis_backend(connection, name)
            }
            (None, _) => {
                tracing::info!(
                    cache = name,
                    backend = "memory",
                    "cache ready (embedded default: REDIS_URL is not set)"
                );
                memory_backend(max_bytes)
            }
        };
        Self::new(name, backend, ttl)
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The value at `key`, loading (and storing) it on a miss.
    pub async fn get_or_load<V, F, Fut>(&self, key: CacheKey, load: F) -> Result<V, AppError>
    where
        V: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, AppError>> + Send + 'static,
    {
        self.read_one(key, load, encode_json, |_, bytes| decode::<V>(bytes))
            .await
    }

    /// As [`Cache::get_or_load`], for values that can go stale in ways no scope tracks
    /// (the router's responses, retired per tag in its own process): a stored value that
    /// `usable` rejects counts as a miss, and the value loaded instead replaces it. A value
    /// just loaded is not asked about: it is what the loader found now.
    pub async fn get_or_load_unless<V, U, F, Fut>(&self, key: CacheKey, usable: U, load: F) -> Result<V, AppError>
    where
        V: Serialize + DeserializeOwned + Send + 'static,
        U: Fn(&V) -> bool + Send + Sync,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, AppError>> + Send + 'static,
    {
        self.read_one(key, load, encode_json, |stored, bytes| match decode::<V>(bytes)? {
            Some(value) if stored.is_some() && !usable(&value) => Err(Unusable::Stale),
            value => Ok(value),
        })
        .await
    }

    /// As [`Cache::get_or_load_unless`], for a value that already is bytes in a format of
    /// its owner's (the router's responses: a small header, then the body as the client
    /// gets it). The bytes are stored as they are: no JSON encoding on the way in, none to
    /// undo on the way out, so neither a store nor a look-up copies the body through an
    /// escaper, and `usable` can judge an entry by its header without reading the rest.
    /// Loaded bytes must not be empty: empty bytes are how the cache records an absence,
    /// so an empty load is an error and nothing is stored.
    pub async fn get_or_load_bytes_unless<U, F, Fut>(
        &self,
        key: CacheKey,
        usable: U,
        load: F,
    ) -> Result<Vec<u8>, AppError>
    where
        U: Fn(&[u8]) -> bool + Send + Sync,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<u8>, AppError>> + Send + 'static,
    {
        self.read_one(key, load, encode_bytes, |stored, bytes| match bytes {
            ABSENT => Ok(None),
            _ if stored.is_some() && !usable(bytes) => Err(Unusable::Stale),
            _ => Ok(Some(bytes.to_vec())),
        })
        .await
    }

    /// The values at `keys`; the misses are loaded by one call of `load`, which returns
    /// the values it found (a key it leaves out is cached as absent and left out of the
    /// result).
    pub async fn get_or_load_many<K, V, F, Fut>(
        &self,
        keys: Vec<(K, CacheKey)>,
        load: F,
    ) -> Result<HashMap<K, V>, AppError>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(Vec<K>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<K, V>, AppError>> + Send + 'static,
    {
        self.read_through(keys, load, encode_json, |_, bytes| decode::<V>(bytes))
            .await
    }

    /// As [`Cache::get_or_load`], for a value that many requests read whole (a small
    /// tree): every reader of one stored entry shares one decoded copy, so a hit costs no
    /// decoding. Safe for the reason the near cache is: a decoded copy is kept by the
    /// entry's versioned address, which never names another value; a retired generation
    /// leaves its copies unreachable until they expire.
    pub async fn get_or_load_shared<V, F, Fut>(&self, key: CacheKey, load: F) -> Result<Arc<V>, AppError>
    where
        V: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, AppError>> + Send + 'static,
    {
        let decoded = self.inner.as_ref().map(|inner| inner.decoded.clone());
        self.read_one(key, load, encode_json, move |stored, bytes| {
            decode_shared::<V>(decoded.as_ref(), stored, bytes)
        })
        .await
    }

    /// One value through [`Cache::read_through`].
    async fn read_one<V, T, F, Fut, D>(
        &self,
        key: CacheKey,
        load: F,
        encode: Encoder<V>,
        decode: D,
    ) -> Result<T, AppError>
    where
        V: Send + 'static,
        T: From<V>,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, AppError>> + Send + 'static,
        D: Fn(Option<(&Slot, &str)>, &[u8]) -> Result<Option<T>, Unusable>,
    {
        let mut values = self
            .read_through(
                vec![((), key)],
                move |_| async move {
                    let value = load().await?;
                    Ok(HashMap::from([((), value)]))
                },
                encode,
                decode,
            )
            .await?;
        values
            .remove(&())
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("cache loader returned no value")))
    }

    /// The read path of every look-up: `load` produces `V`s, `encode` turns each into the
    /// bytes stored, `decode` turns stored bytes into the caller's `T` (given the slot and
    /// generation they were read under, or nothing for bytes just loaded).
    async fn read_through<K, V, T, F, Fut, D>(
        &self,
        keys: Vec<(K, CacheKey)>,
        load: F,
        encode: Encoder<V>,
        decode: D,
    ) -> Result<HashMap<K, T>, AppError>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Send + 'static,
        T: From<V>,
        F: FnOnce(Vec<K>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<K, V>, AppError>> + Send + 'static,
        D: Fn(Option<(&Slot, &str)>, &[u8]) -> Result<Option<T>, Unusable>,
    {
        let Some(inner) = self.inner.as_ref().filter(|inner| inner.backend_usable()) else {
            if self.inner.is_some() {
                self.count(Outcome::Degraded, keys.len());
            }
            return load_directly(load, keys).await;
        };
        let slots: Vec<Slot> = keys
            .iter()
            .map(|(_, key)| Slot {
                scope: key.scope.clone(),
                entry: key.entry.clone(),
            })
            .collect();
        let read = match bounded(inner.backend.read(&slots)).await {
            Ok(read) => read,
            Err(reason) => {
                inner.trip(&reason);
                self.count(Outcome::Degraded, keys.len());
                return load_directly(load, keys).await;
            }
        };

        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for ((key, _), (slot, cached)) in keys.into_iter().zip(slots.into_iter().zip(read)) {
            match cached.value {
                Some(bytes) => match decode(Some((&slot, &cached.generation)), &bytes) {
                    Ok(Some(value)) => {
                        found.insert(key, value);
                    }
                    Ok(None) => {}
                    Err(unusable) => {
                        if let Unusable::Undecodable(error) = unusable {
                            // A value from an older release with another shape: reload it.
                            tracing::debug!(cache = inner.name, %error, "discarding undecodable cache entry");
                        }
                        missing.push((key, slot.versioned(&cached.generation)));
                    }
                },
                None => missing.push((key, slot.versioned(&cached.generation))),
            }
        }
        self.count(Outcome::Hit, found.len());
        if missing.is_empty() {
            return Ok(found);
        }
        self.count(Outcome::Miss, missing.len());

        let ttl = inner.jittered_ttl();
        let backend = inner.backend.clone();
        let loaded = inner
            .flights
            .run(missing, move |keys: Vec<(K, String)>| async move {
                let (ids, addresses): (Vec<K>, Vec<String>) = keys.into_iter().unzip();
                let mut values = load(ids.clone()).await?;
                let mut encoded = HashMap::with_capacity(ids.len());
                let mut writes = Vec::with_capacity(ids.len());
                for (id, address) in ids.into_iter().zip(addresses) {
                    let bytes = match values.remove(&id) {
                        Some(value) => encode(value)?,
                        None => ABSENT.to_vec(),
                    };
                    writes.push((address.clone(), bytes.clone()));
                    encoded.insert(address, bytes);
                }
                // Storing is best effort: the reader has its value either way.
                if let Err(reason) = bounded(backend.write(writes, ttl)).await {
                    tracing::warn!(reason, "failed to store loaded values in the cache");
                }
                Ok(encoded)
            })
            .await?;
        for (key, bytes) in loaded {
            if let Some(value) = decode(None, &bytes).map_err(AppError::internal)? {
                found.insert(key, value);
            }
        }
        Ok(found)
    }

    /// Retires the generations of `scopes`: every entry stored under them is gone for
    /// every reader once this returns. Never fails: when the backend cannot be reached,
    /// the invalidation is remembered and the cache is bypassed until it is applied.
    pub async fn invalidate(&self, scopes: &[String]) {
        let Some(inner) = &self.inner else { return };
        let mut all = match inner.breaker.lock() {
            Ok(mut breaker) => {
                let mut all = std::mem::take(&mut breaker.pending_invalidations);
                all.extend(scopes.iter().cloned());
                all
            }
            Err(_) => scopes.to_vec(),
        };
        all.sort();
        all.dedup();
        if let Err(reason) = inner.apply_invalidations(&all).await {
            inner.trip(&reason);
            if let Ok(mut breaker) = inner.breaker.lock() {
                breaker.pending_invalidations.extend(all);
            }
        }
    }

    fn count(&self, outcome: Outcome, n: usize) {
        if n == 0 {
            return;
        }
        let name = self.inner.as_ref().map_or("disabled", |inner| inner.name);
        let (counter, label) = match outcome {
            Outcome::Hit => (&self.stats.hits, "hit"),
            Outcome::Miss => (&self.stats.misses, "miss"),
            Outcome::Degraded => (&self.stats.degraded, "degraded"),
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        metrics::counter!("cache_requests_total", "cache" => name, "result" => label).increment(n as u64);
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Hit,
    Miss,
    Degraded,
}

impl Inner {
    /// Whether reads may use the backend now: the breaker is closed and no invalidation
    /// is outstanding. Starts a retry of outstanding invalidations once the breaker
    /// period is over; reads resume when it succeeds.
    fn backend_usable(self: &Arc<Self>) -> bool {
        let pending = {
            let Ok(mut breaker) = self.breaker.lock() else {
                return false;
            };
            if breaker.open_until.is_some_and(|until| Instant::now() < until) {
                return false;
            }
            if breaker.pending_invalidations.is_empty() {
                return true;
            }
            // Hold the breaker open while the retry runs, so only one retry is in flight.
            breaker.open_until = Some(Instant::now() + BREAKER_OPEN_FOR);
            std::mem::take(&mut breaker.pending_invalidations)
        };
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            match inner.apply_invalidations(&pending).await {
                Ok(()) => {
                    tracing::info!(
                        cache = inner.name,
                        scopes = pending.len(),
                        "applied the invalidations held during a cache outage"
                    );
                    if let Ok(mut breaker) = inner.breaker.lock() {
                        breaker.open_until = None;
                    }
                }
                Err(_) => {
                    if let Ok(mut breaker) = inner.breaker.lock() {
                        breaker.pending_invalidations.extend(pending);
                    }
                }
            }
        });
        false
    }

    async fn apply_invalidations(&self, scopes: &[String]) -> Result<(), String> {
        bounded(self.backend.invalidate(scopes)).await
    }

    /// Opens the breaker after a backend failure.
    fn trip(&self, reason: &str) {
        if let Ok(mut breaker) = self.breaker.lock() {
            let was_closed = breaker.open_until.is_none_or(|until| Instant::now() >= until);
            breaker.open_until = Some(Instant::now() + BREAKER_OPEN_FOR);
            if was_closed {
                tracing::warn!(
                    cache = self.name,
                    reason,
                    "cache backend failed; reading from the database"
                );
            }
        }
    }

    fn jittered_ttl(&self) -> Duration {
        let factor = rand::rng().random_range((1.0 - TTL_JITTER)..=(1.0 + TTL_JITTER));
        self.ttl.mul_f64(factor)
    }
}

/// A backend call bounded by [`BACKEND_TIMEOUT`]; a failure or timeout becomes the
/// reason the breaker logs.
async fn bounded<T>(call: impl Future<Output = Result<T, BackendError>>) -> Result<T, String> {
    match tokio::time::timeout(BACKEND_TIMEOUT, call).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

/// `keys` read from the database alone, bypassing the backend.
async fn load_directly<K, V, T, F, Fut>(load: F, keys: Vec<(K, CacheKey)>) -> Result<HashMap<K, T>, AppError>
where
    K: Eq + Hash,
    T: From<V>,
    F: FnOnce(Vec<K>) -> Fut,
    Fut: Future<Output = Result<HashMap<K, V>, AppError>>,
{
    let values = load(keys.into_iter().map(|(k, _)| k).collect()).await?;
    Ok(values.into_iter().map(|(k, v)| (k, T::from(v))).collect())
}

/// Why a stored value is not answered with: it is loaded again and replaced.
#[derive(Debug, thiserror::Error)]
enum Unusable {
    /// A value from an older release with another shape.
    #[error("undecodable cache entry: {0}")]
    Undecodable(#[from] serde_json::Error),
    /// A value its reader's own test rejects ([`Cache::get_or_load_unless`]).
    #[error("stale cache entry")]
    Stale,
}

/// How a loaded value becomes the bytes stored for it.
type Encoder<V> = fn(V) -> Result<Vec<u8>, AppError>;

/// The encoding of every typed value: JSON.
fn encode_json<V: Serialize>(value: V) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(&value).map_err(AppError::internal)
}

/// The encoding of a value that is bytes already ([`Cache::get_or_load_bytes_unless`]).
fn encode_bytes(value: Vec<u8>) -> Result<Vec<u8>, AppError> {
    if value == ABSENT {
        return Err(AppError::internal(anyhow::anyhow!(
            "an empty value cannot be cached: empty bytes record an absence"
        )));
    }
    Ok(value)
}

fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<Option<V>, Unusable> {
    if bytes == ABSENT {
        return Ok(None);
    }
    Ok(serde_json::from_slice(bytes).map(Some)?)
}

/// `bytes` as a shared `V`: the copy `decoded` keeps for the address they were read at,
/// else decoded now (and kept, when they were read from the cache).
fn decode_shared<V>(
    decoded: Option<&DecodedValues>,
    stored: Option<(&Slot, &str)>,
    bytes: &[u8],
) -> Result<Option<Arc<V>>, Unusable>
where
    V: DeserializeOwned + Send + Sync + 'static,
{
    let memo = decoded.zip(stored.map(|(slot, generation)| slot.versioned(generation)));
    if let Some((decoded, address)) = &memo
        && let Some(value) = decoded.get(address).and_then(|value| value.downcast::<V>().ok())
    {
        return Ok(Some(value));
    }
    let Some(value) = decode::<V>(bytes)?.map(Arc::new) else {
        return Ok(None);
    };
    if let Some((decoded, address)) = memo {
        decoded.insert(address, value.clone());
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use super::*;

    /// A loader that counts its calls and returns the current "database" value.
    #[derive(Clone)]
    struct Source {
        value: Arc<Mutex<String>>,
        loads: Arc<AtomicUsize>,
    }

    impl Source {
        fn new(value: &str) -> Self {
            Self {
                value: Arc::new(Mutex::new(value.to_owned())),
                loads: Arc::default(),
            }
        }

        fn set(&self, value: &str) {
            *self.value.lock().unwrap() = value.to_owned();
        }

        fn loads(&self) -> usize {
            self.loads.load(Ordering::SeqCst)
        }

        async fn read(&self, cache: &Cache, key: &CacheKey) -> String {
            let source = self.clone();
            cache
                .get_or_load(key.clone(), move || async move {
                    source.loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, AppError>(source.value.lock().unwrap().clone())
                })
                .await
                .unwrap()
        }
    }

    fn fresh_key() -> CacheKey {
        CacheKey::new(format!("product:{}", uuid::Uuid::new_v4()), "row")
    }

    /// The behaviour both backends must have.
    async fn cache_contract(backend: Arc<dyn Backend>) {
        let cache = Cache::new("contract", backend.clone(), Duration::from_secs(60));
        let key = fresh_key();
        let source = Source::new("v1");
        assert_eq!(source.read(&cache, &key).await, "v1");
        assert_eq!(source.read(&cache, &key).await, "v1");
        assert_eq!(source.loads(), 1, "the second read is a hit");
        assert_eq!((cache.stats().hits(), cache.stats().misses()), (1, 1));

        source.set("v2");
        cache.invalidate(std::slice::from_ref(&key.scope)).await;
        assert_eq!(
            source.read(&cache, &key).await,
            "v2",
            "a read after invalidation is fresh"
        );

        // A reader that loaded before a write and stores after its invalidation stores
        // under the retired generation: nobody reads that value again.
        let slot = Slot {
            scope: key.scope.clone(),
            entry: key.entry.clone(),
        };
        let generation = backend.read(std::slice::from_ref(&slot)).await.unwrap()[0]
            .generation
            .clone();
        source.set("v3");
        cache.invalidate(std::slice::from_ref(&key.scope)).await;
        backend
            .write(
                vec![(slot.versioned(&generation), serde_json::to_vec("v2").unwrap())],
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert_eq!(
            source.read(&cache, &key).await,
            "v3",
            "the late fill of the old value is never served"
        );

        // Absent values are cached too.
        let missing = fresh_key();
        let loads = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let loads = loads.clone();
            let found = cache
                .get_or_load_many(vec![(7_u32, missing.clone())], move |_| async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok(HashMap::<u32, String>::new())
                })
                .await
                .unwrap();
            assert!(found.is_empty());
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "a known absence is a hit");

        // A batch: one load for all misses, hits left out of it.
        let keys: Vec<(u32, CacheKey)> = (0..10).map(|i| (i, fresh_key())).collect();
        source.read(&cache, &keys[0].1).await;
        let asked = Arc::new(Mutex::new(Vec::new()));
        let recorded = asked.clone();
        let found = cache
            .get_or_load_many(keys.clone(), move |ids: Vec<u32>| async move {
                recorded.lock().unwrap().extend(ids.iter().copied());
                Ok(ids
                    .into_iter()
                    .map(|id| (id, format!("item {id}")))
                    .collect::<HashMap<_, _>>())
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 10);
        assert_eq!(found[&0], "v3", "the cached key came from the cache");
        let mut asked = asked.lock().unwrap().clone();
        asked.sort();
        assert_eq!(asked, (1..10).collect::<Vec<_>>(), "one load for exactly the misses");
    }

    #[tokio::test]
    async fn the_memory_backend_keeps_the_cache_contract() {
        cache_contract(memory_backend(1024 * 1024)).await;
    }

    fn test_redis_url() -> String {
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
    }

    fn fresh_cache_name() -> String {
        format!("test-{}", uuid::Uuid::new_v4().simple())
    }

    async fn near_cached_backend(name: &str) -> Arc<dyn Backend> {
        let connection = crate::redis_store::connect(&test_redis_url().into())
            .await
            .expect("the test Redis");
        let client = redis::Client::open(test_redis_url()).unwrap();
        redis_backend_with_near_cache(connection, &client, name, 1 << 20, Duration::from_secs(60)).unwrap()
    }

    async fn plain_redis() -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(test_redis_url()).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }

    /// Reads `key` from `cache` until it answers `expected`, for at most `limit`.
    async fn read_until(source: &Source, cache: &Cache, key: &CacheKey, expected: &str, limit: Duration) {
        let started = Instant::now();
        while source.read(cache, key).await != expected {
            assert!(started.elapsed() < limit, "still not {expected} after {limit:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn the_redis_backend_keeps_the_cache_contract() {
        let connection = crate::redis_store::connect(&test_redis_url().into())
            .await
            .expect("the test Redis");
        cache_contract(redis_backend(connection, &fresh_cache_name())).await;
    }

    #[tokio::test]
    async fn the_redis_backend_with_a_near_cache_keeps_the_cache_contract() {
        cache_contract(near_cached_backend(&fresh_cache_name()).await).await;
    }

    #[tokio::test]
    async fn a_near_cache_hit_is_answered_without_asking_redis() {
        let name = fresh_cache_name();
        let backend = near_cached_backend(&name).await;
        let slot = Slot {
            scope: format!("product:{}", uuid::Uuid::new_v4()),
            entry: "row".to_owned(),
        };
        // The first read creates the scope's generation; Redis reports that write back to
        // the tracking connection, so the generation is kept from the second read on.
        backend.read(std::slice::from_ref(&slot)).await.unwrap();
        let generation = backend.read(std::slice::from_ref(&slot)).await.unwrap()[0]
            .generation
            .clone();
        let address = slot.versioned(&generation);
        backend
            .write(vec![(address.clone(), b"\"kept\"".to_vec())], Duration::from_secs(60))
            .await
            .unwrap();
        // Remove the entry from Redis behind the backend's back: only the near cache has it.
        let _: () = redis::cmd("DEL")
            .arg(format!("vitrina:cache:{name}:{address}"))
            .query_async(&mut plain_redis().await)
            .await
            .unwrap();
        let read = backend.read(std::slice::from_ref(&slot)).await.unwrap();
        assert_eq!(read[0].generation, generation);
        assert_eq!(read[0].value.as_deref(), Some(&b"\"kept\""[..]));
    }

    /// Two service instances sharing one Redis cache named `name`, each with a near cache.
    async fn two_instances(name: &str) -> (Cache, Cache) {
        let instance = || async { Cache::new("near", near_cached_backend(name).await, Duration::from_secs(60)) };
        (instance().await, instance().await)
    }

    #[tokio::test]
    async fn a_write_by_another_instance_reaches_the_near_cache_by_push() {
        let (here, elsewhere) = two_instances(&fresh_cache_name()).await;
        let key = fresh_key();
        let source = Source::new("v1");
        assert_eq!(source.read(&here, &key).await, "v1");
        assert_eq!(source.read(&here, &key).await, "v1");
        assert_eq!(source.loads(), 1, "the second read is a hit");

        source.set("v2");
        elsewhere.invalidate(std::slice::from_ref(&key.scope)).await;
        read_until(&source, &here, &key, "v2", Duration::from_secs(1)).await;
        assert_eq!(source.read(&elsewhere, &key).await, "v2");
    }

    #[tokio::test]
    async fn a_lost_tracking_connection_forgets_the_near_cache_and_tracking_resumes() {
        let name = fresh_cache_name();
        let (here, elsewhere) = two_instances(&name).await;
        let key = fresh_key();
        let source = Source::new("v1");
        assert_eq!(source.read(&here, &key).await, "v1");
        assert_eq!(source.read(&elsewhere, &key).await, "v1");

        // Kill both tracking connections: pushes sent now would be lost.
        let mut admin = plain_redis().await;
        let clients: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut admin).await.unwrap();
        let tracking: Vec<&str> = clients
            .lines()
            .filter(|line| line.contains(&format!(" name=vitrina-near-cache-{name} ")))
            .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
            .collect();
        assert_eq!(tracking.len(), 2, "one tracking connection per instance");
        for id in tracking {
            let _: () = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .query_async(&mut admin)
                .await
                .unwrap();
        }
        source.set("v2");
        elsewhere.invalidate(std::slice::from_ref(&key.scope)).await;
        read_until(&source, &here, &key, "v2", Duration::from_secs(3)).await;

        // Reconnected with tracking on: the next remote write is pushed again.
        source.set("v3");
        elsewhere.invalidate(std::slice::from_ref(&key.scope)).await;
        read_until(&source, &here, &key, "v3", Duration::from_secs(1)).await;
    }

    /// Memory that can be made to fail, as Redis does during an outage.
    struct Flaky {
        inner: Arc<dyn Backend>,
        down: AtomicBool,
    }

    impl Flaky {
        fn check(&self) -> Result<(), BackendError> {
            if self.down.load(Ordering::SeqCst) {
                Err(BackendError("connection refused".into()))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait::async_trait]
    impl Backend for Flaky {
        async fn read(&self, slots: &[Slot]) -> Result<Vec<backend::ReadSlot>, BackendError> {
            self.check()?;
            self.inner.read(slots).await
        }

        async fn write(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), BackendError> {
            self.check()?;
            self.inner.write(entries, ttl).await
        }

        async fn invalidate(&self, scopes: &[String]) -> Result<(), BackendError> {
            self.check()?;
            self.inner.invalidate(scopes).await
        }
    }

    #[tokio::test]
    async fn an_outage_degrades_to_the_loader_and_cannot_resurrect_an_invalidated_value() {
        let flaky = Arc::new(Flaky {
            inner: memory_backend(1024 * 1024),
            down: AtomicBool::new(false),
        });
        let cache = Cache::new("flaky", flaky.clone(), Duration::from_secs(60));
        let key = fresh_key();
        let source = Source::new("old");
        source.read(&cache, &key).await;

        flaky.down.store(true, Ordering::SeqCst);
        source.set("new");
        cache.invalidate(std::slice::from_ref(&key.scope)).await;
        assert_eq!(source.read(&cache, &key).await, "new", "reads go to the loader");
        assert!(cache.stats().degraded() >= 1);

        // The backend is back, still holding "old" under the old generation: the held
        // invalidation must be applied before anything is read from it.
        flaky.down.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        let hits = cache.stats().hits();
        loop {
            assert_eq!(source.read(&cache, &key).await, "new");
            if cache.stats().hits() > hits {
                break;
            }
            assert!(Instant::now() < deadline, "the cache never resumed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn readers_of_one_stored_value_share_one_decoded_copy_until_it_is_retired() {
        let cache = Cache::new("shared", memory_backend(1024 * 1024), Duration::from_secs(60));
        let key = fresh_key();
        let read = |database: &'static str| {
            cache.get_or_load_shared(
                key.clone(),
                move || async move { Ok::<_, AppError>(database.to_owned()) },
            )
        };
        assert_eq!(*read("v1").await.unwrap(), "v1");
        let first_hit = read("v2").await.unwrap();
        let second_hit = read("v2").await.unwrap();
        assert_eq!(*first_hit, "v1", "a hit reads the stored value, not the database");
        assert!(Arc::ptr_eq(&first_hit, &second_hit), "hits share one decoded copy");

        cache.invalidate(std::slice::from_ref(&key.scope)).await;
        assert_eq!(*read("v2").await.unwrap(), "v2", "a read after invalidation is fresh");
        let after = read("v3").await.unwrap();
        assert_eq!(*after, "v2");
        assert!(
            !Arc::ptr_eq(&after, &first_hit),
            "the retired copy is never handed out again"
        );
    }

    #[tokio::test]
    async fn a_stored_value_its_reader_rejects_is_loaded_again_and_replaced() {
        let cache = Cache::new("unless", memory_backend(1024 * 1024), Duration::from_secs(60));
        let key = fresh_key();
        let read = |database: &'static str, usable: fn(&String) -> bool| {
            let cache = cache.clone();
            let key = key.clone();
            async move {
                cache
                    .get_or_load_unless(
                        key,
                        usable,
                        move || async move { Ok::<_, AppError>(database.to_owned()) },
                    )
                    .await
                    .unwrap()
            }
        };
        let anything: fn(&String) -> bool = |_| true;
        assert_eq!(read("v1", |_| false).await, "v1", "a value just loaded is not tested");
        assert_eq!(read("v2", anything).await, "v1", "an accepted value is a hit");
        assert_eq!(
            read("v2", |stored| stored != "v1").await,
            "v2",
            "a rejected value is reloaded"
        );
        assert_eq!(read("v3", anything).await, "v2", "and the reloaded value replaced it");
        assert_eq!((cache.stats().hits(), cache.stats().misses()), (2, 2));
    }

    #[tokio::test]
    async fn bytes_are_stored_as_they_are_and_judged_by_their_reader() {
        let backend = memory_backend(1024 * 1024);
        let cache = Cache::new("bytes", backend.clone(), Duration::from_secs(60));
        let key = fresh_key();
        let read = |database: &'static [u8], usable: fn(&[u8]) -> bool| {
            let cache = cache.clone();
            let key = key.clone();
            async move {
                cache
                    .get_or_load_bytes_unless(key, usable, move || async move { Ok::<_, AppError>(database.to_vec()) })
                    .await
            }
        };
        let body: &[u8] = b"v1\n{\"data\":{\"a\":\"\\\"\"}}";
        assert_eq!(
            read(body, |_| false).await.unwrap(),
            body,
            "a value just loaded is not tested"
        );
        let slot = Slot {
            scope: key.scope.clone(),
            entry: key.entry.clone(),
        };
        let stored = backend.read(std::slice::from_ref(&slot)).await.unwrap().remove(0);
        assert_eq!(stored.value.as_deref(), Some(body), "stored without any encoding");

        assert_eq!(
            read(&b"v2"[..], |_| true).await.unwrap(),
            body,
            "an accepted value is a hit"
        );
        assert_eq!(
            read(&b"v2"[..], |stored| !stored.starts_with(b"v1")).await.unwrap(),
            b"v2",
            "a rejected value is reloaded"
        );
        assert_eq!(read(&b"v3"[..], |_| true).await.unwrap(), b"v2", "and replaced");

        let empty = fresh_key();
        let refused = cache
            .get_or_load_bytes_unless(empty.clone(), |_| true, || async { Ok(Vec::new()) })
            .await;
        assert!(refused.is_err(), "an empty value is refused, not cached as an absence");
        let reloaded = cache
            .get_or_load_bytes_unless(empty, |_| true, || async { Ok(b"later".to_vec()) })
            .await
            .unwrap();
        assert_eq!(reloaded, b"later", "and nothing was stored for it");
    }

    #[tokio::test]
    async fn a_disabled_cache_always_loads() {
        let cache = Cache::disabled();
        let key = fresh_key();
        let source = Source::new("v");
        source.read(&cache, &key).await;
        source.read(&cache, &key).await;
        assert_eq!(source.loads(), 2);
    }

    #[test]
    fn entry_lifetimes_are_spread_within_ten_percent() {
        let cache = Cache::new("ttl", memory_backend(1024 * 1024), Duration::from_secs(100));
        let inner = cache.inner.as_ref().unwrap();
        let lifetimes: Vec<Duration> = (0..200).map(|_| inner.jittered_ttl()).collect();
        assert!(lifetimes.iter().all(|ttl| (90.0..=110.0).contains(&ttl.as_secs_f64())));
        assert!(lifetimes.iter().any(|ttl| *ttl != lifetimes[0]), "jitter varies");
    }
}
