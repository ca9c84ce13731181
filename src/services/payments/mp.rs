//! Mercado Pago Checkout Pro, providers.md §3: a preference (with `X-Idempotency-Key`), a
//! notification signed with `x-signature` (manifest HMAC, constant-time compare, timestamp
//! window), then the server-side `GET /v1/payments/{id}` that alone decides.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use super::claim::{self, Event};
use super::{http, Applied, Outcome, Started};
use crate::actor::RequestCtx;
use crate::config::MpConfig;
use crate::entities::payment::Provider;
use crate::entities::{order, payment};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use secrecy::ExposeSecret;

pub const PROVIDER: Provider = Provider::Mp;
/// Accepted clock skew of a notification's `ts`.
pub const WINDOW_SECONDS: i64 = 300;

fn config(st: &AppState) -> AppResult<&MpConfig> {
    st.config.payments.mp.as_ref().ok_or_else(|| {
        AppError::invalid(
            "provider",
            "provider_unavailable",
            "The payment provider mp is not configured",
        )
    })
}

/// The signed manifest: `id:<data.id>;request-id:<x-request-id>;ts:<ts>;`, a pair dropped when
/// its value is missing.
pub fn manifest(data_id: Option<&str>, request_id: Option<&str>, ts: Option<&str>) -> String {
    let mut m = String::new();
    for (k, v) in [("id", data_id), ("request-id", request_id), ("ts", ts)] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.push_str(&format!("{k}:{v};"));
        }
    }
    m
}

fn mac(secret: &str, manifest: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(manifest.as_bytes());
    mac
}

/// `v1` for a manifest (what Mercado Pago sends).
pub fn sign(secret: &str, manifest: &str) -> String {
    hex::encode(mac(secret, manifest).finalize().into_bytes())
}

/// Verifies `x-signature` (`ts=…,v1=…`) against the manifest of this notification, in constant
/// time, and its `ts` within five minutes of `now` (values above 10^12 are milliseconds).
pub fn verify(
    secret: &str,
    x_signature: Option<&str>,
    x_request_id: Option<&str>,
    data_id: Option<&str>,
    now: i64,
) -> AppResult<()> {
    let bad = || AppError::unauthorized("Invalid webhook signature");
    let header = x_signature.ok_or_else(bad)?;
    let (mut ts, mut v1) = (None, None);
    for part in header.split(',') {
        if let Some((k, v)) = part.split_once('=') {
            match k.trim() {
                "ts" => ts = Some(v.trim()),
                "v1" => v1 = Some(v.trim()),
                _ => {}
            }
        }
    }
    let (ts, v1) = (ts.ok_or_else(bad)?, v1.ok_or_else(bad)?);
    let expected = hex::decode(v1).map_err(|_| bad())?;
    mac(secret, &manifest(data_id, x_request_id, Some(ts)))
        .verify_slice(&expected)
        .map_err(|_| bad())?;
    let mut seconds: i64 = ts.parse().map_err(|_| bad())?;
    if seconds > 1_000_000_000_000 {
        seconds /= 1000;
    }
    if (now - seconds).abs() > WINDOW_SECONDS {
        return Err(AppError::unauthorized(
            "The notification timestamp is outside the accepted window",
        ));
    }
    Ok(())
}

fn message_of(v: &Value) -> Option<String> {
    v["message"].as_str().map(str::to_string)
}

#[derive(Debug, Clone, Deserialize)]
pub struct Preference {
    pub id: String,
    pub init_point: String,
    #[serde(default)]
    pub sandbox_init_point: Option<String>,
}

/// Creates the Checkout Pro preference. `X-Idempotency-Key` makes a retried call return the
/// same preference.
pub async fn create(
    st: &AppState,
    payment_ref: &str,
    order_id: i64,
    amount: i64,
) -> AppResult<Preference> {
    let c = config(st)?;
    let front = &st.config.http.frontend_base_url;
    let body = json!({
        "items": [{"title": format!("Pedido #{order_id}"), "quantity": 1, "unit_price": amount, "currency_id": "CLP"}],
        "external_reference": payment_ref,
        "notification_url": format!("{}/webhooks/payments/mp?source_news=webhooks", st.config.http.public_base_url),
        "back_urls": {
            "success": format!("{front}/checkout/result?orderId={order_id}&status=paid"),
            "failure": format!("{front}/checkout/result?orderId={order_id}&status=failed"),
            "pending": format!("{front}/checkout/result?orderId={order_id}&status=pending"),
        },
        "auto_return": "approved",
    });
    let req = st
        .http
        .post(format!("{}/checkout/preferences", c.base_url))
        .bearer_auth(c.access_token.expose_secret())
        .header("X-Idempotency-Key", format!("pref-{payment_ref}"))
        .json(&body);
    http::call_once(PROVIDER.as_str(), req, message_of).await
}

/// Starts a payment: the Checkout Pro preference, and its `init_point` for the browser.
pub async fn start(st: &AppState, o: &order::Model, reference: &str) -> AppResult<Started> {
    let pref = create(st, reference, o.id, o.total_cents).await?;
    Ok(Started {
        provider: PROVIDER,
        redirect_url: Some(pref.init_point.clone()),
        init_payload: Some(
            json!({"preferenceId": pref.id, "initPoint": pref.init_point,
            "sandboxInitPoint": pref.sandbox_init_point}),
        ),
        provider_txn_id: pref.id,
        payment_ref: reference.to_string(),
    })
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MpPayment {
    pub id: Value,
    pub status: String,
    #[serde(default)]
    pub status_detail: Option<String>,
    pub transaction_amount: Value,
    #[serde(default)]
    pub currency_id: Option<String>,
    #[serde(default)]
    pub external_reference: Option<String>,
}

impl MpPayment {
    pub fn id_string(&self) -> String {
        match &self.id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    fn amount_cents(&self) -> Option<i64> {
        match &self.transaction_amount {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)),
            Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f.round() as i64),
            _ => None,
        }
    }
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    st: &AppState,
    path: &str,
    query: &[(&str, &str)],
) -> AppResult<T> {
    let c = config(st)?;
    let url = format!("{}{path}", c.base_url);
    let res = http::send_idempotent(PROVIDER.as_str(), || {
        Ok(st
            .http
            .get(&url)
            .bearer_auth(c.access_token.expose_secret())
            .query(query))
    })
    .await?;
    http::read(PROVIDER.as_str(), res, message_of).await
}

/// `GET /v1/payments/{id}` (retried with backoff: it is idempotent).
pub async fn payment(st: &AppState, id: &str) -> AppResult<MpPayment> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(AppError::invalid(
            "data.id",
            "invalid_format",
            "Not a payment id",
        ));
    }
    get_json(st, &format!("/v1/payments/{id}"), &[]).await
}

/// The newest Mercado Pago payment for a reference (reconciliation, when no notification came).
pub async fn search(st: &AppState, external_reference: &str) -> AppResult<Option<MpPayment>> {
    #[derive(Deserialize)]
    struct Results {
        results: Vec<MpPayment>,
    }
    let r: Results = get_json(
        st,
        "/v1/payments/search",
        &[
            ("external_reference", external_reference),
            ("sort", "date_created"),
            ("criteria", "desc"),
        ],
    )
    .await?;
    Ok(r.results.into_iter().next())
}

/// `POST /v1/payments/{id}/refunds` (full amount).
pub async fn refund(st: &AppState, p: &payment::Model) -> AppResult<String> {
    let c = config(st)?;
    let mp_id = p.auth_code.clone().ok_or_else(|| {
        AppError::provider(PROVIDER.as_str(), "no Mercado Pago payment id recorded")
    })?;
    let req = st
        .http
        .post(format!("{}/v1/payments/{mp_id}/refunds", c.base_url))
        .bearer_auth(c.access_token.expose_secret())
        .header("X-Idempotency-Key", format!("refund-{}", p.id))
        .json(&json!({}));
    let v: Value = http::call_once(PROVIDER.as_str(), req, message_of).await?;
    match v["status"].as_str() {
        Some(s @ ("approved" | "in_process")) => Ok(s.to_string()),
        _ => Err(AppError::provider(
            PROVIDER.as_str(),
            format!("refund answered {v}"),
        )),
    }
}

/// Mercado Pago's statuses: approved pays (when the reference matches; the amount is checked by
/// `apply_outcome`), rejected and cancelled fail, the rest changes nothing.
pub fn outcome(m: &MpPayment, payment_ref: &str) -> Outcome {
    match m.status.as_str() {
        "approved" if m.external_reference.as_deref() != Some(payment_ref) => Outcome::Failed {
            reason: "mp payment does not match the order".into(),
        },
        "approved" if m.currency_id.as_deref().is_some_and(|c| c != "CLP") => Outcome::Failed {
            reason: "mp payment in another currency".into(),
        },
        "approved" => match m.amount_cents() {
            Some(amount_cents) => Outcome::Paid {
                amount_cents,
                auth_code: Some(m.id_string()),
            },
            None => Outcome::Failed {
                reason: "mp amount unreadable".into(),
            },
        },
        "rejected" | "cancelled" => Outcome::Failed {
            reason: format!("mp {}", m.status),
        },
        _ => Outcome::Pending,
    }
}

/// Applies what Mercado Pago says about one of its payments, once per (payment, status).
pub async fn settle(
    st: &AppState,
    ctx: &RequestCtx,
    m: MpPayment,
    source: &str,
) -> AppResult<Applied> {
    let reference = m.external_reference.clone().unwrap_or_default();
    let Some(p) = super::by_order_ref(st, PROVIDER, &reference).await? else {
        return Err(AppError::not_found("Payment"));
    };
    let result = outcome(&m, &reference);
    let raw = json!({"source": source, "payment": m});
    if m.status == "refunded" || m.status == "charged_back" {
        tracing::warn!(paymentId = p.id, status = %m.status, "mercado pago reports money returned");
    }
    if result == Outcome::Pending {
        return Ok(Applied::Pending);
    }
    let event = Event {
        provider: PROVIDER,
        event_id: format!("{}:{}", m.id_string(), m.status),
        payload: raw.clone(),
    };
    let applied = claim::apply_once(st, ctx, event, Some(p.id), result, raw).await?;
    Ok(applied)
}

/// Mercado Pago has no token to ask about: search its payments by our reference.
pub async fn reconcile(st: &AppState, ctx: &RequestCtx, p: &payment::Model) -> AppResult<Applied> {
    use sea_orm::EntityTrait;
    let reference = crate::entities::order::Entity::find_by_id(p.order_id)
        .one(&st.db)
        .await?
        .and_then(|o| o.payment_ref)
        .unwrap_or_default();
    match search(st, &reference).await? {
        Some(found) => settle(st, ctx, found, "reconcile").await,
        None => Ok(Applied::Pending),
    }
}

/// `POST /webhooks/payments/mp`: verifies `x-signature` over the manifest (the query's `data.id`,
/// `x-request-id`, `ts`) before reading the body, then looks the payment up at Mercado Pago and
/// applies it once. Answers the outcome's label (`ignored` for other notification types).
pub async fn notification(
    st: &AppState,
    ctx: &RequestCtx,
    query: Option<&str>,
    x_signature: Option<&str>,
    x_request_id: Option<&str>,
    body: &[u8],
) -> AppResult<&'static str> {
    let q: std::collections::HashMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let data_id = q.get("data.id").map(String::as_str);
    verify(
        config(st)?.webhook_secret.expose_secret(),
        x_signature,
        x_request_id,
        data_id,
        st.clock.now().timestamp(),
    )?;
    let kind = q
        .get("type")
        .cloned()
        .or_else(|| {
            serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_string))
        })
        .unwrap_or_default();
    if kind != "payment" {
        return Ok("ignored");
    }
    let id = data_id.ok_or_else(|| AppError::invalid("data.id", "required", "No payment id"))?;
    let found = payment(st, id).await?;
    Ok(settle(st, ctx, found, "notification").await?.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_published_vector() {
        let m = manifest(
            Some("123456"),
            Some("bb56a2f1-6aae-46ac-982e-9dcd3581d08e"),
            Some("1704908010"),
        );
        assert_eq!(
            m,
            "id:123456;request-id:bb56a2f1-6aae-46ac-982e-9dcd3581d08e;ts:1704908010;"
        );
        assert_eq!(
            sign("your_secret_key_here", &m),
            "637a6ba61396d5572b508ee7a1b81458dea7c6f275af3273b6d76e15e17b7918"
        );
        let header =
            "ts=1704908010,v1=637a6ba61396d5572b508ee7a1b81458dea7c6f275af3273b6d76e15e17b7918";
        let rid = Some("bb56a2f1-6aae-46ac-982e-9dcd3581d08e");
        assert!(verify(
            "your_secret_key_here",
            Some(header),
            rid,
            Some("123456"),
            1704908010
        )
        .is_ok());
        // Milliseconds are accepted; stale, forged, or another id are not.
        let ms = format!(
            "ts=1704908010000,v1={}",
            sign(
                "your_secret_key_here",
                &manifest(Some("123456"), rid, Some("1704908010000"))
            )
        );
        assert!(verify(
            "your_secret_key_here",
            Some(&ms),
            rid,
            Some("123456"),
            1704908100
        )
        .is_ok());
        assert!(verify(
            "your_secret_key_here",
            Some(header),
            rid,
            Some("123456"),
            1704908010 + 301
        )
        .is_err());
        assert!(verify("other", Some(header), rid, Some("123456"), 1704908010).is_err());
        assert!(verify(
            "your_secret_key_here",
            Some(header),
            rid,
            Some("123457"),
            1704908010
        )
        .is_err());
        assert!(verify(
            "your_secret_key_here",
            None,
            rid,
            Some("123456"),
            1704908010
        )
        .is_err());
        assert!(verify(
            "your_secret_key_here",
            Some("garbage"),
            rid,
            Some("123456"),
            1704908010
        )
        .is_err());
    }

    #[test]
    fn a_missing_value_drops_its_pair() {
        assert_eq!(manifest(Some("1"), None, Some("2")), "id:1;ts:2;");
    }

    #[test]
    fn statuses_map() {
        let m = |status: &str, reference: &str, amount: Value| MpPayment {
            id: json!(999999999),
            status: status.into(),
            status_detail: None,
            transaction_amount: amount,
            currency_id: Some("CLP".into()),
            external_reference: Some(reference.into()),
        };
        assert_eq!(
            outcome(&m("approved", "ORD-1", json!(13480.0)), "ORD-1"),
            Outcome::Paid {
                amount_cents: 13480,
                auth_code: Some("999999999".into())
            }
        );
        assert!(matches!(
            outcome(&m("approved", "ORD-2", json!(1)), "ORD-1"),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            outcome(&m("rejected", "ORD-1", json!(1)), "ORD-1"),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            outcome(&m("cancelled", "ORD-1", json!(1)), "ORD-1"),
            Outcome::Failed { .. }
        ));
        for s in [
            "pending",
            "in_process",
            "authorized",
            "refunded",
            "charged_back",
        ] {
            assert_eq!(
                outcome(&m(s, "ORD-1", json!(1)), "ORD-1"),
                Outcome::Pending,
                "{s}"
            );
        }
    }
}
