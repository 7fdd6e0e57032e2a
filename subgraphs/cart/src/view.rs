//! What a client sees of a cart: the stored lines judged against the catalog's live
//! prices and stock. Lines are judged once per cart (one catalog call), and only when a
//! selected field needs them (`id` and `itemCount` alone cost no catalog call).

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
    judged: OnceCell<Judged>,
}

/// The lines at current prices, and what `subtotal` and `hasPriceChanges` derive from them.
struct Judged {
    lines: Vec<LineView>,
    /// Sum of the available lines, in minor units of the cart's currency.
    subtotal_minor: i64,
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
            judged: OnceCell::new(),
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

    async fn judged(&self) -> Result<&Judged, AppError> {
        self.0
            .judged
            .get_or_try_init(|| async {
                let currency = self.currency()?;
                let ids: Vec<Uuid> = self.0.doc.lines.iter().map(|line| line.product_id).collect();
                let facts: HashMap<Uuid, ProductFacts> = self.0.catalog.products(&ids).await?;
                let mut lines = Vec::with_capacity(self.0.doc.lines.len());
                let mut subtotal_minor: i64 = 0;
                for line in &self.0.doc.lines {
                    let (view, total_minor) = judge(line, facts.get(&line.product_id), currency)?;
                    if view.available {
                        subtotal_minor = subtotal_minor.checked_add(total_minor).ok_or_else(overflow)?;
                    }
                    lines.push(view);
                }
                Ok(Judged { lines, subtotal_minor })
            })
            .await
    }

    pub async fn lines(&self) -> Result<Vec<LineView>, AppError> {
        Ok(self.judged().await?.lines.clone())
    }

    /// Sum of the available lines at current prices.
    pub async fn subtotal(&self) -> Result<Money, AppError> {
        let subtotal_minor = self.judged().await?.subtotal_minor;
        Ok(Money::from_minor_units(subtotal_minor, self.currency()?))
    }

    pub async fn has_price_changes(&self) -> Result<bool, AppError> {
        Ok(self.judged().await?.lines.iter().any(|line| line.price_changed))
    }
}

/// A line at the catalog's current price; a product that is gone, no longer active or
/// now priced in another currency keeps its added price and is unavailable. Returns the
/// line and its total in minor units.
fn judge(line: &Line, product: Option<&ProductFacts>, currency: Currency) -> Result<(LineView, i64), AppError> {
    let current = product.filter(|product| product.currency == currency.code());
    let available = current.is_some_and(|product| product.status == ProductStatus::Active);
    let unit_minor = current.map_or(line.added_unit_price_minor, |product| product.unit_price_minor);
    let total_minor = unit_minor.checked_mul(i64::from(line.quantity)).ok_or_else(overflow)?;
    let view = LineView {
        line: line.clone(),
        unit_price: Money::from_minor_units(unit_minor, currency),
        added_unit_price: Money::from_minor_units(line.added_unit_price_minor, currency),
        line_total: Money::from_minor_units(total_minor, currency),
        price_changed: product.is_some_and(|product| {
            product.currency != currency.code() || product.unit_price_minor != line.added_unit_price_minor
        }),
        available,
    };
    Ok((view, total_minor))
}

fn overflow() -> AppError {
    AppError::internal(anyhow::anyhow!("a cart total overflowed"))
}
