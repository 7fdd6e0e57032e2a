//! What a cache backend must do: read entries together with their scope's generation,
//! store entries with a lifetime, and retire generations. Redis and the in-process cache
//! implement it; [`super::Cache`] adds everything else (single flight, breaker, metrics).

use std::time::Duration;

/// One entry to read: its scope and its name within the scope.
#[derive(Debug, Clone)]
pub struct Slot {
    pub scope: String,
    pub entry: String,
}

impl Slot {
    /// The storage address of this entry under `generation`. Both backends use it, so
    /// the layout is defined once.
    pub fn versioned(&self, generation: &str) -> String {
        versioned_address(&self.scope, generation, &self.entry)
    }
}

pub(crate) fn versioned_address(scope: &str, generation: &str, entry: &str) -> String {
    format!("{scope}@{generation}/{entry}")
}

/// How every generation key ends.
pub(crate) const GENERATION_SUFFIX: &str = "#gen";

/// The generation key of a scope.
pub(crate) fn generation_address(scope: &str) -> String {
    format!("{scope}{GENERATION_SUFFIX}")
}

/// What a read found for one slot.
#[derive(Debug, Clone)]
pub struct ReadSlot {
    /// The scope's current generation (created when the scope had none).
    pub generation: String,
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cache backend error: {0}")]
pub struct BackendError(pub String);

/// What an in-process cache entry costs beyond its key and value bytes (the cache's node,
/// its frequency and expiry bookkeeping, the allocations' headers), counted by every
/// weigher so `CACHE_MEMORY_MAX_MB` bounds memory: without it, a cache of small entries
/// (a listing's total count is a few bytes) held several times its bound.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 256;

/// The weight of an in-process cache entry: its bytes plus [`ENTRY_OVERHEAD_BYTES`].
pub(crate) fn entry_weight(key: &str, value_bytes: usize) -> u32 {
    u32::try_from(key.len() + value_bytes + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
}

/// How long a scope's generation is kept. Any value is safe (an expired generation is
/// replaced by a new random one, which only causes misses); it only has to outlive
/// typical entries so that hits stay possible.
pub(crate) const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);

#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Reads every slot in one round trip, creating missing scope generations.
    async fn read(&self, slots: &[Slot]) -> Result<Vec<ReadSlot>, BackendError>;

    /// Stores `(versioned address, value)` pairs for `ttl`.
    async fn write(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), BackendError>;

    /// Gives each scope a new generation.
    async fn invalidate(&self, scopes: &[String]) -> Result<(), BackendError>;
}

/// A fresh generation: random, so it never repeats one that was retired or evicted.
pub(crate) fn new_generation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
