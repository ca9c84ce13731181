//! A session: one refresh-token family, i.e. one login (see `services::accounts::sessions`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The refresh-token family (`auth_tokens.family_id`, the `sid` claim of its tokens).
    #[sea_orm(unique)]
    pub family_id: String,
    pub user_id: i64,
    /// The client address and user agent of the login, then of the latest refresh.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTimeUtc,
    /// When its tokens were last issued (the login, or a refresh).
    pub last_used_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
