//! Coupons: admin management, the reasons a code is refused, discounts in checkout.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn apply(app: &TestApp, token: &str, code: &str, items: Value) -> Resp {
    app.post(
        "/api/checkout/coupon/apply",
        Some(token),
        json!({"code": code, "items": items}),
    )
    .await
}

#[tokio::test]
async fn coupon_rules_explain_every_refusal() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let now = Utc::now();
    let fmt = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for body in [
        json!({"code": "verano10", "type": "percent", "value": 15, "minOrderCents": 4000}),
        json!({"code": "FIJO5000", "type": "fixed", "value": 5000}),
        json!({"code": "FUTURO", "type": "percent", "value": 10, "startsAt": fmt(now + Duration::days(3))}),
        json!({"code": "VENCIDO", "type": "percent", "value": 10, "endsAt": fmt(now - Duration::days(1))}),
        json!({"code": "APAGADO", "type": "fixed", "value": 100, "isActive": false}),
        json!({"code": "UNAVEZ", "type": "fixed", "value": 100, "perUserLimit": 1}),
        json!({"code": "DOS", "type": "fixed", "value": 100, "usageLimit": 2}),
    ] {
        let r = app.post("/api/coupons", Some(&admin), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let list = app.get("/api/coupons", Some(&admin)).await;
    assert_eq!(list.body["total"], 7);
    assert!(
        list.text.contains("\"code\":\"VERANO10\""),
        "codes are stored upper-case"
    );
    let (token, _, _) = app.register("cupon@example.cl").await;
    let nl1 = variant_id(&app, "NL-AUTO-1G").await;
    let one = json!([{"variantId": nl1, "quantity": 1}]);
    let r = apply(&app, &token, "Verano10", one.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["discountCents"], 749,
        "15% of 4990 = 748.5, rounded half up"
    );
    let r = apply(&app, &token, "FIJO5000", one.clone()).await;
    assert_eq!(
        r.body["discountCents"], 4990,
        "never more than the subtotal"
    );
    for (code, items, issue) in [
        ("NOPE", one.clone(), "unknown"),
        ("FUTURO", one.clone(), "not_started"),
        ("VENCIDO", one.clone(), "expired"),
        ("APAGADO", one.clone(), "inactive"),
    ] {
        let r = apply(&app, &token, code, items).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{code}: {}", r.text);
        assert!(r.has_detail("couponCode", issue), "{code}: {}", r.text);
    }
    // Per-user limit: a pending order holding its reservation counts as a use.
    let address =
        json!({"addressLine": "Av. Providencia 1234", "comuna": "Providencia", "region": "RM"});
    let order = app
        .post("/api/checkout/confirm", Some(&token), json!({"items": one, "address": address, "shippingMethod": "chilexpress", "couponCode": "unavez"}))
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    assert_eq!(order.body["discountCents"], 100);
    assert_eq!(order.body["totalCents"], 4990 - 100 + 3990);
    let r = apply(&app, &token, "UNAVEZ", one.clone()).await;
    assert!(
        r.has_detail("couponCode", "per_user_limit_reached"),
        "{}",
        r.text
    );
    // Usage limit across customers.
    for i in 0..2 {
        let (t, _, _) = app.register(&format!("dos{i}@example.cl")).await;
        let r = app
            .post("/api/checkout/confirm", Some(&t), json!({"items": one, "address": address, "shippingMethod": "chilexpress", "couponCode": "DOS"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = apply(&app, &token, "DOS", one.clone()).await;
    assert!(
        r.has_detail("couponCode", "usage_limit_reached"),
        "{}",
        r.text
    );
    // The reservations lapsing does not free the uses: pending orders hold them until they end.
    app.clock.advance(Duration::seconds(901));
    let token = app.login("cupon@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = apply(&app, &token, "DOS", one.clone()).await;
    assert!(
        r.has_detail("couponCode", "usage_limit_reached"),
        "{}",
        r.text
    );
    // Failed at the payment timeout, those orders stop counting.
    app.clock.advance(Duration::seconds(900));
    dispensary::services::commerce::orders::sweep_expired(&app.state)
        .await
        .unwrap();
    let token = app.login("cupon@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = apply(&app, &token, "DOS", one.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Paid orders count whatever their reservations.
    let coupon = app
        .scalar_i64("SELECT id FROM coupons WHERE code = 'DOS'")
        .await;
    let backend = app.state.db.get_database_backend();
    use sea_orm::ConnectionTrait;
    app.state
        .db
        .execute_raw(sea_orm::Statement::from_string(
            backend,
            format!("UPDATE orders SET status = 'paid' WHERE coupon_id = {coupon}"),
        ))
        .await
        .unwrap();
    let r = apply(&app, &token, "DOS", one.clone()).await;
    assert!(
        r.has_detail("couponCode", "usage_limit_reached"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn minimum_order_and_admin_validation() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.post(
        "/api/coupons",
        Some(&admin),
        json!({"code": "MIN20K", "type": "fixed", "value": 2000, "minOrderCents": 20000}),
    )
    .await;
    let (token, _, _) = app.register("minimo@example.cl").await;
    let nl1 = variant_id(&app, "NL-AUTO-1G").await;
    let r = apply(
        &app,
        &token,
        "MIN20K",
        json!([{"variantId": nl1, "quantity": 1}]),
    )
    .await;
    assert!(
        r.has_detail("couponCode", "min_order_not_met"),
        "{}",
        r.text
    );
    let r = apply(
        &app,
        &token,
        "MIN20K",
        json!([{"variantId": nl1, "quantity": 5}]),
    )
    .await;
    assert_eq!(r.body["discountCents"], 2000, "{}", r.text);
    // Without items, the cart is used.
    app.call(
        Method::PUT,
        "/api/cart/items",
        Some(&token),
        Some(json!({"variantId": nl1, "quantity": 6})),
    )
    .await;
    let r = app
        .post(
            "/api/checkout/coupon/apply",
            Some(&token),
            json!({"code": "min20k"}),
        )
        .await;
    assert_eq!(r.body["subtotalCents"], 6 * 4990, "{}", r.text);
    // Admin input validation.
    for (body, field, issue) in [
        (
            json!({"code": "X", "type": "percent", "value": 10}),
            "code",
            "invalid_format",
        ),
        (
            json!({"code": "PCT", "type": "percent", "value": 101}),
            "value",
            "out_of_range",
        ),
        (
            json!({"code": "NEG", "type": "fixed", "value": 0}),
            "value",
            "out_of_range",
        ),
        (
            json!({"code": "WIN", "type": "fixed", "value": 1, "startsAt": "2027-01-02T00:00:00Z", "endsAt": "2027-01-01T00:00:00Z"}),
            "endsAt",
            "before_start",
        ),
        (
            json!({"code": "BAD", "type": "gift", "value": 1}),
            "type",
            "invalid_value",
        ),
    ] {
        let r = app.post("/api/coupons", Some(&admin), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.has_detail(field, issue), "{field}: {}", r.text);
    }
    let r = app
        .post(
            "/api/coupons",
            Some(&admin),
            json!({"code": "min20k", "type": "fixed", "value": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Customers cannot manage coupons.
    assert_eq!(
        app.get("/api/coupons", Some(&token)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(
            "/api/coupons",
            Some(&token),
            json!({"code": "HACK", "type": "percent", "value": 100})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let id = app
        .scalar_i64("SELECT id FROM coupons WHERE code = 'MIN20K'")
        .await;
    assert_eq!(
        app.patch(
            &format!("/api/coupons/{id}"),
            Some(&token),
            json!({"value": 1})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // Update and delete, audited.
    let r = app
        .patch(
            &format!("/api/coupons/{id}"),
            Some(&admin),
            json!({"isActive": false, "usageLimit": 10}),
        )
        .await;
    assert_eq!(r.body["isActive"], false, "{}", r.text);
    assert_eq!(r.body["usageLimit"], 10);
    assert_eq!(
        app.delete(&format!("/api/coupons/{id}"), Some(&admin))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM coupons").await, 0);
    for action in ["coupon.created", "coupon.updated", "coupon.deleted"] {
        assert_eq!(
            app.scalar_i64(&format!(
                "SELECT COUNT(*) FROM system_logs WHERE action = '{action}'"
            ))
            .await,
            1,
            "{action}"
        );
    }
}
