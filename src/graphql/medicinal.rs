//! GraphQL for medicinal documents: the customer's own, and the admin review queue.

use async_graphql::{Context, Object, SimpleObject, Upload};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::medicinal_document::{self, DocStatus, DocType};
use crate::entities::user::Role;
use crate::services::medicinal::documents::{self, DocFilter, ReviewInput, SubmitDocumentInput};
use crate::services::platform::files;
use crate::services::platform::pagination::Page;
use crate::state::AppState;

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 4, "userId": 2, "docType": "receta", "status": "pending", "fileId": 9,
    "notes": null, "reviewedBy": null, "reviewedAt": null, "expiresAt": null,
    "fileUrl": "/api/files/9", "downloadUrl": "/api/files/9?expires=1795000000&signature=4f1c...",
    "downloadUrlExpiresAt": "2026-11-23T08:05:00Z", "createdAt": "2026-11-23T08:00:00Z", "updatedAt": "2026-11-23T08:00:00Z"}))]
pub struct MedicinalDocument {
    pub id: i64,
    pub user_id: i64,
    pub doc_type: DocType,
    pub status: DocStatus,
    pub file_id: i64,
    pub notes: Option<String>,
    /// The admin who reviewed it.
    pub reviewed_by: Option<i64>,
    pub reviewed_at: Option<Timestamp>,
    /// When an approval lapses (none: it does not).
    pub expires_at: Option<Timestamp>,
    /// The file, for its owner or an admin with a bearer token.
    pub file_url: String,
    /// The file for anyone holding this URL, for a few minutes (links, `<img src>`).
    pub download_url: String,
    pub download_url_expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl MedicinalDocument {
    pub fn new(st: &AppState, d: medicinal_document::Model) -> Self {
        let (download_url, expires) = files::signed_url(st, d.file_id);
        MedicinalDocument {
            id: d.id,
            user_id: d.user_id,
            doc_type: d.doc_type,
            status: d.status,
            file_id: d.file_id,
            notes: d.notes,
            reviewed_by: d.reviewed_by,
            reviewed_at: d.reviewed_at.map(Into::into),
            expires_at: d.expires_at.map(Into::into),
            file_url: files::file_url(d.file_id),
            download_url,
            download_url_expires_at: expires.into(),
            created_at: d.created_at.into(),
            updated_at: d.updated_at.into(),
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 4, "userId": 2, "docType": "receta", "status": "pending", "fileId": 9,
    "notes": null, "reviewedBy": null, "reviewedAt": null, "expiresAt": null, "fileUrl": "/api/files/9",
    "downloadUrl": "/api/files/9?expires=1795000000&signature=4f1c...", "downloadUrlExpiresAt": "2026-11-23T08:05:00Z",
    "createdAt": "2026-11-23T08:00:00Z", "updatedAt": "2026-11-23T08:00:00Z"}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct MedicinalDocumentPage {
    pub items: Vec<MedicinalDocument>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

impl MedicinalDocumentPage {
    fn new(st: &AppState, items: Vec<medicinal_document::Model>, total: u64, p: Page) -> Self {
        MedicinalDocumentPage {
            items: items
                .into_iter()
                .map(|d| MedicinalDocument::new(st, d))
                .collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        }
    }
}

#[derive(Default)]
pub struct MedicinalQuery;

#[Object]
impl MedicinalQuery {
    /// The signed-in customer's medicinal documents, newest first.
    #[graphql(
        guard = "RoleGuard(Role::Customer)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn my_medicinal_documents(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
    ) -> GqlResult<MedicinalDocumentPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (items, total) = documents::list_mine(st, rc, p).await?;
        Ok(MedicinalDocumentPage::new(st, items, total, p))
    }

    /// Admin: medicinal documents by status and owner (`q`: part of the email or name), newest first.
    #[graphql(
        guard = "RoleGuard(Role::Admin)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn admin_medicinal_documents(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        status: Option<DocStatus>,
        q: Option<String>,
    ) -> GqlResult<MedicinalDocumentPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (items, total) = documents::list_admin(st, rc, DocFilter { status, q }, p).await?;
        Ok(MedicinalDocumentPage::new(st, items, total, p))
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"fileId": 9, "contentType": "application/pdf", "sizeBytes": 182344,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "fileUrl": "/api/files/9"}))]
pub struct UploadedDocument {
    pub file_id: i64,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub file_url: String,
}

#[derive(Default)]
pub struct MedicinalMutation;

#[Object]
impl MedicinalMutation {
    /// Stores a private document (PDF, JPEG or PNG by content, ≤ 10 MB) to attach to a
    /// medicinal document with its `fileId`.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn upload_document(
        &self,
        ctx: &Context<'_>,
        file: Upload,
    ) -> GqlResult<UploadedDocument> {
        let (st, rc) = parts(ctx);
        let value = super::files::upload_value(ctx, file)?;
        let f = files::upload_document(st, rc, value).await?;
        Ok(UploadedDocument {
            file_id: f.id,
            content_type: f.content_type,
            size_bytes: f.size_bytes,
            sha256: f.sha256,
            file_url: files::file_url(f.id),
        })
    }

    /// Submits a prescription or certificate for review: `file` now, or `input.fileId` from
    /// `uploadDocument`.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn submit_medicinal_document(
        &self,
        ctx: &Context<'_>,
        input: SubmitDocumentInput,
        file: Option<Upload>,
    ) -> GqlResult<MedicinalDocument> {
        let (st, rc) = parts(ctx);
        let file = file
            .map(|u| super::files::upload_value(ctx, u))
            .transpose()?;
        let d = documents::submit(st, rc, input, file).await?;
        Ok(MedicinalDocument::new(st, d))
    }

    /// Deletes one of your documents; an approved one is kept (`conflict`).
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn delete_medicinal_document(&self, ctx: &Context<'_>, id: i64) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        documents::delete_mine(st, rc, id).await?;
        Ok(true)
    }

    /// Admin: approves or rejects a pending document; you are recorded as the reviewer.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn review_medicinal_document(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: ReviewInput,
    ) -> GqlResult<MedicinalDocument> {
        let (st, rc) = parts(ctx);
        let d = documents::review(st, rc, id, input).await?;
        Ok(MedicinalDocument::new(st, d))
    }
}
