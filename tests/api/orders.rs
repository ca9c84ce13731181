//! Orders: owner-only access, cancellation, the lifecycle, tracking, admin listing, expiry.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn place_order(app: &TestApp, token: &str, sku: &str, quantity: i64) -> Value {
    let vid = variant_id(app, sku).await;
    let r = app
        .post(
            "/api/checkout/confirm",
            Some(token),
            json!({"items": [{"variantId": vid, "quantity": quantity}], "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}, "shippingMethod": "starken"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

#[tokio::test]
async fn customers_see_only_their_orders() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (alice, _, _) = app.register("alice@example.cl").await;
    let (bob, _, _) = app.register("bob@example.cl").await;
    let a1 = place_order(&app, &alice, "NL-AUTO-1G", 1).await["id"]
        .as_i64()
        .unwrap();
    place_order(&app, &alice, "WW-FEM-1G", 2).await;
    let before = app.metric("db_statements_total", "").await;
    let mine = app.get("/api/orders", Some(&alice)).await;
    let statements = app.metric("db_statements_total", "").await - before;
    assert_eq!(
        statements, 3.0,
        "bearer check + page with its total + one batch of lines, whatever the number of orders"
    );
    assert_eq!(mine.body["total"], 2, "{}", mine.text);
    assert_eq!(
        mine.body["items"][0]["items"][0]["productName"], "White Widow Feminizada",
        "newest first, with lines"
    );
    assert_eq!(app.get("/api/orders", Some(&bob)).await.body["total"], 0);
    assert_eq!(
        app.get(&format!("/api/orders/{a1}"), Some(&bob))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&format!("/api/orders/{a1}/cancel"), Some(&bob), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/orders/{a1}"), Some(&alice))
            .await
            .body["id"],
        a1
    );
    assert_eq!(
        app.get(&format!("/api/orders/{a1}"), Some(&admin))
            .await
            .body["id"],
        a1
    );
    assert_eq!(
        app.get(&format!("/api/orders/{a1}"), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/orders?status=pending", Some(&alice))
            .await
            .body["total"],
        2
    );
    assert_eq!(
        app.get("/api/orders?status=paid", Some(&alice)).await.body["total"],
        0
    );
    assert_eq!(
        app.get("/api/admin/orders", Some(&alice)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn cancelling_releases_reservations_once() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("cancela@example.cl").await;
    let id = place_order(&app, &token, "NL-AUTO-10G", 8).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM stock_reservations WHERE order_id = {id} AND state = 'active'"
        ))
        .await,
        1
    );
    let r = app
        .post(&format!("/api/orders/{id}/cancel"), Some(&token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM stock_reservations WHERE order_id = {id} AND state = 'released'"
        ))
        .await,
        1
    );
    // All 8 units are available again.
    let (other, _, _) = app.register("despues@example.cl").await;
    place_order(&app, &other, "NL-AUTO-10G", 8).await;
    // Not twice, and never from a final state.
    let r = app
        .post(&format!("/api/orders/{id}/cancel"), Some(&token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.has_detail("status", "invalid_transition"));
    let meta = app
        .scalar_string(&format!("SELECT CAST(meta AS TEXT) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {id}"))
        .await
        .unwrap();
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(
        (meta["from"].as_str(), meta["to"].as_str()),
        (Some("pending"), Some("cancelled")),
        "{meta}"
    );
    assert_eq!(
        app.metric(
            "order_status_transitions_total",
            "from=\"pending\",to=\"cancelled\""
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn admin_transitions_follow_the_lifecycle() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("ciclo@example.cl").await;
    let id = place_order(&app, &token, "NL-AUTO-1G", 1).await["id"]
        .as_i64()
        .unwrap();
    // From pending: shipped/delivered are invalid; paid and pending come only from payments.
    for to in ["shipped", "delivered", "paid"] {
        let r = app
            .patch(
                &format!("/api/admin/orders/{id}"),
                Some(&admin),
                json!({"status": to}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{to}: {}", r.text);
        assert!(
            r.has_detail("status", "invalid_transition"),
            "{to}: {}",
            r.text
        );
    }
    let r = app
        .patch(
            &format!("/api/admin/orders/{id}"),
            Some(&admin),
            json!({"status": "failed", "note": "fraude"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "failed");
    for to in ["cancelled", "shipped", "delivered", "paid", "pending"] {
        let r = app
            .patch(
                &format!("/api/admin/orders/{id}"),
                Some(&admin),
                json!({"status": to}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "failed -> {to}: {}", r.text);
    }
    let r = app
        .patch(
            &format!("/api/admin/orders/{id}"),
            Some(&admin),
            json!({"status": "lost"}),
        )
        .await;
    assert!(r.has_detail("status", "invalid_value"), "{}", r.text);
    assert_eq!(
        app.patch(
            &format!("/api/admin/orders/{id}"),
            Some(&token),
            json!({"status": "cancelled"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // Tracking.
    let id2 = place_order(&app, &token, "NL-AUTO-1G", 1).await["id"]
        .as_i64()
        .unwrap();
    let r = app
        .patch(&format!("/api/admin/orders/{id2}/tracking"), Some(&admin), json!({"courier": "Starken", "trackingNumber": "ST123", "estimatedDeliveryAt": "2026-12-01T18:00:00Z"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["trackingNumber"], "ST123");
    assert_eq!(r.body["estimatedDeliveryAt"], "2026-12-01T18:00:00Z");
    let r = app
        .patch(
            &format!("/api/admin/orders/{id}/tracking"),
            Some(&admin),
            json!({"courier": "Starken", "trackingNumber": "X"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "a failed order has no shipment: {}",
        r.text
    );
}

#[tokio::test]
async fn admin_order_search() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (alice, _, _) = app.register("alice.search@example.cl").await;
    let (bob, _, _) = app.register("bob.search@example.cl").await;
    let a = place_order(&app, &alice, "NL-AUTO-1G", 1).await["id"]
        .as_i64()
        .unwrap();
    place_order(&app, &bob, "NL-AUTO-1G", 1).await;
    assert_eq!(
        app.get("/api/admin/orders", Some(&admin)).await.body["total"],
        2
    );
    let r = app
        .get("/api/admin/orders?q=alice.search", Some(&admin))
        .await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    assert_eq!(r.body["items"][0]["id"], a);
    assert_eq!(
        app.get(&format!("/api/admin/orders?q={a}"), Some(&admin))
            .await
            .body["items"][0]["id"],
        a
    );
    assert_eq!(
        app.get("/api/admin/orders?status=pending", Some(&admin))
            .await
            .body["total"],
        2
    );
    assert_eq!(
        app.get(
            "/api/admin/orders?dateFrom=2099-01-01T00:00:00Z",
            Some(&admin)
        )
        .await
        .body["total"],
        0
    );
    assert_eq!(
        app.get(
            "/api/admin/orders?dateTo=2099-01-01T00:00:00Z",
            Some(&admin)
        )
        .await
        .body["total"],
        2
    );
    let r = app
        .get("/api/admin/orders?dateFrom=yesterday", Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body["error"]["details"][0]["field"], "dateFrom",
        "{}",
        r.text
    );
    let r = app
        .get(
            "/api/admin/orders?dateFrom=2026-12-02T00:00:00Z&dateTo=2026-12-01T00:00:00Z",
            Some(&admin),
        )
        .await;
    assert!(r.has_detail("dateTo", "before_date_from"), "{}", r.text);
}

#[tokio::test]
async fn unpaid_orders_expire_and_release_their_stock() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("tarde@example.cl").await;
    let old = place_order(&app, &token, "WW-FEM-10G", 4).await["id"]
        .as_i64()
        .unwrap();
    app.clock.advance(Duration::seconds(1500));
    let token = app.login("tarde@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let fresh = place_order(&app, &token, "NL-AUTO-1G", 1).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        dispensary::services::commerce::orders::sweep_expired(&app.state)
            .await
            .unwrap(),
        0,
        "nothing is 30 minutes old yet"
    );
    app.clock.advance(Duration::seconds(301));
    // Two sweepers at once (two instances): each order fails exactly once.
    let (a, b) = tokio::join!(
        dispensary::services::commerce::orders::sweep_expired(&app.state),
        dispensary::services::commerce::orders::sweep_expired(&app.state)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(
        app.scalar_string(&format!("SELECT status FROM orders WHERE id = {old}"))
            .await
            .unwrap(),
        "failed"
    );
    assert_eq!(
        app.scalar_string(&format!("SELECT status FROM orders WHERE id = {fresh}"))
            .await
            .unwrap(),
        "pending"
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM stock_reservations WHERE order_id = {old} AND state = 'released'"
        ))
        .await,
        1
    );
    assert_eq!(app.scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {old}")).await, 1);
}
