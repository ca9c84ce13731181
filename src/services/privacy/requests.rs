//! The personal-data requests' state machine, one place for both kinds (export, erasure): which
//! request a job may still work on, the claim that moves it to `processing`, the failure of a job
//! that gave up, and the admins' queue of both kinds.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::actor::RequestCtx;
use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::entities::{job, user};
use crate::error::AppResult;
use crate::services::platform::pagination::Page;
use crate::state::AppState;

/// The states a job may still work on: asked for, or claimed by an attempt that did not finish.
const OPEN: [PrivacyRequestState; 2] = [
    PrivacyRequestState::Pending,
    PrivacyRequestState::Processing,
];

/// A new request of `user_id`, pending, due within `PRIVACY_REQUEST_DUE_DAYS`; `expires_at` is an
/// erasure's scheduled run (an export's download window is set once it is ready).
pub fn new_request(
    st: &AppState,
    user_id: i64,
    kind: PrivacyRequestKind,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> privacy_request::ActiveModel {
    privacy_request::ActiveModel {
        user_id: Set(user_id),
        kind: Set(kind),
        state: Set(PrivacyRequestState::Pending),
        requested_at: Set(now),
        due_at: Set(now + Duration::days(st.config.privacy.request_due_days)),
        completed_at: Set(None),
        expires_at: Set(expires_at),
        storage_key: Set(None),
        size_bytes: Set(None),
        error: Set(None),
        downloads: Set(0),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// Request `id` of `kind` when a job may still work on it (pending or processing); `None` when it
/// is gone (cancelled), done, or of another kind.
pub async fn open_for_work<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    kind: PrivacyRequestKind,
) -> AppResult<Option<privacy_request::Model>> {
    Ok(privacy_request::Entity::find_by_id(id)
        .one(conn)
        .await?
        .filter(|r| r.kind == kind && OPEN.contains(&r.state)))
}

/// Moves request `id` to `processing` if it is still open; `false` when it no longer is (it was
/// cancelled or finished meanwhile), and the job leaves it alone.
pub async fn claim_for_processing<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let claimed = privacy_request::Entity::update_many()
        .col_expr(
            privacy_request::Column::State,
            Expr::value(PrivacyRequestState::Processing),
        )
        .col_expr(privacy_request::Column::UpdatedAt, Expr::value(now))
        .filter(privacy_request::Column::Id.eq(id))
        .filter(privacy_request::Column::State.is_in(OPEN))
        .exec(conn)
        .await?;
    Ok(claimed.rows_affected == 1)
}

/// The unique key of the job that answers request `id` of `kind` (one job per request).
pub fn job_key(kind: PrivacyRequestKind, id: i64) -> String {
    format!("{}:{id}", kind.job_kind())
}

/// Marks the open requests (of `user`, or everyone's) whose job gave up (dead) as failed, so the
/// customer may ask again (an erasure: cancel it, or an admin may run it again).
pub(crate) async fn settle_failed<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    user_id: Option<i64>,
) -> AppResult<()> {
    let mut open = privacy_request::Entity::find();
    if let Some(u) = user_id {
        open = open.filter(privacy_request::Column::UserId.eq(u));
    }
    let open = open
        .filter(privacy_request::Column::State.is_in([
            PrivacyRequestState::Pending,
            PrivacyRequestState::Processing,
        ]))
        .all(conn)
        .await?;
    if open.is_empty() {
        return Ok(());
    }
    // One lookup for all of them: the dead jobs among theirs.
    let keys: std::collections::HashMap<String, i64> =
        open.iter().map(|r| (job_key(r.kind, r.id), r.id)).collect();
    let dead = job::Entity::find()
        .filter(job::Column::UniqueKey.is_in(keys.keys().cloned()))
        .filter(job::Column::State.eq(crate::entities::job::JobState::Dead))
        .all(conn)
        .await?;
    for j in dead {
        let Some(id) = j.unique_key.as_ref().and_then(|k| keys.get(k)) else {
            continue;
        };
        privacy_request::Entity::update_many()
            .col_expr(
                privacy_request::Column::State,
                Expr::value(PrivacyRequestState::Failed),
            )
            .col_expr(
                privacy_request::Column::Error,
                Expr::value(
                    j.last_error
                        .map(|e| e.chars().take(500).collect::<String>()),
                ),
            )
            .col_expr(
                privacy_request::Column::UpdatedAt,
                Expr::value(st.clock.now()),
            )
            .filter(privacy_request::Column::Id.eq(*id))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Filters of the admins' list of personal-data requests.
#[derive(Debug, Default, Clone)]
pub struct RequestFilter {
    pub kind: Option<PrivacyRequestKind>,
    pub state: Option<PrivacyRequestState>,
    /// Only requests not answered (not ready) past their due date.
    pub overdue: Option<bool>,
}

/// A request in the admins' list, with its customer's email.
#[derive(Debug, Clone)]
pub struct AdminRequest {
    pub request: privacy_request::Model,
    pub email: Option<String>,
    pub overdue: bool,
}

/// Admin: personal-data requests, the oldest due first (what must be answered next on top).
pub async fn list_admin(
    st: &AppState,
    ctx: &RequestCtx,
    f: RequestFilter,
    page: Page,
) -> AppResult<(Vec<AdminRequest>, u64)> {
    ctx.require_admin()?;
    settle_failed(&st.db, st, None).await?;
    let now = st.clock.now();
    let mut q = privacy_request::Entity::find();
    if let Some(k) = f.kind {
        q = q.filter(privacy_request::Column::Kind.eq(k));
    }
    if let Some(s) = f.state {
        q = q.filter(privacy_request::Column::State.eq(s));
    }
    let unanswered = Condition::all()
        .add(privacy_request::Column::State.ne(PrivacyRequestState::Ready))
        .add(privacy_request::Column::DueAt.lt(now));
    match f.overdue {
        Some(true) => q = q.filter(unanswered),
        Some(false) => q = q.filter(unanswered.not()),
        None => {}
    }
    let q = q
        .order_by_asc(privacy_request::Column::DueAt)
        .order_by_asc(privacy_request::Column::Id);
    let (rows, total) = page.fetch(&st.db, q).await?;
    let emails: std::collections::HashMap<i64, String> = user::Entity::find()
        .filter(user::Column::Id.is_in(rows.iter().map(|r| r.user_id)))
        .all(&st.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect();
    Ok((
        rows.into_iter()
            .map(|r| AdminRequest {
                email: emails.get(&r.user_id).cloned(),
                overdue: r.state != PrivacyRequestState::Ready && r.due_at < now,
                request: r,
            })
            .collect(),
        total,
    ))
}

/// One request as the admins' list shows it.
pub async fn admin_view(st: &AppState, r: privacy_request::Model) -> AppResult<AdminRequest> {
    let email = user::Entity::find_by_id(r.user_id)
        .one(&st.db)
        .await?
        .map(|u| u.email);
    Ok(AdminRequest {
        email,
        overdue: r.state != PrivacyRequestState::Ready && r.due_at < st.clock.now(),
        request: r,
    })
}
