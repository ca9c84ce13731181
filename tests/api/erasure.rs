//! Erasure of a customer's account (Ley 21.719): the request with re-authentication, immediate
//! revocation, the grace period and its cancellation, orders that block it, the job that deletes
//! and pseudonymizes (checked by scanning every column of every table), an admin running it early.

use chrono::Duration;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::mail::{deliver, mail_jobs, run_jobs, smtp_env, spawn_with_owned};
use crate::medicinal::submit;
use crate::smtp::SmtpSim;

const NAME: &str = "Valentina Quispe Huanca";
const EMAIL: &str = "valentina.quispe@example.cl";
const PASSWORD: &str = "secreto123";
const STREET: &str = "Pasaje Los Quillayes 4821";
const NOTES: &str = "Depto 1203, timbre malo";

async fn ask(app: &TestApp, token: &str, body: Value) -> Resp {
    app.post("/api/me/deletion-request", Some(token), body)
        .await
}

async fn cancel(app: &TestApp, body: Value) -> Resp {
    app.call(Method::DELETE, "/api/me/deletion-request", None, Some(body))
        .await
}

/// Registers the customer with a name, RUT and phone of their own and signs in a second time:
/// (first token, second token, id).
async fn valentina(app: &TestApp) -> (String, String, i64) {
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"name": NAME, "email": EMAIL, "password": PASSWORD, "rut": "12.345.678-5", "acceptPrivacyPolicy": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let first = r.body["accessToken"].as_str().unwrap().to_string();
    let id = r.body["user"]["id"].as_i64().unwrap();
    let r = app
        .patch("/api/me", Some(&first), json!({"phone": "+56987654321"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let second = app.login(EMAIL, PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    (first, second, id)
}

/// An address (Valentina's with her notes); its id.
async fn address(app: &TestApp, token: &str, street: &str) -> i64 {
    let mut body =
        json!({"name": "Casa", "addressLine": street, "comuna": "Ñuñoa", "region": "RM"});
    if street == STREET {
        body["notes"] = json!(NOTES);
    }
    let r = app.post("/api/addresses", Some(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// An order to `address_id`, paid with the test provider; its id.
async fn paid_to(app: &TestApp, token: &str, address_id: i64, sku: &str) -> i64 {
    let vid = variant_id(app, sku).await;
    let o = app
        .post(
            "/api/checkout/confirm",
            Some(token),
            json!({"items": [{"variantId": vid, "quantity": 1}], "addressId": address_id, "shippingMethod": "starken"}),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    let id = o.body["id"].as_i64().unwrap();
    let s = app
        .post(
            "/api/payments/start",
            Some(token),
            json!({"orderId": id, "provider": "test"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let r = app
        .post(
            "/api/payments/confirm",
            Some(token),
            json!({"orderId": id, "provider": "test", "params": {"mock": "paid"}}),
        )
        .await;
    assert_eq!(r.body["status"], "paid", "{}", r.text);
    id
}

async fn deliver_order(app: &TestApp, admin: &str, id: i64) {
    for status in ["shipped", "delivered"] {
        let r = app
            .patch(
                &format!("/api/admin/orders/{id}"),
                Some(admin),
                json!({"status": status}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}

/// Every (table, column) of the database.
async fn every_column(app: &TestApp) -> Vec<(String, String)> {
    let db = &app.state.db;
    let backend = db.get_database_backend();
    let q = |sql: &str| sea_orm::Statement::from_string(backend, sql.to_string());
    let mut out = Vec::new();
    if backend == sea_orm::DatabaseBackend::Postgres {
        for r in db
            .query_all_raw(q("SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"))
            .await
            .unwrap()
        {
            out.push((
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            ));
        }
    } else {
        let tables: Vec<String> = db
            .query_all_raw(q("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index(0).unwrap())
            .collect();
        for t in tables {
            for r in db
                .query_all_raw(q(&format!("SELECT name FROM pragma_table_info('{t}')")))
                .await
                .unwrap()
            {
                out.push((t.clone(), r.try_get_by_index(0).unwrap()));
            }
        }
    }
    assert!(out.len() > 100, "{} columns", out.len());
    out
}

/// Where `needle` occurs, as `table.column` (every column read as text).
async fn occurrences(app: &TestApp, columns: &[(String, String)], needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (t, c) in columns {
        let n = app
            .scalar_i64(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM \"{t}\" WHERE CAST(\"{c}\" AS TEXT) LIKE '%{}%'",
                needle.replace('\'', "''")
            ))
            .await;
        if n > 0 {
            found.push(format!("{t}.{c}"));
        }
    }
    found
}

async fn analytics(app: &TestApp, admin: &str) -> Value {
    let sales = app
        .get("/api/admin/analytics/salesByDay?days=30", Some(admin))
        .await;
    assert_eq!(sales.status, StatusCode::OK, "{}", sales.text);
    let sold: Vec<Value> = sales.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["ordersCount"].as_i64().unwrap() > 0)
        .cloned()
        .collect();
    let top = app
        .get("/api/admin/analytics/topProducts?limit=10", Some(admin))
        .await;
    let by_status = app
        .get("/api/admin/analytics/ordersByStatus", Some(admin))
        .await;
    json!({"sold": sold, "total": sales.body["totalSalesCents"], "top": top.body, "byStatus": by_status.body})
}

#[tokio::test]
async fn asking_ends_every_session_at_once_and_cancelling_in_the_grace_restores_the_account() {
    let app = TestApp::spawn().await;
    let (first, second, id) = valentina(&app).await;
    let addr = address(&app, &first, STREET).await;

    // Re-authentication: the password is required and checked.
    let r = ask(&app, &first, json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = ask(&app, &first, json!({"password": "incorrecta1"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("password", "incorrect"), "{}", r.text);
    assert_eq!(
        app.get("/api/me", Some(&second)).await.status,
        StatusCode::OK
    );

    let r = ask(&app, &first, json!({"password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["state"], "pending");
    let request = r.body["id"].as_i64().unwrap();
    let requested: chrono::DateTime<chrono::Utc> =
        r.body["requestedAt"].as_str().unwrap().parse().unwrap();
    let scheduled: chrono::DateTime<chrono::Utc> =
        r.body["scheduledFor"].as_str().unwrap().parse().unwrap();
    assert_eq!(scheduled - requested, Duration::days(7));

    // Both sessions end at once; sign-in is refused with the reason; no refresh either.
    for t in [&first, &second] {
        assert_eq!(
            app.get("/api/me", Some(t)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM auth_tokens WHERE user_id = {id} AND revoked_at IS NULL"
        ))
        .await,
        0
    );
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": EMAIL, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN, "{}", login.text);
    assert!(login.has_detail("account", "erasure_requested"));
    assert!(login.text.contains("DELETE /api/me/deletion-request"));
    // A wrong password learns nothing about it.
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": EMAIL, "password": "incorrecta1"}),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.text);

    // The job waits for the end of the grace period; the mail says when and how to cancel.
    let job_run_at = app
        .scalar_string(&format!(
            "SELECT CAST(run_at AS TEXT) FROM jobs WHERE unique_key = 'privacy.erasure:{request}'"
        ))
        .await;
    assert!(job_run_at.is_some());
    deliver(&app).await;
    let mails: Vec<_> = mail_jobs(&app)
        .await
        .into_iter()
        .filter(|j| j.payload["template"] == "erasure_scheduled")
        .collect();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].payload["to"], EMAIL);
    assert!(mails[0].payload["context"]["scheduledFor"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM privacy_requests WHERE id = {request} AND state = 'pending'"
        ))
        .await,
        1,
        "nothing ran before the grace period ended"
    );

    // Admins see it, with when it runs.
    let admin = app.admin_token().await;
    let list = app
        .get("/api/admin/privacy-requests?kind=erasure", Some(&admin))
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["userEmail"], EMAIL);
    assert_eq!(
        list.body["items"][0]["scheduledFor"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        scheduled
    );

    // Cancelling: credentials, not a token.
    let r = cancel(&app, json!({"email": EMAIL, "password": "incorrecta1"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = cancel(
        &app,
        json!({"email": "nadie@example.cl", "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    app.clock.advance(Duration::days(6));
    let r = cancel(&app, json!({"email": EMAIL, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = cancel(&app, json!({"email": EMAIL, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE unique_key = 'privacy.erasure:{request}'"
        ))
        .await,
        0,
        "the job is gone with the request"
    );

    // Nothing was lost: sign in, the address and profile are there.
    let token = app.login(EMAIL, PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["name"], NAME);
    assert_eq!(me.body["rut"], "12345678-5");
    let addresses = app.get("/api/addresses", Some(&token)).await;
    assert_eq!(addresses.body["items"][0]["id"], addr, "{}", addresses.text);
    assert_eq!(addresses.body["items"][0]["addressLine"], STREET);
    app.clock.advance(Duration::days(2));
    run_jobs(&app).await;
    assert_eq!(
        app.scalar_string(&format!("SELECT email FROM users WHERE id = {id}"))
            .await
            .as_deref(),
        Some(EMAIL)
    );

    // Audited, the cancellation by the customer themselves.
    let actions: Vec<(String, Option<i64>)> = app
        .state
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            app.state.db.get_database_backend(),
            format!("SELECT action, actor_user_id FROM system_logs WHERE entity = 'user' AND entity_id = {id} AND action LIKE 'privacy.erasure%' ORDER BY id"),
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("privacy.erasure_requested".to_string(), Some(id)),
            ("privacy.erasure_cancelled".to_string(), Some(id)),
        ]
    );

    // GraphQL asks the same way; an admin cannot.
    let token = app.login(EMAIL, PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = app.admin_token().await;
    let g = app
        .gql(
            Some(&token),
            "mutation($input: DeletionRequestInput!) { requestAccountDeletion(input: $input) { id state scheduledFor } }",
            json!({"input": {"password": PASSWORD}}),
        )
        .await;
    assert_eq!(
        g.body["data"]["requestAccountDeletion"]["state"], "pending",
        "{}",
        g.text
    );
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = ask(&app, &admin, json!({"password": ADMIN_PASSWORD})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

#[tokio::test]
async fn an_order_not_over_blocks_the_erasure_and_is_named() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, id) = valentina(&app).await;
    let (pending, _) = order_and_start(&app, &token, "NL-AUTO-1G", 1, None).await;
    let addr = address(&app, &token, STREET).await;
    let paid = paid_to(&app, &token, addr, "NL-AUTO-5G").await;

    let r = ask(&app, &token, json!({"password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.has_detail(&format!("orders.{pending}"), "pending_payment"),
        "{}",
        r.text
    );
    assert!(
        r.has_detail(&format!("orders.{paid}"), "not_delivered"),
        "{}",
        r.text
    );
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&pending.to_string()) && message.contains(&paid.to_string()),
        "{message}"
    );
    // Nothing happened: still signed in, no request.
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM privacy_requests WHERE user_id = {id}"
        ))
        .await,
        0
    );

    // Once they end, it may be asked.
    let r = app
        .post(
            &format!("/api/orders/{pending}/cancel"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    deliver_order(&app, &admin, paid).await;
    let r = ask(&app, &token, json!({"password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
}

#[tokio::test]
async fn after_the_grace_nothing_personal_is_left_and_the_tax_records_stay_under_a_pseudonym() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let admin = app.admin_token().await;
    let (token, second, id) = valentina(&app).await;
    // A mistyped password leaves an attempt in the lockout's ledger.
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": EMAIL, "password": "equivocada1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let addr = address(&app, &token, STREET).await;
    let order = paid_to(&app, &token, addr, "NL-AUTO-5G").await;
    deliver_order(&app, &admin, order).await;
    // A prescription, approved, with its file.
    let pdf = b"%PDF-1.4\n% receta de Valentina\n%%EOF\n".to_vec();
    let form = Form::new()
        .text("docType", "receta")
        .text("acceptHealthDataProcessing", "true")
        .part("file", Part::bytes(pdf).file_name("receta.pdf"));
    let r = submit(&app, &token, form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let doc = r.body["id"].as_i64().unwrap();
    let r = app
        .patch(
            &format!("/api/admin/medicinal/docs/{doc}"),
            Some(&admin),
            json!({"status": "approved", "notes": "Receta vigente"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let stored = app
        .state
        .config
        .storage.upload_dir
        .join("private")
        .join(
            app.scalar_string(&format!(
                "SELECT f.storage_key FROM files f JOIN medicinal_documents d ON d.file_id = f.id WHERE d.id = {doc}"
            ))
            .await
            .unwrap(),
        );
    assert!(stored.exists());
    // A review, a cart.
    let nl = app
        .scalar_i64("SELECT id FROM products WHERE slug = 'northern-lights-auto'")
        .await;
    let r = app
        .post(
            &format!("/api/products/{nl}/reviews"),
            Some(&token),
            json!({"rating": 4, "title": "Muy buenas", "body": "Germinaron todas, gracias"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call(
            Method::PUT,
            "/api/cart/items",
            Some(&token),
            Some(json!({"variantId": variant_id(&app, "WW-FEM-1G").await, "quantity": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Someone else, who must not be touched.
    let (other, other_id, _) = app.register("otra@example.cl").await;
    let other_addr = address(&app, &other, "Avenida Grecia 100").await;
    let other_order = paid_to(&app, &other, other_addr, "NL-AUTO-1G").await;
    deliver(&app).await;

    let phone = app
        .scalar_string(&format!(
            "SELECT phone FROM user_profiles WHERE user_id = {id}"
        ))
        .await
        .unwrap();
    let rut = app
        .scalar_string(&format!("SELECT rut FROM users WHERE id = {id}"))
        .await
        .unwrap();
    let needles = [NAME, EMAIL, rut.as_str(), phone.as_str(), STREET, NOTES];
    let columns = every_column(&app).await;
    // The scan finds them before (it is not blind), and where.
    for n in needles {
        assert!(
            !occurrences(&app, &columns, n).await.is_empty(),
            "{n} is stored somewhere before"
        );
    }
    let before = analytics(&app, &admin).await;
    let order_row = |app: &TestApp| {
        let sql = format!("SELECT CAST(subtotal_cents AS BIGINT), CAST(total_cents AS BIGINT) FROM orders WHERE id = {order}");
        let db = app.state.db.clone();
        async move {
            let r = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    sql,
                ))
                .await
                .unwrap()
                .unwrap();
            (
                r.try_get_by_index::<i64>(0).unwrap(),
                r.try_get_by_index::<i64>(1).unwrap(),
            )
        }
    };
    let amounts = order_row(&app).await;
    let receipt = |app: &TestApp, admin: &str| {
        let req = app
            .client
            .get(app.url(&format!("/api/orders/{order}/invoice")))
            .bearer_auth(admin);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.bytes().await.unwrap().to_vec()
        }
    };
    let pdf_before = receipt(&app, &admin).await;
    let audit_rows = app
        .scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM system_logs WHERE actor_user_id = {id}"
        ))
        .await;

    let r = ask(&app, &second, json!({"password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let request = r.body["id"].as_i64().unwrap();
    // Not before the grace period ends.
    app.clock.advance(Duration::days(7) - Duration::minutes(1));
    run_jobs(&app).await;
    assert!(stored.exists());
    app.clock.advance(Duration::minutes(2));
    run_jobs(&app).await;

    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let list = app
        .get("/api/admin/privacy-requests?kind=erasure", Some(&admin))
        .await;
    assert_eq!(list.body["items"][0]["id"], request, "{}", list.text);
    assert_eq!(list.body["items"][0]["state"], "ready", "{}", list.text);
    assert!(list.body["items"][0]["completedAt"].is_string());

    // Nothing personal anywhere: every column of every table.
    for n in needles {
        let found = occurrences(&app, &columns, n).await;
        assert!(found.is_empty(), "{n} is still in {found:?}");
    }
    assert!(
        !stored.exists(),
        "the prescription's file is gone from storage"
    );
    for table in [
        "medicinal_documents",
        "addresses",
        "carts",
        "sessions",
        "auth_tokens",
        "user_profiles",
        "idempotency_keys",
        "account_links",
        "credential_attempts",
    ] {
        assert_eq!(
            app.scalar_i64(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM {table} WHERE user_id = {id}"
            ))
            .await,
            0,
            "{table}"
        );
    }
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM files WHERE owner_id = {id}"
        ))
        .await,
        0
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM consents WHERE user_id = {id} AND (ip IS NOT NULL OR user_agent IS NOT NULL)"
        ))
        .await,
        0
    );
    assert!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM consents WHERE user_id = {id}"
        ))
        .await
            >= 1,
        "consents stay as the record they were given"
    );

    // The tombstone, and the order under its pseudonym with the same amounts and receipt.
    let alias = app
        .scalar_string(&format!("SELECT email FROM users WHERE id = {id}"))
        .await
        .unwrap();
    assert!(
        alias.starts_with("cliente-") && alias.len() == 20,
        "{alias}"
    );
    assert_eq!(
        app.scalar_string(&format!("SELECT name FROM users WHERE id = {id}"))
            .await
            .as_deref(),
        Some("Cliente eliminado")
    );
    assert!(app
        .scalar_string(&format!("SELECT rut FROM users WHERE id = {id}"))
        .await
        .is_none());
    let shipping: Value = serde_json::from_str(
        &app.scalar_string(&format!(
            "SELECT CAST(shipping_address AS TEXT) FROM orders WHERE id = {order}"
        ))
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(shipping["addressLine"], alias.as_str());
    assert_eq!(shipping["comuna"], "Ñuñoa");
    assert_eq!(order_row(&app).await, amounts);
    assert_eq!(
        receipt(&app, &admin).await,
        pdf_before,
        "the receipt is unchanged"
    );
    assert_eq!(
        analytics(&app, &admin).await,
        before,
        "sales analytics unchanged"
    );
    let order_view = app.get(&format!("/api/orders/{order}"), Some(&admin)).await;
    assert_eq!(order_view.status, StatusCode::OK, "{}", order_view.text);
    assert_eq!(order_view.body["status"], "delivered");
    // The audit log keeps its rows, the actor being the tombstone.
    assert!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM system_logs WHERE actor_user_id = {id}"
        ))
        .await
            >= audit_rows
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM system_logs WHERE action = 'privacy.erasure_completed' AND entity_id = {id}"
        ))
        .await,
        1
    );
    // The review keeps its rating, not its words, signed "Cliente eliminado".
    let reviews = app.get(&format!("/api/products/{nl}/reviews"), None).await;
    let mine = reviews.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["userId"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{}", reviews.text));
    assert_eq!(mine["rating"], 4);
    assert_eq!(mine["authorName"], "Cliente eliminado");
    assert_eq!(mine["body"], "");
    assert!(mine["title"].is_null());

    // The last mail went to the address before it was erased.
    let farewell: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t.contains(EMAIL)))
        .filter(|m| String::from_utf8_lossy(&m.data).contains("Eliminamos tu cuenta"))
        .collect();
    assert_eq!(farewell.len(), 1);
    // Gone for good: no sign-in, no cancellation.
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": EMAIL, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.text);
    let r = cancel(&app, json!({"email": EMAIL, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // The other customer is untouched.
    assert_eq!(
        app.scalar_string(&format!("SELECT email FROM users WHERE id = {other_id}"))
            .await
            .as_deref(),
        Some("otra@example.cl")
    );
    let other_shipping = app
        .scalar_string(&format!(
            "SELECT CAST(shipping_address AS TEXT) FROM orders WHERE id = {other_order}"
        ))
        .await
        .unwrap();
    assert!(
        other_shipping.contains("Avenida Grecia 100"),
        "{other_shipping}"
    );
}

#[tokio::test]
async fn an_admin_may_run_a_pending_erasure_early() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, _, id) = valentina(&app).await;
    let r = ask(&app, &token, json!({"password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let request = r.body["id"].as_i64().unwrap();
    let customer = app.customer_token().await;
    let path = format!("/api/admin/privacy-requests/{request}/process");
    assert_eq!(
        app.post(&path, Some(&customer), json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app.post(&path, Some(&admin), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "ready", "{}", r.text);
    assert_eq!(r.body["kind"], "erasure");
    assert!(r.body["userEmail"]
        .as_str()
        .unwrap()
        .starts_with("cliente-"));
    assert!(app
        .scalar_string(&format!(
            "SELECT CAST(erased_at AS TEXT) FROM users WHERE id = {id}"
        ))
        .await
        .is_some());
    // Done is done.
    let again = app.post(&path, Some(&admin), json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(
        app.post(
            "/api/admin/privacy-requests/99999/process",
            Some(&admin),
            json!({})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn with_two_factor_on_asking_and_cancelling_take_a_code_too() {
    use crate::two_factor::{code, enable, wrong_code};
    let app = TestApp::spawn().await;
    let (token, id, _) = app.register("dosfa@example.cl").await;
    let (secret, recovery) = enable(&app, &token).await;
    // The code that enabled it is spent; the next one is due.
    app.clock.advance(Duration::seconds(31));

    let r = ask(&app, &token, json!({"password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("code", "required"), "{}", r.text);
    let r = ask(
        &app,
        &token,
        json!({"password": PASSWORD, "code": wrong_code(&app, &secret)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"]["details"][0]["field"], "code", "{}", r.text);
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM privacy_requests WHERE user_id = {id}"
        ))
        .await,
        0
    );
    let r = ask(
        &app,
        &token,
        json!({"password": PASSWORD, "code": code(&app, &secret)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);

    // Cancelling asks for the second factor as well; a recovery code does.
    let creds = json!({"email": "dosfa@example.cl", "password": PASSWORD});
    let r = cancel(&app, creds.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("code", "required"), "{}", r.text);
    let mut with_code = creds.clone();
    with_code["code"] = json!(recovery[0]);
    let r = cancel(&app, with_code).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    // Signing in works again (with its second step).
    let login = app.post("/api/auth/login", None, creds).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.body["mfaRequired"], true, "{}", login.text);
}
