//! The payment core with the test provider: start, confirm, signed webhooks, exactly-once paid.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cart::variant_id;
use crate::helpers::*;

const SECRET: &str = "dev-test-payment-secret";

async fn order_and_start(
    app: &TestApp,
    token: &str,
    sku: &str,
    quantity: i64,
    coupon: Option<&str>,
) -> (i64, Value) {
    let vid = variant_id(app, sku).await;
    let mut body = json!({"items": [{"variantId": vid, "quantity": quantity}], "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}, "shippingMethod": "starken"});
    if let Some(c) = coupon {
        body["couponCode"] = json!(c);
    }
    let o = app.post("/api/checkout/confirm", Some(token), body).await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    let id = o.body["id"].as_i64().unwrap();
    let s = app
        .post(
            "/api/payments/start",
            Some(token),
            json!({"orderId": id, "provider": "test"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    (id, s.body)
}

fn event(app: &TestApp, event_id: &str, txn: &str, status: &str, amount: i64) -> String {
    json!({"eventId": event_id, "providerTxnId": txn, "status": status, "amountCents": amount, "timestamp": app.clock.now().timestamp()}).to_string()
}

async fn webhook(app: &TestApp, body: &str, signature: Option<String>) -> Resp {
    let mut req = app
        .client
        .post(app.url("/webhooks/payments/test"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = signature {
        req = req.header("X-Test-Signature", s);
    }
    app.send(req).await
}

fn sign(body: &str) -> String {
    dispensary::services::payments::test_provider::sign(SECRET, body.as_bytes())
}

async fn stock_of(app: &TestApp, sku: &str) -> i64 {
    app.scalar_i64(&format!(
        "SELECT CAST(stock AS BIGINT) FROM product_variants WHERE sku = '{sku}'"
    ))
    .await
}

#[tokio::test]
async fn full_flow_cart_to_paid_decrements_stock_and_counts_the_coupon() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.post(
        "/api/coupons",
        Some(&admin),
        json!({"code": "PAGO10", "type": "percent", "value": 10}),
    )
    .await;
    let (token, _, _) = app.register("paga@example.cl").await;
    let before = stock_of(&app, "NL-AUTO-5G").await;
    let (order_id, start) = order_and_start(&app, &token, "NL-AUTO-5G", 2, Some("PAGO10")).await;
    assert_eq!(start["provider"], "test");
    let reference = start["paymentRef"].as_str().unwrap();
    assert!(
        reference.starts_with(&format!("ORD-{order_id}-")) && reference.len() <= 26,
        "{reference}"
    );
    assert!(start["redirectUrl"]
        .as_str()
        .unwrap()
        .ends_with(&format!("orderId={order_id}")));
    let total = app
        .get(&format!("/api/orders/{order_id}"), Some(&token))
        .await
        .body["totalCents"]
        .as_i64()
        .unwrap();
    let body = event(
        &app,
        "evt-1",
        start["providerTxnId"].as_str().unwrap(),
        "paid",
        total,
    );
    let r = webhook(&app, &body, Some(sign(&body))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["outcome"], "applied");
    let o = app
        .get(&format!("/api/orders/{order_id}"), Some(&token))
        .await;
    assert_eq!(o.body["status"], "paid");
    assert_eq!(o.body["paymentRef"], reference);
    assert_eq!(stock_of(&app, "NL-AUTO-5G").await, before - 2);
    assert_eq!(app.scalar_i64(&format!("SELECT COUNT(*) FROM stock_reservations WHERE order_id = {order_id} AND state = 'consumed'")).await, 1);
    assert_eq!(
        app.scalar_i64("SELECT CAST(used_count AS BIGINT) FROM coupons WHERE code = 'PAGO10'")
            .await,
        1
    );
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT status FROM payments WHERE order_id = {order_id}"
        ))
        .await
        .unwrap(),
        "paid"
    );
    assert_eq!(
        app.metric("payment_webhooks_total", "outcome=\"applied\"")
            .await,
        1.0
    );
    // A confirm after the webhook is a no-op reporting the stored outcome.
    let c = app
        .post(
            "/api/payments/confirm",
            Some(&token),
            json!({"orderId": order_id, "provider": "test", "params": {"mock": "paid"}}),
        )
        .await;
    assert_eq!(c.body["status"], "paid", "{}", c.text);
    assert_eq!(stock_of(&app, "NL-AUTO-5G").await, before - 2);
    // Paying a paid order again is refused.
    let again = app
        .post(
            "/api/payments/start",
            Some(&token),
            json!({"orderId": order_id, "provider": "test"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
}

#[tokio::test]
async fn confirm_with_the_test_provider() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("confirma@example.cl").await;
    let (paid, _) = order_and_start(&app, &token, "WW-FEM-1G", 1, None).await;
    let r = app
        .post(
            "/api/payments/confirm",
            Some(&token),
            json!({"orderId": paid, "provider": "test", "params": {"mock": "paid"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "paid");
    assert!(r.body["authCode"].as_str().unwrap().starts_with("TEST-"));
    let (declined, _) = order_and_start(&app, &token, "WW-FEM-1G", 1, None).await;
    let r = app
        .post(
            "/api/payments/confirm",
            Some(&token),
            json!({"orderId": declined, "provider": "test", "params": {"mock": "nope"}}),
        )
        .await;
    assert_eq!(r.body["status"], "failed", "{}", r.text);
    assert_eq!(
        app.get(&format!("/api/orders/{declined}"), Some(&token))
            .await
            .body["status"],
        "failed"
    );
    // A failed order can be paid again while its stock can be reserved again.
    let s = app
        .post(
            "/api/payments/start",
            Some(&token),
            json!({"orderId": declined, "provider": "test"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert_eq!(
        app.get(&format!("/api/orders/{declined}"), Some(&token))
            .await
            .body["status"],
        "pending"
    );
    // Someone else's order, unknown providers.
    let (other, _, _) = app.register("ajeno2@example.cl").await;
    assert_eq!(
        app.post(
            "/api/payments/start",
            Some(&other),
            json!({"orderId": paid, "provider": "test"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .post(
            "/api/payments/start",
            Some(&token),
            json!({"orderId": declined, "provider": "webpay"}),
        )
        .await;
    assert!(
        r.has_detail("provider", "provider_unavailable"),
        "{}",
        r.text
    );
    let r = app
        .post(
            "/api/payments/start",
            Some(&token),
            json!({"orderId": declined, "provider": "paypal"}),
        )
        .await;
    assert!(r.has_detail("provider", "invalid_value"), "{}", r.text);
}

#[tokio::test]
async fn the_same_event_fifty_times_at_once_pays_once() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("cincuenta@example.cl").await;
    let before = stock_of(&app, "NL-AUTO-1G").await;
    let (order_id, start) = order_and_start(&app, &token, "NL-AUTO-1G", 3, None).await;
    let total = app
        .get(&format!("/api/orders/{order_id}"), Some(&token))
        .await
        .body["totalCents"]
        .as_i64()
        .unwrap();
    let body = event(
        &app,
        "evt-dup",
        start["providerTxnId"].as_str().unwrap(),
        "paid",
        total,
    );
    let sig = sign(&body);
    let deliveries = (0..50).map(|_| {
        let body = body.clone();
        let sig = sig.clone();
        let app = &app;
        async move {
            let t = std::time::Instant::now();
            let r = webhook(app, &body, Some(sig)).await;
            (r, t.elapsed())
        }
    });
    let results = futures::future::join_all(deliveries).await;
    assert!(
        results.iter().all(|(r, _)| r.status == StatusCode::OK),
        "{:?}",
        results
            .iter()
            .map(|(r, _)| r.text.clone())
            .collect::<Vec<_>>()
    );
    let applied = results
        .iter()
        .filter(|(r, _)| r.body["outcome"] == "applied")
        .count();
    assert_eq!(applied, 1);
    let after = stock_of(&app, "NL-AUTO-1G").await;
    assert_eq!(after, before - 3, "one decrement");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM payment_events").await,
        1
    );
    assert_eq!(app.scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {order_id}")).await, 1);
    let mut lat: Vec<_> = results.iter().map(|(_, d)| *d).collect();
    lat.sort();
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok() {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "50 duplicate deliveries [{backend}]: paid transitions 1, stock {} -> {}, latency p50 {:?}, p99 {:?}",
        before,
        after,
        lat[25],
        lat[49]
    );
}

#[tokio::test]
async fn a_webhook_racing_a_confirm_applies_once() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("carrera@example.cl").await;
    let before = stock_of(&app, "WW-FEM-5G").await;
    let (order_id, start) = order_and_start(&app, &token, "WW-FEM-5G", 1, None).await;
    let total = app
        .get(&format!("/api/orders/{order_id}"), Some(&token))
        .await
        .body["totalCents"]
        .as_i64()
        .unwrap();
    let body = event(
        &app,
        "evt-race",
        start["providerTxnId"].as_str().unwrap(),
        "paid",
        total,
    );
    let (w, c) = tokio::join!(
        webhook(&app, &body, Some(sign(&body))),
        app.post(
            "/api/payments/confirm",
            Some(&token),
            json!({"orderId": order_id, "provider": "test", "params": {"mock": "paid"}})
        )
    );
    assert_eq!(w.status, StatusCode::OK, "{}", w.text);
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(stock_of(&app, "WW-FEM-5G").await, before - 1);
    assert_eq!(
        app.scalar_string(&format!("SELECT status FROM orders WHERE id = {order_id}"))
            .await
            .unwrap(),
        "paid"
    );
}

#[tokio::test]
async fn forged_stale_unknown_and_wrong_amount_webhooks() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("fraude@example.cl").await;
    let before = stock_of(&app, "NL-AUTO-10G").await;
    let (order_id, start) = order_and_start(&app, &token, "NL-AUTO-10G", 1, None).await;
    let txn = start["providerTxnId"].as_str().unwrap();
    let total = app
        .get(&format!("/api/orders/{order_id}"), Some(&token))
        .await
        .body["totalCents"]
        .as_i64()
        .unwrap();
    // Forged and missing signatures: 401 in the error model, nothing recorded.
    let body = event(&app, "evt-forged", txn, "paid", total);
    let r = webhook(
        &app,
        &body,
        Some(dispensary::services::payments::test_provider::sign(
            "wrong-secret",
            body.as_bytes(),
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.error_code(), "unauthorized");
    assert_eq!(
        webhook(&app, &body, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.metric("payment_webhooks_total", "outcome=\"rejected_signature\"")
            .await,
        2.0
    );
    // Stale timestamp.
    let stale = json!({"eventId": "evt-stale", "providerTxnId": txn, "status": "paid", "amountCents": total, "timestamp": app.clock.now().timestamp() - 600}).to_string();
    assert_eq!(
        webhook(&app, &stale, Some(sign(&stale))).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Unknown payment.
    let unknown = event(&app, "evt-unknown", "no-such-txn", "paid", total);
    assert_eq!(
        webhook(&app, &unknown, Some(sign(&unknown))).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.scalar_string(&format!("SELECT status FROM orders WHERE id = {order_id}"))
            .await
            .unwrap(),
        "pending"
    );
    // Wrong amount: the payment fails, the order and stock are untouched, an alert is logged.
    let wrong = event(&app, "evt-wrong", txn, "paid", total - 1);
    let r = webhook(&app, &wrong, Some(sign(&wrong))).await;
    assert_eq!(r.body["outcome"], "amount_mismatch", "{}", r.text);
    assert_eq!(
        app.scalar_string(&format!("SELECT status FROM orders WHERE id = {order_id}"))
            .await
            .unwrap(),
        "pending"
    );
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT status FROM payments WHERE order_id = {order_id}"
        ))
        .await
        .unwrap(),
        "failed"
    );
    assert_eq!(stock_of(&app, "NL-AUTO-10G").await, before);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'payment.amount_mismatch'")
            .await,
        1
    );
}

#[tokio::test]
async fn late_payments_after_expiry_with_and_without_stock() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("tardio@example.cl").await;
    let vid = variant_id(&app, "WW-FEM-10G").await;
    app.patch(
        &format!("/api/variants/{vid}"),
        Some(&admin),
        json!({"stock": 2}),
    )
    .await;
    let (with_stock, s1) = order_and_start(&app, &token, "WW-FEM-10G", 1, None).await;
    let (without_stock, s2) = order_and_start(&app, &token, "WW-FEM-10G", 1, None).await;
    app.clock.advance(Duration::seconds(1801));
    dispensary::services::orders::sweep_expired(&app.state)
        .await
        .unwrap();
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT status FROM orders WHERE id = {with_stock}"
        ))
        .await
        .unwrap(),
        "failed"
    );
    // Another buyer takes one of the two units for real.
    let (buyer, _, _) = app.register("rapido@example.cl").await;
    let (bought, s3) = order_and_start(&app, &buyer, "WW-FEM-10G", 1, None).await;
    let total = |id: i64| {
        let app = &app;
        async move {
            app.scalar_i64(&format!("SELECT total_cents FROM orders WHERE id = {id}"))
                .await
        }
    };
    let body = event(
        &app,
        "evt-b",
        s3["providerTxnId"].as_str().unwrap(),
        "paid",
        total(bought).await,
    );
    assert_eq!(
        webhook(&app, &body, Some(sign(&body))).await.body["outcome"],
        "applied"
    );
    // The first late payment still finds a unit: paid.
    let body = event(
        &app,
        "evt-late-1",
        s1["providerTxnId"].as_str().unwrap(),
        "paid",
        total(with_stock).await,
    );
    let r = webhook(&app, &body, Some(sign(&body))).await;
    assert_eq!(r.body["outcome"], "applied", "{}", r.text);
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT status FROM orders WHERE id = {with_stock}"
        ))
        .await
        .unwrap(),
        "paid"
    );
    // The second finds none: the order stays failed and the payment needs a refund.
    let body = event(
        &app,
        "evt-late-2",
        s2["providerTxnId"].as_str().unwrap(),
        "paid",
        total(without_stock).await,
    );
    let r = webhook(&app, &body, Some(sign(&body))).await;
    assert_eq!(r.body["outcome"], "refund_required", "{}", r.text);
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT status FROM orders WHERE id = {without_stock}"
        ))
        .await
        .unwrap(),
        "failed"
    );
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT status FROM payments WHERE order_id = {without_stock}"
        ))
        .await
        .unwrap(),
        "refund_required"
    );
    assert_eq!(stock_of(&app, "WW-FEM-10G").await, 0, "never below zero");
    assert_eq!(app.metric("payments_refund_required_total", "").await, 1.0);
}

#[tokio::test]
async fn payment_for_a_cancelled_order_needs_a_refund() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("cancelado@example.cl").await;
    let before = stock_of(&app, "NL-AUTO-1G").await;
    let (order_id, start) = order_and_start(&app, &token, "NL-AUTO-1G", 1, None).await;
    let total = app
        .get(&format!("/api/orders/{order_id}"), Some(&token))
        .await
        .body["totalCents"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.post(
            &format!("/api/orders/{order_id}/cancel"),
            Some(&token),
            json!({})
        )
        .await
        .status,
        StatusCode::OK
    );
    let body = event(
        &app,
        "evt-cancelled",
        start["providerTxnId"].as_str().unwrap(),
        "paid",
        total,
    );
    let r = webhook(&app, &body, Some(sign(&body))).await;
    assert_eq!(r.body["outcome"], "refund_required", "{}", r.text);
    assert_eq!(
        app.scalar_string(&format!("SELECT status FROM orders WHERE id = {order_id}"))
            .await
            .unwrap(),
        "cancelled"
    );
    assert_eq!(stock_of(&app, "NL-AUTO-1G").await, before);
}

#[tokio::test]
async fn paid_orders_ship_deliver_or_get_cancelled_with_a_refund_flag() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("envio2@example.cl").await;
    let before = stock_of(&app, "WW-FEM-1G").await;
    let mut paid = Vec::new();
    for _ in 0..2 {
        let (id, _) = order_and_start(&app, &token, "WW-FEM-1G", 2, None).await;
        let r = app
            .post(
                "/api/payments/confirm",
                Some(&token),
                json!({"orderId": id, "provider": "test", "params": {"mock": "paid"}}),
            )
            .await;
        assert_eq!(r.body["status"], "paid", "{}", r.text);
        paid.push(id);
    }
    assert_eq!(stock_of(&app, "WW-FEM-1G").await, before - 4);
    // A customer cannot cancel a paid order; an admin can: restock and refund_required.
    let r = app
        .post(
            &format!("/api/orders/{}/cancel", paid[0]),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = app
        .patch(
            &format!("/api/admin/orders/{}", paid[0]),
            Some(&admin),
            json!({"status": "cancelled", "note": "sin stock en bodega"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(stock_of(&app, "WW-FEM-1G").await, before - 2, "restocked");
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT status FROM payments WHERE order_id = {}",
            paid[0]
        ))
        .await
        .unwrap(),
        "refund_required"
    );
    // paid -> shipped -> delivered, and delivered is final.
    for (to, code) in [
        ("delivered", StatusCode::CONFLICT),
        ("shipped", StatusCode::OK),
        ("cancelled", StatusCode::CONFLICT),
        ("delivered", StatusCode::OK),
    ] {
        let r = app
            .patch(
                &format!("/api/admin/orders/{}", paid[1]),
                Some(&admin),
                json!({"status": to}),
            )
            .await;
        assert_eq!(r.status, code, "-> {to}: {}", r.text);
    }
    for to in ["pending", "paid", "shipped", "cancelled", "failed"] {
        let r = app
            .patch(
                &format!("/api/admin/orders/{}", paid[1]),
                Some(&admin),
                json!({"status": to}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "delivered -> {to}: {}",
            r.text
        );
    }
    // Admin payments listing.
    let r = app
        .get(
            "/api/admin/payments?provider=test&status=paid",
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["items"][0]["orderId"], paid[1]);
    assert_eq!(
        app.get("/api/admin/payments?status=refund_required", Some(&admin))
            .await
            .body["total"],
        1
    );
    assert_eq!(
        app.get("/api/admin/payments", Some(&admin)).await.body["total"],
        2
    );
    assert!(app
        .get("/api/admin/payments?status=lost", Some(&admin))
        .await
        .has_detail("status", "invalid_value"));
    assert_eq!(
        app.get("/api/admin/payments", Some(&token)).await.status,
        StatusCode::FORBIDDEN
    );
}
