//! GraphQL for background jobs (admin): the operator's view and retry.

use async_graphql::{Context, Json, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::job::{self, JobState};
use crate::entities::user::Role;
use crate::services::platform::jobs::{self, JobFilter};
use crate::services::platform::pagination::Page;

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[graphql(name = "Job")]
#[schema(as = Job, example = json!({"id": 7, "kind": "outbox.dispatch", "payload": {}, "state": "queued",
    "runAt": "2026-12-03T08:00:00Z", "attempts": 0, "maxAttempts": 8, "lockedBy": null, "lockedUntil": null,
    "lastError": null, "uniqueKey": null, "createdAt": "2026-12-03T07:00:00Z", "updatedAt": "2026-12-03T08:00:00Z"}))]
pub struct JobView {
    pub id: i64,
    /// The handler that runs it, e.g. `outbox.dispatch`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: Json<serde_json::Value>,
    pub state: JobState,
    /// Not before this time (for a failed job: when it is retried).
    pub run_at: Timestamp,
    pub attempts: i32,
    pub max_attempts: i32,
    /// The worker holding it while running.
    pub locked_by: Option<String>,
    pub locked_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub unique_key: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<job::Model> for JobView {
    fn from(j: job::Model) -> Self {
        JobView {
            id: j.id,
            kind: j.kind,
            payload: Json(j.payload),
            state: j.state,
            run_at: j.run_at.into(),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            locked_by: j.locked_by,
            locked_until: j.locked_until.map(Into::into),
            last_error: j.last_error,
            unique_key: j.unique_key,
            created_at: j.created_at.into(),
            updated_at: j.updated_at.into(),
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 7, "kind": "outbox.dispatch", "payload": {}, "state": "dead",
    "runAt": "2026-12-03T08:00:00Z", "attempts": 8, "maxAttempts": 8, "lockedBy": null, "lockedUntil": null,
    "lastError": "provider unavailable", "uniqueKey": null, "createdAt": "2026-12-03T07:00:00Z",
    "updatedAt": "2026-12-03T08:00:00Z"}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct JobPage {
    pub items: Vec<JobView>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Default)]
pub struct JobsQuery;

#[Object]
impl JobsQuery {
    /// Admin: background jobs, newest first, by state and kind.
    #[graphql(
        guard = "RoleGuard(Role::Admin)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn admin_jobs(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        state: Option<JobState>,
        kind: Option<String>,
    ) -> GqlResult<JobPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (rows, total) = jobs::list(st, rc, JobFilter { state, kind }, p).await?;
        Ok(JobPage {
            items: rows.into_iter().map(Into::into).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }

    /// Admin: one job.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn admin_job(&self, ctx: &Context<'_>, id: i64) -> GqlResult<JobView> {
        let (st, rc) = parts(ctx);
        Ok(jobs::get(st, rc, id).await?.into())
    }
}

#[derive(Default)]
pub struct JobsMutation;

#[Object]
impl JobsMutation {
    /// Admin: a dead or failed job back to the queue, to run now with fresh attempts (others: 409
    /// `not_retryable`).
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn retry_job(&self, ctx: &Context<'_>, id: i64) -> GqlResult<JobView> {
        let (st, rc) = parts(ctx);
        Ok(jobs::retry_by(st, rc, id).await?.into())
    }
}
