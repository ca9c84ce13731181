//! An in-process Webpay Plus simulator (providers.md §1): the documented endpoints, headers,
//! limits, statuses and error bodies. It rejects wrong keys, malformed amounts and a second commit
//! of the same token, like Transbank's integration environment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const PREFIX: &str = "/rswebpaytransaction/api/webpay/v1.2";
pub const CODE: &str = "597055555532";
pub const SECRET: &str = "579B532A7440BB0C9079DED94D31EA1615BACEB56610332264630D42D0A36B1C";

#[derive(Debug, Clone)]
pub struct Tx {
    pub buy_order: String,
    pub session_id: String,
    pub amount: i64,
    pub return_url: String,
    /// The buyer's decision at the bank page: None until they pay.
    pub approved: Option<bool>,
    pub commits: u32,
    pub committed: bool,
    pub refunded: i64,
    /// Makes commit and status report another amount (a tampered or buggy answer).
    pub reported_amount: Option<i64>,
}

#[derive(Default)]
pub struct SimState {
    pub txs: HashMap<String, Tx>,
    pub create_calls: u32,
    pub rejected_auth: u32,
    /// Makes refunds fail (the provider's side is down or refuses).
    pub refuse_refunds: bool,
    /// Delays every answer (a slow provider: the client's timeout fires).
    pub delay_ms: u64,
}

#[derive(Clone)]
pub struct WebpaySim {
    pub base_url: String,
    pub state: Arc<Mutex<SimState>>,
}

impl WebpaySim {
    pub async fn start() -> WebpaySim {
        let state = Arc::new(Mutex::new(SimState::default()));
        let router = Router::new()
            .route(&format!("{PREFIX}/transactions"), post(create))
            .route(
                &format!("{PREFIX}/transactions/{{token}}"),
                get(status).put(commit),
            )
            .route(
                &format!("{PREFIX}/transactions/{{token}}/refunds"),
                post(refund),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        WebpaySim {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    /// The buyer approves (a VISA test card) or is rejected (the Mastercard test card).
    pub fn pay(&self, token: &str, approved: bool) {
        self.state
            .lock()
            .unwrap()
            .txs
            .get_mut(token)
            .expect("token")
            .approved = Some(approved);
    }

    pub fn report_amount(&self, token: &str, amount: i64) {
        self.state
            .lock()
            .unwrap()
            .txs
            .get_mut(token)
            .expect("token")
            .reported_amount = Some(amount);
    }

    pub fn tx(&self, token: &str) -> Tx {
        self.state
            .lock()
            .unwrap()
            .txs
            .get(token)
            .expect("token")
            .clone()
    }

    pub fn create_calls(&self) -> u32 {
        self.state.lock().unwrap().create_calls
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error_message": message }))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("Tbk-Api-Key-Id").and_then(|v| v.to_str().ok()) == Some(CODE)
        && headers
            .get("Tbk-Api-Key-Secret")
            .and_then(|v| v.to_str().ok())
            == Some(SECRET)
        && headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
}

/// An integer CLP amount, as a number or a numeric string.
fn amount_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    }
}

fn token() -> String {
    format!(
        "01ab{}",
        &uuid::Uuid::new_v4().simple().to_string().repeat(2)[..60]
    )
}

async fn create(
    State(st): State<Arc<Mutex<SimState>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let delay = st.lock().unwrap().delay_ms;
    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    let mut s = st.lock().unwrap();
    if !authorized(&headers) {
        s.rejected_auth += 1;
        return error(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON");
    };
    let text = |k: &str, max: usize| {
        v[k].as_str()
            .filter(|t| !t.is_empty() && t.len() <= max)
            .map(str::to_string)
    };
    let (Some(buy_order), Some(session_id), Some(return_url)) = (
        text("buy_order", 26),
        text("session_id", 61),
        text("return_url", 255),
    ) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid value for parameter: buy_order, session_id or return_url",
        );
    };
    let Some(amount) = amount_of(&v["amount"]).filter(|a| *a > 0) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid value for parameter: amount",
        );
    };
    s.create_calls += 1;
    let token = token();
    s.txs.insert(
        token.clone(),
        Tx {
            buy_order,
            session_id,
            amount,
            return_url,
            approved: None,
            commits: 0,
            committed: false,
            refunded: 0,
            reported_amount: None,
        },
    );
    Json(json!({"token": token, "url": "https://webpay3gint.transbank.cl/webpayserver/initTransaction"}))
        .into_response()
}

fn transaction(tx: &Tx) -> Value {
    let (status, code) = match (tx.committed, tx.approved) {
        (true, Some(true)) if tx.refunded >= tx.amount => ("REVERSED", 0),
        (true, Some(true)) => ("AUTHORIZED", 0),
        (true, _) => ("FAILED", -1),
        (false, _) => ("INITIALIZED", -1),
    };
    json!({
        "vci": "TSY",
        "amount": tx.reported_amount.unwrap_or(tx.amount),
        "status": status,
        "buy_order": tx.buy_order,
        "session_id": tx.session_id,
        "card_detail": {"card_number": if tx.approved == Some(false) { "0568" } else { "6623" }},
        "accounting_date": "1123",
        "transaction_date": "2026-11-23T08:00:00.000Z",
        "authorization_code": if code == 0 { "1213" } else { "000000" },
        "payment_type_code": "VN",
        "response_code": code,
        "installments_number": 0
    })
}

async fn commit(
    State(st): State<Arc<Mutex<SimState>>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut s = st.lock().unwrap();
    if !authorized(&headers) {
        s.rejected_auth += 1;
        return error(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let Some(tx) = s.txs.get_mut(&token) else {
        return error(StatusCode::NOT_FOUND, "Transaction not found");
    };
    tx.commits += 1;
    if tx.committed {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Transaction already locked by another process",
        );
    }
    if tx.approved.is_none() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid status '0' for transaction while authorizing",
        );
    }
    tx.committed = true;
    Json(transaction(tx)).into_response()
}

async fn status(
    State(st): State<Arc<Mutex<SimState>>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let s = st.lock().unwrap();
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    match s.txs.get(&token) {
        Some(tx) => Json(transaction(tx)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Transaction not found"),
    }
}

async fn refund(
    State(st): State<Arc<Mutex<SimState>>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut s = st.lock().unwrap();
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let amount = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| amount_of(&v["amount"]));
    if s.refuse_refunds {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Refund not allowed for this transaction",
        );
    }
    let Some(tx) = s.txs.get_mut(&token) else {
        return error(StatusCode::NOT_FOUND, "Transaction not found");
    };
    match amount {
        Some(a)
            if a > 0
                && tx.committed
                && tx.approved == Some(true)
                && a <= tx.amount - tx.refunded =>
        {
            tx.refunded += a;
            Json(json!({"type": "REVERSED"})).into_response()
        }
        _ => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid value for parameter: amount",
        ),
    }
}
