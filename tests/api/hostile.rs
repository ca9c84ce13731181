//! Hostile input an outsider sends by hand: control characters in every kind of string input
//! (PostgreSQL text cannot hold NUL; these once answered 500 there). Runs on both databases.

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A 400 `validation_error` naming `field` with the `control_character` issue, in REST's error
/// model.
fn assert_refused(r: &Resp, field: &str, what: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
    assert_eq!(r.error_code(), "validation_error", "{what}: {}", r.text);
    assert!(
        r.has_detail(field, "control_character"),
        "{what}: expected {field}/control_character in {}",
        r.text
    );
    assert!(r.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("U+00")));
}

/// The same refusal inside a GraphQL response: no data, one error with the code and the field.
fn assert_gql_refused(r: &Resp, field: &str, what: &str) {
    assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text);
    let errors = r.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {}", r.text));
    assert_eq!(errors.len(), 1, "{what}: {}", r.text);
    let ext = &errors[0]["extensions"];
    assert_eq!(ext["code"], "validation_error", "{what}: {}", r.text);
    assert!(
        ext["details"].as_array().is_some_and(|d| d
            .iter()
            .any(|x| x["field"] == field && x["issue"] == "control_character")),
        "{what}: {}",
        r.text
    );
    assert!(r.body["data"].is_null(), "{what}: nothing runs: {}", r.text);
}

#[tokio::test]
async fn a_nul_byte_in_any_rest_input_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let logins_before = app
        .scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'auth.login_failed'")
        .await;
    // JSON bodies.
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "x\u{0}@y.cl", "password": "whatever1"}),
        )
        .await;
    assert_refused(&r, "email", "login");
    let r = app
        .call(
            Method::DELETE,
            "/api/me/deletion-request",
            None,
            Some(json!({"email": "\u{0}a@b.cl", "password": "whatever1"})),
        )
        .await;
    assert_refused(&r, "email", "cancel deletion");
    // Query parameters, public and admin.
    for (path, field, token) in [
        ("/api/products?q=a%00b", "q", None),
        ("/api/products?category=a%00b", "category", None),
        (
            "/api/admin/logs?action=a%00b",
            "action",
            Some(admin.as_str()),
        ),
        ("/api/users?q=a%00b", "q", Some(admin.as_str())),
        ("/api/admin/orders?q=a%00b", "q", Some(admin.as_str())),
    ] {
        let r = app.get(path, token).await;
        assert_refused(&r, field, path);
    }
    // Other control characters too; a nested field is named by its path.
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": "ok@example.cl", "password": "Password123", "name": "Ana \u{1b}[31m"}),
        )
        .await;
    assert_refused(&r, "name", "register with an escape sequence");
    // Refused before anything ran: no failed login was counted, no account was made.
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'auth.login_failed'")
            .await,
        logins_before
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE email = 'ok@example.cl'")
            .await,
        0
    );
    // Access comes first: a customer asking an admin route learns nothing about its input.
    let customer = app.customer_token().await;
    let r = app.get("/api/users?q=a%00b", Some(&customer)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

#[tokio::test]
async fn a_nul_byte_in_graphql_variables_or_literals_is_a_validation_error() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let cases: [(&str, Value, &str, Option<&str>); 6] = [
        (
            "mutation($input: LoginInput!) { signIn(input: $input) { __typename } }",
            json!({"input": {"email": "x\u{0}@y.cl", "password": "whatever1"}}),
            "email",
            None,
        ),
        (
            "query($q: String) { products(q: $q) { total } }",
            json!({"q": "a\u{0}b"}),
            "q",
            None,
        ),
        (
            r#"{ products(category: "a\u0000b") { total } }"#,
            json!({}),
            "category",
            None,
        ),
        (
            r#"{ adminLogs(action: "a\u0000b") { total } }"#,
            json!({}),
            "action",
            Some(&admin),
        ),
        (
            r#"query { ...F } fragment F on Query { users(q: "a\u0000b") { total } }"#,
            json!({}),
            "q",
            Some(&admin),
        ),
        (
            r#"mutation { cancelAccountDeletion(input: {email: "\u0000a@b.cl", password: "x"}) { revoked } }"#,
            json!({}),
            "email",
            None,
        ),
    ];
    for (query, variables, field, token) in cases {
        let r = app.gql(token, query, variables).await;
        assert_gql_refused(&r, field, query);
    }
    let r = app
        .gql(
            Some(&admin),
            "query($q: String) { adminOrders(q: $q) { total } }",
            json!({"q": "\u{7f}"}),
        )
        .await;
    assert_gql_refused(&r, "q", "adminOrders with DEL");
    // GET /graphql reads the same way.
    let r = app
        .get(
            "/graphql?query=query(%24q%3AString)%7Bproducts(q%3A%24q)%7Btotal%7D%7D&variables=%7B%22q%22%3A%22a%5Cu0000%22%7D",
            None,
        )
        .await;
    assert_gql_refused(&r, "q", "GET /graphql");
}

#[tokio::test]
async fn multipart_text_fields_are_checked_like_json() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let category = app.get("/api/categories", None).await.body["items"][0]["id"]
        .as_i64()
        .unwrap();
    // The REST row's JSON part.
    let form = Form::new().text(
        "product",
        json!({"categoryId": category, "name": "Nul\u{0}Product"}).to_string(),
    );
    let r = app
        .send(
            app.client
                .post(app.url("/api/products"))
                .bearer_auth(&admin)
                .multipart(form),
        )
        .await;
    assert_refused(&r, "name", "multipart product part");
    // GraphQL's multipart request: the operations part's variables.
    let operations = json!({
        "query": "mutation($file: Upload!, $input: SubmitMedicinalDocumentInput!) { submitMedicinalDocument(input: $input, file: $file) { id } }",
        "variables": {"file": null, "input": {"docType": "receta\u{0}", "acceptHealthDataProcessing": true}}
    });
    let form = Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.file"]}).to_string())
        .part("0", Part::bytes(b"%PDF-1.4".to_vec()).file_name("a.pdf"));
    let customer = app.customer_token().await;
    let r = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .bearer_auth(&customer)
                .multipart(form),
        )
        .await;
    assert_gql_refused(&r, "docType", "GraphQL multipart");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM products WHERE name LIKE 'Nul%'")
            .await,
        0
    );
}

#[tokio::test]
async fn tab_and_line_breaks_are_text_and_pass() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/products?q=%09indica%0A", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .gql(
            None,
            "query($q: String) { products(q: $q) { total } }",
            json!({"q": "line\r\nbreak\ttab"}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    assert!(r.body["data"]["products"]["total"].is_i64(), "{}", r.text);
}

#[tokio::test]
async fn payment_callbacks_refuse_control_characters_before_reading_them() {
    let app = TestApp::spawn().await;
    // A signed test-provider notification whose event id holds a NUL.
    let body = json!({"eventId": "e\u{0}1", "providerTxnId": "t", "status": "paid", "amountCents": 1, "timestamp": app.clock.now().timestamp()}).to_string();
    let r = webhook(&app, &body, Some(sign(&body))).await;
    assert_refused(&r, "eventId", "test provider notification");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM payment_events").await,
        0
    );
    // A form body (Flow's confirmation shape) and a query string (a browser's return).
    let r = app
        .send(
            app.client
                .post(app.url("/webhooks/payments/test?token=a%00b"))
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    assert_refused(&r, "token", "query string of a notification");
}

#[tokio::test]
async fn an_email_is_a_bare_address_and_check_data_reports_stored_ones_that_are_not() {
    let app = TestApp::spawn().await;
    for email in [
        "\"victim@shop.cl\" <evil@example.com>",
        "Victim <evil@example.com>",
        "<evil@example.com>",
        "\"a b\"@example.cl",
        "ana(comentario)@example.cl",
        "ana@[127.0.0.1]",
    ] {
        let r = app
            .post(
                "/api/auth/register",
                None,
                json!({"email": email, "password": "Password123", "name": "Ana"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{email}: {}", r.text);
        assert!(
            r.has_detail("email", "invalid_format"),
            "{email}: {}",
            r.text
        );
    }
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM users WHERE email LIKE '%evil%' OR email LIKE '%ana%'"
        )
        .await,
        0
    );
    // The same rule when the address changes.
    let (token, id, _) = app.register("bare@example.cl").await;
    let r = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"email": "Victim <evil@example.com>"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("email", "invalid_format"), "{}", r.text);
    // Normalised: trimmed and lower-cased.
    let (_, other, _) = app.register("  Mixed.Case@Example.CL ").await;
    assert_eq!(
        app.scalar_string(&format!("SELECT email FROM users WHERE id = {other}"))
            .await
            .as_deref(),
        Some("mixed.case@example.cl")
    );

    // A row stored before the rule is reported (by id, without the value), not rewritten.
    let report = dispensary::services::accounts::data_check::run(&app.state.db)
        .await
        .unwrap();
    assert!(report.is_empty(), "{report:?}");
    app.execute(&format!(
        "UPDATE users SET email = '\"victim@shop.cl\" <evil@example.com>' WHERE id = {id}"
    ))
    .await;
    let report = dispensary::services::accounts::data_check::run(&app.state.db)
        .await
        .unwrap();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(
        (report[0].table, report[0].id, report[0].field),
        ("users", id, "email")
    );
    let line = report[0].to_string();
    assert!(
        line.contains("display name") && !line.contains("evil"),
        "{line}"
    );
    assert_eq!(
        app.scalar_string(&format!("SELECT email FROM users WHERE id = {id}"))
            .await
            .as_deref(),
        Some("\"victim@shop.cl\" <evil@example.com>")
    );
}

/// Thirty guesses sent at once (`guess(i)`), then one at a time until the account refuses: at
/// most `limit` of the burst are evaluated (answered `evaluated`, the rest 429), and the account
/// locks after exactly `limit` evaluated guesses in all — guesses refused while others were in
/// flight do not count. Nothing answers 5xx.
async fn burst_then_locked<F, Fut>(limit: usize, evaluated: StatusCode, guess: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Resp>,
{
    let statuses: Vec<StatusCode> = futures::future::join_all((0..30).map(&guess))
        .await
        .into_iter()
        .map(|r| {
            assert!(!r.status.is_server_error(), "{}", r.text);
            r.status
        })
        .collect();
    let tally = |status| statuses.iter().filter(|s| **s == status).count();
    let in_burst = tally(evaluated);
    assert!(in_burst <= limit, "at most {limit} evaluated: {statuses:?}");
    assert_eq!(
        in_burst + tally(StatusCode::TOO_MANY_REQUESTS),
        30,
        "{statuses:?}"
    );
    for more in 0..=limit {
        let r = guess(30 + more).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.header("retry-after").is_some(), "{}", r.text);
            assert_eq!(in_burst + more, limit, "{statuses:?} then {more}");
            return;
        }
        assert_eq!(r.status, evaluated, "{}", r.text);
    }
    panic!("not locked after {limit} evaluated guesses: {statuses:?}");
}

const MFA_EMAIL: &str = "guess-target@example.cl";

/// A customer with two-factor on: (access token, secret).
async fn two_factor_customer(app: &TestApp) -> (String, String) {
    let (token, _, _) = app.register(MFA_EMAIL).await;
    let (secret, _) = crate::two_factor::enable(app, &token).await;
    (token, secret)
}

#[tokio::test]
async fn thirty_wrong_codes_at_once_are_held_to_the_lockout_limit_across_instances() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    let (_, secret) = two_factor_customer(&a).await;
    let r = a
        .post(
            "/api/auth/login",
            None,
            json!({"email": MFA_EMAIL, "password": "secreto123"}),
        )
        .await;
    let mfa = r.body["mfaToken"]
        .as_str()
        .expect("an mfaToken")
        .to_string();
    let wrong = crate::two_factor::wrong_code(&a, &secret);
    burst_then_locked(10, StatusCode::BAD_REQUEST, |i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.post(
            "/api/auth/2fa/verify",
            None,
            json!({"mfaToken": mfa, "code": wrong}),
        )
    })
    .await;
    assert_eq!(
        a.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'auth.mfa_failed'")
            .await,
        10
    );
    // Locked: even the right code is refused now.
    a.clock.advance(chrono::Duration::seconds(30));
    let r = a
        .post(
            "/api/auth/2fa/verify",
            None,
            json!({"mfaToken": mfa, "code": crate::two_factor::code(&a, &secret)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}

#[tokio::test]
async fn thirty_wrong_passwords_at_once_are_held_to_the_lockout_limit() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    burst_then_locked(10, StatusCode::UNAUTHORIZED, |i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.post(
            "/api/auth/login",
            None,
            json!({"email": CUSTOMER_EMAIL, "password": format!("Guess{i:05}")}),
        )
    })
    .await;
    let r = a
        .post(
            "/api/auth/login",
            None,
            json!({"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}

#[tokio::test]
async fn wrong_codes_where_two_factor_is_turned_off_or_an_erasure_asked_count_towards_the_lockout()
{
    let app = TestApp::spawn_with(&[
        ("LOGIN_FAILURE_LIMIT", "4"),
        ("LOGIN_FAILURE_WINDOW_SECONDS", "120"),
    ])
    .await;
    let (token, secret) = two_factor_customer(&app).await;
    let wrong = crate::two_factor::wrong_code(&app, &secret);
    // With the session and the password, thirty guesses at once: at most the limit are evaluated.
    burst_then_locked(4, StatusCode::BAD_REQUEST, |_| {
        app.post(
            "/api/me/2fa/disable",
            Some(&token),
            json!({"password": "secreto123", "code": wrong}),
        )
    })
    .await;
    // Locked: the right code does not turn it off, nor does sign-in work.
    app.clock.advance(chrono::Duration::seconds(30));
    let r = app
        .post(
            "/api/me/2fa/disable",
            Some(&token),
            json!({"password": "secreto123", "code": crate::two_factor::code(&app, &secret)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": MFA_EMAIL, "password": "secreto123"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM user_two_factor WHERE enabled_at IS NOT NULL")
            .await,
        1,
        "two-factor is still on"
    );

    // After the window: one wrong code asking for an erasure, and wrong passwords where the
    // password is asked again, count towards the same limit.
    app.clock.advance(chrono::Duration::seconds(
        app.state.config.auth.login_failure_window_seconds + 1,
    ));
    let r = app
        .post(
            "/api/me/deletion-request",
            Some(&token),
            json!({"password": "secreto123", "code": wrong}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("code", "invalid"), "{}", r.text);
    for _ in 0..2 {
        let r = app
            .post(
                "/api/me/2fa/disable",
                Some(&token),
                json!({"password": "equivocada1", "code": wrong}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.has_detail("password", "incorrect"), "{}", r.text);
    }
    let r = app
        .post(
            "/api/me/deletion-request",
            Some(&token),
            json!({"password": "secreto123", "code": wrong}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app
        .post(
            "/api/me/deletion-request",
            Some(&token),
            json!({"password": "secreto123", "code": crate::two_factor::code(&app, &secret)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM privacy_requests")
            .await,
        0
    );
}
