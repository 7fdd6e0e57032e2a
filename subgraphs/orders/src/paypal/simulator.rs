//! The PayPal simulator: PayPal's Orders v2, Payments and webhook-verification endpoints
//! as the client uses them, an approval page, and signed webhook deliveries, served by
//! the orders service itself when no PayPal credentials are configured (the embedded
//! default), or on its own port by `vitrina paypal-simulator` ([`crate::simulator_app`]).
//! The real [`super::PayPalClient`] talks to it over HTTP, so the one-command run
//! completes purchases offline and the tests exercise the real client code.
//!
//! Faithful where our correctness depends on it:
//! - OAuth2 client credentials and bearer tokens (401 without a valid token);
//! - `PayPal-Request-Id` idempotency: a POST repeated with the same id answers with the
//!   first answer and acts once;
//! - the order state machine: capture before approval is `422 ORDER_NOT_APPROVED`, a
//!   second capture `422 ORDER_ALREADY_CAPTURED`, refunds only of completed captures;
//! - webhooks signed over `transmission_id|transmission_time|webhook_id|crc32(body)`
//!   (HMAC-SHA256 with a key of this process, where PayPal uses SHA256withRSA), checked
//!   by the same verify-webhook-signature API the client calls on real PayPal.
//!
//! Under `/simulator/` it also has controls for tests and demos: make the next captures
//! answer 500 after capturing (a lost answer), or count an order's captures.
//!
//! Its memory is bounded: it remembers the latest [`REMEMBERED_ORDERS`] orders and
//! [`REMEMBERED_ANSWERS`] idempotent answers, forgetting the oldest first (PayPal itself
//! expires an order nobody captured within hours). A process that runs for days under
//! load, or the load harness, must not grow with every checkout it ever saw.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{amount, types::WebhookHeaders};

/// The credentials the simulator accepts (the client's defaults without configuration).
pub const CLIENT_ID: &str = "vitrina-simulator";
pub const CLIENT_SECRET: &str = "vitrina-simulator-secret";
/// The webhook id the simulator signs deliveries for.
pub const WEBHOOK_ID: &str = "SIMULATED-WEBHOOK";
const TOKEN_LIFETIME_SECONDS: u64 = 32_400;
const DELIVERY_ATTEMPTS: u32 = 5;
/// How many orders (with their captures) the simulator remembers.
pub const REMEMBERED_ORDERS: usize = 10_000;
/// How many successful idempotent answers it can replay (about two per order).
pub const REMEMBERED_ANSWERS: usize = 2 * REMEMBERED_ORDERS;

/// Where the simulator is reachable and where it delivers webhooks.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The simulator's own base URL as clients reach it (approval links point here).
    pub public_base_url: String,
    /// Our webhook endpoint; `None` delivers nothing.
    pub webhook_url: Option<String>,
}

#[derive(Debug, Clone)]
struct SimulatedOrder {
    id: String,
    status: &'static str,
    reference_id: String,
    currency: String,
    value: String,
    capture: Option<SimulatedCapture>,
}

#[derive(Debug, Clone)]
struct SimulatedCapture {
    id: String,
    status: &'static str,
}

#[derive(Default)]
struct Ledger {
    orders: HashMap<String, SimulatedOrder>,
    /// Order ids, oldest first: the order they are forgotten in.
    order_ids: VecDeque<String>,
    /// Capture id → order id.
    captures: HashMap<String, String>,
    /// (route, PayPal-Request-Id) → the first answer, as sent: one allocation each, where
    /// an order as a `Value` is dozens.
    answers: HashMap<(String, String), Sent>,
    /// Keys of `answers`, oldest first.
    answer_keys: VecDeque<(String, String)>,
    tokens: Vec<String>,
    /// Captures performed per order (a double capture would show here).
    capture_count: HashMap<String, u32>,
    /// How many coming captures answer 500 after capturing.
    lost_capture_answers: u32,
}

impl Ledger {
    fn add_order(&mut self, order: SimulatedOrder) {
        self.order_ids.push_back(order.id.clone());
        self.orders.insert(order.id.clone(), order);
        while self.order_ids.len() > REMEMBERED_ORDERS {
            let Some(oldest) = self.order_ids.pop_front() else {
                break;
            };
            if let Some(forgotten) = self.orders.remove(&oldest) {
                if let Some(capture) = forgotten.capture {
                    self.captures.remove(&capture.id);
                }
                self.capture_count.remove(&oldest);
            }
        }
    }

    fn remember_answer(&mut self, key: (String, String), answer: Sent) {
        self.answer_keys.push_back(key.clone());
        self.answers.insert(key, answer);
        while self.answer_keys.len() > REMEMBERED_ANSWERS {
            let Some(oldest) = self.answer_keys.pop_front() else {
                break;
            };
            self.answers.remove(&oldest);
        }
    }
}

/// The simulator's state; cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    config: Arc<SimulatorConfig>,
    ledger: Arc<Mutex<Ledger>>,
    signing_key: Arc<SecretString>,
    http: reqwest::Client,
}

type Answer = (StatusCode, Value);

/// An answer with its body written out, as remembered and replayed.
type Sent = (StatusCode, Bytes);

fn sent((status, body): Answer) -> Sent {
    (status, Bytes::from(body.to_string()))
}

fn error(status: StatusCode, name: &str, issue: &str, message: &str) -> Answer {
    (
        status,
        json!({ "name": name, "message": message, "details": [{ "issue": issue, "description": message }] }),
    )
}

fn random_id(length: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..length)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Self {
        let key: [u8; 32] = rand::rng().random();
        Self {
            config: Arc::new(SimulatorConfig {
                public_base_url: config.public_base_url.trim_end_matches('/').to_owned(),
                ..config
            }),
            ledger: Arc::new(Mutex::new(Ledger::default())),
            signing_key: Arc::new(SecretString::from(
                base64::engine::general_purpose::STANDARD.encode(key),
            )),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The routes, to mount at the root of the simulator's base URL.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/oauth2/token", post(token))
            .route("/v2/checkout/orders", post(create_order))
            .route("/v2/checkout/orders/{id}", get(get_order))
            .route("/v2/checkout/orders/{id}/capture", post(capture))
            .route("/v2/payments/captures/{id}/refund", post(refund))
            .route("/v1/notifications/verify-webhook-signature", post(verify))
            .route("/checkoutnow", get(approve))
            .route("/simulator/faults", post(set_faults))
            .route("/simulator/orders/{id}", get(inspect))
            .route("/simulator/stats", get(stats))
            .with_state(self.clone())
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A panic while holding the lock cannot leave the ledger half-written in a way
        // that matters to a simulator; keep serving.
        self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.ledger().tokens.iter().any(|known| known == token)
    }

    /// Runs `act` once per (route, request id) until it succeeds; repeats of a success get
    /// its answer.
    fn idempotent(&self, route: &str, headers: &HeaderMap, act: impl FnOnce(&mut Ledger) -> Answer) -> Sent {
        let request_id = headers
            .get("paypal-request-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut ledger = self.ledger();
        if let Some(request_id) = &request_id
            && let Some(answer) = ledger.answers.get(&(route.to_owned(), request_id.clone()))
        {
            return answer.clone();
        }
        let answer = sent(act(&mut ledger));
        // Only what succeeded is remembered: a capture refused before approval may be
        // asked again, with the same id, once the buyer approved.
        if let Some(request_id) = request_id
            && answer.0.is_success()
        {
            ledger.remember_answer((route.to_owned(), request_id), answer.clone());
        }
        answer
    }

    fn order_json(&self, order: &SimulatedOrder) -> Value {
        let base = &self.config.public_base_url;
        let mut unit = json!({
            "reference_id": order.reference_id,
            "custom_id": order.reference_id,
            "amount": { "currency_code": order.currency, "value": order.value },
        });
        if let Some(capture) = &order.capture {
            unit["payments"] = json!({ "captures": [{
                "id": capture.id,
                "status": capture.status,
                "amount": { "currency_code": order.currency, "value": order.value },
            }] });
        }
        json!({
            "id": order.id,
            "intent": "CAPTURE",
            "status": order.status,
            "purchase_units": [unit],
            "links": [
                { "href": format!("{base}/v2/checkout/orders/{}", order.id), "rel": "self", "method": "GET" },
                { "href": format!("{base}/checkoutnow?token={}", order.id), "rel": "approve", "method": "GET" },
                { "href": format!("{base}/v2/checkout/orders/{}/capture", order.id), "rel": "capture", "method": "POST" },
            ],
        })
    }

    fn sign(&self, transmission_id: &str, transmission_time: &str, webhook_id: &str, body: &[u8]) -> String {
        let message = format!(
            "{transmission_id}|{transmission_time}|{webhook_id}|{}",
            crc32fast::hash(body)
        );
        // HMAC accepts keys of every length, so this never takes the `else`.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.signing_key.expose_secret().as_bytes()) else {
            return String::new();
        };
        mac.update(message.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    fn cert_url(&self) -> String {
        format!("{}/v1/notifications/certs/simulator", self.config.public_base_url)
    }

    /// Delivers a webhook event in the background, retrying like PayPal (fewer times).
    fn deliver(&self, event_type: &str, resource_type: &str, resource: Value) {
        let Some(url) = self.config.webhook_url.clone() else {
            return;
        };
        let event = json!({
            "id": format!("WH-{}", random_id(17)),
            "event_version": "1.0",
            "create_time": Utc::now().to_rfc3339(),
            "resource_type": resource_type,
            "event_type": event_type,
            "summary": format!("{event_type} (simulated)"),
            "resource": resource,
        });
        let body = event.to_string().into_bytes();
        let transmission_id = uuid::Uuid::new_v4().to_string();
        let transmission_time = Utc::now().to_rfc3339();
        let signature = self.sign(&transmission_id, &transmission_time, WEBHOOK_ID, &body);
        let simulator = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            for attempt in 1..=DELIVERY_ATTEMPTS {
                let response = simulator
                    .http
                    .post(&url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(WebhookHeaders::AUTH_ALGO, "SHA256withRSA")
                    .header(WebhookHeaders::CERT_URL, simulator.cert_url())
                    .header(WebhookHeaders::TRANSMISSION_ID, &transmission_id)
                    .header(WebhookHeaders::TRANSMISSION_SIG, &signature)
                    .header(WebhookHeaders::TRANSMISSION_TIME, &transmission_time)
                    .body(body.clone())
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().is_success() => return,
                    Ok(response) => {
                        tracing::warn!(attempt, status = %response.status(), "simulated webhook refused; retrying")
                    }
                    Err(error) => tracing::warn!(attempt, %error, "simulated webhook not delivered; retrying"),
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        });
    }
}

fn respond((status, body): Answer) -> Response {
    (status, Json(body)).into_response()
}

fn respond_sent((status, body): Sent) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn token(State(simulator): State<Simulator>, headers: HeaderMap) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()) != Some(expected.as_str()) {
        return respond((
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_client", "error_description": "Client Authentication failed" }),
        ));
    }
    let token = format!("A21AA{}", random_id(40));
    simulator.ledger().tokens.push(token.clone());
    respond((
        StatusCode::OK,
        json!({ "scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
                "token_type": "Bearer", "app_id": "APP-SIMULATOR", "expires_in": TOKEN_LIFETIME_SECONDS }),
    ))
}

fn unauthorized() -> Response {
    respond((
        StatusCode::UNAUTHORIZED,
        json!({ "error": "invalid_token", "error_description": "Token signature verification failed" }),
    ))
}

async fn create_order(State(simulator): State<Simulator>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !simulator.authorized(&headers) {
        return unauthorized();
    }
    let answer = simulator.idempotent("create", &headers, |ledger| {
        let unit = &body["purchase_units"][0];
        let (Some(currency), Some(value)) = (
            unit["amount"]["currency_code"].as_str(),
            unit["amount"]["value"].as_str(),
        ) else {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "MISSING_REQUIRED_PARAMETER",
                "purchase_units[0].amount is required",
            );
        };
        if body["intent"] != "CAPTURE" {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY",
                "INVALID_PARAMETER_VALUE",
                "only CAPTURE is simulated",
            );
        }
        if !amount::SUPPORTED.contains(&currency) || amount::from_paypal(value, currency).is_err() {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY",
                "DECIMAL_PRECISION",
                "the amount does not fit the currency",
            );
        }
        let order = SimulatedOrder {
            id: random_id(17),
            status: "CREATED",
            reference_id: unit["reference_id"].as_str().unwrap_or("default").to_owned(),
            currency: currency.to_owned(),
            value: value.to_owned(),
            capture: None,
        };
        let answer = (StatusCode::CREATED, simulator.order_json(&order));
        ledger.add_order(order);
        answer
    });
    respond_sent(answer)
}

async fn get_order(State(simulator): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !simulator.authorized(&headers) {
        return unauthorized();
    }
    let order = simulator.ledger().orders.get(&id).cloned();
    respond(match order {
        Some(order) => (StatusCode::OK, simulator.order_json(&order)),
        None => not_found(),
    })
}

fn not_found() -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "INVALID_RESOURCE_ID",
        "The specified resource does not exist.",
    )
}

#[derive(Deserialize)]
struct ApprovalQuery {
    token: String,
}

/// The buyer's "Pay" click: approves the order and tells our webhook.
async fn approve(State(simulator): State<Simulator>, Query(query): Query<ApprovalQuery>) -> Response {
    let approved = {
        let mut ledger = simulator.ledger();
        match ledger.orders.get_mut(&query.token) {
            Some(order) if order.status == "CREATED" => {
                order.status = "APPROVED";
                Some(order.clone())
            }
            Some(_) => None,
            None => return (StatusCode::NOT_FOUND, Html("<h1>No such PayPal order</h1>")).into_response(),
        }
    };
    if let Some(order) = approved {
        simulator.deliver(
            "CHECKOUT.ORDER.APPROVED",
            "checkout-order",
            simulator.order_json(&order),
        );
    }
    Html(format!(
        "<!doctype html><title>PayPal (simulated)</title><h1>Payment approved</h1>\
         <p>PayPal order {} is approved (simulated: no money moves). You can return to the shop.</p>",
        query.token
    ))
    .into_response()
}

async fn capture(State(simulator): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !simulator.authorized(&headers) {
        return unauthorized();
    }
    let mut captured = None;
    let answer = simulator.idempotent("capture", &headers, |ledger| {
        let Some(order) = ledger.orders.get_mut(&id) else {
            return not_found();
        };
        match order.status {
            "APPROVED" => {}
            "COMPLETED" => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "UNPROCESSABLE_ENTITY",
                    "ORDER_ALREADY_CAPTURED",
                    "Order already captured.",
                );
            }
            _ => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "UNPROCESSABLE_ENTITY",
                    "ORDER_NOT_APPROVED",
                    "Payer has not yet approved the Order for payment.",
                );
            }
        }
        let capture = SimulatedCapture {
            id: random_id(17),
            status: "COMPLETED",
        };
        order.status = "COMPLETED";
        order.capture = Some(capture.clone());
        let order = order.clone();
        ledger.captures.insert(capture.id.clone(), order.id.clone());
        *ledger.capture_count.entry(order.id.clone()).or_default() += 1;
        captured = Some(order.clone());
        (StatusCode::CREATED, simulator.order_json(&order))
    });
    if let Some(order) = &captured {
        let unit = simulator.order_json(order)["purchase_units"][0].clone();
        let mut resource = unit["payments"]["captures"][0].clone();
        resource["supplementary_data"] = json!({ "related_ids": { "order_id": order.id } });
        resource["custom_id"] = unit["custom_id"].clone();
        simulator.deliver("PAYMENT.CAPTURE.COMPLETED", "capture", resource);
        let mut ledger = simulator.ledger();
        if ledger.lost_capture_answers > 0 {
            // The capture happened; its answer is lost on the way back.
            ledger.lost_capture_answers -= 1;
            return respond(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "INTERNAL_SERVICE_ERROR",
                "An internal server error has occurred.",
            ));
        }
    }
    respond_sent(answer)
}

async fn refund(State(simulator): State<Simulator>, headers: HeaderMap, Path(capture_id): Path<String>) -> Response {
    if !simulator.authorized(&headers) {
        return unauthorized();
    }
    let mut refunded = None;
    let answer = simulator.idempotent("refund", &headers, |ledger| {
        let Some(order_id) = ledger.captures.get(&capture_id).cloned() else {
            return not_found();
        };
        let Some(order) = ledger.orders.get_mut(&order_id) else {
            return not_found();
        };
        match &mut order.capture {
            Some(capture) if capture.status == "COMPLETED" => capture.status = "REFUNDED",
            _ => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "UNPROCESSABLE_ENTITY",
                    "CAPTURE_FULLY_REFUNDED",
                    "The capture has already been fully refunded.",
                );
            }
        }
        let refund_id = random_id(17);
        refunded = Some((
            refund_id.clone(),
            order.currency.clone(),
            order.value.clone(),
            order.reference_id.clone(),
        ));
        (StatusCode::CREATED, json!({ "id": refund_id, "status": "COMPLETED" }))
    });
    if let Some((refund_id, currency, value, reference)) = refunded {
        let resource = json!({
            "id": refund_id, "status": "COMPLETED", "custom_id": reference,
            "amount": { "currency_code": currency, "value": value },
            "links": [{ "href": format!("{}/v2/payments/captures/{capture_id}", simulator.config.public_base_url), "rel": "up", "method": "GET" }],
        });
        simulator.deliver("PAYMENT.CAPTURE.REFUNDED", "refund", resource);
    }
    respond_sent(answer)
}

async fn verify(State(simulator): State<Simulator>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !simulator.authorized(&headers) {
        return unauthorized();
    }
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let event = serde_json::to_vec(&body["webhook_event"]).unwrap_or_default();
    let expected = simulator.sign(
        &field("transmission_id"),
        &field("transmission_time"),
        &field("webhook_id"),
        &event,
    );
    let genuine = field("transmission_sig") == expected
        && field("webhook_id") == WEBHOOK_ID
        && field("cert_url") == simulator.cert_url();
    respond((
        StatusCode::OK,
        json!({ "verification_status": if genuine { "SUCCESS" } else { "FAILURE" } }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Faults {
    /// How many coming captures capture and then answer 500.
    lost_capture_answers: u32,
}

async fn set_faults(State(simulator): State<Simulator>, Json(faults): Json<Faults>) -> StatusCode {
    simulator.ledger().lost_capture_answers = faults.lost_capture_answers;
    StatusCode::NO_CONTENT
}

async fn inspect(State(simulator): State<Simulator>, Path(id): Path<String>) -> Response {
    let ledger = simulator.ledger();
    match ledger.orders.get(&id) {
        Some(order) => respond((
            StatusCode::OK,
            json!({ "status": order.status, "captures": ledger.capture_count.get(&id).copied().unwrap_or(0) }),
        )),
        None => respond(not_found()),
    }
}

async fn stats(State(simulator): State<Simulator>) -> Response {
    let ledger = simulator.ledger();
    respond((
        StatusCode::OK,
        json!({ "tokensIssued": ledger.tokens.len(), "orders": ledger.orders.len() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured_order(number: usize) -> SimulatedOrder {
        SimulatedOrder {
            id: format!("ORDER-{number}"),
            status: "COMPLETED",
            reference_id: format!("reference-{number}"),
            currency: "EUR".to_owned(),
            value: "1.00".to_owned(),
            capture: Some(SimulatedCapture {
                id: format!("CAPTURE-{number}"),
                status: "COMPLETED",
            }),
        }
    }

    #[test]
    fn the_ledger_forgets_its_oldest_orders_and_their_captures_beyond_its_bound() {
        let mut ledger = Ledger::default();
        for number in 0..=REMEMBERED_ORDERS {
            let order = captured_order(number);
            ledger.captures.insert(format!("CAPTURE-{number}"), order.id.clone());
            ledger.capture_count.insert(order.id.clone(), 1);
            ledger.add_order(order);
        }
        assert_eq!(ledger.orders.len(), REMEMBERED_ORDERS);
        assert!(!ledger.orders.contains_key("ORDER-0"));
        assert!(!ledger.captures.contains_key("CAPTURE-0"));
        assert!(!ledger.capture_count.contains_key("ORDER-0"));
        assert!(ledger.orders.contains_key("ORDER-1"));
        assert!(ledger.captures.contains_key(&format!("CAPTURE-{REMEMBERED_ORDERS}")));
        assert_eq!(ledger.captures.len(), REMEMBERED_ORDERS);
    }

    #[test]
    fn the_ledger_replays_its_latest_answers_and_forgets_the_oldest() {
        let mut ledger = Ledger::default();
        for number in 0..=REMEMBERED_ANSWERS {
            let answer = sent((StatusCode::CREATED, json!({ "id": number })));
            ledger.remember_answer(("create".to_owned(), format!("request-{number}")), answer);
        }
        assert_eq!(ledger.answers.len(), REMEMBERED_ANSWERS);
        assert!(
            !ledger
                .answers
                .contains_key(&("create".to_owned(), "request-0".to_owned()))
        );
        let (status, body) = &ledger.answers[&("create".to_owned(), format!("request-{REMEMBERED_ANSWERS}"))];
        assert_eq!(*status, StatusCode::CREATED);
        assert_eq!(&body[..], format!("{{\"id\":{REMEMBERED_ANSWERS}}}").as_bytes());
    }
}
