//! Cross-cutting HTTP behaviour: error model, trace ids, CORS, body limits, operations routes.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn assert_error_model(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.error_code(), code, "{}", r.text);
    let trace = r.body["error"]["traceId"].as_str().expect("traceId");
    assert_eq!(
        Some(trace),
        r.header("x-request-id"),
        "traceId equals X-Request-Id"
    );
    assert!(r.body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(r.body["error"]["details"].is_array());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
}

#[tokio::test]
async fn every_failure_uses_the_error_model() {
    let app = TestApp::spawn().await;
    // Unknown route.
    assert_error_model(
        &app.get("/api/nope", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error_model(
        &app.get("/nothing/here", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Wrong method.
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/auth/login",
            None,
            Some(json!({})),
        )
        .await;
    assert_error_model(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(r.header("allow").is_some());
    // Malformed JSON and non-JSON bodies.
    let r = app
        .send(
            app.client
                .post(app.url("/api/auth/login"))
                .header("content-type", "application/json")
                .body("{\"email\":"),
        )
        .await;
    assert_error_model(&r, StatusCode::BAD_REQUEST, "validation_error");
    assert!(r.has_detail("body", "invalid_json"), "{}", r.text);
    // A body without a Content-Type is not taken for JSON (see edge.rs).
    let r = app
        .send(
            app.client
                .post(app.url("/api/auth/login"))
                .body("email=a&password=b"),
        )
        .await;
    assert_error_model(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let r = app.send(app.client.post(app.url("/api/auth/login"))).await;
    assert_error_model(&r, StatusCode::BAD_REQUEST, "validation_error");
    assert!(r.has_detail("body", "required"));
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": 5, "password": "x"}),
        )
        .await;
    assert!(r.has_detail("email", "invalid_type"), "{}", r.text);
    let r = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .header("content-type", "application/json")
                .body("nope"),
        )
        .await;
    assert_error_model(&r, StatusCode::BAD_REQUEST, "validation_error");
    // Oversize body (over 1 MB).
    let big = "x".repeat(1024 * 1024 + 10);
    let r = app
        .send(
            app.client
                .post(app.url("/api/auth/login"))
                .header("content-type", "application/json")
                .body(big.clone()),
        )
        .await;
    assert_error_model(&r, StatusCode::PAYLOAD_TOO_LARGE, "validation_error");
    let r = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .header("content-type", "application/json")
                .body(big),
        )
        .await;
    assert_error_model(&r, StatusCode::PAYLOAD_TOO_LARGE, "validation_error");
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_generated_otherwise() {
    let app = TestApp::spawn().await;
    let r = app
        .send(
            app.client
                .get(app.url("/api/me"))
                .header("x-request-id", "client-req-42"),
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("client-req-42"));
    assert_eq!(r.body["error"]["traceId"], "client-req-42");
    let r = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("x-request-id", "bad id <script>"),
        )
        .await;
    let id = r.header("x-request-id").unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let r = app.get("/healthz", None).await;
    assert!(uuid::Uuid::parse_str(r.header("x-request-id").unwrap()).is_ok());
    assert_eq!(r.body["status"], "ok");
}

#[tokio::test]
async fn graphql_errors_carry_code_details_and_trace_id() {
    let app = TestApp::spawn().await;
    let r = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .header("x-request-id", "gql-trace-1")
                .json(&json!({"query": "mutation { register(input: {name: \"A\", email: \"bad\", password: \"short\"}) { accessToken } }"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let ext = &r.body["errors"][0]["extensions"];
    assert_eq!(ext["code"], "validation_error", "{}", r.text);
    assert_eq!(ext["traceId"], "gql-trace-1");
    let details = ext["details"].as_array().unwrap();
    assert!(
        details
            .iter()
            .any(|d| d["field"] == "email" && d["issue"] == "invalid_format"),
        "{}",
        r.text
    );
    assert!(
        details
            .iter()
            .any(|d| d["field"] == "password" && d["issue"] == "too_short"),
        "{}",
        r.text
    );
    // Syntax errors too.
    let r = app.gql(None, "{ me { ", json!({})).await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"],
        "validation_error"
    );
    assert!(r.body["errors"][0]["extensions"]["traceId"].is_string());
}

#[tokio::test]
async fn graphql_get_serves_queries_graphiql_and_refuses_mutations() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let r = app
        .send(
            app.client
                .get(app.url("/graphql"))
                .query(&[("query", "{ me { email } }")])
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(r.body["data"]["me"]["email"], ADMIN_EMAIL, "{}", r.text);
    let r = app
        .send(
            app.client
                .get(app.url("/graphql"))
                .query(&[("query", "mutation { logout }")])
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status,
        StatusCode::OK,
        "the GET mutation did not run"
    );
    let page = app
        .send(
            app.client
                .get(app.url("/graphql"))
                .header("accept", "text/html"),
        )
        .await;
    assert!(page.text.contains("/graphiql/assets/graphiql.min.js"));
    assert!(
        !page.text.contains("unpkg.com") && !page.text.contains("cdn"),
        "assets are served locally"
    );
    let js = app
        .client
        .get(app.url("/graphiql/assets/graphiql.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.bytes().await.unwrap().len() > 100_000);
    let spec = app.get("/openapi.json", None).await;
    assert_eq!(spec.status, StatusCode::OK);
    assert_eq!(spec.body["openapi"], "3.1.0");
    assert!(spec.body["paths"]["/api/products"]["get"].is_object());
    let docs = app.send(app.client.get(app.url("/docs/"))).await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(
        docs.text.contains("swagger"),
        "{}",
        &docs.text[..docs.text.len().min(300)]
    );
}

#[tokio::test]
async fn graphql_depth_and_complexity_are_limited() {
    let app =
        TestApp::spawn_with(&[("GRAPHQL_MAX_DEPTH", "5"), ("GRAPHQL_MAX_COMPLEXITY", "40")]).await;
    // The REST operations fit within the limits.
    let token = app.admin_token().await;
    // Depth is checked before field names; introspection has its own bound (graphql_limits.rs).
    let deep = "{ products { items { category { a { b { c } } } } } }";
    let r = app.gql(Some(&token), deep, json!({})).await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        r.text
    );
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("deep"),
        "{}",
        r.text
    );
    let wide: String = (0..30).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let r = app.gql(None, &format!("{{ {wide} }}"), json!({})).await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        r.text
    );
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("complex"),
        "{}",
        r.text
    );
    let r = app.gql(None, "{ a: __typename }", json!({})).await;
    assert_eq!(r.body["data"]["a"], "Query");
}

#[tokio::test]
async fn cors_allows_listed_origins_only() {
    let app = TestApp::spawn_with(&[("CORS_ALLOWED_ORIGINS", "https://shop.example.cl")]).await;
    let ok = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("origin", "https://shop.example.cl"),
        )
        .await;
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://shop.example.cl")
    );
    let bad = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("origin", "https://evil.example.com"),
        )
        .await;
    assert_eq!(bad.header("access-control-allow-origin"), None);
    let pre = app
        .send(
            app.client
                .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
                .header("origin", "https://shop.example.cl")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type,authorization",
                ),
        )
        .await;
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://shop.example.cl")
    );
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    let pre_bad = app
        .send(
            app.client
                .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
                .header("origin", "https://evil.example.com")
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(pre_bad.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "ready");
    app.get("/api/me", None).await;
    // The anonymous /api/me stops at the REST edge; an unknown product runs its operation.
    app.get("/api/products/999999", None).await;
    let m = app.get("/metrics", None).await;
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    assert!(
        m.text
            .contains("http_requests_total{method=\"GET\",route=\"/api/me\",status=\"401\"} 1"),
        "{}",
        m.text
    );
    assert!(m.text.contains(
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/me\",status=\"401\""
    ));
    assert!(app.metric("db_statements_total", "").await > 0.0);
    assert!(m.text.contains("db_pool_connections"));
    assert!(
        m.text
            .contains("graphql_operations_total{operation=\"Product\",outcome=\"error\"} 1"),
        "{}",
        m.text
    );

    // Statements are counted per executed query: an authenticated /api/me costs a fixed, small number.
    let token = app.admin_token().await;
    let before = app.metric("db_statements_total", "").await;
    app.get("/api/me", Some(&token)).await;
    let after = app.metric("db_statements_total", "").await;
    assert_eq!(
        after - before,
        4.0,
        "bearer check + user load + pending email change + privacy policy accepted"
    );

    // Readiness fails with the error model when the database is gone.
    app.state.db.clone().close().await.ok();
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.error_code(), "unavailable");
}
