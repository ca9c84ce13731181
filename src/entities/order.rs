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
pub enum OrderStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "paid")]
    Paid,
    #[sea_orm(string_value = "shipped")]
    Shipped,
    #[sea_orm(string_value = "delivered")]
    Delivered,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    #[sea_orm(string_value = "failed")]
    Failed,
}

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
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ShippingMethod {
    #[sea_orm(string_value = "retiro_tienda")]
    RetiroTienda,
    #[sea_orm(string_value = "chilexpress")]
    Chilexpress,
    #[sea_orm(string_value = "starken")]
    Starken,
    #[sea_orm(string_value = "manual")]
    Manual,
}

impl ShippingMethod {
    pub fn code(self) -> &'static str {
        match self {
            ShippingMethod::RetiroTienda => "retiro_tienda",
            ShippingMethod::Chilexpress => "chilexpress",
            ShippingMethod::Starken => "starken",
            ShippingMethod::Manual => "manual",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "retiro_tienda" => ShippingMethod::RetiroTienda,
            "chilexpress" => ShippingMethod::Chilexpress,
            "starken" => ShippingMethod::Starken,
            "manual" => ShippingMethod::Manual,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping_price_cents: i64,
    pub total_cents: i64,
    pub coupon_id: Option<i64>,
    pub payment_provider: Option<String>,
    pub payment_ref: Option<String>,
    pub shipping_method: ShippingMethod,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub shipping_address: Option<Json>,
    pub shipping_address_id: Option<i64>,
    pub courier: Option<String>,
    pub tracking_number: Option<String>,
    pub estimated_delivery_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl OrderStatus {
    /// The statuses of an order whose money was taken (sales figures count them; a review
    /// needs one of them).
    pub const SOLD: [OrderStatus; 3] = [
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Failed => "failed",
        }
    }

    /// The lifecycle of spec §6: pending → paid → shipped → delivered; pending → failed | cancelled;
    /// paid → cancelled; failed → pending (only by a new payment). cancelled and delivered are final.
    pub fn can_transition_to(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Pending, Paid)
                | (Pending, Failed)
                | (Pending, Cancelled)
                | (Paid, Shipped)
                | (Paid, Cancelled)
                | (Shipped, Delivered)
                | (Failed, Pending)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};
    use sea_orm::Iterable;

    #[test]
    fn every_transition_allowed_or_not() {
        let allowed = [
            (Pending, Paid),
            (Pending, Failed),
            (Pending, Cancelled),
            (Paid, Shipped),
            (Paid, Cancelled),
            (Shipped, Delivered),
            (Failed, Pending),
        ];
        for from in OrderStatus::iter() {
            for to in OrderStatus::iter() {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }
}
