//! Sessions a user can see and end: one per login, with its address and user agent; ending one
//! (or the others, or, for an admin, all of a user's) stops its tokens at once.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const EMAIL: &str = "sesiones@example.cl";

/// Logs in from a browser with user agent `ua`: (access token, refresh token).
async fn login_from(app: &TestApp, ua: &str) -> (String, String) {
    let r = app
        .send(
            app.client
                .post(app.url("/api/auth/login"))
                .header("User-Agent", ua)
                .json(&json!({"email": EMAIL, "password": "secreto123"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (
        r.body["accessToken"].as_str().unwrap().to_string(),
        r.body["refreshToken"].as_str().unwrap().to_string(),
    )
}

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/api/me/sessions", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

fn by_agent<'a>(items: &'a [Value], ua: &str) -> &'a Value {
    items
        .iter()
        .find(|s| s["userAgent"] == ua)
        .unwrap_or_else(|| panic!("no session from {ua}: {items:?}"))
}

async fn refresh(app: &TestApp, refresh: &str, ua: &str) -> Resp {
    app.send(
        app.client
            .post(app.url("/api/auth/refresh"))
            .header("User-Agent", ua)
            .json(&json!({"refreshToken": refresh})),
    )
    .await
}

#[tokio::test]
async fn each_login_is_a_session_and_ending_one_stops_its_tokens_at_once() {
    let app = TestApp::spawn().await;
    let (registered, id, _) = app.register(EMAIL).await;
    let firefox = login_from(&app, "Firefox/130").await;
    app.clock.advance(Duration::seconds(5));
    let safari = login_from(&app, "Safari/18").await;

    let items = sessions(&app, &firefox.0).await;
    assert_eq!(items.len(), 3, "{items:?}");
    // Most recently used first; the request's own session marked.
    assert_eq!(items[0]["userAgent"], "Safari/18");
    assert_eq!(by_agent(&items, "Firefox/130")["current"], true);
    assert_eq!(by_agent(&items, "Safari/18")["current"], false);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(items.iter().all(|s| s["ip"] == "127.0.0.1"), "{items:?}");
    let safari_id = by_agent(&items, "Safari/18")["id"].as_i64().unwrap();
    // GraphQL answers the same.
    let g = app
        .gql(
            Some(&firefox.0),
            "{ mySessions { items { id createdAt lastUsedAt ip userAgent current } } }",
            json!({}),
        )
        .await;
    assert_eq!(g.body["data"]["mySessions"]["items"], json!(items));

    // Ending the Safari session: its access and refresh tokens are refused at once.
    let r = app
        .delete(&format!("/api/me/sessions/{safari_id}"), Some(&firefox.0))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.get("/api/me", Some(&safari.0)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&app, &safari.1, "Safari/18").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/me", Some(&firefox.0)).await.status,
        StatusCode::OK
    );
    assert_eq!(sessions(&app, &firefox.0).await.len(), 2);
    // Ended, or someone else's: not found.
    let r = app
        .delete(&format!("/api/me/sessions/{safari_id}"), Some(&firefox.0))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let stranger = app.customer_token().await;
    let own = by_agent(&sessions(&app, &firefox.0).await, "Firefox/130")["id"]
        .as_i64()
        .unwrap();
    let r = app
        .delete(&format!("/api/me/sessions/{own}"), Some(&stranger))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // A refresh keeps the session and marks it used, from where it came.
    app.clock.advance(Duration::minutes(3));
    let r = refresh(&app, &firefox.1, "Firefox/131").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let firefox = (
        r.body["accessToken"].as_str().unwrap().to_string(),
        r.body["refreshToken"].as_str().unwrap().to_string(),
    );
    let items = sessions(&app, &firefox.0).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let now = by_agent(&items, "Firefox/131");
    assert_eq!(now["id"], own);
    assert_eq!(now["current"], true);
    assert!(
        now["lastUsedAt"].as_str() > now["createdAt"].as_str(),
        "{now}"
    );

    // The others end; this one goes on.
    let r = app
        .post(
            "/api/me/sessions/revoke-others",
            Some(&firefox.0),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"revoked": 1}));
    assert_eq!(
        app.get("/api/me", Some(&registered)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let items = sessions(&app, &firefox.0).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["current"], true);

    // An admin sees them and ends them all.
    let r = app
        .get(&format!("/api/users/{id}/sessions"), Some(&firefox.0))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let admin = app.admin_token().await;
    let r = app
        .get(&format!("/api/users/{id}/sessions"), Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["current"], false, "not the admin's");
    let r = app
        .post(
            &format!("/api/users/{id}/sessions/revoke"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"revoked": 1}));
    assert_eq!(
        app.get("/api/me", Some(&firefox.0)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&app, &firefox.1, "Firefox/131").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/users/999999/sessions", Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Audited: who ended which.
    let logs = app
        .get("/api/admin/logs?action=auth.session*", Some(&admin))
        .await;
    let metas: Vec<(&str, &Value)> = logs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["action"].as_str().unwrap(), &i["meta"]))
        .collect();
    assert!(
        metas.contains(&(
            "auth.session_revoked",
            &json!({"sessionId": safari_id, "by": "self"})
        )),
        "{}",
        logs.text
    );
    assert!(metas.contains(&("auth.sessions_revoked", &json!({"count": 1, "by": "self"}))));
    assert!(metas.contains(&("auth.sessions_revoked", &json!({"count": 1, "by": "admin"}))));
}

#[tokio::test]
async fn expired_and_logged_out_sessions_are_not_listed() {
    let app = TestApp::spawn().await;
    app.register(EMAIL).await;
    let a = login_from(&app, "Movil/1").await;
    let b = login_from(&app, "Escritorio/1").await;
    let r = app
        .post("/api/auth/logout", Some(&b.0), json!({"refreshToken": b.1}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let items = sessions(&app, &a.0).await;
    assert_eq!(items.len(), 2, "registration and Movil: {items:?}");
    assert!(items.iter().all(|s| s["userAgent"] != "Escritorio/1"));
    // Past the refresh tokens' lifetime, a session has ended on its own.
    app.clock.advance(Duration::days(31));
    let fresh = login_from(&app, "Nuevo/1").await;
    let items = sessions(&app, &fresh.0).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["userAgent"], "Nuevo/1");
}
