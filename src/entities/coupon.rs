use async_graphql::Enum;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
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
pub enum CouponType {
    /// `value` is a percentage, 1–100.
    #[sea_orm(string_value = "percent")]
    Percent,
    /// `value` is whole pesos.
    #[sea_orm(string_value = "fixed")]
    Fixed,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coupons")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Stored upper-case; matched case-insensitively.
    #[sea_orm(unique)]
    pub code: String,
    #[sea_orm(column_name = "type")]
    pub coupon_type: CouponType,
    pub value: i64,
    pub min_order_cents: i64,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub usage_limit: Option<i32>,
    pub per_user_limit: Option<i32>,
    pub used_count: i32,
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
