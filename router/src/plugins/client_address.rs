//! HTTP stage + subgraph-request stage: tells subgraphs who the client is.
//!
//! The router records the client's address as it accepted the connection and sends it to
//! every subgraph as `x-forwarded-for`, replacing anything the client put there, so
//! identity's login throttling and session records see the real address and a client
//! cannot choose one. (Behind a trusted load balancer, configure the router's own
//! forwarding instead.)

use hive_router::{
    http::{HeaderName, HeaderValue},
    plugins::{
        hooks::{
            on_http_request::{OnHttpRequestHookPayload, OnHttpRequestHookResult},
            on_subgraph_http_request::{OnSubgraphHttpRequestHookPayload, OnSubgraphHttpRequestHookResult},
        },
        plugin_trait::StartHookPayload,
    },
};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAddressConfig {}

/// The client's address as the header's value, kept in the request's plugin context
/// between the two stages: formatted once per request, not once per subgraph call.
struct ClientIp(HeaderValue);

pub struct ClientAddress {
    header: HeaderName,
}

impl ClientAddress {
    pub fn new(_config: ClientAddressConfig) -> Self {
        Self {
            header: HeaderName::from_static(vitrina_shared::http::FORWARDED_FOR_HEADER),
        }
    }

    pub fn on_http_request<'req>(&self, payload: OnHttpRequestHookPayload<'req>) -> OnHttpRequestHookResult<'req> {
        if let Some(address) = payload.router_http_request.peer_addr()
            && let Ok(value) = HeaderValue::from_str(&address.ip().to_string())
        {
            payload.context.insert(ClientIp(value));
        }
        payload.proceed()
    }

    pub fn on_subgraph_http_request<'exec>(
        &self,
        mut payload: OnSubgraphHttpRequestHookPayload<'exec>,
    ) -> OnSubgraphHttpRequestHookResult<'exec> {
        let address = payload.context.get_ref::<ClientIp>().map(|ip| ip.0.clone());
        let headers = &mut payload.execution_request.headers;
        match address {
            // `insert` replaces every value the client sent.
            Some(value) => {
                headers.insert(self.header.clone(), value);
            }
            None => {
                headers.remove(&self.header);
            }
        }
        payload.proceed()
    }
}
