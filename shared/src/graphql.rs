//! GraphQL conventions shared by the subgraphs: the federation SDL they publish, and a
//! cache of parsed queries. Every error a client sees gets its `extensions.code` in the
//! HTTP handler (`crate::http`), not in a schema extension: any async-graphql extension,
//! even one that only wraps the request, routes every field of every response through
//! the extension chain (boxed futures and a registry look-up per field).

use std::{hash::Hash, time::Duration};

use async_graphql::{
    Request, SDLExportOptions,
    dataloader::{DataLoader, Loader},
    parser::types::ExecutableDocument,
};

/// The SDL options a subgraph publishes with: federation v2 directives included.
pub fn federation_sdl_options() -> SDLExportOptions {
    SDLExportOptions::new().federation().compose_directive()
}

/// A DataLoader that loads its batch as soon as the request that asked has registered
/// every key it can, instead of async-graphql's default of waiting 1 ms for more.
///
/// async-graphql resolves the items of a list, and the fields of each item, concurrently
/// within one poll of the request, so the keys of one page (a listing's categories, the
/// representations of one `_entities` call) are all registered before the spawned load
/// runs: the batch is the same. What the wait bought was keys of *other* requests, at the
/// price of over 1 ms on every request that loads anything (a category listing answered
/// in 1.7 ms instead of 0.4). The loads it would have merged are cache hits.
///
/// The zero wait is free only with async-graphql's runtime-agnostic timer (its
/// `tokio-timer` feature off): that timer reads the clock before it registers, so a wait
/// of zero is over at once, while tokio's rounds every deadline up to its next
/// millisecond tick.
pub fn data_loader<K, T>(loader: T) -> DataLoader<T>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    T: Loader<K>,
{
    DataLoader::new(loader, tokio::spawn).delay(Duration::ZERO)
}

/// Parsed documents by query text, so a subgraph parses each query the router sends once
/// instead of on every request. The router sends a few query shapes with varying
/// variables, and parsing one (a `pest` grammar) took a fifth of the catalog's CPU per
/// product page. Only the parse is saved: async-graphql still checks each request's
/// document against the depth and directive limits, and validates it with its own
/// variables. Only documents that parsed are kept.
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

impl ParsedQueries {
    /// Hands `request` its parsed document: the cached one, or one parsed now (and kept).
    /// A query that does not parse is left to the executor, which reports the error.
    pub fn prepare(&self, request: &mut Request) {
        if let Some(document) = self.documents.get(request.query.as_str()) {
            request.set_parsed_query(document);
        } else if let Ok(document) = request.parsed_query() {
            let document = document.clone();
            self.documents.insert(request.query.clone(), document);
        }
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
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Request, Schema, SimpleObject, Variables};
    use serde_json::json;

    use super::*;

    struct Query;

    #[derive(SimpleObject)]
    struct Nested {
        n: i32,
        inner: Option<Box<Nested>>,
    }

    #[Object]
    impl Query {
        async fn double(&self, n: i32) -> i32 {
            n * 2
        }

        async fn nested(&self) -> Nested {
            Nested {
                n: 1,
                inner: Some(Box::new(Nested { n: 2, inner: None })),
            }
        }
    }

    fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .limit_depth(2)
            .finish()
    }

    fn prepared(parsed: &ParsedQueries, query: &str, variables: serde_json::Value) -> Request {
        let mut request = Request::new(query).variables(Variables::from_json(variables));
        parsed.prepare(&mut request);
        request
    }

    #[tokio::test]
    async fn a_query_parsed_once_answers_every_request_with_its_own_variables() {
        let (parsed, schema) = (ParsedQueries::default(), schema());
        let query = "query Double($n: Int!) { double(n: $n) }";
        for n in [1, 2, 3] {
            let response = schema.execute(prepared(&parsed, query, json!({ "n": n }))).await;
            assert_eq!(response.data.into_json().unwrap(), json!({ "double": n * 2 }));
        }
        parsed.documents.run_pending_tasks();
        assert_eq!(parsed.documents.entry_count(), 1, "one document for the three requests");

        let refused = schema.execute(prepared(&parsed, query, json!({ "n": "two" }))).await;
        assert_eq!(refused.errors.len(), 1, "each request's variables are still checked");

        let broken = schema.execute(prepared(&parsed, "{ double(n: ", json!({}))).await;
        assert!(!broken.errors.is_empty());
        parsed.documents.run_pending_tasks();
        assert_eq!(
            parsed.documents.entry_count(),
            1,
            "a query that failed to parse is not kept"
        );
    }

    #[tokio::test]
    async fn a_cached_document_is_still_held_to_the_depth_limit_on_every_request() {
        let (parsed, schema) = (ParsedQueries::default(), schema());
        let too_deep = "{ nested { inner { n } } }";
        for attempt in ["first", "cached"] {
            let response = schema.execute(prepared(&parsed, too_deep, json!({}))).await;
            assert_eq!(response.errors.len(), 1, "{attempt}: {:?}", response.errors);
            assert!(
                response.data.into_json().unwrap().is_null(),
                "{attempt}: nothing resolved"
            );
        }
        parsed.documents.run_pending_tasks();
        assert_eq!(
            parsed.documents.entry_count(),
            1,
            "the second request used the cached document"
        );
    }
}
