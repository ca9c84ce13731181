//! The address book: validation, one default, ownership.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn addresses_validate_regions_and_keep_one_default() {
    let app = TestApp::spawn().await;
    let (token, user_id, _) = app.register("casa@example.cl").await;
    let r = app
        .post("/api/addresses", Some(&token), json!({"name": "Casa", "addressLine": "Av. Providencia 1234", "comuna": "Providencia", "region": "RM"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["region"], "Metropolitana");
    assert_eq!(
        r.body["isDefault"], true,
        "the first address is the default"
    );
    let first = r.body["id"].as_i64().unwrap();
    let r = app
        .post("/api/addresses", Some(&token), json!({"addressLine": "Calle Esmeralda 10", "comuna": "Valparaíso", "region": "Región de Valparaíso", "isDefault": true}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["region"], "Valparaíso");
    assert_eq!(r.body["name"], "Dirección");
    let second = r.body["id"].as_i64().unwrap();
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM addresses WHERE user_id = {user_id} AND is_default = TRUE"
        ))
        .await,
        1
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT default_address_id FROM user_profiles WHERE user_id = {user_id}"
        ))
        .await,
        second
    );
    let list = app.get("/api/addresses", Some(&token)).await;
    assert_eq!(list.body["total"], 2);
    assert_eq!(list.body["items"][0]["id"], second, "default first");
    let r = app
        .patch(
            &format!("/api/addresses/{first}"),
            Some(&token),
            json!({"isDefault": true, "notes": "Timbre 56"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["notes"], "Timbre 56");
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT id FROM addresses WHERE user_id = {user_id} AND is_default = TRUE"
        ))
        .await,
        first
    );
    assert_eq!(
        app.get("/api/me", Some(&token)).await.body["profile"]["defaultAddressId"],
        first
    );

    let r = app
        .post(
            "/api/addresses",
            Some(&token),
            json!({"addressLine": " ", "comuna": "", "region": "Mendoza"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for (f, i) in [
        ("addressLine", "required"),
        ("comuna", "required"),
        ("region", "unknown_region"),
    ] {
        assert!(r.has_detail(f, i), "{f}: {}", r.text);
    }
    let r = app
        .post(
            "/api/addresses",
            Some(&token),
            json!({"addressLine": "x", "comuna": "y"}),
        )
        .await;
    assert!(r.has_detail("region", "required"), "{}", r.text);
    assert_eq!(
        app.delete(&format!("/api/addresses/{second}"), Some(&token))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/addresses", Some(&token)).await.body["total"],
        1
    );
}

#[tokio::test]
async fn another_customers_address_is_not_found() {
    let app = TestApp::spawn().await;
    let (alice, _, _) = app.register("alice@example.cl").await;
    let (bob, _, _) = app.register("bob@example.cl").await;
    let r = app
        .post(
            "/api/addresses",
            Some(&alice),
            json!({"addressLine": "Los Aromos 5", "comuna": "Temuco", "region": "IX"}),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        app.patch(
            &format!("/api/addresses/{id}"),
            Some(&bob),
            json!({"comuna": "X"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/api/addresses/{id}"), Some(&bob))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/addresses", Some(&bob)).await.body["total"], 0);
    assert_eq!(
        app.get("/api/addresses", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.scalar_string(&format!("SELECT comuna FROM addresses WHERE id = {id}"))
            .await
            .unwrap(),
        "Temuco"
    );
}
