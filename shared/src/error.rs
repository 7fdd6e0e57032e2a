//! The error model shared by every subgraph.
//!
//! A client sees a short message and a stable `extensions.code`; anything internal
//! (database messages, stack of causes) is logged with the request's span and replaced by
//! a generic message. Domain code returns [`AppError`]; resolvers turn it into a GraphQL
//! error with `ResultExt::extend()`, plain HTTP handlers into a status code.

use std::fmt;

use async_graphql::ErrorExtensions;
use http::StatusCode;

/// The stable error codes of the public API (`extensions.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::BadUserInput,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The status a plain HTTP route (webhooks, health) answers with for this code.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure a service reports to its caller.
///
/// The `Display` text of the client-facing variants is safe to send; `Unavailable` and
/// `Internal` carry a cause that is logged and never sent.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is invalid; `field` names the offending input path (e.g. `input.price`).
    #[error("{message}")]
    BadUserInput { field: Option<String>, message: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("{0}")]
    Conflict(String),
    /// A dependency (database, cache, broker, payment provider) cannot be reached.
    #[error("a backing service is temporarily unavailable; please retry")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadUserInput {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn not_found(entity: &'static str) -> Self {
        AppError::NotFound { entity }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(error.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::BadUserInput { .. } => ErrorCode::BadUserInput,
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound { .. } => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Logs the hidden cause of server-side failures, once, where the error leaves the
    /// service. The current span carries the request id.
    fn log_if_internal(&self) {
        match self {
            AppError::Unavailable(cause) => {
                tracing::warn!(
                    error.code = "UNAVAILABLE",
                    error.cause = format!("{cause:#}"),
                    "dependency unavailable"
                )
            }
            AppError::Internal(cause) => {
                tracing::error!(
                    error.code = "INTERNAL",
                    error.cause = format!("{cause:#}"),
                    "internal error"
                )
            }
            _ => {}
        }
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        self.log_if_internal();
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", self.code().as_str());
            if let AppError::BadUserInput { field: Some(field), .. } = self {
                extensions.set("field", field.as_str());
            }
        })
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(error: sea_orm::DbErr) -> Self {
        if crate::db::is_connection_error(&error) {
            AppError::Unavailable(error.into())
        } else {
            AppError::Internal(error.into())
        }
    }
}

impl axum::response::IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        self.log_if_internal();
        let body = serde_json::json!({ "error": { "code": self.code().as_str(), "message": self.to_string() } });
        (self.code().http_status(), axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(error: &async_graphql::Error) -> String {
        let extensions = error.extensions.as_ref().expect("extensions");
        extensions.get("code").expect("code").to_string()
    }

    #[test]
    fn bad_input_names_its_field_and_code() {
        let error = AppError::bad_input("input.slug", "slug must be lowercase").extend();
        assert_eq!(code_of(&error), "\"BAD_USER_INPUT\"");
        assert_eq!(error.message, "slug must be lowercase");
        let field = error.extensions.as_ref().unwrap().get("field").unwrap().to_string();
        assert_eq!(field, "\"input.slug\"");
    }

    #[test]
    fn internal_details_are_never_sent_to_the_client() {
        let cause = anyhow::anyhow!("relation \"catalog.product\" does not exist at 10.0.0.7");
        let error = AppError::Internal(cause).extend();
        assert_eq!(error.message, "internal error");
        assert_eq!(code_of(&error), "\"INTERNAL\"");
        let unavailable = AppError::Unavailable(anyhow::anyhow!("connection refused 10.0.0.7:5432")).extend();
        assert!(!unavailable.message.contains("10.0.0.7"));
        assert_eq!(code_of(&unavailable), "\"UNAVAILABLE\"");
    }

    #[test]
    fn every_code_is_screaming_snake_case_and_has_a_status() {
        for code in ErrorCode::ALL {
            assert!(code.as_str().chars().all(|c| c.is_ascii_uppercase() || c == '_'));
            assert!(code.http_status().is_client_error() || code.http_status().is_server_error());
        }
    }
}
