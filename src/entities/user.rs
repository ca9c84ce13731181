use async_graphql::Enum;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who a user is to the store. Stored as lower-case text; the same spelling in GraphQL and REST.
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
pub enum Role {
    #[sea_orm(string_value = "customer")]
    Customer,
    #[sea_orm(string_value = "admin")]
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }
}

/// The name an erased account keeps: erasure writes it, and a review by an erased customer is
/// signed with it.
pub const ERASED_NAME: &str = "Cliente eliminado";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(unique)]
    pub email: String,
    #[sea_orm(unique)]
    pub rut: Option<String>,
    pub password_hash: String,
    pub role: Role,
    pub is_active: bool,
    pub validated_medicinal: bool,
    /// When the current address was verified (`None`: not yet).
    pub email_verified_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The customer asked for their account to be erased (Ley 21.719): sign-in is refused until
    /// they cancel within the grace period, or the erasure runs.
    pub erasure_requested_at: Option<DateTimeUtc>,
    /// Erased: the row is a tombstone (a pseudonym, no personal field) that orders kept for the
    /// tax law still point to.
    pub erased_at: Option<DateTimeUtc>,
    /// An admin blocked the processing of this customer's data while a dispute is resolved: the
    /// account is read-only (no new orders, documents or reviews).
    pub processing_blocked_at: Option<DateTimeUtc>,
    pub processing_blocked_reason: Option<String>,
}

impl Model {
    /// Whether the account may act at all (not deactivated, not soft-deleted, not on its way to
    /// erasure).
    pub fn is_usable(&self) -> bool {
        self.is_active && self.deleted_at.is_none() && self.erasure_requested_at.is_none()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_one = "super::user_profile::Entity")]
    Profile,
}

impl Related<super::user_profile::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Profile.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
