//! Reading the caller's cart at checkout: the orders service asks the cart subgraph's
//! own GraphQL endpoint, forwarding the caller's `Authorization` header, so the cart
//! service decides whose cart it is exactly as it does for the storefront (the orders
//! service never reads another service's store).
//!
//! Only what checkout needs is read: product ids and quantities. Prices, status and
//! stock are judged again by the catalog when the units are reserved, so a cart line that
//! went stale since it was added cannot be checked out at its old price.

use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;
use vitrina_shared::{AppError, reservations::RequestedLine};

/// The one query checkout sends to the cart subgraph.
const CART_QUERY: &str = "query CheckoutCart { cart { lines { quantity available product { id } } } }";

pub struct CartClient {
    http: reqwest::Client,
    graphql_url: String,
}

#[derive(Deserialize)]
struct Answer {
    data: Option<Data>,
    #[serde(default)]
    errors: Vec<GraphqlError>,
}

#[derive(Deserialize)]
struct Data {
    cart: Option<Cart>,
}

#[derive(Deserialize)]
struct Cart {
    lines: Vec<Line>,
}

#[derive(Deserialize)]
struct Line {
    quantity: i32,
    available: bool,
    product: ProductRef,
}

#[derive(Deserialize)]
struct ProductRef {
    id: String,
}

#[derive(Deserialize)]
struct GraphqlError {
    message: String,
    #[serde(default)]
    extensions: serde_json::Value,
}

impl CartClient {
    pub fn new(cart_graphql_url: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .context("failed to build the cart client")?;
        Ok(Self {
            http,
            graphql_url: cart_graphql_url.to_owned(),
        })
    }

    /// The lines of the cart of whoever `authorization` identifies. An empty cart (or
    /// none) is an input error; so is a line whose product is no longer sold.
    pub async fn lines_of(
        &self,
        authorization: &str,
        request_id: Option<&str>,
    ) -> Result<Vec<RequestedLine>, AppError> {
        let mut request = self
            .http
            .post(&self.graphql_url)
            .header(http::header::AUTHORIZATION, authorization)
            .json(&serde_json::json!({ "query": CART_QUERY }));
        if let Some(request_id) = request_id {
            request = request.header(vitrina_shared::http::REQUEST_ID_HEADER, request_id);
        }
        let response = request
            .send()
            .await
            .map_err(|error| AppError::Unavailable(anyhow::Error::new(error).context("the cart is unreachable")))?;
        if response.status().is_server_error() {
            return Err(AppError::Unavailable(anyhow::anyhow!(
                "the cart answered {}",
                response.status()
            )));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|error| AppError::internal(anyhow::anyhow!("the cart's answer: {error}")))?;
        if let Some(error) = answer.errors.into_iter().next() {
            return Err(match error.extensions["code"].as_str() {
                Some("UNAUTHENTICATED") => AppError::Unauthenticated(error.message),
                Some("UNAVAILABLE") => AppError::Unavailable(anyhow::anyhow!("the cart: {}", error.message)),
                _ => AppError::internal(anyhow::anyhow!("the cart refused to be read: {}", error.message)),
            });
        }
        let lines = answer
            .data
            .and_then(|data| data.cart)
            .map(|cart| cart.lines)
            .unwrap_or_default();
        if lines.is_empty() {
            return Err(AppError::bad_input("cart", "the cart is empty"));
        }
        if lines.iter().any(|line| !line.available) {
            return Err(AppError::bad_input(
                "cart",
                "the cart holds a product that is no longer sold; remove it first",
            ));
        }
        lines
            .into_iter()
            .map(|line| {
                let product_id = Uuid::parse_str(&line.product.id).map_err(|_| {
                    AppError::internal(anyhow::anyhow!("the cart returned product id {:?}", line.product.id))
                })?;
                Ok(RequestedLine {
                    product_id,
                    quantity: line.quantity,
                })
            })
            .collect()
    }
}
