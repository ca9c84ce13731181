//! An in-process Flow simulator (providers.md §2): signed form requests (it recomputes `s` and
//! refuses a wrong key or signature), `payment/create`, `payment/getStatus`, `refund/create`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub const API_KEY: &str = "1F90971E-8276-4715-97FF-2BLG5030EE3B";
pub const SECRET: &str = "3a6a2f7c1b0e4d5f8a9b0c1d2e3f4a5b6c7d8e9f";

#[derive(Debug, Clone)]
pub struct Payment {
    pub commerce_order: String,
    pub amount: i64,
    pub email: String,
    pub url_confirmation: String,
    pub url_return: String,
    pub flow_order: i64,
    /// 1 pending, 2 paid, 3 rejected, 4 cancelled.
    pub status: i64,
    pub reported_amount: Option<i64>,
}

#[derive(Default)]
pub struct SimState {
    pub payments: HashMap<String, Payment>,
    pub status_calls: u32,
    pub rejected_signatures: u32,
    pub refunds: Vec<BTreeMap<String, String>>,
    /// Delays getStatus answers (a slow provider: the client's timeout fires).
    pub delay_ms: u64,
}

#[derive(Clone)]
pub struct FlowSim {
    pub base_url: String,
    pub state: Arc<Mutex<SimState>>,
}

impl FlowSim {
    pub async fn start() -> FlowSim {
        let state = Arc::new(Mutex::new(SimState::default()));
        let router = Router::new()
            .route("/payment/create", post(create))
            .route("/payment/getStatus", get(status))
            .route("/refund/create", post(refund))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FlowSim {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    pub fn set_status(&self, token: &str, status: i64) {
        self.state
            .lock()
            .unwrap()
            .payments
            .get_mut(token)
            .expect("token")
            .status = status;
    }

    pub fn report_amount(&self, token: &str, amount: i64) {
        self.state
            .lock()
            .unwrap()
            .payments
            .get_mut(token)
            .expect("token")
            .reported_amount = Some(amount);
    }

    pub fn payment(&self, token: &str) -> Payment {
        self.state
            .lock()
            .unwrap()
            .payments
            .get(token)
            .expect("token")
            .clone()
    }
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

/// Checks `apiKey` and `s` the way Flow does.
fn verify(params: &BTreeMap<String, String>) -> Result<(), (i64, &'static str)> {
    if params.get("apiKey").map(String::as_str) != Some(API_KEY) {
        return Err((105, "Invalid apiKey"));
    }
    let expected = dispensary::services::payments::flow::sign(SECRET, params);
    if params.get("s") != Some(&expected) {
        return Err((108, "Invalid signature"));
    }
    Ok(())
}

fn parse(raw: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

async fn create(State(st): State<Arc<Mutex<SimState>>>, body: String) -> Response {
    let params = parse(&body);
    let mut s = st.lock().unwrap();
    if let Err((code, message)) = verify(&params) {
        s.rejected_signatures += 1;
        return error(StatusCode::UNAUTHORIZED, code, message);
    }
    let get = |k: &str| params.get(k).filter(|v| !v.is_empty()).cloned();
    let (
        Some(commerce_order),
        Some(_subject),
        Some(email),
        Some(url_confirmation),
        Some(url_return),
    ) = (
        get("commerceOrder"),
        get("subject"),
        get("email"),
        get("urlConfirmation"),
        get("urlReturn"),
    )
    else {
        return error(StatusCode::BAD_REQUEST, 1620, "Missing required parameter");
    };
    let Some(amount) = get("amount")
        .and_then(|a| a.parse::<i64>().ok())
        .filter(|a| *a > 0)
    else {
        return error(StatusCode::BAD_REQUEST, 1605, "Invalid amount");
    };
    let token = format!("FT{}", uuid::Uuid::new_v4().simple()).to_uppercase();
    let flow_order = 8_765_000 + s.payments.len() as i64;
    s.payments.insert(
        token.clone(),
        Payment {
            commerce_order,
            amount,
            email,
            url_confirmation,
            url_return,
            flow_order,
            status: 1,
            reported_amount: None,
        },
    );
    Json(json!({"url": "https://sandbox.flow.cl/app/web/pay.php", "token": token, "flowOrder": flow_order}))
        .into_response()
}

async fn status(State(st): State<Arc<Mutex<SimState>>>, RawQuery(q): RawQuery) -> Response {
    let delay = {
        let mut s = st.lock().unwrap();
        s.status_calls += 1;
        s.delay_ms
    };
    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    let params = parse(&q.unwrap_or_default());
    let mut s = st.lock().unwrap();
    if let Err((code, message)) = verify(&params) {
        s.rejected_signatures += 1;
        return error(StatusCode::UNAUTHORIZED, code, message);
    }
    let Some(p) = params.get("token").and_then(|t| s.payments.get(t)) else {
        return error(StatusCode::BAD_REQUEST, 105, "Invalid token");
    };
    Json(json!({
        "flowOrder": p.flow_order,
        "commerceOrder": p.commerce_order,
        "requestDate": "2026-11-23 08:00:00",
        "status": p.status,
        "subject": "Pedido",
        "currency": "CLP",
        "amount": p.reported_amount.unwrap_or(p.amount),
        "payer": p.email,
        "paymentData": {"date": "2026-11-23 08:01:00", "media": "Webpay", "amount": p.amount, "fee": 0}
    }))
    .into_response()
}

async fn refund(State(st): State<Arc<Mutex<SimState>>>, body: String) -> Response {
    let params = parse(&body);
    let mut s = st.lock().unwrap();
    if let Err((code, message)) = verify(&params) {
        s.rejected_signatures += 1;
        return error(StatusCode::UNAUTHORIZED, code, message);
    }
    let amount = params.get("amount").and_then(|a| a.parse::<i64>().ok());
    if amount.is_none_or(|a| a <= 0) || !params.contains_key("receiverEmail") {
        return error(StatusCode::BAD_REQUEST, 1605, "Invalid amount");
    }
    s.refunds.push(params.clone());
    Json(json!({"token": "RF1", "flowRefundOrder": 1, "date": "2026-11-23 09:00:00", "status": "created", "amount": amount, "fee": 0}))
        .into_response()
}
