//! Files in an S3-compatible bucket every replica shares (`STORAGE_URL`), against a real S3
//! server: moto, installed and started by `.ci/run` (`TEST_S3_ENDPOINT`). Each test makes a
//! bucket of its own (moto takes an unsigned request for that) and reads it with the owner's
//! credentials. Without `TEST_S3_ENDPOINT` the bucket tests say they were skipped — unless
//! `TEST_S3_REQUIRED` is set, as `.ci/run` sets it, where they fail instead. The tests of a store
//! that cannot be reached need no server and always run.

use std::process::Command;

use chrono::Duration;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::mail::run_jobs;
use crate::medicinal::submit;
use crate::uploads::PNG_1X1;

/// A bucket of this test's own on the S3 server, and the variables that point a server at it.
struct Bucket {
    endpoint: String,
    name: String,
    http: reqwest::Client,
}

impl Bucket {
    /// A new bucket, or `None` (the test is skipped) when no S3 server is configured.
    async fn new(test: &str) -> Option<Bucket> {
        let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") else {
            assert!(
                std::env::var_os("TEST_S3_REQUIRED").is_none(),
                "TEST_S3_REQUIRED is set but TEST_S3_ENDPOINT is not"
            );
            eprintln!("skipped {test}: no S3 server (set TEST_S3_ENDPOINT; .ci/run starts moto)");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "t-{}-{}-{nanos}",
            test.replace('_', "-"),
            std::process::id()
        );
        let name: String = name.chars().take(63).collect();
        let name = name.trim_end_matches('-').to_string();
        let b = Bucket {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            name,
            http: reqwest::Client::new(),
        };
        let made = b.http.put(b.url("")).send().await.expect("the S3 server");
        assert!(made.status().is_success(), "bucket {}: {:?}", b.name, made);
        Some(b)
    }

    fn url(&self, key: &str) -> String {
        format!("{}/{}/{key}", self.endpoint, self.name)
    }

    /// What a server needs to keep its files under `shop/` in this bucket.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("STORAGE_URL", format!("s3://{}/shop", self.name)),
            ("S3_ENDPOINT", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test-key".into()),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-not-a-real-one".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The bucket through its owner's credentials, as the test reads it.
    fn owner(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&self.name)
            .with_region("us-east-1")
            .with_access_key_id("test-key")
            .with_secret_access_key("test-secret-not-a-real-one")
            .build()
            .unwrap()
    }

    /// Every key in the bucket.
    async fn keys(&self) -> Vec<String> {
        use futures::StreamExt;
        use object_store::ObjectStore;
        let mut keys: Vec<String> = self
            .owner()
            .list(None)
            .map(|m| m.unwrap().location.to_string())
            .collect()
            .await;
        keys.sort();
        keys
    }

    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        use object_store::ObjectStore;
        match self.owner().get(&key.into()).await {
            Ok(found) => Some(found.bytes().await.unwrap().to_vec()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("{key}: {e}"),
        }
    }

    /// Without credentials no object can be read (the server answers 403 to an anonymous read
    /// of what no grant or policy makes public).
    async fn assert_nothing_public(&self) {
        let keys = self.keys().await;
        assert!(!keys.is_empty());
        for key in &keys {
            let r = self.http.get(self.url(key)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "anonymous read of {key}");
        }
    }
}

fn vars<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn upload_image(app: &TestApp, admin: &str, bytes: &[u8]) -> serde_json::Value {
    let r = app
        .send(
            app.client
                .post(app.url("/api/uploads/image"))
                .bearer_auth(admin)
                .multipart(
                    Form::new().part("file", Part::bytes(bytes.to_vec()).file_name("foto.png")),
                ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

/// A prescription PDF with `marker` in it, submitted by `token`: (document id, file id, bytes).
async fn prescription(app: &TestApp, token: &str, marker: &str) -> (i64, i64, Vec<u8>) {
    let pdf = format!("%PDF-1.4\n% receta {marker}\n%%EOF\n").into_bytes();
    let form = Form::new()
        .text("docType", "receta")
        .text("acceptHealthDataProcessing", "true")
        .part("file", Part::bytes(pdf.clone()).file_name("receta.pdf"));
    let r = submit(app, token, form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (
        r.body["id"].as_i64().unwrap(),
        r.body["fileId"].as_i64().unwrap(),
        pdf,
    )
}

async fn storage_key(app: &TestApp, file_id: i64) -> String {
    app.scalar_string(&format!(
        "SELECT storage_key FROM files WHERE id = {file_id}"
    ))
    .await
    .expect("a file row")
}

async fn download(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Vec<u8>) {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn an_image_uploaded_through_one_replica_is_served_by_another_with_the_same_bytes_and_etag() {
    let Some(bucket) = Bucket::new("image").await else {
        return;
    };
    let env = bucket.env();
    let a = TestApp::spawn_with(&vars(&env)).await;
    let b = a.replica_with(&vars(&env)).await;
    let admin = a.admin_token().await;
    let up = upload_image(&a, &admin, PNG_1X1).await;
    let url = up["url"].as_str().unwrap().to_string();
    let key = url.strip_prefix("/uploads/").unwrap();
    // In the bucket under the prefix, not in either replica's directory.
    assert_eq!(
        bucket.object(&format!("shop/public/{key}")).await.unwrap(),
        PNG_1X1
    );
    assert!(!a.upload_dir.join("public").join(key).exists());

    let mut etags = Vec::new();
    for app in [&a, &b] {
        let res = app.client.get(app.url(&url)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "image/png");
        assert_eq!(
            res.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            res.headers()["content-length"],
            PNG_1X1.len().to_string().as_str()
        );
        etags.push(res.headers()["etag"].to_str().unwrap().to_string());
        assert_eq!(res.bytes().await.unwrap().as_ref(), PNG_1X1);
    }
    assert_eq!(etags[0], etags[1]);
    assert_eq!(etags[0], format!("\"{}\"", up["sha256"].as_str().unwrap()));
    let again = b
        .send(
            b.client
                .get(b.url(&url))
                .header("if-none-match", etags[0].as_str()),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.text.is_empty());

    // A product shows it; replacing the image through B removes the old object from the bucket.
    let category = b.scalar_i64("SELECT MIN(id) FROM categories").await;
    let p = b
        .post(
            "/api/products",
            Some(&admin),
            json!({"categoryId": category, "name": "Maceta con foto", "imageUrl": url}),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.text);
    let id = p.body["id"].as_i64().unwrap();
    let second = upload_image(&b, &admin, &[PNG_1X1, b"\0"].concat()).await;
    let r = b
        .patch(
            &format!("/api/products/{id}"),
            Some(&admin),
            json!({"imageUrl": second["url"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(bucket.object(&format!("shop/public/{key}")).await.is_none());
    assert_eq!(
        a.get(&url, None).await.status,
        StatusCode::NOT_FOUND,
        "its record went with it"
    );
    bucket.assert_nothing_public().await;
}

#[tokio::test]
async fn a_prescription_uploaded_through_one_replica_is_readable_through_another_by_its_owner_and_admins_only(
) {
    let Some(bucket) = Bucket::new("prescription").await else {
        return;
    };
    let env = bucket.env();
    let a = TestApp::spawn_with(&vars(&env)).await;
    let b = a.replica_with(&vars(&env)).await;
    let admin = a.admin_token().await;
    let (owner, _, _) = a.register("receta-s3@example.cl").await;
    let (other, _, _) = a.register("otra-s3@example.cl").await;
    let (_, file_id, pdf) = prescription(&a, &owner, "S3").await;
    let key = storage_key(&a, file_id).await;
    assert_eq!(
        bucket.object(&format!("shop/private/{key}")).await.unwrap(),
        pdf
    );

    let path = format!("/api/files/{file_id}");
    assert_eq!(
        download(&b, &path, Some(&owner)).await,
        (StatusCode::OK, pdf.clone())
    );
    assert_eq!(
        download(&b, &path, Some(&admin)).await,
        (StatusCode::OK, pdf.clone())
    );
    assert_eq!(
        download(&b, &path, Some(&other)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(download(&b, &path, None).await.0, StatusCode::NOT_FOUND);
    // Not a public image, whatever its key.
    assert_eq!(
        download(&b, &format!("/uploads/{key}"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&b, &format!("/uploads/../private/{key}"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    bucket.assert_nothing_public().await;
}

#[tokio::test]
async fn the_retention_purge_erasure_and_export_expiry_leave_no_object_in_the_bucket() {
    let Some(bucket) = Bucket::new("purge").await else {
        return;
    };
    let env = bucket.env();
    let app = TestApp::spawn_with(&vars(&env)).await;
    let b = app.replica_with(&vars(&env)).await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("purga-s3@example.cl").await;
    let sign_in = || async {
        let token = app.login("purga-s3@example.cl", "secreto123").await["accessToken"]
            .as_str()
            .unwrap()
            .to_string();
        (token, app.admin_token().await)
    };
    // A rejected prescription, purged a retention period later.
    let (rejected, rejected_file, _) = prescription(&app, &token, "R").await;
    let rejected_key = format!("shop/private/{}", storage_key(&app, rejected_file).await);
    let r = app
        .patch(
            &format!("/api/admin/medicinal/docs/{rejected}"),
            Some(&admin),
            json!({"status": "rejected", "notes": "Ilegible"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.clock.advance(Duration::days(366));
    b.clock.advance(Duration::days(366));
    run_jobs(&app).await;
    assert!(bucket.keys().await.iter().all(|k| k != &rejected_key));
    assert!(bucket.object(&rejected_key).await.is_none());
    let (token, _) = sign_in().await;

    // A data export: its ZIP in the bucket, downloaded through B, gone once its link expired.
    let export = async |token: &str| {
        let r = app
            .post("/api/me/data-export", Some(token), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        let export = r.body["id"].as_i64().unwrap();
        run_jobs(&app).await;
        (
            export,
            format!("shop/private/exports/data-export-{export}.zip"),
        )
    };
    let (first, first_zip) = export(&token).await;
    let zip = bucket.object(&first_zip).await.expect("the export's ZIP");
    assert!(zip.starts_with(b"PK\x03\x04"), "a ZIP");
    let s = b
        .get(&format!("/api/me/data-exports/{first}"), Some(&token))
        .await;
    assert_eq!(s.body["state"], "ready", "{}", s.text);
    let link = s.body["downloadUrl"].as_str().unwrap();
    let link = &link[link.find("/api/").unwrap()..];
    assert_eq!(
        download(&b, link, Some(&token)).await,
        (StatusCode::OK, zip)
    );
    app.clock.advance(Duration::hours(25));
    b.clock.advance(Duration::hours(25));
    run_jobs(&app).await;
    assert!(bucket.object(&first_zip).await.is_none(), "expired");
    let (token, admin) = sign_in().await;

    // Another prescription and another export, then the erasure.
    let (_, kept_file, _) = prescription(&app, &token, "K").await;
    let kept_key = format!("shop/private/{}", storage_key(&app, kept_file).await);
    let (_, zip_key) = export(&token).await;
    assert!(bucket.object(&zip_key).await.is_some());
    assert!(bucket.object(&kept_key).await.is_some());

    // Erasure, run early by an admin: the prescription and the export go from the bucket.
    let r = app
        .post(
            "/api/me/deletion-request",
            Some(&token),
            json!({"password": "secreto123"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let request = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/api/admin/privacy-requests/{request}/process"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "ready", "{}", r.text);
    let left = bucket.keys().await;
    assert!(
        !left.contains(&kept_key) && !left.contains(&zip_key),
        "left behind: {left:?}"
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE kind = 'file.delete' AND state <> 'done'"
        )
        .await,
        0,
        "every removal ran"
    );
}

#[tokio::test]
async fn migrate_files_copies_the_local_files_into_the_bucket_once() {
    let Some(bucket) = Bucket::new("migrate").await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("dispensary-migrate-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("public")).unwrap();
    std::fs::create_dir_all(dir.join("private/exports")).unwrap();
    std::fs::write(dir.join("public/abc123.png"), PNG_1X1).unwrap();
    std::fs::write(dir.join("private/def456.pdf"), b"%PDF-1.4 private").unwrap();
    std::fs::write(dir.join("private/exports/data-export-7.zip"), b"PK zip").unwrap();
    // A write that never finished is not copied.
    std::fs::write(dir.join("private/.ghi789.part"), b"half").unwrap();
    let run = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispensary"));
        cmd.arg("migrate-files")
            .env("APP_ENV", "test")
            .env("UPLOAD_DIR", &dir)
            .env("DATABASE_URL", "sqlite::memory:")
            .env_remove("REDIS_URL");
        for (k, v) in bucket.env() {
            cmd.env(k, v);
        }
        cmd.output().expect("the binary")
    };
    let first = run();
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        first.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        out.contains("migrate-files: 3 copied, 0 already there, 0 failed"),
        "{out}"
    );
    let keys = bucket.keys().await;
    assert_eq!(
        keys,
        [
            "shop/private/def456.pdf",
            "shop/private/exports/data-export-7.zip",
            "shop/public/abc123.png"
        ]
    );
    assert_eq!(
        bucket.object("shop/public/abc123.png").await.unwrap(),
        PNG_1X1
    );
    // Again: nothing to do.
    let second = run();
    let out = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(second.status.success(), "{out}");
    assert!(
        out.contains("migrate-files: 0 copied, 3 already there, 0 failed"),
        "{out}"
    );
    // The local files stay where they were.
    assert!(dir.join("public/abc123.png").exists());
}

/// An S3 endpoint nothing listens on.
fn closed_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_makes_uploads_and_downloads_503_and_nothing_else() {
    // A writes to its directory; B, over the same database, to a bucket that cannot be reached.
    let a = TestApp::spawn().await;
    let admin = a.admin_token().await;
    let up = upload_image(&a, &admin, PNG_1X1).await;
    let url = up["url"].as_str().unwrap().to_string();
    let (owner, _, _) = a.register("caida@example.cl").await;
    let (_, file_id, _) = prescription(&a, &owner, "X").await;
    let endpoint = closed_endpoint();
    let b = a
        .replica_with(&[
            ("STORAGE_URL", "s3://tienda-caida/shop"),
            ("S3_ENDPOINT", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ])
        .await;
    let files_before = b
        .scalar_i64("SELECT CAST(COUNT(*) AS BIGINT) FROM files")
        .await;

    let down = b.get(&url, None).await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.text
    );
    assert_eq!(down.error_code(), "service_unavailable");
    assert_eq!(down.header("retry-after"), Some("5"));
    let doc = b.get(&format!("/api/files/{file_id}"), Some(&owner)).await;
    assert_eq!(doc.status, StatusCode::SERVICE_UNAVAILABLE, "{}", doc.text);
    assert_eq!(doc.header("retry-after"), Some("5"));
    let r = b
        .send(
            b.client
                .post(b.url("/api/uploads/image"))
                .bearer_auth(&admin)
                .multipart(
                    Form::new().part("file", Part::bytes(PNG_1X1.to_vec()).file_name("foto.png")),
                ),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(
        b.scalar_i64("SELECT CAST(COUNT(*) AS BIGINT) FROM files")
            .await,
        files_before,
        "nothing recorded"
    );
    // Everything else is served.
    assert_eq!(b.get("/api/products", None).await.status, StatusCode::OK);
    let ready = b.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["storage"], json!({"backend": "s3"}));
    assert_eq!(
        a.get("/readyz", None).await.body["storage"],
        json!({"backend": "local"})
    );
    // A still serves its own files.
    assert_eq!(a.get(&url, None).await.status, StatusCode::OK);
}
