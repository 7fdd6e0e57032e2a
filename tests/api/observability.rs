//! Observability: one request id and one trace id in the router's and the subgraphs'
//! logs, OTLP export of the same trace, Prometheus metrics on every process, and the
//! production profile refusing embedded defaults.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::helpers::{Store, free_port, graphql_as, repo_root, spawn_system, wait_for_ok};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_logs(dir: &Path, prefix: &str) -> String {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `vitrina serve catalog` as its own process (embedded stores), logging at debug.
async fn start_catalog(data_dir: &Path, extra: &[(&str, String)]) -> (KillOnDrop, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_vitrina"))
        .args(["serve", "catalog"])
        .env("DATA_DIR", data_dir)
        .env("CATALOG_PORT", port.to_string())
        .env("LOG_LEVEL", "debug")
        .envs(extra.iter().map(|(name, value)| (*name, value)))
        .stdout(Stdio::null())
        .spawn()
        .expect("start catalog");
    let child = KillOnDrop(child);
    wait_for_ok(&format!("http://127.0.0.1:{port}/ready"), Duration::from_secs(30)).await;
    (child, port)
}

/// `vitrina router` in front of that catalog; its stdout (JSON lines) goes to a file.
async fn start_router(data_dir: &Path, catalog_port: u16, extra: &[(&str, String)]) -> (KillOnDrop, u16, PathBuf) {
    let port = free_port();
    let log = data_dir.join(format!("router-{port}.stdout"));
    let child = Command::new(env!("CARGO_BIN_EXE_vitrina"))
        .arg("router")
        .env("ROUTER_CONFIG_FILE_PATH", repo_root().join("router/router.yaml"))
        .env("SUPERGRAPH_FILE", repo_root().join("supergraph.graphql"))
        .env("ROUTER_PORT", port.to_string())
        .env("CATALOG_URL", format!("http://127.0.0.1:{catalog_port}/graphql"))
        .env("LOG_LEVEL", "info")
        .envs(extra.iter().map(|(name, value)| (*name, value)))
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start router");
    let child = KillOnDrop(child);
    wait_for_ok(&format!("http://127.0.0.1:{port}/health"), Duration::from_secs(30)).await;
    (child, port, log)
}

fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn post_with_trace(router_port: u16, request_id: &str, trace_id: &str) {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{router_port}/graphql"))
        .header("x-request-id", request_id)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({ "query": "{ categories { id } }" }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

#[tokio::test]
async fn a_request_id_and_a_trace_id_sent_to_the_router_appear_in_router_and_subgraph_logs() {
    let data_dir = tempfile::tempdir().unwrap();
    let (_catalog, catalog_port) = start_catalog(data_dir.path(), &[]).await;
    let (_router, router_port, router_log) = start_router(data_dir.path(), catalog_port, &[]).await;
    let request_id = format!("trace-me-{}", uuid::Uuid::new_v4().simple());
    let trace_id = new_trace_id();

    post_with_trace(router_port, &request_id, &trace_id).await;

    let trace_field = format!("\"trace_id\":\"{trace_id}\"");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let catalog_log = read_logs(&data_dir.path().join("logs"), "catalog");
        let router_log = std::fs::read_to_string(&router_log).unwrap_or_default();
        let found = [
            catalog_log.contains(&request_id),
            router_log.contains(&request_id),
            catalog_log.contains(&trace_field),
            router_log.contains(&trace_field),
        ];
        if found.iter().all(|found| *found) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "[request id in catalog, in router, trace id in catalog, in router]: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An OTLP/HTTP collector that keeps every export request body it receives.
async fn start_collector() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body.to_vec());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (endpoint, received)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[tokio::test]
async fn with_an_otlp_collector_configured_router_and_subgraph_export_spans_of_the_clients_trace() {
    let (endpoint, received) = start_collector().await;
    let otlp = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)];
    let data_dir = tempfile::tempdir().unwrap();
    let (_catalog, catalog_port) = start_catalog(data_dir.path(), &otlp).await;
    let (_router, router_port, _) = start_router(data_dir.path(), catalog_port, &otlp).await;
    let trace_id = new_trace_id();
    let trace_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();

    post_with_trace(router_port, "otlp-test", &trace_id).await;

    // Spans are exported in batches (every 5 s by default).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (from_router, from_catalog) = {
            let bodies = received.lock().unwrap();
            let of_trace: Vec<&Vec<u8>> = bodies.iter().filter(|body| contains(body, &trace_bytes)).collect();
            (
                of_trace.iter().any(|body| contains(body, b"hive-router")),
                of_trace.iter().any(|body| contains(body, b"catalog")),
            )
        };
        if from_router && from_catalog {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "spans of the client's trace exported by the router: {from_router}, by the catalog: {from_catalog}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn metrics_of(origin: &str) -> String {
    let response = reqwest::get(format!("{origin}/metrics")).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{origin}/metrics");
    response.text().await.unwrap()
}

#[tokio::test]
async fn every_process_serves_prometheus_metrics_with_request_counts_latencies_and_error_codes() {
    let system = spawn_system(Store::EmbeddedSqlite, false, &[]).await;
    // A bad token: every subgraph answers UNAUTHENTICATED, and counts it.
    let (_, body) = graphql_as(
        &system.router.url,
        Some("not-a-token"),
        "{ products(first: 1) { totalCount } }",
        json!({}),
    )
    .await;
    assert!(body["errors"].is_array(), "{body}");
    let (_, body) = graphql_as(
        &system.router.url,
        None,
        "{ products(first: 1) { totalCount } }",
        json!({}),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let (_, body) = graphql_as(&system.cart.url, Some("not-a-token"), "{ cart { id } }", json!({})).await;
    assert!(body["errors"].is_array(), "{body}");

    let origin = |url: &str| url.trim_end_matches("/graphql").to_owned();
    for url in [&system.identity.url, &system.catalog.url, &system.cart.url] {
        let health = reqwest::get(format!("{}/health", origin(url))).await.unwrap();
        assert_eq!(health.status(), reqwest::StatusCode::OK);
    }
    for (service, url) in [
        ("identity", &system.identity.url),
        ("catalog", &system.catalog.url),
        ("cart", &system.cart.url),
    ] {
        let metrics = metrics_of(&origin(url)).await;
        for series in [
            format!("http_requests_total{{service=\"{service}\",route=\"/health\",status=\"200\"}}"),
            format!("http_request_duration_seconds_bucket{{service=\"{service}\",route=\"/health\",le=\"0.005\"}}"),
        ] {
            assert!(metrics.contains(&series), "{service} lacks {series}:\n{metrics}");
        }
    }
    let catalog_metrics = metrics_of(&origin(&system.catalog.url)).await;
    for series in [
        "http_requests_total{service=\"catalog\",route=\"/graphql\",status=\"200\"}",
        "graphql_errors_total{service=\"cart\",code=\"UNAUTHENTICATED\"}",
        "cache_requests_total{",
        "db_query_duration_seconds_bucket{",
        "# TYPE http_request_duration_seconds histogram",
    ] {
        assert!(
            catalog_metrics.contains(series),
            "/metrics lacks {series}:\n{catalog_metrics}"
        );
    }
    let orders_metrics = metrics_of(&format!("http://127.0.0.1:{}", system.orders.port)).await;
    assert!(orders_metrics.contains("service=\"orders\""), "{orders_metrics}");
    let router_metrics = metrics_of(&origin(&system.router.url)).await;
    assert!(router_metrics.contains("# TYPE"), "{router_metrics}");
}

#[tokio::test]
async fn the_production_profile_refuses_to_start_on_embedded_defaults_and_names_what_is_missing() {
    let data_dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_vitrina"))
            .args(args)
            .env("APP_ENV", "production")
            .env("DATA_DIR", data_dir.path())
            .env("ORDERS_PORT", free_port().to_string())
            .env("ROUTER_PORT", free_port().to_string())
            .env("ROUTER_CONFIG_FILE_PATH", repo_root().join("router/router.yaml"))
            .env("SUPERGRAPH_FILE", repo_root().join("supergraph.graphql"))
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("KAFKA_BROKERS")
            .output()
            .expect("run vitrina");
        (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
    };

    let (status, stderr) = run(&["serve", "orders"]);
    assert!(!status.success(), "orders started in production on embedded defaults");
    for name in [
        "DATABASE_URL",
        "REDIS_URL",
        "KAFKA_BROKERS",
        "PAYPAL_CLIENT_ID",
        "PAYPAL_CLIENT_SECRET",
        "PAYPAL_WEBHOOK_ID",
    ] {
        assert!(stderr.contains(name), "orders' refusal does not name {name}: {stderr}");
    }

    let (status, stderr) = run(&["router"]);
    assert!(
        !status.success(),
        "the router started in production without Redis and Kafka"
    );
    assert!(
        stderr.contains("REDIS_URL") && stderr.contains("KAFKA_BROKERS"),
        "{stderr}"
    );

    let (status, stderr) = run(&["migrate", "--service", "catalog"]);
    assert!(
        !status.success(),
        "migrate ran in production against the embedded SQLite"
    );
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}
