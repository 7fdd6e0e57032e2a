//! The cart as it is stored: one JSON document per cart, and the rules every change
//! must keep. Pure data and pure functions; `service` loads, changes and commits it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vitrina_shared::{AppError, events::OrderedLine};

/// Units of one product per line.
pub const MAX_QUANTITY: u32 = 99;
/// Lines per cart.
pub const MAX_LINES: usize = 100;
/// A guest cart lives this long after its last use.
pub const GUEST_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// A customer's cart lives this long after its last use.
pub const USER_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Where a cart is stored: customers have one cart each, guests one per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CartAddress {
    User(Uuid),
    Guest(Uuid),
}

impl CartAddress {
    /// The store key (without the store's own prefix).
    pub fn key(self) -> String {
        match self {
            CartAddress::User(user_id) => format!("user:{user_id}"),
            CartAddress::Guest(cart_id) => format!("guest:{cart_id}"),
        }
    }

    /// How long the cart lives after each use.
    pub fn ttl(self) -> std::time::Duration {
        match self {
            CartAddress::User(_) => USER_TTL,
            CartAddress::Guest(_) => GUEST_TTL,
        }
    }
}

/// Who may use a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    User {
        user_id: Uuid,
    },
    /// Only a hash of the token's secret is stored: a leaked store does not leak carts.
    Guest {
        secret_sha256: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartDoc {
    pub id: Uuid,
    pub owner: Owner,
    /// Set by the first line; every line is in this currency.
    pub currency: Option<String>,
    pub lines: Vec<Line>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub id: Uuid,
    pub product_id: Uuid,
    pub quantity: u32,
    /// The catalog price when the line was added (minor units of the cart's currency).
    pub added_unit_price_minor: i64,
    pub added_at: DateTime<Utc>,
}

/// What the catalog says about a product now, as far as a cart is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFacts {
    pub id: Uuid,
    pub status: ProductStatus,
    pub unit_price_minor: i64,
    pub currency: String,
    pub available_quantity: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl CartDoc {
    pub fn new(owner: Owner, now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::new_v4(),
            owner,
            currency: None,
            lines: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    pub fn item_count(&self) -> u32 {
        self.lines.iter().map(|line| line.quantity).sum()
    }

    fn line_mut(&mut self, line_id: Uuid) -> Result<&mut Line, AppError> {
        self.lines
            .iter_mut()
            .find(|line| line.id == line_id)
            .ok_or_else(|| AppError::not_found("cart line"))
    }

    /// Adds `quantity` units of `product` (to its line when there is one).
    pub fn add(&mut self, product: &ProductFacts, quantity: u32, now: DateTime<Utc>) -> Result<(), AppError> {
        check_quantity(quantity)?;
        check_sellable(product)?;
        if let Some(currency) = &self.currency
            && *currency != product.currency
        {
            return Err(AppError::bad_input(
                "productId",
                format!(
                    "this cart is in {currency}; the product is priced in {}",
                    product.currency
                ),
            ));
        }
        let existing = self.lines.iter().position(|line| line.product_id == product.id);
        let total = existing.map_or(0, |index| self.lines[index].quantity) + quantity;
        if total > MAX_QUANTITY {
            return Err(AppError::bad_input(
                "quantity",
                format!(
                    "a line holds at most {MAX_QUANTITY} units; the cart already has {}",
                    total - quantity
                ),
            ));
        }
        check_stock(product, total)?;
        match existing {
            Some(index) => self.lines[index].quantity = total,
            None => {
                if self.lines.len() >= MAX_LINES {
                    return Err(AppError::bad_input(
                        "productId",
                        format!("a cart holds at most {MAX_LINES} lines"),
                    ));
                }
                self.lines.push(Line {
                    id: Uuid::new_v4(),
                    product_id: product.id,
                    quantity,
                    added_unit_price_minor: product.unit_price_minor,
                    added_at: now,
                });
                self.currency = Some(product.currency.clone());
            }
        }
        self.updated_at = now;
        Ok(())
    }

    /// Sets a line's quantity; `product` is the line's product as the catalog has it now.
    pub fn set_quantity(
        &mut self,
        line_id: Uuid,
        quantity: u32,
        product: Option<&ProductFacts>,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        check_quantity(quantity)?;
        let line = self.line_mut(line_id)?;
        if quantity > line.quantity {
            // Raising a quantity is buying more: the product must still be sold and stocked.
            let product = product.ok_or_else(|| AppError::not_found("product"))?;
            check_sellable(product)?;
            check_stock(product, quantity)?;
        }
        line.quantity = quantity;
        self.updated_at = now;
        Ok(())
    }

    pub fn remove(&mut self, line_id: Uuid, now: DateTime<Utc>) -> Result<(), AppError> {
        self.line_mut(line_id)?;
        self.lines.retain(|line| line.id != line_id);
        if self.lines.is_empty() {
            self.currency = None;
        }
        self.updated_at = now;
        Ok(())
    }

    /// Takes the units of an order out of the cart: each ordered product's line shrinks
    /// by the ordered quantity and goes when nothing is left.
    pub fn remove_ordered(&mut self, ordered: &[OrderedLine], now: DateTime<Utc>) {
        for item in ordered {
            if let Some(line) = self.lines.iter_mut().find(|line| line.product_id == item.product_id) {
                line.quantity = line.quantity.saturating_sub(item.quantity);
            }
        }
        self.lines.retain(|line| line.quantity > 0);
        if self.lines.is_empty() {
            self.currency = None;
        }
        self.updated_at = now;
    }

    pub fn clear(&mut self, now: DateTime<Utc>) {
        self.lines.clear();
        self.currency = None;
        self.updated_at = now;
    }

    /// Moves `guest`'s lines into this cart: quantities of the same product are summed up
    /// to [`MAX_QUANTITY`]; lines beyond [`MAX_LINES`] are dropped. Returns how many
    /// units could not be carried over.
    pub fn absorb(&mut self, guest: &CartDoc, now: DateTime<Utc>) -> Result<u32, AppError> {
        if guest.lines.is_empty() {
            return Ok(0);
        }
        if let (Some(mine), Some(theirs)) = (&self.currency, &guest.currency)
            && mine != theirs
        {
            return Err(AppError::Conflict(format!(
                "your cart is in {mine} and the guest cart in {theirs}; they cannot be merged"
            )));
        }
        let mut dropped = 0;
        for line in &guest.lines {
            let room = self.lines.len() < MAX_LINES;
            match self.lines.iter_mut().find(|mine| mine.product_id == line.product_id) {
                Some(mine) => {
                    let total = mine.quantity + line.quantity;
                    dropped += total.saturating_sub(MAX_QUANTITY);
                    mine.quantity = total.min(MAX_QUANTITY);
                }
                None if room => self.lines.push(Line {
                    id: Uuid::new_v4(),
                    ..line.clone()
                }),
                None => dropped += line.quantity,
            }
        }
        if self.currency.is_none() {
            self.currency.clone_from(&guest.currency);
        }
        self.updated_at = now;
        Ok(dropped)
    }
}

pub(crate) fn check_quantity(quantity: u32) -> Result<(), AppError> {
    if (1..=MAX_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(AppError::bad_input(
            "quantity",
            format!("quantity must be between 1 and {MAX_QUANTITY}"),
        ))
    }
}

/// Drafts are invisible to shoppers, so they are "not found" rather than refused.
fn check_sellable(product: &ProductFacts) -> Result<(), AppError> {
    match product.status {
        ProductStatus::Active => Ok(()),
        ProductStatus::Draft => Err(AppError::not_found("product")),
        ProductStatus::Archived => Err(AppError::bad_input("productId", "this product is no longer sold")),
    }
}

fn check_stock(product: &ProductFacts, wanted: u32) -> Result<(), AppError> {
    if i64::from(wanted) <= product.available_quantity {
        return Ok(());
    }
    let message = if product.available_quantity <= 0 {
        "this product is out of stock".to_owned()
    } else {
        format!("only {} in stock", product.available_quantity)
    };
    Err(AppError::bad_input("quantity", message))
}

/// The token a guest keeps: `<cart id>.<secret>`. The id finds the cart, the secret
/// proves the holder may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestToken {
    pub cart_id: Uuid,
    secret: String,
}

impl GuestToken {
    /// A new token for a new guest cart: 256 random bits.
    pub fn generate() -> Self {
        use base64::Engine as _;
        let secret: [u8; 32] = rand::random();
        Self {
            cart_id: Uuid::new_v4(),
            secret: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        }
    }

    pub fn parse(token: &str) -> Result<Self, AppError> {
        let malformed = || AppError::bad_input("guestToken", "not a guest cart token");
        let (id, secret) = token.split_once('.').ok_or_else(malformed)?;
        let cart_id = Uuid::try_parse(id).map_err(|_| malformed())?;
        if secret.len() != 43
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(malformed());
        }
        Ok(Self {
            cart_id,
            secret: secret.to_owned(),
        })
    }

    pub fn owner(&self) -> Owner {
        Owner::Guest {
            secret_sha256: hex_sha256(&self.secret),
        }
    }

    /// Whether this token opens a cart owned by `owner`.
    pub fn opens(&self, owner: &Owner) -> bool {
        matches!(owner, Owner::Guest { secret_sha256 } if *secret_sha256 == hex_sha256(&self.secret))
    }

    pub fn address(&self) -> CartAddress {
        CartAddress::Guest(self.cart_id)
    }

    pub fn as_string(&self) -> String {
        format!("{}.{}", self.cart_id.simple(), self.secret)
    }
}

fn hex_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitrina_shared::error::ErrorCode;

    fn product(price: i64, stock: i64) -> ProductFacts {
        ProductFacts {
            id: Uuid::new_v4(),
            status: ProductStatus::Active,
            unit_price_minor: price,
            currency: "EUR".to_owned(),
            available_quantity: stock,
        }
    }

    fn field_of(error: &AppError) -> Option<&str> {
        match error {
            AppError::BadUserInput { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn adding_the_same_product_twice_sums_one_line() {
        let mut cart = CartDoc::new(
            Owner::User {
                user_id: Uuid::new_v4(),
            },
            Utc::now(),
        );
        let shoe = product(1999, 10);
        cart.add(&shoe, 2, Utc::now()).unwrap();
        cart.add(&shoe, 3, Utc::now()).unwrap();
        assert_eq!(cart.lines.len(), 1);
        assert_eq!(cart.item_count(), 5);
        assert_eq!(cart.currency.as_deref(), Some("EUR"));
    }

    #[test]
    fn quantities_stock_status_and_currency_are_checked() {
        let mut cart = CartDoc::new(
            Owner::User {
                user_id: Uuid::new_v4(),
            },
            Utc::now(),
        );
        let shoe = product(1999, 5);
        for quantity in [0, 100] {
            let error = cart.add(&shoe, quantity, Utc::now()).unwrap_err();
            assert_eq!(field_of(&error), Some("quantity"));
        }
        assert_eq!(field_of(&cart.add(&shoe, 6, Utc::now()).unwrap_err()), Some("quantity"));
        cart.add(&shoe, 5, Utc::now()).unwrap();
        assert_eq!(field_of(&cart.add(&shoe, 1, Utc::now()).unwrap_err()), Some("quantity"));

        let dollars = ProductFacts {
            currency: "USD".to_owned(),
            ..product(500, 5)
        };
        assert_eq!(
            field_of(&cart.add(&dollars, 1, Utc::now()).unwrap_err()),
            Some("productId")
        );
        let archived = ProductFacts {
            status: ProductStatus::Archived,
            ..product(500, 5)
        };
        assert_eq!(
            field_of(&cart.add(&archived, 1, Utc::now()).unwrap_err()),
            Some("productId")
        );
        let draft = ProductFacts {
            status: ProductStatus::Draft,
            ..product(500, 5)
        };
        assert_eq!(cart.add(&draft, 1, Utc::now()).unwrap_err().code(), ErrorCode::NotFound);
    }

    #[test]
    fn a_cart_holds_at_most_a_hundred_lines() {
        let mut cart = CartDoc::new(
            Owner::User {
                user_id: Uuid::new_v4(),
            },
            Utc::now(),
        );
        for _ in 0..MAX_LINES {
            cart.add(&product(100, 10), 1, Utc::now()).unwrap();
        }
        let error = cart.add(&product(100, 10), 1, Utc::now()).unwrap_err();
        assert_eq!(field_of(&error), Some("productId"));
    }

    #[test]
    fn merging_sums_quantities_up_to_the_limit_and_keeps_other_lines() {
        let shoe = product(1999, 200);
        let hat = product(999, 200);
        let mut mine = CartDoc::new(
            Owner::User {
                user_id: Uuid::new_v4(),
            },
            Utc::now(),
        );
        mine.add(&shoe, 60, Utc::now()).unwrap();
        let mut guest = CartDoc::new(GuestToken::generate().owner(), Utc::now());
        guest.add(&shoe, 50, Utc::now()).unwrap();
        guest.add(&hat, 2, Utc::now()).unwrap();
        let dropped = mine.absorb(&guest, Utc::now()).unwrap();
        assert_eq!(dropped, 11);
        assert_eq!(mine.item_count(), 99 + 2);
        assert_eq!(mine.lines.len(), 2);
    }

    #[test]
    fn a_guest_token_opens_only_its_own_cart() {
        let token = GuestToken::generate();
        let parsed = GuestToken::parse(&token.as_string()).unwrap();
        assert_eq!(parsed, token);
        assert!(parsed.opens(&token.owner()));
        assert!(!GuestToken::generate().opens(&token.owner()));
        assert!(!parsed.opens(&Owner::User {
            user_id: Uuid::new_v4()
        }));
        for bad in ["", "abc", "not-a-uuid.secret", &format!("{}.short", Uuid::new_v4())] {
            assert_eq!(field_of(&GuestToken::parse(bad).unwrap_err()), Some("guestToken"));
        }
    }
}
