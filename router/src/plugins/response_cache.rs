//! Execution stage: a response cache for anonymous catalog reads.
//!
//! What is cached, and why that is safe:
//! - only queries, only without `Authorization` (what the catalog shows depends on the
//!   caller: managers see drafts), and only when the query plan fetches from the catalog
//!   alone (a plan touching the cart, orders or identity is never cached);
//! - only error-free responses, keyed by the normalised operation and its variables;
//! - every entry lives in one scope, retired (a) after any mutation this router sends to
//!   the catalog, before its answer leaves, so writes through the router are read back
//!   fresh at once, and (b) by `catalog.product` events, once per run of them (the router
//!   consumes the topic like any other service: Kafka, or the catalog's event-log feed,
//!   read every [`EVENT_GATHERING`] under load), so writes made elsewhere (stock taken by
//!   orders) are visible soon after their event is published (well under a second); the
//!   short TTL bounds what nothing announces.
//!
//! Admission: a response is looked up and stored only from its key's second request within
//! a window on. Most distinct anonymous queries (a listing with one shopper's filters) are
//! never asked again before the next catalog event retires them, and for those a look-up
//! and a store are pure cost: a hop to the I/O runtime, a Redis round trip, a serialised
//! body written and never read. A first request costs one look-up in [`Sightings`].
//!
//! Non-blocking: a hit answers without executing; a miss executes normally and the
//! response is stored afterwards on the plugin I/O runtime, never delaying the client.
//! Storage is the shared cache: Redis when `REDIS_URL` is set (shared by every router),
//! else a bounded in-process cache.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Mutex, PoisonError,
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
        hooks::on_execute::{OnExecuteResponse, OnExecuteStartHookPayload, OnExecuteStartHookResult},
        plugin_trait::{EndHookPayload, StartHookPayload},
    },
    query_planner::{
        planner::plan_nodes::{PlanNode, QueryPlan},
        state::supergraph_state::OperationKind,
    },
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use vitrina_shared::{
    AppError,
    bus::{EventBus, Handler, HandlerError, RetryPolicy, TopicHome},
    cache::{Cache, CacheKey},
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

/// Retires every cached response after each run of events that holds one published after
/// this process started (older ones cannot concern entries stored since; the consumer
/// replays them on start). Every event retires the same scope, so one retirement per run
/// does what one per event would, at a fraction of the backend round trips.
struct Invalidator {
    responses: Cache,
    started_at: chrono::DateTime<Utc>,
    /// Whether an event since the last flush asks for a retirement.
    due: AtomicBool,
}

#[async_trait]
impl Handler for Invalidator {
    fn name(&self) -> &'static str {
        "response-cache"
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        if event.occurred_at >= self.started_at {
            self.due.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn flush(&self) {
        if self.due.swap(false, Ordering::Relaxed) {
            self.responses.invalidate(&[SCOPE.to_owned()]).await;
        }
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
        // Each router instance must see every event: a consumer group of its own.
        let group = format!("router.response-cache.{}", uuid::Uuid::new_v4().simple());
        let consumer = EventBus::from_settings(settings)
            .consumer(
                &group,
                &config.topic,
                TopicHome::Service(settings.catalog_url()),
                Invalidator {
                    responses: responses.clone(),
                    started_at: Utc::now(),
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
        }))
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
        // One cache call covers the look-up and, on a miss, the store, so the response is
        // stored under the generation the look-up saw: an invalidation in between makes
        // the entry unreachable instead of resurrecting old data. Concurrent misses of
        // one key wait for the first execution (the cache's single flight).
        let (miss_tx, miss_rx) = oneshot::channel::<()>();
        let (body_tx, body_rx) = oneshot::channel::<String>();
        let responses = self.responses.clone();
        let lookup = self.io.spawn(async move {
            responses
                .get_or_load(key, move || async move {
                    let _ = miss_tx.send(());
                    // No body (an error, or no execution): nothing is stored.
                    body_rx.await.map_err(|_| AppError::not_found("response"))
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
            Some(Ok(Ok(body))) => {
                let output = hive_router::PlanExecutionOutput {
                    body: body.into_bytes(),
                    error_count: 0,
                    status_code: StatusCode::OK,
                };
                return payload.end_with_response(OnExecuteResponse::Output(output));
            }
            // The cache failed, or the execution this one waited on did: execute, store
            // nothing.
            Some(_) => return payload.proceed(),
            None => {}
        }
        payload.on_end(move |end| {
            if end.errors.is_empty()
                && let Ok(data) = hive_router::sonic_rs::to_string(&end.data)
            {
                // Stored by the look-up task after the client has its answer.
                let _ = body_tx.send(format!("{{\"data\":{data}}}"));
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
