//! The Redis cache backend. A read is one Lua script call for any number of slots: it
//! reads (or creates) each scope's generation and the entry under it atomically, so a
//! batch of 50 product look-ups is one round trip. Keys are prefixed
//! `vitrina:cache:<name>:`; the script derives entry keys from generation values, so it
//! targets a single Redis (not Redis Cluster), like the rest of Vitrina.

use std::{sync::Arc, time::Duration};

use redis::{Script, aio::ConnectionManager};

use super::backend::{Backend, BackendError, GENERATION_TTL, ReadSlot, Slot, generation_address, new_generation};

/// KEYS: generation keys. ARGV: a fresh generation, its TTL in ms, then for each slot the
/// prefixed scope and the entry name. Returns generation, value pairs (value `false` →
/// nil when absent).
const READ_SCRIPT: &str = r"
local fresh, ttl = ARGV[1], ARGV[2]
local out = {}
for i, generation_key in ipairs(KEYS) do
  local generation = redis.call('GET', generation_key)
  if not generation then
    redis.call('SET', generation_key, fresh, 'PX', ttl)
    generation = fresh
  end
  local scope, entry = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  out[2 * i - 1] = generation
  out[2 * i] = redis.call('GET', scope .. '@' .. generation .. '/' .. entry) or false
end
return out
";

struct RedisBackend {
    connection: ConnectionManager,
    prefix: String,
    read_script: Script,
}

/// A backend storing under `vitrina:cache:<name>:` in the connected Redis.
pub fn redis_backend(connection: ConnectionManager, name: &str) -> Arc<dyn Backend> {
    Arc::new(RedisBackend {
        connection,
        prefix: format!("vitrina:cache:{name}:"),
        read_script: Script::new(READ_SCRIPT),
    })
}

fn failed(error: redis::RedisError) -> BackendError {
    BackendError(error.to_string())
}

#[async_trait::async_trait]
impl Backend for RedisBackend {
    async fn read(&self, slots: &[Slot]) -> Result<Vec<ReadSlot>, BackendError> {
        let mut invocation = self.read_script.prepare_invoke();
        invocation.arg(new_generation()).arg(GENERATION_TTL.as_millis() as u64);
        for slot in slots {
            let scope = format!("{}{}", self.prefix, slot.scope);
            invocation.key(generation_address(&scope));
            invocation.arg(scope).arg(&slot.entry);
        }
        let mut connection = self.connection.clone();
        let reply: Vec<Option<Vec<u8>>> = invocation.invoke_async(&mut connection).await.map_err(failed)?;
        if reply.len() != slots.len() * 2 {
            return Err(BackendError(format!(
                "cache read script returned {} values for {} slots",
                reply.len(),
                slots.len()
            )));
        }
        let mut reply = reply.into_iter();
        let mut read = Vec::with_capacity(slots.len());
        while let (Some(generation), Some(value)) = (reply.next(), reply.next()) {
            let generation = generation
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| BackendError("cache generation is not text".to_owned()))?;
            read.push(ReadSlot { generation, value });
        }
        Ok(read)
    }

    async fn write(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), BackendError> {
        let mut pipeline = redis::pipe();
        let ttl_ms = ttl.as_millis().max(1) as u64;
        for (address, bytes) in entries {
            pipeline
                .cmd("SET")
                .arg(format!("{}{address}", self.prefix))
                .arg(bytes)
                .arg("PX")
                .arg(ttl_ms)
                .ignore();
        }
        let mut connection = self.connection.clone();
        pipeline.query_async::<()>(&mut connection).await.map_err(failed)
    }

    async fn invalidate(&self, scopes: &[String]) -> Result<(), BackendError> {
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        for scope in scopes {
            pipeline
                .cmd("SET")
                .arg(generation_address(&format!("{}{scope}", self.prefix)))
                .arg(new_generation())
                .arg("PX")
                .arg(GENERATION_TTL.as_millis() as u64)
                .ignore();
        }
        let mut connection = self.connection.clone();
        pipeline.query_async::<()>(&mut connection).await.map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::backend::versioned_address;

    #[test]
    fn the_script_builds_entry_keys_exactly_like_the_shared_layout() {
        // The Lua concatenation must agree with `versioned_address`.
        assert_eq!(versioned_address("s", "g", "e"), "s@g/e");
        assert!(READ_SCRIPT.contains("scope .. '@' .. generation .. '/' .. entry"));
    }
}
