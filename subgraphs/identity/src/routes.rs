//! identity's plain HTTP routes besides `/graphql`.
//!
//! - `GET /.well-known/jwks.json`: the public keys validators fetch (active and recently
//!   retired), cacheable for a few minutes.
//! - `GET /internal/sessions/{id}`: 200 while the session is live, 404 after; the session
//!   check of validators that have no Redis. Not exposed through the router.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use uuid::Uuid;
use vitrina_shared::{AppError, auth::sessions::SESSION_STATUS_PATH};

use crate::{keys::KeyRing, sessions::SessionStore};

#[derive(Clone)]
struct RouteState {
    keys: Arc<KeyRing>,
    sessions: Arc<dyn SessionStore>,
}

pub fn routes(keys: Arc<KeyRing>, sessions: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route(&format!("{SESSION_STATUS_PATH}/{{id}}"), get(session_status))
        .with_state(RouteState { keys, sessions })
}

#[tracing::instrument(skip_all)]
async fn jwks(State(state): State<RouteState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.keys.jwks()),
    )
        .into_response()
}

#[tracing::instrument(skip(state))]
async fn session_status(State(state): State<RouteState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let Ok(id) = Uuid::parse_str(&id) else {
        return Err(AppError::bad_input("id", "not a session id"));
    };
    let live = state.sessions.get(id).await.map_err(AppError::Unavailable)?.is_some();
    Ok(if live {
        (StatusCode::OK, Json(serde_json::json!({ "active": true }))).into_response()
    } else {
        (StatusCode::NOT_FOUND, Json(serde_json::json!({ "active": false }))).into_response()
    })
}
