//! `Idempotency-Key`: the same key and request from the same user returns the original outcome;
//! the same key with a different request is a `conflict`. Keys live 24 hours.

use chrono::Duration;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::future::Future;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::idempotency_key;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub const TTL_HOURS: i64 = 24;
/// A claim whose request has given no answer this long after it was made is taken to have died
/// with its process (killed mid-request): the next retry with the key takes it over. Longer than
/// any request runs (a provider call times out after `PROVIDER_TIMEOUT_SECONDS`, 15 by default).
pub const IN_PROGRESS_LEASE_SECONDS: i64 = 30;

pub enum Claim {
    /// First use: run the operation, then `complete` (or `abandon` on failure).
    Fresh(i64),
    /// Seen before: the stored response.
    Replay(String),
}

pub fn check_key(key: &str) -> AppResult<()> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::invalid(
            "Idempotency-Key",
            "invalid_format",
            "Idempotency-Key must be 1–255 visible ASCII characters",
        ));
    }
    Ok(())
}

pub fn request_hash<T: Serialize>(scope: &str, request: &T) -> AppResult<String> {
    let body = serde_json::to_vec(request).map_err(AppError::internal)?;
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update([0]);
    h.update(&body);
    Ok(hex::encode(h.finalize()))
}

pub async fn claim(
    st: &AppState,
    user_id: i64,
    scope: &str,
    key: &str,
    hash: &str,
) -> AppResult<Claim> {
    check_key(key)?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let existing = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::UserId.eq(user_id))
        .filter(idempotency_key::Column::Key.eq(key))
        .one(&txn)
        .await?;
    if let Some(row) = existing {
        let lease_end = row.created_at + Duration::seconds(IN_PROGRESS_LEASE_SECONDS);
        if row.expires_at > now {
            if row.scope != scope || row.request_hash != hash {
                return Err(AppError::conflict_field(
                    "Idempotency-Key",
                    "reused_with_different_request",
                    "This Idempotency-Key was already used with a different request",
                ));
            }
            match row.response_body {
                Some(body) => return Ok(Claim::Replay(body)),
                None if lease_end > now => {
                    return Err(in_progress((lease_end - now).num_seconds() + 1))
                }
                // Its request died without an answer, and without its change (which stores the
                // answer in its own transaction, `settle_in`): this retry takes the key over.
                None => {}
            }
        }
        idempotency_key::Entity::delete_by_id(row.id)
            .exec(&txn)
            .await?;
    }
    let inserted = idempotency_key::ActiveModel {
        user_id: Set(user_id),
        key: Set(key.to_string()),
        scope: Set(scope.to_string()),
        request_hash: Set(hash.to_string()),
        response_status: Set(None),
        response_body: Set(None),
        expires_at: Set(now + Duration::hours(TTL_HOURS)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    match inserted {
        Ok(row) => {
            txn.commit().await?;
            Ok(Claim::Fresh(row.id))
        }
        // The same key sent again while the first is being claimed: that one is in progress.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            txn.rollback().await?;
            Err(in_progress(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// 409 `in_progress`, to be retried after `retry_after` seconds (when the claim's lease ends).
fn in_progress(retry_after: i64) -> AppError {
    AppError {
        retry_after: Some(retry_after.max(1) as u64),
        ..AppError::conflict_field(
            "Idempotency-Key",
            "in_progress",
            "A request with this Idempotency-Key is still being processed",
        )
    }
}

/// The claim a request holds on its `Idempotency-Key` while its operation runs.
#[derive(Debug, Clone, Copy)]
pub struct Claimed(i64);

/// Stores the operation's answer under its claim in the operation's own transaction `conn`, so the
/// answer commits exactly when the change does: a process killed before the commit leaves neither
/// (a retry takes the key over once the lease passes), one killed after leaves both (a retry gets
/// the answer). A claim taken over meanwhile (this request outlived its lease) refuses, and the
/// change must roll back: the retry that took it over makes it.
pub async fn settle_in<C: sea_orm::ConnectionTrait, T: Serialize>(
    conn: &C,
    claim: Claimed,
    answer: &T,
) -> AppResult<()> {
    let body = serde_json::to_string(answer).map_err(AppError::internal)?;
    if settle(conn, claim.0, 200, body).await? {
        Ok(())
    } else {
        Err(in_progress(1))
    }
}

/// Writes the answer under claim `id` unless it has one or is gone; whether it wrote.
async fn settle<C: sea_orm::ConnectionTrait>(
    conn: &C,
    id: i64,
    status: u16,
    body: String,
) -> AppResult<bool> {
    use sea_orm::sea_query::Expr;
    let updated = idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::ResponseStatus,
            Expr::value(Some(i32::from(status))),
        )
        .col_expr(
            idempotency_key::Column::ResponseBody,
            Expr::value(Some(body)),
        )
        .filter(idempotency_key::Column::Id.eq(id))
        .filter(idempotency_key::Column::ResponseBody.is_null())
        .exec(conn)
        .await?;
    Ok(updated.rows_affected == 1)
}

pub async fn complete(st: &AppState, id: i64, status: u16, body: String) -> AppResult<()> {
    settle(&st.db, id, status, body).await.map(|_| ())
}

/// The operation failed: forget the key so that a corrected retry can use it.
pub async fn abandon(st: &AppState, id: i64) {
    if let Err(e) = idempotency_key::Entity::delete_by_id(id).exec(&st.db).await {
        AppError::internal(e);
    }
}

/// Runs `op` at most once per (user, `Idempotency-Key`) when the request carries a key: a retry with
/// the same key and the same `input` gets the first outcome back (serialised on completion); the
/// same key with another input is a `conflict`. Without a key `op` simply runs. A failed `op`
/// releases the key so that a corrected retry may use it.
pub async fn once<I, T, F, Fut>(
    st: &AppState,
    ctx: &RequestCtx,
    scope: &str,
    input: I,
    op: F,
) -> AppResult<T>
where
    I: Serialize,
    T: Serialize + DeserializeOwned,
    F: FnOnce(I) -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    once_settled(st, ctx, scope, input, |input, _| op(input)).await
}

/// [`once`] for an operation that stores its answer in its own transaction ([`settle_in`] with
/// the claim it is handed, `None` without a key): a crash between its commit and the answer's can
/// then neither lose the answer nor let a retry run the change twice.
pub async fn once_settled<I, T, F, Fut>(
    st: &AppState,
    ctx: &RequestCtx,
    scope: &str,
    input: I,
    op: F,
) -> AppResult<T>
where
    I: Serialize,
    T: Serialize + DeserializeOwned,
    F: FnOnce(I, Option<Claimed>) -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    let (Some(key), Some(me)) = (ctx.idempotency_key.as_deref(), ctx.user()) else {
        return op(input, None).await;
    };
    let hash = request_hash(scope, &input)?;
    match claim(st, me.id, scope, key, &hash).await? {
        Claim::Replay(body) => serde_json::from_str(&body).map_err(AppError::internal),
        Claim::Fresh(claim_id) => match op(input, Some(Claimed(claim_id))).await {
            Ok(out) => {
                let body = serde_json::to_string(&out).map_err(AppError::internal)?;
                complete(st, claim_id, 200, body).await?;
                Ok(out)
            }
            Err(e) => {
                abandon(st, claim_id).await;
                Err(e)
            }
        },
    }
}
