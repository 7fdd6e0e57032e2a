//! Subgraph-request stage: forwards the router's request id to every subgraph.
//!
//! Hive Router assigns each client request an id (the client's `x-request-id` when it is
//! sane, a fresh one otherwise) and logs with it. Sending the same id to the subgraphs
//! lets one grep follow a request through every process.
//!
//! Trade-off: Hive Router's in-flight deduplication fingerprints subgraph requests with
//! their headers, so a per-request header means identical concurrent queries are no
//! longer merged. Correlated logs are worth more to us; set `enabled: false` on this
//! plugin in `router.yaml` to prefer deduplication.

use hive_router::{
    async_trait,
    http::{HeaderName, HeaderValue},
    plugins::{
        hooks::{
            on_plugin_init::{OnPluginInitPayload, OnPluginInitResult},
            on_subgraph_http_request::{OnSubgraphHttpRequestHookPayload, OnSubgraphHttpRequestHookResult},
        },
        plugin_trait::{RouterPlugin, StartHookPayload},
    },
    telemetry::logging::request_id::REQUEST_IDENTIFIERS,
};
use serde::Deserialize;

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

#[async_trait]
impl RouterPlugin for RequestIdPropagation {
    type Config = RequestIdConfig;

    fn plugin_name() -> &'static str {
        "vitrina_request_id"
    }

    fn on_plugin_init(payload: OnPluginInitPayload<Self>) -> OnPluginInitResult<Self> {
        let config = payload.config()?;
        let header = HeaderName::try_from(config.header.as_str())?;
        Ok(Some(Self { header }))
    }

    async fn on_subgraph_http_request<'exec>(
        &'exec self,
        mut payload: OnSubgraphHttpRequestHookPayload<'exec>,
    ) -> OnSubgraphHttpRequestHookResult<'exec> {
        let request_id = REQUEST_IDENTIFIERS.try_with(|identifiers| HeaderValue::from_str(identifiers.req_id()));
        if let Ok(Ok(value)) = request_id {
            payload.execution_request.headers.insert(self.header.clone(), value);
        }
        payload.proceed()
    }
}
