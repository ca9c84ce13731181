//! A database that cannot be reached is answered 503 `service_unavailable` with `Retry-After`,
//! never 500: on REST, on GraphQL and for a bearer token that cannot be checked.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::json;

use crate::helpers::*;

fn assert_unavailable(r: &Resp, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        r.text
    );
    assert_eq!(r.header("retry-after"), Some("2"), "{what}");
}

#[tokio::test]
async fn an_unreachable_database_is_503_with_retry_after_never_500() {
    let app = TestApp::spawn_with(&[("RESPONSE_CACHE", "off")]).await;
    let token = app.customer_token().await;
    assert_eq!(app.get("/api/products", None).await.status, StatusCode::OK);
    // The pool is gone: every statement fails to get a connection.
    app.state.db.close_by_ref().await.unwrap();

    let r = app.get("/api/products", None).await;
    assert_unavailable(&r, "REST read");
    assert_eq!(r.error_code(), "service_unavailable");
    assert!(r.body["error"]["traceId"].is_string(), "{}", r.text);
    let r = app.get("/api/me", Some(&token)).await;
    assert_unavailable(&r, "bearer check");
    assert_eq!(r.error_code(), "service_unavailable");
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}),
        )
        .await;
    assert_unavailable(&r, "REST mutation");
    let r = app
        .gql(None, "{ products(pageSize: 1) { total } }", json!({}))
        .await;
    assert_unavailable(&r, "GraphQL");
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "service_unavailable",
        "{}",
        r.text
    );
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(
        r.header("retry-after"),
        Some("2"),
        "readiness says when to look again"
    );
}

/// PostgreSQL only: every connection of the pool is killed by the server (as a restart does);
/// requests meanwhile answer 200 or 503, and the pool recovers by itself.
#[tokio::test]
async fn killed_connections_are_replaced_and_never_answered_500() {
    let app = TestApp::spawn_with(&[("RESPONSE_CACHE", "off")]).await;
    let db = &app.state.db;
    if db.get_database_backend() != DatabaseBackend::Postgres {
        // SQLite has no server to lose; the catalogue reads as usual.
        assert_eq!(app.get("/api/products", None).await.status, StatusCode::OK);
        return;
    }
    let token = app.customer_token().await;
    let admin =
        sea_orm::Database::connect(std::env::var("TEST_DATABASE_URL").expect("PostgreSQL URL"))
            .await
            .unwrap();
    let name: String = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT current_database()",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    let mut statuses = Vec::new();
    for round in 0..3 {
        admin
            .execute_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ),
            ))
            .await
            .unwrap();
        for _ in 0..10 {
            let r = app.get("/api/products?pageSize=5", None).await;
            statuses.push((round, r.status, r.text.clone()));
            let r = app.get("/api/me", Some(&token)).await;
            statuses.push((round, r.status, r.text.clone()));
        }
    }
    admin.close().await.ok();
    for (round, status, text) in &statuses {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::SERVICE_UNAVAILABLE,
            "round {round}: {status} {text}"
        );
    }
    // Recovered: the last requests of each round were served.
    let r = app.get("/api/me", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
