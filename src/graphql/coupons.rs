//! GraphQL for coupon administration.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::coupon::{self, CouponType};
use crate::entities::user::Role;
use crate::services::commerce::coupons::{self, CouponInput, UpdateCouponInput};
use crate::services::platform::pagination::Page;

#[derive(SimpleObject, Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 1, "code": "VERANO10", "type": "percent", "value": 10, "minOrderCents": 20000, "startsAt": null,
    "endsAt": "2027-03-01T00:00:00Z", "usageLimit": 500, "perUserLimit": 1, "usedCount": 0, "isActive": true,
    "createdAt": "2026-11-22T08:00:00Z", "updatedAt": "2026-11-22T08:00:00Z"}))]
pub struct Coupon {
    pub id: i64,
    pub code: String,
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub coupon_type: CouponType,
    pub value: i64,
    pub min_order_cents: i64,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub usage_limit: Option<i32>,
    pub per_user_limit: Option<i32>,
    /// Paid orders that used it.
    pub used_count: i32,
    pub is_active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<coupon::Model> for Coupon {
    fn from(c: coupon::Model) -> Self {
        Coupon {
            id: c.id,
            code: c.code,
            coupon_type: c.coupon_type,
            value: c.value,
            min_order_cents: c.min_order_cents,
            starts_at: c.starts_at.map(Into::into),
            ends_at: c.ends_at.map(Into::into),
            usage_limit: c.usage_limit,
            per_user_limit: c.per_user_limit,
            used_count: c.used_count,
            is_active: c.is_active,
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 1, "code": "VERANO10", "type": "percent", "value": 10}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct CouponPage {
    pub items: Vec<Coupon>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Default)]
pub struct CouponsQuery;

#[Object]
impl CouponsQuery {
    /// Admin: every coupon, newest first.
    #[graphql(
        guard = "RoleGuard(Role::Admin)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn coupons(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
    ) -> GqlResult<CouponPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (items, total) = coupons::list(st, rc, p).await?;
        Ok(CouponPage {
            items: items.into_iter().map(Coupon::from).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }
}

#[derive(Default)]
pub struct CouponsMutation;

#[Object]
impl CouponsMutation {
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn create_coupon(&self, ctx: &Context<'_>, input: CouponInput) -> GqlResult<Coupon> {
        let (st, rc) = parts(ctx);
        Ok(coupons::create(st, rc, input).await?.into())
    }

    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn update_coupon(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: UpdateCouponInput,
    ) -> GqlResult<Coupon> {
        let (st, rc) = parts(ctx);
        Ok(coupons::update(st, rc, id, input).await?.into())
    }

    /// Deletes an unused coupon, or deactivates one that orders refer to.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn delete_coupon(&self, ctx: &Context<'_>, id: i64) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        coupons::delete(st, rc, id).await
    }
}
