//! The orders service's side of the catalog's stock-reservation API
//! (`vitrina_shared::reservations`): hold an order's units at checkout, then commit,
//! release or return them as the order moves on.
//!
//! Every call is idempotent per order on the catalog's side, so connection failures and
//! 5xx answers are retried (bounded, with back-off) without any risk of holding twice.
//! Answers map onto the public error model: a shortage is a `CONFLICT` carrying the
//! catalog's message ("only 2 of Lamp left; 3 requested"), an unknown product
//! `NOT_FOUND`, an unreachable catalog `UNAVAILABLE`.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    reservations::{RESERVATIONS_PATH, RequestedLine, Reservation, ReservationStep, ReserveRequest},
};

const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

pub struct StockClient {
    http: reqwest::Client,
    /// The catalog's origin, e.g. `http://127.0.0.1:4002`.
    origin: String,
}

impl StockClient {
    /// The reservation API of the catalog whose GraphQL endpoint is `catalog_url`.
    pub fn new(catalog_url: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let origin = vitrina_shared::config::origin_of(catalog_url);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .context("failed to build the catalog reservation client")?;
        Ok(Self { http, origin })
    }

    /// Holds the units of every line for `order_id`, all or none.
    pub async fn reserve(&self, order_id: Uuid, lines: Vec<RequestedLine>) -> Result<Reservation, AppError> {
        let url = format!("{}{RESERVATIONS_PATH}", self.origin);
        self.post(&url, Some(&ReserveRequest { order_id, lines })).await
    }

    /// Commits, releases or returns the order's units.
    pub async fn advance(&self, order_id: Uuid, step: ReservationStep) -> Result<Reservation, AppError> {
        let url = format!("{}{RESERVATIONS_PATH}/{order_id}/{}", self.origin, step.path_segment());
        self.post::<(), _>(&url, None).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, url: &str, body: Option<&B>) -> Result<T, AppError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let mut request = self.http.post(url);
            if let Some(body) = body {
                request = request.json(body);
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return response.json().await.map_err(|error| {
                        AppError::internal(anyhow::anyhow!("the catalog's reservation answer: {error}"))
                    });
                }
                Ok(response) if response.status().is_server_error() => {
                    anyhow::anyhow!("the catalog answered {}", response.status())
                }
                Ok(response) => return Err(refusal(response).await),
                Err(error) => anyhow::Error::new(error).context("the catalog is unreachable"),
            };
            if attempt >= ATTEMPTS {
                return Err(AppError::Unavailable(failure));
            }
            tracing::warn!(
                error = format!("{failure:#}"),
                attempt,
                "stock reservation call failed; retrying"
            );
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }
}

/// A 4xx answer of the catalog, in the public error model.
async fn refusal(response: reqwest::Response) -> AppError {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let message = body["error"]["message"].as_str().unwrap_or("refused").to_owned();
    match status {
        StatusCode::CONFLICT => AppError::Conflict(message),
        StatusCode::NOT_FOUND => AppError::NotFound { entity: "product" },
        StatusCode::BAD_REQUEST => AppError::BadUserInput { field: None, message },
        other => AppError::internal(anyhow::anyhow!(
            "the catalog refused a reservation call with {other}: {message}"
        )),
    }
}
