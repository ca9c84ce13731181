//! A user's TOTP two-factor state (see `services::accounts::two_factor`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_two_factor")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub user_id: i64,
    /// The shared secret, sealed with `DATA_ENCRYPTION_KEY` (`infra::crypto`).
    pub secret: String,
    /// `None` while set up but not yet confirmed with a code.
    pub enabled_at: Option<DateTimeUtc>,
    /// The latest 30-second time step a code was accepted for; codes of it and earlier steps
    /// are refused.
    pub last_step: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
