//! GraphQL for the audit log (admin).

use async_graphql::{Context, Json, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::user::Role;
use crate::services::platform::logs::{self, LogFilter};
use crate::services::platform::pagination::Page;

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub id: i64,
    /// Who acted (none: anonymous, a provider, or the system).
    pub actor_user_id: Option<i64>,
    pub actor_email: Option<String>,
    /// The API key the change was made with (`apiKeys`' `id`), when a store system made it.
    pub actor_api_key_id: Option<i64>,
    /// `<entity or area>.<verb>`, e.g. `order.status_changed`.
    pub action: String,
    pub entity: String,
    pub entity_id: Option<i64>,
    #[schema(value_type = Object)]
    pub meta: Json<serde_json::Value>,
    pub trace_id: Option<String>,
    pub created_at: Timestamp,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 120, "actorUserId": 1, "actorEmail": "admin@dispensario.local",
    "action": "order.status_changed", "entity": "order", "entityId": 12, "meta": {"from": "paid", "to": "shipped"},
    "traceId": "6f1c2b3a-4e5f-4a7b-9d1c-2b3a4e5f6a7b", "createdAt": "2026-11-23T08:00:00Z"}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct LogPage {
    pub items: Vec<LogEntry>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Default)]
pub struct LogsQuery;

#[Object]
impl LogsQuery {
    /// Admin: the audit log, newest first. `actor` is a user id or email; `action` is exact or a
    /// prefix ending in `*` (`order.*`).
    #[graphql(
        guard = "RoleGuard(Role::Admin)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn admin_logs(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        actor: Option<String>,
        action: Option<String>,
        entity: Option<String>,
        entity_id: Option<i64>,
        date_from: Option<Timestamp>,
        date_to: Option<Timestamp>,
    ) -> GqlResult<LogPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let f = LogFilter {
            actor,
            action,
            entity,
            entity_id,
            date_from: date_from.map(|t| t.0),
            date_to: date_to.map(|t| t.0),
        };
        let (rows, total) = logs::list(st, rc, f, p).await?;
        let emails = logs::emails(st, rows.iter().filter_map(|r| r.actor_user_id)).await?;
        Ok(LogPage {
            items: rows
                .into_iter()
                .map(|r| LogEntry {
                    id: r.id,
                    actor_email: r.actor_user_id.and_then(|id| emails.get(&id).cloned()),
                    actor_user_id: r.actor_user_id,
                    actor_api_key_id: r.actor_api_key_id,
                    action: r.action,
                    entity: r.entity,
                    entity_id: r.entity_id,
                    meta: Json(r.meta),
                    trace_id: r.trace_id,
                    created_at: r.created_at.into(),
                })
                .collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }
}
