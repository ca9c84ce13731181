//! Outbox dispatch: every outbox row is handed to every subscriber interested in its type, at
//! least once and, per subscriber, in order per aggregate.
//!
//! Each subscriber has its own `outbox.dispatch` job (payload `{"subscriber": name}`), so one that
//! fails backs off and is retried by the job runner while the others go on. The job walks the
//! events the subscriber has not taken yet in `id` order; when one fails, later events of the
//! same aggregate wait for the next attempt while other aggregates' events go on. A subscriber
//! that took an event gets an `outbox_deliveries` row; when every interested subscriber has one
//! the event gets its `dispatched_at` and its delivery rows are deleted. Events no subscriber is
//! interested in are marked dispatched at once.
//!
//! The runner's [`Schedule`] tick (every `JOB_POLL_MILLISECONDS`, in each process that runs
//! jobs) creates a subscriber's job when it has events waiting and no job queued, running or
//! failed — keyed by subscriber and second, so processes ticking together create one.
//!
//! Order caveat: ids are taken when a row is inserted, so two transactions writing events of the
//! same aggregate at the same time could commit out of id order. Services change one aggregate
//! under its row lock, which keeps that from happening in practice. Subscribers must tolerate a
//! repeat (at least once): the event's `id` identifies it.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::entities::job::{self, JobState};
use crate::entities::{outbox_delivery, outbox_event};
use crate::error::AppResult;
use crate::services::platform::jobs::{self, Job, JobError, NewJob, Registry, Schedule};
use crate::state::AppState;

/// Events read per query while a subscriber's job walks its backlog.
const BATCH: u64 = 100;

/// Which event types a subscriber takes.
#[derive(Debug, Clone, Copy)]
pub enum Interest {
    /// Every event (outbound webhooks, subscriptions).
    All,
    /// Only these types (`order.status_changed`, …).
    Only(&'static [&'static str]),
}

impl Interest {
    fn takes(&self, event_type: &str) -> bool {
        match self {
            Interest::All => true,
            Interest::Only(types) => types.contains(&event_type),
        }
    }
}

/// A reaction to domain events (email, outbound webhooks, subscriptions, …).
///
/// `deliver` is called at least once per event of a type it takes; it must be idempotent (the
/// event's `id` identifies it). `Err(JobError::Retry)` (or `Unavailable`) hands the event back:
/// later events of its aggregate wait and the subscriber's job is retried with backoff.
/// `Err(JobError::Fatal)` says the event can never be delivered: it is skipped (logged and
/// counted as `outcome="skipped"`) so that it does not hold its aggregate up for good.
pub trait Subscriber: Send + Sync + 'static {
    /// Stable and unique: deliveries are recorded under it.
    fn name(&self) -> &'static str;
    fn interest(&self) -> Interest;
    fn deliver(
        &self,
        st: &AppState,
        event: &outbox_event::Model,
    ) -> impl Future<Output = Result<(), JobError>> + Send;
}

type Delivery = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;

/// A subscriber with its future's type erased, so that one list holds them all.
trait Erased: Send + Sync {
    fn name(&self) -> &'static str;
    fn interest(&self) -> Interest;
    fn deliver(self: Arc<Self>, st: AppState, event: outbox_event::Model) -> Delivery;
}

impl<S: Subscriber> Erased for S {
    fn name(&self) -> &'static str {
        Subscriber::name(self)
    }
    fn interest(&self) -> Interest {
        Subscriber::interest(self)
    }
    fn deliver(self: Arc<Self>, st: AppState, event: outbox_event::Model) -> Delivery {
        Box::pin(async move { Subscriber::deliver(&*self, &st, &event).await })
    }
}

/// The subscribers of this build.
#[derive(Clone, Default)]
pub struct Subscribers(Vec<Arc<dyn Erased>>);

impl Subscribers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, s: impl Subscriber) -> Self {
        assert!(
            self.0.iter().all(|o| o.name() != s.name()),
            "two subscribers named {}",
            s.name()
        );
        self.0.push(Arc::new(s));
        self
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.name()).collect()
    }

    fn get(&self, name: &str) -> Option<&Arc<dyn Erased>> {
        self.0.iter().find(|s| s.name() == name)
    }

    /// The subscribers that take `event_type`.
    fn taking(&self, event_type: &str) -> Vec<&'static str> {
        self.0
            .iter()
            .filter(|s| s.interest().takes(event_type))
            .map(|s| s.name())
            .collect()
    }
}

/// Adds the dispatch job and its schedule for `subscribers` to `registry`.
pub fn register(registry: Registry, subscribers: Subscribers) -> Registry {
    registry
        .with(Dispatch(subscribers.clone()))
        .schedule(DispatchSchedule(subscribers))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DispatchPayload {
    pub subscriber: String,
}

/// The `outbox.dispatch` job: hands a subscriber the events it has not taken yet.
pub struct Dispatch(pub Subscribers);

impl Job for Dispatch {
    const KIND: &'static str = "outbox.dispatch";
    type Context = AppState;
    type Payload = DispatchPayload;

    async fn run(&self, st: &AppState, p: DispatchPayload) -> Result<(), JobError> {
        let Some(sub) = self.0.get(&p.subscriber) else {
            // A process of another version may know it; this one leaves the job to be retried.
            return Err(JobError::Retry(format!(
                "subscriber {} is not known to this process",
                p.subscriber
            )));
        };
        deliver_pending(st, &self.0, sub).await
    }
}

/// The events waiting for `sub` with an id above `after`, oldest first.
async fn waiting_for(
    st: &AppState,
    sub: &dyn Erased,
    after: i64,
    limit: u64,
) -> Result<Vec<outbox_event::Model>, sea_orm::DbErr> {
    let mut q = outbox_event::Entity::find()
        .filter(outbox_event::Column::DispatchedAt.is_null())
        .filter(outbox_event::Column::Id.gt(after))
        .filter(
            outbox_event::Column::Id.not_in_subquery(
                Query::select()
                    .column(outbox_delivery::Column::EventId)
                    .from(outbox_delivery::Entity)
                    .and_where(outbox_delivery::Column::Subscriber.eq(sub.name()))
                    .to_owned(),
            ),
        );
    if let Interest::Only(types) = sub.interest() {
        q = q.filter(outbox_event::Column::EventType.is_in(types.iter().copied()));
    }
    q.order_by_asc(outbox_event::Column::Id)
        .limit(limit)
        .all(&st.db)
        .await
}

async fn deliver_pending(
    st: &AppState,
    subs: &Subscribers,
    sub: &Arc<dyn Erased>,
) -> Result<(), JobError> {
    let name = sub.name();
    let count = |outcome: &str| {
        st.metrics
            .outbox_deliveries
            .with_label_values(&[name, outcome])
            .inc()
    };
    let mut blocked: HashSet<(String, Option<i64>)> = HashSet::new();
    let (mut failed, mut first_error) = (0usize, None::<String>);
    let mut after = 0;
    loop {
        let batch = waiting_for(st, sub.as_ref(), after, BATCH).await?;
        let full = batch.len() as u64 == BATCH;
        for event in batch {
            after = event.id;
            let aggregate = (event.aggregate_type.clone(), event.aggregate_id);
            if blocked.contains(&aggregate) {
                continue;
            }
            let id = event.id;
            match sub.clone().deliver(st.clone(), event.clone()).await {
                Ok(()) => {
                    count("delivered");
                    taken(st, subs, name, &event).await?;
                }
                Err(JobError::Fatal(reason)) => {
                    count("skipped");
                    tracing::error!(event = id, subscriber = name, %reason, "outbox event skipped: the subscriber cannot take it");
                    taken(st, subs, name, &event).await?;
                }
                // The database is gone: stop here, the job is retried without counting.
                Err(e @ JobError::Unavailable(_)) => return Err(e),
                Err(JobError::Retry(reason)) => {
                    count("failed");
                    tracing::warn!(event = id, subscriber = name, %reason, "outbox event not delivered; its aggregate waits for the retry");
                    blocked.insert(aggregate);
                    failed += 1;
                    first_error.get_or_insert(format!("event {id}: {reason}"));
                }
            }
        }
        if !full {
            break;
        }
    }
    match first_error {
        None => Ok(()),
        Some(first) => Err(JobError::Retry(format!(
            "{failed} event(s) not delivered to {name}; first: {first}"
        ))),
    }
}

/// Records that `name` has `event`; marks the event dispatched when every subscriber taking its
/// type has it.
async fn taken(
    st: &AppState,
    subs: &Subscribers,
    name: &str,
    event: &outbox_event::Model,
) -> Result<(), sea_orm::DbErr> {
    let now = st.clock.now();
    let inserted = outbox_delivery::Entity::insert(outbox_delivery::ActiveModel {
        event_id: Set(event.id),
        subscriber: Set(name.to_string()),
        delivered_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            outbox_delivery::Column::EventId,
            outbox_delivery::Column::Subscriber,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec(&st.db)
    .await;
    match inserted {
        Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
        Err(e) => return Err(e),
    }
    // Each subscriber's row is committed before it counts, so the last one in sees them all.
    let takers = subs.taking(&event.event_type);
    let have = outbox_delivery::Entity::find()
        .filter(outbox_delivery::Column::EventId.eq(event.id))
        .filter(outbox_delivery::Column::Subscriber.is_in(takers.iter().copied()))
        .count(&st.db)
        .await?;
    if have as usize >= takers.len() {
        outbox_event::Entity::update_many()
            .col_expr(
                outbox_event::Column::DispatchedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(outbox_event::Column::Id.eq(event.id))
            .filter(outbox_event::Column::DispatchedAt.is_null())
            .exec(&st.db)
            .await?;
        outbox_delivery::Entity::delete_many()
            .filter(outbox_delivery::Column::EventId.eq(event.id))
            .exec(&st.db)
            .await?;
    }
    Ok(())
}

/// The runner's tick for the outbox: marks events no subscriber takes as dispatched, and creates
/// the dispatch job of each subscriber with events waiting and no job on the way.
pub struct DispatchSchedule(pub Subscribers);

impl Schedule<AppState> for DispatchSchedule {
    fn tick<'a>(&'a self, st: &'a AppState) -> BoxFuture<'a, AppResult<()>> {
        Box::pin(async move {
            let now = st.clock.now();
            mark_untaken(st, &self.0).await?;
            for sub in &self.0 .0 {
                let name = sub.name();
                let prefix = format!("{}:{name}:", Dispatch::KIND);
                let on_the_way = job::Entity::find()
                    .filter(job::Column::Kind.eq(Dispatch::KIND))
                    .filter(job::Column::State.is_in([
                        JobState::Queued,
                        JobState::Running,
                        JobState::Failed,
                    ]))
                    .filter(job::Column::UniqueKey.starts_with(&prefix))
                    .count(&st.db)
                    .await?;
                if on_the_way > 0 || waiting_for(st, sub.as_ref(), 0, 1).await?.is_empty() {
                    continue;
                }
                let new = NewJob::of::<Dispatch>(&DispatchPayload {
                    subscriber: name.to_string(),
                })?
                .unique(format!("{prefix}{}", now.timestamp()));
                jobs::enqueue(&st.db, now, new).await?;
            }
            Ok(())
        })
    }
}

/// How many untaken events one tick marks at most.
const UNTAKEN_BATCH: u64 = 1000;

/// Events of a type no subscriber takes are dispatched as soon as they are seen.
async fn mark_untaken(st: &AppState, subs: &Subscribers) -> AppResult<()> {
    let mut taken_types: Vec<&'static str> = Vec::new();
    for s in &subs.0 {
        match s.interest() {
            Interest::All => return Ok(()),
            Interest::Only(types) => taken_types.extend_from_slice(types),
        }
    }
    let mut cond = Condition::all().add(outbox_event::Column::DispatchedAt.is_null());
    if !taken_types.is_empty() {
        cond = cond.add(outbox_event::Column::EventType.is_not_in(taken_types));
    }
    // A batch in id order, skipping rows another process is marking (PostgreSQL): two runners'
    // ticks never wait on each other's rows, so they cannot deadlock; what is skipped is marked by
    // a later tick.
    let mut batch = Query::select();
    batch
        .column(outbox_event::Column::Id)
        .from(outbox_event::Entity)
        .cond_where(cond)
        .order_by(outbox_event::Column::Id, sea_orm::Order::Asc)
        .limit(UNTAKEN_BATCH);
    if st.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        batch.lock_with_behavior(
            sea_orm::sea_query::LockType::NoKeyUpdate,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        );
    }
    outbox_event::Entity::update_many()
        .col_expr(
            outbox_event::Column::DispatchedAt,
            sea_orm::sea_query::Expr::value(st.clock.now()),
        )
        .filter(outbox_event::Column::Id.in_subquery(batch.to_owned()))
        .exec(&st.db)
        .await?;
    Ok(())
}

/// Deletes delivery marks of events already dispatched (a repeat delivery racing the marking can
/// leave one); how many.
pub async fn purge_leftovers(st: &AppState) -> AppResult<u64> {
    Ok(outbox_delivery::Entity::delete_many()
        .filter(
            outbox_delivery::Column::EventId.in_subquery(
                Query::select()
                    .column(outbox_event::Column::Id)
                    .from(outbox_event::Entity)
                    .and_where(outbox_event::Column::DispatchedAt.is_not_null())
                    .to_owned(),
            ),
        )
        .exec(&st.db)
        .await?
        .rows_affected)
}
