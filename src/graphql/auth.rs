//! GraphQL mutations for registration, login, refresh and logout.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::users::User;
use super::{parts, GqlResult};
use crate::entities::user::Role;
use crate::services::auth::{
    self, AuthSession, LoginInput, LogoutInput, RefreshInput, RegisterInput,
};

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"accessToken": "eyJhbGciOiJIUzI1NiJ9...", "refreshToken": "eyJhbGciOiJIUzI1NiJ9...",
    "expiresIn": 900, "tokenType": "Bearer", "user": {"id": 2, "name": "Ana Pérez", "email": "ana@example.cl"}}))]
pub struct AuthPayload {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Always `Bearer`.
    pub token_type: String,
    pub user: User,
}

impl From<AuthSession> for AuthPayload {
    fn from(s: AuthSession) -> Self {
        AuthPayload {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_in: s.expires_in,
            token_type: "Bearer".into(),
            user: s.user.into(),
        }
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates a customer account and signs it in.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> GqlResult<AuthPayload> {
        let (st, rc) = parts(ctx);
        Ok(auth::register(st, rc, input).await?.into())
    }

    /// Exchanges email and password for an access and a refresh token.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> GqlResult<AuthPayload> {
        let (st, rc) = parts(ctx);
        Ok(auth::login(st, rc, input).await?.into())
    }

    /// Rotates a refresh token: the old one is revoked; presenting it again revokes the whole session.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        input: RefreshInput,
    ) -> GqlResult<AuthPayload> {
        let (st, rc) = parts(ctx);
        Ok(auth::refresh(st, rc, input).await?.into())
    }

    /// Revokes the current access token and its session's refresh tokens.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn logout(&self, ctx: &Context<'_>, input: Option<LogoutInput>) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        Ok(auth::logout(st, rc, input.unwrap_or_default()).await?)
    }
}
