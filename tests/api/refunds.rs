//! The refund after an admin cancels a paid order is a job enqueued in the cancellation's
//! transaction: run at once by the request's process, retried with backoff when the provider
//! fails, and run by another process when the one that cancelled died before running it.

use chrono::Duration;
use dispensary::entities::job::{self, JobState};
use dispensary::services::commerce::orders::refund_job_key;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::helpers::*;
use crate::sim_webpay::{WebpaySim, CODE};
use crate::webpay::{browser_return, payment_status, start, token_of};

fn webpay_env(sim: &WebpaySim) -> Vec<(&str, &str)> {
    vec![
        ("WEBPAY_BASE_URL", sim.base_url.as_str()),
        ("WEBPAY_COMMERCE_CODE", CODE),
        ("PUBLIC_BASE_URL", "https://tienda.example.cl"),
        ("FRONTEND_BASE_URL", "https://front.example.cl"),
    ]
}

/// A paid Webpay order of `email`: (order id, Webpay token).
async fn paid_order(app: &TestApp, sim: &WebpaySim, email: &str) -> (i64, String) {
    let (customer, _, _) = app.register(email).await;
    let (order_id, s) = start(app, &customer, "WW-FEM-1G").await;
    let token = token_of(&s);
    sim.pay(&token, true);
    let r = browser_return(app, &[("token_ws", &token)], false).await;
    assert!(r.header("location").unwrap().ends_with("status=paid"));
    (order_id, token)
}

async fn cancel(app: &TestApp, admin: &str, order_id: i64) {
    let r = app
        .patch(
            &format!("/api/admin/orders/{order_id}"),
            Some(admin),
            json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled", "{}", r.text);
}

async fn refund_job(app: &TestApp, order_id: i64) -> job::Model {
    job::Entity::find()
        .filter(job::Column::UniqueKey.eq(refund_job_key(order_id)))
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the refund job committed with the cancellation")
}

async fn count(app: &TestApp, action: &str, order_id: i64) -> i64 {
    app.scalar_i64(&format!(
        "SELECT COUNT(*) FROM outbox_events WHERE event_type = '{action}' AND aggregate_id = {order_id}"
    ))
    .await
}

#[tokio::test]
async fn a_refund_that_fails_the_first_time_is_retried_and_refunds_once() {
    let sim = WebpaySim::start().await;
    let app = TestApp::spawn_with(&webpay_env(&sim)).await;
    let admin = app.admin_token().await;
    let (order_id, token) = paid_order(&app, &sim, "refund-retry@example.cl").await;

    sim.state.lock().unwrap().refuse_refunds = true;
    cancel(&app, &admin, order_id).await;
    // The attempt made at once failed: audited, the payment waits, the job backs off.
    assert_eq!(payment_status(&app, &token).await, "refund_required");
    assert_eq!(sim.tx(&token).refunded, 0);
    assert_eq!(count(&app, "payment.refund_failed", order_id).await, 1);
    let j = refund_job(&app, order_id).await;
    assert_eq!((j.state, j.attempts), (JobState::Failed, 1));
    assert_eq!(j.kind, "payments.refund");
    assert!(
        j.last_error
            .as_deref()
            .unwrap()
            .contains(&format!("order {order_id} failed")),
        "{:?}",
        j.last_error
    );
    let admin_id = app
        .scalar_i64("SELECT id FROM users WHERE email = 'admin@dispensario.local'")
        .await;
    assert_eq!(
        j.payload["actorUserId"], admin_id,
        "the job acts for the admin: {}",
        j.payload
    );

    // Webpay is back; the runner's retry after the backoff refunds, once.
    sim.state.lock().unwrap().refuse_refunds = false;
    let r = app.job_runner(1);
    let w = r.worker(0);
    assert_eq!(
        r.run_once(&w).await.unwrap(),
        None,
        "not before its backoff"
    );
    app.clock
        .advance(j.run_at - app.clock.now() + Duration::milliseconds(10));
    assert_eq!(r.run_once(&w).await.unwrap(), Some(j.id));
    assert_eq!(payment_status(&app, &token).await, "refunded");
    assert_eq!(sim.tx(&token).refunded, sim.tx(&token).amount);
    let j = refund_job(&app, order_id).await;
    assert_eq!((j.state, j.attempts), (JobState::Done, 2));
    assert_eq!(count(&app, "payment.refunded", order_id).await, 1);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT actor_user_id FROM outbox_events WHERE event_type = 'payment.refunded' \
             AND aggregate_id = {order_id}"
        ))
        .await,
        admin_id
    );
    // Nothing runs twice.
    app.clock.advance(Duration::hours(2));
    assert_eq!(r.run_once(&w).await.unwrap(), None);
    assert_eq!(sim.tx(&token).refunded, sim.tx(&token).amount);
    assert_eq!(count(&app, "payment.refunded", order_id).await, 1);
}

#[tokio::test]
async fn a_server_gone_after_the_cancellation_commit_leaves_the_refund_to_the_next_one() {
    let sim = WebpaySim::start().await;
    // This process commits the cancellation but never runs the refund (it runs no jobs: the
    // same state a process killed right after the commit leaves behind).
    let mut env = webpay_env(&sim);
    env.push(("JOBS", "off"));
    let app = TestApp::spawn_with(&env).await;
    let admin = app.admin_token().await;
    let (order_id, token) = paid_order(&app, &sim, "refund-crash@example.cl").await;
    cancel(&app, &admin, order_id).await;
    assert_eq!(payment_status(&app, &token).await, "refund_required");
    assert_eq!(sim.tx(&token).refunded, 0);
    let j = refund_job(&app, order_id).await;
    assert_eq!((j.state, j.attempts), (JobState::Queued, 0));

    // The next server on the database runs it, once.
    let next = app.replica_with(&webpay_env(&sim)).await;
    let handle = next.job_runner(1).start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while payment_status(&app, &token).await != "refunded" {
        assert!(std::time::Instant::now() < deadline, "not refunded in time");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    handle
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(sim.tx(&token).refunded, sim.tx(&token).amount);
    let j = refund_job(&app, order_id).await;
    assert_eq!((j.state, j.attempts), (JobState::Done, 1));
    assert_eq!(count(&app, "payment.refunded", order_id).await, 1);
    assert_eq!(count(&app, "payment.refund_failed", order_id).await, 0);
}
