//! The parts of PayPal's JSON this service reads and writes (Orders v2, Payments v2,
//! Notifications v1). Unknown fields are ignored: PayPal adds fields freely.

use serde::{Deserialize, Serialize};

/// A PayPal order's status (Orders v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Created,
    Saved,
    Approved,
    Voided,
    Completed,
    PayerActionRequired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
    pub rel: String,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub currency_code: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureBody {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub amount: Option<Amount>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payments {
    #[serde(default)]
    pub captures: Vec<CaptureBody>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseUnit {
    #[serde(default)]
    pub reference_id: Option<String>,
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub payments: Option<Payments>,
}

/// A PayPal order as `GET /v2/checkout/orders/{id}` and the capture call return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayPalOrder {
    pub id: String,
    pub status: OrderStatus,
    #[serde(default)]
    pub purchase_units: Vec<PurchaseUnit>,
    #[serde(default)]
    pub links: Vec<Link>,
}

impl PayPalOrder {
    /// Where the buyer approves the payment.
    pub fn approval_url(&self) -> Option<&str> {
        self.links
            .iter()
            .find(|link| link.rel == "approve" || link.rel == "payer-action")
            .map(|link| link.href.as_str())
    }

    /// The first capture of the order, once captured.
    pub fn capture(&self) -> Option<&CaptureBody> {
        self.purchase_units
            .iter()
            .filter_map(|unit| unit.payments.as_ref())
            .flat_map(|payments| payments.captures.iter())
            .next()
    }
}

/// A created PayPal order: its id and where the buyer approves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedOrder {
    pub id: String,
    pub approval_url: String,
}

/// A completed capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub order_id: String,
    pub capture_id: String,
    /// `COMPLETED`, or `PENDING`/`DECLINED` as PayPal reports it.
    pub status: String,
}

/// A refund of a capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub status: String,
}

/// The transmission headers of a webhook delivery, checked with PayPal's
/// verify-webhook-signature API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookHeaders {
    pub auth_algo: String,
    pub cert_url: String,
    pub transmission_id: String,
    pub transmission_sig: String,
    pub transmission_time: String,
}

impl WebhookHeaders {
    pub const AUTH_ALGO: &'static str = "paypal-auth-algo";
    pub const CERT_URL: &'static str = "paypal-cert-url";
    pub const TRANSMISSION_ID: &'static str = "paypal-transmission-id";
    pub const TRANSMISSION_SIG: &'static str = "paypal-transmission-sig";
    pub const TRANSMISSION_TIME: &'static str = "paypal-transmission-time";

    /// The headers of a delivery, if every one is present and printable.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        let get = |name: &str| headers.get(name)?.to_str().ok().map(str::to_owned);
        Some(Self {
            auth_algo: get(Self::AUTH_ALGO)?,
            cert_url: get(Self::CERT_URL)?,
            transmission_id: get(Self::TRANSMISSION_ID)?,
            transmission_sig: get(Self::TRANSMISSION_SIG)?,
            transmission_time: get(Self::TRANSMISSION_TIME)?,
        })
    }
}
