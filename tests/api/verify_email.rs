//! Email verification: the link mailed at registration (over real SMTP), used once; resends
//! (rate limited) replace it; expiry; an email change that takes effect only when the new
//! address is verified; and `REQUIRE_VERIFIED_EMAIL_FOR_CHECKOUT`.

use chrono::Duration;
use mail_parser::Message;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::mail::{
    deliver, first_address, link_token, smtp_env, spawn_with_owned, with_subject, VERIFY,
};
use crate::smtp::SmtpSim;

pub(crate) const CHANGE: &str = "Confirma tu nuevo correo en Dispensario";
const NOTICE: &str = "Pidieron cambiar el correo de tu cuenta en Dispensario";

fn token_of(m: &Message<'_>) -> String {
    link_token(m, "/verify-email")
}

async fn verify(app: &TestApp, token: &str) -> Resp {
    app.post("/api/auth/verify-email", None, json!({"token": token}))
        .await
}

#[tokio::test]
async fn registration_mails_a_link_that_verifies_the_address_once() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let (token, id, body) = app.register("verifica@example.cl").await;
    assert_eq!(body["user"]["emailVerified"], false, "{body}");
    assert_eq!(body["user"]["pendingEmail"], serde_json::Value::Null);
    // Nothing is sent inside the request.
    assert!(smtp.received().is_empty());

    deliver(&app).await;
    let got = smtp.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.subject(), Some(VERIFY));
    assert_eq!(first_address(m.to()), "verifica@example.cl");
    let text = m.body_text(0).unwrap().to_string();
    assert!(text.contains("Hola Test Customer:"), "{text}");
    assert!(text.contains("vence en 24 horas"), "{text}");
    let link = token_of(m);
    assert!(
        text.contains(&format!(
            "https://tienda.example.cl/verify-email?token={link}"
        )),
        "{text}"
    );

    // The token is in the message only: the database keeps its hash, and neither the job an
    // operator sees nor the outbox event carries it.
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT token_hash FROM account_links WHERE user_id = {id}"
        ))
        .await
        .unwrap(),
        hex::encode(Sha256::digest(link.as_bytes()))
    );
    let admin = app.admin_token().await;
    let jobs = app
        .get("/api/admin/jobs?kind=mail.send", Some(&admin))
        .await;
    assert_eq!(jobs.status, StatusCode::OK, "{}", jobs.text);
    assert!(jobs.text.contains("\"linkId\""), "{}", jobs.text);
    assert!(!jobs.text.contains(&link));
    let outbox = app
        .scalar_string(
            "SELECT CAST(payload AS TEXT) FROM outbox_events WHERE event_type = 'user.email_verification_requested'",
        )
        .await
        .unwrap();
    assert!(!outbox.contains(&link), "{outbox}");

    let r = verify(&app, &link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"userId": id, "email": "verifica@example.cl", "emailVerified": true, "emailChanged": false})
    );
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.body["emailVerified"], true, "{}", me.text);
    let g = app
        .gql(
            Some(&token),
            "{ me { emailVerified pendingEmail } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["data"]["me"],
        json!({"emailVerified": true, "pendingEmail": null})
    );
    // The audit log says who verified what, never the token.
    let logs = app
        .get("/api/admin/logs?action=user.email_verified", Some(&admin))
        .await;
    assert_eq!(
        logs.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        logs.text
    );
    assert_eq!(logs.body["items"][0]["entityId"], id);
    assert_eq!(logs.body["items"][0]["meta"]["changed"], false);
    assert!(!logs.text.contains(&link));

    // Used once: a second use is refused, and changes nothing.
    let r = verify(&app, &link).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("token", "used"), "{}", r.text);
    // Verified: nothing left to resend.
    let r = app
        .post("/api/auth/verify-email/resend", Some(&token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.has_detail("email", "already_verified"), "{}", r.text);
}

#[tokio::test]
async fn a_resend_replaces_the_link_is_rate_limited_and_links_expire() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let (token, id, _) = app.register("reenvio@example.cl").await;
    deliver(&app).await;
    let first = token_of(&with_subject(&smtp, VERIFY)[0]);

    // Anonymous: refused. Right after the first link: wait a minute.
    let r = app
        .post("/api/auth/verify-email/resend", None, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = app
        .post("/api/auth/verify-email/resend", Some(&token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let wait: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=61).contains(&wait), "{wait}");

    app.clock.advance(Duration::seconds(61));
    let r = app
        .post("/api/auth/verify-email/resend", Some(&token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"email": "reenvio@example.cl", "expiresInHours": 24})
    );
    deliver(&app).await;
    let mails = with_subject(&smtp, VERIFY);
    assert_eq!(mails.len(), 2);
    let second = token_of(&mails[1]);
    assert_ne!(first, second);
    // The newer link replaced the first.
    let r = verify(&app, &first).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("token", "used"), "{}", r.text);

    // Unknown or malformed tokens.
    for bad in ["0".repeat(64), "abc".to_string(), "z".repeat(64)] {
        let r = verify(&app, &bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.has_detail("token", "invalid"), "{bad}: {}", r.text);
    }

    // A day later the link has expired.
    app.clock
        .advance(Duration::hours(24) + Duration::seconds(1));
    let r = verify(&app, &second).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("token", "expired"), "{}", r.text);
    // At most five links an hour.
    let fresh = app.login("reenvio@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.get("/api/me", Some(&fresh)).await.body["emailVerified"],
        false,
        "an expired link verified nothing"
    );
    for _ in 0..5 {
        let r = app
            .post("/api/auth/verify-email/resend", Some(&fresh), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        app.clock.advance(Duration::seconds(61));
    }
    let r = app
        .post("/api/auth/verify-email/resend", Some(&fresh), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    // The newest link works (sent when the job runs).
    deliver(&app).await;
    let mails = with_subject(&smtp, VERIFY);
    let newest = token_of(mails.last().unwrap());
    let r = verify(&app, &newest).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["userId"], id);
}

#[tokio::test]
async fn an_email_change_takes_effect_when_the_new_address_is_verified() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let (token, id, _) = app.register("antiguo@example.cl").await;
    deliver(&app).await;
    let r = verify(&app, &token_of(&with_subject(&smtp, VERIFY)[0])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"email": "Nuevo@Example.cl"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["email"], "antiguo@example.cl", "not yet");
    assert_eq!(r.body["emailVerified"], true);
    assert_eq!(r.body["pendingEmail"], "nuevo@example.cl");
    deliver(&app).await;
    // A link to the new address, a notice to the old one.
    let link = with_subject(&smtp, CHANGE);
    assert_eq!(link.len(), 1);
    assert_eq!(first_address(link[0].to()), "nuevo@example.cl");
    let notice = with_subject(&smtp, NOTICE);
    assert_eq!(notice.len(), 1);
    assert_eq!(first_address(notice[0].to()), "antiguo@example.cl");
    let text = notice[0].body_text(0).unwrap().to_string();
    assert!(text.contains("a nuevo@example.cl."), "{text}");
    assert!(
        !text.contains("verify-email"),
        "no link in the notice: {text}"
    );
    // Until then, the old address signs in.
    app.login("antiguo@example.cl", "secreto123").await;

    let r = verify(&app, &token_of(&link[0])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"userId": id, "email": "nuevo@example.cl", "emailVerified": true, "emailChanged": true})
    );
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.body["email"], "nuevo@example.cl");
    assert_eq!(me.body["emailVerified"], true);
    assert_eq!(me.body["pendingEmail"], serde_json::Value::Null);
    app.login("nuevo@example.cl", "secreto123").await;
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "antiguo@example.cl", "password": "secreto123"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // An address someone else took meanwhile cannot be verified into.
    app.clock.advance(Duration::seconds(61));
    let r = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"email": "disputado@example.cl"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    deliver(&app).await;
    let link = with_subject(&smtp, CHANGE);
    assert_eq!(link.len(), 2);
    app.register("disputado@example.cl").await;
    let r = verify(&app, &token_of(&link[1])).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.has_detail("email", "already_exists"), "{}", r.text);
    assert_eq!(
        app.get("/api/me", Some(&token)).await.body["email"],
        "nuevo@example.cl"
    );
}

#[tokio::test]
async fn checkout_refuses_unverified_addresses_when_required() {
    let smtp = SmtpSim::start().await;
    let mut env = smtp_env(&smtp);
    env.push(("REQUIRE_VERIFIED_EMAIL_FOR_CHECKOUT", "true".into()));
    let app = spawn_with_owned(&env).await;
    let (token, _, _) = app.register("comprador@example.cl").await;
    let vid = variant_id(&app, "NL-AUTO-1G").await;
    let order = json!({"items": [{"variantId": vid, "quantity": 1}],
        "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"},
        "shippingMethod": "starken"});
    let r = app
        .post("/api/checkout/confirm", Some(&token), order.clone())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error_code(), "email_not_verified");
    let g = app
        .gql(
            Some(&token),
            "mutation($i: CheckoutInput!) { confirmCheckout(input: $i) { id } }",
            json!({"i": order}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "email_not_verified",
        "{}",
        g.text
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM orders").await, 0);

    // Verified over GraphQL, the same checkout goes through.
    deliver(&app).await;
    let link = token_of(&with_subject(&smtp, VERIFY)[0]);
    let g = app
        .gql(
            None,
            "mutation($t: String!) { verifyEmail(input: {token: $t}) { emailVerified emailChanged } }",
            json!({"t": link}),
        )
        .await;
    assert_eq!(
        g.body["data"]["verifyEmail"],
        json!({"emailVerified": true, "emailChanged": false}),
        "{}",
        g.text
    );
    let r = app.post("/api/checkout/confirm", Some(&token), order).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn checkout_does_not_ask_for_verification_by_default() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("sinverificar@example.cl").await;
    let vid = variant_id(&app, "NL-AUTO-1G").await;
    let r = app
        .post(
            "/api/checkout/confirm",
            Some(&token),
            json!({"items": [{"variantId": vid, "quantity": 1}],
                "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"},
                "shippingMethod": "starken"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        app.get("/api/me", Some(&token)).await.body["emailVerified"],
        false
    );
}
