//! `GET /api/me/data-exports/{id}/download`: streams a ready export's ZIP to its owner, with the
//! signed link from `GET /api/me/data-exports/{id}` (see `services::privacy::data_export::downloadable`).
//! Not a GraphQL operation: the body is the file itself.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::{files, App};
use crate::actor::RequestCtx;
use crate::error::{AppError, AppResult};
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
    let link = "A download link";
    let signed = files::signature_in(query, link)?.ok_or_else(|| files::malformed(link))?;
    let (r, stored) = data_export::downloadable(&app.state, ctx, id, signed).await?;
    let object = files::open(&app.state, &stored, "Data export").await?;
    files::attachment(
        object,
        HeaderValue::from_static("application/zip"),
        &format!("datos-personales-{}.zip", r.id),
    )
}
