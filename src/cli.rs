//! Command-line interface of the `vitrina` binary.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use vitrina_shared::{config::Settings, profile, telemetry};

use crate::{launcher, services::Service};

#[derive(Debug, Parser)]
#[command(name = "vitrina", version, about = "Vitrina commerce backend: router and subgraphs")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Default, Subcommand)]
pub enum Command {
    /// Start the router and every subgraph, seed demo data, stop all on Ctrl-C (default).
    #[default]
    Up,
    /// Run one subgraph.
    Serve { service: Service },
    /// Run the federation router (configured by `ROUTER_CONFIG_FILE_PATH`).
    Router,
    /// Run the PayPal simulator on its own, where PayPal would be: give the orders service
    /// its URL as `PAYPAL_BASE_URL`, with `PAYPAL_CLIENT_ID=vitrina-simulator`,
    /// `PAYPAL_CLIENT_SECRET=vitrina-simulator-secret` and
    /// `PAYPAL_WEBHOOK_ID=SIMULATED-WEBHOOK`. Webhooks go to `ORDERS_URL`.
    PaypalSimulator {
        /// The port to serve on; 0 picks a free one (the log says which).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Apply pending database migrations and exit (for production roll-outs).
    Migrate {
        /// Only this service; all services with a database by default.
        #[arg(long)]
        service: Option<Service>,
    },
    /// Make an account an administrator, creating it if needed (the first admin of a new
    /// installation). The password is read from `BOOTSTRAP_ADMIN_PASSWORD`, or from the
    /// first line of standard input when that is unset; it is only used to create a missing
    /// account.
    CreateAdmin {
        #[arg(long)]
        email: String,
    },
    /// Print a subgraph's federation SDL, or write it to `subgraphs/<name>/schema.graphql`.
    Sdl {
        service: Service,
        #[arg(long, value_enum, default_value_t = SdlOutput::Stdout)]
        output: SdlOutput,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SdlOutput {
    Stdout,
    File,
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    let settings = Settings::load().context("failed to load configuration")?;
    match command {
        Command::Up => {
            let _guard = telemetry::init("launcher", &settings.log, &settings.log_dir())?;
            launcher::run(&settings).await
        }
        Command::Serve { service } => {
            profile::check(&settings, service.name(), service.production_requirements())?;
            let _guard = telemetry::init(service.name(), &settings.log, &settings.log_dir())?;
            service.serve(&settings).await
        }
        Command::PaypalSimulator { port } => {
            let _guard = telemetry::init("paypal-simulator", &settings.log, &settings.log_dir())?;
            let simulator = vitrina_orders::simulator_app::SimulatorApplication::build(&settings, port).await?;
            tracing::info!(port = simulator.port(), "PayPal simulator listening");
            simulator.run_until_stopped().await
        }
        Command::Migrate { service } => {
            let _guard = telemetry::init("migrate", &settings.log, &settings.log_dir())?;
            let services = service.map(|s| vec![s]).unwrap_or_else(|| Service::ALL.to_vec());
            if services.iter().any(|service| *service != Service::Cart) {
                profile::check(&settings, "migrate", &[profile::Requirement::PostgreSql])?;
            }
            for service in services {
                service.migrate(&settings).await?;
            }
            Ok(())
        }
        Command::CreateAdmin { email } => {
            let _guard = telemetry::init("create-admin", &settings.log, &settings.log_dir())?;
            let password = match settings.bootstrap_admin.password.clone() {
                Some(password) => password,
                None => {
                    eprintln!("password for {email} (one line on standard input):");
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("failed to read the password")?;
                    secrecy::SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned())
                }
            };
            let (db, _) = vitrina_shared::db::connect_and_migrate::<vitrina_migrations::identity::Migrator>(
                &settings,
                vitrina_identity::DATABASE_SCHEMA,
            )
            .await
            .context("failed to prepare the identity database")?;
            let outcome = vitrina_identity::bootstrap::create_or_promote(&db, &email, password)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            eprintln!("{email}: {outcome:?}");
            Ok(())
        }
        Command::Sdl { service, output } => {
            let sdl = service.sdl();
            match output {
                SdlOutput::Stdout => print!("{sdl}"),
                SdlOutput::File if service.is_schema_first() => {
                    anyhow::bail!(
                        "{} is schema-first: {} is its source, edit it instead",
                        service.name(),
                        service.sdl_path().display()
                    );
                }
                SdlOutput::File => {
                    let path = service.sdl_path();
                    std::fs::write(&path, sdl).with_context(|| format!("failed to write {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
            }
            Ok(())
        }
        Command::Router => unreachable!("the router runs on its own runtime, dispatched in main"),
    }
}
