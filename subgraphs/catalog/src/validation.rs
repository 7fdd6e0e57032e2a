//! Input rules of the catalog's writes. Each check names the input field it failed on
//! (`BAD_USER_INPUT` with `extensions.field`), so a form can put the message next to the
//! right box. Pure functions: no database, unit-tested below.

use vitrina_shared::AppError;

pub const SKU_MAX: usize = 64;
pub const SLUG_MAX: usize = 120;
pub const PRODUCT_NAME_MAX: usize = 200;
pub const CATEGORY_NAME_MAX: usize = 120;
pub const DESCRIPTION_MAX: usize = 10_000;
/// Largest stock level and largest single adjustment: beyond any real warehouse, well
/// inside `i32`.
pub const STOCK_MAX: i32 = 1_000_000;
pub const ATTRIBUTES_MAX_KEYS: usize = 50;
pub const ATTRIBUTES_MAX_BYTES: usize = 8 * 1024;
pub const REASON_MAX: usize = 200;

/// A display name: trimmed, non-empty, at most `max` characters, no control characters.
pub fn name(field: &str, value: &str, max: usize) -> Result<String, AppError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_input(field, format!("`{field}` must not be empty")));
    }
    if trimmed.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("`{field}` must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            format!("`{field}` must not contain control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A URL slug: lowercase ASCII letters and digits in groups joined by single hyphens.
pub fn slug(field: &str, value: &str) -> Result<String, AppError> {
    let well_formed = !value.is_empty()
        && value.len() <= SLUG_MAX
        && value
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err(AppError::bad_input(
            field,
            format!(
                "`{field}` must be 1 to {SLUG_MAX} lowercase letters or digits in groups joined by single hyphens, e.g. `blue-mug-2`"
            ),
        ))
    }
}

/// A SKU: letters, digits, `-`, `_`, `.`, starting with a letter or digit; stored upper
/// case so that `mug-1` and `MUG-1` are the same SKU.
pub fn sku(field: &str, value: &str) -> Result<String, AppError> {
    let value = value.trim();
    let well_formed = !value.is_empty()
        && value.len() <= SKU_MAX
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if well_formed {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(AppError::bad_input(
            field,
            format!(
                "`{field}` must be 1 to {SKU_MAX} letters, digits, `-`, `_` or `.`, starting with a letter or digit"
            ),
        ))
    }
}

/// An optional long text: trimmed, empty becomes none, at most `DESCRIPTION_MAX`.
pub fn description(field: &str, value: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > DESCRIPTION_MAX {
        return Err(AppError::bad_input(
            field,
            format!("`{field}` must be at most {DESCRIPTION_MAX} characters"),
        ));
    }
    Ok(Some(value.to_owned()))
}

/// A stock level set at creation: 0 to `STOCK_MAX`.
pub fn initial_stock(field: &str, value: i32) -> Result<i32, AppError> {
    if (0..=STOCK_MAX).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::bad_input(
            field,
            format!("`{field}` must be between 0 and {STOCK_MAX}"),
        ))
    }
}

/// A stock adjustment: non-zero, at most `STOCK_MAX` either way.
pub fn stock_delta(field: &str, value: i32) -> Result<i32, AppError> {
    if value == 0 {
        return Err(AppError::bad_input(field, format!("`{field}` must not be zero")));
    }
    if value.unsigned_abs() > STOCK_MAX.unsigned_abs() {
        return Err(AppError::bad_input(
            field,
            format!("`{field}` must be between -{STOCK_MAX} and {STOCK_MAX}"),
        ));
    }
    Ok(value)
}

/// Why stock changed, as recorded in the `StockChanged` event.
pub fn reason(field: &str, value: Option<&str>) -> Result<String, AppError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok("adjustment".to_owned()),
        Some(reason) => name(field, reason, REASON_MAX),
    }
}

/// Product attributes: a flat-ish JSON object of bounded size.
pub fn attributes(field: &str, value: serde_json::Value) -> Result<serde_json::Value, AppError> {
    let Some(object) = value.as_object() else {
        return Err(AppError::bad_input(field, format!("`{field}` must be a JSON object")));
    };
    if object.len() > ATTRIBUTES_MAX_KEYS {
        return Err(AppError::bad_input(
            field,
            format!("`{field}` must have at most {ATTRIBUTES_MAX_KEYS} keys"),
        ));
    }
    let size = serde_json::to_vec(&value)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if size > ATTRIBUTES_MAX_BYTES {
        return Err(AppError::bad_input(
            field,
            format!("`{field}` must be at most {ATTRIBUTES_MAX_BYTES} bytes of JSON"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use vitrina_shared::ErrorCode;

    use super::*;

    fn field_of(error: AppError) -> String {
        assert_eq!(error.code(), ErrorCode::BadUserInput);
        match error {
            AppError::BadUserInput { field, .. } => field.unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn slugs_are_lowercase_words_joined_by_single_hyphens() {
        for good in ["mug", "blue-mug-2", "a", "2026"] {
            assert_eq!(slug("input.slug", good).unwrap(), good);
        }
        for bad in [
            "",
            "Mug",
            "blue--mug",
            "-mug",
            "mug-",
            "blue mug",
            "mügs",
            &"a".repeat(121),
        ] {
            assert_eq!(field_of(slug("input.slug", bad).unwrap_err()), "input.slug", "{bad:?}");
        }
    }

    #[test]
    fn skus_are_normalised_to_upper_case_and_restricted_to_a_safe_alphabet() {
        assert_eq!(sku("input.sku", " mug-001.b_2 ").unwrap(), "MUG-001.B_2");
        for bad in ["", "-MUG", "MUG 1", "MUG/1", &"A".repeat(65)] {
            assert_eq!(field_of(sku("input.sku", bad).unwrap_err()), "input.sku", "{bad:?}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("input.name", "  Mug ", 10).unwrap(), "Mug");
        assert_eq!(field_of(name("input.name", "   ", 10).unwrap_err()), "input.name");
        assert_eq!(
            field_of(name("input.name", "abcdefghijk", 10).unwrap_err()),
            "input.name"
        );
        assert_eq!(field_of(name("input.name", "a\u{0}b", 10).unwrap_err()), "input.name");
    }

    #[test]
    fn stock_quantities_are_bounded_and_adjustments_non_zero() {
        assert!(initial_stock("input.initialStock", 0).is_ok());
        assert_eq!(
            field_of(initial_stock("input.initialStock", -1).unwrap_err()),
            "input.initialStock"
        );
        assert_eq!(
            field_of(initial_stock("input.initialStock", STOCK_MAX + 1).unwrap_err()),
            "input.initialStock"
        );
        assert_eq!(field_of(stock_delta("delta", 0).unwrap_err()), "delta");
        assert_eq!(field_of(stock_delta("delta", i32::MIN).unwrap_err()), "delta");
        assert_eq!(stock_delta("delta", -5).unwrap(), -5);
    }

    #[test]
    fn attributes_must_be_a_small_object() {
        assert!(attributes("input.attributes", serde_json::json!({"colour": "blue"})).is_ok());
        assert_eq!(
            field_of(attributes("input.attributes", serde_json::json!([1, 2])).unwrap_err()),
            "input.attributes"
        );
        let big: serde_json::Map<String, serde_json::Value> =
            (0..51).map(|i| (format!("k{i}"), serde_json::json!(i))).collect();
        assert!(attributes("input.attributes", serde_json::Value::Object(big)).is_err());
    }

    #[test]
    fn descriptions_are_optional_and_bounded() {
        assert_eq!(description("input.description", Some("  ")).unwrap(), None);
        assert!(description("input.description", Some(&"x".repeat(DESCRIPTION_MAX + 1))).is_err());
    }
}
