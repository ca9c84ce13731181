//! The `test` provider (providers.md §4): redirects to the frontend's mock page, confirms with
//! `params.mock = "paid"`, and sends HMAC-signed webhooks.

use hmac::{Hmac, Mac};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use super::claim::{self, Event};
use super::{apply_now, Applied, Outcome, Started};
use crate::actor::RequestCtx;
use crate::entities::payment::Provider;
use crate::entities::{order, payment};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use secrecy::ExposeSecret;

/// Accepted clock skew for signed webhook timestamps.
const WINDOW_SECONDS: i64 = 300;

pub fn start(st: &AppState, o: &order::Model, payment_ref: &str) -> Started {
    Started {
        provider: Provider::Test,
        provider_txn_id: uuid::Uuid::new_v4().to_string(),
        payment_ref: payment_ref.to_string(),
        redirect_url: Some(format!(
            "{}/checkout/success?mock=1&orderId={}",
            st.config.http.frontend_base_url, o.id
        )),
        init_payload: None,
    }
}

/// `confirmPayment` with the test provider: `params.mock = "paid"` pays, anything else declines.
pub async fn confirm_payment(
    st: &AppState,
    ctx: &RequestCtx,
    p: &payment::Model,
    params: Value,
) -> AppResult<Applied> {
    let outcome = confirm(p, &params);
    let raw = json!({"source": "confirm", "params": params});
    apply_now(st, ctx, p.id, outcome, raw).await
}

/// A signed test webhook (`X-Test-Signature` over the raw body): verified, checked against the
/// timestamp window, then applied once per `eventId`. Answers the outcome's label.
pub async fn notification(
    st: &AppState,
    ctx: &RequestCtx,
    signature: Option<&str>,
    body: &[u8],
) -> AppResult<&'static str> {
    verify(
        st.config.payments.test_secret.expose_secret(),
        body,
        signature,
    )?;
    let event: TestEvent = serde_json::from_slice(body).map_err(|e| {
        AppError::invalid(
            "body",
            "invalid_json",
            format!("Not a test payment event: {e}"),
        )
    })?;
    if (st.clock.now().timestamp() - event.timestamp).abs() > WINDOW_SECONDS {
        return Err(AppError::unauthorized(
            "The event timestamp is outside the accepted window",
        ));
    }
    let payload: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let payment_id = payment::Entity::find()
        .filter(payment::Column::Provider.eq(Provider::Test))
        .filter(payment::Column::ProviderTxnId.eq(event.provider_txn_id.as_str()))
        .one(&st.db)
        .await?
        .map(|p| p.id);
    let applied = claim::apply_once(
        st,
        ctx,
        Event {
            provider: Provider::Test,
            event_id: event.event_id.clone(),
            payload: payload.clone(),
        },
        payment_id,
        event.outcome(),
        json!({"source": "webhook", "event": payload}),
    )
    .await?;
    Ok(applied.as_str())
}

fn confirm(p: &payment::Model, params: &Value) -> Outcome {
    if params.get("mock").and_then(Value::as_str) == Some("paid") {
        Outcome::Paid {
            amount_cents: p.amount_cents,
            auth_code: Some(format!("TEST-{}", p.id)),
        }
    } else {
        Outcome::Failed {
            reason: "mock_declined".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestEvent {
    pub event_id: String,
    pub provider_txn_id: String,
    pub status: TestStatus,
    pub amount_cents: i64,
    pub timestamp: i64,
}

/// A test event's `status`: `paid`, or anything else (a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Paid,
    #[serde(other)]
    Other,
}

/// Verifies `X-Test-Signature` (hex HMAC-SHA256 of the raw body) in constant time.
pub fn verify(secret: &str, raw: &[u8], signature_hex: Option<&str>) -> AppResult<()> {
    let bad = || AppError::unauthorized("Invalid webhook signature");
    let sig = hex::decode(signature_hex.ok_or_else(bad)?.trim()).map_err(|_| bad())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(AppError::internal)?;
    mac.update(raw);
    mac.verify_slice(&sig).map_err(|_| bad())
}

pub fn sign(secret: &str, raw: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(raw);
    hex::encode(mac.finalize().into_bytes())
}

impl TestEvent {
    pub fn outcome(&self) -> Outcome {
        match self.status {
            TestStatus::Paid => Outcome::Paid {
                amount_cents: self.amount_cents,
                auth_code: Some(format!("TEST-{}", self.event_id)),
            },
            TestStatus::Other => Outcome::Failed {
                reason: "provider_failed".into(),
            },
        }
    }
}
