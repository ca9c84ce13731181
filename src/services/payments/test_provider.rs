//! The `test` provider (providers.md §4): redirects to the frontend's mock page, confirms with
//! `params.mock = "paid"`, and sends HMAC-signed webhooks.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::{Outcome, Started};
use crate::entities::{order, payment};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn start(st: &AppState, o: &order::Model, payment_ref: &str) -> Started {
    Started {
        provider: "test".into(),
        provider_txn_id: uuid::Uuid::new_v4().to_string(),
        payment_ref: payment_ref.to_string(),
        redirect_url: Some(format!(
            "{}/checkout/success?mock=1&orderId={}",
            st.config.frontend_base_url, o.id
        )),
        init_payload: None,
    }
}

pub fn confirm(p: &payment::Model, params: &Value) -> Outcome {
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
    pub status: String,
    pub amount_cents: i64,
    pub timestamp: i64,
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
        match self.status.as_str() {
            "paid" => Outcome::Paid {
                amount_cents: self.amount_cents,
                auth_code: Some(format!("TEST-{}", self.event_id)),
            },
            _ => Outcome::Failed {
                reason: "provider_failed".into(),
            },
        }
    }
}
