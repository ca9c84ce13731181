//! Integrity defects found by an outside check (issue 25): coupon limits across a lapsed stock
//! hold, logout and refresh-token reuse ending every access token of the session, and
//! deactivation ending sessions for good.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const SKU: &str = "NL-AUTO-1G";

/// A test app whose stock holds last 2 s (as in the reproduction) with plenty of `SKU` in stock.
async fn shop() -> (TestApp, String) {
    let app = TestApp::spawn_with(&[("RESERVATION_TTL_SECONDS", "2")]).await;
    let admin = app.admin_token().await;
    let vid = variant_id(&app, SKU).await;
    let r = app
        .patch(
            &format!("/api/variants/{vid}"),
            Some(&admin),
            json!({"stock": 100}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (app, admin)
}

fn order_body(app_vid: i64, coupon: &str) -> Value {
    json!({"items": [{"variantId": app_vid, "quantity": 1}],
           "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"},
           "shippingMethod": "starken", "couponCode": coupon})
}

/// Pays `order` through a signed test-provider webhook for the transaction `txn`; the outcome.
async fn pay(app: &TestApp, event_id: &str, order: i64, txn: &Value) -> String {
    let total = app
        .scalar_i64(&format!(
            "SELECT total_cents FROM orders WHERE id = {order}"
        ))
        .await;
    let body = event(app, event_id, txn.as_str().unwrap(), "paid", total);
    let r = webhook(app, &body, Some(sign(&body))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["outcome"].as_str().unwrap().to_string()
}

async fn status_of(app: &TestApp, order: i64) -> String {
    app.scalar_string(&format!("SELECT status FROM orders WHERE id = {order}"))
        .await
        .unwrap()
}

/// Orders carrying the coupon in a paid (or later) state, and the coupon's usedCount as the API
/// shows it.
async fn paid_uses(app: &TestApp, coupon: i64) -> (i64, i64) {
    let paid = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM orders WHERE coupon_id = {coupon} \
             AND status IN ('paid', 'shipped', 'delivered') AND discount_cents > 0"
        ))
        .await;
    // A fresh admin token: the tests move the clock past the access tokens' lifetime.
    let admin = app.admin_token().await;
    let list = app.get("/api/coupons", Some(&admin)).await;
    let used = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == coupon)
        .unwrap()["usedCount"]
        .as_i64()
        .unwrap();
    (paid, used)
}

async fn sweep(app: &TestApp) {
    app.clock.advance(Duration::seconds(1801));
    dispensary::services::commerce::orders::sweep_expired(&app.state)
        .await
        .unwrap();
}

async fn relogin(app: &TestApp, email: &str) -> String {
    app.login(email, "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_usage_limit_holds_after_the_stock_hold_lapses() {
    let (app, admin) = shop().await;
    let coupon = create_coupon(
        &app,
        &admin,
        json!({"code":"ONEUSE","type":"fixed","value":500,"usageLimit":1,"isActive":true}),
    )
    .await;
    let (c1, _, _) = app.register("uno@example.cl").await;
    let (c2, _, _) = app.register("dos@example.cl").await;
    let (o1, s1) = checkout_and_start(&app, &c1, SKU, 1, Some("ONEUSE"), "test").await;
    assert_eq!(s1.status, StatusCode::OK, "{}", s1.text);
    let vid = variant_id(&app, SKU).await;
    let r = app
        .post(
            "/api/checkout/confirm",
            Some(&c2),
            order_body(vid, "ONEUSE"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.has_detail("couponCode", "usage_limit_reached"),
        "{}",
        r.text
    );

    // The stock hold lapses: the pending order still holds its coupon use.
    app.clock.advance(Duration::seconds(4));
    let r = app
        .post(
            "/api/checkout/confirm",
            Some(&c2),
            order_body(vid, "ONEUSE"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.has_detail("couponCode", "usage_limit_reached"),
        "{}",
        r.text
    );
    let r = app
        .post(
            "/api/checkout/coupon/apply",
            Some(&c2),
            json!({"code": "oneuse", "items": [{"variantId": vid, "quantity": 1}]}),
        )
        .await;
    assert!(
        r.has_detail("couponCode", "usage_limit_reached"),
        "{}",
        r.text
    );
    assert_eq!(
        pay(&app, "evt-1", o1, &s1.body["providerTxnId"]).await,
        "applied"
    );
    assert_eq!(paid_uses(&app, coupon).await, (1, 1));

    // An admin cancelling the paid order gives the use back; then the next customer may use it.
    let r = app
        .patch(
            &format!("/api/admin/orders/{o1}"),
            Some(&admin),
            json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(paid_uses(&app, coupon).await, (0, 0));
    let (o2, s2) = checkout_and_start(&app, &c2, SKU, 1, Some("ONEUSE"), "test").await;
    assert_eq!(s2.status, StatusCode::OK, "{}", s2.text);
    assert_eq!(
        pay(&app, "evt-2", o2, &s2.body["providerTxnId"]).await,
        "applied"
    );
    assert_eq!(paid_uses(&app, coupon).await, (1, 1));
    // The limit cannot go below the uses already paid.
    let r = app
        .patch(
            &format!("/api/coupons/{coupon}"),
            Some(&admin),
            json!({"usageLimit": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.execute(&format!(
        "UPDATE coupons SET used_count = 3 WHERE id = {coupon}"
    ))
    .await;
    let r = app
        .patch(
            &format!("/api/coupons/{coupon}"),
            Some(&admin),
            json!({"usageLimit": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("usageLimit", "below_used_count"), "{}", r.text);
}

#[tokio::test]
async fn a_late_payment_never_takes_a_use_someone_else_holds() {
    let (app, admin) = shop().await;
    let coupon = create_coupon(
        &app,
        &admin,
        json!({"code":"ONEUSE","type":"fixed","value":500,"usageLimit":1}),
    )
    .await;
    let (c1, _, _) = app.register("uno@example.cl").await;
    let (o1, s1) = checkout_and_start(&app, &c1, SKU, 1, Some("ONEUSE"), "test").await;
    assert_eq!(s1.status, StatusCode::OK, "{}", s1.text);
    // The payment timeout fails the order: its use is free again.
    sweep(&app).await;
    assert_eq!(status_of(&app, o1).await, "failed");
    let (c2, _, _) = app.register("dos@example.cl").await;
    let (o2, s2) = checkout_and_start(&app, &c2, SKU, 1, Some("ONEUSE"), "test").await;
    assert_eq!(s2.status, StatusCode::OK, "{}", s2.text);

    // Customer 1 cannot re-open the failed order: its coupon is held by customer 2 now.
    let c1 = relogin(&app, "uno@example.cl").await;
    let r = app
        .post(
            "/api/payments/start",
            Some(&c1),
            json!({"orderId": o1, "provider": "test"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.has_detail("couponCode", "usage_limit_reached"),
        "{}",
        r.text
    );
    assert_eq!(status_of(&app, o1).await, "failed");

    // Customer 1's payment arrives late anyway: refused like a payment whose stock is gone.
    let stock_before = app
        .scalar_i64(&format!(
            "SELECT CAST(stock AS BIGINT) FROM product_variants WHERE sku = '{SKU}'"
        ))
        .await;
    assert_eq!(
        pay(&app, "evt-late", o1, &s1.body["providerTxnId"]).await,
        "refund_required"
    );
    assert_eq!(status_of(&app, o1).await, "failed");
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT status FROM payments WHERE order_id = {o1}"
        ))
        .await
        .unwrap(),
        "refund_required"
    );
    let reason = app
        .scalar_string(&format!(
            "SELECT CAST(meta AS TEXT) FROM system_logs \
             WHERE action = 'payment.refund_required' AND entity_id = \
             (SELECT id FROM payments WHERE order_id = {o1})"
        ))
        .await
        .unwrap();
    assert!(reason.contains("coupon_used_up"), "{reason}");
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(stock AS BIGINT) FROM product_variants WHERE sku = '{SKU}'"
        ))
        .await,
        stock_before,
        "a refused payment takes no stock"
    );
    assert_eq!(paid_uses(&app, coupon).await, (0, 0));
    assert_eq!(
        pay(&app, "evt-2", o2, &s2.body["providerTxnId"]).await,
        "applied"
    );
    assert_eq!(paid_uses(&app, coupon).await, (1, 1));
}

#[tokio::test]
async fn a_per_user_limit_holds_after_the_stock_hold_lapses() {
    let (app, admin) = shop().await;
    let coupon = create_coupon(
        &app,
        &admin,
        json!({"code":"PORPERSONA","type":"fixed","value":500,"perUserLimit":1}),
    )
    .await;
    let (c1, _, _) = app.register("uno@example.cl").await;
    let (o1, s1) = checkout_and_start(&app, &c1, SKU, 1, Some("PORPERSONA"), "test").await;
    assert_eq!(s1.status, StatusCode::OK, "{}", s1.text);
    app.clock.advance(Duration::seconds(4));
    let vid = variant_id(&app, SKU).await;
    let r = app
        .post(
            "/api/checkout/confirm",
            Some(&c1),
            order_body(vid, "PORPERSONA"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.has_detail("couponCode", "per_user_limit_reached"),
        "{}",
        r.text
    );
    // Another customer is not limited by this one's use.
    let (c2, _, _) = app.register("dos@example.cl").await;
    let r = app
        .post(
            "/api/checkout/confirm",
            Some(&c2),
            order_body(vid, "PORPERSONA"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Once the first order fails, a second order may take the use; the first's late payment is
    // then refused, and the customer ends with one discounted paid order.
    sweep(&app).await;
    let c1 = relogin(&app, "uno@example.cl").await;
    let (o2, s2) = checkout_and_start(&app, &c1, SKU, 1, Some("PORPERSONA"), "test").await;
    assert_eq!(s2.status, StatusCode::OK, "{}", s2.text);
    assert_eq!(
        pay(&app, "evt-2", o2, &s2.body["providerTxnId"]).await,
        "applied"
    );
    assert_eq!(
        pay(&app, "evt-1", o1, &s1.body["providerTxnId"]).await,
        "refund_required"
    );
    let user1 = app
        .scalar_i64("SELECT id FROM users WHERE email = 'uno@example.cl'")
        .await;
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM orders WHERE coupon_id = {coupon} AND user_id = {user1} \
             AND status IN ('paid', 'shipped', 'delivered')"
        ))
        .await,
        1
    );
    assert_eq!(paid_uses(&app, coupon).await, (1, 1));
}

#[tokio::test]
async fn ten_customers_race_for_a_limit_one_coupon_across_a_lapsed_hold() {
    let (app, admin) = shop().await;
    let coupon = create_coupon(
        &app,
        &admin,
        json!({"code":"CARRERA","type":"percent","value":10,"usageLimit":1}),
    )
    .await;
    let (c0, _, _) = app.register("primero@example.cl").await;
    let (o0, s0) = checkout_and_start(&app, &c0, SKU, 1, Some("CARRERA"), "test").await;
    assert_eq!(s0.status, StatusCode::OK, "{}", s0.text);
    let vid = variant_id(&app, SKU).await;
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(app.register(&format!("carrera{i}@example.cl")).await.0);
    }
    let race = |tokens: Vec<String>| {
        let app = &app;
        async move {
            let attempts = tokens
                .iter()
                .map(|t| app.post("/api/checkout/confirm", Some(t), order_body(vid, "CARRERA")));
            futures::future::join_all(attempts).await
        }
    };
    // The hold on stock lapses; the coupon use does not: all ten are refused.
    app.clock.advance(Duration::seconds(4));
    for r in race(tokens.clone()).await {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(
            r.has_detail("couponCode", "usage_limit_reached"),
            "{}",
            r.text
        );
    }
    // The first order fails at the payment timeout: exactly one of ten gets the use.
    sweep(&app).await;
    let mut fresh = Vec::new();
    for i in 0..10 {
        fresh.push(relogin(&app, &format!("carrera{i}@example.cl")).await);
    }
    let results = race(fresh.clone()).await;
    let winners: Vec<&Resp> = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one order takes the coupon");
    for r in results.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(
            r.has_detail("couponCode", "usage_limit_reached"),
            "{}",
            r.text
        );
    }
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM orders WHERE coupon_id = {coupon} AND status = 'pending'"
        ))
        .await,
        1
    );
    // Both payments arrive: the winner's applies, the lapsed order's is refused.
    let winner = winners[0].body["id"].as_i64().unwrap();
    let idx = results
        .iter()
        .position(|r| r.status == StatusCode::CREATED)
        .unwrap();
    let s = app
        .post(
            "/api/payments/start",
            Some(&fresh[idx]),
            json!({"orderId": winner, "provider": "test"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let (late, paid) = tokio::join!(
        pay(&app, "evt-late", o0, &s0.body["providerTxnId"]),
        pay(&app, "evt-win", winner, &s.body["providerTxnId"])
    );
    assert_eq!(late, "refund_required");
    assert_eq!(paid, "applied");
    assert_eq!(paid_uses(&app, coupon).await, (1, 1));
}

#[tokio::test]
async fn logout_ends_every_access_token_of_the_session() {
    let app = TestApp::spawn().await;
    let (_, _, _) = app.register("sesion@example.cl").await;
    let a = app.login("sesion@example.cl", "secreto123").await;
    let at_a = a["accessToken"].as_str().unwrap();
    let b = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": a["refreshToken"]}),
        )
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    let at_b = b.body["accessToken"].as_str().unwrap();
    // Another session of the same user, which must survive.
    let other = app.login("sesion@example.cl", "secreto123").await;
    let at_other = other["accessToken"].as_str().unwrap();
    for t in [at_a, at_b, at_other] {
        assert_eq!(app.get("/api/me", Some(t)).await.status, StatusCode::OK);
    }
    let r = app.post("/api/auth/logout", Some(at_b), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for t in [at_a, at_b] {
        let me = app.get("/api/me", Some(t)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
        assert_eq!(me.body["error"]["message"], "The token has been revoked");
        let g = app.gql(Some(t), "{ me { id email } }", json!({})).await;
        assert_eq!(g.body["data"], Value::Null, "{}", g.text);
        assert_eq!(
            g.body["errors"][0]["extensions"]["code"], "unauthorized",
            "{}",
            g.text
        );
    }
    let me = app.get("/api/me", Some(at_other)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["email"], "sesion@example.cl");
}

#[tokio::test]
async fn refresh_token_reuse_ends_the_new_access_token_too() {
    let app = TestApp::spawn().await;
    app.register("robado@example.cl").await;
    let first = app.login("robado@example.cl", "secreto123").await;
    let rt1 = first["refreshToken"].as_str().unwrap();
    let second = app
        .post("/api/auth/refresh", None, json!({"refreshToken": rt1}))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let at2 = second.body["accessToken"].as_str().unwrap();
    assert_eq!(app.get("/api/me", Some(at2)).await.status, StatusCode::OK);
    // The rotated token is presented again: the whole session ends.
    let reuse = app
        .post("/api/auth/refresh", None, json!({"refreshToken": rt1}))
        .await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED, "{}", reuse.text);
    for t in [first["accessToken"].as_str().unwrap(), at2] {
        let me = app.get("/api/me", Some(t)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
        let g = app.gql(Some(t), "{ me { id } }", json!({})).await;
        assert_eq!(
            g.body["errors"][0]["extensions"]["code"], "unauthorized",
            "{}",
            g.text
        );
    }
    let rt2 = second.body["refreshToken"].as_str().unwrap();
    assert_eq!(
        app.post("/api/auth/refresh", None, json!({"refreshToken": rt2}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn reactivation_does_not_revive_old_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, id, _) = app.register("pausa@example.cl").await;
    let login = app.login("pausa@example.cl", "secreto123").await;
    let at = login["accessToken"].as_str().unwrap();
    let rt = login["refreshToken"].as_str().unwrap();
    assert_eq!(app.get("/api/me", Some(at)).await.status, StatusCode::OK);
    for active in [false, true] {
        let r = app
            .patch(
                &format!("/api/users/{id}"),
                Some(&admin),
                json!({"isActive": active}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["isActive"], active);
    }
    let me = app.get("/api/me", Some(at)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
    assert_eq!(me.body["error"]["message"], "The token has been revoked");
    let g = app.gql(Some(at), "{ me { id } }", json!({})).await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "unauthorized",
        "{}",
        g.text
    );
    assert_eq!(
        app.post("/api/auth/refresh", None, json!({"refreshToken": rt}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Only a new login works.
    let fresh = app.login("pausa@example.cl", "secreto123").await;
    let me = app
        .get("/api/me", Some(fresh["accessToken"].as_str().unwrap()))
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], id);
}
