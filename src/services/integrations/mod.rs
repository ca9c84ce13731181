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
    "stock.low",
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
    "variant.stock_low",
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
        "variant.stock_low" => (
            "stock.low",
            pick(&[
                ("variantId", "id"),
                ("productId", "productId"),
                ("stock", "stock"),
                ("threshold", "threshold"),
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

/// Each webhook event type's `data` fields and their JSON types, for the documentation
/// (`openapi.yaml`'s `webhooks`); a test checks them against what [`webhook_event`] produces.
pub const DATA_FIELDS: &[(&str, &[(&str, &str)])] = &[
    (
        "order.created",
        &[
            ("orderId", "integer"),
            ("totalCents", "integer"),
            ("lines", "integer"),
        ],
    ),
    ("order.paid", ORDER_STATUS),
    ("order.shipped", ORDER_STATUS),
    ("order.delivered", ORDER_STATUS),
    ("order.cancelled", ORDER_STATUS),
    (
        "payment.failed",
        &[("paymentId", "integer"), ("orderId", "integer")],
    ),
    (
        "payment.refunded",
        &[
            ("paymentId", "integer"),
            ("orderId", "integer"),
            ("amountCents", "integer"),
        ],
    ),
    (
        "payment.refund_required",
        &[
            ("paymentId", "integer"),
            ("orderId", "integer"),
            ("reason", "string"),
        ],
    ),
    (
        "product.created",
        &[("productId", "integer"), ("slug", "string")],
    ),
    (
        "product.updated",
        &[("productId", "integer"), ("fields", "array")],
    ),
    (
        "product.deleted",
        &[
            ("productId", "integer"),
            ("slug", "string"),
            ("outcome", "string"),
        ],
    ),
    (
        "stock.low",
        &[
            ("variantId", "integer"),
            ("productId", "integer"),
            ("stock", "integer"),
            ("threshold", "integer"),
        ],
    ),
    (
        "medicinal_document.reviewed",
        &[
            ("documentId", "integer"),
            ("userId", "integer"),
            ("status", "string"),
        ],
    ),
    (
        "review.created",
        &[
            ("reviewId", "integer"),
            ("productId", "integer"),
            ("rating", "integer"),
        ],
    ),
];

const ORDER_STATUS: &[(&str, &str)] =
    &[("orderId", "integer"), ("from", "string"), ("to", "string")];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, payload: Value) -> outbox_event::Model {
        outbox_event::Model {
            id: 1,
            event_type: event_type.into(),
            payload,
            aggregate_type: "order".into(),
            aggregate_id: Some(7),
            audit_log_id: None,
            actor_user_id: None,
            trace_id: None,
            occurred_at: chrono::Utc::now(),
            dispatched_at: None,
        }
    }

    #[test]
    fn every_webhook_type_is_produced_with_its_documented_fields_only() {
        let samples = [
            (
                "order.created",
                json!({"id": 7, "totalCents": 1, "lines": 1, "coupon": "X", "reservedUntil": "t"}),
            ),
            (
                "order.status_changed",
                json!({"id": 7, "from": "pending", "to": "paid", "reason": "payment"}),
            ),
            (
                "order.status_changed",
                json!({"id": 7, "from": "paid", "to": "shipped", "reason": "admin"}),
            ),
            (
                "order.status_changed",
                json!({"id": 7, "from": "shipped", "to": "delivered", "reason": "admin"}),
            ),
            (
                "order.status_changed",
                json!({"id": 7, "from": "paid", "to": "cancelled", "reason": "admin"}),
            ),
            (
                "payment.outcome",
                json!({"id": 3, "orderId": 7, "outcome": "failed"}),
            ),
            (
                "payment.refunded",
                json!({"id": 3, "orderId": 7, "amountCents": 100, "type": "full"}),
            ),
            (
                "payment.refund_required",
                json!({"id": 3, "orderId": 7, "reason": "stock_gone"}),
            ),
            ("product.created", json!({"id": 1, "slug": "a"})),
            (
                "product.updated",
                json!({"id": 1, "fields": ["name"], "changes": {}}),
            ),
            (
                "product.deleted",
                json!({"id": 1, "slug": "a", "outcome": "deleted"}),
            ),
            (
                "variant.stock_low",
                json!({"id": 2, "productId": 1, "stock": 4, "threshold": 5}),
            ),
            (
                "medicinal_document.reviewed",
                json!({"id": 9, "from": "pending", "to": "approved", "userId": 4, "expiresAt": null}),
            ),
            (
                "review.created",
                json!({"id": 5, "productId": 1, "rating": 4}),
            ),
        ];
        let mut produced = Vec::new();
        for (source, payload) in samples {
            let (kind, data) = webhook_event(&event(source, payload)).expect(source);
            let documented = DATA_FIELDS.iter().find(|(t, _)| *t == kind).expect(kind).1;
            let keys: Vec<&str> = data
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let names: Vec<&str> = documented.iter().map(|(n, _)| *n).collect();
            assert_eq!(keys, names, "{kind}");
            assert!(
                data.as_object().unwrap().values().all(|v| !v.is_null()),
                "{kind}: {data}"
            );
            produced.push(kind);
        }
        assert_eq!(produced, EVENT_TYPES);
        // Payments that did not fail, and other status changes, are no webhook event.
        assert!(webhook_event(&event(
            "payment.outcome",
            json!({"id": 3, "orderId": 7, "outcome": "applied"})
        ))
        .is_none());
        assert!(webhook_event(&event(
            "order.status_changed",
            json!({"id": 7, "from": "pending", "to": "failed"})
        ))
        .is_none());
    }
}
