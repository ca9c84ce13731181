//! Single-use links mailed to users: email verification and password reset.
//!
//! Asking for a link writes an `account_links` row (and, in the same transaction, the event the
//! mail subscriber turns into a message). The link's token is made by the mail job as it sends
//! the message ([`mint_url`]): a random 256-bit value of which only the SHA-256 is stored, so the
//! token exists only in the message — no job payload, event, audit row or log line holds it. A
//! retried send makes a new token (the unsent one dies with it). A link works once, for its
//! purpose's lifetime from when it was sent, and a newer link of the same kind replaces it. A link
//! is bound to the address it was sent to: an email or password change retires every outstanding
//! link of the account ([`retire_all`]), and a link whose address is no longer the account's is
//! refused ([`check_bound`]).

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Select, Set,
};
use sha2::{Digest, Sha256};

pub use crate::entities::account_link::Purpose;
use crate::entities::account_link::{self, Column, Entity, Model};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

impl Purpose {
    /// How long a link works once sent.
    pub fn ttl(self) -> Duration {
        match self {
            Purpose::VerifyEmail => Duration::hours(24),
            Purpose::ResetPassword => Duration::minutes(30),
        }
    }

    /// The frontend page the link opens (`FRONTEND_BASE_URL` + this + `?token=…`).
    fn page(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "/verify-email",
            Purpose::ResetPassword => "/reset-password",
        }
    }
}

/// SHA-256 (hex) of a link's token: what the database keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn of_user(user_id: i64, purpose: Purpose) -> Select<Entity> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Purpose.eq(purpose))
}

/// Marks the user's unused links of `purpose` that also match `which` as consumed.
pub async fn consume_pending<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    purpose: Purpose,
    which: Condition,
    now: DateTime<Utc>,
) -> AppResult<()> {
    Entity::update_many()
        .col_expr(Column::ConsumedAt, Expr::value(now))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Purpose.eq(purpose))
        .filter(Column::ConsumedAt.is_null())
        .filter(which)
        .exec(conn)
        .await?;
    Ok(())
}

/// Retires every unused link of the user, whatever its purpose: a mailed link speaks for the
/// address it was sent to and the credentials in force then, so changing the email or the
/// password makes every outstanding one moot (whoever still reads an old mailbox gets nothing).
pub async fn retire_all<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    Entity::update_many()
        .col_expr(Column::ConsumedAt, Expr::value(now))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::ConsumedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Refuses (as used) a link that no longer speaks for the account: the address it is bound to —
/// where it was sent, or for an email change the address being replaced — is not `current`.
/// [`retire_all`] already retires such links when the address changes; this holds even for one
/// that escaped it.
pub fn check_bound(link: &Model, current: &str) -> AppResult<()> {
    let bound = link.previous_email.as_deref().unwrap_or(&link.email);
    if bound == current {
        Ok(())
    } else {
        Err(used())
    }
}

/// Inside the caller's transaction: a new link of `purpose` to `email` (`previous`: the address
/// in use, for an email change), replacing the user's unused links of the same kind — same
/// purpose, and change or not alike.
pub async fn create<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    user_id: i64,
    purpose: Purpose,
    email: &str,
    previous: Option<&str>,
) -> AppResult<Model> {
    let same_kind = Condition::all().add(if previous.is_some() {
        Column::PreviousEmail.is_not_null()
    } else {
        Column::PreviousEmail.is_null()
    });
    consume_pending(conn, user_id, purpose, same_kind, now).await?;
    Ok(account_link::ActiveModel {
        user_id: Set(user_id),
        purpose: Set(purpose),
        email: Set(email.to_string()),
        previous_email: Set(previous.map(str::to_string)),
        token_hash: Set(None),
        expires_at: Set(now + purpose.ttl()),
        consumed_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?)
}

/// The user's newest unused, unexpired link of `purpose` that also matches `which`.
pub async fn pending<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    purpose: Purpose,
    which: Condition,
    now: DateTime<Utc>,
) -> AppResult<Option<Model>> {
    Ok(of_user(user_id, purpose)
        .filter(Column::ConsumedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .filter(which)
        .order_by_desc(Column::Id)
        .one(conn)
        .await?)
}

/// How long the user must wait before another link of `purpose` (`None`: not at all): at most one
/// every `min_gap_seconds` and `per_hour` an hour, counted in the database so the limit holds
/// across server processes. Read inside the write transaction that creates the link, after
/// locking the user's row (`users::lock`), so requests at once queue and each counts the links
/// the ones before it made.
pub async fn wait_before_next<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    user_id: i64,
    purpose: Purpose,
    min_gap_seconds: i64,
    per_hour: u64,
) -> AppResult<Option<u64>> {
    let last_hour =
        || of_user(user_id, purpose).filter(Column::CreatedAt.gt(now - Duration::hours(1)));
    let secs = |until: DateTime<Utc>| Some(((until - now).num_seconds() + 1).max(1) as u64);
    if let Some(newest) = last_hour()
        .order_by_desc(Column::CreatedAt)
        .one(conn)
        .await?
    {
        let next = newest.created_at + Duration::seconds(min_gap_seconds);
        if next > now {
            return Ok(secs(next));
        }
    }
    if last_hour().count(conn).await? >= per_hour {
        let oldest = last_hour()
            .order_by_asc(Column::CreatedAt)
            .one(conn)
            .await?
            .map_or(now, |o| o.created_at);
        return Ok(secs(oldest + Duration::hours(1)));
    }
    Ok(None)
}

/// Called by the mail job as it sends link `id`: a fresh random token, whose hash replaces any
/// earlier one of this link and which works for the purpose's lifetime from now; answers the
/// URL to put in the message. `None` when the link was used or replaced meanwhile.
pub async fn mint_url(st: &AppState, id: i64) -> AppResult<Option<String>> {
    let Some(link) = Entity::find_by_id(id).one(&st.db).await? else {
        return Ok(None);
    };
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let now = st.clock.now();
    let set = Entity::update_many()
        .col_expr(Column::TokenHash, Expr::value(token_hash(&token)))
        .col_expr(Column::ExpiresAt, Expr::value(now + link.purpose.ttl()))
        .filter(Column::Id.eq(id))
        .filter(Column::ConsumedAt.is_null())
        .exec(&st.db)
        .await?;
    Ok((set.rows_affected == 1).then(|| {
        format!(
            "{}{}?token={token}",
            st.config.http.frontend_base_url,
            link.purpose.page()
        )
    }))
}

fn refused(issue: &str, message: &str) -> AppError {
    AppError::invalid("token", issue, message)
}

fn used() -> AppError {
    refused(
        "used",
        "This link was already used or replaced by a newer one",
    )
}

/// The link of `purpose` whose token is `token` if it can be used now, or the refusal [`take`]
/// would give — without using it (a cheap check before slow work such as hashing a password).
pub async fn usable<C: ConnectionTrait>(
    conn: &C,
    purpose: Purpose,
    token: &str,
    now: DateTime<Utc>,
) -> AppResult<Model> {
    let invalid = || refused("invalid", "The link is not valid");
    let token = token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let link = Entity::find()
        .filter(Column::TokenHash.eq(token_hash(&token.to_ascii_lowercase())))
        .filter(Column::Purpose.eq(purpose))
        .one(conn)
        .await?
        .ok_or_else(invalid)?;
    if link.consumed_at.is_some() {
        return Err(used());
    }
    if link.expires_at <= now {
        return Err(refused(
            "expired",
            "This link has expired; ask for a new one",
        ));
    }
    Ok(link)
}

/// Inside the caller's transaction: uses the link of `purpose` whose token is `token`, or refuses
/// with `validation_error` on `token` — `invalid` (unknown, malformed, or another purpose's),
/// `used` (used or replaced by a newer link), `expired`. Of two concurrent uses, one wins.
pub async fn take<C: ConnectionTrait>(
    conn: &C,
    purpose: Purpose,
    token: &str,
    now: DateTime<Utc>,
) -> AppResult<Model> {
    let link = usable(conn, purpose, token, now).await?;
    let taken = Entity::update_many()
        .col_expr(Column::ConsumedAt, Expr::value(now))
        .filter(Column::Id.eq(link.id))
        .filter(Column::ConsumedAt.is_null())
        .exec(conn)
        .await?;
    if taken.rows_affected != 1 {
        return Err(used());
    }
    Ok(link)
}

/// Links a week past their expiry (used ones included), for the periodic purge.
pub async fn purge(st: &AppState) -> AppResult<u64> {
    Ok(Entity::delete_many()
        .filter(Column::ExpiresAt.lt(st.clock.now() - Duration::days(7)))
        .exec(&st.db)
        .await?
        .rows_affected)
}
