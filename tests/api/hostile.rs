//! Hostile input: property-generated requests (malformed JSON, wrong types, huge strings,
//! deep nesting, unicode edge cases, negative and overflowing numbers, invalid ids and
//! cursors, garbage tokens) sent through the router and straight to the subgraph that owns
//! the field. Whatever arrives: never a 5xx, every error with a code, and nothing changed
//! by a request that was refused.
//!
//! Cases are drawn from proptest strategies with a fixed seed, so a failure names its
//! case and reproduces; they run against one system, in sequence.

use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use serde_json::{Value, json};

use crate::helpers::{Store, TestSystem, graphql, spawn_system};

/// Which subgraph serves an operation when called directly.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Identity,
    Catalog,
    Cart,
    Orders,
}

/// An operation of the storefront, and the variables a hostile client would mistype.
struct Operation {
    owner: Owner,
    query: &'static str,
    variables: &'static [&'static str],
}

const OPERATIONS: &[Operation] = &[
    Operation {
        owner: Owner::Catalog,
        query: "query($first: Int!, $after: String, $filter: ProductFilter, $sort: ProductSort) { products(first: $first, after: $after, filter: $filter, sort: $sort) { totalCount edges { cursor node { id name } } } }",
        variables: &["first", "after", "filter", "sort"],
    },
    Operation {
        owner: Owner::Catalog,
        query: "query($id: ID!) { product(id: $id) { id name availableQuantity } }",
        variables: &["id"],
    },
    Operation {
        owner: Owner::Catalog,
        query: "query($slug: String!) { productBySlug(slug: $slug) { id } }",
        variables: &["slug"],
    },
    Operation {
        owner: Owner::Cart,
        query: "mutation($productId: ID!, $quantity: Int!, $guestToken: String) { addToCart(productId: $productId, quantity: $quantity, guestToken: $guestToken) { id } }",
        variables: &["productId", "quantity", "guestToken"],
    },
    Operation {
        owner: Owner::Cart,
        query: "mutation($lineId: ID!, $quantity: Int!, $guestToken: String) { updateCartLine(lineId: $lineId, quantity: $quantity, guestToken: $guestToken) { id } }",
        variables: &["lineId", "quantity", "guestToken"],
    },
    Operation {
        owner: Owner::Cart,
        query: "query($guestToken: String) { cart(guestToken: $guestToken) { id itemCount } }",
        variables: &["guestToken"],
    },
    Operation {
        owner: Owner::Identity,
        query: "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }",
        variables: &["email", "password"],
    },
    Operation {
        owner: Owner::Orders,
        query: "mutation($input: CheckoutInput!) { checkout(input: $input) { order { id } } }",
        variables: &["input"],
    },
    Operation {
        owner: Owner::Orders,
        query: "query($first: Int!, $after: String) { myOrders(first: $first, after: $after) { totalCount } }",
        variables: &["first", "after"],
    },
];

/// Strings clients really send by mistake or malice.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("not-a-uuid".to_owned()),
        Just("00000000-0000-0000-0000-000000000000".to_owned()),
        Just("' OR 1=1 --".to_owned()),
        Just("\u{0000}nul\u{0000}".to_owned()),
        Just("\u{202e}rtl override\u{200b}zero width".to_owned()),
        Just("e\u{301}\u{301}\u{301}\u{301} combining".to_owned()),
        Just("😀🏳️‍🌈👩‍👩‍👧‍👦".to_owned()),
        Just("x".repeat(100_000)),
        Just("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.".to_owned()),
        Just("YWJj".to_owned()),
        "\\PC{0,64}",
        any::<String>(),
    ]
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(u64::MAX)),
        Just(json!(9_007_199_254_740_993_u64)),
        Just(json!(1e308)),
        Just(json!(-0.5)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
    ]
}

/// Any JSON value, nested a few levels: the wrong type for almost every variable.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        hostile_number(),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A JSON array nested `depth` times.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

/// One hostile request.
#[derive(Debug, Clone)]
enum Case {
    /// Raw bytes as the body of a JSON POST.
    Bytes(Vec<u8>),
    /// A real operation with mistyped variables and perhaps a forged token.
    Operation {
        operation: usize,
        variables: Vec<Value>,
        authorization: Option<String>,
    },
    /// A document that is not one of ours at all.
    Document(String),
    /// Variables nested deeper than any parser should follow.
    Deep { operation: usize, depth: usize },
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512).prop_map(Case::Bytes),
        (
            0..OPERATIONS.len(),
            prop::collection::vec(any_json(), 4),
            prop::option::of(hostile_string().prop_map(|token| format!("Bearer {token}")))
        )
            .prop_map(|(operation, variables, authorization)| Case::Operation {
                operation,
                variables,
                authorization,
            }),
        hostile_string().prop_map(Case::Document),
        (0..OPERATIONS.len(), 64usize..2_000).prop_map(|(operation, depth)| Case::Deep { operation, depth }),
    ]
}

fn draw_cases(count: usize) -> Vec<Case> {
    let seed: [u8; 32] = *b"vitrina hostile input, seeded.!!";
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let strategy = case();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).expect("a case").current())
        .collect()
}

/// The request a case makes: its body, and its `Authorization` header.
fn request_of(case: &Case) -> (Vec<u8>, Option<String>, Option<usize>) {
    match case {
        Case::Bytes(bytes) => (bytes.clone(), None, None),
        Case::Operation {
            operation,
            variables,
            authorization,
        } => {
            let op = &OPERATIONS[*operation];
            let variables: serde_json::Map<String, Value> = op
                .variables
                .iter()
                .zip(variables)
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect();
            let body = json!({ "query": op.query, "variables": variables });
            (body.to_string().into_bytes(), authorization.clone(), Some(*operation))
        }
        Case::Document(document) => (json!({ "query": document }).to_string().into_bytes(), None, None),
        Case::Deep { operation, depth } => {
            let op = &OPERATIONS[*operation];
            let body = json!({ "query": op.query, "variables": { op.variables[0]: nested(*depth) } });
            (body.to_string().into_bytes(), None, Some(*operation))
        }
    }
}

fn subgraph_url(system: &TestSystem, owner: Owner) -> String {
    match owner {
        Owner::Identity => system.identity.url.clone(),
        Owner::Catalog => system.catalog.url.clone(),
        Owner::Cart => system.cart.url.clone(),
        Owner::Orders => format!("http://127.0.0.1:{}/graphql", system.orders.port),
    }
}

/// What a storefront could observe of the data: stock, one cart, orders.
async fn snapshot(system: &TestSystem, guest_token: &str) -> Value {
    let catalog = graphql(
        &system.router.url,
        "{ products(first: 100) { totalCount edges { node { id name price { amount } availableQuantity } } } }",
        json!({}),
    )
    .await;
    let cart = graphql(
        &system.router.url,
        "query($t: String) { cart(guestToken: $t) { itemCount lines { quantity product { id } } } }",
        json!({ "t": guest_token }),
    )
    .await;
    json!({ "catalog": catalog["data"], "cart": cart["data"] })
}

#[tokio::test]
async fn hostile_requests_never_get_a_5xx_always_get_a_coded_error_and_change_nothing() {
    let system = spawn_system(Store::EmbeddedSqlite, false, &[]).await;
    // A real guest cart, which hostile cart mutations must leave as it is.
    let product = graphql(
        &system.router.url,
        "{ products(first: 1) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    let product_id = product["data"]["products"]["edges"][0]["node"]["id"].clone();
    let added = graphql(
        &system.router.url,
        "mutation($p: ID!) { addToCart(productId: $p, quantity: 2) { guestToken } }",
        json!({ "p": product_id }),
    )
    .await;
    let guest_token = added["data"]["addToCart"]["guestToken"].as_str().unwrap().to_owned();
    let before = snapshot(&system, &guest_token).await;

    let http = reqwest::Client::new();
    let cases = draw_cases(250);
    let (mut requests, mut refused) = (0, 0);
    for (index, case) in cases.iter().enumerate() {
        let (body, authorization, operation) = request_of(case);
        let mut targets = vec![system.router.url.clone()];
        targets.push(match operation {
            Some(operation) => subgraph_url(&system, OPERATIONS[operation].owner),
            None => subgraph_url(
                &system,
                [Owner::Identity, Owner::Catalog, Owner::Cart, Owner::Orders][index % 4],
            ),
        });
        for url in targets {
            let mut request = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone());
            // A value HTTP itself cannot carry (a newline, say) never reaches a server.
            if let Some(value) = authorization
                .as_deref()
                .and_then(|value| reqwest::header::HeaderValue::from_str(value).ok())
            {
                request = request.header("authorization", value);
            }
            let response = request.send().await.unwrap();
            requests += 1;
            let status = response.status();
            let text = response.text().await.unwrap();
            let shown = || {
                format!(
                    "case {index} {case:?}\n→ {url}: HTTP {status}: {}",
                    text.chars().take(400).collect::<String>()
                )
            };
            assert!(!status.is_server_error(), "{}", shown());
            // Headers or a body beyond the HTTP server's limits are refused before GraphQL
            // sees them, with the status that says so.
            if matches!(status.as_u16(), 413 | 431) {
                refused += 1;
                continue;
            }
            let answer: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {}", shown()));
            if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
                refused += 1;
                for error in errors {
                    assert!(
                        error["extensions"]["code"]
                            .as_str()
                            .is_some_and(|code| !code.is_empty()),
                        "an error without a code: {}",
                        shown()
                    );
                }
            }
        }
    }
    let after = snapshot(&system, &guest_token).await;
    assert_eq!(before, after, "a refused request changed data");
    assert!(
        refused * 10 >= requests * 9,
        "only {refused} of {requests} hostile requests were refused"
    );
    eprintln!(
        "hostile input: {requests} requests, {refused} refused with coded errors, 0 server errors, data unchanged"
    );
}
