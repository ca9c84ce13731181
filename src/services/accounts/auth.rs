//! Registration, login, refresh-token rotation with reuse detection, logout, and bearer-token
//! authentication of every request.

use async_graphql::InputObject;
use chrono::Duration;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::{AuthUser, RequestCtx};
use crate::db::begin_write;
use crate::domain::{parse_name, Email, Password, Rut};
use crate::entities::consent::{ConsentPurpose, ConsentSource};
use crate::entities::user::{self, Role};
use crate::entities::{auth_token, revoked_access_token, user_two_factor};
use crate::error::{AppError, AppResult, FieldIssue};
use crate::infra::tokens::{TokenProblem, ACCESS, REFRESH};
use crate::services::accounts::consents;
use crate::services::accounts::lockout;
use crate::services::accounts::sessions;
use crate::services::accounts::users::{self, load_view, UserView};
use crate::services::accounts::verification;
use crate::services::platform::events::{self, DomainEvent};
use crate::state::AppState;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Ana Pérez", "email": "ana@example.cl", "password": "cannabis123", "rut": "12.345.678-5", "acceptPrivacyPolicy": true}))]
pub struct RegisterInput {
    pub name: String,
    pub email: String,
    /// At least 8 characters with a letter and a digit.
    pub password: String,
    /// Optional Chilean RUT; stored normalised (`12345678-5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rut: Option<String>,
    /// `true`: the customer expressly accepts the privacy policy in force
    /// (`PRIVACY_POLICY_VERSION`). Omitted, the registration still records the version it was
    /// made under; `false` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_privacy_policy: Option<bool>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "ana@example.cl", "password": "cannabis123"}))]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"refreshToken": "eyJhbGciOiJIUzI1NiJ9..."}))]
pub struct RefreshInput {
    pub refresh_token: String,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"refreshToken": "eyJhbGciOiJIUzI1NiJ9..."}))]
pub struct LogoutInput {
    /// The session's refresh token; its whole family is revoked. Optional: the access token's own
    /// session is revoked in any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Tokens plus the user they belong to.
pub struct AuthSession {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub user: UserView,
}

pub async fn register(
    st: &AppState,
    ctx: &RequestCtx,
    input: RegisterInput,
) -> AppResult<AuthSession> {
    limit_ip(st, ctx).await?;
    let mut issues: Vec<FieldIssue> = Vec::new();
    let name = parse_name("name", &input.name)
        .map_err(|e| issues.extend(e.details))
        .ok();
    let email = Email::parse(&input.email)
        .map_err(|e| issues.extend(e.details))
        .ok();
    let password = Password::parse(&input.password)
        .map_err(|e| issues.extend(e.details))
        .ok();
    let rut = match input
        .rut
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        Some(r) => Rut::parse(r).map_err(|e| issues.extend(e.details)).ok(),
        None => None,
    };
    if input.accept_privacy_policy == Some(false) {
        issues.push(FieldIssue::new("acceptPrivacyPolicy", "must_accept"));
    }
    let (Some(name), Some(email), Some(password)) = (name, email, password) else {
        return Err(AppError::invalid_fields(issues));
    };
    if !issues.is_empty() {
        return Err(AppError::invalid_fields(issues));
    }
    users::ensure_email_free(&st.db, email.as_str()).await?;
    if let Some(r) = &rut {
        users::ensure_rut_free(&st.db, r.as_str()).await?;
    }
    let hash = st.passwords.hash(&password).await?;

    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let user = user::ActiveModel {
        name: Set(name),
        email: Set(email.into_inner()),
        rut: Set(rut.map(Rut::into_inner)),
        password_hash: Set(hash),
        role: Set(Role::Customer),
        is_active: Set(true),
        validated_medicinal: Set(false),
        email_verified_at: Set(None),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    users::create_profile(&txn, user.id, now).await?;
    events::record(&txn, st, ctx, DomainEvent::UserRegistered { id: user.id }).await?;
    consents::grant(
        &txn,
        st,
        ctx,
        user.id,
        ConsentPurpose::PrivacyPolicy,
        ConsentSource::Registration,
        input.accept_privacy_policy == Some(true),
    )
    .await?;
    verification::request(&txn, st, ctx, user.id, &user.email, None).await?;
    let session = issue_session(st, ctx, &txn, &user, None).await?;
    txn.commit().await?;
    Ok(session)
}

/// What a correct password leads to: a session, or — with two-factor on — a challenge to complete
/// with `two_factor::verify_login`.
// Built once per sign-in and moved straight into the response: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum SignIn {
    Session(AuthSession),
    MfaRequired { mfa_token: String },
}

/// GraphQL's `login`, which answers a session only: an account with two-factor on is answered
/// `mfa_required` (sign in with `signIn`, then `verifyMfa`).
pub async fn login(st: &AppState, ctx: &RequestCtx, input: LoginInput) -> AppResult<AuthSession> {
    match sign_in(st, ctx, input).await? {
        SignIn::Session(s) => Ok(s),
        SignIn::MfaRequired { .. } => Err(AppError::new(
            crate::error::ErrorCode::MfaRequired,
            "This account uses two-factor authentication: sign in with signIn, then complete it with verifyMfa",
        )),
    }
}

/// Records a refused sign-in (`auth.login_failed`, which the account lockout counts) and
/// answers the one 401 every wrong email or password gets.
pub(crate) async fn login_failed(
    st: &AppState,
    ctx: &RequestCtx,
    email: &str,
    id: Option<i64>,
    reason: &str,
) -> AppResult<AppError> {
    st.metrics.login_failures.inc();
    let txn = begin_write(&st.db).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::LoginFailed {
            id,
            email: email.to_string(),
            reason: reason.to_string(),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(AppError::unauthorized("Invalid email or password"))
}

/// What an email and password prove: the account the email names (not an erased one) and
/// whether the password is its password. The password is verified even for an unknown email (the
/// answer takes as long), and a known account's lockout counts the attempt.
pub(crate) struct Credentials {
    email: String,
    user: Option<user::Model>,
    ok: bool,
}

pub(crate) async fn check_credentials(
    st: &AppState,
    email: &str,
    password: &str,
) -> AppResult<Credentials> {
    let email = email.trim().to_lowercase();
    let user = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .filter(user::Column::ErasedAt.is_null())
        .one(&st.db)
        .await?;
    let attempt = match &user {
        Some(u) => Some(lockout::take(st, u.id, lockout::Kind::Password).await?),
        None => None,
    };
    let ok = st
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    if let Some(a) = attempt {
        a.settle(st, ok).await?;
    }
    Ok(Credentials { email, user, ok })
}

impl Credentials {
    /// The account with an erasure pending, when the password matched.
    pub(crate) fn erasing(&self) -> Option<&user::Model> {
        self.user
            .as_ref()
            .filter(|u| self.ok && u.erasure_requested_at.is_some())
    }

    /// The account, when the password matched and `usable` accepts it; otherwise the audited 401
    /// (`unknown_email`, `wrong_password`, `account_disabled`).
    pub(crate) async fn accepted(
        self,
        st: &AppState,
        ctx: &RequestCtx,
        usable: impl Fn(&user::Model) -> bool,
    ) -> AppResult<user::Model> {
        match self.user {
            Some(u) if self.ok && usable(&u) => Ok(u),
            other => {
                let reason = match &other {
                    None => "unknown_email",
                    Some(_) if !self.ok => "wrong_password",
                    Some(_) => "account_disabled",
                };
                let id = other.map(|u| u.id);
                Err(login_failed(st, ctx, &self.email, id, reason).await?)
            }
        }
    }
}

pub async fn sign_in(st: &AppState, ctx: &RequestCtx, input: LoginInput) -> AppResult<SignIn> {
    limit_ip(st, ctx).await?;
    let credentials = check_credentials(st, &input.email, &input.password).await?;
    if let Some(u) = credentials.erasing() {
        return Err(crate::services::accounts::erasing::sign_in_refused(st, u).await?);
    }
    let user = credentials
        .accepted(st, ctx, user::Model::is_usable)
        .await?;
    if crate::services::accounts::two_factor::is_enabled(&st.db, user.id).await? {
        return Ok(SignIn::MfaRequired {
            mfa_token: crate::services::accounts::two_factor::challenge(st, &user)?,
        });
    }
    let txn = begin_write(&st.db).await?;
    events::record(&txn, st, ctx, DomainEvent::LoginSucceeded { id: user.id }).await?;
    let session = issue_session(st, ctx, &txn, &user, None).await?;
    txn.commit().await?;
    Ok(SignIn::Session(session))
}

pub async fn refresh(
    st: &AppState,
    ctx: &RequestCtx,
    input: RefreshInput,
) -> AppResult<AuthSession> {
    limit_ip(st, ctx).await?;
    let now = st.clock.now();
    let claims = st
        .tokens
        .verify(&input.refresh_token, REFRESH, now)
        .map_err(|p| AppError::unauthorized(p.message()))?;
    let stored = auth_token::Entity::find()
        .filter(auth_token::Column::Jti.eq(claims.jti.as_str()))
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::unauthorized(TokenProblem::Invalid.message()))?;
    if stored.revoked_at.is_some() {
        if stored.replaced_by.is_some() {
            return Err(refresh_reuse(st, ctx, &stored).await);
        }
        return Err(AppError::unauthorized("The session has been revoked"));
    }
    let user = user::Entity::find_by_id(stored.user_id)
        .one(&st.db)
        .await?
        .filter(user::Model::is_usable)
        .ok_or_else(|| AppError::unauthorized("The account is disabled"))?;

    let txn = begin_write(&st.db).await?;
    let new_jti = uuid::Uuid::new_v4().simple().to_string();
    // Compare-and-set: only one of two concurrent refreshes with the same token may rotate it.
    let rotated = auth_token::Entity::update_many()
        .col_expr(auth_token::Column::RevokedAt, Expr::value(now))
        .col_expr(auth_token::Column::ReplacedBy, Expr::value(new_jti.clone()))
        .filter(auth_token::Column::Id.eq(stored.id))
        .filter(auth_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if rotated.rows_affected != 1 {
        txn.rollback().await?;
        return Err(refresh_reuse(st, ctx, &stored).await);
    }
    let session = issue_session_with_jti(
        st,
        ctx,
        &txn,
        &user,
        Some(stored.family_id.clone()),
        new_jti,
    )
    .await?;
    txn.commit().await?;
    Ok(session)
}

/// A refresh token was presented again after rotation: someone holds a stolen copy. The whole
/// family (every session descended from the same login) is revoked.
async fn refresh_reuse(st: &AppState, ctx: &RequestCtx, stored: &auth_token::Model) -> AppError {
    let now = st.clock.now();
    let result = async {
        let txn = st.db.begin().await?;
        sessions::end(&txn, stored.user_id, Some(&stored.family_id), None, now).await?;
        events::record(
            &txn,
            st,
            ctx,
            DomainEvent::RefreshTokenReused {
                id: stored.user_id,
                family_revoked: true,
            },
        )
        .await?;
        txn.commit().await?;
        Ok::<_, AppError>(())
    }
    .await;
    match result {
        Ok(()) => AppError::unauthorized(
            "This refresh token was already used; the session has been revoked",
        ),
        Err(e) => e,
    }
}

pub async fn logout(st: &AppState, ctx: &RequestCtx, input: LogoutInput) -> AppResult<bool> {
    let me = ctx.require_user()?.clone();
    let now = st.clock.now();
    let mut families = vec![me.session_id.clone()];
    if let Some(rt) = input.refresh_token.as_deref() {
        // A refresh token of someone else's session is ignored, never an oracle.
        if let Ok(c) = st.tokens.verify(rt, REFRESH, now) {
            if c.user_id() == Some(me.id) && c.sid != me.session_id {
                families.push(c.sid);
            }
        }
    }
    let txn = begin_write(&st.db).await?;
    for f in &families {
        sessions::end(&txn, me.id, Some(f), None, now).await?;
    }
    revoke_jti(&txn, &me.jti, me.token_expires_at, now).await?;
    events::record(&txn, st, ctx, DomainEvent::LoggedOut { id: me.id }).await?;
    txn.commit().await?;
    Ok(true)
}

/// Refuses the token with id `jti` from now until it expires; whether this call was the one that
/// did (`false`: it was refused already).
pub(crate) async fn revoke_jti<C: ConnectionTrait>(
    conn: &C,
    jti: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<bool> {
    let inserted = revoked_access_token::Entity::insert(revoked_access_token::ActiveModel {
        jti: Set(jti.to_string()),
        expires_at: Set(expires_at),
        created_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(revoked_access_token::Column::Jti)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

/// The signed-in user's account, once `password` is proven to be its password (400 on `field`,
/// `incorrect`, otherwise).
pub(crate) async fn check_own_password(
    st: &AppState,
    user_id: i64,
    password: &str,
    field: &str,
) -> AppResult<user::Model> {
    let u = user::Entity::find_by_id(user_id)
        .one(&st.db)
        .await?
        .filter(user::Model::is_usable)
        .ok_or_else(|| AppError::unauthorized("The account is disabled"))?;
    // A wrong password here counts towards the account's lockout like a wrong sign-in: whoever
    // holds a stolen session cannot guess the password behind it without limit.
    let attempt = lockout::take(st, user_id, lockout::Kind::Password).await?;
    let ok = st
        .passwords
        .verify(password, Some(&u.password_hash))
        .await?;
    attempt.settle(st, ok).await?;
    if !ok {
        let what = if field == "password" {
            "The password is not correct"
        } else {
            "The current password is not correct"
        };
        return Err(AppError::invalid(field, "incorrect", what));
    }
    Ok(u)
}

/// Takes one request from the client IP's credential-route budget.
pub(crate) async fn limit_ip(st: &AppState, ctx: &RequestCtx) -> AppResult<()> {
    st.limits.check_auth(ctx.client_ip).await.inspect_err(|_| {
        st.metrics
            .rate_limited
            .with_label_values(&["auth_ip"])
            .inc();
    })
}

pub(crate) async fn issue_session<C: ConnectionTrait>(
    st: &AppState,
    ctx: &RequestCtx,
    conn: &C,
    user: &user::Model,
    family: Option<String>,
) -> AppResult<AuthSession> {
    let jti = uuid::Uuid::new_v4().simple().to_string();
    issue_session_with_jti(st, ctx, conn, user, family, jti).await
}

async fn issue_session_with_jti<C: ConnectionTrait>(
    st: &AppState,
    ctx: &RequestCtx,
    conn: &C,
    user: &user::Model,
    family: Option<String>,
    refresh_jti: String,
) -> AppResult<AuthSession> {
    let now = st.clock.now();
    let cfg = &st.config;
    let new = family.is_none();
    let family = family.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    crate::services::accounts::sessions::record_use(conn, ctx, user.id, &family, new, now).await?;
    auth_token::ActiveModel {
        user_id: Set(user.id),
        jti: Set(refresh_jti.clone()),
        family_id: Set(family.clone()),
        kind: Set(REFRESH.to_string()),
        expires_at: Set(now + Duration::seconds(cfg.auth.refresh_token_ttl_seconds)),
        revoked_at: Set(None),
        replaced_by: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    let access_jti = uuid::Uuid::new_v4().simple().to_string();
    let access_token = st
        .tokens
        .sign(
            ACCESS,
            user.id,
            Some(user.role),
            &access_jti,
            &family,
            now,
            cfg.auth.access_token_ttl_seconds,
        )
        .map_err(AppError::internal)?;
    let refresh_token = st
        .tokens
        .sign(
            REFRESH,
            user.id,
            None,
            &refresh_jti,
            &family,
            now,
            cfg.auth.refresh_token_ttl_seconds,
        )
        .map_err(AppError::internal)?;
    let view = load_view(conn, user.id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    Ok(AuthSession {
        access_token,
        refresh_token,
        expires_in: cfg.auth.access_token_ttl_seconds,
        user: view,
    })
}

#[derive(FromQueryResult)]
struct BearerRow {
    id: i64,
    email: String,
    role: Role,
    is_active: bool,
    validated_medicinal: bool,
    deleted_at: Option<chrono::DateTime<chrono::Utc>>,
    erasure_requested_at: Option<chrono::DateTime<chrono::Utc>>,
    processing_blocked_at: Option<chrono::DateTime<chrono::Utc>>,
    revoked: bool,
    live_session: bool,
    mfa_enabled: bool,
    health_data_withdrawn: bool,
}

/// [`authenticate`]'s answer when the database could not be reached: the request is answered
/// 503, not 401 (the token may well be valid).
pub const DATABASE_UNREACHABLE: &str = "The database could not be reached to check the token";

/// Resolves a bearer access token to its user with one query, re-reading the account so that a
/// deactivation, deletion, demotion or logout takes effect on the very next request.
pub async fn authenticate(st: &AppState, token: &str) -> Result<AuthUser, &'static str> {
    let now = st.clock.now();
    let claims = st
        .tokens
        .verify(token, ACCESS, now)
        .map_err(TokenProblem::message)?;
    let user_id = claims.user_id().ok_or(TokenProblem::Invalid.message())?;
    let revoked = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(revoked_access_token::Entity)
            .and_where(Expr::col(revoked_access_token::Column::Jti).eq(claims.jti.as_str()))
            .to_owned(),
    );
    // The token's session (refresh-token family) must still be live: logging out, a refresh
    // token's reuse, a deactivation or a deletion revokes the family, and with it every access
    // token ever issued to it — not only the one presented.
    let live_session = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(auth_token::Entity)
            .and_where(Expr::col(auth_token::Column::FamilyId).eq(claims.sid.as_str()))
            .and_where(Expr::col(auth_token::Column::UserId).eq(user_id))
            .and_where(Expr::col(auth_token::Column::RevokedAt).is_null())
            .to_owned(),
    );
    let mfa_enabled = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(user_two_factor::Entity)
            .and_where(Expr::col(user_two_factor::Column::UserId).eq(user_id))
            .and_where(Expr::col(user_two_factor::Column::EnabledAt).is_not_null())
            .to_owned(),
    );
    let health_data_withdrawn = consents::health_data_withdrawn(Expr::val(user_id));
    let row = user::Entity::find_by_id(user_id)
        .select_only()
        .columns([
            user::Column::Id,
            user::Column::Email,
            user::Column::Role,
            user::Column::IsActive,
            user::Column::ValidatedMedicinal,
            user::Column::DeletedAt,
            user::Column::ErasureRequestedAt,
            user::Column::ProcessingBlockedAt,
        ])
        .expr_as(revoked, "revoked")
        .expr_as(live_session, "live_session")
        .expr_as(mfa_enabled, "mfa_enabled")
        .expr_as(health_data_withdrawn, "health_data_withdrawn")
        .into_model::<BearerRow>()
        .one(&st.db)
        .await
        .map_err(|e| {
            if crate::error::is_connection_failure(&e) {
                return DATABASE_UNREACHABLE;
            }
            AppError::internal(e);
            "The token could not be checked"
        })?
        .ok_or("The account no longer exists")?;
    if !row.is_active || row.deleted_at.is_some() {
        return Err("The account is disabled");
    }
    if row.erasure_requested_at.is_some() {
        return Err("The account is being erased");
    }
    if row.revoked || !row.live_session {
        return Err("The token has been revoked");
    }
    Ok(AuthUser {
        id: row.id,
        role: row.role,
        email: row.email,
        validated_medicinal: row.validated_medicinal,
        token_expires_at: claims.expires_at(),
        jti: claims.jti,
        session_id: claims.sid,
        mfa_enabled: row.mfa_enabled,
        health_data_withdrawn: row.health_data_withdrawn,
        processing_blocked: row.processing_blocked_at.is_some(),
    })
}
