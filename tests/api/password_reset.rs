//! Forgotten and changed passwords: the reset link mailed over SMTP, used once within 30
//! minutes, ending every session; the same answer for addresses without an account; a signed-in
//! change that ends the other sessions; the "password changed" notices.

use chrono::Duration;
use mail_parser::Message;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::mail::{deliver, first_address, link_token, smtp_env, spawn_with_owned, with_subject};
use crate::smtp::SmtpSim;

const RESET: &str = "Restablece tu contraseña en Dispensario";
const CHANGED: &str = "Tu contraseña en Dispensario cambió";
const FORGOT_BODY: &str =
    r#"{"message":"If an account uses that address, a link to reset its password is on its way"}"#;

fn reset_token(m: &Message<'_>) -> String {
    link_token(m, "/reset-password")
}

async fn forgot(app: &TestApp, email: &str) -> Resp {
    let started = std::time::Instant::now();
    let r = app
        .post("/api/auth/password/forgot", None, json!({"email": email}))
        .await;
    // Never sooner than the floor that hides whether an account exists.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    r
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Resp {
    app.post(
        "/api/auth/password/reset",
        None,
        json!({"token": token, "newPassword": password}),
    )
    .await
}

fn tokens(body: &Value) -> (String, String) {
    (
        body["accessToken"].as_str().unwrap().to_string(),
        body["refreshToken"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_reset_link_sets_the_password_once_and_ends_every_session() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let (_, id, body) = app.register("olvido@example.cl").await;
    let first = tokens(&body);
    let second = tokens(&app.login("olvido@example.cl", "secreto123").await);

    let r = forgot(&app, "Olvido@Example.cl").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.text, FORGOT_BODY);
    // Nothing is sent inside the request.
    assert!(with_subject(&smtp, RESET).is_empty());
    deliver(&app).await;
    let mails = with_subject(&smtp, RESET);
    assert_eq!(mails.len(), 1);
    assert_eq!(first_address(mails[0].to()), "olvido@example.cl");
    let text = mails[0].body_text(0).unwrap().to_string();
    assert!(text.contains("vence en 30 minutos"), "{text}");
    let token = reset_token(&mails[0]);
    // The database keeps the token's hash only; the operator's view of the job has no token.
    let admin = app.admin_token().await;
    let jobs = app
        .get("/api/admin/jobs?kind=mail.send", Some(&admin))
        .await;
    assert!(
        jobs.text.contains("reset_password") && !jobs.text.contains(&token),
        "{}",
        jobs.text
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM account_links WHERE purpose = 'reset_password' AND token_hash = '{}'",
            dispensary::services::accounts::links::token_hash(&token)
        ))
        .await,
        1
    );

    // The policy applies to the new password.
    let r = reset(&app, &token, "corta").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("newPassword", "too_short"), "{}", r.text);
    let r = reset(&app, &token, "nuevaClave789").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    // Every session ended at once: access tokens and refresh tokens of both logins refused.
    for (access, refresh) in [&first, &second] {
        let r = app.get("/api/me", Some(access)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        let r = app
            .post("/api/auth/refresh", None, json!({"refreshToken": refresh}))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "olvido@example.cl", "password": "secreto123"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let fresh = tokens(&app.login("olvido@example.cl", "nuevaClave789").await);
    // Following the link proved the address.
    assert_eq!(
        app.get("/api/me", Some(&fresh.0)).await.body["emailVerified"],
        true
    );

    // The link works once.
    let r = reset(&app, &token, "terceraClave1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("token", "used"), "{}", r.text);
    app.login("olvido@example.cl", "nuevaClave789").await;

    // The owner is told.
    deliver(&app).await;
    let changed = with_subject(&smtp, CHANGED);
    assert_eq!(changed.len(), 1);
    assert_eq!(first_address(changed[0].to()), "olvido@example.cl");
    let text = changed[0].body_text(0).unwrap().to_string();
    assert!(
        text.contains("con un enlace de restablecimiento, y se cerraron todas tus sesiones"),
        "{text}"
    );
    assert!(!text.contains("nuevaClave789"));
    // Audited, without the token or the password.
    let logs = app
        .get("/api/admin/logs?action=auth.password_*", Some(&admin))
        .await;
    let actions: Vec<(&str, &Value)> = logs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["action"].as_str().unwrap(), &i["meta"]))
        .collect();
    assert!(
        actions.iter().any(|(a, m)| *a == "auth.password_reset"
            && m["sessionsRevoked"] == 2
            && m["linkId"].is_i64()),
        "{}",
        logs.text
    );
    assert!(actions
        .iter()
        .any(|(a, _)| *a == "auth.password_reset_requested"));
    assert!(!logs.text.contains(&token) && !logs.text.contains("nuevaClave789"));
    assert_eq!(logs.body["items"][0]["entityId"], id);
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_no_mail_and_links_expire() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    app.register("existe@example.cl").await;

    let unknown = forgot(&app, "nadie@example.cl").await;
    let known = forgot(&app, "existe@example.cl").await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(unknown.text, known.text);
    assert_eq!(unknown.text, FORGOT_BODY);
    // Within the minute, the known address gets the same answer and no second link.
    let again = forgot(&app, "existe@example.cl").await;
    assert_eq!(
        (again.status, again.text.as_str()),
        (StatusCode::ACCEPTED, FORGOT_BODY)
    );
    // Over GraphQL, the same.
    let g = app
        .gql(
            None,
            "mutation { forgotPassword(input: {email: \"otro-nadie@example.cl\"}) { message } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["data"]["forgotPassword"]["message"],
        "If an account uses that address, a link to reset its password is on its way"
    );
    // A malformed address is still an input error.
    let r = app
        .post(
            "/api/auth/password/forgot",
            None,
            json!({"email": "no-es-correo"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.has_detail("email", "invalid_format"), "{}", r.text);

    deliver(&app).await;
    let mails = with_subject(&smtp, RESET);
    assert_eq!(mails.len(), 1, "one link, to the account's address only");
    assert_eq!(first_address(mails[0].to()), "existe@example.cl");
    assert!(smtp
        .received()
        .iter()
        .all(|m| !m.to.iter().any(|t| t.contains("nadie"))));
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM system_logs WHERE action = 'auth.password_reset_requested' AND entity_id IS NULL"
        )
        .await,
        2
    );

    // Thirty minutes later the link no longer works, and the password is unchanged.
    app.clock
        .advance(Duration::minutes(30) + Duration::seconds(1));
    let r = reset(&app, &reset_token(&mails[0]), "nuevaClave789").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("token", "expired"), "{}", r.text);
    for bad in ["f".repeat(64), "xyz".to_string()] {
        let r = reset(&app, &bad, "nuevaClave789").await;
        assert!(r.has_detail("token", "invalid"), "{}", r.text);
    }
    app.login("existe@example.cl", "secreto123").await;
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_keeps_this_one() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let (_, _, body) = app.register("cambio@example.cl").await;
    let other = tokens(&body);
    let this = tokens(&app.login("cambio@example.cl", "secreto123").await);
    let change = |current: &str, new: &str| json!({"currentPassword": current, "newPassword": new});

    let r = app
        .patch(
            "/api/me/password",
            Some(&this.0),
            change("equivocada1", "nuevaClave789"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("currentPassword", "incorrect"), "{}", r.text);
    let r = app
        .patch(
            "/api/me/password",
            Some(&this.0),
            change("secreto123", "soloLetras"),
        )
        .await;
    assert!(r.has_detail("newPassword", "too_weak"), "{}", r.text);
    let r = app
        .patch(
            "/api/me/password",
            None,
            change("secreto123", "nuevaClave789"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Nothing changed so far.
    assert_eq!(
        app.get("/api/me", Some(&other.0)).await.status,
        StatusCode::OK
    );

    let r = app
        .patch(
            "/api/me/password",
            Some(&this.0),
            change("secreto123", "nuevaClave789"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.get("/api/me", Some(&this.0)).await.status,
        StatusCode::OK,
        "this session goes on"
    );
    let r = app
        .post("/api/auth/refresh", None, json!({"refreshToken": this.1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.get("/api/me", Some(&other.0)).await.status,
        StatusCode::UNAUTHORIZED,
        "the other one ended at once"
    );
    let r = app
        .post("/api/auth/refresh", None, json!({"refreshToken": other.1}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.login("cambio@example.cl", "nuevaClave789").await;

    deliver(&app).await;
    let changed = with_subject(&smtp, CHANGED);
    assert_eq!(changed.len(), 1);
    let text = changed[0].body_text(0).unwrap().to_string();
    assert!(
        text.contains(", y se cerraron tus otras sesiones"),
        "{text}"
    );
    let admin = app.admin_token().await;
    let logs = app
        .get("/api/admin/logs?action=auth.password_changed", Some(&admin))
        .await;
    assert_eq!(
        logs.body["items"][0]["meta"],
        json!({"otherSessionsRevoked": 1}),
        "{}",
        logs.text
    );
}

/// A mailed link is bound to the address it went to: an email change retires the reset link the
/// old mailbox holds, and so does a password change.
#[tokio::test]
async fn an_email_change_retires_the_reset_link_mailed_to_the_old_address() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let (token, id, _) = app.register("buzon-viejo@example.cl").await;
    let r = forgot(&app, "buzon-viejo@example.cl").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    deliver(&app).await;
    let old_link = reset_token(&with_subject(&smtp, RESET)[0]);

    // The owner moves to a new address and verifies it.
    let r = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"email": "buzon-nuevo@example.cl"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    deliver(&app).await;
    let change = with_subject(&smtp, crate::verify_email::CHANGE);
    assert_eq!(change.len(), 1);
    let r = app
        .post(
            "/api/auth/verify-email",
            None,
            json!({"token": link_token(&change[0], "/verify-email")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["emailChanged"], true);

    // The link in the old mailbox no longer resets anything.
    let r = reset(&app, &old_link, "tomado12345").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("token", "used"), "{}", r.text);
    app.login("buzon-nuevo@example.cl", "secreto123").await;
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM account_links WHERE user_id = {id} AND consumed_at IS NULL"
        ))
        .await,
        0
    );

    // A password change retires the links outstanding then, too.
    app.clock.advance(Duration::minutes(2));
    let r = forgot(&app, "buzon-nuevo@example.cl").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    deliver(&app).await;
    let second = reset_token(&with_subject(&smtp, RESET)[1]);
    let signed_in = app.login("buzon-nuevo@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .patch(
            "/api/me/password",
            Some(&signed_in),
            json!({"currentPassword": "secreto123", "newPassword": "nuevaClave456"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = reset(&app, &second, "tomado12345").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("token", "used"), "{}", r.text);
    app.login("buzon-nuevo@example.cl", "nuevaClave456").await;
}
