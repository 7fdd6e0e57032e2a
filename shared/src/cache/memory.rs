//! The embedded cache backend: bounded in-process maps (moka), used when `REDIS_URL` is
//! not set. One process per service runs in that mode, so in-process is all it needs.

use std::{sync::Arc, time::Duration};

use moka::{Expiry, sync::Cache as MokaCache};

use super::backend::{
    Backend, BackendError, GENERATION_TTL, ReadSlot, Slot, entry_weight, new_generation, versioned_address,
};

/// A stored value and its own lifetime (jittered per entry).
#[derive(Clone)]
struct Stored {
    bytes: Arc<[u8]>,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Stored> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Stored, _now: std::time::Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

struct MemoryBackend {
    entries: MokaCache<String, Stored>,
    generations: MokaCache<String, String>,
}

/// An in-process backend holding at most about `max_bytes` of cached values.
pub fn memory_backend(max_bytes: u64) -> Arc<dyn Backend> {
    Arc::new(MemoryBackend {
        entries: MokaCache::builder()
            .max_capacity(max_bytes.max(1024 * 1024))
            .weigher(|key: &String, value: &Stored| entry_weight(key, value.bytes.len()))
            .expire_after(PerEntryTtl)
            .build(),
        generations: MokaCache::builder()
            .max_capacity(1_000_000)
            .time_to_live(GENERATION_TTL)
            .build(),
    })
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    async fn read(&self, slots: &[Slot]) -> Result<Vec<ReadSlot>, BackendError> {
        Ok(slots
            .iter()
            .map(|slot| {
                let generation = self.generations.get_with(slot.scope.clone(), new_generation);
                let value = self
                    .entries
                    .get(&versioned_address(&slot.scope, &generation, &slot.entry))
                    .map(|stored| stored.bytes.to_vec());
                ReadSlot { generation, value }
            })
            .collect())
    }

    async fn write(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), BackendError> {
        for (address, bytes) in entries {
            self.entries.insert(
                address,
                Stored {
                    bytes: bytes.into(),
                    ttl,
                },
            );
        }
        Ok(())
    }

    async fn invalidate(&self, scopes: &[String]) -> Result<(), BackendError> {
        for scope in scopes {
            self.generations.insert(scope.clone(), new_generation());
        }
        Ok(())
    }
}
