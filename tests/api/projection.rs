//! The CQRS read side: the catalog's price-history projection, built only from
//! `catalog.product` events, on Kafka (librdkafka's mock cluster) and on the embedded
//! event log; and the embedded log read by another process over HTTP.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use catalog_entity::price_history;
use rdkafka::mocking::MockCluster;
use sea_orm::{EntityTrait, PaginatorTrait, QueryOrder};
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;
use vitrina_catalog::{
    domain::ProductStatus,
    store::product_writes::{NewProduct, ProductChanges},
};
use vitrina_shared::{
    bus::{
        Handler, HandlerError, KafkaPublisher, LogConsumerRunner, Publisher, RemoteLog, RetryPolicy, producer_config,
    },
    events::EventEnvelope,
    outbox,
};

use crate::helpers::{Store, TestCatalog, graphql, spawn_catalog, spawn_catalog_with};

/// Creates an active product through the catalog (so its events are written too) and
/// returns its id.
async fn create_product(catalog: &TestCatalog, name: &str, price_minor: i64) -> Uuid {
    let id = Uuid::now_v7().simple().to_string();
    let new = NewProduct {
        sku: format!("SKU-{id}"),
        slug: format!("{}-{id}", name.to_lowercase()),
        name: name.to_owned(),
        description: None,
        price_minor,
        currency: "EUR".to_owned(),
        status: ProductStatus::Active,
        category_id: None,
        attributes: json!({}),
        initial_stock: 5,
    };
    catalog.catalog.create_product(new, None).await.unwrap().0.id
}

/// Changes a product's price through the catalog; returns the product's new version.
async fn change_price(catalog: &TestCatalog, id: Uuid, version: i32, price_minor: i64) -> i32 {
    let changes = ProductChanges {
        price: Some((price_minor, "EUR".to_owned())),
        ..Default::default()
    };
    catalog
        .catalog
        .update_product(id, version, changes, None)
        .await
        .unwrap()
        .0
        .version
}

async fn projected_rows(catalog: &TestCatalog) -> u64 {
    price_history::Entity::find().count(&catalog.db).await.unwrap()
}

async fn wait_for_rows(catalog: &TestCatalog, expected: u64, limit: Duration) {
    let started = std::time::Instant::now();
    loop {
        let rows = projected_rows(catalog).await;
        if rows == expected {
            return;
        }
        assert!(
            rows < expected,
            "{rows} rows projected, more than the {expected} expected"
        );
        assert!(started.elapsed() < limit, "only {rows} of {expected} rows projected");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Each product's projected prices in the order they took effect.
async fn projected_prices(catalog: &TestCatalog) -> HashMap<Uuid, Vec<i64>> {
    let rows = price_history::Entity::find()
        .order_by_asc(price_history::Column::EffectiveFrom)
        .all(&catalog.db)
        .await
        .unwrap();
    let mut prices: HashMap<Uuid, Vec<i64>> = HashMap::new();
    for row in rows {
        prices.entry(row.product_id).or_default().push(row.price_minor);
    }
    prices
}

/// Waits until the read model holds exactly `expected` (deletions make the row count go
/// down as well as up, so counting is not enough here).
async fn wait_for_prices(catalog: &TestCatalog, expected: &HashMap<Uuid, Vec<i64>>) {
    let started = std::time::Instant::now();
    loop {
        let prices = projected_prices(catalog).await;
        if &prices == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the projection holds {prices:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_thousand_catalog_changes_reach_the_projection_exactly_once_through_a_broker_outage_and_duplicates() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let catalog = spawn_catalog_with(Store::Postgres, false, &[("KAFKA_BROKERS", brokers.clone())]).await;
    let mut versions: HashMap<Uuid, i32> = HashMap::new();
    let mut expected: HashMap<Uuid, Vec<i64>> = HashMap::new();
    let mut products = Vec::new();
    for index in 0..10 {
        let id = create_product(&catalog, &format!("Lamp{index}"), 500).await;
        products.push(id);
        versions.insert(id, 1);
        expected.insert(id, vec![500]);
    }

    // 1,000 price changes; the broker goes away after the first 500 and comes back once
    // all are committed.
    for change in 0..1000 {
        if change == 500 {
            // The consumer is live and caught up: the broker goes away under it.
            wait_for_rows(&catalog, 510, Duration::from_secs(60)).await;
            cluster.broker_down(1).unwrap();
        }
        let id = products[change % products.len()];
        let price = 1000 + change as i64;
        let version = change_price(&catalog, id, versions[&id], price).await;
        versions.insert(id, version);
        expected.get_mut(&id).unwrap().push(price);
    }
    cluster.broker_up(1).unwrap();
    wait_for_rows(&catalog, 1010, Duration::from_secs(90)).await;

    // Duplicates on purpose: 200 events the consumer already applied, published again with
    // their ids; then one more change per product, behind them on each product's partition.
    let already_delivered: Vec<EventEnvelope> = outbox::entity::Entity::find()
        .order_by_asc(outbox::entity::Column::Position)
        .all(&catalog.db)
        .await
        .unwrap()
        .into_iter()
        .take(200)
        .map(|row| EventEnvelope {
            event_id: row.event_id,
            event_type: row.event_type,
            schema_version: row.schema_version,
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            occurred_at: row.occurred_at,
            request_id: row.request_id,
            payload: row.payload,
        })
        .collect();
    KafkaPublisher::new(&producer_config(&brokers))
        .unwrap()
        .publish("catalog", &already_delivered)
        .await
        .unwrap();
    for (index, id) in products.iter().enumerate() {
        let price = 5000 + index as i64;
        change_price(&catalog, *id, versions[id], price).await;
        expected.get_mut(id).unwrap().push(price);
    }
    wait_for_rows(&catalog, 1020, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        projected_rows(&catalog).await,
        1020,
        "every change applied exactly once"
    );
    assert_eq!(
        projected_prices(&catalog).await,
        expected,
        "each product's prices in the order they were set"
    );
}

#[tokio::test]
async fn the_price_history_projection_serves_the_storefront_and_rebuilds_from_offset_zero() {
    let catalog = spawn_catalog(Store::EmbeddedSqlite, false).await;
    let lamp = create_product(&catalog, "Lamp", 4000).await;
    let chair = create_product(&catalog, "Chair", 9000).await;
    let gone = create_product(&catalog, "Gone", 100).await;
    let mut version = change_price(&catalog, lamp, 1, 3000).await;
    version = change_price(&catalog, lamp, version, 3500).await;
    // A change that is not a price change adds no price.
    let renamed = ProductChanges {
        name: Some("Desk lamp".to_owned()),
        ..Default::default()
    };
    catalog
        .catalog
        .update_product(lamp, version, renamed, None)
        .await
        .unwrap();
    change_price(&catalog, gone, 1, 200).await;
    catalog.catalog.delete_product(gone, None).await.unwrap();
    let built = HashMap::from([(lamp, vec![4000, 3000, 3500]), (chair, vec![9000])]);
    wait_for_prices(&catalog, &built).await;

    let body = graphql(
        &catalog.url,
        "query($id: ID!) { product(id: $id) { priceHistory { price { amount } } lowestPriceLast30Days { amount currencyCode } } }",
        json!({ "id": lamp }),
    )
    .await;
    assert_eq!(
        body["data"]["product"],
        json!({
            "priceHistory": [{ "price": { "amount": "35.00" } }, { "price": { "amount": "30.00" } }, { "price": { "amount": "40.00" } }],
            "lowestPriceLast30Days": { "amount": "30.00", "currencyCode": "EUR" }
        }),
        "{body}"
    );

    // A rebuild empties the read model and replays the topic from offset 0.
    let generation = catalog.price_history.rebuild().await.unwrap();
    assert_eq!(generation, 1);
    assert_eq!(projected_rows(&catalog).await, 0);
    // The same read model, from the events alone.
    wait_for_prices(&catalog, &built).await;
}

/// Records the events it is given.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<EventEnvelope>>,
}

#[async_trait::async_trait]
impl Handler for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

#[tokio::test]
async fn another_process_reads_the_catalog_topic_over_http_in_order_per_product() {
    let catalog = spawn_catalog(Store::Postgres, false).await;
    let first = create_product(&catalog, "First", 100).await;
    let second = create_product(&catalog, "Second", 100).await;
    let mut versions = HashMap::from([(first, 1), (second, 1)]);
    for change in 0..20 {
        let id = if change % 2 == 0 { first } else { second };
        let version = change_price(&catalog, id, versions[&id], 200 + change).await;
        versions.insert(id, version);
    }

    let recorder = Arc::new(Recorder::default());
    let source = Arc::new(RemoteLog::new(&catalog.url).unwrap());
    let runner = LogConsumerRunner::new(
        source,
        "cart.recorder",
        "catalog.product",
        recorder.clone(),
        RetryPolicy::default(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(runner.run_until(async move {
        let _ = stopped.await;
    }));
    // Two creations, two initial stocks, twenty price changes.
    let started = std::time::Instant::now();
    while recorder.events.lock().unwrap().len() < 24 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the remote consumer stalled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = recorder.events.lock().unwrap().clone();
    assert_eq!(events.len(), 24);
    for product in [first, second] {
        let versions: Vec<i64> = events
            .iter()
            .filter(|event| event.aggregate_id == product && event.event_type != "StockChanged")
            .map(|event| event.payload["product"]["version"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, (1..=11).collect::<Vec<_>>(), "in commit order");
    }
    drop(stop);

    // The feed is read-only for domain topics and checks its parameters.
    let http = reqwest::Client::new();
    let origin = catalog.url.trim_end_matches("/graphql");
    let forged = http
        .post(format!("{origin}/internal/events/catalog.product"))
        .json(&json!({ "key": null, "record": { "eventType": "ProductDeleted" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let negative = http
        .get(format!("{origin}/internal/events/catalog.product?after=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(negative.status(), 400);
    let odd = http
        .get(format!("{origin}/internal/events/Catalog%20Product"))
        .send()
        .await
        .unwrap();
    assert_eq!(odd.status(), 400);
}

#[tokio::test]
async fn the_embedded_projection_never_stalls_the_one_connection_database_under_a_steady_stream_of_changes() {
    // The embedded store has one connection, shared by requests, the outbox relay, the
    // event log reader, the projection's handler and its rebuild watcher. Price changes
    // arrive for several of the watcher's one-second checks; each must finish well inside
    // the pool's 15 s acquire timeout, and the projection must keep up.
    let catalog = spawn_catalog(Store::EmbeddedSqlite, false).await;
    let lamp = create_product(&catalog, "Lamp", 100).await;
    let mut version = 1;
    let mut changes = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let price = 200 + changes;
        version = tokio::time::timeout(Duration::from_secs(5), change_price(&catalog, lamp, version, price))
            .await
            .unwrap_or_else(|_| panic!("price change {changes} waited more than 5 s: the one-connection pool stalled"));
        changes += 1;
    }
    wait_for_rows(&catalog, 1 + changes as u64, Duration::from_secs(10)).await;
}
