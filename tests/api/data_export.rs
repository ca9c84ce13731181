//! The portable export of a customer's data (Ley 21.719): the job, the ZIP and its JSON Schema,
//! the download link (owner only, 24 hours), one at a time, rate limited, audited.

use std::io::Read;

use chrono::Duration;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::mail::run_jobs;
use crate::medicinal::submit;

/// The first column of every row `sql` answers, as integers.
async fn ids(app: &TestApp, sql: &str) -> Vec<i64> {
    let backend = app.state.db.get_database_backend();
    app.state
        .db
        .query_all_raw(sea_orm::Statement::from_string(backend, sql.to_string()))
        .await
        .expect("query")
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0).expect("i64 column"))
        .collect()
}

fn json_ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect()
}

/// A customer who did a bit of everything: consents, a document with its file, an address, a
/// cart, a paid order with a coupon, a review. Returns their token, id and document bytes.
async fn busy_customer(app: &TestApp, email: &str, marker: &str) -> (String, i64, Vec<u8>) {
    let (token, id, _) = app.register(email).await;
    let pdf = format!("%PDF-1.4\n% receta de {marker}\n%%EOF\n").into_bytes();
    let form = Form::new()
        .text("docType", "receta")
        .text("acceptHealthDataProcessing", "true")
        .part("file", Part::bytes(pdf.clone()).file_name("receta.pdf"));
    let r = submit(app, &token, form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            "/api/addresses",
            Some(&token),
            json!({"name": format!("Casa {marker}"), "addressLine": format!("Calle {marker} 123"), "comuna": "Providencia", "region": "RM"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (order, _) = order_and_start(app, &token, "NL-AUTO-5G", 1, Some("DATOS10")).await;
    let r = app
        .post(
            "/api/payments/confirm",
            Some(&token),
            json!({"orderId": order, "provider": "test", "params": {"mock": "paid"}}),
        )
        .await;
    assert_eq!(r.body["status"], "paid", "{}", r.text);
    paid_order(app, &token, "NL-AUTO-1G", 1).await;
    let nl = app
        .scalar_i64("SELECT id FROM products WHERE slug = 'northern-lights-auto'")
        .await;
    let r = app
        .post(
            &format!("/api/products/{nl}/reviews"),
            Some(&token),
            json!({"rating": 4, "body": format!("Buenas semillas, {marker}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": variant_id(app, "WW-FEM-1G").await, "quantity": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (token, id, pdf)
}

/// Moves the clock a day and a second on, and signs `email` in again (its token expired).
async fn a_day_later(app: &TestApp, email: &str) -> String {
    app.clock
        .advance(Duration::hours(24) + Duration::seconds(1));
    app.login(email, "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn download(
    app: &TestApp,
    url: &str,
    token: Option<&str>,
) -> (StatusCode, Vec<u8>, Option<String>) {
    let mut req = app.client.get(app.url(url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    (status, res.bytes().await.unwrap().to_vec(), ct)
}

#[tokio::test]
async fn the_export_holds_every_record_of_its_customer_and_nothing_of_others() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/coupons",
            Some(&admin),
            json!({"code": "DATOS10", "type": "percent", "value": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (a, a_id, a_pdf) = busy_customer(&app, "ana@example.cl", "ANA").await;
    let (b, b_id, _) = busy_customer(&app, "beto@example.cl", "BETO").await;

    // Asked for: 202, pending, due in PRIVACY_REQUEST_DUE_DAYS; a second one meanwhile is 409.
    let r = app.post("/api/me/data-export", Some(&a), json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["state"], "pending");
    assert!(r.body["downloadUrl"].is_null());
    let export = r.body["id"].as_i64().unwrap();
    let requested: chrono::DateTime<chrono::Utc> =
        r.body["requestedAt"].as_str().unwrap().parse().unwrap();
    let due: chrono::DateTime<chrono::Utc> = r.body["dueAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(due - requested, Duration::days(30));
    let again = app.post("/api/me/data-export", Some(&a), json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert!(again.has_detail("dataExport", "export_in_progress"));
    // Not B's to look at.
    let path = format!("/api/me/data-exports/{export}");
    assert_eq!(app.get(&path, Some(&b)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&path, None).await.status, StatusCode::UNAUTHORIZED);

    run_jobs(&app).await;
    let s = app.get(&path, Some(&a)).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert_eq!(s.body["state"], "ready", "{}", s.text);
    let url = s.body["downloadUrl"].as_str().unwrap().to_string();
    let completed: chrono::DateTime<chrono::Utc> =
        s.body["completedAt"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        s.body["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires - completed, Duration::hours(24));
    // The same through GraphQL.
    let g = app
        .gql(
            Some(&a),
            "query($id: Int!) { myDataExport(id: $id) { state downloadUrl } }",
            json!({"id": export}),
        )
        .await;
    assert_eq!(
        g.body["data"]["myDataExport"]["downloadUrl"],
        url.as_str(),
        "{}",
        g.text
    );

    // The link: A only.
    let (status, _, _) = download(&app, &url, Some(&b)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = download(&app, &url, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let forged = url.replace("signature=", "signature=00");
    assert_eq!(
        download(&app, &forged, Some(&a)).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, zip_bytes, ct) = download(&app, &url, Some(&a)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("application/zip"));
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT size_bytes FROM privacy_requests WHERE id = {export}"
        ))
        .await,
        zip_bytes.len() as i64
    );

    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("a ZIP");
    let names: Vec<String> = zip.file_names().map(String::from).collect();
    let mut text = String::new();
    zip.by_name("data.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    let mut readme = String::new();
    zip.by_name("README.txt")
        .unwrap()
        .read_to_string(&mut readme)
        .unwrap();
    assert!(
        readme.contains("Ley 21.719") && readme.contains("medicinalDocuments"),
        "{readme}"
    );

    // It validates against the documented schema.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/data-export.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&data)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The schema is strict: an unknown field fails it.
    let mut extra = data.clone();
    extra["profile"]["passwordHash"] = json!("x");
    assert!(!validator.is_valid(&extra));

    // Field by field against the database.
    let p = &data["profile"];
    assert_eq!(p["id"], a_id);
    assert_eq!(p["email"], "ana@example.cl");
    assert_eq!(
        p["name"].as_str(),
        app.scalar_string(&format!("SELECT name FROM users WHERE id = {a_id}"))
            .await
            .as_deref()
    );
    assert!(!text.contains("argon2"), "no password hash");
    assert_eq!(
        json_ids(&data["consents"]),
        ids(
            &app,
            &format!("SELECT id FROM consents WHERE user_id = {a_id} ORDER BY id")
        )
        .await
    );
    assert_eq!(data["consents"][1]["purpose"], "health_data");
    assert_eq!(
        json_ids(&data["addresses"]),
        ids(
            &app,
            &format!("SELECT id FROM addresses WHERE user_id = {a_id} ORDER BY id")
        )
        .await
    );
    assert_eq!(data["addresses"][0]["addressLine"], "Calle ANA 123");
    let cart_items = ids(
        &app,
        &format!("SELECT ci.variant_id FROM cart_items ci JOIN carts c ON c.id = ci.cart_id WHERE c.user_id = {a_id} ORDER BY ci.id"),
    )
    .await;
    assert_eq!(
        data["carts"][0]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["variantId"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        cart_items
    );
    assert_eq!(data["carts"][0]["items"][0]["quantity"], 2);
    assert_eq!(data["carts"][0]["items"][0]["sku"], "WW-FEM-1G");
    let orders = ids(
        &app,
        &format!("SELECT id FROM orders WHERE user_id = {a_id} ORDER BY id"),
    )
    .await;
    assert_eq!(orders.len(), 2);
    assert_eq!(json_ids(&data["orders"]), orders);
    for o in data["orders"].as_array().unwrap() {
        let id = o["id"].as_i64().unwrap();
        for col in [
            "total_cents",
            "subtotal_cents",
            "discount_cents",
            "shipping_price_cents",
        ] {
            let camel = dispensary::util::snake_to_camel(col);
            assert_eq!(
                o[&camel].as_i64().unwrap(),
                app.scalar_i64(&format!("SELECT {col} FROM orders WHERE id = {id}"))
                    .await,
                "{camel} of order {id}"
            );
        }
        assert_eq!(o["status"], "paid");
        let lines = ids(
            &app,
            &format!("SELECT line_total_cents FROM order_items WHERE order_id = {id} ORDER BY id"),
        )
        .await;
        assert_eq!(
            o["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["lineTotalCents"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            lines
        );
    }
    assert_eq!(data["orders"][0]["couponCode"], "DATOS10");
    assert_eq!(
        json_ids(&data["payments"]),
        ids(&app, &format!("SELECT p.id FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.user_id = {a_id} ORDER BY p.id")).await
    );
    // Without provider secrets: no token, no raw answer, no idempotency key.
    for txn in app
        .state
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            app.state.db.get_database_backend(),
            format!("SELECT p.provider_txn_id FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.user_id = {a_id}"),
        ))
        .await
        .unwrap()
    {
        let token: String = txn.try_get_by_index(0).unwrap();
        assert!(!text.contains(&token), "provider token {token} exported");
    }
    for key in ["providerTxnId", "rawPayload", "idempotencyKey"] {
        assert!(!text.contains(key), "{key} exported");
    }
    assert_eq!(data["couponsUsed"].as_array().unwrap().len(), 1);
    assert_eq!(data["couponsUsed"][0]["code"], "DATOS10");
    assert_eq!(data["couponsUsed"][0]["orderId"], orders[0]);
    assert_eq!(
        json_ids(&data["reviews"]),
        ids(
            &app,
            &format!("SELECT id FROM product_reviews WHERE user_id = {a_id} ORDER BY id")
        )
        .await
    );
    let docs = ids(
        &app,
        &format!("SELECT id FROM medicinal_documents WHERE user_id = {a_id} ORDER BY id"),
    )
    .await;
    assert_eq!(json_ids(&data["medicinalDocuments"]), docs);
    assert_eq!(data["medicinalDocuments"][0]["status"], "pending");
    assert_eq!(
        json_ids(&data["sessions"]),
        ids(
            &app,
            &format!("SELECT id FROM sessions WHERE user_id = {a_id} ORDER BY id")
        )
        .await
    );
    let audit = ids(
        &app,
        &format!("SELECT id FROM system_logs WHERE (entity = 'user' AND entity_id = {a_id}) OR (actor_user_id = {a_id} AND entity <> 'user') ORDER BY id"),
    )
    .await;
    let exported_audit = json_ids(&data["auditEntries"]);
    // The job's own `privacy.export_ready` row is written after the data was gathered.
    assert_eq!(exported_audit, audit[..exported_audit.len()].to_vec());
    assert!(exported_audit.len() >= 10, "{exported_audit:?}");
    assert!(data["auditEntries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "privacy.export_requested"));
    // The customer's files, in the ZIP, byte for byte.
    let files = ids(
        &app,
        &format!("SELECT id FROM files WHERE owner_id = {a_id} ORDER BY id"),
    )
    .await;
    assert_eq!(json_ids(&data["files"]), files);
    let doc_path = data["files"][0]["path"].as_str().unwrap().to_string();
    assert!(names.contains(&doc_path), "{names:?}");
    let mut bytes = Vec::new();
    zip.by_name(&doc_path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes, a_pdf);
    assert_eq!(data["medicinalDocuments"][0]["fileId"], files[0]);

    // Nothing of B's.
    assert!(
        !text.contains("beto@example.cl") && !text.contains("BETO"),
        "B leaked"
    );
    let b_orders = ids(
        &app,
        &format!("SELECT id FROM orders WHERE user_id = {b_id}"),
    )
    .await;
    assert!(json_ids(&data["orders"])
        .iter()
        .all(|o| !b_orders.contains(o)));
    let b_files = ids(
        &app,
        &format!("SELECT id FROM files WHERE owner_id = {b_id}"),
    )
    .await;
    assert!(
        names.iter().all(|n| b_files
            .iter()
            .all(|f| !n.starts_with(&format!("files/{f}-")))),
        "{names:?}"
    );
    assert_eq!(names.len(), 2 + files.len(), "{names:?}");

    // Audited: asked for, ready, downloaded (once: the refused tries leave no download).
    for action in [
        "privacy.export_requested",
        "privacy.export_ready",
        "privacy.export_downloaded",
    ] {
        assert_eq!(
            app.scalar_i64(&format!(
                "SELECT COUNT(*) FROM system_logs WHERE action = '{action}' AND entity_id = {a_id}"
            ))
            .await,
            1,
            "{action}"
        );
    }
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(downloads AS BIGINT) FROM privacy_requests WHERE id = {export}"
        ))
        .await,
        1
    );

    // After 24 hours the link is dead and no new one is given.
    let a = a_day_later(&app, "ana@example.cl").await;
    assert_eq!(
        download(&app, &url, Some(&a)).await.0,
        StatusCode::NOT_FOUND
    );
    let s = app.get(&path, Some(&a)).await;
    assert!(s.body["downloadUrl"].is_null(), "{}", s.text);
    // The periodic purge removes the ZIP; the request stays as history.
    let key = app
        .scalar_string(&format!(
            "SELECT storage_key FROM privacy_requests WHERE id = {export}"
        ))
        .await
        .unwrap();
    let zip_path = app
        .state
        .config
        .storage
        .upload_dir
        .join("private")
        .join(&key);
    assert!(zip_path.exists());
    let purged = dispensary::services::privacy::housekeeping::purge_expired(&app.state)
        .await
        .unwrap();
    assert_eq!(purged.data_exports, 1);
    assert!(!zip_path.exists());
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT storage_key FROM privacy_requests WHERE id = {export}"
        ))
        .await,
        None
    );
    assert_eq!(app.get(&path, Some(&a)).await.body["state"], "ready");
}

#[tokio::test]
async fn exports_are_rate_limited_and_a_failed_one_can_be_asked_again() {
    let app = TestApp::spawn().await;
    let (a, a_id, _) = app.register("ana@example.cl").await;
    for _ in 0..3 {
        let r = app.post("/api/me/data-export", Some(&a), json!({})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        run_jobs(&app).await;
    }
    let r = app.post("/api/me/data-export", Some(&a), json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let wait: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 24 * 3600, "{wait}");
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM privacy_requests WHERE user_id = {a_id}"
        ))
        .await,
        3
    );
    // A day later, one more; GraphQL asks the same way.
    let a = a_day_later(&app, "ana@example.cl").await;
    let g = app
        .gql(
            Some(&a),
            "mutation { requestDataExport { id state } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["data"]["requestDataExport"]["state"], "pending",
        "{}",
        g.text
    );
    let id = g.body["data"]["requestDataExport"]["id"].as_i64().unwrap();
    // The job gives up (its attempts spent): the request shows failed and may be asked again.
    app.execute(&format!(
        "UPDATE jobs SET state = 'dead', last_error = 'disk full' WHERE unique_key = 'privacy.export:{id}'"
    ))
    .await;
    let s = app
        .get(&format!("/api/me/data-exports/{id}"), Some(&a))
        .await;
    assert_eq!(s.body["state"], "failed", "{}", s.text);
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT error FROM privacy_requests WHERE id = {id}"
        ))
        .await
        .as_deref(),
        Some("disk full")
    );
    let r = app.post("/api/me/data-export", Some(&a), json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
}

#[tokio::test]
async fn admins_follow_requests_by_due_date_and_the_customer_is_mailed() {
    let app = TestApp::spawn_with(&[("PRIVACY_REQUEST_DUE_DAYS", "10")]).await;
    let admin = app.admin_token().await;
    let (a, a_id, _) = app.register("ana@example.cl").await;
    let (b, b_id, _) = app.register("beto@example.cl").await;
    let ra = app.post("/api/me/data-export", Some(&a), json!({})).await;
    assert_eq!(ra.status, StatusCode::ACCEPTED, "{}", ra.text);
    run_jobs(&app).await;
    crate::mail::deliver(&app).await;
    app.clock.advance(Duration::minutes(1));
    let rb = app.post("/api/me/data-export", Some(&b), json!({})).await;
    assert_eq!(rb.status, StatusCode::ACCEPTED, "{}", rb.text);

    // The ready export's mail went to its customer, saying until when and where.
    let mails: Vec<Value> = crate::mail::mail_jobs(&app)
        .await
        .into_iter()
        .map(|j| j.payload)
        .filter(|p| p["template"] == "data_export_ready")
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["to"], "ana@example.cl");
    let id_a = ra.body["id"].as_i64().unwrap();
    assert_eq!(
        mails[0]["context"]["exportUrl"],
        format!("http://localhost:5173/account/data-exports/{id_a}")
    );
    assert!(mails[0]["context"]["expiresAt"].is_string());

    let list = app.get("/api/admin/privacy-requests", Some(&admin)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["total"], 2);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items[0]["userId"], a_id, "soonest due first");
    assert_eq!(items[0]["userEmail"], "ana@example.cl");
    assert_eq!(items[0]["kind"], "export");
    assert_eq!(items[0]["state"], "ready");
    assert_eq!(items[1]["userId"], b_id);
    assert_eq!(items[1]["state"], "pending");
    let requested: chrono::DateTime<chrono::Utc> =
        items[1]["requestedAt"].as_str().unwrap().parse().unwrap();
    let due: chrono::DateTime<chrono::Utc> = items[1]["dueAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        due - requested,
        Duration::days(10),
        "PRIVACY_REQUEST_DUE_DAYS"
    );
    assert_eq!(items[1]["overdue"], false);
    let pending = app
        .get("/api/admin/privacy-requests?state=pending", Some(&admin))
        .await;
    assert_eq!(pending.body["total"], 1, "{}", pending.text);
    assert_eq!(pending.body["items"][0]["userId"], b_id);

    // Eleven days on, B's (never prepared) is overdue; A's was answered.
    app.clock.advance(Duration::days(11));
    let admin = app.admin_token().await;
    let overdue = app
        .get("/api/admin/privacy-requests?overdue=true", Some(&admin))
        .await;
    assert_eq!(overdue.body["total"], 1, "{}", overdue.text);
    assert_eq!(overdue.body["items"][0]["userId"], b_id);
    assert_eq!(overdue.body["items"][0]["overdue"], true);
    let g = app
        .gql(
            Some(&admin),
            "{ privacyRequests(overdue: false, kind: export) { total items { userEmail state overdue } } }",
            json!({}),
        )
        .await;
    assert_eq!(g.body["data"]["privacyRequests"]["total"], 1, "{}", g.text);
    assert_eq!(
        g.body["data"]["privacyRequests"]["items"][0]["userEmail"],
        "ana@example.cl"
    );

    // Admins only.
    let a = app.login("ana@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.get("/api/admin/privacy-requests", Some(&a)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        app.get("/api/admin/privacy-requests", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}
