//! What the cart asks the catalog: the live status, price and stock of the products in
//! a cart, in one federation `_entities` call per request (the catalog answers it
//! through its DataLoader and cache: one batch, at most one SQL query). The cart never
//! trusts a price from the client or from its own snapshot.

use std::{collections::HashMap, time::Duration};

use anyhow::{Context as _, anyhow};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    money::{Currency, to_minor_units},
};

use crate::model::{ProductFacts, ProductStatus};

const ENTITIES_QUERY: &str = "query CartProducts($representations: [_Any!]!) { \
    _entities(representations: $representations) { \
      ... on Product { id status availableQuantity price { amount currencyCode } } } }";

/// How long the cart waits for the catalog before answering `UNAVAILABLE`.
const CATALOG_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct CatalogClient {
    http: reqwest::Client,
    url: String,
}

#[derive(Deserialize)]
struct Response {
    data: Option<EntitiesData>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct EntitiesData {
    #[serde(rename = "_entities")]
    entities: Vec<Option<Entity>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entity {
    id: String,
    status: String,
    available_quantity: i64,
    price: Price,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Price {
    amount: rust_decimal::Decimal,
    currency_code: String,
}

impl CatalogClient {
    /// A client of the catalog's GraphQL endpoint `url`.
    pub fn new(url: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(CATALOG_TIMEOUT)
            .build()
            .context("failed to build the catalog HTTP client")?;
        Ok(Self { http, url })
    }

    /// The facts of every product in `ids` that exists; missing ids are left out.
    #[tracing::instrument(skip_all, fields(products = ids.len()))]
    pub async fn products(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, ProductFacts>, AppError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let representations: Vec<_> = ids
            .iter()
            .map(|id| json!({ "__typename": "Product", "id": id.to_string() }))
            .collect();
        let response: Response = self
            .http
            .post(&self.url)
            .json(&json!({ "query": ENTITIES_QUERY, "variables": { "representations": representations } }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("the catalog did not answer")
            .map_err(AppError::Unavailable)?
            .json()
            .await
            .context("the catalog's answer is not GraphQL JSON")
            .map_err(AppError::Unavailable)?;
        let data = match (response.data, response.errors.first()) {
            (Some(data), None) => data,
            (_, error) => {
                return Err(AppError::Unavailable(anyhow!(
                    "the catalog refused the product look-up: {}",
                    error.map(ToString::to_string).unwrap_or_default()
                )));
            }
        };
        data.entities
            .into_iter()
            .flatten()
            .map(|entity| facts(entity).map(|facts| (facts.id, facts)))
            .collect::<anyhow::Result<_>>()
            .map_err(AppError::internal)
    }

    /// One product's facts; `NOT_FOUND` when the catalog has no such product.
    pub async fn product(&self, id: Uuid) -> Result<ProductFacts, AppError> {
        self.products(&[id])
            .await?
            .remove(&id)
            .ok_or_else(|| AppError::not_found("product"))
    }
}

fn facts(entity: Entity) -> anyhow::Result<ProductFacts> {
    let currency = Currency::parse(&entity.price.currency_code)
        .with_context(|| format!("the catalog sent currency {:?}", entity.price.currency_code))?;
    let unit_price_minor = to_minor_units(entity.price.amount, currency)
        .with_context(|| format!("the catalog sent price {}", entity.price.amount))?;
    let status = match entity.status.as_str() {
        "ACTIVE" => ProductStatus::Active,
        "DRAFT" => ProductStatus::Draft,
        "ARCHIVED" => ProductStatus::Archived,
        other => anyhow::bail!("the catalog sent product status {other:?}"),
    };
    Ok(ProductFacts {
        id: Uuid::try_parse(&entity.id).context("the catalog sent a product id that is not a UUID")?,
        status,
        unit_price_minor,
        currency: currency.code().to_owned(),
        available_quantity: entity.available_quantity,
    })
}
