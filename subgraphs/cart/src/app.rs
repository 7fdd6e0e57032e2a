//! Wiring of the cart service: store, catalog client, schema, HTTP.

use std::sync::Arc;

use anyhow::Context as _;
use vitrina_shared::{
    auth,
    config::Settings,
    graphql::ErrorCodes,
    http::{HttpService, ReadinessProbe, graphql_routes, service_router},
    redis_store::{self, RedisProbe},
};

use crate::{
    catalog_client::CatalogClient,
    service::Carts,
    store::{CartStore, MemoryCartStore, RedisCartStore},
};

/// A cart service bound to its port and ready to run.
pub struct Application {
    http: HttpService,
    carts: Carts,
}

impl Application {
    /// Builds the schema from `schema.graphql` (failing on any drift), connects the
    /// store, binds the port.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let redis = redis_store::connect_if_configured(settings)
            .await
            .context("failed to connect the cart to Redis")?;
        let store: Arc<dyn CartStore> = match &redis {
            Some(connection) => Arc::new(RedisCartStore::new(connection.clone())),
            None => Arc::new(MemoryCartStore::default()),
        };
        match store.kind() {
            "redis" => tracing::info!(store = "redis", "cart store ready"),
            kind => tracing::info!(
                store = kind,
                "cart store ready (embedded default: REDIS_URL is not set; carts live in this process)"
            ),
        }
        let catalog = CatalogClient::new(settings.catalog_url())?;
        let carts = Carts::new(store, catalog);
        let schema = crate::build_schema(|builder| builder.data(carts.clone()).extension(ErrorCodes))
            .context("the cart schema (subgraphs/cart/schema.graphql) and its resolvers disagree")?;
        let validator = Arc::new(auth::remote_validator(settings, redis.clone()));
        let probes: Vec<Arc<dyn ReadinessProbe>> = redis
            .map(|connection| Arc::new(RedisProbe(connection)) as Arc<dyn ReadinessProbe>)
            .into_iter()
            .collect();
        let router = service_router("cart", graphql_routes(schema, validator), probes);
        let address = settings.bind_address(settings.ports.cart);
        let http = HttpService::bind(&address, router)
            .await
            .with_context(|| format!("failed to bind the cart to {address}"))?;
        Ok(Self { http, carts })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// The cart use cases, for tests that arrange or inspect carts directly.
    pub fn carts(&self) -> &Carts {
        &self.carts
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.http.run_until_stopped().await.context("cart HTTP server failed")
    }

    pub async fn run_until(self, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.http.run_until(stop).await.context("cart HTTP server failed")
    }
}
