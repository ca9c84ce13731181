//! The catalogue: listing, filters, sorting, the medicinal gate, admin writes, batching.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {body}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn seeded_catalogue_lists_with_categories_and_variants() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/products?sort=name", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["total"], 2,
        "anonymous viewers see the two non-medicinal products"
    );
    assert_eq!(
        names(&r.body),
        ["Northern Lights Auto", "White Widow Feminizada"]
    );
    let p = &r.body["items"][0];
    assert_eq!(p["category"]["slug"], "semillas");
    assert_eq!(p["requiresMedicinalValidation"], false);
    let labels: Vec<&str> = p["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["optionLabel"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["1g", "5g", "10g"], "cheapest first");
    assert_eq!(p["variants"][0]["priceCents"], 4990);
    let cats = app.get("/api/categories", None).await;
    assert_eq!(cats.body["total"], 2);
    let cats = app.get("/api/categories?isMedicinal=true", None).await;
    assert_eq!(cats.body["items"][0]["slug"], "medicinal");
}

#[tokio::test]
async fn medicinal_gate_for_every_viewer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    let validated = app.validated_customer("validado@example.cl").await.0;
    let medicinal_id = app
        .scalar_i64("SELECT id FROM products WHERE slug = 'flor-cbd-terapeutica'")
        .await;

    for (who, token, total) in [
        ("anonymous", None, 2),
        ("customer", Some(customer.as_str()), 2),
        ("validated", Some(validated.as_str()), 4),
        ("admin", Some(admin.as_str()), 4),
    ] {
        let r = app.get("/api/products", token).await;
        assert_eq!(r.body["total"], total, "{who}: {}", r.text);
        assert_eq!(
            r.body["items"].as_array().unwrap().len() as i64,
            total,
            "{who}"
        );
        let by_id = app
            .get(&format!("/api/products/{medicinal_id}"), token)
            .await;
        let variants = app
            .get(&format!("/api/products/{medicinal_id}/variants"), token)
            .await;
        let g = app
            .gql(
                token,
                "query($id: Int!) { product(id: $id) { name } }",
                json!({"id": medicinal_id}),
            )
            .await;
        let gl = app
            .gql(
                token,
                "{ products(category: \"medicinal\") { total items { name } } }",
                json!({}),
            )
            .await;
        if total == 2 {
            assert_eq!(by_id.status, StatusCode::NOT_FOUND, "{who}: {}", by_id.text);
            assert_eq!(variants.status, StatusCode::NOT_FOUND, "{who}");
            assert_eq!(
                g.body["errors"][0]["extensions"]["code"], "not_found",
                "{who}"
            );
            assert_eq!(gl.body["data"]["products"]["total"], 0, "{who}");
        } else {
            assert_eq!(by_id.status, StatusCode::OK, "{who}: {}", by_id.text);
            assert_eq!(by_id.body["category"]["isMedicinal"], true);
            assert_eq!(variants.body["total"], 3, "{who}: {}", variants.text);
            assert_eq!(g.body["data"]["product"]["name"], "Flor CBD Terapéutica");
            assert_eq!(gl.body["data"]["products"]["total"], 2, "{who}");
        }
    }
    // Revoking the validation hides them again, on the very next request.
    let vid = app.get("/api/me", Some(&validated)).await.body["id"]
        .as_i64()
        .unwrap();
    app.patch(
        &format!("/api/users/{vid}"),
        Some(&admin),
        json!({"validatedMedicinal": false}),
    )
    .await;
    assert_eq!(
        app.get("/api/products", Some(&validated)).await.body["total"],
        2
    );
}

#[tokio::test]
async fn teaser_mode_shows_medicinal_products_without_prices() {
    let app = TestApp::spawn_with(&[("MEDICINAL_CATALOG_MODE", "teaser")]).await;
    let r = app
        .get("/api/products?category=medicinal&sort=name", None)
        .await;
    assert_eq!(r.body["total"], 2, "{}", r.text);
    for p in r.body["items"].as_array().unwrap() {
        assert_eq!(p["requiresMedicinalValidation"], true);
        assert_eq!(p["variants"], json!([]));
    }
    let id = r.body["items"][0]["id"].as_i64().unwrap();
    let v = app.get(&format!("/api/products/{id}/variants"), None).await;
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(v.body["items"], json!([]));
    assert_eq!(v.body["requiresMedicinalValidation"], true);
    assert!(!r.text.contains("priceCents"), "no prices leak: {}", r.text);
    let admin = app.admin_token().await;
    let r = app
        .get("/api/products?category=medicinal", Some(&admin))
        .await;
    assert_eq!(r.body["items"][0]["requiresMedicinalValidation"], false);
    assert_eq!(r.body["items"][0]["variants"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn filters_and_sorting() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // Search is case- and accent-insensitive over name and description.
    assert_eq!(
        names(&app.get("/api/products?q=INDICA", None).await.body),
        ["Northern Lights Auto"]
    );
    assert_eq!(
        names(&app.get("/api/products?q=h%C3%ADbrida", None).await.body),
        ["White Widow Feminizada"]
    );
    assert_eq!(
        app.get("/api/products?q=nothing-matches", None).await.body["total"],
        0
    );
    // Price filters match active variants.
    assert_eq!(
        names(&app.get("/api/products?priceMin=40000", None).await.body),
        ["White Widow Feminizada"]
    );
    assert_eq!(
        app.get("/api/products?priceMin=40000&priceMax=44000", Some(&admin))
            .await
            .body["total"],
        0
    );
    assert_eq!(
        names(
            &app.get(
                "/api/products?priceMin=40000&priceMax=45000&sort=name",
                Some(&admin)
            )
            .await
            .body
        ),
        ["Flor CBD Terapéutica", "White Widow Feminizada"]
    );
    let ww_10g = app
        .scalar_i64("SELECT id FROM product_variants WHERE sku = 'WW-FEM-10G'")
        .await;
    app.patch(
        &format!("/api/variants/{ww_10g}"),
        Some(&admin),
        json!({"isActive": false}),
    )
    .await;
    assert_eq!(
        app.get("/api/products?priceMin=40000", None).await.body["total"],
        0,
        "inactive variants do not match"
    );
    // Sorting by the cheapest active variant, both directions, and combined.
    assert_eq!(
        names(
            &app.get("/api/products?sort=-price", Some(&admin))
                .await
                .body
        ),
        [
            "Flor THC:CBD Balanceada",
            "Flor CBD Terapéutica",
            "White Widow Feminizada",
            "Northern Lights Auto"
        ]
    );
    assert_eq!(
        names(
            &app.get("/api/products?sort=price,-createdAt", Some(&admin))
                .await
                .body
        ),
        [
            "Northern Lights Auto",
            "White Widow Feminizada",
            "Flor CBD Terapéutica",
            "Flor THC:CBD Balanceada"
        ]
    );
    assert_eq!(
        names(
            &app.get("/api/products?category=semillas&sort=-name", None)
                .await
                .body
        ),
        ["White Widow Feminizada", "Northern Lights Auto"]
    );
    let cat_id = app
        .scalar_i64("SELECT id FROM categories WHERE slug = 'semillas'")
        .await;
    assert_eq!(
        app.get(&format!("/api/products?category={cat_id}"), None)
            .await
            .body["total"],
        2
    );
    // Pagination.
    let p2 = app
        .get("/api/products?sort=name&page=2&pageSize=1", None)
        .await;
    assert_eq!(names(&p2.body), ["White Widow Feminizada"]);
    assert_eq!(p2.body["total"], 2);
    // Bad arguments.
    for (q, field, issue) in [
        ("sort=stock", "sort", "invalid_sort_field"),
        ("sort=price,password", "sort", "invalid_sort_field"),
        ("pageSize=0", "pageSize", "out_of_range"),
        ("pageSize=101", "pageSize", "out_of_range"),
        ("priceMin=-1", "priceMin", "negative"),
        (
            "priceMin=10&priceMax=5",
            "priceMin",
            "greater_than_price_max",
        ),
        ("priceMin=abc", "priceMin", "invalid_type"),
    ] {
        let r = app.get(&format!("/api/products?{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text);
        assert!(r.has_detail(field, issue), "{q}: {}", r.text);
    }
}

#[tokio::test]
async fn inactive_products_are_admin_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .scalar_i64("SELECT id FROM products WHERE slug = 'northern-lights-auto'")
        .await;
    let r = app
        .patch(
            &format!("/api/products/{id}"),
            Some(&admin),
            json!({"isActive": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.get("/api/products", None).await.body["total"], 1);
    assert_eq!(
        app.get(&format!("/api/products/{id}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/products?isActive=false", Some(&admin))
            .await
            .body["total"],
        1
    );
    assert_eq!(
        app.get(&format!("/api/products/{id}"), Some(&admin))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rest_and_graphql_return_the_same_products() {
    let app = TestApp::spawn().await;
    let rest = app.get("/api/products?sort=price&pageSize=5", None).await;
    let doc = format!(
        "{}\n{}\n{}\n{}",
        "query { products(sort: \"price\", pageSize: 5) { items { ...ProductFields } total page pageSize } }",
        include_str!("../../src/rest/operations/fragments/product_fields.graphql"),
        include_str!("../../src/rest/operations/fragments/category_fields.graphql"),
        include_str!("../../src/rest/operations/fragments/variant_fields.graphql"),
    );
    let g = app.gql(None, &doc, json!({})).await;
    assert_eq!(g.body["data"]["products"], rest.body, "{}", g.text);
    let id = rest.body["items"][0]["id"].as_i64().unwrap();
    let one = app.get(&format!("/api/products/{id}"), None).await;
    assert_eq!(one.body, rest.body["items"][0]);
}

#[tokio::test]
async fn product_pages_cost_a_constant_number_of_statements() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let cat = app
        .scalar_i64("SELECT id FROM categories WHERE slug = 'semillas'")
        .await;
    for i in 0..110 {
        let r = app
            .post(
                "/api/products",
                Some(&admin),
                json!({"categoryId": cat, "name": format!("Bulk {i:03}"), "variants": [
                    {"sku": format!("BULK-{i}-A"), "optionLabel": "1g", "priceCents": 1000 + i, "stock": 5},
                    {"sku": format!("BULK-{i}-B"), "optionLabel": "5g", "priceCents": 4000 + i, "stock": 5},
                    {"sku": format!("BULK-{i}-C"), "optionLabel": "10g", "priceCents": 7000 + i, "stock": 5}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let mut deltas = Vec::new();
    for size in [20, 100] {
        let before = app.metric("db_statements_total", "").await;
        let r = app
            .get(&format!("/api/products?pageSize={size}&sort=name"), None)
            .await;
        let after = app.metric("db_statements_total", "").await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), size);
        assert!(r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["variants"].as_array().unwrap().len() == 3
                && p["category"]["slug"] == "semillas"));
        deltas.push(after - before);
    }
    assert_eq!(
        deltas[0], deltas[1],
        "statements for 20 vs 100 products: {deltas:?}"
    );
    assert_eq!(
        deltas[0], 2.0,
        "the page with its categories, ratings and total, then the variants: {deltas:?}"
    );
    println!("db statements per products page (20, 100): {deltas:?}");
}

#[tokio::test]
async fn admin_writes_with_audit_and_conflicts() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/categories",
            Some(&admin),
            json!({"name": "Accesorios Únicos"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["slug"], "accesorios-unicos");
    let cat = r.body["id"].as_i64().unwrap();
    assert_eq!(
        app.post(
            "/api/categories",
            Some(&admin),
            json!({"name": "X", "slug": "accesorios-unicos"})
        )
        .await
        .status,
        StatusCode::CONFLICT
    );

    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"categoryId": cat, "name": "Bong de vidrio", "description": "30 cm", "imageUrl": "https://cdn.example.cl/bong.png",
                   "variants": [{"sku": "BONG-30", "optionLabel": "30cm", "priceCents": 25990, "stock": 3, "weightGrams": 800}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pid = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["slug"], "bong-de-vidrio");
    assert_eq!(r.body["variants"][0]["sku"], "BONG-30");
    // Duplicate SKU and slug: 409, nothing written.
    let before = app.scalar_i64("SELECT COUNT(*) FROM products").await;
    let r = app
        .post("/api/products", Some(&admin), json!({"categoryId": cat, "name": "Otro", "variants": [{"sku": "BONG-30", "optionLabel": "x", "priceCents": 1}]}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.has_detail("variants[0].sku", "already_exists"),
        "{}",
        r.text
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM products").await,
        before,
        "all or nothing"
    );
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"categoryId": cat, "name": "Bong de vidrio"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.has_detail("slug", "already_exists"));
    // Bad input, every field reported.
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"categoryId": 999999, "name": "", "imageUrl": "ftp://x", "variants": [{"sku": "bad sku", "optionLabel": "1g", "priceCents": -1, "stock": -5}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    for (f, i) in [
        ("name", "required"),
        ("imageUrl", "invalid_format"),
        ("variants[0].sku", "invalid_format"),
        ("variants[0].priceCents", "negative"),
        ("variants[0].stock", "negative"),
    ] {
        assert!(r.has_detail(f, i), "{f}: {}", r.text);
    }
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"categoryId": 999999, "name": "Huérfano"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.has_detail("categoryId", "not_found"), "{}", r.text);
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"categoryId": cat, "name": "P", "priceCents": 10}),
        )
        .await;
    assert!(r.has_detail("priceCents", "unknown_field"), "{}", r.text);

    // Variants.
    let r = app
        .post(
            &format!("/api/products/{pid}/variants"),
            Some(&admin),
            json!({"sku": "BONG-40", "optionLabel": "40cm", "priceCents": 31990, "stock": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let vid = r.body["id"].as_i64().unwrap();
    let r = app
        .patch(
            &format!("/api/variants/{vid}"),
            Some(&admin),
            json!({"stock": -1}),
        )
        .await;
    assert!(r.has_detail("stock", "negative"));
    let r = app
        .patch(
            &format!("/api/variants/{vid}"),
            Some(&admin),
            json!({"priceCents": 29990, "stock": 7}),
        )
        .await;
    assert_eq!(r.body["priceCents"], 29990);
    assert_eq!(r.body["stock"], 7);
    let r = app
        .patch(
            &format!("/api/variants/{vid}"),
            Some(&admin),
            json!({"sku": "BONG-30"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        app.delete(&format!("/api/variants/{vid}"), Some(&admin))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/api/variants/{vid}"), Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // A category with products cannot be deleted.
    let r = app
        .delete(&format!("/api/categories/{cat}"), Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(
        app.delete(&format!("/api/products/{pid}"), Some(&admin))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM product_variants WHERE product_id = {pid}"
        ))
        .await,
        0
    );
    assert_eq!(
        app.delete(&format!("/api/categories/{cat}"), Some(&admin))
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    // Every write left an audit row.
    for action in [
        "category.created",
        "product.created",
        "variant.created",
        "variant.updated",
        "variant.deleted",
        "product.deleted",
        "category.deleted",
    ] {
        assert!(
            app.scalar_i64(&format!(
                "SELECT COUNT(*) FROM system_logs WHERE action = '{action}'"
            ))
            .await
                >= 1,
            "{action}"
        );
    }
}

#[tokio::test]
async fn catalogue_writes_refuse_customers_and_anonymous() {
    let app = TestApp::spawn().await;
    let customer = app.customer_token().await;
    let pid = app
        .scalar_i64("SELECT id FROM products WHERE slug = 'northern-lights-auto'")
        .await;
    let vid = app
        .scalar_i64("SELECT id FROM product_variants WHERE sku = 'NL-AUTO-1G'")
        .await;
    let cat = app
        .scalar_i64("SELECT id FROM categories WHERE slug = 'semillas'")
        .await;
    let writes: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/api/categories".into(), Some(json!({"name": "X"}))),
        (
            "PATCH",
            format!("/api/categories/{cat}"),
            Some(json!({"name": "X"})),
        ),
        ("DELETE", format!("/api/categories/{cat}"), None),
        (
            "POST",
            "/api/products".into(),
            Some(json!({"categoryId": cat, "name": "X"})),
        ),
        (
            "PATCH",
            format!("/api/products/{pid}"),
            Some(json!({"name": "X"})),
        ),
        ("DELETE", format!("/api/products/{pid}"), None),
        (
            "POST",
            format!("/api/products/{pid}/variants"),
            Some(json!({"sku": "X-1", "optionLabel": "1g", "priceCents": 1})),
        ),
        (
            "PATCH",
            format!("/api/variants/{vid}"),
            Some(json!({"stock": 1})),
        ),
        ("DELETE", format!("/api/variants/{vid}"), None),
    ];
    for (m, path, body) in writes {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let anon = app.call(method.clone(), &path, None, body.clone()).await;
        assert_eq!(
            anon.status,
            StatusCode::UNAUTHORIZED,
            "{m} {path}: {}",
            anon.text
        );
        let cust = app.call(method, &path, Some(&customer), body).await;
        assert_eq!(
            cust.status,
            StatusCode::FORBIDDEN,
            "{m} {path}: {}",
            cust.text
        );
    }
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM products").await, 4);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM categories").await, 2);
    assert_eq!(
        app.scalar_i64(
            "SELECT CAST(stock AS BIGINT) FROM product_variants WHERE sku = 'NL-AUTO-1G'"
        )
        .await,
        40
    );
}
