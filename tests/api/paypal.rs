//! The PayPal client against the PayPal simulator, over HTTP: the whole payment
//! lifecycle, signed webhooks, PayPal's idempotency under lost answers, refusals.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, http::HeaderMap, routing::post};
use secrecy::SecretString;
use serde_json::Value;
use uuid::Uuid;
use vitrina_orders::{
    paypal::{
        OrderStatus, PayPalClient, PayPalConfig, PayPalError, WebhookHeaders,
        simulator::{self, Simulator, SimulatorConfig},
    },
    simulator_app::SimulatorApplication,
};

use crate::helpers::test_settings;

/// Webhook deliveries as they arrived: headers and raw body.
type Deliveries = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

pub(crate) struct TestPayPal {
    pub(crate) base_url: String,
    deliveries: Deliveries,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

/// A stand-in for the orders service's webhook endpoint that records what arrives.
/// Returns its origin.
async fn spawn_webhook_recorder() -> (String, Deliveries) {
    let deliveries: Deliveries = Arc::default();
    let recorded = deliveries.clone();
    let receiver = axum::Router::new().route(
        "/webhooks/paypal",
        post(move |headers: HeaderMap, body: Bytes| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push((headers, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    (serve(receiver).await, deliveries)
}

/// A simulator delivering its webhooks to a recorder.
pub(crate) async fn spawn_paypal() -> TestPayPal {
    let (origin, deliveries) = spawn_webhook_recorder().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let simulator = Simulator::new(SimulatorConfig {
        public_base_url: base_url.clone(),
        webhook_url: Some(format!("{origin}/webhooks/paypal")),
    });
    let router = simulator.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    TestPayPal { base_url, deliveries }
}

pub(crate) fn client(paypal: &TestPayPal, secret: &str, max_retries: u32) -> PayPalClient {
    PayPalClient::new(PayPalConfig {
        base_url: paypal.base_url.clone(),
        client_id: simulator::CLIENT_ID.to_owned(),
        client_secret: SecretString::from(secret.to_owned()),
        webhook_id: simulator::WEBHOOK_ID.to_owned(),
        timeout: Duration::from_secs(5),
        max_retries,
    })
    .unwrap()
}

pub(crate) async fn wait_for_deliveries(paypal: &TestPayPal, count: usize) -> Vec<(HeaderMap, Bytes)> {
    let started = std::time::Instant::now();
    loop {
        let deliveries = paypal.deliveries.lock().unwrap().clone();
        if deliveries.len() >= count {
            return deliveries;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "only {} webhooks",
            deliveries.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn simulator_json(paypal: &TestPayPal, path: &str) -> Value {
    reqwest::get(format!("{}{path}", paypal.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_client_creates_approves_captures_and_refunds_a_payment_with_signed_webhooks() {
    let paypal = spawn_paypal().await;
    let client = client(&paypal, simulator::CLIENT_SECRET, 2);
    let reference = Uuid::now_v7();
    let created = client
        .create_order(
            reference,
            1999,
            "EUR",
            "https://shop.test/return",
            "https://shop.test/cancel",
        )
        .await
        .unwrap();
    let order = client.get_order(&created.id).await.unwrap();
    assert_eq!(order.status, OrderStatus::Created);
    let unit = &order.purchase_units[0];
    assert_eq!(unit.amount.as_ref().map(|amount| amount.value.as_str()), Some("19.99"));
    assert_eq!(unit.custom_id.as_deref(), Some(reference.to_string().as_str()));

    // Creating again for the same order is PayPal-idempotent: the same PayPal order.
    let again = client
        .create_order(
            reference,
            1999,
            "EUR",
            "https://shop.test/return",
            "https://shop.test/cancel",
        )
        .await
        .unwrap();
    assert_eq!(again, created);

    // Capture before approval is refused with PayPal's issue code.
    let refused = client.capture(&created.id).await.unwrap_err();
    assert_eq!(refused.issue(), Some("ORDER_NOT_APPROVED"), "{refused}");

    // The buyer approves (the approval page, fetched with GET).
    let page = reqwest::get(&created.approval_url).await.unwrap();
    assert!(page.status().is_success());
    assert_eq!(
        client.get_order(&created.id).await.unwrap().status,
        OrderStatus::Approved
    );

    let capture = client.capture(&created.id).await.unwrap();
    assert_eq!(capture.status, "COMPLETED");
    let refund = client.refund(&capture.capture_id).await.unwrap();
    assert_eq!(refund.status, "COMPLETED");
    let refused = client
        .refund(&Uuid::now_v7().simple().to_string()[..17])
        .await
        .unwrap_err();
    assert!(matches!(refused, PayPalError::Refused { status: 404, .. }), "{refused}");

    // Three webhooks, each verified by PayPal's verification API; altered ones are not.
    let deliveries = wait_for_deliveries(&paypal, 3).await;
    let mut types = Vec::new();
    for (headers, body) in &deliveries {
        let headers = WebhookHeaders::from_headers(headers).expect("every transmission header");
        let event: Value = serde_json::from_slice(body).unwrap();
        assert!(client.verify_webhook(&headers, &event).await.unwrap(), "{event}");
        types.push(event["event_type"].as_str().unwrap().to_owned());

        let mut altered = event.clone();
        altered["resource"]["amount"]["value"] = "0.01".into();
        assert!(
            !client.verify_webhook(&headers, &altered).await.unwrap(),
            "an altered body"
        );
        let forged = WebhookHeaders {
            transmission_id: Uuid::new_v4().to_string(),
            ..headers.clone()
        };
        assert!(
            !client.verify_webhook(&forged, &event).await.unwrap(),
            "a replayed signature"
        );
        let foreign_cert = WebhookHeaders {
            cert_url: "https://evil.example/cert.pem".to_owned(),
            ..headers
        };
        assert!(
            !client.verify_webhook(&foreign_cert, &event).await.unwrap(),
            "a foreign certificate"
        );
    }
    types.sort();
    assert_eq!(
        types,
        [
            "CHECKOUT.ORDER.APPROVED",
            "PAYMENT.CAPTURE.COMPLETED",
            "PAYMENT.CAPTURE.REFUNDED"
        ]
    );
    assert_eq!(
        simulator_json(&paypal, "/simulator/stats").await["tokensIssued"],
        1,
        "one cached access token for every call"
    );
}

#[tokio::test]
async fn the_simulator_on_its_own_takes_payments_and_signs_webhooks_to_the_orders_url() {
    // `vitrina paypal-simulator`: the recorder stands where ORDERS_URL points.
    let (orders_origin, deliveries) = spawn_webhook_recorder().await;
    let data_dir = tempfile::tempdir().unwrap();
    let settings = test_settings(data_dir.path(), &[("ORDERS_URL", format!("{orders_origin}/graphql"))]);
    let app = SimulatorApplication::build(&settings, 0).await.unwrap();
    let paypal = TestPayPal {
        base_url: format!("http://127.0.0.1:{}", app.port()),
        deliveries,
    };
    tokio::spawn(app.run_until_stopped());
    let client = client(&paypal, simulator::CLIENT_SECRET, 2);

    let created = client
        .create_order(
            Uuid::now_v7(),
            1250,
            "EUR",
            "https://shop.test/return",
            "https://shop.test/cancel",
        )
        .await
        .unwrap();
    assert!(
        created.approval_url.starts_with(&paypal.base_url),
        "the approval link points at the simulator: {}",
        created.approval_url
    );
    reqwest::get(&created.approval_url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let capture = client.capture(&created.id).await.unwrap();
    assert_eq!(capture.status, "COMPLETED");

    let deliveries = wait_for_deliveries(&paypal, 2).await;
    for (headers, body) in &deliveries {
        let headers = WebhookHeaders::from_headers(headers).expect("every transmission header");
        let event: Value = serde_json::from_slice(body).unwrap();
        assert!(client.verify_webhook(&headers, &event).await.unwrap(), "{event}");
    }
}

#[tokio::test]
async fn a_lost_capture_answer_is_retried_with_the_same_request_id_and_captures_once() {
    let paypal = spawn_paypal().await;
    let client = client(&paypal, simulator::CLIENT_SECRET, 3);
    let created = client
        .create_order(Uuid::now_v7(), 500, "JPY", "https://shop.test/r", "https://shop.test/c")
        .await
        .unwrap();
    reqwest::get(&created.approval_url).await.unwrap();
    // PayPal captures, but its answer is lost twice (a 500 after the capture).
    lose_capture_answers(&paypal, 2).await;
    let capture = client.capture(&created.id).await.unwrap();
    assert_eq!(capture.status, "COMPLETED");
    let state = simulator_json(&paypal, &format!("/simulator/orders/{}", created.id)).await;
    assert_eq!(state["captures"], 1, "three attempts, one capture: {state}");

    // Without retries the lost answer surfaces as unavailable, never as a refusal.
    let impatient = client_with_no_retries(&paypal);
    let second = impatient
        .create_order(Uuid::now_v7(), 500, "JPY", "https://shop.test/r", "https://shop.test/c")
        .await
        .unwrap();
    reqwest::get(&second.approval_url).await.unwrap();
    lose_capture_answers(&paypal, 1).await;
    let lost = impatient.capture(&second.id).await.unwrap_err();
    assert!(matches!(lost, PayPalError::Unavailable(_)), "{lost}");
    // Asked again later (same request id), PayPal answers with the capture it made.
    assert_eq!(impatient.capture(&second.id).await.unwrap().status, "COMPLETED");
}

/// Makes the simulator capture and then answer 500, `count` times.
async fn lose_capture_answers(paypal: &TestPayPal, count: u32) {
    reqwest::Client::new()
        .post(format!("{}/simulator/faults", paypal.base_url))
        .json(&serde_json::json!({ "lostCaptureAnswers": count }))
        .send()
        .await
        .unwrap();
}

fn client_with_no_retries(paypal: &TestPayPal) -> PayPalClient {
    client(paypal, simulator::CLIENT_SECRET, 0)
}

#[tokio::test]
async fn wrong_credentials_and_unsupported_amounts_are_refused_before_money_moves() {
    let paypal = spawn_paypal().await;
    let intruder = client(&paypal, "not-the-secret", 0);
    let refused = intruder
        .create_order(Uuid::now_v7(), 100, "EUR", "https://shop.test/r", "https://shop.test/c")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PayPalError::Refused { status: 401, name, .. } if name == "invalid_client"),
        "{refused}"
    );

    let client = client(&paypal, simulator::CLIENT_SECRET, 0);
    let unsupported = client
        .create_order(Uuid::now_v7(), 100, "BHD", "https://shop.test/r", "https://shop.test/c")
        .await
        .unwrap_err();
    assert!(matches!(unsupported, PayPalError::Amount(_)), "{unsupported}");
    let not_an_id = client.get_order("../../v1/oauth2/token").await.unwrap_err();
    assert!(matches!(not_an_id, PayPalError::Protocol(_)), "{not_an_id}");
    assert_eq!(simulator_json(&paypal, "/simulator/stats").await["orders"], 0);
}
