//! Flow, providers.md §2: every request signed (parameters sorted by name, `name + value`
//! concatenated, HMAC-SHA256 hex); the confirmation callback is unsigned, so it is only a hint:
//! the truth comes from the signed `payment/getStatus`.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use super::claim::{self, Event};
use super::{http, Applied, Outcome, Started};
use crate::actor::RequestCtx;
use crate::config::FlowConfig;
use crate::entities::payment::Provider;
use crate::entities::{order, payment};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use secrecy::ExposeSecret;

pub const PROVIDER: Provider = Provider::Flow;

fn config(st: &AppState) -> AppResult<&FlowConfig> {
    st.config.payments.flow.as_ref().ok_or_else(|| {
        AppError::invalid(
            "provider",
            "provider_unavailable",
            "The payment provider flow is not configured",
        )
    })
}

/// Flow's signature of a parameter set (`s` itself excluded).
pub fn sign(secret: &str, params: &BTreeMap<String, String>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    for (k, v) in params.iter().filter(|(k, _)| k.as_str() != "s") {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// `params` with `apiKey` and `s` added.
fn signed(c: &FlowConfig, mut params: BTreeMap<String, String>) -> BTreeMap<String, String> {
    params.insert("apiKey".into(), c.api_key.clone());
    let s = sign(c.secret_key.expose_secret(), &params);
    params.insert("s".into(), s);
    params
}

fn message_of(v: &Value) -> Option<String> {
    Some(format!(
        "{} {}",
        v["code"],
        v["message"].as_str().unwrap_or("")
    ))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub url: String,
    pub token: String,
    pub flow_order: Value,
}

/// `payment/create` (not retried: a retry would create a second payment).
pub async fn create(
    st: &AppState,
    commerce_order: &str,
    subject: &str,
    amount: i64,
    email: &str,
) -> AppResult<Created> {
    let c = config(st)?;
    let base = &st.config.http.public_base_url;
    let params = signed(
        c,
        BTreeMap::from([
            ("commerceOrder".into(), commerce_order.to_string()),
            ("subject".into(), subject.to_string()),
            ("currency".into(), "CLP".into()),
            ("amount".into(), amount.to_string()),
            ("email".into(), email.to_string()),
            ("paymentMethod".into(), "9".into()),
            (
                "urlConfirmation".into(),
                format!("{base}/webhooks/payments/flow"),
            ),
            (
                "urlReturn".into(),
                format!("{base}/webhooks/payments/flow/return"),
            ),
        ]),
    );
    let req = st
        .http
        .post(format!("{}/payment/create", c.base_url))
        .form(&params);
    http::call_once(PROVIDER.as_str(), req, message_of).await
}

/// Starts a payment: Flow's payment page at `url?token=`.
pub async fn start(
    st: &AppState,
    o: &order::Model,
    reference: &str,
    email: &str,
) -> AppResult<Started> {
    let created = create(
        st,
        reference,
        &format!("Pedido #{}", o.id),
        o.total_cents,
        email,
    )
    .await?;
    Ok(Started {
        provider: PROVIDER,
        redirect_url: Some(format!("{}?token={}", created.url, created.token)),
        init_payload: Some(
            json!({"url": created.url, "token": created.token, "flowOrder": created.flow_order}),
        ),
        provider_txn_id: created.token,
        payment_ref: reference.to_string(),
    })
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub flow_order: Value,
    pub commerce_order: String,
    pub status: i64,
    pub amount: Value,
    #[serde(default)]
    pub payment_data: Option<Value>,
}

impl Status {
    fn amount_cents(&self) -> Option<i64> {
        match &self.amount {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
            _ => None,
        }
    }
}

/// `payment/getStatus` (idempotent: retried with backoff on transport errors and 5xx).
pub async fn status(st: &AppState, token: &str) -> AppResult<Status> {
    let c = config(st)?;
    let params = signed(c, BTreeMap::from([("token".into(), token.to_string())]));
    let url = format!("{}/payment/getStatus", c.base_url);
    let res =
        http::send_idempotent(PROVIDER.as_str(), || Ok(st.http.get(&url).query(&params))).await?;
    http::read(PROVIDER.as_str(), res, message_of).await
}

/// `refund/create` for the whole payment.
pub async fn refund(st: &AppState, p: &payment::Model, email: &str) -> AppResult<String> {
    let c = config(st)?;
    let params = signed(
        c,
        BTreeMap::from([
            ("refundCommerceOrder".into(), format!("R-{}", p.id)),
            ("receiverEmail".into(), email.to_string()),
            ("amount".into(), p.amount_cents.to_string()),
            (
                "urlCallBack".into(),
                format!(
                    "{}/webhooks/payments/flow/refund",
                    st.config.http.public_base_url
                ),
            ),
            ("commerceTrxId".into(), p.provider_txn_id.clone()),
        ]),
    );
    let req = st
        .http
        .post(format!("{}/refund/create", c.base_url))
        .form(&params);
    let v: Value = http::call_once(PROVIDER.as_str(), req, message_of).await?;
    Ok(v["status"].as_str().unwrap_or("created").to_string())
}

/// Flow's status codes: 1 pending, 2 paid, 3 rejected, 4 cancelled.
pub fn outcome(s: &Status, commerce_order: &str) -> Outcome {
    match s.status {
        2 if s.commerce_order != commerce_order => Outcome::Failed {
            reason: "flow payment does not match the order".into(),
        },
        2 => match s.amount_cents() {
            Some(amount_cents) => Outcome::Paid {
                amount_cents,
                auth_code: Some(s.flow_order.to_string().trim_matches('"').to_string()),
            },
            None => Outcome::Failed {
                reason: "flow amount unreadable".into(),
            },
        },
        3 => Outcome::Failed {
            reason: "flow rejected".into(),
        },
        4 => Outcome::Failed {
            reason: "flow cancelled".into(),
        },
        _ => Outcome::Pending,
    }
}

/// Asks Flow about a token and applies the answer (confirmation callback, browser return,
/// reconciliation). Each distinct status of a token is recorded once in `payment_events`; a
/// repeated notification is a `Duplicate`.
pub async fn settle(
    st: &AppState,
    ctx: &RequestCtx,
    token: &str,
    source: &str,
) -> AppResult<(Option<payment::Model>, Applied)> {
    let Some(p) = super::by_txn(st, PROVIDER, token).await? else {
        return Ok((None, Applied::Duplicate));
    };
    let s = status(st, token).await?;
    let o = order::Entity::find_by_id(p.order_id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Order"))?;
    let result = outcome(&s, o.payment_ref.as_deref().unwrap_or_default());
    if result == Outcome::Pending {
        return Ok((Some(p), Applied::Pending));
    }
    let raw = json!({"source": source, "status": s});
    let event = Event {
        provider: PROVIDER,
        event_id: format!("{token}:{}", s.status),
        payload: raw.clone(),
    };
    let applied = claim::apply_once(st, ctx, event, Some(p.id), result, raw).await?;
    Ok((Some(p), applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_published_vector() {
        let params = BTreeMap::from([
            ("amount".to_string(), "5000".to_string()),
            ("apiKey".to_string(), "XXXX-XXXX-XXXX".to_string()),
            ("currency".to_string(), "CLP".to_string()),
        ]);
        assert_eq!(
            sign("my_secret", &params),
            "f21a399dc386105688fce2db1935fd24ed978ca6d610cb4cf227b303d83698a0"
        );
        let mut with_s = params.clone();
        with_s.insert("s".into(), "ignored".into());
        assert_eq!(sign("my_secret", &with_s), sign("my_secret", &params));
    }

    #[test]
    fn statuses_map() {
        let s = |status: i64, order: &str, amount: Value| Status {
            flow_order: json!(8765456),
            commerce_order: order.into(),
            status,
            amount,
            payment_data: None,
        };
        assert_eq!(
            outcome(&s(2, "ORD-1", json!(5000)), "ORD-1"),
            Outcome::Paid {
                amount_cents: 5000,
                auth_code: Some("8765456".into())
            }
        );
        assert!(matches!(
            outcome(&s(2, "ORD-1", json!("5000")), "ORD-1"),
            Outcome::Paid {
                amount_cents: 5000,
                ..
            }
        ));
        assert!(matches!(
            outcome(&s(2, "ORD-2", json!(5000)), "ORD-1"),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            outcome(&s(3, "ORD-1", json!(5000)), "ORD-1"),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            outcome(&s(4, "ORD-1", json!(5000)), "ORD-1"),
            Outcome::Failed { .. }
        ));
        assert_eq!(
            outcome(&s(1, "ORD-1", json!(5000)), "ORD-1"),
            Outcome::Pending
        );
    }
}
