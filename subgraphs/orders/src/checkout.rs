//! Checkout input: the shipping address and the idempotency key, validated, and the
//! order id they lead to.
//!
//! The order id is derived from the customer and the idempotency key (UUID v5), so every
//! retry of one checkout, concurrent or not, names the same order: the catalog holds its
//! stock once (reservations are idempotent per order), PayPal creates its payment once
//! (`PayPal-Request-Id` from the order id), and the order row is inserted once (its
//! primary key). Different customers' keys never collide: the customer is part of it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vitrina_shared::AppError;

/// Namespace of derived order ids (a fixed random UUID: never change it).
const ORDER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b0e_9a4d_4c57_8e3a_5d21_c7b9_04f6);

/// Where the order goes; stored with it.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, async_graphql::InputObject, async_graphql::SimpleObject,
)]
#[graphql(input_name = "AddressInput", name = "Address")]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub full_name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub country_code: String,
}

/// The order id of `user_id`'s checkout with `idempotency_key`.
pub fn order_id(user_id: Uuid, idempotency_key: &str) -> Uuid {
    Uuid::new_v5(&ORDER_ID_NAMESPACE, format!("{user_id}:{idempotency_key}").as_bytes())
}

fn text(field: &str, value: &str, max: usize) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            format!("must be 1–{max} characters without control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Checks and normalises (trims, upper-cases the country) an address.
pub fn validate_address(address: &Address) -> Result<Address, AppError> {
    let country_code = address.country_code.trim().to_ascii_uppercase();
    if country_code.len() != 2 || !country_code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(AppError::bad_input(
            "input.shippingAddress.countryCode",
            "must be an ISO 3166-1 alpha-2 code such as DE",
        ));
    }
    let line2 = match address.line2.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(line2) => Some(text("input.shippingAddress.line2", line2, 200)?),
    };
    Ok(Address {
        full_name: text("input.shippingAddress.fullName", &address.full_name, 100)?,
        line1: text("input.shippingAddress.line1", &address.line1, 200)?,
        line2,
        city: text("input.shippingAddress.city", &address.city, 100)?,
        postal_code: text("input.shippingAddress.postalCode", &address.postal_code, 20)?,
        country_code,
    })
}

/// Idempotency keys are client-chosen: 8–100 characters of letters, digits, `-` and `_`
/// (a UUID fits).
pub fn validate_idempotency_key(key: &str) -> Result<(), AppError> {
    let valid =
        (8..=100).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(AppError::bad_input(
            "input.idempotencyKey",
            "must be 8–100 characters of letters, digits, '-' and '_' (a UUID will do)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> Address {
        Address {
            full_name: " Ada Lovelace ".into(),
            line1: "12 St James's Square".into(),
            line2: Some("  ".into()),
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country_code: "gb".into(),
        }
    }

    #[test]
    fn one_customer_and_key_always_name_the_same_order_and_no_one_elses() {
        let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(order_id(ada, "key-00000001"), order_id(ada, "key-00000001"));
        assert_ne!(order_id(ada, "key-00000001"), order_id(ada, "key-00000002"));
        assert_ne!(order_id(ada, "key-00000001"), order_id(bob, "key-00000001"));
    }

    #[test]
    fn addresses_are_trimmed_and_checked_field_by_field() {
        let clean = validate_address(&address()).unwrap();
        assert_eq!(clean.full_name, "Ada Lovelace");
        assert_eq!(clean.country_code, "GB");
        assert_eq!(clean.line2, None);
        for (broken, field) in [
            (
                Address {
                    country_code: "GBR".into(),
                    ..address()
                },
                "input.shippingAddress.countryCode",
            ),
            (
                Address {
                    city: " ".into(),
                    ..address()
                },
                "input.shippingAddress.city",
            ),
            (
                Address {
                    postal_code: "x".repeat(21),
                    ..address()
                },
                "input.shippingAddress.postalCode",
            ),
            (
                Address {
                    line1: "a\u{0}b".into(),
                    ..address()
                },
                "input.shippingAddress.line1",
            ),
        ] {
            match validate_address(&broken) {
                Err(AppError::BadUserInput { field: Some(named), .. }) => assert_eq!(named, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn idempotency_keys_are_short_printable_tokens() {
        assert!(validate_idempotency_key(&Uuid::now_v7().to_string()).is_ok());
        for key in ["short", "has space in it", &"k".repeat(101), "naïve-key-123"] {
            assert!(validate_idempotency_key(key).is_err(), "{key:?}");
        }
    }
}
