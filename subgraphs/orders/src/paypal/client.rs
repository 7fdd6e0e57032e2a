//! The PayPal HTTP client.
//!
//! - OAuth2 client credentials: one access token, cached until a minute before it
//!   expires, fetched by one caller at a time; a 401 drops it and fetches a new one.
//! - `PayPal-Request-Id` on every POST, chosen by the caller from our own ids, so a
//!   retried create, capture or refund is answered with the first result instead of
//!   acting twice (PayPal's idempotency).
//! - Timeouts on every request; connection failures and 5xx answers are retried with
//!   exponential back-off up to `max_retries` with the same request id; 4xx answers are
//!   final and carry PayPal's error `name` and first `issue`.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    amount::{self, AmountError},
    types::{Capture, CreatedOrder, PayPalOrder, Refund, WebhookHeaders},
};

/// A token is refreshed this long before PayPal says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Where and as whom the client talks to PayPal.
#[derive(Debug, Clone)]
pub struct PayPalConfig {
    /// `https://api-m.sandbox.paypal.com`, `https://api-m.paypal.com`, or the simulator.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The id PayPal gave our webhook; part of every signature check.
    pub webhook_id: String,
    pub timeout: Duration,
    /// Retries after the first attempt, for connection failures and 5xx answers.
    pub max_retries: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PayPalError {
    /// Not reachable, timed out, or 5xx after every retry: worth trying again later.
    #[error("PayPal is unavailable: {0}")]
    Unavailable(String),
    /// A final 4xx answer, with PayPal's error name and first issue.
    #[error("PayPal refused the request ({status} {name}{}): {message}", issue.as_deref().map(|issue| format!(", {issue}")).unwrap_or_default())]
    Refused {
        status: u16,
        name: String,
        issue: Option<String>,
        message: String,
    },
    #[error("PayPal's answer was not understood: {0}")]
    Protocol(String),
    #[error(transparent)]
    Amount(#[from] AmountError),
}

impl PayPalError {
    /// PayPal's issue code of a refusal, e.g. `ORDER_NOT_APPROVED`.
    pub fn issue(&self) -> Option<&str> {
        match self {
            PayPalError::Refused { issue, .. } => issue.as_deref(),
            _ => None,
        }
    }
}

struct CachedToken {
    value: SecretString,
    refresh_after: Instant,
}

pub struct PayPalClient {
    http: reqwest::Client,
    config: PayPalConfig,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl PayPalClient {
    pub fn new(config: PayPalConfig) -> Result<Self, PayPalError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(config.timeout)
            .build()
            .map_err(|error| PayPalError::Protocol(error.to_string()))?;
        Ok(Self {
            http,
            config: PayPalConfig {
                base_url: config.base_url.trim_end_matches('/').to_owned(),
                ..config
            },
            token: tokio::sync::Mutex::new(None),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// Creates a PayPal order to capture `minor_units` of `currency` for our order
    /// `reference` (its id, also the idempotency key of the creation).
    pub async fn create_order(
        &self,
        reference: Uuid,
        minor_units: i64,
        currency: &str,
        return_url: &str,
        cancel_url: &str,
    ) -> Result<CreatedOrder, PayPalError> {
        let body = json!({
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": reference.to_string(),
                "custom_id": reference.to_string(),
                "amount": { "currency_code": currency, "value": amount::to_paypal(minor_units, currency)? },
            }],
            "application_context": {
                "return_url": return_url,
                "cancel_url": cancel_url,
                "user_action": "PAY_NOW",
                "shipping_preference": "SET_PROVIDED_ADDRESS",
            },
        });
        let request_id = format!("create-{reference}");
        let order: PayPalOrder = self
            .send(Method::POST, "/v2/checkout/orders", Some(&request_id), Some(&body))
            .await?;
        let approval_url = order
            .approval_url()
            .ok_or_else(|| PayPalError::Protocol(format!("order {} has no approval link", order.id)))?
            .to_owned();
        Ok(CreatedOrder {
            id: order.id,
            approval_url,
        })
    }

    pub async fn get_order(&self, paypal_order_id: &str) -> Result<PayPalOrder, PayPalError> {
        let path = format!("/v2/checkout/orders/{}", path_segment(paypal_order_id)?);
        self.send(Method::GET, &path, None, None).await
    }

    /// Captures an approved order. The request id is derived from the PayPal order id,
    /// so every retry of one capture, from any process, is the same request to PayPal.
    pub async fn capture(&self, paypal_order_id: &str) -> Result<Capture, PayPalError> {
        let path = format!("/v2/checkout/orders/{}/capture", path_segment(paypal_order_id)?);
        let request_id = format!("capture-{paypal_order_id}");
        let order: PayPalOrder = self
            .send(Method::POST, &path, Some(&request_id), Some(&json!({})))
            .await?;
        let capture = order
            .capture()
            .ok_or_else(|| PayPalError::Protocol(format!("order {} was captured without a capture", order.id)))?;
        Ok(Capture {
            order_id: order.id.clone(),
            capture_id: capture.id.clone(),
            status: capture.status.clone(),
        })
    }

    /// Refunds a capture in full.
    pub async fn refund(&self, capture_id: &str) -> Result<Refund, PayPalError> {
        let path = format!("/v2/payments/captures/{}/refund", path_segment(capture_id)?);
        let request_id = format!("refund-{capture_id}");
        self.send(Method::POST, &path, Some(&request_id), Some(&json!({})))
            .await
    }

    /// Asks PayPal whether a webhook delivery is genuine (verify-webhook-signature).
    pub async fn verify_webhook(&self, headers: &WebhookHeaders, event: &Value) -> Result<bool, PayPalError> {
        let body = json!({
            "auth_algo": headers.auth_algo,
            "cert_url": headers.cert_url,
            "transmission_id": headers.transmission_id,
            "transmission_sig": headers.transmission_sig,
            "transmission_time": headers.transmission_time,
            "webhook_id": self.config.webhook_id,
            "webhook_event": event,
        });
        let request_id = format!("verify-{}", headers.transmission_id);
        let answer: Value = self
            .send(
                Method::POST,
                "/v1/notifications/verify-webhook-signature",
                Some(&request_id),
                Some(&body),
            )
            .await?;
        Ok(answer["verification_status"] == "SUCCESS")
    }

    async fn access_token(&self, force_new: bool) -> Result<String, PayPalError> {
        let mut cached = self.token.lock().await;
        if !force_new
            && let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_after
        {
            return Ok(token.value.expose_secret().to_owned());
        }
        let response = self
            .http
            .post(format!("{}/v1/oauth2/token", self.config.base_url))
            .basic_auth(&self.config.client_id, Some(self.config.client_secret.expose_secret()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|error| PayPalError::Unavailable(error.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(refusal(status, response).await);
        }
        let body: Value = response
            .json()
            .await
            .map_err(|error| PayPalError::Protocol(error.to_string()))?;
        let (Some(token), Some(expires_in)) = (body["access_token"].as_str(), body["expires_in"].as_u64()) else {
            return Err(PayPalError::Protocol(
                "the token answer has no access_token or expires_in".into(),
            ));
        };
        let lifetime = Duration::from_secs(expires_in).saturating_sub(TOKEN_MARGIN);
        *cached = Some(CachedToken {
            value: SecretString::from(token.to_owned()),
            refresh_after: Instant::now() + lifetime,
        });
        Ok(token.to_owned())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        request_id: Option<&str>,
        body: Option<&Value>,
    ) -> Result<T, PayPalError> {
        let url = format!("{}{path}", self.config.base_url);
        let mut backoff = FIRST_BACKOFF;
        let mut retries = 0;
        let mut renewed_token = false;
        loop {
            let token = self.access_token(false).await?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token)
                .header("Prefer", "return=representation");
            if let Some(request_id) = request_id {
                request = request.header("PayPal-Request-Id", request_id);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return response
                        .json()
                        .await
                        .map_err(|error| PayPalError::Protocol(format!("{method} {path}: {error}")));
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !renewed_token => {
                    // The token was revoked or expired early: one fresh token, then judge.
                    renewed_token = true;
                    self.access_token(true).await?;
                    continue;
                }
                Ok(response) if response.status().is_server_error() => {
                    PayPalError::Unavailable(format!("{method} {path}: {}", response.status()))
                }
                Ok(response) => return Err(refusal(response.status(), response).await),
                Err(error) => PayPalError::Unavailable(format!("{method} {path}: {error}")),
            };
            if retries >= self.config.max_retries {
                return Err(failure);
            }
            tracing::warn!(%failure, retry = retries + 1, request_id, "PayPal call failed; retrying with the same request id");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            retries += 1;
        }
    }
}

/// Ids go into URL paths: PayPal's are alphanumeric, anything else is refused.
fn path_segment(id: &str) -> Result<&str, PayPalError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(id)
    } else {
        Err(PayPalError::Protocol(format!("{id:?} is not a PayPal id")))
    }
}

async fn refusal(status: StatusCode, response: reqwest::Response) -> PayPalError {
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let name = body["name"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or("UNKNOWN")
        .to_owned();
    let issue = body["details"][0]["issue"].as_str().map(str::to_owned);
    let message = body["message"]
        .as_str()
        .or_else(|| body["error_description"].as_str())
        .unwrap_or("")
        .to_owned();
    PayPalError::Refused {
        status: status.as_u16(),
        name,
        issue,
        message,
    }
}
