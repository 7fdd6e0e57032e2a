//! Vitrina's federation router: Hive Router (query planning, execution, CORS, CSRF, JWT,
//! limits, error masking) built as a library, with Vitrina's behaviour added through its
//! plugin API. We never plan queries ourselves.
//!
//! Configuration is `router/router.yaml` (Hive Router's format, unknown keys rejected at
//! start-up); its `from_env` placeholders let the launcher and tests choose the port,
//! the supergraph file and each subgraph's URL.

// Needed by ntex's way of composing middleware types.
#![recursion_limit = "256"]

pub mod io;
pub mod plugins;

use hive_router::{PluginRegistry, error::RouterInitError, init_rustls_crypto_provider, ntex, router_entrypoint};
use vitrina_shared::profile::Requirement;

/// The one plugin this build adds (its stages are configured inside it, see [`plugins`]).
pub fn plugin_registry() -> PluginRegistry {
    PluginRegistry::new().register::<plugins::Vitrina>()
}

/// Variables the production profile sets when the operator has not: introspection and
/// Hive Router's built-in laboratory off (the landing-page plugin turns itself off).
const PRODUCTION_DEFAULTS: [(&str, &str); 2] = [("ROUTER_INTROSPECTION", "false"), ("LABORATORY_ENABLED", "false")];

/// What the router uses in production: Redis (persisted queries, the response cache,
/// token status) and Kafka (the catalog events that retire cached responses).
const PRODUCTION_REQUIREMENTS: [Requirement; 2] = [Requirement::Redis, Requirement::Kafka];

/// Why the router would not start.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Config(#[from] vitrina_shared::config::ConfigError),
    #[error(transparent)]
    NotReady(#[from] vitrina_shared::profile::ProductionNotReady),
}

/// Turns Vitrina's settings into the environment Hive Router reads its configuration
/// from (`router.yaml`'s `from_env` placeholders): the production profile
/// (`APP_ENV=production`, which also requires real Redis and Kafka) and OTLP trace export
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, shared with every other process). Returns whether the
/// profile is production.
///
/// # Safety
/// Sets environment variables: call it before any other thread of the process exists
/// (first thing in `main`).
pub unsafe fn prepare_environment() -> Result<bool, ProfileError> {
    let settings = vitrina_shared::config::Settings::load()?;
    vitrina_shared::profile::check(&settings, "router", &PRODUCTION_REQUIREMENTS)?;
    let production = settings.is_production();
    let mut derived: Vec<(&str, String)> = Vec::new();
    if production {
        derived.extend(PRODUCTION_DEFAULTS.map(|(name, value)| (name, value.to_owned())));
    }
    if let Some(endpoint) = settings.log.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        // Hive Router's OTLP/HTTP exporter takes the full traces URL.
        derived.push(("TELEMETRY_TRACING_SAMPLING_RATE", "1.0".to_owned()));
        derived.push((
            "ROUTER_OTLP_TRACES_URL",
            format!("{}/v1/traces", endpoint.trim_end_matches('/')),
        ));
    }
    for (name, value) in derived {
        if std::env::var_os(name).is_none() {
            // SAFETY: the caller guarantees no other thread exists yet.
            unsafe { std::env::set_var(name, value) };
        }
    }
    // SAFETY: as above. Always set: the operator's filter is kept inside it.
    unsafe { std::env::set_var("LOG_FILTER", log_filter(&settings.log)) };
    Ok(production)
}

/// Hive Router logs every request's variables at debug (`router::coerce_variables`), and
/// passwords, refresh tokens and guest-cart tokens travel as variables: that target never
/// logs below info, whatever `LOG_LEVEL` or `LOG_FILTER` ask for.
fn log_filter(log: &vitrina_shared::config::LogSettings) -> String {
    let base = log.filter.clone().unwrap_or_else(|| log.level.clone());
    let cap = if matches!(log.level.as_str(), "warn" | "error") {
        log.level.as_str()
    } else {
        "info"
    };
    format!("{base},router::coerce_variables={cap}")
}

#[cfg(test)]
mod tests {
    use vitrina_shared::config::LogSettings;

    use super::log_filter;

    fn settings(level: &str, filter: Option<&str>) -> LogSettings {
        LogSettings {
            level: level.to_owned(),
            filter: filter.map(str::to_owned),
            dir: None,
            retention_days: 1,
            otlp_endpoint: None,
        }
    }

    #[test]
    fn request_variables_are_never_logged_at_debug_whatever_the_level_or_filter() {
        assert_eq!(
            log_filter(&settings("debug", None)),
            "debug,router::coerce_variables=info"
        );
        assert_eq!(
            log_filter(&settings("info", Some("router=debug,info"))),
            "router=debug,info,router::coerce_variables=info"
        );
        assert_eq!(
            log_filter(&settings("warn", None)),
            "warn,router::coerce_variables=warn"
        );
    }
}

/// Runs the router until it receives Ctrl-C or SIGTERM. Blocks the calling thread: the
/// router brings its own (ntex) runtime, so call this outside any async runtime.
#[hive_router::main]
pub async fn run() -> Result<(), RouterInitError> {
    init_rustls_crypto_provider();
    router_entrypoint(plugin_registry()).await
}
