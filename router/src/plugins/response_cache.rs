//! Execution stage: a response cache for anonymous catalog reads.
//!
//! What is cached, and why that is safe:
//! - only queries, only without `Authorization` (what the catalog shows depends on the
//!   caller: managers see drafts), and only when the query plan fetches from the catalog
//!   alone (a plan touching the cart, orders or identity is never cached);
//! - only error-free responses, keyed by the normalised operation and its variables;
//! - every entry lives in one scope, retired (a) after any mutation this router sends to
//!   the catalog, before its answer leaves, so writes through the router are read back
//!   fresh at once, and (b) by `catalog.product` events other than stock changes, once per
//!   run of them (the router consumes the topic like any other service: Kafka, or the
//!   catalog's event-log feed, read every [`EVENT_GATHERING`] under load), so writes made
//!   elsewhere are visible soon after their event is published (well under a second); the
//!   short TTL bounds what nothing announces.
//!
//! Stock changes (every checkout makes one) retire by tag instead: the catalog names what
//! a response shows of stock in `cache-tag` headers ([`vitrina_shared::cache::tags`]), the
//! entry keeps those tags and the time its request started, and the consumer records when
//! it learned of each retired tag ([`Retirements`]). A stored entry is answered with only
//! if none of its tags was retired after (or shortly before: [`SETTLE_ALLOWANCE_MS`]) its
//! request started; otherwise it is executed again and replaced. So a checkout retires the listings and pages that show the bought
//! product's stock and no others. The test runs in each router, against the retirements it
//! consumed itself: routers sharing Redis never trust each other's bookkeeping, only each
//! other's responses.
//!
//! Admission: a response is looked up and stored only from its key's second request within
//! a window on. Most distinct anonymous queries (a listing with one shopper's filters) are
//! never asked again before the next catalog event retires them, and for those a look-up
//! and a store are pure cost: a hop to the I/O runtime, a Redis round trip, a serialised
//! body written and never read. A first request costs one look-up in [`Sightings`].
//!
//! Non-blocking: a hit answers without executing; a miss executes normally and the
//! response is stored afterwards by the look-up's task, never delaying the client.
//! Storage is the shared cache: Redis when `REDIS_URL` is set (shared by every router),
//! else a bounded in-process cache.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use futures::future::{Either, select};
use hive_router::{
    async_trait,
    http::{StatusCode, header::AUTHORIZATION},
    plugins::{
        hooks::{
            on_execute::{OnExecuteResponse, OnExecuteStartHookPayload, OnExecuteStartHookResult},
            on_subgraph_http_request::{OnSubgraphHttpRequestHookPayload, OnSubgraphHttpRequestHookResult},
        },
        plugin_trait::{EndHookPayload, StartHookPayload},
    },
    query_planner::{
        planner::plan_nodes::{PlanNode, QueryPlan},
        state::supergraph_state::OperationKind,
    },
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use vitrina_shared::{
    AppError,
    bus::{EventBus, Handler, HandlerError, RetryPolicy, TopicHome},
    cache::{
        Cache, CacheKey,
        tags::{self, Retirement},
    },
    events::EventEnvelope,
};

use super::Resources;

/// The scope every cached response lives in; retired by every catalog event.
const SCOPE: &str = "catalog-responses";
/// How long the event consumer gathers `catalog.product` events between reads of the
/// catalog's event log (no effect on Kafka). Every checkout publishes one; read one at a
/// time, each cost the catalog a read and a commit of the log and the router a cache
/// retirement (scenario d: the catalog's CPU per checkout was 17 % higher behind this
/// router than behind stock Hive Router, which consumes nothing; gathered, the same).
/// Entries outlive a write by at most this much more.
const EVENT_GATHERING: Duration = Duration::from_millis(100);
/// Keys remembered as asked for: at most this many per window (two windows: about 1.2 MB).
const SIGHTINGS_PER_WINDOW: usize = 50_000;
/// The longest a catalog write's answer waits for the cache to be retired (the shared
/// cache bounds its own backend calls well below this).
const INVALIDATION_WAIT: Duration = Duration::from_secs(2);
/// How much later than a retirement an entry's request must have started to count as
/// fresh. The catalog retires its own cached rows just after the commit that publishes
/// the event (its cache gives up on a backend call after 250 ms, and then reads past
/// itself), so a request that started just after the router learned of the event may
/// still have been answered from a row the catalog had not yet retired.
const SETTLE_ALLOWANCE_MS: i64 = 500;
/// What an entry another router stored must add to [`SETTLE_ALLOWANCE_MS`]: its time is
/// read from that router's clock, and this absorbs the difference between hosts' clocks.
const CLOCK_SKEW_ALLOWANCE_MS: i64 = 100;
/// Tags whose retirement is remembered at most; past this, everything is retired.
const MAX_REMEMBERED_RETIREMENTS: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseCacheConfig {
    /// Off turns the stage off while keeping its settings (the load harness compares both
    /// through `ROUTER_RESPONSE_CACHE_ENABLED`).
    #[serde(default = "default_enabled", deserialize_with = "flag")]
    pub enabled: bool,
    /// The subgraph whose anonymous reads are cached.
    #[serde(default = "default_subgraph")]
    pub subgraph: String,
    /// The topic whose events invalidate the cache.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Lifetime of an entry no event retired.
    #[serde(default = "default_ttl_seconds")]
    pub ttl_seconds: u64,
}

fn default_enabled() -> bool {
    true
}

/// A boolean written as one or as text: a `from_env` placeholder inside a plugin's
/// configuration resolves to the variable's text (`"false"`).
fn flag<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    match Flag::deserialize(deserializer)? {
        Flag::Bool(flag) => Ok(flag),
        Flag::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("expected true or false, found {text:?}"))),
    }
}

fn default_subgraph() -> String {
    "catalog".to_owned()
}

fn default_topic() -> String {
    "catalog.product".to_owned()
}

fn default_ttl_seconds() -> u64 {
    30
}

pub struct ResponseCache {
    responses: Cache,
    io: tokio::runtime::Handle,
    subgraph: String,
    sightings: Sightings,
    retirements: Arc<Retirements>,
}

/// What a stored response says of itself, ahead of its body: the tags the catalog gave
/// it, when its request started (Unix milliseconds, before the catalog read what it
/// shows) and which router stored it (whose clock that time is from).
#[derive(Debug, Serialize, Deserialize)]
struct EntryHeader<'a> {
    started_at_ms: i64,
    stored_by: u64,
    #[serde(borrow)]
    tags: Vec<Cow<'a, str>>,
}

/// A stored response is its [`EntryHeader`] as JSON, a newline, then the body exactly as
/// the client receives it. JSON text never holds a raw newline, so the first one ends the
/// header; the body is never escaped into a JSON string, so storing it is one copy, a hit
/// is one copy back, and freshness is judged from the header alone (most look-ups under
/// a storefront's load find a stale entry: its body is never read).
const HEADER_END: u8 = b'\n';

/// `header` and the response `data` as one stored entry.
fn encode_entry(header: &EntryHeader<'_>, data: &impl Serialize) -> Result<Vec<u8>, hive_router::sonic_rs::Error> {
    // Room for a listing page's body, so it is written without growing the buffer.
    let mut entry = Vec::with_capacity(16 * 1024);
    hive_router::sonic_rs::to_writer(&mut entry, header)?;
    entry.push(HEADER_END);
    entry.extend_from_slice(br#"{"data":"#);
    hive_router::sonic_rs::to_writer(&mut entry, data)?;
    entry.push(b'}');
    Ok(entry)
}

/// Where a stored entry's header ends; nothing for bytes that are not an entry of this
/// format (written by an older release: they count as stale and are replaced).
fn header_end(entry: &[u8]) -> Option<usize> {
    memchr::memchr(HEADER_END, entry)
}

/// A stored entry's header.
fn decode_header(entry: &[u8]) -> Option<EntryHeader<'_>> {
    serde_json::from_slice(&entry[..header_end(entry)?]).ok()
}

/// A stored entry's body, the response as the client receives it.
fn into_body(mut entry: Vec<u8>) -> Option<Vec<u8>> {
    let end = header_end(&entry)?;
    entry.drain(..=end);
    Some(entry)
}

/// The `cache-tag` headers of the catalog's responses to one request being executed for
/// the cache; kept in the request's plugin context while it runs.
#[derive(Default)]
struct CollectedTags(Vec<String>);

/// When this router learned that each tag was retired (see the module header), for as
/// long as an entry stored before then could still be read.
struct Retirements {
    /// This router's identity in the entries it stores: its own entries' times need no
    /// allowance for clock differences.
    instance: u64,
    /// How long a retirement is remembered: entries whose request started longer ago
    /// count as stale whatever their tags, so a forgotten retirement cannot revive one.
    memory_ms: i64,
    /// The oldest event (Unix ms) this router handles: its start, set back by the settle
    /// allowance, since events from just before may not have settled in the catalog yet.
    handles_events_from_ms: i64,
    state: Mutex<RetirementState>,
}

struct RetirementState {
    /// When everything was last retired (Unix ms): by an event that can change any
    /// response, by an overflow of the memory, or by this router's start (set back by
    /// the settle allowance, since the consumer handles events from as far back).
    floor_ms: i64,
    /// Tags retired since the floor.
    retired_at_ms: HashMap<String, i64>,
}

impl Retirements {
    fn new(now_ms: i64, memory: Duration) -> Self {
        let handles_events_from_ms = now_ms.saturating_sub(SETTLE_ALLOWANCE_MS);
        Self {
            instance: uuid::Uuid::new_v4().as_u64_pair().0,
            memory_ms: i64::try_from(memory.as_millis()).unwrap_or(i64::MAX),
            handles_events_from_ms,
            state: Mutex::new(RetirementState {
                floor_ms: handles_events_from_ms,
                retired_at_ms: HashMap::new(),
            }),
        }
    }

    /// Records that `tags` were retired at `now_ms`.
    fn retire(&self, tags: Vec<String>, now_ms: i64) {
        // The map is never left half-changed, so a panic elsewhere does not spoil it.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for tag in tags {
            state.retired_at_ms.insert(tag, now_ms);
        }
        if state.retired_at_ms.len() > MAX_REMEMBERED_RETIREMENTS {
            state.retire_everything(now_ms);
        }
    }

    /// Records that every response was retired at `now_ms`.
    fn retire_everything(&self, now_ms: i64) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retire_everything(now_ms);
    }

    /// Forgets retirements older than the memory: no entry they could concern is read
    /// as fresh any more.
    fn forget_old(&self, now_ms: i64) {
        let horizon = now_ms.saturating_sub(self.memory_ms);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.retired_at_ms.retain(|_, retired_at| *retired_at >= horizon);
    }

    /// Whether `stored` is still what the catalog would answer at `now_ms`, as far as tags
    /// tell (its scope covers the rest).
    fn is_fresh(&self, stored: &EntryHeader<'_>, now_ms: i64) -> bool {
        let started_at_ms = stored.started_at_ms;
        let allowance = if stored.stored_by == self.instance {
            SETTLE_ALLOWANCE_MS
        } else {
            SETTLE_ALLOWANCE_MS + CLOCK_SKEW_ALLOWANCE_MS
        };
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let started_after = |moment: i64| started_at_ms > moment.saturating_add(allowance);
        started_after(state.floor_ms)
            && started_at_ms >= now_ms.saturating_sub(self.memory_ms)
            && stored.tags.iter().all(|tag| {
                state
                    .retired_at_ms
                    .get(&**tag)
                    .is_none_or(|retired_at| started_after(*retired_at))
            })
    }
}

impl RetirementState {
    fn retire_everything(&mut self, now_ms: i64) {
        // A response that passes the new floor started after every retirement before it.
        self.retired_at_ms.clear();
        self.floor_ms = self.floor_ms.max(now_ms);
    }
}

/// Which cache keys were asked for lately: the admission test (see the module header).
/// Two generations of fingerprints, the older dropped when the newer is a window old or
/// full, so a key counts as seen for between one and two windows, in bounded memory.
struct Sightings {
    window: Duration,
    capacity: usize,
    state: Mutex<SightingState>,
}

struct SightingState {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    current_since: Instant,
}

impl Sightings {
    fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity,
            state: Mutex::new(SightingState {
                current: HashSet::new(),
                previous: HashSet::new(),
                current_since: Instant::now(),
            }),
        }
    }

    /// Records a request for the key with `fingerprint`; whether it was asked for before.
    fn seen_before(&self, fingerprint: u64) -> bool {
        // The sets are never left half-changed, so a panic elsewhere does not spoil them.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.current.len() >= self.capacity || state.current_since.elapsed() >= self.window {
            state.previous = std::mem::take(&mut state.current);
            state.current_since = Instant::now();
        }
        let seen = state.previous.contains(&fingerprint);
        !state.current.insert(fingerprint) || seen
    }
}

/// Retires what events published since [`Retirements::handles_events_from_ms`] ask for
/// (the consumer replays older ones on start): a stock change its tags, in memory; any
/// other event everything, in memory at once and in the shared scope once per run of
/// events, since each retires the same scope and one retirement does what many would, at
/// a fraction of the round trips.
struct Invalidator {
    responses: Cache,
    retirements: Arc<Retirements>,
    /// Whether an event since the last flush asks for every response to be retired.
    due: AtomicBool,
}

#[async_trait]
impl Handler for Invalidator {
    fn name(&self) -> &'static str {
        "response-cache"
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        if event.occurred_at.timestamp_millis() >= self.retirements.handles_events_from_ms {
            let now_ms = Utc::now().timestamp_millis();
            match tags::retired_by(event) {
                Retirement::Tagged(tags) => self.retirements.retire(tags, now_ms),
                Retirement::Everything => {
                    // At once for this router's readers; the shared scope, for every
                    // router's, once per run of events.
                    self.retirements.retire_everything(now_ms);
                    self.due.store(true, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    async fn flush(&self) {
        if self.due.swap(false, Ordering::Relaxed) {
            self.responses.invalidate(&[SCOPE.to_owned()]).await;
        }
        self.retirements.forget_old(Utc::now().timestamp_millis());
    }
}

/// Every subgraph `plan` fetches from. Walks the typed plan in place: this runs for every
/// anonymous query and every mutation, so it must not copy or serialize the plan.
fn services_of(plan: &QueryPlan) -> Vec<&str> {
    let mut found = Vec::new();
    if let Some(node) = &plan.node {
        services_in(node, &mut found);
    }
    found
}

fn services_in<'p>(node: &'p PlanNode, found: &mut Vec<&'p str>) {
    match node {
        PlanNode::Fetch(fetch) => found.push(&fetch.service_name),
        PlanNode::BatchFetch(fetch) => found.push(&fetch.service_name),
        PlanNode::Sequence(sequence) => sequence.nodes.iter().for_each(|node| services_in(node, found)),
        PlanNode::Parallel(parallel) => parallel.nodes.iter().for_each(|node| services_in(node, found)),
        PlanNode::Flatten(flatten) => services_in(&flatten.node, found),
        PlanNode::Condition(condition) => condition
            .if_clause
            .iter()
            .chain(&condition.else_clause)
            .for_each(|node| services_in(node, found)),
        PlanNode::Subscription(subscription) => found.push(&subscription.primary.service_name),
        PlanNode::Defer(defer) => defer
            .primary
            .node
            .iter()
            .chain(defer.deferred.iter().filter_map(|deferred| deferred.node.as_ref()))
            .for_each(|node| services_in(node, found)),
    }
}

/// Whether `services` (of one plan) include `subgraph`.
fn fetches_from(services: &[&str], subgraph: &str) -> bool {
    services.contains(&subgraph)
}

/// Whether `services` (of one plan) are `subgraph` and nothing else.
fn only_fetches_from(services: &[&str], subgraph: &str) -> bool {
    !services.is_empty() && services.iter().all(|service| *service == subgraph)
}

/// `variables` as JSON with its names in sorted order. The router hands them over in a
/// `HashMap`, whose iteration order differs from one request's map to the next: written
/// out as they come, one request would have up to n! keys (six for a listing's
/// `first`, `filter` and `sort`), and most repeats would miss.
fn canonical_variables(variables: &HashMap<String, hive_router::sonic_rs::Value>) -> String {
    let sorted: BTreeMap<&String, &hive_router::sonic_rs::Value> = variables.iter().collect();
    hive_router::sonic_rs::to_string(&sorted).unwrap_or_default()
}

/// The SHA-256 of one request's `operation` with its `variables`: its fingerprint for
/// [`Sightings`] on every request, its cache key only once it is admitted.
struct RequestDigest([u8; 32]);

impl RequestDigest {
    fn of(operation: &str, variables: &str) -> Self {
        Self(Sha256::digest(format!("{operation}\n{variables}").as_bytes()).into())
    }

    fn fingerprint(&self) -> u64 {
        let mut first = [0; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(first)
    }

    fn cache_key(&self) -> CacheKey {
        CacheKey::new(SCOPE, hex::encode(self.0))
    }
}

impl ResponseCache {
    /// The stage, or none when its configuration turns it off.
    pub fn new(config: ResponseCacheConfig, resources: &Resources) -> Result<Option<Self>, hive_router::BoxError> {
        if !config.enabled {
            return Ok(None);
        }
        let (settings, io) = (&resources.settings, &resources.io);
        let _entered = io.enter();
        let ttl = Duration::from_secs(config.ttl_seconds.max(1));
        let responses = Cache::from_settings_with_ttl("router-responses", settings, resources.redis.clone(), ttl);
        // An entry may be read for a jittered TTL after it was stored, and its request may
        // have run for a while before: twice the TTL and a minute covers both.
        let retirements = Arc::new(Retirements::new(
            Utc::now().timestamp_millis(),
            ttl * 2 + Duration::from_secs(60),
        ));
        // Each router instance must see every event: a consumer group of its own.
        let group = format!("router.response-cache.{}", uuid::Uuid::new_v4().simple());
        let consumer = EventBus::from_settings(settings)
            .consumer(
                &group,
                &config.topic,
                TopicHome::Service(settings.catalog_url()),
                Invalidator {
                    responses: responses.clone(),
                    retirements: retirements.clone(),
                    due: AtomicBool::new(false),
                },
                RetryPolicy::default(),
            )?
            .gathering(EVENT_GATHERING);
        io.spawn(consumer.run_until(std::future::pending()));
        Ok(Some(Self {
            responses,
            io: io.clone(),
            subgraph: config.subgraph,
            sightings: Sightings::new(ttl, SIGHTINGS_PER_WINDOW),
            retirements,
        }))
    }

    /// Collects the tags of the catalog's answers to a request being executed for the
    /// cache (one that [`Self::on_execute`] marked); every other request passes untouched.
    pub fn on_subgraph_http_request<'exec>(
        &self,
        payload: OnSubgraphHttpRequestHookPayload<'exec>,
    ) -> OnSubgraphHttpRequestHookResult<'exec> {
        if payload.subgraph_name != self.subgraph || !payload.context.contains::<CollectedTags>() {
            return payload.proceed();
        }
        payload.on_end(|end| {
            if let Some(mut collected) = end.context.get_mut::<CollectedTags>() {
                let values = end.response.headers.get_all(tags::HEADER);
                let named = values
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .flat_map(tags::tags_in);
                collected.0.extend(named.map(str::to_owned));
            }
            end.proceed()
        })
    }

    pub async fn on_execute<'exec>(
        &self,
        payload: OnExecuteStartHookPayload<'exec>,
    ) -> OnExecuteStartHookResult<'exec> {
        let kind = payload.operation_for_plan.operation_kind.as_ref();
        let is_query = kind.is_none_or(|kind| matches!(kind, OperationKind::Query));
        let is_mutation = kind.is_some_and(|kind| matches!(kind, OperationKind::Mutation));
        let anonymous = !payload.router_http_request.headers.contains_key(AUTHORIZATION);
        let concerns_the_cache = is_mutation || (anonymous && is_query);
        if !concerns_the_cache {
            // Neither a write to retire the cache for nor a read it could answer.
            return payload.proceed();
        }
        let services = services_of(payload.query_plan);
        if is_mutation && fetches_from(&services, &self.subgraph) {
            // A write through this router: retire the cached responses once it has run and
            // before its answer leaves, so the writer's next read (and everyone's) is
            // fresh. Reads that looked up before that store under the retired generation,
            // where nobody finds them.
            let responses = self.responses.clone();
            let io = self.io.clone();
            return payload.on_end(move |end| {
                let (done_tx, done_rx) = std::sync::mpsc::channel();
                io.spawn(async move {
                    responses.invalidate(&[SCOPE.to_owned()]).await;
                    let _ = done_tx.send(());
                });
                // The hook is synchronous: wait (bounded) for the invalidation, which never
                // fails and only runs for catalog writes.
                let _ = done_rx.recv_timeout(INVALIDATION_WAIT);
                end.proceed()
            });
        }
        if !anonymous || !is_query || !only_fetches_from(&services, &self.subgraph) {
            return payload.proceed();
        }
        let variables = payload
            .variable_values
            .as_ref()
            .map(canonical_variables)
            .unwrap_or_default();
        let digest = RequestDigest::of(&payload.operation_for_plan.to_string(), &variables);
        if !self.sightings.seen_before(digest.fingerprint()) {
            // A first request: neither looked up (nothing was stored for it) nor stored.
            return payload.proceed();
        }
        let key = digest.cache_key();
        // Taken before anything is looked up or executed: the catalog reads what this
        // response shows after this moment.
        let started_at_ms = Utc::now().timestamp_millis();
        let stored_by = self.retirements.instance;
        // One cache call covers the look-up and, on a miss, the store, so the response is
        // stored under the generation the look-up saw: an invalidation in between makes
        // the entry unreachable instead of resurrecting old data. Concurrent misses of
        // one key wait for the first execution (the cache's single flight).
        let (miss_tx, miss_rx) = oneshot::channel::<()>();
        let (response_tx, response_rx) = oneshot::channel::<Vec<u8>>();
        let responses = self.responses.clone();
        let retirements = self.retirements.clone();
        // On this worker's own runtime (Hive Router's ntex workers are tokio
        // current-thread runtimes): a look-up answered from the near cache then costs no
        // thread hop at all, and a miss hands over to execution on the same thread. Only
        // Redis round trips cross to the I/O runtime, where the connection lives. The
        // task outlives this hook: it stores the response once execution ends.
        let runtime = tokio::runtime::Handle::try_current().unwrap_or_else(|_| self.io.clone());
        let lookup = runtime.spawn(async move {
            let fresh = move |entry: &[u8]| {
                decode_header(entry).is_some_and(|header| retirements.is_fresh(&header, Utc::now().timestamp_millis()))
            };
            responses
                .get_or_load_bytes_unless(key, fresh, move || async move {
                    let _ = miss_tx.send(());
                    // No response (an error, or no execution): nothing is stored.
                    response_rx.await.map_err(|_| AppError::not_found("response"))
                })
                .await
        });
        let shared = match select(lookup, miss_rx).await {
            Either::Left((found, _)) => Some(found),
            // A miss: execute, then hand the body to the look-up task.
            Either::Right((Ok(()), _)) => None,
            // Our loader was dropped unused: another request is executing this very key,
            // and the look-up gets its answer.
            Either::Right((Err(_), lookup)) => Some(lookup.await),
        };
        match shared {
            // The look-up judged this entry by its header, so it has one.
            Some(Ok(Ok(entry))) => match into_body(entry) {
                Some(body) => {
                    let output = hive_router::PlanExecutionOutput {
                        body,
                        error_count: 0,
                        status_code: StatusCode::OK,
                    };
                    return payload.end_with_response(OnExecuteResponse::Output(output));
                }
                None => return payload.proceed(),
            },
            // The cache failed, or the execution this one waited on did: execute, store
            // nothing.
            Some(_) => return payload.proceed(),
            None => {}
        }
        let context = payload.context;
        context.insert(CollectedTags::default());
        payload.on_end(move |end| {
            if end.errors.is_empty() {
                let mut tags = context
                    .get_mut::<CollectedTags>()
                    .map(|mut collected| std::mem::take(&mut collected.0))
                    .unwrap_or_default();
                tags.sort_unstable();
                tags.dedup();
                let header = EntryHeader {
                    started_at_ms,
                    stored_by,
                    tags: tags.into_iter().map(Cow::Owned).collect(),
                };
                if let Ok(entry) = encode_entry(&header, &end.data) {
                    // Stored by the look-up task after the client has its answer.
                    let _ = response_tx.send(entry);
                }
            }
            end.proceed()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_requests_variables_give_one_cache_key_whatever_order_the_router_holds_them_in() {
        let value = |json: &str| hive_router::sonic_rs::from_str::<hive_router::sonic_rs::Value>(json).unwrap();
        let entries = [
            ("first", value("20")),
            ("filter", value(r#"{"categoryId":"c1","minPrice":"1.05"}"#)),
            ("sort", value(r#"{"field":"NAME","direction":"ASC"}"#)),
        ];
        let mut written = HashSet::new();
        // Each map gets its own hash seed, so their iteration orders differ.
        for rotation in 0..entries.len() * 4 {
            let mut variables = HashMap::new();
            for index in 0..entries.len() {
                let (name, value) = &entries[(index + rotation) % entries.len()];
                variables.insert((*name).to_owned(), value.clone());
            }
            written.insert(canonical_variables(&variables));
        }
        assert_eq!(
            written.into_iter().collect::<Vec<_>>(),
            [
                r#"{"filter":{"categoryId":"c1","minPrice":"1.05"},"first":20,"sort":{"field":"NAME","direction":"ASC"}}"#
            ]
        );
    }

    #[test]
    fn an_entry_keeps_its_header_apart_from_the_body_the_client_receives() {
        let data = hive_router::sonic_rs::json!({ "products": [{ "name": "Lamp \"A\"\nsecond line" }] });
        let header = entry(1_700_000_000_000, 7, &["stock:lamp", "stock-filter"]);
        let stored = encode_entry(&header, &data).unwrap();

        let read = decode_header(&stored).unwrap();
        assert_eq!(
            (read.started_at_ms, read.stored_by, read.tags),
            (header.started_at_ms, header.stored_by, header.tags)
        );
        let response = format!("{{\"data\":{}}}", hive_router::sonic_rs::to_string(&data).unwrap());
        assert_eq!(
            String::from_utf8(into_body(stored).unwrap()).unwrap(),
            response,
            "the body is the response as the client receives it, unescaped"
        );
    }

    #[test]
    fn an_entry_of_the_previous_format_is_not_read_as_one() {
        let previous = br#"{"started_at_ms":1,"stored_by":7,"tags":[],"body":"{\"data\":{}}"}"#;
        assert!(decode_header(previous).is_none());
        assert!(decode_header(b"").is_none());
    }

    #[test]
    fn only_plans_that_fetch_from_the_catalog_alone_are_cacheable() {
        assert!(only_fetches_from(&["catalog", "catalog"], "catalog"));
        assert!(!only_fetches_from(&["cart", "catalog"], "catalog"));
        assert!(!only_fetches_from(&[], "catalog"));
        assert!(fetches_from(&["cart", "catalog"], "catalog"));
        assert!(!fetches_from(&["cart"], "catalog"));
    }

    #[test]
    fn the_key_tells_operations_and_variables_apart() {
        let a = RequestDigest::of("{ products { id } }", "{\"first\":1}");
        let b = RequestDigest::of("{ products { id } }", "{\"first\":2}");
        assert_ne!(format!("{:?}", a.cache_key()), format!("{:?}", b.cache_key()));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            RequestDigest::of("{ products { id } }", "{\"first\":1}").fingerprint(),
            a.fingerprint()
        );
    }

    #[test]
    fn the_stage_is_turned_off_by_a_boolean_or_by_the_text_an_environment_variable_gives() {
        let enabled = |json: &str| hive_router::sonic_rs::from_str::<ResponseCacheConfig>(json).map(|c| c.enabled);
        assert!(enabled("{}").unwrap());
        assert!(!enabled(r#"{"enabled":false}"#).unwrap());
        assert!(!enabled(r#"{"enabled":"false"}"#).unwrap());
        assert!(enabled(r#"{"enabled":"true"}"#).unwrap());
        assert!(enabled(r#"{"enabled":"maybe"}"#).is_err());
        assert!(enabled(r#"{"enabled":true,"ttl":1}"#).is_err());
    }

    /// A response stored by `stored_by` for a request that started at `started_at_ms`.
    fn entry(started_at_ms: i64, stored_by: u64, tags: &[&'static str]) -> EntryHeader<'static> {
        EntryHeader {
            started_at_ms,
            stored_by,
            tags: tags.iter().map(|tag| Cow::Borrowed(*tag)).collect(),
        }
    }

    fn retire(retirements: &Retirements, tags: &[&str], at_ms: i64) {
        retirements.retire(tags.iter().map(|tag| (*tag).to_owned()).collect(), at_ms);
    }

    #[test]
    fn a_response_stays_fresh_until_one_of_its_tags_is_retired_after_its_request_started() {
        let retirements = Retirements::new(0, Duration::from_secs(120));
        let own = retirements.instance;
        let started = 10_000;
        let listing = entry(started, own, &["stock:desk", "stock:lamp"]);
        assert!(retirements.is_fresh(&listing, started + 1));

        retire(&retirements, &["stock:lamp", "stock-filter"], started + 5);
        assert!(!retirements.is_fresh(&entry(started, own, &["stock:lamp"]), started + 10));
        assert!(!retirements.is_fresh(&listing, started + 10));
        assert!(retirements.is_fresh(&entry(started, own, &["stock:desk"]), started + 10));
        assert!(retirements.is_fresh(&entry(started, own, &[]), started + 10));
        // A request that started after the retirement had settled read the new stock.
        let settled = started + 5 + SETTLE_ALLOWANCE_MS;
        assert!(!retirements.is_fresh(&entry(settled, own, &["stock:lamp"]), settled + 10));
        assert!(retirements.is_fresh(&entry(settled + 1, own, &["stock:lamp"]), settled + 10));
    }

    #[test]
    fn an_event_that_can_change_anything_retires_every_response_that_started_before_it_settled() {
        let retirements = Retirements::new(0, Duration::from_secs(120));
        let own = retirements.instance;
        let started = 10_000;
        retire(&retirements, &["stock:lamp"], started + 1);
        retirements.retire_everything(started + 2);
        assert!(!retirements.is_fresh(&entry(started, own, &[]), started + 3));
        let settled = started + 2 + SETTLE_ALLOWANCE_MS;
        assert!(!retirements.is_fresh(&entry(settled, own, &[]), settled + 1));
        assert!(retirements.is_fresh(&entry(settled + 1, own, &["stock:lamp"]), settled + 2));
    }

    #[test]
    fn another_routers_response_must_have_started_well_after_a_retirement_to_be_fresh() {
        let retirements = Retirements::new(0, Duration::from_secs(120));
        let other = retirements.instance.wrapping_add(1);
        let retired_at = 10_000;
        retire(&retirements, &["stock:lamp"], retired_at);
        let now = retired_at + 1_000;
        let settled = retired_at + SETTLE_ALLOWANCE_MS;
        let just_after = entry(settled + CLOCK_SKEW_ALLOWANCE_MS, other, &["stock:lamp"]);
        assert!(!retirements.is_fresh(&just_after, now), "its clock may run ahead");
        let well_after = entry(settled + CLOCK_SKEW_ALLOWANCE_MS + 1, other, &["stock:lamp"]);
        assert!(retirements.is_fresh(&well_after, now));
    }

    #[test]
    fn responses_from_before_the_router_started_or_older_than_its_memory_are_stale() {
        let started_router = 1_000_000;
        let retirements = Retirements::new(started_router, Duration::from_secs(120));
        let own = retirements.instance;
        assert!(!retirements.is_fresh(&entry(started_router - 1, own, &[]), started_router));
        assert!(retirements.is_fresh(&entry(started_router + 1, own, &[]), started_router + 2));
        assert!(!retirements.is_fresh(
            &entry(started_router + 50, own.wrapping_add(1), &[]),
            started_router + 60
        ));
        let started = started_router + 1_000;
        assert!(retirements.is_fresh(&entry(started, own, &[]), started + 119_999));
        assert!(!retirements.is_fresh(&entry(started, own, &[]), started + 120_001));

        // A forgotten retirement cannot make an entry it concerned fresh again.
        retire(&retirements, &["stock:lamp"], started + 1);
        retirements.forget_old(started + 120_002);
        assert!(!retirements.is_fresh(&entry(started, own, &["stock:lamp"]), started + 120_002));
    }

    #[test]
    fn remembering_too_many_retirements_retires_everything_stored_before() {
        let retirements = Retirements::new(0, Duration::from_secs(120));
        let own = retirements.instance;
        let started = 10_000;
        let many: Vec<String> = (0..=MAX_REMEMBERED_RETIREMENTS).map(|n| format!("stock:{n}")).collect();
        retirements.retire(many, started + 1);
        assert!(!retirements.is_fresh(&entry(started, own, &["stock:elsewhere"]), started + 2));
        let settled = started + 1 + SETTLE_ALLOWANCE_MS;
        assert!(retirements.is_fresh(&entry(settled + 1, own, &["stock:0"]), settled + 2));
    }

    #[test]
    fn a_key_is_admitted_from_its_second_request_on() {
        let sightings = Sightings::new(Duration::from_secs(60), 1000);
        assert!(!sightings.seen_before(1));
        assert!(sightings.seen_before(1));
        assert!(sightings.seen_before(1));
        assert!(!sightings.seen_before(2));
    }

    #[test]
    fn a_sighting_is_remembered_for_one_more_generation_then_forgotten() {
        // Capacity 2: every second new key starts a generation.
        let sightings = Sightings::new(Duration::from_secs(60), 2);
        assert!(!sightings.seen_before(1));
        assert!(!sightings.seen_before(2));
        // 1 and 2 move to the older generation, still remembered.
        assert!(!sightings.seen_before(3));
        assert!(sightings.seen_before(1));
        // Full again: 3 and 1 become the older generation, and 2 is forgotten.
        assert!(!sightings.seen_before(2));
        assert!(sightings.seen_before(3));
    }

    #[test]
    fn sightings_older_than_two_windows_are_forgotten() {
        let sightings = Sightings::new(Duration::from_millis(20), 1000);
        assert!(!sightings.seen_before(1));
        std::thread::sleep(Duration::from_millis(25));
        assert!(!sightings.seen_before(2));
        std::thread::sleep(Duration::from_millis(25));
        assert!(!sightings.seen_before(3));
        assert!(!sightings.seen_before(1));
    }
}
