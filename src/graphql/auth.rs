//! GraphQL mutations for registration, login, refresh and logout.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::users::User;
use super::{parts, GqlResult};
use crate::entities::user::Role;
use crate::services::accounts::auth::{
    self, AuthSession, LoginInput, LogoutInput, RefreshInput, RegisterInput,
};
use crate::services::accounts::password_reset::{
    self, ChangePasswordInput, ForgotPasswordInput, ResetPasswordInput,
};
use crate::services::accounts::verification::{self, VerifyEmailInput};

/// The answer to a password reset request, the same whether an account uses the address or not.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"message": "If an account uses that address, a link to reset its password is on its way"}))]
pub struct PasswordResetRequested {
    pub message: String,
}

/// A verification link was followed.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"userId": 2, "email": "ana@example.cl", "emailVerified": true, "emailChanged": false}))]
pub struct EmailVerification {
    pub user_id: i64,
    /// The verified address, now the account's email.
    pub email: String,
    /// Always `true`: a link that cannot be used is an error.
    pub email_verified: bool,
    /// The link was for an email change, which has now taken effect.
    pub email_changed: bool,
}

/// A verification link is on its way.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"email": "ana@example.cl", "expiresInHours": 24}))]
pub struct EmailVerificationSent {
    /// Where it was sent: the pending new address of an email change, else the account's email.
    pub email: String,
    /// How long the link works once sent.
    pub expires_in_hours: i64,
}

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

    /// Uses the link mailed to verify an address: marks it verified, or completes the email
    /// change it was sent for. A token that is unknown, used, replaced or expired is refused
    /// (`validation_error` on `token`: `invalid`, `used`, `expired`).
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        input: VerifyEmailInput,
    ) -> GqlResult<EmailVerification> {
        let (st, rc) = parts(ctx);
        let v = verification::verify(st, rc, input).await?;
        Ok(EmailVerification {
            user_id: v.user_id,
            email: v.email,
            email_verified: true,
            email_changed: v.changed,
        })
    }

    /// Mails a new verification link for the signed-in user's pending email change, or else for
    /// their unverified address (one a minute, five an hour; 409 when already verified).
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn resend_email_verification(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<EmailVerificationSent> {
        let (st, rc) = parts(ctx);
        Ok(EmailVerificationSent {
            email: verification::resend(st, rc).await?,
            expires_in_hours: crate::services::accounts::links::Purpose::VerifyEmail
                .ttl()
                .num_hours(),
        })
    }

    /// Mails a link to reset the password of the account that uses `email`, if any. Answers the
    /// same, in about the same time, whether one does or not.
    async fn forgot_password(
        &self,
        ctx: &Context<'_>,
        input: ForgotPasswordInput,
    ) -> GqlResult<PasswordResetRequested> {
        let (st, rc) = parts(ctx);
        password_reset::forgot(st, rc, input).await?;
        Ok(PasswordResetRequested {
            message: password_reset::FORGOT_MESSAGE.into(),
        })
    }

    /// Sets a new password with the token of a reset link (once, within 30 minutes) and ends
    /// every session of the account.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        input: ResetPasswordInput,
    ) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        password_reset::reset(st, rc, input).await?;
        Ok(true)
    }

    /// Changes the signed-in user's password (the current one required) and ends their other
    /// sessions.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        password_reset::change(st, rc, input).await?;
        Ok(true)
    }

    /// Revokes the current access token and its session's refresh tokens.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn logout(&self, ctx: &Context<'_>, input: Option<LogoutInput>) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        Ok(auth::logout(st, rc, input.unwrap_or_default()).await?)
    }
}
