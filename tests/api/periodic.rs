//! Periodic work as singleton jobs: the expiry of unpaid orders, the purge and reconciliation each
//! run once per interval across any number of processes on one database.

use std::collections::BTreeSet;

use chrono::Duration;
use dispensary::entities::job::{self, JobState};
use dispensary::services::platform::jobs;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::helpers::*;

const KINDS: [&str; 3] = [
    "orders.expire_unpaid",
    "housekeeping.purge",
    "payments.reconcile",
];

#[tokio::test]
async fn two_processes_run_each_periodic_kind_once_per_interval_and_expire_each_order_once() {
    let env = [
        ("SWEEP_INTERVAL_SECONDS", "1"),
        ("RECONCILE_INTERVAL_SECONDS", "1"),
        ("PAYMENT_TIMEOUT_SECONDS", "1"),
    ];
    let app = TestApp::spawn_with(&env).await;
    let other = app.replica_with(&env).await;
    let token = app.customer_token().await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        let (id, started) = checkout_and_start(&app, &token, "NL-AUTO-1G", 1, None, "test").await;
        assert!(started.status.is_success(), "{}", started.text);
        orders.push(id);
    }

    // Two processes, each ticking every 50 ms, for several one-second intervals.
    let a = app.job_runner(2).start();
    let b = other.job_runner(2).start();
    tokio::time::sleep(std::time::Duration::from_millis(4_500)).await;
    a.shutdown(std::time::Duration::from_secs(5)).await.unwrap();
    b.shutdown(std::time::Duration::from_secs(5)).await.unwrap();

    for kind in KINDS {
        let rows = job::Entity::find()
            .filter(job::Column::Kind.eq(kind))
            .order_by_asc(job::Column::RunAt)
            .all(&app.state.db)
            .await
            .unwrap();
        assert!(rows.len() >= 3, "{kind}: {} runs", rows.len());
        // One job per slot (slots start on whole seconds), each run once and done.
        let slots: BTreeSet<_> = rows.iter().map(|j| j.run_at).collect();
        assert_eq!(slots.len(), rows.len(), "{kind}: a slot ran twice");
        for pair in rows.windows(2) {
            let gap = pair[1].run_at - pair[0].run_at;
            assert!(
                gap >= Duration::seconds(1) && gap.num_milliseconds() % 1000 == 0,
                "{kind}: {gap}"
            );
        }
        for j in &rows {
            assert_eq!((j.state, j.attempts), (JobState::Done, 1), "{kind} {j:?}");
            // Every payload is an object (the operators' API documents it as one).
            assert_eq!(j.payload, serde_json::json!({}), "{kind}");
            assert_eq!(
                j.unique_key.as_deref(),
                Some(jobs::slot_key(kind, j.run_at).as_str())
            );
        }
        // Both processes' /metrics together count each run once.
        let label = format!("kind=\"{kind}\"");
        let ran = app.metric("job_duration_seconds_count", &label).await
            + other.metric("job_duration_seconds_count", &label).await;
        assert_eq!(ran as usize, rows.len(), "{kind}");
        println!(
            "{kind}: {} intervals, {} runs (this process {}, the other {})",
            slots.len(),
            ran,
            app.metric("job_duration_seconds_count", &label).await,
            other.metric("job_duration_seconds_count", &label).await
        );
    }

    // Each unpaid order failed once, by the timeout.
    for id in orders {
        let o = app.get(&format!("/api/orders/{id}"), Some(&token)).await;
        assert_eq!(o.body["status"], "failed", "{}", o.text);
        let expired = app
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM outbox_events WHERE event_type = 'order.status_changed' \
                 AND aggregate_id = {id}"
            ))
            .await;
        assert_eq!(expired, 1, "order {id} changed status {expired} times");
        let reason = app
            .scalar_string(&format!(
                "SELECT CAST(payload AS TEXT) FROM outbox_events \
                 WHERE event_type = 'order.status_changed' AND aggregate_id = {id}"
            ))
            .await
            .unwrap();
        let reason: serde_json::Value = serde_json::from_str(&reason).unwrap();
        assert_eq!(
            (reason["to"].as_str(), reason["reason"].as_str()),
            (Some("failed"), Some("payment_timeout"))
        );
    }
}
