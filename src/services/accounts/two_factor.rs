//! TOTP two-factor authentication (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of
//! drift either way) with single-use recovery codes.
//!
//! - `setup` draws a secret, stores it sealed with `DATA_ENCRYPTION_KEY` (never in clear) and
//!   answers it with its `otpauth://` URI and a QR code (SVG); `enable` confirms a code from the
//!   authenticator and answers ten recovery codes, stored as SHA-256 hashes; `disable` needs the
//!   password and a code (or a recovery code).
//! - With two-factor on, a correct password earns only a short-lived, single-purpose `mfaToken`
//!   (a JWT of type `mfa`); [`verify_login`] exchanges it, with a code or a recovery code, for the
//!   session. The token works once (its id joins the revoked tokens), failures count towards the
//!   account's lockout like wrong passwords (`lockout`: the attempt is taken before the code is
//!   evaluated), and the per-IP credential budget applies. Every other route that asks for a code
//!   (turning two-factor off, asking for or cancelling an erasure) counts wrong ones the same way.
//! - A code is accepted once: the time step it was accepted for is stored and only later steps
//!   pass (compare-and-set, so two concurrent uses of one code cannot both win).

use async_graphql::InputObject;
use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::{recovery_code, revoked_access_token, user, user_two_factor};
use crate::error::{AppError, AppResult};
use crate::infra::crypto::DataKey;
use crate::infra::tokens::TokenProblem;
use crate::services::accounts::auth::{self, AuthSession};
use crate::services::accounts::lockout;
use crate::services::platform::events::{self, DomainEvent};
use crate::state::AppState;

/// The `typ` of the token that stands between a correct password and a second factor.
pub const MFA: &str = "mfa";
/// How long a sign-in may wait for its second factor.
pub const MFA_TOKEN_TTL_SECONDS: i64 = 300;
const STEP_SECONDS: i64 = 30;
const DIGITS: usize = 6;
const SECRET_BYTES: usize = 20;
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Recovery codes use lower-case letters and digits without look-alikes (0/o, 1/l/i).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"code": "123456"}))]
pub struct EnableTwoFactorInput {
    /// The 6-digit code the authenticator shows for the secret from setup.
    pub code: String,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"password": "cannabis123", "code": "123456"}))]
pub struct DisableTwoFactorInput {
    pub password: String,
    /// A current 6-digit code, or one of the unused recovery codes.
    pub code: String,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"mfaToken": "eyJhbGciOiJIUzI1NiJ9...", "code": "123456"}))]
pub struct VerifyMfaInput {
    /// The `mfaToken` the sign-in answered.
    pub mfa_token: String,
    /// The 6-digit code of the authenticator; or else `recoveryCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// One of the recovery codes given when two-factor was enabled (each works once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// What an authenticator app needs: the secret, as text and as a scannable code.
pub struct Setup {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// The signed-in user's two-factor state.
pub struct Status {
    pub enabled: bool,
    pub enabled_at: Option<DateTime<Utc>>,
    pub recovery_codes_left: u64,
}

fn context(user_id: i64) -> String {
    format!("user_two_factor:{user_id}")
}

fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> TOTP {
    // `:` separates issuer and account in the URI's label; neither may contain it.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS as u64,
        secret,
        Some(issuer.replace(':', " ")),
        account.replace(':', " "),
    )
}

/// The time step at which `code` is the right code for `secret` — the current one or one step
/// either side — or `None`.
fn matching_step(secret: &[u8], code: &str, now: DateTime<Utc>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret.to_vec(), "", "");
    let current = now.timestamp().div_euclid(STEP_SECONDS);
    (current - 1..=current + 1).find(|step| {
        let expected = t.generate((step * STEP_SECONDS) as u64);
        constant_time_eq(expected.as_bytes(), code.as_bytes())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

fn new_recovery_code() -> String {
    let mut rng = rand::thread_rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())] as char)
            .collect()
    };
    format!("{}-{}", pick(5), pick(5))
}

async fn row_of<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> AppResult<Option<user_two_factor::Model>> {
    Ok(user_two_factor::Entity::find()
        .filter(user_two_factor::Column::UserId.eq(user_id))
        .one(conn)
        .await?)
}

/// Whether `user_id` signs in with a second factor.
pub async fn is_enabled<C: ConnectionTrait>(conn: &C, user_id: i64) -> AppResult<bool> {
    Ok(row_of(conn, user_id)
        .await?
        .is_some_and(|r| r.enabled_at.is_some()))
}

fn secret_of(st: &AppState, row: &user_two_factor::Model) -> AppResult<Vec<u8>> {
    DataKey::new(&st.config.auth.data_encryption_key).open(&row.secret, &context(row.user_id))
}

pub async fn status(st: &AppState, ctx: &RequestCtx) -> AppResult<Status> {
    let me = ctx.require_user()?;
    let row = row_of(&st.db, me.id).await?;
    let enabled_at = row.and_then(|r| r.enabled_at);
    let recovery_codes_left = if enabled_at.is_some() {
        unused_codes(&st.db, me.id).await?
    } else {
        0
    };
    Ok(Status {
        enabled: enabled_at.is_some(),
        enabled_at,
        recovery_codes_left,
    })
}

async fn unused_codes<C: ConnectionTrait>(conn: &C, user_id: i64) -> AppResult<u64> {
    Ok(recovery_code::Entity::find()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::UsedAt.is_null())
        .count(conn)
        .await?)
}

/// `POST /api/me/2fa/setup`: a new secret, replacing one set up earlier and never confirmed.
pub async fn setup(st: &AppState, ctx: &RequestCtx) -> AppResult<Setup> {
    let me = ctx.require_user()?.clone();
    if is_enabled(&st.db, me.id).await? {
        return Err(AppError::conflict(
            "Two-factor authentication is already enabled; disable it first to set up a new secret",
        ));
    }
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::thread_rng().fill(&mut secret[..]);
    let sealed =
        DataKey::new(&st.config.auth.data_encryption_key).seal(&secret, &context(me.id))?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    user_two_factor::Entity::insert(user_two_factor::ActiveModel {
        user_id: Set(me.id),
        secret: Set(sealed),
        enabled_at: Set(None),
        last_step: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(user_two_factor::Column::UserId)
            .update_columns([
                user_two_factor::Column::Secret,
                user_two_factor::Column::LastStep,
                user_two_factor::Column::UpdatedAt,
            ])
            .action_and_where(
                Expr::col((user_two_factor::Entity, user_two_factor::Column::EnabledAt)).is_null(),
            )
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    events::record(&txn, st, ctx, DomainEvent::TwoFactorSetUp { id: me.id }).await?;
    txn.commit().await?;
    let t = totp(secret, &st.config.store.name, &me.email);
    let otpauth_uri = t.get_url();
    let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
        .map_err(AppError::internal)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(Setup {
        secret: t.get_secret_base32(),
        otpauth_uri,
        qr_svg,
    })
}

/// Accepts `code` for the user's secret at most once: the step it matches must be later than the
/// last one accepted, and taking it is a compare-and-set.
async fn take_code<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    row: &user_two_factor::Model,
    code: &str,
) -> AppResult<Result<(), &'static str>> {
    let secret = secret_of(st, row)?;
    let Some(step) = matching_step(&secret, code, st.clock.now()) else {
        return Ok(Err("invalid"));
    };
    let taken = user_two_factor::Entity::update_many()
        .col_expr(user_two_factor::Column::LastStep, Expr::value(step))
        .filter(user_two_factor::Column::Id.eq(row.id))
        .filter(
            user_two_factor::Column::LastStep
                .is_null()
                .or(user_two_factor::Column::LastStep.lt(step)),
        )
        .exec(conn)
        .await?;
    Ok(if taken.rows_affected == 1 {
        Ok(())
    } else {
        Err("already_used")
    })
}

/// Marks one unused recovery code of the user used; whether there was one.
async fn take_recovery_code<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    code: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let taken = recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::CodeHash.eq(recovery_hash(code)))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(conn)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Spends a current code or, failing that, one of the unused recovery codes of `row`'s user
/// (400 on `code` otherwise). In the caller's transaction: a refusal rolls nothing forward.
async fn spend_code<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    row: &user_two_factor::Model,
    code: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if let Err(issue) = take_code(conn, st, row, code).await? {
        if issue == "already_used" || !take_recovery_code(conn, row.user_id, code, now).await? {
            return Err(code_refused("code", issue));
        }
    }
    Ok(())
}

/// Re-authentication's second step for a sensitive action: with two-factor on, `code` must be a
/// current code or an unused recovery code (400 on `code`: `required`, `incorrect`,
/// `already_used`); without it, nothing is asked.
pub(crate) async fn reauthenticate<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    user_id: i64,
    code: Option<&str>,
) -> AppResult<()> {
    let Some(row) = row_of(conn, user_id)
        .await?
        .filter(|r| r.enabled_at.is_some())
    else {
        return Ok(());
    };
    let code = code
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            AppError::invalid(
                "code",
                "required",
                "Two-factor authentication is on: a current code or a recovery code is needed",
            )
        })?;
    spend_code(conn, st, &row, code, st.clock.now()).await
}

fn code_refused(field: &str, issue: &str) -> AppError {
    let message = if issue == "already_used" {
        "This code was already used; wait for the next one"
    } else {
        "The code is not correct"
    };
    AppError::invalid(field, issue, message)
}

/// `POST /api/me/2fa/enable`: confirms the secret from setup with a code; answers the recovery
/// codes, shown this once.
pub async fn enable(
    st: &AppState,
    ctx: &RequestCtx,
    input: EnableTwoFactorInput,
) -> AppResult<Vec<String>> {
    let me = ctx.require_user()?.clone();
    auth::limit_ip(st, ctx).await?;
    let row = match row_of(&st.db, me.id).await? {
        None => {
            return Err(AppError::conflict(
                "Set up two-factor authentication first (POST /api/me/2fa/setup)",
            ))
        }
        Some(r) if r.enabled_at.is_some() => {
            return Err(AppError::conflict(
                "Two-factor authentication is already enabled",
            ))
        }
        Some(r) => r,
    };
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    if let Err(issue) = take_code(&txn, st, &row, &input.code).await? {
        txn.rollback().await?;
        return Err(code_refused("code", issue));
    }
    let enabled = user_two_factor::Entity::update_many()
        .col_expr(user_two_factor::Column::EnabledAt, Expr::value(now))
        .col_expr(user_two_factor::Column::UpdatedAt, Expr::value(now))
        .filter(user_two_factor::Column::Id.eq(row.id))
        .filter(user_two_factor::Column::EnabledAt.is_null())
        .exec(&txn)
        .await?;
    if enabled.rows_affected != 1 {
        txn.rollback().await?;
        return Err(AppError::conflict(
            "Two-factor authentication is already enabled",
        ));
    }
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(me.id))
        .exec(&txn)
        .await?;
    let codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
        .map(|_| new_recovery_code())
        .collect();
    recovery_code::Entity::insert_many(codes.iter().map(|c| recovery_code::ActiveModel {
        user_id: Set(me.id),
        code_hash: Set(recovery_hash(c)),
        used_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }))
    .exec_without_returning(&txn)
    .await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::TwoFactorEnabled {
            id: me.id,
            recovery_codes: codes.len() as u64,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(codes)
}

/// `POST /api/me/2fa/disable`: the password and a code (or a recovery code) turn it off; the
/// secret and the recovery codes are deleted.
pub async fn disable(
    st: &AppState,
    ctx: &RequestCtx,
    input: DisableTwoFactorInput,
) -> AppResult<()> {
    let me = ctx.require_user()?.clone();
    auth::limit_ip(st, ctx).await?;
    let row = row_of(&st.db, me.id)
        .await?
        .filter(|r| r.enabled_at.is_some())
        .ok_or_else(|| AppError::conflict("Two-factor authentication is not enabled"))?;
    auth::check_own_password(st, me.id, &input.password, "password").await?;
    // A wrong code counts towards the lockout, as at sign-in: a stolen session and password are
    // not enough to guess two-factor off.
    let attempt = lockout::take(st, me.id, lockout::Kind::SecondFactor).await?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    if let Err(e) = spend_code(&txn, st, &row, &input.code, now).await {
        txn.rollback().await?;
        attempt.failed();
        return Err(e);
    }
    user_two_factor::Entity::delete_by_id(row.id)
        .exec(&txn)
        .await?;
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(me.id))
        .exec(&txn)
        .await?;
    events::record(&txn, st, ctx, DomainEvent::TwoFactorDisabled { id: me.id }).await?;
    txn.commit().await?;
    attempt.passed(st).await
}

/// The token a correct password earns an account with two-factor on.
pub fn challenge(st: &AppState, user: &user::Model) -> AppResult<String> {
    let jti = uuid::Uuid::new_v4().simple().to_string();
    st.tokens
        .sign(
            MFA,
            user.id,
            None,
            &jti,
            &jti,
            st.clock.now(),
            MFA_TOKEN_TTL_SECONDS,
        )
        .map_err(AppError::internal)
}

/// `POST /api/auth/2fa/verify`: completes a sign-in with the second factor.
pub async fn verify_login(
    st: &AppState,
    ctx: &RequestCtx,
    input: VerifyMfaInput,
) -> AppResult<AuthSession> {
    auth::limit_ip(st, ctx).await?;
    let now = st.clock.now();
    let expired = |p: TokenProblem| {
        AppError::unauthorized(match p {
            TokenProblem::Expired => "The sign-in took too long; sign in again",
            _ => "The mfaToken is not valid; sign in again",
        })
    };
    let claims = st
        .tokens
        .verify(&input.mfa_token, MFA, now)
        .map_err(expired)?;
    let user_id = claims
        .user_id()
        .ok_or_else(|| expired(TokenProblem::Invalid))?;
    let used = revoked_access_token::Entity::find()
        .filter(revoked_access_token::Column::Jti.eq(claims.jti.as_str()))
        .count(&st.db)
        .await?;
    if used > 0 {
        return Err(AppError::unauthorized(
            "This mfaToken was already used; sign in again",
        ));
    }
    let (code, recovery) = match (
        input.code.as_deref().filter(|c| !c.trim().is_empty()),
        input
            .recovery_code
            .as_deref()
            .filter(|c| !c.trim().is_empty()),
    ) {
        (Some(c), None) => (Some(c), None),
        (None, Some(r)) => (None, Some(r)),
        _ => {
            return Err(AppError::invalid(
                "code",
                "required",
                "Send either code or recoveryCode",
            ))
        }
    };
    let user = user::Entity::find_by_id(user_id)
        .one(&st.db)
        .await?
        .filter(user::Model::is_usable)
        .ok_or_else(|| AppError::unauthorized("The account is disabled"))?;
    let row = row_of(&st.db, user.id)
        .await?
        .filter(|r| r.enabled_at.is_some())
        .ok_or_else(|| {
            AppError::unauthorized("Two-factor authentication is no longer enabled; sign in again")
        })?;

    // Taken before the code is looked at: parallel guesses each hold a place in the lockout.
    let attempt = lockout::take(st, user.id, lockout::Kind::SecondFactor).await?;
    let txn = begin_write(&st.db).await?;
    let outcome = match (code, recovery) {
        (Some(c), _) => take_code(&txn, st, &row, c)
            .await?
            .map_err(|issue| ("code", issue)),
        (_, Some(r)) => {
            if take_recovery_code(&txn, user.id, r, now).await? {
                let remaining = unused_codes(&txn, user.id).await?;
                events::record(
                    &txn,
                    st,
                    ctx,
                    DomainEvent::RecoveryCodeUsed {
                        id: user.id,
                        remaining,
                    },
                )
                .await?;
                Ok(())
            } else {
                Err(("recoveryCode", "invalid"))
            }
        }
        (None, None) => unreachable!("checked above"),
    };
    if let Err((field, issue)) = outcome {
        txn.rollback().await?;
        attempt.failed();
        st.metrics.login_failures.inc();
        let txn = begin_write(&st.db).await?;
        events::record(
            &txn,
            st,
            ctx,
            DomainEvent::MfaFailed {
                id: user.id,
                reason: format!("{field}_{issue}"),
            },
        )
        .await?;
        txn.commit().await?;
        return Err(code_refused(field, issue));
    }
    // The token works once: a second use (or a concurrent one) finds its id taken.
    if !auth::revoke_jti(&txn, &claims.jti, claims.expires_at(), now).await? {
        txn.rollback().await?;
        // The code was right; another use of the token won the race.
        attempt.passed(st).await?;
        return Err(AppError::unauthorized(
            "This mfaToken was already used; sign in again",
        ));
    }
    events::record(&txn, st, ctx, DomainEvent::LoginSucceeded { id: user.id }).await?;
    let session = auth::issue_session(st, ctx, &txn, &user, None).await?;
    txn.commit().await?;
    attempt.passed(st).await?;
    Ok(session)
}

/// The TOTP code of `secret` (base32, as setup answers it) at `time`, for tests and tools.
pub fn code_at(secret_base32: &str, time: DateTime<Utc>) -> Option<String> {
    let secret = totp_rs::Secret::Encoded(secret_base32.to_string())
        .to_bytes()
        .ok()?;
    Some(totp(secret, "", "").generate(u64::try_from(time.timestamp()).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vector_and_one_step_of_drift() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s → 94287082 (8 digits);
        // its last 6 digits are the 6-digit code.
        let secret = b"12345678901234567890".to_vec();
        let t = DateTime::from_timestamp(59, 0).unwrap();
        assert_eq!(matching_step(&secret, "287082", t), Some(1));
        assert_eq!(matching_step(&secret, "287 082", t), Some(1));
        let later = DateTime::from_timestamp(59 + 30, 0).unwrap();
        assert_eq!(matching_step(&secret, "287082", later), Some(1));
        let much_later = DateTime::from_timestamp(59 + 90, 0).unwrap();
        assert_eq!(matching_step(&secret, "287082", much_later), None);
        assert_eq!(matching_step(&secret, "28708", t), None);
        assert_eq!(matching_step(&secret, "28708a", t), None);
    }

    #[test]
    fn recovery_codes_are_random_and_hashed_in_a_normal_form() {
        let a = new_recovery_code();
        assert_eq!(a.len(), 11);
        assert_ne!(a, new_recovery_code());
        assert_eq!(
            recovery_hash(&a),
            recovery_hash(&a.to_uppercase().replace('-', " "))
        );
        assert_eq!(recovery_hash(&a).len(), 64);
    }
}
