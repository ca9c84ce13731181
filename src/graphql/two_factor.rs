//! GraphQL types and resolvers for two-factor authentication: setting it up, turning it on and
//! off, and the sign-in that may need it.

use async_graphql::{Context, Object, SimpleObject, Union};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::AuthPayload;
use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::user::Role;
use crate::services::accounts::auth::{self, LoginInput, SignIn};
use crate::services::accounts::two_factor::{
    self, DisableTwoFactorInput, EnableTwoFactorInput, VerifyMfaInput,
};

/// A new two-factor secret, for an authenticator app; confirm it with `enableTwoFactor`.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "otpauthUri": "otpauth://totp/Dispensario:ana%40example.cl?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Dispensario",
    "qrSvg": "<?xml version=\"1.0\" standalone=\"yes\"?><svg xmlns=\"http://www.w3.org/2000/svg\" ...</svg>"}))]
pub struct TwoFactorSetup {
    /// The shared secret, base32, to type into an authenticator.
    pub secret: String,
    /// The same secret as an `otpauth://totp/...` URI (SHA-1, 6 digits, 30 s).
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// Two-factor authentication is on. The recovery codes are shown this once: each signs in once
/// in place of a code.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"recoveryCodes": ["k7m2p-xq9ta", "b3n8r-wd4hz"]}))]
pub struct TwoFactorEnabled {
    pub recovery_codes: Vec<String>,
}

/// The signed-in user's two-factor state.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"enabled": true, "enabledAt": "2026-12-03T10:00:00Z", "recoveryCodesLeft": 9}))]
pub struct TwoFactorStatus {
    pub enabled: bool,
    pub enabled_at: Option<Timestamp>,
    /// Unused recovery codes (0 while disabled).
    pub recovery_codes_left: u64,
}

/// The password was right and the account uses two-factor authentication: complete the sign-in
/// with `verifyMfa` (`POST /api/auth/2fa/verify`) within `expiresIn` seconds.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"mfaRequired": true, "mfaToken": "eyJhbGciOiJIUzI1NiJ9...", "expiresIn": 300}))]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// Single-use, for `verifyMfa` only.
    pub mfa_token: String,
    pub expires_in: i64,
}

/// A sign-in's outcome: the session, or a second factor to give first.
// Built once per sign-in and moved straight into the response: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Union, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(example = json!({"mfaRequired": true, "mfaToken": "eyJhbGciOiJIUzI1NiJ9...", "expiresIn": 300}))]
pub enum SignInResult {
    AuthPayload(AuthPayload),
    MfaChallenge(MfaChallenge),
}

#[derive(Default)]
pub struct TwoFactorQuery;

#[Object]
impl TwoFactorQuery {
    /// Whether the signed-in user signs in with a second factor.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn my_two_factor(&self, ctx: &Context<'_>) -> GqlResult<TwoFactorStatus> {
        let (st, rc) = parts(ctx);
        let s = two_factor::status(st, rc).await?;
        Ok(TwoFactorStatus {
            enabled: s.enabled,
            enabled_at: s.enabled_at.map(Into::into),
            recovery_codes_left: s.recovery_codes_left,
        })
    }
}

#[derive(Default)]
pub struct TwoFactorMutation;

#[Object]
impl TwoFactorMutation {
    /// Signs in with email and password: answers the session, or — for an account with
    /// two-factor authentication — an `MfaChallenge` to complete with `verifyMfa`.
    async fn sign_in(&self, ctx: &Context<'_>, input: LoginInput) -> GqlResult<SignInResult> {
        let (st, rc) = parts(ctx);
        Ok(match auth::sign_in(st, rc, input).await? {
            SignIn::Session(s) => SignInResult::AuthPayload(s.into()),
            SignIn::MfaRequired { mfa_token } => SignInResult::MfaChallenge(MfaChallenge {
                mfa_required: true,
                mfa_token,
                expires_in: two_factor::MFA_TOKEN_TTL_SECONDS,
            }),
        })
    }

    /// Completes a sign-in with a 6-digit code (each accepted once) or a recovery code (each
    /// works once). Wrong codes count towards the account's lockout.
    async fn verify_mfa(&self, ctx: &Context<'_>, input: VerifyMfaInput) -> GqlResult<AuthPayload> {
        let (st, rc) = parts(ctx);
        Ok(two_factor::verify_login(st, rc, input).await?.into())
    }

    /// Draws a new two-factor secret for the signed-in user (409 while two-factor is enabled).
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn setup_two_factor(&self, ctx: &Context<'_>) -> GqlResult<TwoFactorSetup> {
        let (st, rc) = parts(ctx);
        let s = two_factor::setup(st, rc).await?;
        Ok(TwoFactorSetup {
            secret: s.secret,
            otpauth_uri: s.otpauth_uri,
            qr_svg: s.qr_svg,
        })
    }

    /// Turns two-factor sign-in on with a code for the secret from `setupTwoFactor`; answers the
    /// ten recovery codes.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn enable_two_factor(
        &self,
        ctx: &Context<'_>,
        input: EnableTwoFactorInput,
    ) -> GqlResult<TwoFactorEnabled> {
        let (st, rc) = parts(ctx);
        Ok(TwoFactorEnabled {
            recovery_codes: two_factor::enable(st, rc, input).await?,
        })
    }

    /// Turns two-factor sign-in off, with the password and a code or a recovery code.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn disable_two_factor(
        &self,
        ctx: &Context<'_>,
        input: DisableTwoFactorInput,
    ) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        two_factor::disable(st, rc, input).await?;
        Ok(true)
    }
}
