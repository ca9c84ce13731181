//! A consent given by a user (see `services::accounts::consents`).

use async_graphql::Enum;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a consent is for.
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
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ConsentPurpose {
    /// The store's privacy policy, of the version in force (`PRIVACY_POLICY_VERSION`).
    #[sea_orm(string_value = "privacy_policy")]
    PrivacyPolicy,
    /// The processing of health data: the prescriptions and certificates a customer submits.
    #[sea_orm(string_value = "health_data")]
    HealthData,
}

impl ConsentPurpose {
    pub const ALL: [ConsentPurpose; 2] =
        [ConsentPurpose::PrivacyPolicy, ConsentPurpose::HealthData];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsentPurpose::PrivacyPolicy => "privacy_policy",
            ConsentPurpose::HealthData => "health_data",
        }
    }
}

/// Where a consent was given.
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
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// At registration (explicit only with `acceptPrivacyPolicy: true`).
    #[sea_orm(string_value = "registration")]
    Registration,
    /// `POST /api/me/consents/{purpose}`.
    #[sea_orm(string_value = "request")]
    Request,
    /// `acceptHealthDataProcessing: true` in a document submission.
    #[sea_orm(string_value = "document")]
    Document,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub purpose: ConsentPurpose,
    /// The privacy policy version in force when the consent was given.
    pub policy_version: String,
    pub source: ConsentSource,
    /// Whether the user expressly agreed (false only for a registration that recorded the
    /// policy version without `acceptPrivacyPolicy: true`).
    pub explicit: bool,
    pub granted_at: DateTimeUtc,
    pub withdrawn_at: Option<DateTimeUtc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
