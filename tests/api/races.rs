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

/// A 10 % coupon `code` and `n` customers (`prefix<i>@example.cl`), each with a started
/// test-provider order of both SKUs (line orders alternating) that uses it: (token, order id,
/// provider transaction id, total).
async fn coupon_orders(
    app: &TestApp,
    admin: &str,
    code: &str,
    prefix: &str,
    n: usize,
) -> Vec<(String, i64, String, i64)> {
    create_coupon(
        app,
        admin,
        json!({"code": code, "type": "percent", "value": 10}),
    )
    .await;
    let mut orders = Vec::new();
    for (i, t) in customers(app, prefix, n).await.into_iter().enumerate() {
        let (order, txn, total) = started_order(app, &t, lines(i), Some(code)).await;
        orders.push((t, order, txn, total));
    }
    orders
}

/// `n` new customers (`prefix<i>@example.cl`) and the checkout each will send: both SKUs, in the
/// line order opposite to [`coupon_orders`]'s, with `coupon`.
async fn shoppers(app: &TestApp, prefix: &str, n: usize, coupon: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (i, t) in customers(app, prefix, n).await.into_iter().enumerate() {
        out.push((t, checkout_body(app, lines(i + 1), Some(coupon)).await));
    }
    out
}

/// Every shopper's checkout at once, alternating instances.
async fn checkouts_at_once(a: &TestApp, b: &TestApp, shoppers: &[(String, Value)]) -> Vec<Resp> {
    join_all(
        shoppers.iter().enumerate().map(|(i, (t, body))| {
            pick(i, a, b).post("/api/checkout/confirm", Some(t), body.clone())
        }),
    )
    .await
}

/// A paying notification for each `(txn, total)` at once (event ids `<prefix>-<i>`), alternating
/// instances the other way round from [`checkouts_at_once`].
async fn payments_at_once(
    a: &TestApp,
    b: &TestApp,
    pending: &[(String, i64)],
    prefix: &str,
) -> Vec<Resp> {
    join_all(pending.iter().enumerate().map(|(i, (txn, total))| {
        let app = pick(i + 1, a, b);
        async move { pay_webhook(app, &format!("{prefix}-{i}"), txn, *total).await }
    }))
    .await
}

/// `n` customers registered on `app`: their tokens.
async fn customers(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..n {
        tokens.push(app.register(&format!("{prefix}{i}@example.cl")).await.0);
    }
    tokens
}

/// Every response has `status` (each one's body shown otherwise).
fn assert_all(responses: &[Resp], status: StatusCode) {
    for r in responses {
        assert_eq!(r.status, status, "{}", r.text);
    }
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
    assert_all(&answers, StatusCode::OK);
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
    let orders = coupon_orders(&a, &admin, "CARRERA10", "pagador", 10).await;
    let pending: Vec<(i64, String, i64)> = orders
        .into_iter()
        .map(|(_, order, txn, total)| (order, txn, total))
        .collect();
    let (stock_a, stock_b) = (stock(&a, SKU_A).await, stock(&b, SKU_B).await);
    let buying = shoppers(&a, "comprador", 10, "CARRERA10").await;
    let to_pay: Vec<(String, i64)> = pending
        .iter()
        .map(|(_, txn, total)| (txn.clone(), *total))
        .collect();
    let (created, paid) = tokio::join!(
        checkouts_at_once(&a, &b, &buying),
        payments_at_once(&a, &b, &to_pay, "evt-pay")
    );
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
    let mut paid_orders = Vec::new();
    let mut pending = Vec::new();
    for (i, (_, order, txn, total)) in coupon_orders(&a, &admin, "VUELTA10", "cliente", 10)
        .await
        .into_iter()
        .enumerate()
    {
        if i < 5 {
            let r = pay_webhook(&a, &format!("evt-setup-{i}"), &txn, total).await;
            assert_eq!(r.body["outcome"], "applied", "{}", r.text);
            paid_orders.push(order);
        } else {
            pending.push((txn, total));
        }
    }
    assert_eq!(used_count(&a, "VUELTA10").await, 5);
    let (stock_a, stock_b) = (stock(&a, SKU_A).await, stock(&a, SKU_B).await);
    let buying = shoppers(&a, "nuevo", 5, "VUELTA10").await;
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
    // Both instances' job runners tick meanwhile (outbox marking and dispatch, the refunds the
    // cancellations owe), as two `serve` processes would.
    let runners = [a.job_runner(2).start(), b.job_runner(2).start()];
    let (cancelled, paid, created) = tokio::join!(
        join_all(cancels),
        payments_at_once(&a, &b, &pending, "evt-race"),
        checkouts_at_once(&a, &b, &buying)
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for r in runners {
        r.shutdown(std::time::Duration::from_secs(5)).await.unwrap();
    }
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
    assert_all(&created, StatusCode::CREATED);
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
    // One demotion wins. The other is refused: `last_admin` when both got past the admin check,
    // or `forbidden` when the winner had already demoted its caller.
    let (won, refused) = match (x.status, y.status) {
        (StatusCode::OK, _) => (&x, &y),
        (_, StatusCode::OK) => (&y, &x),
        _ => panic!("one demotion wins: {} / {}", x.text, y.text),
    };
    assert_eq!(won.body["role"], "customer", "{}", won.text);
    assert!(
        (refused.status == StatusCode::CONFLICT && refused.has_detail("role", "last_admin"))
            || (refused.status == StatusCode::FORBIDDEN && refused.error_code() == "forbidden"),
        "{}: {}",
        refused.status,
        refused.text
    );
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
            "SELECT id FROM product_variants WHERE id = {vid} FOR UPDATE /* deliberate-deadlock */"
        ))
        .await
        .unwrap();
    let checkout = app.post("/api/checkout/confirm", Some(&token), body);
    let backwards = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        other
            // The marker tells .ci/run's check of the server log that this one is provoked.
            .execute_unprepared(
                "SELECT id FROM coupons WHERE code = 'OTRAVEZ' FOR UPDATE /* deliberate-deadlock */",
            )
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

#[tokio::test]
async fn browser_returns_racing_notifications_pay_once() {
    let (a, b, _) = two_instances().await;
    let token = a.customer_token().await;
    let (order, txn, total) = started_order(&a, &token, &[SKU_A], None).await;
    let before = stock(&a, SKU_A).await;
    let returns = (0..4usize).map(|i| {
        let (app, token) = (pick(i, &a, &b), token.as_str());
        async move {
            app.post(
                "/api/payments/confirm",
                Some(token),
                json!({"orderId": order, "provider": "test", "params": {"mock": "paid"}}),
            )
            .await
        }
    });
    let notifications = (0..10usize).map(|i| {
        let (app, txn) = (pick(i + 1, &a, &b), txn.as_str());
        async move { pay_webhook(app, &format!("evt-{}", i % 3), txn, total).await }
    });
    let (returned, notified) = tokio::join!(join_all(returns), join_all(notifications));
    assert_all(&returned, StatusCode::OK);
    assert_all(&notified, StatusCode::OK);
    for r in &returned {
        assert_eq!(r.body["status"], "paid", "{}", r.text);
    }
    let applied = notified
        .iter()
        .filter(|r| r.body["outcome"] == "applied")
        .count();
    assert!(applied <= 1, "at most one notification pays");
    assert_eq!(order_status(&a, order).await, "paid");
    assert_eq!(stock(&a, SKU_A).await, before - 1, "stock taken once");
    assert_eq!(
        a.scalar_i64(&format!(
            "SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {order}"
        ))
        .await,
        1,
        "pending → paid, once"
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn restarting_failed_payments_races_checkouts_and_payments() {
    let (a, b, admin) = two_instances().await;
    let mut failed = Vec::new();
    let mut pending = Vec::new();
    for (i, (t, order, txn, total)) in coupon_orders(&a, &admin, "DENUEVO", "reintento", 10)
        .await
        .into_iter()
        .enumerate()
    {
        if i < 5 {
            let body = event(&a, &format!("evt-fail-{i}"), &txn, "failed", total);
            let r = webhook(&a, &body, Some(sign(&body))).await;
            assert_eq!(r.body["outcome"], "failed", "{}", r.text);
            failed.push((order, t));
        } else {
            pending.push((txn, total));
        }
    }
    let buying = shoppers(&a, "otro", 5, "DENUEVO").await;
    let restarts = failed.iter().enumerate().map(|(i, (order, t))| {
        let app = pick(i, &a, &b);
        async move {
            app.post(
                "/api/payments/start",
                Some(t),
                json!({"orderId": order, "provider": "test"}),
            )
            .await
        }
    });
    let (restarted, paid, created) = tokio::join!(
        join_all(restarts),
        payments_at_once(&a, &b, &pending, "evt-paid"),
        checkouts_at_once(&a, &b, &buying)
    );
    assert_all(&restarted, StatusCode::OK);
    assert_all(&paid, StatusCode::OK);
    assert_all(&created, StatusCode::CREATED);
    for (order, _) in &failed {
        assert_eq!(order_status(&a, *order).await, "pending", "restarted");
    }
    for r in &paid {
        assert_eq!(r.body["outcome"], "applied", "{}", r.text);
    }
    assert_eq!(used_count(&a, "DENUEVO").await, 5);
    // Ten orders hold their lines again or anew (two each); five were paid.
    assert_eq!(
        a.scalar_i64("SELECT COUNT(*) FROM stock_reservations WHERE state = 'active'")
            .await,
        20
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

// No check-then-act: each of these read, then wrote, and lost the race.

#[tokio::test]
async fn giving_the_health_data_consent_eight_times_at_once_gives_it_once() {
    let (a, b, _) = two_instances().await;
    let (a, b) = (&a, &b);
    let (token, id, _) = a.register("consiente@example.cl").await;
    let answers = join_all((0..8usize).map(|i| {
        let (app, token) = (pick(i, a, b), token.as_str());
        async move {
            app.post("/api/me/consents/health_data", Some(token), json!({}))
                .await
        }
    }))
    .await;
    for r in &answers {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["healthData"], true, "{}", r.text);
    }
    assert_eq!(
        a.scalar_i64(&format!(
            "SELECT COUNT(*) FROM consents WHERE user_id = {id} AND purpose = 'health_data' AND withdrawn_at IS NULL"
        ))
        .await,
        1
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn a_patch_racing_a_delete_is_200_or_404_never_500() {
    let (a, b, admin) = two_instances().await;
    let (a, b) = (&a, &b);
    let product = a
        .scalar_i64(&format!(
            "SELECT product_id FROM product_variants WHERE sku = '{SKU_A}'"
        ))
        .await;
    let token = a.customer_token().await;
    for round in 0..6 {
        // A variant, patched on one instance while the other deletes it.
        let v = a
            .post(
                &format!("/api/products/{product}/variants"),
                Some(&admin),
                json!({"sku": format!("RACE-{round}"), "optionLabel": format!("r{round}"), "priceCents": 1000, "stock": 3}),
            )
            .await;
        assert_eq!(v.status, StatusCode::CREATED, "{}", v.text);
        let path = format!("/api/variants/{}", v.body["id"]);
        let (patched, deleted) = tokio::join!(
            pick(round, a, b).patch(&path, Some(&admin), json!({"priceCents": 1200})),
            pick(round + 1, a, b).delete(&path, Some(&admin))
        );
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
        assert!(
            patched.status == StatusCode::OK
                || (patched.status == StatusCode::NOT_FOUND && patched.error_code() == "not_found"),
            "{}: {}",
            patched.status,
            patched.text
        );
        // The same for one of the customer's addresses.
        let ad = a
            .post(
                "/api/addresses",
                Some(&token),
                json!({"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}),
            )
            .await;
        assert_eq!(ad.status, StatusCode::CREATED, "{}", ad.text);
        let path = format!("/api/addresses/{}", ad.body["id"]);
        let (patched, deleted) = tokio::join!(
            pick(round, a, b).patch(&path, Some(&token), json!({"notes": "timbre"})),
            pick(round + 1, a, b).delete(&path, Some(&token))
        );
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
        assert!(
            patched.status == StatusCode::OK
                || (patched.status == StatusCode::NOT_FOUND && patched.error_code() == "not_found"),
            "{}: {}",
            patched.status,
            patched.text
        );
    }
    assert_eq!(
        a.scalar_i64("SELECT COUNT(*) FROM product_variants WHERE sku LIKE 'RACE-%'")
            .await,
        0
    );
    assert_eq!(a.scalar_i64("SELECT COUNT(*) FROM addresses").await, 0);
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn deleting_a_variant_while_it_is_bought_deletes_or_deactivates_it() {
    let (a, b, admin) = two_instances().await;
    let (a, b) = (&a, &b);
    let product = a
        .scalar_i64(&format!(
            "SELECT product_id FROM product_variants WHERE sku = '{SKU_A}'"
        ))
        .await;
    let buyers = customers(a, "rapido", 4).await;
    for round in 0..4 {
        let v = a
            .post(
                &format!("/api/products/{product}/variants"),
                Some(&admin),
                json!({"sku": format!("GONE-{round}"), "optionLabel": format!("g{round}"), "priceCents": 1000, "stock": 10}),
            )
            .await;
        assert_eq!(v.status, StatusCode::CREATED, "{}", v.text);
        let vid = v.body["id"].as_i64().unwrap();
        let body = json!({"items": [{"variantId": vid, "quantity": 1}],
            "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"},
            "shippingMethod": "starken"});
        let path = format!("/api/variants/{vid}");
        let buys = join_all(buyers.iter().enumerate().map(|(i, t)| {
            let (app, body) = (pick(i + round, a, b), body.clone());
            async move { app.post("/api/checkout/confirm", Some(t), body).await }
        }));
        let (bought, deleted) = tokio::join!(buys, pick(round, a, b).delete(&path, Some(&admin)));
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
        assert_no_server_errors(bought.iter());
        let orders = bought
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count() as i64;
        for r in bought.iter().filter(|r| r.status != StatusCode::CREATED) {
            // Bought after the deletion: the variant is gone or no longer on sale.
            assert!(
                matches!(r.status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
                "{}: {}",
                r.status,
                r.text
            );
        }
        let rows = a
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM product_variants WHERE id = {vid}"
            ))
            .await;
        if orders > 0 {
            // History refers to it: deactivated, with its order lines intact.
            assert_eq!(rows, 1);
            assert_eq!(
                a.scalar_i64(&format!(
                    "SELECT COUNT(*) FROM product_variants WHERE id = {vid} AND NOT is_active"
                ))
                .await,
                1
            );
            assert_eq!(
                a.scalar_i64(&format!(
                    "SELECT COUNT(*) FROM order_items WHERE variant_id = {vid}"
                ))
                .await,
                orders
            );
        } else {
            assert_eq!(rows, 0, "nothing refers to it: deleted");
        }
    }
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn opening_the_cart_and_setting_one_line_ten_times_at_once() {
    let (a, b, _) = two_instances().await;
    let (a, b) = (&a, &b);
    let (token, id, _) = a.register("carrito@example.cl").await;
    let token = token.as_str();
    let opened = join_all((0..10usize).map(|i| async move {
        pick(i, a, b)
            .post("/api/cart", Some(token), json!({}))
            .await
    }))
    .await;
    assert_all(&opened, StatusCode::OK);
    assert_eq!(
        a.scalar_i64(&format!("SELECT COUNT(*) FROM carts WHERE user_id = {id}"))
            .await,
        1
    );
    // Another customer's first act is setting a line, ten times at once.
    let (other, other_id, _) = a.register("linea@example.cl").await;
    let vid = variant_id(a, SKU_A).await;
    let set = join_all((0..10usize).map(|i| {
        let other = other.as_str();
        async move {
            pick(i, a, b)
                .call(
                    reqwest::Method::PUT,
                    "/api/cart/items",
                    Some(other),
                    Some(json!({"variantId": vid, "quantity": i + 1})),
                )
                .await
        }
    }))
    .await;
    assert_all(&set, StatusCode::OK);
    assert_eq!(
        a.scalar_i64(&format!(
            "SELECT COUNT(*) FROM cart_items ci JOIN carts c ON c.id = ci.cart_id WHERE c.user_id = {other_id}"
        ))
        .await,
        1,
        "one line for the variant"
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn a_new_customers_first_addresses_saved_at_once_have_one_default() {
    let (a, b, _) = two_instances().await;
    let (a, b) = (&a, &b);
    let (token, id, _) = a.register("direcciones@example.cl").await;
    let token = token.as_str();
    let saved = join_all((0..6usize).map(|i| async move {
        pick(i, a, b)
            .post(
                "/api/addresses",
                Some(token),
                json!({"addressLine": format!("Calle {i}"), "comuna": "Santiago", "region": "RM"}),
            )
            .await
    }))
    .await;
    assert_all(&saved, StatusCode::CREATED);
    assert_eq!(
        saved.iter().filter(|r| r.body["isDefault"] == true).count(),
        1,
        "the first one saved is the default"
    );
    assert_eq!(
        a.scalar_i64(&format!(
            "SELECT COUNT(*) FROM addresses WHERE user_id = {id}"
        ))
        .await,
        6
    );
    assert_eq!(
        a.scalar_i64(&format!(
            "SELECT COUNT(*) FROM addresses WHERE user_id = {id} AND is_default"
        ))
        .await,
        1
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn one_idempotency_key_sent_six_times_at_once_makes_one_order() {
    let (a, b, _) = two_instances().await;
    let (a, b) = (&a, &b);
    let (token, id, _) = a.register("idempotente@example.cl").await;
    let body = checkout_body(a, &[SKU_A], None).await;
    let answers = join_all((0..6usize).map(|i| {
        let (app, token, body) = (pick(i, a, b), token.as_str(), body.clone());
        async move {
            app.send(
                app.client
                    .post(app.url("/api/checkout/confirm"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", "una-sola-vez")
                    .json(&body),
            )
            .await
        }
    }))
    .await;
    let mut order_ids = std::collections::HashSet::new();
    for r in &answers {
        match r.status {
            StatusCode::CREATED => {
                order_ids.insert(r.body["id"].as_i64().unwrap());
            }
            StatusCode::CONFLICT => assert!(
                r.has_detail("Idempotency-Key", "in_progress"),
                "a refusal names the key: {}",
                r.text
            ),
            _ => panic!("{}: {}", r.status, r.text),
        }
    }
    assert_eq!(order_ids.len(), 1, "every success is the same order");
    assert_eq!(
        a.scalar_i64(&format!("SELECT COUNT(*) FROM orders WHERE user_id = {id}"))
            .await,
        1
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn ten_password_reset_requests_at_once_make_one_link() {
    let (a, b, _) = two_instances().await;
    let (a, b) = (&a, &b);
    let (_, id, _) = a.register("olvidadiza@example.cl").await;
    let answers = join_all((0..10usize).map(|i| async move {
        pick(i, a, b)
            .post(
                "/api/auth/password/forgot",
                None,
                json!({"email": "olvidadiza@example.cl"}),
            )
            .await
    }))
    .await;
    for r in &answers {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    assert_eq!(
        a.scalar_i64(&format!(
            "SELECT COUNT(*) FROM account_links WHERE user_id = {id} AND purpose = 'reset_password'"
        ))
        .await,
        1,
        "one a minute: one link (and so one mail)"
    );
    assert_eq!(a.deadlocks_detected().await, 0);
}

#[tokio::test]
async fn an_erasure_request_and_a_checkout_at_once_never_both_succeed() {
    let (a, b, _) = two_instances().await;
    let (a, b) = (&a, &b);
    let body = checkout_body(a, &[SKU_A], None).await;
    for round in 0..4usize {
        let email = format!("borrar{round}@example.cl");
        let (token, id, _) = a.register(&email).await;
        let (erasure, checkout) = tokio::join!(
            pick(round, a, b).post(
                "/api/me/deletion-request",
                Some(&token),
                json!({"password": "secreto123"})
            ),
            pick(round + 1, a, b).post("/api/checkout/confirm", Some(&token), body.clone())
        );
        match (erasure.status, checkout.status) {
            (StatusCode::ACCEPTED, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED) => {
                assert_eq!(
                    a.scalar_i64(&format!("SELECT COUNT(*) FROM orders WHERE user_id = {id}"))
                        .await,
                    0
                );
            }
            (StatusCode::CONFLICT, StatusCode::CREATED) => {
                let order = checkout.body["id"].as_i64().unwrap();
                assert!(
                    erasure.text.contains(&order.to_string()),
                    "the refusal names the order: {}",
                    erasure.text
                );
            }
            _ => panic!(
                "round {round}: erasure {} {} / checkout {} {}",
                erasure.status, erasure.text, checkout.status, checkout.text
            ),
        }
    }
    assert_eq!(a.deadlocks_detected().await, 0);
}
