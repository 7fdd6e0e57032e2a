//! What a client sees of a cart: the stored lines judged against the catalog's live
//! prices and stock. The catalog is asked once per cart, and only when a selected field
//! needs it (`id` and `itemCount` alone cost no catalog call).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    money::{Currency, Money},
};

use crate::{
    catalog_client::CatalogClient,
    model::{CartDoc, Line, ProductFacts, ProductStatus},
};

/// The currency an empty cart reports its zero subtotal in.
const EMPTY_CART_CURRENCY: &str = "EUR";

#[derive(Clone)]
pub struct CartView(Arc<Inner>);

struct Inner {
    doc: CartDoc,
    guest_token: Option<String>,
    expires_at: DateTime<Utc>,
    catalog: CatalogClient,
    facts: OnceCell<HashMap<Uuid, ProductFacts>>,
}

/// One line, judged.
#[derive(Clone)]
pub struct LineView {
    pub line: Line,
    pub unit_price: Money,
    pub added_unit_price: Money,
    pub line_total: Money,
    pub price_changed: bool,
    pub available: bool,
}

impl CartView {
    pub fn new(doc: CartDoc, guest_token: Option<String>, expires_at: DateTime<Utc>, catalog: CatalogClient) -> Self {
        Self(Arc::new(Inner {
            doc,
            guest_token,
            expires_at,
            catalog,
            facts: OnceCell::new(),
        }))
    }

    pub fn doc(&self) -> &CartDoc {
        &self.0.doc
    }

    pub fn guest_token(&self) -> Option<&str> {
        self.0.guest_token.as_deref()
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }

    fn currency(&self) -> Result<Currency, AppError> {
        let code = self.0.doc.currency.as_deref().unwrap_or(EMPTY_CART_CURRENCY);
        Currency::parse(code).ok_or_else(|| AppError::internal(anyhow::anyhow!("a cart is in unknown currency {code}")))
    }

    async fn facts(&self) -> Result<&HashMap<Uuid, ProductFacts>, AppError> {
        self.0
            .facts
            .get_or_try_init(|| async {
                let ids: Vec<Uuid> = self.0.doc.lines.iter().map(|line| line.product_id).collect();
                self.0.catalog.products(&ids).await
            })
            .await
    }

    pub async fn lines(&self) -> Result<Vec<LineView>, AppError> {
        let currency = self.currency()?;
        let facts = self.facts().await?;
        self.0
            .doc
            .lines
            .iter()
            .map(|line| judge(line, facts.get(&line.product_id), currency))
            .collect()
    }

    /// Sum of the available lines at current prices.
    pub async fn subtotal(&self) -> Result<Money, AppError> {
        let currency = self.currency()?;
        let mut total: i64 = 0;
        for line in self.lines().await?.iter().filter(|line| line.available) {
            let minor = minor_units(&line.line_total, currency)?;
            total = total.checked_add(minor).ok_or_else(overflow)?;
        }
        Ok(Money::from_minor_units(total, currency))
    }

    pub async fn has_price_changes(&self) -> Result<bool, AppError> {
        Ok(self.lines().await?.iter().any(|line| line.price_changed))
    }
}

/// A line at the catalog's current price; a product that is gone, no longer active or
/// now priced in another currency keeps its added price and is unavailable.
fn judge(line: &Line, product: Option<&ProductFacts>, currency: Currency) -> Result<LineView, AppError> {
    let current = product.filter(|product| product.currency == currency.code());
    let available = current.is_some_and(|product| product.status == ProductStatus::Active);
    let unit_minor = current.map_or(line.added_unit_price_minor, |product| product.unit_price_minor);
    let total_minor = unit_minor.checked_mul(i64::from(line.quantity)).ok_or_else(overflow)?;
    Ok(LineView {
        line: line.clone(),
        unit_price: Money::from_minor_units(unit_minor, currency),
        added_unit_price: Money::from_minor_units(line.added_unit_price_minor, currency),
        line_total: Money::from_minor_units(total_minor, currency),
        price_changed: product.is_some_and(|product| {
            product.currency != currency.code() || product.unit_price_minor != line.added_unit_price_minor
        }),
        available,
    })
}

fn minor_units(money: &Money, currency: Currency) -> Result<i64, AppError> {
    vitrina_shared::money::to_minor_units(money.amount, currency).ok_or_else(overflow)
}

fn overflow() -> AppError {
    AppError::internal(anyhow::anyhow!("a cart total overflowed"))
}
