//! The payment core with the test provider: start, confirm, signed webhooks, exactly-once paid.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

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
            json!({"orderId": declined, "provider": "flow"}),
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
    let after = stock_of(&app, "WW-FEM-5G").await;
    let transitions = app
        .scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {order_id}"))
        .await;
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok() {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "webhook racing confirm [{backend}]: paid transitions {transitions}, stock {before} -> {after}"
    );
    assert_eq!(transitions, 1, "one paid transition");
    assert_eq!(after, before - 1);
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
    dispensary::services::commerce::orders::sweep_expired(&app.state)
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

async fn post_with_key(app: &TestApp, path: &str, token: &str, body: Value, key: &str) -> Resp {
    app.send(
        app.client
            .post(app.url(path))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn start_and_confirm_replay_under_the_same_idempotency_key() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("idem-pago@example.cl").await;
    let vid = variant_id(&app, "NL-AUTO-5G").await;
    let o = app
        .post(
            "/api/checkout/confirm",
            Some(&token),
            json!({"items": [{"variantId": vid, "quantity": 1}], "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}, "shippingMethod": "starken"}),
        )
        .await;
    let id = o.body["id"].as_i64().unwrap();
    let start = json!({"orderId": id, "provider": "test"});
    let first = post_with_key(
        &app,
        "/api/payments/start",
        &token,
        start.clone(),
        "start-1",
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    app.clock.advance(Duration::seconds(5));
    let again = post_with_key(
        &app,
        "/api/payments/start",
        &token,
        start.clone(),
        "start-1",
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body, first.body, "a retry returns the first redirect");
    let payments = format!("SELECT COUNT(*) FROM payments WHERE order_id = {id}");
    assert_eq!(app.scalar_i64(&payments).await, 1, "one payment row");
    // Without the key a new start is a new payment attempt.
    let fresh = app.post("/api/payments/start", Some(&token), start).await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_ne!(fresh.body["providerTxnId"], first.body["providerTxnId"]);
    assert_eq!(app.scalar_i64(&payments).await, 2);

    let confirm = json!({"orderId": id, "provider": "test", "params": {"mock": "paid"}});
    let c1 = post_with_key(
        &app,
        "/api/payments/confirm",
        &token,
        confirm.clone(),
        "conf-1",
    )
    .await;
    assert_eq!(c1.status, StatusCode::OK, "{}", c1.text);
    assert_eq!(c1.body["status"], "paid");
    let c2 = post_with_key(&app, "/api/payments/confirm", &token, confirm, "conf-1").await;
    assert_eq!(c2.body, c1.body);
    let transitions = format!(
        "SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {id}"
    );
    assert_eq!(app.scalar_i64(&transitions).await, 1, "paid once");
    // The same key with another request is refused.
    let other = json!({"orderId": id, "provider": "test", "params": {"mock": "rejected"}});
    let c3 = post_with_key(&app, "/api/payments/confirm", &token, other, "conf-1").await;
    assert_eq!(c3.status, StatusCode::CONFLICT, "{}", c3.text);
    assert!(c3.has_detail("Idempotency-Key", "reused_with_different_request"));
}

async fn invoice_bytes(
    app: &TestApp,
    id: i64,
    token: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let res = app
        .client
        .get(app.url(&format!("/api/orders/{id}/invoice")))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.expect("body").to_vec())
}

/// Where poppler is installed (`.ci/run` installs it), renders the PDF to an image and to text
/// and checks the text; `RECEIPT_DUMP=<path>` keeps a copy for a human look.
fn rendered_text_contains(pdf: &[u8], texts: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("receipt.pdf");
    std::fs::write(&file, pdf).unwrap();
    if let Ok(keep) = std::env::var("RECEIPT_DUMP") {
        std::fs::write(keep, pdf).unwrap();
    }
    let Ok(out) = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&file)
        .arg("-")
        .output()
    else {
        eprintln!("pdftotext not installed: rendering not checked");
        return;
    };
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "poppler complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for t in texts {
        assert!(text.contains(t), "rendered text lacks {t:?}: {text}");
    }
    let png = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "40", "-singlefile"])
        .arg(&file)
        .arg(dir.path().join("page"))
        .output()
        .expect("pdftoppm");
    assert!(
        png.status.success() && png.stderr.is_empty(),
        "pdftoppm: {}",
        String::from_utf8_lossy(&png.stderr)
    );
    assert!(
        std::fs::metadata(dir.path().join("page.png"))
            .unwrap()
            .len()
            > 1000
    );
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_receipt_is_a_pdf_for_paid_orders_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("boleta@example.cl").await;
    let (other, _, _) = app.register("ajeno@example.cl").await;
    let id = paid_order(&app, &token, "WW-FEM-1G", 1).await;

    let (status, headers, pdf) = invoice_bytes(&app, id, &token).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&pdf));
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"receipt-{id}.pdf\"").as_str()
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "private, no-store");
    assert!(pdf.starts_with(b"%PDF-1."), "a PDF header");
    assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"), "a PDF trailer");
    assert!(contains(&pdf, "xref") && contains(&pdf, "/Type /Catalog"));
    // The text is in the (uncompressed) content stream: store, order number, lines, total, reference.
    let total = app
        .scalar_i64(&format!("SELECT total_cents FROM orders WHERE id = {id}"))
        .await;
    let reference = app
        .scalar_string(&format!("SELECT payment_ref FROM orders WHERE id = {id}"))
        .await
        .unwrap();
    for text in [
        "Dispensario".to_string(),
        format!("Pedido #{id}"),
        "Subtotal".to_string(),
        "Despacho (starken)".to_string(),
        dispensary::services::commerce::receipts::clp(total),
        format!("Referencia de pago: {reference}"),
    ] {
        assert!(contains(&pdf, &text), "the receipt shows {text:?}");
    }
    let name = app
        .scalar_string(&format!(
            "SELECT product_name FROM order_items WHERE order_id = {id}"
        ))
        .await
        .unwrap();
    assert!(contains(&pdf, &name), "the line shows {name:?}");

    rendered_text_contains(&pdf, &[&format!("Pedido #{id}"), "Total", &reference]);

    // The admin may read it; another customer sees nothing; anonymous is 401.
    let (status, _, by_admin) = invoice_bytes(&app, id, &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_admin, pdf, "the same receipt for the same order");
    let (status, _, body) = invoice_bytes(&app, id, &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["code"], "not_found");
    let r = app.get(&format!("/api/orders/{id}/invoice"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // GraphQL returns the same file, base64-encoded.
    let g = app
        .gql(
            Some(&token),
            "query($id: Int!) { orderInvoice(id: $id) }",
            json!({"id": id}),
        )
        .await;
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(g.body["data"]["orderInvoice"].as_str().expect("base64"))
        .unwrap();
    assert_eq!(decoded, pdf);

    // Shipped orders keep their receipt; an unpaid order has none yet.
    let r = app
        .patch(
            &format!("/api/admin/orders/{id}"),
            Some(&admin),
            json!({"status": "shipped"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(invoice_bytes(&app, id, &token).await.0, StatusCode::OK);
    let (pending, _) = order_and_start(&app, &token, "WW-FEM-1G", 1, None).await;
    let r = app
        .get(&format!("/api/orders/{pending}/invoice"), Some(&token))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.has_detail("status", "not_paid"), "{}", r.text);
}

#[tokio::test]
async fn every_admin_transition_over_http() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("matriz@example.cl").await;
    let all = [
        "pending",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
        "failed",
    ];
    // What an admin may do by PATCH; pending -> paid and failed -> pending happen only through
    // payments, so an admin asking for them gets invalid_transition as well.
    let allowed = [
        ("pending", "failed"),
        ("pending", "cancelled"),
        ("paid", "shipped"),
        ("paid", "cancelled"),
        ("shipped", "delivered"),
    ];
    let patch = |id: i64, to: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.patch(
                &format!("/api/admin/orders/{id}"),
                Some(&admin),
                json!({"status": to}),
            )
            .await
        }
    };
    let mut checked = 0;
    for from in all {
        for to in all {
            // An order in `from`, reached by the paths customers, payments and admins use.
            let id = match from {
                "pending" | "cancelled" | "failed" => {
                    order_and_start(&app, &token, "WW-FEM-1G", 1, None).await.0
                }
                _ => paid_order(&app, &token, "WW-FEM-1G", 1).await,
            };
            let path: &[&'static str] = match from {
                "shipped" => &["shipped"],
                "delivered" => &["shipped", "delivered"],
                "failed" => &["failed"],
                _ => &[],
            };
            for step in path {
                assert_eq!(patch(id, step).await.status, StatusCode::OK);
            }
            if from == "cancelled" {
                let r = app
                    .post(&format!("/api/orders/{id}/cancel"), Some(&token), json!({}))
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            }
            let logs = format!(
                "SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {id}"
            );
            let logged = app.scalar_i64(&logs).await;
            let r = patch(id, to).await;
            let status_now = app
                .scalar_string(&format!("SELECT status FROM orders WHERE id = {id}"))
                .await
                .unwrap();
            if allowed.contains(&(from, to)) {
                assert_eq!(r.status, StatusCode::OK, "{from} -> {to}: {}", r.text);
                assert_eq!(r.body["status"], to);
                assert_eq!(status_now, to);
                assert_eq!(
                    app.scalar_i64(&logs).await,
                    logged + 1,
                    "{from} -> {to} audited"
                );
            } else {
                assert_eq!(r.status, StatusCode::CONFLICT, "{from} -> {to}: {}", r.text);
                assert!(
                    r.has_detail("status", "invalid_transition"),
                    "{from} -> {to}: {}",
                    r.text
                );
                assert_eq!(status_now, from, "{from} -> {to} left the order alone");
                assert_eq!(app.scalar_i64(&logs).await, logged);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 36);
}
