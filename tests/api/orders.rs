//! The orders service's commands at the service level, against a real catalog (stock
//! reservations over HTTP), the PayPal simulator (over HTTP, through the real client) and
//! the embedded event log (relay, stock effects, the order read model).

use std::{sync::Arc, time::Duration};

use catalog_entity::stock;
use orders_entity::order_view;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use tokio::sync::oneshot;
use uuid::Uuid;
use vitrina_orders::{
    checkout::Address,
    lifecycle::{OrderAction, OrderStatus},
    paypal::simulator,
    projection::OrderView,
    service::{Orders, OrdersConfig},
    stock::StockClient,
    stock_effects::StockEffects,
};
use vitrina_shared::{
    AppError,
    auth::{Principal, Role},
    bus::{EmbeddedLog, Handler, LogConsumerRunner, OutboxRelay, RetryPolicy},
    outbox,
    reservations::RequestedLine,
};

use crate::{
    catalog::insert_active_product,
    helpers::{Store, TestCatalog, spawn_catalog, test_settings},
    paypal::{TestPayPal, client, simulator_json, spawn_paypal},
};

struct OrdersUnderTest {
    orders: Orders,
    catalog: TestCatalog,
    paypal: TestPayPal,
    db: DatabaseConnection,
    _stops: Vec<oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

async fn spawn_orders(payment_ttl: Duration) -> OrdersUnderTest {
    let catalog = spawn_catalog(Store::Postgres, false).await;
    let paypal = spawn_paypal().await;
    let data_dir = tempfile::tempdir().unwrap();
    let settings = test_settings(data_dir.path(), &[]);
    let (db, _) = vitrina_shared::db::connect_and_migrate::<vitrina_migrations::orders::Migrator>(&settings, "orders")
        .await
        .unwrap();
    let stock = Arc::new(StockClient::new(&catalog.url).unwrap());
    let orders = Orders::new(
        db.clone(),
        stock.clone(),
        Arc::new(client(&paypal, simulator::CLIENT_SECRET, 2)),
        OrdersConfig {
            payment_ttl,
            return_url: "https://shop.test/paid".to_owned(),
            cancel_url: "https://shop.test/cancelled".to_owned(),
        },
    );
    let log = EmbeddedLog::new(db.clone());
    let mut stops = Vec::new();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        OutboxRelay::new(db.clone(), "orders", Arc::new(log.clone())).run_until(async move {
            let _ = stopped.await;
        }),
    );
    stops.push(stop);
    let handlers: Vec<Arc<dyn Handler>> =
        vec![Arc::new(StockEffects::new(stock)), Arc::new(OrderView::new(db.clone()))];
    for handler in handlers {
        let group = format!("orders.{}", handler.name());
        let runner = LogConsumerRunner::new(Arc::new(log.clone()), &group, "orders.order", handler, fast_retries());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(runner.run_until(async move {
            let _ = stopped.await;
        }));
        stops.push(stop);
    }
    OrdersUnderTest {
        orders,
        catalog,
        paypal,
        db,
        _stops: stops,
        _data_dir: data_dir,
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

fn customer() -> Principal {
    Principal::new(Uuid::now_v7(), Uuid::now_v7(), vec![Role::Customer], "jti".to_owned())
}

fn address() -> Address {
    Address {
        full_name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        line2: None,
        city: "London".into(),
        postal_code: "SW1Y 4JH".into(),
        country_code: "GB".into(),
    }
}

fn line(product_id: Uuid, quantity: i32) -> Vec<RequestedLine> {
    vec![RequestedLine { product_id, quantity }]
}

async fn stock_of(system: &OrdersUnderTest, product: Uuid) -> (i32, i32) {
    let row = stock::Entity::find_by_id(product)
        .one(&system.catalog.db)
        .await
        .unwrap()
        .unwrap();
    (row.on_hand, row.reserved)
}

async fn wait_for_stock(system: &OrdersUnderTest, product: Uuid, expected: (i32, i32)) {
    let started = std::time::Instant::now();
    loop {
        let current = stock_of(system, product).await;
        if current == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "stock is {current:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_view(system: &OrdersUnderTest, order_id: Uuid, status: OrderStatus) {
    let started = std::time::Instant::now();
    loop {
        let row = order_view::Entity::find_by_id(order_id).one(&system.db).await.unwrap();
        if row.as_ref().is_some_and(|row| row.status == status.as_str()) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the read model shows {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_paid_checkout_takes_its_stock_once_and_reaches_the_read_model() {
    let system = spawn_orders(Duration::from_secs(1800)).await;
    let lamp = insert_active_product(&system.catalog, "Lamp", 2500, 10).await;
    let ada = customer();
    let placed = system
        .orders
        .checkout(&ada, "checkout-0001", &address(), line(lamp, 2), None)
        .await
        .unwrap();
    assert_eq!(placed.order.status, "PENDING_PAYMENT");
    assert_eq!(
        (placed.order.total_minor, placed.order.currency.as_str()),
        (5000, "EUR")
    );
    assert_eq!(placed.lines[0].unit_price_minor, 2500, "the price snapshot");
    assert_eq!(stock_of(&system, lamp).await, (10, 2), "held while unpaid");
    let approval = placed.order.approval_url.clone().expect("an approval link");

    // Capturing before the buyer approved is a conflict; after approval it pays.
    let early = system.orders.capture(placed.order.id, None, None).await.unwrap_err();
    assert!(matches!(early, AppError::Conflict(_)), "{early:?}");
    reqwest::get(&approval).await.unwrap();
    let paid = system.orders.capture(placed.order.id, None, None).await.unwrap();
    assert_eq!(paid.status, "PAID");
    assert!(paid.paypal_capture_id.is_some());
    let again = system.orders.capture(placed.order.id, None, None).await.unwrap();
    assert_eq!(again.status, "PAID", "capturing a paid order changes nothing");
    let paypal_order = placed.order.paypal_order_id.as_deref().unwrap();
    let state = simulator_json(&system.paypal, &format!("/simulator/orders/{paypal_order}")).await;
    assert_eq!(state["captures"], 1);

    wait_for_stock(&system, lamp, (8, 0)).await;
    wait_for_view(&system, placed.order.id, OrderStatus::Paid).await;

    // Paid orders are refunded, not cancelled; the refund returns the units.
    let refused = system
        .orders
        .move_order(
            placed.order.id,
            OrderAction::Cancel,
            None,
            None,
            None,
            "changed my mind",
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, AppError::Conflict(_)), "{refused:?}");
    let refunded = system.orders.refund(placed.order.id, None).await.unwrap();
    assert_eq!(refunded.status, "REFUNDED");
    wait_for_stock(&system, lamp, (10, 0)).await;
    wait_for_view(&system, placed.order.id, OrderStatus::Refunded).await;
}

#[tokio::test]
async fn twenty_concurrent_checkouts_with_one_key_make_one_order_one_reservation_and_one_payment() {
    let system = spawn_orders(Duration::from_secs(1800)).await;
    let lamp = insert_active_product(&system.catalog, "Lamp", 2500, 10).await;
    let ada = customer();
    let attempts = (0..20).map(|_| {
        let (orders, ada) = (system.orders.clone(), ada.clone());
        async move {
            orders
                .checkout(&ada, "same-key-123", &address(), line(lamp, 3), None)
                .await
        }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let ids: std::collections::HashSet<Uuid> = outcomes
        .iter()
        .map(|outcome| outcome.as_ref().expect("every retry succeeds").order.id)
        .collect();
    assert_eq!(ids.len(), 1, "one order");
    let paypal_ids: std::collections::HashSet<Option<String>> = outcomes
        .iter()
        .map(|outcome| outcome.as_ref().unwrap().order.paypal_order_id.clone())
        .collect();
    assert_eq!(paypal_ids.len(), 1, "one PayPal order: {paypal_ids:?}");
    assert_eq!(stock_of(&system, lamp).await, (10, 3), "held once");
    assert_eq!(simulator_json(&system.paypal, "/simulator/stats").await["orders"], 1);
    let placed_events = outbox::entity::Entity::find()
        .filter(outbox::entity::Column::EventType.eq("OrderPlaced"))
        .count(&system.db)
        .await
        .unwrap();
    assert_eq!(placed_events, 1);
}

#[tokio::test]
async fn two_hundred_concurrent_checkouts_for_the_last_ten_units_place_exactly_ten_orders() {
    let system = spawn_orders(Duration::from_secs(1800)).await;
    let lamp = insert_active_product(&system.catalog, "Lamp", 2500, 10).await;
    let attempts = (0..200).map(|_| {
        let orders = system.orders.clone();
        async move {
            let shopper = customer();
            orders
                .checkout(&shopper, "last-units-01", &address(), line(lamp, 1), None)
                .await
        }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let placed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let refused: Vec<&AppError> = outcomes.iter().filter_map(|outcome| outcome.as_ref().err()).collect();
    assert_eq!(placed, 10, "exactly the units there were");
    assert!(
        refused.iter().all(|error| matches!(error, AppError::Conflict(_))),
        "every other checkout is a CONFLICT: {refused:?}"
    );
    let (on_hand, reserved) = stock_of(&system, lamp).await;
    assert_eq!((on_hand, reserved), (10, 10), "nothing left to sell, nothing oversold");
    assert_eq!(order_count(&system.db).await, 10);
    assert_eq!(simulator_json(&system.paypal, "/simulator/stats").await["orders"], 10);
}

#[tokio::test]
async fn cancellation_and_expiry_give_the_stock_back_but_an_approved_order_is_captured_not_expired() {
    let system = spawn_orders(Duration::ZERO).await;
    let lamp = insert_active_product(&system.catalog, "Lamp", 2500, 10).await;
    let ada = customer();

    let cancelled = system
        .orders
        .checkout(&ada, "cancel-me-01", &address(), line(lamp, 1), None)
        .await
        .unwrap();
    system
        .orders
        .move_order(
            cancelled.order.id,
            OrderAction::Cancel,
            None,
            None,
            None,
            "changed my mind",
        )
        .await
        .unwrap();

    let forgotten = system
        .orders
        .checkout(&ada, "forget-me-01", &address(), line(lamp, 2), None)
        .await
        .unwrap();
    let approved = system
        .orders
        .checkout(&ada, "approve-me-1", &address(), line(lamp, 3), None)
        .await
        .unwrap();
    reqwest::get(approved.order.approval_url.as_deref().unwrap())
        .await
        .unwrap();

    // Both are past their time (a zero payment window): one expires, the approved one
    // is captured, since its buyer has paid.
    assert_eq!(system.orders.expire_due(100).await.unwrap(), 1);
    let forgotten = system.orders.find(forgotten.order.id).await.unwrap().unwrap();
    assert_eq!(forgotten.order.status, "EXPIRED");
    let approved = system.orders.find(approved.order.id).await.unwrap().unwrap();
    assert_eq!(approved.order.status, "PAID");
    assert_eq!(
        system.orders.expire_due(100).await.unwrap(),
        0,
        "nothing left to expire"
    );

    // Cancelled and expired units are available again; the paid ones left.
    wait_for_stock(&system, lamp, (7, 0)).await;
    wait_for_view(&system, cancelled.order.id, OrderStatus::Cancelled).await;
    wait_for_view(&system, forgotten.order.id, OrderStatus::Expired).await;

    // An abandoned key cannot be reused: its reservation is gone.
    let reused = system
        .orders
        .checkout(&ada, "cancel-me-01", &address(), line(lamp, 1), None)
        .await
        .unwrap();
    assert_eq!(
        reused.order.status, "CANCELLED",
        "the same key names the cancelled order"
    );
}

#[tokio::test]
async fn bad_checkouts_are_refused_with_their_field_and_hold_nothing() {
    let system = spawn_orders(Duration::from_secs(1800)).await;
    let lamp = insert_active_product(&system.catalog, "Lamp", 2500, 1).await;
    let ada = customer();
    let field_of = |error: AppError| match error {
        AppError::BadUserInput { field, .. } => field,
        other => panic!("{other:?}"),
    };
    let empty = system
        .orders
        .checkout(&ada, "empty-cart-1", &address(), vec![], None)
        .await
        .unwrap_err();
    assert_eq!(field_of(empty).as_deref(), Some("cart"));
    let short_key = system
        .orders
        .checkout(&ada, "short", &address(), line(lamp, 1), None)
        .await
        .unwrap_err();
    assert_eq!(field_of(short_key).as_deref(), Some("input.idempotencyKey"));
    let nowhere = Address {
        country_code: "Atlantis".into(),
        ..address()
    };
    let bad_address = system
        .orders
        .checkout(&ada, "bad-address-1", &nowhere, line(lamp, 1), None)
        .await
        .unwrap_err();
    assert_eq!(
        field_of(bad_address).as_deref(),
        Some("input.shippingAddress.countryCode")
    );
    let too_many = system
        .orders
        .checkout(&ada, "too-many-01", &address(), line(lamp, 2), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&too_many, AppError::Conflict(message) if message.contains("only 1 of Lamp left")),
        "{too_many:?}"
    );
    assert_eq!(stock_of(&system, lamp).await, (1, 0));
    assert_eq!(order_count(&system.db).await, 0);
}

async fn order_count(db: &DatabaseConnection) -> u64 {
    orders_entity::order::Entity::find().count(db).await.unwrap()
}
