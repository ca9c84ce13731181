//! `GET /api/me/data-exports/{id}/download`: streams a ready export's ZIP to its owner, with the
//! signed link from `GET /api/me/data-exports/{id}` (see `services::privacy::data_export::downloadable`).
//! Not a GraphQL operation: the body is the file itself.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::App;
use crate::actor::RequestCtx;
use crate::error::{AppError, AppResult};
use crate::services::platform::files::Signature;
use crate::services::privacy::data_export;

pub async fn download(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    Extension(ctx): Extension<RequestCtx>,
) -> Response {
    match serve(&app, &ctx, &id, query.as_deref()).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn serve(app: &App, ctx: &RequestCtx, id: &str, query: Option<&str>) -> AppResult<Response> {
    ctx.require_user()?;
    let id: i64 = id.parse().map_err(|_| AppError::not_found("Data export"))?;
    let signed = serde_urlencoded::from_str::<Signature>(query.unwrap_or("")).map_err(|_| {
        AppError::invalid(
            "signature",
            "invalid",
            "A download link carries integer 'expires' and hex 'signature'",
        )
    })?;
    let (r, path) = data_export::downloadable(&app.state, ctx, id, signed).await?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AppError::not_found("Data export")
        } else {
            AppError::internal(e)
        }
    })?;
    let len = file.metadata().await.map_err(AppError::internal)?.len();
    super::files::attachment(
        file,
        len,
        HeaderValue::from_static("application/zip"),
        &format!("datos-personales-{}.zip", r.id),
    )
}
