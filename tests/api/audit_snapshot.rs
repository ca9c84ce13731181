//! The audit log as a public contract: one fixed scenario touching every audited action, and the
//! rows `GET /api/admin/logs` shows for it (action, entity, entity id, actor, order and metadata)
//! compared with `tests/api/fixtures/audit_log_snapshot.json`. Times, payment references and
//! trace ids vary from run to run and are masked. `UPDATE_SNAPSHOTS=1 cargo test audit_log`
//! rewrites the file; its diff is then the change to review. Each audit row's outbox row is
//! checked against it too.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::medicinal::PDF;
use crate::sim_webpay::{WebpaySim, CODE};
use crate::uploads::PNG_1X1;

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/fixtures/audit_log_snapshot.json"
);

/// Every row of the audit log through the admin API, oldest first, in the API's order.
async fn audit_rows(app: &TestApp) -> Vec<Value> {
    let admin = app.admin_token().await;
    let mut rows = Vec::new();
    for page in 1.. {
        let r = app
            .get(
                &format!("/api/admin/logs?page={page}&pageSize=100"),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let items = r.body["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        rows.extend(items);
    }
    rows.reverse();
    rows
}

/// Masks what differs between runs: times and payment references (which embed a time).
fn masked(v: &Value) -> Value {
    match v {
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => json!("<time>"),
        // An API key's public id is random.
        Value::String(s) if s.starts_with("ak_") => json!("ak_<random>"),
        Value::String(s) if s.starts_with("ORD-") => {
            let id = s.split('-').nth(1).unwrap_or_default();
            json!(format!("ORD-{id}-<time>"))
        }
        Value::Array(a) => Value::Array(a.iter().map(masked).collect()),
        Value::Object(o) => {
            // Keys sorted, so that the snapshot's diff shows only what changed.
            let sorted: std::collections::BTreeMap<&String, Value> =
                o.iter().map(|(k, v)| (k, masked(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        other => other.clone(),
    }
}

fn file_form(field: &str, name: &str, bytes: &[u8]) -> Form {
    Form::new().part(
        field.to_string(),
        Part::bytes(bytes.to_vec()).file_name(name.to_string()),
    )
}

async fn multipart(app: &TestApp, path: &str, token: &str, form: Form) -> Resp {
    app.send(
        app.client
            .post(app.url(path))
            .bearer_auth(token)
            .multipart(form),
    )
    .await
}

fn ok(r: &Resp, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
}

/// The scenario: each step is one or more audited actions, in a fixed order. Not in it:
/// `seed.user_updated` (written only when `seed` runs again and repairs an account).
async fn scenario(app: &TestApp, sim: &WebpaySim) {
    let admin = app.admin_token().await;
    // Identity: register, a failed login, a login, rotation and reuse, logout.
    let (token, user_id, _) = app.register("auditoria@example.cl").await;
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "auditoria@example.cl", "password": "equivocada1"}),
        )
        .await;
    ok(&r, StatusCode::UNAUTHORIZED);
    let login = app.login("auditoria@example.cl", "secreto123").await;
    let rt = login["refreshToken"].as_str().unwrap();
    ok(
        &app.post("/api/auth/refresh", None, json!({"refreshToken": rt}))
            .await,
        StatusCode::OK,
    );
    ok(
        &app.post("/api/auth/refresh", None, json!({"refreshToken": rt}))
            .await,
        StatusCode::UNAUTHORIZED,
    );
    let other = app.login("auditoria@example.cl", "secreto123").await;
    ok(
        &app.post(
            "/api/auth/logout",
            Some(other["accessToken"].as_str().unwrap()),
            json!({}),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    ok(
        &app.patch(
            "/api/me",
            Some(&token),
            json!({"name": "Nombre Nuevo", "phone": "+56911112222"}),
        )
        .await,
        StatusCode::OK,
    );
    // Email verification: the registration's link used, an email change asked for (not verified).
    let link = app.scalar_i64("SELECT MIN(id) FROM account_links").await;
    let url = dispensary::services::accounts::links::mint_url(&app.state, link)
        .await
        .unwrap()
        .expect("a pending link");
    let link = url.split("token=").nth(1).unwrap();
    ok(
        &app.post("/api/auth/verify-email", None, json!({"token": link}))
            .await,
        StatusCode::OK,
    );
    ok(
        &app.patch(
            "/api/me",
            Some(&token),
            json!({"email": "auditoria-nueva@example.cl"}),
        )
        .await,
        StatusCode::OK,
    );
    // Passwords: a reset asked for an unknown address and for this one, the link used (every
    // session ends), then a signed-in change.
    for email in ["nadie@example.cl", "auditoria@example.cl"] {
        ok(
            &app.post("/api/auth/password/forgot", None, json!({"email": email}))
                .await,
            StatusCode::ACCEPTED,
        );
    }
    let link = app
        .scalar_i64("SELECT MAX(id) FROM account_links WHERE purpose = 'reset_password'")
        .await;
    let url = dispensary::services::accounts::links::mint_url(&app.state, link)
        .await
        .unwrap()
        .expect("a pending link");
    ok(
        &app.post(
            "/api/auth/password/reset",
            None,
            json!({"token": url.split("token=").nth(1).unwrap(), "newPassword": "secreto456"}),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    let token = app.login("auditoria@example.cl", "secreto456").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &app.patch(
            "/api/me/password",
            Some(&token),
            json!({"currentPassword": "secreto456", "newPassword": "secreto123"}),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    // Sessions: one ended by its owner, then the others.
    let other = app.login("auditoria@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let mine = app.get("/api/me/sessions", Some(&other)).await;
    ok(&mine, StatusCode::OK);
    let ended = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .expect("the session of the change")["id"]
        .as_i64()
        .unwrap();
    ok(
        &app.delete(&format!("/api/me/sessions/{ended}"), Some(&other))
            .await,
        StatusCode::NO_CONTENT,
    );
    ok(
        &app.post("/api/me/sessions/revoke-others", Some(&other), json!({}))
            .await,
        StatusCode::OK,
    );
    let token = other;
    // Two-factor: set up, enabled, a sign-in with a wrong code then a recovery code, disabled.
    let setup = app.post("/api/me/2fa/setup", Some(&token), json!({})).await;
    ok(&setup, StatusCode::OK);
    let secret = setup.body["secret"].as_str().unwrap();
    let enabled = app
        .post(
            "/api/me/2fa/enable",
            Some(&token),
            json!({"code": crate::two_factor::code(app, secret)}),
        )
        .await;
    ok(&enabled, StatusCode::OK);
    let recovery = enabled.body["recoveryCodes"].as_array().unwrap();
    let challenge = app.login("auditoria@example.cl", "secreto123").await;
    let mfa = challenge["mfaToken"].as_str().unwrap();
    ok(
        &app.post(
            "/api/auth/2fa/verify",
            None,
            json!({"mfaToken": mfa, "code": crate::two_factor::wrong_code(app, secret)}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    ok(
        &app.post(
            "/api/auth/2fa/verify",
            None,
            json!({"mfaToken": mfa, "recoveryCode": recovery[0]}),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &app.post(
            "/api/me/2fa/disable",
            Some(&token),
            json!({"password": "secreto123", "code": recovery[1]}),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    // Addresses.
    let a = app
        .post("/api/addresses", Some(&token), json!({"name": "Casa", "addressLine": "Av. Providencia 1234", "comuna": "Providencia", "region": "RM"}))
        .await;
    ok(&a, StatusCode::CREATED);
    let address = a.body["id"].as_i64().unwrap();
    ok(
        &app.patch(
            &format!("/api/addresses/{address}"),
            Some(&token),
            json!({"name": "Oficina"}),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &app.delete(&format!("/api/addresses/{address}"), Some(&token))
            .await,
        StatusCode::NO_CONTENT,
    );
    // Catalogue: categories, products, variants, an image, an import.
    let c = app
        .post(
            "/api/categories",
            Some(&admin),
            json!({"name": "Auditoría"}),
        )
        .await;
    ok(&c, StatusCode::CREATED);
    let cat = c.body["id"].as_i64().unwrap();
    ok(
        &app.patch(
            &format!("/api/categories/{cat}"),
            Some(&admin),
            json!({"name": "Auditoría 2", "description": "Otra"}),
        )
        .await,
        StatusCode::OK,
    );
    let p = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"categoryId": cat, "name": "Producto Auditado", "variants": [
                {"sku": "AUD-1", "optionLabel": "1g", "priceCents": 1000, "stock": 5}]}),
        )
        .await;
    ok(&p, StatusCode::CREATED);
    let product = p.body["id"].as_i64().unwrap();
    ok(
        &app.patch(
            &format!("/api/products/{product}"),
            Some(&admin),
            json!({"description": "Descripción nueva", "isActive": true}),
        )
        .await,
        StatusCode::OK,
    );
    let v = app
        .post(
            &format!("/api/products/{product}/variants"),
            Some(&admin),
            json!({"sku": "AUD-5", "optionLabel": "5g", "priceCents": 4000, "stock": 2}),
        )
        .await;
    ok(&v, StatusCode::CREATED);
    let variant = v.body["id"].as_i64().unwrap();
    ok(
        &app.patch(
            &format!("/api/variants/{variant}"),
            Some(&admin),
            json!({"priceCents": 4500, "stock": 3}),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &app.delete(&format!("/api/variants/{variant}"), Some(&admin))
            .await,
        StatusCode::NO_CONTENT,
    );
    ok(
        &app.delete(&format!("/api/products/{product}"), Some(&admin))
            .await,
        StatusCode::NO_CONTENT,
    );
    ok(
        &app.delete(&format!("/api/categories/{cat}"), Some(&admin))
            .await,
        StatusCode::NO_CONTENT,
    );
    ok(
        &multipart(
            app,
            "/api/uploads/image",
            &admin,
            file_form("file", "foto.png", PNG_1X1),
        )
        .await,
        StatusCode::CREATED,
    );
    let csv = "name,categorySlug,description,imageUrl,isActive,variantSku,variantLabel,variantPriceCents,variantStock\n\
               Importado,semillas,,,true,IMP-1,1g,1990,3\n";
    let r = app
        .send(
            app.client
                .post(app.url("/api/products/import?dryRun=false"))
                .bearer_auth(&admin)
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await;
    ok(&r, StatusCode::OK);
    // Coupons.
    let c = app
        .post(
            "/api/coupons",
            Some(&admin),
            json!({"code": "AUDITA", "type": "percent", "value": 10}),
        )
        .await;
    ok(&c, StatusCode::CREATED);
    let coupon = c.body["id"].as_i64().unwrap();
    ok(
        &app.patch(
            &format!("/api/coupons/{coupon}"),
            Some(&admin),
            json!({"value": 15, "usageLimit": 3}),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &app.delete(&format!("/api/coupons/{coupon}"), Some(&admin))
            .await,
        StatusCode::NO_CONTENT,
    );
    // Medicinal documents: submitted, read, reviewed (the user becomes validated), deleted.
    let doc = |kind: &str| {
        Form::new().text("docType", kind.to_string()).part(
            "file",
            Part::bytes(PDF.to_vec()).file_name("receta.pdf".to_string()),
        )
    };
    // Health data needs the customer's consent (Ley 21.719): given, withdrawn, given again.
    for step in ["health_data", "health_data/withdraw", "health_data"] {
        ok(
            &app.post(&format!("/api/me/consents/{step}"), Some(&token), json!({}))
                .await,
            StatusCode::OK,
        );
    }
    let d = multipart(app, "/api/medicinal/me/docs", &token, doc("receta")).await;
    ok(&d, StatusCode::CREATED);
    let doc_id = d.body["id"].as_i64().unwrap();
    let file = d.body["fileUrl"].as_str().unwrap().to_string();
    // The owner's read leaves no trace; an admin's does.
    for reader in [&token, &admin] {
        let read = app.client.get(app.url(&file)).bearer_auth(reader);
        assert_eq!(read.send().await.unwrap().status(), StatusCode::OK);
    }
    ok(
        &app.patch(
            &format!("/api/admin/medicinal/docs/{doc_id}"),
            Some(&admin),
            json!({"status": "approved", "notes": "Receta vigente", "expiresAt": "2030-01-01T00:00:00Z"}),
        )
        .await,
        StatusCode::OK,
    );
    let d = multipart(app, "/api/medicinal/me/docs", &token, doc("certificado")).await;
    ok(&d, StatusCode::CREATED);
    let second = d.body["id"].as_i64().unwrap();
    ok(
        &app.delete(&format!("/api/medicinal/me/docs/{second}"), Some(&token))
            .await,
        StatusCode::NO_CONTENT,
    );
    // A personal-data export: asked for, prepared by its job, downloaded.
    let e = app
        .post("/api/me/data-export", Some(&token), json!({}))
        .await;
    ok(&e, StatusCode::ACCEPTED);
    crate::mail::run_jobs(app).await;
    let e = app
        .get(
            &format!("/api/me/data-exports/{}", e.body["id"]),
            Some(&token),
        )
        .await;
    let zip = app
        .client
        .get(app.url(e.body["downloadUrl"].as_str().unwrap()))
        .bearer_auth(&token);
    assert_eq!(zip.send().await.unwrap().status(), StatusCode::OK);
    // Orders and the test provider: paid, shipped with tracking, reviewed.
    let (paid, s) = checkout_and_start(app, &token, "NL-AUTO-1G", 1, None, "test").await;
    ok(&s, StatusCode::OK);
    let total = |id: i64| async move {
        app.scalar_i64(&format!("SELECT total_cents FROM orders WHERE id = {id}"))
            .await
    };
    let body = event(
        app,
        "evt-audit-paid",
        s.body["providerTxnId"].as_str().unwrap(),
        "paid",
        total(paid).await,
    );
    assert_eq!(
        webhook(app, &body, Some(sign(&body))).await.body["outcome"],
        "applied"
    );
    ok(
        &app.patch(
            &format!("/api/admin/orders/{paid}/tracking"),
            Some(&admin),
            json!({"courier": "Starken", "trackingNumber": "ST123"}),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &app.patch(
            &format!("/api/admin/orders/{paid}"),
            Some(&admin),
            json!({"status": "shipped"}),
        )
        .await,
        StatusCode::OK,
    );
    let nl = app
        .scalar_i64("SELECT id FROM products WHERE slug = 'northern-lights-auto'")
        .await;
    let r = app
        .post(
            &format!("/api/products/{nl}/reviews"),
            Some(&token),
            json!({"rating": 5, "title": "Excelente", "body": "Germinaron todas, muy buenas"}),
        )
        .await;
    ok(&r, StatusCode::CREATED);
    let review = r.body["id"].as_i64().unwrap();
    ok(
        &app.patch(
            &format!("/api/reviews/{review}"),
            Some(&admin),
            json!({"isVisible": false}),
        )
        .await,
        StatusCode::OK,
    );
    // A wrong amount, a forged webhook, and a payment for a cancelled order.
    let (mismatch, s) = checkout_and_start(app, &token, "NL-AUTO-1G", 1, None, "test").await;
    ok(&s, StatusCode::OK);
    let body = event(
        app,
        "evt-audit-wrong",
        s.body["providerTxnId"].as_str().unwrap(),
        "paid",
        total(mismatch).await - 1,
    );
    webhook(app, &body, Some(sign(&body))).await;
    webhook(app, &body, Some("00".repeat(32))).await;
    let (cancelled, s) = checkout_and_start(app, &token, "NL-AUTO-1G", 1, None, "test").await;
    ok(&s, StatusCode::OK);
    ok(
        &app.post(
            &format!("/api/orders/{cancelled}/cancel"),
            Some(&token),
            json!({}),
        )
        .await,
        StatusCode::OK,
    );
    let body = event(
        app,
        "evt-audit-cancelled",
        s.body["providerTxnId"].as_str().unwrap(),
        "paid",
        total(cancelled).await,
    );
    assert_eq!(
        webhook(app, &body, Some(sign(&body))).await.body["outcome"],
        "refund_required"
    );
    // Webpay: a refund on cancellation, then one Webpay refuses.
    for refuse in [false, true] {
        sim.state.lock().unwrap().refuse_refunds = refuse;
        let (order, s) = checkout_and_start(app, &token, "WW-FEM-1G", 1, None, "webpay").await;
        ok(&s, StatusCode::OK);
        let wp = s.body["providerTxnId"].as_str().unwrap().to_string();
        sim.pay(&wp, true);
        let r = app
            .send(
                app.client
                    .post(app.url("/webhooks/payments/webpay"))
                    .form(&[("token_ws", wp.as_str())]),
            )
            .await;
        assert!(r.header("location").unwrap().ends_with("status=paid"));
        ok(
            &app.patch(
                &format!("/api/admin/orders/{order}"),
                Some(&admin),
                json!({"status": "cancelled"}),
            )
            .await,
            StatusCode::OK,
        );
    }
    // An operator retries a dead job.
    app.execute(
        "INSERT INTO jobs (kind, payload, state, run_at, attempts, max_attempts, created_at, updated_at) \
         VALUES ('audit.example', '{}', 'dead', '2026-01-01T00:00:00Z', 3, 3, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
    )
    .await;
    let job = app.scalar_i64("SELECT MAX(id) FROM jobs").await;
    ok(
        &app.post(
            &format!("/api/admin/jobs/{job}/retry"),
            Some(&admin),
            json!({}),
        )
        .await,
        StatusCode::OK,
    );
    // A store system's API key: created, used for a write (audited as the key), revoked.
    let r = app
        .post(
            "/api/admin/api-keys",
            Some(&admin),
            json!({"name": "ERP", "scopes": ["products:write"]}),
        )
        .await;
    ok(&r, StatusCode::CREATED);
    let (key, key_id) = (
        r.body["key"].as_str().unwrap().to_string(),
        r.body["id"].as_i64().unwrap(),
    );
    ok(
        &app.patch(
            "/api/products/1",
            Some(&key),
            json!({"description": "Sincronizado por el ERP"}),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &app.delete(&format!("/api/admin/api-keys/{key_id}"), Some(&admin))
            .await,
        StatusCode::OK,
    );
    // Admin changes to the user, then the user's deletion.
    ok(
        &app.patch(
            &format!("/api/users/{user_id}"),
            Some(&admin),
            json!({"role": "admin"}),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &app.patch(
            &format!("/api/users/{user_id}"),
            Some(&admin),
            json!({"role": "customer"}),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &app.delete(&format!("/api/users/{user_id}"), Some(&admin))
            .await,
        StatusCode::NO_CONTENT,
    );
}

#[tokio::test]
async fn audit_log_rows_match_the_snapshot() {
    let sim = WebpaySim::start().await;
    let app = TestApp::spawn_with(&[
        ("WEBPAY_BASE_URL", sim.base_url.as_str()),
        ("WEBPAY_COMMERCE_CODE", CODE),
        ("PUBLIC_BASE_URL", "https://tienda.example.cl"),
        ("FRONTEND_BASE_URL", "https://front.example.cl"),
    ])
    .await;
    scenario(&app, &sim).await;
    let logged = audit_rows(&app).await;
    // Each audit row has exactly one outbox row, written in the same order, whose payload is the
    // event: its type, the payload version, the entity id and the audit metadata.
    let mut last_outbox_id = 0;
    for row in &logged {
        let log_id = row["id"].as_i64().unwrap();
        let where_ = format!("FROM outbox_events WHERE audit_log_id = {log_id}");
        assert_eq!(
            app.scalar_i64(&format!("SELECT COUNT(*) {where_}")).await,
            1,
            "{row}"
        );
        let outbox_id = app.scalar_i64(&format!("SELECT id {where_}")).await;
        assert!(outbox_id > last_outbox_id, "outbox rows in audit order");
        last_outbox_id = outbox_id;
        let event_type = app
            .scalar_string(&format!("SELECT event_type {where_}"))
            .await;
        assert_eq!(event_type.as_deref(), row["action"].as_str());
        let payload: Value = serde_json::from_str(
            &app.scalar_string(&format!("SELECT CAST(payload AS TEXT) {where_}"))
                .await
                .unwrap(),
        )
        .unwrap();
        let mut expected = row["meta"].as_object().unwrap().clone();
        expected.insert("event".into(), row["action"].clone());
        expected.insert("version".into(), json!(1));
        if !row["entityId"].is_null() {
            expected.insert("id".into(), row["entityId"].clone());
        }
        assert_eq!(payload, Value::Object(expected), "{row}");
        let aggregate = app
            .scalar_string(&format!("SELECT aggregate_type {where_}"))
            .await
            .unwrap();
        let expected_aggregate = if row["action"].as_str().unwrap().starts_with("payment.") {
            "order"
        } else {
            row["entity"].as_str().unwrap()
        };
        assert_eq!(aggregate, expected_aggregate, "{row}");
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM outbox_events").await,
        logged.len() as i64
    );
    let rows: Vec<Value> = logged
        .iter()
        .map(|r| {
            let mut meta = masked(&r["meta"]);
            // A ZIP's size follows the times inside it.
            if r["action"] == "privacy.export_ready" {
                meta["sizeBytes"] = json!("<size>");
            }
            // A job's id depends on how many ids the jobs table handed out before, which on
            // PostgreSQL includes those spent by unique inserts that found their job queued.
            let entity_id = if r["entity"] == "job" {
                json!("<job id>")
            } else {
                r["entityId"].clone()
            };
            json!({
                "action": r["action"],
                "entity": r["entity"],
                "entityId": entity_id,
                "actor": r["actorEmail"],
                "actorApiKey": r["actorApiKeyId"],
                "meta": meta,
            })
        })
        .collect();
    let actual = serde_json::to_string_pretty(&rows).unwrap() + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(SNAPSHOT, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(SNAPSHOT).expect("the snapshot file");
    let expected: Vec<Value> = serde_json::from_str(&expected).unwrap();
    for (i, (a, e)) in rows.iter().zip(expected.iter()).enumerate() {
        assert_eq!(a, e, "audit row {i} differs from the snapshot");
    }
    assert_eq!(
        rows.len(),
        expected.len(),
        "the scenario logged another number of rows"
    );
    // The scenario covers every action the services write.
    let actions: std::collections::BTreeSet<&str> =
        rows.iter().filter_map(|r| r["action"].as_str()).collect();
    for a in [
        "auth.register",
        "auth.login",
        "auth.login_failed",
        "auth.refresh_reuse",
        "auth.logout",
        "user.updated",
        "user.deleted",
        "address.created",
        "address.updated",
        "address.deleted",
        "category.created",
        "category.updated",
        "category.deleted",
        "product.created",
        "product.updated",
        "product.deleted",
        "product.imported",
        "variant.created",
        "variant.updated",
        "variant.deleted",
        "coupon.created",
        "coupon.updated",
        "coupon.deleted",
        "file.uploaded",
        "file.read",
        "medicinal_document.submitted",
        "medicinal_document.reviewed",
        "medicinal_document.deleted",
        "order.created",
        "order.status_changed",
        "order.tracking_updated",
        "payment.started",
        "payment.outcome",
        "payment.amount_mismatch",
        "payment.refund_required",
        "payment.refunded",
        "payment.refund_failed",
        "webhook.received",
        "review.created",
        "review.moderated",
        "seed.user_created",
        "seed.medicinal_document_created",
        "job.retried",
    ] {
        assert!(actions.contains(a), "the scenario never logs {a}");
    }
}
