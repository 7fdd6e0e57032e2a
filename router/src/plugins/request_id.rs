//! Subgraph-request stage: forwards the router's request id, and the client's trace, to
//! every subgraph.
//!
//! Hive Router assigns each client request an id (the client's `x-request-id` when it is
//! sane, a fresh one otherwise) and logs with it. Sending the same id to the subgraphs
//! lets one grep follow a request through every process.
//!
//! Hive Router logs the trace id of a client's W3C `traceparent`, but injects trace context
//! into subgraph requests only while it exports traces itself. When it did not, this stage
//! continues the client's trace (same trace id, a new parent id), so the router's and the
//! subgraphs' log lines carry one `trace_id` either way.
//!
//! Trade-off: Hive Router's in-flight deduplication fingerprints subgraph requests with
//! their headers, so a per-request header means identical concurrent queries are no
//! longer merged. Correlated logs are worth more to us; leave `request_id` out of the
//! `vitrina` plugin's configuration in `router.yaml` to prefer deduplication.

use hive_router::{
    http::{HeaderName, HeaderValue},
    plugins::{
        hooks::on_subgraph_http_request::{OnSubgraphHttpRequestHookPayload, OnSubgraphHttpRequestHookResult},
        plugin_trait::StartHookPayload,
    },
    telemetry::logging::request_id::REQUEST_IDENTIFIERS,
};
use serde::Deserialize;

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A `traceparent` continuing the trace `trace_id` (32 hex digits) under a new parent id.
/// Sampled, since the client sent the trace to have it followed.
fn continued_trace(trace_id: &str) -> Option<HeaderValue> {
    let valid =
        trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()) && trace_id.bytes().any(|b| b != b'0');
    if !valid {
        return None;
    }
    let parent_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    HeaderValue::from_str(&format!("00-{}-{parent_id}-01", trace_id.to_ascii_lowercase())).ok()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestIdConfig {
    /// Header the subgraphs read the id from.
    #[serde(default = "default_header")]
    pub header: String,
}

fn default_header() -> String {
    "x-request-id".to_owned()
}

pub struct RequestIdPropagation {
    header: HeaderName,
}

impl RequestIdPropagation {
    pub fn new(config: RequestIdConfig) -> Result<Self, hive_router::http::header::InvalidHeaderName> {
        Ok(Self {
            header: HeaderName::try_from(config.header.as_str())?,
        })
    }

    pub fn on_subgraph_http_request<'exec>(
        &self,
        mut payload: OnSubgraphHttpRequestHookPayload<'exec>,
    ) -> OnSubgraphHttpRequestHookResult<'exec> {
        let identifiers = REQUEST_IDENTIFIERS.try_with(|identifiers| {
            (
                HeaderValue::from_str(identifiers.req_id()).ok(),
                identifiers.trace_id().and_then(continued_trace),
            )
        });
        if let Ok((request_id, trace)) = identifiers {
            let headers = &mut payload.execution_request.headers;
            if let Some(value) = request_id {
                headers.insert(self.header.clone(), value);
            }
            if let Some(traceparent) = trace
                && !headers.contains_key(TRACEPARENT)
            {
                headers.insert(TRACEPARENT, traceparent);
            }
        }
        payload.proceed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_trace_is_continued_with_the_same_trace_id_and_a_new_parent() {
        let header = continued_trace("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap();
        let parts: Vec<&str> = header.to_str().unwrap().split('-').collect();
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
        assert_ne!(continued_trace("4bf92f3577b34da6a3ce929d0e0e4736"), Some(header));
    }

    #[test]
    fn an_invalid_trace_id_is_not_continued() {
        assert!(continued_trace("00000000000000000000000000000000").is_none());
        assert!(continued_trace("4bf92f3577b34da6").is_none());
        assert!(continued_trace("zzf92f3577b34da6a3ce929d0e0e4736").is_none());
    }
}
