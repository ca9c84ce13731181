//! CSV import (dry run and all-or-nothing commit) and export.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const HEADER: &str = "name,categorySlug,description,imageUrl,isActive,variantSku,variantLabel,variantPriceCents,variantStock";

async fn import(app: &TestApp, token: Option<&str>, csv: &str, dry_run: bool) -> Resp {
    let mut req = app
        .client
        .post(app.url(&format!("/api/products/import?dryRun={dry_run}")))
        .header("content-type", "text/csv")
        .body(csv.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    app.send(req).await
}

fn good_csv() -> String {
    format!(
        "{HEADER}\n\
         Gorilla Glue Auto,semillas,\"Híbrida, potente\",,true,GG-1G,1g,6990,10\n\
         Gorilla Glue Auto,semillas,,,true,GG-5G,5g,27990,4\n\
         Aceite CBD 10%,medicinal,Gotero 10 ml,https://cdn.example.cl/aceite.png,false,CBD-OIL-10,10ml,29990,7\n"
    )
}

#[tokio::test]
async fn dry_run_reports_and_writes_nothing_then_commit_creates() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let products = app.scalar_i64("SELECT COUNT(*) FROM products").await;
    let r = import(&app, Some(&admin), &good_csv(), true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"dryRun": true, "rows": 3, "productsCreated": 2, "productsMatched": 0, "variantsCreated": 3, "errors": []})
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM products").await,
        products
    );

    let r = import(&app, Some(&admin), &good_csv(), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["dryRun"], false);
    assert_eq!(r.body["productsCreated"], 2);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM products").await,
        products + 2
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM product_variants v JOIN products p ON p.id = v.product_id WHERE p.slug = 'gorilla-glue-auto'").await,
        2
    );
    assert_eq!(
        app.scalar_string("SELECT description FROM products WHERE slug = 'gorilla-glue-auto'")
            .await
            .unwrap(),
        "Híbrida, potente"
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM products WHERE slug = 'aceite-cbd-10' AND is_active = FALSE"
        )
        .await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'product.imported'")
            .await,
        1
    );
    // Importing the same file again: every SKU now exists.
    let r = import(&app, Some(&admin), &good_csv(), true).await;
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 3, "{}", r.text);
    assert_eq!(r.body["errors"][0]["issue"], "already_exists");
    assert_eq!(r.body["productsMatched"], 2);
}

#[tokio::test]
async fn bad_rows_are_listed_in_a_dry_run_and_refuse_a_real_import() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let csv = format!(
        "{HEADER}\n\
         Uno,semillas,,,true,DUP-1,1g,1000,1\n\
         Dos,no-such-category,,,true,DUP-1,1g,-5,x\n\
         ,semillas,,,maybe,bad sku,,10,1\n\
         Tres,semillas,,,true,NL-AUTO-1G,1g,1000,1\n"
    );
    let r = import(&app, Some(&admin), &csv, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let errors = r.body["errors"].as_array().unwrap();
    let has = |row: u64, field: &str, issue: &str| {
        errors
            .iter()
            .any(|e| e["row"] == row && e["field"] == field && e["issue"] == issue)
    };
    assert!(has(3, "categorySlug", "not_found"), "{}", r.text);
    assert!(has(3, "variantSku", "duplicate"), "{}", r.text);
    assert!(has(3, "variantPriceCents", "negative"), "{}", r.text);
    assert!(has(3, "variantStock", "invalid_type"), "{}", r.text);
    assert!(has(4, "name", "required"), "{}", r.text);
    assert!(has(4, "isActive", "invalid_type"), "{}", r.text);
    assert!(has(4, "variantSku", "invalid_format"), "{}", r.text);
    assert!(has(4, "variantLabel", "required"), "{}", r.text);
    assert!(has(5, "variantSku", "already_exists"), "{}", r.text);
    assert!(
        !errors.iter().any(|e| e["row"] == 2),
        "row 2 is fine: {}",
        r.text
    );

    let before = app.scalar_i64("SELECT COUNT(*) FROM products").await;
    let r = import(&app, Some(&admin), &csv, false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.has_detail("rows[3].variantSku", "duplicate"),
        "{}",
        r.text
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM products").await,
        before,
        "all or nothing"
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM products WHERE slug = 'uno'")
            .await,
        0
    );
}

#[tokio::test]
async fn missing_header_columns_are_reported() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let csv = "name,categorySlug,variantSku\nUno,semillas,U-1\n";
    let r = import(&app, Some(&admin), csv, false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.has_detail("header.variantPriceCents", "missing_column"),
        "{}",
        r.text
    );
    assert!(
        r.has_detail("header.variantLabel", "missing_column"),
        "{}",
        r.text
    );
    let r = import(&app, Some(&admin), csv, true).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["errors"][0]["field"], "header.description",
        "{}",
        r.text
    );
    let r = import(&app, Some(&admin), "", false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = import(&app, Some(&admin), &format!("{HEADER}\n"), false).await;
    assert!(r.has_detail("rows[2].row", "empty"), "{}", r.text);
}

#[tokio::test]
async fn export_lists_every_variant_and_reimports_cleanly() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let res = app
        .client
        .get(app.url("/api/products/export"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("products.csv"));
    let text = res.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HEADER));
    assert_eq!(lines.count(), 12, "one row per seeded variant: {text}");
    assert!(text.contains("Northern Lights Auto,semillas,"), "{text}");
    assert!(text.contains("NL-AUTO-5G,5g,19990,20"), "{text}");

    // The export is a valid import file: into another store whose SKUs are free, it goes through.
    let other = TestApp::spawn().await;
    let other_admin = other.admin_token().await;
    let renamed = text
        .replace("-1G,", "-X1G,")
        .replace("-5G,", "-X5G,")
        .replace("-10G,", "-X10G,");
    let r = import(&other, Some(&other_admin), &renamed, true).await;
    assert_eq!(r.body["errors"], json!([]), "{}", r.text);
    assert_eq!(r.body["productsMatched"], 4, "matched by name: {}", r.text);
    assert_eq!(r.body["variantsCreated"], 12);
}

#[tokio::test]
async fn import_and_export_are_admin_only() {
    let app = TestApp::spawn().await;
    let customer = app.customer_token().await;
    assert_eq!(
        import(&app, None, &good_csv(), false).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        import(&app, Some(&customer), &good_csv(), false)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/products/export", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = app.get("/api/products/export", Some(&customer)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "forbidden");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM products").await, 4);
}
