//! Relay pagination arguments, checked once for every connection field.
//!
//! Cursors are async-graphql's `OpaqueCursor` (base64 of a small JSON value): clients
//! must treat them as opaque, and a malformed one is a `BAD_USER_INPUT`, not a crash.

use crate::error::AppError;

/// Largest page any connection returns.
pub const MAX_PAGE_SIZE: i32 = 100;
/// Page size when a client passes neither `first` nor `last`.
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// Which end of the ordered list a page is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDirection {
    /// `first` (optionally `after`): the page following the cursor.
    Forward,
    /// `last` (optionally `before`): the page preceding the cursor.
    Backward,
}

/// A validated page request: how many rows and in which direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u64,
    pub direction: PageDirection,
}

/// Validates `first`/`last`; mixing them is rejected because its meaning is ambiguous.
pub fn page_request(first: Option<i32>, last: Option<i32>) -> Result<PageRequest, AppError> {
    let (size, direction, field) = match (first, last) {
        (Some(_), Some(_)) => return Err(AppError::bad_input("last", "pass either `first` or `last`, not both")),
        (Some(first), None) => (first, PageDirection::Forward, "first"),
        (None, Some(last)) => (last, PageDirection::Backward, "last"),
        (None, None) => (DEFAULT_PAGE_SIZE, PageDirection::Forward, "first"),
    };
    if !(0..=MAX_PAGE_SIZE).contains(&size) {
        return Err(AppError::bad_input(
            field,
            format!("`{field}` must be between 0 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok(PageRequest {
        size: size as u64,
        direction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_above_the_cap_are_a_clear_input_error() {
        let error = page_request(Some(101), None).unwrap_err();
        assert!(error.to_string().contains("between 0 and 100"), "{error}");
        assert!(page_request(None, Some(-1)).is_err());
        assert!(page_request(Some(1), Some(1)).is_err());
    }

    #[test]
    fn first_and_last_choose_the_direction() {
        assert_eq!(
            page_request(Some(5), None).unwrap(),
            PageRequest {
                size: 5,
                direction: PageDirection::Forward
            }
        );
        assert_eq!(
            page_request(None, Some(7)).unwrap(),
            PageRequest {
                size: 7,
                direction: PageDirection::Backward
            }
        );
        assert_eq!(page_request(None, None).unwrap().size, DEFAULT_PAGE_SIZE as u64);
    }
}
