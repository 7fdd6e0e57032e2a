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
    pub url: String,
    _data_dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

pub async fn spawn_catalog(store: Store, seed_demo: bool) -> TestCatalog {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database = match store {
        Store::Postgres => Some(TestDatabase::create().await),
        Store::EmbeddedSqlite => None,
    };
    let mut overrides = vec![("SEED_DEMO_DATA", seed_demo.to_string())];
    if let Some(database) = &database {
        overrides.push(("DATABASE_URL", database.url.clone()));
    }
    let settings = test_settings(data_dir.path(), &overrides);
    let app = vitrina_catalog::Application::build(&settings)
        .await
        .expect("catalog builds");
    let port = app.port();
    let db = app.database().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestCatalog {
        port,
        db,
        url: format!("http://127.0.0.1:{port}/graphql"),
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
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_vitrina"))
        .arg("router")
        .env("ROUTER_CONFIG_FILE_PATH", repo_root().join("router/router.yaml"))
        .env("SUPERGRAPH_FILE", repo_root().join("supergraph.graphql"))
        .env("ROUTER_PORT", port.to_string())
        .env("CATALOG_URL", &catalog.url)
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the router");
    let router = TestRouter {
        url: format!("http://127.0.0.1:{port}/graphql"),
        child,
    };
    wait_for_ok(&format!("http://127.0.0.1:{port}/health"), Duration::from_secs(30)).await;
    router
}

/// A port that was free a moment ago (for child processes that cannot report theirs).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
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
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("GraphQL request");
    assert!(response.status().is_success(), "HTTP {} from {url}", response.status());
    response.json().await.expect("JSON response")
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
