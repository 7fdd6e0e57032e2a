//! The router at the edge: CORS for Apollo Studio, CSRF prevention, operation limits,
//! introspection and the Sandbox landing page per profile, Prometheus metrics. Each test
//! runs the real router process in front of a real catalog.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{Store, TestRouter, data, spawn_catalog, spawn_router_with};

async fn spawn_edge(store_env: &[(&str, String)]) -> (crate::helpers::TestCatalog, TestRouter) {
    let catalog = spawn_catalog(Store::EmbeddedSqlite, true).await;
    let mut env = vec![("CATALOG_URL", catalog.url.clone())];
    env.extend(store_env.iter().cloned());
    let router = spawn_router_with(&env).await;
    (catalog, router)
}

fn origin_of(router: &TestRouter) -> String {
    router.url.trim_end_matches("/graphql").to_owned()
}

async fn preflight(router: &TestRouter, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, &router.url)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type,authorization")
        .send()
        .await
        .unwrap()
}

/// Whether a preflight answer lets `origin` read the response (a browser compares the
/// allowed origin with its own; the router answers `null` for strangers).
fn allows(preflight: &reqwest::Response, origin: &str) -> bool {
    preflight
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_some_and(|allowed| allowed == origin || allowed == "*")
}

async fn post(router: &TestRouter, query: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(&router.url)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_cors_preflight_from_apollo_studio_succeeds_and_one_from_another_origin_does_not() {
    let (_catalog, router) = spawn_edge(&[]).await;
    let studio = preflight(&router, "https://studio.apollographql.com").await;
    assert!(studio.status().is_success(), "{}", studio.status());
    assert_eq!(
        studio.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        "https://studio.apollographql.com"
    );
    let allowed_headers = studio
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_HEADERS)
        .unwrap()
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed_headers.contains("authorization"), "{allowed_headers}");

    let stranger = preflight(&router, "https://evil.example").await;
    assert!(!allows(&stranger, "https://evil.example"), "{:?}", stranger.headers());
}

#[tokio::test]
async fn storefront_origins_come_from_configuration() {
    let (_catalog, router) = spawn_edge(&[(
        "CORS_ALLOWED_ORIGINS",
        "https://shop.example,https://admin.example".into(),
    )])
    .await;
    let shop = preflight(&router, "https://shop.example").await;
    assert_eq!(
        shop.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        "https://shop.example"
    );
    let studio = preflight(&router, "https://studio.apollographql.com").await;
    assert!(!allows(&studio, "https://studio.apollographql.com"));
}

#[tokio::test]
async fn deep_alias_heavy_and_simple_content_type_requests_are_rejected_and_storefront_queries_pass() {
    let (_catalog, router) = spawn_edge(&[]).await;

    let normal = "{ products(first: 5) { totalCount edges { node { id name price { amount currencyCode } category { name } } } } }";
    let (status, body) = post(&router, normal).await;
    assert_eq!(status, StatusCode::OK);
    assert!(data(&body)["products"]["totalCount"].as_i64().unwrap() > 0);

    // Depth 20 through categories' parents.
    let mut deep = String::from("id");
    for _ in 0..19 {
        deep = format!("parent {{ {deep} }}");
    }
    let (_, body) = post(&router, &format!("{{ categories {{ {deep} }} }}")).await;
    assert!(body["data"].is_null(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(message.contains("depth"), "{body}");

    let aliases: Vec<String> = (0..500).map(|i| format!("a{i}: __typename")).collect();
    let (_, body) = post(&router, &format!("{{ {} }}", aliases.join(" "))).await;
    assert!(body["data"].is_null(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(message.contains("alias"), "{body}");

    // Lists nested four deep: refused on its estimated cost before any subgraph is asked.
    let (_, body) = post(
        &router,
        "{ categories { children { children { children { id name } } } } }",
    )
    .await;
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "COST_ESTIMATED_TOO_EXPENSIVE",
        "{body}"
    );

    // A cross-site form could send this without a preflight: refused.
    let plain = reqwest::Client::new()
        .post(&router.url)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(json!({ "query": normal }).to_string())
        .send()
        .await
        .unwrap();
    assert!(plain.status().is_client_error(), "{}", plain.status());
    let body: Value = plain.json().await.unwrap_or(Value::Null);
    assert!(body["data"].is_null(), "{body}");
}

#[tokio::test]
async fn introspection_and_the_sandbox_page_are_on_in_development_and_off_in_production() {
    let introspection = "{ __schema { queryType { name } } }";
    let browser_get = |router: &TestRouter| {
        reqwest::Client::new()
            .get(format!("{}/", origin_of(router)))
            .header(header::ACCEPT, "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
            .send()
    };

    let (_catalog, development) = spawn_edge(&[]).await;
    let (_, body) = post(&development, introspection).await;
    assert_eq!(data(&body)["__schema"]["queryType"]["name"], "Query");
    let page = browser_get(&development).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("EmbeddedSandbox") && html.contains("/graphql"), "{html}");

    // Production requires real Redis and Kafka (a broker this test starts).
    let kafka = rdkafka::mocking::MockCluster::new(1).unwrap();
    let production_env = [
        ("APP_ENV", "production".to_owned()),
        ("REDIS_URL", crate::helpers::test_redis_url()),
        ("KAFKA_BROKERS", kafka.bootstrap_servers()),
    ];
    let (_catalog, production) = spawn_edge(&production_env).await;
    let (_, body) = post(&production, introspection).await;
    assert!(body["data"].is_null() || body["data"]["__schema"].is_null(), "{body}");
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    let page = browser_get(&production).await.unwrap();
    let html = page.text().await.unwrap_or_default();
    assert!(!html.contains("EmbeddedSandbox"), "no Sandbox in production");
    // Production still serves the API.
    let (status, body) = post(&production, "{ products(first: 1) { totalCount } }").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    data(&body);
}

#[tokio::test]
async fn the_router_exposes_prometheus_metrics() {
    let (_catalog, router) = spawn_edge(&[]).await;
    post(&router, "{ products(first: 1) { totalCount } }").await;
    let metrics = reqwest::get(format!("{}/metrics", origin_of(&router))).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("# TYPE"), "{text}");
}

#[tokio::test]
async fn an_automatic_persisted_query_misses_then_registers_then_hits_across_router_instances() {
    use sha2::{Digest, Sha256};
    let redis = [("REDIS_URL", crate::helpers::test_redis_url())];
    let (_catalog, router) = spawn_edge(&redis).await;
    // A comment makes the document (and its hash) new to the shared Redis on every run.
    let query = format!("{{ products(first: 2) {{ totalCount }} }} # {}", uuid::Uuid::new_v4());
    let hash: String = Sha256::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let send = |router: &TestRouter, body: Value| {
        let url = router.url.clone();
        async move {
            let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    let (status, miss) = send(&router, json!({ "extensions": extensions })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        miss["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{miss}"
    );
    assert_eq!(miss["errors"][0]["message"], "PersistedQueryNotFound");

    let (_, registered) = send(&router, json!({ "query": query, "extensions": extensions })).await;
    let total = data(&registered)["products"]["totalCount"].clone();

    let (_, hit) = send(&router, json!({ "extensions": extensions })).await;
    assert_eq!(data(&hit)["products"]["totalCount"], total);

    // Another router instance (with a catalog of its own) sharing Redis knows it too.
    let (_other_catalog, other) = spawn_edge(&redis).await;
    let (_, hit) = send(&other, json!({ "extensions": extensions })).await;
    assert!(data(&hit)["products"]["totalCount"].is_number(), "{hit}");

    let (status, mismatch) = send(&router, json!({ "query": "{ __typename }", "extensions": extensions })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        mismatch["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_HASH_MISMATCH"
    );
}

#[tokio::test]
async fn repeated_anonymous_catalog_reads_are_served_from_the_response_cache_until_a_catalog_event_retires_them() {
    // The catalog's own cache off, so what the router answers shows the router's cache.
    let catalog =
        crate::helpers::spawn_catalog_with(Store::EmbeddedSqlite, false, &[("CACHE_ENABLED", "false".into())]).await;
    let lamp = crate::catalog::insert_active_product(&catalog, "Lamp", 2_500, 10).await;
    let router = spawn_router_with(&[("CATALOG_URL", catalog.url.clone())]).await;
    let query = format!("{{ product(id: \"{lamp}\") {{ name availableQuantity }} }}");
    let name_only = format!("{{ product(id: \"{lamp}\") {{ name }} }}");

    // The first request only marks the query as asked for; the second is looked up,
    // misses, and its response is stored just after the client has it (never delaying
    // the answer).
    for _ in 0..2 {
        let (_, first) = post(&router, &query).await;
        assert_eq!(
            data(&first)["product"],
            json!({ "name": "Lamp", "availableQuantity": 10 })
        );
    }
    let (_, first_sighting) = post(&router, &name_only).await;
    assert_eq!(data(&first_sighting)["product"]["name"], "Lamp");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Renamed behind the catalog's back (no event): the router still answers from cache.
    rename_quietly(&catalog, lamp, "Lamp (renamed quietly)").await;
    let mut cached = json!(null);
    for _ in 0..5 {
        let (_, again) = post(&router, &query).await;
        cached = data(&again)["product"].clone();
        assert_eq!(cached["name"], "Lamp", "served from the router's cache");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(cached["availableQuantity"], 10);
    // A query asked for once before the rename was not stored: it reads the catalog.
    let (_, second_sighting) = post(&router, &name_only).await;
    assert_eq!(data(&second_sighting)["product"]["name"], "Lamp (renamed quietly)");

    // A real write publishes an event: within a second the router answers fresh data.
    let written = std::time::Instant::now();
    catalog.catalog.adjust_stock(lamp, -3, "test", None).await.unwrap();
    loop {
        let (_, fresh) = post(&router, &query).await;
        if data(&fresh)["product"]["availableQuantity"] == 7 {
            assert_eq!(data(&fresh)["product"]["name"], "Lamp (renamed quietly)");
            break;
        }
        assert!(
            written.elapsed() < std::time::Duration::from_secs(1),
            "stale after a second: {fresh}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Renames `id` in the catalog's database directly: no event, so only an event about
/// something else can make a cache show the new name.
async fn rename_quietly(catalog: &crate::helpers::TestCatalog, id: uuid::Uuid, name: &str) {
    use catalog_entity::product;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
    let mut row: product::ActiveModel = product::Entity::find_by_id(id)
        .one(&catalog.db)
        .await
        .unwrap()
        .unwrap()
        .into();
    row.name = Set(name.to_owned());
    row.update(&catalog.db).await.unwrap();
}

#[tokio::test]
async fn a_stock_change_retires_only_the_cached_responses_that_show_that_products_stock() {
    let catalog =
        crate::helpers::spawn_catalog_with(Store::EmbeddedSqlite, false, &[("CACHE_ENABLED", "false".into())]).await;
    let lamp = crate::catalog::insert_active_product(&catalog, "Lamp", 2_500, 10).await;
    let desk = crate::catalog::insert_active_product(&catalog, "Desk", 9_900, 5).await;
    let router = spawn_router_with(&[("CATALOG_URL", catalog.url.clone())]).await;
    let lamp_stock = format!("{{ product(id: \"{lamp}\") {{ name availableQuantity }} }}");
    let desk_stock = format!("{{ product(id: \"{desk}\") {{ name availableQuantity }} }}");
    let lamp_name = format!("{{ product(id: \"{lamp}\") {{ name }} }}");
    let in_stock = "{ products(first: 5, filter: { inStock: true }) { totalCount } }";
    let ask = |query: String| {
        let router = &router;
        async move { data(&post(router, &query).await.1).clone() }
    };
    // Two requests each: the second is looked up, misses and is stored.
    for query in [&lamp_stock, &desk_stock, &lamp_name, in_stock] {
        ask(query.to_owned()).await;
        ask(query.to_owned()).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // Changed behind the catalog's back: every answer still comes from the cache.
    rename_quietly(&catalog, lamp, "Lamp II").await;
    rename_quietly(&catalog, desk, "Desk II").await;
    crate::catalog::insert_active_product(&catalog, "Chair", 4_900, 3).await;
    assert_eq!(ask(desk_stock.clone()).await["product"]["name"], "Desk");
    assert_eq!(ask(in_stock.to_owned()).await["products"]["totalCount"], 2);

    // A checkout-like stock change of the lamp: the responses showing its stock, and the
    // listing filtered by stock, are answered fresh within a second; the others are not
    // touched.
    let written = std::time::Instant::now();
    catalog.catalog.adjust_stock(lamp, -3, "test", None).await.unwrap();
    loop {
        let fresh = ask(lamp_stock.clone()).await;
        if fresh["product"]["availableQuantity"] == 7 {
            assert_eq!(fresh["product"]["name"], "Lamp II");
            break;
        }
        assert!(
            written.elapsed() < std::time::Duration::from_secs(1),
            "stale after a second: {fresh}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ask(in_stock.to_owned()).await["products"]["totalCount"], 3);
    assert_eq!(
        ask(desk_stock.clone()).await["product"],
        json!({ "name": "Desk", "availableQuantity": 5 }),
        "the desk's page shows no lamp stock: still cached"
    );
    assert_eq!(
        ask(lamp_name.clone()).await["product"]["name"],
        "Lamp",
        "a response without stock is not retired by a stock change"
    );

    // Any other product event retires every cached response.
    let changes = vitrina_catalog::store::product_writes::ProductChanges {
        price: Some((2_600, "EUR".to_owned())),
        ..Default::default()
    };
    catalog.catalog.update_product(lamp, 1, changes, None).await.unwrap();
    let written = std::time::Instant::now();
    loop {
        let desk_page = ask(desk_stock.clone()).await;
        if desk_page["product"]["name"] == "Desk II" {
            assert_eq!(ask(lamp_name.clone()).await["product"]["name"], "Lamp II");
            break;
        }
        assert!(
            written.elapsed() < std::time::Duration::from_secs(1),
            "stale after a second: {desk_page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_page_of_a_hundred_products_names_their_stock_tags_in_one_header_and_passes_through_the_router() {
    let catalog = crate::helpers::spawn_catalog_with(Store::EmbeddedSqlite, false, &[]).await;
    for n in 0..100 {
        crate::catalog::insert_active_product(&catalog, &format!("Item {n}"), 1_000 + n, 1).await;
    }
    let router = spawn_router_with(&[("CATALOG_URL", catalog.url.clone())]).await;
    let query = "{ products(first: 100, filter: { inStock: true }) { edges { node { availableQuantity } } } }";

    let direct = reqwest::Client::new()
        .post(&catalog.url)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let tags: Vec<_> = direct.headers().get_all("cache-tag").iter().collect();
    assert_eq!(tags.len(), 1, "one header, however many tags");
    let named: Vec<&str> = tags[0].to_str().unwrap().split(',').collect();
    assert_eq!(named.len(), 101, "a stock tag per product, and the stock filter's");
    assert!(named.contains(&"stock-filter"));

    for _ in 0..3 {
        let (status, page) = post(&router, query).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            data(&page)["products"]["edges"].as_array().map(Vec::len),
            Some(100),
            "{page}"
        );
    }
}
