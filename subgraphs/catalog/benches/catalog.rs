//! Catalog load benchmark: `cargo bench -p vitrina-catalog --bench catalog`.
//!
//! Runs real catalog services in this process (on port 0) against this machine's
//! PostgreSQL (a fresh database, dropped at the end) and Redis, and drives them over HTTP
//! with concurrent clients, so every number includes HTTP, GraphQL, cache and database.
//! The load generator shares the machine's cores with the service, so absolute numbers
//! are conservative; the comparisons (cache vs no cache, 10k vs 1M rows) are measured in
//! one run under identical conditions.
//!
//! 1. `product(id)`: throughput and latency with the Redis cache (all hits; with its near
//!    cache, the default, and without), the in-process cache, and the cache off (every
//!    request reads PostgreSQL).
//! 2. `products(first: 20)` with the cache off: p99 on a 10,000-product catalog and on a
//!    1,000,000-product one (keyset pagination must make the two nearly equal).
//!
//! Configurations are measured in interleaved rounds (`BENCH_ROUNDS`, default 3) and the
//! median round is reported, so a slow drift of the machine cannot favour one of them.
//!
//! Environment: `BENCH_POSTGRES_URL` (server URL without database, default
//! `postgres://postgres@127.0.0.1:5432`), `BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379`), `BENCH_SECONDS` per measurement (default 5),
//! `BENCH_CONCURRENCY` (default 16), `BENCH_LARGE` (default 1000000).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use vitrina_shared::config::Settings;

const PRODUCT: &str =
    "query($id: ID!) { product(id: $id) { id name price { amount currencyCode } availableQuantity status } }";
const LIST: &str = "query($sort: ProductSort) { products(first: 20, sort: $sort) { pageInfo { hasNextPage endCursor } edges { cursor node { id name price { amount currencyCode } availableQuantity } } } }";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

struct Measurement {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measurement {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    }

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {:.0} | {:.2} | {:.2} | {:.2} |",
            self.throughput(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.percentile(0.999).as_secs_f64() * 1e3,
        )
    }
}

/// `concurrency` clients cycling through the prepared request `bodies` for `seconds`,
/// after a one-second warm-up. Bodies are serialized up front and responses are only
/// scanned for errors, so the load generator spends as little of the shared CPU as it can.
async fn drive(url: &str, concurrency: usize, seconds: u64, bodies: &[Value]) -> Measurement {
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        bodies
            .iter()
            .map(|body| Bytes::from(serde_json::to_vec(body).unwrap()))
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let run = |duration: Duration| {
        let client = client.clone();
        let bodies = bodies.clone();
        let url = url.to_owned();
        async move {
            let deadline = Instant::now() + duration;
            let started = Instant::now();
            let workers = (0..concurrency).map(|worker| {
                let client = client.clone();
                let bodies = bodies.clone();
                let url = url.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = worker;
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let response = client
                            .post(&url)
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(bodies[i % bodies.len()].clone())
                            .send()
                            .await
                            .expect("request")
                            .bytes()
                            .await
                            .expect("body");
                        assert!(
                            response.starts_with(b"{\"data\":") && !contains(&response, b"\"errors\""),
                            "{}",
                            String::from_utf8_lossy(&response)
                        );
                        latencies.push(sent.elapsed());
                        i += concurrency;
                    }
                    latencies
                })
            });
            let mut latencies = Vec::new();
            for worker in futures::future::join_all(workers).await {
                latencies.extend(worker.unwrap());
            }
            Measurement {
                requests: latencies.len(),
                elapsed: started.elapsed(),
                latencies,
            }
        }
    };
    run(Duration::from_secs(1)).await;
    run(Duration::from_secs(seconds)).await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

async fn spawn_catalog(database_url: &str, extra: &[(&str, &str)]) -> (String, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = HashMap::from([
        (
            "VITRINA_CONFIG".into(),
            data_dir.path().join("absent.toml").display().to_string(),
        ),
        ("DATA_DIR".into(), data_dir.path().display().to_string()),
        ("CATALOG_PORT".into(), "0".into()),
        ("LOG_LEVEL".into(), "error".into()),
        ("DATABASE_URL".into(), database_url.to_owned()),
        ("DATABASE_MAX_CONNECTIONS".into(), "16".into()),
    ]);
    for (key, value) in extra {
        vars.insert((*key).to_owned(), (*value).to_owned());
    }
    let settings = Settings::load_from(|name| vars.get(name).cloned()).unwrap();
    let app = vitrina_catalog::Application::build(&settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}/graphql", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    (url, data_dir)
}

/// Grows the catalog to `total` active products with stock, in SQL (seconds, not hours).
async fn grow_to(db: &DatabaseConnection, total: i64) {
    let existing: i64 = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM catalog.product",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    if existing >= total {
        return;
    }
    let started = Instant::now();
    db.execute_unprepared(&format!(
        "INSERT INTO catalog.product (id, sku, slug, name, description, price_minor, currency, status, category_id, attributes, version, created_at, updated_at)
         SELECT gen_random_uuid(), 'BENCH-' || i, 'bench-product-' || i, 'Bench product ' || i, NULL,
                100 + (i::bigint * 7919) % 100000, 'EUR', CASE WHEN i % 20 = 0 THEN 'DRAFT' ELSE 'ACTIVE' END, NULL, '{{}}', 1,
                now() - make_interval(secs => i), now()
         FROM generate_series({}, {}) AS i",
        existing + 1,
        total
    ))
    .await
    .unwrap();
    db.execute_unprepared(
        "INSERT INTO catalog.stock (product_id, on_hand, reserved, updated_at)
         SELECT p.id, (abs(hashtext(p.sku)) % 50), 0, now() FROM catalog.product p
         LEFT JOIN catalog.stock s ON s.product_id = p.id WHERE s.product_id IS NULL",
    )
    .await
    .unwrap();
    db.execute_unprepared("ANALYZE catalog.product; ANALYZE catalog.stock")
        .await
        .unwrap();
    eprintln!("grew the catalog to {total} products in {:.1?}", started.elapsed());
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// A fresh database named after this run; dropped by [`drop_database`].
async fn create_database(admin: &DatabaseConnection, server: &str, label: &str) -> (String, String) {
    let name = format!("vitrina_bench_{label}_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let url = format!("{server}/{name}");
    (name, url)
}

async fn drop_database(admin: &DatabaseConnection, name: &str) {
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .ok();
}

/// Steady state after a bulk load: dead tuples gone, statistics fresh, dirty pages
/// written, so background maintenance does not land inside a measurement.
async fn settle(db: &DatabaseConnection) {
    db.execute_unprepared("VACUUM ANALYZE catalog.product").await.unwrap();
    db.execute_unprepared("VACUUM ANALYZE catalog.stock").await.unwrap();
    db.execute_unprepared("CHECKPOINT").await.unwrap();
}

/// The round whose value of `key` is the median of the rounds.
fn median_by(mut rounds: Vec<Measurement>, key: impl Fn(&Measurement) -> f64) -> Measurement {
    rounds.sort_by(|a, b| key(a).total_cmp(&key(b)));
    rounds.swap_remove(rounds.len() / 2)
}

async fn run() {
    let server = env_or("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432");
    let redis = env_or("BENCH_REDIS_URL", "redis://127.0.0.1:6379");
    let seconds: u64 = env_or("BENCH_SECONDS", "5").parse().unwrap();
    let concurrency: usize = env_or("BENCH_CONCURRENCY", "16").parse().unwrap();
    let large: i64 = env_or("BENCH_LARGE", "1000000").parse().unwrap();
    let rounds: usize = env_or("BENCH_ROUNDS", "3").parse().unwrap();
    let admin = Database::connect(format!("{server}/postgres")).await.unwrap();

    // Two catalogs: 10,000 and `large` products. The services migrate them on start.
    let (small_name, small_url) = create_database(&admin, &server, "small").await;
    let (large_name, large_url) = create_database(&admin, &server, "large").await;
    let (cached_redis, _d1) = spawn_catalog(&small_url, &[("REDIS_URL", &redis), ("CACHE_ENABLED", "true")]).await;
    let (cached_redis_only, _d5) = spawn_catalog(
        &small_url,
        &[
            ("REDIS_URL", &redis),
            ("CACHE_ENABLED", "true"),
            ("CACHE_NEAR_ENABLED", "false"),
        ],
    )
    .await;
    let (cached_memory, _d2) = spawn_catalog(&small_url, &[("CACHE_ENABLED", "true")]).await;
    let (uncached, _d3) = spawn_catalog(&small_url, &[("CACHE_ENABLED", "false")]).await;
    let (uncached_large, _d4) = spawn_catalog(&large_url, &[("CACHE_ENABLED", "false")]).await;
    let small_db = Database::connect(&small_url).await.unwrap();
    let large_db = Database::connect(&large_url).await.unwrap();
    grow_to(&small_db, 10_000).await;
    grow_to(&large_db, large).await;
    settle(&small_db).await;
    settle(&large_db).await;

    let ids: Vec<String> = small_db
        .query_all_raw(sea_orm::Statement::from_string(
            small_db.get_database_backend(),
            "SELECT id::text AS id FROM catalog.product WHERE status = 'ACTIVE' ORDER BY sku LIMIT 1000",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.try_get::<String>("", "id").unwrap())
        .collect();
    let by_id: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "query": PRODUCT, "variables": { "id": id } }))
        .collect();

    // Interleaved rounds, median reported: slow drifts of the machine hit every
    // configuration alike instead of whichever happened to run last.
    let (mut redis_rounds, mut redis_only_rounds, mut memory_rounds, mut off_rounds) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        redis_rounds.push(drive(&cached_redis, concurrency, seconds, &by_id).await);
        redis_only_rounds.push(drive(&cached_redis_only, concurrency, seconds, &by_id).await);
        memory_rounds.push(drive(&cached_memory, concurrency, seconds, &by_id).await);
        off_rounds.push(drive(&uncached, concurrency, seconds, &by_id).await);
    }
    let redis_hit = median_by(redis_rounds, Measurement::throughput);
    let redis_only_hit = median_by(redis_only_rounds, Measurement::throughput);
    let memory_hit = median_by(memory_rounds, Measurement::throughput);
    let off = median_by(off_rounds, Measurement::throughput);
    println!(
        "\n## product(id) through the catalog subgraph ({concurrency} clients, median of {rounds} interleaved {seconds} s rounds, 1,000 hot ids, 10,000 products)\n"
    );
    println!("| configuration | req/s | p50 ms | p99 ms | p99.9 ms |\n|---|---|---|---|---|");
    println!("{}", redis_hit.row("Redis cache + near cache (hits; default)"));
    println!("{}", redis_only_hit.row("Redis cache, near cache off (hits)"));
    println!("{}", memory_hit.row("in-process cache (hits)"));
    println!("{}", off.row("cache off (PostgreSQL)"));
    println!(
        "\nthroughput ratio: Redis+near hit / cache off = {:.2}x; Redis-only hit / cache off = {:.2}x; in-process hit / cache off = {:.2}x",
        redis_hit.throughput() / off.throughput(),
        redis_only_hit.throughput() / off.throughput(),
        memory_hit.throughput() / off.throughput()
    );

    let sorts: Vec<Value> = vec![
        json!(null),
        json!({ "field": "PRICE", "direction": "ASC" }),
        json!({ "field": "NAME", "direction": "ASC" }),
        json!({ "field": "PRICE", "direction": "DESC" }),
    ];
    let list: Vec<Value> = sorts
        .iter()
        .map(|sort| json!({ "query": LIST, "variables": { "sort": sort } }))
        .collect();
    // Latency, not saturation: a few clients, so p99 reflects the query, not queueing.
    let list_clients = 4;
    let p99 = |m: &Measurement| m.percentile(0.99).as_secs_f64();
    let (mut small_rounds, mut large_rounds) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        small_rounds.push(drive(&uncached, list_clients, seconds, &list).await);
        large_rounds.push(drive(&uncached_large, list_clients, seconds, &list).await);
    }
    let small = median_by(small_rounds, p99);
    let big = median_by(large_rounds, p99);
    println!(
        "\n## products(first: 20), cache off ({list_clients} clients, median p99 of {rounds} interleaved {seconds} s rounds, four sort orders)\n"
    );
    println!("| products | req/s | p50 ms | p99 ms | p99.9 ms |\n|---|---|---|---|---|");
    println!("{}", small.row("10,000"));
    println!("{}", big.row(&large.to_string()));
    println!("\np99 ratio: {large} / 10,000 = {:.2}x", p99(&big) / p99(&small));

    small_db.close().await.ok();
    large_db.close().await.ok();
    drop_database(&admin, &small_name).await;
    drop_database(&admin, &large_name).await;
}
