//! A subscriber has taken an outbox event (see `services::platform::events::dispatch`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: i64,
    /// The subscriber's name (`Subscriber::name`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub subscriber: String,
    pub delivered_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
