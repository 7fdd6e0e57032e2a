//! The HTTP surface every subgraph exposes, and its lifecycle.
//!
//! `POST /graphql` runs any async-graphql executor (the code-first schemas and the cart's
//! dynamic schema alike); `GET /health` answers while the process lives; `GET /ready`
//! answers 200 only when every [`ReadinessProbe`] passes; `GET /metrics` is Prometheus. Each
//! request gets a request id (the caller's `x-request-id`, e.g. from the router, or a fresh
//! UUID v7), a tracing span carrying it and the W3C trace id of a `traceparent` header, the
//! id echoed in the response, and its count and latency recorded by route and status. Before any GraphQL executes, the
//! `Authorization` header is validated ([`TokenValidator`]): the resolvers see a
//! [`Caller`], and a request with a bad token gets `UNAUTHENTICATED` without running.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use async_graphql::{ErrorExtensions, Executor};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse, rejection::GraphQLRejection};
use axum::{
    Extension, Json, Router,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use opentelemetry::{propagation::TextMapPropagator as _, trace::TraceContextExt as _};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    AppError,
    auth::{Caller, ClientInfo, TokenValidator},
    error::ErrorCode,
    graphql::ParsedQueries,
};

/// Header carrying the request id from the router to the subgraphs and back to clients.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Largest accepted request body; GraphQL documents of a storefront are far smaller.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Upper bound for any one request, so a stuck dependency cannot pin a connection forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A dependency whose health decides whether the service should receive traffic.
#[async_trait::async_trait]
pub trait ReadinessProbe: Send + Sync {
    fn name(&self) -> &'static str;
    /// `Err` carries a short, client-safe reason.
    async fn check(&self) -> Result<(), String>;
}

/// The id of the request being served, available to resolvers as GraphQL context data.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The service serving the request, for metrics recorded below the HTTP layer.
#[derive(Debug, Clone, Copy)]
struct ServedBy(&'static str);

/// The caller's HTTP headers, for resolvers that need them (authorization, client info).
#[derive(Debug, Clone)]
pub struct RequestHeaders(pub HeaderMap);

#[derive(Clone)]
struct Probes(Arc<Vec<Arc<dyn ReadinessProbe>>>);

/// Header the router sets to the client's address (overwriting whatever a client sent).
pub const FORWARDED_FOR_HEADER: &str = "x-forwarded-for";

#[derive(Clone)]
struct GraphqlState<E> {
    executor: E,
    validator: Arc<TokenValidator>,
    parsed_queries: ParsedQueries,
}

/// Routes `POST /graphql` to `executor`, authenticating each request with `validator`.
pub fn graphql_routes<E: Executor>(executor: E, validator: Arc<TokenValidator>) -> Router {
    Router::new()
        .route("/graphql", post(graphql_handler::<E>))
        .with_state(GraphqlState {
            executor,
            validator,
            parsed_queries: ParsedQueries::default(),
        })
}

#[tracing::instrument(name = "graphql", skip_all, fields(user_id = tracing::field::Empty))]
async fn graphql_handler<E: Executor>(
    State(state): State<GraphqlState<E>>,
    Extension(request_id): Extension<RequestId>,
    Extension(ServedBy(service)): Extension<ServedBy>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let request = match request {
        Ok(request) => request,
        Err(GraphQLRejection(error)) => return unreadable_request(service, error),
    };
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or("\u{fffd}"));
    let caller = match state.validator.authenticate(authorization).await {
        Ok(caller) => caller,
        Err(error) => {
            let error = AppError::from(error).extend().into_server_error(Default::default());
            let mut response = async_graphql::Response::from_errors(vec![error]);
            code_and_count_errors(service, &mut response);
            return GraphQLResponse::from(response).into_response();
        }
    };
    if let Caller::User(principal) = &caller {
        tracing::Span::current().record("user_id", tracing::field::display(principal.user_id));
    }
    let client = client_info(&headers, peer.map(|Extension(ConnectInfo(address))| address));
    let mut request = request.into_inner();
    state.parsed_queries.prepare(&mut request);
    let request = request
        .data(request_id)
        .data(caller)
        .data(client)
        .data(RequestHeaders(headers));
    let mut response = state.executor.execute(request).await;
    code_and_count_errors(service, &mut response);
    crate::cache::tags::fold_into_one_header(&mut response.http_headers);
    GraphQLResponse::from(response).into_response()
}

/// A body that is not a GraphQL request at all (not JSON, wrong shape, too large): a coded
/// GraphQL error with 400 (413 when too large), never the parser's internals.
fn unreadable_request(service: &'static str, error: async_graphql::ParseRequestError) -> Response {
    let (status, code, message) = match error {
        async_graphql::ParseRequestError::PayloadTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the request body is too large".to_owned(),
        ),
        async_graphql::ParseRequestError::InvalidRequest(reason) => (
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the body is not a GraphQL request: {reason}"),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the body is not a GraphQL request".to_owned(),
        ),
    };
    coded_error(service, status, code, &message)
}

/// A refusal made outside GraphQL execution, shaped like every other error: a GraphQL
/// error with a stable `extensions.code`, counted in `graphql_errors_total`.
fn coded_error(service: &'static str, status: StatusCode, code: &'static str, message: &str) -> Response {
    metrics::counter!("graphql_errors_total", "service" => service, "code" => code).increment(1);
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

/// Abandons a request still running after [`REQUEST_TIMEOUT`] and answers 504 with a coded
/// error (`UNAVAILABLE`: something it waited for is too slow; retrying later may succeed).
async fn request_deadline(service: &'static str, request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?REQUEST_TIMEOUT, "request abandoned at its deadline");
            coded_error(
                service,
                StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::Unavailable.as_str(),
                "the request took too long and was abandoned; try again later",
            )
        }
    }
}

/// Gives every error a stable code and counts it in `graphql_errors_total{service, code}`.
///
/// Our resolvers code their own errors; async-graphql raises the others itself, all of
/// them about what the client sent: a document that does not parse or validate, a
/// variable or argument of the wrong type. Those are `BAD_USER_INPUT`, the one code the
/// storefront contract has for a request the client must change.
fn code_and_count_errors(service: &'static str, response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let code = match error.extensions.as_ref().and_then(|extensions| extensions.get("code")) {
            Some(async_graphql::Value::String(code)) => code.clone(),
            _ => {
                let code = ErrorCode::BadUserInput.as_str();
                error.extensions.get_or_insert_with(Default::default).set("code", code);
                code.to_owned()
            }
        };
        metrics::counter!("graphql_errors_total", "service" => service, "code" => code).increment(1);
    }
}

/// The client's address and user agent, as far as this service can tell.
fn client_info(headers: &HeaderMap, peer: Option<SocketAddr>) -> ClientInfo {
    let forwarded = headers
        .get(FORWARDED_FOR_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|value| value.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_owned);
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.chars().take(256).collect());
    ClientInfo {
        ip: forwarded.or_else(|| peer.map(|address| address.ip().to_string())),
        user_agent,
    }
}

/// Adds `/health`, `/ready`, request ids, limits and timeouts around a service's routes.
pub fn service_router(service: &'static str, routes: Router, probes: Vec<Arc<dyn ReadinessProbe>>) -> Router {
    crate::metrics::prometheus();
    routes
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .layer(Extension(Probes(Arc::new(probes))))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            request_deadline(service, request, next)
        }))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            request_span(service, request, next)
        }))
}

/// Prometheus text format; the recorder is installed with the first service.
async fn metrics() -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn ready(Extension(Probes(probes)): Extension<Probes>) -> Response {
    let results = futures::future::join_all(probes.iter().map(|probe| async move {
        let outcome = tokio::time::timeout(Duration::from_secs(2), probe.check())
            .await
            .unwrap_or_else(|_| Err("timed out".to_owned()));
        (probe.name(), outcome)
    }))
    .await;
    let ready = results.iter().all(|(_, outcome)| outcome.is_ok());
    let checks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, outcome)| (name.to_owned(), outcome.err().unwrap_or_else(|| "ok".to_owned()).into()))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "status": if ready { "ready" } else { "unavailable" }, "checks": checks });
    (status, Json(body)).into_response()
}

async fn request_span(service: &'static str, mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_acceptable_request_id(value))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(RequestId(request_id.clone()));
    request.extensions_mut().insert(ServedBy(service));
    let route = route_label(request.uri().path());
    let span = tracing::info_span!(
        "request",
        service,
        request_id = %request_id,
        trace_id = tracing::field::Empty,
        method = %request.method(),
        path = %request.uri().path()
    );
    join_callers_trace(&span, request.headers());
    let started = std::time::Instant::now();
    async move {
        let mut response = next.run(request).await;
        let status = response.status();
        let elapsed = started.elapsed();
        // An unknown path must not mint a new series per path a scanner tries.
        let route = if status == StatusCode::NOT_FOUND {
            "unmatched"
        } else {
            route
        };
        metrics::counter!(
            "http_requests_total",
            "service" => service,
            "route" => route,
            "status" => status.as_u16().to_string()
        )
        .increment(1);
        metrics::histogram!("http_request_duration_seconds", "service" => service, "route" => route)
            .record(elapsed.as_secs_f64());
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), elapsed_ms, "request finished");
        } else {
            tracing::debug!(status = status.as_u16(), elapsed_ms, "request finished");
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }
    .instrument(span)
    .await
}

/// Makes `span` part of the caller's W3C trace (`traceparent`), and records that trace's id
/// on it for the logs. With OTLP export on, the span is exported as a child of the
/// caller's; without a caller's trace, an exported span starts a trace of its own.
fn join_callers_trace(span: &tracing::Span, headers: &HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let parent_trace = parent.span().span_context().clone();
    // Without the OTLP layer there is no OpenTelemetry span to attach: nothing to do.
    let _ = span.set_parent(parent);
    let own_trace = span.context().span().span_context().clone();
    if let Some(trace) = [own_trace, parent_trace].into_iter().find(|trace| trace.is_valid()) {
        span.record("trace_id", tracing::field::display(trace.trace_id()));
    }
}

/// The `route` label: the path's first segment among the routes services serve, so the
/// series stay few whatever paths clients send.
fn route_label(path: &str) -> &'static str {
    match path.split('/').nth(1).unwrap_or_default() {
        "graphql" => "/graphql",
        "health" => "/health",
        "ready" => "/ready",
        "metrics" => "/metrics",
        "internal" => "/internal",
        "webhooks" => "/webhooks",
        "paypal-simulator" => "/paypal-simulator",
        ".well-known" => "/.well-known",
        _ => "other",
    }
}

/// Ids come from clients too: keep them short and printable so they cannot forge log lines.
fn is_acceptable_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A bound, not yet running HTTP service (zero-to-production's `Application`).
pub struct HttpService {
    listener: TcpListener,
    router: Router,
}

/// A bound port whose routes are not built yet, for a service whose routes need to know
/// its own port (the orders service hands out links to itself).
pub struct BoundPort {
    listener: TcpListener,
}

impl BoundPort {
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or_default()
    }

    pub fn serve(self, router: Router) -> HttpService {
        HttpService {
            listener: self.listener,
            router,
        }
    }
}

impl HttpService {
    /// Binds `address`; port 0 picks a free port (tests).
    pub async fn bind(address: &str, router: Router) -> std::io::Result<Self> {
        Ok(Self::bind_port(address).await?.serve(router))
    }

    /// Binds `address` before the routes exist.
    pub async fn bind_port(address: &str) -> std::io::Result<BoundPort> {
        Ok(BoundPort {
            listener: TcpListener::bind(address).await?,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or_default()
    }

    /// Serves until Ctrl-C or SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(crate::shutdown::signal()).await
    }

    /// Serves until `stop` resolves, then drains in-flight requests.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(
            self.listener,
            self.router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_that_could_forge_log_lines_are_replaced() {
        assert!(is_acceptable_request_id("0193b7c2-6f2e-7a1b-9c3d-123456789abc"));
        assert!(!is_acceptable_request_id("abc\n{\"level\":\"ERROR\"}"));
        assert!(!is_acceptable_request_id(&"a".repeat(129)));
        assert!(!is_acceptable_request_id(""));
    }
}
