//! Every failure leaves in the error model, including the framework's own rejections
//! (unknown route, wrong method, oversize or unreadable body).

use axum::extract::Request;
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{AppError, ErrorCode};

pub async fn not_found(method: Method, uri: Uri) -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        format!("No route for {method} {}", uri.path()),
    )
}

/// Rewrites error responses that did not come from [`AppError`] (plain-text rejections, empty 405s).
pub async fn normalize(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // GraphQL request errors in `application/graphql-response+json` are 400 by design.
            v.starts_with("application/json")
                || v.starts_with(super::graphql::GRAPHQL_RESPONSE_JSON)
        });
    if is_json {
        return res;
    }
    let err = match status {
        StatusCode::NOT_FOUND => AppError::new(ErrorCode::NotFound, "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => AppError::new(
            ErrorCode::MethodNotAllowed,
            format!("Method {method} is not allowed on this route"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::too_large("body", "The request body is too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            AppError::unsupported_media_type("Unsupported content type")
        }
        s if s.is_client_error() => {
            AppError::invalid("body", "invalid", "The request could not be read")
        }
        _ => AppError::internal(format!("unhandled error response {status}")),
    };
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut out = err.into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}
