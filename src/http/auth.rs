//! Establishes the request context (actor, client IP, trace id) once per request: the actor is
//! a user (a bearer access token), a store system (an API key, as `X-API-Key` or a bearer
//! credential starting `dsp_live_`, held to its own rate limit) or anonymous.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::client_ip::client_ip;
use super::trace::TraceId;
use crate::actor::{Actor, RequestCtx};
use crate::services::accounts::api_keys;
use crate::services::accounts::auth::authenticate;
use crate::state::AppState;

/// Put on the response so the access log can name the user.
#[derive(Clone, Copy, Debug)]
pub struct LoggedUser(pub i64);

/// Put on the response so the access log can name the API key (its id, never the key).
#[derive(Clone, Copy, Debug)]
pub struct LoggedApiKey(pub i64);

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
    let api_key = req
        .headers()
        .get(super::API_KEY)
        .map(|v| v.to_str().unwrap_or_default().trim().to_string());
    let bearer = req.headers().get(AUTHORIZATION).map(|value| {
        value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_string())
    });
    let key = match (api_key, &bearer) {
        (Some(key), _) => Some(key),
        (None, Some(Some(token))) if api_keys::looks_like_key(token) => Some(token.clone()),
        _ => None,
    };
    if let Some(key) = key {
        match api_keys::authenticate(&st, &key).await {
            Ok(principal) => {
                if let Err(e) = st.limits.check_api_key(principal.id).await {
                    return axum::response::IntoResponse::into_response(e);
                }
                ctx.actor = Actor::ApiKey(principal);
            }
            Err(crate::services::accounts::auth::DATABASE_UNREACHABLE) => {
                return axum::response::IntoResponse::into_response(
                    crate::error::AppError::database_unavailable(),
                )
            }
            Err(problem) => ctx.auth_problem = Some(problem),
        }
    } else if let Some(bearer) = bearer {
        match bearer.as_deref() {
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
    let api_key_id = ctx.api_key().map(|k| k.id);
    req.extensions_mut().insert(ctx);
    let mut res = next.run(req).await;
    if let Some(id) = user_id {
        res.extensions_mut().insert(LoggedUser(id));
    }
    if let Some(id) = api_key_id {
        res.extensions_mut().insert(LoggedApiKey(id));
    }
    res
}
