//! Wiring of the catalog service: database, schema, HTTP.

use std::sync::Arc;

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use vitrina_migrations::catalog::Migrator;
use vitrina_shared::{
    auth,
    cache::Cache,
    config::Settings,
    db,
    http::{HttpService, graphql_routes, service_router},
    redis_store,
};

use crate::{DATABASE_SCHEMA, graphql, seed, service::Catalog};

/// A catalog service bound to its port and ready to run.
pub struct Application {
    http: HttpService,
    db: DatabaseConnection,
    catalog: Catalog,
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
        let validator = Arc::new(auth::remote_validator(settings, redis.clone()));
        let statements = db::instrument(&mut db, "catalog");
        let cache = Cache::from_settings("catalog", settings, redis.clone());
        let catalog = Catalog::new(db.clone(), cache, statements);
        let schema = graphql::build_schema(catalog.clone());
        let probes = db::store_probes(&db, redis);
        let router = service_router("catalog", graphql_routes(schema, validator), probes);
        let address = settings.bind_address(settings.ports.catalog);
        let http = HttpService::bind(&address, router)
            .await
            .with_context(|| format!("failed to bind the catalog to {address}"))?;
        Ok(Self { http, db, catalog })
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

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.http
            .run_until_stopped()
            .await
            .context("catalog HTTP server failed")?;
        self.db.close().await.context("failed to close the catalog database")?;
        Ok(())
    }

    pub async fn run_until(self, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.http.run_until(stop).await.context("catalog HTTP server failed")?;
        Ok(())
    }
}
