//! TOTP two-factor authentication: setup (secret, otpauth URI, QR code), enabling with a code
//! (ten recovery codes), sign-in in two steps, replay refusal, recovery codes, lockout, disabling,
//! `ADMIN_REQUIRE_2FA`, and the secret sealed at rest.

use chrono::Duration;
use dispensary::services::accounts::two_factor::code_at;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::mail::{deliver, first_address, smtp_env, spawn_with_owned, subjects, with_subject};
use crate::smtp::SmtpSim;

const EMAIL: &str = "dosfactores@example.cl";
const PASSWORD: &str = "secreto123";

/// The code of `secret` at the app's current time.
pub(crate) fn code(app: &TestApp, secret: &str) -> String {
    code_at(secret, app.clock.now()).expect("a base32 secret")
}

/// A 6-digit code that is wrong for `secret` now and one step either side.
pub(crate) fn wrong_code(app: &TestApp, secret: &str) -> String {
    let near: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|s| code_at(secret, app.clock.now() + Duration::seconds(*s)).unwrap())
        .collect();
    (0..1000)
        .map(|n| format!("{:06}", n * 997 % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

async fn login(app: &TestApp, email: &str, password: &str) -> Resp {
    app.post(
        "/api/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

/// Logs in an account with two-factor on: its mfaToken.
async fn mfa_token(app: &TestApp, email: &str, password: &str) -> String {
    let r = login(app, email, password).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["mfaRequired"], true, "{}", r.text);
    assert_eq!(r.body["expiresIn"], 300);
    assert!(r.body.get("accessToken").is_none(), "{}", r.text);
    r.body["mfaToken"].as_str().unwrap().to_string()
}

async fn verify(app: &TestApp, body: Value) -> Resp {
    app.post("/api/auth/2fa/verify", None, body).await
}

/// Sets up and enables two-factor for the holder of `token`: (secret, recovery codes).
pub(crate) async fn enable(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let r = app.post("/api/me/2fa/setup", Some(token), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/api/me/2fa/enable",
            Some(token),
            json!({"code": code(app, &secret)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes = r.body["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (secret, codes)
}

#[tokio::test]
async fn two_factor_sign_in_end_to_end() {
    let app = TestApp::spawn().await;
    let (token, id, _) = app.register(EMAIL).await;
    let r = app.get("/api/me/2fa", Some(&token)).await;
    assert_eq!(
        r.body,
        json!({"enabled": false, "enabledAt": null, "recoveryCodesLeft": 0})
    );

    // Setup: the secret as base32, an otpauth URI and a QR code as SVG.
    let r = app.post("/api/me/2fa/setup", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    let uri = r.body["otpauthUri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Dispensario:dosfactores%40example.cl?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=Dispensario"), "{uri}");
    let svg = r.body["qrSvg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");
    // Setting up again before enabling replaces the secret: the first one's codes stop working.
    let r = app.post("/api/me/2fa/setup", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let first_secret = secret;
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert_ne!(secret, first_secret);
    let r = app
        .post(
            "/api/me/2fa/enable",
            Some(&token),
            json!({"code": code(&app, &first_secret)}),
        )
        .await;
    assert!(r.has_detail("code", "invalid"), "{}", r.text);
    let rows = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM user_two_factor WHERE user_id = {id}"
        ))
        .await;
    assert_eq!(rows, 1);

    // At rest the secret is sealed: neither its base32 nor its hex is anywhere in the row, the
    // audit log or the outbox.
    let sealed = app
        .scalar_string(&format!(
            "SELECT secret FROM user_two_factor WHERE user_id = {id}"
        ))
        .await
        .unwrap();
    assert!(sealed.starts_with("v1:"), "{sealed}");
    let raw = totp_rs::Secret::Encoded(secret.clone()).to_bytes().unwrap();
    for clear in [secret.clone(), hex::encode(&raw)] {
        assert!(!sealed.contains(&clear));
        for (table, column) in [("system_logs", "meta"), ("outbox_events", "payload")] {
            let n = app
                .scalar_i64(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE CAST({column} AS TEXT) LIKE '%{clear}%'"
                ))
                .await;
            assert_eq!(n, 0, "{table} holds the secret");
        }
    }

    // A wrong code does not enable it; the right one does, and answers ten recovery codes.
    let r = app
        .post(
            "/api/me/2fa/enable",
            Some(&token),
            json!({"code": wrong_code(&app, &secret)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("code", "invalid"), "{}", r.text);
    let enable_code = code(&app, &secret);
    let r = app
        .post(
            "/api/me/2fa/enable",
            Some(&token),
            json!({"code": enable_code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let recovery: Vec<String> = r.body["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    let mut distinct = recovery.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    let hashes = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = {id} AND LENGTH(code_hash) = 64 AND used_at IS NULL"
        ))
        .await;
    assert_eq!(hashes, 10);
    for c in &recovery {
        let n = app
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM recovery_codes WHERE code_hash = '{c}'"
            ))
            .await;
        assert_eq!(n, 0, "recovery codes are stored hashed");
    }
    let r = app.get("/api/me/2fa", Some(&token)).await;
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["recoveryCodesLeft"], 10);
    let r = app.post("/api/me/2fa/setup", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    // The password alone earns a challenge, not tokens — over REST, GraphQL's signIn, and
    // GraphQL's login (which answers mfa_required).
    let first = mfa_token(&app, EMAIL, PASSWORD).await;
    let g = app
        .gql(
            None,
            "mutation($i: LoginInput!) { signIn(input: $i) { __typename ... on MfaChallenge { mfaRequired mfaToken expiresIn } } }",
            json!({"i": {"email": EMAIL, "password": PASSWORD}}),
        )
        .await;
    assert_eq!(
        g.body["data"]["signIn"]["__typename"], "MfaChallenge",
        "{}",
        g.text
    );
    assert_eq!(g.body["data"]["signIn"]["mfaRequired"], true);
    let g = app
        .gql(
            None,
            "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
            json!({"i": {"email": EMAIL, "password": PASSWORD}}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "mfa_required",
        "{}",
        g.text
    );
    // The challenge is no bearer token.
    let r = app.get("/api/me", Some(&first)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The code used to enable is refused within its window (replay); a wrong code too.
    let r = verify(&app, json!({"mfaToken": first, "code": enable_code})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("code", "already_used"), "{}", r.text);
    let r = verify(
        &app,
        json!({"mfaToken": first, "code": wrong_code(&app, &secret)}),
    )
    .await;
    assert!(r.has_detail("code", "invalid"), "{}", r.text);
    let r = verify(&app, json!({"mfaToken": first})).await;
    assert!(r.has_detail("code", "required"), "{}", r.text);

    // The next step's code completes the sign-in.
    app.clock.advance(Duration::seconds(30));
    let next = code(&app, &secret);
    let r = verify(&app, json!({"mfaToken": first, "code": next})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["email"], EMAIL);
    let access = r.body["accessToken"].as_str().unwrap().to_string();
    assert_eq!(
        app.get("/api/me", Some(&access)).await.status,
        StatusCode::OK
    );
    // The mfaToken worked once; the code is spent for another sign-in too.
    let r = verify(&app, json!({"mfaToken": first, "code": next})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let second = mfa_token(&app, EMAIL, PASSWORD).await;
    let r = verify(&app, json!({"mfaToken": second, "code": next})).await;
    assert!(r.has_detail("code", "already_used"), "{}", r.text);

    // A recovery code works once (any case, any separator), and the count goes down.
    let spaced = recovery[3].to_uppercase().replace('-', " ");
    let r = verify(&app, json!({"mfaToken": second, "recoveryCode": spaced})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let via_recovery = r.body["accessToken"].as_str().unwrap().to_string();
    let r = app.get("/api/me/2fa", Some(&via_recovery)).await;
    assert_eq!(r.body["recoveryCodesLeft"], 9);
    let third = mfa_token(&app, EMAIL, PASSWORD).await;
    let r = verify(
        &app,
        json!({"mfaToken": third, "recoveryCode": recovery[3]}),
    )
    .await;
    assert!(r.has_detail("recoveryCode", "invalid"), "{}", r.text);

    // The challenge lasts five minutes.
    app.clock.advance(Duration::seconds(301));
    let r = verify(
        &app,
        json!({"mfaToken": third, "code": code(&app, &secret)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // GraphQL completes a sign-in the same way.
    let fourth = mfa_token(&app, EMAIL, PASSWORD).await;
    let g = app
        .gql(
            None,
            "mutation($i: VerifyMfaInput!) { verifyMfa(input: $i) { accessToken user { id } } }",
            json!({"i": {"mfaToken": fourth, "code": code(&app, &secret)}}),
        )
        .await;
    assert_eq!(g.body["data"]["verifyMfa"]["user"]["id"], id, "{}", g.text);

    let actions = app
        .scalar_i64(&format!(
            "SELECT COUNT(DISTINCT action) FROM system_logs WHERE entity_id = {id} AND action IN
             ('auth.two_factor_setup', 'auth.two_factor_enabled', 'auth.mfa_failed', 'auth.recovery_code_used')"
        ))
        .await;
    assert_eq!(actions, 4);
    let failed = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM system_logs WHERE entity_id = {id} AND action = 'auth.mfa_failed' AND actor_user_id = {id}"
        ))
        .await;
    assert_eq!(failed, 4, "two replays, a wrong code, a used recovery code");

    // Disabling needs the password and a code.
    app.clock.advance(Duration::seconds(30));
    let r = app
        .post(
            "/api/me/2fa/disable",
            Some(&access),
            json!({"password": "wrong-pass1", "code": code(&app, &secret)}),
        )
        .await;
    assert!(r.has_detail("password", "incorrect"), "{}", r.text);
    let r = app
        .post(
            "/api/me/2fa/disable",
            Some(&access),
            json!({"password": PASSWORD, "code": wrong_code(&app, &secret)}),
        )
        .await;
    assert!(r.has_detail("code", "invalid"), "{}", r.text);
    let r = app
        .post(
            "/api/me/2fa/disable",
            Some(&access),
            json!({"password": PASSWORD, "code": code(&app, &secret)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for table in ["user_two_factor", "recovery_codes"] {
        let n = app
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM {table} WHERE user_id = {id}"
            ))
            .await;
        assert_eq!(n, 0, "{table}");
    }
    let r = login(&app, EMAIL, PASSWORD).await;
    assert!(r.body["accessToken"].is_string(), "{}", r.text);
    let r = app
        .post(
            "/api/me/2fa/disable",
            Some(&access),
            json!({"password": PASSWORD, "code": "123456"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
}

#[tokio::test]
async fn wrong_second_factors_lock_the_account_like_wrong_passwords() {
    let app = TestApp::spawn_with(&[("LOGIN_FAILURE_LIMIT", "3")]).await;
    let (token, _, _) = app.register(EMAIL).await;
    let (secret, codes) = enable(&app, &token).await;
    let mfa = mfa_token(&app, EMAIL, PASSWORD).await;
    for _ in 0..3 {
        let r = verify(
            &app,
            json!({"mfaToken": mfa, "code": wrong_code(&app, &secret)}),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    app.clock.advance(Duration::seconds(30));
    let r = verify(&app, json!({"mfaToken": mfa, "code": code(&app, &secret)})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.header("retry-after").is_some());
    let r = verify(&app, json!({"mfaToken": mfa, "recoveryCode": codes[0]})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let r = login(&app, EMAIL, PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}

#[tokio::test]
async fn admins_without_two_factor_are_refused_admin_operations_when_required() {
    let app = TestApp::spawn_with(&[("ADMIN_REQUIRE_2FA", "true")]).await;
    let admin = app.admin_token().await;
    let r = app.get("/api/users", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error_code(), "mfa_required");
    let g = app
        .gql(Some(&admin), "{ users { total } }", json!({}))
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "mfa_required",
        "{}",
        g.text
    );
    // Their own account still works, so they can turn it on.
    assert_eq!(
        app.get("/api/me", Some(&admin)).await.status,
        StatusCode::OK
    );
    // A customer is unaffected.
    let customer = app.customer_token().await;
    assert_eq!(
        app.get("/api/me", Some(&customer)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/users", Some(&customer)).await.error_code(),
        "forbidden"
    );

    let (secret, _) = enable(&app, &admin).await;
    let r = app.get("/api/users", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // From now on the admin signs in with a code.
    let mfa = mfa_token(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app.clock.advance(Duration::seconds(30));
    let r = verify(&app, json!({"mfaToken": mfa, "code": code(&app, &secret)})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let fresh = r.body["accessToken"].as_str().unwrap();
    assert_eq!(
        app.get("/api/users", Some(fresh)).await.status,
        StatusCode::OK
    );

    // Not required (the default outside production): an admin without it is not held back.
    let relaxed = TestApp::spawn().await;
    let admin = relaxed.admin_token().await;
    assert_eq!(
        relaxed.get("/api/users", Some(&admin)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_factor_changes_are_mailed_to_the_account() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let (token, _, _) = app.register(EMAIL).await;
    let (secret, recovery) = enable(&app, &token).await;
    deliver(&app).await;
    let on = with_subject(
        &smtp,
        "Activaste la verificación en dos pasos en Dispensario",
    );
    assert_eq!(on.len(), 1, "{:?}", subjects(&smtp));
    assert_eq!(first_address(on[0].to()), EMAIL);

    let mfa = mfa_token(&app, EMAIL, PASSWORD).await;
    let r = verify(&app, json!({"mfaToken": mfa, "recoveryCode": recovery[0]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    deliver(&app).await;
    let used = with_subject(&smtp, "Usaste un código de recuperación en Dispensario");
    assert_eq!(used.len(), 1, "{:?}", subjects(&smtp));
    assert!(used[0].body_text(0).unwrap().contains("Te quedan 9;"));

    app.clock.advance(Duration::seconds(30));
    let r = app
        .post(
            "/api/me/2fa/disable",
            Some(&token),
            json!({"password": PASSWORD, "code": code(&app, &secret)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    deliver(&app).await;
    let off = with_subject(
        &smtp,
        "Desactivaste la verificación en dos pasos en Dispensario",
    );
    assert_eq!(off.len(), 1, "{:?}", subjects(&smtp));

    // No message carries the secret or a recovery code.
    for m in smtp.messages() {
        let text = m.body_text(0).unwrap().to_string();
        let html = m.body_html(0).unwrap().to_string();
        for needle in std::iter::once(&secret).chain(recovery.iter()) {
            assert!(!text.contains(needle.as_str()) && !html.contains(needle.as_str()));
        }
    }
}
