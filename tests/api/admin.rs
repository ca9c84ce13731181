//! The audit log and admin analytics, checked against orders the tests create.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn order_total(app: &TestApp, id: i64) -> i64 {
    app.scalar_i64(&format!("SELECT total_cents FROM orders WHERE id = {id}"))
        .await
}

async fn line_totals(app: &TestApp, sku: &str) -> (i64, i64) {
    let units = app
        .scalar_i64(&format!(
            "SELECT CAST(SUM(oi.quantity) AS BIGINT) FROM order_items oi JOIN orders o ON o.id = oi.order_id \
             JOIN product_variants v ON v.id = oi.variant_id WHERE v.sku = '{sku}' AND o.status IN ('paid', 'shipped', 'delivered')"
        ))
        .await;
    let revenue = app
        .scalar_i64(&format!(
            "SELECT CAST(SUM(oi.line_total_cents) AS BIGINT) FROM order_items oi JOIN orders o ON o.id = oi.order_id \
             JOIN product_variants v ON v.id = oi.variant_id WHERE v.sku = '{sku}' AND o.status IN ('paid', 'shipped', 'delivered')"
        ))
        .await;
    (units, revenue)
}

#[tokio::test]
async fn analytics_match_the_orders_placed() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("analitica@example.cl").await;
    // Yesterday: one paid order (1 × NL-AUTO-1G) and one left pending.
    let yesterday_paid = paid_order(&app, &token, "NL-AUTO-1G", 1).await;
    let (pending, _) = order_and_start(&app, &token, "NL-AUTO-5G", 1, None).await;
    app.clock.advance(Duration::days(1));
    let token = app.login("analitica@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = app.admin_token().await;
    // Today: two paid orders of White Widow (2 and 3 units), one shipped afterwards, and a cancelled one.
    let a = paid_order(&app, &token, "WW-FEM-1G", 2).await;
    let b = paid_order(&app, &token, "WW-FEM-1G", 3).await;
    let r = app
        .patch(
            &format!("/api/admin/orders/{b}"),
            Some(&admin),
            json!({"status": "shipped"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (cancelled, _) = order_and_start(&app, &token, "WW-FEM-5G", 1, None).await;
    let r = app
        .post(
            &format!("/api/orders/{cancelled}/cancel"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Sales by day: every day present, zeros included, pending and cancelled orders left out.
    let r = app
        .get("/api/admin/analytics/salesByDay?days=3", Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let today = app.clock.now().date_naive();
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let day = |i: usize| &items[i];
    assert_eq!(
        day(0)["date"],
        (today - Duration::days(2)).format("%Y-%m-%d").to_string()
    );
    assert_eq!(day(0)["ordersCount"], 0);
    assert_eq!(day(0)["totalSalesCents"], 0);
    assert_eq!(
        day(1)["date"],
        (today - Duration::days(1)).format("%Y-%m-%d").to_string()
    );
    assert_eq!(day(1)["ordersCount"], 1);
    assert_eq!(
        day(1)["totalSalesCents"],
        order_total(&app, yesterday_paid).await
    );
    assert_eq!(day(2)["date"], today.format("%Y-%m-%d").to_string());
    assert_eq!(day(2)["ordersCount"], 2);
    let today_total = order_total(&app, a).await + order_total(&app, b).await;
    assert_eq!(day(2)["totalSalesCents"], today_total);
    assert_eq!(r.body["ordersCount"], 3);
    assert_eq!(
        r.body["totalSalesCents"],
        today_total + order_total(&app, yesterday_paid).await
    );
    assert_eq!(
        app.get("/api/admin/analytics/salesByDay", Some(&admin))
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        30,
        "30 days by default"
    );

    // Top products: White Widow (5 units) before Northern Lights (1 unit).
    let r = app
        .get("/api/admin/analytics/topProducts?limit=10", Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let top = r.body["items"].as_array().unwrap();
    assert_eq!(top.len(), 2, "{}", r.text);
    let (ww_units, ww_revenue) = line_totals(&app, "WW-FEM-1G").await;
    assert_eq!((ww_units, top[0]["unitsSold"].as_i64().unwrap()), (5, 5));
    assert_eq!(top[0]["revenueCents"], ww_revenue);
    assert_eq!(top[0]["productName"], "White Widow Feminizada");
    let (nl_units, nl_revenue) = line_totals(&app, "NL-AUTO-1G").await;
    assert_eq!(top[1]["unitsSold"], nl_units);
    assert_eq!(top[1]["revenueCents"], nl_revenue);
    let r = app
        .get("/api/admin/analytics/topProducts?limit=1", Some(&admin))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);

    // Orders by status: every status listed.
    let r = app
        .get("/api/admin/analytics/ordersByStatus", Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let counts: Vec<(String, i64)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["status"].as_str().unwrap().to_string(),
                i["count"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("pending", 1),
        ("paid", 2),
        ("shipped", 1),
        ("delivered", 0),
        ("cancelled", 1),
        ("failed", 0),
    ];
    for (status, n) in expected {
        assert!(
            counts.contains(&(status.to_string(), n)),
            "{status}: {counts:?}"
        );
    }
    assert_eq!(counts.len(), 6);
    assert_eq!(r.body["total"], 5);
    let _ = pending;

    // Low stock: the seeded 10g variants with 4 and 3 units, fewest first.
    let r = app
        .get("/api/admin/analytics/lowStock?threshold=4", Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let skus: Vec<(&str, i64)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sku"].as_str().unwrap(), i["stock"].as_i64().unwrap()))
        .collect();
    assert_eq!(skus, vec![("BAL-FLOR-10G", 3), ("WW-FEM-10G", 4)]);
    assert_eq!(r.body["items"][0]["product"], "Flor THC:CBD Balanceada");
    assert_eq!(r.body["items"][0]["optionLabel"], "10g");
    assert_eq!(r.body["threshold"], 4);

    // Bounds and access.
    for (path, field) in [
        ("/api/admin/analytics/salesByDay?days=0", "days"),
        ("/api/admin/analytics/salesByDay?days=400", "days"),
        ("/api/admin/analytics/topProducts?limit=101", "limit"),
        ("/api/admin/analytics/lowStock?threshold=-1", "threshold"),
    ] {
        let r = app.get(path, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        assert!(r.has_detail(field, "out_of_range"), "{path}: {}", r.text);
    }
    for path in [
        "/api/admin/analytics/salesByDay",
        "/api/admin/analytics/topProducts",
        "/api/admin/analytics/ordersByStatus",
        "/api/admin/analytics/lowStock",
    ] {
        assert_eq!(
            app.get(path, Some(&token)).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(app.get(path, None).await.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn the_audit_log_filters_by_actor_action_entity_and_date() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, customer_id, _) = app.register("auditado@example.cl").await;
    let order = paid_order(&app, &token, "WW-FEM-1G", 1).await;
    let r = app
        .patch(
            &format!("/api/admin/orders/{order}"),
            Some(&admin),
            json!({"status": "shipped"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // The order's history, newest first, with who did what.
    let r = app
        .get(
            &format!("/api/admin/logs?entity=order&entityId={order}&action=order.status_changed"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(r.body["total"], 2, "{}", r.text);
    assert_eq!(items[0]["meta"]["from"], "paid");
    assert_eq!(items[0]["meta"]["to"], "shipped");
    assert_eq!(items[0]["actorEmail"], "admin@dispensario.local");
    assert_eq!(items[1]["meta"]["from"], "pending");
    assert_eq!(items[1]["meta"]["to"], "paid");
    assert!(items[0]["traceId"].is_string());
    assert!(items[0]["id"].as_i64() > items[1]["id"].as_i64());

    // By actor: an id or an email give the same rows, all of that user.
    let by_id = app
        .get(
            &format!("/api/admin/logs?actor={customer_id}&pageSize=100"),
            Some(&admin),
        )
        .await;
    let by_email = app
        .get(
            "/api/admin/logs?actor=AUDITADO@example.cl&pageSize=100",
            Some(&admin),
        )
        .await;
    assert_eq!(by_id.body["total"], by_email.body["total"]);
    assert!(
        by_id.body["total"].as_i64().unwrap() >= 3,
        "register, order, payment: {}",
        by_id.text
    );
    for item in by_id.body["items"].as_array().unwrap() {
        assert_eq!(item["actorUserId"], customer_id);
        assert_eq!(item["actorEmail"], "auditado@example.cl");
    }
    let actions: Vec<&str> = by_id.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"auth.register") && actions.contains(&"order.created"),
        "{actions:?}"
    );
    assert!(
        !by_id.text.contains("secreto123") && !by_id.text.to_lowercase().contains("token\":\"ey"),
        "no secrets in the audit trail"
    );

    // By action prefix.
    let r = app
        .get("/api/admin/logs?action=order.*&pageSize=100", Some(&admin))
        .await;
    let items = r.body["items"].as_array().unwrap();
    assert!(items.len() >= 3);
    assert!(items
        .iter()
        .all(|i| i["action"].as_str().unwrap().starts_with("order.")));

    // Paging and dates.
    let r = app
        .get("/api/admin/logs?pageSize=1&page=2", Some(&admin))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["page"], 2);
    let future = (app.clock.now() + Duration::hours(1)).to_rfc3339();
    let r = app
        .call(
            reqwest::Method::GET,
            &format!("/api/admin/logs?dateFrom={}", urlencode(&future)),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.body["total"], 0, "{}", r.text);
    let past = (app.clock.now() - Duration::hours(1)).to_rfc3339();
    let r = app
        .get(
            &format!(
                "/api/admin/logs?dateFrom={}&dateTo={}",
                urlencode(&future),
                urlencode(&past)
            ),
            Some(&admin),
        )
        .await;
    assert!(r.has_detail("dateTo", "before_date_from"), "{}", r.text);

    // Webhook deliveries are logged too, without their payload.
    let r = app
        .send(
            app.client
                .post(app.url("/webhooks/payments/test"))
                .header("content-type", "application/json")
                .header("X-Test-Signature", "forged")
                .body(json!({"eventId": "x", "providerTxnId": "y", "status": "paid", "amountCents": 1, "timestamp": app.clock.now().timestamp()}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .get("/api/admin/logs?action=webhook.received", Some(&admin))
        .await;
    let last: &Value = &r.body["items"][0];
    assert_eq!(
        last["meta"],
        json!({"provider": "test", "outcome": "rejected_signature"})
    );

    // Admins only.
    assert_eq!(
        app.get("/api/admin/logs", Some(&token)).await.status,
        StatusCode::FORBIDDEN
    );
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
