//! Ley 21.719, continued: prescriptions are kept no longer than `MEDICINAL_DOC_RETENTION_DAYS`
//! after they expired or were rejected (rows and files), and an admin may block the processing
//! of a customer's data, which makes the account read-only.

use chrono::Duration;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;
use crate::mail::run_jobs;
use crate::medicinal::submit;

/// Submits a prescription; (document id, its file on disk).
async fn prescription(app: &TestApp, token: &str, marker: &str) -> (i64, std::path::PathBuf) {
    let pdf = format!("%PDF-1.4\n% receta {marker}\n%%EOF\n").into_bytes();
    let form = Form::new()
        .text("docType", "receta")
        .text("acceptHealthDataProcessing", "true")
        .part("file", Part::bytes(pdf).file_name("receta.pdf"));
    let r = submit(app, token, form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let key = app
        .scalar_string(&format!(
            "SELECT f.storage_key FROM files f JOIN medicinal_documents d ON d.file_id = f.id WHERE d.id = {id}"
        ))
        .await
        .unwrap();
    let path = app
        .state
        .config
        .storage
        .upload_dir
        .join("private")
        .join(key);
    assert!(path.exists());
    (id, path)
}

async fn review(app: &TestApp, admin: &str, id: i64, body: serde_json::Value) {
    let r = app
        .patch(
            &format!("/api/admin/medicinal/docs/{id}"),
            Some(admin),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn exists(app: &TestApp, id: i64) -> bool {
    app.scalar_i64(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM medicinal_documents WHERE id = {id}"
    ))
    .await
        == 1
}

#[tokio::test]
async fn prescriptions_are_purged_with_their_files_a_retention_period_after_they_expired_or_were_rejected(
) {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("receta@example.cl").await;
    let start = app.clock.now();
    let (expiring, expiring_file) = prescription(&app, &token, "A").await;
    let (rejected, rejected_file) = prescription(&app, &token, "B").await;
    let (lasting, lasting_file) = prescription(&app, &token, "C").await;
    review(
        &app,
        &admin,
        expiring,
        json!({"status": "approved", "expiresAt": (start + Duration::days(30)).to_rfc3339()}),
    )
    .await;
    review(
        &app,
        &admin,
        rejected,
        json!({"status": "rejected", "notes": "Ilegible"}),
    )
    .await;
    review(
        &app,
        &admin,
        lasting,
        json!({"status": "approved", "expiresAt": (start + Duration::days(800)).to_rfc3339()}),
    )
    .await;
    let files_before = app
        .scalar_i64("SELECT CAST(COUNT(*) AS BIGINT) FROM files")
        .await;

    // 366 days on: the rejection is past the retention, the expiry (day 30) is not yet.
    app.clock.advance(Duration::days(366));
    run_jobs(&app).await;
    assert!(!exists(&app, rejected).await);
    assert!(
        !rejected_file.exists(),
        "the rejected prescription's file is gone"
    );
    assert!(exists(&app, expiring).await && expiring_file.exists());
    assert!(exists(&app, lasting).await && lasting_file.exists());
    assert_eq!(
        app.scalar_i64("SELECT CAST(COUNT(*) AS BIGINT) FROM files")
            .await,
        files_before - 1
    );

    // 30 days more: the expired one goes too; the one still valid stays.
    app.clock.advance(Duration::days(31));
    run_jobs(&app).await;
    assert!(!exists(&app, expiring).await);
    assert!(!expiring_file.exists());
    assert!(exists(&app, lasting).await && lasting_file.exists());
    assert_eq!(
        app.scalar_i64("SELECT CAST(COUNT(*) AS BIGINT) FROM files")
            .await,
        files_before - 2
    );
    // Audited, by nobody in particular.
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM system_logs WHERE action = 'medicinal_document.purged' AND actor_user_id IS NULL AND entity_id IN ({expiring}, {rejected})"
        ))
        .await,
        2
    );
}

#[tokio::test]
async fn prescription_retention_follows_its_setting() {
    let app = TestApp::spawn_with(&[("MEDICINAL_DOC_RETENTION_DAYS", "10")]).await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("corta@example.cl").await;
    let (doc, file) = prescription(&app, &token, "D").await;
    review(&app, &admin, doc, json!({"status": "rejected"})).await;
    app.clock.advance(Duration::days(9));
    run_jobs(&app).await;
    assert!(exists(&app, doc).await && file.exists());
    app.clock.advance(Duration::days(2));
    run_jobs(&app).await;
    assert!(!exists(&app, doc).await && !file.exists());
}

async fn checkout(app: &TestApp, token: &str) -> Resp {
    let vid = variant_id(app, "NL-AUTO-1G").await;
    app.post(
        "/api/checkout/confirm",
        Some(token),
        json!({"items": [{"variantId": vid, "quantity": 1}], "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}, "shippingMethod": "starken"}),
    )
    .await
}

#[tokio::test]
async fn a_blocked_customer_reads_but_creates_nothing_until_unblocked() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, id, _) = app.register("bloqueo@example.cl").await;
    let path = format!("/api/admin/users/{id}/block-processing");

    // Only admins; a reason is required; only customers.
    assert_eq!(
        app.post(&path, Some(&token), json!({"reason": "x"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = app.post(&path, Some(&admin), json!({"reason": "  "})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("reason", "required"));
    let admin_id = app
        .scalar_i64(&format!(
            "SELECT id FROM users WHERE email = '{ADMIN_EMAIL}'"
        ))
        .await;
    let r = app
        .post(
            &format!("/api/admin/users/{admin_id}/block-processing"),
            Some(&admin),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    let r = app
        .post(
            &path,
            Some(&admin),
            json!({"reason": "Disputa por exactitud de datos"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["processingBlockedAt"].is_string(), "{}", r.text);
    assert_eq!(
        r.body["processingBlockedReason"],
        "Disputa por exactitud de datos"
    );
    let since = r.body["processingBlockedAt"].clone();

    // Read-only: reading works; orders, documents and reviews are refused, and write nothing.
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["processingBlockedAt"], since);
    let r = checkout(&app, &token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.has_detail("account", "processing_blocked"), "{}", r.text);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM orders WHERE user_id = {id}"
        ))
        .await,
        0
    );
    let g = app
        .gql(
            Some(&token),
            "mutation($input: CheckoutInput!) { confirmCheckout(input: $input) { id } }",
            json!({"input": {"items": [{"variantId": variant_id(&app, "NL-AUTO-1G").await, "quantity": 1}], "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}, "shippingMethod": "starken"}}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "forbidden",
        "{}",
        g.text
    );
    let form = Form::new()
        .text("docType", "receta")
        .text("acceptHealthDataProcessing", "true")
        .part(
            "file",
            Part::bytes(b"%PDF-1.4\n%%EOF\n".to_vec()).file_name("r.pdf"),
        );
    let r = submit(&app, &token, form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM files WHERE owner_id = {id}"
        ))
        .await,
        0
    );
    let nl = app
        .scalar_i64("SELECT id FROM products WHERE slug = 'northern-lights-auto'")
        .await;
    let r = app
        .post(
            &format!("/api/products/{nl}/reviews"),
            Some(&token),
            json!({"rating": 5, "body": "Excelentes"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.has_detail("account", "processing_blocked"));

    // Blocking again changes the reason, not since when.
    let r = app
        .post(&path, Some(&admin), json!({"reason": "Reclamo 2026-114"}))
        .await;
    assert_eq!(r.body["processingBlockedAt"], since);
    assert_eq!(r.body["processingBlockedReason"], "Reclamo 2026-114");

    // Undone: creating works again.
    let r = app.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["processingBlockedAt"].is_null());
    assert!(r.body["processingBlockedReason"].is_null());
    let r = checkout(&app, &token).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Audited, with the reason.
    let actions: Vec<String> = {
        use sea_orm::ConnectionTrait;
        app.state
            .db
            .query_all_raw(sea_orm::Statement::from_string(
                app.state.db.get_database_backend(),
                format!("SELECT action FROM system_logs WHERE entity = 'user' AND entity_id = {id} AND action LIKE 'user.processing%' ORDER BY id"),
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index(0).unwrap())
            .collect()
    };
    assert_eq!(
        actions,
        [
            "user.processing_blocked",
            "user.processing_blocked",
            "user.processing_unblocked"
        ]
    );
    let meta = app
        .scalar_string(&format!(
            "SELECT CAST(meta AS TEXT) FROM system_logs WHERE action = 'user.processing_blocked' AND entity_id = {id} ORDER BY id LIMIT 1"
        ))
        .await
        .unwrap();
    assert!(meta.contains("Disputa por exactitud de datos"), "{meta}");
}
