//! GraphQL types and resolvers for personal-data requests (Ley 21.719): the customer's export.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::entities::user::Role;
use crate::services::data_export::{self, AdminRequest, ExportView, RequestFilter};
use crate::services::pagination::Page;

/// An export of the signed-in customer's data: its state and, once ready, where to download it.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 4, "state": "ready", "requestedAt": "2026-12-03T10:00:00Z",
    "dueAt": "2027-01-02T10:00:00Z", "completedAt": "2026-12-03T10:00:05Z", "expiresAt": "2026-12-04T10:00:05Z",
    "sizeBytes": 48213, "downloadUrl": "/api/me/data-exports/4/download?expires=1796378405&signature=9f2c..."}))]
pub struct DataExport {
    pub id: i64,
    pub state: PrivacyRequestState,
    pub requested_at: Timestamp,
    /// When the store must have answered by (`PRIVACY_REQUEST_DUE_DAYS`).
    pub due_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Until when the ZIP may be downloaded (24 hours after it was ready).
    pub expires_at: Option<Timestamp>,
    pub size_bytes: Option<i64>,
    /// While ready and unexpired: the ZIP's link, signed until `expiresAt`; it works only with
    /// the owner's bearer token.
    pub download_url: Option<String>,
}

impl From<ExportView> for DataExport {
    fn from(v: ExportView) -> Self {
        let mut e = DataExport::from(v.request);
        e.download_url = v.download_url;
        e
    }
}

impl From<privacy_request::Model> for DataExport {
    fn from(r: privacy_request::Model) -> Self {
        DataExport {
            id: r.id,
            state: r.state,
            requested_at: r.requested_at.into(),
            due_at: r.due_at.into(),
            completed_at: r.completed_at.map(Into::into),
            expires_at: r.expires_at.map(Into::into),
            size_bytes: r.size_bytes,
            download_url: None,
        }
    }
}

/// A personal-data request, as admins follow them: whose, what, and when it is due.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 4, "kind": "export", "state": "pending", "userId": 12, "userEmail": "ana@example.cl",
    "requestedAt": "2026-12-03T10:00:00Z", "dueAt": "2027-01-02T10:00:00Z", "completedAt": null, "overdue": false,
    "downloads": 0}))]
pub struct PrivacyRequest {
    pub id: i64,
    pub kind: PrivacyRequestKind,
    pub state: PrivacyRequestState,
    pub user_id: i64,
    pub user_email: Option<String>,
    pub requested_at: Timestamp,
    /// `PRIVACY_REQUEST_DUE_DAYS` after the request: the store must have answered by then.
    pub due_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Not answered (not ready) and past its due date.
    pub overdue: bool,
    /// An export: how many times its ZIP was downloaded.
    pub downloads: i32,
}

impl From<AdminRequest> for PrivacyRequest {
    fn from(a: AdminRequest) -> Self {
        let r = a.request;
        PrivacyRequest {
            id: r.id,
            kind: r.kind,
            state: r.state,
            user_id: r.user_id,
            user_email: a.email,
            requested_at: r.requested_at.into(),
            due_at: r.due_at.into(),
            completed_at: r.completed_at.map(Into::into),
            overdue: a.overdue,
            downloads: r.downloads,
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 4, "kind": "export", "state": "pending", "userId": 12,
    "userEmail": "ana@example.cl", "requestedAt": "2026-12-03T10:00:00Z", "dueAt": "2027-01-02T10:00:00Z",
    "completedAt": null, "overdue": false, "downloads": 0}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct PrivacyRequestPage {
    pub items: Vec<PrivacyRequest>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// One of the signed-in customer's data exports.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn my_data_export(&self, ctx: &Context<'_>, id: i64) -> GqlResult<DataExport> {
        let (st, rc) = parts(ctx);
        Ok(data_export::status(st, rc, id).await?.into())
    }

    /// Admin: personal-data requests (exports; erasures next) by kind, state and whether overdue,
    /// the soonest due first.
    #[graphql(
        guard = "RoleGuard(Role::Admin)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn privacy_requests(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        kind: Option<PrivacyRequestKind>,
        state: Option<PrivacyRequestState>,
        overdue: Option<bool>,
    ) -> GqlResult<PrivacyRequestPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let filter = RequestFilter {
            kind,
            state,
            overdue,
        };
        let (items, total) = data_export::list_admin(st, rc, filter, p).await?;
        Ok(PrivacyRequestPage {
            items: items.into_iter().map(Into::into).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Asks for a ZIP of everything the store holds about the signed-in customer; prepared in the
    /// background (poll `myDataExport`; a mail says when it is ready). One at a time (409
    /// `export_in_progress`), three a day (429).
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn request_data_export(&self, ctx: &Context<'_>) -> GqlResult<DataExport> {
        let (st, rc) = parts(ctx);
        Ok(data_export::request(st, rc).await?.into())
    }
}
