//! Where carts live: Redis when `REDIS_URL` is set (it is the cart's database), an
//! in-process map otherwise. Both offer the same two primitives, so every rule lives once
//! in `service`: read a cart with its *etag*, and commit a set of writes atomically only
//! if every key still has the etag the writer read (optimistic concurrency). A commit
//! that loses a race changes nothing and is retried on fresh data, so two concurrent
//! `addToCart` calls can never lose a line.

mod memory;
mod redis;

use std::time::Duration;

pub use memory::MemoryCartStore;
pub use redis::RedisCartStore;

/// A stored value and the etag of its current version (random per write, so a key
/// deleted and created again never looks unchanged).
#[derive(Debug, Clone)]
pub struct Stored {
    pub etag: String,
    pub bytes: Vec<u8>,
    /// The key's remaining life when it was read, in the same round trip, so a reader
    /// can tell whether its use must renew it (`None`: it never expires).
    pub time_to_live: Option<Duration>,
}

/// One key of an atomic commit.
#[derive(Debug, Clone)]
pub struct Write {
    pub key: String,
    /// The etag read before the change; `None`: the key must not exist.
    pub expected: Option<String>,
    pub change: Change,
}

#[derive(Debug, Clone)]
pub enum Change {
    Put { bytes: Vec<u8>, ttl: Duration },
    Delete,
}

/// Whether a commit was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Applied,
    /// Some key changed since it was read: nothing was written.
    Stale,
}

#[derive(Debug, thiserror::Error)]
#[error("cart store failed: {0}")]
pub struct StoreError(pub String);

#[async_trait::async_trait]
pub trait CartStore: Send + Sync {
    /// The value at `key`, with its etag and remaining life.
    async fn load(&self, key: &str) -> Result<Option<Stored>, StoreError>;

    /// Applies every write, or none when any key's etag differs from its `expected`.
    async fn commit(&self, writes: &[Write]) -> Result<Commit, StoreError>;

    /// Extends a key's life (a cart is kept while it is used); false when it is gone.
    async fn touch(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Which backend this is, for logs.
    fn kind(&self) -> &'static str;
}

/// A fresh etag.
pub(crate) fn new_etag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour both stores must have; each store's tests run it.

    use std::sync::Arc;

    use super::*;

    fn put(key: &str, expected: Option<String>, bytes: &[u8]) -> Write {
        Write {
            key: key.to_owned(),
            expected,
            change: Change::Put {
                bytes: bytes.to_vec(),
                ttl: Duration::from_secs(60),
            },
        }
    }

    pub async fn store_contract(store: Arc<dyn CartStore>) {
        let key = format!("contract:{}", uuid::Uuid::new_v4());
        let other = format!("contract:{}", uuid::Uuid::new_v4());
        assert!(store.load(&key).await.unwrap().is_none());
        assert_eq!(store.commit(&[put(&key, None, b"one")]).await.unwrap(), Commit::Applied);
        let first = store.load(&key).await.unwrap().unwrap();
        assert_eq!(first.bytes, b"one");
        assert_eq!(
            store.commit(&[put(&key, None, b"again")]).await.unwrap(),
            Commit::Stale,
            "creating an existing key is stale"
        );
        assert_eq!(
            store
                .commit(&[put(&key, Some(first.etag.clone()), b"two")])
                .await
                .unwrap(),
            Commit::Applied
        );
        // A write based on the first version, and a multi-key commit containing it, lose.
        assert_eq!(
            store
                .commit(&[put(&other, None, b"x"), put(&key, Some(first.etag.clone()), b"three")])
                .await
                .unwrap(),
            Commit::Stale
        );
        assert!(
            store.load(&other).await.unwrap().is_none(),
            "a stale commit writes nothing"
        );
        let second = store.load(&key).await.unwrap().unwrap();
        assert_eq!(second.bytes, b"two");

        // Delete one key and create another atomically.
        let commit = [
            Write {
                key: key.clone(),
                expected: Some(second.etag.clone()),
                change: Change::Delete,
            },
            put(&other, None, b"moved"),
        ];
        assert_eq!(store.commit(&commit).await.unwrap(), Commit::Applied);
        assert!(store.load(&key).await.unwrap().is_none());
        assert_eq!(store.load(&other).await.unwrap().unwrap().bytes, b"moved");

        // Lifetimes: set by a put, read with the value, extended by touch.
        let life = |stored: Option<Stored>| stored.unwrap().time_to_live.unwrap();
        let ttl = life(store.load(&other).await.unwrap());
        assert!(
            ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(50),
            "{ttl:?}"
        );
        assert!(store.touch(&other, Duration::from_secs(600)).await.unwrap());
        let ttl = life(store.load(&other).await.unwrap());
        assert!(ttl > Duration::from_secs(590), "{ttl:?}");
        assert!(!store.touch(&key, Duration::from_secs(600)).await.unwrap());
    }
}
