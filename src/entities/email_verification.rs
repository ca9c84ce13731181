//! A link sent to verify an email address (see `services::verification`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_verifications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// The address this link verifies (for an email change, the new one).
    pub email: String,
    /// For an email change: the address in use when the change was asked for.
    pub previous_email: Option<String>,
    /// SHA-256 (hex) of the link's token; written when the message is sent.
    #[sea_orm(unique)]
    pub token_hash: Option<String>,
    pub expires_at: DateTimeUtc,
    /// When the link was used, or replaced by a newer one.
    pub consumed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
