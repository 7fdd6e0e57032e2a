//! The PayPal simulator as a process of its own (`vitrina paypal-simulator`).
//!
//! Where it sits: without PayPal credentials the orders service serves the
//! [`Simulator`] itself (see [`crate::app`]). Run on its own, the simulator stands where
//! PayPal stands in production: an orders service given its base URL and credentials
//! talks to it as to PayPal, so a load test measures the orders service as it runs in
//! production, with PayPal's memory and CPU counted apart from it.

use anyhow::Context as _;
use vitrina_shared::{
    config::{Settings, client_host, origin_of},
    http::HttpService,
};

use crate::{
    paypal::simulator::{self, Simulator, SimulatorConfig},
    webhooks::WEBHOOK_PATH,
};

/// A simulator bound to its port and ready to run.
pub struct SimulatorApplication {
    http: HttpService,
}

impl SimulatorApplication {
    /// Binds `port` (0: any free port). Webhooks go to the orders service at `ORDERS_URL`.
    pub async fn build(settings: &Settings, port: u16) -> anyhow::Result<Self> {
        let address = settings.bind_address(port);
        let bound = HttpService::bind_port(&address)
            .await
            .with_context(|| format!("failed to bind the PayPal simulator to {address}"))?;
        let base_url = format!("http://{}:{}", client_host(&settings.host), bound.port());
        let webhook_url = format!("{}{WEBHOOK_PATH}", origin_of(&settings.orders_url()));
        tracing::warn!(
            %base_url,
            %webhook_url,
            client_id = simulator::CLIENT_ID,
            webhook_id = simulator::WEBHOOK_ID,
            "the PayPal simulator is serving: no money moves"
        );
        let simulator = Simulator::new(SimulatorConfig {
            public_base_url: base_url,
            webhook_url: Some(webhook_url),
        });
        Ok(Self {
            http: bound.serve(simulator.router()),
        })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.http
            .run_until_stopped()
            .await
            .context("the PayPal simulator stopped with an error")
    }
}
