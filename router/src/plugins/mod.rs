//! Vitrina's router plugin, `vitrina`: one registered plugin whose hooks run our stages,
//! each stage in a file of its own.
//!
//! Why one plugin and not one per stage: Hive Router calls every hook of every enabled
//! plugin on every request (and the subgraph hooks once per subgraph request), each call a
//! boxed future that carries the stage's payload by value. Six plugins made about 80 such
//! calls for a product page; one makes 13, and only the hooks a stage uses run its code.
//!
//! `router.yaml` turns a stage on by giving it a section under the plugin's `config`; a
//! section left out turns it off. The stages share one plugin I/O runtime, one settings
//! load and one Redis connection.

pub mod authentication;
pub mod client_address;
pub mod landing_page;
pub mod persisted_queries;
pub mod request_id;
pub mod response_cache;

use hive_router::{
    async_trait,
    plugins::{
        hooks::{
            on_execute::{OnExecuteStartHookPayload, OnExecuteStartHookResult},
            on_graphql_params::{OnGraphQLParamsStartHookPayload, OnGraphQLParamsStartHookResult},
            on_http_request::{OnHttpRequestHookFuture, OnHttpRequestHookPayload},
            on_plugin_init::{OnPluginInitPayload, OnPluginInitResult},
            on_subgraph_http_request::{OnSubgraphHttpRequestHookPayload, OnSubgraphHttpRequestHookResult},
        },
        plugin_trait::{RouterPlugin, StartControlFlow, StartHookPayload},
    },
};
use serde::Deserialize;
use vitrina_shared::{config::Settings, redis_store::RedisConnection};

use self::{
    authentication::{Authentication, AuthenticationConfig},
    client_address::{ClientAddress, ClientAddressConfig},
    landing_page::{LandingPage, LandingPageConfig},
    persisted_queries::{PersistedQueries, PersistedQueriesConfig},
    request_id::{RequestIdConfig, RequestIdPropagation},
    response_cache::{ResponseCache, ResponseCacheConfig},
};

/// The plugin's configuration: one optional section per stage.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitrinaConfig {
    pub landing_page: Option<LandingPageConfig>,
    pub client_address: Option<ClientAddressConfig>,
    pub authentication: Option<AuthenticationConfig>,
    pub persisted_queries: Option<PersistedQueriesConfig>,
    pub request_id: Option<RequestIdConfig>,
    pub response_cache: Option<ResponseCacheConfig>,
}

/// What stages share, made once at start-up.
pub struct Resources {
    pub settings: Settings,
    /// The plugin I/O runtime ([`crate::io`]).
    pub io: tokio::runtime::Handle,
    /// One multiplexed connection for every stage, when `REDIS_URL` is set.
    pub redis: Option<RedisConnection>,
}

/// The enabled stages, in the order they run within a hook.
pub struct Vitrina {
    landing_page: Option<LandingPage>,
    client_address: Option<ClientAddress>,
    authentication: Option<Authentication>,
    persisted_queries: Option<PersistedQueries>,
    request_id: Option<RequestIdPropagation>,
    response_cache: Option<ResponseCache>,
}

/// Runs `$stage`'s `$hook` (if the stage is on) on `$payload`. A stage that answers the
/// request itself ends the hook there; otherwise the payload goes on to the next stage.
/// No stage of a hook run through this asks for an end callback.
macro_rules! run_stage {
    ($stage:expr, $payload:ident, |$on:ident| $call:expr) => {
        if let Some($on) = &$stage {
            let result = $call;
            if !matches!(result.control_flow, StartControlFlow::Proceed) {
                return result;
            }
            $payload = result.payload;
        }
    };
}

#[async_trait]
impl RouterPlugin for Vitrina {
    type Config = VitrinaConfig;

    fn plugin_name() -> &'static str {
        "vitrina"
    }

    fn on_plugin_init(payload: OnPluginInitPayload<Self>) -> OnPluginInitResult<Self> {
        let config = payload.config()?;
        let settings = Settings::load()?;
        let io = crate::io::runtime()?;
        let redis = crate::io::block_on_io(vitrina_shared::redis_store::connect_if_configured(&settings))??;
        let resources = Resources { settings, io, redis };
        let production = resources.settings.is_production();
        Ok(Some(Self {
            landing_page: config
                .landing_page
                .and_then(|config| LandingPage::new(config, production)),
            client_address: config.client_address.map(ClientAddress::new),
            authentication: config
                .authentication
                .map(|config| Authentication::new(config, &resources)),
            persisted_queries: config
                .persisted_queries
                .map(|config| PersistedQueries::new(config, &resources)),
            request_id: config.request_id.map(RequestIdPropagation::new).transpose()?,
            response_cache: match config.response_cache {
                Some(config) => ResponseCache::new(config, &resources)?,
                None => None,
            },
        }))
    }

    fn on_http_request<'req>(&'req self, mut payload: OnHttpRequestHookPayload<'req>) -> OnHttpRequestHookFuture<'req> {
        Box::pin(async move {
            run_stage!(self.client_address, payload, |stage| stage.on_http_request(payload));
            run_stage!(self.landing_page, payload, |stage| stage.on_http_request(payload));
            payload.proceed()
        })
    }

    async fn on_graphql_params<'exec>(
        &'exec self,
        mut payload: OnGraphQLParamsStartHookPayload<'exec>,
    ) -> OnGraphQLParamsStartHookResult<'exec> {
        run_stage!(self.authentication, payload, |stage| stage
            .on_graphql_params(payload)
            .await);
        run_stage!(self.persisted_queries, payload, |stage| stage
            .on_graphql_params(payload)
            .await);
        payload.proceed()
    }

    async fn on_execute<'exec>(
        &'exec self,
        payload: OnExecuteStartHookPayload<'exec>,
    ) -> OnExecuteStartHookResult<'exec> {
        // The only stage here, and the only one that asks for an end callback.
        match &self.response_cache {
            Some(stage) => stage.on_execute(payload).await,
            None => payload.proceed(),
        }
    }

    async fn on_subgraph_http_request<'exec>(
        &'exec self,
        mut payload: OnSubgraphHttpRequestHookPayload<'exec>,
    ) -> OnSubgraphHttpRequestHookResult<'exec> {
        run_stage!(self.client_address, payload, |stage| stage
            .on_subgraph_http_request(payload));
        run_stage!(self.request_id, payload, |stage| stage
            .on_subgraph_http_request(payload));
        // Last: the only stage here that asks for an end callback.
        match &self.response_cache {
            Some(stage) => stage.on_subgraph_http_request(payload),
            None => payload.proceed(),
        }
    }
}
