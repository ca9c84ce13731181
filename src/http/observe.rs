//! Request metrics and the structured access log (one line per request).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::LoggedUser;
use crate::state::AppState;

/// The matched route template, copied onto the response by a route layer (routing happens inside
/// the outer middleware, so the request never carries it there).
#[derive(Clone)]
pub struct RouteLabel(pub String);

pub async fn route_label(req: Request, next: Next) -> Response {
    let label = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut res = next.run(req).await;
    if let Some(l) = label {
        res.extensions_mut().insert(RouteLabel(l));
    }
    res
}

pub async fn middleware(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".to_string());
    let status = res.status().as_u16().to_string();
    let labels = [method.as_str(), route.as_str(), status.as_str()];
    st.metrics.http_requests.with_label_values(&labels).inc();
    st.metrics
        .http_duration
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    let user_id = res.extensions().get::<LoggedUser>().map(|u| u.0);
    tracing::info!(
        traceId = %super::trace::current_trace_id(),
        userId = user_id,
        method = %method,
        route = %route,
        status = res.status().as_u16(),
        latencyMs = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    res
}
