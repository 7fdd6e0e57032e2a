//! The event backbone against a real Kafka-protocol broker (librdkafka's mock cluster,
//! started by each test) and the embedded event log: the outbox relay, consumers with
//! retries and a dead-letter topic, and the catalog's price-history projection.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    mocking::MockCluster,
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait};
use tokio::sync::oneshot;
use uuid::Uuid;
use vitrina_shared::{
    bus::{
        EmbeddedLog, Handler, HandlerError, KafkaConsumerRunner, KafkaPublisher, LogBatch, LogConsumerRunner, LogError,
        LogSource, OutboxRelay, Publisher, RetryPolicy, producer_config,
    },
    events::{CatalogEvent, EventEnvelope},
    outbox,
};

use crate::helpers::{Store, catalog_database};

/// Commits `count` stock changes spread over `products`, one transaction each, and
/// returns their event ids per product in commit order.
async fn commit_changes(
    db: &DatabaseConnection,
    products: &[Uuid],
    count: usize,
    from: i32,
) -> HashMap<Uuid, Vec<i32>> {
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
        let transaction = db.begin().await.unwrap();
        outbox::commit(transaction, &[event], None).await.unwrap();
        committed.entry(product_id).or_default().push(sequence);
    }
    committed
}

async fn published(db: &DatabaseConnection) -> u64 {
    outbox::entity::Entity::find()
        .filter(outbox::entity::Column::PublishedAt.is_not_null())
        .count(db)
        .await
        .unwrap()
}

async fn wait_for_published(db: &DatabaseConnection, expected: u64, limit: Duration) {
    let started = std::time::Instant::now();
    while published(db).await < expected {
        assert!(
            started.elapsed() < limit,
            "only {} of {expected} published",
            published(db).await
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

/// Everything on `topic` of `db`'s embedded log, decoded.
async fn log_events(db: &DatabaseConnection, topic: &str) -> Vec<EventEnvelope> {
    let batch = EmbeddedLog::new(db.clone())
        .read(topic, 0, 10_000, Duration::ZERO)
        .await
        .unwrap();
    batch
        .records
        .into_iter()
        .map(|record| serde_json::from_value(record.payload).unwrap())
        .collect()
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
    let catalog = catalog_database(Store::Postgres).await;
    let products: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    let publisher: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&producer_config(&brokers)).unwrap());
    let _relay = run(OutboxRelay::new(catalog.db.clone(), "catalog", publisher));

    let mut committed = commit_changes(&catalog.db, &products, 500, 0).await;
    wait_for_published(&catalog.db, 500, Duration::from_secs(30)).await;

    // The broker goes away in the middle: changes keep committing, nothing is marked
    // published until the broker has them.
    cluster.broker_down(1).unwrap();
    for (product, sequences) in commit_changes(&catalog.db, &products, 500, 500).await {
        committed.entry(product).or_default().extend(sequences);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        published(&catalog.db).await < 1000,
        "nothing is published while the broker is down"
    );
    cluster.broker_up(1).unwrap();
    wait_for_published(&catalog.db, 1000, Duration::from_secs(60)).await;

    // Read the topic back: every event, each product's in commit order.
    let consumer = crate::helpers::topic_reader(&brokers, "catalog.product");
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
async fn the_relay_publishes_to_the_embedded_log_in_commit_order() {
    let catalog = catalog_database(Store::EmbeddedSqlite).await;
    let products: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let log = EmbeddedLog::new(catalog.db.clone());
    let _relay = run(OutboxRelay::new(catalog.db.clone(), "catalog", Arc::new(log)));
    let committed = commit_changes(&catalog.db, &products, 60, 0).await;
    wait_for_published(&catalog.db, 60, Duration::from_secs(10)).await;

    let log = log_events(&catalog.db, "catalog.product").await;
    assert_eq!(log.len(), 60);
    assert!(log.iter().all(|event| event.event_type == "StockChanged"));
    assert_eq!(by_aggregate(&log), committed);
    assert!(
        log.windows(2).all(|pair| pair[0].event_id < pair[1].event_id),
        "the log is in commit order (UUID v7 ids)"
    );
}

#[tokio::test]
async fn an_idle_relay_publishes_a_new_commit_without_waiting_for_its_safety_net_poll() {
    let catalog = catalog_database(Store::EmbeddedSqlite).await;
    let log = EmbeddedLog::new(catalog.db.clone());
    let _relay = run(OutboxRelay::new(catalog.db.clone(), "catalog", Arc::new(log)));
    let products = [Uuid::now_v7()];
    for round in 1..=3 {
        // Long enough for the relay to find the outbox empty and wait; unwoken, it
        // would look again only after a second.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        commit_changes(&catalog.db, &products, 1, round).await;
        wait_for_published(&catalog.db, round as u64, Duration::from_secs(10)).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(600),
            "round {round}: published {took:?} after the commit"
        );
    }
}

#[tokio::test]
async fn two_relays_of_one_service_publish_each_event_once_and_in_order() {
    let catalog = catalog_database(Store::Postgres).await;
    let products: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    // Two replicas of the catalog, each with its relay, over one database.
    let log = EmbeddedLog::new(catalog.db.clone());
    let _first = run(OutboxRelay::new(catalog.db.clone(), "catalog", Arc::new(log.clone())));
    let _second = run(OutboxRelay::new(catalog.db.clone(), "catalog", Arc::new(log)));
    let committed = commit_changes(&catalog.db, &products, 300, 0).await;
    wait_for_published(&catalog.db, 300, Duration::from_secs(20)).await;

    let log = log_events(&catalog.db, "catalog.product").await;
    assert_eq!(log.len(), 300, "no event published twice");
    assert_eq!(by_aggregate(&log), committed);
}

/// Fails chosen events a number of times (`u32::MAX`: always), records every attempt.
struct Flaky {
    /// The consumer name, unique per test so the lag gauges of parallel tests differ.
    name: &'static str,
    failures: HashMap<Uuid, u32>,
    attempts: std::sync::Mutex<HashMap<Uuid, u32>>,
    handled: std::sync::Mutex<Vec<Uuid>>,
}

#[async_trait::async_trait]
impl Handler for Flaky {
    fn name(&self) -> &'static str {
        self.name
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
        name: "flaky-kafka",
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
    assert_eq!(record["consumer"], "flaky-kafka");
    assert!(record["message"].as_str().unwrap().contains(&poison.to_string()));

    // Everything consumed and committed: the lag gauge reaches 0 (statistics come every
    // second).
    wait_for_zero_lag("flaky-kafka").await;
    drop(stop);
}

/// Waits until the `event_consumer_lag` gauge of `consumer` reads 0.
async fn wait_for_zero_lag(consumer: &str) {
    let started = std::time::Instant::now();
    let label = format!("consumer=\"{consumer}\"");
    loop {
        let metrics = vitrina_shared::metrics::render();
        let lag = metrics
            .lines()
            .find(|line| line.starts_with("event_consumer_lag{") && line.contains(&label))
            .map(str::to_owned);
        if lag.as_deref().is_some_and(|line| line.ends_with(" 0")) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "consumer lag never reached 0: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `runner` in the background; dropping the sender stops it.
fn consume<H: Handler + 'static>(runner: LogConsumerRunner<H>) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(runner.run_until(async move {
        let _ = stopped.await;
    }));
    stop
}

async fn wait_for_handled(handler: &Flaky, count: usize) {
    let started = std::time::Instant::now();
    while handler.handled.lock().unwrap().len() < count {
        assert!(started.elapsed() < Duration::from_secs(30), "the consumer stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_embedded_log_retries_dead_letters_and_resumes_from_the_committed_offset_like_kafka() {
    vitrina_shared::metrics::prometheus();
    let database = catalog_database(Store::EmbeddedSqlite).await;
    let log = EmbeddedLog::new(database.db.clone());
    let order = Uuid::now_v7();
    let events: Vec<EventEnvelope> = (0..6).map(|_| order_event(order)).collect();
    let (recovers, poison) = (events[1].event_id, events[3].event_id);
    log.publish("orders", &events).await.unwrap();
    let handler = Arc::new(Flaky {
        name: "flaky-log",
        failures: HashMap::from([(recovers, 3), (poison, u32::MAX)]),
        attempts: Default::default(),
        handled: Default::default(),
    });
    let policy = RetryPolicy {
        attempts: 5,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    };
    let source: Arc<dyn LogSource> = Arc::new(log.clone());
    let runner = || LogConsumerRunner::new(source.clone(), "orders.flaky", "orders.order", handler.clone(), policy);
    let stop = consume(runner());

    let expected: Vec<Uuid> = events
        .iter()
        .map(|event| event.event_id)
        .filter(|id| *id != poison)
        .collect();
    wait_for_handled(&handler, expected.len()).await;
    assert_eq!(
        *handler.handled.lock().unwrap(),
        expected,
        "in order, the poison event skipped"
    );
    let attempts = handler.attempts.lock().unwrap().clone();
    assert_eq!(attempts[&recovers], 4, "three failures, then success");
    assert_eq!(attempts[&poison], 5, "retried up to the policy, then dead-lettered");

    let dead_letters = log
        .read("orders.order.dlq", 0, 10, Duration::ZERO)
        .await
        .unwrap()
        .records;
    assert_eq!(dead_letters.len(), 1);
    let record = &dead_letters[0].payload;
    assert_eq!(record["attempts"], 5);
    assert_eq!(record["error"], "refusing attempt 5");
    assert_eq!(record["consumer"], "flaky-log");
    assert!(record["message"].as_str().unwrap().contains(&poison.to_string()));
    assert_eq!(
        dead_letters[0].key.as_deref(),
        Some(order.to_string().as_str()),
        "keyed like the event"
    );
    wait_for_zero_lag("flaky-log").await;

    // A restarted consumer of the same group starts after its committed offset: only new
    // events are handled.
    drop(stop);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let later = order_event(order);
    log.publish("orders", std::slice::from_ref(&later)).await.unwrap();
    let _stop = consume(runner());
    wait_for_handled(&handler, expected.len() + 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let handled = handler.handled.lock().unwrap().clone();
    assert_eq!(handled.len(), expected.len() + 1, "nothing handled twice: {handled:?}");
    assert_eq!(handled.last(), Some(&later.event_id));
}

/// Records the events it handles and, at each flush, how many it had handled by then.
#[derive(Default)]
struct Deferring {
    handled: std::sync::Mutex<Vec<Uuid>>,
    flushed_through: std::sync::Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl Handler for Deferring {
    fn name(&self) -> &'static str {
        "deferring-log"
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.handled.lock().unwrap().push(event.event_id);
        Ok(())
    }

    async fn flush(&self) {
        let handled = self.handled.lock().unwrap().len();
        self.flushed_through.lock().unwrap().push(handled);
    }
}

/// The embedded log, counting the reads that returned records and noting, at each commit,
/// how far the handler had flushed.
struct Watched {
    log: EmbeddedLog,
    handler: Arc<Deferring>,
    reads_with_records: AtomicUsize,
    /// Per commit: the events handled so far and the events covered by the last flush.
    commits: std::sync::Mutex<Vec<(usize, Option<usize>)>>,
}

#[async_trait::async_trait]
impl LogSource for Watched {
    async fn read(&self, topic: &str, after: i64, max: u64, wait: Duration) -> Result<LogBatch, LogError> {
        let batch = self.log.read(topic, after, max, wait).await?;
        if !batch.records.is_empty() {
            self.reads_with_records.fetch_add(1, Ordering::Relaxed);
        }
        Ok(batch)
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<i64, LogError> {
        self.log.committed(group, topic).await
    }

    async fn commit(&self, group: &str, topic: &str, offset: i64) -> Result<(), LogError> {
        let handled = self.handler.handled.lock().unwrap().len();
        let flushed = self.handler.flushed_through.lock().unwrap().last().copied();
        self.commits.lock().unwrap().push((handled, flushed));
        self.log.commit(group, topic, offset).await
    }

    async fn append_dead_letter(
        &self,
        topic: &str,
        key: Option<&str>,
        record: &serde_json::Value,
    ) -> Result<(), LogError> {
        self.log.append_dead_letter(topic, key, record).await
    }

    fn origin(&self) -> String {
        self.log.origin()
    }
}

#[tokio::test]
async fn a_gathering_consumer_reads_a_steady_stream_in_a_few_batches_and_flushes_each_before_its_commit() {
    let database = catalog_database(Store::EmbeddedSqlite).await;
    let log = EmbeddedLog::new(database.db.clone());
    let handler = Arc::new(Deferring::default());
    let source = Arc::new(Watched {
        log: log.clone(),
        handler: handler.clone(),
        reads_with_records: Default::default(),
        commits: Default::default(),
    });
    let runner = LogConsumerRunner::new(
        source.clone(),
        "orders.deferring",
        "orders.order",
        handler.clone(),
        RetryPolicy::default(),
    )
    .gathering(Duration::from_millis(250));
    let _stop = consume(runner);

    // 40 events, one every 10 ms: read one at a time, that would be 40 reads and commits.
    let order = Uuid::now_v7();
    let mut published = Vec::new();
    for _ in 0..40 {
        let event = order_event(order);
        published.push(event.event_id);
        log.publish("orders", std::slice::from_ref(&event)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    while handler.handled.lock().unwrap().len() < published.len() {
        assert!(started.elapsed() < Duration::from_secs(10), "the consumer stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert_eq!(
        *handler.handled.lock().unwrap(),
        published,
        "every event, in order, once"
    );
    let reads = source.reads_with_records.load(Ordering::Relaxed);
    // The stream lasts about 400 ms (more on a loaded machine): the first event is read at
    // once, then one read per 250 ms pause.
    assert!((2..=8).contains(&reads), "{reads} reads carried the 40 events");
    let commits = source.commits.lock().unwrap().clone();
    assert_eq!(commits.len(), reads, "one commit per read");
    for (handled, flushed) in &commits {
        assert_eq!(
            Some(*handled),
            *flushed,
            "each commit follows a flush of every event it covers: {commits:?}"
        );
    }
    assert_eq!(
        handler.flushed_through.lock().unwrap().len(),
        reads,
        "one flush per read"
    );
}
