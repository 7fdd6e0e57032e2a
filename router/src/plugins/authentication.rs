//! GraphQL-params stage: validates the caller's access token before anything is planned.
//!
//! The same validator as every subgraph (`vitrina_shared::auth`): pinned algorithm, `typ`,
//! `kid` against identity's JWKS, issuer, audience, time claims, and the session still
//! active. A request without `Authorization` proceeds anonymously; one with a bad token
//! is answered `401` with `extensions.code = UNAUTHENTICATED` and never reaches a
//! subgraph. The header itself is forwarded (router.yaml `headers`), and each subgraph
//! validates it again: nothing downstream trusts the router's word.
//!
//! The validator's I/O (JWKS download, session look-ups over HTTP or Redis) runs on the
//! plugins' tokio runtime ([`crate::io`]), independent of the router's ntex workers.

use std::sync::Arc;

use hive_router::{
    GraphQLError, async_trait,
    http::{StatusCode, header::AUTHORIZATION},
    plugins::{
        hooks::{
            on_graphql_params::{OnGraphQLParamsStartHookPayload, OnGraphQLParamsStartHookResult},
            on_plugin_init::{OnPluginInitPayload, OnPluginInitResult},
        },
        plugin_trait::{RouterPlugin, StartHookPayload},
    },
};
use serde::Deserialize;
use vitrina_shared::{
    AppError, ErrorCode,
    auth::{self, TokenValidator},
    config::Settings,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationConfig {}

pub struct Authentication {
    validator: Arc<TokenValidator>,
    io: tokio::runtime::Handle,
}

#[async_trait]
impl RouterPlugin for Authentication {
    type Config = AuthenticationConfig;

    fn plugin_name() -> &'static str {
        "vitrina_authentication"
    }

    fn on_plugin_init(payload: OnPluginInitPayload<Self>) -> OnPluginInitResult<Self> {
        let _config = payload.config()?;
        let settings = Settings::load()?;
        let io = crate::io::runtime()?;
        let redis = crate::io::block_on_io(vitrina_shared::redis_store::connect_if_configured(&settings))??;
        let validator = Arc::new(auth::remote_validator(&settings, redis));
        Ok(Some(Self { validator, io }))
    }

    async fn on_graphql_params<'exec>(
        &'exec self,
        payload: OnGraphQLParamsStartHookPayload<'exec>,
    ) -> OnGraphQLParamsStartHookResult<'exec> {
        let Some(header) = payload.router_http_request.headers.get(AUTHORIZATION) else {
            return payload.proceed();
        };
        let header = header.to_str().unwrap_or("\u{fffd}").to_owned();
        let validator = self.validator.clone();
        let outcome = self
            .io
            .spawn(async move { validator.authenticate(Some(&header)).await.map(drop) })
            .await;
        let error = match outcome {
            Ok(Ok(())) => return payload.proceed(),
            Ok(Err(refused)) => AppError::from(refused),
            Err(crashed) => AppError::internal(crashed),
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
