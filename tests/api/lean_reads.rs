//! The uncached catalogue read path (issue 13): a page and its total in one statement, REST costing
//! no more statements than GraphQL for the same data, and totals that stay right on the last page,
//! past the end, with filters and with `sort=price`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// The category every product of these tests is in (anonymous viewers see it).
const CATEGORY: &str = "lean-bench";
/// Products in it, 3 variants each.
const PRODUCTS: usize = 105;

/// The REST `Products` and `Product` operations with their fragments: what the bridge executes,
/// sent as a GraphQL client would (the load benchmark sends the same).
fn rest_document(op: &str) -> String {
    [
        op,
        include_str!("../../src/rest/operations/fragments/product_fields.graphql"),
        include_str!("../../src/rest/operations/fragments/category_fields.graphql"),
        include_str!("../../src/rest/operations/fragments/variant_fields.graphql"),
    ]
    .join("\n")
}

fn products_document() -> String {
    rest_document(include_str!(
        "../../src/rest/operations/catalog/products.graphql"
    ))
}

fn product_document() -> String {
    rest_document(include_str!(
        "../../src/rest/operations/catalog/product.graphql"
    ))
}

/// The cheapest variant of product `i` (0-based): prices in a scrambled order, a few ties.
fn price_of(i: usize) -> i64 {
    1000 + ((i * 37) % 50) as i64 * 100
}

/// A catalogue of `PRODUCTS` products × 3 variants in category `CATEGORY`, by one CSV import.
async fn catalogue(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/categories",
            Some(&admin),
            json!({"name": "Lean bench", "slug": CATEGORY}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut csv = String::from(
        "name,categorySlug,description,imageUrl,isActive,variantSku,variantLabel,variantPriceCents,variantStock\n",
    );
    for i in 0..PRODUCTS {
        for (v, label) in ["1g", "5g", "10g"].iter().enumerate() {
            let kind = if i % 3 == 0 { "Indica" } else { "Sativa" };
            csv.push_str(&format!(
                "Lean {kind} {i:03},{CATEGORY},Producto {i},,true,LEAN-{i:03}-{v},{label},{},10\n",
                price_of(i) + 1000 * v as i64
            ));
        }
    }
    let r = app
        .send(
            app.client
                .post(app.url("/api/products/import"))
                .bearer_auth(&admin)
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["productsCreated"], PRODUCTS, "{}", r.text);
    admin
}

/// The statements one request costs (the `/metrics` scrapes around it cost none), and its body.
async fn measured(app: &TestApp, req: reqwest::RequestBuilder) -> (f64, Resp) {
    let before = app.metric("db_statements_total", "").await;
    let r = app.send(req).await;
    let after = app.metric("db_statements_total", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (after - before, r)
}

async fn rest(app: &TestApp, path: &str) -> (f64, Value) {
    let (n, r) = measured(app, app.client.get(app.url(path))).await;
    (n, r.body)
}

async fn graphql(app: &TestApp, doc: &str, op: Option<&str>, variables: Value) -> (f64, Value) {
    let body = json!({"query": doc, "operationName": op, "variables": variables});
    let (n, r) = measured(app, app.client.post(app.url("/graphql")).json(&body)).await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    (n, r.body["data"].clone())
}

/// REST and GraphQL answer the same data with the same statements: a list is the page with its
/// categories, ratings and total (one statement), then one batch of variants, whatever the page
/// size; a product is the product with its category and rating, then its variants.
#[tokio::test]
async fn lean_rest_costs_what_graphql_costs_for_the_same_data() {
    let app = TestApp::spawn().await;
    catalogue(&app).await;
    let list = products_document();
    let mut counts = Vec::new();
    for size in [20, 100] {
        let (rest_n, rest_body) = rest(&app, &format!("/api/products?pageSize={size}")).await;
        let (gql_n, gql_body) =
            graphql(&app, &list, Some("Products"), json!({"pageSize": size})).await;
        assert_eq!(gql_body["products"], rest_body, "same data, list of {size}");
        let items = rest_body["items"].as_array().unwrap();
        assert_eq!(items.len(), size);
        assert!(items
            .iter()
            .all(|p| p["variants"].as_array().unwrap().len() == 3 && p["rating"].is_object()));
        counts.push((format!("list {size}"), rest_n, gql_n));
    }

    let id = app
        .scalar_i64(&format!(
            "SELECT p.id FROM products p JOIN categories c ON c.id = p.category_id \
             WHERE c.slug = '{CATEGORY}' ORDER BY p.id LIMIT 1"
        ))
        .await;
    let (rest_n, rest_body) = rest(&app, &format!("/api/products/{id}")).await;
    let (gql_n, gql_body) = graphql(
        &app,
        &product_document(),
        Some("Product"),
        json!({"id": id}),
    )
    .await;
    assert_eq!(gql_body["product"], rest_body);
    assert_eq!(rest_body["variants"].as_array().unwrap().len(), 3);
    assert_eq!(rest_body["category"]["slug"], CATEGORY);
    counts.push(("product".into(), rest_n, gql_n));

    // Less data, no fewer statements but leaner ones: without ratings, the page and one batch of
    // variants (the GraphQL benchmark query); names alone, the page with its total.
    let (n, body) = graphql(
        &app,
        "query { products(pageSize: 20) { items { id name category { slug } \
         variants { id sku priceCents stock } } total } }",
        None,
        json!({}),
    )
    .await;
    assert_eq!(body["products"]["items"].as_array().unwrap().len(), 20);
    counts.push(("no rating 20".into(), n, n));
    let (n, body) = graphql(
        &app,
        "query { products(pageSize: 20) { items { id name } total } }",
        None,
        json!({}),
    )
    .await;
    assert_eq!(body["products"]["items"].as_array().unwrap().len(), 20);
    counts.push(("names 20".into(), n, n));
    println!("statements (what, REST, GraphQL): {counts:?}");

    let expected = [
        // the page with its categories, ratings and total, then the variants
        ("list 20", 2.0),
        ("list 100", 2.0),
        // product with category and rating, then its variants
        ("product", 2.0),
        ("no rating 20", 2.0),
        ("names 20", 1.0),
    ];
    for ((what, rest_n, gql_n), (want_what, want)) in counts.iter().zip(expected) {
        assert_eq!(what, want_what);
        assert_eq!((*rest_n, *gql_n), (want, want), "{what}: {counts:?}");
    }
}

/// Totals and pages through the whole list, on the last page, past the end, with filters and with
/// `sort=price` (an expression): the total each page carries agrees with a COUNT, and the pages
/// with one big page.
#[tokio::test]
async fn lean_totals_stay_right_on_every_page() {
    let app = TestApp::spawn().await;
    catalogue(&app).await;
    let visible = app
        .scalar_i64(
            "SELECT COUNT(*) FROM products p JOIN categories c ON c.id = p.category_id \
             WHERE p.is_active AND c.is_active AND NOT c.is_medicinal",
        )
        .await as u64;
    assert!(visible > PRODUCTS as u64, "the seed's products too");

    let cases: Vec<(String, u64)> = vec![
        (String::new(), visible),
        (format!("category={CATEGORY}"), PRODUCTS as u64),
        (format!("category={CATEGORY}&sort=price"), PRODUCTS as u64),
        (
            format!("category={CATEGORY}&sort=-price,name"),
            PRODUCTS as u64,
        ),
        (
            format!("category={CATEGORY}&q=indica"),
            PRODUCTS.div_ceil(3) as u64,
        ),
        (
            format!("category={CATEGORY}&priceMin=3000&priceMax=3500&sort=price"),
            (0..PRODUCTS)
                .filter(|i| (0..3).any(|v| (3000..=3500).contains(&(price_of(*i) + 1000 * v))))
                .count() as u64,
        ),
        (format!("category={CATEGORY}&q=no-such-product"), 0),
    ];
    for (filter, expected) in cases {
        let all = rest(&app, &format!("/api/products?{filter}&pageSize=100")).await;
        let size = 7u64;
        let mut paged = Vec::new();
        let last = expected.div_ceil(size).max(1);
        for page in 1..=last + 1 {
            let (n, body) = rest(
                &app,
                &format!("/api/products?{filter}&pageSize={size}&page={page}"),
            )
            .await;
            assert_eq!(body["total"], expected, "{filter} page {page}: {body}");
            let items = body["items"].as_array().unwrap();
            let want = expected.saturating_sub((page - 1) * size).min(size);
            assert_eq!(items.len() as u64, want, "{filter} page {page}");
            if page > last {
                // Past the end no row carries the total; the one counted with page 1 is kept
                // for the catalogue's generation, so no COUNT either.
                assert_eq!(n, 1.0, "{filter} past the end: the page alone");
            } else if items.is_empty() {
                assert_eq!(n, 1.0, "{filter}: an empty first page needs no COUNT");
            }
            paged.extend(items.iter().map(|p| p["id"].clone()));
        }
        if expected <= 100 {
            let ids: Vec<Value> = all.1["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].clone())
                .collect();
            assert_eq!(paged, ids, "{filter}: pages in the order of one big page");
        }
    }

    // sort=price orders by the cheapest active variant, ties by id.
    let (_, body) = rest(
        &app,
        &format!("/api/products?category={CATEGORY}&sort=price&pageSize=100"),
    )
    .await;
    let keys: Vec<(i64, i64)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["variants"][0]["priceCents"].as_i64().unwrap(),
                p["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(
        keys[0].0,
        (0..PRODUCTS).map(price_of).min().unwrap(),
        "cheapest first"
    );
}

/// The generic `Page::fetch` (here: the admin log) gives the same totals as a COUNT on every page,
/// past the end too.
#[tokio::test]
async fn lean_generic_pages_carry_their_total() {
    let app = TestApp::spawn().await;
    let admin = catalogue(&app).await;
    let expected = app
        .scalar_i64("SELECT COUNT(*) FROM system_logs WHERE entity = 'category'")
        .await;
    assert!(expected >= 1);
    let all = app.scalar_i64("SELECT COUNT(*) FROM system_logs").await;
    for (filter, want) in [("entity=category&", expected), ("", all)] {
        for page in [1, all, all + 1] {
            let r = app
                .get(
                    &format!("/api/admin/logs?{filter}pageSize=1&page={page}"),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            assert_eq!(r.body["total"], want, "{filter} page {page}: {}", r.text);
            let items = r.body["items"].as_array().unwrap().len() as i64;
            assert_eq!(items, i64::from(page <= want), "{filter} page {page}");
        }
    }
}

/// A product list's total is counted once per catalogue generation and viewer class: later pages
/// and other sorts of the same filters read only their rows (with the response cache off too),
/// and any catalogue write — this process's, or another's once its notification arrives — has it
/// counted again.
#[tokio::test]
async fn lean_list_totals_are_counted_once_per_catalogue_generation() {
    let app = TestApp::spawn_with(&[("RESPONSE_CACHE", "off")]).await;
    let admin = catalogue(&app).await;
    let total = |r: &Resp| r.body["total"].as_i64().unwrap_or(-1);
    let path = format!("/api/products?category={CATEGORY}&pageSize=10");
    let r = app.get(&path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(total(&r), PRODUCTS as i64);

    // A write this process did not make (another replica's, before its notification arrives):
    // pages of the same list keep the total counted at this generation, whatever their sort...
    let hidden = app
        .scalar_i64(&format!(
            "SELECT MIN(p.id) FROM products p JOIN categories c ON c.id = p.category_id \
             WHERE c.slug = '{CATEGORY}'"
        ))
        .await;
    use sea_orm::ConnectionTrait;
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE products SET is_active = false WHERE id = {hidden}"
        ))
        .await
        .unwrap();
    for variant in ["&page=2", "&sort=price", "&page=11"] {
        let r = app.get(&format!("{path}{variant}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(total(&r), PRODUCTS as i64, "{variant}: the kept total");
    }
    // ...while other filters and other viewer classes count for themselves.
    let r = app.get(&format!("{path}&q=indica"), None).await;
    let indicas = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM products p JOIN categories c ON c.id = p.category_id \
             WHERE c.slug = '{CATEGORY}' AND p.is_active AND p.name LIKE '%Indica%'"
        ))
        .await;
    assert_eq!(total(&r), indicas, "{}", r.text);
    let r = app.get(&path, Some(&admin)).await;
    assert_eq!(
        total(&r),
        PRODUCTS as i64,
        "admins see the inactive product: {}",
        r.text
    );

    // The notification (what the watcher does on one): counted again.
    app.state.catalogue.changed();
    let r = app.get(&format!("{path}&page=2"), None).await;
    assert_eq!(total(&r), PRODUCTS as i64 - 1, "{}", r.text);

    // A write through the API moves the generation itself.
    let other = app
        .scalar_i64(&format!(
            "SELECT MIN(p.id) FROM products p JOIN categories c ON c.id = p.category_id \
             WHERE c.slug = '{CATEGORY}' AND p.is_active"
        ))
        .await;
    let r = app
        .patch(
            &format!("/api/products/{other}"),
            Some(&admin),
            json!({"isActive": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(&path, None).await;
    assert_eq!(total(&r), PRODUCTS as i64 - 2, "{}", r.text);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 10);
}

/// On PostgreSQL the server's connections plan prepared statements once (`plan_cache_mode`
/// `force_generic_plan`), unless `DATABASE_PLAN_CACHE_MODE=auto`; SQLite has no such setting and
/// the option is ignored there.
#[tokio::test]
async fn lean_postgres_connections_plan_statements_once() {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    for (mode, want) in [(None, "force_generic_plan"), (Some("auto"), "auto")] {
        let app = match mode {
            Some(m) => TestApp::spawn_with(&[("DATABASE_PLAN_CACHE_MODE", m)]).await,
            None => TestApp::spawn().await,
        };
        let backend = app.state.db.get_database_backend();
        if backend != DatabaseBackend::Postgres {
            // The catalogue still reads (the option is PostgreSQL's only).
            let r = app.get("/api/products?pageSize=5", None).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            continue;
        }
        let row = app
            .state
            .db
            .query_one_raw(Statement::from_string(backend, "SHOW plan_cache_mode"))
            .await
            .unwrap()
            .unwrap();
        let got: String = row.try_get_by_index(0).unwrap();
        assert_eq!(got, want, "DATABASE_PLAN_CACHE_MODE={mode:?}");
    }
}
