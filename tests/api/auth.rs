//! Registration, login, refresh rotation, logout, expiry, rate limits.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn register_login_me_round_trip() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"name": "  Ana Pérez ", "email": "Ana.Perez@Example.CL", "password": "cannabis123", "rut": "12.345.678-5"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["tokenType"], "Bearer");
    assert_eq!(r.body["expiresIn"], 900);
    assert_eq!(r.body["user"]["email"], "ana.perez@example.cl");
    assert_eq!(r.body["user"]["name"], "Ana Pérez");
    assert_eq!(r.body["user"]["rut"], "12345678-5");
    assert_eq!(r.body["user"]["role"], "customer");
    assert_eq!(r.body["user"]["validatedMedicinal"], false);
    let created_at = r.body["user"]["createdAt"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 20,
        "{created_at}"
    );
    let id = r.body["user"]["id"].as_i64().unwrap();

    // Stored lower-case, hashed with argon2id, never in plain text.
    let hash = app
        .scalar_string(&format!("SELECT password_hash FROM users WHERE id = {id}"))
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(
        app.scalar_string(&format!("SELECT email FROM users WHERE id = {id}"))
            .await
            .unwrap(),
        "ana.perez@example.cl"
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM user_profiles WHERE user_id = {id}"
        ))
        .await,
        1
    );

    // Login with the email in another case.
    let login = app.login("ANA.PEREZ@example.cl", "cannabis123").await;
    let token = login["accessToken"].as_str().unwrap();
    assert_ne!(login["refreshToken"], r.body["refreshToken"]);
    let me = app.get("/api/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], id);
    assert_eq!(me.body["email"], "ana.perez@example.cl");
    assert_eq!(me.body["profile"]["phone"], serde_json::Value::Null);

    // Audit rows for register and login, with the trace id and actor.
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM system_logs WHERE action = 'auth.register' AND entity = 'user' AND entity_id = {id} AND actor_user_id = {id}"
        ))
        .await,
        1
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM system_logs WHERE action = 'auth.login' AND entity_id = {id}"
        ))
        .await,
        1
    );
    let trace = app
        .scalar_string(&format!(
            "SELECT trace_id FROM system_logs WHERE action = 'auth.register' AND entity_id = {id}"
        ))
        .await
        .unwrap();
    assert_eq!(trace, r.header("x-request-id").unwrap());
}

#[tokio::test]
async fn duplicate_email_in_another_case_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.register("dup@example.cl").await;
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"name": "X", "email": "DUP@Example.cl", "password": "secreto123"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.error_code(), "conflict");
    assert!(r.has_detail("email", "already_exists"), "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE email = 'dup@example.cl'")
            .await,
        1
    );
}

#[tokio::test]
async fn weak_password_bad_rut_and_bad_email_are_reported_per_field() {
    let app = TestApp::spawn().await;
    let before = app.scalar_i64("SELECT COUNT(*) FROM users").await;
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"name": "X", "email": "not-an-email", "password": "abcdefgh", "rut": "12.345.678-K"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error_code(), "validation_error");
    assert!(r.has_detail("password", "too_weak"), "{}", r.text);
    assert!(r.has_detail("rut", "invalid_rut"), "{}", r.text);
    assert!(r.has_detail("email", "invalid_format"), "{}", r.text);
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"name": "X", "email": "x@example.cl", "password": "a1"}),
        )
        .await;
    assert!(r.has_detail("password", "too_short"), "{}", r.text);
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"name": "X", "email": "x@example.cl"}),
        )
        .await;
    assert!(r.has_detail("password", "required"), "{}", r.text);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users").await, before);
}

#[tokio::test]
async fn rut_is_normalised_and_unique() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/auth/register", None, json!({"name": "A", "email": "a@example.cl", "password": "secreto123", "rut": "10.000.013-k"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["user"]["rut"], "10000013-K");
    let r = app
        .post("/api/auth/register", None, json!({"name": "B", "email": "b@example.cl", "password": "secreto123", "rut": "10000013K"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.has_detail("rut", "already_exists"));
}

#[tokio::test]
async fn wrong_password_is_401_and_audited_without_the_password() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": CUSTOMER_EMAIL, "password": "WrongPass99"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "unauthorized");
    let r2 = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "nobody@example.cl", "password": "WrongPass99"}),
        )
        .await;
    assert_eq!(r2.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.body["error"]["message"], r2.body["error"]["message"],
        "no account enumeration"
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'auth.login_failed'")
            .await,
        2
    );
    let metas = app
        .scalar_string("SELECT CAST(meta AS TEXT) FROM system_logs WHERE action = 'auth.login_failed' ORDER BY id LIMIT 1")
        .await
        .unwrap();
    assert!(metas.contains(CUSTOMER_EMAIL), "{metas}");
    assert!(!metas.contains("WrongPass99"), "{metas}");
    assert_eq!(app.metric("auth_login_failures_total", "").await, 2.0);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    let login = app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await;
    let rt1 = login["refreshToken"].as_str().unwrap().to_string();

    let r = app
        .post("/api/auth/refresh", None, json!({"refreshToken": rt1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rt2 = r.body["refreshToken"].as_str().unwrap().to_string();
    let at2 = r.body["accessToken"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    assert_eq!(r.body["user"]["email"], CUSTOMER_EMAIL);
    assert_eq!(app.get("/api/me", Some(&at2)).await.status, StatusCode::OK);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM auth_tokens WHERE replaced_by IS NOT NULL")
            .await,
        1
    );

    // Reusing the rotated token: refused, and the whole family dies (rt2 too).
    let reuse = app
        .post("/api/auth/refresh", None, json!({"refreshToken": rt1}))
        .await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED, "{}", reuse.text);
    let r = app
        .post("/api/auth/refresh", None, json!({"refreshToken": rt2}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM auth_tokens WHERE revoked_at IS NULL")
            .await,
        0
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'auth.refresh_reuse'")
            .await,
        1
    );

    // An access token is not a refresh token.
    let r = app
        .post("/api/auth/refresh", None, json!({"refreshToken": at2}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_rotate_once() {
    let app = TestApp::spawn().await;
    let login = app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await;
    let rt = login["refreshToken"].as_str().unwrap().to_string();
    let calls = (0..4).map(|_| app.post("/api/auth/refresh", None, json!({"refreshToken": rt})));
    let results = futures::future::join_all(calls).await;
    let ok = results
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert!(ok <= 1, "at most one rotation may succeed, got {ok}");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM auth_tokens WHERE replaced_by IS NOT NULL")
            .await as usize,
        ok
    );
}

#[tokio::test]
async fn logout_kills_the_access_token_and_the_session() {
    let app = TestApp::spawn().await;
    let login = app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await;
    let at = login["accessToken"].as_str().unwrap();
    let rt = login["refreshToken"].as_str().unwrap();
    let other = app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await;

    let r = app
        .post("/api/auth/logout", Some(at), json!({"refreshToken": rt}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(r.text.is_empty());
    let me = app.get("/api/me", Some(at)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert!(
        me.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{}",
        me.text
    );
    let refresh = app
        .post("/api/auth/refresh", None, json!({"refreshToken": rt}))
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM revoked_access_tokens")
            .await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'auth.logout'")
            .await,
        1
    );

    // Another device's session is untouched.
    let other_at = other["accessToken"].as_str().unwrap();
    assert_eq!(
        app.get("/api/me", Some(other_at)).await.status,
        StatusCode::OK
    );

    // Logging out without a token is 401.
    let r = app.post("/api/auth/logout", None, json!({})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_access_token_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::seconds(901));
    let r = app.get("/api/me", Some(&token)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["message"], "The token has expired");
    let r = app.get("/api/me", Some("not-a-jwt")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["message"], "The token is invalid");
}

#[tokio::test]
async fn auth_routes_are_rate_limited_per_ip_on_rest_and_graphql() {
    let app = TestApp::spawn_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "3")]).await;
    for _ in 0..3 {
        let r = app
            .post(
                "/api/auth/login",
                None,
                json!({"email": "x@example.cl", "password": "nope12345"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "x@example.cl", "password": "nope12345"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.error_code(), "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The same budget applies to GraphQL clients.
    let g = app
        .gql(None, "mutation { login(input: {email: \"x@example.cl\", password: \"nope12345\"}) { accessToken } }", json!({}))
        .await;
    assert_eq!(g.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(g.body["errors"][0]["extensions"]["code"], "rate_limited");
    assert!(g.header("retry-after").is_some());
    assert!(
        app.metric("rate_limited_requests_total", "limit=\"auth_ip\"")
            .await
            >= 2.0
    );
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_account_for_a_while() {
    let app = TestApp::spawn_with(&[
        ("LOGIN_FAILURE_LIMIT", "3"),
        ("LOGIN_FAILURE_WINDOW_SECONDS", "600"),
    ])
    .await;
    for _ in 0..3 {
        let r = app
            .post(
                "/api/auth/login",
                None,
                json!({"email": CUSTOMER_EMAIL, "password": "Guess12345"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused while locked.
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((590..=600).contains(&retry), "{retry}");
    // Other accounts are not affected.
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // After the window, the account opens again.
    app.clock.advance(Duration::seconds(601));
    app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await;
}

#[tokio::test]
async fn expired_tokens_and_idempotency_keys_are_purged() {
    use dispensary::services::privacy::housekeeping::{purge_expired, Purged};
    let app = TestApp::spawn().await;
    let (at, _, body) = app.register("purga@example.cl").await;
    // A wrong password leaves an attempt in the lockout's ledger.
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "purga@example.cl", "password": "Equivocada1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let rt = body["refreshToken"].as_str().unwrap().to_string();
    let vid = variant_id(&app, "NL-AUTO-1G").await;
    let r = app
        .send(
            app.client
                .post(app.url("/api/checkout/confirm"))
                .bearer_auth(&at)
                .header("Idempotency-Key", "purga-1")
                .json(&json!({"items": [{"variantId": vid, "quantity": 1}], "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}, "shippingMethod": "starken"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post("/api/auth/logout", Some(&at), json!({"refreshToken": rt}))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let count = |table: &'static str| {
        let app = &app;
        async move {
            app.scalar_i64(&format!("SELECT COUNT(*) FROM {table}"))
                .await
        }
    };
    for t in [
        "revoked_access_tokens",
        "auth_tokens",
        "idempotency_keys",
        "account_links",
        "credential_attempts",
        "sessions",
    ] {
        assert!(count(t).await > 0, "{t} has a row");
    }
    // Nothing has expired yet.
    assert_eq!(purge_expired(&app.state).await.unwrap(), Default::default());
    app.clock.advance(Duration::days(31));
    let purged = purge_expired(&app.state).await.unwrap();
    assert_eq!(
        purged,
        Purged {
            revoked_access_tokens: 1,
            refresh_tokens: 1,
            idempotency_keys: 1,
            account_links: 1,
            credential_attempts: 1,
            sessions: 1,
            data_exports: 0,
            medicinal_documents: 0,
        }
    );
    for t in [
        "revoked_access_tokens",
        "auth_tokens",
        "idempotency_keys",
        "account_links",
        "credential_attempts",
        "sessions",
    ] {
        assert_eq!(count(t).await, 0, "{t} purged");
    }
}
