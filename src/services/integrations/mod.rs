//! Integrations: what the store tells its integrators' systems. Outbound webhooks signed per
//! the Standard Webhooks specification — the endpoints (`endpoints`), signing (`signing`), where
//! they may be sent (`targets`), and delivery by the job runner (`delivery`): the outbox's
//! events become webhook events here (`webhook_event`), one delivery per event and endpoint,
//! at least once, in order per endpoint and aggregate. (API keys, the other half of what
//! integrators use, are an identity and live in `accounts::api_keys`.)

pub mod delivery;
pub mod endpoints;
pub mod signing;
pub mod targets;

use serde_json::{json, Map, Value};

use crate::entities::outbox_event;

/// Every webhook event type an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "order.created",
    "order.paid",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    "payment.failed",
    "payment.refunded",
    "payment.refund_required",
    "product.created",
    "product.updated",
    "product.deleted",
    "medicinal_document.reviewed",
    "review.created",
];

/// The outbox event types webhook events come from.
pub const SOURCES: &[&str] = &[
    "order.created",
    "order.status_changed",
    "payment.outcome",
    "payment.refunded",
    "payment.refund_required",
    "product.created",
    "product.updated",
    "product.deleted",
    "medicinal_document.reviewed",
    "review.created",
];

/// The version of the payloads' shape: changes only when a field is removed or retyped.
pub const PAYLOAD_VERSION: i64 = 1;

/// The webhook event an outbox event is, if it is one: its type and `data`. Only ids, states
/// and amounts — never personal data or a document's contents.
pub fn webhook_event(e: &outbox_event::Model) -> Option<(&'static str, Value)> {
    let p = e.payload.as_object()?;
    let field = |name: &str| p.get(name).cloned().unwrap_or(Value::Null);
    let pick = |pairs: &[(&str, &str)]| -> Value {
        let mut data = Map::new();
        for (to, from) in pairs {
            data.insert((*to).to_string(), field(from));
        }
        Value::Object(data)
    };
    Some(match e.event_type.as_str() {
        "order.created" => (
            "order.created",
            pick(&[
                ("orderId", "id"),
                ("totalCents", "totalCents"),
                ("lines", "lines"),
            ]),
        ),
        "order.status_changed" => {
            let kind = match p.get("to")?.as_str()? {
                "paid" => "order.paid",
                "shipped" => "order.shipped",
                "delivered" => "order.delivered",
                "cancelled" => "order.cancelled",
                _ => return None,
            };
            (
                kind,
                pick(&[("orderId", "id"), ("from", "from"), ("to", "to")]),
            )
        }
        "payment.outcome" if p.get("outcome")?.as_str()? == "failed" => (
            "payment.failed",
            pick(&[("paymentId", "id"), ("orderId", "orderId")]),
        ),
        "payment.refunded" => (
            "payment.refunded",
            pick(&[
                ("paymentId", "id"),
                ("orderId", "orderId"),
                ("amountCents", "amountCents"),
            ]),
        ),
        "payment.refund_required" => (
            "payment.refund_required",
            pick(&[
                ("paymentId", "id"),
                ("orderId", "orderId"),
                ("reason", "reason"),
            ]),
        ),
        "product.created" => (
            "product.created",
            pick(&[("productId", "id"), ("slug", "slug")]),
        ),
        "product.updated" => (
            "product.updated",
            pick(&[("productId", "id"), ("fields", "fields")]),
        ),
        "product.deleted" => (
            "product.deleted",
            pick(&[
                ("productId", "id"),
                ("slug", "slug"),
                ("outcome", "outcome"),
            ]),
        ),
        "medicinal_document.reviewed" => (
            "medicinal_document.reviewed",
            pick(&[("documentId", "id"), ("userId", "userId"), ("status", "to")]),
        ),
        "review.created" => (
            "review.created",
            pick(&[
                ("reviewId", "id"),
                ("productId", "productId"),
                ("rating", "rating"),
            ]),
        ),
        _ => return None,
    })
}

/// The body sent for a webhook event: `{type, timestamp, data, version}`.
pub fn body(kind: &str, e: &outbox_event::Model, data: Value) -> String {
    json!({
        "type": kind,
        "timestamp": e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": data,
        "version": PAYLOAD_VERSION,
    })
    .to_string()
}
