//! The audit log for admins (`GET /api/admin/logs`): the append-only `system_logs` rows every
//! module writes, filtered and newest first.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};

use crate::actor::RequestCtx;
use crate::entities::{system_log, user};
use crate::error::AppResult;
use crate::services::platform::date_range;
use crate::services::platform::pagination::Page;
use crate::state::AppState;

#[derive(Debug, Default, Clone)]
pub struct LogFilter {
    /// A user id, or an email (case-insensitive, exact).
    pub actor: Option<String>,
    /// An exact action (`order.status_changed`), or a prefix ending in `*` (`order.*`).
    pub action: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<i64>,
    pub date_from: Option<DateTime<Utc>>,
    pub date_to: Option<DateTime<Utc>>,
}

/// Admin: audit rows, newest first.
pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    f: LogFilter,
    page: Page,
) -> AppResult<(Vec<system_log::Model>, u64)> {
    ctx.require_admin()?;
    let dates = date_range::between(system_log::Column::CreatedAt, f.date_from, f.date_to)?;
    let mut cond = Condition::all().add(dates);
    if let Some(actor) = f.actor.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        cond = cond.add(match actor.parse::<i64>() {
            Ok(id) => system_log::Column::ActorUserId.eq(id),
            Err(_) => system_log::Column::ActorUserId.in_subquery(
                Query::select()
                    .column(user::Column::Id)
                    .from(user::Entity)
                    .and_where(user::Column::Email.eq(actor.to_lowercase()))
                    .to_owned(),
            ),
        });
    }
    if let Some(action) = f.action.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        cond = cond.add(match action.strip_suffix('*') {
            Some(prefix) => system_log::Column::Action.starts_with(prefix),
            None => system_log::Column::Action.eq(action),
        });
    }
    if let Some(entity) = f.entity.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        cond = cond.add(system_log::Column::Entity.eq(entity));
    }
    if let Some(id) = f.entity_id {
        cond = cond.add(system_log::Column::EntityId.eq(id));
    }
    let q = system_log::Entity::find()
        .filter(cond)
        .order_by_desc(system_log::Column::CreatedAt)
        .order_by_desc(system_log::Column::Id);
    page.fetch(&st.db, q).await
}

/// The emails of the given users, for showing who acted.
pub async fn emails(
    st: &AppState,
    ids: impl IntoIterator<Item = i64>,
) -> AppResult<std::collections::HashMap<i64, String>> {
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(&st.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect())
}
