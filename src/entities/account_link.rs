//! A single-use link mailed to a user (see `services::accounts::links`).

use sea_orm::entity::prelude::*;

/// What a link is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum Purpose {
    /// Verify an address (the account's, or the new one of an email change).
    #[sea_orm(string_value = "verify_email")]
    VerifyEmail,
    /// Set a new password without the old one.
    #[sea_orm(string_value = "reset_password")]
    ResetPassword,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_links")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub purpose: Purpose,
    /// The address the link goes to (for an email change, the new one).
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
