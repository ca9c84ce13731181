//! The response cache for catalogue reads (never stale, per viewer class, bounded, can be turned
//! off), HTTP caching (strong ETag, 304 without executing, Cache-Control, Vary) and automatic
//! persisted queries.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const LIST: &str = "/api/products?pageSize=5&sort=name";
const GQL_LIST: &str = "query List { products(pageSize: 5, sort: \"name\") { total items { name variants { sku priceCents stock } } } }";

async fn statements(app: &TestApp) -> f64 {
    app.metric("db_statements_total", "").await
}

async fn hits(app: &TestApp, surface: &str) -> f64 {
    app.metric(
        "response_cache_hits_total",
        &format!("surface=\"{surface}\""),
    )
    .await
}

async fn variant(app: &TestApp, sku: &str) -> i64 {
    app.scalar_i64(&format!(
        "SELECT id FROM product_variants WHERE sku = '{sku}'"
    ))
    .await
}

/// The price of `sku` in a REST product list body.
fn price_in(body: &Value, sku: &str) -> Option<i64> {
    body["items"].as_array()?.iter().find_map(|p| {
        p["variants"]
            .as_array()?
            .iter()
            .find(|v| v["sku"] == sku)
            .and_then(|v| v["priceCents"].as_i64())
    })
}

#[tokio::test]
async fn a_repeated_anonymous_read_is_a_hit_that_runs_no_sql() {
    let app = TestApp::spawn().await;
    for (surface, first, second) in [
        ("rest", app.get(LIST, None).await, app.get(LIST, None).await),
        (
            "graphql",
            app.gql(None, GQL_LIST, json!({})).await,
            app.gql(None, GQL_LIST, json!({})).await,
        ),
    ] {
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        assert_eq!(first.text, second.text, "{surface}: the same answer");
        assert!(
            hits(&app, surface).await >= 1.0,
            "{surface}: the second read was a hit"
        );
    }
    // Hits, measured: no statement at all, over REST and GraphQL, and the same bytes.
    let warm_rest = app.get(LIST, None).await;
    let warm_gql = app.gql(None, GQL_LIST, json!({})).await;
    let before = statements(&app).await;
    let rest_hits = hits(&app, "rest").await;
    let gql_hits = hits(&app, "graphql").await;
    for _ in 0..10 {
        assert_eq!(app.get(LIST, None).await.text, warm_rest.text);
        assert_eq!(app.gql(None, GQL_LIST, json!({})).await.text, warm_gql.text);
    }
    assert_eq!(statements(&app).await, before, "hits run no SQL");
    assert_eq!(hits(&app, "rest").await, rest_hits + 10.0);
    assert_eq!(hits(&app, "graphql").await, gql_hits + 10.0);
    assert!(app.metric("response_cache_bytes", "").await > warm_rest.text.len() as f64);
    // The same query laid out differently, with its variables in another order, is the same entry.
    let q =
        "query V($size: Int, $sort: String) { products(pageSize: $size, sort: $sort) { total } }";
    let spaced = "query V( $size : Int , $sort : String ) {\n  products( pageSize : $size , sort : $sort ) {\n    total # how many\n  }\n}";
    let a = app.gql(None, q, json!({"size": 3, "sort": "name"})).await;
    let hits_before = hits(&app, "graphql").await;
    let b = app
        .gql(None, spaced, json!({"sort": "name", "size": 3}))
        .await;
    assert_eq!(a.text, b.text);
    assert_eq!(hits(&app, "graphql").await, hits_before + 1.0);
}

/// The list, a product over REST and GraphQL, and its reviews.
async fn warm(app: &TestApp, [detail, gql_detail, reviews]: [&str; 3]) -> (Resp, Resp, Resp, Resp) {
    (
        app.get(LIST, None).await,
        app.get(detail, None).await,
        app.gql(None, gql_detail, json!({})).await,
        app.get(reviews, None).await,
    )
}

#[tokio::test]
async fn a_read_after_a_committed_write_never_sees_the_old_answer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let nl = variant(&app, "NL-AUTO-1G").await;
    let product = app
        .scalar_i64("SELECT product_id FROM product_variants WHERE sku = 'NL-AUTO-1G'")
        .await;
    let detail = format!("/api/products/{product}");
    let gql_detail =
        format!("{{ product(id: {product}) {{ name variants {{ sku priceCents stock }} }} }}");
    let reviews = format!("/api/products/{product}/reviews");

    // Warm every read, then change what it shows in each way the catalogue changes.
    let reads = [detail.as_str(), gql_detail.as_str(), reviews.as_str()];
    let (list, _, _, _) = warm(&app, reads).await;
    assert_eq!(price_in(&list.body, "NL-AUTO-1G"), Some(4990));
    warm(&app, reads).await;

    // A price.
    let r = app
        .patch(
            &format!("/api/variants/{nl}"),
            Some(&admin),
            json!({"priceCents": 5990}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (list, detail_r, gql, _) = warm(&app, reads).await;
    assert_eq!(
        price_in(&list.body, "NL-AUTO-1G"),
        Some(5990),
        "{}",
        list.text
    );
    assert_eq!(
        detail_r.body["variants"][0]["priceCents"], 5990,
        "{}",
        detail_r.text
    );
    assert_eq!(
        gql.body["data"]["product"]["variants"][0]["priceCents"],
        5990
    );

    // A product's name.
    let r = app
        .patch(
            &format!("/api/products/{product}"),
            Some(&admin),
            json!({"name": "Northern Lights Auto XL"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (list, detail_r, gql, _) = warm(&app, reads).await;
    assert!(
        list.text.contains("Northern Lights Auto XL"),
        "{}",
        list.text
    );
    assert_eq!(detail_r.body["name"], "Northern Lights Auto XL");
    assert_eq!(
        gql.body["data"]["product"]["name"],
        "Northern Lights Auto XL"
    );

    // Stock, through a paid order (the payment decrements it).
    let customer = app.customer_token().await;
    let stock_before = detail_r.body["variants"][0]["stock"].as_i64().unwrap();
    warm(&app, reads).await;
    paid_order(&app, &customer, "NL-AUTO-1G", 2).await;
    let (_, detail_r, gql, _) = warm(&app, reads).await;
    assert_eq!(
        detail_r.body["variants"][0]["stock"].as_i64(),
        Some(stock_before - 2)
    );
    assert_eq!(
        gql.body["data"]["product"]["variants"][0]["stock"].as_i64(),
        Some(stock_before - 2)
    );

    // A review, then its moderation: the listing and the product's rating follow.
    let r = app
        .post(
            &format!("/api/products/{product}/reviews"),
            Some(&customer),
            json!({"rating": 4, "title": "Bien", "body": "Germinó todo."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let review = r.body["id"].as_i64().unwrap();
    let (_, _, _, listed) = warm(&app, reads).await;
    assert_eq!(listed.body["total"], 1, "{}", listed.text);
    let r = app
        .patch(
            &format!("/api/reviews/{review}"),
            Some(&admin),
            json!({"isVisible": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (_, _, _, listed) = warm(&app, reads).await;
    assert_eq!(listed.body["total"], 0, "{}", listed.text);

    // A category deactivated: its products leave the anonymous list.
    let cat = app
        .scalar_i64("SELECT id FROM categories WHERE slug = 'semillas'")
        .await;
    let r = app
        .patch(
            &format!("/api/categories/{cat}"),
            Some(&admin),
            json!({"isActive": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (list, detail_r, _, _) = warm(&app, reads).await;
    assert_eq!(list.body["total"], 0, "{}", list.text);
    assert_eq!(detail_r.status, StatusCode::NOT_FOUND);
}

/// Writers commit while readers read: a read that starts after a write's response arrived
/// always sees that write (or a later one).
#[tokio::test]
async fn concurrent_writers_never_leave_a_stale_answer() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let admin = app.admin_token().await;
    let skus = ["NL-AUTO-1G", "WW-FEM-1G"];
    let mut ids = Vec::new();
    for sku in skus {
        ids.push(variant(&app, sku).await);
    }
    // Per writer: the last value whose write has been acknowledged.
    let acknowledged: std::sync::Arc<[std::sync::atomic::AtomicI64; 2]> = std::sync::Arc::new([
        std::sync::atomic::AtomicI64::new(0),
        std::sync::atomic::AtomicI64::new(0),
    ]);
    let mut tasks = Vec::new();
    for (w, id) in ids.iter().copied().enumerate() {
        let (app, admin, ack) = (app.clone(), admin.clone(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            for k in 1..=15i64 {
                let price = 10_000 * (w as i64 + 1) + k;
                let r = app
                    .patch(
                        &format!("/api/variants/{id}"),
                        Some(&admin),
                        json!({"priceCents": price}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
                ack[w].store(price, std::sync::atomic::Ordering::SeqCst);
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (app, ack) = (app.clone(), acknowledged.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0;
            for _ in 0..60 {
                // What had been acknowledged before this read started.
                let floor = [
                    ack[0].load(std::sync::atomic::Ordering::SeqCst),
                    ack[1].load(std::sync::atomic::Ordering::SeqCst),
                ];
                let r = app.get("/api/products?pageSize=20", None).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
                for (w, sku) in ["NL-AUTO-1G", "WW-FEM-1G"].iter().enumerate() {
                    let seen = price_in(&r.body, sku).expect("listed");
                    if floor[w] > 0 {
                        assert!(
                            seen >= floor[w],
                            "{sku}: a read started after {} was acknowledged saw {seen}",
                            floor[w]
                        );
                    }
                }
                reads += 1;
            }
            reads
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let mut total = 0;
    for r in readers {
        total += r.await.expect("reader");
    }
    assert_eq!(total, 240);
    let last = app.get("/api/products?pageSize=20", None).await;
    assert_eq!(price_in(&last.body, "NL-AUTO-1G"), Some(10_015));
    assert_eq!(price_in(&last.body, "WW-FEM-1G"), Some(20_015));
    assert!(
        hits(&app, "rest").await > 0.0,
        "the readers used the cache between writes"
    );
}

#[tokio::test]
async fn viewers_of_different_classes_never_receive_each_others_answers() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    let (validated, _) = app.validated_customer("validada@example.cl").await;
    // An inactive product only admins see.
    let p = app
        .scalar_i64("SELECT id FROM products WHERE slug = 'white-widow-feminizada'")
        .await;
    app.patch(
        &format!("/api/products/{p}"),
        Some(&admin),
        json!({"isActive": false}),
    )
    .await;

    // The most privileged viewers warm the cache first; each class still gets its own answer.
    let url = "/api/products?pageSize=50";
    let gql = "{ products(pageSize: 50) { total items { slug } } }";
    let mut seen = Vec::new();
    for round in 0..2 {
        for (who, token, total) in [
            ("admin", Some(admin.as_str()), 4),
            ("validated", Some(validated.as_str()), 3),
            ("customer", Some(customer.as_str()), 1),
            ("anonymous", None, 1),
        ] {
            let r = app.get(url, token).await;
            assert_eq!(r.body["total"], total, "{who} round {round}: {}", r.text);
            let g = app.gql(token, gql, json!({})).await;
            assert_eq!(
                g.body["data"]["products"]["total"], total,
                "{who}: {}",
                g.text
            );
            let etag = r.header("etag").expect("an ETag").to_string();
            if round == 1 {
                seen.push((who, etag, r.text.clone()));
            }
        }
    }
    assert!(
        hits(&app, "rest").await >= 4.0,
        "the second round came from the cache"
    );
    let etag = |who: &str| seen.iter().find(|s| s.0 == who).unwrap().1.clone();
    assert_ne!(etag("admin"), etag("validated"));
    assert_ne!(etag("validated"), etag("anonymous"));
    assert_ne!(etag("admin"), etag("anonymous"));
    // A customer without access sees what anonymous visitors see.
    assert_eq!(etag("customer"), etag("anonymous"));
    // One class's tag never revalidates another's answer.
    let r = app
        .call_with_headers(
            reqwest::Method::GET,
            url,
            Some(&validated),
            &[("if-none-match", &etag("anonymous"))],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a validated viewer gets its own answer"
    );
    assert_eq!(r.body["total"], 3);
    let r = app
        .call_with_headers(
            reqwest::Method::GET,
            url,
            None,
            &[("if-none-match", &etag("validated"))],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 1);
}

#[tokio::test]
async fn etag_and_304_without_executing_anything() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let product = app
        .scalar_i64("SELECT product_id FROM product_variants WHERE sku = 'NL-AUTO-1G'")
        .await;
    let path = format!("/api/products/{product}");
    let gql_get = format!(
        "/graphql?query={}",
        urlencode(&format!("{{ product(id: {product}) {{ name }} }}"))
    );
    for url in [path.as_str(), gql_get.as_str()] {
        let r = app.get(url, None).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text);
        let etag = r.header("etag").expect("ETag").to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "strong: {etag}"
        );
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=0, must-revalidate")
        );
        assert_eq!(r.header("vary"), Some("Authorization"));
        // Revalidation: 304, no body, no statement executed.
        let before = statements(&app).await;
        let r = app
            .call_with_headers(reqwest::Method::GET, url, None, &[("if-none-match", &etag)])
            .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{url}");
        assert!(r.text.is_empty());
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=0, must-revalidate")
        );
        assert_eq!(
            statements(&app).await,
            before,
            "{url}: a 304 executes nothing"
        );
        // A list of tags, weak form included.
        let r = app
            .call_with_headers(
                reqwest::Method::GET,
                url,
                None,
                &[("if-none-match", &format!("\"other\", W/{etag}"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
        // With a token: private, never stored by shared caches.
        let r = app.get(url, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("cache-control"), Some("private, no-store"));
        assert_eq!(r.header("vary"), Some("Authorization"));
    }
    // After a write the old tag no longer matches.
    let old = app
        .get(&path, None)
        .await
        .header("etag")
        .unwrap()
        .to_string();
    app.patch(
        &path,
        Some(&admin),
        json!({"description": "Nueva descripción"}),
    )
    .await;
    let r = app
        .call_with_headers(
            reqwest::Method::GET,
            &path,
            None,
            &[("if-none-match", &old)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["description"], "Nueva descripción");
    assert_ne!(r.header("etag"), Some(old.as_str()));
    // Personal and non-catalogue reads carry no ETag.
    let me = app.get("/api/me", Some(&admin)).await;
    assert!(me.header("etag").is_none());
    assert_eq!(me.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn with_the_cache_off_every_read_executes_and_http_caching_still_works() {
    let app = TestApp::spawn_with(&[("RESPONSE_CACHE", "off")]).await;
    let first = app.get(LIST, None).await;
    let before = statements(&app).await;
    let second = app.get(LIST, None).await;
    assert_eq!(first.text, second.text);
    assert!(statements(&app).await > before, "executed again");
    assert_eq!(hits(&app, "rest").await, 0.0);
    assert_eq!(app.metric("response_cache_bytes", "").await, 0.0);
    let etag = second.header("etag").expect("ETag").to_string();
    assert_eq!(
        first.header("etag"),
        Some(etag.as_str()),
        "the tag is the content's"
    );
    let r = app
        .call_with_headers(
            reqwest::Method::GET,
            LIST,
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn the_cache_stays_within_its_memory_bound() {
    let app = TestApp::spawn_with(&[("RESPONSE_CACHE_MAX_BYTES", "20000")]).await;
    for page_size in 1..=60 {
        let r = app
            .get(&format!("/api/products?pageSize={page_size}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let bytes = app.metric("response_cache_bytes", "").await;
    assert!(bytes > 0.0 && bytes <= 20_000.0, "{bytes}");
}

#[tokio::test]
async fn another_instance_drops_its_cache_within_a_second_of_a_commit() {
    let mut a = TestApp::spawn().await;
    a.watch_catalogue();
    let b = a.replica().await;
    let admin = b.admin_token().await;
    let nl = variant(&a, "NL-AUTO-1G").await;
    // Both instances hold the answer.
    for app in [&a, &b] {
        app.get(LIST, None).await;
        let r = app.get(LIST, None).await;
        assert_eq!(price_in(&r.body, "NL-AUTO-1G"), Some(4990));
    }
    assert!(hits(&a, "rest").await >= 1.0);
    // The write goes through B; A learns of it from the database.
    let r = b
        .patch(
            &format!("/api/variants/{nl}"),
            Some(&admin),
            json!({"priceCents": 7777}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let committed = Instant::now();
    assert_eq!(
        price_in(&b.get(LIST, None).await.body, "NL-AUTO-1G"),
        Some(7777)
    );
    loop {
        let r = a.get(LIST, None).await;
        if price_in(&r.body, "NL-AUTO-1G") == Some(7777) {
            break;
        }
        assert!(
            committed.elapsed() < Duration::from_secs(1),
            "instance A still answered the old price a second after the commit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("instance A saw the write after {:?}", committed.elapsed());
}

fn apq(query: Option<&str>, hash: &str) -> Value {
    let mut body = json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}});
    if let Some(q) = query {
        body["query"] = json!(q);
    }
    body
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn automatic_persisted_queries_over_post_and_get() {
    let app = TestApp::spawn().await;
    let query = "{ products(pageSize: 2, sort: \"name\") { total items { name } } }";
    let hash = hex::encode(Sha256::digest(query.as_bytes()));
    // Unknown hash: the protocol's answer, so the client sends the text.
    let r = app.post_gql(None, apq(None, &hash)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    assert!(r.body.get("data").is_none_or(Value::is_null));
    // A text that is not the hash's.
    let r = app
        .post_gql(None, apq(Some("{ categories { total } }"), &hash))
        .await;
    assert_eq!(
        r.body["errors"][0]["message"], "provided sha does not match query",
        "{}",
        r.text
    );
    // Registration with the text, then the hash alone, by POST and by GET.
    let r = app.post_gql(None, apq(Some(query), &hash)).await;
    assert_eq!(r.body["data"]["products"]["total"], 2, "{}", r.text);
    let by_hash = app.post_gql(None, apq(None, &hash)).await;
    assert_eq!(by_hash.body, r.body);
    let ext = urlencode(&json!({"persistedQuery": {"version": 1, "sha256Hash": hash}}).to_string());
    let get = app.get(&format!("/graphql?extensions={ext}"), None).await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text);
    assert_eq!(get.body, r.body);
    assert!(get.header("etag").is_some(), "a short GET a CDN can cache");
    assert_eq!(
        get.header("cache-control"),
        Some("public, max-age=0, must-revalidate")
    );
    assert!(
        app.metric("persisted_queries_total", "outcome=\"hit\"")
            .await
            >= 2.0
    );
    // Bad versions and hashes are explained.
    let r = app
        .post_gql(
            None,
            json!({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": hash}}}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        r.text
    );
    let r = app.post_gql(None, apq(None, "not-a-hash")).await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        r.text
    );
    // A persisted mutation is still refused over GET.
    let mutation = "mutation { logout(refreshToken: \"x\") }";
    let mhash = hex::encode(Sha256::digest(mutation.as_bytes()));
    app.post_gql(None, apq(Some(mutation), &mhash)).await;
    let ext =
        urlencode(&json!({"persistedQuery": {"version": 1, "sha256Hash": mhash}}).to_string());
    let r = app.get(&format!("/graphql?extensions={ext}"), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
}

/// Every request that moved the database's catalogue version (the triggers fire in the writing
/// transaction) also moved this process's generation: no catalogue write skips the guard.
#[tokio::test]
async fn every_catalogue_write_moves_the_generation() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    let db = app.state.db.clone();
    let version = || {
        let db = db.clone();
        async move {
            dispensary::infra::freshness::stored_version(&db)
                .await
                .expect("version")
        }
    };
    let mut checked = Vec::new();
    macro_rules! step {
        ($name:expr, $call:expr) => {{
            let (v0, g0) = (version().await, app.state.catalogue.current());
            let r = $call;
            assert!(r.status.is_success(), "{}: {} {}", $name, r.status, r.text);
            let (v1, g1) = (version().await, app.state.catalogue.current());
            assert!(v1 > v0, "{}: the database version did not move", $name);
            assert!(
                g1 > g0,
                "{}: the catalogue changed but the generation did not move",
                $name
            );
            checked.push($name);
            r
        }};
    }
    let cat = step!(
        "create category",
        app.post(
            "/api/categories",
            Some(&admin),
            json!({"name": "Sustratos", "isMedicinal": false})
        )
        .await
    );
    let cat = cat.body["id"].as_i64().unwrap();
    let p = step!(
        "create product",
        app.post(
            "/api/products",
            Some(&admin),
            json!({"categoryId": cat, "name": "Sustrato 50L", "variants": [
                {"sku": "SUS-50", "optionLabel": "50L", "priceCents": 9990, "stock": 10}]})
        )
        .await
    );
    let p = p.body["id"].as_i64().unwrap();
    let v = step!(
        "create variant",
        app.post(
            &format!("/api/products/{p}/variants"),
            Some(&admin),
            json!({"sku": "SUS-20", "optionLabel": "20L", "priceCents": 4990, "stock": 5})
        )
        .await
    );
    let v = v.body["id"].as_i64().unwrap();
    step!(
        "delete variant",
        app.delete(&format!("/api/variants/{v}"), Some(&admin))
            .await
    );
    let csv = "name,categorySlug,description,imageUrl,isActive,variantSku,variantLabel,variantPriceCents,variantStock\n\
               Turba 10L,semillas,,,true,TUR-10,10L,3990,7\n";
    step!(
        "import a CSV",
        app.send(
            app.client
                .post(app.url("/api/products/import"))
                .bearer_auth(&admin)
                .header("content-type", "text/csv")
                .body(csv)
        )
        .await
    );
    step!(
        "update category",
        app.patch(
            &format!("/api/categories/{cat}"),
            Some(&admin),
            json!({"name": "Sustratos y tierras"})
        )
        .await
    );
    // A paid order (stock decrement), then its cancellation by an admin (restock).
    let order = paid_order(&app, &customer, "SUS-50", 1).await;
    step!(
        "cancel a paid order",
        app.patch(
            &format!("/api/admin/orders/{order}"),
            Some(&admin),
            json!({"status": "cancelled"})
        )
        .await
    );
    step!(
        "a reviewer's name",
        app.patch("/api/me", Some(&customer), json!({"name": "Camila Rojas"}))
            .await
    );
    step!(
        "delete product",
        app.delete(&format!("/api/products/{p}"), Some(&admin))
            .await
    );
    assert_eq!(checked.len(), 9);
}
