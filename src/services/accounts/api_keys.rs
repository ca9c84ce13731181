//! API keys: how the store's other systems (ERP, accounting, couriers, marketing) call it without
//! a person's password. An admin creates a key with a name, scopes and an optional expiry; the
//! key (`dsp_live_` + 43 base62 characters, 256 bits) is shown once and only its SHA-256 is
//! stored. A request sends it as `Authorization: Bearer <key>` or `X-API-Key: <key>` and acts as
//! a machine principal (`actor::ApiKeyPrincipal`) limited to its scopes (`graphql::scopes`).
//! Revocation and expiry take effect on the key's next request: every request looks the key up.

use async_graphql::InputObject;
use chrono::{DateTime, Duration, Utc};
use rand::distributions::{Alphanumeric, DistString};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::actor::{ApiKeyPrincipal, RequestCtx};
use crate::db::begin_write;
use crate::domain::{parse_text, Scope, Timestamp};
use crate::entities::api_key;
use crate::error::{AppError, AppResult, Issues};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::pagination::Page;
use crate::state::AppState;

/// What every key starts with, so that a leaked one is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "dsp_live_";
/// Base62 characters after the prefix: 43 × log2(62) ≈ 256 bits.
const KEY_CHARS: usize = 43;
/// A key's name, in characters.
pub const NAME_MAX: usize = 100;
/// `lastUsedAt` is written at most this often per key (not on every request).
const LAST_USED_GRANULARITY: Duration = Duration::seconds(60);

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "ERP sync", "scopes": ["orders:read", "products:read"], "expiresAt": "2027-12-31T23:59:59Z"}))]
pub struct NewApiKey {
    /// What the key is for (1–100 characters).
    pub name: String,
    /// `products:read`, `products:write`, `orders:read`, `orders:write` (status and tracking),
    /// `customers:read`, `webhooks:manage`.
    #[schema(min_items = 1)]
    pub scopes: Vec<String>,
    /// When the key stops working (in the future); none: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

/// A created key: its row, and the key itself, which is shown this once.
pub struct Issued {
    pub row: api_key::Model,
    pub key: String,
}

/// The key's stored form.
fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether a bearer credential is an API key rather than an access token.
pub fn looks_like_key(credential: &str) -> bool {
    credential.starts_with(KEY_PREFIX)
}

/// `POST /api/admin/api-keys` (admins only: a key never makes keys).
pub async fn create(st: &AppState, ctx: &RequestCtx, input: NewApiKey) -> AppResult<Issued> {
    ctx.require_admin()?;
    let now = st.clock.now();
    let mut issues = Issues::default();
    let name = issues.take(parse_text("name", &input.name, NAME_MAX));
    let scopes = issues.take(Scope::parse_list("scopes", &input.scopes));
    let expires_at = input.expires_at.map(|t| t.0);
    if expires_at.is_some_and(|t| t <= now) {
        issues.push("expiresAt", "in_past");
    }
    issues.finish()?;
    let (Some(name), Some(scopes)) = (name, scopes) else {
        return Err(AppError::internal("validated input missing"));
    };
    let (key, public_id) = {
        let mut rng = rand::thread_rng();
        let key = format!(
            "{KEY_PREFIX}{}",
            Alphanumeric.sample_string(&mut rng, KEY_CHARS)
        );
        let public_id = Alphanumeric
            .sample_string(&mut rng, 12)
            .to_ascii_lowercase();
        (key, format!("ak_{public_id}"))
    };
    let txn = begin_write(&st.db).await?;
    let row = api_key::ActiveModel {
        public_id: Set(public_id),
        name: Set(name),
        key_hash: Set(digest(&key)),
        scopes: Set(Scope::to_stored(&scopes)),
        created_by_user_id: Set(ctx.user_id()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ApiKeyCreated {
            id: row.id,
            public_id: row.public_id.clone(),
            name: row.name.clone(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_at,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Issued { row, key })
}

/// `GET /api/admin/api-keys`: every key, newest first, revoked and expired ones included.
pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    page: Page,
) -> AppResult<(Vec<api_key::Model>, u64)> {
    ctx.require_admin()?;
    let base = api_key::Entity::find();
    let total = base.clone().count(&st.db).await?;
    let rows = base
        .order_by_desc(api_key::Column::Id)
        .offset(page.offset())
        .limit(page.page_size)
        .all(&st.db)
        .await?;
    Ok((rows, total))
}

/// `DELETE /api/admin/api-keys/{id}`: the key is refused from its next request on. Revoking a
/// revoked key changes nothing (and records nothing).
pub async fn revoke(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<api_key::Model> {
    ctx.require_admin()?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let updated = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    let row = api_key::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("API key"))?;
    if updated == 1 {
        events::record(
            &txn,
            st,
            ctx,
            DomainEvent::ApiKeyRevoked {
                id: row.id,
                public_id: row.public_id.clone(),
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(row)
}

/// Resolves a presented key to its principal, or says why it is refused. Marks the key used
/// (at most once a minute).
pub async fn authenticate(st: &AppState, key: &str) -> Result<ApiKeyPrincipal, &'static str> {
    const UNKNOWN: &str = "The API key is not recognised";
    if !looks_like_key(key) || key.len() != KEY_PREFIX.len() + KEY_CHARS {
        return Err(UNKNOWN);
    }
    let unreachable = |e: sea_orm::DbErr| {
        if crate::error::is_connection_failure(&e) {
            return super::auth::DATABASE_UNREACHABLE;
        }
        AppError::internal(e);
        "The API key could not be checked"
    };
    let row = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(digest(key)))
        .one(&st.db)
        .await
        .map_err(unreachable)?
        .ok_or(UNKNOWN)?;
    let now = st.clock.now();
    if row.revoked_at.is_some() {
        return Err("The API key was revoked");
    }
    if row.expires_at.is_some_and(|t| t <= now) {
        return Err("The API key has expired");
    }
    if row
        .last_used_at
        .is_none_or(|t| now - t >= LAST_USED_GRANULARITY)
    {
        mark_used(st, row.id, now).await.map_err(unreachable)?;
    }
    Ok(ApiKeyPrincipal {
        id: row.id,
        public_id: row.public_id,
        scopes: Scope::from_stored(&row.scopes),
    })
}

/// Sets `last_used_at` unless another request just did.
async fn mark_used(st: &AppState, id: i64, now: DateTime<Utc>) -> Result<(), sea_orm::DbErr> {
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(api_key::Column::LastUsedAt.is_null())
                .add(api_key::Column::LastUsedAt.lt(now - LAST_USED_GRANULARITY)),
        )
        .exec(&st.db)
        .await
        .map(|_| ())
}
