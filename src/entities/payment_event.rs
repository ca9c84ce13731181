use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: super::payment::Provider,
    /// Unique per provider: a second delivery of the same event is a no-op.
    pub event_id: String,
    pub payment_id: Option<i64>,
    pub received_at: DateTimeUtc,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// applied, duplicate, rejected_signature, amount_mismatch, ...
    pub outcome: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
