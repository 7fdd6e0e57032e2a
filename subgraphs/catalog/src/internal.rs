//! The catalog's internal HTTP routes for other services (never exposed through the
//! router): stock reservations for the orders service.
//!
//! - `POST /internal/reservations` with a `ReserveRequest` → the `Reservation` (200), or
//!   `409 CONFLICT` when a product is short or not for sale (nothing is held then)
//! - `POST /internal/reservations/{orderId}/{commit|release|return}` → the `Reservation`

use axum::{
    Extension, Json, Router,
    extract::{Path, State},
    routing::post,
};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    http::RequestId,
    reservations::{RESERVATIONS_PATH, Reservation, ReservationStep, ReserveRequest},
};

use crate::service::Catalog;

pub fn routes(catalog: Catalog) -> Router {
    Router::new()
        .route(RESERVATIONS_PATH, post(reserve))
        .route(&format!("{RESERVATIONS_PATH}/{{order_id}}/{{step}}"), post(advance))
        .with_state(catalog)
}

#[tracing::instrument(skip_all, fields(order_id = %request.order_id))]
async fn reserve(
    State(catalog): State<Catalog>,
    request_id: Option<Extension<RequestId>>,
    Json(request): Json<ReserveRequest>,
) -> Result<Json<Reservation>, AppError> {
    let request_id = request_id.as_ref().map(|Extension(RequestId(id))| id.as_str());
    Ok(Json(catalog.reserve(&request, request_id).await?))
}

#[tracing::instrument(skip(catalog, request_id))]
async fn advance(
    State(catalog): State<Catalog>,
    request_id: Option<Extension<RequestId>>,
    Path((order_id, step)): Path<(String, String)>,
) -> Result<Json<Reservation>, AppError> {
    let order_id = Uuid::parse_str(&order_id).map_err(|_| AppError::bad_input("orderId", "not an order id"))?;
    let step =
        ReservationStep::parse(&step).ok_or_else(|| AppError::bad_input("step", "one of commit, release, return"))?;
    let request_id = request_id.as_ref().map(|Extension(RequestId(id))| id.as_str());
    Ok(Json(catalog.advance_reservation(order_id, step, request_id).await?))
}
