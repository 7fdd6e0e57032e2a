//! The event backbone against a real Kafka-protocol broker (librdkafka's mock cluster,
//! started by each test) and the embedded in-process bus: the outbox relay, and consumers
//! with retries and a dead-letter topic.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    mocking::MockCluster,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait};
use tokio::sync::oneshot;
use uuid::Uuid;
use vitrina_shared::{
    bus::{
        Handler, HandlerError, InProcessBus, KafkaConsumerRunner, KafkaPublisher, OutboxRelay, Publisher, RetryPolicy,
        producer_config,
    },
    events::{CatalogEvent, EventEnvelope},
    outbox,
};

use crate::helpers::{Store, TestCatalog, spawn_catalog};

/// Commits `count` stock changes spread over `products`, one transaction each, and
/// returns their event ids per product in commit order.
async fn commit_changes(catalog: &TestCatalog, products: &[Uuid], count: usize, from: i32) -> HashMap<Uuid, Vec<i32>> {
    let mut committed: HashMap<Uuid, Vec<i32>> = HashMap::new();
    for i in 0..count {
        let product_id = products[i % products.len()];
        let sequence = from + i as i32;
        let event = CatalogEvent::StockChanged {
            product_id,
            on_hand: sequence,
            reserved: 0,
            available: sequence,
            delta: 1,
            reason: "test".to_owned(),
        };
        let transaction = catalog.db.begin().await.unwrap();
        outbox::append(&transaction, &[event], None).await.unwrap();
        transaction.commit().await.unwrap();
        committed.entry(product_id).or_default().push(sequence);
    }
    committed
}

async fn published(catalog: &TestCatalog) -> u64 {
    outbox::entity::Entity::find()
        .filter(outbox::entity::Column::PublishedAt.is_not_null())
        .count(&catalog.db)
        .await
        .unwrap()
}

async fn wait_for_published(catalog: &TestCatalog, expected: u64, limit: Duration) {
    let started = std::time::Instant::now();
    while published(catalog).await < expected {
        assert!(
            started.elapsed() < limit,
            "only {} of {expected} published",
            published(catalog).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `relay` in the background; dropping the sender stops it.
fn run(relay: OutboxRelay) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(relay.run_until(async move {
        let _ = stopped.await;
    }));
    stop
}

fn on_hand(event: &EventEnvelope) -> i32 {
    event.payload["onHand"].as_i64().unwrap() as i32
}

/// Each aggregate's sequence numbers, in the order the log holds them.
fn by_aggregate(log: &[EventEnvelope]) -> HashMap<Uuid, Vec<i32>> {
    let mut seen: HashMap<Uuid, Vec<i32>> = HashMap::new();
    for event in log {
        seen.entry(event.aggregate_id).or_default().push(on_hand(event));
    }
    seen
}

#[tokio::test]
async fn the_relay_publishes_every_event_in_order_per_aggregate_through_a_broker_outage() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let catalog = spawn_catalog(Store::Postgres, false).await;
    let products: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    let publisher: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&producer_config(&brokers)).unwrap());
    let _relay = run(OutboxRelay::new(catalog.db.clone(), "catalog", publisher));

    let mut committed = commit_changes(&catalog, &products, 500, 0).await;
    wait_for_published(&catalog, 500, Duration::from_secs(30)).await;

    // The broker goes away in the middle: changes keep committing, nothing is marked
    // published until the broker has them.
    cluster.broker_down(1).unwrap();
    for (product, sequences) in commit_changes(&catalog, &products, 500, 500).await {
        committed.entry(product).or_default().extend(sequences);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        published(&catalog).await < 1000,
        "nothing is published while the broker is down"
    );
    cluster.broker_up(1).unwrap();
    wait_for_published(&catalog, 1000, Duration::from_secs(60)).await;

    // Read the topic back: every event, each product's in commit order.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("test-{}", Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["catalog.product"]).unwrap();
    let mut seen: HashMap<Uuid, Vec<i32>> = HashMap::new();
    let mut total = 0;
    while total < 1000 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("the topic holds every event")
            .unwrap();
        let event: EventEnvelope = serde_json::from_slice(message.payload().unwrap()).unwrap();
        assert_eq!(
            message.key(),
            Some(event.aggregate_id.to_string().as_bytes()),
            "keyed by aggregate"
        );
        seen.entry(event.aggregate_id).or_default().push(on_hand(&event));
        total += 1;
    }
    assert_eq!(seen, committed, "every event, in order per aggregate, exactly once");
}

#[tokio::test]
async fn the_relay_publishes_to_the_in_process_bus_in_commit_order() {
    let catalog = spawn_catalog(Store::EmbeddedSqlite, false).await;
    let products: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let bus = InProcessBus::default();
    let _relay = run(OutboxRelay::new(catalog.db.clone(), "catalog", Arc::new(bus.clone())));
    let committed = commit_changes(&catalog, &products, 60, 0).await;
    wait_for_published(&catalog, 60, Duration::from_secs(10)).await;

    let log = bus.read("catalog.product", 0, 1000);
    assert_eq!(log.len(), 60);
    assert!(log.iter().all(|event| event.event_type == "StockChanged"));
    assert_eq!(by_aggregate(&log), committed);
    assert!(
        log.windows(2).all(|pair| pair[0].event_id < pair[1].event_id),
        "the log is in commit order (UUID v7 ids)"
    );
}

#[tokio::test]
async fn two_relays_of_one_service_publish_each_event_once_and_in_order() {
    let catalog = spawn_catalog(Store::Postgres, false).await;
    let products: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let bus = InProcessBus::default();
    // Two replicas of the catalog, each with its relay, over one database.
    let _first = run(OutboxRelay::new(catalog.db.clone(), "catalog", Arc::new(bus.clone())));
    let _second = run(OutboxRelay::new(catalog.db.clone(), "catalog", Arc::new(bus.clone())));
    let committed = commit_changes(&catalog, &products, 300, 0).await;
    wait_for_published(&catalog, 300, Duration::from_secs(20)).await;

    let log = bus.read("catalog.product", 0, 1000);
    assert_eq!(log.len(), 300, "no event published twice");
    assert_eq!(by_aggregate(&log), committed);
}

/// Fails chosen events a number of times (`u32::MAX`: always), records every attempt.
struct Flaky {
    failures: HashMap<Uuid, u32>,
    attempts: std::sync::Mutex<HashMap<Uuid, u32>>,
    handled: std::sync::Mutex<Vec<Uuid>>,
}

#[async_trait::async_trait]
impl Handler for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let attempt = attempts.entry(event.event_id).or_default();
            *attempt += 1;
            *attempt
        };
        if attempt <= self.failures.get(&event.event_id).copied().unwrap_or(0) {
            return Err(HandlerError(format!("refusing attempt {attempt}")));
        }
        self.handled.lock().unwrap().push(event.event_id);
        Ok(())
    }
}

fn order_event(order_id: Uuid) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::now_v7(),
        event_type: "OrderPlaced".to_owned(),
        schema_version: 1,
        aggregate_type: "order".to_owned(),
        aggregate_id: order_id,
        occurred_at: chrono::Utc::now(),
        request_id: None,
        payload: serde_json::json!({ "type": "OrderPlaced", "orderId": order_id }),
    }
}

#[tokio::test]
async fn a_failing_handler_is_retried_and_a_poison_event_is_dead_lettered_without_stopping_the_consumer() {
    // The process's metrics recorder, so the consumer's lag gauge is recorded.
    vitrina_shared::metrics::prometheus();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let order = Uuid::now_v7();
    let events: Vec<EventEnvelope> = (0..6).map(|_| order_event(order)).collect();
    let (recovers, poison) = (events[1].event_id, events[3].event_id);
    let handler = Arc::new(Flaky {
        failures: HashMap::from([(recovers, 3), (poison, u32::MAX)]),
        attempts: Default::default(),
        handled: Default::default(),
    });
    KafkaPublisher::new(&producer_config(&brokers))
        .unwrap()
        .publish("orders", &events)
        .await
        .unwrap();

    let policy = RetryPolicy {
        attempts: 5,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    };
    let runner =
        KafkaConsumerRunner::new(&brokers, "orders.flaky", &["orders.order"], handler.clone(), policy).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(runner.run_until(async move {
        let _ = stopped.await;
    }));

    let expected: Vec<Uuid> = events
        .iter()
        .map(|event| event.event_id)
        .filter(|id| *id != poison)
        .collect();
    let started = std::time::Instant::now();
    while handler.handled.lock().unwrap().len() < expected.len() {
        assert!(started.elapsed() < Duration::from_secs(30), "the consumer stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *handler.handled.lock().unwrap(),
        expected,
        "in order, the poison event skipped"
    );
    let attempts = handler.attempts.lock().unwrap().clone();
    assert_eq!(attempts[&recovers], 4, "three failures, then success");
    assert_eq!(attempts[&poison], 5, "retried up to the policy, then dead-lettered");

    let dead_letters: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("test-{}", Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dead_letters.subscribe(&["orders.order.dlq"]).unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), dead_letters.recv())
        .await
        .expect("a dead letter")
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
    assert_eq!(record["attempts"], 5);
    assert_eq!(record["error"], "refusing attempt 5");
    assert_eq!(record["consumer"], "flaky");
    assert!(record["message"].as_str().unwrap().contains(&poison.to_string()));

    // Everything consumed and committed: the lag gauge reaches 0 (statistics come every
    // second).
    let started = std::time::Instant::now();
    loop {
        let metrics = vitrina_shared::metrics::render();
        let lag = metrics
            .lines()
            .find(|line| line.starts_with("event_consumer_lag{") && line.contains("consumer=\"flaky\""));
        if lag.is_some_and(|line| line.ends_with(" 0")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "consumer lag never reached 0: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stop);
}
