//! The job runner: claims, leases and heartbeats, backoff and dead letters, operators' retries,
//! de-duplication, concurrent workers, graceful shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use dispensary::entities::job::{self, JobState};
use dispensary::services::platform::jobs::{
    self, Job, JobError, NewJob, Registry, Runner, RunnerOptions,
};
use dispensary::state::AppState;
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::helpers::*;

#[derive(Serialize, Deserialize)]
struct Payload {
    key: String,
}

/// Counts runs per key; fails the first `fail_first` runs of each key; takes `delay` per run.
#[derive(Clone, Default)]
struct Probe {
    runs: Arc<Mutex<HashMap<String, u32>>>,
    fail_first: u32,
    delay: std::time::Duration,
}

impl Probe {
    fn runs(&self, key: &str) -> u32 {
        self.runs.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

struct Flaky(Probe);

impl Job for Flaky {
    const KIND: &'static str = "test.flaky";
    type Context = AppState;
    type Payload = Payload;

    async fn run(&self, _st: &AppState, p: Payload) -> Result<(), JobError> {
        if !self.0.delay.is_zero() {
            tokio::time::sleep(self.0.delay).await;
        }
        let n = {
            let mut runs = self.0.runs.lock().unwrap();
            let n = runs.entry(p.key).or_default();
            *n += 1;
            *n
        };
        if n <= self.0.fail_first {
            return Err(JobError::Retry(format!("attempt {n} fails")));
        }
        Ok(())
    }
}

fn runner(app: &TestApp, probe: &Probe, lease: Duration) -> Runner {
    Runner::new(
        app.state.clone(),
        Registry::new().with(Flaky(probe.clone())),
        RunnerOptions {
            workers: 2,
            lease,
            poll: std::time::Duration::from_millis(20),
        },
    )
}

fn new_job(key: &str) -> NewJob {
    NewJob::of::<Flaky>(&Payload { key: key.into() }).unwrap()
}

async fn enqueue(app: &TestApp, job: NewJob) -> i64 {
    jobs::enqueue(&app.state.db, app.clock.now(), job)
        .await
        .unwrap()
        .expect("created")
}

async fn row(app: &TestApp, id: i64) -> job::Model {
    job::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_failing_job_backs_off_dead_letters_and_an_operator_retries_it() {
    let app = TestApp::spawn().await;
    let probe = Probe {
        fail_first: 3,
        ..Default::default()
    };
    let r = runner(&app, &probe, Duration::seconds(30));
    let w = r.worker(0);
    let id = enqueue(&app, new_job("a").max_attempts(3)).await;
    assert_eq!(row(&app, id).await.state, JobState::Queued);

    let mut delays = Vec::new();
    for attempt in 1..=3 {
        assert_eq!(r.run_once(&w).await.unwrap(), Some(id), "attempt {attempt}");
        let j = row(&app, id).await;
        assert_eq!(j.attempts, attempt);
        assert_eq!(
            j.last_error.as_deref(),
            Some(format!("attempt {attempt} fails").as_str())
        );
        assert!(j.locked_by.is_none() && j.locked_until.is_none());
        if attempt < 3 {
            assert_eq!(j.state, JobState::Failed);
            let delay = (j.run_at - j.updated_at).num_milliseconds();
            delays.push(delay);
            // Not due before its time.
            assert_eq!(r.run_once(&w).await.unwrap(), None);
            app.clock.advance(Duration::milliseconds(delay + 10));
        } else {
            assert_eq!(j.state, JobState::Dead);
        }
    }
    // 5 s then 10 s, each ±20 %: growing.
    assert!((4_000..=6_000).contains(&delays[0]), "{delays:?}");
    assert!((8_000..=12_000).contains(&delays[1]), "{delays:?}");
    assert_eq!(
        app.metric("jobs_failed_total", "kind=\"test.flaky\"").await,
        3.0
    );
    assert_eq!(
        app.metric("jobs_dead_total", "kind=\"test.flaky\"").await,
        1.0
    );
    assert_eq!(
        app.metric("job_duration_seconds_count", "kind=\"test.flaky\"")
            .await,
        3.0
    );
    // Dead stays dead, however long one waits.
    app.clock.advance(Duration::days(1));
    assert_eq!(r.run_once(&w).await.unwrap(), None);
    assert_eq!(probe.runs("a"), 3);

    // The operator's retry: queued with fresh attempts, then done.
    let j = jobs::retry(&app.state, id).await.unwrap();
    assert_eq!((j.state, j.attempts), (JobState::Queued, 0));
    assert_eq!(r.run_once(&w).await.unwrap(), Some(id));
    let j = row(&app, id).await;
    assert_eq!((j.state, j.attempts), (JobState::Done, 1));
    assert_eq!(probe.runs("a"), 4);
    // Only dead or failed jobs can be retried.
    let e = jobs::retry(&app.state, id).await.unwrap_err();
    assert_eq!(e.code, dispensary::error::ErrorCode::Conflict);
    let e = jobs::retry(&app.state, id + 1000).await.unwrap_err();
    assert_eq!(e.code, dispensary::error::ErrorCode::NotFound);
}

#[tokio::test]
async fn an_unreadable_payload_is_dead_at_once() {
    let app = TestApp::spawn().await;
    let probe = Probe::default();
    let r = runner(&app, &probe, Duration::seconds(30));
    let mut bad = new_job("x");
    bad.payload = json!({"unexpected": true});
    let id = enqueue(&app, bad).await;
    assert_eq!(r.run_once(&r.worker(0)).await.unwrap(), Some(id));
    let j = row(&app, id).await;
    assert_eq!((j.state, j.attempts), (JobState::Dead, 1));
    assert!(
        j.last_error
            .as_deref()
            .unwrap()
            .contains("unreadable payload"),
        "{:?}",
        j.last_error
    );
}

#[tokio::test]
async fn a_worker_that_dies_loses_its_lease_and_the_job_runs_once_elsewhere() {
    let app = TestApp::spawn().await;
    let probe = Probe::default();
    let lease = Duration::seconds(30);
    let b = runner(&app, &probe, lease);
    let id = enqueue(&app, new_job("lease")).await;
    // Worker A claims it and dies before finishing.
    let held = jobs::claim(&app.state, "worker-a#0", &["test.flaky"], lease)
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(held.id, id);
    assert_eq!(held.state, JobState::Running);
    assert_eq!(held.locked_by.as_deref(), Some("worker-a#0"));
    // While the lease holds, nobody else takes it.
    assert_eq!(b.run_once(&b.worker(0)).await.unwrap(), None);
    app.clock.advance(Duration::seconds(31));
    assert_eq!(b.run_once(&b.worker(0)).await.unwrap(), Some(id));
    let j = row(&app, id).await;
    assert_eq!((j.state, j.attempts), (JobState::Done, 2));
    assert_eq!(probe.runs("lease"), 1);
    // A's late outcome does not overwrite B's.
    let late = jobs::finish(
        &app.state,
        &held,
        "worker-a#0",
        &Err(JobError::Retry("late".into())),
    )
    .await
    .unwrap();
    assert_eq!(late, None);
    assert_eq!(row(&app, id).await.state, JobState::Done);

    // A lease that runs out on the last allowed attempt dead-letters the job.
    let last = enqueue(&app, new_job("last").max_attempts(1)).await;
    jobs::claim(&app.state, "worker-a#0", &["test.flaky"], lease)
        .await
        .unwrap()
        .expect("claimed");
    app.clock.advance(Duration::seconds(31));
    assert_eq!(b.run_once(&b.worker(0)).await.unwrap(), None);
    let j = row(&app, last).await;
    assert_eq!(j.state, JobState::Dead);
    assert!(j.last_error.unwrap().contains("lease"));
    assert_eq!(probe.runs("last"), 0);
}

#[tokio::test]
async fn the_heartbeat_keeps_a_long_job_leased() {
    let app = TestApp::spawn().await;
    let slow = Probe {
        delay: std::time::Duration::from_millis(2_500),
        ..Default::default()
    };
    let lease = Duration::seconds(1);
    let a = runner(&app, &slow, lease);
    let other = runner(&app, &Probe::default(), lease);
    let id = enqueue(&app, new_job("long")).await;
    let running = tokio::spawn({
        let a = a.clone();
        async move { a.run_once(&a.worker(0)).await.unwrap() }
    });
    // Well past the first lease, the job is still held: the heartbeat renewed it.
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    let j = row(&app, id).await;
    assert_eq!(j.state, JobState::Running);
    assert!(j.locked_until.unwrap() > app.clock.now(), "renewed");
    assert_eq!(other.run_once(&other.worker(0)).await.unwrap(), None);
    assert_eq!(running.await.unwrap(), Some(id));
    assert_eq!(row(&app, id).await.state, JobState::Done);
    assert_eq!(slow.runs("long"), 1);
}

#[tokio::test]
async fn a_unique_key_creates_one_job() {
    let app = TestApp::spawn().await;
    let first = jobs::enqueue(
        &app.state.db,
        app.clock.now(),
        new_job("u").unique("mail:evt-1:order_paid"),
    )
    .await
    .unwrap();
    assert!(first.is_some());
    let second = jobs::enqueue(
        &app.state.db,
        app.clock.now(),
        new_job("u").unique("mail:evt-1:order_paid"),
    )
    .await
    .unwrap();
    assert_eq!(second, None);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM jobs").await, 1);
}

#[tokio::test]
async fn two_runners_claiming_concurrently_never_run_a_job_twice() {
    let app = TestApp::spawn().await;
    let probe = Probe::default();
    for i in 0..30 {
        enqueue(&app, new_job(&format!("k{i}"))).await;
    }
    // Two processes' runners of two workers each, over one database.
    let one = runner(&app, &probe, Duration::seconds(30)).start();
    let two = runner(&app, &probe, Duration::seconds(30)).start();
    for _ in 0..500 {
        let done = app
            .scalar_i64("SELECT COUNT(*) FROM jobs WHERE state = 'done'")
            .await;
        if done == 30 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    one.shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    two.shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM jobs WHERE state = 'done' AND attempts = 1")
            .await,
        30
    );
    for i in 0..30 {
        assert_eq!(probe.runs(&format!("k{i}")), 1, "k{i}");
    }
}

#[tokio::test]
async fn shutdown_hands_a_running_job_back_to_the_queue() {
    let app = TestApp::spawn().await;
    let slow = Probe {
        delay: std::time::Duration::from_secs(30),
        ..Default::default()
    };
    let handle = runner(&app, &slow, Duration::seconds(60)).start();
    let id = enqueue(&app, new_job("held")).await;
    for _ in 0..200 {
        if row(&app, id).await.state == JobState::Running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(row(&app, id).await.state, JobState::Running);
    let released = handle
        .shutdown(std::time::Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(released, 1);
    let j = row(&app, id).await;
    assert_eq!(j.state, JobState::Queued);
    assert_eq!(j.attempts, 0, "the interrupted attempt is not counted");
    assert!(j.locked_by.is_none());
    // Another process picks it up and finishes it.
    let quick = Probe::default();
    let r = runner(&app, &quick, Duration::seconds(60));
    assert_eq!(r.run_once(&r.worker(0)).await.unwrap(), Some(id));
    assert_eq!(row(&app, id).await.state, JobState::Done);
    assert_eq!(quick.runs("held"), 1);
}

#[tokio::test]
async fn operators_list_inspect_and_retry_jobs_over_rest_and_graphql() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    let probe = Probe {
        fail_first: 1,
        ..Default::default()
    };
    let r = runner(&app, &probe, Duration::seconds(30));
    let dead = enqueue(&app, new_job("ops").max_attempts(1)).await;
    let waiting = enqueue(
        &app,
        new_job("later").run_at(app.clock.now() + Duration::hours(1)),
    )
    .await;
    assert_eq!(r.run_once(&r.worker(0)).await.unwrap(), Some(dead));
    assert_eq!(row(&app, dead).await.state, JobState::Dead);

    let list = app.get("/api/admin/jobs?state=dead", Some(&admin)).await;
    assert_eq!(list.status, reqwest::StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["total"], 1);
    let item = &list.body["items"][0];
    assert_eq!(item["id"], dead);
    assert_eq!(item["kind"], "test.flaky");
    assert_eq!(item["state"], "dead");
    assert_eq!(item["payload"], json!({"key": "ops"}));
    assert_eq!(item["attempts"], 1);
    assert_eq!(item["maxAttempts"], 1);
    assert_eq!(item["lastError"], "attempt 1 fails");
    assert!(item["lockedBy"].is_null());
    let all = app
        .get("/api/admin/jobs?kind=test.flaky&pageSize=1", Some(&admin))
        .await;
    assert_eq!(all.body["total"], 2, "{}", all.text);
    assert_eq!(all.body["items"][0]["id"], waiting, "newest first");
    let bad = app.get("/api/admin/jobs?state=stuck", Some(&admin)).await;
    assert_eq!(bad.status, reqwest::StatusCode::BAD_REQUEST, "{}", bad.text);
    assert_eq!(
        app.get("/api/admin/jobs", Some(&customer)).await.status,
        reqwest::StatusCode::FORBIDDEN
    );
    let one = app
        .get(&format!("/api/admin/jobs/{waiting}"), Some(&admin))
        .await;
    assert_eq!(one.body["state"], "queued", "{}", one.text);
    assert_eq!(
        app.get("/api/admin/jobs/999999", Some(&admin)).await.status,
        reqwest::StatusCode::NOT_FOUND
    );
    // The gauges (refreshed by the runner every few seconds): one waiting (the dead one is not),
    // none running.
    jobs::refresh_gauges(&app.state).await.unwrap();
    assert_eq!(app.metric("jobs_pending", "").await, 1.0);
    assert_eq!(app.metric("jobs_running", "").await, 0.0);

    // Retried by the operator: queued, audited, then done.
    let retried = app
        .post(
            &format!("/api/admin/jobs/{dead}/retry"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(retried.status, reqwest::StatusCode::OK, "{}", retried.text);
    assert_eq!(retried.body["state"], "queued");
    assert_eq!(retried.body["attempts"], 0);
    jobs::refresh_gauges(&app.state).await.unwrap();
    assert_eq!(app.metric("jobs_pending", "").await, 2.0);
    let again = app
        .post(
            &format!("/api/admin/jobs/{dead}/retry"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(
        again.status,
        reqwest::StatusCode::CONFLICT,
        "{}",
        again.text
    );
    assert!(again.has_detail("state", "not_retryable"), "{}", again.text);
    assert_eq!(
        app.post(
            &format!("/api/admin/jobs/{dead}/retry"),
            Some(&customer),
            json!({})
        )
        .await
        .status,
        reqwest::StatusCode::FORBIDDEN
    );
    let audit = app
        .scalar_string(&format!(
            "SELECT CAST(meta AS TEXT) FROM system_logs WHERE action = 'job.retried' AND entity_id = {dead}"
        ))
        .await
        .expect("audited");
    let audit: serde_json::Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(audit, json!({"kind": "test.flaky", "from": "dead"}));
    assert_eq!(r.run_once(&r.worker(0)).await.unwrap(), Some(dead));
    assert_eq!(row(&app, dead).await.state, JobState::Done);

    // The GraphQL twins.
    let g = app
        .gql(
            Some(&admin),
            "query($id: Int!) { adminJobs(state: done) { total items { id state kind } } adminJob(id: $id) { id state attempts } }",
            json!({"id": dead}),
        )
        .await;
    assert_eq!(g.body["data"]["adminJobs"]["total"], 1, "{}", g.text);
    assert_eq!(g.body["data"]["adminJobs"]["items"][0]["id"], dead);
    assert_eq!(g.body["data"]["adminJob"]["state"], "done");
    let g = app
        .gql(
            Some(&admin),
            "mutation($id: Int!) { retryJob(id: $id) { id state } }",
            json!({"id": dead}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "conflict",
        "{}",
        g.text
    );
    let g = app
        .gql(Some(&customer), "{ adminJobs { total } }", json!({}))
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "forbidden",
        "{}",
        g.text
    );
}

/// Fails its first `fail_first` runs as if the database had gone away mid-attempt.
struct Outage(Probe);

impl Job for Outage {
    const KIND: &'static str = "test.outage";
    type Context = AppState;
    type Payload = Payload;

    async fn run(&self, _st: &AppState, p: Payload) -> Result<(), JobError> {
        let n = {
            let mut runs = self.0.runs.lock().unwrap();
            let n = runs.entry(p.key).or_default();
            *n += 1;
            *n
        };
        if n <= self.0.fail_first {
            let lost =
                sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal("connection refused".into()));
            // What `?` on the database's error gives a handler.
            return Err(JobError::from(lost));
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_attempt_that_lost_the_database_is_retried_shortly_and_never_counted() {
    let app = TestApp::spawn().await;
    let probe = Probe {
        fail_first: 4,
        ..Default::default()
    };
    let r = Runner::new(
        app.state.clone(),
        Registry::new().with(Outage(probe.clone())),
        RunnerOptions {
            workers: 1,
            lease: Duration::seconds(30),
            poll: std::time::Duration::from_millis(20),
        },
    );
    let w = r.worker(0);
    let id = enqueue(
        &app,
        NewJob::of::<Outage>(&Payload { key: "o".into() })
            .unwrap()
            .max_attempts(2),
    )
    .await;
    // Four outages on a job allowed two attempts: none of them is counted, none dead-letters it.
    for outage in 1..=4 {
        assert_eq!(r.run_once(&w).await.unwrap(), Some(id), "outage {outage}");
        let j = row(&app, id).await;
        assert_eq!(
            (j.state, j.attempts),
            (JobState::Failed, 0),
            "outage {outage}"
        );
        assert!(j.locked_by.is_none() && j.locked_until.is_none());
        assert!(
            j.last_error
                .as_deref()
                .unwrap()
                .starts_with("database unreachable"),
            "{:?}",
            j.last_error
        );
        // Tried again shortly (not after a growing backoff), and not before.
        assert_eq!(
            (j.run_at - j.updated_at).num_seconds(),
            jobs::UNAVAILABLE_RETRY_SECONDS
        );
        assert_eq!(r.run_once(&w).await.unwrap(), None);
        app.clock
            .advance(Duration::seconds(jobs::UNAVAILABLE_RETRY_SECONDS));
    }
    assert_eq!(r.run_once(&w).await.unwrap(), Some(id));
    let j = row(&app, id).await;
    assert_eq!((j.state, j.attempts), (JobState::Done, 1));
    assert_eq!(probe.runs("o"), 5);
    assert_eq!(
        app.metric("jobs_dead_total", "kind=\"test.outage\"").await,
        0.0
    );
    // An application error saying the database is unreachable is the same outcome.
    assert_eq!(
        JobError::from(dispensary::error::AppError::database_unavailable()),
        JobError::Unavailable("The service is briefly unavailable; try again shortly".into())
    );
    assert!(matches!(
        JobError::from(dispensary::error::AppError::conflict("taken")),
        JobError::Retry(_)
    ));
}

#[tokio::test]
async fn finished_jobs_are_purged_after_their_retention() {
    let app = TestApp::spawn().await;
    let probe = Probe::default();
    let r = runner(&app, &probe, Duration::seconds(30));
    let w = r.worker(0);
    let mut unreadable = new_job("dead");
    unreadable.payload = json!({"unexpected": true});
    let dead = enqueue(&app, unreadable).await;
    assert_eq!(r.run_once(&w).await.unwrap(), Some(dead));
    let done = enqueue(&app, new_job("done")).await;
    assert_eq!(r.run_once(&w).await.unwrap(), Some(done));
    let waiting = enqueue(
        &app,
        new_job("later").run_at(app.clock.now() + Duration::days(60)),
    )
    .await;
    assert_eq!(row(&app, dead).await.state, JobState::Dead);
    assert_eq!(row(&app, done).await.state, JobState::Done);
    assert_eq!(jobs::purge_finished(&app.state).await.unwrap(), 0);

    app.clock
        .advance(Duration::days(jobs::DONE_RETENTION_DAYS) + Duration::seconds(1));
    assert_eq!(jobs::purge_finished(&app.state).await.unwrap(), 1);
    let left: Vec<i64> = job::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left, vec![dead, waiting]);
    app.clock.advance(Duration::days(
        jobs::DEAD_RETENTION_DAYS - jobs::DONE_RETENTION_DAYS,
    ));
    assert_eq!(jobs::purge_finished(&app.state).await.unwrap(), 1);
    assert!(job::Entity::find_by_id(waiting)
        .one(&app.state.db)
        .await
        .unwrap()
        .is_some());
}
