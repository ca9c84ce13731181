//! The personal-data requests' work states, one place for both kinds (export, erasure): which
//! request a job may still work on, and the claim that moves it to `processing`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::error::AppResult;

/// The states a job may still work on: asked for, or claimed by an attempt that did not finish.
const OPEN: [PrivacyRequestState; 2] = [
    PrivacyRequestState::Pending,
    PrivacyRequestState::Processing,
];

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
