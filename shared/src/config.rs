//! Layered configuration: built-in defaults, then an optional TOML file, then environment
//! variables (highest precedence).
//!
//! The environment layer is an explicit table ([`ENVIRONMENT_VARIABLES`]) rather than a
//! prefix scan: the names are the public, documented interface (README, docker-compose,
//! `.env.example`), and a test checks those files only use names from this table.
//! Secrets are held as [`SecretString`] so that `Debug` output and logs never show them.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

/// Every environment variable Vitrina reads, with the configuration key it sets and what
/// it means. Order is the order of the README's configuration table.
pub const ENVIRONMENT_VARIABLES: &[EnvironmentVariable] = &[
    EnvironmentVariable::new("APP_ENV", "app_env", "`development` (default) or `production`."),
    EnvironmentVariable::new(
        "VITRINA_CONFIG",
        "",
        "Path of an optional TOML file layered between defaults and environment (default `vitrina.toml`).",
    ),
    EnvironmentVariable::new(
        "BIND_HOST",
        "host",
        "Interface every process listens on (default `127.0.0.1`).",
    ),
    EnvironmentVariable::new("ROUTER_PORT", "ports.router", "Router port (default 4000)."),
    EnvironmentVariable::new(
        "IDENTITY_PORT",
        "ports.identity",
        "Identity subgraph port (default 4001).",
    ),
    EnvironmentVariable::new("CATALOG_PORT", "ports.catalog", "Catalog subgraph port (default 4002)."),
    EnvironmentVariable::new("CART_PORT", "ports.cart", "Cart subgraph port (default 4003)."),
    EnvironmentVariable::new("ORDERS_PORT", "ports.orders", "Orders subgraph port (default 4004)."),
    EnvironmentVariable::new(
        "IDENTITY_URL",
        "subgraph_urls.identity",
        "Identity GraphQL endpoint; the router calls it, and every validator derives identity's JWKS and session-status URLs from it (default derived from host and port).",
    ),
    EnvironmentVariable::new(
        "CATALOG_URL",
        "subgraph_urls.catalog",
        "Catalog endpoint the router and the cart call (default derived from host and port).",
    ),
    EnvironmentVariable::new(
        "CART_URL",
        "subgraph_urls.cart",
        "Cart endpoint the router calls (default derived from host and port).",
    ),
    EnvironmentVariable::new(
        "ORDERS_URL",
        "subgraph_urls.orders",
        "Orders endpoint the router and the cart call; its origin also serves the PayPal webhook and, without PayPal credentials, the PayPal simulator (default derived from host and port).",
    ),
    EnvironmentVariable::new(
        "ORDER_PAYMENT_TTL_SECONDS",
        "orders.payment_ttl_seconds",
        "How long an unpaid order holds its stock before it expires (default 1800).",
    ),
    EnvironmentVariable::new(
        "STOREFRONT_URL",
        "orders.storefront_url",
        "Storefront origin PayPal returns the buyer to (`/checkout/complete`, `/checkout/cancelled`; default `http://localhost:3000`).",
    ),
    EnvironmentVariable::new(
        "PAYPAL_CLIENT_ID",
        "paypal.client_id",
        "PayPal REST app client id. Unset (with the secret): payments go to the built-in PayPal simulator, and the log says so.",
    ),
    EnvironmentVariable::new(
        "PAYPAL_CLIENT_SECRET",
        "paypal.client_secret",
        "PayPal REST app secret (secret; never a default).",
    ),
    EnvironmentVariable::new(
        "PAYPAL_WEBHOOK_ID",
        "paypal.webhook_id",
        "Id of the webhook registered for `ORDERS_URL`'s `/webhooks/paypal`; part of every signature check (required with credentials).",
    ),
    EnvironmentVariable::new(
        "PAYPAL_BASE_URL",
        "paypal.base_url",
        "PayPal API base with credentials (default the sandbox, `https://api-m.sandbox.paypal.com`; live is `https://api-m.paypal.com`).",
    ),
    EnvironmentVariable::new(
        "CACHE_ENABLED",
        "cache.enabled",
        "Cache-aside caching of catalog reads (default `true`); `false` sends every read to the database.",
    ),
    EnvironmentVariable::new(
        "CACHE_TTL_SECONDS",
        "cache.ttl_seconds",
        "Lifetime of a cached entry before jitter (default 300); writes invalidate entries at once.",
    ),
    EnvironmentVariable::new(
        "CACHE_MEMORY_MAX_MB",
        "cache.memory_max_mb",
        "Size bound in MB of each embedded cache used when `REDIS_URL` is unset, and of each near cache in front of Redis (default 12; a cache that churns holds about 1.3 times its bound in resident memory).",
    ),
    EnvironmentVariable::new(
        "CACHE_NEAR_ENABLED",
        "cache.near_enabled",
        "With `REDIS_URL`: keep cache hits in process memory too, kept coherent by Redis client tracking (default `true`).",
    ),
    EnvironmentVariable::new(
        "DATA_DIR",
        "data_dir",
        "Directory for embedded databases and log files (default `./data`).",
    ),
    EnvironmentVariable::new(
        "DATABASE_URL",
        "database_url",
        "PostgreSQL URL (`postgres://…`). Unset: embedded SQLite files in `DATA_DIR`.",
    ),
    EnvironmentVariable::new(
        "DATABASE_MAX_CONNECTIONS",
        "database_max_connections",
        "Connection pool size per service (default 10).",
    ),
    EnvironmentVariable::new(
        "REDIS_URL",
        "redis_url",
        "Redis URL (`redis://…`) for sessions, login throttling, caches and carts. Unset: embedded in-process stores.",
    ),
    EnvironmentVariable::new(
        "KAFKA_BROKERS",
        "kafka_brokers",
        "Kafka bootstrap servers (`host:9092,…`) for domain events. Unset: each publishing service keeps its topics in its own database (the embedded event log).",
    ),
    EnvironmentVariable::new(
        "JWT_ISSUER",
        "auth.issuer",
        "`iss` of access tokens, checked by every validator (default `vitrina-identity`).",
    ),
    EnvironmentVariable::new(
        "JWT_AUDIENCE",
        "auth.audience",
        "`aud` of access tokens, checked by every validator (default `vitrina-api`).",
    ),
    EnvironmentVariable::new(
        "ACCESS_TOKEN_TTL_SECONDS",
        "auth.access_token_ttl_seconds",
        "Lifetime of access tokens (default 900).",
    ),
    EnvironmentVariable::new(
        "REFRESH_TOKEN_TTL_DAYS",
        "auth.refresh_token_ttl_days",
        "Idle lifetime of a session and its refresh token (default 30).",
    ),
    EnvironmentVariable::new(
        "REFRESH_REUSE_GRACE_SECONDS",
        "auth.refresh_reuse_grace_seconds",
        "How long the previous refresh token stays usable after a rotation, for a lost response (default 10).",
    ),
    EnvironmentVariable::new(
        "JWT_CLOCK_SKEW_SECONDS",
        "auth.clock_skew_seconds",
        "Clock difference tolerated on `exp`, `nbf` and `iat` (default 30).",
    ),
    EnvironmentVariable::new(
        "SIGNING_KEY_ROTATION_DAYS",
        "auth.key_rotation_days",
        "Age at which identity replaces its signing key; retired keys stay published until their tokens expire (default 30).",
    ),
    EnvironmentVariable::new(
        "BOOTSTRAP_ADMIN_EMAIL",
        "bootstrap_admin.email",
        "With `BOOTSTRAP_ADMIN_PASSWORD`: when no admin exists at identity start-up, this account is created (or promoted) as ADMIN.",
    ),
    EnvironmentVariable::new(
        "BOOTSTRAP_ADMIN_PASSWORD",
        "bootstrap_admin.password",
        "Password of the bootstrap admin when the account is created (secret; never a default).",
    ),
    EnvironmentVariable::new(
        "SEED_DEMO_DATA",
        "seed_demo_data",
        "Seed a small demo catalog into an empty database (default false; the launcher turns it on).",
    ),
    EnvironmentVariable::new(
        "LOG_LEVEL",
        "log.level",
        "Log level: `error`, `warn`, `info` (default), `debug` or `trace`; the router reads the same variable.",
    ),
    EnvironmentVariable::new(
        "LOG_FILTER",
        "log.filter",
        "Optional tracing filter directives overriding `LOG_LEVEL`, e.g. `vitrina_catalog=debug,info`.",
    ),
    EnvironmentVariable::new(
        "LOG_DIR",
        "log.dir",
        "Directory of the daily-rotated JSON log files (default `DATA_DIR/logs`).",
    ),
    EnvironmentVariable::new(
        "LOG_RETENTION_DAYS",
        "log.retention_days",
        "How many daily log files to keep per process (default 14).",
    ),
    EnvironmentVariable::new(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "log.otlp_endpoint",
        "Optional OTLP/HTTP collector base URL (e.g. `http://otel-collector:4318`): every process, the router included, exports its traces there; unset, nothing is exported.",
    ),
    EnvironmentVariable::new(
        "ROUTER_CONFIG_FILE_PATH",
        "",
        "Router configuration file (the launcher uses `router/router.yaml`).",
    ),
    EnvironmentVariable::new(
        "CORS_ALLOWED_ORIGINS",
        "",
        "Router: comma-separated browser origins allowed by CORS; replaces the default (Apollo Studio and the embedded Sandbox), so list those too if wanted.",
    ),
    EnvironmentVariable::new(
        "ROUTER_INTROSPECTION",
        "",
        "Router: `true` or `false` (a VRL expression); default `true`, and `false` under `APP_ENV=production` unless set.",
    ),
    EnvironmentVariable::new(
        "ROUTER_RESPONSE_CACHE_ENABLED",
        "",
        "Router: `false` turns the response cache for anonymous catalog reads off (default `true`; the load harness compares both).",
    ),
    EnvironmentVariable::new(
        "SUPERGRAPH_FILE",
        "",
        "Supergraph the router serves (default `supergraph.graphql` beside `router/`).",
    ),
];

/// One row of [`ENVIRONMENT_VARIABLES`].
#[derive(Debug, Clone, Copy)]
pub struct EnvironmentVariable {
    pub name: &'static str,
    /// Dotted configuration key the variable overrides; empty for variables read
    /// elsewhere: `VITRINA_CONFIG` steers loading itself, the router reads its own.
    pub key: &'static str,
    pub description: &'static str,
}

impl EnvironmentVariable {
    const fn new(name: &'static str, key: &'static str, description: &'static str) -> Self {
        Self { name, key, description }
    }
}

/// Whether the process runs as a developer's machine or as production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    Development,
    Production,
}

/// The settings of every Vitrina process. Each service reads only the parts it needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub app_env: AppEnv,
    pub host: String,
    pub ports: Ports,
    /// Explicit subgraph endpoints for the router; a missing entry is derived from
    /// `host` and `ports`, which is right for the one-command run.
    #[serde(default)]
    pub subgraph_urls: SubgraphUrls,
    pub data_dir: PathBuf,
    /// `None` selects the embedded SQLite default.
    pub database_url: Option<SecretString>,
    pub database_max_connections: u32,
    pub seed_demo_data: bool,
    /// `None` selects the embedded in-process stores.
    pub redis_url: Option<SecretString>,
    /// `None` selects the embedded event log.
    pub kafka_brokers: Option<String>,
    pub auth: AuthSettings,
    pub cache: CacheSettings,
    #[serde(default)]
    pub bootstrap_admin: BootstrapAdmin,
    pub log: LogSettings,
    pub orders: OrdersSettings,
    #[serde(default)]
    pub paypal: PayPalSettings,
}

/// The orders service's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersSettings {
    pub payment_ttl_seconds: u64,
    pub storefront_url: String,
}

/// PayPal REST credentials; without them the orders service runs the PayPal simulator.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayPalSettings {
    pub base_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub webhook_id: Option<String>,
}

/// Access tokens, sessions and signing keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_seconds: u64,
    pub refresh_token_ttl_days: u64,
    pub refresh_reuse_grace_seconds: u64,
    pub clock_skew_seconds: u64,
    pub key_rotation_days: u64,
}

/// Cache-aside caching of reads (Redis when configured, in-process otherwise).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Off turns every cached read into a database read (benchmarks, debugging).
    pub enabled: bool,
    pub ttl_seconds: u64,
    /// Size bound of the embedded cache, and of the near cache in front of Redis.
    pub memory_max_mb: u64,
    /// A near cache in front of Redis: hits cost no round trip (see `cache::near`).
    pub near_enabled: bool,
}

/// The first administrator, created at identity start-up when no admin exists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapAdmin {
    pub email: Option<String>,
    pub password: Option<SecretString>,
}

/// Listening ports of the router and the four subgraphs.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub router: u16,
    pub identity: u16,
    pub catalog: u16,
    pub cart: u16,
    pub orders: u16,
}

/// Endpoints the router sends subgraph requests to, when they are not the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubgraphUrls {
    pub identity: Option<String>,
    pub catalog: Option<String>,
    pub cart: Option<String>,
    pub orders: Option<String>,
}

/// Where and how much each process logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    /// Full `EnvFilter` directives; wins over `level` when set.
    pub filter: Option<String>,
    /// `None` means `data_dir/logs`.
    pub dir: Option<PathBuf>,
    pub retention_days: usize,
    /// OTLP/HTTP collector base URL; `None` exports no traces.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration is invalid: {0}")]
    Invalid(#[from] config::ConfigError),
}

impl Settings {
    /// Loads defaults → file → process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(|name| std::env::var(name).ok())
    }

    /// Loads with an explicit environment lookup, so tests never touch the real process
    /// environment (mutating it is unsound once threads run).
    pub fn load_from(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = env("VITRINA_CONFIG").unwrap_or_else(|| "vitrina.toml".to_owned());
        let mut builder = config::Config::builder()
            .set_default("app_env", "development")?
            .set_default("host", "127.0.0.1")?
            .set_default("ports.router", 4000)?
            .set_default("ports.identity", 4001)?
            .set_default("ports.catalog", 4002)?
            .set_default("ports.cart", 4003)?
            .set_default("ports.orders", 4004)?
            .set_default("data_dir", "data")?
            .set_default("database_max_connections", 10)?
            .set_default("seed_demo_data", false)?
            .set_default("auth.issuer", "vitrina-identity")?
            .set_default("auth.audience", "vitrina-api")?
            .set_default("auth.access_token_ttl_seconds", 900)?
            .set_default("auth.refresh_token_ttl_days", 30)?
            .set_default("auth.refresh_reuse_grace_seconds", 10)?
            .set_default("auth.clock_skew_seconds", 30)?
            .set_default("auth.key_rotation_days", 30)?
            .set_default("cache.enabled", true)?
            .set_default("cache.ttl_seconds", 300)?
            .set_default("cache.memory_max_mb", 12)?
            .set_default("cache.near_enabled", true)?
            .set_default("log.level", "info")?
            .set_default("log.retention_days", 14)?
            .set_default("orders.payment_ttl_seconds", 1800)?
            .set_default("orders.storefront_url", "http://localhost:3000")?
            .add_source(config::File::new(&file, config::FileFormat::Toml).required(false));
        for variable in ENVIRONMENT_VARIABLES.iter().filter(|v| !v.key.is_empty()) {
            if let Some(value) = env(variable.name).filter(|v| !v.is_empty()) {
                builder = builder.set_override(variable.key, value)?;
            }
        }
        Ok(builder.build()?.try_deserialize()?)
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    pub fn log_dir(&self) -> PathBuf {
        self.log.dir.clone().unwrap_or_else(|| self.data_dir.join("logs"))
    }

    /// The address a service binds: `host:port`.
    pub fn bind_address(&self, port: u16) -> String {
        format!("{}:{}", self.host, port)
    }

    /// The catalog endpoint the router should call.
    pub fn catalog_url(&self) -> String {
        self.subgraph_urls
            .catalog
            .clone()
            .unwrap_or_else(|| local_graphql_url(&self.host, self.ports.catalog))
    }

    /// The cart endpoint the router should call.
    pub fn cart_url(&self) -> String {
        self.subgraph_urls
            .cart
            .clone()
            .unwrap_or_else(|| local_graphql_url(&self.host, self.ports.cart))
    }

    /// The orders endpoint the router and the cart call.
    pub fn orders_url(&self) -> String {
        self.subgraph_urls
            .orders
            .clone()
            .unwrap_or_else(|| local_graphql_url(&self.host, self.ports.orders))
    }

    /// The identity GraphQL endpoint.
    pub fn identity_url(&self) -> String {
        self.subgraph_urls
            .identity
            .clone()
            .unwrap_or_else(|| local_graphql_url(&self.host, self.ports.identity))
    }

    /// identity's origin (its GraphQL endpoint without `/graphql`), where the JWKS and
    /// the session-status endpoint live.
    pub fn identity_base_url(&self) -> String {
        origin_of(&self.identity_url())
    }

    /// The token policy every validator enforces.
    pub fn token_policy(&self) -> crate::auth::TokenPolicy {
        crate::auth::TokenPolicy {
            issuer: self.auth.issuer.clone(),
            audience: self.auth.audience.clone(),
            clock_skew: std::time::Duration::from_secs(self.auth.clock_skew_seconds),
        }
    }

    /// The SQLite file of a service when no `DATABASE_URL` is set.
    pub fn embedded_database_path(&self, service: &str) -> PathBuf {
        self.data_dir.join(format!("{service}.sqlite"))
    }
}

/// A service's origin: its GraphQL endpoint without `/graphql`.
pub fn origin_of(graphql_url: &str) -> String {
    graphql_url
        .strip_suffix("/graphql")
        .unwrap_or(graphql_url)
        .trim_end_matches('/')
        .to_owned()
}

fn local_graphql_url(host: &str, port: u16) -> String {
    format!("http://{}:{port}/graphql", client_host(host))
}

/// The host a local client connects to for a bind address: a wildcard bind address is
/// not something a client can connect to.
pub fn client_host(bind: &str) -> &str {
    if bind == "0.0.0.0" { "127.0.0.1" } else { bind }
}

/// Resolves `path` against the current directory, for log lines that tell the operator
/// exactly which file is in use.
pub fn display_path(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Settings {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load_from(|name| vars.get(name).cloned()).expect("settings load")
    }

    #[test]
    fn defaults_describe_the_one_command_run() {
        let settings = load(&[("VITRINA_CONFIG", "/nonexistent/vitrina.toml")]);
        assert_eq!(settings.app_env, AppEnv::Development);
        assert_eq!(settings.ports.router, 4000);
        assert_eq!(settings.ports.catalog, 4002);
        assert!(settings.database_url.is_none());
        assert_eq!(settings.catalog_url(), "http://127.0.0.1:4002/graphql");
        assert_eq!(settings.identity_base_url(), "http://127.0.0.1:4001");
        assert!(settings.redis_url.is_none());
        assert_eq!(settings.auth.access_token_ttl_seconds, 900);
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vitrina.toml");
        std::fs::write(&file, "host = \"0.0.0.0\"\n[ports]\ncatalog = 5002\nrouter = 5000\n").unwrap();
        let settings = load(&[
            ("VITRINA_CONFIG", file.to_str().unwrap()),
            ("ROUTER_PORT", "6000"),
            ("DATABASE_URL", "postgres://user:hunter2@db/vitrina"),
        ]);
        assert_eq!(settings.ports.router, 6000, "environment wins over the file");
        assert_eq!(settings.ports.catalog, 5002, "the file wins over defaults");
        assert_eq!(settings.catalog_url(), "http://127.0.0.1:5002/graphql");
        let url = settings.database_url.as_ref().unwrap();
        assert_eq!(url.expose_secret(), "postgres://user:hunter2@db/vitrina");
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let settings = load(&[
            ("DATABASE_URL", "postgres://user:hunter2@db/vitrina"),
            ("REDIS_URL", "redis://:hunter3@cache:6379"),
            ("BOOTSTRAP_ADMIN_PASSWORD", "hunter4-correct-horse"),
        ]);
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter"), "{printed}");
    }

    #[test]
    fn a_typo_in_the_config_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vitrina.toml");
        std::fs::write(&file, "[ports]\ncatlog = 5002\n").unwrap();
        let vars: HashMap<String, String> = [("VITRINA_CONFIG".to_string(), file.to_str().unwrap().to_string())].into();
        let error = Settings::load_from(|name| vars.get(name).cloned()).unwrap_err();
        assert!(error.to_string().contains("catlog"), "{error}");
    }

    #[test]
    fn every_environment_variable_name_is_unique() {
        let mut names: Vec<_> = ENVIRONMENT_VARIABLES.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ENVIRONMENT_VARIABLES.len());
    }
}
