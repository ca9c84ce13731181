//! Email verification: single-use links that prove a user holds an address.
//!
//! A link is asked for at registration, by `resend`, and by an email change (which takes effect
//! only when the new address is verified; the old one is told). Asking writes an
//! `email_verifications` row and records `user.email_verification_requested` in the same
//! transaction; the mail subscriber turns the event into a `verify_email` message, and the mail
//! job [`mint`]s the link's token as it sends it. So the token exists only in the message: the
//! row keeps its SHA-256, and no job payload, log line or event carries it. A link lasts
//! [`LINK_TTL_HOURS`] from when it was sent, works once, and is replaced by a newer link of the
//! same kind.

use async_graphql::InputObject;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::{email_verification, user};
use crate::error::{AppError, AppResult};
use crate::services::events::{self, DomainEvent};
use crate::services::users;
use crate::state::AppState;

/// How long a link works after it was sent.
pub const LINK_TTL_HOURS: i64 = 24;
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

/// SHA-256 (hex) of a link's token: what the database keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
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
) -> AppResult<email_verification::Model> {
    let now = st.clock.now();
    let same_kind = if previous.is_some() {
        email_verification::Column::PreviousEmail.is_not_null()
    } else {
        email_verification::Column::PreviousEmail.is_null()
    };
    email_verification::Entity::update_many()
        .col_expr(email_verification::Column::ConsumedAt, Expr::value(now))
        .filter(email_verification::Column::UserId.eq(user_id))
        .filter(email_verification::Column::ConsumedAt.is_null())
        .filter(same_kind)
        .exec(conn)
        .await?;
    let row = email_verification::ActiveModel {
        user_id: Set(user_id),
        email: Set(email.to_string()),
        previous_email: Set(previous.map(str::to_string)),
        token_hash: Set(None),
        expires_at: Set(now + Duration::hours(LINK_TTL_HOURS)),
        consumed_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
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
    Ok(pending(conn, user_id, now, true).await?.map(|v| v.email))
}

/// The user's newest link of one kind (change or not) that is neither used nor expired.
async fn pending<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: DateTime<Utc>,
    change: bool,
) -> AppResult<Option<email_verification::Model>> {
    let kind = if change {
        email_verification::Column::PreviousEmail.is_not_null()
    } else {
        email_verification::Column::PreviousEmail.is_null()
    };
    Ok(email_verification::Entity::find()
        .filter(email_verification::Column::UserId.eq(user_id))
        .filter(email_verification::Column::ConsumedAt.is_null())
        .filter(email_verification::Column::ExpiresAt.gt(now))
        .filter(kind)
        .order_by_desc(email_verification::Column::Id)
        .one(conn)
        .await?)
}

/// `POST /api/auth/verify-email/resend`: a new link for the signed-in user's pending email
/// change, or else for their unverified address. Answers the address it goes to.
pub async fn resend(st: &AppState, ctx: &RequestCtx) -> AppResult<String> {
    let me = ctx.require_user()?.clone();
    crate::services::auth::limit_ip(st, ctx)?;
    let now = st.clock.now();
    let u = user::Entity::find_by_id(me.id)
        .one(&st.db)
        .await?
        .filter(user::Model::is_usable)
        .ok_or_else(|| AppError::unauthorized("The account is disabled"))?;
    let (email, previous) = match pending(&st.db, u.id, now, true).await? {
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
    throttle(st, u.id, now).await?;
    let txn = begin_write(&st.db).await?;
    request(&txn, st, ctx, u.id, &email, previous.as_deref()).await?;
    txn.commit().await?;
    Ok(email)
}

/// At most one link a minute and [`LINKS_PER_HOUR`] an hour per user, counted in the database so
/// that the limit holds across server processes.
async fn throttle(st: &AppState, user_id: i64, now: DateTime<Utc>) -> AppResult<()> {
    let of_user = || {
        email_verification::Entity::find()
            .filter(email_verification::Column::UserId.eq(user_id))
            .filter(email_verification::Column::CreatedAt.gt(now - Duration::hours(1)))
    };
    let limited = |wait: i64| {
        st.metrics
            .rate_limited
            .with_label_values(&["email_verification"])
            .inc();
        AppError::rate_limited(wait.max(1) as u64)
            .with_message("A verification link was sent recently; try again later")
    };
    let newest = of_user()
        .order_by_desc(email_verification::Column::CreatedAt)
        .one(&st.db)
        .await?;
    if let Some(n) = newest {
        let next = n.created_at + Duration::seconds(RESEND_MIN_GAP_SECONDS);
        if next > now {
            return Err(limited((next - now).num_seconds() + 1));
        }
    }
    if of_user().count(&st.db).await? >= LINKS_PER_HOUR {
        let oldest = of_user()
            .order_by_asc(email_verification::Column::CreatedAt)
            .one(&st.db)
            .await?
            .map(|o| o.created_at)
            .unwrap_or(now);
        return Err(limited(
            (oldest + Duration::hours(1) - now).num_seconds() + 1,
        ));
    }
    Ok(())
}

/// Called by the mail job as it sends link `id`: a fresh random token, whose hash replaces any
/// earlier one of this link (a retried send invalidates the attempt before it) and which works
/// for [`LINK_TTL_HOURS`] from now. `None` when the link was used or replaced meanwhile.
pub async fn mint(st: &AppState, id: i64) -> AppResult<Option<String>> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let now = st.clock.now();
    let set = email_verification::Entity::update_many()
        .col_expr(
            email_verification::Column::TokenHash,
            Expr::value(token_hash(&token)),
        )
        .col_expr(
            email_verification::Column::ExpiresAt,
            Expr::value(now + Duration::hours(LINK_TTL_HOURS)),
        )
        .filter(email_verification::Column::Id.eq(id))
        .filter(email_verification::Column::ConsumedAt.is_null())
        .exec(&st.db)
        .await?;
    Ok((set.rows_affected == 1).then_some(token))
}

/// `POST /api/auth/verify-email`: uses a link. Marks its address verified, or makes the email
/// change it was sent for take effect. A token that is unknown, used, replaced or expired is
/// refused with `validation_error` on `token` (`invalid`, `used`, `expired`).
pub async fn verify(
    st: &AppState,
    ctx: &RequestCtx,
    input: VerifyEmailInput,
) -> AppResult<Verified> {
    crate::services::auth::limit_ip(st, ctx)?;
    let refused = |issue: &str, message: &str| AppError::invalid("token", issue, message);
    let invalid = || refused("invalid", "The verification link is not valid");
    let token = input.token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let now = st.clock.now();
    let row = email_verification::Entity::find()
        .filter(email_verification::Column::TokenHash.eq(token_hash(&token.to_ascii_lowercase())))
        .one(&st.db)
        .await?
        .ok_or_else(invalid)?;
    let used = || {
        refused(
            "used",
            "This verification link was already used or replaced by a newer one",
        )
    };
    if row.consumed_at.is_some() {
        return Err(used());
    }
    if row.expires_at <= now {
        return Err(refused(
            "expired",
            "This verification link has expired; ask for a new one",
        ));
    }
    let txn = begin_write(&st.db).await?;
    // Compare-and-set: of two concurrent uses of one link, one wins.
    let taken = email_verification::Entity::update_many()
        .col_expr(email_verification::Column::ConsumedAt, Expr::value(now))
        .filter(email_verification::Column::Id.eq(row.id))
        .filter(email_verification::Column::ConsumedAt.is_null())
        .exec(&txn)
        .await?;
    if taken.rows_affected != 1 {
        txn.rollback().await?;
        return Err(used());
    }
    let Some(u) = user::Entity::find_by_id(row.user_id)
        .one(&txn)
        .await?
        .filter(user::Model::is_usable)
    else {
        txn.rollback().await?;
        return Err(invalid());
    };
    let changed = row.email != u.email;
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
    // A change makes every other pending link moot; verifying the address in use, only the other
    // links for it.
    let mut moot = email_verification::Entity::update_many()
        .col_expr(email_verification::Column::ConsumedAt, Expr::value(now))
        .filter(email_verification::Column::UserId.eq(u.id))
        .filter(email_verification::Column::ConsumedAt.is_null());
    if !changed {
        moot = moot.filter(email_verification::Column::PreviousEmail.is_null());
    }
    moot.exec(&txn).await?;
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
    if !st.config.require_verified_email_for_checkout {
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
