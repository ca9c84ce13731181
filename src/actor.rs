//! Who is making a request, established once per request from the bearer token.

use std::net::IpAddr;

use crate::domain::Scope;
use crate::entities::user::Role;
use crate::error::{AppError, FieldIssue};

#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub role: Role,
    pub email: String,
    pub validated_medicinal: bool,
    /// The access token's id and expiry (logout revokes exactly this token).
    pub jti: String,
    pub token_expires_at: chrono::DateTime<chrono::Utc>,
    /// The refresh-token family this access token was issued with.
    pub session_id: String,
    /// Whether the user has two-factor authentication enabled.
    pub mfa_enabled: bool,
    /// Whether the user withdrew the health-data consent (and did not give it again): no
    /// medicinal access meanwhile.
    pub health_data_withdrawn: bool,
    /// An admin blocked the processing of this customer's data (Ley 21.719): the account is
    /// read-only meanwhile.
    pub processing_blocked: bool,
}

/// A store system calling with an API key: it may do what its scopes allow and nothing else —
/// never a customer's operations (cart, checkout, `my*`), never medicinal documents or health data.
#[derive(Debug, Clone)]
pub struct ApiKeyPrincipal {
    pub id: i64,
    /// The key's public id (`ak_…`), for logs.
    pub public_id: String,
    pub scopes: Vec<Scope>,
}

impl ApiKeyPrincipal {
    pub fn holds(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[derive(Debug, Clone)]
pub enum Actor {
    Anonymous,
    User(AuthUser),
    ApiKey(ApiKeyPrincipal),
}

/// Per-request facts every resolver and service may need.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub actor: Actor,
    /// Why a presented bearer token was not accepted (expired, revoked, ...), for a precise 401.
    pub auth_problem: Option<&'static str>,
    pub trace_id: String,
    pub client_ip: IpAddr,
    /// The medicinal-gate decision, computed at most once per request.
    pub medicinal_access: std::sync::Arc<tokio::sync::OnceCell<bool>>,
    /// The request's `Idempotency-Key` header, if any.
    pub idempotency_key: Option<String>,
    /// The request's `User-Agent` (at most 512 characters), shown in the user's sessions.
    pub user_agent: Option<String>,
    /// `ADMIN_REQUIRE_2FA`: an admin without two-factor authentication is refused admin
    /// operations (403 `mfa_required`).
    pub admin_requires_mfa: bool,
}

impl RequestCtx {
    pub fn anonymous(trace_id: String, client_ip: IpAddr) -> Self {
        RequestCtx {
            actor: Actor::Anonymous,
            auth_problem: None,
            trace_id,
            client_ip,
            medicinal_access: Default::default(),
            idempotency_key: None,
            user_agent: None,
            admin_requires_mfa: false,
        }
    }

    pub fn user(&self) -> Option<&AuthUser> {
        match &self.actor {
            Actor::User(u) => Some(u),
            Actor::Anonymous | Actor::ApiKey(_) => None,
        }
    }

    /// The API key the request came with, if it came with one.
    pub fn api_key(&self) -> Option<&ApiKeyPrincipal> {
        match &self.actor {
            Actor::ApiKey(k) => Some(k),
            _ => None,
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        self.user().map(|u| u.id)
    }

    /// The signed-in user, or `unauthorized` (`forbidden` for an API key: keys never act as a
    /// customer).
    pub fn require_user(&self) -> Result<&AuthUser, AppError> {
        if self.api_key().is_some() {
            return Err(key_refused());
        }
        self.user().ok_or_else(|| {
            AppError::unauthorized(
                self.auth_problem
                    .unwrap_or("Authentication required: send a bearer access token"),
            )
        })
    }

    /// A signed-in user who may create things — orders, documents, reviews: 403 with `account`:
    /// `processing_blocked` while an admin has blocked the processing of their data.
    pub fn require_writable_user(&self) -> Result<&AuthUser, AppError> {
        let u = self.require_user()?;
        if u.processing_blocked {
            return Err(AppError::forbidden(
                "The processing of this account's data is blocked while a dispute is resolved: it is read-only for now (no new orders, documents or reviews)",
            )
            .with_details(vec![crate::error::FieldIssue::new(
                "account",
                "processing_blocked",
            )]));
        }
        Ok(u)
    }

    /// A signed-in admin, or `unauthorized` / `forbidden` — or `mfa_required` when
    /// `ADMIN_REQUIRE_2FA` is on and the admin has not enabled two-factor authentication.
    pub fn require_admin(&self) -> Result<&AuthUser, AppError> {
        let u = self.require_user()?;
        self.require_human_admin(u)
    }

    fn require_human_admin<'a>(&self, u: &'a AuthUser) -> Result<&'a AuthUser, AppError> {
        if u.role != Role::Admin {
            return Err(AppError::forbidden("This action requires an administrator"));
        }
        if self.admin_requires_mfa && !u.mfa_enabled {
            return Err(AppError::new(
                crate::error::ErrorCode::MfaRequired,
                "Administrators must enable two-factor authentication first (POST /api/me/2fa/setup, then /api/me/2fa/enable)",
            ));
        }
        Ok(u)
    }

    /// An administrator, or an API key holding `scope` (403 naming the scope when it does not).
    /// What a key may reach is decided here and by the GraphQL layer's scope table, which
    /// refuses a key's request before anything runs; this is the check services keep.
    pub fn require_scope(&self, scope: Scope) -> Result<(), AppError> {
        match &self.actor {
            Actor::ApiKey(k) if k.holds(scope) => Ok(()),
            Actor::ApiKey(_) => Err(missing_scope(scope)),
            _ => self.require_admin().map(|_| ()),
        }
    }

    /// Whether the request sees the catalogue as an administrator does — inactive and medicinal
    /// products included: an admin, or an API key holding `products:read` (a store system
    /// keeping its own copy of the catalogue).
    pub fn sees_whole_catalogue(&self) -> bool {
        match &self.actor {
            Actor::ApiKey(k) => k.holds(Scope::ProductsRead),
            _ => self.is_admin(),
        }
    }

    /// Whether the request may act as an administrator (see [`require_admin`](Self::require_admin)):
    /// an admin held back by `ADMIN_REQUIRE_2FA` sees what a customer sees.
    pub fn is_admin(&self) -> bool {
        self.require_admin().is_ok()
    }
}

/// An API key asked for something no scope opens.
pub fn key_refused() -> AppError {
    AppError::forbidden(
        "API keys cannot do this: customer operations (cart, checkout, my-*), medicinal documents, health data and account administration need a person's access token",
    )
    .with_details(vec![FieldIssue::new("credentials", "api_key_not_allowed")])
}

/// An API key without the scope an operation needs.
pub fn missing_scope(scope: Scope) -> AppError {
    AppError::forbidden(format!("This API key lacks the scope {scope}"))
        .with_details(vec![FieldIssue::new(scope.as_str(), "missing_scope")])
}
