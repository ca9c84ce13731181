//! Concurrency on one database from two server instances (issue 42): the same writes fired at
//! once, half through each instance, answer as a single writer would — never a 500, never a
//! deadlock in PostgreSQL's statistics — and leave money and stock right. On SQLite the same
//! tests run over one file (its writers queue).

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const SKU_A: &str = "NL-AUTO-1G";
const SKU_B: &str = "WW-FEM-1G";

/// Two instances over one fresh database, with 100 units of each test SKU; the admin's token.
async fn two_instances() -> (TestApp, TestApp, String) {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    let admin = a.admin_token().await;
    for sku in [SKU_A, SKU_B] {
        let vid = variant_id(&a, sku).await;
        let r = a
            .patch(
                &format!("/api/variants/{vid}"),
                Some(&admin),
                json!({"stock": 100}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    (a, b, admin)
}

/// Instance `a` for even `i`, `b` for odd.
fn pick<'a>(i: usize, a: &'a TestApp, b: &'a TestApp) -> &'a TestApp {
    if i.is_multiple_of(2) {
        a
    } else {
        b
    }
}

/// Both SKUs, in one line order for even `i` and the other for odd: locking must not depend on it.
fn lines(i: usize) -> &'static [&'static str] {
    if i.is_multiple_of(2) {
        &[SKU_A, SKU_B]
    } else {
        &[SKU_B, SKU_A]
    }
}

async fn stock(app: &TestApp, sku: &str) -> i64 {
    app.scalar_i64(&format!(
        "SELECT CAST(stock AS BIGINT) FROM product_variants WHERE sku = '{sku}'"
    ))
    .await
}

async fn used_count(app: &TestApp, code: &str) -> i64 {
    app.scalar_i64(&format!(
        "SELECT CAST(used_count AS BIGINT) FROM coupons WHERE code = '{code}'"
    ))
    .await
}

async fn order_status(app: &TestApp, order: i64) -> String {
    app.scalar_string(&format!("SELECT status FROM orders WHERE id = {order}"))
        .await
        .unwrap()
}

/// A checkout of one unit of each of `skus` (in that line order) with `coupon`.
async fn checkout_body(app: &TestApp, skus: &[&str], coupon: Option<&str>) -> Value {
    let mut items = Vec::new();
    for sku in skus {
        items.push(json!({"variantId": variant_id(app, sku).await, "quantity": 1}));
    }
    let mut body = json!({"items": items,
        "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"},
        "shippingMethod": "starken"});
    if let Some(c) = coupon {
        body["couponCode"] = json!(c);
    }
    body
}

/// A pending order (both SKUs, lines in `skus` order, with `coupon`) whose test-provider
/// payment is started: (order id, provider transaction id, total).
async fn started_order(
    app: &TestApp,
    token: &str,
    skus: &[&str],
    coupon: Option<&str>,
) -> (i64, String, i64) {
    let body = checkout_body(app, skus, coupon).await;
    let o = app.post("/api/checkout/confirm", Some(token), body).await;
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
    (
        id,
        s.body["providerTxnId"].as_str().unwrap().to_string(),
        o.body["totalCents"].as_i64().unwrap(),
    )
}

/// The signed test-provider webhook paying `txn` with event `event_id`, sent to `app`.
async fn pay_webhook(app: &TestApp, event_id: &str, txn: &str, total: i64) -> Resp {
    let body = event(app, event_id, txn, "paid", total);
    webhook(app, &body, Some(sign(&body))).await
}

/// `n` customers registered on `app`: their tokens.
async fn customers(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..n {
        tokens.push(app.register(&format!("{prefix}{i}@example.cl")).await.0);
    }
    tokens
}

fn assert_no_server_errors<'a>(responses: impl IntoIterator<Item = &'a Resp>) {
    for r in responses {
        assert!(
            !r.status.is_server_error(),
            "a race answered {}: {}",
            r.status,
            r.text
        );
    }
}

#[tokio::test]
async fn thirty_notifications_for_one_payment_apply_once_without_deadlock() {
    let (a, b, _) = two_instances().await;
    let token = a.customer_token().await;
    let (order, txn, total) = started_order(&a, &token, &[SKU_A], None).await;
    let before = stock(&a, SKU_A).await;
    // Half repeat one event id (a provider retrying), half are distinct events of the same
    // payment; half go to each instance.
    let sends = (0..30usize).map(|i| {
        let id = if i.is_multiple_of(2) {
            "evt-repeated".to_string()
        } else {
            format!("evt-{i}")
        };
        let (app, txn) = (pick(i, &a, &b), txn.clone());
        async move { pay_webhook(app, &id, &txn, total).await }
    });
    let answers = join_all(sends).await;
    assert_no_server_errors(&answers);
    for r in &answers {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let applied = answers
        .iter()
        .filter(|r| r.body["outcome"] == "applied")
        .count();
    assert_eq!(applied, 1, "exactly one notification pays");
    assert!(answers
        .iter()
        .all(|r| matches!(r.body["outcome"].as_str(), Some("applied" | "duplicate"))));
    assert_eq!(order_status(&a, order).await, "paid");
    assert_eq!(stock(&a, SKU_A).await, before - 1, "stock taken once");
    // One claim per distinct event id: the repeated one and the fifteen others.
    assert_eq!(
        a.scalar_i64("SELECT COUNT(*) FROM payment_events").await,
        16
    );
    assert_eq!(
        a.scalar_i64("SELECT COUNT(*) FROM payments WHERE status = 'paid'")
            .await,
        1
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn checkouts_with_a_coupon_race_payments_of_orders_with_it() {
    let (a, b, admin) = two_instances().await;
    create_coupon(
        &a,
        &admin,
        json!({"code": "CARRERA10", "type": "percent", "value": 10}),
    )
    .await;
    let buyers = customers(&a, "pagador", 10).await;
    let mut pending = Vec::new();
    for (i, t) in buyers.iter().enumerate() {
        let skus = lines(i);
        pending.push(started_order(&a, t, skus, Some("CARRERA10")).await);
    }
    let (stock_a, stock_b) = (stock(&a, SKU_A).await, stock(&b, SKU_B).await);
    let shoppers = customers(&a, "comprador", 10).await;
    let mut bodies = Vec::new();
    for i in 0..10usize {
        let skus = lines(i + 1);
        bodies.push(checkout_body(&a, skus, Some("CARRERA10")).await);
    }
    let checkouts = shoppers
        .iter()
        .zip(bodies)
        .enumerate()
        .map(|(i, (t, body))| {
            let app = pick(i, &a, &b);
            async move { app.post("/api/checkout/confirm", Some(t), body).await }
        });
    let payments = pending.iter().enumerate().map(|(i, (_, txn, total))| {
        let app = pick(i + 1, &a, &b);
        async move { pay_webhook(app, &format!("evt-pay-{i}"), txn, *total).await }
    });
    let (created, paid) = tokio::join!(join_all(checkouts), join_all(payments));
    assert_no_server_errors(&created);
    assert_no_server_errors(&paid);
    for r in &created {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert!(r.body["couponId"].is_i64(), "{}", r.text);
        assert!(r.body["discountCents"].as_i64().unwrap() > 0, "{}", r.text);
    }
    for r in &paid {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["outcome"], "applied", "{}", r.text);
    }
    for (order, _, _) in &pending {
        assert_eq!(order_status(&a, *order).await, "paid");
    }
    assert_eq!(used_count(&a, "CARRERA10").await, 10, "ten paid uses");
    assert_eq!(stock(&a, SKU_A).await, stock_a - 10);
    assert_eq!(stock(&a, SKU_B).await, stock_b - 10);
    assert_eq!(
        a.scalar_i64("SELECT COUNT(*) FROM stock_reservations WHERE state = 'active'")
            .await,
        20,
        "the ten new orders hold two lines each"
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn admin_cancellations_race_checkouts_and_payments_on_the_same_rows() {
    let (a, b, admin) = two_instances().await;
    create_coupon(
        &a,
        &admin,
        json!({"code": "VUELTA10", "type": "percent", "value": 10}),
    )
    .await;
    let buyers = customers(&a, "cliente", 10).await;
    let mut paid_orders = Vec::new();
    let mut pending = Vec::new();
    for (i, t) in buyers.iter().enumerate() {
        let skus = lines(i);
        let (order, txn, total) = started_order(&a, t, skus, Some("VUELTA10")).await;
        if i < 5 {
            let r = pay_webhook(&a, &format!("evt-setup-{i}"), &txn, total).await;
            assert_eq!(r.body["outcome"], "applied", "{}", r.text);
            paid_orders.push(order);
        } else {
            pending.push((order, txn, total));
        }
    }
    assert_eq!(used_count(&a, "VUELTA10").await, 5);
    let (stock_a, stock_b) = (stock(&a, SKU_A).await, stock(&a, SKU_B).await);
    let shoppers = customers(&a, "nuevo", 5).await;
    let mut bodies = Vec::new();
    for i in 0..5usize {
        let skus = lines(i + 1);
        bodies.push(checkout_body(&a, skus, Some("VUELTA10")).await);
    }
    let admin = &admin;
    let cancels = paid_orders.iter().enumerate().map(|(i, order)| {
        let app = pick(i, &a, &b);
        async move {
            app.patch(
                &format!("/api/admin/orders/{order}"),
                Some(admin),
                json!({"status": "cancelled", "note": "carrera"}),
            )
            .await
        }
    });
    let payments = pending.iter().enumerate().map(|(i, (_, txn, total))| {
        let app = pick(i + 1, &a, &b);
        async move { pay_webhook(app, &format!("evt-race-{i}"), txn, *total).await }
    });
    let checkouts = shoppers
        .iter()
        .zip(bodies)
        .enumerate()
        .map(|(i, (t, body))| {
            let app = pick(i, &a, &b);
            async move { app.post("/api/checkout/confirm", Some(t), body).await }
        });
    let (cancelled, paid, created) =
        tokio::join!(join_all(cancels), join_all(payments), join_all(checkouts));
    for set in [&cancelled, &paid, &created] {
        assert_no_server_errors(set.iter());
    }
    for r in &cancelled {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "cancelled", "{}", r.text);
    }
    for r in &paid {
        assert_eq!(r.body["outcome"], "applied", "{}", r.text);
    }
    for r in &created {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // Five uses given back, five new paid ones.
    assert_eq!(used_count(&a, "VUELTA10").await, 5);
    // Five orders' units back on the shelf, five more taken.
    assert_eq!(stock(&a, SKU_A).await, stock_a);
    assert_eq!(stock(&a, SKU_B).await, stock_b);
    for order in &paid_orders {
        assert_eq!(order_status(&a, *order).await, "cancelled");
    }
    assert_eq!(
        a.scalar_i64(
            "SELECT COUNT(*) FROM payments WHERE status IN ('refund_required', 'refunded')"
        )
        .await,
        5,
        "each cancelled paid order owes its refund"
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn two_admins_demoting_each_other_leave_one_admin() {
    let (a, b, admin) = two_instances().await;
    let me = a.get("/api/me", Some(&admin)).await.body["id"]
        .as_i64()
        .unwrap();
    let (_, other, _) = a.register("segunda@example.cl").await;
    let r = a
        .patch(
            &format!("/api/users/{other}"),
            Some(&admin),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let other_token = a.login("segunda@example.cl", "secreto123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let (path_other, path_me) = (format!("/api/users/{other}"), format!("/api/users/{me}"));
    let (x, y) = tokio::join!(
        a.patch(&path_other, Some(&admin), json!({"role": "customer"}),),
        b.patch(&path_me, Some(&other_token), json!({"role": "customer"}),)
    );
    assert_no_server_errors([&x, &y]);
    let statuses = [x.status, y.status];
    assert!(
        statuses.contains(&StatusCode::OK) && statuses.contains(&StatusCode::CONFLICT),
        "one demotion wins, the other is refused: {} / {}",
        x.text,
        y.text
    );
    let refused = if x.status == StatusCode::CONFLICT {
        &x
    } else {
        &y
    };
    assert!(refused.has_detail("role", "last_admin"), "{}", refused.text);
    assert_eq!(
        a.scalar_i64("SELECT COUNT(*) FROM users WHERE role = 'admin' AND is_active")
            .await,
        1
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn a_deadlock_victim_is_run_again_instead_of_answering_500() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn().await;
    if app.state.db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return; // SQLite's writers queue; there is no deadlock to provoke.
    }
    let admin = app.admin_token().await;
    create_coupon(
        &app,
        &admin,
        json!({"code": "OTRAVEZ", "type": "percent", "value": 10}),
    )
    .await;
    let token = app.customer_token().await;
    let vid = variant_id(&app, SKU_A).await;
    let body = checkout_body(&app, &[SKU_A], Some("OTRAVEZ")).await;
    // Another writer takes the lock order backwards: the variant, then (once the checkout holds
    // the coupon and waits for the variant) the coupon. PostgreSQL aborts the checkout, which
    // waited first; the server runs it again and it goes through.
    let other = app.state.db.begin().await.unwrap();
    other
        .execute_unprepared(&format!(
            "SELECT id FROM product_variants WHERE id = {vid} FOR UPDATE"
        ))
        .await
        .unwrap();
    let checkout = app.post("/api/checkout/confirm", Some(&token), body);
    let backwards = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        other
            .execute_unprepared("SELECT id FROM coupons WHERE code = 'OTRAVEZ' FOR UPDATE")
            .await
            .unwrap();
        other.commit().await.unwrap();
    };
    let (r, ()) = tokio::join!(checkout, backwards);
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(app.deadlocks_detected().await, 1, "the deadlock happened");
    assert_eq!(
        app.metric("db_contention_total", "outcome=\"retried\"")
            .await,
        1.0
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM orders").await,
        1,
        "the victim wrote nothing; the retry wrote the order once"
    );
}
