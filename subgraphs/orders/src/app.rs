//! Wiring of the orders service: database, PayPal (or its simulator), the catalog and
//! cart clients, schema, webhook, and the tasks that run beside the HTTP server (the
//! outbox relay, the stock-effects consumer, the order-history projection and the
//! expiry sweep).

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use axum::Router;
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use vitrina_migrations::orders::Migrator;
use vitrina_shared::{
    auth,
    bus::{EmbeddedLog, EventBus, EventConsumer, OutboxRelay, RetryPolicy, TopicHome, feed_routes},
    config::{Settings, client_host, origin_of},
    db,
    http::{HttpService, graphql_routes, service_router},
    projection_state, redis_store,
    shutdown::ShutdownController,
};

use crate::{
    DATABASE_SCHEMA, TOPIC,
    cart_client::CartClient,
    expiry, graphql,
    order_queries::OrderQueries,
    paypal::{
        PayPalClient, PayPalConfig,
        simulator::{self, Simulator, SimulatorConfig},
    },
    projection::OrderView,
    service::{Orders, OrdersConfig},
    stock::StockClient,
    stock_effects::StockEffects,
    webhooks::{self, WEBHOOK_PATH},
};

/// The service name in topics (`orders.order`) and consumer groups.
const SERVICE: &str = "orders";
/// How long the stock-effects consumer gathers order events between reads of the embedded
/// event log. Most events (every `OrderPlaced`) need no stock effect, yet each cost a read
/// and an offset commit when read alone; a paid order's units are committed, a cancelled
/// one's released, at most 100 ms later.
const STOCK_EFFECTS_GATHERING: Duration = Duration::from_millis(100);
/// Where the simulator is mounted when payments are simulated.
pub const SIMULATOR_PATH: &str = "/paypal-simulator";
/// PayPal's sandbox, the default with credentials (live must be chosen explicitly).
const PAYPAL_SANDBOX: &str = "https://api-m.sandbox.paypal.com";

/// Real PayPal with credentials, otherwise the simulator this process serves.
enum Payments {
    PayPal(PayPalConfig),
    Simulated,
}

fn payments(settings: &Settings) -> anyhow::Result<Payments> {
    let paypal = &settings.paypal;
    match (&paypal.client_id, &paypal.client_secret) {
        (None, None) => Ok(Payments::Simulated),
        (Some(client_id), Some(client_secret)) => {
            let Some(webhook_id) = paypal.webhook_id.clone() else {
                bail!("PAYPAL_WEBHOOK_ID is required with PayPal credentials: webhooks cannot be verified without it");
            };
            Ok(Payments::PayPal(PayPalConfig {
                base_url: paypal.base_url.clone().unwrap_or_else(|| PAYPAL_SANDBOX.to_owned()),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                webhook_id,
                timeout: Duration::from_secs(10),
                max_retries: 2,
            }))
        }
        _ => bail!("set both PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET, or neither (the PayPal simulator)"),
    }
}

/// An orders service bound to its port and ready to run.
pub struct Application {
    http: HttpService,
    db: DatabaseConnection,
    orders: Orders,
    relay: OutboxRelay,
    stock_effects: EventConsumer<StockEffects>,
    order_view: OrderView,
    bus: EventBus,
    sweep_every: Duration,
}

impl Application {
    /// Connects and migrates the database, chooses PayPal or the simulator, binds the port.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let payments = payments(settings)?;
        let (mut db, kind) = db::connect_and_migrate::<Migrator>(settings, DATABASE_SCHEMA)
            .await
            .context("failed to prepare the orders database")?;
        kind.log_ready(SERVICE);
        let redis = redis_store::connect_if_configured(settings)
            .await
            .context("failed to connect the orders service to Redis")?;
        let bus = EventBus::from_settings(settings);
        bus.log_ready(SERVICE);
        let address = settings.bind_address(settings.ports.orders);
        let bound = HttpService::bind_port(&address)
            .await
            .with_context(|| format!("failed to bind the orders service to {address}"))?;
        let public_origin = origin_of(&match &settings.subgraph_urls.orders {
            Some(url) => url.clone(),
            None => format!("http://{}:{}", client_host(&settings.host), bound.port()),
        });
        let (paypal_config, simulator) = match payments {
            Payments::PayPal(config) => {
                tracing::info!(base_url = %config.base_url, "payments go to PayPal");
                (config, None)
            }
            Payments::Simulated => {
                let simulator = Simulator::new(SimulatorConfig {
                    public_base_url: format!("{public_origin}{SIMULATOR_PATH}"),
                    webhook_url: Some(format!("{public_origin}{WEBHOOK_PATH}")),
                });
                tracing::warn!(
                    simulator = %format!("{public_origin}{SIMULATOR_PATH}"),
                    "payments are SIMULATED (PAYPAL_CLIENT_ID is not set): no money moves; GET an approvalUrl to approve"
                );
                let config = PayPalConfig {
                    base_url: format!("http://127.0.0.1:{}{SIMULATOR_PATH}", bound.port()),
                    client_id: simulator::CLIENT_ID.to_owned(),
                    client_secret: SecretString::from(simulator::CLIENT_SECRET),
                    webhook_id: simulator::WEBHOOK_ID.to_owned(),
                    timeout: Duration::from_secs(10),
                    max_retries: 2,
                };
                (config, Some(simulator))
            }
        };
        let paypal = Arc::new(PayPalClient::new(paypal_config).context("failed to build the PayPal client")?);
        let stock = Arc::new(StockClient::new(&settings.catalog_url())?);
        let cart = Arc::new(CartClient::new(&settings.cart_url())?);
        let storefront = settings.orders.storefront_url.trim_end_matches('/');
        let payment_ttl = Duration::from_secs(settings.orders.payment_ttl_seconds.max(1));
        // Cloned before instrumenting: the event tasks' polling would otherwise swamp the
        // statement count of request handling.
        let events_db = db.clone();
        db::instrument(&mut db, SERVICE);
        let orders = Orders::new(
            db.clone(),
            stock.clone(),
            paypal.clone(),
            OrdersConfig {
                payment_ttl,
                return_url: format!("{storefront}/checkout/complete"),
                cancel_url: format!("{storefront}/checkout/cancelled"),
            },
        );
        let relay = OutboxRelay::new(events_db.clone(), SERVICE, bus.publisher(&events_db)?);
        let stock_effects = bus
            .consumer(
                "orders.stock-effects",
                TOPIC,
                TopicHome::ThisProcess(events_db.clone()),
                StockEffects::new(stock),
                RetryPolicy::default(),
            )?
            .gathering(STOCK_EFFECTS_GATHERING);
        let order_view = OrderView::new(events_db.clone());
        let schema = graphql::build_schema(orders.clone(), OrderQueries::new(db.clone()), cart);
        let validator = Arc::new(auth::remote_validator(settings, redis.clone()));
        let mut routes = graphql_routes(schema, validator).merge(webhooks::routes(orders.clone(), paypal));
        if bus == EventBus::Embedded {
            routes = routes.merge(feed_routes(EmbeddedLog::new(events_db)));
        }
        if let Some(simulator) = simulator {
            routes = routes.nest(SIMULATOR_PATH, simulator.router());
        }
        let router: Router = service_router(SERVICE, routes, db::store_probes(&db, redis));
        Ok(Self {
            http: bound.serve(router),
            db,
            orders,
            relay,
            stock_effects,
            order_view,
            bus,
            sweep_every: expiry::sweep_interval(payment_ttl),
        })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// The orders database, for tests that inspect or arrange rows.
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The order use cases, for tests.
    pub fn orders(&self) -> &Orders {
        &self.orders
    }

    /// The order-history projection, for tests that rebuild it.
    pub fn order_view(&self) -> &OrderView {
        &self.order_view
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let db = self.db.clone();
        self.run_until(vitrina_shared::shutdown::signal()).await?;
        db.close().await.context("failed to close the orders database")?;
        Ok(())
    }

    /// Serves and runs the event tasks until `stop` resolves; then drains requests and
    /// waits for the tasks to finish what they are doing.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let tasks = ShutdownController::default();
        let mut relay_stop = tasks.listener();
        tokio::spawn(self.relay.run_until(async move { relay_stop.recv().await }));
        let mut effects_stop = tasks.listener();
        tokio::spawn(self.stock_effects.run_until(async move { effects_stop.recv().await }));
        tokio::spawn(projection_state::run(self.order_view, self.bus, tasks.listener()));
        tokio::spawn(expiry::run(self.orders, self.sweep_every, tasks.listener()));
        let served = self.http.run_until(stop).await.context("orders HTTP server failed");
        tasks.shutdown().await;
        served
    }
}
