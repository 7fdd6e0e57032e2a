//! GraphQL conventions shared by the subgraphs: the federation SDL they publish and the
//! guarantee that every error a client sees carries an `extensions.code`.

use std::sync::Arc;

use async_graphql::{
    Response, SDLExportOptions, ServerError, Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest},
};

use crate::error::ErrorCode;

/// The SDL options a subgraph publishes with: federation v2 directives included.
pub fn federation_sdl_options() -> SDLExportOptions {
    SDLExportOptions::new().federation().compose_directive()
}

/// Gives every code-less error a code.
///
/// Errors raised by our resolvers already carry one (via `AppError`). The rest come from
/// async-graphql itself while parsing, validating or coercing the client's request, so
/// they are the client's input errors.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for error in &mut response.errors {
            ensure_code(error, ErrorCode::BadUserInput);
        }
        response
    }
}

fn ensure_code(error: &mut ServerError, fallback: ErrorCode) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", Value::from(fallback.as_str()));
    }
}

/// Context data a resolver needs, as a coded `INTERNAL` error instead of a panic when a
/// schema was built without it.
pub fn context_data<'a, T: std::any::Any + Send + Sync>(
    ctx: &async_graphql::Context<'a>,
) -> async_graphql::Result<&'a T> {
    ctx.data_opt::<T>().ok_or_else(|| {
        use async_graphql::ErrorExtensions;
        crate::AppError::internal(anyhow::anyhow!(
            "schema is missing context data {}",
            std::any::type_name::<T>()
        ))
        .extend()
    })
}
