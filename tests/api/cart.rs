//! The cart subgraph end to end: guest and customer carts in Redis (and in the embedded
//! store), concurrency, lifetimes, validation, ownership, merging, live prices, and the
//! router joining cart lines with the catalog's products.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    catalog::{NewProduct, insert_active_product, insert_product},
    helpers::{PASSWORD, Store, TestSystem, data, first_error_code, graphql, graphql_as, spawn_system},
};

const ADD: &str = "mutation($productId: ID!, $quantity: Int!, $guestToken: String) {
  addToCart(productId: $productId, quantity: $quantity, guestToken: $guestToken) {
    id guestToken itemCount lines { id quantity product { id } } } }";
const CART: &str = "query($guestToken: String) { cart(guestToken: $guestToken) {
  id itemCount hasPriceChanges subtotal { amount currencyCode }
  lines { id quantity priceChanged available
    unitPrice { amount currencyCode } addedUnitPrice { amount currencyCode } lineTotal { amount currencyCode }
    product { id name price { amount currencyCode } } } } }";
const EXPIRY: &str = "query($guestToken: String) { cart(guestToken: $guestToken) { expiresAt } }";
/// What the cart subgraph answers on its own (no catalog fields).
const COUNTS: &str = "query($guestToken: String) { cart(guestToken: $guestToken) { itemCount lines { id } } }";
const UPDATE: &str = "mutation($lineId: ID!, $quantity: Int!, $guestToken: String) {
  updateCartLine(lineId: $lineId, quantity: $quantity, guestToken: $guestToken) { id itemCount } }";
const REMOVE: &str = "mutation($lineId: ID!, $guestToken: String) {
  removeCartLine(lineId: $lineId, guestToken: $guestToken) { id itemCount lines { id } } }";
const CLEAR: &str = "mutation($guestToken: String) { clearCart(guestToken: $guestToken) { id itemCount } }";
const MERGE: &str = "mutation($guestToken: String!) { mergeGuestCart(guestToken: $guestToken) {
  id itemCount lines { quantity product { id } } } }";

/// The two deployments the cart supports.
const SETUPS: [(Store, bool); 2] = [(Store::Postgres, true), (Store::EmbeddedSqlite, false)];

async fn product(system: &TestSystem, name: &str, price_minor: i64, on_hand: i32) -> String {
    insert_active_product(&system.catalog, name, price_minor, on_hand)
        .await
        .to_string()
}

async fn add(url: &str, token: Option<&str>, guest: Option<&str>, product: &str, quantity: i64) -> Value {
    graphql_as(
        url,
        token,
        ADD,
        json!({ "productId": product, "quantity": quantity, "guestToken": guest }),
    )
    .await
    .1
}

async fn customer_token(system: &TestSystem) -> (String, Uuid) {
    let email = format!("shopper-{}@example.com", Uuid::now_v7().simple());
    let registered = graphql(
        &system.router.url,
        "mutation($input: RegisterInput!) { register(input: $input) { id } }",
        json!({ "input": { "email": email, "password": PASSWORD, "name": "Ada" } }),
    )
    .await;
    let user_id = Uuid::parse_str(data(&registered)["register"]["id"].as_str().unwrap()).unwrap();
    let login = graphql(
        &system.router.url,
        "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }",
        json!({ "email": email, "password": PASSWORD }),
    )
    .await;
    (
        data(&login)["login"]["accessToken"].as_str().unwrap().to_owned(),
        user_id,
    )
}

async fn time_to_live(system: &TestSystem, key: &str) -> Duration {
    system
        .cart
        .carts
        .store()
        .load(key)
        .await
        .unwrap()
        .expect("the cart exists")
        .time_to_live
        .expect("a cart expires")
}

#[tokio::test]
async fn a_guest_adds_updates_removes_and_clears_lines_through_the_router_with_live_product_data() {
    for (store, redis) in SETUPS {
        let system = spawn_system(store, redis, &[]).await;
        let url = &system.router.url;
        let lamp = product(&system, "Brass lamp", 8900, 10).await;
        let shade = product(&system, "Linen shade", 1550, 10).await;

        let first = data(&add(url, None, None, &lamp, 2).await)["addToCart"].clone();
        let guest = first["guestToken"]
            .as_str()
            .expect("a new guest cart has a token")
            .to_owned();
        let guest = Some(guest.as_str());
        assert_eq!(first["itemCount"], 2);
        let again = data(&add(url, None, guest, &lamp, 1).await)["addToCart"].clone();
        assert_eq!(again["id"], first["id"], "the same cart");
        assert_eq!(again["lines"].as_array().unwrap().len(), 1, "one line per product");
        assert_eq!(again["itemCount"], 3);
        let both = data(&add(url, None, guest, &shade, 1).await)["addToCart"].clone();
        assert_eq!(both["itemCount"], 4);
        let shade_line = both["lines"][1]["id"].clone();
        assert_eq!(both["lines"][1]["product"]["id"], shade.as_str());

        let (_, updated) = graphql_as(
            url,
            None,
            UPDATE,
            json!({ "lineId": shade_line, "quantity": 4, "guestToken": guest }),
        )
        .await;
        assert_eq!(data(&updated)["updateCartLine"]["itemCount"], 7);

        // One query through the router: cart lines with the catalog's name and price.
        let (_, cart) = graphql_as(url, None, CART, json!({ "guestToken": guest })).await;
        let cart = data(&cart)["cart"].clone();
        assert_eq!(cart["lines"][0]["product"]["name"], "Brass lamp");
        assert_eq!(
            cart["lines"][0]["product"]["price"],
            json!({ "amount": "89.00", "currencyCode": "EUR" })
        );
        assert_eq!(cart["lines"][1]["lineTotal"]["amount"], "62.00");
        assert_eq!(cart["subtotal"], json!({ "amount": "329.00", "currencyCode": "EUR" }));
        assert_eq!(cart["hasPriceChanges"], false);

        let (_, removed) = graphql_as(url, None, REMOVE, json!({ "lineId": shade_line, "guestToken": guest })).await;
        assert_eq!(data(&removed)["removeCartLine"]["itemCount"], 3);
        let (_, cleared) = graphql_as(url, None, CLEAR, json!({ "guestToken": guest })).await;
        assert_eq!(data(&cleared)["clearCart"]["itemCount"], 0);
        let (_, cart) = graphql_as(url, None, CART, json!({ "guestToken": guest })).await;
        assert_eq!(
            data(&cart)["cart"]["subtotal"],
            json!({ "amount": "0.00", "currencyCode": "EUR" })
        );
    }
}

#[tokio::test]
async fn fifty_concurrent_adds_to_one_cart_keep_every_line() {
    for (store, redis) in SETUPS {
        let system = spawn_system(store, redis, &[]).await;
        let cart_url = system.cart.url.clone();
        let mut products = Vec::new();
        for i in 0..50 {
            products.push(product(&system, &format!("Item {i}"), 100 + i, 100).await);
        }
        let popular = product(&system, "Popular", 500, 100).await;
        let first = data(&add(&cart_url, None, None, &popular, 1).await)["addToCart"].clone();
        let guest = first["guestToken"].as_str().unwrap().to_owned();

        // 50 different products and 20 more units of one product, all at once.
        let mut adds = Vec::new();
        for product in products.iter().cloned().chain(std::iter::repeat_n(popular.clone(), 20)) {
            let (url, guest) = (cart_url.clone(), guest.clone());
            adds.push(tokio::spawn(
                async move { add(&url, None, Some(&guest), &product, 1).await },
            ));
        }
        for add in adds {
            data(&add.await.unwrap());
        }
        let (_, cart) = graphql_as(&cart_url, None, COUNTS, json!({ "guestToken": guest })).await;
        let cart = data(&cart)["cart"].clone();
        assert_eq!(cart["lines"].as_array().unwrap().len(), 51, "no line lost ({store:?})");
        assert_eq!(cart["itemCount"], 50 + 21, "no unit lost ({store:?})");
    }
}

#[tokio::test]
async fn carts_live_seven_days_for_guests_and_thirty_for_customers_and_use_renews_them() {
    for (store, redis) in SETUPS {
        let system = spawn_system(store, redis, &[]).await;
        let lamp = product(&system, "Lamp", 1000, 10).await;
        let url = &system.router.url;
        let guest_cart = data(&add(url, None, None, &lamp, 1).await)["addToCart"].clone();
        let guest = guest_cart["guestToken"].as_str().unwrap().to_owned();
        let guest_key = format!("guest:{}", guest_cart["id"].as_str().unwrap());
        let week = Duration::from_secs(7 * 24 * 3600);
        let ttl = time_to_live(&system, &guest_key).await;
        assert!(ttl <= week && ttl > week - Duration::from_secs(60), "{ttl:?}");

        // Age the cart, then use it: its life starts again.
        assert!(
            system
                .cart
                .carts
                .store()
                .touch(&guest_key, Duration::from_secs(60))
                .await
                .unwrap()
        );
        let (_, read) = graphql_as(url, None, CART, json!({ "guestToken": guest })).await;
        data(&read);
        assert!(time_to_live(&system, &guest_key).await > week - Duration::from_secs(60));

        // Read again within the hour: its life is not written again, and `expiresAt`
        // says when it really ends.
        let half_an_hour_used = week - Duration::from_secs(1800);
        let store = system.cart.carts.store();
        assert!(store.touch(&guest_key, half_an_hour_used).await.unwrap());
        let (_, read) = graphql_as(url, None, EXPIRY, json!({ "guestToken": guest })).await;
        let expires_at: chrono::DateTime<chrono::Utc> =
            data(&read)["cart"]["expiresAt"].as_str().unwrap().parse().unwrap();
        let ttl = time_to_live(&system, &guest_key).await;
        assert!(ttl <= half_an_hour_used, "not renewed: {ttl:?}");
        let said = (expires_at - chrono::Utc::now()).to_std().unwrap();
        assert!(
            said <= half_an_hour_used && said > half_an_hour_used - Duration::from_secs(60),
            "expiresAt is {said:?} away"
        );

        let (token, user_id) = customer_token(&system).await;
        data(&add(url, Some(&token), None, &lamp, 1).await);
        let month = Duration::from_secs(30 * 24 * 3600);
        let ttl = time_to_live(&system, &format!("user:{user_id}")).await;
        assert!(ttl <= month && ttl > month - Duration::from_secs(60), "{ttl:?}");
    }
}

#[tokio::test]
async fn invalid_quantities_products_currencies_and_tokens_are_refused_with_codes() {
    let system = spawn_system(Store::Postgres, true, &[]).await;
    let url = &system.cart.url;
    let lamp = product(&system, "Lamp", 1000, 3).await;
    let insert = |name: &'static str, currency: &'static str, status: &'static str, on_hand: i32| {
        insert_product(
            &system.catalog,
            NewProduct {
                name,
                price_minor: 500,
                currency,
                status,
                category: None,
                on_hand,
            },
        )
    };
    let dollars = insert("Dollar lamp", "USD", "ACTIVE", 5).await.to_string();
    let archived = insert("Old lamp", "EUR", "ARCHIVED", 5).await.to_string();
    let draft = insert("Next lamp", "EUR", "DRAFT", 5).await.to_string();
    let sold_out = insert("Rare lamp", "EUR", "ACTIVE", 0).await.to_string();

    let cart = data(&add(url, None, None, &lamp, 1).await)["addToCart"].clone();
    let guest = cart["guestToken"].as_str().unwrap().to_owned();
    let guest = Some(guest.as_str());
    let refused = |response: &Value, code: &str, field: Option<&str>| {
        assert_eq!(first_error_code(response), code, "{response:#}");
        if let Some(field) = field {
            assert_eq!(response["errors"][0]["extensions"]["field"], field, "{response:#}");
        }
    };
    refused(
        &add(url, None, guest, &lamp, 0).await,
        "BAD_USER_INPUT",
        Some("quantity"),
    );
    refused(
        &add(url, None, guest, &lamp, 100).await,
        "BAD_USER_INPUT",
        Some("quantity"),
    );
    refused(
        &add(url, None, guest, &lamp, 3).await,
        "BAD_USER_INPUT",
        Some("quantity"),
    );
    refused(
        &add(url, None, guest, &sold_out, 1).await,
        "BAD_USER_INPUT",
        Some("quantity"),
    );
    refused(
        &add(url, None, guest, &dollars, 1).await,
        "BAD_USER_INPUT",
        Some("productId"),
    );
    refused(
        &add(url, None, guest, &archived, 1).await,
        "BAD_USER_INPUT",
        Some("productId"),
    );
    refused(&add(url, None, guest, &draft, 1).await, "NOT_FOUND", None);
    refused(
        &add(url, None, guest, &Uuid::now_v7().to_string(), 1).await,
        "NOT_FOUND",
        None,
    );
    refused(
        &add(url, None, guest, "lamp", 1).await,
        "BAD_USER_INPUT",
        Some("productId"),
    );
    refused(
        &add(url, None, Some("not-a-token"), &lamp, 1).await,
        "BAD_USER_INPUT",
        Some("guestToken"),
    );
    let (_, unknown_line) = graphql_as(
        url,
        None,
        UPDATE,
        json!({ "lineId": Uuid::now_v7(), "quantity": 1, "guestToken": guest }),
    )
    .await;
    refused(&unknown_line, "NOT_FOUND", None);
    let (_, no_cart) = graphql_as(url, None, CLEAR, json!({})).await;
    refused(&no_cart, "BAD_USER_INPUT", Some("guestToken"));

    // Nothing above changed the cart.
    let (_, cart) = graphql_as(url, None, COUNTS, json!({ "guestToken": guest })).await;
    assert_eq!(data(&cart)["cart"]["itemCount"], 1);
}

#[tokio::test]
async fn someone_elses_cart_is_forbidden() {
    let system = spawn_system(Store::Postgres, true, &[]).await;
    let url = &system.router.url;
    let lamp = product(&system, "Lamp", 1000, 10).await;
    let mine = data(&add(url, None, None, &lamp, 1).await)["addToCart"].clone();
    let theirs = data(&add(url, None, None, &lamp, 2).await)["addToCart"].clone();
    let mine_token = mine["guestToken"].as_str().unwrap();
    let theirs_token = theirs["guestToken"].as_str().unwrap();
    // Their cart's id with my secret: the holder of my token does not hold theirs.
    let forged = format!(
        "{}.{}",
        theirs_token.split_once('.').unwrap().0,
        mine_token.split_once('.').unwrap().1
    );
    let (_, read) = graphql_as(url, None, CART, json!({ "guestToken": forged })).await;
    assert_eq!(first_error_code(&read), "FORBIDDEN");
    assert_eq!(
        first_error_code(&add(url, None, Some(&forged), &lamp, 1).await),
        "FORBIDDEN"
    );
    let (token, _) = customer_token(&system).await;
    let (_, merged) = graphql_as(url, Some(&token), MERGE, json!({ "guestToken": forged })).await;
    assert_eq!(first_error_code(&merged), "FORBIDDEN");
    let (_, anonymous) = graphql_as(url, None, MERGE, json!({ "guestToken": mine_token })).await;
    assert_eq!(first_error_code(&anonymous), "UNAUTHENTICATED");
    let (_, theirs_now) = graphql_as(url, None, CART, json!({ "guestToken": theirs_token })).await;
    assert_eq!(data(&theirs_now)["cart"]["itemCount"], 2, "their cart is untouched");
}

#[tokio::test]
async fn a_signed_in_customer_merges_a_guest_cart_and_the_guest_cart_is_gone() {
    for (store, redis) in SETUPS {
        let system = spawn_system(store, redis, &[]).await;
        let url = &system.router.url;
        let lamp = product(&system, "Lamp", 1000, 200).await;
        let shade = product(&system, "Shade", 300, 200).await;
        let (token, _) = customer_token(&system).await;
        data(&add(url, Some(&token), None, &lamp, 2).await);
        let guest_cart = data(&add(url, None, None, &lamp, 3).await)["addToCart"].clone();
        let guest = guest_cart["guestToken"].as_str().unwrap().to_owned();
        data(&add(url, None, Some(&guest), &shade, 1).await);

        let (_, merged) = graphql_as(url, Some(&token), MERGE, json!({ "guestToken": guest })).await;
        let merged = data(&merged)["mergeGuestCart"].clone();
        assert_eq!(merged["itemCount"], 6);
        assert_eq!(merged["lines"][0], json!({ "quantity": 5, "product": { "id": lamp } }));
        assert_eq!(merged["lines"][1], json!({ "quantity": 1, "product": { "id": shade } }));
        let (_, gone) = graphql_as(url, None, CART, json!({ "guestToken": guest })).await;
        assert_eq!(first_error_code(&gone), "NOT_FOUND");
        let (_, again) = graphql_as(url, Some(&token), MERGE, json!({ "guestToken": guest })).await;
        assert_eq!(first_error_code(&again), "NOT_FOUND", "a merge happens once");
        let (_, mine) = graphql_as(url, Some(&token), CART, json!({})).await;
        assert_eq!(data(&mine)["cart"]["itemCount"], 6);
    }
}

#[tokio::test]
async fn prices_are_checked_against_the_catalog_on_every_read() {
    let system = spawn_system(Store::Postgres, true, &[]).await;
    let url = &system.router.url;
    let lamp = product(&system, "Lamp", 1000, 10).await;
    let shade = product(&system, "Shade", 300, 10).await;
    let guest = data(&add(url, None, None, &lamp, 2).await)["addToCart"]["guestToken"]
        .as_str()
        .unwrap()
        .to_owned();
    data(&add(url, None, Some(&guest), &shade, 1).await);

    let lamp_id = Uuid::parse_str(&lamp).unwrap();
    let shade_id = Uuid::parse_str(&shade).unwrap();
    for (sql, id) in [
        (
            format!("UPDATE catalog.product SET price_minor = 1250 WHERE id = '{lamp}'"),
            lamp_id,
        ),
        (
            format!("UPDATE catalog.product SET status = 'ARCHIVED' WHERE id = '{shade}'"),
            shade_id,
        ),
    ] {
        system.catalog.db.execute_unprepared(&sql).await.unwrap();
        system.catalog.catalog.invalidate_product(id).await;
    }

    let (_, cart) = graphql_as(url, None, CART, json!({ "guestToken": guest })).await;
    let cart = data(&cart)["cart"].clone();
    let lamp_line = &cart["lines"][0];
    assert_eq!(lamp_line["unitPrice"]["amount"], "12.50");
    assert_eq!(lamp_line["addedUnitPrice"]["amount"], "10.00");
    assert_eq!(lamp_line["priceChanged"], true);
    assert_eq!(lamp_line["lineTotal"]["amount"], "25.00");
    assert_eq!(cart["lines"][1]["available"], false, "archived since it was added");
    assert_eq!(cart["subtotal"]["amount"], "25.00", "unavailable lines are not charged");
    assert_eq!(cart["hasPriceChanges"], true);
}

#[tokio::test]
async fn an_order_placed_event_takes_the_ordered_lines_out_of_the_cart_once() {
    use vitrina_cart::events::CartEvents;
    use vitrina_shared::{
        bus::Handler,
        events::{DomainEvent, EventEnvelope, OrderEvent, OrderedLine},
    };

    for (store, redis) in SETUPS {
        let system = spawn_system(store, redis, &[]).await;
        let url = &system.router.url;
        let lamp = product(&system, "Lamp", 1000, 50).await;
        let shade = product(&system, "Shade", 300, 50).await;
        let (token, user_id) = customer_token(&system).await;
        data(&add(url, Some(&token), None, &lamp, 3).await);
        data(&add(url, Some(&token), None, &shade, 1).await);

        // Delivered as the consumer delivers it: an envelope from `orders.order`.
        let events = CartEvents::new(system.cart.carts.clone());
        let placed = OrderEvent::OrderPlaced {
            order_id: Uuid::now_v7(),
            user_id,
            currency: "EUR".to_owned(),
            total_minor: 3000,
            lines: vec![OrderedLine {
                product_id: Uuid::parse_str(&lamp).unwrap(),
                quantity: 3,
                sku: "SKU-LAMP".to_owned(),
                name: "Lamp".to_owned(),
                unit_price_minor: 1000,
            }],
        };
        let envelope = EventEnvelope {
            event_id: Uuid::now_v7(),
            event_type: placed.event_type().to_owned(),
            schema_version: placed.schema_version(),
            aggregate_type: placed.aggregate_type().to_owned(),
            aggregate_id: placed.aggregate_id(),
            occurred_at: chrono::Utc::now(),
            request_id: None,
            payload: serde_json::to_value(&placed).unwrap(),
        };
        events.handle(&envelope).await.unwrap();
        let (_, cart) = graphql_as(url, Some(&token), COUNTS, json!({})).await;
        assert_eq!(data(&cart)["cart"]["itemCount"], 1, "only the shade is left");

        // The customer adds the lamp again; a redelivery of the same event leaves it.
        data(&add(url, Some(&token), None, &lamp, 2).await);
        events.handle(&envelope).await.unwrap();
        let (_, cart) = graphql_as(url, Some(&token), COUNTS, json!({})).await;
        assert_eq!(data(&cart)["cart"]["itemCount"], 3);

        // Other order events pass by; a malformed OrderPlaced is an error (dead letter).
        let paid = EventEnvelope {
            event_id: Uuid::now_v7(),
            event_type: "OrderPaid".to_owned(),
            payload: json!({ "type": "OrderPaid" }),
            ..envelope.clone()
        };
        events.handle(&paid).await.unwrap();
        let malformed = EventEnvelope {
            event_id: Uuid::now_v7(),
            payload: json!({ "type": "OrderPlaced", "orderId": "not-a-uuid" }),
            ..envelope
        };
        let error = events.handle(&malformed).await.unwrap_err();
        assert!(error.0.contains("undecodable OrderPlaced"), "{error}");
        let (_, cart) = graphql_as(url, Some(&token), COUNTS, json!({})).await;
        assert_eq!(data(&cart)["cart"]["itemCount"], 3);
    }
}

#[tokio::test]
async fn an_unreachable_catalog_is_reported_as_unavailable_and_changes_nothing() {
    let dead_catalog = format!("http://127.0.0.1:{}/graphql", crate::helpers::free_port());
    let cart = crate::helpers::spawn_cart(&dead_catalog, true, &[]).await;
    let refused = add(&cart.url, None, None, &Uuid::now_v7().to_string(), 1).await;
    assert_eq!(first_error_code(&refused), "UNAVAILABLE", "{refused:#}");
    assert_eq!(
        refused["errors"][0]["message"], "a backing service is temporarily unavailable; please retry",
        "the cause is logged, not shown"
    );
}
