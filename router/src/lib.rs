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

/// Every plugin this build knows; `router.yaml` enables and configures them by name.
pub fn plugin_registry() -> PluginRegistry {
    PluginRegistry::new()
        .register::<plugins::authentication::Authentication>()
        .register::<plugins::client_address::ClientAddress>()
        .register::<plugins::landing_page::LandingPage>()
        .register::<plugins::persisted_queries::PersistedQueries>()
        .register::<plugins::request_id::RequestIdPropagation>()
        .register::<plugins::response_cache::ResponseCache>()
}

/// Variables the production profile sets when the operator has not: introspection and
/// Hive Router's built-in laboratory off (the landing-page plugin turns itself off).
const PRODUCTION_DEFAULTS: [(&str, &str); 2] = [("ROUTER_INTROSPECTION", "false"), ("LABORATORY_ENABLED", "false")];

/// Applies the production profile (`APP_ENV=production`) to the environment Hive Router
/// reads its configuration from. Returns whether the profile is production.
///
/// # Safety
/// Sets environment variables: call it before any other thread of the process exists
/// (first thing in `main`).
pub unsafe fn apply_profile() -> Result<bool, vitrina_shared::config::ConfigError> {
    let production = vitrina_shared::config::Settings::load()?.is_production();
    if production {
        for (name, value) in PRODUCTION_DEFAULTS {
            if std::env::var_os(name).is_none() {
                // SAFETY: the caller guarantees no other thread exists yet.
                unsafe { std::env::set_var(name, value) };
            }
        }
    }
    Ok(production)
}

/// Runs the router until it receives Ctrl-C or SIGTERM. Blocks the calling thread: the
/// router brings its own (ntex) runtime, so call this outside any async runtime.
#[hive_router::main]
pub async fn run() -> Result<(), RouterInitError> {
    init_rustls_crypto_provider();
    router_entrypoint(plugin_registry()).await
}
