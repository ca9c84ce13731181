//! A personal-data request (see `services::privacy::data_export`).

use async_graphql::Enum;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Enum,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[graphql(rename_items = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PrivacyRequestKind {
    /// A portable copy of the customer's data.
    #[sea_orm(string_value = "export")]
    Export,
    /// Erasure of the customer's data.
    #[sea_orm(string_value = "erasure")]
    Erasure,
}

impl PrivacyRequestKind {
    /// The kind of the job that answers a request of this kind.
    pub const fn job_kind(self) -> &'static str {
        match self {
            PrivacyRequestKind::Export => "privacy.export",
            PrivacyRequestKind::Erasure => "privacy.erasure",
        }
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Enum,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[graphql(rename_items = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PrivacyRequestState {
    /// Waiting for a worker.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Being prepared.
    #[sea_orm(string_value = "processing")]
    Processing,
    /// Done (an export: downloadable until `expiresAt`).
    #[sea_orm(string_value = "ready")]
    Ready,
    /// Gave up after retries; the customer may ask again.
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "privacy_requests")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub kind: PrivacyRequestKind,
    pub state: PrivacyRequestState,
    pub requested_at: DateTimeUtc,
    /// When the store must have answered by (`PRIVACY_REQUEST_DUE_DAYS` after the request).
    pub due_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    /// An export: downloadable until then.
    pub expires_at: Option<DateTimeUtc>,
    /// An export: its ZIP under the private upload directory.
    pub storage_key: Option<String>,
    pub size_bytes: Option<i64>,
    pub error: Option<String>,
    pub downloads: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
