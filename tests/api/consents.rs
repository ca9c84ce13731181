//! Consents (Ley 21.719): the privacy policy version recorded at registration and accepted again
//! after it changes; the health-data consent medicinal documents need, and its withdrawal.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::medicinal::{doc_form, sees_medicinal, submit, PDF};

async fn consent_rows(app: &TestApp, user: i64) -> Vec<(String, String, String, bool, bool)> {
    let mut out = Vec::new();
    let n = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM consents WHERE user_id = {user}"
        ))
        .await;
    for i in 0..n {
        let field = |col: &str| {
            format!(
                "SELECT {col} FROM consents WHERE user_id = {user} ORDER BY id LIMIT 1 OFFSET {i}"
            )
        };
        let text = |col: &str| {
            let sql = field(col);
            async move { app.scalar_string(&sql).await.unwrap_or_default() }
        };
        out.push((
            text("purpose").await,
            text("policy_version").await,
            text("source").await,
            app.scalar_i64(&field(
                "CAST(CASE WHEN explicit THEN 1 ELSE 0 END AS BIGINT)",
            ))
            .await
                == 1,
            app.scalar_i64(&field(
                "CAST(CASE WHEN withdrawn_at IS NULL THEN 0 ELSE 1 END AS BIGINT)",
            ))
            .await
                == 1,
        ));
    }
    out
}

fn row(
    p: &str,
    v: &str,
    s: &str,
    explicit: bool,
    withdrawn: bool,
) -> (String, String, String, bool, bool) {
    (p.into(), v.into(), s.into(), explicit, withdrawn)
}

#[tokio::test]
async fn registration_records_the_policy_version_and_a_new_version_asks_again() {
    let app = TestApp::spawn().await;
    // Without the new field: registration works as before and records the version in force.
    let (token, id, body) = app.register("ana@example.cl").await;
    assert_eq!(body["user"]["privacyPolicyAccepted"], true, "{body}");
    assert_eq!(
        consent_rows(&app, id).await,
        vec![row(
            "privacy_policy",
            "2026-12-01",
            "registration",
            false,
            false
        )]
    );
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.body["privacyPolicyAccepted"], true, "{}", me.text);
    let ip = app
        .scalar_string(&format!("SELECT ip FROM consents WHERE user_id = {id}"))
        .await;
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));

    // With it, the acceptance is express; `false` is refused and creates nothing.
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"name": "Bea", "email": "bea@example.cl", "password": "secreto123", "acceptPrivacyPolicy": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bea = r.body["user"]["id"].as_i64().unwrap();
    assert_eq!(
        consent_rows(&app, bea).await,
        vec![row(
            "privacy_policy",
            "2026-12-01",
            "registration",
            true,
            false
        )]
    );
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"name": "Cata", "email": "cata@example.cl", "password": "secreto123", "acceptPrivacyPolicy": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.has_detail("acceptPrivacyPolicy", "must_accept"),
        "{}",
        r.text
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE email = 'cata@example.cl'")
            .await,
        0
    );

    // A server with a new policy version: the same account has not accepted it yet.
    let next = app
        .replica_with(&[("PRIVACY_POLICY_VERSION", "2027-03-15")])
        .await;
    let me = next.get("/api/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["privacyPolicyAccepted"], false, "{}", me.text);
    let gql = next
        .gql(
            Some(&token),
            "{ me { privacyPolicyAccepted } myConsents { policyVersion privacyPolicyAccepted } }",
            json!({}),
        )
        .await;
    assert_eq!(
        gql.body["data"]["me"]["privacyPolicyAccepted"], false,
        "{}",
        gql.text
    );
    assert_eq!(
        gql.body["data"]["myConsents"]["policyVersion"],
        "2027-03-15"
    );
    // Accepting a version that is not the one in force is refused.
    let stale = next
        .post(
            "/api/me/consents/privacy_policy",
            Some(&token),
            json!({"policyVersion": "2026-12-01"}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text);
    assert!(stale.has_detail("policyVersion", "policy_changed"));
    let ok = next
        .post(
            "/api/me/consents/privacy_policy",
            Some(&token),
            json!({"policyVersion": "2027-03-15"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["privacyPolicyAccepted"], true, "{}", ok.text);
    assert_eq!(ok.body["items"][0]["policyVersion"], "2027-03-15");
    assert_eq!(ok.body["items"][0]["source"], "request");
    assert_eq!(ok.body["items"][0]["explicit"], true);
    assert_eq!(ok.body["items"][1]["policyVersion"], "2026-12-01");
    // Accepting again changes nothing (no new row, no new event).
    let again = next
        .post("/api/me/consents/privacy_policy", Some(&token), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(
        again.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        again.text
    );
    assert_eq!(
        next.get("/api/me", Some(&token)).await.body["privacyPolicyAccepted"],
        true
    );
    // The older server still answers by its own version.
    assert_eq!(
        app.get("/api/me", Some(&token)).await.body["privacyPolicyAccepted"],
        true
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM system_logs WHERE action = 'consent.granted' AND entity_id = {id}"
        ))
        .await,
        2,
        "registration + the new version"
    );

    // Withdrawing the acceptance: not accepted any more, the rows stay as proof.
    let w = next
        .post(
            "/api/me/consents/privacy_policy/withdraw",
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.text);
    assert_eq!(w.body["privacyPolicyAccepted"], false);
    assert!(w.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["withdrawnAt"].is_string()));
    assert_eq!(
        consent_rows(&app, id).await,
        vec![
            row("privacy_policy", "2026-12-01", "registration", false, true),
            row("privacy_policy", "2027-03-15", "request", true, true),
        ]
    );
    // Admins see whether a user accepted, in lists too.
    let admin = app.admin_token().await;
    let users = next
        .get("/api/users?q=ana%40example.cl", Some(&admin))
        .await;
    assert_eq!(
        users.body["items"][0]["privacyPolicyAccepted"], false,
        "{}",
        users.text
    );
    let users = next
        .get("/api/users?q=bea%40example.cl", Some(&admin))
        .await;
    assert_eq!(
        users.body["items"][0]["privacyPolicyAccepted"], false,
        "older version: {}",
        users.text
    );
    let users = app.get("/api/users?q=bea%40example.cl", Some(&admin)).await;
    assert_eq!(
        users.body["items"][0]["privacyPolicyAccepted"], true,
        "{}",
        users.text
    );
}

fn private_files(app: &TestApp) -> usize {
    std::fs::read_dir(app.state.config.storage.upload_dir.join("private"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_document_needs_the_health_data_consent() {
    let app = TestApp::spawn().await;
    let (token, id, _) = app.register("paciente@example.cl").await;
    let files_before = private_files(&app);
    let bare = || {
        Form::new()
            .text("docType", "receta")
            .part("file", Part::bytes(PDF.to_vec()).file_name("receta.pdf"))
    };
    // Without consent: 403 consent_required, and nothing stored.
    let r = submit(&app, &token, bare()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error_code(), "consent_required");
    assert!(r.has_detail("acceptHealthDataProcessing", "consent_required"));
    let r = submit(
        &app,
        &token,
        bare().text("acceptHealthDataProcessing", "false"),
    )
    .await;
    assert_eq!(r.error_code(), "consent_required", "{}", r.text);
    let up = app
        .send(
            app.client
                .post(app.url("/api/uploads/doc"))
                .bearer_auth(&token)
                .multipart(Form::new().part("file", Part::bytes(PDF.to_vec()).file_name("r.pdf"))),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let file_id = up.body["fileId"].as_i64().unwrap();
    let r = app
        .post(
            "/api/medicinal/me/docs",
            Some(&token),
            json!({"docType": "receta", "fileId": file_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error_code(), "consent_required");
    let gql = app
        .gql(
            Some(&token),
            "mutation($f: Int!) { submitMedicinalDocument(input: {docType: receta, fileId: $f}) { id } }",
            json!({"f": file_id}),
        )
        .await;
    assert_eq!(
        gql.body["errors"][0]["extensions"]["code"], "consent_required",
        "{}",
        gql.text
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM medicinal_documents WHERE user_id = {id}"
        ))
        .await,
        0
    );
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM files WHERE owner_id = {id}"))
            .await,
        1,
        "only the upload"
    );
    assert_eq!(private_files(&app), files_before + 1, "only the upload");
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM consents WHERE user_id = {id} AND purpose = 'health_data'"
        ))
        .await,
        0
    );

    // Consent given in the submission itself (JSON `true`, or the text `true` in a form).
    let r = app
        .post(
            "/api/medicinal/me/docs",
            Some(&token),
            json!({"docType": "receta", "fileId": file_id, "acceptHealthDataProcessing": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rows = consent_rows(&app, id).await;
    assert_eq!(
        rows[1],
        row("health_data", "2026-12-01", "document", true, false)
    );
    let r = submit(&app, &token, bare()).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "consent already given: {}",
        r.text
    );
    assert_eq!(
        consent_rows(&app, id).await.len(),
        2,
        "no second consent row"
    );

    // Or before, on its own route.
    let (other, other_id, _) = app.register("otra@example.cl").await;
    let c = app
        .post("/api/me/consents/health_data", Some(&other), json!({}))
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.body["healthData"], true);
    assert_eq!(c.body["items"][0]["purpose"], "health_data");
    assert_eq!(c.body["items"][0]["source"], "request");
    let r = submit(&app, &other, bare()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        consent_rows(&app, other_id).await[1],
        row("health_data", "2026-12-01", "request", true, false)
    );
    let audit = app
        .scalar_string(&format!(
            "SELECT CAST(meta AS TEXT) FROM system_logs WHERE action = 'consent.granted' AND entity_id = {other_id} ORDER BY id DESC LIMIT 1"
        ))
        .await
        .unwrap();
    let audit: serde_json::Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(audit["purpose"], "health_data", "{audit}");
    assert_eq!(audit["source"], "request", "{audit}");
}

#[tokio::test]
async fn withdrawing_the_health_data_consent_ends_medicinal_access_and_review() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, id, _) = app.register("paciente@example.cl").await;
    let r = submit(&app, &token, doc_form("receta", "receta.pdf", PDF)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let approved = r.body["id"].as_i64().unwrap();
    let r = app
        .patch(
            &format!("/api/admin/medicinal/docs/{approved}"),
            Some(&admin),
            json!({"status": "approved", "expiresAt": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = submit(&app, &token, doc_form("certificado", "cert.pdf", PDF)).await;
    let pending = r.body["id"].as_i64().unwrap();
    assert!(sees_medicinal(&app, &token).await);
    assert!(queue(&app, &admin).await.contains(&pending));

    // Withdrawn: access ends with the same token, at once; the pending document leaves review.
    let w = app
        .post(
            "/api/me/consents/health_data/withdraw",
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.text);
    assert_eq!(w.body["healthData"], false);
    assert!(!sees_medicinal(&app, &token).await, "access ended");
    let gql = app
        .gql(
            Some(&token),
            "{ products(pageSize: 100) { items { slug } } }",
            json!({}),
        )
        .await;
    assert!(!gql.text.contains("flor-cbd-terapeutica"), "{}", gql.text);
    assert!(
        !queue(&app, &admin).await.contains(&pending),
        "out of review"
    );
    let all = app
        .get(
            "/api/admin/medicinal/docs?q=paciente%40example.cl",
            Some(&admin),
        )
        .await;
    assert_eq!(
        all.body["total"], 1,
        "the approved one stays listed: {}",
        all.text
    );
    assert_eq!(all.body["items"][0]["id"], approved);
    let review = app
        .patch(
            &format!("/api/admin/medicinal/docs/{pending}"),
            Some(&admin),
            json!({"status": "approved"}),
        )
        .await;
    assert_eq!(review.status, StatusCode::CONFLICT, "{}", review.text);
    assert!(review.has_detail("status", "consent_withdrawn"));
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT status FROM medicinal_documents WHERE id = {pending}"
        ))
        .await
        .as_deref(),
        Some("pending")
    );
    // A new document is refused meanwhile.
    let bare = Form::new()
        .text("docType", "receta")
        .part("file", Part::bytes(PDF.to_vec()).file_name("receta.pdf"));
    assert_eq!(
        submit(&app, &token, bare).await.error_code(),
        "consent_required"
    );
    // Withdrawing again changes nothing.
    let again = app
        .post(
            "/api/me/consents/health_data/withdraw",
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM system_logs WHERE action = 'consent.withdrawn' AND entity_id = {id}"
        ))
        .await,
        1
    );

    // Given again (GraphQL): access and review come back.
    let g = app
        .gql(
            Some(&token),
            "mutation { giveConsent(purpose: health_data) { healthData items { purpose withdrawnAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["data"]["giveConsent"]["healthData"], true,
        "{}",
        g.text
    );
    assert!(sees_medicinal(&app, &token).await, "access back");
    assert!(queue(&app, &admin).await.contains(&pending));
    let mine = app.get("/api/me/consents", Some(&token)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    let purposes: Vec<(String, bool)> = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["purpose"].as_str().unwrap().to_string(),
                c["withdrawnAt"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        purposes,
        vec![
            ("health_data".to_string(), true),
            ("health_data".to_string(), false),
            ("privacy_policy".to_string(), true),
        ]
    );
    // A validated customer (no dated document) is gated the same way.
    let (v, v_id, _) = app.register("validada@example.cl").await;
    app.patch(
        &format!("/api/users/{v_id}"),
        Some(&admin),
        json!({"validatedMedicinal": true}),
    )
    .await;
    assert!(sees_medicinal(&app, &v).await);
    app.post("/api/me/consents/health_data", Some(&v), json!({}))
        .await;
    app.post("/api/me/consents/health_data/withdraw", Some(&v), json!({}))
        .await;
    assert!(!sees_medicinal(&app, &v).await);
    // Consents are the user's own: anonymous callers are refused.
    assert_eq!(
        app.get("/api/me/consents", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The ids in the admin's review queue (pending documents).
async fn queue(app: &TestApp, admin: &str) -> Vec<i64> {
    app.get("/api/admin/medicinal/docs?status=pending", Some(admin))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}
