//! Multipart file parts are streamed to an anonymous temporary file, never held in memory, and
//! refused with 413 as soon as they pass the size limit.

use async_graphql::UploadValue;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::error::{AppError, AppResult};
use crate::services::platform::files::MAX_UPLOAD_BYTES;

/// Request bodies of multipart routes may be this large (the file plus the form's other parts).
pub const MULTIPART_BODY_LIMIT: usize = MAX_UPLOAD_BYTES as usize + 256 * 1024;

pub fn multipart_error(e: MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::too_large("file", "The upload is larger than 10 MB")
    } else {
        AppError::invalid(
            "body",
            "invalid_multipart",
            format!("The multipart body could not be read: {}", e.body_text()),
        )
    }
}

pub async fn spool(mut field: Field<'_>) -> AppResult<UploadValue> {
    let filename = field.file_name().unwrap_or_default().to_string();
    let content_type = field.content_type().map(str::to_string);
    let std_file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    let mut file = tokio::fs::File::from_std(std_file);
    let mut total: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        total += chunk.len() as u64;
        if total > MAX_UPLOAD_BYTES {
            return Err(AppError::too_large("file", "The file is larger than 10 MB"));
        }
        file.write_all(&chunk).await.map_err(AppError::internal)?;
    }
    file.flush().await.map_err(AppError::internal)?;
    Ok(UploadValue {
        filename,
        content_type,
        content: file.into_std().await,
    })
}
