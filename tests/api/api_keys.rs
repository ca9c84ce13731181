//! API keys for the store's other systems: created, listed and revoked by admins; a key acts as
//! a machine principal limited to its scopes on REST and GraphQL alike, never as a customer and
//! never on medicinal documents or health data; its own rate limit; audited; never shown again,
//! logged or recorded.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn create_key(app: &TestApp, admin: &str, scopes: &[&str]) -> (String, i64, Value) {
    let r = app
        .post(
            "/api/admin/api-keys",
            Some(admin),
            json!({"name": "ERP sync", "scopes": scopes}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_string();
    (key, r.body["id"].as_i64().unwrap(), r.body)
}

fn refused_for_scope(r: &Resp, scope: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error_code(), "forbidden", "{}", r.text);
    assert!(r.has_detail(scope, "missing_scope"), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains(scope));
}

fn refused_to_keys(r: &Resp) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(
        r.has_detail("credentials", "api_key_not_allowed"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn an_orders_read_key_lists_orders_and_is_refused_everything_else() {
    let logs = CapturedLogs::global();
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    let order = paid_order(&app, &customer, "WW-FEM-1G", 1).await;
    let (key, key_id, created) = create_key(&app, &admin, &["orders:read"]).await;
    assert!(key.starts_with("dsp_live_") && key.len() == 9 + 43, "{key}");
    assert!(created["publicId"].as_str().unwrap().starts_with("ak_"));
    assert_eq!(created["scopes"], json!(["orders:read"]));
    assert_eq!(created["active"], true);

    // REST, as a bearer credential and as X-API-Key.
    let r = app.get("/api/admin/orders", Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["id"] == order));
    let r = app
        .send(
            app.client
                .get(app.url(&format!("/api/orders/{order}")))
                .header("X-API-Key", &key),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], order);
    // GraphQL.
    let r = app
        .gql(
            Some(&key),
            "{ adminOrders { total items { id status } } }",
            json!({}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    assert!(r.body["data"]["adminOrders"]["total"].as_i64().unwrap() >= 1);

    // A product write: the missing scope named, on both surfaces; nothing written.
    let cat = app
        .scalar_i64("SELECT id FROM categories WHERE slug <> 'medicinal' ORDER BY id LIMIT 1")
        .await;
    let products = app.scalar_i64("SELECT COUNT(*) FROM products").await;
    let body = json!({"categoryId": cat, "name": "Por llave", "variants": [{"sku": "KEY-1", "optionLabel": "x", "priceCents": 1000}]});
    refused_for_scope(
        &app.post("/api/products", Some(&key), body).await,
        "products:write",
    );
    let r = app
        .gql(Some(&key), "mutation { deleteProduct(id: 1) }", json!({}))
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "forbidden",
        "{}",
        r.text
    );
    assert_eq!(
        r.body["errors"][0]["extensions"]["details"][0]["field"],
        "products:write"
    );
    assert!(r.body["data"].is_null(), "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM products").await,
        products
    );
    // A public read outside its scopes is refused too (a key reaches what its scopes open).
    refused_for_scope(&app.get("/api/products", Some(&key)).await, "products:read");

    // Medicinal documents, checkout, a customer's own lists, key administration: no scope opens them.
    refused_to_keys(&app.get("/api/admin/medicinal/docs", Some(&key)).await);
    refused_to_keys(
        &app.post(
            "/api/checkout/confirm",
            Some(&key),
            json!({"shippingMethod": "standard"}),
        )
        .await,
    );
    refused_to_keys(&app.get("/api/cart", Some(&key)).await);
    refused_to_keys(&app.get("/api/orders", Some(&key)).await);
    refused_to_keys(&app.get("/api/admin/api-keys", Some(&key)).await);
    let r = app
        .gql(
            Some(&key),
            "{ adminMedicinalDocuments { total } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["details"][0]["issue"], "api_key_not_allowed",
        "{}",
        r.text
    );
    let r = app.gql(Some(&key), "{ me { id } }", json!({})).await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "forbidden",
        "{}",
        r.text
    );

    // The list shows the key's use but never the key; only its hash is stored.
    let r = app.get("/api/admin/api-keys", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let listed = &r.body["items"][0];
    assert_eq!(listed["id"], key_id);
    assert!(listed["lastUsedAt"].is_string(), "{}", r.text);
    assert!(listed.get("key").is_none(), "{}", r.text);
    assert!(!r.text.contains(&key[9..]), "{}", r.text);
    let stored = app
        .scalar_string(&format!(
            "SELECT key_hash FROM api_keys WHERE id = {key_id}"
        ))
        .await
        .unwrap();
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains(&key[9..]));

    // Revoked: refused on its very next request, and on every surface.
    let r = app
        .delete(&format!("/api/admin/api-keys/{key_id}"), Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["active"], false);
    assert!(r.body["revokedAt"].is_string());
    let r = app.get("/api/admin/orders", Some(&key)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{}",
        r.text
    );
    let r = app
        .gql(Some(&key), "{ adminOrders { total } }", json!({}))
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "unauthorized",
        "{}",
        r.text
    );
    // Revoking again changes nothing and records nothing.
    let r = app
        .delete(&format!("/api/admin/api-keys/{key_id}"), Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'api_key.revoked'")
            .await,
        1
    );

    // Audited without the key: created and revoked, by the admin.
    let audit = app
        .get("/api/admin/logs?action=api_key.*", Some(&admin))
        .await;
    assert_eq!(audit.body["total"], 2, "{}", audit.text);
    assert!(!audit.text.contains(&key[9..]), "{}", audit.text);
    let everything = app.get("/api/admin/logs?pageSize=100", Some(&admin)).await;
    assert!(!everything.text.contains(&key[9..]));
    let outbox = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM outbox_events WHERE CAST(payload AS TEXT) LIKE '%{}%'",
            &key[9..]
        ))
        .await;
    assert_eq!(outbox, 0);
    // Nor in any log line the server wrote (this test's requests were captured: their trace ids).
    let traced = r.header("x-request-id").unwrap().to_string();
    let text = logs.text();
    assert!(
        text.contains(&traced),
        "the capture missed this test's requests"
    );
    assert!(
        text.contains(&format!("\"apiKeyId\":{key_id}")),
        "the access log names the key by id"
    );
    assert!(!text.contains(&key[9..]), "the key was logged");
}

#[tokio::test]
async fn a_products_write_key_writes_products_audited_as_the_key() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (key, key_id, _) = create_key(&app, &admin, &["products:write", "products:read"]).await;
    let cat = app
        .scalar_i64("SELECT id FROM categories WHERE slug <> 'medicinal' ORDER BY id LIMIT 1")
        .await;
    let r = app
        .post(
            "/api/products",
            Some(&key),
            json!({"categoryId": cat, "name": "Por llave", "variants": [{"sku": "KEY-1", "optionLabel": "x", "priceCents": 1000}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let product = r.body["id"].as_i64().unwrap();
    let r = app
        .gql(
            Some(&key),
            "mutation($id: Int!) { updateProduct(id: $id, input: {name: \"Renombrado\"}) { name } }",
            json!({"id": product}),
        )
        .await;
    assert_eq!(
        r.body["data"]["updateProduct"]["name"], "Renombrado",
        "{}",
        r.text
    );
    // Every write's audit row names the key, and no user.
    let rows = app
        .get(
            &format!("/api/admin/logs?entity=product&entityId={product}"),
            Some(&admin),
        )
        .await;
    let items = rows.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", rows.text);
    for row in items {
        assert_eq!(row["actorApiKeyId"], key_id, "{}", rows.text);
        assert!(row["actorUserId"].is_null(), "{}", rows.text);
    }
    // products:read sees the whole catalogue, medicinal products included (an anonymous
    // visitor does not), but a key never sees health data.
    let medicinal = app
        .scalar_i64(
            "SELECT COUNT(*) FROM products p JOIN categories c ON c.id = p.category_id WHERE c.slug = 'medicinal'",
        )
        .await;
    assert!(medicinal > 0);
    let all = app
        .send(
            app.client
                .get(app.url("/api/products?pageSize=100"))
                .header("X-API-Key", &key),
        )
        .await;
    // The admin's view of the catalogue: no shared cache may keep it.
    assert_eq!(all.header("cache-control"), Some("private, no-store"));
    let anonymous = app.get("/api/products?pageSize=100", None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert!(
        all.body["total"].as_i64().unwrap()
            >= anonymous.body["total"].as_i64().unwrap() + medicinal,
        "{} vs {}",
        all.text,
        anonymous.text
    );
}

#[tokio::test]
async fn a_customers_read_key_never_sees_health_data() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, customer) = app.validated_customer("validada@example.cl").await;
    let (key, _, _) = create_key(&app, &admin, &["customers:read"]).await;
    let by_admin = app
        .get(&format!("/api/users/{customer}"), Some(&admin))
        .await;
    assert_eq!(
        by_admin.body["validatedMedicinal"], true,
        "{}",
        by_admin.text
    );
    let by_key = app.get(&format!("/api/users/{customer}"), Some(&key)).await;
    assert_eq!(by_key.status, StatusCode::OK, "{}", by_key.text);
    assert_eq!(by_key.body["email"], "validada@example.cl");
    assert_eq!(by_key.body["validatedMedicinal"], false, "{}", by_key.text);
    let r = app
        .gql(
            Some(&key),
            "{ users(q: \"validada\") { items { id validatedMedicinal } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.body["data"]["users"]["items"][0]["validatedMedicinal"], false,
        "{}",
        r.text
    );
    // Nor may it change a customer.
    let r = app
        .patch(
            &format!("/api/users/{customer}"),
            Some(&key),
            json!({"isActive": false}),
        )
        .await;
    refused_to_keys(&r);
}

#[tokio::test]
async fn keys_are_checked_on_creation_expire_and_have_their_own_rate_limit() {
    let app = TestApp::spawn_with(&[("API_KEY_RATE_LIMIT_PER_MINUTE", "3")]).await;
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/admin/api-keys",
            Some(&admin),
            json!({"name": " ", "scopes": ["orders:read", "orders:delete"], "expiresAt": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("name", "required"), "{}", r.text);
    assert!(r.has_detail("scopes[1]", "unknown_scope"), "{}", r.text);
    assert!(r.has_detail("expiresAt", "in_past"), "{}", r.text);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM api_keys").await, 0);
    // A customer may not create keys; nor may a key, whatever its scopes.
    let customer = app.customer_token().await;
    let r = app
        .post(
            "/api/admin/api-keys",
            Some(&customer),
            json!({"name": "x", "scopes": ["orders:read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    let expires = (app.clock.now() + Duration::hours(1)).to_rfc3339();
    let r = app
        .post(
            "/api/admin/api-keys",
            Some(&admin),
            json!({"name": "Courier", "scopes": ["orders:read"], "expiresAt": expires}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let r = app.get("/api/admin/orders", Some(&key)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app.get("/api/admin/orders", Some(&key)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.header("retry-after").is_some());
    // The budget is the key's: an admin's requests from the same address still pass.
    assert_eq!(
        app.get("/api/admin/orders", Some(&admin)).await.status,
        StatusCode::OK
    );

    app.clock.advance(Duration::hours(2));
    let r = app.get("/api/admin/orders", Some(&key)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{}",
        r.text
    );
    // An unknown key is a 401 too, not anonymous access.
    let r = app
        .get(
            "/api/admin/orders",
            Some("dsp_live_0000000000000000000000000000000000000000000"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
}
