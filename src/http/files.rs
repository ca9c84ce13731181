//! `GET /api/files/{id}`: streams a stored file to whoever may read it (see
//! `services::platform::files::readable`). Not a GraphQL operation: the body is the file itself.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use tokio_util::io::ReaderStream;

use super::App;
use crate::actor::RequestCtx;
use crate::error::{AppError, AppResult};
use crate::services::platform::files::{self, Signature};

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
    let (f, path) = files::readable(&app.state, ctx, id, signed).await?;
    let file = open(&path, "File").await?;
    let ext = std::path::Path::new(&f.storage_key)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("bin");
    let content_type = HeaderValue::from_str(&f.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    attachment(
        file,
        f.size_bytes as u64,
        content_type,
        &format!("file-{}.{ext}", f.id),
    )
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

/// The stored file at `path`; 404 naming `what` when storage has lost it.
pub(super) async fn open(path: &std::path::Path, what: &str) -> AppResult<tokio::fs::File> {
    tokio::fs::File::open(path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AppError::not_found(what)
        } else {
            AppError::internal(e)
        }
    })
}

/// A private file streamed as an attachment named `filename`, never cached.
pub fn attachment(
    file: tokio::fs::File,
    len: u64,
    content_type: HeaderValue,
    filename: &str,
) -> AppResult<Response> {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(AppError::internal)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response())
}
