//! Erasure of a customer's account (Ley 21.719: supresión).
//!
//! `POST /api/me/deletion-request` (password, and a code with two-factor on) records a
//! `privacy_requests` row of kind `erasure`, ends every session at once and refuses sign-in from
//! then on, and schedules a `privacy.erasure` job at the end of the grace period
//! (`ERASURE_GRACE_DAYS`). Until it runs, the customer may cancel with their email and password
//! (`DELETE /api/me/deletion-request`), which restores the account as it was; an admin may have
//! it run earlier. An order still pending payment or on its way blocks the erasure until it ends.
//!
//! The job mails the address a last time, then in one transaction deletes what the store has no
//! reason to keep (addresses, carts, sessions, links, two-factor, profile, medicinal documents
//! and every private file, review texts, idempotent answers, the queued and finished mail to the
//! address), keeps what the tax law requires (`LEGAL_RETENTION_YEARS`: orders, their items,
//! amounts, payments and receipts) under a pseudonym `cliente-<random>`, turns the user row into a
//! tombstone with no personal field, and replaces the customer's personal values wherever the
//! audit log, the outbox or the payment providers' stored answers repeat them.
//!
//! Here: the request's lifecycle (ask, cancel, run now); `job`: the job; `erase`: the erasure,
//! one function per phase.

mod erase;
mod job;

pub use job::{EraseAccount, ErasurePayload};

use async_graphql::InputObject;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::job as job_row;
use crate::entities::order::OrderStatus;
use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::entities::user::Role;
use crate::entities::{order, user};
use crate::error::{AppError, AppResult, FieldIssue};
use crate::services::accounts::{auth, erasing, lockout, sessions, two_factor};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::jobs::{self, NewJob};
use crate::services::privacy::requests;
use crate::state::AppState;

/// `POST /api/me/deletion-request`: re-authentication for erasing the account.
#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"password": "cannabis123"}))]
pub struct DeletionRequestInput {
    /// The account's password.
    pub password: String,
    /// With two-factor sign-in on: a current 6-digit code or an unused recovery code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `DELETE /api/me/deletion-request`: sign-in is refused during the grace period, so the
/// cancellation proves who asks with the account's credentials.
#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "ana@example.cl", "password": "cannabis123"}))]
pub struct CancelDeletionInput {
    pub email: String,
    pub password: String,
    /// With two-factor sign-in on: a current 6-digit code or an unused recovery code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The unique key of the job that erases for request `id`.
fn job_key(id: i64) -> String {
    requests::job_key(PrivacyRequestKind::Erasure, id)
}

/// The customer's orders that are not over yet (pending payment, paid and not yet delivered):
/// they need the customer's name and address, so they block the erasure.
async fn unfinished_orders<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> AppResult<Vec<order::Model>> {
    Ok(order::Entity::find()
        .filter(order::Column::UserId.eq(user_id))
        .filter(order::Column::Status.is_in([
            OrderStatus::Pending,
            OrderStatus::Paid,
            OrderStatus::Shipped,
        ]))
        .order_by_asc(order::Column::Id)
        .all(conn)
        .await?)
}

/// 409 `orders_in_progress` naming the orders that must end first, one detail per order
/// (`orders.<id>`: `pending_payment` / `not_delivered`).
fn blocked_by(orders: &[order::Model]) -> AppError {
    let ids: Vec<String> = orders.iter().map(|o| o.id.to_string()).collect();
    AppError::new(
        crate::error::ErrorCode::Conflict,
        format!(
            "The account cannot be erased while orders {} are still pending payment or delivery; ask again once they end",
            ids.join(", ")
        ),
    )
    .with_details(
        orders
            .iter()
            .map(|o| {
                let issue = if o.status == OrderStatus::Pending {
                    "pending_payment"
                } else {
                    "not_delivered"
                };
                FieldIssue::new(format!("orders.{}", o.id), issue)
            })
            .collect(),
    )
}

/// The customer's latest erasure request that has not run (pending, or failed and not retried).
async fn cancellable<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> AppResult<Option<privacy_request::Model>> {
    Ok(erasing::erasure_requests(user_id)
        .filter(privacy_request::Column::State.ne(PrivacyRequestState::Ready))
        .order_by_desc(privacy_request::Column::Id)
        .one(conn)
        .await?)
}

fn already_requested() -> AppError {
    AppError::conflict_field(
        "deletionRequest",
        "erasure_requested",
        "The erasure of this account was already asked for",
    )
}

/// Asks for the signed-in customer's account to be erased after the grace period: 202 with the
/// request. Every session ends at once and sign-in is refused until it is cancelled.
pub async fn request(
    st: &AppState,
    ctx: &RequestCtx,
    input: DeletionRequestInput,
) -> AppResult<privacy_request::Model> {
    let me = ctx.require_user()?.clone();
    if me.role != Role::Customer {
        return Err(AppError::forbidden(
            "Staff accounts are closed by another admin, not erased on request",
        ));
    }
    auth::limit_ip(st, ctx).await?;
    auth::check_own_password(st, me.id, &input.password, "password").await?;
    // A wrong code counts towards the account's lockout (taken before the transaction, settled
    // after it: the code is spent inside it, so a refusal below spends nothing).
    let attempt = lockout::take(st, me.id, lockout::Kind::SecondFactor).await?;
    let mut proved = false;
    let outcome = request_reauthenticated(st, ctx, &me, &input, &mut proved).await;
    attempt.settle(st, proved).await?;
    outcome
}

async fn request_reauthenticated(
    st: &AppState,
    ctx: &RequestCtx,
    me: &crate::actor::AuthUser,
    input: &DeletionRequestInput,
    proved: &mut bool,
) -> AppResult<privacy_request::Model> {
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    // Under the user's row: a checkout at the same moment either committed its order before
    // (and blocks this request, below) or finds the request and refuses (`checkout::confirm`).
    crate::services::accounts::users::lock(&txn, me.id).await?;
    two_factor::reauthenticate(&txn, st, me.id, input.code.as_deref()).await?;
    *proved = true;
    if erasing::open_request(&txn, me.id).await?.is_some() {
        return Err(already_requested());
    }
    let unfinished = unfinished_orders(&txn, me.id).await?;
    if !unfinished.is_empty() {
        return Err(blocked_by(&unfinished));
    }
    let scheduled = now + Duration::days(st.config.privacy.erasure_grace_days);
    let inserted =
        requests::new_request(st, me.id, PrivacyRequestKind::Erasure, Some(scheduled), now)
            .insert(&txn)
            .await
            .map_err(crate::error::unique_or(already_requested))?;
    jobs::enqueue(
        &txn,
        now,
        NewJob::of::<EraseAccount>(&ErasurePayload {
            request_id: inserted.id,
            trace_id: ctx.trace_id.clone(),
        })?
        .unique(job_key(inserted.id))
        .run_at(scheduled)
        // Waiting for an order to end is a retry: give it room.
        .max_attempts(20),
    )
    .await?;
    user::Entity::update_many()
        .col_expr(user::Column::ErasureRequestedAt, Expr::value(now))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(me.id))
        .exec(&txn)
        .await?;
    let ended = sessions::end_counted(&txn, st, me.id, None).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ErasureRequested {
            id: me.id,
            request_id: inserted.id,
            scheduled_for: scheduled,
            sessions: ended,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Cancels a pending erasure within the grace period, with the account's email and password (and
/// a code with two-factor on): the account is usable again, nothing having been deleted. 401 on
/// wrong credentials, 404 without a pending erasure, 409 once it is running.
pub async fn cancel(st: &AppState, ctx: &RequestCtx, input: CancelDeletionInput) -> AppResult<()> {
    auth::limit_ip(st, ctx).await?;
    let u = auth::check_credentials(st, &input.email, &input.password)
        .await?
        .accepted(st, ctx, |u| u.is_active && u.deleted_at.is_none())
        .await?;
    let attempt = lockout::take(st, u.id, lockout::Kind::SecondFactor).await?;
    let mut proved = false;
    let outcome = cancel_reauthenticated(st, ctx, &u, &input, &mut proved).await;
    attempt.settle(st, proved).await?;
    outcome
}

async fn cancel_reauthenticated(
    st: &AppState,
    ctx: &RequestCtx,
    u: &user::Model,
    input: &CancelDeletionInput,
    proved: &mut bool,
) -> AppResult<()> {
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    two_factor::reauthenticate(&txn, st, u.id, input.code.as_deref()).await?;
    *proved = true;
    crate::services::privacy::requests::settle_failed(&txn, st, Some(u.id)).await?;
    let r = cancellable(&txn, u.id)
        .await?
        .ok_or_else(|| AppError::not_found("Deletion request"))?;
    // Conditional on the state: a job that started meanwhile wins.
    let removed = privacy_request::Entity::delete_many()
        .filter(privacy_request::Column::Id.eq(r.id))
        .filter(
            privacy_request::Column::State
                .is_in([PrivacyRequestState::Pending, PrivacyRequestState::Failed]),
        )
        .exec(&txn)
        .await?;
    if removed.rows_affected != 1 {
        return Err(AppError::conflict_field(
            "deletionRequest",
            "erasure_in_progress",
            "The erasure is already running and can no longer be cancelled",
        ));
    }
    job_row::Entity::delete_many()
        .filter(job_row::Column::UniqueKey.eq(job_key(r.id)))
        .filter(job_row::Column::State.ne(crate::entities::job::JobState::Running))
        .exec(&txn)
        .await?;
    user::Entity::update_many()
        .col_expr(
            user::Column::ErasureRequestedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(u.id))
        .exec(&txn)
        .await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ErasureCancelled {
            id: u.id,
            request_id: r.id,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Admin: runs a pending erasure now instead of at the end of its grace period; answers the
/// request as it stands afterwards (`ready`, or still `pending` with `error` naming the orders
/// it waits for).
pub async fn process_now(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
) -> AppResult<privacy_request::Model> {
    ctx.require_admin()?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let r = privacy_request::Entity::find_by_id(id)
        .filter(privacy_request::Column::Kind.eq(PrivacyRequestKind::Erasure))
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Erasure request"))?;
    if !matches!(
        r.state,
        PrivacyRequestState::Pending | PrivacyRequestState::Failed
    ) {
        return Err(AppError::conflict_field(
            "state",
            "not_pending",
            format!("The erasure request is {:?}, not pending", r.state).to_lowercase(),
        ));
    }
    privacy_request::Entity::update_many()
        .col_expr(
            privacy_request::Column::State,
            Expr::value(PrivacyRequestState::Pending),
        )
        .col_expr(
            privacy_request::Column::Error,
            Expr::value(Option::<String>::None),
        )
        .col_expr(privacy_request::Column::ExpiresAt, Expr::value(now))
        .col_expr(privacy_request::Column::UpdatedAt, Expr::value(now))
        .filter(privacy_request::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    // Waiting (queued, or retrying after an order blocked it) or given up: it runs now, with a
    // fresh set of attempts.
    job_row::Entity::update_many()
        .col_expr(
            job_row::Column::State,
            Expr::value(crate::entities::job::JobState::Queued),
        )
        .col_expr(job_row::Column::RunAt, Expr::value(now))
        .col_expr(job_row::Column::Attempts, Expr::value(0))
        .col_expr(job_row::Column::UpdatedAt, Expr::value(now))
        .filter(job_row::Column::UniqueKey.eq(job_key(id)))
        .filter(job_row::Column::State.is_in([
            crate::entities::job::JobState::Queued,
            crate::entities::job::JobState::Failed,
            crate::entities::job::JobState::Dead,
        ]))
        .exec(&txn)
        .await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ErasureExpedited {
            id: r.user_id,
            request_id: id,
        },
    )
    .await?;
    txn.commit().await?;
    jobs::run_now_by_key(st, &EraseAccount, &job_key(id)).await?;
    privacy_request::Entity::find_by_id(id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Erasure request"))
}
