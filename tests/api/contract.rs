//! The storefront contract (`../shared/contract/*.graphql`): every operation must validate
//! against the composed supergraph once the subgraphs that serve it exist, and the
//! catalog's operations must work end to end through the router.

use std::path::PathBuf;

use apollo_compiler::{ExecutableDocument, Schema, ast};
use serde_json::json;

use crate::{
    catalog::insert_active_product,
    helpers::{
        PASSWORD, Store, data, eventually, first_error_code, graphql, graphql_as, published_order_events, repo_root,
        spawn_catalog, spawn_router, spawn_system, spawn_system_with_admin, supergraph,
    },
};

/// Operations that must already validate; grows as subgraphs land, never shrinks.
const REQUIRED: &[&str] = &[
    "ProductList",
    "ProductPage",
    "Categories",
    "CreateProduct",
    "UpdateProduct",
    "DeleteProduct",
    "AdjustStock",
    "CreateCategory",
    "Register",
    "Login",
    "RefreshSession",
    "Logout",
    "Me",
    "GrantRole",
    "Cart",
    "AddToCart",
    "UpdateCartLine",
    "RemoveCartLine",
    "MergeGuestCart",
    "Checkout",
    "CapturePayment",
    "CancelOrder",
    "MyOrders",
    "Orders",
];

fn contract_dir() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/contract");
    dir.is_dir().then_some(dir)
}

struct Operation {
    name: String,
    source: String,
}

fn contract_operations() -> Vec<Operation> {
    let Some(dir) = contract_dir() else { return Vec::new() };
    let mut operations = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    for path in files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "graphql"))
    {
        let text = std::fs::read_to_string(&path).unwrap();
        let document = ast::Document::parse(text, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for definition in &document.definitions {
            if let ast::Definition::OperationDefinition(operation) = definition {
                let name = operation.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                let single = ast::Document {
                    sources: Default::default(),
                    definitions: vec![definition.clone()],
                };
                operations.push(Operation {
                    name,
                    source: single.to_string(),
                });
            }
        }
    }
    operations
}

/// Whether every root field the operation selects exists in the supergraph.
fn is_served(schema: &Schema, source: &str) -> bool {
    let document = ast::Document::parse(source, "operation.graphql").expect("parses");
    document.definitions.iter().all(|definition| {
        let ast::Definition::OperationDefinition(operation) = definition else {
            return true;
        };
        let Some(root) = schema.root_operation(operation.operation_type) else {
            return false;
        };
        operation.selection_set.iter().all(|selection| match selection {
            ast::Selection::Field(field) => {
                field.name.starts_with("__") || schema.type_field(root, &field.name).is_ok()
            }
            _ => true,
        })
    })
}

#[test]
fn every_served_contract_operation_validates_against_the_supergraph() {
    if contract_dir().is_none() {
        eprintln!("../shared/contract is absent: nothing to check");
        return;
    }
    let schema = supergraph();
    let operations = contract_operations();
    assert!(!operations.is_empty(), "the contract folder holds no operations");
    let mut pending = Vec::new();
    for operation in &operations {
        if !is_served(&schema, &operation.source) {
            pending.push(operation.name.clone());
            continue;
        }
        if let Err(errors) = ExecutableDocument::parse_and_validate(&schema, &operation.source, "contract.graphql") {
            panic!("contract operation {} does not validate:\n{errors}", operation.name);
        }
    }
    for required in REQUIRED {
        assert!(
            operations.iter().any(|o| o.name == *required),
            "{required} is missing from the contract"
        );
        assert!(
            !pending.contains(&required.to_string()),
            "{required} must be served by the supergraph"
        );
    }
    eprintln!("contract operations not yet served by any subgraph: {pending:?}");
}

fn operation(name: &str) -> String {
    contract_operations()
        .into_iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("{name} not in contract"))
        .source
}

/// Registers a customer through the contract's `Register`; returns email and id.
async fn registered_customer(url: &str, name: &str) -> (String, serde_json::Value) {
    let email = format!("{}-{}@example.com", name.to_lowercase(), uuid::Uuid::now_v7().simple());
    let registered = graphql(
        url,
        &operation("Register"),
        json!({ "input": { "email": email, "password": PASSWORD, "name": name } }),
    )
    .await;
    let id = data(&registered)["register"]["id"].clone();
    (email, id)
}

/// Signs `email` in through the contract's `Login`.
async fn access_token(url: &str, email: &str) -> String {
    let login = graphql(
        url,
        &operation("Login"),
        json!({ "email": email, "password": PASSWORD }),
    )
    .await;
    data(&login)["login"]["accessToken"].as_str().unwrap().to_owned()
}

async fn registered_customer_token(url: &str, name: &str) -> String {
    let (email, _) = registered_customer(url, name).await;
    access_token(url, &email).await
}

#[tokio::test]
async fn catalog_contract_operations_work_end_to_end_through_the_router() {
    if contract_dir().is_none() {
        eprintln!("../shared/contract is absent: nothing to run");
        return;
    }
    let catalog = spawn_catalog(Store::Postgres, true).await;
    let router = spawn_router(&catalog).await;

    let list = graphql(
        &router.url,
        &operation("ProductList"),
        json!({ "first": 3, "sort": { "field": "PRICE", "direction": "ASC" } }),
    )
    .await;
    let products = &data(&list)["products"];
    assert_eq!(products["totalCount"], 10);
    assert_eq!(products["pageInfo"]["hasNextPage"], true);
    let cheapest = &products["edges"][0]["node"];
    assert_eq!(cheapest["slug"], "borrow-checker-mug");
    assert_eq!(cheapest["price"], json!({ "amount": "14.00", "currencyCode": "EUR" }));
    assert_eq!(cheapest["category"]["slug"], "mugs");
    let after = products["pageInfo"]["endCursor"].clone();
    let next = graphql(
        &router.url,
        &operation("ProductList"),
        json!({ "first": 3, "after": after, "sort": { "field": "PRICE", "direction": "ASC" } }),
    )
    .await;
    assert_eq!(
        data(&next)["products"]["edges"][0]["node"]["slug"],
        "ferris-tee",
        "page 2 continues after the cursor"
    );

    let page = graphql(
        &router.url,
        &operation("ProductPage"),
        json!({ "slug": "the-rust-book" }),
    )
    .await;
    let book = &data(&page)["productBySlug"];
    assert_eq!(book["name"], "The Rust Programming Language");
    assert_eq!(book["status"], "ACTIVE");
    assert_eq!(book["availableQuantity"], 60);

    let categories = graphql(&router.url, &operation("Categories"), json!({})).await;
    let roots = data(&categories)["categories"].as_array().unwrap().clone();
    assert_eq!(roots.len(), 3);
    assert_eq!(roots[0]["children"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn identity_contract_operations_work_end_to_end_through_the_router() {
    if contract_dir().is_none() {
        eprintln!("../shared/contract is absent: nothing to run");
        return;
    }
    let password = PASSWORD;
    let (system, admin_email) = spawn_system_with_admin(Store::Postgres, true).await;
    let url = &system.router.url;
    let email = format!("shopper-{}@example.com", uuid::Uuid::now_v7().simple());
    let registered = graphql(
        url,
        &operation("Register"),
        json!({ "input": { "email": email, "password": password, "name": "Grace" } }),
    )
    .await;
    assert_eq!(data(&registered)["register"]["email"], email.as_str());

    let login = graphql(
        url,
        &operation("Login"),
        json!({ "email": email, "password": password }),
    )
    .await;
    let login = data(&login)["login"].clone();
    assert_eq!(login["user"]["roles"], json!(["CUSTOMER"]));
    let access = login["accessToken"].as_str().unwrap().to_owned();
    let (_, me) = graphql_as(url, Some(&access), &operation("Me"), json!({})).await;
    assert_eq!(data(&me)["me"]["name"], "Grace");

    let refreshed = graphql(
        url,
        &operation("RefreshSession"),
        json!({ "refreshToken": login["refreshToken"] }),
    )
    .await;
    let refreshed = data(&refreshed)["refreshSession"].clone();
    assert!(refreshed["expiresAt"].is_string());
    let stale = graphql(
        url,
        &operation("RefreshSession"),
        json!({ "refreshToken": login["refreshToken"] }),
    )
    .await;
    assert_eq!(
        first_error_code(&stale),
        "UNAUTHENTICATED",
        "the old refresh token is refused"
    );
    assert!(stale["data"].is_null(), "{stale:#}");

    let admin = graphql(
        url,
        &operation("Login"),
        json!({ "email": admin_email, "password": password }),
    )
    .await;
    let admin_token = data(&admin)["login"]["accessToken"].as_str().unwrap().to_owned();
    let (_, granted) = graphql_as(
        url,
        Some(&admin_token),
        &operation("GrantRole"),
        json!({ "userId": login["user"]["id"], "role": "ORDER_MANAGER" }),
    )
    .await;
    assert_eq!(
        data(&granted)["grantRole"]["roles"],
        json!(["CUSTOMER", "ORDER_MANAGER"])
    );

    let access = refreshed["accessToken"].as_str().unwrap().to_owned();
    let (_, logout) = graphql_as(url, Some(&access), &operation("Logout"), json!({})).await;
    assert_eq!(data(&logout)["logout"], true);
    let (_, me) = graphql_as(url, Some(&access), &operation("Me"), json!({})).await;
    assert_eq!(first_error_code(&me), "UNAUTHENTICATED");
}

#[tokio::test]
async fn catalog_manager_contract_operations_work_end_to_end_through_the_router() {
    if contract_dir().is_none() {
        eprintln!("../shared/contract is absent: nothing to run");
        return;
    }
    let (system, admin_email) = spawn_system_with_admin(Store::Postgres, true).await;
    let url = &system.router.url;
    let admin = graphql(
        url,
        &operation("Login"),
        json!({ "email": admin_email, "password": PASSWORD }),
    )
    .await;
    let admin_token = data(&admin)["login"]["accessToken"].as_str().unwrap().to_owned();
    // A dedicated catalog manager, as a shop would have.
    let (email, manager_id) = registered_customer(url, "Morgan").await;
    let (_, granted) = graphql_as(
        url,
        Some(&admin_token),
        &operation("GrantRole"),
        json!({ "userId": manager_id, "role": "CATALOG_MANAGER" }),
    )
    .await;
    data(&granted);
    let token = access_token(url, &email).await;
    let token = Some(token.as_str());

    let (_, category) = graphql_as(
        url,
        token,
        &operation("CreateCategory"),
        json!({ "input": { "name": "Lighting", "slug": "lighting" } }),
    )
    .await;
    let category = data(&category)["createCategory"].clone();
    assert_eq!(category["slug"], "lighting");

    let (_, created) = graphql_as(
        url,
        token,
        &operation("CreateProduct"),
        json!({ "input": {
            "sku": "LAMP-001", "slug": "brass-desk-lamp", "name": "Brass desk lamp",
            "description": "Warm light for late compiles.",
            "price": { "amount": "89.00", "currencyCode": "EUR" },
            "categoryId": category["id"], "initialStock": 12, "status": "ACTIVE"
        } }),
    )
    .await;
    let product = data(&created)["createProduct"].clone();
    assert_eq!(product["sku"], "LAMP-001");
    assert_eq!(product["status"], "ACTIVE");
    assert_eq!(product["version"], 1);
    let id = product["id"].clone();

    let (_, updated) = graphql_as(
        url,
        token,
        &operation("UpdateProduct"),
        json!({ "id": id, "input": { "version": 1, "name": "Brass desk lamp (large)",
                 "price": { "amount": "99.00", "currencyCode": "EUR" } } }),
    )
    .await;
    let updated = data(&updated)["updateProduct"].clone();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["price"], json!({ "amount": "99.00", "currencyCode": "EUR" }));
    let (_, stale) = graphql_as(
        url,
        token,
        &operation("UpdateProduct"),
        json!({ "id": id, "input": { "version": 1, "name": "Lost" } }),
    )
    .await;
    assert_eq!(first_error_code(&stale), "CONFLICT");

    let (_, stocked) = graphql_as(
        url,
        token,
        &operation("AdjustStock"),
        json!({ "productId": id, "delta": -2 }),
    )
    .await;
    assert_eq!(data(&stocked)["adjustStock"]["availableQuantity"], 10);

    let page = graphql(url, &operation("ProductPage"), json!({ "slug": "brass-desk-lamp" })).await;
    let page = data(&page)["productBySlug"].clone();
    assert_eq!(page["name"], "Brass desk lamp (large)");
    assert_eq!(page["availableQuantity"], 10);
    assert_eq!(page["category"]["slug"], "lighting");
    let list = graphql(
        url,
        &operation("ProductList"),
        json!({ "first": 5, "filter": { "categoryId": category["id"] } }),
    )
    .await;
    assert_eq!(data(&list)["products"]["totalCount"], 1);

    let (_, deleted) = graphql_as(url, token, &operation("DeleteProduct"), json!({ "id": id })).await;
    assert_eq!(data(&deleted)["deleteProduct"], true);
    let page = graphql(url, &operation("ProductPage"), json!({ "slug": "brass-desk-lamp" })).await;
    assert!(data(&page)["productBySlug"].is_null());
}

#[tokio::test]
async fn cart_contract_operations_work_end_to_end_through_the_router() {
    if contract_dir().is_none() {
        eprintln!("../shared/contract is absent: nothing to run");
        return;
    }
    let system = spawn_system(Store::Postgres, true, &[]).await;
    let url = &system.router.url;
    let mut products = Vec::new();
    for (name, price_minor) in [("Walnut desk", 42_000), ("Desk mat", 2_990)] {
        products.push(
            insert_active_product(&system.catalog, name, price_minor, 20)
                .await
                .to_string(),
        );
    }

    let added = graphql(
        url,
        &operation("AddToCart"),
        json!({ "productId": products[0], "quantity": 1 }),
    )
    .await;
    let added = data(&added)["addToCart"].clone();
    let guest = added["guestToken"].as_str().unwrap().to_owned();
    assert_eq!(added["itemCount"], 1);
    let added = graphql(
        url,
        &operation("AddToCart"),
        json!({ "productId": products[1], "quantity": 2, "guestToken": guest }),
    )
    .await;
    assert_eq!(data(&added)["addToCart"]["itemCount"], 3);

    let cart = graphql(url, &operation("Cart"), json!({ "guestToken": guest })).await;
    let cart = data(&cart)["cart"].clone();
    assert_eq!(cart["subtotal"], json!({ "amount": "479.80", "currencyCode": "EUR" }));
    assert_eq!(cart["lines"][0]["product"]["name"], "Walnut desk");
    assert_eq!(cart["lines"][0]["product"]["availableQuantity"], 20);
    assert_eq!(cart["lines"][1]["priceChanged"], false);
    let mat_line = cart["lines"][1]["id"].clone();

    let updated = graphql(
        url,
        &operation("UpdateCartLine"),
        json!({ "lineId": mat_line, "quantity": 4, "guestToken": guest }),
    )
    .await;
    assert_eq!(data(&updated)["updateCartLine"]["itemCount"], 5);
    let removed = graphql(
        url,
        &operation("RemoveCartLine"),
        json!({ "lineId": mat_line, "guestToken": guest }),
    )
    .await;
    assert_eq!(data(&removed)["removeCartLine"]["itemCount"], 1);

    let token = registered_customer_token(url, "Lin").await;
    let (_, merged) = graphql_as(
        url,
        Some(&token),
        &operation("MergeGuestCart"),
        json!({ "guestToken": guest }),
    )
    .await;
    assert_eq!(data(&merged)["mergeGuestCart"]["itemCount"], 1);
    let (_, mine) = graphql_as(url, Some(&token), &operation("Cart"), json!({})).await;
    let mine = data(&mine)["cart"].clone();
    assert_eq!(mine["lines"][0]["product"]["name"], "Walnut desk");
    assert_eq!(mine["subtotal"]["amount"], "420.00");
}

async fn stock_of(system: &crate::helpers::TestSystem, product: &str) -> (i32, i32) {
    use sea_orm::EntityTrait;
    let id: uuid::Uuid = product.parse().unwrap();
    let row = catalog_entity::stock::Entity::find_by_id(id)
        .one(&system.catalog.db)
        .await
        .unwrap()
        .unwrap();
    (row.on_hand, row.reserved)
}

fn address() -> serde_json::Value {
    json!({ "fullName": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "countryCode": "gb" })
}

#[tokio::test]
async fn order_contract_operations_work_end_to_end_through_the_router() {
    if contract_dir().is_none() {
        eprintln!("../shared/contract is absent: nothing to run");
        return;
    }
    let (system, admin_email) = spawn_system_with_admin(Store::Postgres, false).await;
    let url = &system.router.url;
    let lamp = insert_active_product(&system.catalog, "Brass lamp", 2_500, 10)
        .await
        .to_string();
    let (customer_email, customer_id) = registered_customer(url, "Ada").await;
    let token = access_token(url, &customer_email).await;
    let token = Some(token.as_str());

    // Sign in, add to cart, check out.
    let (_, added) = graphql_as(
        url,
        token,
        &operation("AddToCart"),
        json!({ "productId": lamp, "quantity": 2 }),
    )
    .await;
    assert_eq!(data(&added)["addToCart"]["itemCount"], 2);
    let checkout = json!({ "input": { "idempotencyKey": "ada-first-order", "shippingAddress": address() } });
    let (_, placed) = graphql_as(url, token, &operation("Checkout"), checkout.clone()).await;
    let placed = data(&placed)["checkout"].clone();
    assert_eq!(placed["order"]["status"], "PENDING_PAYMENT");
    assert_eq!(
        placed["order"]["total"],
        json!({ "amount": "50.00", "currencyCode": "EUR" })
    );
    let order_id = placed["order"]["id"].as_str().unwrap().to_owned();
    let approval_url = placed["approvalUrl"].as_str().unwrap().to_owned();
    assert_eq!(stock_of(&system, &lamp).await, (10, 2), "checkout holds the units");

    // The same key again: the same order, however often.
    let (_, again) = graphql_as(url, token, &operation("Checkout"), checkout).await;
    assert_eq!(data(&again)["checkout"]["order"]["id"], order_id.as_str());
    assert_eq!(data(&again)["checkout"]["approvalUrl"], approval_url.as_str());

    // Another customer cannot capture or cancel it.
    let intruder = registered_customer_token(url, "Mallory").await;
    let (_, refused) = graphql_as(
        url,
        Some(&intruder),
        &operation("CapturePayment"),
        json!({ "orderId": order_id }),
    )
    .await;
    assert_eq!(first_error_code(&refused), "NOT_FOUND");
    let (_, refused) = graphql_as(
        url,
        Some(&intruder),
        &operation("CancelOrder"),
        json!({ "orderId": order_id }),
    )
    .await;
    assert_eq!(first_error_code(&refused), "NOT_FOUND");

    // The buyer approves on the (simulated) PayPal page, then the storefront captures.
    let page = reqwest::get(&approval_url).await.unwrap();
    assert!(page.status().is_success());
    let (_, captured) = graphql_as(url, token, &operation("CapturePayment"), json!({ "orderId": order_id })).await;
    assert_eq!(
        data(&captured)["capturePayment"],
        json!({ "id": order_id, "status": "PAID" })
    );

    // Stock taken once, cart emptied, events published, history caught up.
    eventually("the paid units leaving stock", || async {
        (stock_of(&system, &lamp).await == (8, 0)).then_some(())
    })
    .await;
    eventually("the cart emptying", || async {
        let (_, cart) = graphql_as(url, token, &operation("Cart"), json!({})).await;
        let cart = &data(&cart)["cart"];
        (cart.is_null() || cart["lines"].as_array().is_some_and(Vec::is_empty)).then_some(())
    })
    .await;
    let history = eventually("the order history showing the payment", || async {
        let (_, mine) = graphql_as(url, token, &operation("MyOrders"), json!({ "first": 10 })).await;
        let mine = data(&mine)["myOrders"].clone();
        (mine["edges"][0]["node"]["status"] == "PAID").then_some(mine)
    })
    .await;
    assert_eq!(history["totalCount"], 1);
    let node = &history["edges"][0]["node"];
    assert_eq!(node["id"], order_id.as_str());
    assert_eq!(node["lines"][0]["quantity"], 2);
    assert_eq!(
        node["lines"][0]["unitPrice"],
        json!({ "amount": "25.00", "currencyCode": "EUR" })
    );
    assert_eq!(node["lines"][0]["product"], json!({ "id": lamp, "name": "Brass lamp" }));
    let published = orders_event_types(&system).await;
    assert_eq!(published, ["OrderPlaced", "OrderPaid"], "one event per transition");

    // A second order, cancelled by its customer: its units come back.
    let (_, added) = graphql_as(
        url,
        token,
        &operation("AddToCart"),
        json!({ "productId": lamp, "quantity": 3 }),
    )
    .await;
    data(&added);
    let (_, second) = graphql_as(
        url,
        token,
        &operation("Checkout"),
        json!({ "input": { "idempotencyKey": "ada-second-order", "shippingAddress": address() } }),
    )
    .await;
    let second_id = data(&second)["checkout"]["order"]["id"].as_str().unwrap().to_owned();
    assert_eq!(stock_of(&system, &lamp).await, (8, 3));
    let (_, cancelled) = graphql_as(url, token, &operation("CancelOrder"), json!({ "orderId": second_id })).await;
    assert_eq!(data(&cancelled)["cancelOrder"]["status"], "CANCELLED");
    let (_, late) = graphql_as(
        url,
        token,
        &operation("CapturePayment"),
        json!({ "orderId": second_id }),
    )
    .await;
    assert_eq!(first_error_code(&late), "CONFLICT", "a cancelled order cannot be paid");
    eventually("the cancelled order's units returning", || async {
        (stock_of(&system, &lamp).await == (8, 0)).then_some(())
    })
    .await;

    // The customer may not list everyone's orders; an order manager may.
    let (_, refused) = graphql_as(url, token, &operation("Orders"), json!({ "first": 10 })).await;
    assert_eq!(first_error_code(&refused), "FORBIDDEN");
    let admin_token = access_token(url, &admin_email).await;
    let paid = eventually("the manager's listing", || async {
        let (_, listed) = graphql_as(
            url,
            Some(&admin_token),
            &operation("Orders"),
            json!({ "first": 10, "filter": { "status": "PAID" } }),
        )
        .await;
        let listed = data(&listed)["orders"].clone();
        (listed["totalCount"] == 1).then_some(listed)
    })
    .await;
    let node = &paid["edges"][0]["node"];
    assert_eq!(node["id"], order_id.as_str());
    assert_eq!(node["customer"], json!({ "id": customer_id, "email": customer_email }));
    assert_eq!(node["total"]["amount"], "50.00");
}

/// The types of the events the orders service published, in order.
async fn orders_event_types(system: &crate::helpers::TestSystem) -> Vec<String> {
    eventually("the relay publishing", || async {
        let types = published_order_events(&system.orders.db).await;
        (types.len() >= 2).then_some(types)
    })
    .await
}
