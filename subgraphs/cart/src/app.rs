//! Wiring of the cart service: store, catalog client, schema, HTTP, and the consumer of
//! order events (a placed order takes its lines out of the cart) beside the server.

use std::sync::Arc;

use anyhow::Context as _;
use vitrina_shared::{
    auth,
    bus::{EventBus, EventConsumer, RetryPolicy, TopicHome},
    config::Settings,
    http::{HttpService, ReadinessProbe, graphql_routes, service_router},
    redis_store::{self, RedisProbe},
    shutdown::ShutdownController,
};

use crate::{
    catalog_client::CatalogClient,
    events::CartEvents,
    service::Carts,
    store::{CartStore, MemoryCartStore, RedisCartStore},
};

/// A cart service bound to its port and ready to run.
pub struct Application {
    http: HttpService,
    carts: Carts,
    order_events: EventConsumer<CartEvents>,
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
        let bus = EventBus::from_settings(settings);
        bus.log_ready("cart");
        let order_events = bus.consumer(
            "cart.order-events",
            "orders.order",
            TopicHome::Service(settings.orders_url()),
            CartEvents::new(carts.clone()),
            RetryPolicy::default(),
        )?;
        let schema = crate::build_schema(|builder| builder.data(carts.clone()))
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
        Ok(Self {
            http,
            carts,
            order_events,
        })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// The cart use cases, for tests that arrange or inspect carts directly.
    pub fn carts(&self) -> &Carts {
        &self.carts
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(vitrina_shared::shutdown::signal()).await
    }

    /// Serves and consumes order events until `stop` resolves; then drains requests and
    /// lets the consumer finish the event in hand.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let tasks = ShutdownController::default();
        let mut consumer_stop = tasks.listener();
        tokio::spawn(self.order_events.run_until(async move { consumer_stop.recv().await }));
        let served = self.http.run_until(stop).await.context("cart HTTP server failed");
        tasks.shutdown().await;
        served
    }
}
