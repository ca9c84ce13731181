//! Medicinal documents: upload, admin review, the gate reading approvals, private files.

use chrono::Duration;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::uploads::PNG_1X1;

/// A small valid PDF standing in for a scanned prescription.
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n";

/// A submission form that also gives the health-data consent (`acceptHealthDataProcessing`).
pub fn doc_form(doc_type: &str, name: &str, bytes: &[u8]) -> Form {
    Form::new()
        .text("docType", doc_type.to_string())
        .text("acceptHealthDataProcessing", "true")
        .part(
            "file",
            Part::bytes(bytes.to_vec()).file_name(name.to_string()),
        )
}

pub async fn submit(app: &TestApp, token: &str, form: Form) -> Resp {
    app.send(
        app.client
            .post(app.url("/api/medicinal/me/docs"))
            .bearer_auth(token)
            .multipart(form),
    )
    .await
}

/// GET a file as raw bytes.
async fn fetch(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

async fn medicinal_product(app: &TestApp) -> i64 {
    app.scalar_i64("SELECT id FROM products WHERE slug = 'flor-cbd-terapeutica'")
        .await
}

/// Whether the customer sees the medicinal product and may put it in the cart.
pub(crate) async fn sees_medicinal(app: &TestApp, token: &str) -> bool {
    let product = medicinal_product(app).await;
    let by_id = app
        .get(&format!("/api/products/{product}"), Some(token))
        .await;
    let listed = app
        .get("/api/products?pageSize=100", Some(token))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == product);
    let cart = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(token),
            Some(json!({"variantId": variant_id(app, "CBD-FLOR-1G").await, "quantity": 1})),
        )
        .await;
    match (by_id.status, listed, cart.status) {
        (StatusCode::OK, true, StatusCode::OK) => true,
        (StatusCode::NOT_FOUND, false, StatusCode::FORBIDDEN) => {
            assert!(cart.has_detail("variantId", "medicinal_validation_required"));
            false
        }
        other => panic!("inconsistent gate: {other:?}"),
    }
}

#[tokio::test]
async fn upload_approve_then_the_customer_sees_and_buys_medicinal_products() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = app
        .scalar_i64("SELECT id FROM users WHERE email = 'admin@dispensario.local'")
        .await;
    let (token, user_id, _) = app.register("paciente@example.cl").await;
    let (other, _, _) = app.register("curioso@example.cl").await;
    assert!(!sees_medicinal(&app, &token).await, "before approval");

    let r = submit(&app, &token, doc_form("receta", "receta.pdf", PDF)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["docType"], "receta");
    assert_eq!(r.body["userId"], user_id);
    assert!(r.body["reviewedBy"].is_null());
    let doc_id = r.body["id"].as_i64().unwrap();
    let file_id = r.body["fileId"].as_i64().unwrap();
    let file_url = r.body["fileUrl"].as_str().unwrap().to_string();
    let signed = r.body["downloadUrl"].as_str().unwrap().to_string();
    assert_eq!(file_url, format!("/api/files/{file_id}"));
    // Stored privately, under a random name.
    let key = app
        .scalar_string(&format!(
            "SELECT storage_key FROM files WHERE id = {file_id}"
        ))
        .await
        .unwrap();
    assert!(app.upload_dir.join("private").join(&key).exists());
    assert!(!key.contains("receta"));
    assert_eq!(
        app.scalar_string(&format!("SELECT purpose FROM files WHERE id = {file_id}"))
            .await
            .unwrap(),
        "medicinal_doc"
    );
    assert!(
        !sees_medicinal(&app, &token).await,
        "pending is not approved"
    );

    let mine = app.get("/api/medicinal/me/docs", Some(&token)).await;
    assert_eq!(mine.body["total"], 1, "{}", mine.text);
    assert_eq!(mine.body["items"][0]["id"], doc_id);

    // The owner downloads the file; it is served as an attachment, never sniffed or cached.
    let (status, headers, bytes) = fetch(&app, &file_url, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, PDF);
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "private, no-store");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"file-{file_id}.pdf\"").as_str()
    );
    // Nobody else: another customer and anonymous users get 404 for the list, the file and the delete.
    assert_eq!(
        app.get("/api/medicinal/me/docs", Some(&other)).await.body["total"],
        0
    );
    assert_eq!(
        fetch(&app, &file_url, Some(&other)).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _, body) = fetch(&app, &file_url, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!String::from_utf8_lossy(&body).contains("PDF"));
    assert_eq!(
        app.delete(&format!("/api/medicinal/me/docs/{doc_id}"), Some(&other))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/medicinal/me/docs", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/admin/medicinal/docs", Some(&other))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The signed URL works without a token, only as issued and only for a few minutes.
    let (status, _, bytes) = fetch(&app, &signed, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, PDF);
    let tampered = signed.replace(
        &format!("/api/files/{file_id}?"),
        &format!("/api/files/{}?", file_id + 1),
    );
    assert_eq!(fetch(&app, &tampered, None).await.0, StatusCode::NOT_FOUND);
    // The signature's last character changed (to another one: it may already be a `0`).
    let last = if signed.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &signed[..signed.len() - 1]);
    assert_ne!(forged, signed);
    assert_eq!(fetch(&app, &forged, None).await.0, StatusCode::NOT_FOUND);

    // The admin queue: by status and by the owner's email or name.
    let q = app
        .get(
            "/api/admin/medicinal/docs?status=pending&q=PACIENTE@",
            Some(&admin),
        )
        .await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    assert_eq!(q.body["total"], 1);
    assert_eq!(q.body["items"][0]["id"], doc_id);
    assert_eq!(
        app.get("/api/admin/medicinal/docs?q=test%20customer", Some(&admin))
            .await
            .body["total"],
        1,
        "by name"
    );
    assert_eq!(
        app.get("/api/admin/medicinal/docs?status=approved", Some(&admin))
            .await
            .body["total"],
        0
    );
    assert!(app
        .get("/api/admin/medicinal/docs?status=lost", Some(&admin))
        .await
        .has_detail("status", "invalid_value"));
    // An admin may read the file; that read is audited.
    assert_eq!(fetch(&app, &file_url, Some(&admin)).await.0, StatusCode::OK);
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'file.read' AND entity_id = {file_id} AND actor_user_id = {admin_id}")).await,
        1
    );

    // Approval: the acting admin is the reviewer whatever the body says.
    let bad = app
        .patch(
            &format!("/api/admin/medicinal/docs/{doc_id}"),
            Some(&admin),
            json!({"status": "approved", "reviewedBy": 999}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let ok = app
        .patch(
            &format!("/api/admin/medicinal/docs/{doc_id}"),
            Some(&admin),
            json!({"status": "approved", "notes": "Receta vigente"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["status"], "approved");
    assert_eq!(ok.body["reviewedBy"], admin_id);
    assert_eq!(ok.body["notes"], "Receta vigente");
    assert!(ok.body["reviewedAt"].is_string());
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {user_id} AND validated_medicinal = true"
        ))
        .await,
        1,
        "approval sets validatedMedicinal"
    );
    let meta = app
        .scalar_string(&format!("SELECT CAST(meta AS TEXT) FROM system_logs WHERE action = 'medicinal_document.reviewed' AND entity_id = {doc_id}"))
        .await
        .unwrap();
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["from"], "pending");
    assert_eq!(meta["to"], "approved");
    assert!(
        !meta.to_string().contains("Receta vigente"),
        "no notes in the audit trail"
    );

    // Now the customer sees the product, and buys it.
    assert!(sees_medicinal(&app, &token).await, "after approval");
    let order = app
        .post(
            "/api/checkout/confirm",
            Some(&token),
            json!({"items": [{"variantId": variant_id(&app, "CBD-FLOR-1G").await, "quantity": 1}],
                "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}, "shippingMethod": "starken"}),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    assert!(!sees_medicinal(&app, &other).await, "others still do not");

    // Reviewed once; an approved document stays.
    let again = app
        .patch(
            &format!("/api/admin/medicinal/docs/{doc_id}"),
            Some(&admin),
            json!({"status": "rejected"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert!(again.has_detail("status", "not_pending"));
    let del = app
        .delete(&format!("/api/medicinal/me/docs/{doc_id}"), Some(&token))
        .await;
    assert_eq!(del.status, StatusCode::CONFLICT, "{}", del.text);
    assert!(del.has_detail("status", "approved"));
    assert_eq!(fetch(&app, &file_url, Some(&token)).await.0, StatusCode::OK);

    // The admin withdraws the validation: no valid document with an expiry... but this approval
    // has none, so it still grants access; the flag alone decides nothing here.
    let r = app
        .patch(
            &format!("/api/users/{user_id}"),
            Some(&admin),
            json!({"validatedMedicinal": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        sees_medicinal(&app, &token).await,
        "an unexpired approved document grants access"
    );

    // The signed URL lapses.
    app.clock.advance(Duration::seconds(301));
    assert_eq!(fetch(&app, &signed, None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn expiring_approvals_rejections_deletes_and_bad_input() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, user_id, _) = app.register("certificado@example.cl").await;
    let (other, _, _) = app.register("otro@example.cl").await;

    // Upload first, then attach by fileId.
    let up = app
        .send(
            app.client
                .post(app.url("/api/uploads/doc"))
                .bearer_auth(&token)
                .multipart(
                    Form::new().part("file", Part::bytes(PNG_1X1.to_vec()).file_name("cert.png")),
                ),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    assert_eq!(up.body["contentType"], "image/png");
    let file_id = up.body["fileId"].as_i64().unwrap();
    let foreign = app
        .post(
            "/api/medicinal/me/docs",
            Some(&other),
            json!({"docType": "certificado", "fileId": file_id, "acceptHealthDataProcessing": true}),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST, "{}", foreign.text);
    assert!(foreign.has_detail("fileId", "unknown_file"));
    let r = app
        .post(
            "/api/medicinal/me/docs",
            Some(&token),
            json!({"docType": "certificado", "fileId": file_id, "acceptHealthDataProcessing": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let doc_id = r.body["id"].as_i64().unwrap();
    let reuse = app
        .post(
            "/api/medicinal/me/docs",
            Some(&token),
            json!({"docType": "receta", "fileId": file_id}),
        )
        .await;
    assert_eq!(reuse.status, StatusCode::CONFLICT, "{}", reuse.text);
    assert!(reuse.has_detail("fileId", "already_used"));

    // Bad input.
    for (form, field, issue) in [
        (
            doc_form("receta", "receta.png", PDF),
            "file",
            "type_mismatch",
        ),
        (
            doc_form("receta", "receta.exe", b"MZ\x90\x00"),
            "file",
            "unsupported_type",
        ),
        (
            doc_form("pasaporte", "receta.pdf", PDF),
            "docType",
            "invalid_value",
        ),
    ] {
        let r = submit(&app, &token, form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.has_detail(field, issue), "{field}/{issue}: {}", r.text);
    }
    let r = app
        .post(
            "/api/medicinal/me/docs",
            Some(&token),
            json!({"docType": "receta"}),
        )
        .await;
    assert!(r.has_detail("file", "required"), "{}", r.text);
    let path = format!("/api/admin/medicinal/docs/{doc_id}");
    for (body, field, issue) in [
        (json!({"status": "pending"}), "status", "invalid_value"),
        (
            json!({"status": "approved", "expiresAt": "2020-01-01T00:00:00Z"}),
            "expiresAt",
            "in_past",
        ),
        (
            json!({"status": "rejected", "expiresAt": "2099-01-01T00:00:00Z"}),
            "expiresAt",
            "not_applicable",
        ),
    ] {
        let r = app.patch(&path, Some(&admin), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.has_detail(field, issue), "{field}/{issue}: {}", r.text);
    }
    assert_eq!(
        app.patch(
            "/api/admin/medicinal/docs/999999",
            Some(&admin),
            json!({"status": "approved"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // An approval with an expiry grants access until then, without touching validatedMedicinal.
    let until = (app.clock.now() + Duration::days(1)).to_rfc3339();
    let r = app
        .patch(
            &path,
            Some(&admin),
            json!({"status": "approved", "expiresAt": until}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["expiresAt"].is_string());
    assert!(sees_medicinal(&app, &token).await, "approved and unexpired");
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {user_id} AND validated_medicinal = true"
        ))
        .await,
        0
    );
    app.clock.advance(Duration::days(2));
    // (Tokens expired too: sign in again.)
    let token = app.login("certificado@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = app.admin_token().await;
    assert!(!sees_medicinal(&app, &token).await, "the approval expired");

    // A rejected document can be deleted, with its file.
    let r = submit(&app, &token, doc_form("receta", "nueva.pdf", PDF)).await;
    let second = r.body["id"].as_i64().unwrap();
    let second_file = r.body["fileId"].as_i64().unwrap();
    let key = app
        .scalar_string(&format!(
            "SELECT storage_key FROM files WHERE id = {second_file}"
        ))
        .await
        .unwrap();
    let r = app
        .patch(
            &format!("/api/admin/medicinal/docs/{second}"),
            Some(&admin),
            json!({"status": "rejected", "notes": "Ilegible"}),
        )
        .await;
    assert_eq!(r.body["status"], "rejected", "{}", r.text);
    assert!(!sees_medicinal(&app, &token).await);
    let r = app
        .delete(&format!("/api/medicinal/me/docs/{second}"), Some(&token))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM files WHERE id = {second_file}"
        ))
        .await,
        0
    );
    assert!(
        !app.upload_dir.join("private").join(&key).exists(),
        "the file is gone from disk"
    );
    assert_eq!(
        fetch(&app, &format!("/api/files/{second_file}"), Some(&token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/medicinal/me/docs", Some(&token)).await.body["total"],
        1
    );
}

#[tokio::test]
async fn graphql_serves_the_same_documents() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("gql-med@example.cl").await;
    let r = submit(&app, &token, doc_form("certificado", "c.pdf", PDF)).await;
    let id = r.body["id"].as_i64().unwrap();
    let g = app
        .gql(
            Some(&token),
            "{ myMedicinalDocuments { total items { id status docType fileUrl } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["data"]["myMedicinalDocuments"]["total"], 1,
        "{}",
        g.text
    );
    assert_eq!(
        g.body["data"]["myMedicinalDocuments"]["items"][0]["docType"],
        "certificado"
    );
    let g = app
        .gql(
            Some(&admin),
            "mutation($id: Int!) { reviewMedicinalDocument(id: $id, input: {status: rejected, notes: \"x\"}) { status reviewedBy } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        g.body["data"]["reviewMedicinalDocument"]["status"], "rejected",
        "{}",
        g.text
    );
    let g = app
        .gql(
            Some(&token),
            "{ adminMedicinalDocuments { total } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "forbidden",
        "{}",
        g.text
    );
}
