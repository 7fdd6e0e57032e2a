//! Event backbone benchmark: `cargo bench -p vitrina-catalog --bench events`.
//!
//! 1. **Outbox relay throughput**: `BENCH_EVENTS` (default 20,000) committed events in
//!    the catalog's outbox, drained by `OutboxRelay::publish_batch` until empty, each
//!    event marked published only after its acknowledgement. Publishers: the embedded
//!    event log (SQLite and PostgreSQL) and Kafka (librdkafka's mock cluster, a
//!    Kafka-protocol broker in this process, with the PostgreSQL outbox).
//! 2. **End-to-end lag**, commit → consumer effect: price changes committed through the
//!    catalog's write path at `BENCH_RATE` per second (default 200) for `BENCH_SECONDS`
//!    (default 10), with the relay and a consumer running; the consumer's effect is the
//!    real price-history projection, and the lag of each change is measured from the
//!    moment its transaction committed to the moment its row was written.
//!
//! Environment: `BENCH_POSTGRES_URL` (server URL without database, default
//! `postgres://postgres@127.0.0.1:5432`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rdkafka::mocking::MockCluster;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, TransactionTrait};
use serde_json::json;
use uuid::Uuid;
use vitrina_catalog::{
    domain::ProductStatus,
    price_history::PriceHistory,
    store::product_writes::{self, NewProduct, ProductChanges},
};
use vitrina_shared::{
    bus::{EventBus, Handler, HandlerError, OutboxRelay, RetryPolicy, TopicHome},
    config::Settings,
    events::{CatalogEvent, EventEnvelope},
    outbox,
};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A migrated catalog database: a fresh PostgreSQL database, or SQLite in a temp dir.
struct BenchDatabase {
    db: DatabaseConnection,
    postgres: Option<(DatabaseConnection, String)>,
    _dir: tempfile::TempDir,
}

impl BenchDatabase {
    async fn create(postgres_server: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vars: HashMap<String, String> = HashMap::from([
            (
                "VITRINA_CONFIG".into(),
                dir.path().join("absent.toml").display().to_string(),
            ),
            ("DATA_DIR".into(), dir.path().display().to_string()),
            ("DATABASE_MAX_CONNECTIONS".into(), "16".into()),
        ]);
        let mut postgres = None;
        if let Some(server) = postgres_server {
            let admin = Database::connect(format!("{server}/postgres")).await.unwrap();
            let name = format!("vitrina_bench_events_{}", Uuid::now_v7().simple());
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .unwrap();
            vars.insert("DATABASE_URL".into(), format!("{server}/{name}"));
            postgres = Some((admin, name));
        }
        let settings = Settings::load_from(|name| vars.get(name).cloned()).unwrap();
        let (db, _) = vitrina_shared::db::connect_and_migrate::<vitrina_migrations::catalog::Migrator>(
            &settings,
            vitrina_catalog::DATABASE_SCHEMA,
        )
        .await
        .unwrap();
        Self {
            db,
            postgres,
            _dir: dir,
        }
    }

    async fn drop(self) {
        self.db.close().await.ok();
        if let Some((admin, name)) = self.postgres {
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .ok();
        }
    }
}

/// Commits `count` stock events over 100 products, 100 per transaction.
async fn fill_outbox(db: &DatabaseConnection, count: usize) {
    let products: Vec<Uuid> = (0..100).map(|_| Uuid::now_v7()).collect();
    for chunk_start in (0..count).step_by(100) {
        let events: Vec<CatalogEvent> = (chunk_start..(chunk_start + 100).min(count))
            .map(|index| CatalogEvent::StockChanged {
                product_id: products[index % products.len()],
                on_hand: index as i32,
                reserved: 0,
                available: index as i32,
                delta: 1,
                reason: "benchmark".to_owned(),
            })
            .collect();
        let transaction = db.begin().await.unwrap();
        outbox::commit(transaction, &events, None).await.unwrap();
    }
}

/// Drains the outbox through `bus`'s publisher; events per second.
async fn relay_throughput(db: &DatabaseConnection, bus: &EventBus, count: usize) -> f64 {
    fill_outbox(db, count).await;
    let relay = OutboxRelay::new(db.clone(), "catalog", bus.publisher(db).unwrap());
    let started = Instant::now();
    let mut published = 0;
    while published < count {
        published += relay.publish_batch().await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// The projection, timing when each product version's effect is written.
struct Timed {
    projection: PriceHistory,
    applied: Mutex<HashMap<(Uuid, i64), Instant>>,
}

#[async_trait::async_trait]
impl Handler for Timed {
    fn name(&self) -> &'static str {
        "bench-lag"
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.projection
            .apply(event)
            .await
            .map_err(|error| HandlerError::with_causes(&error))?;
        if event.event_type == "ProductUpdated" {
            let product = &event.payload["product"];
            let version = product["version"].as_i64().unwrap_or_default();
            self.applied
                .lock()
                .unwrap()
                .entry((event.aggregate_id, version))
                .or_insert_with(Instant::now);
        }
        Ok(())
    }
}

/// Changes a product's price through the catalog's write path; the new version and the
/// instant the transaction had committed.
async fn set_price(db: &DatabaseConnection, id: Uuid, version: i32, price: i64) -> (i32, Instant) {
    let changes = ProductChanges {
        price: Some((price, "EUR".to_owned())),
        ..Default::default()
    };
    let row = product_writes::update(db, id, version, changes, None).await.unwrap();
    (row.0.version, Instant::now())
}

struct Lag {
    changes: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

async fn end_to_end_lag(db: &DatabaseConnection, bus: &EventBus, rate: u64, seconds: u64) -> Lag {
    let mut products = Vec::new();
    for index in 0..50 {
        let id = Uuid::now_v7().simple().to_string();
        let new = NewProduct {
            sku: format!("SKU-{id}"),
            slug: format!("bench-{index}-{id}"),
            name: format!("Bench {index}"),
            description: None,
            price_minor: 1000,
            currency: "EUR".to_owned(),
            status: ProductStatus::Active,
            category_id: None,
            attributes: json!({}),
            initial_stock: 10,
        };
        let row = product_writes::create(db, new, None).await.unwrap();
        products.push((row.0.id, row.0.version));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stop| *stop).await;
    };
    let relay = OutboxRelay::new(db.clone(), "catalog", bus.publisher(db).unwrap());
    tokio::spawn(relay.run_until(stopped(stop_rx.clone())));
    let timed = Arc::new(Timed {
        projection: PriceHistory::new(db.clone()),
        applied: Mutex::new(HashMap::new()),
    });
    let group = format!("catalog.bench-lag.{}", Uuid::now_v7().simple());
    let consumer = bus
        .consumer(
            &group,
            "catalog.product",
            TopicHome::ThisProcess(db.clone()),
            timed.clone(),
            RetryPolicy::default(),
        )
        .unwrap();
    tokio::spawn(consumer.run_until(stopped(stop_rx.clone())));

    // Warm-up: the consumer has joined and caught up once before anything is timed.
    for product in products.iter_mut() {
        let (id, version) = *product;
        let (version, _) = set_price(db, id, version, 999).await;
        product.1 = version;
        let started = Instant::now();
        while !timed.applied.lock().unwrap().contains_key(&(id, version as i64)) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the consumer never caught up"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    let mut committed: HashMap<(Uuid, i64), Instant> = HashMap::new();
    let total = (rate * seconds) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    for index in 0..total {
        ticker.tick().await;
        let (id, version) = products[index % products.len()];
        let (version, at) = set_price(db, id, version, 2000 + index as i64).await;
        products[index % 50].1 = version;
        committed.insert((id, version as i64), at);
    }
    let started = Instant::now();
    loop {
        let arrived = {
            let applied = timed.applied.lock().unwrap();
            committed.keys().all(|key| applied.contains_key(key))
        };
        if arrived {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not every change arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let applied = timed.applied.lock().unwrap();
    let mut lags: Vec<Duration> = committed
        .iter()
        .map(|(key, at)| applied[key].saturating_duration_since(*at))
        .collect();
    lags.sort();
    let percentile = |p: f64| lags[((lags.len() as f64 * p).ceil() as usize).clamp(1, lags.len()) - 1];
    Lag {
        changes: lags.len(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        max: *lags.last().unwrap(),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let server = env_or("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432");
    let events: usize = env_or("BENCH_EVENTS", "20000").parse().unwrap();
    let rate: u64 = env_or("BENCH_RATE", "200").parse().unwrap();
    let seconds: u64 = env_or("BENCH_SECONDS", "10").parse().unwrap();
    let cluster = MockCluster::new(1).unwrap();
    let kafka = EventBus::Kafka {
        brokers: cluster.bootstrap_servers(),
    };

    println!("## Outbox relay throughput ({events} events, batches of 500)\n");
    println!("| outbox | publisher | events/s |");
    println!("|---|---|---:|");
    let cases: [(&str, Option<&str>, &EventBus); 3] = [
        ("SQLite", None, &EventBus::Embedded),
        ("PostgreSQL", Some(&server), &EventBus::Embedded),
        ("PostgreSQL", Some(&server), &kafka),
    ];
    for (outbox, postgres, bus) in cases {
        let database = BenchDatabase::create(postgres).await;
        let throughput = relay_throughput(&database.db, bus, events).await;
        println!("| {outbox} | {} | {throughput:.0} |", label(bus));
        database.drop().await;
    }

    println!("\n## End-to-end lag, commit → projection row ({rate} changes/s for {seconds} s)\n");
    println!("| outbox | transport | changes | p50 | p99 | max |");
    println!("|---|---|---:|---:|---:|---:|");
    for (outbox, postgres, bus) in cases {
        let database = BenchDatabase::create(postgres).await;
        let lag = end_to_end_lag(&database.db, bus, rate, seconds).await;
        println!(
            "| {outbox} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            label(bus),
            lag.changes,
            lag.p50.as_secs_f64() * 1000.0,
            lag.p99.as_secs_f64() * 1000.0,
            lag.max.as_secs_f64() * 1000.0
        );
        database.drop().await;
    }
}

fn label(bus: &EventBus) -> &'static str {
    match bus {
        EventBus::Kafka { .. } => "Kafka (mock cluster)",
        EventBus::Embedded => "embedded log",
    }
}
