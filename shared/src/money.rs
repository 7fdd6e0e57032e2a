//! Money: integer minor units in storage, a decimal string on the wire, never a float.
//!
//! `Money { amount: Decimal!, currencyCode: String! }` is a value type shared by the
//! catalog, cart and orders subgraphs (hence `@shareable`). Conversions check the ISO 4217
//! exponent of the currency, so `"19.999" USD` is rejected instead of silently rounded.

use async_graphql::{InputObject, SimpleObject};
use rust_decimal::Decimal;

use crate::error::AppError;

/// An amount of money in a currency, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, SimpleObject)]
#[graphql(shareable)]
pub struct Money {
    /// Decimal string, e.g. `"19.99"`, with exactly the currency's number of minor digits.
    pub amount: Decimal,
    /// ISO 4217 alphabetic code, e.g. `"EUR"`.
    pub currency_code: String,
}

/// An amount of money sent by a client.
#[derive(Debug, Clone, InputObject)]
pub struct MoneyInput {
    pub amount: Decimal,
    pub currency_code: String,
}

/// A validated ISO 4217 currency with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    code: iso_currency::Currency,
    exponent: u32,
}

impl Currency {
    /// Parses an ISO 4217 code that has minor units (so not, e.g., `XAU`).
    pub fn parse(code: &str) -> Option<Self> {
        let currency = iso_currency::Currency::from_code(code)?;
        let exponent = u32::from(currency.exponent()?);
        Some(Self {
            code: currency,
            exponent,
        })
    }

    pub fn code(&self) -> &'static str {
        self.code.code()
    }

    pub fn exponent(&self) -> u32 {
        self.exponent
    }
}

impl Money {
    /// Builds the wire form of a stored amount.
    pub fn from_minor_units(minor_units: i64, currency: Currency) -> Self {
        Self {
            amount: Decimal::new(minor_units, currency.exponent()),
            currency_code: currency.code().to_owned(),
        }
    }
}

/// Converts a decimal amount in `currency` to integer minor units, or `None` when it has
/// more fractional digits than the currency allows or does not fit in an `i64`.
pub fn to_minor_units(amount: Decimal, currency: Currency) -> Option<i64> {
    let normalized = amount.normalize();
    if normalized.scale() > currency.exponent() {
        return None;
    }
    let scaled = normalized.checked_mul(Decimal::from(10_i64.checked_pow(currency.exponent())?))?;
    i64::try_from(scaled.trunc()).ok()
}

impl MoneyInput {
    /// Validates a strictly positive price; `field` names the input for the error.
    pub fn to_positive_minor_units(&self, field: &str) -> Result<(i64, Currency), AppError> {
        let currency = Currency::parse(&self.currency_code).ok_or_else(|| {
            AppError::bad_input(
                format!("{field}.currencyCode"),
                format!("{:?} is not an ISO 4217 currency code", self.currency_code),
            )
        })?;
        let minor = to_minor_units(self.amount, currency).ok_or_else(|| {
            AppError::bad_input(
                format!("{field}.amount"),
                format!(
                    "amount must have at most {} decimal places in {}",
                    currency.exponent(),
                    currency.code()
                ),
            )
        })?;
        if minor <= 0 {
            return Err(AppError::bad_input(
                format!("{field}.amount"),
                "amount must be greater than zero",
            ));
        }
        Ok((minor, currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(value: &str) -> Decimal {
        Decimal::from_str(value).unwrap()
    }

    #[test]
    fn minor_units_render_with_the_currency_exponent() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(Money::from_minor_units(1999, usd).amount.to_string(), "19.99");
        assert_eq!(Money::from_minor_units(1900, usd).amount.to_string(), "19.00");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::from_minor_units(500, jpy).amount.to_string(), "500");
        let bhd = Currency::parse("BHD").unwrap();
        assert_eq!(Money::from_minor_units(1500, bhd).amount.to_string(), "1.500");
    }

    #[test]
    fn decimal_amounts_convert_exactly_or_not_at_all() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(to_minor_units(dec("19.99"), usd), Some(1999));
        assert_eq!(to_minor_units(dec("19.90000"), usd), Some(1990));
        assert_eq!(to_minor_units(dec("19.999"), usd), None);
        assert_eq!(to_minor_units(dec("99999999999999999999"), usd), None);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(to_minor_units(dec("500"), jpy), Some(500));
        assert_eq!(to_minor_units(dec("500.5"), jpy), None);
    }

    #[test]
    fn prices_must_be_positive_and_in_a_real_currency() {
        let input = |amount: &str, code: &str| MoneyInput {
            amount: dec(amount),
            currency_code: code.into(),
        };
        assert_eq!(
            input("10.00", "EUR").to_positive_minor_units("input.price").unwrap().0,
            1000
        );
        let zero = input("0", "EUR").to_positive_minor_units("input.price").unwrap_err();
        assert!(matches!(zero, AppError::BadUserInput { field: Some(ref f), .. } if f == "input.price.amount"));
        let unknown = input("1", "EUX").to_positive_minor_units("input.price").unwrap_err();
        assert!(
            matches!(unknown, AppError::BadUserInput { field: Some(ref f), .. } if f == "input.price.currencyCode")
        );
        assert!(input("-5", "EUR").to_positive_minor_units("input.price").is_err());
    }
}
