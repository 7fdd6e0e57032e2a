//! `POST /webhooks/paypal`: PayPal's notifications of what happened to a payment.
//!
//! Every delivery is verified first with PayPal's verify-webhook-signature API (the
//! transmission headers, our webhook id and the event as received); anything that does
//! not verify gets `400 WEBHOOK_UNVERIFIED` and changes nothing. A verified event moves
//! the order through [`crate::transitions`], which records the event id in the same
//! transaction as the move, so a redelivery is a no-op and out-of-order deliveries
//! converge (a late `CHECKOUT.ORDER.APPROVED` for a paid order changes nothing).
//!
//! Status codes tell PayPal whether to retry: 2xx only once the effect is committed (or
//! when there is nothing to do: an event about an order we do not have, or a move the
//! order's state refuses, which no retry could change); 409 for a refund whose capture
//! we have not recorded yet, and 503 when PayPal or our database could not be reached,
//! so PayPal delivers those again later.

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use vitrina_shared::{AppError, http::RequestId};

use crate::{
    lifecycle::OrderAction,
    paypal::{PayPalClient, PayPalError, WebhookHeaders},
    service::Orders,
    transitions::WebhookDelivery,
};

/// Where PayPal delivers.
pub const WEBHOOK_PATH: &str = "/webhooks/paypal";

#[derive(Clone)]
struct WebhookState {
    orders: Orders,
    paypal: std::sync::Arc<PayPalClient>,
}

pub fn routes(orders: Orders, paypal: std::sync::Arc<PayPalClient>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .with_state(WebhookState { orders, paypal })
}

/// What a verified event asks of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    /// The buyer approved: capture the payment.
    Capture { paypal_order_id: String },
    /// A capture completed, or was denied/declined.
    CaptureOutcome {
        paypal_order_id: String,
        capture_id: String,
        status: &'static str,
    },
    /// A capture was refunded or reversed.
    Refund { capture_id: String },
    /// Not an event we act on.
    Ignore,
}

fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

fn unverified(message: &str) -> Response {
    answer(StatusCode::BAD_REQUEST, "WEBHOOK_UNVERIFIED", message)
}

#[tracing::instrument(name = "paypal_webhook", skip_all, fields(event_id = tracing::field::Empty, event_type = tracing::field::Empty))]
async fn receive(
    State(state): State<WebhookState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(transmission) = WebhookHeaders::from_headers(&headers) else {
        tracing::warn!("webhook without PayPal transmission headers refused");
        return unverified("PayPal transmission headers are missing");
    };
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!("webhook with a body that is not JSON refused");
        return unverified("the body is not a PayPal event");
    };
    match state.paypal.verify_webhook(&transmission, &event).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(transmission_id = %transmission.transmission_id, "webhook signature did not verify; refused");
            return unverified("the delivery's signature does not verify");
        }
        Err(error @ PayPalError::Unavailable(_)) => {
            tracing::warn!(%error, "cannot verify a webhook now; PayPal will deliver it again");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "verification is unavailable; retry later",
            );
        }
        Err(error) => {
            tracing::error!(%error, "webhook verification failed");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "verification failed; retry later",
            );
        }
    }
    let (Some(event_id), Some(event_type)) = (event["id"].as_str(), event["event_type"].as_str()) else {
        return unverified("the event has no id or type");
    };
    let span = tracing::Span::current();
    span.record("event_id", event_id);
    span.record("event_type", event_type);
    let delivery = WebhookDelivery {
        event_id: event_id.to_owned(),
        event_type: event_type.to_owned(),
    };
    let request_id = request_id.map(|axum::Extension(RequestId(id))| id);
    match apply(
        &state.orders,
        effect_of(event_type, &event["resource"]),
        &delivery,
        request_id.as_deref(),
    )
    .await
    {
        Ok(Outcome::NotYet) => {
            tracing::info!("webhook arrived before what it follows; PayPal will deliver it again");
            answer(
                StatusCode::CONFLICT,
                "CONFLICT",
                "the order is not ready for this event yet; deliver it again later",
            )
        }
        Ok(outcome) => {
            tracing::info!(?outcome, "webhook handled");
            (
                StatusCode::OK,
                Json(json!({ "status": format!("{outcome:?}").to_lowercase() })),
            )
                .into_response()
        }
        Err(AppError::Conflict(reason)) => {
            // The order's state refuses this move (e.g. a denial after the order was
            // paid by another capture): retrying cannot change that, so acknowledge.
            tracing::warn!(%reason, "webhook event does not apply to the order's state; acknowledged");
            (StatusCode::OK, Json(json!({ "status": "refused-by-order-state" }))).into_response()
        }
        Err(error) => {
            let code = error.code();
            tracing::error!(
                error = format!("{:#}", anyhow::Error::new(error)),
                "webhook not applied; PayPal will retry"
            );
            answer(
                code.http_status(),
                code.as_str(),
                "the event was not applied; retry later",
            )
        }
    }
}

/// Reads what the event asks for. Ids come from PayPal's resource shapes: an order for
/// `CHECKOUT.ORDER.*`, a capture (with `supplementary_data.related_ids.order_id`) for
/// capture events, a refund (whose `up` link names the capture) for refunds.
fn effect_of(event_type: &str, resource: &Value) -> Effect {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    match event_type {
        "CHECKOUT.ORDER.APPROVED" => match text(&resource["id"]) {
            Some(paypal_order_id) => Effect::Capture { paypal_order_id },
            None => Effect::Ignore,
        },
        "PAYMENT.CAPTURE.COMPLETED" | "PAYMENT.CAPTURE.DENIED" | "PAYMENT.CAPTURE.DECLINED" => {
            let status = if event_type == "PAYMENT.CAPTURE.COMPLETED" {
                "COMPLETED"
            } else {
                "DECLINED"
            };
            match (
                text(&resource["supplementary_data"]["related_ids"]["order_id"]),
                text(&resource["id"]),
            ) {
                (Some(paypal_order_id), Some(capture_id)) => Effect::CaptureOutcome {
                    paypal_order_id,
                    capture_id,
                    status,
                },
                _ => Effect::Ignore,
            }
        }
        "PAYMENT.CAPTURE.REVERSED" => match text(&resource["id"]) {
            Some(capture_id) => Effect::Refund { capture_id },
            None => Effect::Ignore,
        },
        "PAYMENT.CAPTURE.REFUNDED" => {
            let capture = resource["links"].as_array().and_then(|links| {
                links
                    .iter()
                    .find(|link| link["rel"] == "up")
                    .and_then(|link| link["href"].as_str())
                    .and_then(|href| href.rsplit('/').next())
                    .map(str::to_owned)
            });
            match capture {
                Some(capture_id) => Effect::Refund { capture_id },
                None => Effect::Ignore,
            }
        }
        _ => Effect::Ignore,
    }
}

/// What became of a verified event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    /// Not an event we act on, or about a payment that is not one of our orders.
    Ignored,
    /// The order is not ready for it yet (a refund whose payment we have not recorded):
    /// PayPal must deliver it again, so it is not acknowledged.
    NotYet,
}

async fn apply(
    orders: &Orders,
    effect: Effect,
    delivery: &WebhookDelivery,
    request_id: Option<&str>,
) -> Result<Outcome, AppError> {
    match effect {
        Effect::Ignore => Ok(Outcome::Ignored),
        Effect::Capture { paypal_order_id } => {
            // We store the PayPal order before the buyer ever sees its approval page, so
            // an unknown one is not ours.
            let Some(order) = orders.find_by_paypal_order(&paypal_order_id).await? else {
                tracing::warn!(%paypal_order_id, "approval of a PayPal order that is not ours; acknowledged");
                return Ok(Outcome::Ignored);
            };
            orders.capture(order.id, Some(delivery), request_id).await?;
            Ok(Outcome::Applied)
        }
        Effect::CaptureOutcome {
            paypal_order_id,
            capture_id,
            status,
        } => {
            let Some(order) = orders.find_by_paypal_order(&paypal_order_id).await? else {
                tracing::warn!(%paypal_order_id, "capture of a PayPal order that is not ours; acknowledged");
                return Ok(Outcome::Ignored);
            };
            orders
                .record_capture(order.id, &capture_id, status, Some(delivery), request_id)
                .await?;
            Ok(Outcome::Applied)
        }
        Effect::Refund { capture_id } => {
            // A refund can overtake the news of its capture; until the capture is
            // recorded, the refund cannot be placed, so PayPal is asked to come back.
            let Some(order) = orders.find_by_capture(&capture_id).await? else {
                return Ok(Outcome::NotYet);
            };
            orders
                .move_order(order.id, OrderAction::Refund, Some(delivery), None, request_id, "")
                .await?;
            Ok(Outcome::Applied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_paypal_event_type_reads_its_ids_from_its_own_resource_shape() {
        let approved = json!({ "id": "PO-1", "status": "APPROVED" });
        assert_eq!(
            effect_of("CHECKOUT.ORDER.APPROVED", &approved),
            Effect::Capture {
                paypal_order_id: "PO-1".into()
            }
        );
        let capture = json!({ "id": "CAP-1", "supplementary_data": { "related_ids": { "order_id": "PO-1" } } });
        assert_eq!(
            effect_of("PAYMENT.CAPTURE.DENIED", &capture),
            Effect::CaptureOutcome {
                paypal_order_id: "PO-1".into(),
                capture_id: "CAP-1".into(),
                status: "DECLINED"
            }
        );
        let refund = json!({ "id": "R-1", "links": [{ "rel": "self", "href": "https://x/v2/payments/refunds/R-1" }, { "rel": "up", "href": "https://x/v2/payments/captures/CAP-1" }] });
        assert_eq!(
            effect_of("PAYMENT.CAPTURE.REFUNDED", &refund),
            Effect::Refund {
                capture_id: "CAP-1".into()
            }
        );
        assert_eq!(
            effect_of("PAYMENT.CAPTURE.REVERSED", &capture),
            Effect::Refund {
                capture_id: "CAP-1".into()
            }
        );
        assert_eq!(effect_of("CUSTOMER.DISPUTE.CREATED", &capture), Effect::Ignore);
        assert_eq!(effect_of("PAYMENT.CAPTURE.COMPLETED", &json!({})), Effect::Ignore);
    }
}
