//! Stock reservations: the catalog's internal API the orders service checks out with.
//! Never oversells under concurrency, all or nothing per order, idempotent per step.

use catalog_entity::stock;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;
use vitrina_shared::reservations::RESERVATIONS_PATH;

use crate::{
    catalog::{NewProduct, insert_active_product, insert_product},
    helpers::{Store, TestCatalog, spawn_catalog},
};

fn origin(catalog: &TestCatalog) -> String {
    catalog.url.trim_end_matches("/graphql").to_owned()
}

async fn reserve(http: &reqwest::Client, catalog: &TestCatalog, order_id: Uuid, lines: Value) -> (StatusCode, Value) {
    let response = http
        .post(format!("{}{RESERVATIONS_PATH}", origin(catalog)))
        .json(&json!({ "orderId": order_id, "lines": lines }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn step(http: &reqwest::Client, catalog: &TestCatalog, order_id: Uuid, step: &str) -> (StatusCode, Value) {
    let response = http
        .post(format!("{}{RESERVATIONS_PATH}/{order_id}/{step}", origin(catalog)))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// (on hand, reserved) of a product.
async fn stock_of(catalog: &TestCatalog, product: Uuid) -> (i32, i32) {
    let row = stock::Entity::find_by_id(product)
        .one(&catalog.db)
        .await
        .unwrap()
        .unwrap();
    (row.on_hand, row.reserved)
}

#[tokio::test]
async fn two_hundred_concurrent_checkouts_for_the_last_ten_units_reserve_exactly_ten() {
    let catalog = spawn_catalog(Store::Postgres, false).await;
    let lamp = insert_active_product(&catalog, "Lamp", 2500, 10).await;
    let http = reqwest::Client::new();
    let orders: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    let attempts = orders.iter().map(|order| {
        let http = http.clone();
        let catalog = &catalog;
        async move {
            let (status, _) = reserve(&http, catalog, *order, json!([{ "productId": lamp, "quantity": 1 }])).await;
            (*order, status)
        }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let reserved: Vec<Uuid> = outcomes
        .iter()
        .filter(|(_, status)| *status == StatusCode::OK)
        .map(|(order, _)| *order)
        .collect();
    assert_eq!(reserved.len(), 10, "exactly the ten units");
    assert!(
        outcomes
            .iter()
            .all(|(_, status)| *status == StatusCode::OK || *status == StatusCode::CONFLICT),
        "every refusal is a CONFLICT"
    );
    assert_eq!(stock_of(&catalog, lamp).await, (10, 10), "all held, none oversold");

    // Four are paid, six cancelled; then two of the paid ones are refunded.
    for order in &reserved[..4] {
        assert_eq!(step(&http, &catalog, *order, "commit").await.0, StatusCode::OK);
    }
    for order in &reserved[4..] {
        assert_eq!(step(&http, &catalog, *order, "release").await.0, StatusCode::OK);
    }
    assert_eq!(stock_of(&catalog, lamp).await, (6, 0));
    for order in &reserved[..2] {
        assert_eq!(step(&http, &catalog, *order, "return").await.0, StatusCode::OK);
    }
    assert_eq!(stock_of(&catalog, lamp).await, (8, 0));
}

#[tokio::test]
async fn a_reservation_is_all_or_nothing_idempotent_and_keeps_its_price_snapshot() {
    for store in [Store::Postgres, Store::EmbeddedSqlite] {
        let catalog = spawn_catalog(store, false).await;
        let http = reqwest::Client::new();
        let lamp = insert_active_product(&catalog, "Lamp", 2500, 5).await;
        let shade = insert_active_product(&catalog, "Shade", 900, 1).await;
        let draft = insert_product(
            &catalog,
            NewProduct {
                name: "Draft",
                status: "DRAFT",
                ..Default::default()
            },
        )
        .await;

        // One line short: nothing is held.
        let order = Uuid::now_v7();
        let lines = json!([{ "productId": lamp, "quantity": 2 }, { "productId": shade, "quantity": 2 }]);
        let (status, body) = reserve(&http, &catalog, order, lines).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "CONFLICT", "{body}");
        assert_eq!(stock_of(&catalog, lamp).await, (5, 0));
        assert_eq!(stock_of(&catalog, shade).await, (1, 0));

        let lines = json!([{ "productId": lamp, "quantity": 2 }, { "productId": shade, "quantity": 1 }]);
        let (status, first) = reserve(&http, &catalog, order, lines.clone()).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["state"], "HELD");
        let lamp_line = first["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|line| line["productId"] == json!(lamp))
            .unwrap();
        assert_eq!(
            (lamp_line["unitPriceMinor"].as_i64(), lamp_line["currency"].as_str()),
            (Some(2500), Some("EUR"))
        );

        // A retry answers with the same reservation and holds nothing more, even after a
        // price change.
        catalog
            .catalog
            .update_product(
                lamp,
                1,
                vitrina_catalog::store::product_writes::ProductChanges {
                    price: Some((9999, "EUR".to_owned())),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        let (status, again) = reserve(&http, &catalog, order, lines).await;
        assert_eq!((status, &again), (StatusCode::OK, &first));
        assert_eq!(stock_of(&catalog, lamp).await, (5, 2));

        // Steps are idempotent; a step that does not follow is a conflict.
        assert_eq!(step(&http, &catalog, order, "release").await.0, StatusCode::OK);
        let (status, released) = step(&http, &catalog, order, "release").await;
        assert_eq!((status, released["state"].as_str()), (StatusCode::OK, Some("RELEASED")));
        assert_eq!(stock_of(&catalog, lamp).await, (5, 0));
        assert_eq!(stock_of(&catalog, shade).await, (1, 0));
        let (status, body) = step(&http, &catalog, order, "commit").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");

        // Bad requests are refused with their field; unknown and unsellable products too.
        let (status, body) = reserve(
            &http,
            &catalog,
            Uuid::now_v7(),
            json!([{ "productId": lamp, "quantity": 0 }]),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("BAD_USER_INPUT")),
            "{body}"
        );
        let (status, _) = reserve(&http, &catalog, Uuid::now_v7(), json!([])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = reserve(
            &http,
            &catalog,
            Uuid::now_v7(),
            json!([{ "productId": Uuid::now_v7(), "quantity": 1 }]),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = reserve(
            &http,
            &catalog,
            Uuid::now_v7(),
            json!([{ "productId": draft, "quantity": 1 }]),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            step(&http, &catalog, Uuid::now_v7(), "commit").await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(step(&http, &catalog, order, "explode").await.0, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn reserved_units_leave_the_storefronts_available_quantity_at_once() {
    let catalog = spawn_catalog(Store::EmbeddedSqlite, false).await;
    let http = reqwest::Client::new();
    let lamp = insert_active_product(&catalog, "Lamp", 2500, 5).await;
    let query = "query($id: ID!) { product(id: $id) { availableQuantity } }";
    let available = || async {
        let body = crate::helpers::graphql(&catalog.url, query, json!({ "id": lamp })).await;
        body["data"]["product"]["availableQuantity"].as_i64().unwrap()
    };
    assert_eq!(available().await, 5, "read once, so it is cached");
    let order = Uuid::now_v7();
    reserve(&http, &catalog, order, json!([{ "productId": lamp, "quantity": 3 }])).await;
    assert_eq!(available().await, 2, "the reservation retired the cached product");
    step(&http, &catalog, order, "release").await;
    assert_eq!(available().await, 5);
}

#[tokio::test]
async fn the_orders_stock_client_reserves_through_the_catalog_and_maps_its_answers() {
    use vitrina_orders::stock::StockClient;
    use vitrina_shared::{
        AppError,
        reservations::{RequestedLine, ReservationState, ReservationStep},
    };

    let catalog = spawn_catalog(Store::EmbeddedSqlite, false).await;
    let lamp = insert_active_product(&catalog, "Lamp", 2500, 3).await;
    let client = StockClient::new(&catalog.url).unwrap();
    let order = Uuid::now_v7();
    let line = |quantity| {
        vec![RequestedLine {
            product_id: lamp,
            quantity,
        }]
    };
    let held = client.reserve(order, line(2)).await.unwrap();
    assert_eq!(held.state, ReservationState::Held);
    assert_eq!(held.lines[0].unit_price_minor, 2500);
    assert_eq!(
        client.reserve(order, line(2)).await.unwrap(),
        held,
        "idempotent per order"
    );

    let short = client.reserve(Uuid::now_v7(), line(2)).await.unwrap_err();
    assert!(
        matches!(&short, AppError::Conflict(message) if message.contains("only 1 of Lamp left")),
        "{short:?}"
    );
    let unknown = client
        .reserve(
            Uuid::now_v7(),
            vec![RequestedLine {
                product_id: Uuid::now_v7(),
                quantity: 1,
            }],
        )
        .await
        .unwrap_err();
    assert!(matches!(unknown, AppError::NotFound { .. }), "{unknown:?}");

    let committed = client.advance(order, ReservationStep::Commit).await.unwrap();
    assert_eq!(committed.state, ReservationState::Committed);
    assert_eq!(stock_of(&catalog, lamp).await, (1, 0));

    let dead = StockClient::new(&format!("http://127.0.0.1:{}/graphql", crate::helpers::free_port())).unwrap();
    let unavailable = dead.reserve(Uuid::now_v7(), line(1)).await.unwrap_err();
    assert!(matches!(unavailable, AppError::Unavailable(_)), "{unavailable:?}");
}
