//! Forgotten and changed passwords.
//!
//! `forgot` mails a single-use reset link (see `links`; 30 minutes) to an address that belongs to
//! an account, and answers the same way, in about the same time, whether it does or not — so it
//! tells nobody which addresses have accounts. `reset` sets the new password with the link and
//! ends every session of the account; `change` (signed in, with the current password) ends the
//! account's other sessions. Both record an event that mails the owner a "password changed"
//! notice.

use std::time::Duration as StdDuration;

use async_graphql::InputObject;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::domain::{Email, Password};
use crate::entities::user;
use crate::error::{AppError, AppResult};
use crate::services::accounts::links::{self, Purpose};
use crate::services::accounts::sessions;
use crate::services::platform::events::{self, DomainEvent};
use crate::state::AppState;

/// What `forgot` answers, whatever the address.
pub const FORGOT_MESSAGE: &str =
    "If an account uses that address, a link to reset its password is on its way";
/// `forgot` never answers sooner than this, so that the work done for an existing account does
/// not show in the response time.
pub const FORGOT_MIN_DURATION: StdDuration = StdDuration::from_millis(100);
/// Per address: the shortest wait between two reset links, and the most in an hour. Requests
/// beyond them are answered the same, and send nothing.
pub const RESET_MIN_GAP_SECONDS: i64 = 60;
pub const RESETS_PER_HOUR: u64 = 3;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "ana@example.cl"}))]
pub struct ForgotPasswordInput {
    pub email: String,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"token": "3f1c9a0e5b7d4c2a8e6f1b3d5a7c9e0f2b4d6a8c0e1f3a5b7c9d1e3f5a7b9c0d", "newPassword": "otraClave456"}))]
pub struct ResetPasswordInput {
    /// The token from the link in the reset mail (64 hexadecimal digits).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub token: String,
    /// At least 8 characters with a letter and a digit.
    pub new_password: String,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"currentPassword": "cannabis123", "newPassword": "otraClave456"}))]
pub struct ChangePasswordInput {
    pub current_password: String,
    /// At least 8 characters with a letter and a digit.
    pub new_password: String,
}

/// `POST /api/auth/password/forgot`: a reset link to `email` if an account uses it (at most one
/// a minute and three an hour per account). Rate limited per client IP; otherwise always the same
/// answer.
pub async fn forgot(st: &AppState, ctx: &RequestCtx, input: ForgotPasswordInput) -> AppResult<()> {
    crate::services::accounts::auth::limit_ip(st, ctx).await?;
    let email = Email::parse(&input.email)?;
    let started = tokio::time::Instant::now();
    let result = request_link(st, ctx, email.as_str()).await;
    tokio::time::sleep_until(started + FORGOT_MIN_DURATION).await;
    result
}

async fn request_link(st: &AppState, ctx: &RequestCtx, email: &str) -> AppResult<()> {
    let now = st.clock.now();
    let account = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(&st.db)
        .await?
        .filter(user::Model::is_usable);
    let txn = begin_write(&st.db).await?;
    let allowed = match &account {
        Some(u) => {
            crate::services::accounts::users::lock(&txn, u.id).await?;
            links::wait_before_next(
                &txn,
                now,
                u.id,
                Purpose::ResetPassword,
                RESET_MIN_GAP_SECONDS,
                RESETS_PER_HOUR,
            )
            .await?
            .is_none()
        }
        None => false,
    };
    let mut link_id = None;
    if let (Some(u), true) = (&account, allowed) {
        let link = links::create(&txn, now, u.id, Purpose::ResetPassword, &u.email, None).await?;
        link_id = Some(link.id);
    }
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::PasswordResetRequested {
            id: account.as_ref().map(|u| u.id),
            link_id,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// `POST /api/auth/password/reset`: sets the password with a reset link (once, within 30 minutes
/// of its mail) and ends every session of the account. Following the link also proves the
/// address, which counts as verifying it.
pub async fn reset(st: &AppState, ctx: &RequestCtx, input: ResetPasswordInput) -> AppResult<()> {
    crate::services::accounts::auth::limit_ip(st, ctx).await?;
    let password = Password::parse_field("newPassword", &input.new_password)?;
    // Hashing is slow: a token that cannot be used is refused before it, and it is done before
    // the write transaction (which takes the link for good, once).
    let now = st.clock.now();
    links::usable(&st.db, Purpose::ResetPassword, &input.token, now).await?;
    let hash = st.passwords.hash(&password).await?;
    let txn = begin_write(&st.db).await?;
    let link = links::take(&txn, Purpose::ResetPassword, &input.token, now).await?;
    let u = user::Entity::find_by_id(link.user_id)
        .one(&txn)
        .await?
        .filter(user::Model::is_usable)
        .ok_or_else(|| AppError::invalid("token", "invalid", "The link is not valid"))?;
    links::check_bound(&link, &u.email)?;
    let mut am: user::ActiveModel = u.clone().into();
    am.password_hash = Set(hash);
    if u.email_verified_at.is_none() {
        am.email_verified_at = Set(Some(now));
    }
    am.updated_at = Set(now);
    am.update(&txn).await?;
    links::retire_all(&txn, u.id, now).await?;
    let sessions_revoked = sessions::end_counted(&txn, st, u.id, None).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::PasswordReset {
            id: u.id,
            link_id: link.id,
            sessions_revoked,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// `PATCH /api/me/password`: a new password for the signed-in user, who proves the current one;
/// every other session of the account ends (this one goes on).
pub async fn change(st: &AppState, ctx: &RequestCtx, input: ChangePasswordInput) -> AppResult<()> {
    let me = ctx.require_user()?.clone();
    crate::services::accounts::auth::limit_ip(st, ctx).await?;
    let password = Password::parse_field("newPassword", &input.new_password)?;
    let u = crate::services::accounts::auth::check_own_password(
        st,
        me.id,
        &input.current_password,
        "currentPassword",
    )
    .await?;
    let hash = st.passwords.hash(&password).await?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let mut am: user::ActiveModel = u.into();
    am.password_hash = Set(hash);
    am.updated_at = Set(now);
    am.update(&txn).await?;
    // Links mailed earlier (a reset asked for, a pending address change) are moot now.
    links::retire_all(&txn, me.id, now).await?;
    let other_sessions_revoked =
        sessions::end_counted(&txn, st, me.id, Some(&me.session_id)).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::PasswordChanged {
            id: me.id,
            other_sessions_revoked,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
