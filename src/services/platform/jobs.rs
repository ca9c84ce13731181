//! The job queue for this app: the machinery (`infra::jobs`) as the services use it, run with
//! the app's state, and the queue as operators see it — list, inspect and retry (audited as
//! `job.retried`). Job kinds live in their contexts; the one list of them is
//! `services::composition::registry`.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::job::{self, JobState};
use crate::error::{AppError, AppResult};
pub use crate::infra::jobs::{
    backoff, claim, counts, enqueue, finish, purge_finished, refresh_gauges, renew, retry_in,
    run_now_by_key, run_queued_now, slot_key, Every, Job, JobContext, JobError, NewJob, NoPayload,
    Periodic, RunnerHandle, RunnerOptions, Schedule, BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS,
    DEAD_RETENTION_DAYS, DEFAULT_MAX_ATTEMPTS, DONE_RETENTION_DAYS, GAUGE_REFRESH,
    UNAVAILABLE_RETRY_SECONDS,
};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::pagination::Page;
use crate::state::AppState;

/// The job kinds this app runs.
pub type Registry = crate::infra::jobs::Registry<AppState>;
/// This process's workers over the app's state.
pub type Runner = crate::infra::jobs::Runner<AppState>;

/// An operator's retry: a dead or failed job runs again now, with a fresh set of attempts.
/// `conflict` for a job in any other state.
pub async fn retry(st: &AppState, id: i64) -> AppResult<job::Model> {
    retry_in(&st.db, st.clock.now(), id).await
}

/// What operators filter jobs by.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
}

/// Admin: jobs, newest first.
pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    f: JobFilter,
    page: Page,
) -> AppResult<(Vec<job::Model>, u64)> {
    ctx.require_admin()?;
    let mut q = job::Entity::find();
    if let Some(s) = f.state {
        q = q.filter(job::Column::State.eq(s));
    }
    if let Some(k) = f.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        q = q.filter(job::Column::Kind.eq(k));
    }
    page.fetch(&st.db, q.order_by_desc(job::Column::Id)).await
}

/// Admin: one job.
pub async fn get(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<job::Model> {
    ctx.require_admin()?;
    job::Entity::find_by_id(id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Job"))
}

/// Admin: [`retry`], audited as `job.retried`.
pub async fn retry_by(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<job::Model> {
    ctx.require_admin()?;
    let before = job::Entity::find_by_id(id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Job"))?;
    let txn = begin_write(&st.db).await?;
    let retried = retry_in(&txn, st.clock.now(), id).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::JobRetried {
            id,
            kind: before.kind,
            from: before.state,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(retried)
}
