//! GraphQL types and resolvers for the sessions a user can see and end.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::user::Role;
use crate::services::accounts::sessions::{self, SessionView};

/// A live session: one login and the refreshes that followed it.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 7, "createdAt": "2026-12-03T10:00:00Z", "lastUsedAt": "2026-12-03T10:45:00Z",
    "ip": "190.100.12.34", "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)", "current": true}))]
pub struct Session {
    pub id: i64,
    /// When the login happened.
    pub created_at: Timestamp,
    /// When its tokens were last issued (the login, or a refresh).
    pub last_used_at: Timestamp,
    /// The client address of the login, then of the latest refresh.
    pub ip: Option<String>,
    /// The `User-Agent` of the login, then of the latest refresh.
    pub user_agent: Option<String>,
    /// Whether the request's access token belongs to this session.
    pub current: bool,
}

impl From<SessionView> for Session {
    fn from(v: SessionView) -> Self {
        let s = v.session;
        Session {
            id: s.id,
            created_at: s.created_at.into(),
            last_used_at: s.last_used_at.into(),
            ip: s.ip,
            user_agent: s.user_agent,
            current: v.current,
        }
    }
}

/// Live sessions, most recently used first (at most 100).
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 7, "createdAt": "2026-12-03T10:00:00Z", "lastUsedAt": "2026-12-03T10:45:00Z",
    "ip": "190.100.12.34", "userAgent": "Mozilla/5.0", "current": true}]}))]
pub struct SessionList {
    pub items: Vec<Session>,
}

fn list(v: Vec<SessionView>) -> SessionList {
    SessionList {
        items: v.into_iter().map(Into::into).collect(),
    }
}

/// How many sessions were ended.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"revoked": 2}))]
pub struct SessionsRevoked {
    pub revoked: u64,
}

#[derive(Default)]
pub struct SessionsQuery;

#[Object]
impl SessionsQuery {
    /// The signed-in user's live sessions, most recently used first (at most 100), the current
    /// one marked.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn my_sessions(&self, ctx: &Context<'_>) -> GqlResult<SessionList> {
        let (st, rc) = parts(ctx);
        Ok(list(sessions::mine(st, rc).await?))
    }

    /// Admin: a user's live sessions, most recently used first (at most 100).
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn user_sessions(&self, ctx: &Context<'_>, id: i64) -> GqlResult<SessionList> {
        let (st, rc) = parts(ctx);
        Ok(list(sessions::of_user(st, rc, id).await?))
    }
}

#[derive(Default)]
pub struct SessionsMutation;

#[Object]
impl SessionsMutation {
    /// Ends one of the signed-in user's sessions: its refresh tokens and every access token
    /// issued to it stop working at once.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: i64) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        sessions::revoke(st, rc, id).await?;
        Ok(true)
    }

    /// Ends every session of the signed-in user but the current one.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn revoke_other_sessions(&self, ctx: &Context<'_>) -> GqlResult<SessionsRevoked> {
        let (st, rc) = parts(ctx);
        Ok(SessionsRevoked {
            revoked: sessions::revoke_others(st, rc).await?,
        })
    }

    /// Admin: ends every session of a user.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn revoke_user_sessions(&self, ctx: &Context<'_>, id: i64) -> GqlResult<SessionsRevoked> {
        let (st, rc) = parts(ctx);
        Ok(SessionsRevoked {
            revoked: sessions::revoke_all_of_user(st, rc, id).await?,
        })
    }
}
