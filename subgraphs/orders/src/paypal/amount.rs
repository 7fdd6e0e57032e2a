//! Amounts in PayPal's format: a decimal string with the currency's number of decimals
//! as PayPal counts them, from our integer minor units (never through a float).
//!
//! PayPal's decimals differ from ISO 4217 for HUF and TWD (whole numbers only) and it
//! accepts a fixed list of currencies; anything else is refused before a request is made.

use rust_decimal::Decimal;

/// Currencies PayPal's REST APIs accept (PayPal's currency-codes reference).
pub const SUPPORTED: [&str; 24] = [
    "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN", "TWD", "NZD", "NOK",
    "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("PayPal does not accept {0}")]
    UnsupportedCurrency(String),
    #[error("PayPal takes whole {0} amounts only")]
    FractionNotAllowed(String),
    #[error("{0:?} is not an amount in {1}")]
    Unparsable(String, String),
}

/// ISO 4217 exponent of the currency: the exponent our minor units use.
fn iso_exponent(currency: &str) -> Result<u32, AmountError> {
    vitrina_shared::money::Currency::parse(currency)
        .map(|currency| currency.exponent())
        .ok_or_else(|| AmountError::UnsupportedCurrency(currency.to_owned()))
}

/// The number of decimals PayPal wants for the currency.
fn paypal_decimals(currency: &str) -> u32 {
    match currency {
        "JPY" | "HUF" | "TWD" => 0,
        _ => 2,
    }
}

/// `minor_units` of `currency` as PayPal's `value` string, e.g. `1999 EUR → "19.99"`.
pub fn to_paypal(minor_units: i64, currency: &str) -> Result<String, AmountError> {
    if !SUPPORTED.contains(&currency) {
        return Err(AmountError::UnsupportedCurrency(currency.to_owned()));
    }
    let amount = Decimal::new(minor_units, iso_exponent(currency)?);
    let decimals = paypal_decimals(currency);
    if amount.round_dp(decimals) != amount {
        return Err(AmountError::FractionNotAllowed(currency.to_owned()));
    }
    let mut amount = amount;
    amount.rescale(decimals);
    Ok(amount.to_string())
}

/// PayPal's `value` string back to our minor units; exact or an error.
pub fn from_paypal(value: &str, currency: &str) -> Result<i64, AmountError> {
    let unparsable = || AmountError::Unparsable(value.to_owned(), currency.to_owned());
    let amount: Decimal = value.parse().map_err(|_| unparsable())?;
    let mut scaled = amount;
    scaled.rescale(iso_exponent(currency)?);
    if scaled != amount || scaled.is_sign_negative() {
        return Err(unparsable());
    }
    i64::try_from(scaled.mantissa()).map_err(|_| unparsable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_use_paypals_decimals_per_currency() {
        assert_eq!(to_paypal(1999, "EUR").unwrap(), "19.99");
        assert_eq!(to_paypal(1900, "USD").unwrap(), "19.00");
        assert_eq!(to_paypal(5, "GBP").unwrap(), "0.05");
        assert_eq!(to_paypal(500, "JPY").unwrap(), "500");
        // HUF has two ISO decimals, PayPal takes whole forints only.
        assert_eq!(to_paypal(150_000, "HUF").unwrap(), "1500");
        assert_eq!(
            to_paypal(150_050, "HUF").unwrap_err(),
            AmountError::FractionNotAllowed("HUF".into())
        );
        assert_eq!(
            to_paypal(100, "BHD").unwrap_err(),
            AmountError::UnsupportedCurrency("BHD".into())
        );
    }

    #[test]
    fn paypal_values_convert_back_exactly() {
        assert_eq!(from_paypal("19.99", "EUR").unwrap(), 1999);
        assert_eq!(from_paypal("19.9", "EUR").unwrap(), 1990);
        assert_eq!(from_paypal("500", "JPY").unwrap(), 500);
        assert_eq!(from_paypal("1500", "HUF").unwrap(), 150_000);
        assert!(from_paypal("19.999", "EUR").is_err(), "never rounded");
        assert!(from_paypal("-1.00", "EUR").is_err());
        assert!(from_paypal("ten", "EUR").is_err());
    }
}
