//! Carts in process memory: the embedded default when `REDIS_URL` is unset (one process,
//! so a mutex gives the same atomic commit as Redis's script). Expired carts are dropped
//! when read and swept from time to time, so abandoned guest carts do not pile up.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{CartStore, Change, Commit, StoreError, Stored, Write, new_etag};

/// Commits between two sweeps of expired carts.
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub struct MemoryCartStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    commits: u64,
}

struct Entry {
    etag: String,
    bytes: Vec<u8>,
    expires_at: Instant,
}

impl State {
    fn live(&mut self, key: &str) -> Option<&mut Entry> {
        let now = Instant::now();
        if self.entries.get(key).is_some_and(|entry| entry.expires_at <= now) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }
}

impl MemoryCartStore {
    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError("the in-process cart store is poisoned".to_owned()))
    }
}

#[async_trait::async_trait]
impl CartStore for MemoryCartStore {
    async fn load(&self, key: &str) -> Result<Option<Stored>, StoreError> {
        Ok(self.state()?.live(key).map(|entry| Stored {
            etag: entry.etag.clone(),
            bytes: entry.bytes.clone(),
            time_to_live: Some(entry.expires_at.saturating_duration_since(Instant::now())),
        }))
    }

    async fn commit(&self, writes: &[Write]) -> Result<Commit, StoreError> {
        let mut state = self.state()?;
        for write in writes {
            let current = state.live(&write.key).map(|entry| entry.etag.clone());
            if current != write.expected {
                return Ok(Commit::Stale);
            }
        }
        let now = Instant::now();
        for write in writes {
            match &write.change {
                Change::Put { bytes, ttl } => {
                    state.entries.insert(
                        write.key.clone(),
                        Entry {
                            etag: new_etag(),
                            bytes: bytes.clone(),
                            expires_at: now + *ttl,
                        },
                    );
                }
                Change::Delete => {
                    state.entries.remove(&write.key);
                }
            }
        }
        state.commits += 1;
        if state.commits % SWEEP_EVERY == 0 {
            state.entries.retain(|_, entry| entry.expires_at > now);
        }
        Ok(Commit::Applied)
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        Ok(match self.state()?.live(key) {
            Some(entry) => {
                entry.expires_at = Instant::now() + ttl;
                true
            }
            None => false,
        })
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_memory_store_keeps_the_store_contract() {
        super::super::contract::store_contract(Arc::new(MemoryCartStore::default())).await;
    }
}
