//! Durable background jobs: work that is retried until it succeeds, runs once across any number
//! of server processes on one database, and can be inspected and retried by an operator.
//!
//! A job is a row of `jobs` (kind, JSON payload, state, `run_at`, attempts). A worker **claims**
//! the oldest due job of a kind it knows — `FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock
//! of a short `BEGIN IMMEDIATE` transaction on SQLite — and holds a **lease** (`locked_until`)
//! that a heartbeat renews while the handler runs. A worker that dies stops renewing: once the
//! lease has passed, another worker claims the job again. A failed attempt is retried at
//! `run_at = now + backoff` (exponential, with jitter); after `max_attempts` the job is **dead**
//! until an operator retries it. Finishing is a compare-and-set on the lease holder, so a worker
//! that lost its lease cannot overwrite the outcome of the one that took over. Handlers are typed
//! per kind ([`Job`]) and must be idempotent: a job may run more than once (a lost lease, a
//! crash after the work but before the outcome was written).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::BoxFuture;
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, UpdateMany,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::db::{begin_write, Db};
use crate::entities::job::{self, JobState};
use crate::error::{is_connection_failure, AppError, AppResult, ErrorCode};
use crate::metrics::Metrics;

/// What jobs run with, and what the machinery needs of it: the database, the clock, the metrics,
/// the configuration, and the job kinds this process knows (built once at start-up, by the
/// composition root).
pub trait JobContext: Clone + Send + Sync + 'static {
    fn db(&self) -> &Db;
    fn clock(&self) -> &Clock;
    fn metrics(&self) -> &Metrics;
    fn config(&self) -> &Config;
    /// The registry a job queued by key alone runs through ([`run_queued_now`]); `None` before
    /// one was installed.
    fn registry(&self) -> Option<&Registry<Self>>;
}

/// Attempts before a job is dead-lettered, unless the job says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;
/// The first retry waits about this long; each further one twice as long (±20 % jitter).
pub const BACKOFF_BASE_SECONDS: i64 = 5;
/// No retry waits longer than this.
pub const BACKOFF_MAX_SECONDS: i64 = 3600;
/// A job whose attempt found the database unreachable runs again after this long.
pub const UNAVAILABLE_RETRY_SECONDS: i64 = 2;
/// `last_error` keeps this many characters.
const ERROR_MAX_CHARS: usize = 2000;

/// Why an attempt failed: `Retry` is tried again with backoff and counts toward `max_attempts`
/// (a provider refused, a row was not there yet); `Unavailable` means the database could not be
/// reached — the attempt is not counted and the job is tried again shortly, so an outage never
/// dead-letters work; `Fatal` goes straight to `dead` (a payload that can never work).
/// `?` on a `DbErr` or an `AppError` picks `Unavailable` for connection failures, `Retry` otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    Retry(String),
    Unavailable(String),
    Fatal(String),
}

impl JobError {
    fn message(&self) -> &str {
        match self {
            JobError::Retry(m) | JobError::Unavailable(m) | JobError::Fatal(m) => m,
        }
    }
}

impl From<AppError> for JobError {
    fn from(e: AppError) -> Self {
        if e.code == ErrorCode::ServiceUnavailable {
            JobError::Unavailable(e.message)
        } else {
            JobError::Retry(e.message)
        }
    }
}

impl From<DbErr> for JobError {
    fn from(e: DbErr) -> Self {
        if is_connection_failure(&e) {
            JobError::Unavailable(format!("database unreachable: {e}"))
        } else {
            JobError::Retry(format!("database: {e}"))
        }
    }
}

/// A kind of job and its handler. The payload is typed; handlers must be idempotent.
pub trait Job: Send + Sync + 'static {
    /// The `kind` column, e.g. `outbox.dispatch`.
    const KIND: &'static str;
    type Payload: Serialize + DeserializeOwned + Send + 'static;
    /// What the job runs with (the app's state).
    type Context: JobContext;

    fn run(
        &self,
        st: &Self::Context,
        payload: Self::Payload,
    ) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// A periodic job without a payload (registered with [`Registry::periodic`]): it is a [`Job`]
/// whose payload is [`NoPayload`].
pub trait Periodic: Send + Sync + 'static {
    /// The `kind` column, e.g. `housekeeping.purge`.
    const KIND: &'static str;
    type Context: JobContext;

    fn run(&self, st: &Self::Context) -> impl Future<Output = Result<(), JobError>> + Send;
}

impl<P: Periodic> Job for P {
    const KIND: &'static str = P::KIND;
    type Payload = NoPayload;
    type Context = P::Context;

    fn run(
        &self,
        st: &P::Context,
        _: NoPayload,
    ) -> impl Future<Output = Result<(), JobError>> + Send {
        Periodic::run(self, st)
    }
}

type Attempt = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;

/// A handler with its payload type erased, so that one registry holds every kind.
trait Handler<C>: Send + Sync {
    fn start(self: Arc<Self>, st: C, payload: Value) -> Attempt;
}

impl<J: Job> Handler<J::Context> for J {
    fn start(self: Arc<Self>, st: J::Context, payload: Value) -> Attempt {
        Box::pin(async move {
            let payload: J::Payload = serde_json::from_value(payload)
                .map_err(|e| JobError::Fatal(format!("unreadable payload: {e}")))?;
            self.run(&st, payload).await
        })
    }
}

/// Work a runner does on every poll besides claiming: creating the jobs that have become due
/// (the outbox's dispatch, periodic slots). Every process that runs jobs ticks, so a tick must be
/// idempotent across processes (unique keys).
pub trait Schedule<C>: Send + Sync + 'static {
    fn tick<'a>(&'a self, st: &'a C) -> BoxFuture<'a, AppResult<()>>;
}

/// A periodic job: `J` runs once per `interval` across any number of processes on one database.
/// Time is cut into slots of `interval` (from the Unix epoch); a process's tick creates the job of
/// the slot it is in, keyed `<kind>@<slot start>`, so every process ticking in that slot creates
/// the same job and one worker runs it. A run that fails is not retried (max_attempts 1: it shows
/// as `dead` with its error, and the next slot's run does the work); one that found the database
/// unreachable runs again shortly, as every job does.
pub struct Every<J: Job> {
    interval: Duration,
    payload: J::Payload,
    /// The last slot this process created (or found) the job of.
    last: std::sync::Mutex<Option<i64>>,
}

impl<J: Job> Every<J> {
    pub fn new(interval: Duration, payload: J::Payload) -> Self {
        Every {
            interval: Ord::max(interval, Duration::seconds(1)),
            payload,
            last: std::sync::Mutex::new(None),
        }
    }

    /// The slot `now` is in, and when it started.
    fn slot(&self, now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
        let width = self.interval.num_milliseconds();
        let slot = now.timestamp_millis().div_euclid(width);
        let start = DateTime::<Utc>::from_timestamp_millis(slot * width).unwrap_or(now);
        (slot, start)
    }
}

/// The unique key of `kind`'s job for the slot starting at `start`.
pub fn slot_key(kind: &str, start: DateTime<Utc>) -> String {
    format!(
        "{kind}@{}",
        start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

impl<J: Job> Schedule<J::Context> for Every<J>
where
    J::Payload: Clone + Sync,
{
    fn tick<'a>(&'a self, st: &'a J::Context) -> BoxFuture<'a, AppResult<()>> {
        Box::pin(async move {
            let now = st.clock().now();
            let (slot, start) = self.slot(now);
            if *self.last.lock().expect("slot memo") == Some(slot) {
                return Ok(());
            }
            let new = NewJob::of::<J>(&self.payload)?
                .unique(slot_key(J::KIND, start))
                .max_attempts(1)
                .run_at(start);
            enqueue(st.db(), now, new).await?;
            *self.last.lock().expect("slot memo") = Some(slot);
            Ok(())
        })
    }
}

/// The kinds a runner knows, and what it schedules. A worker only claims jobs of these kinds, so
/// processes of two versions on one database never take each other's unknown work.
pub struct Registry<C> {
    handlers: HashMap<&'static str, Arc<dyn Handler<C>>>,
    schedules: Vec<Arc<dyn Schedule<C>>>,
}

impl<C> Clone for Registry<C> {
    fn clone(&self) -> Self {
        Registry {
            handlers: self.handlers.clone(),
            schedules: self.schedules.clone(),
        }
    }
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry {
            handlers: HashMap::new(),
            schedules: Vec::new(),
        }
    }
}

impl<C: JobContext> Registry<C> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with<J: Job<Context = C>>(mut self, job: J) -> Self {
        self.handlers.insert(J::KIND, Arc::new(job));
        self
    }

    /// Registers `job` and runs it once per `interval` across every process on the database (see
    /// [`Every`]).
    pub fn every<J: Job<Context = C>>(self, interval: Duration, job: J, payload: J::Payload) -> Self
    where
        J::Payload: Clone + Sync,
    {
        self.with(job).schedule(Every::<J>::new(interval, payload))
    }

    /// [`Registry::every`] for a periodic job that takes no payload.
    pub fn periodic<P: Periodic<Context = C>>(self, interval: Duration, job: P) -> Self {
        self.every(interval, job, NoPayload {})
    }

    /// Ticks `schedule` on every poll of the runner.
    pub fn schedule(mut self, schedule: impl Schedule<C>) -> Self {
        self.schedules.push(Arc::new(schedule));
        self
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.handlers.keys().copied().collect();
        k.sort_unstable();
        k
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub payload: Value,
    /// Not before this time (default: now).
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    /// A second job with the same key is not created.
    pub unique_key: Option<String>,
}

/// The payload of a job that needs none (periodic work): `{}`, as every payload is an object.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct NoPayload {}

impl NewJob {
    /// A job of kind `J` with its typed payload, which must serialize to a JSON object (the
    /// operators' API documents `payload` as one).
    pub fn of<J: Job>(payload: &J::Payload) -> AppResult<Self> {
        let payload = serde_json::to_value(payload).map_err(AppError::internal)?;
        if !payload.is_object() {
            return Err(AppError::internal(format!(
                "the payload of a {} job must be a JSON object",
                J::KIND
            )));
        }
        Ok(NewJob {
            kind: J::KIND,
            payload,
            run_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            unique_key: None,
        })
    }

    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = Ord::max(n, 1);
        self
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
}

/// Creates a job, in the caller's transaction when `conn` is one (so the job exists exactly when
/// the change that asked for it commits). `None` when a job with the same unique key exists.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    new: NewJob,
) -> AppResult<Option<i64>> {
    let row = job::ActiveModel {
        kind: Set(new.kind.to_string()),
        payload: Set(new.payload),
        state: Set(JobState::Queued),
        run_at: Set(new.run_at.unwrap_or(now)),
        attempts: Set(0),
        max_attempts: Set(new.max_attempts),
        locked_by: Set(None),
        locked_until: Set(None),
        last_error: Set(None),
        unique_key: Set(new.unique_key),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let inserted = job::Entity::insert(row)
        .on_conflict(
            OnConflict::column(job::Column::UniqueKey)
                .do_nothing()
                .to_owned(),
        )
        .exec(conn)
        .await;
    match inserted {
        Ok(r) => Ok(Some(r.last_insert_id)),
        Err(DbErr::RecordNotInserted) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones: 5 s, 10 s, 20 s, … up
/// to an hour, each ±20 %.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 30) - 1;
    let base = Ord::min(
        BACKOFF_BASE_SECONDS.saturating_mul(1_i64 << exp),
        BACKOFF_MAX_SECONDS,
    );
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::milliseconds((base as f64 * 1000.0 * jitter) as i64)
}

/// Claims the oldest due job of one of `kinds` for `worker`, with a lease of `lease`: a queued or
/// failed job whose `run_at` has come, or a running one whose lease has passed (its worker died).
/// A job whose lease passed on its last allowed attempt is dead-lettered instead.
pub async fn claim<C: JobContext>(
    st: &C,
    worker: &str,
    kinds: &[&str],
    lease: Duration,
) -> AppResult<Option<job::Model>> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let now = st.clock().now();
    let txn = begin_write(st.db()).await?;
    let due = Condition::any()
        .add(
            Condition::all()
                .add(job::Column::State.is_in([JobState::Queued, JobState::Failed]))
                .add(job::Column::RunAt.lte(now)),
        )
        .add(
            Condition::all()
                .add(job::Column::State.eq(JobState::Running))
                .add(job::Column::LockedUntil.lt(now)),
        );
    let mut q = job::Entity::find()
        .filter(job::Column::Kind.is_in(kinds.iter().copied()))
        .filter(due)
        .order_by_asc(job::Column::RunAt)
        .order_by_asc(job::Column::Id)
        .limit(1);
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let Some(found) = q.one(&txn).await? else {
        txn.commit().await?;
        return Ok(None);
    };
    let base = job::Entity::update_many()
        .filter(job::Column::Id.eq(found.id))
        .filter(job::Column::State.eq(found.state))
        .col_expr(job::Column::UpdatedAt, Expr::value(now));
    if found.state == JobState::Running && found.attempts >= found.max_attempts {
        unlocked(base)
            .col_expr(job::Column::State, Expr::value(JobState::Dead))
            .col_expr(
                job::Column::LastError,
                Expr::value("the worker's lease ran out on the last attempt"),
            )
            .exec(&txn)
            .await?;
        txn.commit().await?;
        st.metrics()
            .jobs_dead
            .with_label_values(&[found.kind.as_str()])
            .inc();
        tracing::warn!(job = found.id, kind = %found.kind, "job dead: lease ran out on its last attempt");
        return Ok(None);
    }
    let claimed = base
        .col_expr(job::Column::State, Expr::value(JobState::Running))
        .col_expr(
            job::Column::Attempts,
            Expr::col(job::Column::Attempts).add(1),
        )
        .col_expr(job::Column::LockedBy, Expr::value(worker))
        .col_expr(job::Column::LockedUntil, Expr::value(now + lease))
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(None);
    }
    let row = job::Entity::find_by_id(found.id).one(&txn).await?;
    txn.commit().await?;
    Ok(row)
}

/// An update that ends the lease: no holder, no lease end.
fn unlocked(update: UpdateMany<job::Entity>) -> UpdateMany<job::Entity> {
    update
        .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            job::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

/// Extends `worker`'s lease on job `id`; `false` when the worker no longer holds it.
pub async fn renew<C: JobContext>(
    st: &C,
    id: i64,
    worker: &str,
    lease: Duration,
) -> AppResult<bool> {
    let now = st.clock().now();
    let r = job::Entity::update_many()
        .col_expr(job::Column::LockedUntil, Expr::value(now + lease))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::State.eq(JobState::Running))
        .filter(job::Column::LockedBy.eq(worker))
        .exec(st.db())
        .await?;
    Ok(r.rows_affected == 1)
}

/// Records an attempt's outcome, if `worker` still holds the job: `done`; `failed` with the next
/// `run_at` after a backoff; `failed` again shortly, with the attempt given back, when the database
/// was unreachable; or `dead` after the last attempt or a fatal error. Returns the state written,
/// or `None` when the lease was lost (another worker's outcome stands).
pub async fn finish<C: JobContext>(
    st: &C,
    claimed: &job::Model,
    worker: &str,
    outcome: &Result<(), JobError>,
) -> AppResult<Option<JobState>> {
    let now = st.clock().now();
    let mut update = unlocked(job::Entity::update_many())
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(claimed.id))
        .filter(job::Column::State.eq(JobState::Running))
        .filter(job::Column::LockedBy.eq(worker));
    let state = match outcome {
        Ok(()) => JobState::Done,
        Err(JobError::Retry(_)) if claimed.attempts < claimed.max_attempts => {
            update = update.col_expr(
                job::Column::RunAt,
                Expr::value(now + backoff(claimed.attempts)),
            );
            JobState::Failed
        }
        Err(JobError::Unavailable(_)) => {
            update = update
                .col_expr(
                    job::Column::RunAt,
                    Expr::value(now + Duration::seconds(UNAVAILABLE_RETRY_SECONDS)),
                )
                .col_expr(
                    job::Column::Attempts,
                    Expr::col(job::Column::Attempts).sub(1),
                );
            JobState::Failed
        }
        Err(_) => JobState::Dead,
    };
    update = update.col_expr(job::Column::State, Expr::value(state));
    if let Err(e) = outcome {
        let message: String = e.message().chars().take(ERROR_MAX_CHARS).collect();
        update = update.col_expr(job::Column::LastError, Expr::value(message));
    }
    let r = update.exec(st.db()).await?;
    if r.rows_affected != 1 {
        return Ok(None);
    }
    let kind = [claimed.kind.as_str()];
    match state {
        JobState::Failed => st.metrics().jobs_failed.with_label_values(&kind).inc(),
        JobState::Dead => {
            st.metrics().jobs_failed.with_label_values(&kind).inc();
            st.metrics().jobs_dead.with_label_values(&kind).inc();
        }
        _ => {}
    }
    Ok(Some(state))
}

/// Runs the job with unique key `key` (of kind `J`) now, in the caller's task, if it is still
/// queued — a runner that got it first keeps it. The same claim, lease, outcome, backoff and
/// metrics as a worker's, without a heartbeat (the work must end within `JOB_LEASE_SECONDS`).
/// For work that should follow the request that asked for it at once, yet must still happen if
/// this process dies first: the request enqueues it in its transaction and calls this after the
/// commit. Returns the state written, or `None` when the job was not there to run.
pub async fn run_now_by_key<J: Job>(
    st: &J::Context,
    job: &J,
    key: &str,
) -> AppResult<Option<JobState>> {
    run_inline(st, J::KIND, key, |payload| {
        Box::pin(async move {
            match serde_json::from_value::<J::Payload>(payload) {
                Ok(payload) => job.run(st, payload).await,
                Err(e) => Err(JobError::Fatal(format!("unreadable payload: {e}"))),
            }
        })
    })
    .await
}

/// [`run_now_by_key`] for a caller that does not know the job's kind: the queued job with unique
/// key `key` runs through the context's registry, built once at start-up (a kind it does not know is
/// left alone, for a runner of a version that knows it).
pub async fn run_queued_now<C: JobContext>(st: &C, key: &str) -> AppResult<Option<JobState>> {
    let Some(queued) = job::Entity::find()
        .filter(job::Column::UniqueKey.eq(key))
        .one(st.db())
        .await?
    else {
        return Ok(None);
    };
    let Some(handler) = st
        .registry()
        .and_then(|r| r.handlers.get(queued.kind.as_str()).cloned())
    else {
        return Ok(None);
    };
    run_inline(st, &queued.kind, key, |payload| {
        handler.start(st.clone(), payload)
    })
    .await
}

async fn run_inline<'a, C: JobContext>(
    st: &'a C,
    kind: &str,
    key: &str,
    start: impl FnOnce(Value) -> BoxFuture<'a, Result<(), JobError>>,
) -> AppResult<Option<JobState>> {
    let worker = format!("inline-{}", std::process::id());
    let now = st.clock().now();
    let lease = Duration::seconds(st.config().job_lease_seconds);
    let claimed = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(JobState::Running))
        .col_expr(
            job::Column::Attempts,
            Expr::col(job::Column::Attempts).add(1),
        )
        .col_expr(job::Column::LockedBy, Expr::value(worker.as_str()))
        .col_expr(job::Column::LockedUntil, Expr::value(now + lease))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::UniqueKey.eq(key))
        .filter(job::Column::Kind.eq(kind))
        .filter(job::Column::State.eq(JobState::Queued))
        .filter(job::Column::RunAt.lte(now))
        .exec(st.db())
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(None);
    }
    let Some(row) = job::Entity::find()
        .filter(job::Column::UniqueKey.eq(key))
        .one(st.db())
        .await?
    else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let outcome = start(row.payload.clone()).await;
    observe_duration(st, &row.kind, started);
    finish(st, &row, &worker, &outcome).await
}

fn observe_duration<C: JobContext>(st: &C, kind: &str, started: std::time::Instant) {
    st.metrics()
        .job_duration
        .with_label_values(&[kind])
        .observe(started.elapsed().as_secs_f64());
}

/// Done jobs are kept this long for operators to look at, then purged.
pub const DONE_RETENTION_DAYS: i64 = 7;
/// Dead jobs are kept this long (an operator may still retry them), then purged.
pub const DEAD_RETENTION_DAYS: i64 = 30;

/// Deletes done jobs older than [`DONE_RETENTION_DAYS`] and dead ones older than
/// [`DEAD_RETENTION_DAYS`] (by their last update); how many.
pub async fn purge_finished<C: JobContext>(st: &C) -> AppResult<u64> {
    let now = st.clock().now();
    let old = |state: JobState, days: i64| {
        Condition::all()
            .add(job::Column::State.eq(state))
            .add(job::Column::UpdatedAt.lt(now - Duration::days(days)))
    };
    Ok(job::Entity::delete_many()
        .filter(
            Condition::any()
                .add(old(JobState::Done, DONE_RETENTION_DAYS))
                .add(old(JobState::Dead, DEAD_RETENTION_DAYS)),
        )
        .exec(st.db())
        .await?
        .rows_affected)
}

/// Makes a dead or failed job due now, with a fresh set of attempts (an operator's retry);
/// `conflict` for a job in any other state.
pub async fn retry_in<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    id: i64,
) -> AppResult<job::Model> {
    let r = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(JobState::Queued))
        .col_expr(job::Column::RunAt, Expr::value(now))
        .col_expr(job::Column::Attempts, Expr::value(0))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::State.is_in([JobState::Dead, JobState::Failed]))
        .exec(conn)
        .await?;
    let found = job::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("Job"))?;
    if r.rows_affected != 1 {
        return Err(AppError::conflict_field(
            "state",
            "not_retryable",
            "Only a dead or failed job can be retried",
        ));
    }
    Ok(found)
}

/// How often a process that runs jobs refreshes `jobs_pending` and `jobs_running`.
pub const GAUGE_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Sets `jobs_pending` and `jobs_running` from the queue (every process's jobs). The runner does
/// it every [`GAUGE_REFRESH`]; `/metrics` itself never queries the database.
pub async fn refresh_gauges<C: JobContext>(st: &C) -> AppResult<()> {
    let (pending, running) = counts(st).await?;
    st.metrics().jobs_pending.set(pending);
    st.metrics().jobs_running.set(running);
    Ok(())
}

/// Jobs waiting (queued or failed, whatever their `run_at`) and jobs running, across processes.
pub async fn counts<C: JobContext>(st: &C) -> AppResult<(i64, i64)> {
    let count = |states: Vec<JobState>| async move {
        job::Entity::find()
            .filter(job::Column::State.is_in(states))
            .count(st.db())
            .await
    };
    let pending = count(vec![JobState::Queued, JobState::Failed]).await?;
    let running = count(vec![JobState::Running]).await?;
    Ok((pending as i64, running as i64))
}

/// How a runner works: worker count, lease, and how long an idle worker waits before looking
/// again.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub workers: usize,
    pub lease: Duration,
    pub poll: std::time::Duration,
}

impl RunnerOptions {
    pub fn from_config(cfg: &Config) -> Self {
        RunnerOptions {
            workers: cfg.job_workers,
            lease: Duration::seconds(cfg.job_lease_seconds),
            poll: std::time::Duration::from_millis(cfg.job_poll_milliseconds),
        }
    }
}

/// Aborts the task it holds when dropped (a worker stopped mid-attempt stops its handler too).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Workers of one process. Cloning is cheap (the registry is shared).
pub struct Runner<C> {
    st: C,
    registry: Arc<Registry<C>>,
    opts: RunnerOptions,
    /// Names this process's workers (`<host>-<pid>-<random>#<n>`).
    id: String,
}

impl<C: Clone> Clone for Runner<C> {
    fn clone(&self) -> Self {
        Runner {
            st: self.st.clone(),
            registry: Arc::clone(&self.registry),
            opts: self.opts.clone(),
            id: self.id.clone(),
        }
    }
}

impl<C: JobContext> Runner<C> {
    pub fn new(st: C, registry: Registry<C>, opts: RunnerOptions) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let id = format!(
            "{host}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Runner {
            st,
            registry: Arc::new(registry),
            opts,
            id,
        }
    }

    /// The name of worker `n` of this runner, as `locked_by` shows it.
    pub fn worker(&self, n: usize) -> String {
        format!("{}#{n}", self.id)
    }

    /// Claims one due job as `worker` and runs it to its outcome; the job's id, or `None` when
    /// nothing was due.
    pub async fn run_once(&self, worker: &str) -> AppResult<Option<i64>> {
        let kinds = self.registry.kinds();
        let Some(claimed) = claim(&self.st, worker, &kinds, self.opts.lease).await? else {
            return Ok(None);
        };
        self.execute(&claimed, worker).await?;
        Ok(Some(claimed.id))
    }

    async fn execute(&self, claimed: &job::Model, worker: &str) -> AppResult<()> {
        let Some(handler) = self.registry.handlers.get(claimed.kind.as_str()).cloned() else {
            return Ok(());
        };
        let st = &self.st;
        // The heartbeat renews the lease at a third of its length while the handler runs.
        let heartbeat = {
            let (st, worker, lease, id) =
                (st.clone(), worker.to_string(), self.opts.lease, claimed.id);
            let every = (lease / 3)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(1))
                .max(std::time::Duration::from_millis(50));
            AbortOnDrop(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match renew(&st, id, &worker, lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = id, "job lease lost; another worker may run it");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(job = id, error = %e.message, "job lease renewal failed")
                        }
                    }
                }
            }))
        };
        let started = std::time::Instant::now();
        let mut attempt = AbortOnDrop(tokio::spawn(
            handler.start(st.clone(), claimed.payload.clone()),
        ));
        let outcome = match (&mut attempt.0).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(JobError::Retry("the handler panicked".into())),
            Err(_) => Err(JobError::Retry("the attempt was cancelled".into())),
        };
        observe_duration(st, &claimed.kind, started);
        // The outcome is written even across a database outage (the heartbeat keeps the lease
        // meanwhile), so work that was done is not run again and an attempt that died with the
        // connection is given back rather than counted.
        let written = self.finish_through_outage(claimed, worker, &outcome).await;
        drop(heartbeat);
        match written? {
            Some(state) => {
                if let Err(e) = &outcome {
                    tracing::warn!(job = claimed.id, kind = %claimed.kind, attempt = claimed.attempts,
                        state = state.as_str(), error = %e.message(), "job attempt failed");
                }
            }
            None => tracing::warn!(
                job = claimed.id,
                kind = %claimed.kind,
                "job outcome dropped: the lease was lost meanwhile"
            ),
        }
        Ok(())
    }

    /// [`finish`], tried again while the database is unreachable, for up to one lease.
    async fn finish_through_outage(
        &self,
        claimed: &job::Model,
        worker: &str,
        outcome: &Result<(), JobError>,
    ) -> AppResult<Option<JobState>> {
        let give_up = std::time::Instant::now()
            + self
                .opts
                .lease
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(60));
        let mut wait = std::time::Duration::from_millis(200);
        loop {
            match finish(&self.st, claimed, worker, outcome).await {
                Err(e)
                    if e.code == ErrorCode::ServiceUnavailable
                        && std::time::Instant::now() + wait < give_up =>
                {
                    tracing::warn!(
                        job = claimed.id,
                        "job outcome not written yet: database unreachable"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(5));
                }
                written => return written,
            }
        }
    }

    /// One pass of every [`Schedule`] in the registry (the runner does this on every poll).
    pub async fn schedule_once(&self) -> AppResult<()> {
        for s in &self.registry.schedules {
            s.tick(&self.st).await?;
        }
        Ok(())
    }

    /// Starts the workers. Nothing runs when the registry is empty or `workers` is 0.
    pub fn start(self) -> RunnerHandle<C> {
        let token = CancellationToken::new();
        let mut tasks = Vec::new();
        if !self.registry.is_empty() {
            for n in 0..self.opts.workers {
                let (runner, token, worker) = (self.clone(), token.clone(), self.worker(n));
                tasks.push(tokio::spawn(async move {
                    runner.work(&worker, &token).await;
                }));
            }
            tracing::info!(workers = self.opts.workers, kinds = ?self.registry.kinds(), "job runner started");
        }
        if self.opts.workers > 0 && !self.registry.schedules.is_empty() {
            let (runner, token) = (self.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Err(e) = runner.schedule_once().await {
                        tracing::warn!(error = %e.message, "job scheduling failed");
                    }
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tokio::time::sleep(runner.opts.poll) => {}
                    }
                }
            }));
        }
        // The queue's gauges, kept by every process that runs jobs.
        let (st, gauge_token) = (self.st.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(e) = refresh_gauges(&st).await {
                    tracing::warn!(error = %e.message, "job gauges not refreshed");
                }
                tokio::select! {
                    _ = gauge_token.cancelled() => break,
                    _ = tokio::time::sleep(GAUGE_REFRESH) => {}
                }
            }
        }));
        RunnerHandle {
            token,
            tasks,
            runner: self,
        }
    }

    async fn work(&self, worker: &str, token: &CancellationToken) {
        while !token.is_cancelled() {
            let wait = match self.run_once(worker).await {
                Ok(Some(_)) => continue,
                Ok(None) => self.opts.poll,
                Err(e) => {
                    tracing::warn!(worker, error = %e.message, "job claim failed");
                    self.opts.poll * 2
                }
            };
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The running workers of a [`Runner`].
pub struct RunnerHandle<C> {
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    runner: Runner<C>,
}

impl<C: JobContext> RunnerHandle<C> {
    /// Stops claiming, lets running attempts finish for up to `grace`, then stops the rest and
    /// hands their jobs back to the queue (the interrupted attempt is not counted). Returns how
    /// many jobs were handed back.
    pub async fn shutdown(self, grace: std::time::Duration) -> AppResult<u64> {
        self.token.cancel();
        let mut tasks = self.tasks;
        let all = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(grace, all).await.is_err() {
            for t in &tasks {
                t.abort();
            }
        }
        let st = &self.runner.st;
        let now = st.clock().now();
        let released = unlocked(job::Entity::update_many())
            .col_expr(job::Column::State, Expr::value(JobState::Queued))
            .col_expr(job::Column::RunAt, Expr::value(now))
            .col_expr(
                job::Column::Attempts,
                Expr::col(job::Column::Attempts).sub(1),
            )
            .col_expr(job::Column::UpdatedAt, Expr::value(now))
            .filter(job::Column::State.eq(JobState::Running))
            .filter(job::Column::LockedBy.starts_with(format!("{}#", self.runner.id)))
            .exec(st.db())
            .await?
            .rows_affected;
        if released > 0 {
            tracing::info!(released, "jobs handed back to the queue at shutdown");
        }
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for attempts in 1..=12 {
            let d = backoff(attempts).num_milliseconds() as f64 / 1000.0;
            let base = (BACKOFF_BASE_SECONDS as f64 * 2f64.powi(attempts - 1))
                .min(BACKOFF_MAX_SECONDS as f64);
            assert!(
                d >= base * 0.8 - 0.001 && d <= base * 1.2 + 0.001,
                "{attempts}: {d}"
            );
        }
        // Consecutive delays never overlap (±20 % around a doubling base).
        assert!(backoff(2) > backoff(1) && backoff(3) > backoff(2));
        assert!(backoff(40).num_seconds() <= (BACKOFF_MAX_SECONDS as f64 * 1.2) as i64);
    }
}
