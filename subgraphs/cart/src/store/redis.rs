//! Carts in Redis, the cart's database. A cart is a hash `{etag, doc}` under
//! `vitrina:cart:<key>` with the cart's TTL; a commit is one Lua script, so checking
//! every etag and writing every key happen atomically on the server.

use std::time::Duration;

use redis::{Script, aio::ConnectionManager};

use super::{CartStore, Change, Commit, StoreError, Stored, Write, new_etag};

/// KEYS: the keys written. ARGV: for each key, the expected etag ('' = must not exist),
/// the new document ('' = delete), the TTL in ms and the new etag. Returns 1 when applied,
/// 0 when any etag differed (and then nothing was written).
const COMMIT_SCRIPT: &str = r"
for i, key in ipairs(KEYS) do
  local current = redis.call('HGET', key, 'etag') or ''
  if current ~= ARGV[4 * i - 3] then return 0 end
end
for i, key in ipairs(KEYS) do
  local doc = ARGV[4 * i - 2]
  if doc == '' then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'etag', ARGV[4 * i], 'doc', doc)
    redis.call('PEXPIRE', key, ARGV[4 * i - 1])
  end
end
return 1
";

pub struct RedisCartStore {
    connection: ConnectionManager,
    commit_script: Script,
}

impl RedisCartStore {
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            commit_script: Script::new(COMMIT_SCRIPT),
        }
    }
}

fn address(key: &str) -> String {
    format!("vitrina:cart:{key}")
}

fn failed(error: redis::RedisError) -> StoreError {
    StoreError(error.to_string())
}

#[async_trait::async_trait]
impl CartStore for RedisCartStore {
    async fn load(&self, key: &str) -> Result<Option<Stored>, StoreError> {
        let address = address(key);
        // One round trip for both: a pipeline is sent as one write.
        let ((etag, doc), ttl_ms): ((Option<String>, Option<Vec<u8>>), i64) = redis::pipe()
            .cmd("HMGET")
            .arg(&address)
            .arg("etag")
            .arg("doc")
            .cmd("PTTL")
            .arg(&address)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        Ok(match (etag, doc) {
            (Some(etag), Some(bytes)) => Some(Stored {
                etag,
                bytes,
                // -1: no expiry; -2: gone since the HMGET (it is read as alive but due).
                time_to_live: match ttl_ms {
                    -1 => None,
                    ms => Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
                },
            }),
            _ => None,
        })
    }

    async fn commit(&self, writes: &[Write]) -> Result<Commit, StoreError> {
        let mut invocation = self.commit_script.prepare_invoke();
        for write in writes {
            invocation.key(address(&write.key));
            invocation.arg(write.expected.as_deref().unwrap_or(""));
            match &write.change {
                Change::Put { bytes, ttl } => invocation
                    .arg(bytes.as_slice())
                    .arg(ttl.as_millis().max(1) as u64)
                    .arg(new_etag()),
                Change::Delete => invocation.arg("").arg(0).arg(""),
            };
        }
        let applied: i64 = invocation
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        Ok(if applied == 1 { Commit::Applied } else { Commit::Stale })
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        redis::cmd("PEXPIRE")
            .arg(address(key))
            .arg(ttl.as_millis().max(1) as u64)
            .query_async::<bool>(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_redis_store_keeps_the_store_contract() {
        let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let connection = vitrina_shared::redis_store::connect(&url.into())
            .await
            .expect("the test Redis");
        super::super::contract::store_contract(Arc::new(RedisCartStore::new(connection))).await;
    }
}
