//! GraphQL-params stage: validates the caller's access token before anything is planned.
//!
//! The same validator as every subgraph (`vitrina_shared::auth`): pinned algorithm, `typ`,
//! `kid` against identity's JWKS, issuer, audience, time claims, and the session still
//! active. A request without `Authorization` proceeds anonymously; one with a bad token
//! is answered `401` with `extensions.code = UNAUTHENTICATED` and never reaches a
//! subgraph. The header itself is forwarded (router.yaml `headers`), and each subgraph
//! validates it again: nothing downstream trusts the router's word.
//!
//! The validator runs on the worker that handles the request: Hive Router's ntex workers
//! are tokio current-thread runtimes, so its I/O (a JWKS download, a session look-up over
//! HTTP or through the Redis connection made on the plugin runtime, [`crate::io`]) works
//! there. Handing each request to another runtime's thread and back cost more CPU than
//! the look-up itself: almost every signed-in request is answered from the validator's
//! memory (a verified token, a session status) without any I/O.

use std::sync::Arc;

use hive_router::{
    GraphQLError,
    http::{StatusCode, header::AUTHORIZATION},
    plugins::{
        hooks::on_graphql_params::{OnGraphQLParamsStartHookPayload, OnGraphQLParamsStartHookResult},
        plugin_trait::StartHookPayload,
    },
};
use serde::Deserialize;
use vitrina_shared::{
    AppError, ErrorCode,
    auth::{self, TokenValidator},
};

use super::Resources;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationConfig {}

pub struct Authentication {
    validator: Arc<TokenValidator>,
}

impl Authentication {
    pub fn new(_config: AuthenticationConfig, resources: &Resources) -> Self {
        Self {
            validator: Arc::new(auth::remote_validator(&resources.settings, resources.redis.clone())),
        }
    }

    pub async fn on_graphql_params<'exec>(
        &self,
        payload: OnGraphQLParamsStartHookPayload<'exec>,
    ) -> OnGraphQLParamsStartHookResult<'exec> {
        let outcome = {
            let Some(header) = payload.router_http_request.headers.get(AUTHORIZATION) else {
                return payload.proceed();
            };
            let header = header.to_str().unwrap_or("\u{fffd}");
            self.validator.admits(Some(header)).await
        };
        let error = match outcome {
            Ok(()) => return payload.proceed(),
            Err(refused) => AppError::from(refused),
        };
        let code = error.code();
        let status = match code {
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            other => other.http_status(),
        };
        let message = match &error {
            AppError::Unavailable(cause) | AppError::Internal(cause) => {
                hive_router::tracing::warn!(
                    error.code = code.as_str(),
                    error.cause = format!("{cause:#}"),
                    "token validation failed"
                );
                error.to_string()
            }
            _ => error.to_string(),
        };
        payload.end_with_graphql_error(GraphQLError::from_message_and_code(message, code.as_str()), status)
    }
}
