//! Establishes the request context (actor, client IP, trace id) once per request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::client_ip::client_ip;
use super::trace::TraceId;
use crate::actor::{Actor, RequestCtx};
use crate::services::accounts::auth::authenticate;
use crate::state::AppState;

/// Put on the response so the access log can name the user.
#[derive(Clone, Copy, Debug)]
pub struct LoggedUser(pub i64);

pub async fn middleware(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let ip = client_ip(peer, req.headers(), &st.config.http.trusted_proxies);
    let trace_id = req
        .extensions()
        .get::<TraceId>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut ctx = RequestCtx::anonymous(trace_id, ip);
    ctx.admin_requires_mfa = st.config.auth.admin_require_2fa;
    if let Some(value) = req.headers().get(AUTHORIZATION) {
        let bearer = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        match bearer {
            Some(token) => match authenticate(&st, token).await {
                Ok(user) => ctx.actor = Actor::User(user),
                Err(crate::services::accounts::auth::DATABASE_UNREACHABLE) => {
                    return axum::response::IntoResponse::into_response(
                        crate::error::AppError::database_unavailable(),
                    )
                }
                Err(problem) => ctx.auth_problem = Some(problem),
            },
            None => {
                ctx.auth_problem = Some("The Authorization header must be 'Bearer <access token>'")
            }
        }
    }
    ctx.user_agent = req.headers().get(axum::http::header::USER_AGENT).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(512)
            .collect()
    });
    ctx.idempotency_key = req
        .headers()
        .get("idempotency-key")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let user_id = ctx.user_id();
    req.extensions_mut().insert(ctx);
    let mut res = next.run(req).await;
    if let Some(id) = user_id {
        res.extensions_mut().insert(LoggedUser(id));
    }
    res
}
