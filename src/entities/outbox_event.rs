//! The transactional outbox (see `services::platform::events`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The event's type, its audit action name: `order.status_changed`, `coupon.updated`, …
    pub event_type: String,
    /// The whole event (`DomainEvent` serialized) with `event` (its type) and `version`.
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// What the event is about (`order`, `product`, …) and its id; events of one aggregate are
    /// handed to subscribers in `id` order.
    pub aggregate_type: String,
    pub aggregate_id: Option<i64>,
    /// The audit row written with it.
    pub audit_log_id: Option<i64>,
    pub actor_user_id: Option<i64>,
    pub trace_id: Option<String>,
    pub occurred_at: DateTimeUtc,
    /// When every subscriber had it; none while it waits.
    pub dispatched_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
