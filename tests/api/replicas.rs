//! Several replicas of one binary: the credential routes' per-IP limit is one budget when they
//! share Redis (`REDIS_URL`), and keeps being enforced (per process) through a Redis outage.
//! Against the Redis on this machine (`TEST_REDIS_URL`, default 127.0.0.1:6379; `.ci/run` starts
//! one when absent).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix of this test's own, so tests (and suites) sharing the Redis never meet.
fn own_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test:{test}:{}:{nanos}:", std::process::id())
}

async fn failed_login(app: &TestApp) -> StatusCode {
    app.post(
        "/api/auth/login",
        None,
        json!({"email": "nadie@example.cl", "password": "nope12345"}),
    )
    .await
    .status
}

#[tokio::test]
async fn two_replicas_sharing_redis_allow_the_per_ip_limit_once_not_twice() {
    let url = redis_url();
    let prefix = own_prefix("shared");
    let env = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("AUTH_RATE_LIMIT_PER_MINUTE", "6"),
    ];
    let a = TestApp::spawn_with(&env).await;
    let b = TestApp::spawn_with(&env).await;
    let mut seen = Vec::new();
    for i in 0..9 {
        seen.push(failed_login(if i % 2 == 0 { &a } else { &b }).await);
    }
    // Six attempts in all are let through (three on each), whichever replica gets them.
    let expected: Vec<StatusCode> = std::iter::repeat_n(StatusCode::UNAUTHORIZED, 6)
        .chain(std::iter::repeat_n(StatusCode::TOO_MANY_REQUESTS, 3))
        .collect();
    assert_eq!(seen, expected);
    let r = b
        .post(
            "/api/auth/login",
            None,
            json!({"email": "nadie@example.cl", "password": "nope12345"}),
        )
        .await;
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "one request's interval: {retry}");

    for app in [&a, &b] {
        let ready = app.get("/readyz", None).await;
        assert_eq!(ready.status, StatusCode::OK);
        assert_eq!(ready.body["rateLimits"], json!({"backend": "redis"}));
        assert_eq!(app.metric("rate_limit_fallbacks_total", "").await, 0.0);
    }
    // The budget is one key in Redis that expires once it would be whole again.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}ratelimit:auth:127.0.0.1");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "{key} expires: {ttl}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, [key]);
}

#[tokio::test]
async fn a_redis_outage_keeps_the_routes_served_and_limited_in_process() {
    // Nothing listens on port 1: every call to Redis fails at once.
    let a = TestApp::spawn_with(&[
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("AUTH_RATE_LIMIT_PER_MINUTE", "3"),
    ])
    .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(failed_login(&a).await);
    }
    assert_eq!(
        seen,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let ready = a.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["rateLimits"]["backend"], "memory_fallback");
    let reason = ready.body["rateLimits"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("redis unreachable"), "{reason}");
    assert!(
        !reason.contains("127.0.0.1:1/"),
        "no URL in the reason: {reason}"
    );
    assert_eq!(a.metric("rate_limit_fallbacks_total", "").await, 4.0);
}

#[tokio::test]
async fn without_redis_each_process_keeps_its_own_limit() {
    let a = TestApp::spawn_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "2")]).await;
    let b = TestApp::spawn_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "2")]).await;
    for app in [&a, &b] {
        assert_eq!(failed_login(app).await, StatusCode::UNAUTHORIZED);
        assert_eq!(failed_login(app).await, StatusCode::UNAUTHORIZED);
        assert_eq!(failed_login(app).await, StatusCode::TOO_MANY_REQUESTS);
        let ready = app.get("/readyz", None).await;
        assert_eq!(ready.body["rateLimits"], json!({"backend": "memory"}));
    }
}
