//! The Redis cache backend. A read is one Lua script call for any number of slots: it
//! reads (or creates) each scope's generation and the entry under it atomically, so a
//! batch of 50 product look-ups is one round trip. Keys are prefixed
//! `vitrina:cache:<name>:`; the script derives entry keys from generation values, so it
//! targets a single Redis (not Redis Cluster), like the rest of Vitrina.
//!
//! With a [`NearCache`] (the default), reads go through its tracking connection and a
//! slot whose generation and entry are both held locally costs no round trip at all;
//! only the other slots of a batch are sent to Redis.

use std::{sync::Arc, time::Duration};

use redis::{Script, aio::ConnectionManager};

use super::{
    backend::{Backend, BackendError, GENERATION_TTL, ReadSlot, Slot, generation_address, new_generation},
    near::NearCache,
};

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
    /// Writes, invalidations, and reads when there is no near cache.
    connection: ConnectionManager,
    prefix: String,
    read_script: Script,
    near: Option<NearCache>,
}

/// A backend storing under `vitrina:cache:<name>:` in the connected Redis, read
/// through Redis on every request.
pub fn redis_backend(connection: ConnectionManager, name: &str) -> Arc<dyn Backend> {
    Arc::new(RedisBackend {
        connection,
        prefix: format!("vitrina:cache:{name}:"),
        read_script: Script::new(READ_SCRIPT),
        near: None,
    })
}

/// [`redis_backend`] with a near cache of about `near_max_bytes`, kept coherent by
/// Redis's invalidation pushes; `client` opens its tracking connection (RESP3).
pub fn redis_backend_with_near_cache(
    connection: ConnectionManager,
    client: &redis::Client,
    name: &str,
    near_max_bytes: u64,
    ttl: Duration,
) -> Result<Arc<dyn Backend>, BackendError> {
    let mut info = client.get_connection_info().clone();
    info.redis.protocol = redis::ProtocolVersion::RESP3;
    let tracking_client = redis::Client::open(info).map_err(failed)?;
    Ok(Arc::new(RedisBackend {
        connection,
        prefix: format!("vitrina:cache:{name}:"),
        read_script: Script::new(READ_SCRIPT),
        near: Some(NearCache::new(tracking_client, name, near_max_bytes, ttl)),
    }))
}

impl RedisBackend {
    fn generation_key(&self, scope: &str) -> String {
        generation_address(&format!("{}{scope}", self.prefix))
    }

    fn prefixed(&self, address: &str) -> String {
        format!("{}{address}", self.prefix)
    }

    /// One script call reading `slots` on `connection`.
    async fn read_from_redis<C: redis::aio::ConnectionLike>(
        &self,
        connection: &mut C,
        slots: &[&Slot],
    ) -> Result<Vec<ReadSlot>, BackendError> {
        let mut invocation = self.read_script.prepare_invoke();
        invocation.arg(new_generation()).arg(GENERATION_TTL.as_millis() as u64);
        for slot in slots {
            let scope = format!("{}{}", self.prefix, slot.scope);
            invocation.key(generation_address(&scope));
            invocation.arg(scope).arg(&slot.entry);
        }
        let reply: Vec<Option<Vec<u8>>> = invocation.invoke_async(connection).await.map_err(failed)?;
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

    /// Answers what the near cache holds and reads only the rest from Redis.
    async fn read_through_near(&self, near: &NearCache, slots: &[Slot]) -> Result<Vec<ReadSlot>, BackendError> {
        let mut found: Vec<Option<ReadSlot>> = slots
            .iter()
            .map(|slot| {
                let generation = near.generation(&self.generation_key(&slot.scope))?;
                let bytes = near.entry(&self.prefixed(&slot.versioned(&generation)))?;
                Some(ReadSlot {
                    generation,
                    value: Some(bytes.to_vec()),
                })
            })
            .collect();
        let missing: Vec<usize> = (0..slots.len()).filter(|&i| found[i].is_none()).collect();
        if !missing.is_empty() {
            let mut connection = near.connection().await?;
            // Taken once connected: (re)connecting forgets everything, which would keep
            // the first read on a new connection from remembering what it read.
            let ticket = near.ticket();
            let asked: Vec<&Slot> = missing.iter().map(|&i| &slots[i]).collect();
            let read = match self.read_from_redis(&mut connection, &asked).await {
                Ok(read) => read,
                Err(error) => {
                    near.reset();
                    return Err(error);
                }
            };
            let keys: Vec<String> = asked.iter().map(|slot| self.generation_key(&slot.scope)).collect();
            near.remember_generations(
                ticket,
                keys.iter()
                    .zip(&read)
                    .map(|(key, slot)| (key.as_str(), slot.generation.as_str())),
            );
            for ((slot, index), read) in asked.iter().zip(&missing).zip(read) {
                if let Some(bytes) = &read.value {
                    near.remember_entry(
                        self.prefixed(&slot.versioned(&read.generation)),
                        Arc::from(bytes.as_slice()),
                    );
                }
                found[*index] = Some(read);
            }
        }
        found
            .into_iter()
            .map(|slot| slot.ok_or_else(|| BackendError("near cache lost a slot".to_owned())))
            .collect()
    }
}

fn failed(error: redis::RedisError) -> BackendError {
    BackendError(error.to_string())
}

#[async_trait::async_trait]
impl Backend for RedisBackend {
    async fn read(&self, slots: &[Slot]) -> Result<Vec<ReadSlot>, BackendError> {
        match &self.near {
            Some(near) => self.read_through_near(near, slots).await,
            None => {
                let slots: Vec<&Slot> = slots.iter().collect();
                self.read_from_redis(&mut self.connection.clone(), &slots).await
            }
        }
    }

    async fn write(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), BackendError> {
        let mut pipeline = redis::pipe();
        let ttl_ms = ttl.as_millis().max(1) as u64;
        for (address, bytes) in entries {
            let address = self.prefixed(&address);
            if let Some(near) = &self.near {
                near.remember_entry(address.clone(), Arc::from(bytes.as_slice()));
            }
            pipeline
                .cmd("SET")
                .arg(address)
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
        let keys: Vec<String> = scopes.iter().map(|scope| self.generation_key(scope)).collect();
        for key in &keys {
            pipeline
                .cmd("SET")
                .arg(key)
                .arg(new_generation())
                .arg("PX")
                .arg(GENERATION_TTL.as_millis() as u64)
                .ignore();
        }
        let mut connection = self.connection.clone();
        let applied = pipeline.query_async::<()>(&mut connection).await.map_err(failed);
        // Whatever Redis answered, the generations held here may be old now; forgetting
        // them after Redis has the new ones makes this process's next read see them.
        if let Some(near) = &self.near {
            near.forget_generations(&keys);
        }
        applied
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
