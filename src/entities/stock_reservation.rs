use sea_orm::entity::prelude::*;

/// A reservation holds units for an unpaid order until it expires; payment consumes it (the
/// stock is decremented then), a cancelled or failed order releases it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ReservationState {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "consumed")]
    Consumed,
    #[sea_orm(string_value = "released")]
    Released,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_reservations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: i64,
    pub variant_id: i64,
    pub quantity: i32,
    /// An `active` reservation counts against stock only until this instant.
    pub expires_at: DateTimeUtc,
    pub state: ReservationState,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
