//! Webpay Plus (Transbank), providers.md §1: create a transaction, send the browser to Webpay,
//! and on its return commit the token exactly once, server to server. Approval only with
//! `response_code == 0` and `status == "AUTHORIZED"` and our own buy order, session and amount.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use sea_orm::EntityTrait;

use super::claim::{self, Event};
use super::{apply_now, apply_outcome, http, Applied, Outcome, Started};
use crate::actor::RequestCtx;
use crate::config::WebpayConfig;
use crate::db::begin_write;
use crate::entities::payment::Provider;
use crate::entities::{order, payment, payment_event};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use secrecy::ExposeSecret;

pub const PROVIDER: Provider = Provider::Webpay;

/// `POST {prefix}/transactions` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    pub token: String,
    pub url: String,
}

/// A transaction as commit and status return it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Transaction {
    #[serde(default)]
    pub vci: Option<String>,
    pub amount: Value,
    pub status: String,
    pub buy_order: String,
    pub session_id: String,
    #[serde(default)]
    pub authorization_code: Option<String>,
    #[serde(default)]
    pub response_code: Option<i64>,
    #[serde(default)]
    pub payment_type_code: Option<String>,
    #[serde(default)]
    pub installments_number: Option<i64>,
}

impl Transaction {
    /// The amount as whole pesos (Webpay may send a number or a numeric string).
    pub fn amount_cents(&self) -> Option<i64> {
        match &self.amount {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
            _ => None,
        }
    }
}

fn config(st: &AppState) -> AppResult<&WebpayConfig> {
    st.config.payments.webpay.as_ref().ok_or_else(|| {
        AppError::invalid(
            "provider",
            "provider_unavailable",
            "The payment provider webpay is not configured",
        )
    })
}

/// The session id we give Webpay for a payment attempt: an HMAC of the order and its reference
/// under the server's secret, so it can be recomputed (and checked on commit and on returns) but
/// not guessed — a forged timeout or abort return must carry it.
pub fn session_id(st: &AppState, order_id: i64, payment_ref: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(st.config.auth.jwt_secret.expose_secret().as_bytes())
            .expect("any key length");
    mac.update(format!("webpay-session:{order_id}:{payment_ref}").as_bytes());
    format!("S{}", &hex::encode(mac.finalize().into_bytes())[..40])
}

/// Whether a return's `TBK_ID_SESION` is the one we gave Webpay for this payment's order.
pub async fn session_matches(
    st: &AppState,
    p: &payment::Model,
    session: Option<&str>,
) -> AppResult<bool> {
    let Some(o) = order::Entity::find_by_id(p.order_id).one(&st.db).await? else {
        return Ok(false);
    };
    let expected = session_id(st, o.id, o.payment_ref.as_deref().unwrap_or_default());
    Ok(session == Some(expected.as_str()))
}

/// Where Webpay sends the browser back (providers.md: `/webhooks/payments/webpay`).
pub fn return_url(st: &AppState) -> String {
    format!(
        "{}/webhooks/payments/webpay",
        st.config.http.public_base_url
    )
}

fn request(
    st: &AppState,
    method: reqwest::Method,
    path: &str,
) -> AppResult<reqwest::RequestBuilder> {
    let c = config(st)?;
    Ok(st
        .http
        .request(method, format!("{}{}{}", c.base_url, c.api_prefix, path))
        .header("Tbk-Api-Key-Id", &c.commerce_code)
        .header("Tbk-Api-Key-Secret", c.api_key_secret.expose_secret())
        .header("Content-Type", "application/json"))
}

fn message_of(v: &Value) -> Option<String> {
    v["error_message"].as_str().map(str::to_string)
}

/// Creates the transaction. Not retried: a retry would create a second one.
pub async fn create(
    st: &AppState,
    buy_order: &str,
    session_id: &str,
    amount: i64,
) -> AppResult<Created> {
    let req = request(st, reqwest::Method::POST, "/transactions")?.json(&json!({
        "buy_order": buy_order,
        "session_id": session_id,
        "amount": amount,
        "return_url": return_url(st),
    }));
    http::call_once(PROVIDER.as_str(), req, message_of).await
}

/// Starts a payment: the transaction, and where the browser goes (`url?token_ws=` for the GET
/// flow, `{url, token_ws}` for the classic form POST).
pub async fn start(st: &AppState, o: &order::Model, reference: &str) -> AppResult<Started> {
    let created = create(
        st,
        reference,
        &session_id(st, o.id, reference),
        o.total_cents,
    )
    .await?;
    Ok(Started {
        provider: PROVIDER,
        redirect_url: Some(format!("{}?token_ws={}", created.url, created.token)),
        init_payload: Some(json!({"url": created.url, "token_ws": created.token})),
        provider_txn_id: created.token,
        payment_ref: reference.to_string(),
    })
}

/// Commits a token (once: a second commit is a 422 at Webpay).
pub async fn commit(st: &AppState, token: &str) -> AppResult<Transaction> {
    let req = request(st, reqwest::Method::PUT, &format!("/transactions/{token}"))?;
    http::call_once(PROVIDER.as_str(), req, message_of).await
}

/// The transaction's status (idempotent: retried with backoff on transport errors and 5xx).
pub async fn status(st: &AppState, token: &str) -> AppResult<Transaction> {
    let path = format!("/transactions/{token}");
    let res = http::send_idempotent(PROVIDER.as_str(), || {
        request(st, reqwest::Method::GET, &path)
    })
    .await?;
    http::read(PROVIDER.as_str(), res, message_of).await
}

/// Refunds (reverses or nullifies) `amount` of a committed transaction: `Ok(type)`.
pub async fn refund(st: &AppState, token: &str, amount: i64) -> AppResult<String> {
    let req = request(
        st,
        reqwest::Method::POST,
        &format!("/transactions/{token}/refunds"),
    )?
    .json(&json!({ "amount": amount }));
    let v: Value = http::call_once(PROVIDER.as_str(), req, message_of).await?;
    match v["type"].as_str() {
        Some(t @ ("REVERSED" | "NULLIFIED")) => Ok(t.to_string()),
        _ => Err(AppError::provider(
            PROVIDER.as_str(),
            format!("unexpected refund answer {v}"),
        )),
    }
}

/// What a committed (or queried) transaction means for our payment of `payment_ref`. The amount
/// is checked against the payment and the order by `apply_outcome` (a mismatch fails the payment).
pub fn outcome(t: &Transaction, payment_ref: &str, session: &str) -> Outcome {
    let authorized = t.response_code == Some(0) && t.status == "AUTHORIZED";
    if !authorized {
        return match t.status.as_str() {
            "INITIALIZED" => Outcome::Pending,
            _ => Outcome::Failed {
                reason: format!(
                    "webpay {} (response_code {})",
                    t.status,
                    t.response_code.map_or("none".into(), |c| c.to_string())
                ),
            },
        };
    }
    if t.buy_order != payment_ref || t.session_id != session {
        return Outcome::Failed {
            reason: "webpay transaction does not match the payment".into(),
        };
    }
    match t.amount_cents() {
        Some(amount_cents) => Outcome::Paid {
            amount_cents,
            auth_code: t.authorization_code.clone(),
        },
        None => Outcome::Failed {
            reason: "webpay amount unreadable".into(),
        },
    }
}

/// Commits a payment's token exactly once and applies the result. A second return or confirm
/// (or one racing the first) does not commit again: it reports the stored outcome. The claim is a
/// `payment_events` row (`commit:<token>`, unique), written before the provider call and outside
/// any transaction that holds row locks. Returns how the result was applied (`Duplicate` when
/// another request had claimed the commit).
pub async fn commit_once(
    st: &AppState,
    ctx: &RequestCtx,
    p: &payment::Model,
    source: &str,
) -> AppResult<Applied> {
    if p.status.is_final() {
        return Ok(Applied::Duplicate);
    }
    let event = Event {
        provider: PROVIDER,
        event_id: format!("commit:{}", p.provider_txn_id),
        payload: json!({"source": source}),
    };
    let Some(claimed) = claim::claim(&st.db, &event, Some(p.id), "claimed", st.clock.now()).await?
    else {
        return Ok(Applied::Duplicate);
    };
    let o = order::Entity::find_by_id(p.order_id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Order"))?;
    let reference = o.payment_ref.clone().unwrap_or_default();
    let session = session_id(st, o.id, &reference);
    let (outcome, raw) = match commit(st, &p.provider_txn_id).await {
        Ok(t) => (
            outcome(&t, &reference, &session),
            json!({"source": source, "commit": t}),
        ),
        Err(commit_error) => {
            // The commit may or may not have happened at Webpay: ask before deciding.
            match status(st, &p.provider_txn_id).await {
                Ok(t) => (
                    outcome(&t, &reference, &session),
                    json!({"source": source, "status": t}),
                ),
                Err(_) => {
                    claim::record(&st.db, claimed, None, "commit_unknown", None).await?;
                    // Left `initiated`: reconciliation settles it from the status call.
                    return Err(commit_error);
                }
            }
        }
    };
    if outcome == Outcome::Pending {
        // Not authorized yet (the buyer is still at Webpay): release the claim so the real
        // return can commit later.
        payment_event::Entity::delete_by_id(claimed.id)
            .exec(&st.db)
            .await?;
        return Ok(Applied::Pending);
    }
    crate::db::retry_contended(&st.metrics, || async {
        let _catalogue = st.catalogue.writing();
        let txn = begin_write(&st.db).await?;
        let applied = apply_outcome(st, &txn, ctx, p.id, outcome.clone(), raw.clone()).await?;
        claim::record(
            &txn,
            claimed.clone(),
            None,
            applied.as_str(),
            Some(raw.clone()),
        )
        .await?;
        txn.commit().await?;
        Ok(applied)
    })
    .await
}

/// Reconciliation of one payment: commit it if nobody has (the browser never came back), or,
/// when a commit was claimed but its result never applied, read the status and apply that.
pub async fn reconcile(st: &AppState, ctx: &RequestCtx, p: &payment::Model) -> AppResult<Applied> {
    match commit_once(st, ctx, p, "reconcile").await? {
        Applied::Duplicate => {
            let o = order::Entity::find_by_id(p.order_id)
                .one(&st.db)
                .await?
                .ok_or_else(|| AppError::not_found("Order"))?;
            let t = status(st, &p.provider_txn_id).await?;
            let result = outcome(
                &t,
                &o.payment_ref.clone().unwrap_or_default(),
                &session_id(st, o.id, o.payment_ref.as_deref().unwrap_or_default()),
            );
            apply_now(
                st,
                ctx,
                p.id,
                result,
                json!({"source": "reconcile", "status": t}),
            )
            .await
        }
        other => Ok(other),
    }
}

/// The browser came back without a committable token (aborted, timed out, or an error page):
/// the payment failed. Idempotent like every outcome.
pub async fn fail(
    st: &AppState,
    ctx: &RequestCtx,
    p: &payment::Model,
    reason: &str,
    raw: Value,
) -> AppResult<Applied> {
    let failed = Outcome::Failed {
        reason: reason.into(),
    };
    apply_now(st, ctx, p.id, failed, raw).await
}

/// The latest Webpay payment of the order whose reference is `buy_order`.
pub async fn by_buy_order(st: &AppState, buy_order: &str) -> AppResult<Option<payment::Model>> {
    super::by_order_ref(st, PROVIDER, buy_order).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(status: &str, code: i64, amount: Value) -> Transaction {
        Transaction {
            vci: Some("TSY".into()),
            amount,
            status: status.into(),
            buy_order: "ORD-1-20261123000000".into(),
            session_id: "U2-O1".into(),
            authorization_code: Some("1213".into()),
            response_code: Some(code),
            payment_type_code: Some("VN".into()),
            installments_number: Some(0),
        }
    }

    #[test]
    fn approval_needs_code_zero_authorized_and_our_references() {
        let ok = outcome(
            &tx("AUTHORIZED", 0, json!(10000)),
            "ORD-1-20261123000000",
            "U2-O1",
        );
        assert_eq!(
            ok,
            Outcome::Paid {
                amount_cents: 10000,
                auth_code: Some("1213".into())
            }
        );
        let as_string = outcome(
            &tx("AUTHORIZED", 0, json!("10000")),
            "ORD-1-20261123000000",
            "U2-O1",
        );
        assert!(matches!(
            as_string,
            Outcome::Paid {
                amount_cents: 10000,
                ..
            }
        ));
        assert!(matches!(
            outcome(
                &tx("FAILED", -1, json!(10000)),
                "ORD-1-20261123000000",
                "U2-O1"
            ),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            outcome(
                &tx("AUTHORIZED", -1, json!(10000)),
                "ORD-1-20261123000000",
                "U2-O1"
            ),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            outcome(
                &tx("AUTHORIZED", 0, json!(10000)),
                "ORD-9-20261123000000",
                "U2-O1"
            ),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            outcome(
                &tx("AUTHORIZED", 0, json!(10000)),
                "ORD-1-20261123000000",
                "U3-O1"
            ),
            Outcome::Failed { .. }
        ));
    }
}
