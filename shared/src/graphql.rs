//! GraphQL conventions shared by the subgraphs: the federation SDL they publish, the
//! guarantee that every error a client sees carries an `extensions.code`, and a cache of
//! parsed queries.

use std::sync::Arc;

use async_graphql::{
    Response, SDLExportOptions, ServerError, ServerResult, Value, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest},
    parser::types::ExecutableDocument,
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

/// Parsed documents by query text, so a subgraph parses each query the router sends once
/// instead of on every request. The router sends a few query shapes with varying
/// variables, and parsing one (a `pest` grammar) took a fifth of the catalog's CPU per
/// product page. Validation still runs on every request: it checks the variables too.
/// Only documents that parsed (and passed the depth and directive limits, checked while
/// parsing) are kept.
#[derive(Clone)]
pub struct ParsedQueries {
    documents: moka::sync::Cache<String, ExecutableDocument>,
}

/// What the cache may hold, counting a document as [`DOCUMENT_BYTES_PER_QUERY_BYTE`]
/// times its query text (a document's nodes, names and positions outweigh the text).
const PARSED_QUERIES_MAX_BYTES: u64 = 8 * 1024 * 1024;
const DOCUMENT_BYTES_PER_QUERY_BYTE: usize = 16;

impl Default for ParsedQueries {
    fn default() -> Self {
        Self {
            documents: moka::sync::Cache::builder()
                .max_capacity(PARSED_QUERIES_MAX_BYTES)
                .weigher(|query: &String, _: &ExecutableDocument| {
                    u32::try_from(query.len().saturating_mul(DOCUMENT_BYTES_PER_QUERY_BYTE)).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }
}

impl ExtensionFactory for ParsedQueries {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Extension for ParsedQueries {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.documents.get(query) {
            return Ok(document);
        }
        let document = next.run(ctx, query, variables).await?;
        self.documents.insert(query.to_owned(), document.clone());
        Ok(document)
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

#[cfg(test)]
mod parsed_query_tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Request, Schema};
    use serde_json::json;

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn double(&self, n: i32) -> i32 {
            n * 2
        }
    }

    #[tokio::test]
    async fn a_query_parsed_once_answers_every_request_with_its_own_variables() {
        let parsed = ParsedQueries::default();
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(parsed.clone())
            .finish();
        let query = "query Double($n: Int!) { double(n: $n) }";
        let run = |variables: serde_json::Value| {
            schema.execute(Request::new(query).variables(Variables::from_json(variables)))
        };
        for n in [1, 2, 3] {
            let response = run(json!({ "n": n })).await;
            assert_eq!(response.data.into_json().unwrap(), json!({ "double": n * 2 }));
        }
        parsed.documents.run_pending_tasks();
        assert_eq!(parsed.documents.entry_count(), 1, "one document for the three requests");

        let refused = run(json!({ "n": "two" })).await;
        assert_eq!(refused.errors.len(), 1, "each request's variables are still checked");

        let broken = schema.execute("{ double(n: ").await;
        assert!(!broken.errors.is_empty());
        parsed.documents.run_pending_tasks();
        assert_eq!(
            parsed.documents.entry_count(),
            1,
            "a query that failed to parse is not kept"
        );
    }
}
