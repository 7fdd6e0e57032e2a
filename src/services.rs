//! The subgraphs this binary can run, and what each needs to serve, migrate and publish.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;
use vitrina_migrations::MigratorTrait;
use vitrina_shared::{config::Settings, db};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    Catalog,
}

impl Service {
    pub const ALL: [Service; 1] = [Service::Catalog];

    pub fn name(self) -> &'static str {
        match self {
            Service::Catalog => "catalog",
        }
    }

    pub fn port(self, settings: &Settings) -> u16 {
        match self {
            Service::Catalog => settings.ports.catalog,
        }
    }

    /// The federation SDL the running service publishes.
    pub fn sdl(self) -> String {
        match self {
            Service::Catalog => vitrina_catalog::sdl(),
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
            Service::Catalog => {
                let app = vitrina_catalog::Application::build(settings).await?;
                tracing::info!(port = app.port(), "catalog listening");
                app.run_until_stopped().await
            }
        }
    }

    pub async fn migrate(self, settings: &Settings) -> anyhow::Result<()> {
        let (connection, kind) = db::connect(settings, self.name())
            .await
            .with_context(|| format!("failed to connect for {}", self.name()))?;
        let applied = match self {
            Service::Catalog => {
                let pending = vitrina_migrations::catalog::Migrator::get_pending_migrations(&connection)
                    .await?
                    .len();
                vitrina_migrations::catalog::Migrator::up(&connection, None).await?;
                pending
            }
        };
        tracing::info!(service = self.name(), ?kind, applied, "migrations up to date");
        eprintln!("{}: applied {applied} migration(s) ({kind:?})", self.name());
        Ok(())
    }
}
