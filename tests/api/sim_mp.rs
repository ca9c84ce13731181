//! An in-process Mercado Pago simulator (providers.md §3): preferences (Bearer token,
//! `X-Idempotency-Key` replays the same preference), payments lookup and search, refunds; and
//! signed notifications like Mercado Pago sends them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const ACCESS_TOKEN: &str = "TEST-8823492312-112233-abcdef";
pub const WEBHOOK_SECRET: &str = "mp-webhook-secret-for-tests";

#[derive(Debug, Clone)]
pub struct MpPayment {
    pub id: i64,
    pub external_reference: String,
    pub amount: f64,
    pub status: String,
    pub refunded: bool,
}

#[derive(Default)]
pub struct SimState {
    pub preferences: HashMap<String, Value>,
    /// X-Idempotency-Key → preference id.
    pub idempotency: HashMap<String, String>,
    pub payments: HashMap<i64, MpPayment>,
    pub rejected_auth: u32,
    /// Delays preference creation (a slow provider: the client's timeout fires).
    pub delay_ms: u64,
}

#[derive(Clone)]
pub struct MpSim {
    pub base_url: String,
    pub state: Arc<Mutex<SimState>>,
}

impl MpSim {
    pub async fn start() -> MpSim {
        let state = Arc::new(Mutex::new(SimState::default()));
        let router = Router::new()
            .route("/checkout/preferences", post(preference))
            .route("/v1/payments/search", get(search))
            .route("/v1/payments/{id}", get(payment))
            .route("/v1/payments/{id}/refunds", post(refund))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        MpSim {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    /// The buyer pays at Mercado Pago: a payment for the preference's reference and amount.
    pub fn pay(&self, preference_id: &str, status: &str) -> i64 {
        let mut s = self.state.lock().unwrap();
        let pref = s
            .preferences
            .get(preference_id)
            .expect("preference")
            .clone();
        let id = 1_300_000_000 + s.payments.len() as i64;
        s.payments.insert(
            id,
            MpPayment {
                id,
                external_reference: pref["external_reference"].as_str().unwrap().to_string(),
                amount: pref["items"][0]["unit_price"].as_f64().unwrap(),
                status: status.into(),
                refunded: false,
            },
        );
        id
    }

    pub fn set_payment(&self, id: i64, status: &str, amount: Option<f64>) {
        let mut s = self.state.lock().unwrap();
        let p = s.payments.get_mut(&id).expect("payment");
        p.status = status.into();
        if let Some(a) = amount {
            p.amount = a;
        }
    }

    pub fn preference(&self, id: &str) -> Value {
        self.state
            .lock()
            .unwrap()
            .preferences
            .get(id)
            .expect("preference")
            .clone()
    }

    pub fn payment(&self, id: i64) -> MpPayment {
        self.state
            .lock()
            .unwrap()
            .payments
            .get(&id)
            .expect("payment")
            .clone()
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message, "error": "bad_request", "status": status.as_u16(), "cause": []}))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {ACCESS_TOKEN}"))
}

async fn preference(
    State(st): State<Arc<Mutex<SimState>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let delay = st.lock().unwrap().delay_ms;
    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    let mut s = st.lock().unwrap();
    if !authorized(&headers) {
        s.rejected_auth += 1;
        return error(StatusCode::UNAUTHORIZED, "invalid access token");
    }
    let Some(key) = headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return error(StatusCode::BAD_REQUEST, "X-Idempotency-Key required");
    };
    if let Some(id) = s.idempotency.get(&key) {
        let pref = s.preferences[id].clone();
        return Json(pref).into_response();
    }
    let item = &body["items"][0];
    let valid = item["unit_price"].as_f64().is_some_and(|p| p > 0.0)
        && item["quantity"].as_i64().is_some_and(|q| q > 0)
        && item["currency_id"] == "CLP"
        && body["external_reference"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
        && body["notification_url"]
            .as_str()
            .is_some_and(|u| u.contains("/webhooks/payments/mp"));
    if !valid {
        return error(StatusCode::BAD_REQUEST, "invalid preference");
    }
    let id = format!("2024-{}", uuid::Uuid::new_v4().simple());
    let mut pref = body.clone();
    pref["id"] = json!(id);
    pref["init_point"] = json!(format!(
        "https://www.mercadopago.cl/checkout/v1/redirect?pref_id={id}"
    ));
    pref["sandbox_init_point"] = json!(format!(
        "https://sandbox.mercadopago.cl/checkout/v1/redirect?pref_id={id}"
    ));
    s.preferences.insert(id.clone(), pref.clone());
    s.idempotency.insert(key, id);
    Json(pref).into_response()
}

fn payment_json(p: &MpPayment) -> Value {
    json!({
        "id": p.id,
        "status": if p.refunded { "refunded" } else { p.status.as_str() },
        "status_detail": if p.status == "approved" { "accredited" } else { "cc_rejected_other_reason" },
        "transaction_amount": p.amount,
        "currency_id": "CLP",
        "external_reference": p.external_reference,
        "date_created": "2026-11-23T08:00:00.000-03:00"
    })
}

async fn payment(
    State(st): State<Arc<Mutex<SimState>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let s = st.lock().unwrap();
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid access token");
    }
    match id.parse::<i64>().ok().and_then(|id| s.payments.get(&id)) {
        Some(p) => Json(payment_json(p)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Payment not found"),
    }
}

async fn search(
    State(st): State<Arc<Mutex<SimState>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = st.lock().unwrap();
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid access token");
    }
    let mut found: Vec<&MpPayment> = s
        .payments
        .values()
        .filter(|p| Some(&p.external_reference) == q.get("external_reference"))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.id));
    Json(json!({"results": found.into_iter().map(payment_json).collect::<Vec<_>>(), "paging": {"total": 0}})).into_response()
}

async fn refund(
    State(st): State<Arc<Mutex<SimState>>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let mut s = st.lock().unwrap();
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid access token");
    }
    match s.payments.get_mut(&id) {
        Some(p) if p.status == "approved" && !p.refunded => {
            p.refunded = true;
            Json(json!({"id": 9001, "payment_id": id, "amount": p.amount, "status": "approved"}))
                .into_response()
        }
        Some(_) => error(StatusCode::BAD_REQUEST, "Payment cannot be refunded"),
        None => error(StatusCode::NOT_FOUND, "Payment not found"),
    }
}
