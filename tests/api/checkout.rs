//! Shipping quotes, checkout preview and confirmation with atomic stock reservation and idempotency.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

fn rm_address() -> Value {
    json!({"addressLine": "Av. Providencia 1234", "comuna": "Providencia", "region": "RM"})
}

async fn confirm(app: &TestApp, token: &str, body: Value, key: Option<&str>) -> Resp {
    let mut req = app
        .client
        .post(app.url("/api/checkout/confirm"))
        .bearer_auth(token)
        .json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    app.send(req).await
}

#[tokio::test]
async fn shipping_quote_by_region_weight_and_total() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("envio@example.cl").await;
    let nl10 = variant_id(&app, "NL-AUTO-10G").await;
    let r = app
        .post(
            "/api/shipping/quote",
            Some(&token),
            json!({"address": rm_address(), "items": [{"variantId": nl10, "quantity": 1}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes: Vec<&str> = r.body["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["retiro_tienda", "chilexpress", "starken", "manual"]);
    assert_eq!(r.body["best"]["code"], "retiro_tienda");
    assert_eq!(r.body["weightGrams"], 10);
    assert_eq!(r.body["methods"][1]["priceCents"], 3990);
    // Outside Santiago there is no pickup; the threshold makes couriers free.
    let far =
        json!({"addressLine": "Errázuriz 123", "comuna": "Punta Arenas", "region": "Magallanes"});
    let r = app
        .post(
            "/api/shipping/quote",
            Some(&token),
            json!({"address": far, "items": [{"variantId": nl10, "quantity": 3}]}),
        )
        .await;
    assert_eq!(r.body["subtotalCents"], 3 * 34990);
    assert!(r.body["methods"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["code"] != "retiro_tienda"));
    assert_eq!(
        r.body["best"]["code"], "chilexpress",
        "free and faster than free starken: {}",
        r.text
    );
    assert_eq!(r.body["best"]["priceCents"], 0);
    let r = app
        .post("/api/shipping/quote", Some(&token), json!({"address": far, "items": [{"variantId": nl10, "quantity": 1}], "courier": "starken"}))
        .await;
    assert_eq!(r.body["methods"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["methods"][0]["priceCents"], 7990);
    // Bad input.
    let r = app
        .post(
            "/api/shipping/quote",
            Some(&token),
            json!({"addressId": 999, "items": [{"variantId": nl10, "quantity": 1}]}),
        )
        .await;
    assert!(r.has_detail("addressId", "not_found"), "{}", r.text);
    let r = app
        .post(
            "/api/shipping/quote",
            Some(&token),
            json!({"address": rm_address(), "items": []}),
        )
        .await;
    assert!(r.has_detail("items", "empty"), "{}", r.text);
}

#[tokio::test]
async fn preview_computes_totals_server_side_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("preview@example.cl").await;
    let nl1 = variant_id(&app, "NL-AUTO-1G").await;
    let ww5 = variant_id(&app, "WW-FEM-5G").await;
    let body = json!({"items": [{"variantId": nl1, "quantity": 2}, {"variantId": ww5, "quantity": 1}], "address": rm_address(), "shippingMethod": "chilexpress"});
    let r = app
        .post("/api/checkout/preview", Some(&token), body.clone())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["subtotalCents"], 9980 + 24990);
    assert_eq!(r.body["discountCents"], 0);
    assert_eq!(
        r.body["shippingPriceCents"], 3990,
        "7 g is in the first weight band"
    );
    assert_eq!(r.body["totalCents"], 9980 + 24990 + 3990);
    assert_eq!(r.body["lines"][0]["lineTotalCents"], 9980);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM stock_reservations")
            .await,
        0
    );
    // From the cart when no items are given.
    app.call(
        Method::PUT,
        "/api/cart/items",
        Some(&token),
        Some(json!({"variantId": nl1, "quantity": 3})),
    )
    .await;
    let r = app
        .post(
            "/api/checkout/preview",
            Some(&token),
            json!({"address": rm_address(), "shippingMethod": "retiro_tienda"}),
        )
        .await;
    assert_eq!(r.body["totalCents"], 3 * 4990, "{}", r.text);
    // Client prices are unknown fields; shortages are warnings in a preview.
    let r = app
        .post("/api/checkout/preview", Some(&token), json!({"items": [{"variantId": nl1, "quantity": 1, "unitPriceCents": 1}], "address": rm_address(), "shippingMethod": "chilexpress"}))
        .await;
    assert!(
        r.has_detail("items[0].unitPriceCents", "unknown_field"),
        "{}",
        r.text
    );
    let r = app
        .post("/api/checkout/preview", Some(&token), json!({"items": [{"variantId": nl1, "quantity": 41}], "address": rm_address(), "shippingMethod": "chilexpress"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["warnings"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    let r = app
        .post("/api/checkout/preview", Some(&token), json!({"items": [{"variantId": nl1, "quantity": 1}], "address": {"addressLine": "x", "comuna": "y", "region": "XII"}, "shippingMethod": "retiro_tienda"}))
        .await;
    assert!(
        r.has_detail("shippingMethod", "unavailable_for_region"),
        "{}",
        r.text
    );
    let r = app
        .post("/api/checkout/preview", Some(&token), json!({"items": [{"variantId": 999999, "quantity": 1}], "address": rm_address(), "shippingMethod": "chilexpress"}))
        .await;
    assert!(
        r.has_detail("items[0].variantId", "not_found"),
        "{}",
        r.text
    );
    let cbd = variant_id(&app, "CBD-FLOR-1G").await;
    let r = app
        .post("/api/checkout/preview", Some(&token), json!({"items": [{"variantId": cbd, "quantity": 1}], "address": rm_address(), "shippingMethod": "chilexpress"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(
        r.has_detail("items[0].variantId", "medicinal_validation_required"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn confirm_creates_a_pending_order_and_reserves_stock() {
    let app = TestApp::spawn().await;
    let (token, user_id, _) = app.register("compra@example.cl").await;
    let nl1 = variant_id(&app, "NL-AUTO-1G").await;
    let addr = app
        .post("/api/addresses", Some(&token), rm_address())
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    app.call(
        Method::PUT,
        "/api/cart/items",
        Some(&token),
        Some(json!({"variantId": nl1, "quantity": 3})),
    )
    .await;
    let r = confirm(
        &app,
        &token,
        json!({"addressId": addr, "shippingMethod": "chilexpress"}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["totalCents"], 3 * 4990 + 3990);
    assert_eq!(r.body["shippingAddress"]["comuna"], "Providencia");
    assert_eq!(r.body["items"][0]["productName"], "Northern Lights Auto");
    assert_eq!(r.body["items"][0]["unitPriceCents"], 4990);
    let order_id = r.body["id"].as_i64().unwrap();
    // Database effects: order, frozen items, an active reservation, the cart emptied, an audit row.
    assert_eq!(app.scalar_i64(&format!("SELECT COUNT(*) FROM orders WHERE id = {order_id} AND user_id = {user_id} AND status = 'pending' AND total_cents = subtotal_cents - discount_cents + shipping_price_cents")).await, 1);
    assert_eq!(app.scalar_i64(&format!("SELECT CAST(SUM(quantity) AS BIGINT) FROM stock_reservations WHERE order_id = {order_id} AND state = 'active'")).await, 3);
    assert_eq!(
        app.get("/api/cart", Some(&token)).await.body["itemCount"],
        0
    );
    assert_eq!(app.scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'order.created' AND entity_id = {order_id}")).await, 1);
    assert_eq!(app.metric("orders_created_total", "").await, 1.0);
    // Stock itself is untouched until payment; availability drops for everyone else.
    assert_eq!(
        app.scalar_i64(
            "SELECT CAST(stock AS BIGINT) FROM product_variants WHERE sku = 'NL-AUTO-1G'"
        )
        .await,
        40
    );
    let (other, _, _) = app.register("otro@example.cl").await;
    let c = app
        .call(
            Method::PUT,
            "/api/cart/items",
            Some(&other),
            Some(json!({"variantId": nl1, "quantity": 37})),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.body["items"][0]["available"], 37);
    let c = app
        .call(
            Method::PUT,
            "/api/cart/items",
            Some(&other),
            Some(json!({"variantId": nl1, "quantity": 38})),
        )
        .await;
    assert!(c.has_detail("quantity", "insufficient_stock"), "{}", c.text);
    // When the reservation lapses, the units are available again.
    app.clock.advance(Duration::seconds(901));
    let other = app.login("otro@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let c = app
        .call(
            Method::PUT,
            "/api/cart/items",
            Some(&other),
            Some(json!({"variantId": nl1, "quantity": 40})),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    // A product held by an order is deactivated, not deleted.
    let admin = app.admin_token().await;
    let pid = app
        .scalar_i64("SELECT id FROM products WHERE slug = 'northern-lights-auto'")
        .await;
    assert_eq!(
        app.delete(&format!("/api/products/{pid}"), Some(&admin))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM products WHERE id = {pid} AND is_active = FALSE"
        ))
        .await,
        1
    );
    let meta = app
        .scalar_string(
            "SELECT CAST(meta AS TEXT) FROM system_logs WHERE action = 'product.deleted'",
        )
        .await
        .unwrap();
    assert!(meta.contains("deactivated"), "{meta}");
}

#[tokio::test]
async fn a_short_line_writes_nothing_and_names_each_line() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("corto@example.cl").await;
    let nl1 = variant_id(&app, "NL-AUTO-1G").await;
    let ww10 = variant_id(&app, "WW-FEM-10G").await;
    let body = json!({"items": [{"variantId": nl1, "quantity": 1}, {"variantId": ww10, "quantity": 5}], "address": rm_address(), "shippingMethod": "starken"});
    let r = confirm(&app, &token, body, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.has_detail("items[1].variantId", "insufficient_stock"),
        "{}",
        r.text
    );
    assert!(!r.has_detail("items[0].variantId", "insufficient_stock"));
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM stock_reservations")
            .await,
        0
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM order_items").await, 0);
}

/// Confirms concurrently, one request per customer; returns each response and its latency.
async fn race(
    app: &TestApp,
    tokens: &[String],
    vid: i64,
    quantities: &[i64],
) -> Vec<(Resp, std::time::Duration)> {
    let attempts = tokens.iter().zip(quantities).map(|(t, q)| async move {
        let start = std::time::Instant::now();
        let r = confirm(app, t, json!({"items": [{"variantId": vid, "quantity": q}], "address": rm_address(), "shippingMethod": "chilexpress"}), None).await;
        (r, start.elapsed())
    });
    futures::future::join_all(attempts).await
}

fn report(label: &str, results: &[(Resp, std::time::Duration)]) {
    let mut lat: Vec<_> = results.iter().map(|(_, d)| *d).collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok() {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "{label} [{backend}]: {} confirms, latency p50 {:?}, p99 {:?}, max {:?}",
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
}

#[tokio::test]
async fn forty_buyers_racing_for_five_units_get_exactly_five_orders() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let vid = variant_id(&app, "WW-FEM-10G").await;
    app.patch(
        &format!("/api/variants/{vid}"),
        Some(&admin),
        json!({"stock": 5}),
    )
    .await;
    let mut tokens = Vec::new();
    for i in 0..40 {
        tokens.push(app.register(&format!("rush{i}@example.cl")).await.0);
    }
    let results = race(&app, &tokens, vid, &[1; 40]).await;
    report("40 buyers x 1 unit, stock 5", &results);
    let created = results
        .iter()
        .filter(|(r, _)| r.status == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = results
        .iter()
        .filter(|(r, _)| r.status == StatusCode::CONFLICT)
        .collect();
    assert_eq!(
        created,
        5,
        "{:?}",
        results
            .iter()
            .map(|(r, _)| (r.status, r.text.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        refused.len(),
        35,
        "no 500s, no 'database is locked': {:?}",
        results
            .iter()
            .map(|(r, _)| r.text.clone())
            .collect::<Vec<_>>()
    );
    assert!(refused
        .iter()
        .all(|(r, _)| r.has_detail("items[0].variantId", "insufficient_stock")));
    assert_eq!(app.scalar_i64(&format!("SELECT CAST(SUM(quantity) AS BIGINT) FROM stock_reservations WHERE variant_id = {vid} AND state = 'active'")).await, 5);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM orders").await, 5);
    // Available stock is now 0 for everyone.
    let (late, _, _) = app.register("late@example.cl").await;
    let r = app
        .call(
            Method::PUT,
            "/api/cart/items",
            Some(&late),
            Some(json!({"variantId": vid, "quantity": 1})),
        )
        .await;
    assert!(r.has_detail("quantity", "insufficient_stock"), "{}", r.text);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Only 0"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn racing_buyers_with_mixed_quantities_never_oversell() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let vid = variant_id(&app, "WW-FEM-10G").await;
    app.patch(
        &format!("/api/variants/{vid}"),
        Some(&admin),
        json!({"stock": 10}),
    )
    .await;
    let mut tokens = Vec::new();
    for i in 0..24 {
        tokens.push(app.register(&format!("mix{i}@example.cl")).await.0);
    }
    let quantities: Vec<i64> = (0..24).map(|i| 1 + (i % 3)).collect();
    let results = race(&app, &tokens, vid, &quantities).await;
    report("24 buyers x 1-3 units, stock 10", &results);
    assert!(
        results
            .iter()
            .all(|(r, _)| r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT),
        "{:?}",
        results
            .iter()
            .map(|(r, _)| r.text.clone())
            .collect::<Vec<_>>()
    );
    let reserved_by_responses: i64 = results
        .iter()
        .zip(&quantities)
        .filter(|((r, _), _)| r.status == StatusCode::CREATED)
        .map(|(_, q)| *q)
        .sum();
    let reserved = app.scalar_i64(&format!("SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM stock_reservations WHERE variant_id = {vid} AND state = 'active'")).await;
    assert_eq!(reserved, reserved_by_responses);
    assert!(reserved <= 10, "oversold: {reserved}");
    assert!(
        reserved >= 8,
        "a refusal happened while 3 or more units were free: {reserved}"
    );
}

#[tokio::test]
async fn checkout_bad_input_writes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("malo@example.cl").await;
    let (other, _, _) = app.register("ajeno@example.cl").await;
    let foreign = app
        .post("/api/addresses", Some(&other), rm_address())
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let nl1 = variant_id(&app, "NL-AUTO-1G").await;
    let nl5 = variant_id(&app, "NL-AUTO-5G").await;
    app.patch(
        &format!("/api/variants/{nl5}"),
        Some(&admin),
        json!({"isActive": false}),
    )
    .await;
    let line = |v: i64, q: i64| json!([{"variantId": v, "quantity": q}]);
    for (body, field, issue) in [
        (
            json!({"items": line(nl1, 0), "address": rm_address(), "shippingMethod": "chilexpress"}),
            "items[0].quantity",
            "out_of_range",
        ),
        (
            json!({"items": line(nl1, -2), "address": rm_address(), "shippingMethod": "chilexpress"}),
            "items[0].quantity",
            "out_of_range",
        ),
        (
            json!({"items": line(nl5, 1), "address": rm_address(), "shippingMethod": "chilexpress"}),
            "items[0].variantId",
            "not_found",
        ),
        (
            json!({"items": line(nl1, 1), "addressId": foreign, "shippingMethod": "chilexpress"}),
            "addressId",
            "not_found",
        ),
        (
            json!({"items": line(nl1, 1), "address": {"addressLine": "x", "comuna": "y"}, "shippingMethod": "chilexpress"}),
            "address.region",
            "required",
        ),
        (
            json!({"items": line(nl1, 1), "address": rm_address(), "shippingMethod": "chilexpress", "couponCode": "NOPE"}),
            "couponCode",
            "unknown",
        ),
        (
            json!({"items": [{"variantId": nl1, "quantity": 1, "unitPriceCents": 1}], "address": rm_address(), "shippingMethod": "chilexpress"}),
            "items[0].unitPriceCents",
            "unknown_field",
        ),
        (
            json!({"items": line(nl1, 1), "address": rm_address(), "shippingMethod": "dron"}),
            "shippingMethod",
            "invalid_value",
        ),
        (
            json!({"address": rm_address(), "shippingMethod": "chilexpress"}),
            "items",
            "empty_cart",
        ),
        (
            json!({"items": [{"variantId": nl1, "quantity": 1}, {"variantId": nl1, "quantity": 2}], "address": rm_address(), "shippingMethod": "chilexpress"}),
            "items[1].variantId",
            "duplicate",
        ),
    ] {
        let r = confirm(&app, &token, body, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.text);
        assert!(r.has_detail(field, issue), "{field}: {}", r.text);
    }
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM stock_reservations")
            .await,
        0
    );
}

#[tokio::test]
async fn idempotency_key_returns_the_original_order() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("idem@example.cl").await;
    let nl1 = variant_id(&app, "NL-AUTO-1G").await;
    let body = json!({"items": [{"variantId": nl1, "quantity": 2}], "address": rm_address(), "shippingMethod": "chilexpress"});
    let first = confirm(&app, &token, body.clone(), Some("key-123")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = confirm(&app, &token, body.clone(), Some("key-123")).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM stock_reservations")
            .await,
        1
    );
    // The same key for another request is a conflict.
    let other = json!({"items": [{"variantId": nl1, "quantity": 3}], "address": rm_address(), "shippingMethod": "chilexpress"});
    let r = confirm(&app, &token, other.clone(), Some("key-123")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.has_detail("Idempotency-Key", "reused_with_different_request"),
        "{}",
        r.text
    );
    // Keys are per user, and GraphQL honours the header too.
    let (token2, _, _) = app.register("idem2@example.cl").await;
    let r = confirm(&app, &token2, body.clone(), Some("key-123")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.body["id"], first.body["id"]);
    let gql = json!({"query": "mutation($i: CheckoutInput!) { confirmCheckout(input: $i) { id } }", "variables": {"i": body}});
    let g1 = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .bearer_auth(&token2)
                .header("Idempotency-Key", "gql-1")
                .json(&gql),
        )
        .await;
    let g2 = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .bearer_auth(&token2)
                .header("Idempotency-Key", "gql-1")
                .json(&gql),
        )
        .await;
    assert!(
        g1.body["data"]["confirmCheckout"]["id"].is_i64(),
        "{}",
        g1.text
    );
    assert_eq!(
        g1.body["data"]["confirmCheckout"]["id"],
        g2.body["data"]["confirmCheckout"]["id"]
    );
    // After 24 hours the key is forgotten.
    app.clock.advance(Duration::hours(25));
    let token = app.login("idem@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = confirm(&app, &token, body, Some("key-123")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_ne!(r.body["id"], first.body["id"]);
    // A failed attempt does not burn the key.
    let r = confirm(&app, &token, json!({"items": [{"variantId": nl1, "quantity": 500}], "address": rm_address(), "shippingMethod": "chilexpress"}), Some("retry-me")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM idempotency_keys WHERE key = 'retry-me'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_key_whose_request_died_mid_way_is_taken_over_once_its_lease_has_passed() {
    use dispensary::entities::idempotency_key;
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let app = TestApp::spawn().await;
    let (token, user_id, _) = app.register("caida@example.cl").await;
    let nl1 = variant_id(&app, "NL-AUTO-1G").await;
    let body = json!({"items": [{"variantId": nl1, "quantity": 1}], "address": rm_address(), "shippingMethod": "chilexpress"});
    // A request that claimed "died-1" and was killed before its order committed: the claim is
    // there, without an answer (the same request as "probe", so the same hash).
    let probe = confirm(&app, &token, body.clone(), Some("probe")).await;
    assert_eq!(probe.status, StatusCode::CREATED, "{}", probe.text);
    let hash = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::Key.eq("probe"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .request_hash;
    let now = app.clock.now();
    idempotency_key::ActiveModel {
        user_id: Set(user_id),
        key: Set("died-1".into()),
        scope: Set("checkout.confirm".into()),
        request_hash: Set(hash),
        response_status: Set(None),
        response_body: Set(None),
        expires_at: Set(now + Duration::hours(24)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .unwrap();
    let orders = || app.scalar_i64("SELECT COUNT(*) FROM orders");
    assert_eq!(orders().await, 1);

    // Within its lease the claim is still someone's: 409, retry when the lease ends.
    app.clock.advance(Duration::seconds(10));
    let r = confirm(&app, &token, body.clone(), Some("died-1")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.has_detail("Idempotency-Key", "in_progress"), "{}", r.text);
    let wait: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (20..=21).contains(&wait),
        "the lease's remaining 20 s: {wait}"
    );
    assert_eq!(orders().await, 1);

    // Past it, the retry takes the key over and places the order, once.
    app.clock.advance(Duration::seconds(wait));
    let taken = confirm(&app, &token, body.clone(), Some("died-1")).await;
    assert_eq!(taken.status, StatusCode::CREATED, "{}", taken.text);
    assert_eq!(orders().await, 2);
    let again = confirm(&app, &token, body, Some("died-1")).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.body["id"], taken.body["id"]);
    assert_eq!(orders().await, 2);
    // The answer was stored with the order, in its transaction.
    assert_eq!(
        app.scalar_string("SELECT response_body FROM idempotency_keys WHERE key = 'died-1'")
            .await
            .unwrap(),
        taken.body["id"].to_string()
    );
}
