//! Uploads: magic-byte sniffing, size limits, storage under random names, public serving.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// A valid 1×1 PNG.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

fn file_form(field: &str, name: &str, bytes: Vec<u8>) -> Form {
    Form::new().part(
        field.to_string(),
        Part::bytes(bytes).file_name(name.to_string()),
    )
}

async fn upload(app: &TestApp, token: Option<&str>, form: Form) -> Resp {
    let mut req = app
        .client
        .post(app.url("/api/uploads/image"))
        .multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    app.send(req).await
}

fn stored_files(app: &TestApp) -> usize {
    std::fs::read_dir(app.upload_dir.join("public"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn image_upload_is_sniffed_stored_and_served_with_long_cache() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let r = upload(
        &app,
        Some(&admin),
        file_form("file", "../../etc/photo.PNG", PNG_1X1.to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["contentType"], "image/png");
    assert_eq!(r.body["sizeBytes"], PNG_1X1.len());
    let url = r.body["url"].as_str().unwrap();
    assert!(
        url.starts_with("/uploads/") && url.ends_with(".png"),
        "{url}"
    );
    assert!(
        !url.contains("photo") && !url.contains(".."),
        "stored under a random name: {url}"
    );
    let sha = r.body["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);
    // Database record and audit row.
    let id = r.body["fileId"].as_i64().unwrap();
    assert_eq!(
        app.scalar_string(&format!("SELECT sha256 FROM files WHERE id = {id} AND purpose = 'product_image' AND is_public = TRUE")).await.unwrap(),
        sha
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'file.uploaded'")
            .await,
        1
    );
    // Served at a stable URL, byte for byte, cacheable for a year.
    let res = app.client.get(app.url(url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age=31536000"));
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    // Its content's SHA-256 is its ETag: a revalidation is a 304 without the bytes.
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{sha}\""));
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG_1X1);
    let again = app
        .send(app.client.get(app.url(url)).header("if-none-match", &etag))
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert!(again.text.is_empty());
    let other = app
        .send(
            app.client
                .get(app.url(url))
                .header("if-none-match", "\"other\""),
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
}

/// Whether the public file at `url` is still recorded and on disk.
async fn kept(app: &TestApp, url: &str) -> bool {
    let key = url.strip_prefix("/uploads/").unwrap();
    let recorded = app
        .scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM files WHERE storage_key = '{key}'"
        ))
        .await
        == 1;
    let on_disk = app.upload_dir.join("public").join(key).exists();
    assert_eq!(
        recorded, on_disk,
        "{url}: the record and the bytes go together"
    );
    recorded
}

#[tokio::test]
async fn a_product_image_no_product_shows_any_more_is_deleted_with_its_bytes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut urls = Vec::new();
    for extra in [&b""[..], b"\0", b"\0\0"] {
        let r = upload(
            &app,
            Some(&admin),
            file_form("file", "foto.png", [PNG_1X1, extra].concat()),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        urls.push(r.body["url"].as_str().unwrap().to_string());
    }
    let category = app.scalar_i64("SELECT MIN(id) FROM categories").await;
    let mut products = Vec::new();
    for (name, url) in [("Uno", &urls[0]), ("Dos", &urls[0]), ("Tres", &urls[1])] {
        let r = app
            .post(
                "/api/products",
                Some(&admin),
                json!({"categoryId": category, "name": format!("Maceta {name}"), "imageUrl": url}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        products.push(r.body["id"].as_i64().unwrap());
    }
    // Shown by two products: one dropping it keeps it.
    let r = app
        .patch(
            &format!("/api/products/{}", products[0]),
            Some(&admin),
            json!({"imageUrl": urls[2]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(kept(&app, &urls[0]).await);
    // The last one dropping it removes it, record and bytes.
    let r = app
        .patch(
            &format!("/api/products/{}", products[1]),
            Some(&admin),
            json!({"imageUrl": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!kept(&app, &urls[0]).await);
    assert_eq!(app.get(&urls[0], None).await.status, StatusCode::NOT_FOUND);
    // A deleted product's image goes with it.
    assert!(kept(&app, &urls[1]).await);
    let r = app
        .delete(&format!("/api/products/{}", products[2]), Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(!kept(&app, &urls[1]).await);
    assert!(kept(&app, &urls[2]).await);
    assert_eq!(
        app.scalar_i64(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE kind = 'file.delete' AND state = 'done'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn bad_uploads_are_refused_and_nothing_is_kept() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let r = upload(
        &app,
        Some(&admin),
        file_form(
            "file",
            "fake.png",
            b"this is plain text, not a PNG".to_vec(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("file", "unsupported_type"), "{}", r.text);
    let r = upload(
        &app,
        Some(&admin),
        file_form("file", "photo.jpg", PNG_1X1.to_vec()),
    )
    .await;
    assert!(r.has_detail("file", "type_mismatch"), "{}", r.text);
    let r = upload(
        &app,
        Some(&admin),
        file_form("file", "doc.pdf", b"%PDF-1.7\n%...".to_vec()),
    )
    .await;
    assert!(r.has_detail("file", "unsupported_type"), "{}", r.text);
    let r = upload(
        &app,
        Some(&admin),
        file_form("other", "a.png", PNG_1X1.to_vec()),
    )
    .await;
    assert!(r.has_detail("file", "required"), "{}", r.text);
    let r = app
        .post("/api/uploads/image", Some(&admin), json!({"url": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);
    assert_eq!(r.error_code(), "unsupported_media_type");
    let r = app
        .send(
            app.client
                .post(app.url("/api/uploads/image"))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.has_detail("file", "required"), "{}", r.text);
    // 11 MB: 413 in the error model.
    let mut big = PNG_1X1.to_vec();
    big.resize(11 * 1024 * 1024, 0);
    let r = upload(&app, Some(&admin), file_form("file", "big.png", big)).await;
    assert_eq!(
        r.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        &r.text[..r.text.len().min(300)]
    );
    assert_eq!(r.error_code(), "validation_error");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM files WHERE purpose = 'product_image'")
            .await,
        0
    );
    assert_eq!(stored_files(&app), 0);
}

#[tokio::test]
async fn only_admins_upload_images() {
    let app = TestApp::spawn().await;
    let customer = app.customer_token().await;
    let r = upload(&app, None, file_form("file", "a.png", PNG_1X1.to_vec())).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = upload(
        &app,
        Some(&customer),
        file_form("file", "a.png", PNG_1X1.to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM files WHERE purpose = 'product_image'")
            .await,
        0
    );
    assert_eq!(stored_files(&app), 0);
}

#[tokio::test]
async fn uploads_cannot_escape_their_directory() {
    let app = TestApp::spawn().await;
    std::fs::create_dir_all(app.upload_dir.join("private")).unwrap();
    std::fs::write(app.upload_dir.join("private/secret.pdf"), b"%PDF secret").unwrap();
    for path in [
        "/uploads/../private/secret.pdf",
        "/uploads/%2e%2e/private/secret.pdf",
        "/uploads/..%2fprivate%2fsecret.pdf",
        "/uploads/",
    ] {
        let r = app.send(app.client.get(app.url(path))).await;
        assert_ne!(r.status, StatusCode::OK, "{path}");
        assert!(!r.text.contains("%PDF"), "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn product_created_with_its_image_in_one_multipart_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let cat = app
        .scalar_i64("SELECT id FROM categories WHERE slug = 'semillas'")
        .await;
    let form = Form::new()
        .text("product", json!({"categoryId": cat, "name": "Con Foto", "variants": [{"sku": "FOTO-1", "optionLabel": "1g", "priceCents": 990}]}).to_string())
        .part("image", Part::bytes(PNG_1X1.to_vec()).file_name("foto.png"));
    let r = app
        .send(
            app.client
                .post(app.url("/api/products"))
                .bearer_auth(&admin)
                .multipart(form),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let url = r.body["imageUrl"].as_str().unwrap();
    assert!(url.starts_with("/uploads/"), "{url}");
    assert_eq!(
        app.client.get(app.url(url)).send().await.unwrap().status(),
        StatusCode::OK
    );
    // A bad image: nothing is created, nothing is kept.
    let form = Form::new()
        .text(
            "product",
            json!({"categoryId": cat, "name": "Sin Foto"}).to_string(),
        )
        .part(
            "image",
            Part::bytes(b"not an image".to_vec()).file_name("x.png"),
        );
    let r = app
        .send(
            app.client
                .post(app.url("/api/products"))
                .bearer_auth(&admin)
                .multipart(form),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("image", "unsupported_type"), "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM products WHERE slug = 'sin-foto'")
            .await,
        0
    );
    assert_eq!(stored_files(&app), 1);
}

#[tokio::test]
async fn graphql_multipart_upload() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let operations = json!({"query": "mutation($file: Upload!) { uploadImage(file: $file) { url contentType sizeBytes } }", "variables": {"file": null}});
    let form = Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.file"]}).to_string())
        .part("0", Part::bytes(PNG_1X1.to_vec()).file_name("g.png"));
    let r = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .bearer_auth(&admin)
                .multipart(form),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["data"]["uploadImage"]["contentType"], "image/png",
        "{}",
        r.text
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM files WHERE purpose = 'product_image'")
            .await,
        1
    );
}
