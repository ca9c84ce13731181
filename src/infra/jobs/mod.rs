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
//!
//! Here: the contract (`JobContext`, `Job`, `Periodic`, `JobError`). `registry.rs`: the kinds a runner
//! knows; `schedule.rs`: periodic work; `storage.rs`: the queue's rows; `runner.rs`: the workers.
//! Generic over what jobs run with, this names no job kind: those live in their contexts, listed
//! once in `services/composition.rs`.

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

/// The payload of a job that needs none (periodic work): `{}`, as every payload is an object.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct NoPayload {}

mod registry;
mod runner;
mod schedule;
mod storage;

pub use registry::Registry;
pub use runner::{run_now_by_key, run_queued_now, Runner, RunnerHandle, RunnerOptions};
pub use schedule::{slot_key, Every, Schedule};
pub use storage::{
    backoff, claim, counts, enqueue, finish, purge_finished, refresh_gauges, renew, retry_in,
    NewJob, DEAD_RETENTION_DAYS, DONE_RETENTION_DAYS, GAUGE_REFRESH,
};
