//! The subgraphs this binary can run, and what each needs to serve, migrate and publish.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;
use vitrina_migrations::MigratorTrait;
use vitrina_shared::{config::Settings, db, profile::Requirement};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    Identity,
    Catalog,
    Cart,
    Orders,
}

impl Service {
    /// In start order: identity first, since every other part validates its tokens.
    pub const ALL: [Service; 4] = [Service::Identity, Service::Catalog, Service::Cart, Service::Orders];

    pub fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Catalog => "catalog",
            Service::Cart => "cart",
            Service::Orders => "orders",
        }
    }

    pub fn port(self, settings: &Settings) -> u16 {
        match self {
            Service::Identity => settings.ports.identity,
            Service::Catalog => settings.ports.catalog,
            Service::Cart => settings.ports.cart,
            Service::Orders => settings.ports.orders,
        }
    }

    /// The endpoint the router calls, and the variable that overrides it.
    pub fn url(self, settings: &Settings) -> (&'static str, String) {
        match self {
            Service::Identity => ("IDENTITY_URL", settings.identity_url()),
            Service::Catalog => ("CATALOG_URL", settings.catalog_url()),
            Service::Cart => ("CART_URL", settings.cart_url()),
            Service::Orders => ("ORDERS_URL", settings.orders_url()),
        }
    }

    /// The real parts the service must be given under `APP_ENV=production`.
    pub fn production_requirements(self) -> &'static [Requirement] {
        match self {
            // Sessions, login throttling and the token-status cache live in Redis; no events.
            Service::Identity => &[Requirement::PostgreSql, Requirement::Redis],
            Service::Catalog => &[Requirement::PostgreSql, Requirement::Redis, Requirement::Kafka],
            // Carts live in Redis; `OrderPlaced` arrives over Kafka.
            Service::Cart => &[Requirement::Redis, Requirement::Kafka],
            Service::Orders => &[
                Requirement::PostgreSql,
                Requirement::Redis,
                Requirement::Kafka,
                Requirement::PayPal,
            ],
        }
    }

    /// Whether the SDL file is the service's source (and not printed from its code).
    pub fn is_schema_first(self) -> bool {
        self == Service::Cart
    }

    /// The federation SDL the running service publishes.
    pub fn sdl(self) -> String {
        match self {
            Service::Identity => vitrina_identity::sdl(),
            Service::Catalog => vitrina_catalog::sdl(),
            Service::Cart => vitrina_cart::sdl(),
            Service::Orders => vitrina_orders::sdl(),
        }
    }

    /// Where the SDL lives in the repository, as `supergraph.yaml` references it.
    pub fn sdl_path(self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("subgraphs")
            .join(self.name())
            .join("schema.graphql")
    }

    pub async fn serve(self, settings: &Settings) -> anyhow::Result<()> {
        match self {
            Service::Identity => {
                let app = vitrina_identity::Application::build(settings).await?;
                tracing::info!(port = app.port(), "identity listening");
                app.run_until_stopped().await
            }
            Service::Catalog => {
                let app = vitrina_catalog::Application::build(settings).await?;
                tracing::info!(port = app.port(), "catalog listening");
                app.run_until_stopped().await
            }
            Service::Cart => {
                let app = vitrina_cart::Application::build(settings).await?;
                tracing::info!(port = app.port(), "cart listening");
                app.run_until_stopped().await
            }
            Service::Orders => {
                let app = vitrina_orders::Application::build(settings).await?;
                tracing::info!(port = app.port(), "orders listening");
                app.run_until_stopped().await
            }
        }
    }

    pub async fn migrate(self, settings: &Settings) -> anyhow::Result<()> {
        if self == Service::Cart {
            eprintln!("cart: nothing to migrate (carts live in Redis, or in process)");
            return Ok(());
        }
        let (connection, kind) = db::connect(settings, self.name())
            .await
            .with_context(|| format!("failed to connect for {}", self.name()))?;
        let applied = match self {
            Service::Identity => apply::<vitrina_migrations::identity::Migrator>(&connection).await?,
            Service::Catalog => apply::<vitrina_migrations::catalog::Migrator>(&connection).await?,
            Service::Orders => apply::<vitrina_migrations::orders::Migrator>(&connection).await?,
            Service::Cart => 0,
        };
        tracing::info!(service = self.name(), ?kind, applied, "migrations up to date");
        eprintln!("{}: applied {applied} migration(s) ({kind:?})", self.name());
        Ok(())
    }
}

/// Applies `M`'s pending migrations; returns how many there were.
async fn apply<M: MigratorTrait>(connection: &sea_orm::DatabaseConnection) -> anyhow::Result<usize> {
    let pending = M::get_pending_migrations(connection).await?.len();
    M::up(connection, None).await?;
    Ok(pending)
}
