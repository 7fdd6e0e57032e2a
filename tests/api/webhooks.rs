//! PayPal webhooks at the orders service's `POST /webhooks/paypal`: genuine deliveries,
//! repeated and out of order, converge to one transition each; forged or altered ones
//! are refused with 400 and change nothing.
//!
//! The deliveries are real: a PayPal simulator of the test's own signs them and delivers
//! them to a recorder, and the test replays them to the orders service, which is
//! configured with that simulator as its PayPal (credentials, base URL, webhook id), so
//! verification goes through PayPal's verify-webhook-signature API as in production.

use std::time::Duration;

use axum::{body::Bytes, http::HeaderMap};
use catalog_entity::stock;
use orders_entity::{order, order_view, processed_webhook};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::Value;
use uuid::Uuid;
use vitrina_orders::{
    checkout::Address,
    paypal::{PayPalClient, WebhookHeaders, simulator},
    service::PlacedOrder,
};
use vitrina_shared::{
    auth::{Principal, Role},
    reservations::RequestedLine,
};

use crate::{
    catalog::insert_active_product,
    helpers::{
        Store, TestCatalog, TestOrders, eventually, published_order_events, spawn_catalog, spawn_orders_service,
    },
    paypal::{TestPayPal, client, spawn_paypal, wait_for_deliveries},
};

struct Setup {
    catalog: TestCatalog,
    orders: TestOrders,
    paypal: TestPayPal,
    client: PayPalClient,
    product: Uuid,
}

async fn setup() -> Setup {
    let catalog = spawn_catalog(Store::Postgres, false).await;
    let paypal = spawn_paypal().await;
    let orders = spawn_orders_service(
        Store::Postgres,
        &catalog.url,
        // Checkout is driven at the service level here: no cart is asked.
        "http://127.0.0.1:9/graphql",
        &[
            ("PAYPAL_BASE_URL", paypal.base_url.clone()),
            ("PAYPAL_CLIENT_ID", simulator::CLIENT_ID.to_owned()),
            ("PAYPAL_CLIENT_SECRET", simulator::CLIENT_SECRET.to_owned()),
            ("PAYPAL_WEBHOOK_ID", simulator::WEBHOOK_ID.to_owned()),
        ],
    )
    .await;
    let product = insert_active_product(&catalog, "Oak stool", 8_900, 10).await;
    let client = client(&paypal, simulator::CLIENT_SECRET, 2);
    Setup {
        catalog,
        orders,
        paypal,
        client,
        product,
    }
}

async fn place_order(setup: &Setup, key: &str) -> PlacedOrder {
    let customer = Principal::new(Uuid::now_v7(), Uuid::now_v7(), vec![Role::Customer], "jti".into());
    let address = Address {
        full_name: "Grace Hopper".into(),
        line1: "1 Navy Yard".into(),
        line2: None,
        city: "Arlington".into(),
        postal_code: "22202".into(),
        country_code: "US".into(),
    };
    setup
        .orders
        .orders
        .checkout(
            &customer,
            key,
            &address,
            vec![RequestedLine {
                product_id: setup.product,
                quantity: 1,
            }],
            None,
        )
        .await
        .expect("checkout")
}

/// Sends one delivery to the orders service; returns the status.
async fn deliver(setup: &Setup, headers: &HeaderMap, body: &Bytes) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/webhooks/paypal", setup.orders.port))
        .body(body.clone());
    for (name, value) in headers {
        if name.as_str().starts_with("paypal-") || name == "content-type" {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    request.send().await.expect("webhook delivery").status().as_u16()
}

fn event_type(body: &Bytes) -> String {
    let event: Value = serde_json::from_slice(body).unwrap();
    event["event_type"].as_str().unwrap().to_owned()
}

async fn status_of(setup: &Setup, order_id: Uuid) -> String {
    order::Entity::find_by_id(order_id)
        .one(&setup.orders.db)
        .await
        .unwrap()
        .unwrap()
        .status
}

async fn stock_of(setup: &Setup) -> (i32, i32) {
    let row = stock::Entity::find_by_id(setup.product)
        .one(&setup.catalog.db)
        .await
        .unwrap()
        .unwrap();
    (row.on_hand, row.reserved)
}

#[tokio::test]
async fn each_webhook_event_delivered_three_times_and_out_of_order_moves_the_order_once() {
    let setup = setup().await;
    let placed = place_order(&setup, "webhook-order-1").await;
    let paypal_order_id = placed.order.paypal_order_id.clone().unwrap();

    // What PayPal would send for this order: approval, capture, refund.
    let page = reqwest::get(placed.order.approval_url.as_deref().unwrap())
        .await
        .unwrap();
    assert!(page.status().is_success());
    let capture = setup.client.capture(&paypal_order_id).await.unwrap();
    setup.client.refund(&capture.capture_id).await.unwrap();
    let deliveries = wait_for_deliveries(&setup.paypal, 3).await;
    let by_type = |wanted: &str| {
        deliveries
            .iter()
            .find(|(_, body)| event_type(body) == wanted)
            .cloned()
            .unwrap_or_else(|| panic!("no {wanted} delivery"))
    };
    let approved = by_type("CHECKOUT.ORDER.APPROVED");
    let completed = by_type("PAYMENT.CAPTURE.COMPLETED");
    let refunded = by_type("PAYMENT.CAPTURE.REFUNDED");

    // The refund first: its capture is not recorded yet, so PayPal is told to come back.
    assert_eq!(deliver(&setup, &refunded.0, &refunded.1).await, 409);
    assert_eq!(status_of(&setup, placed.order.id).await, "PENDING_PAYMENT");
    for (headers, body) in [
        &completed, &approved, &refunded, &approved, &completed, &refunded, &approved,
    ] {
        let status = deliver(&setup, headers, body).await;
        assert_eq!(status, 200, "{} answered {status}", event_type(body));
    }
    // And all nine once more at the same time.
    let burst = [&approved, &completed, &refunded]
        .into_iter()
        .cycle()
        .take(9)
        .map(|(headers, body)| deliver(&setup, headers, body));
    for status in futures::future::join_all(burst).await {
        assert_eq!(status, 200);
    }

    assert_eq!(status_of(&setup, placed.order.id).await, "REFUNDED");
    let events = eventually("the relay publishing three events", || async {
        let events = published_order_events(&setup.orders.db).await;
        (events.len() >= 3).then_some(events)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        published_order_events(&setup.orders.db).await,
        events,
        "no later events"
    );
    assert_eq!(events, ["OrderPlaced", "OrderPaid", "OrderRefunded"]);
    let stats = crate::paypal::simulator_json(&setup.paypal, &format!("/simulator/orders/{paypal_order_id}")).await;
    assert_eq!(stats["captures"], 1, "PayPal captured once: {stats}");
    eventually("the refunded unit returning to stock", || async {
        (stock_of(&setup).await == (10, 0)).then_some(())
    })
    .await;

    // The order history is built from the events alone: rebuilt from offset 0, it
    // arrives at the same state.
    let view_status = || async {
        order_view::Entity::find_by_id(placed.order.id)
            .one(&setup.orders.db)
            .await
            .unwrap()
            .map(|row| row.status)
    };
    eventually("the history showing the refund", || async {
        (view_status().await.as_deref() == Some("REFUNDED")).then_some(())
    })
    .await;
    assert_eq!(setup.orders.order_view.rebuild().await.unwrap(), 1);
    eventually("the rebuilt history showing the refund", || async {
        (view_status().await.as_deref() == Some("REFUNDED")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn forged_or_altered_webhooks_are_refused_with_400_and_change_nothing() {
    let setup = setup().await;
    let placed = place_order(&setup, "webhook-order-2").await;
    reqwest::get(placed.order.approval_url.as_deref().unwrap())
        .await
        .unwrap();
    let (headers, body) = wait_for_deliveries(&setup.paypal, 1).await.remove(0);
    assert_eq!(event_type(&body), "CHECKOUT.ORDER.APPROVED");
    let event: Value = serde_json::from_slice(&body).unwrap();

    let with_header = |name: &str, value: &str| {
        let mut altered = headers.clone();
        altered.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        altered
    };
    let without_header = |name: &str| {
        let mut altered = headers.clone();
        altered.remove(name);
        altered
    };
    let with_body = |change: &dyn Fn(&mut Value)| {
        let mut altered = event.clone();
        change(&mut altered);
        Bytes::from(altered.to_string())
    };
    let forgeries: Vec<(&str, HeaderMap, Bytes)> = vec![
        ("no PayPal headers", HeaderMap::new(), body.clone()),
        (
            "no signature",
            without_header(WebhookHeaders::TRANSMISSION_SIG),
            body.clone(),
        ),
        (
            "a made-up signature",
            with_header(
                WebhookHeaders::TRANSMISSION_SIG,
                "c2lnbmF0dXJlLW9mLW5vYm9keS1hdC1hbGwtMTIzNDU2Nzg5MA==",
            ),
            body.clone(),
        ),
        (
            "another transmission id",
            with_header(WebhookHeaders::TRANSMISSION_ID, &Uuid::new_v4().to_string()),
            body.clone(),
        ),
        (
            "another transmission time",
            with_header(WebhookHeaders::TRANSMISSION_TIME, "2020-01-01T00:00:00Z"),
            body.clone(),
        ),
        (
            "a certificate from elsewhere",
            with_header(WebhookHeaders::CERT_URL, "https://attacker.example/cert.pem"),
            body.clone(),
        ),
        (
            "another event type",
            headers.clone(),
            with_body(&|event| event["event_type"] = "PAYMENT.CAPTURE.COMPLETED".into()),
        ),
        (
            "another PayPal order",
            headers.clone(),
            with_body(&|event| event["resource"]["id"] = "5O190127TN364715T".into()),
        ),
        (
            "another event id (a replay as new)",
            headers.clone(),
            with_body(&|event| event["id"] = "WH-FORGED000000000".into()),
        ),
        (
            "a body that is not JSON",
            headers.clone(),
            Bytes::from_static(b"{\"id\":"),
        ),
    ];
    assert_eq!(forgeries.len(), 10);
    for (variant, headers, body) in &forgeries {
        let status = deliver(&setup, headers, body).await;
        assert_eq!(status, 400, "{variant} answered {status}");
    }

    assert_eq!(status_of(&setup, placed.order.id).await, "PENDING_PAYMENT");
    assert_eq!(
        processed_webhook::Entity::find().count(&setup.orders.db).await.unwrap(),
        0
    );
    let stats = crate::paypal::simulator_json(
        &setup.paypal,
        &format!("/simulator/orders/{}", placed.order.paypal_order_id.as_deref().unwrap()),
    )
    .await;
    assert_eq!(stats["captures"], 0, "nothing was captured: {stats}");
    eventually("the placement event", || async {
        (published_order_events(&setup.orders.db).await == ["OrderPlaced"]).then_some(())
    })
    .await;
    assert_eq!(stock_of(&setup).await, (10, 1), "the unit is still only held");

    // The genuine delivery is accepted: the refusals were about the forgeries.
    assert_eq!(deliver(&setup, &headers, &body).await, 200);
    assert_eq!(status_of(&setup, placed.order.id).await, "PAID");
}
