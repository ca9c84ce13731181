//! GraphQL types and resolvers for API keys (admins only; see `services::accounts::api_keys`).

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::domain::Scope;
use crate::entities::api_key;
use crate::entities::user::Role;
use crate::services::accounts::api_keys::{self, NewApiKey};
use crate::services::platform::pagination::Page;

/// An API key as lists show it: never the key itself.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 3, "publicId": "ak_3kq9x0b7m2pa", "name": "ERP sync",
    "scopes": ["products:read", "orders:read"], "createdAt": "2026-12-08T10:00:00Z",
    "expiresAt": null, "lastUsedAt": "2026-12-08T10:05:00Z", "revokedAt": null, "active": true}))]
pub struct ApiKey {
    pub id: i64,
    /// Tells keys apart in lists and the audit log; not a secret.
    pub public_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// When a request last used it (updated at most once a minute).
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// Neither revoked nor expired when this was read.
    pub active: bool,
}

impl ApiKey {
    fn of(k: api_key::Model, now: chrono::DateTime<chrono::Utc>) -> Self {
        let active = k.revoked_at.is_none() && k.expires_at.is_none_or(|t| t > now);
        ApiKey {
            id: k.id,
            public_id: k.public_id,
            name: k.name,
            scopes: Scope::from_stored(&k.scopes)
                .into_iter()
                .map(|s| s.to_string())
                .collect(),
            created_at: k.created_at.into(),
            expires_at: k.expires_at.map(Into::into),
            last_used_at: k.last_used_at.map(Into::into),
            revoked_at: k.revoked_at.map(Into::into),
            active,
        }
    }
}

/// A key just created: the key itself is in `key`, shown this once and never again.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 3, "publicId": "ak_3kq9x0b7m2pa", "name": "ERP sync",
    "scopes": ["products:read", "orders:read"], "createdAt": "2026-12-08T10:00:00Z",
    "expiresAt": null, "lastUsedAt": null, "revokedAt": null, "active": true,
    "key": "dsp_live_Xq3bT0r9kVw2mZ8pL4sN6yH1cJ5fD7gA0eR2uI9oP3x"}))]
pub struct IssuedApiKey {
    #[graphql(flatten)]
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Store it now: only its
    /// hash is kept.
    pub key: String,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 3, "publicId": "ak_3kq9x0b7m2pa", "name": "ERP sync",
    "scopes": ["products:read", "orders:read"], "createdAt": "2026-12-08T10:00:00Z",
    "expiresAt": null, "lastUsedAt": "2026-12-08T10:05:00Z", "revokedAt": null, "active": true}],
    "total": 1, "page": 1, "pageSize": 20}))]
pub struct ApiKeyPage {
    pub items: Vec<ApiKey>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Default)]
pub struct ApiKeysQuery;

#[Object]
impl ApiKeysQuery {
    /// Admin: every API key, newest first (revoked and expired ones included).
    #[graphql(
        guard = "RoleGuard(Role::Admin)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
    ) -> GqlResult<ApiKeyPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (rows, total) = api_keys::list(st, rc, p).await?;
        let now = st.clock.now();
        Ok(ApiKeyPage {
            items: rows.into_iter().map(|k| ApiKey::of(k, now)).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }
}

#[derive(Default)]
pub struct ApiKeysMutation;

#[Object]
impl ApiKeysMutation {
    /// Admin: creates an API key for a store system; the answer holds the key, shown once.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn create_api_key(&self, ctx: &Context<'_>, input: NewApiKey) -> GqlResult<IssuedApiKey> {
        let (st, rc) = parts(ctx);
        let issued = api_keys::create(st, rc, input).await?;
        Ok(IssuedApiKey {
            api_key: ApiKey::of(issued.row, st.clock.now()),
            key: issued.key,
        })
    }

    /// Admin: revokes an API key; it is refused from its next request on. Revoking it again
    /// changes nothing.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: i64) -> GqlResult<ApiKey> {
        let (st, rc) = parts(ctx);
        let row = api_keys::revoke(st, rc, id).await?;
        Ok(ApiKey::of(row, st.clock.now()))
    }
}
