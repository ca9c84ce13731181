//! What an account owes a pending erasure request before the erasure runs (the request itself,
//! its job and the erasure are the privacy context's): sign-in is refused with the date it runs,
//! and no new order is taken. Reads the privacy-request table only.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select};

use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::entities::user;
use crate::error::{AppError, AppResult, FieldIssue};
use crate::state::AppState;

/// The account's erasure requests, whatever their state.
pub fn erasure_requests(user_id: i64) -> Select<privacy_request::Entity> {
    privacy_request::Entity::find()
        .filter(privacy_request::Column::UserId.eq(user_id))
        .filter(privacy_request::Column::Kind.eq(PrivacyRequestKind::Erasure))
}

/// The account's erasure request that is still to run (pending or processing), if any.
pub async fn open_request<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> AppResult<Option<privacy_request::Model>> {
    Ok(erasure_requests(user_id)
        .filter(privacy_request::Column::State.is_in([
            PrivacyRequestState::Pending,
            PrivacyRequestState::Processing,
        ]))
        .one(conn)
        .await?)
}

/// A checkout by an account whose erasure was asked for (its token was checked just before):
/// 403 `forbidden` with `account`: `erasure_requested`.
pub fn no_orders_while_erasing() -> AppError {
    AppError::forbidden(
        "This account is being erased; it takes no new orders (cancel the erasure to keep it)",
    )
    .with_details(vec![FieldIssue::new("account", "erasure_requested")])
}

/// Sign-in with the right password during the grace period: 403 saying when the erasure runs
/// and how to cancel it (`account`: `erasure_requested`).
pub async fn sign_in_refused(st: &AppState, u: &user::Model) -> AppResult<AppError> {
    let when = open_request(&st.db, u.id)
        .await?
        .and_then(|r| r.expires_at)
        .map(|t| format!(" on {}", t.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    Ok(AppError::forbidden(format!(
        "This account is being erased{when}; to keep it, cancel with DELETE /api/me/deletion-request (cancelAccountDeletion) and your email and password"
    ))
    .with_details(vec![FieldIssue::new("account", "erasure_requested")]))
}
