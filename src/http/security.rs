//! Security headers on every response (errors, the 404 fallback, pages and webhooks included).
//!
//! Each is set only when the handler did not set its own: public images keep their year-long
//! cache, downloads their `private, no-store`.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;

/// Adds `nosniff`, `no-referrer`, `DENY` (the API is never framed; GraphiQL and Swagger UI are
/// top-level pages) and, when configured (production by default), `Strict-Transport-Security`.
pub fn with_headers<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    config: &Config,
) -> Router<S> {
    let hsts = (config.http.hsts_max_age_seconds > 0)
        .then(|| format!("max-age={}", config.http.hsts_max_age_seconds))
        .and_then(|v| HeaderValue::from_str(&v).ok());
    router.layer(
        ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::STRICT_TRANSPORT_SECURITY,
                hsts,
            )),
    )
}

/// Whether a response may carry someone's data or credentials: anything sent with a bearer token
/// or an API key,
/// every write (token-issuing auth routes, checkout, GraphQL POSTs), signed downloads and payment
/// returns. Anonymous reads of the catalogue, docs and probes are the same for everyone.
fn is_personal(req: &Request) -> bool {
    let path = req.uri().path();
    super::carries_credentials(req.headers())
        || !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || path.starts_with("/api/files/")
        || path.starts_with("/webhooks/")
}

/// `Cache-Control: no-store` on personal responses that did not choose their own caching.
pub async fn cache_control(req: Request, next: Next) -> Response {
    let personal = is_personal(&req);
    let mut res = next.run(req).await;
    if personal && !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
