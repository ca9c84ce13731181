//! Email verification: single-use links (see `links`) that prove a user holds an address.
//!
//! A link is asked for at registration, by `resend`, and by an email change (which takes effect
//! only when the new address is verified; the old one is told). Asking records
//! `user.email_verification_requested`; the mail subscriber turns it into a `verify_email`
//! message carrying the link.

use async_graphql::InputObject;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Set};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::account_link::Column;
use crate::entities::user;
use crate::error::{AppError, AppResult};
use crate::services::accounts::links::{self, Purpose};
use crate::services::accounts::users;
use crate::services::platform::events::{self, DomainEvent};
use crate::state::AppState;

/// The shortest wait between two links for one user.
pub const RESEND_MIN_GAP_SECONDS: i64 = 60;
/// The most links one user may be sent in an hour.
pub const LINKS_PER_HOUR: u64 = 5;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"token": "3f1c9a0e5b7d4c2a8e6f1b3d5a7c9e0f2b4d6a8c0e1f3a5b7c9d1e3f5a7b9c0d"}))]
pub struct VerifyEmailInput {
    /// The token from the link in the verification mail (64 hexadecimal digits).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub token: String,
}

/// What a verification did.
pub struct Verified {
    pub user_id: i64,
    pub email: String,
    /// The link was for an email change, which has now taken effect.
    pub changed: bool,
}

/// Inside the caller's transaction: a new link for `email` (for a change when `previous` is the
/// address in use), replacing the user's pending links of the same kind, and its event.
pub async fn request<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    ctx: &RequestCtx,
    user_id: i64,
    email: &str,
    previous: Option<&str>,
) -> AppResult<crate::entities::account_link::Model> {
    let row = links::create(
        conn,
        st.clock.now(),
        user_id,
        Purpose::VerifyEmail,
        email,
        previous,
    )
    .await?;
    events::record(
        conn,
        st,
        ctx,
        DomainEvent::EmailVerificationRequested {
            id: user_id,
            verification_id: row.id,
            change: previous.is_some(),
        },
    )
    .await?;
    Ok(row)
}

/// The address a pending email change would switch to, if one was asked for and its link still works.
pub async fn pending_email<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: DateTime<Utc>,
) -> AppResult<Option<String>> {
    Ok(pending_change(conn, user_id, now).await?.map(|v| v.email))
}

async fn pending_change<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: DateTime<Utc>,
) -> AppResult<Option<crate::entities::account_link::Model>> {
    let change = Condition::all().add(Column::PreviousEmail.is_not_null());
    links::pending(conn, user_id, Purpose::VerifyEmail, change, now).await
}

/// `POST /api/auth/verify-email/resend`: a new link for the signed-in user's pending email
/// change, or else for their unverified address. Answers the address it goes to.
pub async fn resend(st: &AppState, ctx: &RequestCtx) -> AppResult<String> {
    let me = ctx.require_user()?.clone();
    crate::services::accounts::auth::limit_ip(st, ctx).await?;
    let now = st.clock.now();
    let u = user::Entity::find_by_id(me.id)
        .one(&st.db)
        .await?
        .filter(user::Model::is_usable)
        .ok_or_else(|| AppError::unauthorized("The account is disabled"))?;
    let (email, previous) = match pending_change(&st.db, u.id, now).await? {
        Some(change) => (change.email, Some(u.email.clone())),
        None if u.email_verified_at.is_none() => (u.email.clone(), None),
        None => {
            return Err(AppError::conflict_field(
                "email",
                "already_verified",
                "The email address is already verified",
            ))
        }
    };
    let txn = begin_write(&st.db).await?;
    crate::services::accounts::users::lock(&txn, u.id).await?;
    if let Some(wait) = links::wait_before_next(
        &txn,
        now,
        u.id,
        Purpose::VerifyEmail,
        RESEND_MIN_GAP_SECONDS,
        LINKS_PER_HOUR,
    )
    .await?
    {
        st.metrics
            .rate_limited
            .with_label_values(&["email_verification"])
            .inc();
        return Err(AppError::rate_limited(wait)
            .with_message("A verification link was sent recently; try again later"));
    }
    request(&txn, st, ctx, u.id, &email, previous.as_deref()).await?;
    txn.commit().await?;
    Ok(email)
}

/// `POST /api/auth/verify-email`: uses a link. Marks its address verified, or makes the email
/// change it was sent for take effect. A token that is unknown, used, replaced or expired is
/// refused with `validation_error` on `token` (`invalid`, `used`, `expired`).
pub async fn verify(
    st: &AppState,
    ctx: &RequestCtx,
    input: VerifyEmailInput,
) -> AppResult<Verified> {
    crate::services::accounts::auth::limit_ip(st, ctx).await?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let row = links::take(&txn, Purpose::VerifyEmail, &input.token, now).await?;
    let Some(u) = user::Entity::find_by_id(row.user_id)
        .one(&txn)
        .await?
        .filter(user::Model::is_usable)
    else {
        return Err(AppError::invalid(
            "token",
            "invalid",
            "The link is not valid",
        ));
    };
    links::check_bound(&row, &u.email)?;
    let changed = row.previous_email.is_some() && row.email != u.email;
    let mut am: user::ActiveModel = u.clone().into();
    if changed {
        users::ensure_email_free(&txn, &row.email).await?;
        am.email = Set(row.email.clone());
    }
    if changed || u.email_verified_at.is_none() {
        am.email_verified_at = Set(Some(now));
        am.updated_at = Set(now);
        am.update(&txn).await?;
    }
    // A change retires every other pending link, reset links included (they were mailed to the
    // old address); verifying the address in use, only the other verification links for it.
    if changed {
        links::retire_all(&txn, u.id, now).await?;
    } else {
        let moot = Condition::all().add(Column::PreviousEmail.is_null());
        links::consume_pending(&txn, u.id, Purpose::VerifyEmail, moot, now).await?;
    }
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::EmailVerified {
            id: u.id,
            verification_id: row.id,
            changed,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Verified {
        user_id: u.id,
        email: row.email,
        changed,
    })
}

/// With `REQUIRE_VERIFIED_EMAIL_FOR_CHECKOUT`, checkout confirmation refuses a user whose address
/// is not verified (403 `email_not_verified`).
pub async fn require_verified_for_checkout(st: &AppState, ctx: &RequestCtx) -> AppResult<()> {
    if !st.config.store.require_verified_email_for_checkout {
        return Ok(());
    }
    let me = ctx.require_user()?;
    let verified = user::Entity::find_by_id(me.id)
        .one(&st.db)
        .await?
        .is_some_and(|u| u.email_verified_at.is_some());
    if verified {
        return Ok(());
    }
    Err(AppError::new(
        crate::error::ErrorCode::EmailNotVerified,
        "Verify your email address before placing an order: follow the link we sent you, or ask for a new one at POST /api/auth/verify-email/resend",
    ))
}
