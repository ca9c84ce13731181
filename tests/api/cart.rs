//! The server cart: lines, current prices, stock caps, the medicinal gate.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn cart_lines_prices_and_quantities() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("carrito@example.cl").await;
    let empty = app.get("/api/cart", Some(&token)).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert_eq!(empty.body["id"], serde_json::Value::Null);
    let opened = app
        .call(reqwest::Method::POST, "/api/cart", Some(&token), None)
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text);
    let cart_id = opened.body["id"].as_i64().unwrap();
    let again = app
        .call(reqwest::Method::POST, "/api/cart", Some(&token), None)
        .await;
    assert_eq!(again.body["id"], cart_id, "one cart per customer");

    let nl1 = variant_id(&app, "NL-AUTO-1G").await;
    let ww5 = variant_id(&app, "WW-FEM-5G").await;
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": nl1, "quantity": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": ww5, "quantity": 1})),
        )
        .await;
    assert_eq!(r.body["itemCount"], 3);
    assert_eq!(r.body["subtotalCents"], 2 * 4990 + 24990);
    assert_eq!(r.body["items"][0]["lineTotalCents"], 9980);
    assert_eq!(r.body["items"][0]["available"], 40);
    // Updating a line replaces its quantity; 0 removes it.
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": nl1, "quantity": 5})),
        )
        .await;
    assert_eq!(r.body["items"][0]["quantity"], 5);
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": nl1, "quantity": 0})),
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    // Prices shown are current prices.
    let admin = app.admin_token().await;
    app.patch(
        &format!("/api/variants/{ww5}"),
        Some(&admin),
        json!({"priceCents": 20000}),
    )
    .await;
    assert_eq!(
        app.get("/api/cart", Some(&token)).await.body["subtotalCents"],
        20000
    );
    // Capped by stock (WW-FEM-5G has 12).
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": ww5, "quantity": 13})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("quantity", "insufficient_stock"), "{}", r.text);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("12"),
        "{}",
        r.text
    );
    for (body, field, issue) in [
        (
            json!({"variantId": ww5, "quantity": -1}),
            "quantity",
            "out_of_range",
        ),
        (json!({"variantId": ww5}), "quantity", "required"),
        (
            json!({"variantId": ww5, "quantity": 1, "priceCents": 1}),
            "priceCents",
            "unknown_field",
        ),
    ] {
        let r = app
            .call(
                reqwest::Method::PUT,
                "/api/cart/items",
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.has_detail(field, issue), "{}", r.text);
    }
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": 999999, "quantity": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // Empty it.
    assert_eq!(
        app.delete("/api/cart", Some(&token)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/cart", Some(&token)).await.body["itemCount"],
        0
    );
    assert_eq!(
        app.get("/api/cart", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn medicinal_variants_need_validation_to_enter_a_cart() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, id, _) = app.register("paciente@example.cl").await;
    let cbd = variant_id(&app, "CBD-FLOR-1G").await;
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": cbd, "quantity": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(
        r.has_detail("variantId", "medicinal_validation_required"),
        "{}",
        r.text
    );
    let g = app
        .gql(
            Some(&token),
            "mutation($v: Int!) { setCartItem(input: {variantId: $v, quantity: 1}) { itemCount } }",
            json!({"v": cbd}),
        )
        .await;
    assert_eq!(g.body["errors"][0]["extensions"]["code"], "forbidden");
    assert_eq!(
        g.body["errors"][0]["extensions"]["details"][0]["issue"],
        "medicinal_validation_required"
    );
    app.patch(
        &format!("/api/users/{id}"),
        Some(&admin),
        json!({"validatedMedicinal": true}),
    )
    .await;
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": cbd, "quantity": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["items"][0]["isMedicinal"], true);
    // Validation withdrawn: the line stays, with a warning.
    app.patch(
        &format!("/api/users/{id}"),
        Some(&admin),
        json!({"validatedMedicinal": false}),
    )
    .await;
    let c = app.get("/api/cart", Some(&token)).await;
    assert_eq!(
        c.body["warnings"].as_array().unwrap().len(),
        1,
        "{}",
        c.text
    );
}
