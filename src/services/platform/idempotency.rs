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
        if row.expires_at > now {
            if row.scope != scope || row.request_hash != hash {
                return Err(AppError::conflict_field(
                    "Idempotency-Key",
                    "reused_with_different_request",
                    "This Idempotency-Key was already used with a different request",
                ));
            }
            return match row.response_body {
                Some(body) => Ok(Claim::Replay(body)),
                None => Err(in_progress()),
            };
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
            Err(in_progress())
        }
        Err(e) => Err(e.into()),
    }
}

fn in_progress() -> AppError {
    AppError::conflict_field(
        "Idempotency-Key",
        "in_progress",
        "A request with this Idempotency-Key is still being processed",
    )
}

pub async fn complete(st: &AppState, id: i64, status: u16, body: String) -> AppResult<()> {
    let Some(row) = idempotency_key::Entity::find_by_id(id).one(&st.db).await? else {
        return Ok(());
    };
    let mut am: idempotency_key::ActiveModel = row.into();
    am.response_status = Set(Some(i32::from(status)));
    am.response_body = Set(Some(body));
    am.update(&st.db).await?;
    Ok(())
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
    let (Some(key), Some(me)) = (ctx.idempotency_key.as_deref(), ctx.user()) else {
        return op(input).await;
    };
    let hash = request_hash(scope, &input)?;
    match claim(st, me.id, scope, key, &hash).await? {
        Claim::Replay(body) => serde_json::from_str(&body).map_err(AppError::internal),
        Claim::Fresh(claim_id) => match op(input).await {
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
