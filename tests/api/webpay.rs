//! Webpay Plus through the simulator: start, the four browser returns, the SPA confirm, exactly
//! one commit per token, amount mismatch, bad keys.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::sim_webpay::{WebpaySim, CODE};

async fn app_with(sim: &WebpaySim, secret: Option<&str>) -> TestApp {
    let mut vars = vec![
        ("WEBPAY_BASE_URL", sim.base_url.as_str()),
        ("WEBPAY_COMMERCE_CODE", CODE),
        ("PUBLIC_BASE_URL", "https://tienda.example.cl"),
        ("FRONTEND_BASE_URL", "https://front.example.cl"),
    ];
    if let Some(s) = secret {
        vars.push(("WEBPAY_API_KEY_SECRET", s));
    }
    TestApp::spawn_with(&vars).await
}

/// A pending order of one unit of `sku` and its Webpay start.
pub async fn start(app: &TestApp, token: &str, sku: &str) -> (i64, Resp) {
    checkout_and_start(app, token, sku, 1, None, "webpay").await
}

/// The browser's return, as a form POST (the classic flow) or a GET.
pub async fn browser_return(app: &TestApp, form: &[(&str, &str)], get: bool) -> Resp {
    let req = if get {
        app.client
            .get(app.url("/webhooks/payments/webpay"))
            .query(form)
    } else {
        app.client
            .post(app.url("/webhooks/payments/webpay"))
            .form(form)
    };
    app.send(req).await
}

async fn order_status(app: &TestApp, id: i64) -> String {
    app.scalar_string(&format!("SELECT status FROM orders WHERE id = {id}"))
        .await
        .unwrap()
}

pub async fn payment_status(app: &TestApp, token: &str) -> String {
    app.scalar_string(&format!(
        "SELECT status FROM payments WHERE provider = 'webpay' AND provider_txn_id = '{token}'"
    ))
    .await
    .unwrap()
}

async fn stock_of(app: &TestApp, sku: &str) -> i64 {
    app.scalar_i64(&format!(
        "SELECT CAST(stock AS BIGINT) FROM product_variants WHERE sku = '{sku}'"
    ))
    .await
}

pub fn token_of(started: &Resp) -> String {
    started.body["providerTxnId"]
        .as_str()
        .expect("token")
        .to_string()
}

#[tokio::test]
async fn approved_payment_through_the_browser_return_commits_once() {
    let sim = WebpaySim::start().await;
    let app = app_with(&sim, None).await;
    let (customer, _, _) = app.register("webpay-ok@example.cl").await;
    let before = stock_of(&app, "WW-FEM-1G").await;
    let (order_id, s) = start(&app, &customer, "WW-FEM-1G").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let token = token_of(&s);
    assert_eq!(token.len(), 64);
    assert_eq!(s.body["provider"], "webpay");
    assert_eq!(
        s.body["redirectUrl"],
        format!("https://webpay3gint.transbank.cl/webpayserver/initTransaction?token_ws={token}")
    );
    assert_eq!(
        s.body["initPayload"],
        json!({"url": "https://webpay3gint.transbank.cl/webpayserver/initTransaction", "token_ws": token})
    );
    // What Webpay received: our buy order, session, amount and return URL.
    let tx = sim.tx(&token);
    let total = app
        .scalar_i64(&format!(
            "SELECT total_cents FROM orders WHERE id = {order_id}"
        ))
        .await;
    assert_eq!(tx.amount, total);
    assert_eq!(
        Some(tx.buy_order.clone()),
        app.scalar_string(&format!(
            "SELECT payment_ref FROM orders WHERE id = {order_id}"
        ))
        .await
    );
    assert_eq!(
        tx.session_id,
        dispensary::services::payments::webpay::session_id(&app.state, order_id, &tx.buy_order)
    );
    assert_eq!(tx.session_id.len(), 41, "an HMAC, not the ids");
    assert_eq!(
        tx.return_url,
        "https://tienda.example.cl/webhooks/payments/webpay"
    );
    assert_eq!(payment_status(&app, &token).await, "initiated");

    // The buyer pays with the approved test card and Webpay posts the browser back.
    sim.pay(&token, true);
    let r = browser_return(&app, &[("token_ws", &token)], false).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(
        r.header("location"),
        Some(
            format!("https://front.example.cl/checkout/result?orderId={order_id}&status=paid")
                .as_str()
        )
    );
    assert_eq!(order_status(&app, order_id).await, "paid");
    assert_eq!(payment_status(&app, &token).await, "paid");
    assert_eq!(
        app.scalar_string(&format!(
            "SELECT auth_code FROM payments WHERE provider_txn_id = '{token}'"
        ))
        .await
        .unwrap(),
        "1213"
    );
    assert_eq!(stock_of(&app, "WW-FEM-1G").await, before - 1);
    // A repeated return (reload, back button) and an SPA confirm do not commit again.
    let again = browser_return(&app, &[("token_ws", &token)], true).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(again.header("location").unwrap().ends_with("status=paid"));
    let c = app
        .post(
            "/api/payments/confirm",
            Some(&customer),
            json!({"orderId": order_id, "provider": "webpay", "token": token}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.body["status"], "paid");
    assert_eq!(sim.tx(&token).commits, 1, "one commit per token");
    assert_eq!(stock_of(&app, "WW-FEM-1G").await, before - 1);
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' AND entity_id = {order_id}")).await,
        1
    );
    assert!(
        app.metric(
            "payment_webhooks_total",
            "outcome=\"applied\",provider=\"webpay\""
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn rejected_aborted_timed_out_and_error_returns_fail_the_payment() {
    let sim = WebpaySim::start().await;
    let app = app_with(&sim, None).await;
    let (customer, _, _) = app.register("webpay-no@example.cl").await;

    // Rejected card: committed, FAILED.
    let (rejected, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let t1 = token_of(&s);
    sim.pay(&t1, false);
    let r = browser_return(&app, &[("token_ws", &t1)], false).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r
        .header("location")
        .unwrap()
        .ends_with(&format!("orderId={rejected}&status=failed")));
    assert_eq!(payment_status(&app, &t1).await, "failed");
    assert_eq!(order_status(&app, rejected).await, "failed");
    assert_eq!(sim.tx(&t1).commits, 1);

    // Aborted at Webpay: TBK_TOKEN + session + buy order. No commit.
    let (aborted, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let t2 = token_of(&s);
    let tx = sim.tx(&t2);
    let r = browser_return(
        &app,
        &[
            ("TBK_TOKEN", &t2),
            ("TBK_ID_SESION", &tx.session_id),
            ("TBK_ORDEN_COMPRA", &tx.buy_order),
        ],
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r
        .header("location")
        .unwrap()
        .ends_with(&format!("orderId={aborted}&status=failed")));
    assert_eq!(payment_status(&app, &t2).await, "failed");
    assert_eq!(order_status(&app, aborted).await, "failed");
    assert_eq!(
        sim.tx(&t2).commits,
        0,
        "an aborted payment is never committed"
    );

    // A forged timeout: the buy order is guessable, the session is not. Nothing changes.
    let (target, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let target_token = token_of(&s);
    let buy_order = sim.tx(&target_token).buy_order;
    let r = browser_return(
        &app,
        &[
            ("TBK_ID_SESION", "U1-O1"),
            ("TBK_ORDEN_COMPRA", buy_order.as_str()),
        ],
        false,
    )
    .await;
    assert_eq!(
        r.header("location"),
        Some("https://front.example.cl/checkout/result?status=unknown")
    );
    assert_eq!(payment_status(&app, &target_token).await, "initiated");
    assert_eq!(order_status(&app, target).await, "pending");

    // Timeout: only session and buy order.
    let (timed_out, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let t3 = token_of(&s);
    let tx = sim.tx(&t3);
    let r = browser_return(
        &app,
        &[
            ("TBK_ID_SESION", &tx.session_id),
            ("TBK_ORDEN_COMPRA", &tx.buy_order),
        ],
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r
        .header("location")
        .unwrap()
        .ends_with(&format!("orderId={timed_out}&status=failed")));
    assert_eq!(payment_status(&app, &t3).await, "failed");
    assert_eq!(sim.tx(&t3).commits, 0);

    // The error page's "back to shop": all four. Invalid, failed, no commit.
    let (errored, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let t4 = token_of(&s);
    let tx = sim.tx(&t4);
    let r = browser_return(
        &app,
        &[
            ("token_ws", &t4),
            ("TBK_TOKEN", &t4),
            ("TBK_ID_SESION", &tx.session_id),
            ("TBK_ORDEN_COMPRA", &tx.buy_order),
        ],
        false,
    )
    .await;
    assert!(r
        .header("location")
        .unwrap()
        .ends_with(&format!("orderId={errored}&status=failed")));
    assert_eq!(payment_status(&app, &t4).await, "failed");
    assert_eq!(sim.tx(&t4).commits, 0);

    // A forged return for a token we never issued changes nothing and commits nothing.
    let r = browser_return(&app, &[("token_ws", &"f".repeat(64))], false).await;
    assert_eq!(
        r.header("location"),
        Some("https://front.example.cl/checkout/result?status=unknown")
    );
    // A return with nothing usable is a 400 in the error model.
    let r = browser_return(&app, &[("foo", "bar")], false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.has_detail("token_ws", "required"));

    // A failed order can be paid again with a new transaction.
    let s = app
        .post(
            "/api/payments/start",
            Some(&customer),
            json!({"orderId": rejected, "provider": "webpay"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let t5 = token_of(&s);
    assert_ne!(t5, t1);
    sim.pay(&t5, true);
    let r = browser_return(&app, &[("token_ws", &t5)], false).await;
    assert!(
        r.header("location").unwrap().ends_with("status=paid"),
        "{:?}",
        r.header("location")
    );
    assert_eq!(order_status(&app, rejected).await, "paid");
}

#[tokio::test]
async fn spa_confirm_racing_the_return_commits_once_and_amount_mismatch_fails() {
    let sim = WebpaySim::start().await;
    let app = app_with(&sim, None).await;
    let (customer, _, _) = app.register("webpay-spa@example.cl").await;
    let (order_id, s) = start(&app, &customer, "WW-FEM-5G").await;
    let token = token_of(&s);
    sim.pay(&token, true);
    let confirm = json!({"orderId": order_id, "provider": "webpay", "token": token});
    let form = [("token_ws", token.as_str())];
    let (a, b) = tokio::join!(
        app.post("/api/payments/confirm", Some(&customer), confirm.clone()),
        browser_return(&app, &form, false)
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(b.status, StatusCode::SEE_OTHER);
    assert_eq!(sim.tx(&token).commits, 1, "the race commits once");
    assert_eq!(order_status(&app, order_id).await, "paid");
    let c = app
        .post("/api/payments/confirm", Some(&customer), confirm)
        .await;
    assert_eq!(c.body["status"], "paid");
    assert_eq!(c.body["authCode"], "1213");
    // confirm needs the token.
    let r = app
        .post(
            "/api/payments/confirm",
            Some(&customer),
            json!({"orderId": order_id, "provider": "webpay"}),
        )
        .await;
    assert!(r.has_detail("token", "required"), "{}", r.text);

    // Webpay reports another amount than ours: the payment fails, the order is untouched.
    let (mismatch, s) = start(&app, &customer, "WW-FEM-5G").await;
    let t2 = token_of(&s);
    sim.pay(&t2, true);
    sim.report_amount(&t2, 1);
    let r = browser_return(&app, &[("token_ws", &t2)], false).await;
    assert!(
        r.header("location").unwrap().ends_with("status=failed"),
        "{:?}",
        r.header("location")
    );
    assert_eq!(payment_status(&app, &t2).await, "failed");
    assert_eq!(order_status(&app, mismatch).await, "pending");
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM system_logs WHERE action = 'payment.amount_mismatch' AND entity_id = (SELECT id FROM payments WHERE provider_txn_id = '{t2}')")).await,
        1
    );
    // The stored commit answer is kept for the record.
    let raw: Value = serde_json::from_str(
        &app.scalar_string(&format!(
            "SELECT CAST(raw_payload AS TEXT) FROM payments WHERE provider_txn_id = '{t2}'"
        ))
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(raw["commit"]["amount"], 1);
}

#[tokio::test]
async fn wrong_keys_are_refused_by_webpay_and_nothing_is_started() {
    let sim = WebpaySim::start().await;
    let app = app_with(&sim, Some("not-the-secret")).await;
    let (customer, _, _) = app.register("webpay-keys@example.cl").await;
    let (order_id, s) = start(&app, &customer, "NL-AUTO-1G").await;
    assert_eq!(s.status, StatusCode::BAD_GATEWAY, "{}", s.text);
    assert_eq!(s.error_code(), "provider_error");
    assert!(!s.text.contains("not-the-secret"));
    assert_eq!(sim.state.lock().unwrap().rejected_auth, 1);
    assert_eq!(sim.create_calls(), 0);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM payments WHERE order_id = {order_id}"
        ))
        .await,
        0
    );
    assert_eq!(order_status(&app, order_id).await, "pending");
}

#[tokio::test]
async fn a_lost_return_is_recovered_by_reconciliation() {
    use dispensary::services::payments::reconcile::{self, Scope};
    let sim = WebpaySim::start().await;
    let app = app_with(&sim, None).await;
    let (customer, _, _) = app.register("webpay-lost@example.cl").await;
    let before = stock_of(&app, "NL-AUTO-5G").await;
    let (paid_order, s) = start(&app, &customer, "NL-AUTO-5G").await;
    let paid_token = token_of(&s);
    let (abandoned_order, s) = start(&app, &customer, "NL-AUTO-1G").await;
    let abandoned_token = token_of(&s);
    // The buyer pays but the browser never comes back; another buyer walks away.
    sim.pay(&paid_token, true);
    // Too young: the buyer may still be at Webpay.
    let r = reconcile::run(&app.state, &Scope::default()).await.unwrap();
    assert_eq!((r.checked, r.too_young), (0, 2), "{r:?}");
    app.clock.advance(chrono::Duration::minutes(6));
    let r = reconcile::run(
        &app.state,
        &Scope {
            provider: Some("webpay".into()),
            since: chrono::Duration::hours(1),
            ..Scope::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (r.checked, r.paid, r.still_pending, r.errors),
        (2, 1, 1, 0),
        "{r:?}"
    );
    assert_eq!(order_status(&app, paid_order).await, "paid");
    assert_eq!(payment_status(&app, &paid_token).await, "paid");
    assert_eq!(stock_of(&app, "NL-AUTO-5G").await, before - 1);
    assert_eq!(payment_status(&app, &abandoned_token).await, "initiated");
    assert_eq!(order_status(&app, abandoned_order).await, "pending");
    // Running it again changes nothing; a late browser return reports the stored outcome.
    let again = reconcile::run(&app.state, &Scope::default()).await.unwrap();
    assert_eq!((again.checked, again.paid), (1, 0), "{again:?}");
    assert_eq!(sim.tx(&paid_token).commits, 1);
    let r = browser_return(&app, &[("token_ws", &paid_token)], false).await;
    assert!(r.header("location").unwrap().ends_with("status=paid"));
    assert_eq!(sim.tx(&paid_token).commits, 1);
    // The abandoned buyer comes back after all and pays: the claim was released, so it commits.
    sim.pay(&abandoned_token, true);
    let r = browser_return(&app, &[("token_ws", &abandoned_token)], false).await;
    assert!(
        r.header("location").unwrap().ends_with("status=paid"),
        "{:?}",
        r.header("location")
    );
    assert_eq!(order_status(&app, abandoned_order).await, "paid");
}

#[tokio::test]
async fn admin_cancellation_refunds_through_webpay() {
    let sim = WebpaySim::start().await;
    let app = app_with(&sim, None).await;
    let admin = app.admin_token().await;
    let (customer, _, _) = app.register("webpay-refund@example.cl").await;
    let mut paid = Vec::new();
    for _ in 0..2 {
        let (order_id, s) = start(&app, &customer, "WW-FEM-1G").await;
        let token = token_of(&s);
        sim.pay(&token, true);
        let r = browser_return(&app, &[("token_ws", &token)], false).await;
        assert!(r.header("location").unwrap().ends_with("status=paid"));
        paid.push((order_id, token));
    }
    // Refunded by Webpay.
    let (order_id, token) = &paid[0];
    let r = app
        .patch(
            &format!("/api/admin/orders/{order_id}"),
            Some(&admin),
            json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(payment_status(&app, token).await, "refunded");
    assert_eq!(sim.tx(token).refunded, sim.tx(token).amount);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'payment.refunded'")
            .await,
        1
    );
    // Webpay refuses: the cancellation stands and the payment waits for a manual refund.
    sim.state.lock().unwrap().refuse_refunds = true;
    let (order_id, token) = &paid[1];
    let r = app
        .patch(
            &format!("/api/admin/orders/{order_id}"),
            Some(&admin),
            json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(order_status(&app, *order_id).await, "cancelled");
    assert_eq!(payment_status(&app, token).await, "refund_required");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs WHERE action = 'payment.refund_failed'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_webpay_that_does_not_answer_in_time_starts_nothing() {
    let sim = WebpaySim::start().await;
    let app = TestApp::spawn_with(&[
        ("WEBPAY_BASE_URL", sim.base_url.as_str()),
        ("PROVIDER_TIMEOUT_SECONDS", "1"),
    ])
    .await;
    let (customer, _, _) = app.register("webpay-slow@example.cl").await;
    sim.state.lock().unwrap().delay_ms = 2500;
    let started = std::time::Instant::now();
    let (order_id, s) = start(&app, &customer, "NL-AUTO-1G").await;
    assert_eq!(s.status, StatusCode::BAD_GATEWAY, "{}", s.text);
    assert_eq!(s.error_code(), "provider_error");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2400),
        "the timeout fired"
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM payments WHERE order_id = {order_id}"
        ))
        .await,
        0
    );
    assert_eq!(order_status(&app, order_id).await, "pending");
    // Webpay answers again: the same order can be paid.
    sim.state.lock().unwrap().delay_ms = 0;
    let s = app
        .post(
            "/api/payments/start",
            Some(&customer),
            json!({"orderId": order_id, "provider": "webpay"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
}

/// `dispensary reconcile` as an operator runs it, right after a lost return: the default minimum
/// age leaves the fresh payment alone and says so; `--min-age 0s` settles it.
#[tokio::test]
async fn the_reconcile_command_reports_too_young_payments_and_min_age_settles_them() {
    let sim = WebpaySim::start().await;
    let app = app_with(&sim, None).await;
    let (customer, _, _) = app.register("webpay-cli@example.cl").await;
    let before = stock_of(&app, "NL-AUTO-5G").await;
    let (order_id, s) = start(&app, &customer, "NL-AUTO-5G").await;
    let token = token_of(&s);
    sim.pay(&token, true);
    let config = app.state.config.clone();
    let base_url = sim.base_url.clone();
    let run = move |args: &'static [&'static str]| {
        let config = config.clone();
        let base_url = base_url.clone();
        // A blocking wait on its own thread: the simulator it calls runs on this test's runtime.
        tokio::task::spawn_blocking(move || {
            let workdir = std::env::temp_dir();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_dispensary"))
                .arg("reconcile")
                .args(args)
                .current_dir(&workdir)
                .env_clear()
                .env("APP_ENV", "test")
                .env("DATABASE_URL", &config.database.url)
                .env("JWT_SECRET", "test-secret-that-is-long-enough-0123456789")
                .env("WEBPAY_BASE_URL", &base_url)
                .env("WEBPAY_COMMERCE_CODE", CODE)
                .env("PUBLIC_BASE_URL", "https://tienda.example.cl")
                .env("FRONTEND_BASE_URL", "https://front.example.cl")
                .env("RUST_LOG", "warn")
                .output()
                .expect("run dispensary reconcile");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "exit {:?}\nstdout: {stdout}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        })
    };
    let line = |out: &str, label: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no '{label}' line in:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let out = run(&["--provider", "webpay"]).await.unwrap();
    assert!(out.contains("min age 300s"), "{out}");
    assert_eq!(line(&out, "checked"), "checked 0", "{out}");
    assert_eq!(line(&out, "too young"), "too young 1", "{out}");
    assert_eq!(order_status(&app, order_id).await, "pending");
    assert_eq!(sim.tx(&token).commits, 0);

    let out = run(&["--provider", "webpay", "--min-age", "0s"])
        .await
        .unwrap();
    assert_eq!(line(&out, "checked"), "checked 1", "{out}");
    assert_eq!(
        line(&out, "applied"),
        "applied 1 (paid 1, failed 0)",
        "{out}"
    );
    assert_eq!(line(&out, "left pending"), "left pending 0", "{out}");
    assert_eq!(line(&out, "too young"), "too young 0", "{out}");
    assert_eq!(order_status(&app, order_id).await, "paid");
    assert_eq!(payment_status(&app, &token).await, "paid");
    assert_eq!(stock_of(&app, "NL-AUTO-5G").await, before - 1);
    assert_eq!(sim.tx(&token).commits, 1);

    // A malformed duration is refused with a message naming the flag.
    let bad = tokio::task::spawn_blocking(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dispensary"))
            .args(["reconcile", "--min-age", "soon"])
            .env_clear()
            .env("APP_ENV", "test")
            .env("DATABASE_URL", "sqlite::memory:")
            .output()
            .expect("run dispensary reconcile")
    })
    .await
    .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--min-age"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
