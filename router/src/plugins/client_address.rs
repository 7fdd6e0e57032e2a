//! HTTP stage + subgraph-request stage: tells subgraphs who the client is.
//!
//! The router records the client's address as it accepted the connection and sends it to
//! every subgraph as `x-forwarded-for`, replacing anything the client put there, so
//! identity's login throttling and session records see the real address and a client
//! cannot choose one. (Behind a trusted load balancer, configure the router's own
//! forwarding instead.)

use std::net::IpAddr;

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

/// The client's address, kept in the request's plugin context between the two stages.
struct ClientIp(IpAddr);

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
        if let Some(address) = payload.router_http_request.peer_addr() {
            payload.context.insert(ClientIp(address.ip()));
        }
        payload.proceed()
    }

    pub fn on_subgraph_http_request<'exec>(
        &self,
        mut payload: OnSubgraphHttpRequestHookPayload<'exec>,
    ) -> OnSubgraphHttpRequestHookResult<'exec> {
        let address = payload.context.get_ref::<ClientIp>().map(|ip| ip.0);
        let headers = &mut payload.execution_request.headers;
        headers.remove(&self.header);
        if let Some(address) = address
            && let Ok(value) = HeaderValue::from_str(&address.to_string())
        {
            headers.insert(self.header.clone(), value);
        }
        payload.proceed()
    }
}
