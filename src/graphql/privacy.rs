//! GraphQL types and resolvers for personal-data requests (Ley 21.719): the customer's export
//! and the erasure of their account.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::entities::user::Role;
use crate::services::platform::pagination::Page;
use crate::services::privacy::data_export::{self, ExportView};
use crate::services::privacy::erasure::{self, CancelDeletionInput, DeletionRequestInput};
use crate::services::privacy::requests::{self, AdminRequest, RequestFilter};

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

/// A request to erase the signed-in customer's account: when it runs, unless cancelled first.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 9, "state": "pending", "requestedAt": "2026-12-03T10:00:00Z",
    "scheduledFor": "2026-12-10T10:00:00Z", "dueAt": "2027-01-02T10:00:00Z"}))]
pub struct DeletionRequest {
    pub id: i64,
    pub state: PrivacyRequestState,
    pub requested_at: Timestamp,
    /// When the grace period (`ERASURE_GRACE_DAYS`) ends and the account is erased; until then
    /// it may be cancelled with `DELETE /api/me/deletion-request` (`cancelAccountDeletion`).
    pub scheduled_for: Option<Timestamp>,
    /// `PRIVACY_REQUEST_DUE_DAYS` after the request: the law's deadline.
    pub due_at: Timestamp,
}

impl From<privacy_request::Model> for DeletionRequest {
    fn from(r: privacy_request::Model) -> Self {
        DeletionRequest {
            id: r.id,
            state: r.state,
            requested_at: r.requested_at.into(),
            scheduled_for: r.expires_at.map(Into::into),
            due_at: r.due_at.into(),
        }
    }
}

/// A personal-data request, as admins follow them: whose, what, and when it is due.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 4, "kind": "export", "state": "pending", "userId": 12, "userEmail": "ana@example.cl",
    "requestedAt": "2026-12-03T10:00:00Z", "dueAt": "2027-01-02T10:00:00Z", "completedAt": null, "overdue": false,
    "downloads": 0, "scheduledFor": null, "error": null}))]
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
    /// An erasure: when its grace period ends and it runs.
    pub scheduled_for: Option<Timestamp>,
    /// Why it waits (an erasure: the orders that must end first) or failed.
    pub error: Option<String>,
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
            scheduled_for: match r.kind {
                PrivacyRequestKind::Erasure => r.expires_at.map(Into::into),
                PrivacyRequestKind::Export => None,
            },
            error: r.error,
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 4, "kind": "export", "state": "pending", "userId": 12,
    "userEmail": "ana@example.cl", "requestedAt": "2026-12-03T10:00:00Z", "dueAt": "2027-01-02T10:00:00Z",
    "completedAt": null, "overdue": false, "downloads": 0, "scheduledFor": null, "error": null}], "total": 1, "page": 1,
    "pageSize": 20}))]
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

    /// Admin: personal-data requests (exports and erasures) by kind, state and whether overdue,
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
        let (items, total) = requests::list_admin(st, rc, filter, p).await?;
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

    /// Asks for the signed-in customer's account to be erased (Ley 21.719), with the password
    /// (and a code with two-factor on). Every session ends at once and sign-in is refused; after
    /// `ERASURE_GRACE_DAYS` the account is erased — orders and payments stay under a pseudonym for
    /// the tax law. 409 while an order is pending payment or delivery (each named in `details`).
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn request_account_deletion(
        &self,
        ctx: &Context<'_>,
        input: DeletionRequestInput,
    ) -> GqlResult<DeletionRequest> {
        let (st, rc) = parts(ctx);
        Ok(erasure::request(st, rc, input).await?.into())
    }

    /// Cancels a pending erasure within its grace period, with the account's email and password
    /// (sign-in is refused meanwhile); the account is usable again as it was.
    async fn cancel_account_deletion(
        &self,
        ctx: &Context<'_>,
        input: CancelDeletionInput,
    ) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        erasure::cancel(st, rc, input).await?;
        Ok(true)
    }

    /// Admin: runs a pending (or failed) erasure now rather than at the end of its grace period.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn process_privacy_request(
        &self,
        ctx: &Context<'_>,
        id: i64,
    ) -> GqlResult<PrivacyRequest> {
        let (st, rc) = parts(ctx);
        let r = erasure::process_now(st, rc, id).await?;
        Ok(requests::admin_view(st, r).await?.into())
    }
}
