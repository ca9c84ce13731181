//! Outbound webhooks (Standard Webhooks): endpoints managed by admins or a `webhooks:manage`
//! key, every delivery verified by a receiver inside the test binary with the specification's
//! algorithm, at least once and in order, retried after failures, 410 disabling the endpoint,
//! secret rotation's overlap, and refused addresses opening no connection.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Duration;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;
use crate::mail::run_jobs;

/// A webhook as received.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The Standard Webhooks verification, written here from the specification: one of the
    /// space-separated `v1,` signatures is the HMAC-SHA256 of `id.timestamp.body` under the
    /// base64-decoded secret.
    fn signed_by(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", self.id, self.timestamp, self.body).as_bytes());
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        self.signature
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|s| s == expected)
    }
}

/// A receiver answering `status` to every POST and keeping what it got.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
    /// Requests that followed a redirect.
    redirected: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> Receiver {
        let status = Arc::new(AtomicU16::new(200));
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (s, g) = (status.clone(), got.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (s, g) = (s.clone(), g.clone());
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default()
                    };
                    g.lock().unwrap().push(Received {
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signature: h("webhook-signature"),
                        body,
                    });
                    let code = s.load(Ordering::SeqCst);
                    // A redirect points at a path that records what reaches it.
                    (
                        StatusCode::from_u16(code).unwrap(),
                        [(axum::http::header::LOCATION, "/redirected")],
                        "thanks",
                    )
                }
            }),
        );
        let redirected = Arc::new(AtomicUsize::new(0));
        let r = redirected.clone();
        let app = app.route(
            "/redirected",
            axum::routing::post(move || {
                r.fetch_add(1, Ordering::SeqCst);
                async { "followed" }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Receiver {
            url: format!("http://{addr}/hook"),
            status,
            got,
            redirected,
        }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn types(&self) -> Vec<String> {
        self.got()
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap().to_string())
            .collect()
    }
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(&[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")]).await
}

async fn endpoint(app: &TestApp, token: &str, url: &str, types: &[&str]) -> (i64, String) {
    let r = app
        .post(
            "/api/admin/webhooks",
            Some(token),
            json!({"url": url, "eventTypes": types, "description": "ERP"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    (r.body["id"].as_i64().unwrap(), secret)
}

/// Lets the outbox's dispatch run (keyed by the second) and every due job.
async fn deliver(app: &TestApp) {
    app.clock.advance(Duration::seconds(2));
    run_jobs(app).await;
}

async fn set_status(app: &TestApp, admin: &str, order: i64, status: &str) {
    let r = app
        .patch(
            &format!("/api/admin/orders/{order}"),
            Some(admin),
            json!({"status": status}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn an_orders_life_reaches_a_verifying_receiver_once_each_in_order() {
    let logs = CapturedLogs::global();
    let app = spawn().await;
    let receiver = Receiver::start().await;
    let admin = app.admin_token().await;
    let (id, secret) = endpoint(
        &app,
        &admin,
        &receiver.url,
        &[
            "order.created",
            "order.paid",
            "order.shipped",
            "order.delivered",
            "product.updated",
        ],
    )
    .await;
    let customer = app.customer_token().await;
    let order = paid_order(&app, &customer, "WW-FEM-1G", 1).await;
    // The payment notification arrives a second time: nothing new happens.
    let again = app
        .post(
            "/api/payments/confirm",
            Some(&customer),
            json!({"orderId": order, "provider": "test", "params": {"mock": "paid"}}),
        )
        .await;
    assert_eq!(again.body["status"], "paid", "{}", again.text);
    deliver(&app).await;
    set_status(&app, &admin, order, "shipped").await;
    deliver(&app).await;
    set_status(&app, &admin, order, "delivered").await;
    deliver(&app).await;
    deliver(&app).await;

    assert_eq!(
        receiver.types(),
        [
            "order.created",
            "order.paid",
            "order.shipped",
            "order.delivered"
        ]
    );
    let got = receiver.got();
    let mut ids = std::collections::HashSet::new();
    for r in &got {
        assert!(r.signed_by(&secret), "signature of {r:?}");
        assert!(!r.signed_by("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!(r.id.starts_with("msg_"));
        assert!(ids.insert(r.id.clone()), "one webhook-id per event");
        assert!(r.timestamp.parse::<i64>().is_ok());
        let body = r.json();
        assert_eq!(body["data"]["orderId"], order, "{body}");
        assert_eq!(body["version"], 1);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(got[1].json()["data"]["to"], "paid");

    // The log: four deliveries, each delivered at its first attempt, the answer kept.
    let r = app
        .get(
            &format!("/api/admin/webhooks/{id}/deliveries"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["total"], 4, "{}", r.text);
    for d in r.body["items"].as_array().unwrap() {
        assert_eq!(d["state"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["attemptLog"][0]["status"], 200);
        assert_eq!(d["attemptLog"][0]["responseExcerpt"], "thanks");
    }
    // The secret is never shown again, nor recorded, nor logged.
    let listed = app.get("/api/admin/webhooks", Some(&admin)).await;
    let one = app
        .get(&format!("/api/admin/webhooks/{id}"), Some(&admin))
        .await;
    let audit = app.get("/api/admin/logs?pageSize=100", Some(&admin)).await;
    let key_part = &secret[6..];
    for text in [&listed.text, &one.text, &r.text, &audit.text, &logs.text()] {
        assert!(!text.contains(key_part), "the secret leaked: {text}");
    }
    assert_eq!(one.body["eventTypes"].as_array().unwrap().len(), 5);
    assert!(one.body.get("secret").is_none());
    assert!(app
        .scalar_string(&format!(
            "SELECT secret FROM webhook_endpoints WHERE id = {id}"
        ))
        .await
        .is_some_and(|s| !s.contains(key_part)));
    assert_eq!(
        app.metric("webhook_deliveries_total", "outcome=\"delivered\"")
            .await,
        4.0
    );
}

#[tokio::test]
async fn a_failing_receiver_gets_every_event_once_it_recovers_and_410_disables_the_endpoint() {
    let app = spawn().await;
    let receiver = Receiver::start().await;
    let admin = app.admin_token().await;
    let (id, secret) = endpoint(&app, &admin, &receiver.url, &["product.updated"]).await;
    receiver.status.store(500, Ordering::SeqCst);
    for description in ["Uno", "Dos"] {
        let r = app
            .patch(
                "/api/products/1",
                Some(&admin),
                json!({"description": description}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    deliver(&app).await;
    // The first failed; the second waits behind it (same product).
    assert_eq!(receiver.got().len(), 1);
    let r = app
        .get(
            &format!("/api/admin/webhooks/{id}/deliveries?state=pending"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.body["total"], 2, "{}", r.text);
    let first = &r.body["items"][1];
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["lastStatus"], 500);
    assert_eq!(first["attemptLog"][0]["status"], 500);
    // Retried after about a minute, still failing; then after about five, recovered.
    app.clock.advance(Duration::seconds(75));
    run_jobs(&app).await;
    assert_eq!(receiver.got().len(), 2);
    receiver.status.store(204, Ordering::SeqCst);
    app.clock.advance(Duration::minutes(7));
    run_jobs(&app).await;
    let got = receiver.got();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got.iter().all(|r| r.signed_by(&secret)));
    // Retries keep the webhook-id; both events arrived, the first before the second.
    assert_eq!(got[0].id, got[2].id);
    assert_ne!(got[2].id, got[3].id);
    assert_eq!(got[3].json()["data"]["productId"], 1);
    let r = app
        .get(
            &format!("/api/admin/webhooks/{id}/deliveries?state=delivered"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.body["total"], 2, "{}", r.text);
    assert_eq!(
        app.metric("webhook_deliveries_total", "outcome=\"failed\"")
            .await,
        2.0
    );

    // 410: the endpoint is disabled, audited, and sent nothing more.
    receiver.status.store(410, Ordering::SeqCst);
    app.patch(
        "/api/products/1",
        Some(&admin),
        json!({"description": "Tres"}),
    )
    .await;
    deliver(&app).await;
    let one = app
        .get(&format!("/api/admin/webhooks/{id}"), Some(&admin))
        .await;
    assert_eq!(one.body["isActive"], false, "{}", one.text);
    assert_eq!(one.body["disabledReason"], "gone");
    let audit = app
        .get(
            "/api/admin/logs?action=webhook_endpoint.disabled",
            Some(&admin),
        )
        .await;
    assert_eq!(audit.body["total"], 1, "{}", audit.text);
    let sent = receiver.got().len();
    app.patch(
        "/api/products/1",
        Some(&admin),
        json!({"description": "Cuatro"}),
    )
    .await;
    deliver(&app).await;
    assert_eq!(receiver.got().len(), sent);
    // A redelivery waits for the endpoint to be turned on again.
    let gone = app
        .get(
            &format!("/api/admin/webhooks/{id}/deliveries?state=failed"),
            Some(&admin),
        )
        .await;
    let delivery = gone.body["items"][0]["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/api/admin/webhook-deliveries/{delivery}/redeliver"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    receiver.status.store(200, Ordering::SeqCst);
    let r = app
        .patch(
            &format!("/api/admin/webhooks/{id}"),
            Some(&admin),
            json!({"isActive": true}),
        )
        .await;
    assert_eq!(r.body["disabledReason"], Value::Null, "{}", r.text);
    let r = app
        .post(
            &format!("/api/admin/webhook-deliveries/{delivery}/redeliver"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "pending");
    run_jobs(&app).await;
    // "Tres" again; "Cuatro" happened while the endpoint was off, and was never its event.
    let tail: Vec<Received> = receiver.got()[sent..].to_vec();
    assert_eq!(tail.len(), 1, "{tail:?}");
    assert_eq!(
        tail[0].id,
        receiver.got()[sent - 1].id,
        "the same webhook-id as the 410'd attempt"
    );
    let r = app
        .get(
            &format!("/api/admin/webhooks/{id}/deliveries?state=delivered"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.body["total"], 3, "{}", r.text);
    let audit = app
        .get(
            "/api/admin/logs?action=webhook_delivery.redelivered",
            Some(&admin),
        )
        .await;
    assert_eq!(audit.body["total"], 1, "{}", audit.text);
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_alongside_the_new_one_for_a_day() {
    let app = spawn().await;
    let receiver = Receiver::start().await;
    let admin = app.admin_token().await;
    let (id, old) = endpoint(&app, &admin, &receiver.url, &["product.updated"]).await;
    // A redirect is an answer like any other that is not 2xx: not followed, tried again later.
    receiver.status.store(307, Ordering::SeqCst);
    app.patch(
        "/api/products/1",
        Some(&admin),
        json!({"description": "Redirigida"}),
    )
    .await;
    deliver(&app).await;
    assert_eq!(receiver.got().len(), 1);
    assert_eq!(
        receiver.redirected.load(Ordering::SeqCst),
        0,
        "a redirect was followed"
    );
    let r = app
        .get(
            &format!("/api/admin/webhooks/{id}/deliveries"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.body["items"][0]["state"], "pending", "{}", r.text);
    assert_eq!(r.body["items"][0]["lastStatus"], 307, "{}", r.text);
    receiver.status.store(200, Ordering::SeqCst);
    app.clock.advance(Duration::seconds(75));
    run_jobs(&app).await;
    assert_eq!(receiver.got().len(), 2);
    receiver.got.lock().unwrap().clear();
    let r = app
        .post(
            &format!("/api/admin/webhooks/{id}/rotate-secret"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new = r.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(r.body["previousSecretValidUntil"].is_string());
    app.patch(
        "/api/products/1",
        Some(&admin),
        json!({"description": "Rotada"}),
    )
    .await;
    deliver(&app).await;
    let during = receiver.got()[0].clone();
    assert_eq!(during.signature.split(' ').count(), 2, "{during:?}");
    assert!(during.signed_by(&old) && during.signed_by(&new));
    app.clock.advance(Duration::hours(25));
    let admin = app.admin_token().await;
    let r = app
        .patch(
            "/api/products/1",
            Some(&admin),
            json!({"description": "Después"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    deliver(&app).await;
    let after = receiver.got()[1].clone();
    assert_eq!(after.signature.split(' ').count(), 1, "{after:?}");
    assert!(after.signed_by(&new) && !after.signed_by(&old));
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_without_a_connection() {
    // Private targets not allowed (the production default).
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://127.0.0.1:9/hook",
        "http://[::ffff:10.0.0.1]/hook",
    ] {
        let r = app
            .post(
                "/api/admin/webhooks",
                Some(&admin),
                json!({"url": url, "eventTypes": ["product.updated"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.text);
        assert!(r.has_detail("url", "address_not_allowed"), "{}", r.text);
    }
    // A name is checked where it resolves, at every delivery: localhost is loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (id, _) = endpoint(
        &app,
        &admin,
        &format!("http://localhost:{port}/hook"),
        &["product.updated"],
    )
    .await;
    app.patch(
        "/api/products/1",
        Some(&admin),
        json!({"description": "SSRF"}),
    )
    .await;
    deliver(&app).await;
    let r = app
        .get(
            &format!("/api/admin/webhooks/{id}/deliveries"),
            Some(&admin),
        )
        .await;
    let attempt = &r.body["items"][0]["attemptLog"][0];
    assert!(attempt["status"].is_null(), "{}", r.text);
    assert!(
        attempt["error"].as_str().unwrap().contains("refused"),
        "{}",
        r.text
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a refused address was connected to"
    );
    assert_eq!(
        app.metric("webhook_deliveries_total", "outcome=\"refused\"")
            .await,
        1.0
    );
}

#[tokio::test]
async fn endpoints_are_managed_by_admins_or_a_webhooks_manage_key_only() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let key_for = |scopes: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let r = app
                .post(
                    "/api/admin/api-keys",
                    Some(&admin),
                    json!({"name": "hooks", "scopes": scopes}),
                )
                .await;
            r.body["key"].as_str().unwrap().to_string()
        }
    };
    let manage = key_for(json!(["webhooks:manage"])).await;
    let orders = key_for(json!(["orders:read"])).await;
    let body = json!({"url": "https://erp.example.cl/hooks", "eventTypes": ["order.paid"]});
    let r = app
        .post("/api/admin/webhooks", Some(&orders), body.clone())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(
        r.has_detail("webhooks:manage", "missing_scope"),
        "{}",
        r.text
    );
    let r = app
        .post("/api/admin/webhooks", Some(&manage), body.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let customer = app.customer_token().await;
    let r = app.get("/api/admin/webhooks", Some(&customer)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Input is checked: unknown event types, bad URLs.
    let r = app
        .post(
            "/api/admin/webhooks",
            Some(&admin),
            json!({"url": "ftp://x.example.cl", "eventTypes": ["order.paid", "order.exploded"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("url", "insecure_scheme"), "{}", r.text);
    assert!(
        r.has_detail("eventTypes[1]", "unknown_event_type"),
        "{}",
        r.text
    );
    // GraphQL twin, and deletion.
    let r = app
        .gql(
            Some(&manage),
            "{ webhooks { total items { id url eventTypes } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.body["data"]["webhooks"]["total"], 1, "{}", r.text);
    let id = r.body["data"]["webhooks"]["items"][0]["id"]
        .as_i64()
        .unwrap();
    let r = app
        .delete(&format!("/api/admin/webhooks/{id}"), Some(&manage))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM webhook_endpoints")
            .await,
        0
    );
}

#[tokio::test]
async fn stock_falling_low_is_an_event_from_a_sale_or_an_edit_and_24h_of_failures_disable() {
    let app = spawn().await;
    let receiver = Receiver::start().await;
    let admin = app.admin_token().await;
    let (id, secret) = endpoint(&app, &admin, &receiver.url, &["stock.low"]).await;
    let variant = variant_id(&app, "WW-FEM-1G").await;
    let set_stock = |stock: i64| {
        let (app, admin) = (&app, admin.clone());
        async move {
            let r = app
                .patch(
                    &format!("/api/variants/{variant}"),
                    Some(&admin),
                    json!({"stock": stock}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    };
    set_stock(6).await;
    let customer = app.customer_token().await;
    paid_order(&app, &customer, "WW-FEM-1G", 1).await;
    deliver(&app).await;
    set_stock(20).await;
    set_stock(3).await;
    set_stock(2).await;
    deliver(&app).await;
    let got = receiver.got();
    assert_eq!(receiver.types(), ["stock.low", "stock.low"], "{got:?}");
    assert!(got.iter().all(|r| r.signed_by(&secret)));
    let data: Vec<Value> = got.iter().map(|r| r.json()["data"].clone()).collect();
    assert_eq!(data[0]["variantId"], variant);
    assert_eq!(data[0]["stock"], 5);
    assert_eq!(data[0]["threshold"], 5);
    assert_eq!(data[1]["stock"], 3);

    // A receiver that fails every attempt for a day is disabled (and audited).
    receiver.status.store(503, Ordering::SeqCst);
    set_stock(20).await;
    set_stock(1).await;
    deliver(&app).await;
    app.clock.advance(Duration::hours(25));
    run_jobs(&app).await;
    let admin = app.admin_token().await;
    let one = app
        .get(&format!("/api/admin/webhooks/{id}"), Some(&admin))
        .await;
    assert_eq!(one.body["isActive"], false, "{}", one.text);
    assert_eq!(one.body["disabledReason"], "failing", "{}", one.text);
    assert!(one.body["failingSince"].is_string());
    let audit = app
        .get(
            "/api/admin/logs?action=webhook_endpoint.disabled",
            Some(&admin),
        )
        .await;
    assert_eq!(
        audit.body["items"][0]["meta"]["reason"], "failing",
        "{}",
        audit.text
    );
}

#[tokio::test]
async fn an_endpoint_the_server_disables_is_mailed_to_every_admin() {
    let smtp = crate::smtp::SmtpSim::start().await;
    let mut vars = crate::mail::smtp_env(&smtp);
    vars.push(("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true".into()));
    let app = crate::mail::spawn_with_owned(&vars).await;
    let receiver = Receiver::start().await;
    receiver.status.store(410, Ordering::SeqCst);
    let admin = app.admin_token().await;
    let (id, secret) = endpoint(&app, &admin, &receiver.url, &["product.updated"]).await;
    app.patch(
        "/api/products/1",
        Some(&admin),
        json!({"description": "410"}),
    )
    .await;
    deliver(&app).await;
    deliver(&app).await;
    let notices: Vec<_> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.subject().is_some_and(|s| s.contains("desactivado")))
        .collect();
    assert_eq!(notices.len(), 1, "one admin, one notice");
    let text = notices[0].body_text(0).unwrap().to_string();
    assert!(
        text.contains(&format!("endpoint de webhooks {id} (127.0.0.1)")),
        "{text}"
    );
    assert!(text.contains("410 Gone"), "{text}");
    assert!(!text.contains(&secret[6..]));
    let to: Vec<String> = smtp
        .received()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.data).contains("desactivado"))
        .flat_map(|r| r.to.clone())
        .collect();
    assert_eq!(to, vec![ADMIN_EMAIL.to_string()]);
}
