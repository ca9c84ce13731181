//! `GET /api/files/{id}`: streams a stored file to whoever may read it (see
//! `services::platform::files::readable`); `GET /uploads/{key}`: a public image, to anyone. Not
//! GraphQL operations: the body is the file itself, streamed from the file store.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::App;
use crate::actor::RequestCtx;
use crate::error::{AppError, AppResult};
use crate::infra::storage::Object;
use crate::services::platform::files::{self, Signature};
use crate::state::AppState;

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
    let id: i64 = id.parse().map_err(|_| AppError::not_found("File"))?;
    let signed = signature_in(query, "A signed URL")?;
    let f = files::readable(&app.state, ctx, id, signed).await?;
    let object = open(&app.state, &files::Stored::of(&f), "File").await?;
    let ext = std::path::Path::new(&f.storage_key)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("bin");
    let content_type = HeaderValue::from_str(&f.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    attachment(object, content_type, &format!("file-{}.{ext}", f.id))
}

/// `GET /uploads/{key}`: a public file (a product image) — anyone's, never-changing content: its
/// SHA-256 is the ETag (`If-None-Match` answers 304), cached for a year. Streamed from the store,
/// never a redirect to it, so the URL, the headers and the bucket's privacy stay the API's.
pub async fn public(
    State(app): State<App>,
    Path(key): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    match serve_public(&app, &key, &headers).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn serve_public(
    app: &App,
    key: &str,
    headers: &axum::http::HeaderMap,
) -> AppResult<Response> {
    let f = files::public_file(&app.state, key)
        .await?
        .ok_or_else(|| AppError::not_found("File"))?;
    let etag = format!("\"{}\"", f.sha256);
    let cache = [
        (
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(AppError::internal)?,
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
    ];
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let object = open(&app.state, &files::Stored::of(&f), "File").await?;
    let content_type = HeaderValue::from_str(&f.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok((
        StatusCode::OK,
        cache,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, HeaderValue::from(object.size)),
        ],
        Body::from_stream(object.stream),
    )
        .into_response())
}

/// The `expires` and `signature` of a signed `link`; `None` without a query string.
pub(super) fn signature_in(query: Option<&str>, link: &str) -> AppResult<Option<Signature>> {
    query
        .filter(|q| !q.is_empty())
        .map(|q| serde_urlencoded::from_str::<Signature>(q).map_err(|_| malformed(link)))
        .transpose()
}

/// 400 for a link without integer `expires` and hex `signature`.
pub(super) fn malformed(link: &str) -> AppError {
    AppError::invalid(
        "signature",
        "invalid",
        format!("{link} carries integer 'expires' and hex 'signature'"),
    )
}

/// The stored object; 404 naming `what` when the store has lost it, 503 when it cannot be reached.
pub(super) async fn open(st: &AppState, stored: &files::Stored, what: &str) -> AppResult<Object> {
    st.storage
        .get(stored.area(), &stored.key)
        .await?
        .ok_or_else(|| AppError::not_found(what))
}

/// A private file streamed as an attachment named `filename`, never cached.
pub fn attachment(
    object: Object,
    content_type: HeaderValue,
    filename: &str,
) -> AppResult<Response> {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(AppError::internal)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, HeaderValue::from(object.size)),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        Body::from_stream(object.stream),
    )
        .into_response())
}
