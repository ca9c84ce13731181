//! Product reviews: buyers only, once, bounds, HTML and blocklist handling, moderation, ratings.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn product_id(app: &TestApp, slug: &str) -> i64 {
    app.scalar_i64(&format!("SELECT id FROM products WHERE slug = '{slug}'"))
        .await
}

#[tokio::test]
async fn buyers_review_once_with_clean_text_and_admins_moderate() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let nl = product_id(&app, "northern-lights-auto").await;
    let path = format!("/api/products/{nl}/reviews");
    let (buyer, buyer_id, _) = app.register("comprador@example.cl").await;
    let (browser, _, _) = app.register("miron@example.cl").await;
    let good = json!({"rating": 5, "title": "<b>Excelente</b>", "body": "<p>Germinaron <script>alert(1)</script>todas &amp; rápido</p>"});

    // Not a buyer (yet): nothing bought, or only an unpaid order.
    let r = app.post(&path, Some(&browser), good.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error_code(), "forbidden");
    assert!(r.has_detail("productId", "not_a_buyer"), "{}", r.text);
    order_and_start(&app, &buyer, "NL-AUTO-1G", 1, None).await;
    let r = app.post(&path, Some(&buyer), good.clone()).await;
    assert!(
        r.has_detail("productId", "not_a_buyer"),
        "pending is not bought: {}",
        r.text
    );
    assert_eq!(
        app.post(&path, None, good.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );

    paid_order(&app, &buyer, "NL-AUTO-1G", 1).await;
    // Bounds, then the blocklist.
    for (body, field, issue) in [
        (
            json!({"rating": 0, "body": "Muy buena semilla"}),
            "rating",
            "out_of_range",
        ),
        (
            json!({"rating": 6, "body": "Muy buena semilla"}),
            "rating",
            "out_of_range",
        ),
        (
            json!({"rating": 4, "body": "<b>corta</b>"}),
            "body",
            "too_short",
        ),
        (
            json!({"rating": 4, "body": "x".repeat(2001)}),
            "body",
            "too_long",
        ),
        (
            json!({"rating": 4, "title": "t".repeat(121), "body": "Muy buena semilla"}),
            "title",
            "too_long",
        ),
        (
            json!({"rating": 1, "body": "El vendedor es un IDIOTA, nunca más"}),
            "body",
            "inappropriate_language",
        ),
        (
            json!({"rating": 1, "title": "What a load of sh*t... shit", "body": "Nunca llegó el pedido"}),
            "title",
            "inappropriate_language",
        ),
    ] {
        let r = app.post(&path, Some(&buyer), body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{field}/{issue}: {}",
            r.text
        );
        assert!(r.has_detail(field, issue), "{field}/{issue}: {}", r.text);
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM product_reviews").await,
        0,
        "refused reviews are not stored"
    );

    let r = app.post(&path, Some(&buyer), good.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["title"], "Excelente");
    assert_eq!(r.body["body"], "Germinaron todas & rápido");
    assert_eq!(r.body["rating"], 5);
    assert_eq!(r.body["authorName"], "Test");
    assert_eq!(r.body["userId"], buyer_id);
    let first = r.body["id"].as_i64().unwrap();
    let again = app.post(&path, Some(&buyer), good.clone()).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert!(again.has_detail("productId", "already_reviewed"));
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT body FROM product_reviews WHERE id = {first}"
        ))
        .await
        .unwrap(),
        "Germinaron todas & rápido"
    );

    // A second buyer; the list is public, newest first, with the average over all visible reviews.
    let (second, _, _) = app.register("segundo@example.cl").await;
    paid_order(&app, &second, "NL-AUTO-1G", 1).await;
    let r = app
        .post(
            &path,
            Some(&second),
            json!({"rating": 4, "body": "Buena, pero lenta en crecer."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let second_id = r.body["id"].as_i64().unwrap();
    let list = app.get(&path, None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["total"], 2);
    assert_eq!(list.body["count"], 2);
    assert_eq!(list.body["averageRating"], 4.5);
    assert_eq!(list.body["items"][0]["id"], second_id);
    let page = app.get(&format!("{path}?pageSize=1"), None).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        page.body["averageRating"], 4.5,
        "the average is over every visible review"
    );
    let product = app.get(&format!("/api/products/{nl}"), None).await;
    assert_eq!(product.body["rating"], json!({"average": 4.5, "count": 2}));

    // Moderation: hidden reviews leave the list and the rating.
    let r = app
        .patch(
            &format!("/api/reviews/{second_id}"),
            Some(&buyer),
            json!({"isVisible": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .patch(
            &format!("/api/reviews/{second_id}"),
            Some(&admin),
            json!({"isVisible": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["isVisible"], false);
    let list = app.get(&path, None).await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["averageRating"], 5.0);
    assert_eq!(list.body["items"][0]["id"], first);
    assert_eq!(
        app.get(&format!("/api/products/{nl}"), None).await.body["rating"],
        json!({"average": 5.0, "count": 1})
    );
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'review.moderated' AND entity_id = {second_id}")).await,
        1
    );
    assert_eq!(
        app.patch(
            "/api/reviews/999999",
            Some(&admin),
            json!({"isVisible": true})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // A product without reviews, and one the viewer may not see.
    let ww = product_id(&app, "white-widow-feminizada").await;
    let r = app.get(&format!("/api/products/{ww}/reviews"), None).await;
    assert_eq!(
        (r.body["count"].as_i64(), r.body["averageRating"].is_null()),
        (Some(0), true)
    );
    let cbd = product_id(&app, "flor-cbd-terapeutica").await;
    assert_eq!(
        app.get(&format!("/api/products/{cbd}/reviews"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn product_ratings_are_batched_in_lists() {
    let app = TestApp::spawn().await;
    let (buyer, _, _) = app.register("lista@example.cl").await;
    paid_order(&app, &buyer, "NL-AUTO-1G", 1).await;
    let nl = product_id(&app, "northern-lights-auto").await;
    let r = app
        .post(
            &format!("/api/products/{nl}/reviews"),
            Some(&buyer),
            json!({"rating": 3, "body": "Cumple, sin más."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let g = app
        .gql(
            None,
            "{ products(pageSize: 50) { items { id rating { average count } } } }",
            json!({}),
        )
        .await;
    let items = g.body["data"]["products"]["items"]
        .as_array()
        .expect("items");
    assert!(items.len() >= 2, "{}", g.text);
    for p in items {
        if p["id"] == nl {
            assert_eq!(p["rating"], json!({"average": 3.0, "count": 1}));
        } else {
            assert_eq!(p["rating"], json!({"average": null, "count": 0}));
        }
    }
}
