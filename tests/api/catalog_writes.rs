//! Catalog writes through the router: managers create, change, publish, stock and delete
//! products; every input is validated; stale versions and taken SKUs are conflicts; each
//! change leaves its event in the outbox; and no read after a write returns stale data,
//! whether the cache is Redis or in-process, and even while Redis is down.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;
use vitrina_shared::{auth::Role, outbox};

use crate::{
    helpers::{
        OwnRedis, PASSWORD, Store, TestSystem, data, first_error_code, free_port, graphql, graphql_as,
        spawn_catalog_with, spawn_system_with_admin,
    },
    identity::{sign_in, signed_in_customer},
};

const CREATE: &str = "mutation($input: CreateProductInput!) { createProduct(input: $input) { id sku slug name status version availableQuantity price { amount currencyCode } } }";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id name version price { amount currencyCode } } }";
const PRODUCT: &str =
    "query($id: ID!) { product(id: $id) { id name status version availableQuantity price { amount currencyCode } } }";
const BY_SLUG: &str = "query($slug: String!) { productBySlug(slug: $slug) { id version price { amount } } }";
const SEARCH: &str = "query($search: String!) { products(first: 5, filter: { search: $search }) { totalCount edges { node { id version price { amount } } } } }";

/// A signed-in user holding CUSTOMER and `role`, granted by the bootstrap admin.
async fn staff_token(system: &TestSystem, admin_email: &str, role: Role) -> String {
    let url = &system.router.url;
    let admin = sign_in(url, admin_email, PASSWORD).await;
    let (email, login) = signed_in_customer(url).await;
    let (_, granted) = graphql_as(
        url,
        admin["accessToken"].as_str(),
        "mutation($id: ID!, $role: Role!) { grantRole(userId: $id, role: $role) { id } }",
        json!({ "id": login["user"]["id"], "role": role }),
    )
    .await;
    data(&granted);
    sign_in(url, &email, PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7().simple())
}

fn product_input(sku: &str, slug: &str) -> Value {
    json!({
        "sku": sku, "slug": slug, "name": "Desk Lamp",
        "price": { "amount": "49.90", "currencyCode": "EUR" },
        "initialStock": 5,
    })
}

async fn call(system: &TestSystem, token: Option<&str>, query: &str, variables: Value) -> Value {
    graphql_as(&system.router.url, token, query, variables).await.1
}

#[tokio::test]
async fn a_catalog_manager_runs_a_product_through_its_whole_life_and_each_step_is_an_outbox_event() {
    let (system, admin_email) = spawn_system_with_admin(Store::Postgres, true).await;
    let manager = staff_token(&system, &admin_email, Role::CatalogManager).await;
    let token = Some(manager.as_str());

    let category = call(
        &system,
        token,
        "mutation($input: CreateCategoryInput!) { createCategory(input: $input) { id slug } }",
        json!({ "input": { "name": "Lamps", "slug": unique("lamps") } }),
    )
    .await;
    let category_id = data(&category)["createCategory"]["id"].clone();

    let slug = unique("desk-lamp");
    let mut input = product_input(&unique("lamp"), &slug);
    input["categoryId"] = category_id;
    let created = call(&system, token, CREATE, json!({ "input": input })).await;
    let created = data(&created)["createProduct"].clone();
    assert_eq!(created["status"], "DRAFT", "new products are drafts");
    assert_eq!(created["version"], 1);
    assert_eq!(created["availableQuantity"], 5);
    assert_eq!(created["price"], json!({ "amount": "49.90", "currencyCode": "EUR" }));
    let id = created["id"].clone();

    // A shopper cannot see the draft (and that answer gets cached) …
    let hidden = call(&system, None, PRODUCT, json!({ "id": id })).await;
    assert!(data(&hidden)["product"].is_null());
    // … until it is published: the cached "not visible" must not outlive the write.
    let published = call(
        &system,
        token,
        "mutation($id: ID!) { publishProduct(id: $id) { status version } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        data(&published)["publishProduct"],
        json!({ "status": "ACTIVE", "version": 2 })
    );
    let shown = call(&system, None, PRODUCT, json!({ "id": id })).await;
    assert_eq!(data(&shown)["product"]["status"], "ACTIVE");

    let updated = call(
        &system,
        token,
        UPDATE,
        json!({ "id": id, "input": { "version": 2, "price": { "amount": "39.90", "currencyCode": "EUR" } } }),
    )
    .await;
    assert_eq!(data(&updated)["updateProduct"]["version"], 3);
    let stale = call(
        &system,
        token,
        UPDATE,
        json!({ "id": id, "input": { "version": 2, "name": "Lost update" } }),
    )
    .await;
    assert_eq!(first_error_code(&stale), "CONFLICT", "a stale version is refused");
    let by_slug = call(&system, None, BY_SLUG, json!({ "slug": slug })).await;
    assert_eq!(data(&by_slug)["productBySlug"]["price"]["amount"], "39.90");

    let adjust =
        "mutation($id: ID!, $delta: Int!) { adjustStock(productId: $id, delta: $delta) { availableQuantity } }";
    let removed = call(&system, token, adjust, json!({ "id": id, "delta": -3 })).await;
    assert_eq!(data(&removed)["adjustStock"]["availableQuantity"], 2);
    let too_many = call(&system, token, adjust, json!({ "id": id, "delta": -5 })).await;
    assert_eq!(
        first_error_code(&too_many),
        "CONFLICT",
        "available stock never goes negative"
    );
    let after = call(&system, None, PRODUCT, json!({ "id": id })).await;
    assert_eq!(data(&after)["product"]["availableQuantity"], 2);

    let archived = call(
        &system,
        token,
        "mutation($id: ID!) { archiveProduct(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(data(&archived)["archiveProduct"]["status"], "ARCHIVED");
    let gone = call(&system, None, PRODUCT, json!({ "id": id })).await;
    assert!(
        data(&gone)["product"].is_null(),
        "archived products leave the storefront"
    );

    let delete = "mutation($id: ID!) { deleteProduct(id: $id) }";
    let deleted = call(&system, token, delete, json!({ "id": id })).await;
    assert_eq!(data(&deleted)["deleteProduct"], true);
    let again = call(&system, token, delete, json!({ "id": id })).await;
    assert_eq!(first_error_code(&again), "NOT_FOUND");
    let managers_view = call(&system, token, PRODUCT, json!({ "id": id })).await;
    assert!(data(&managers_view)["product"].is_null());

    let product_id: Uuid = id.as_str().unwrap().parse().unwrap();
    let events: Vec<String> = outbox::entity::Entity::find()
        .filter(outbox::entity::Column::AggregateId.eq(product_id))
        .order_by_asc(outbox::entity::Column::Position)
        .all(&system.catalog.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.event_type)
        .collect();
    assert_eq!(
        events,
        [
            "ProductCreated",
            "StockChanged",
            "ProductUpdated",
            "ProductUpdated",
            "StockChanged",
            "ProductUpdated",
            "ProductDeleted"
        ],
        "one event per committed change, none for refused ones"
    );
}

#[tokio::test]
async fn every_invalid_input_is_refused_naming_its_field_and_nothing_is_written() {
    let (system, admin_email) = spawn_system_with_admin(Store::EmbeddedSqlite, false).await;
    let admin = sign_in(&system.router.url, &admin_email, PASSWORD).await;
    let token = admin["accessToken"].as_str();
    let count = "{ products(first: 1) { totalCount } }";
    let before = data(&call(&system, token, count, json!({})).await)["products"]["totalCount"].clone();

    let cases: Vec<(&str, Value, &str)> = vec![
        ("sku", json!(""), "input.sku"),
        ("sku", json!("MUG 1"), "input.sku"),
        ("slug", json!("Desk Lamp"), "input.slug"),
        ("slug", json!("lamp--2"), "input.slug"),
        ("name", json!("   "), "input.name"),
        ("name", json!("x".repeat(201)), "input.name"),
        ("description", json!("x".repeat(10_001)), "input.description"),
        (
            "price",
            json!({ "amount": "0", "currencyCode": "EUR" }),
            "input.price.amount",
        ),
        (
            "price",
            json!({ "amount": "-5", "currencyCode": "EUR" }),
            "input.price.amount",
        ),
        (
            "price",
            json!({ "amount": "1.999", "currencyCode": "EUR" }),
            "input.price.amount",
        ),
        (
            "price",
            json!({ "amount": "10", "currencyCode": "EURO" }),
            "input.price.currencyCode",
        ),
        ("initialStock", json!(-1), "input.initialStock"),
        ("initialStock", json!(1_000_001), "input.initialStock"),
        ("categoryId", json!("not-an-id"), "input.categoryId"),
        ("categoryId", json!(Uuid::now_v7().to_string()), "input.categoryId"),
        ("attributes", json!([1, 2]), "input.attributes"),
    ];
    for (key, value, field) in cases {
        let mut input = product_input(&unique("ok"), &unique("ok"));
        input[key] = value.clone();
        let response = call(&system, token, CREATE, json!({ "input": input })).await;
        assert_eq!(
            first_error_code(&response),
            "BAD_USER_INPUT",
            "{key} = {value}: {response}"
        );
        assert_eq!(
            response["errors"][0]["extensions"]["field"], field,
            "{key} = {value}: {response}"
        );
    }

    let sku = unique("dup");
    let slug = unique("dup");
    let first = call(&system, token, CREATE, json!({ "input": product_input(&sku, &slug) })).await;
    let id = data(&first)["createProduct"]["id"].clone();
    let same_sku = call(
        &system,
        token,
        CREATE,
        json!({ "input": product_input(&sku.to_lowercase(), &unique("other")) }),
    )
    .await;
    assert_eq!(
        first_error_code(&same_sku),
        "CONFLICT",
        "SKUs are unique whatever their case"
    );
    let same_slug = call(
        &system,
        token,
        CREATE,
        json!({ "input": product_input(&unique("other"), &slug) }),
    )
    .await;
    assert_eq!(first_error_code(&same_slug), "CONFLICT");

    let empty = call(&system, token, UPDATE, json!({ "id": id, "input": { "version": 1 } })).await;
    assert_eq!(empty["errors"][0]["extensions"]["field"], "input");
    let zero = call(
        &system,
        token,
        "mutation($id: ID!) { adjustStock(productId: $id, delta: 0) { id } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(zero["errors"][0]["extensions"]["field"], "delta");
    let bad_category = call(
        &system,
        token,
        "mutation { createCategory(input: { name: \"Lamps\", slug: \"Lamps!\" }) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(bad_category["errors"][0]["extensions"]["field"], "input.slug");

    let after = data(&call(&system, token, count, json!({})).await)["products"]["totalCount"].clone();
    assert_eq!(
        after.as_i64().unwrap(),
        before.as_i64().unwrap() + 1,
        "only the one valid product was written"
    );
}

#[tokio::test]
async fn categories_stay_a_tree_and_only_empty_ones_can_be_deleted() {
    let (system, admin_email) = spawn_system_with_admin(Store::EmbeddedSqlite, false).await;
    let admin = sign_in(&system.router.url, &admin_email, PASSWORD).await;
    let token = admin["accessToken"].as_str();
    let create = "mutation($input: CreateCategoryInput!) { createCategory(input: $input) { id } }";
    let parent = call(
        &system,
        token,
        create,
        json!({ "input": { "name": "Garden", "slug": unique("garden") } }),
    )
    .await;
    let parent = data(&parent)["createCategory"]["id"].clone();
    let child = call(
        &system,
        token,
        create,
        json!({ "input": { "name": "Tools", "slug": unique("tools"), "parentId": parent } }),
    )
    .await;
    let child = data(&child)["createCategory"]["id"].clone();

    let cycle = call(
        &system,
        token,
        "mutation($id: ID!, $parent: ID) { updateCategory(id: $id, input: { parentId: $parent }) { id } }",
        json!({ "id": parent, "parent": child }),
    )
    .await;
    assert_eq!(cycle["errors"][0]["extensions"]["field"], "input.parentId");

    let delete = "mutation($id: ID!) { deleteCategory(id: $id) }";
    let refused = call(&system, token, delete, json!({ "id": parent })).await;
    assert_eq!(first_error_code(&refused), "CONFLICT", "it still has a sub-category");
    let renamed = call(
        &system,
        token,
        "mutation($id: ID!) { updateCategory(id: $id, input: { name: \"Hand tools\", parentId: null }) { id name parent { id } } }",
        json!({ "id": child }),
    )
    .await;
    assert_eq!(data(&renamed)["updateCategory"]["name"], "Hand tools");
    assert!(data(&renamed)["updateCategory"]["parent"].is_null());
    let tree = call(&system, None, "{ categories { id children { id } } }", json!({})).await;
    let roots = data(&tree)["categories"].as_array().unwrap().clone();
    assert!(
        roots.iter().any(|c| c["id"] == child),
        "the moved category is a root now"
    );
    let deleted = call(&system, token, delete, json!({ "id": parent })).await;
    assert_eq!(data(&deleted)["deleteCategory"], true);
}

#[tokio::test]
async fn customers_are_forbidden_to_write_and_anonymous_shoppers_see_only_active_products() {
    let (system, admin_email) = spawn_system_with_admin(Store::EmbeddedSqlite, false).await;
    let url = &system.router.url;
    let (_, customer) = signed_in_customer(url).await;
    let input = json!({ "input": product_input(&unique("c"), &unique("c")) });
    let refused = call(&system, customer["accessToken"].as_str(), CREATE, input.clone()).await;
    assert_eq!(first_error_code(&refused), "FORBIDDEN");
    let anonymous = call(&system, None, CREATE, input.clone()).await;
    assert_eq!(first_error_code(&anonymous), "UNAUTHENTICATED");

    let manager = staff_token(&system, &admin_email, Role::CatalogManager).await;
    let draft = call(&system, Some(&manager), CREATE, input).await;
    data(&draft);
    let statuses = "{ products(first: 100) { totalCount edges { node { status } } } }";
    let shopper = call(&system, None, statuses, json!({})).await;
    let shopper_view = &data(&shopper)["products"];
    assert!(
        shopper_view["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|edge| edge["node"]["status"] == "ACTIVE")
    );
    let staff = call(&system, Some(&manager), statuses, json!({})).await;
    assert_eq!(
        data(&staff)["products"]["totalCount"].as_i64().unwrap(),
        shopper_view["totalCount"].as_i64().unwrap() + 1,
        "the manager also sees the draft"
    );
}

/// Writes while readers keep filling the cache; after each write returns, a read through
/// every cached path (by id, by slug, listing) must show it.
async fn no_read_after_a_write_is_stale(store: Store, redis: bool) {
    let (system, admin_email) = spawn_system_with_admin(store, redis).await;
    let manager = staff_token(&system, &admin_email, Role::CatalogManager).await;
    let sku = unique("race");
    let slug = unique("race");
    let mut input = product_input(&sku, &slug);
    input["status"] = json!("ACTIVE");
    let created = call(&system, Some(&manager), CREATE, json!({ "input": input })).await;
    let id = data(&created)["createProduct"]["id"].clone();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let url = system.router.url.clone();
            let id = id.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    graphql(&url, PRODUCT, json!({ "id": id })).await;
                    // Steady reads racing the writes; unpaced, four readers queue every
                    // write behind them on the embedded store's single connection.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();

    for step in 1..=15 {
        let amount = format!("{}.50", 10 + step);
        let updated = call(
            &system,
            Some(&manager),
            UPDATE,
            json!({ "id": id, "input": { "version": step, "price": { "amount": amount, "currencyCode": "EUR" } } }),
        )
        .await;
        let version = data(&updated)["updateProduct"]["version"].clone();
        let by_id = call(&system, None, PRODUCT, json!({ "id": id })).await;
        assert_eq!(data(&by_id)["product"]["version"], version, "by id, step {step}");
        assert_eq!(data(&by_id)["product"]["price"]["amount"], amount.as_str());
        let by_slug = call(&system, None, BY_SLUG, json!({ "slug": slug })).await;
        assert_eq!(
            data(&by_slug)["productBySlug"]["version"],
            version,
            "by slug, step {step}"
        );
        let listed = call(&system, None, SEARCH, json!({ "search": sku })).await;
        assert_eq!(
            data(&listed)["products"]["edges"][0]["node"]["version"],
            version,
            "listing, step {step}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let stats = system.catalog.catalog.cache().stats();
    assert!(stats.hits() > 0, "the readers were served from the cache");
}

#[tokio::test]
async fn no_read_after_a_write_is_stale_with_the_redis_cache() {
    no_read_after_a_write_is_stale(Store::Postgres, true).await;
}

#[tokio::test]
async fn no_read_after_a_write_is_stale_with_the_embedded_cache() {
    no_read_after_a_write_is_stale(Store::EmbeddedSqlite, false).await;
}

#[tokio::test]
async fn reads_and_writes_succeed_while_redis_is_down_and_stay_fresh_after_it_returns() {
    let port = free_port();
    let mut redis = OwnRedis::start(port);
    redis.wait_ready().await;
    let catalog = spawn_catalog_with(
        Store::EmbeddedSqlite,
        true,
        &[("REDIS_URL", format!("redis://127.0.0.1:{port}"))],
    )
    .await;
    let by_slug = |slug: &'static str| {
        let url = catalog.url.clone();
        async move { graphql(&url, BY_SLUG, json!({ "slug": slug })).await }
    };
    let warm = by_slug("the-rust-book").await;
    let id: Uuid = data(&warm)["productBySlug"]["id"].as_str().unwrap().parse().unwrap();
    by_slug("the-rust-book").await;
    let stats = catalog.catalog.cache().stats();
    assert!(stats.hits() >= 1, "served from Redis while it was up");

    redis.stop();
    let down = by_slug("the-rust-book").await;
    assert_eq!(
        data(&down)["productBySlug"]["id"],
        id.to_string(),
        "reads fall back to the database"
    );
    let listing = graphql(&catalog.url, "{ products(first: 3) { totalCount } }", json!({})).await;
    assert_eq!(data(&listing)["products"]["totalCount"], 10);
    // A write while Redis is down commits; its invalidation is held.
    let changes = vitrina_catalog::store::product_writes::ProductChanges {
        price: Some((1234, "EUR".to_owned())),
        ..Default::default()
    };
    let version = data(&down)["productBySlug"]["version"].as_i64().unwrap() as i32;
    catalog
        .catalog
        .update_product(id, version, changes, None)
        .await
        .expect("writes do not depend on the cache");
    let fresh = by_slug("the-rust-book").await;
    assert_eq!(data(&fresh)["productBySlug"]["price"]["amount"], "12.34");
    assert!(stats.degraded() > 0, "the outage was counted");

    // Redis returns (empty, as after a restart): the held invalidation is applied before
    // the cache is read again, and reads are fresh and cached again.
    let restarted = OwnRedis::start(port);
    restarted.wait_ready().await;
    let hits_before = stats.hits();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let read = by_slug("the-rust-book").await;
        assert_eq!(data(&read)["productBySlug"]["price"]["amount"], "12.34");
        if stats.hits() > hits_before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the cache was never used again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(restarted);
}
