//! Fault injection on private instances: a subgraph killed under load behind the router,
//! the cart's Redis killed, the catalog's PostgreSQL connections cut, and the Kafka broker
//! and the orders process killed in the middle of checkouts. Each test starts and kills
//! only what it owns; the machine's shared PostgreSQL and Redis are never stopped.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rdkafka::{Message, mocking::MockCluster};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use uuid::Uuid;
use vitrina_shared::events::EventEnvelope;

use crate::{
    catalog::insert_active_product,
    helpers::{
        IdentityOptions, OwnRedis, PASSWORD, ServiceProcess, Store, TestDatabase, data, first_error_code, free_port,
        graphql, graphql_as, spawn_cart, spawn_catalog_with, spawn_identity, spawn_router_with,
        spawn_system_with_admin, test_redis_url,
    },
    identity::{sign_in, signed_in_customer},
};

const ADD: &str = "mutation($productId: ID!, $quantity: Int!, $guestToken: String) {
  addToCart(productId: $productId, quantity: $quantity, guestToken: $guestToken) { guestToken itemCount } }";
const CART_COUNTS: &str =
    "query($guestToken: String) { cart(guestToken: $guestToken) { itemCount lines { quantity product { id } } } }";
const LISTING: &str = "{ products(first: 5, filter: { inStock: true }) { edges { node { id } } } }";

async fn product_ids(url: &str) -> Vec<String> {
    let listing = graphql(url, LISTING, json!({})).await;
    data(&listing)["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// What one request through the router under load came back as.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Every field answered.
    Complete,
    /// The catalog's fields answered, the cart's null, with these error codes.
    Partial(Vec<String>),
    /// Anything else: a failure of the test.
    Broken(String),
}

/// The storefront's product list and the shopper's cart in one request: one field per subgraph.
const PAGE: &str = "query($guestToken: String) {
  products(first: 5) { edges { node { id name } } }
  cart(guestToken: $guestToken) { itemCount } }";

fn classify(status: reqwest::StatusCode, body: &Value, item_count: i64) -> Outcome {
    let products = body["data"]["products"]["edges"].as_array().map_or(0, Vec::len);
    if !status.is_success() || products != 5 {
        return Outcome::Broken(format!("HTTP {status}: {body}"));
    }
    match body.get("errors").and_then(Value::as_array) {
        None if body["data"]["cart"]["itemCount"] == item_count => Outcome::Complete,
        None => Outcome::Broken(format!("wrong cart: {body}")),
        Some(errors) => {
            let codes: Option<Vec<String>> = errors
                .iter()
                .map(|error| error["extensions"]["code"].as_str().map(str::to_owned))
                .collect();
            match codes {
                Some(codes) if body["data"]["cart"].is_null() => Outcome::Partial(codes),
                _ => Outcome::Broken(format!("uncoded error or a cart with errors: {body}")),
            }
        }
    }
}

/// One request of the load: when it was sent, when its answer came, what it was.
#[derive(Debug, Clone)]
struct Exchange {
    sent_at: Instant,
    answered_at: Instant,
    outcome: Outcome,
}

#[tokio::test]
async fn a_subgraph_killed_under_load_leaves_the_other_fields_answered_with_a_coded_error_and_recovers_when_it_returns()
{
    let catalog = spawn_catalog_with(Store::EmbeddedSqlite, true, &[]).await;
    let data_dir = tempfile::tempdir().unwrap();
    // Carts in the machine's Redis: the cart process is killed, its carts must not be.
    let mut cart = ServiceProcess::start(
        "cart",
        &[
            ("DATA_DIR", data_dir.path().display().to_string()),
            ("CATALOG_URL", catalog.url.clone()),
            ("REDIS_URL", test_redis_url()),
        ],
    )
    .await;
    let router = spawn_router_with(&[("CATALOG_URL", catalog.url.clone()), ("CART_URL", cart.url())]).await;
    let products = product_ids(&router.url).await;
    let added = graphql(&router.url, ADD, json!({ "productId": products[0], "quantity": 2 })).await;
    let guest_token = data(&added)["addToCart"]["guestToken"].as_str().unwrap().to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let exchanges: Arc<Mutex<Vec<Exchange>>> = Arc::default();
    let client = reqwest::Client::new();
    let shoppers: Vec<_> = (0..8)
        .map(|_| {
            let (stop, exchanges, client) = (stop.clone(), exchanges.clone(), client.clone());
            let (url, guest_token) = (router.url.clone(), guest_token.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent_at = Instant::now();
                    let response = client
                        .post(&url)
                        .json(&json!({ "query": PAGE, "variables": { "guestToken": guest_token } }))
                        .send()
                        .await
                        .expect("the router answers");
                    let status = response.status();
                    let body: Value = response.json().await.expect("a JSON body");
                    let outcome = classify(status, &body, 2);
                    exchanges.lock().unwrap().push(Exchange {
                        sent_at,
                        answered_at: Instant::now(),
                        outcome,
                    });
                    // Paced: steady traffic, not a saturated machine that would slow the
                    // tests running beside this one past their timeouts.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = Instant::now();
    cart.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // It listens before it answers `/ready`: from here on, complete answers are legitimate.
    let restarting_at = Instant::now();
    cart.restart().await;
    let restarted_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for shopper in shoppers {
        shopper.await.unwrap();
    }

    let exchanges = exchanges.lock().unwrap().clone();
    let broken: Vec<_> = exchanges
        .iter()
        .filter(|exchange| matches!(exchange.outcome, Outcome::Broken(_)))
        .collect();
    assert!(
        broken.is_empty(),
        "{} broken answers, e.g. {:?}",
        broken.len(),
        broken[0]
    );
    let before: Vec<_> = exchanges.iter().filter(|e| e.answered_at < killed_at).collect();
    let incomplete = before.iter().find(|e| e.outcome != Outcome::Complete);
    assert!(
        incomplete.is_none(),
        "every answer complete before the kill: {incomplete:?}"
    );
    // The router shares one subgraph call among identical requests in flight, so a request
    // sent a moment after the kill may still get the answer of one sent before it.
    let dead_for_sure = killed_at + Duration::from_millis(200);
    let during: Vec<_> = exchanges
        .iter()
        .filter(|e| e.sent_at >= dead_for_sure && e.answered_at < restarting_at)
        .collect();
    assert!(
        during.len() >= 20,
        "load went on while the cart was down: {}",
        during.len()
    );
    let codes: HashSet<String> = during
        .iter()
        .map(|exchange| match &exchange.outcome {
            Outcome::Partial(codes) => codes.join(","),
            other => panic!("an answer sent while the cart was dead is partial, not {other:?}"),
        })
        .collect();
    assert!(codes.iter().all(|code| !code.is_empty()), "coded: {codes:?}");
    let after: Vec<_> = exchanges.iter().filter(|e| e.sent_at >= restarted_at).collect();
    let first_complete = after
        .iter()
        .find(|e| e.outcome == Outcome::Complete)
        .map(|e| e.sent_at.duration_since(restarted_at))
        .expect("complete answers again once the cart is back");
    assert!(
        first_complete < Duration::from_secs(2),
        "recovered after {first_complete:?}"
    );
    let settled = restarted_at + Duration::from_secs(2);
    assert!(
        after
            .iter()
            .filter(|e| e.sent_at >= settled)
            .all(|e| e.outcome == Outcome::Complete),
        "every answer complete after recovery"
    );
    eprintln!(
        "subgraph kill: {} requests, {} complete before the kill, {} partial while the cart was down with codes {codes:?}, first complete {first_complete:?} after the restart",
        exchanges.len(),
        before.len(),
        during.len(),
    );
}

#[tokio::test]
async fn a_killed_redis_makes_the_cart_answer_unavailable_the_catalog_read_its_database_and_a_restart_finds_every_cart_intact()
 {
    let redis_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut redis = OwnRedis::start_persistent(port, redis_dir.path());
    redis.wait_ready().await;
    let catalog = spawn_catalog_with(Store::EmbeddedSqlite, true, &[("REDIS_URL", redis.url())]).await;
    let cart = spawn_cart(&catalog.url, false, &[("REDIS_URL", redis.url())]).await;
    let products = product_ids(&catalog.url).await;

    // Ten guest carts of one to three lines.
    let mut carts = Vec::new();
    for shopper in 0..10 {
        let mut guest_token: Option<String> = None;
        for product in &products[..=shopper % 3] {
            let added = graphql(
                &cart.url,
                ADD,
                json!({ "productId": product, "quantity": 1 + shopper % 2, "guestToken": guest_token }),
            )
            .await;
            guest_token = Some(data(&added)["addToCart"]["guestToken"].as_str().unwrap().to_owned());
        }
        let guest_token = guest_token.unwrap();
        let counts = graphql(&cart.url, CART_COUNTS, json!({ "guestToken": guest_token })).await;
        carts.push((guest_token, data(&counts)["cart"].clone()));
    }

    redis.stop();
    let mut refused = 0;
    let mut slowest = Duration::ZERO;
    for (guest_token, _) in &carts {
        for (query, variables) in [
            (CART_COUNTS, json!({ "guestToken": guest_token })),
            (
                ADD,
                json!({ "productId": products[4], "quantity": 1, "guestToken": guest_token }),
            ),
        ] {
            let started = Instant::now();
            let response = reqwest::Client::new()
                .post(&cart.url)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            slowest = slowest.max(started.elapsed());
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("HTTP {status} after {:?}: {text:?}", started.elapsed()));
            assert!(status.is_success() || status.as_u16() == 503, "HTTP {status}: {body}");
            assert_eq!(first_error_code(&body), "UNAVAILABLE", "{body:#}");
            refused += 1;
        }
    }
    let (_, new_cart) = graphql_as(&cart.url, None, ADD, json!({ "productId": products[0], "quantity": 1 })).await;
    assert_eq!(first_error_code(&new_cart), "UNAVAILABLE");
    assert!(slowest < Duration::from_secs(5), "failed fast: slowest {slowest:?}");
    let listing = graphql(&catalog.url, LISTING, json!({})).await;
    assert_eq!(
        data(&listing)["products"]["edges"].as_array().unwrap().len(),
        5,
        "the catalog reads its database"
    );

    let restarted = OwnRedis::start_persistent(port, redis_dir.path());
    restarted.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    for (guest_token, before) in &carts {
        loop {
            let (_, body) = graphql_as(&cart.url, None, CART_COUNTS, json!({ "guestToken": guest_token })).await;
            if body.get("errors").is_none() {
                assert_eq!(&body["data"]["cart"], before, "the cart as it was before the outage");
                break;
            }
            assert!(Instant::now() < deadline, "the cart never came back: {body:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let after = graphql(
        &cart.url,
        ADD,
        json!({ "productId": products[4], "quantity": 1, "guestToken": carts[0].0 }),
    )
    .await;
    assert_eq!(data(&after)["addToCart"]["itemCount"], 2, "writes work again");
    eprintln!(
        "redis kill: {} carts intact, {refused} requests refused with UNAVAILABLE, slowest {slowest:?}",
        carts.len()
    );
}

/// Cuts every connection to `database` and refuses new ones (the server and every other
/// database go on), as a network partition between one service and its database would.
async fn cut_off(database: &TestDatabase, allow: bool) {
    let admin = Database::connect(format!(
        "{}/postgres",
        database.url.rsplit_once('/').map_or("", |(server, _)| server)
    ))
    .await
    .unwrap();
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS {allow}",
            database.name
        ))
        .await
        .unwrap();
    if !allow {
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                database.name
            ))
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
}

const SEARCH: &str = "query($term: String!) { products(first: 5, filter: { search: $term }) { totalCount } }";
const BY_SLUG: &str = "query($slug: String!) { productBySlug(slug: $slug) { id version price { amount } } }";
const UPDATE_PRICE: &str = "mutation($id: ID!, $version: Int!) {
  updateProduct(id: $id, input: { version: $version, price: { amount: \"1.23\", currencyCode: \"EUR\" } }) { version price { amount } } }";

#[tokio::test]
async fn a_lost_postgresql_connection_fails_requests_fast_with_unavailable_and_the_pool_recovers() {
    let (system, admin_email) = spawn_system_with_admin(Store::Postgres, false).await;
    let url = &system.router.url;
    let admin = sign_in(url, &admin_email, PASSWORD).await;
    let token = admin["accessToken"].as_str().unwrap();
    let product = graphql(url, BY_SLUG, json!({ "slug": "the-rust-book" })).await;
    let product = data(&product)["productBySlug"].clone();
    let database = system.catalog.database.as_ref().unwrap();

    cut_off(database, false).await;
    let mut slowest = Duration::ZERO;
    for attempt in 0..5 {
        let started = Instant::now();
        let read = graphql(
            url,
            SEARCH,
            json!({ "term": format!("outage-{attempt}-{}", Uuid::now_v7()) }),
        )
        .await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(first_error_code(&read), "UNAVAILABLE", "{read:#}");
        let started = Instant::now();
        let (_, write) = graphql_as(
            url,
            Some(token),
            UPDATE_PRICE,
            json!({ "id": product["id"], "version": product["version"] }),
        )
        .await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(first_error_code(&write), "UNAVAILABLE", "{write:#}");
    }
    assert!(slowest < Duration::from_secs(4), "failed fast: slowest {slowest:?}");

    cut_off(database, true).await;
    let started = Instant::now();
    loop {
        let read = graphql(url, SEARCH, json!({ "term": format!("back-{}", Uuid::now_v7()) })).await;
        if read.get("errors").is_none() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the pool never recovered: {read:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered_after = started.elapsed();
    let unchanged = graphql(url, BY_SLUG, json!({ "slug": "the-rust-book" })).await;
    assert_eq!(
        data(&unchanged)["productBySlug"],
        product,
        "the refused writes changed nothing"
    );
    let (_, written) = graphql_as(
        url,
        Some(token),
        UPDATE_PRICE,
        json!({ "id": product["id"], "version": product["version"] }),
    )
    .await;
    assert_eq!(data(&written)["updateProduct"]["price"]["amount"], "1.23");
    eprintln!("postgres cut: 10 requests refused, slowest {slowest:?}; recovered after {recovered_after:?}");
}

const CHECKOUT: &str = "mutation($input: CheckoutInput!) { checkout(input: $input) { order { id status } } }";
const MY_ORDERS: &str = "{ myOrders(first: 10) { edges { node { id status } } } }";

fn checkout_input(key: &str) -> Value {
    json!({ "input": {
        "idempotencyKey": key,
        "shippingAddress": { "fullName": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "countryCode": "GB" },
    } })
}

async fn unpublished(orders_db: &sea_orm::DatabaseConnection) -> i64 {
    let row = orders_db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!(
                "SELECT count(*) AS n FROM \"{}\".outbox WHERE published_at IS NULL",
                vitrina_orders::DATABASE_SCHEMA
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Waits until `OrderPlaced` emptied every customer's cart (so a refill is not emptied by
/// an earlier order's event).
async fn wait_for_empty_carts(cart_url: &str, tokens: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for token in tokens {
        loop {
            let (_, cart_now) = graphql_as(cart_url, Some(token), CART_COUNTS, json!({})).await;
            if data(&cart_now)["cart"].is_null() || data(&cart_now)["cart"]["itemCount"] == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the cart was never emptied: {cart_now}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Each customer's checkout, one at a time per customer and all customers at once.
async fn check_out(orders_url: &str, tokens: &[String], round: &str) -> Vec<String> {
    let checkouts = tokens.iter().map(|token| async move {
        let (_, body) = graphql_as(orders_url, Some(token), CHECKOUT, checkout_input(round)).await;
        data(&body)["checkout"]["order"]["id"].as_str().unwrap().to_owned()
    });
    futures::future::join_all(checkouts).await
}

#[tokio::test]
async fn checkouts_through_a_broker_outage_and_a_kill_between_commit_and_publish_lose_no_event() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let identity = spawn_identity(IdentityOptions {
        store: Store::EmbeddedSqlite,
        redis: false,
        extra: &[],
    })
    .await;
    let orders_port = free_port();
    let orders_url = format!("http://127.0.0.1:{orders_port}/graphql");
    let shared = [
        ("IDENTITY_URL", identity.url.clone()),
        ("KAFKA_BROKERS", brokers.clone()),
        ("ORDERS_URL", orders_url.clone()),
    ];
    let catalog = spawn_catalog_with(Store::Postgres, false, &shared).await;
    let cart = spawn_cart(&catalog.url, false, &shared).await;
    let orders_database = TestDatabase::create().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut orders_env = shared.to_vec();
    orders_env.extend([
        ("DATABASE_URL", orders_database.url.clone()),
        ("CATALOG_URL", catalog.url.clone()),
        ("CART_URL", cart.url.clone()),
        ("DATA_DIR", data_dir.path().display().to_string()),
    ]);
    let mut orders = ServiceProcess::start_on("orders", orders_port, &orders_env).await;
    let orders_db = vitrina_shared::db::connect(
        &crate::helpers::test_settings(data_dir.path(), &[("DATABASE_URL", orders_database.url.clone())]),
        vitrina_orders::DATABASE_SCHEMA,
    )
    .await
    .unwrap()
    .0;

    let product = insert_active_product(&catalog, "Lamp", 2500, 1000).await;
    let mut customers = Vec::new();
    for _ in 0..12 {
        let (_, login) = signed_in_customer(&identity.url).await;
        customers.push(login["accessToken"].as_str().unwrap().to_owned());
    }
    let fill_carts = |tokens: &[String]| {
        let tokens = tokens.to_vec();
        let cart_url = cart.url.clone();
        async move {
            for token in &tokens {
                let (_, added) = graphql_as(
                    &cart_url,
                    Some(token),
                    ADD,
                    json!({ "productId": product.to_string(), "quantity": 1 }),
                )
                .await;
                data(&added);
            }
        }
    };

    // Round one with the broker up; round two with it down: checkouts still succeed (the
    // events wait in the outbox). Then the orders process is killed before it could publish.
    fill_carts(&customers).await;
    let mut placed = check_out(&orders_url, &customers, "checkout-round-1").await;
    wait_for_empty_carts(&cart.url, &customers).await;
    fill_carts(&customers).await;
    cluster.broker_down(1).unwrap();
    placed.extend(check_out(&orders_url, &customers, "checkout-round-2").await);
    orders.kill();
    let stranded = unpublished(&orders_db).await;
    assert!(
        stranded >= 12,
        "round two's events were committed but not published: {stranded}"
    );

    cluster.broker_up(1).unwrap();
    orders.restart().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while unpublished(&orders_db).await > 0 {
        assert!(Instant::now() < deadline, "the outbox never drained");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The topic has every order's OrderPlaced (at least once: a kill after the broker's
    // acknowledgement and before the row was marked may publish one twice).
    let consumer = crate::helpers::topic_reader(&brokers, "orders.order");
    let expected: HashSet<String> = placed.iter().cloned().collect();
    assert_eq!(expected.len(), 24, "24 distinct orders");
    let mut deliveries: HashMap<String, usize> = HashMap::new();
    while !expected.iter().all(|order| deliveries.contains_key(order)) {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "missing OrderPlaced for {:?}",
                    expected
                        .iter()
                        .filter(|order| !deliveries.contains_key(*order))
                        .collect::<Vec<_>>()
                )
            })
            .unwrap();
        let event: EventEnvelope = serde_json::from_slice(message.payload().unwrap()).unwrap();
        if event.event_type == "OrderPlaced" {
            *deliveries.entry(event.aggregate_id.to_string()).or_default() += 1;
        }
    }
    assert!(
        deliveries.keys().all(|order| expected.contains(order)),
        "no event of an order that does not exist"
    );

    // And the consumers applied them: every cart emptied, every order in the read model.
    let deadline = Instant::now() + Duration::from_secs(60);
    for token in &customers {
        loop {
            let (_, cart_now) = graphql_as(&cart.url, Some(token), CART_COUNTS, json!({})).await;
            let (_, mine) = graphql_as(&orders_url, Some(token), MY_ORDERS, json!({})).await;
            let emptied = data(&cart_now)["cart"].is_null() || data(&cart_now)["cart"]["itemCount"] == 0;
            let listed = data(&mine)["myOrders"]["edges"].as_array().map_or(0, Vec::len);
            if emptied && listed == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cart {cart_now} and orders {mine} never caught up"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let duplicates: usize = deliveries.values().map(|count| count - 1).sum();
    eprintln!(
        "broker outage + kill: 24 checkouts, {stranded} events stranded by the kill, 0 lost, {duplicates} redelivered"
    );
}
