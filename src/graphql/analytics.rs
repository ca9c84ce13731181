//! GraphQL for admin analytics.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::{RoleGuard, ScopeGuard};
use super::{parts, GqlResult};
use crate::domain::Scope;
use crate::entities::order::OrderStatus;
use crate::entities::user::Role;
use crate::services::commerce::analytics;

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SalesDay {
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    pub orders_count: i64,
    pub total_sales_cents: i64,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"days": 2, "ordersCount": 3, "totalSalesCents": 41940, "items": [
    {"date": "2026-11-22", "ordersCount": 0, "totalSalesCents": 0},
    {"date": "2026-11-23", "ordersCount": 3, "totalSalesCents": 41940}]}))]
pub struct SalesByDay {
    pub days: i64,
    pub orders_count: i64,
    pub total_sales_cents: i64,
    /// Oldest first; every day present.
    pub items: Vec<SalesDay>,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopProduct {
    pub product_id: i64,
    pub product_name: String,
    pub units_sold: i64,
    pub revenue_cents: i64,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"productId": 2, "productName": "White Widow Feminizada", "unitsSold": 7, "revenueCents": 41930}]}))]
pub struct TopProducts {
    pub items: Vec<TopProduct>,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCount {
    pub status: OrderStatus,
    pub count: i64,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"total": 5, "items": [{"status": "pending", "count": 2}, {"status": "paid", "count": 3},
    {"status": "shipped", "count": 0}, {"status": "delivered", "count": 0}, {"status": "cancelled", "count": 0}, {"status": "failed", "count": 0}]}))]
pub struct OrdersByStatus {
    pub total: i64,
    pub items: Vec<StatusCount>,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LowStockVariant {
    pub variant_id: i64,
    pub product_id: i64,
    /// The product's name.
    pub product: String,
    pub option_label: String,
    pub sku: String,
    pub stock: i32,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"threshold": 5, "items": [{"variantId": 12, "productId": 4, "product": "Flor THC:CBD Balanceada",
    "optionLabel": "10g", "sku": "BAL-FLOR-10G", "stock": 3}]}))]
pub struct LowStock {
    pub threshold: i64,
    pub items: Vec<LowStockVariant>,
}

#[derive(Default)]
pub struct AnalyticsQuery;

#[Object]
impl AnalyticsQuery {
    /// Admin: sales (paid, shipped and delivered orders) per UTC day over the last `days` (1–366, default 30).
    #[graphql(
        guard = "RoleGuard(Role::Admin)",
        complexity = "crate::graphql::limits::sized(days, analytics::DAYS.0, analytics::DAYS.2, child_complexity)"
    )]
    async fn sales_by_day(&self, ctx: &Context<'_>, days: Option<i64>) -> GqlResult<SalesByDay> {
        let (st, rc) = parts(ctx);
        let rows = analytics::sales_by_day(st, rc, days).await?;
        Ok(SalesByDay {
            days: rows.len() as i64,
            orders_count: rows.iter().map(|d| d.orders_count).sum(),
            total_sales_cents: rows.iter().map(|d| d.total_sales_cents).sum(),
            items: rows
                .into_iter()
                .map(|d| SalesDay {
                    date: d.date.format("%Y-%m-%d").to_string(),
                    orders_count: d.orders_count,
                    total_sales_cents: d.total_sales_cents,
                })
                .collect(),
        })
    }

    /// Admin: best sellers by units sold (then revenue); `limit` 1–100, default 10.
    #[graphql(
        guard = "RoleGuard(Role::Admin)",
        complexity = "crate::graphql::limits::sized(limit, analytics::TOP_LIMIT.0, analytics::TOP_LIMIT.2, child_complexity)"
    )]
    async fn top_products(&self, ctx: &Context<'_>, limit: Option<i64>) -> GqlResult<TopProducts> {
        let (st, rc) = parts(ctx);
        Ok(TopProducts {
            items: analytics::top_products(st, rc, limit)
                .await?
                .into_iter()
                .map(|t| TopProduct {
                    product_id: t.product_id,
                    product_name: t.product_name,
                    units_sold: t.units_sold,
                    revenue_cents: t.revenue_cents,
                })
                .collect(),
        })
    }

    /// Admin: the number of orders in each status.
    #[graphql(
        guard = "RoleGuard(Role::Admin)",
        complexity = "crate::graphql::limits::list(crate::graphql::limits::order_statuses(), child_complexity)"
    )]
    async fn orders_by_status(&self, ctx: &Context<'_>) -> GqlResult<OrdersByStatus> {
        let (st, rc) = parts(ctx);
        let rows = analytics::orders_by_status(st, rc).await?;
        Ok(OrdersByStatus {
            total: rows.iter().map(|(_, n)| n).sum(),
            items: rows
                .into_iter()
                .map(|(status, count)| StatusCount { status, count })
                .collect(),
        })
    }

    /// Admin: active variants with `stock <= threshold` (default 5), fewest first.
    #[graphql(
        guard = "ScopeGuard(Scope::ProductsRead)",
        complexity = "crate::graphql::limits::list(crate::graphql::limits::UNPAGINATED_LIST_SIZE, child_complexity)"
    )]
    async fn low_stock(&self, ctx: &Context<'_>, threshold: Option<i64>) -> GqlResult<LowStock> {
        let (st, rc) = parts(ctx);
        let threshold_used = threshold.unwrap_or(5);
        Ok(LowStock {
            items: analytics::low_stock(st, rc, threshold)
                .await?
                .into_iter()
                .map(|v| LowStockVariant {
                    variant_id: v.variant_id,
                    product_id: v.product_id,
                    product: v.product,
                    option_label: v.option_label,
                    sku: v.sku,
                    stock: v.stock,
                })
                .collect(),
            threshold: threshold_used,
        })
    }
}
