//! Mercado Pago through the simulator: preference, signed notifications (forged, stale,
//! duplicate), the payment lookup deciding, amount mismatch, reconciliation, refund.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::sim_mp::{MpSim, ACCESS_TOKEN, WEBHOOK_SECRET};
use dispensary::services::payments::mp::{manifest, sign};

async fn app_with(sim: &MpSim, token: &str) -> TestApp {
    TestApp::spawn_with(&[
        ("MP_BASE_URL", sim.base_url.as_str()),
        ("MP_ACCESS_TOKEN", token),
        ("MP_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("PUBLIC_BASE_URL", "https://tienda.example.cl"),
        ("FRONTEND_BASE_URL", "https://front.example.cl"),
    ])
    .await
}

async fn start(app: &TestApp, token: &str, sku: &str) -> (i64, Resp) {
    checkout_and_start(app, token, sku, 1, None, "mp").await
}

/// A notification as Mercado Pago sends it, signed with `secret` at `ts`.
async fn notify(app: &TestApp, payment_id: i64, secret: &str, ts: i64) -> Resp {
    let request_id = uuid::Uuid::new_v4().to_string();
    let data_id = payment_id.to_string();
    let v1 = sign(
        secret,
        &manifest(Some(&data_id), Some(&request_id), Some(&ts.to_string())),
    );
    app.send(
        app.client
            .post(app.url(&format!("/webhooks/payments/mp?data.id={data_id}&type=payment")))
            .header("x-signature", format!("ts={ts},v1={v1}"))
            .header("x-request-id", request_id)
            .json(&json!({"id": 12345, "live_mode": false, "type": "payment", "date_created": "2026-11-23T08:00:00Z",
                "user_id": 44444, "api_version": "v1", "action": "payment.created", "data": {"id": data_id}})),
    )
    .await
}

async fn status_of(app: &TestApp, table: &str, id: i64) -> String {
    app.scalar_string(&format!("SELECT status FROM {table} WHERE id = {id}"))
        .await
        .unwrap()
}

async fn payment_row(app: &TestApp, order_id: i64) -> i64 {
    app.scalar_i64(&format!("SELECT id FROM payments WHERE order_id = {order_id} AND provider = 'mp' ORDER BY id DESC LIMIT 1"))
        .await
}

#[tokio::test]
async fn approved_through_a_signed_notification_once() {
    let sim = MpSim::start().await;
    let app = app_with(&sim, ACCESS_TOKEN).await;
    let (customer, _, _) = app.register("mp-ok@example.cl").await;
    let (order_id, s) = start(&app, &customer, "WW-FEM-1G").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let pref_id = s.body["providerTxnId"].as_str().unwrap().to_string();
    assert_eq!(
        s.body["redirectUrl"],
        format!("https://www.mercadopago.cl/checkout/v1/redirect?pref_id={pref_id}")
    );
    let pref = sim.preference(&pref_id);
    let total = app
        .scalar_i64(&format!(
            "SELECT total_cents FROM orders WHERE id = {order_id}"
        ))
        .await;
    assert_eq!(pref["items"][0]["unit_price"], total);
    assert_eq!(pref["items"][0]["currency_id"], "CLP");
    assert_eq!(
        pref["notification_url"],
        "https://tienda.example.cl/webhooks/payments/mp?source_news=webhooks"
    );
    assert_eq!(
        Some(pref["external_reference"].as_str().unwrap().to_string()),
        app.scalar_string(&format!(
            "SELECT payment_ref FROM orders WHERE id = {order_id}"
        ))
        .await
    );

    let mp_id = sim.pay(&pref_id, "approved");
    let now = app.clock.now().timestamp();
    let r = notify(&app, mp_id, WEBHOOK_SECRET, now).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"received": true, "outcome": "applied"}));
    assert_eq!(status_of(&app, "orders", order_id).await, "paid");
    let pid = payment_row(&app, order_id).await;
    assert_eq!(status_of(&app, "payments", pid).await, "paid");
    // Mercado Pago retries: a duplicate, nothing applied twice.
    let r = notify(&app, mp_id, WEBHOOK_SECRET, now).await;
    assert_eq!(r.body["outcome"], "duplicate");
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {order_id}")).await,
        1
    );
    // Millisecond timestamps are accepted too.
    let r = notify(&app, mp_id, WEBHOOK_SECRET, now * 1000).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn forged_stale_rejected_pending_and_mismatched_notifications() {
    let sim = MpSim::start().await;
    let app = app_with(&sim, ACCESS_TOKEN).await;
    let (customer, _, _) = app.register("mp-no@example.cl").await;
    let now = app.clock.now().timestamp();
    let (order_id, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let pref_id = s.body["providerTxnId"].as_str().unwrap().to_string();
    let mp_id = sim.pay(&pref_id, "approved");
    // Forged (wrong secret) and stale notifications: 401 in the error model, nothing applied.
    let r = notify(&app, mp_id, "someone-elses-secret", now).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.error_code(), "unauthorized");
    let r = notify(&app, mp_id, WEBHOOK_SECRET, now - 600).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .send(
            app.client
                .post(app.url(&format!(
                    "/webhooks/payments/mp?data.id={mp_id}&type=payment"
                )))
                .json(&json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "unsigned");
    assert_eq!(status_of(&app, "orders", order_id).await, "pending");
    assert!(
        app.metric(
            "payment_webhooks_total",
            "outcome=\"rejected_signature\",provider=\"mp\""
        )
        .await
            >= 3.0
    );

    // Pending at Mercado Pago: nothing changes. Rejected: failed.
    sim.set_payment(mp_id, "in_process", None);
    assert_eq!(
        notify(&app, mp_id, WEBHOOK_SECRET, now).await.body["outcome"],
        "pending"
    );
    sim.set_payment(mp_id, "rejected", None);
    assert_eq!(
        notify(&app, mp_id, WEBHOOK_SECRET, now).await.body["outcome"],
        "failed"
    );
    assert_eq!(status_of(&app, "orders", order_id).await, "failed");
    // The buyer cancels at Mercado Pago: failed as well.
    let (cancelled, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let cancelled_mp = sim.pay(s.body["providerTxnId"].as_str().unwrap(), "cancelled");
    assert_eq!(
        notify(&app, cancelled_mp, WEBHOOK_SECRET, now).await.body["outcome"],
        "failed"
    );
    assert_eq!(status_of(&app, "orders", cancelled).await, "failed");

    // Approved for another amount: the payment fails, the order stays as it was.
    let (second, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let pref_id = s.body["providerTxnId"].as_str().unwrap().to_string();
    let mp_id = sim.pay(&pref_id, "approved");
    sim.set_payment(mp_id, "approved", Some(1.0));
    assert_eq!(
        notify(&app, mp_id, WEBHOOK_SECRET, now).await.body["outcome"],
        "amount_mismatch"
    );
    assert_eq!(status_of(&app, "orders", second).await, "pending");
    // A notification for a payment Mercado Pago does not know.
    let r = notify(&app, 42, WEBHOOK_SECRET, now).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
}

#[tokio::test]
async fn lost_notification_reconciled_then_refunded_and_spa_confirm() {
    use dispensary::services::payments::reconcile::{self, Scope};
    let sim = MpSim::start().await;
    let app = app_with(&sim, ACCESS_TOKEN).await;
    let (customer, _, _) = app.register("mp-lost@example.cl").await;
    let (order_id, s) = start(&app, &customer, "WW-FEM-1G").await;
    let pref_id = s.body["providerTxnId"].as_str().unwrap().to_string();
    let mp_id = sim.pay(&pref_id, "approved");
    app.clock.advance(chrono::Duration::minutes(6));
    let r = reconcile::run(
        &app.state,
        &Scope {
            provider: Some("mp".into()),
            ..Scope::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((r.checked, r.paid, r.errors), (1, 1, 0), "{r:?}");
    assert_eq!(status_of(&app, "orders", order_id).await, "paid");
    let pid = payment_row(&app, order_id).await;
    assert_eq!(
        app.scalar_string(&format!("SELECT auth_code FROM payments WHERE id = {pid}"))
            .await
            .unwrap(),
        mp_id.to_string()
    );

    let admin = app.admin_token().await;
    let r = app
        .patch(
            &format!("/api/admin/orders/{order_id}"),
            Some(&admin),
            json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(status_of(&app, "payments", pid).await, "refunded");
    assert!(sim.payment(mp_id).refunded);

    // SPA: the browser's payment_id is only a hint; the lookup decides.
    let token = app.login("mp-lost@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let (second, s) = start(&app, &token, "WW-FEM-1G").await;
    let pref_id = s.body["providerTxnId"].as_str().unwrap().to_string();
    let other_order_payment = mp_id;
    let r = app
        .post(
            "/api/payments/confirm",
            Some(&token),
            json!({"orderId": second, "provider": "mp", "token": other_order_payment.to_string()}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another order's payment: {}",
        r.text
    );
    let mp2 = sim.pay(&pref_id, "approved");
    let r = app
        .post(
            "/api/payments/confirm",
            Some(&token),
            json!({"orderId": second, "provider": "mp", "token": mp2.to_string()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "paid");
    assert_eq!(status_of(&app, "orders", second).await, "paid");
}

#[tokio::test]
async fn a_wrong_access_token_is_refused() {
    let sim = MpSim::start().await;
    let app = app_with(&sim, "APP_USR-wrong").await;
    let (customer, _, _) = app.register("mp-keys@example.cl").await;
    let (order_id, s) = start(&app, &customer, "NL-AUTO-1G").await;
    assert_eq!(s.status, StatusCode::BAD_GATEWAY, "{}", s.text);
    assert!(!s.text.contains("APP_USR-wrong"));
    assert_eq!(sim.state.lock().unwrap().rejected_auth, 1);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM payments WHERE order_id = {order_id}"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn notifications_only_from_allowed_networks_and_forwarded_only_via_trusted_proxies() {
    let sim = MpSim::start().await;
    let base = [
        ("MP_BASE_URL", sim.base_url.as_str()),
        ("MP_ACCESS_TOKEN", ACCESS_TOKEN),
        ("MP_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("MP_WEBHOOK_ALLOWED_IPS", "203.0.113.0/24"),
    ];
    // Direct from 127.0.0.1: refused, even claiming an allowed address without a trusted proxy.
    let app = TestApp::spawn_with(&base).await;
    let (customer, _, _) = app.register("mp-ip@example.cl").await;
    let (_, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let mp_id = sim.pay(s.body["providerTxnId"].as_str().unwrap(), "approved");
    let r = notify(&app, mp_id, WEBHOOK_SECRET, app.clock.now().timestamp()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error_code(), "forbidden");
    assert!(
        app.metric(
            "payment_webhooks_total",
            "outcome=\"rejected_origin\",provider=\"mp\""
        )
        .await
            >= 1.0
    );
    let spoofed = notify_from(&app, mp_id, "203.0.113.7").await;
    assert_eq!(
        spoofed.status,
        StatusCode::FORBIDDEN,
        "X-Forwarded-For is not trusted here"
    );

    // Behind a trusted proxy the forwarded address counts.
    let mut vars = base.to_vec();
    vars.push(("TRUSTED_PROXIES", "127.0.0.1"));
    let app = TestApp::spawn_with(&vars).await;
    let (customer, _, _) = app.register("mp-ip2@example.cl").await;
    let (order_id, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let mp_id = sim.pay(s.body["providerTxnId"].as_str().unwrap(), "approved");
    let r = notify_from(&app, mp_id, "203.0.113.7").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(status_of(&app, "orders", order_id).await, "paid");
    let r = notify_from(&app, mp_id, "198.51.100.9").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// A signed notification relayed by a proxy for `client`.
async fn notify_from(app: &TestApp, payment_id: i64, client: &str) -> Resp {
    let request_id = uuid::Uuid::new_v4().to_string();
    let data_id = payment_id.to_string();
    let ts = app.clock.now().timestamp();
    let v1 = sign(
        WEBHOOK_SECRET,
        &manifest(Some(&data_id), Some(&request_id), Some(&ts.to_string())),
    );
    app.send(
        app.client
            .post(app.url(&format!(
                "/webhooks/payments/mp?data.id={data_id}&type=payment"
            )))
            .header("x-signature", format!("ts={ts},v1={v1}"))
            .header("x-request-id", request_id)
            .header("x-forwarded-for", client)
            .json(&json!({"type": "payment", "data": {"id": data_id}})),
    )
    .await
}

#[tokio::test]
async fn a_mercado_pago_that_does_not_answer_in_time_starts_nothing() {
    let sim = MpSim::start().await;
    let app = TestApp::spawn_with(&[
        ("MP_BASE_URL", sim.base_url.as_str()),
        ("MP_ACCESS_TOKEN", ACCESS_TOKEN),
        ("MP_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("PROVIDER_TIMEOUT_SECONDS", "1"),
    ])
    .await;
    let (customer, _, _) = app.register("mp-slow@example.cl").await;
    sim.state.lock().unwrap().delay_ms = 2500;
    let (order_id, s) = start(&app, &customer, "NL-AUTO-1G").await;
    assert_eq!(s.status, StatusCode::BAD_GATEWAY, "{}", s.text);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM payments WHERE order_id = {order_id}"
        ))
        .await,
        0
    );
    // Once Mercado Pago answers, the same order starts normally.
    sim.state.lock().unwrap().delay_ms = 0;
    let s = app
        .post(
            "/api/payments/start",
            Some(&customer),
            json!({"orderId": order_id, "provider": "mp"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
}
