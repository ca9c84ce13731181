//! Uploads over GraphQL (multipart request spec on `/graphql`, or the REST bridge's file parts).

use async_graphql::{Context, Object, SimpleObject, Upload};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::{parts, GqlResult};
use crate::entities::file;
use crate::entities::user::Role;
use crate::error::AppError;
use crate::services::platform::files;

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"fileId": 7, "url": "/uploads/3f2a9c0d4b8e4f6a9d1c2b3a4e5f6a7b.png", "contentType": "image/png",
    "sizeBytes": 48213, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}))]
pub struct UploadedImage {
    pub file_id: i64,
    /// Stable public URL (long-cached).
    pub url: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
}

impl From<file::Model> for UploadedImage {
    fn from(f: file::Model) -> Self {
        UploadedImage {
            file_id: f.id,
            url: files::public_url(&f),
            content_type: f.content_type,
            size_bytes: f.size_bytes,
            sha256: f.sha256,
        }
    }
}

/// Reads an `Upload` argument.
pub fn upload_value(
    ctx: &Context<'_>,
    upload: Upload,
) -> Result<async_graphql::UploadValue, AppError> {
    upload
        .value(ctx)
        .map_err(|_| AppError::invalid("file", "required", "The file part is missing"))
}

#[derive(Default)]
pub struct FilesMutation;

#[Object]
impl FilesMutation {
    /// Admin: stores a product image (JPEG, PNG or WebP by content, ≤ 10 MB).
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn upload_image(&self, ctx: &Context<'_>, file: Upload) -> GqlResult<UploadedImage> {
        let (st, rc) = parts(ctx);
        let value = upload_value(ctx, file)?;
        Ok(files::upload_image(st, rc, value).await?.into())
    }
}
