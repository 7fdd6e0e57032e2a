//! The storefront scenarios, as iterations the load generator repeats.
//!
//! Every iteration varies its variables (and, signed in, its caller) by client and
//! iteration number, so no router-side deduplication of identical in-flight requests can
//! merge them and inflate a result.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::{load::Iteration, seed::Shopper};

/// (a) The storefront listing (the contract's `ProductList`, with a category).
pub const LISTING: &str = "query ProductList($first: Int!, $after: String, $filter: ProductFilter, $sort: ProductSort) { products(first: $first, after: $after, filter: $filter, sort: $sort) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id sku slug name price { amount currencyCode } availableQuantity category { id name slug } } } } }";

/// (b) A product page with the shopper's cart beside it: catalog ⨝ cart through the router.
pub const PRODUCT_PAGE: &str = "query ProductPage($id: ID!, $guestToken: String) { product(id: $id) { id sku name description price { amount currencyCode } availableQuantity } cart(guestToken: $guestToken) { id itemCount subtotal { amount currencyCode } lines { id quantity unitPrice { amount currencyCode } product { id name availableQuantity } } } }";

/// (c) A signed-in shopper's account page.
pub const ACCOUNT: &str = "query Account($first: Int!) { me { id email name } myOrders(first: $first) { totalCount edges { node { id status createdAt total { amount currencyCode } lines { quantity product { id name } } } } } }";

const ADD_TO_CART: &str =
    "mutation AddToCart($productId: ID!) { addToCart(productId: $productId, quantity: 1) { id itemCount } }";
const CHECKOUT: &str = "mutation Checkout($input: CheckoutInput!) { checkout(input: $input) { order { id status total { amount currencyCode } } approvalUrl } }";

/// What the scenarios draw their variables from.
pub struct Data {
    pub categories: Vec<String>,
    pub products: Vec<String>,
    pub guest_tokens: Vec<String>,
    pub shoppers: Vec<Shopper>,
}

const SORTS: [(&str, &str); 3] = [("NAME", "ASC"), ("PRICE", "ASC"), ("CREATED_AT", "DESC")];

fn listing_body(data: &Data, client: usize, n: u64) -> Value {
    let pick = client as u64 * 7919 + n;
    let (field, direction) = SORTS[(pick % 3) as usize];
    json!({
        "query": LISTING,
        "variables": {
            "first": 20,
            // A price floor of 0.00–9.99 (below every seeded price) changes the request,
            // not the answer: identical requests in flight stay rare.
            "filter": {
                "categoryId": data.categories[(pick / 3) as usize % data.categories.len()],
                "minPrice": format!("{}.{:02}", pick / 100 % 10, pick % 100),
            },
            "sort": { "field": field, "direction": direction },
        },
    })
}

fn product_page_body(data: &Data, client: usize, n: u64) -> Value {
    let product = &data.products[(client as u64 * 104_729 + n * 31) as usize % data.products.len()];
    json!({
        "query": PRODUCT_PAGE,
        "variables": { "id": product, "guestToken": data.guest_tokens[client % data.guest_tokens.len()] },
    })
}

fn account_body() -> Value {
    json!({ "query": ACCOUNT, "variables": { "first": 10 } })
}

/// (a) anonymous listing against `url` (a router, or the catalog itself).
pub fn listing(url: &str, data: Arc<Data>) -> Iteration {
    let url: Arc<str> = url.into();
    Arc::new(move |http, client, n| {
        let (url, body) = (url.clone(), listing_body(&data, client, n));
        Box::pin(async move {
            let page = crate::load::post(&http, &url, None, &body).await?;
            // Every category holds products, so an empty page is a fault (a category
            // filter that matched nothing), and must not pass for a fast answer.
            if crate::load::contains(&page, b"\"edges\":[]") {
                return Err("empty listing page".to_owned());
            }
            Ok(())
        })
    })
}

/// (b) product page + the client's guest cart.
pub fn product_page(url: &str, data: Arc<Data>) -> Iteration {
    let url: Arc<str> = url.into();
    Arc::new(move |http, client, n| {
        let (url, body) = (url.clone(), product_page_body(&data, client, n));
        Box::pin(async move {
            let page = crate::load::post(&http, &url, None, &body).await?;
            if crate::load::contains(&page, b"\"product\":null") {
                return Err("the product page found no product".to_owned());
            }
            Ok(())
        })
    })
}

/// (c) `me` + `myOrders(first: 10)` as the client's shopper.
pub fn account(url: &str, data: Arc<Data>) -> Iteration {
    let url: Arc<str> = url.into();
    Arc::new(move |http, client, _| {
        let url = url.clone();
        let token = data.shoppers[client % data.shoppers.len()].access_token.clone();
        Box::pin(async move {
            crate::load::post(&http, &url, Some(&token), &account_body())
                .await
                .map(drop)
        })
    })
}

/// (d) one purchase: add a product to the shopper's cart, check out (the PayPal order is
/// created at the simulator by the real client; the outbox records `OrderPlaced`).
pub fn checkout(url: &str, data: Arc<Data>) -> Iteration {
    let url: Arc<str> = url.into();
    Arc::new(move |http, client, n| {
        let url = url.clone();
        let token = data.shoppers[client % data.shoppers.len()].access_token.clone();
        let product = data.products[(client * 13 + n as usize) % data.products.len()].clone();
        Box::pin(async move {
            let add = json!({ "query": ADD_TO_CART, "variables": { "productId": product } });
            crate::load::post(&http, &url, Some(&token), &add).await?;
            let purchase = checkout_request("Bench Shopper");
            crate::load::post(&http, &url, Some(&token), &purchase).await.map(drop)
        })
    })
}

/// A checkout of the caller's cart with a fresh idempotency key, shipped to `full_name`.
fn checkout_request(full_name: &str) -> Value {
    json!({
        "query": CHECKOUT,
        "variables": { "input": {
            "idempotencyKey": uuid::Uuid::new_v4().simple().to_string(),
            "shippingAddress": {
                "fullName": full_name, "line1": "1 Load Street", "city": "Berlin",
                "postalCode": "10115", "countryCode": "DE",
            },
        } },
    })
}

/// (e) a storefront's mix: 50 % listings, 30 % product pages, 15 % account pages, 5 %
/// purchases.
pub fn mixed(url: &str, data: Arc<Data>) -> Iteration {
    storefront_mix([
        listing(url, data.clone()),
        product_page(url, data.clone()),
        account(url, data.clone()),
        checkout(url, data),
    ])
}

/// Interleaves listing, product page, account and purchase iterations 10 : 6 : 3 : 1.
fn storefront_mix(parts: [Iteration; 4]) -> Iteration {
    Arc::new(move |http, client, n| {
        let part = match (client as u64 * 7 + n) % 20 {
            0..10 => &parts[0],
            10..16 => &parts[1],
            16..19 => &parts[2],
            _ => &parts[3],
        };
        part(http, client, n)
    })
}

const CLEAR_CART: &str = "mutation ClearCart { clearCart { id } }";
const CAPTURE: &str = "mutation CapturePayment($orderId: ID!) { capturePayment(orderId: $orderId) { id status } }";
const CANCEL: &str = "mutation CancelOrder($orderId: ID!) { cancelOrder(orderId: $orderId) { id status } }";

/// A purchase that goes on through the order's life, for the soak run: add one of the
/// `scarce` products, check out, then pay (approve at PayPal, capture) half the orders,
/// cancel a quarter and leave a quarter unpaid (they expire). A checkout refused because
/// the product sold out clears the cart, so the shopper can go on buying.
pub fn purchase_lifecycle(url: &str, data: Arc<Data>, scarce: Arc<Vec<String>>) -> Iteration {
    let url: Arc<str> = url.into();
    Arc::new(move |http, client, n| {
        let url = url.clone();
        let token = data.shoppers[client % data.shoppers.len()].access_token.clone();
        let product = scarce[(client * 13 + n as usize) % scarce.len()].clone();
        Box::pin(async move {
            let post = |body: Value| {
                let (http, url, token) = (http.clone(), url.clone(), token.clone());
                async move { crate::load::post(&http, &url, Some(&token), &body).await }
            };
            post(json!({ "query": ADD_TO_CART, "variables": { "productId": product } })).await?;
            let purchase = checkout_request("Soak Shopper");
            let placed = match post(purchase).await {
                Ok(placed) => placed,
                Err(error) => {
                    post(json!({ "query": CLEAR_CART })).await?;
                    return Err(error);
                }
            };
            let placed: Value = serde_json::from_slice(&placed).map_err(|error| format!("checkout body: {error}"))?;
            let order_id = placed["data"]["checkout"]["order"]["id"].clone();
            match n % 4 {
                0 | 1 => {
                    let approval = placed["data"]["checkout"]["approvalUrl"].as_str().unwrap_or_default();
                    let approved = http
                        .get(approval)
                        .send()
                        .await
                        .map_err(|error| format!("send: {error}"))?;
                    if !approved.status().is_success() {
                        return Err(format!("HTTP {}: approval page", approved.status()));
                    }
                    post(json!({ "query": CAPTURE, "variables": { "orderId": order_id } })).await?;
                }
                2 => {
                    post(json!({ "query": CANCEL, "variables": { "orderId": order_id } })).await?;
                }
                _ => {}
            }
            Ok(())
        })
    })
}

/// The soak run's storefront: [`mixed`]'s reads with every purchase a
/// [`purchase_lifecycle`] on scarce stock.
pub fn soak_mix(url: &str, data: Arc<Data>, scarce: Arc<Vec<String>>) -> Iteration {
    storefront_mix([
        listing(url, data.clone()),
        product_page(url, data.clone()),
        account(url, data.clone()),
        purchase_lifecycle(url, data, scarce),
    ])
}
