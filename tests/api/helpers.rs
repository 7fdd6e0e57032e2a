//! Test harness: fresh databases, in-process subgraphs, the router as a child process.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use uuid::Uuid;
use vitrina_shared::config::Settings;

/// Server that owns the per-test databases (the machine's PostgreSQL, trust auth).
fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the database of a test lives.
#[derive(Debug, Clone, Copy)]
pub enum Store {
    /// A fresh PostgreSQL database, dropped when the test ends.
    Postgres,
    /// The embedded default: SQLite files in a temporary data directory.
    EmbeddedSqlite,
}

/// A PostgreSQL database created for one test.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        use sea_orm::{ConnectionTrait, Database};
        let name = format!("vitrina_test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(format!("{}/postgres", postgres_admin_url()))
            .await
            .expect("connect to the test PostgreSQL server");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        admin.close().await.expect("close admin connection");
        let url = format!("{}/{name}", postgres_admin_url());
        Self { name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort, on a thread of its own: the test's runtime may be shutting down.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                use sea_orm::{ConnectionTrait, Database};
                let admin = Database::connect(format!("{}/postgres", postgres_admin_url()))
                    .await
                    .ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

/// Settings for a test: everything on free ports, data in a temporary directory.
pub fn test_settings(data_dir: &Path, overrides: &[(&str, String)]) -> Settings {
    let mut vars: HashMap<String, String> = HashMap::from([
        (
            "VITRINA_CONFIG".into(),
            data_dir.join("absent.toml").display().to_string(),
        ),
        ("DATA_DIR".into(), data_dir.display().to_string()),
        ("CATALOG_PORT".into(), "0".into()),
        ("IDENTITY_PORT".into(), "0".into()),
        ("CART_PORT".into(), "0".into()),
        ("ORDERS_PORT".into(), "0".into()),
        ("LOG_LEVEL".into(), "warn".into()),
    ]);
    for (key, value) in overrides {
        vars.insert((*key).to_owned(), value.clone());
    }
    Settings::load_from(|name| vars.get(name).cloned()).expect("test settings")
}

/// A catalog subgraph running inside the test's runtime.
pub struct TestCatalog {
    pub port: u16,
    pub db: sea_orm::DatabaseConnection,
    /// The running service's use cases: cache and statement counters, invalidation.
    pub catalog: vitrina_catalog::service::Catalog,
    /// The running service's price-history projection (rebuilds, direct reads).
    pub price_history: vitrina_catalog::price_history::PriceHistory,
    pub url: String,
    _data_dir: tempfile::TempDir,
    /// The catalog's own PostgreSQL database (`None` on SQLite): fault tests cut it off.
    pub database: Option<TestDatabase>,
}

/// The database of one service under test: a fresh PostgreSQL database (dropped with the
/// returned guard) or, for the embedded default, none (SQLite in the data directory).
async fn database_for(store: Store) -> (Option<TestDatabase>, Vec<(&'static str, String)>) {
    match store {
        Store::Postgres => {
            let database = TestDatabase::create().await;
            let url = database.url.clone();
            (Some(database), vec![("DATABASE_URL", url)])
        }
        Store::EmbeddedSqlite => (None, Vec::new()),
    }
}

pub async fn spawn_catalog(store: Store, seed_demo: bool) -> TestCatalog {
    spawn_catalog_with(store, seed_demo, &[]).await
}

/// The Redis the tests use (the machine's, unless `TEST_REDIS_URL` says otherwise).
pub fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A catalog with extra settings, e.g. `IDENTITY_URL` of a test identity.
pub async fn spawn_catalog_with(store: Store, seed_demo: bool, extra: &[(&str, String)]) -> TestCatalog {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (database, mut overrides) = database_for(store).await;
    overrides.push(("SEED_DEMO_DATA", seed_demo.to_string()));
    overrides.extend(extra.iter().cloned());
    let settings = test_settings(data_dir.path(), &overrides);
    let app = vitrina_catalog::Application::build(&settings)
        .await
        .expect("catalog builds");
    let port = app.port();
    let db = app.database().clone();
    let catalog = app.catalog().clone();
    let price_history = app.price_history().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestCatalog {
        port,
        db,
        catalog,
        price_history,
        url: format!("http://127.0.0.1:{port}/graphql"),
        _data_dir: data_dir,
        database,
    }
}

/// A migrated catalog database with no catalog running on it: for tests that run their
/// own relays and consumers over it (a running catalog would run its own).
pub struct TestCatalogDatabase {
    pub db: sea_orm::DatabaseConnection,
    _data_dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

pub async fn catalog_database(store: Store) -> TestCatalogDatabase {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (database, overrides) = database_for(store).await;
    let settings = test_settings(data_dir.path(), &overrides);
    let (db, _) = vitrina_shared::db::connect_and_migrate::<vitrina_migrations::catalog::Migrator>(
        &settings,
        vitrina_catalog::DATABASE_SCHEMA,
    )
    .await
    .expect("catalog database migrates");
    TestCatalogDatabase {
        db,
        _data_dir: data_dir,
        _database: database,
    }
}

/// A cart subgraph running inside the test's runtime.
pub struct TestCart {
    pub url: String,
    /// The running service's use cases and store (TTL checks, direct arrangement).
    pub carts: vitrina_cart::service::Carts,
    _data_dir: tempfile::TempDir,
}

/// A cart in front of `catalog_url`; `redis`: carts in the machine's Redis, else in process.
pub async fn spawn_cart(catalog_url: &str, redis: bool, extra: &[(&str, String)]) -> TestCart {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut overrides = vec![("CATALOG_URL", catalog_url.to_owned())];
    if redis {
        overrides.push(("REDIS_URL", test_redis_url()));
    }
    overrides.extend(extra.iter().cloned());
    let settings = test_settings(data_dir.path(), &overrides);
    let app = vitrina_cart::Application::build(&settings).await.expect("cart builds");
    let port = app.port();
    let carts = app.carts().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestCart {
        url: format!("http://127.0.0.1:{port}/graphql"),
        carts,
        _data_dir: data_dir,
    }
}

/// An orders subgraph running inside the test's runtime (PayPal simulated unless `extra`
/// configures PayPal).
pub struct TestOrders {
    pub port: u16,
    pub db: sea_orm::DatabaseConnection,
    pub orders: vitrina_orders::service::Orders,
    pub order_view: vitrina_orders::projection::OrderView,
    _data_dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

/// Orders in front of `catalog_url` and `cart_url`; `extra` sets the rest (identity,
/// a fixed `ORDERS_PORT`, PayPal, the payment window).
pub async fn spawn_orders_service(
    store: Store,
    catalog_url: &str,
    cart_url: &str,
    extra: &[(&str, String)],
) -> TestOrders {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (database, mut overrides) = database_for(store).await;
    overrides.push(("CATALOG_URL", catalog_url.to_owned()));
    overrides.push(("CART_URL", cart_url.to_owned()));
    overrides.extend(extra.iter().cloned());
    let settings = test_settings(data_dir.path(), &overrides);
    let app = vitrina_orders::Application::build(&settings)
        .await
        .expect("orders service builds");
    let port = app.port();
    let db = app.database().clone();
    let orders = app.orders().clone();
    let order_view = app.order_view().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestOrders {
        port,
        db,
        orders,
        order_view,
        _data_dir: data_dir,
        _database: database,
    }
}

/// The router, as the real `vitrina router` process, in front of test subgraphs.
pub struct TestRouter {
    pub url: String,
    child: Child,
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn spawn_router(catalog: &TestCatalog) -> TestRouter {
    spawn_router_with(&[("CATALOG_URL", catalog.url.clone())]).await
}

/// The router with these environment variables (subgraph URLs, `REDIS_URL`, …).
pub async fn spawn_router_with(env: &[(&str, String)]) -> TestRouter {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_vitrina"));
    command
        .arg("router")
        .env("ROUTER_CONFIG_FILE_PATH", repo_root().join("router/router.yaml"))
        .env("SUPERGRAPH_FILE", repo_root().join("supergraph.graphql"))
        .env("ROUTER_PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .env("VITRINA_CONFIG", repo_root().join("tests/absent-vitrina.toml"))
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().expect("start the router");
    let router = TestRouter {
        url: format!("http://127.0.0.1:{port}/graphql"),
        child,
    };
    wait_for_ok(&format!("http://127.0.0.1:{port}/health"), Duration::from_secs(30)).await;
    router
}

/// A port that was free a moment ago (for child processes that cannot report theirs, and
/// services whose address others must know before they start).
///
/// Drawn at random from below the kernel's ephemeral range, not by binding port 0: an
/// ephemeral port is also what every outgoing connection on the machine takes, so one
/// picked that way was sometimes taken by a client socket before the service bound it
/// (seen in CI: "Address already in use" for an orders port chosen a moment earlier).
pub fn free_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000_u16, ephemeral_start.max(10_001));
    for _ in 0..1000 {
        let port = rand::random_range(low..high);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{high}");
}

pub async fn wait_for_ok(url: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} did not answer 200 within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POSTs a GraphQL request and returns the whole JSON response.
pub async fn graphql(url: &str, query: &str, variables: Value) -> Value {
    let (status, body) = graphql_as(url, None, query, variables).await;
    assert!(status.is_success(), "HTTP {status} from {url}: {body}");
    body
}

/// POSTs a GraphQL request with an optional bearer token; returns status and body.
pub async fn graphql_as(url: &str, token: Option<&str>, query: &str, variables: Value) -> (reqwest::StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GraphQL request");
    let status = response.status();
    (status, response.json().await.expect("JSON response"))
}

/// An identity subgraph running inside the test's runtime.
pub struct TestIdentity {
    pub url: String,
    /// Origin of the JWKS and session-status endpoints (`IDENTITY_URL` minus `/graphql`).
    pub base_url: String,
    pub app_keys: std::sync::Arc<vitrina_identity::keys::KeyRing>,
    pub db: sea_orm::DatabaseConnection,
    _data_dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

/// How a test identity keeps its state.
pub struct IdentityOptions<'a> {
    pub store: Store,
    /// Sessions and throttling in the machine's Redis instead of memory.
    pub redis: bool,
    pub extra: &'a [(&'a str, String)],
}

pub async fn spawn_identity(options: IdentityOptions<'_>) -> TestIdentity {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database = match options.store {
        Store::Postgres => Some(TestDatabase::create().await),
        Store::EmbeddedSqlite => None,
    };
    let mut overrides: Vec<(&str, String)> = Vec::new();
    if let Some(database) = &database {
        overrides.push(("DATABASE_URL", database.url.clone()));
    }
    if options.redis {
        overrides.push(("REDIS_URL", test_redis_url()));
    }
    overrides.extend(options.extra.iter().cloned());
    let settings = test_settings(data_dir.path(), &overrides);
    let app = vitrina_identity::Application::build(&settings)
        .await
        .expect("identity builds");
    let port = app.port();
    let db = app.database().clone();
    let app_keys = app.keys();
    tokio::spawn(app.run_until(std::future::pending()));
    TestIdentity {
        url: format!("http://127.0.0.1:{port}/graphql"),
        base_url: format!("http://127.0.0.1:{port}"),
        app_keys,
        db,
        _data_dir: data_dir,
        _database: database,
    }
}

/// The password of every account the tests create (it satisfies the password policy).
pub const PASSWORD: &str = "correct horse battery staple";

/// The composed supergraph, parsed and validated.
pub fn supergraph() -> apollo_compiler::validation::Valid<apollo_compiler::Schema> {
    let text = std::fs::read_to_string(repo_root().join("supergraph.graphql")).unwrap();
    apollo_compiler::Schema::parse_and_validate(text, "supergraph.graphql")
        .expect("supergraph.graphql is a valid schema")
}

/// A system whose identity bootstrapped an administrator; returns it and the admin's email
/// (password [`PASSWORD`]).
pub async fn spawn_system_with_admin(store: Store, redis: bool) -> (TestSystem, String) {
    let admin_email = format!("admin-{}@example.com", Uuid::now_v7().simple());
    let system = spawn_system(
        store,
        redis,
        &[
            ("BOOTSTRAP_ADMIN_EMAIL", admin_email.clone()),
            ("BOOTSTRAP_ADMIN_PASSWORD", PASSWORD.to_owned()),
        ],
    )
    .await;
    (system, admin_email)
}

/// identity, catalog, cart and orders (embedded stores unless asked otherwise) and the
/// router in front.
pub struct TestSystem {
    pub identity: TestIdentity,
    pub catalog: TestCatalog,
    pub cart: TestCart,
    pub orders: TestOrders,
    pub router: TestRouter,
}

pub async fn spawn_system(store: Store, redis: bool, identity_extra: &[(&str, String)]) -> TestSystem {
    let identity = spawn_identity(IdentityOptions {
        store,
        redis,
        extra: identity_extra,
    })
    .await;
    // The cart consumes the orders service's events, and the orders service reads carts:
    // the orders port is chosen first so each can be told where the other is.
    let orders_port = free_port();
    let mut shared = vec![
        ("IDENTITY_URL", identity.url.clone()),
        ("ORDERS_URL", format!("http://127.0.0.1:{orders_port}/graphql")),
    ];
    if redis {
        shared.push(("REDIS_URL", test_redis_url()));
    }
    let catalog = spawn_catalog_with(store, true, &shared).await;
    let cart = spawn_cart(&catalog.url, false, &shared).await;
    let mut orders_env = shared.clone();
    orders_env.push(("ORDERS_PORT", orders_port.to_string()));
    let orders = spawn_orders_service(store, &catalog.url, &cart.url, &orders_env).await;
    let mut router_env = shared.clone();
    router_env.push(("CATALOG_URL", catalog.url.clone()));
    router_env.push(("CART_URL", cart.url.clone()));
    let router = spawn_router_with(&router_env).await;
    TestSystem {
        identity,
        catalog,
        cart,
        orders,
        router,
    }
}

/// The response's `data`, asserting there were no errors.
pub fn data(response: &Value) -> &Value {
    assert!(response.get("errors").is_none(), "unexpected errors: {response:#}");
    &response["data"]
}

/// `extensions.code` of the first error.
pub fn first_error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no coded error in {response:#}"))
}

/// The types of the events on `orders.order` in the orders service's embedded log, in
/// publication order.
pub async fn published_order_events(orders_db: &sea_orm::DatabaseConnection) -> Vec<String> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    use vitrina_shared::bus::log_entity::record;
    record::Entity::find()
        .filter(record::Column::Topic.eq("orders.order"))
        .order_by_asc(record::Column::LogOffset)
        .all(orders_db)
        .await
        .expect("read the orders event log")
        .iter()
        .filter_map(|row| row.payload["eventType"].as_str().map(str::to_owned))
        .collect()
}

/// Polls `probe` until it returns `Some`, for effects that follow through events.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Redis server of the test's own, so the test can kill it (the machine's is shared).
pub struct OwnRedis {
    pub port: u16,
    child: Child,
}

impl OwnRedis {
    /// Keeps nothing on disk: a restart comes back empty.
    pub fn start(port: u16) -> Self {
        Self::spawn(port, &["--save", "", "--appendonly", "no"])
    }

    /// Appends every write to a file in `dir` before answering it (`appendfsync always`), as
    /// a Redis that is a database must: a restart on the same `dir` has every acknowledged write.
    pub fn start_persistent(port: u16, dir: &Path) -> Self {
        let dir = dir.display().to_string();
        Self::spawn(
            port,
            &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                &dir,
            ],
        )
    }

    fn spawn(port: u16, args: &[&str]) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (the machine runs Redis)");
        Self { port, child }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn wait_ready(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        for _ in 0..100 {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("own redis-server did not start");
    }

    /// SIGKILL: no shutdown save, no goodbye to clients.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A service as its own `vitrina serve <service>` process, so a test can kill it (SIGKILL,
/// nothing flushed or shut down) and start it again on the same port with the same settings.
pub struct ServiceProcess {
    service: &'static str,
    pub port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `service` with `env` on a free port and waits until it is ready.
    pub async fn start(service: &'static str, env: &[(&str, String)]) -> Self {
        Self::start_on(service, free_port(), env).await
    }

    /// Like [`ServiceProcess::start`], on a port chosen beforehand (for services whose URL
    /// others must know first).
    pub async fn start_on(service: &'static str, port: u16, env: &[(&str, String)]) -> Self {
        let mut process = Self {
            service,
            port,
            env: env
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
            child: None,
        };
        process.restart().await;
        process
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/graphql", self.port)
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the service (again) and waits until it answers `/ready`.
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new(env!("CARGO_BIN_EXE_vitrina"))
            .args(["serve", self.service])
            .env("VITRINA_CONFIG", repo_root().join("tests/absent-vitrina.toml"))
            .env(format!("{}_PORT", self.service.to_uppercase()), self.port.to_string())
            .env("LOG_LEVEL", "warn")
            .env_remove("REDIS_URL")
            .env_remove("DATABASE_URL")
            .env_remove("KAFKA_BROKERS")
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", self.service));
        self.child = Some(child);
        wait_for_ok(
            &format!("http://127.0.0.1:{}/ready", self.port),
            Duration::from_secs(30),
        )
        .await;
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A consumer of `topic` from its first message, in a group of its own (reads everything,
/// commits nothing): how tests read back what reached the broker.
pub fn topic_reader(brokers: &str, topic: &str) -> rdkafka::consumer::StreamConsumer {
    use rdkafka::consumer::Consumer as _;
    let consumer: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-{}", Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a Kafka consumer");
    consumer.subscribe(&[topic]).expect("subscribed");
    consumer
}
