//! The near cache in front of Redis: server-assisted client-side caching (RESP3
//! `CLIENT TRACKING`), so a cache hit costs no network round trip.
//!
//! Where it sits: inside the Redis backend. Cache reads go through one dedicated RESP3
//! connection with tracking on; Redis remembers which keys that connection read and
//! pushes an `invalidate` message when any client changes, expires or evicts one of them.
//!
//! What is kept, and why it is safe:
//! - *Generations* (one per scope) are the only mutable values. They are kept until
//!   Redis says they changed. The push handler runs on the connection's reader, in order
//!   with replies, and bumps an invalidation counter when a generation changed (pushes
//!   for entries alone do not count: stores change entries all the time); a reader
//!   remembers a generation only if the counter did not move while its read was in
//!   flight, so a reply overtaken by an invalidation is never remembered (the classic
//!   client-side caching race).
//! - *Entries* are immutable once their generation is current: a value under a
//!   generation only changes while a writer is retiring that generation. So entries are
//!   kept by their versioned address until their TTL, without tracking.
//! - This process's own invalidations are applied locally as soon as Redis has taken
//!   them (not when the push arrives), so a read after a write here is never stale.
//!   Another instance learns of a write when Redis's push reaches it (sub-millisecond on
//!   a healthy link).
//! - A lost connection loses pushes, so disconnection (or any read error) forgets
//!   everything and the next read reconnects and re-enables tracking first. A heartbeat
//!   notices a silent link (no reset, no reply) within [`HEARTBEAT`] + its timeout.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use moka::sync::Cache as MokaCache;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value, aio::MultiplexedConnection};

use super::backend::{BackendError, GENERATION_SUFFIX, entry_weight};

/// How many scope generations are kept; each is a short key and a 32-character token.
const MAX_GENERATIONS: u64 = 200_000;
/// How often the tracking connection is checked while it is idle.
const HEARTBEAT: Duration = Duration::from_secs(1);

pub(crate) struct NearCache {
    /// Redis key of a scope's generation → the generation.
    generations: MokaCache<String, String>,
    /// Prefixed versioned address → the stored bytes.
    entries: MokaCache<String, Arc<[u8]>>,
    /// Moves whenever a tracked key may have changed; see the module header.
    invalidations: Arc<AtomicU64>,
    tracked: TrackedConnection,
}

/// What a read may remember afterwards: taken before the read is sent.
#[derive(Clone, Copy)]
pub(crate) struct ReadTicket(u64);

impl NearCache {
    /// A near cache holding about `max_bytes` of entries, each for at most `ttl`.
    /// `name` labels the tracking connection in `CLIENT LIST`.
    pub(crate) fn new(client: redis::Client, name: &str, max_bytes: u64, ttl: Duration) -> Self {
        let generations: MokaCache<String, String> = MokaCache::builder()
            .max_capacity(MAX_GENERATIONS)
            // A bound, should a push ever go missing without a disconnection.
            .time_to_live(ttl)
            .build();
        let entries = MokaCache::builder()
            .max_capacity(max_bytes.max(1024 * 1024))
            .weigher(|key: &String, value: &Arc<[u8]>| entry_weight(key, value.len()))
            .time_to_live(ttl)
            .build();
        let invalidations = Arc::new(AtomicU64::new(0));
        let tracked = TrackedConnection {
            client,
            connection_name: format!("vitrina-near-cache-{name}"),
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(0),
            listener: Listener {
                generations: generations.clone(),
                invalidations: Arc::clone(&invalidations),
                live_id: Arc::new(AtomicU64::new(u64::MAX)),
                broken: Arc::new(AtomicBool::new(false)),
            },
        };
        Self {
            generations,
            entries,
            invalidations,
            tracked,
        }
    }

    /// The generation kept for `generation_key`, if any.
    pub(crate) fn generation(&self, generation_key: &str) -> Option<String> {
        self.generations.get(generation_key)
    }

    /// The entry kept at `address`, if any.
    pub(crate) fn entry(&self, address: &str) -> Option<Arc<[u8]>> {
        self.entries.get(address)
    }

    /// Take before sending a read whose generations should be remembered.
    pub(crate) fn ticket(&self) -> ReadTicket {
        ReadTicket(self.invalidations.load(Ordering::SeqCst))
    }

    /// Remembers generations read under `ticket`, unless an invalidation arrived since.
    pub(crate) fn remember_generations<'a>(
        &self,
        ticket: ReadTicket,
        generations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        for (key, generation) in generations {
            if self.invalidations.load(Ordering::SeqCst) != ticket.0 {
                return;
            }
            self.generations.insert(key.to_owned(), generation.to_owned());
            // Re-check: an invalidation may have landed between the check and the insert.
            if self.invalidations.load(Ordering::SeqCst) != ticket.0 {
                self.generations.invalidate(key);
                return;
            }
        }
    }

    pub(crate) fn remember_entry(&self, address: String, bytes: Arc<[u8]>) {
        self.entries.insert(address, bytes);
    }

    /// Forgets generations this process has just replaced in Redis.
    pub(crate) fn forget_generations(&self, keys: &[String]) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        for key in keys {
            self.generations.invalidate(key);
        }
    }

    /// The tracking connection, (re)connecting first when there is none.
    pub(crate) async fn connection(&self) -> Result<MultiplexedConnection, BackendError> {
        self.tracked.get().await
    }

    /// After a failed read: anything may have been missed, so start over.
    pub(crate) fn reset(&self) {
        self.tracked.listener.forget_all();
        self.tracked.drop_current();
    }
}

/// The single RESP3 connection with tracking on.
struct TrackedConnection {
    client: redis::Client,
    connection_name: String,
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Serialises reconnection, so an outage costs one connect attempt at a time.
    connecting: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    listener: Listener,
}

impl TrackedConnection {
    async fn get(&self) -> Result<MultiplexedConnection, BackendError> {
        if let Some(connection) = self.usable() {
            return Ok(connection);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(connection) = self.usable() {
            return Ok(connection);
        }
        self.drop_current();
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let listener = self.listener.clone();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_push_sender(move |push: PushInfo| {
                listener.on_push(id, &push);
                Ok::<(), std::convert::Infallible>(())
            });
        let mut connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| BackendError(format!("near cache connection: {error}")))?;
        let mut setup = redis::pipe();
        setup.cmd("CLIENT").arg("SETNAME").arg(&self.connection_name).ignore();
        setup.cmd("CLIENT").arg("TRACKING").arg("ON").ignore();
        setup
            .exec_async(&mut connection)
            .await
            .map_err(|error| BackendError(format!("CLIENT TRACKING ON: {error}")))?;
        // Pushes for an earlier connection may have been lost: start from nothing.
        self.listener.forget_all();
        self.listener.live_id.store(id, Ordering::SeqCst);
        self.listener.broken.store(false, Ordering::SeqCst);
        if let Ok(mut current) = self.current.lock() {
            *current = Some((id, connection.clone()));
        }
        tokio::spawn(self.listener.clone().heartbeat(id, connection.clone()));
        Ok(connection)
    }

    fn usable(&self) -> Option<MultiplexedConnection> {
        if self.listener.broken.load(Ordering::SeqCst) {
            return None;
        }
        let current = self.current.lock().ok()?;
        current.as_ref().map(|(_, connection)| connection.clone())
    }

    fn drop_current(&self) {
        self.listener.live_id.store(u64::MAX, Ordering::SeqCst);
        if let Ok(mut current) = self.current.lock() {
            current.take();
        }
    }
}

/// Runs on the connection's reader for every push message.
#[derive(Clone)]
struct Listener {
    generations: MokaCache<String, String>,
    invalidations: Arc<AtomicU64>,
    /// Only pushes of the live connection count; a dropped one may still report.
    live_id: Arc<AtomicU64>,
    broken: Arc<AtomicBool>,
}

impl Listener {
    fn on_push(&self, connection_id: u64, push: &PushInfo) {
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    // Only a generation's change can make a read's generation wrong, and
                    // only generations are kept here. Entries are tracked too (the read
                    // script reads them on this connection), and every store after a
                    // miss changes one: counted, they kept nearly every read under load
                    // from remembering its generation, and the near cache from
                    // answering anything.
                    let generations: Vec<String> = keys
                        .iter()
                        .filter_map(|key| redis::from_redis_value::<String>(key).ok())
                        .filter(|key| key.ends_with(GENERATION_SUFFIX))
                        .collect();
                    if !generations.is_empty() {
                        self.invalidations.fetch_add(1, Ordering::SeqCst);
                    }
                    for key in &generations {
                        self.generations.invalidate(key);
                    }
                }
                // A nil key list means "everything" (FLUSHALL, tracking table full).
                _ => {
                    self.invalidations.fetch_add(1, Ordering::SeqCst);
                    self.generations.invalidate_all();
                }
            },
            PushKind::Disconnection if self.live_id.load(Ordering::SeqCst) == connection_id => {
                self.broken.store(true, Ordering::SeqCst);
                self.forget_all();
            }
            _ => {}
        }
    }

    /// Pings the connection `id` while it is the live one; a failure counts as a
    /// disconnection.
    async fn heartbeat(self, id: u64, mut connection: MultiplexedConnection) {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            if self.live_id.load(Ordering::SeqCst) != id {
                return;
            }
            let ping = redis::cmd("PING");
            let answered = tokio::time::timeout(HEARTBEAT, ping.query_async::<String>(&mut connection)).await;
            if !matches!(answered, Ok(Ok(_))) {
                if self.live_id.load(Ordering::SeqCst) == id {
                    tracing::warn!("near cache connection to Redis failed its heartbeat; forgetting the near cache");
                    self.broken.store(true, Ordering::SeqCst);
                    self.forget_all();
                }
                return;
            }
        }
    }

    fn forget_all(&self) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        self.generations.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near() -> NearCache {
        // Never connected: these tests drive the bookkeeping directly.
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        NearCache::new(client, "unit", 1 << 20, Duration::from_secs(60))
    }

    /// The push Redis sends when `keys` changed.
    fn invalidation_of(keys: &[&str]) -> PushInfo {
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(
                keys.iter()
                    .map(|key| Value::BulkString(key.as_bytes().to_vec()))
                    .collect(),
            )],
        }
    }

    #[test]
    fn a_generation_read_before_an_invalidation_is_not_remembered() {
        let near = near();
        let ticket = near.ticket();
        near.forget_generations(&["scope#gen".to_owned()]);
        near.remember_generations(ticket, [("scope#gen", "old")]);
        assert_eq!(near.generation("scope#gen"), None);

        near.remember_generations(near.ticket(), [("scope#gen", "new")]);
        assert_eq!(near.generation("scope#gen").as_deref(), Some("new"));
    }

    #[test]
    fn an_invalidation_push_forgets_its_keys_and_a_nil_push_forgets_everything() {
        let near = near();
        near.remember_generations(near.ticket(), [("a#gen", "1"), ("b#gen", "1")]);
        let listener = &near.tracked.listener;
        let ticket = near.ticket();
        listener.on_push(0, &invalidation_of(&["a#gen"]));
        assert_eq!(near.generation("a#gen"), None);
        assert_eq!(near.generation("b#gen").as_deref(), Some("1"));
        near.remember_generations(ticket, [("a#gen", "stale")]);
        assert_eq!(near.generation("a#gen"), None, "a read overtaken by the push");

        listener.on_push(
            0,
            &PushInfo {
                kind: PushKind::Invalidate,
                data: vec![Value::Nil],
            },
        );
        assert_eq!(near.generation("b#gen"), None);
    }

    #[test]
    fn a_push_for_entries_alone_does_not_keep_a_read_from_remembering_its_generation() {
        let near = near();
        let listener = &near.tracked.listener;
        let ticket = near.ticket();
        listener.on_push(0, &invalidation_of(&["scope@g1/listing"]));
        near.remember_generations(ticket, [("scope#gen", "g1")]);
        assert_eq!(near.generation("scope#gen").as_deref(), Some("g1"));

        let ticket = near.ticket();
        listener.on_push(0, &invalidation_of(&["scope@g1/listing", "other#gen"]));
        near.remember_generations(ticket, [("scope#gen", "g2")]);
        assert_eq!(
            near.generation("scope#gen").as_deref(),
            Some("g1"),
            "a read overtaken by a generation's change remembers nothing"
        );
    }

    #[test]
    fn only_the_live_connection_can_report_a_disconnection() {
        let near = near();
        let listener = &near.tracked.listener;
        listener.live_id.store(7, Ordering::SeqCst);
        near.remember_generations(near.ticket(), [("a#gen", "1")]);
        let gone = PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        };
        listener.on_push(6, &gone);
        assert_eq!(near.generation("a#gen").as_deref(), Some("1"));
        listener.on_push(7, &gone);
        assert_eq!(near.generation("a#gen"), None);
        assert!(listener.broken.load(Ordering::SeqCst));
    }
}
