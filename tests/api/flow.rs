//! Flow through the simulator: signed create, the unsigned confirmation verified by getStatus,
//! statuses 1–4, duplicates, forged notifications, amount mismatch, reconciliation, refunds.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::sim_flow::{FlowSim, API_KEY, SECRET};

async fn app_with(sim: &FlowSim, secret: &str) -> TestApp {
    TestApp::spawn_with(&[
        ("FLOW_BASE_URL", sim.base_url.as_str()),
        ("FLOW_API_KEY", API_KEY),
        ("FLOW_SECRET_KEY", secret),
        ("PUBLIC_BASE_URL", "https://tienda.example.cl"),
        ("FRONTEND_BASE_URL", "https://front.example.cl"),
    ])
    .await
}

async fn start(app: &TestApp, token: &str, sku: &str) -> (i64, Resp) {
    checkout_and_start(app, token, sku, 1, None, "flow").await
}

async fn confirmation(app: &TestApp, token: &str) -> Resp {
    app.send(
        app.client
            .post(app.url("/webhooks/payments/flow"))
            .form(&[("token", token)]),
    )
    .await
}

async fn status_of(app: &TestApp, table: &str, id_sql: &str) -> String {
    app.scalar_string(&format!("SELECT status FROM {table} WHERE {id_sql}"))
        .await
        .unwrap()
}

fn token_of(r: &Resp) -> String {
    r.body["providerTxnId"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn paid_through_the_confirmation_once_and_the_browser_return() {
    let sim = FlowSim::start().await;
    let app = app_with(&sim, SECRET).await;
    let (customer, _, _) = app.register("flow-ok@example.cl").await;
    let (order_id, s) = start(&app, &customer, "WW-FEM-1G").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let token = token_of(&s);
    assert_eq!(
        s.body["redirectUrl"],
        format!("https://sandbox.flow.cl/app/web/pay.php?token={token}")
    );
    let p = sim.payment(&token);
    assert_eq!(
        p.url_confirmation,
        "https://tienda.example.cl/webhooks/payments/flow"
    );
    assert_eq!(
        p.url_return,
        "https://tienda.example.cl/webhooks/payments/flow/return"
    );
    assert_eq!(p.email, "flow-ok@example.cl");
    assert_eq!(
        Some(p.commerce_order.clone()),
        app.scalar_string(&format!(
            "SELECT payment_ref FROM orders WHERE id = {order_id}"
        ))
        .await
    );
    // Still pending at Flow: the notification changes nothing.
    let r = confirmation(&app, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["outcome"], "pending");
    assert_eq!(
        status_of(&app, "orders", &format!("id = {order_id}")).await,
        "pending"
    );

    sim.set_status(&token, 2);
    let r = confirmation(&app, &token).await;
    assert_eq!(r.body, json!({"received": true, "outcome": "applied"}));
    assert_eq!(
        status_of(&app, "orders", &format!("id = {order_id}")).await,
        "paid"
    );
    assert_eq!(
        status_of(&app, "payments", &format!("provider_txn_id = '{token}'")).await,
        "paid"
    );
    // Flow notifies again (it retries): a duplicate, no second transition.
    let r = confirmation(&app, &token).await;
    assert_eq!(r.body["outcome"], "duplicate");
    let r = app
        .send(
            app.client
                .post(app.url("/webhooks/payments/flow/return"))
                .form(&[("token", token.as_str())]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location"),
        Some(
            format!("https://front.example.cl/checkout/result?orderId={order_id}&status=paid")
                .as_str()
        )
    );
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {order_id}")).await,
        1
    );
}

#[tokio::test]
async fn rejected_cancelled_forged_and_mismatched_notifications() {
    let sim = FlowSim::start().await;
    let app = app_with(&sim, SECRET).await;
    let (customer, _, _) = app.register("flow-no@example.cl").await;
    for (flow_status, label) in [(3, "rejected"), (4, "cancelled")] {
        let (order_id, s) = start(&app, &customer, "NL-AUTO-1G").await;
        let token = token_of(&s);
        sim.set_status(&token, flow_status);
        let r = confirmation(&app, &token).await;
        assert_eq!(r.body["outcome"], "failed", "{label}: {}", r.text);
        assert_eq!(
            status_of(&app, "orders", &format!("id = {order_id}")).await,
            "failed"
        );
    }
    // A forged notification names a token Flow never issued to us, or one not paid: nothing happens.
    let r = confirmation(&app, "FORGED-TOKEN").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (pending_order, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let token = token_of(&s);
    let r = confirmation(&app, &token).await;
    assert_eq!(r.body["outcome"], "pending");
    assert_eq!(
        status_of(&app, "orders", &format!("id = {pending_order}")).await,
        "pending"
    );
    let r = app
        .send(
            app.client
                .post(app.url("/webhooks/payments/flow"))
                .form(&[("nope", "x")]),
        )
        .await;
    assert!(r.has_detail("token", "required"));
    // Flow says paid, but for another amount: the payment fails and the order is left alone.
    sim.set_status(&token, 2);
    sim.report_amount(&token, 10);
    let r = confirmation(&app, &token).await;
    assert_eq!(r.body["outcome"], "amount_mismatch");
    assert_eq!(
        status_of(&app, "orders", &format!("id = {pending_order}")).await,
        "pending"
    );
    assert_eq!(
        status_of(&app, "payments", &format!("provider_txn_id = '{token}'")).await,
        "failed"
    );
}

#[tokio::test]
async fn lost_confirmation_reconciled_then_refunded_on_cancellation() {
    use dispensary::services::payments::reconcile::{self, Scope};
    let sim = FlowSim::start().await;
    let app = app_with(&sim, SECRET).await;
    let (customer, _, _) = app.register("flow-lost@example.cl").await;
    let (order_id, s) = start(&app, &customer, "WW-FEM-1G").await;
    let token = token_of(&s);
    sim.set_status(&token, 2);
    app.clock.advance(chrono::Duration::minutes(6));
    let r = reconcile::run(
        &app.state,
        &Scope {
            provider: Some("flow".into()),
            ..Scope::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((r.checked, r.paid, r.errors), (1, 1, 0), "{r:?}");
    assert_eq!(
        status_of(&app, "orders", &format!("id = {order_id}")).await,
        "paid"
    );
    // The late confirmation is a duplicate.
    assert_eq!(
        confirmation(&app, &token).await.body["outcome"],
        "duplicate"
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
    assert_eq!(
        status_of(&app, "payments", &format!("provider_txn_id = '{token}'")).await,
        "refunded"
    );
    let refunds = sim.state.lock().unwrap().refunds.clone();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["receiverEmail"], "flow-lost@example.cl");
    assert_eq!(refunds[0]["amount"], sim.payment(&token).amount.to_string());
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_flow() {
    let sim = FlowSim::start().await;
    let app = app_with(&sim, "not-the-secret").await;
    let (customer, _, _) = app.register("flow-keys@example.cl").await;
    let (order_id, s) = start(&app, &customer, "NL-AUTO-1G").await;
    assert_eq!(s.status, StatusCode::BAD_GATEWAY, "{}", s.text);
    assert_eq!(s.error_code(), "provider_error");
    assert_eq!(sim.state.lock().unwrap().rejected_signatures, 1);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM payments WHERE order_id = {order_id}"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn a_slow_get_status_is_retried_by_the_provider_and_reconciliation() {
    use dispensary::services::payments::reconcile::{self, Scope};
    let sim = FlowSim::start().await;
    let app = TestApp::spawn_with(&[
        ("FLOW_BASE_URL", sim.base_url.as_str()),
        ("FLOW_API_KEY", API_KEY),
        ("FLOW_SECRET_KEY", SECRET),
        ("PROVIDER_TIMEOUT_SECONDS", "1"),
    ])
    .await;
    let (customer, _, _) = app.register("flow-slow@example.cl").await;
    let (order_id, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let token = token_of(&s);
    sim.set_status(&token, 2);
    sim.state.lock().unwrap().delay_ms = 1500;
    // Flow's notification cannot be verified in time: 502, so Flow retries it; nothing applied.
    let r = confirmation(&app, &token).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(
        status_of(&app, "orders", &format!("id = {order_id}")).await,
        "pending"
    );
    assert!(
        sim.state.lock().unwrap().status_calls >= 3,
        "getStatus is retried"
    );
    // Later, reconciliation settles it.
    sim.state.lock().unwrap().delay_ms = 0;
    app.clock.advance(chrono::Duration::minutes(6));
    let r = reconcile::run(&app.state, &Scope::default()).await.unwrap();
    assert_eq!(r.paid, 1, "{r:?}");
    assert_eq!(
        status_of(&app, "orders", &format!("id = {order_id}")).await,
        "paid"
    );
}
