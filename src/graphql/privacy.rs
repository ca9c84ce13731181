//! GraphQL types and resolvers for personal-data requests (Ley 21.719): the customer's export.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::privacy_request::{self, PrivacyRequestState};
use crate::entities::user::Role;
use crate::services::data_export::{self, ExportView};

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
