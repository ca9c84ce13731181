//! One error type for every layer, with the spec's codes (spec §2).
//!
//! It renders as the REST error body with its HTTP status, and converts into a GraphQL error whose
//! `extensions` carry the same `code` and `details` (the `traceId` is added when the response is sent).

use async_graphql::ErrorExtensions;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, SqlErr};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Validation,
    /// A `validation_error` answered with 413 (body or file too large).
    PayloadTooLarge,
    Unauthorized,
    Forbidden,
    /// 403: the action needs a verified email address (`REQUIRE_VERIFIED_EMAIL_FOR_CHECKOUT`).
    EmailNotVerified,
    /// 403: an administrator without two-factor authentication while `ADMIN_REQUIRE_2FA` is on;
    /// in GraphQL's `login`, an account that must finish signing in with a second factor.
    MfaRequired,
    /// 403: the action processes personal data the user has not consented to (Ley 21.719): a
    /// medicinal document without the health-data consent.
    ConsentRequired,
    NotFound,
    MethodNotAllowed,
    /// 415: a body in a media type the route does not take (e.g. `text/plain` where JSON is expected).
    UnsupportedMediaType,
    Conflict,
    RateLimited,
    Internal,
    /// 503: not ready (readiness probe).
    Unavailable,
    /// 503: the database could not be reached for this request (restarting, connection lost, pool
    /// exhausted); answered with `Retry-After`.
    ServiceUnavailable,
    /// 502: a payment provider failed or answered something unusable.
    Provider,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Validation | ErrorCode::PayloadTooLarge => "validation_error",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::EmailNotVerified => "email_not_verified",
            ErrorCode::MfaRequired => "mfa_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal_error",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::Provider => "provider_error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Validation => StatusCode::BAD_REQUEST,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden
            | ErrorCode::EmailNotVerified
            | ErrorCode::MfaRequired
            | ErrorCode::ConsentRequired => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable | ErrorCode::ServiceUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::Provider => StatusCode::BAD_GATEWAY,
        }
    }

    /// Reads back a code carried in GraphQL `extensions`; `too_large` in the details marks the 413 flavour.
    pub fn parse(code: &str, details: &[FieldIssue]) -> Option<Self> {
        Some(match code {
            "validation_error" if details.iter().any(|d| d.issue == TOO_LARGE) => {
                ErrorCode::PayloadTooLarge
            }
            "validation_error" => ErrorCode::Validation,
            "unauthorized" => ErrorCode::Unauthorized,
            "forbidden" => ErrorCode::Forbidden,
            "email_not_verified" => ErrorCode::EmailNotVerified,
            "mfa_required" => ErrorCode::MfaRequired,
            "consent_required" => ErrorCode::ConsentRequired,
            "not_found" => ErrorCode::NotFound,
            "method_not_allowed" => ErrorCode::MethodNotAllowed,
            "unsupported_media_type" => ErrorCode::UnsupportedMediaType,
            "conflict" => ErrorCode::Conflict,
            "rate_limited" => ErrorCode::RateLimited,
            "internal_error" => ErrorCode::Internal,
            "unavailable" => ErrorCode::Unavailable,
            "service_unavailable" => ErrorCode::ServiceUnavailable,
            "provider_error" => ErrorCode::Provider,
            _ => return None,
        })
    }
}

/// The issue name that marks a too-large body or file.
pub const TOO_LARGE: &str = "too_large";

pub use crate::domain::FieldIssue;

#[derive(Debug, Clone)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<FieldIssue>,
    /// Seconds, for `rate_limited`.
    pub retry_after: Option<u64>,
}

pub type AppResult<T> = Result<T, AppError>;

impl From<crate::domain::Invalid> for AppError {
    fn from(e: crate::domain::Invalid) -> Self {
        Self::new(ErrorCode::Validation, e.message).with_details(e.details)
    }
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Vec<FieldIssue>) -> Self {
        self.details = details;
        self
    }

    /// A `validation_error` about a single field.
    pub fn invalid(field: &str, issue: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Validation, message).with_details(vec![FieldIssue::new(field, issue)])
    }

    /// A `validation_error` listing every field issue found.
    pub fn invalid_fields(details: Vec<FieldIssue>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("Invalid value for '{}': {}", one.field, one.issue),
            _ => "The request has invalid fields".to_string(),
        };
        Self::new(ErrorCode::Validation, message).with_details(details)
    }

    pub fn too_large(field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, message)
            .with_details(vec![FieldIssue::new(field, TOO_LARGE)])
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedMediaType, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn conflict_field(field: &str, issue: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message).with_details(vec![FieldIssue::new(field, issue)])
    }

    /// A write lost to a concurrent one (a deadlock victim or a serialization failure) after the
    /// server's own retries: 503 `service_unavailable` with `Retry-After`, never a 500.
    pub fn contention() -> Self {
        Self {
            retry_after: Some(CONTENTION_RETRY_AFTER_SECONDS),
            ..Self::new(ErrorCode::ServiceUnavailable, CONTENTION_MESSAGE)
        }
    }

    /// Whether this is [`AppError::contention`]: the whole change was rolled back and running it
    /// again may succeed.
    pub fn is_contention(&self) -> bool {
        self.code == ErrorCode::ServiceUnavailable && self.message == CONTENTION_MESSAGE
    }

    /// The database could not be reached: 503 `service_unavailable`, to be retried shortly.
    pub fn database_unavailable() -> Self {
        Self {
            retry_after: Some(DATABASE_RETRY_AFTER_SECONDS),
            ..Self::new(
                ErrorCode::ServiceUnavailable,
                "The service is briefly unavailable; try again shortly",
            )
        }
    }

    /// The file store could not be reached: 503 `service_unavailable`, to be retried shortly.
    pub fn storage_unavailable(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                ErrorCode::ServiceUnavailable,
                "File storage is briefly unavailable; try again shortly",
            )
        }
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(ErrorCode::RateLimited, "Too many requests, try again later")
        }
    }

    /// An unexpected failure. The cause is logged here (with the trace id); the client only sees
    /// a generic message.
    /// A payment provider failed: logged in full, answered as 502 `provider_error`.
    pub fn provider(provider: &str, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(provider, error = %cause, "payment provider call failed");
        AppError::new(
            ErrorCode::Provider,
            format!("The payment provider {provider} could not complete the request; try again"),
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(
            traceId = %crate::trace_id::current_trace_id(),
            error = %cause,
            "internal error"
        );
        Self::new(ErrorCode::Internal, "Internal server error")
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn body(&self, trace_id: &str) -> ErrorBody {
        ErrorBody {
            error: ErrorObject {
                code: self.code.as_str().to_string(),
                message: self.message.clone(),
                details: self.details.clone(),
                trace_id: trace_id.to_string(),
            },
        }
    }

    /// Rebuilds the error from a GraphQL error's message and extensions (the REST bridge's way back).
    pub fn from_graphql(err: &async_graphql::ServerError) -> Self {
        let ext = err.extensions.as_ref();
        let get = |k: &str| ext.and_then(|e| e.get(k)).cloned();
        let details: Vec<FieldIssue> = get("details")
            .and_then(|v| v.into_json().ok())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let code = match get("code") {
            Some(async_graphql::Value::String(s)) => ErrorCode::parse(&s, &details),
            _ => None,
        }
        .unwrap_or(ErrorCode::Validation);
        let retry_after = match get("retryAfter") {
            Some(async_graphql::Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        AppError {
            code,
            message: err.message.clone(),
            details,
            retry_after,
        }
    }
}

// Deliberately not `Display`/`std::error::Error`: async-graphql converts any `Display` error into a
// GraphQL error without extensions, which would silently drop `code` and `details`.

impl From<AppError> for anyhow::Error {
    fn from(e: AppError) -> Self {
        anyhow::anyhow!("{}: {}", e.code.as_str(), e.message)
    }
}

/// The error body of every failing REST response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": {"code": "validation_error", "message": "Invalid value for 'email': invalid_format",
    "details": [{"field": "email", "issue": "invalid_format"}], "traceId": "6f1c2a5e-0c1b-4f0e-9d43-3a1b2c3d4e5f"}}))]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorObject {
    /// One of validation_error, unauthorized, forbidden, not_found, method_not_allowed, unsupported_media_type, conflict, rate_limited, internal_error.
    pub code: String,
    pub message: String,
    pub details: Vec<FieldIssue>,
    /// Equals the response's `X-Request-Id` header.
    pub trace_id: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let trace_id = crate::trace_id::current_trace_id();
        let mut res = (self.status(), axum::Json(self.body(&trace_id))).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.message.clone()).extend_with(|_, e| {
            e.set("code", self.code.as_str());
            let details: Vec<async_graphql::Value> = self
                .details
                .iter()
                .map(|d| {
                    let mut m = async_graphql::indexmap::IndexMap::new();
                    m.insert(
                        async_graphql::Name::new("field"),
                        async_graphql::Value::from(d.field.clone()),
                    );
                    m.insert(
                        async_graphql::Name::new("issue"),
                        async_graphql::Value::from(d.issue.clone()),
                    );
                    async_graphql::Value::Object(m)
                })
                .collect();
            e.set("details", details);
            if let Some(secs) = self.retry_after {
                e.set("retryAfter", secs);
            }
        })
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(e: AppError) -> Self {
        e.extend()
    }
}

/// `Retry-After` of a 503 answered while the database is unreachable.
pub const DATABASE_RETRY_AFTER_SECONDS: u64 = 2;

/// `Retry-After` of a 503 answered when a change kept losing to concurrent ones.
pub const CONTENTION_RETRY_AFTER_SECONDS: u64 = 1;

/// The message of [`AppError::contention`] (also how a GraphQL error is recognised as one).
pub const CONTENTION_MESSAGE: &str =
    "The store is busy with a concurrent change to the same records; try again shortly";

/// Whether `err` is a transaction that lost to a concurrent one and was rolled back whole:
/// PostgreSQL's deadlock victim (40P01) or serialization failure (40001), SQLite's busy database
/// (5, 517 busy snapshot, 261 busy recovery) after its busy timeout.
pub fn is_contention(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::RuntimeErr;
    let sqlx = match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx.as_ref() {
        Sqlx::Database(db) => db
            .code()
            .is_some_and(|c| matches!(c.as_ref(), "40P01" | "40001" | "5" | "517" | "261")),
        _ => false,
    }
}

/// Whether `err` says the database could not be reached (a connection refused, reset or closed,
/// a server shutting down or starting, a pool timeout) rather than that a statement was wrong.
pub fn is_connection_failure(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::RuntimeErr;
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx.as_ref() {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => true,
        // PostgreSQL: class 08 (connection exception), 57P01–57P03 (admin or crash shutdown,
        // cannot connect now).
        Sqlx::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if is_connection_failure(&err) {
            tracing::warn!(error = %err, "database unreachable: answered 503");
            return AppError::database_unavailable();
        }
        if is_contention(&err) {
            tracing::warn!(error = %err, "transaction lost to a concurrent one");
            return AppError::contention();
        }
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(msg)) => {
                let field = unique_violation_field(&msg);
                AppError::conflict_field(
                    &field,
                    "already_exists",
                    format!("A record with this {field} already exists"),
                )
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                AppError::conflict("The record is still referenced by other records")
            }
            _ => AppError::internal(err),
        }
    }
}

/// For `map_err`: a unique-index violation becomes `on_duplicate()` (a race the index decided);
/// any other error converts as usual.
pub fn unique_or(on_duplicate: impl FnOnce() -> AppError) -> impl FnOnce(DbErr) -> AppError {
    move |e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => on_duplicate(),
        _ => AppError::from(e),
    }
}

/// Best-effort column name from a unique-violation message of SQLite
/// (`UNIQUE constraint failed: users.email`) or PostgreSQL (`... constraint "users_email_key"`).
fn unique_violation_field(msg: &str) -> String {
    let snake = if let Some(rest) = msg.split("UNIQUE constraint failed: ").nth(1) {
        rest.split(',')
            .next()
            .and_then(|c| c.trim().split('.').nth(1))
            .unwrap_or("value")
            .to_string()
    } else if let Some(name) = msg.split('"').nth(1) {
        let name = name.trim_end_matches("_key");
        // `<table>_<column>`: tables here are single words or `<word>_<word>s`; take what follows the table.
        let table_end = name.find("s_").map(|i| i + 2).unwrap_or(0);
        name[table_end..].to_string()
    } else {
        "value".to_string()
    };
    crate::util::snake_to_camel(&snake)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_503_with_retry_after_and_others_are_not() {
        use sea_orm::{ConnAcquireErr, RuntimeErr};
        use std::sync::Arc;
        let reset =
            sea_orm::sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        for err in [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(reset))),
            DbErr::Exec(RuntimeErr::SqlxError(Arc::new(
                sea_orm::sqlx::Error::PoolTimedOut,
            ))),
        ] {
            assert!(is_connection_failure(&err), "{err}");
            let e = AppError::from(err);
            assert_eq!(e.code, ErrorCode::ServiceUnavailable);
            assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.retry_after, Some(DATABASE_RETRY_AFTER_SECONDS));
        }
        for err in [
            DbErr::RecordNotFound("x".into()),
            DbErr::Custom("x".into()),
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(
                sea_orm::sqlx::Error::RowNotFound,
            ))),
        ] {
            assert!(!is_connection_failure(&err), "{err}");
            assert_eq!(AppError::from(err).code, ErrorCode::Internal);
        }
        assert_eq!(
            ErrorCode::parse("service_unavailable", &[]),
            Some(ErrorCode::ServiceUnavailable)
        );
    }

    #[test]
    fn unique_field_from_both_backends() {
        assert_eq!(
            unique_violation_field("UNIQUE constraint failed: users.email"),
            "email"
        );
        assert_eq!(
            unique_violation_field(
                "duplicate key value violates unique constraint \"users_email_key\""
            ),
            "email"
        );
        assert_eq!(
            unique_violation_field("UNIQUE constraint failed: product_variants.sku"),
            "sku"
        );
    }

    #[test]
    fn too_large_details_map_back_to_413() {
        let d = vec![FieldIssue::new("file", TOO_LARGE)];
        assert_eq!(
            ErrorCode::parse("validation_error", &d).unwrap().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ErrorCode::parse("validation_error", &[]).unwrap().status(),
            StatusCode::BAD_REQUEST
        );
    }
}

/// Collects field issues while validating an input, then fails with all of them at once.
#[derive(Default)]
pub struct Issues(pub Vec<FieldIssue>);

impl Issues {
    pub fn take<T, E: Into<AppError>>(&mut self, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.extend(e.into().details);
                None
            }
        }
    }

    pub fn push(&mut self, field: &str, issue: &str) {
        self.0.push(FieldIssue::new(field, issue));
    }

    pub fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::invalid_fields(self.0))
        }
    }
}
