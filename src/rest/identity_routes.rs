//! REST rows for authentication, the signed-in user and user administration.

use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::{json_body, optional_json_body, query, Access, RestRoute};
use crate::entities::user::Role;
use crate::graphql::auth::{
    AuthPayload, EmailVerification, EmailVerificationSent, PasswordResetRequested,
};
use crate::graphql::consents::ConsentOverview;
use crate::graphql::privacy::{DataExport, DeletionRequest};
use crate::graphql::sessions::{SessionList, SessionsRevoked};
use crate::graphql::two_factor::{SignInResult, TwoFactorEnabled, TwoFactorSetup, TwoFactorStatus};
use crate::graphql::users::{User, UserPage};
use crate::services::accounts::auth::{LoginInput, LogoutInput, RefreshInput, RegisterInput};
use crate::services::accounts::consents::GrantInput;
use crate::services::accounts::password_reset::{
    ChangePasswordInput, ForgotPasswordInput, ResetPasswordInput,
};
use crate::services::accounts::two_factor::{
    DisableTwoFactorInput, EnableTwoFactorInput, VerifyMfaInput,
};
use crate::services::accounts::users::{UpdateMeInput, UpdateUserInput};
use crate::services::accounts::verification::VerifyEmailInput;
use crate::services::privacy::erasure::{CancelDeletionInput, DeletionRequestInput};

/// Query parameters of `GET /api/users`.
#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UsersParams {
    /// Page number, from 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    /// Items per page, 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    /// Free text matched against name, email and RUT, case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

pub fn routes() -> Vec<RestRoute> {
    [
        auth_routes(),
        account_routes(),
        privacy_routes(),
        session_and_user_routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Sign-up, sign-in, tokens, email verification and password reset.
fn auth_routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(
            M::POST,
            "/api/auth/register",
            "Register",
            doc!("auth/register.graphql", "user_fields.graphql"),
            "register",
        )
        .rate_limited()
        .status(StatusCode::CREATED)
        .doc("auth", "Register a customer account and sign it in")
        .body(json_body::<RegisterInput>("input"))
        .returns::<AuthPayload>(),
        RestRoute::new(
            M::POST,
            "/api/auth/login",
            "Login",
            doc!("auth/login.graphql", "user_fields.graphql"),
            "signIn",
        )
        .credentials()
        .rate_limited()
        .doc(
            "auth",
            "Sign in with email and password: the tokens, or for an account with two-factor authentication `{mfaRequired: true, mfaToken, expiresIn}` to complete with POST /api/auth/2fa/verify",
        )
        .body(json_body::<LoginInput>("input"))
        .returns::<SignInResult>(),
        RestRoute::new(
            M::POST,
            "/api/auth/2fa/verify",
            "VerifyMfa",
            doc!("auth/verify_mfa.graphql", "user_fields.graphql"),
            "verifyMfa",
        )
        .credentials()
        .rate_limited()
        .doc(
            "auth",
            "Complete a two-factor sign-in with its mfaToken and a 6-digit code (each accepted once) or a recovery code (each works once); 400 on `code` / `recoveryCode` (`invalid`, `already_used`), 401 when the mfaToken is expired or used",
        )
        .body(json_body::<VerifyMfaInput>("input"))
        .returns::<AuthPayload>(),
        RestRoute::new(
            M::POST,
            "/api/auth/refresh",
            "RefreshToken",
            doc!("auth/refresh_token.graphql", "user_fields.graphql"),
            "refreshToken",
        )
        .credentials()
        .rate_limited()
        .doc("auth", "Rotate a refresh token into a new token pair")
        .body(json_body::<RefreshInput>("input"))
        .returns::<AuthPayload>(),
        RestRoute::new(
            M::POST,
            "/api/auth/logout",
            "Logout",
            doc!("auth/logout.graphql"),
            "logout",
        )
        .rate_limited()
        .status(StatusCode::NO_CONTENT)
        .access(Access::Customer)
        .doc(
            "auth",
            "Revoke the access token and its session's refresh tokens",
        )
        .body(optional_json_body::<LogoutInput>("input")),
        RestRoute::new(
            M::POST,
            "/api/auth/verify-email",
            "VerifyEmail",
            doc!("auth/verify_email.graphql"),
            "verifyEmail",
        )
        .rate_limited()
        .doc(
            "auth",
            "Use the link mailed to verify an address (or complete an email change); 400 on `token` when it is invalid, used or expired",
        )
        .body(json_body::<VerifyEmailInput>("input"))
        .returns::<EmailVerification>(),
        RestRoute::new(
            M::POST,
            "/api/auth/verify-email/resend",
            "ResendEmailVerification",
            doc!("auth/resend_email_verification.graphql"),
            "resendEmailVerification",
        )
        .rate_limited()
        .status(StatusCode::ACCEPTED)
        .access(Access::Customer)
        .doc(
            "auth",
            "Mail a new verification link (pending email change first, else the unverified address); 429 more than once a minute or five times an hour, 409 when already verified",
        )
        .returns::<EmailVerificationSent>(),
        RestRoute::new(
            M::POST,
            "/api/auth/password/forgot",
            "ForgotPassword",
            doc!("auth/forgot_password.graphql"),
            "forgotPassword",
        )
        .rate_limited()
        .status(StatusCode::ACCEPTED)
        .doc(
            "auth",
            "Mail a password reset link to the account using this address, if any: always the same 202 answer",
        )
        .body(json_body::<ForgotPasswordInput>("input"))
        .returns::<PasswordResetRequested>(),
        RestRoute::new(
            M::POST,
            "/api/auth/password/reset",
            "ResetPassword",
            doc!("auth/reset_password.graphql"),
            "resetPassword",
        )
        .rate_limited()
        .status(StatusCode::NO_CONTENT)
        .doc(
            "auth",
            "Set a new password with a reset link's token (once, within 30 minutes); ends every session of the account. 400 on `token` when it is invalid, used or expired",
        )
        .body(json_body::<ResetPasswordInput>("input")),
    ]
}

/// The signed-in user's profile, password and two-factor authentication.
fn account_routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(
            M::PATCH,
            "/api/me/password",
            "ChangePassword",
            doc!("users/change_password.graphql"),
            "changePassword",
        )
        .rate_limited()
        .status(StatusCode::NO_CONTENT)
        .access(Access::Customer)
        .doc(
            "users",
            "Change the signed-in user's password (400 on `currentPassword` when it is wrong); ends their other sessions",
        )
        .body(json_body::<ChangePasswordInput>("input")),
        RestRoute::new(
            M::GET,
            "/api/me",
            "Me",
            doc!("users/me.graphql", "user_fields.graphql"),
            "me",
        )
        .access(Access::Customer)
        .doc("users", "The signed-in user")
        .returns::<User>(),
        RestRoute::new(
            M::PATCH,
            "/api/me",
            "UpdateMe",
            doc!("users/update_me.graphql", "user_fields.graphql"),
            "updateMe",
        )
        .access(Access::Customer)
        .doc(
            "users",
            "Update the signed-in user's name, RUT or phone, or ask for an email change (it takes effect when the link mailed to the new address is followed)",
        )
        .body(json_body::<UpdateMeInput>("input"))
        .returns::<User>(),
        RestRoute::new(
            M::GET,
            "/api/me/2fa",
            "MyTwoFactor",
            doc!("users/my_two_factor.graphql"),
            "myTwoFactor",
        )
        .access(Access::Customer)
        .doc("users", "Whether the signed-in user signs in with a second factor, and how many recovery codes are left")
        .returns::<TwoFactorStatus>(),
        RestRoute::new(
            M::POST,
            "/api/me/2fa/setup",
            "SetupTwoFactor",
            doc!("users/setup_two_factor.graphql"),
            "setupTwoFactor",
        )
        .access(Access::Customer)
        .doc(
            "users",
            "Draw a new TOTP secret (base32, otpauth:// URI and QR code as SVG) to confirm with /api/me/2fa/enable; 409 while two-factor is enabled",
        )
        .returns::<TwoFactorSetup>(),
        RestRoute::new(
            M::POST,
            "/api/me/2fa/enable",
            "EnableTwoFactor",
            doc!("users/enable_two_factor.graphql"),
            "enableTwoFactor",
        )
        .rate_limited()
        .access(Access::Customer)
        .doc(
            "users",
            "Turn two-factor sign-in on with a code for the secret from setup; answers ten single-use recovery codes, shown this once (400 on `code`, 409 without setup or when already on)",
        )
        .body(json_body::<EnableTwoFactorInput>("input"))
        .returns::<TwoFactorEnabled>(),
        RestRoute::new(
            M::POST,
            "/api/me/2fa/disable",
            "DisableTwoFactor",
            doc!("users/disable_two_factor.graphql"),
            "disableTwoFactor",
        )
        .rate_limited()
        .status(StatusCode::NO_CONTENT)
        .access(Access::Customer)
        .doc(
            "users",
            "Turn two-factor sign-in off with the password and a code or a recovery code (400 on `password` / `code`, 409 when not on)",
        )
        .body(json_body::<DisableTwoFactorInput>("input")),
    ]
}

/// Consents, the personal-data export and the deletion request.
fn privacy_routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(
            M::GET,
            "/api/me/consents",
            "MyConsents",
            doc!("users/my_consents.graphql", "consent_fields.graphql"),
            "myConsents",
        )
        .access(Access::Customer)
        .doc(
            "privacy",
            "The signed-in user's consents (Ley 21.719): the privacy policy version in force and whether it is accepted, whether the health-data consent is in force, and every consent given, newest first",
        )
        .returns::<ConsentOverview>(),
        RestRoute::new(
            M::POST,
            "/api/me/consents/privacy_policy",
            "AcceptPrivacyPolicy",
            doc!("users/accept_privacy_policy.graphql", "consent_fields.graphql"),
            "giveConsent",
        )
        .access(Access::Customer)
        .doc(
            "privacy",
            "Accept the privacy policy in force; an optional {policyVersion} must name it (409 policy_changed). Accepting again changes nothing",
        )
        .body(optional_json_body::<GrantInput>("input"))
        .returns::<ConsentOverview>(),
        RestRoute::new(
            M::POST,
            "/api/me/consents/health_data",
            "GiveHealthDataConsent",
            doc!("users/give_health_data_consent.graphql", "consent_fields.graphql"),
            "giveConsent",
        )
        .access(Access::Customer)
        .doc(
            "privacy",
            "Consent to the processing of health data (the prescriptions and certificates you submit); needed before submitting a medicinal document",
        )
        .returns::<ConsentOverview>(),
        RestRoute::new(
            M::POST,
            "/api/me/consents/privacy_policy/withdraw",
            "WithdrawPrivacyPolicyConsent",
            doc!("users/withdraw_privacy_policy.graphql", "consent_fields.graphql"),
            "withdrawConsent",
        )
        .access(Access::Customer)
        .doc(
            "privacy",
            "Withdraw the acceptance of the privacy policy (privacyPolicyAccepted becomes false); withdrawing what is not in force changes nothing",
        )
        .returns::<ConsentOverview>(),
        RestRoute::new(
            M::POST,
            "/api/me/consents/health_data/withdraw",
            "WithdrawHealthDataConsent",
            doc!("users/withdraw_health_data_consent.graphql", "consent_fields.graphql"),
            "withdrawConsent",
        )
        .access(Access::Customer)
        .doc(
            "privacy",
            "Withdraw the consent to the processing of health data: medicinal access ends at once and pending documents leave review, until it is given again",
        )
        .returns::<ConsentOverview>(),
        RestRoute::new(
            M::POST,
            "/api/me/data-export",
            "RequestDataExport",
            doc!("privacy/request_data_export.graphql"),
            "requestDataExport",
        )
        .rate_limited()
        .status(StatusCode::ACCEPTED)
        .access(Access::Customer)
        .doc(
            "privacy",
            "Ask for a ZIP of everything the store holds about you (Ley 21.719: access and portability), prepared in the background: poll GET /api/me/data-exports/{id}; a mail says when it is ready. One at a time (409 export_in_progress), three a day (429)",
        )
        .returns::<DataExport>(),
        RestRoute::new(
            M::POST,
            "/api/me/deletion-request",
            "RequestAccountDeletion",
            doc!("privacy/request_account_deletion.graphql"),
            "requestAccountDeletion",
        )
        .rate_limited()
        .status(StatusCode::ACCEPTED)
        .access(Access::Customer)
        .doc(
            "privacy",
            "Ask for your account to be erased (Ley 21.719), with your password (and a code with two-factor on). Every session ends at once and sign-in is refused; after ERASURE_GRACE_DAYS (default 7) the account is erased, unless cancelled with DELETE /api/me/deletion-request. Orders, payments and receipts stay under a pseudonym for LEGAL_RETENTION_YEARS. 409 while an order is pending payment or delivery (each named in details), or when already asked",
        )
        .body(json_body::<DeletionRequestInput>("input"))
        .returns::<DeletionRequest>(),
        RestRoute::new(
            M::DELETE,
            "/api/me/deletion-request",
            "CancelAccountDeletion",
            doc!("privacy/cancel_account_deletion.graphql"),
            "cancelAccountDeletion",
        )
        .rate_limited()
        .status(StatusCode::NO_CONTENT)
        .doc(
            "privacy",
            "Cancel the erasure of your account within its grace period. Sign-in is refused meanwhile, so this takes your email and password (and a code with two-factor on) instead of a token; the account is usable again as it was. 401 on wrong credentials, 404 without a pending erasure, 409 once it is running",
        )
        .body(json_body::<CancelDeletionInput>("input")),
        RestRoute::new(
            M::GET,
            "/api/me/data-exports/{id}",
            "MyDataExport",
            doc!("privacy/my_data_export.graphql"),
            "myDataExport",
        )
        .access(Access::Customer)
        .doc(
            "privacy",
            "One of your data exports: its state and, when ready, a download link valid for 24 hours (it works only with your bearer token)",
        )
        .returns::<DataExport>(),
    ]
}

/// Sessions, and user administration.
fn session_and_user_routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(
            M::GET,
            "/api/me/sessions",
            "MySessions",
            doc!("users/my_sessions.graphql"),
            "mySessions",
        )
        .access(Access::Customer)
        .doc(
            "users",
            "The signed-in user's live sessions (one per login), most recently used first, the current one marked",
        )
        .returns::<SessionList>(),
        RestRoute::new(
            M::DELETE,
            "/api/me/sessions/{id}",
            "RevokeSession",
            doc!("users/revoke_session.graphql"),
            "revokeSession",
        )
        .status(StatusCode::NO_CONTENT)
        .access(Access::Customer)
        .doc(
            "users",
            "End one of the signed-in user's sessions: its tokens stop working at once (404 if not theirs or already ended)",
        ),
        RestRoute::new(
            M::POST,
            "/api/me/sessions/revoke-others",
            "RevokeOtherSessions",
            doc!("users/revoke_other_sessions.graphql"),
            "revokeOtherSessions",
        )
        .access(Access::Customer)
        .doc("users", "End every session of the signed-in user but this one")
        .returns::<SessionsRevoked>(),
        RestRoute::new(
            M::GET,
            "/api/users/{id}/sessions",
            "UserSessions",
            doc!("users/user_sessions.graphql"),
            "userSessions",
        )
        .access(Access::Admin)
        .doc("users", "A user's live sessions, most recently used first (admin)")
        .returns::<SessionList>(),
        RestRoute::new(
            M::POST,
            "/api/users/{id}/sessions/revoke",
            "RevokeUserSessions",
            doc!("users/revoke_user_sessions.graphql"),
            "revokeUserSessions",
        )
        .access(Access::Admin)
        .doc("users", "End every session of a user: their tokens stop working at once (admin)")
        .returns::<SessionsRevoked>(),
        RestRoute::new(
            M::GET,
            "/api/users",
            "Users",
            doc!("users/users.graphql", "user_fields.graphql"),
            "users",
        )
        .access(Access::Admin)
        .doc("users", "List users (admin)")
        .query(query::<UsersParams>())
        .returns::<UserPage>(),
        RestRoute::new(
            M::GET,
            "/api/users/{id}",
            "User",
            doc!("users/user.graphql", "user_fields.graphql"),
            "user",
        )
        .access(Access::Admin)
        .doc("users", "Get a user (admin)")
        .returns::<User>(),
        RestRoute::new(
            M::PATCH,
            "/api/users/{id}",
            "UpdateUser",
            doc!("users/update_user.graphql", "user_fields.graphql"),
            "updateUser",
        )
        .access(Access::Admin)
        .doc(
            "users",
            "Change a user's role, active flag or medicinal validation (admin)",
        )
        .body(json_body::<UpdateUserInput>("input"))
        .returns::<User>(),
        RestRoute::new(
            M::DELETE,
            "/api/users/{id}",
            "DeleteUser",
            doc!("users/delete_user.graphql"),
            "deleteUser",
        )
        .status(StatusCode::NO_CONTENT)
        .access(Access::Admin)
        .doc(
            "users",
            "Soft-delete a user: deactivate and revoke every session (admin)",
        ),
    ]
}
