//! /api/me and the admin's user management: roles, pagination, deactivation, soft delete.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn customer_cannot_become_admin_by_any_route() {
    let app = TestApp::spawn().await;
    // Register with a role: unknown field.
    let r = app
        .post("/api/auth/register", None, json!({"name": "M", "email": "m@example.cl", "password": "secreto123", "role": "admin"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("role", "unknown_field"), "{}", r.text);
    let (token, id, _) = app.register("m@example.cl").await;
    // PATCH /api/me with forbidden fields.
    for body in [
        json!({"role": "admin"}),
        json!({"isActive": true}),
        json!({"validatedMedicinal": true}),
    ] {
        let r = app.patch("/api/me", Some(&token), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.error_code(), "validation_error");
    }
    // Admin route.
    let r = app
        .patch(
            &format!("/api/users/{id}"),
            Some(&token),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // GraphQL: the mutation is guarded the same way, and the register input has no role.
    let g = app
        .gql(
            Some(&token),
            "mutation($id: Int!) { updateUser(id: $id, input: {role: admin}) { role } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "forbidden",
        "{}",
        g.text
    );
    let g = app
        .gql(
            None,
            "mutation { register(input: {name: \"Z\", email: \"z@example.cl\", password: \"secreto123\", role: admin}) { user { role } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        g.text
    );
    let g = app
        .gql(
            Some(&token),
            "mutation { updateMe(input: {role: admin}) { role } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        g.text
    );
    assert_eq!(
        app.scalar_string(&format!("SELECT role FROM users WHERE id = {id}"))
            .await
            .unwrap(),
        "customer"
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .await,
        1
    );
}

#[tokio::test]
async fn update_me_changes_own_fields_only_and_audits() {
    let app = TestApp::spawn().await;
    let (token, id, _) = app.register("self@example.cl").await;
    app.register("taken@example.cl").await;
    let r = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"name": "Nuevo Nombre", "phone": "+56 9 1234 5678", "rut": "76.086.428-5"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "Nuevo Nombre");
    assert_eq!(r.body["rut"], "76086428-5");
    assert_eq!(r.body["profile"]["phone"], "+56912345678");
    let r = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"email": "TAKEN@example.cl"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.has_detail("email", "already_exists"));
    let r = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"phone": "12", "rut": "1-2"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.has_detail("phone", "invalid_format") && r.has_detail("rut", "invalid_rut"),
        "{}",
        r.text
    );
    let r = app
        .patch("/api/me", Some(&token), json!({"rut": null}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["rut"], serde_json::Value::Null);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM system_logs WHERE action = 'user.updated' AND entity_id = {id}"
        ))
        .await,
        2
    );
    let r = app.patch("/api/me", None, json!({"name": "X"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admin_routes_refuse_customers_and_anonymous() {
    let app = TestApp::spawn().await;
    let (token, id, _) = app.register("c@example.cl").await;
    let routes = [
        ("GET", "/api/users".to_string(), None),
        ("GET", format!("/api/users/{id}"), None),
        (
            "PATCH",
            format!("/api/users/{id}"),
            Some(json!({"isActive": false})),
        ),
        ("DELETE", format!("/api/users/{id}"), None),
    ];
    for (m, path, body) in routes {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let anon = app.call(method.clone(), &path, None, body.clone()).await;
        assert_eq!(
            anon.status,
            StatusCode::UNAUTHORIZED,
            "{m} {path}: {}",
            anon.text
        );
        assert_eq!(anon.error_code(), "unauthorized");
        let cust = app.call(method, &path, Some(&token), body).await;
        assert_eq!(
            cust.status,
            StatusCode::FORBIDDEN,
            "{m} {path}: {}",
            cust.text
        );
        assert_eq!(cust.error_code(), "forbidden");
    }
    assert_eq!(
        app.get("/api/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let g = app.gql(None, "{ users { total } }", json!({})).await;
    assert_eq!(g.body["errors"][0]["extensions"]["code"], "unauthorized");
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {id} AND is_active = TRUE"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn users_list_paginates_filters_and_bounds_page_size() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for i in 0..5 {
        app.register(&format!("list{i}@example.cl")).await;
    }
    let r = app.get("/api/users?page=1&pageSize=3", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["total"], 7);
    assert_eq!(r.body["page"], 1);
    assert_eq!(r.body["pageSize"], 3);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
    let r = app.get("/api/users?page=3&pageSize=3", Some(&admin)).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = app.get("/api/users?q=LIST3", Some(&admin)).await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    assert_eq!(r.body["items"][0]["email"], "list3@example.cl");
    let r = app.get("/api/users?role=admin", Some(&admin)).await;
    assert_eq!(r.body["total"], 1);
    let r = app.get("/api/users?q=100%25", Some(&admin)).await;
    assert_eq!(
        r.body["total"], 0,
        "a literal % matches nothing: {}",
        r.text
    );
    let r = app.get("/api/users", Some(&admin)).await;
    assert_eq!(r.body["pageSize"], 20);

    for (q, field) in [
        ("pageSize=101", "pageSize"),
        ("pageSize=0", "pageSize"),
        ("page=0", "page"),
    ] {
        let r = app.get(&format!("/api/users?{q}"), Some(&admin)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text);
        assert!(r.has_detail(field, "out_of_range"), "{q}: {}", r.text);
    }
    let r = app.get("/api/users?pageSize=abc", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.has_detail("pageSize", "invalid_type"), "{}", r.text);
    let r = app.get("/api/users?role=superuser", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let g = app
        .gql(
            Some(&admin),
            "{ users(pageSize: 101) { total } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"],
        "validation_error"
    );
    assert_eq!(
        g.body["errors"][0]["extensions"]["details"][0]["field"],
        "pageSize"
    );
}

#[tokio::test]
async fn deactivation_takes_effect_immediately() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let login = app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await;
    let token = login["accessToken"].as_str().unwrap();
    let rt = login["refreshToken"].as_str().unwrap();
    let id = login["user"]["id"].as_i64().unwrap();
    assert_eq!(app.get("/api/me", Some(token)).await.status, StatusCode::OK);

    let r = app
        .patch(
            &format!("/api/users/{id}"),
            Some(&admin),
            json!({"isActive": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["isActive"], false);
    let me = app.get("/api/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.body["error"]["message"], "The account is disabled");
    assert_eq!(
        app.post("/api/auth/refresh", None, json!({"refreshToken": rt}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let meta = app
        .scalar_string(&format!("SELECT CAST(meta AS TEXT) FROM system_logs WHERE action = 'user.updated' AND entity_id = {id}"))
        .await
        .unwrap();
    assert!(meta.contains("isActive"), "{meta}");

    // Reactivated: can log in again.
    let r = app
        .patch(
            &format!("/api/users/{id}"),
            Some(&admin),
            json!({"isActive": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await;
}

#[tokio::test]
async fn role_changes_apply_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, id, _) = app.register("promo@example.cl").await;
    assert_eq!(
        app.get("/api/users", Some(&token)).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .patch(
            &format!("/api/users/{id}"),
            Some(&admin),
            json!({"role": "admin", "validatedMedicinal": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["role"], "admin");
    assert_eq!(r.body["validatedMedicinal"], true);
    // Same token, new role.
    assert_eq!(
        app.get("/api/users", Some(&token)).await.status,
        StatusCode::OK
    );
    let r = app
        .patch(
            &format!("/api/users/{id}"),
            Some(&admin),
            json!({"role": "customer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/users", Some(&token)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn last_active_admin_cannot_be_demoted_deactivated_or_deleted() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = app.get("/api/me", Some(&admin)).await.body["id"]
        .as_i64()
        .unwrap();
    for body in [json!({"role": "customer"}), json!({"isActive": false})] {
        let r = app
            .patch(&format!("/api/users/{admin_id}"), Some(&admin), body)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
        assert_eq!(r.body["error"]["details"][0]["issue"], "last_admin");
    }
    let r = app
        .delete(&format!("/api/users/{admin_id}"), Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // With a second admin, the first may be stepped down by the other one.
    let (_, other, _) = app.register("second@example.cl").await;
    app.patch(
        &format!("/api/users/{other}"),
        Some(&admin),
        json!({"role": "admin"}),
    )
    .await;
    let other_token = app.login("second@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .expect("token")
        .to_string();
    let r = app
        .patch(
            &format!("/api/users/{admin_id}"),
            Some(&other_token),
            json!({"role": "customer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .await,
        1
    );
}

#[tokio::test]
async fn soft_delete_deactivates_and_revokes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, id, body) = app.register("gone@example.cl").await;
    let rt = body["refreshToken"].as_str().unwrap().to_string();
    let r = app.delete(&format!("/api/users/{id}"), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post("/api/auth/refresh", None, json!({"refreshToken": rt}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM users WHERE id = {id} AND is_active = FALSE AND deleted_at IS NOT NULL")).await,
        1
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM auth_tokens WHERE user_id = {id} AND revoked_at IS NULL"
        ))
        .await,
        0
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM system_logs WHERE action = 'user.deleted' AND entity_id = {id}"
        ))
        .await,
        1
    );
    let again = app.get(&format!("/api/users/{id}"), Some(&admin)).await;
    assert_eq!(
        again.body["deletedAt"].as_str().map(|s| s.ends_with('Z')),
        Some(true),
        "{}",
        again.text
    );
    assert_eq!(
        app.delete(&format!("/api/users/{id}"), Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/users/999999", Some(&admin)).await.status,
        StatusCode::NOT_FOUND
    );
    let r = app.get("/api/users/abc", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.has_detail("id", "invalid_type"));
}

#[tokio::test]
async fn graphql_and_rest_return_the_same_user() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("same@example.cl").await;
    let rest = app.get("/api/me", Some(&token)).await;
    let g = app
        .gql(
            Some(&token),
            "{ me { id name email emailVerified pendingEmail privacyPolicyAccepted rut role isActive validatedMedicinal profile { phone birthdate address comuna region defaultAddressId } createdAt updatedAt deletedAt processingBlockedAt processingBlockedReason erasedAt } }",
            json!({}),
        )
        .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body["data"]["me"], rest.body);
    // Field order is the GraphQL selection order.
    assert!(rest.text.starts_with("{\"id\":"), "{}", rest.text);
}

#[tokio::test]
async fn seed_is_idempotent() {
    let app = TestApp::spawn().await;
    let users = app.scalar_i64("SELECT COUNT(*) FROM users").await;
    let logs = app.scalar_i64("SELECT COUNT(*) FROM system_logs").await;
    let report = dispensary::seed::run(&app.state).await.unwrap();
    assert_eq!(report.created + report.updated, 0, "{report:?}");
    assert_eq!(
        report.unchanged,
        2 + 1 + 2 + 4 + 12,
        "users, the demo document, categories, products, variants"
    );
    // The demo customer's document awaits review, and its file is stored privately.
    let docs = app
        .scalar_i64("SELECT COUNT(*) FROM medicinal_documents d JOIN users u ON u.id = d.user_id WHERE u.email = 'cliente@dispensario.local' AND d.status = 'pending'")
        .await;
    assert_eq!(docs, 1);
    let key = app
        .scalar_string(
            "SELECT f.storage_key FROM files f JOIN medicinal_documents d ON d.file_id = f.id",
        )
        .await
        .unwrap();
    let stored = std::fs::read(app.upload_dir.join("private").join(key)).unwrap();
    assert!(stored.starts_with(b"%PDF-"));
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users").await, users);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs").await,
        logs
    );
}

/// An admin never locks itself out: deleting, deactivating or demoting its own account is 409
/// (`self`), even when another admin exists, and the session keeps working.
#[tokio::test]
async fn admin_cannot_delete_deactivate_or_demote_itself() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = app.get("/api/me", Some(&admin)).await.body["id"]
        .as_i64()
        .unwrap();
    let (_, other, _) = app.register("second@example.cl").await;
    let r = app
        .patch(
            &format!("/api/users/{other}"),
            Some(&admin),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for body in [json!({"role": "customer"}), json!({"isActive": false})] {
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        let r = app
            .patch(&format!("/api/users/{admin_id}"), Some(&admin), body)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
        assert_eq!(r.error_code(), "conflict");
        assert!(r.has_detail(&field, "self"), "{}", r.text);
    }
    let r = app
        .delete(&format!("/api/users/{admin_id}"), Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.has_detail("id", "self"), "{}", r.text);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {admin_id} AND role = 'admin' AND is_active AND deleted_at IS NULL"
        ))
        .await,
        1
    );
    // Nothing was revoked: the session still works, and may still manage others.
    let r = app.get("/api/me", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .patch(
            &format!("/api/users/{admin_id}"),
            Some(&admin),
            json!({"validatedMedicinal": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .patch(
            &format!("/api/users/{other}"),
            Some(&admin),
            json!({"isActive": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
