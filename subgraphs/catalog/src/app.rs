//! Wiring of the catalog service: database, schema, HTTP, and the event tasks (the
//! outbox relay and the price-history projection) that run beside the HTTP server.

use std::sync::Arc;

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use vitrina_migrations::catalog::Migrator;
use vitrina_shared::{
    auth,
    bus::{EmbeddedLog, EventBus, OutboxRelay, feed_routes},
    cache::Cache,
    config::Settings,
    db,
    http::{HttpService, graphql_routes, service_router},
    projection_state, redis_store,
    shutdown::ShutdownController,
};

use crate::{DATABASE_SCHEMA, graphql, price_history::PriceHistory, seed, service::Catalog};

/// The service name in topics (`catalog.product`) and consumer groups.
const SERVICE: &str = "catalog";

/// A catalog service bound to its port and ready to run.
pub struct Application {
    http: HttpService,
    db: DatabaseConnection,
    catalog: Catalog,
    relay: OutboxRelay,
    price_history: PriceHistory,
    bus: EventBus,
}

impl Application {
    /// Connects and migrates the database, seeds demo data when asked, binds the port.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let (mut db, kind) = db::connect_and_migrate::<Migrator>(settings, DATABASE_SCHEMA)
            .await
            .context("failed to prepare the catalog database")?;
        kind.log_ready("catalog");
        if settings.seed_demo_data
            && seed::seed_demo_catalog_if_empty(&db)
                .await
                .context("failed to seed the demo catalog")?
        {
            tracing::info!("seeded the demo catalog into an empty database");
        }
        let redis = redis_store::connect_if_configured(settings)
            .await
            .context("failed to connect the catalog to Redis")?;
        let bus = EventBus::from_settings(settings);
        bus.log_ready(SERVICE);
        // Cloned before instrumenting: the relay's and the projection's polling would
        // otherwise swamp the statement count of request handling.
        let events_db = db.clone();
        let relay = OutboxRelay::new(events_db.clone(), SERVICE, bus.publisher(&events_db)?);
        let price_history = PriceHistory::new(events_db.clone());
        let validator = Arc::new(auth::remote_validator(settings, redis.clone()));
        let statements = db::instrument(&mut db, SERVICE);
        let cache = Cache::from_settings(SERVICE, settings, redis.clone());
        let catalog = Catalog::new(db.clone(), cache, statements);
        let schema = graphql::build_schema(catalog.clone(), price_history.clone());
        let probes = db::store_probes(&db, redis);
        let mut routes = graphql_routes(schema, validator).merge(crate::internal::routes(catalog.clone()));
        if bus == EventBus::Embedded {
            routes = routes.merge(feed_routes(EmbeddedLog::new(events_db)));
        }
        let router = service_router(SERVICE, routes, probes);
        let address = settings.bind_address(settings.ports.catalog);
        let http = HttpService::bind(&address, router)
            .await
            .with_context(|| format!("failed to bind the catalog to {address}"))?;
        Ok(Self {
            http,
            db,
            catalog,
            relay,
            price_history,
            bus,
        })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// The catalog's database connection, for tests that arrange data directly.
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The catalog use cases, for tests that read cache and statement counts.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The price-history projection, for tests that rebuild it.
    pub fn price_history(&self) -> &PriceHistory {
        &self.price_history
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let db = self.db.clone();
        self.run_until(vitrina_shared::shutdown::signal()).await?;
        db.close().await.context("failed to close the catalog database")?;
        Ok(())
    }

    /// Serves and runs the event tasks until `stop` resolves; then drains requests and
    /// waits for the relay and the projection to finish what they are doing.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let tasks = ShutdownController::default();
        let mut relay_stop = tasks.listener();
        tokio::spawn(self.relay.run_until(async move { relay_stop.recv().await }));
        tokio::spawn(projection_state::run(self.price_history, self.bus, tasks.listener()));
        let served = self.http.run_until(stop).await.context("catalog HTTP server failed");
        tasks.shutdown().await;
        served
    }
}
