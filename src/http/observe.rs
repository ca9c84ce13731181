//! Request metrics and the structured access log (one line per request).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::{LoggedApiKey, LoggedUser};
use crate::state::AppState;

/// The matched route template, copied onto the response by a route layer (routing happens inside
/// the outer middleware, so the request never carries it there). `MatchedPath` is a shared
/// string: copying it allocates nothing.
#[derive(Clone)]
pub struct RouteLabel(pub MatchedPath);

pub async fn route_label(req: Request, next: Next) -> Response {
    let label = req.extensions().get::<MatchedPath>().cloned();
    let mut res = next.run(req).await;
    if let Some(l) = label {
        res.extensions_mut().insert(RouteLabel(l));
    }
    res
}

/// Metrics and the access log line of every request. Nothing here allocates on the way: the labels
/// and fields are borrowed (the route template, the status code's text, the trace id).
pub async fn middleware(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map_or("unmatched", |r| r.0.as_str());
    let status = res.status();
    let labels = [method.as_str(), route, status.as_str()];
    st.metrics.http_requests.with_label_values(&labels).inc();
    st.metrics
        .http_duration
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    let user_id = res.extensions().get::<LoggedUser>().map(|u| u.0);
    let api_key_id = res.extensions().get::<LoggedApiKey>().map(|k| k.0);
    crate::trace_id::with_trace_id(|trace_id| {
        tracing::info!(
            traceId = trace_id,
            userId = user_id,
            apiKeyId = api_key_id,
            method = method.as_str(),
            route = route,
            status = status.as_u16(),
            latencyMs = elapsed.as_secs_f64() * 1000.0,
            "request"
        )
    });
    res
}
