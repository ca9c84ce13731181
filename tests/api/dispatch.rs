//! Outbox dispatch: every outbox row reaches every subscriber that takes its type, in order per
//! aggregate; a subscriber that fails is retried with backoff while the others (and its other
//! aggregates) go on; rows are marked dispatched once every taker has them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use dispensary::entities::job::{self, JobState};
use dispensary::entities::{outbox_delivery, outbox_event};
use dispensary::services::platform::events::{dispatch, Interest, Subscriber, Subscribers};
use dispensary::services::platform::jobs::{JobError, Registry, Runner, RunnerOptions};
use dispensary::state::AppState;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::json;

use crate::helpers::*;

/// Records what it is handed; fails the first `fail[aggregate id]` deliveries of that aggregate,
/// and gives up for good (`Fatal`) on every event when `fatal`.
#[derive(Clone)]
struct Recorder {
    name: &'static str,
    interest: Interest,
    got: Arc<Mutex<Vec<outbox_event::Model>>>,
    fail: Arc<Mutex<HashMap<i64, u32>>>,
    fatal: bool,
}

impl Recorder {
    fn new(name: &'static str, interest: Interest) -> Self {
        Recorder {
            name,
            interest,
            got: Arc::default(),
            fail: Arc::default(),
            fatal: false,
        }
    }

    fn ids(&self) -> Vec<i64> {
        self.got.lock().unwrap().iter().map(|e| e.id).collect()
    }
}

impl Subscriber for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn interest(&self) -> Interest {
        self.interest
    }

    async fn deliver(&self, _st: &AppState, event: &outbox_event::Model) -> Result<(), JobError> {
        if self.fatal {
            return Err(JobError::Fatal("never deliverable".into()));
        }
        if let Some(left) = self
            .fail
            .lock()
            .unwrap()
            .get_mut(&event.aggregate_id.unwrap_or_default())
            .filter(|left| **left > 0)
        {
            *left -= 1;
            return Err(JobError::Retry("the far end said 503".into()));
        }
        self.got.lock().unwrap().push(event.clone());
        Ok(())
    }
}

fn runner(app: &TestApp, subs: Subscribers) -> Runner {
    Runner::new(
        app.state.clone(),
        dispatch::register(Registry::new(), subs),
        RunnerOptions {
            workers: 1,
            lease: Duration::seconds(30),
            poll: std::time::Duration::from_millis(20),
        },
    )
}

async fn outbox(app: &TestApp) -> Vec<outbox_event::Model> {
    outbox_event::Entity::find()
        .order_by_asc(outbox_event::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
}

async fn dispatch_jobs(app: &TestApp) -> Vec<job::Model> {
    job::Entity::find()
        .filter(job::Column::Kind.eq("outbox.dispatch"))
        .order_by_asc(job::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
}

/// Three coupons, each created and then updated twice: three aggregates of three events.
async fn three_coupons(app: &TestApp) -> Vec<i64> {
    let admin = app.admin_token().await;
    let mut ids = Vec::new();
    for code in ["UNO", "DOS", "TRES"] {
        let r = app
            .post(
                "/api/coupons",
                Some(&admin),
                json!({"code": code, "type": "percent", "value": 10}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.body["id"].as_i64().unwrap());
    }
    for value in [15, 20] {
        for id in &ids {
            let r = app
                .patch(
                    &format!("/api/coupons/{id}"),
                    Some(&admin),
                    json!({"value": value}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    }
    ids
}

/// Ids of `events` about coupon `id`, in the order given.
fn of_coupon(events: &[outbox_event::Model], id: i64) -> Vec<i64> {
    events
        .iter()
        .filter(|e| e.aggregate_type == "coupon" && e.aggregate_id == Some(id))
        .map(|e| e.id)
        .collect()
}

#[tokio::test]
async fn every_event_reaches_each_taker_in_order_and_a_failing_subscriber_waits_alone() {
    let app = TestApp::spawn().await;
    let coupons = three_coupons(&app).await;
    let (a, b, c) = (coupons[0], coupons[1], coupons[2]);
    let all = Recorder::new("all", Interest::All);
    let picky = Recorder::new("picky", Interest::Only(&["coupon.updated"]));
    // Coupon B's events fail twice at `picky`.
    picky.fail.lock().unwrap().insert(b, 2);
    let r = runner(
        &app,
        Subscribers::new().with(all.clone()).with(picky.clone()),
    );
    let w = r.worker(0);
    let events = outbox(&app).await;
    assert!(events.len() >= 9, "{} events", events.len());
    assert!(events.iter().all(|e| e.dispatched_at.is_none()));

    // One tick: one job per subscriber with events waiting.
    r.schedule_once().await.unwrap();
    r.schedule_once().await.unwrap();
    let queued = dispatch_jobs(&app).await;
    assert_eq!(queued.len(), 2, "{queued:?}");
    assert_eq!(queued[0].payload, json!({"subscriber": "all"}));
    assert_eq!(queued[1].payload, json!({"subscriber": "picky"}));
    while r.run_once(&w).await.unwrap().is_some() {}

    // `all` has every event, each once, in id order.
    let every: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert_eq!(all.ids(), every);
    // `picky` has A's and C's updates; B's first update failed and its second one waits behind it.
    let updates = |id| -> Vec<i64> {
        events
            .iter()
            .filter(|e| e.event_type == "coupon.updated" && e.aggregate_id == Some(id))
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(updates(a).len(), 2);
    let mut expected: Vec<i64> = [updates(a), updates(c)].concat();
    expected.sort_unstable();
    assert_eq!(picky.ids(), expected);
    let jobs_now = dispatch_jobs(&app).await;
    assert_eq!(jobs_now[0].state, JobState::Done);
    let failing = &jobs_now[1];
    assert_eq!((failing.state, failing.attempts), (JobState::Failed, 1));
    let err = failing.last_error.clone().unwrap();
    assert!(
        err.starts_with(&format!(
            "1 event(s) not delivered to picky; first: event {}:",
            updates(b)[0]
        )),
        "{err}"
    );

    // Dispatched: everything but B's updates, which `picky` has not taken yet.
    let now = outbox(&app).await;
    for e in &now {
        let waiting = updates(b).contains(&e.id);
        assert_eq!(
            e.dispatched_at.is_none(),
            waiting,
            "event {} {}",
            e.id,
            e.event_type
        );
    }
    // Only `all`'s hold on B's updates is left in the deliveries table.
    let held = outbox_delivery::Entity::find()
        .order_by_asc(outbox_delivery::Column::EventId)
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        held.iter()
            .map(|d| (d.event_id, d.subscriber.as_str()))
            .collect::<Vec<_>>(),
        updates(b).iter().map(|id| (*id, "all")).collect::<Vec<_>>()
    );

    // A tick meanwhile creates nothing: `picky` has its job on the way, `all` nothing waiting.
    r.schedule_once().await.unwrap();
    assert_eq!(dispatch_jobs(&app).await.len(), 2);

    // The retry after its backoff fails once more, then B's updates arrive, in order.
    for attempt in 2..=3 {
        let j = dispatch_jobs(&app).await.remove(1);
        assert_eq!(
            r.run_once(&w).await.unwrap(),
            None,
            "not due before its backoff"
        );
        app.clock
            .advance(j.run_at - app.clock.now() + Duration::milliseconds(10));
        assert_eq!(r.run_once(&w).await.unwrap(), Some(j.id));
        let j = dispatch_jobs(&app).await.remove(1);
        assert_eq!(j.attempts, attempt);
        let state = if attempt == 2 {
            JobState::Failed
        } else {
            JobState::Done
        };
        assert_eq!(j.state, state);
    }
    let got = picky.ids();
    assert_eq!(got.len(), 6);
    assert_eq!(&got[4..], updates(b).as_slice());
    for id in [a, b, c] {
        let mine: Vec<i64> = got
            .iter()
            .copied()
            .filter(|g| of_coupon(&events, id).contains(g))
            .collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
    }
    // Every row dispatched, the deliveries table empty, nothing more to schedule.
    assert!(outbox(&app).await.iter().all(|e| e.dispatched_at.is_some()));
    assert_eq!(
        outbox_delivery::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
    r.schedule_once().await.unwrap();
    assert_eq!(dispatch_jobs(&app).await.len(), 2);
    assert_eq!(all.ids(), every, "`all` was not handed anything twice");
    assert_eq!(
        app.metric(
            "outbox_deliveries_total",
            "outcome=\"failed\",subscriber=\"picky\""
        )
        .await,
        2.0
    );
    assert_eq!(
        app.metric(
            "outbox_deliveries_total",
            "outcome=\"delivered\",subscriber=\"picky\""
        )
        .await,
        6.0
    );
}

#[tokio::test]
async fn the_running_runner_hands_new_events_over_by_itself() {
    let app = TestApp::spawn().await;
    let all = Recorder::new("all", Interest::All);
    let handle = runner(&app, Subscribers::new().with(all.clone())).start();
    let coupons = three_coupons(&app).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let events = outbox(&app).await;
        if events.iter().all(|e| e.dispatched_at.is_some()) {
            let every: Vec<i64> = events.iter().map(|e| e.id).collect();
            let mut got = all.ids();
            for id in &coupons {
                let mine: Vec<i64> = got
                    .iter()
                    .copied()
                    .filter(|g| of_coupon(&events, *id).contains(g))
                    .collect();
                assert_eq!(mine, of_coupon(&events, *id), "coupon {id}");
            }
            got.sort_unstable();
            got.dedup();
            assert_eq!(got, every);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not dispatched in time: {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    handle
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn events_nobody_takes_are_dispatched_at_once_and_a_fatal_refusal_skips_one() {
    let app = TestApp::spawn().await;
    three_coupons(&app).await;
    // This build's own registry: its subscriber (mail) takes none of these events, so the tick
    // marks them all dispatched and creates no job.
    let own = Runner::new(
        app.state.clone(),
        dispensary::services::composition::registry(&app.state.config),
        RunnerOptions::from_config(&app.state.config),
    );
    let admin = app.admin_token().await;
    let before = outbox(&app).await.len();
    own.schedule_once().await.unwrap();
    assert!(outbox(&app).await.iter().all(|e| e.dispatched_at.is_some()));
    assert!(dispatch_jobs(&app).await.is_empty());

    // A subscriber that refuses an event for good does not hold its aggregate up.
    let r = app
        .post(
            "/api/coupons",
            Some(&admin),
            json!({"code": "CUATRO", "type": "percent", "value": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut refuses = Recorder::new("refuses", Interest::Only(&["coupon.created"]));
    refuses.fatal = true;
    let r = runner(&app, Subscribers::new().with(refuses.clone()));
    r.schedule_once().await.unwrap();
    assert!(r.run_once(&r.worker(0)).await.unwrap().is_some());
    let events = outbox(&app).await;
    assert_eq!(events.len(), before + 1);
    assert!(events.iter().all(|e| e.dispatched_at.is_some()));
    assert_eq!(dispatch_jobs(&app).await[0].state, JobState::Done);
    assert!(refuses.ids().is_empty());
    // A delivery mark left behind on a dispatched event (a repeat racing the marking) is purged.
    let last = events.last().unwrap().id;
    app.execute(&format!(
        "INSERT INTO outbox_deliveries (event_id, subscriber, delivered_at) \
         SELECT id, 'late', occurred_at FROM outbox_events WHERE id = {last}"
    ))
    .await;
    assert_eq!(dispatch::purge_leftovers(&app.state).await.unwrap(), 1);
    assert_eq!(dispatch::purge_leftovers(&app.state).await.unwrap(), 0);
    assert_eq!(
        app.metric(
            "outbox_deliveries_total",
            "outcome=\"skipped\",subscriber=\"refuses\""
        )
        .await,
        1.0
    );
}
