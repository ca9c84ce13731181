//! Admin analytics (spec §5): sales by day, top products, orders by status, low stock. Sales count
//! orders that were paid (paid, shipped, delivered). Results are the same on SQLite and
//! PostgreSQL: sums are cast to BIGINT, and days are bucketed in Rust from UTC timestamps.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ColumnTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationDef,
};

use crate::actor::RequestCtx;
use crate::entities::order::{self, OrderStatus};
use crate::entities::{order_item, product, product_variant};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// `salesByDay` days: default, minimum, maximum (also stated in the OpenAPI document).
pub const DAYS: (i64, i64, i64) = (30, 1, 366);
/// `topProducts` limit: default, minimum, maximum.
pub const TOP_LIMIT: (i64, i64, i64) = (10, 1, 100);
/// `lowStock` threshold: default, minimum, maximum.
pub const THRESHOLD: (i64, i64, i64) = (5, 0, 1_000_000);

fn bounded(field: &str, value: Option<i64>, default: i64, min: i64, max: i64) -> AppResult<i64> {
    let v = value.unwrap_or(default);
    if !(min..=max).contains(&v) {
        return Err(AppError::invalid(
            field,
            "out_of_range",
            format!("{field} must be between {min} and {max}"),
        ));
    }
    Ok(v)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesDay {
    pub date: NaiveDate,
    pub orders_count: i64,
    pub total_sales_cents: i64,
}

/// The last `days` days (UTC, today included), every day present, zeros where nothing sold.
pub async fn sales_by_day(
    st: &AppState,
    ctx: &RequestCtx,
    days: Option<i64>,
) -> AppResult<Vec<SalesDay>> {
    ctx.require_admin()?;
    let days = bounded("days", days, DAYS.0, DAYS.1, DAYS.2)?;
    let today = st.clock.now().date_naive();
    let first = today - Duration::days(days - 1);
    let since: DateTime<Utc> = first.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let rows: Vec<(DateTime<Utc>, i64)> = order::Entity::find()
        .select_only()
        .column(order::Column::CreatedAt)
        .column(order::Column::TotalCents)
        .filter(order::Column::Status.is_in(OrderStatus::SOLD))
        .filter(order::Column::CreatedAt.gte(since))
        .into_tuple()
        .all(&st.db)
        .await?;
    let mut out: Vec<SalesDay> = (0..days)
        .map(|i| SalesDay {
            date: first + Duration::days(i),
            orders_count: 0,
            total_sales_cents: 0,
        })
        .collect();
    for (at, total) in rows {
        let i = (at.date_naive() - first).num_days();
        if let Some(day) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            day.orders_count += 1;
            day.total_sales_cents += total;
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopProduct {
    pub product_id: i64,
    pub product_name: String,
    pub units_sold: i64,
    pub revenue_cents: i64,
}

fn item_order() -> RelationDef {
    order_item::Entity::belongs_to(order::Entity)
        .from(order_item::Column::OrderId)
        .to(order::Column::Id)
        .into()
}

/// The best sellers by units (then revenue), over every sold order.
pub async fn top_products(
    st: &AppState,
    ctx: &RequestCtx,
    limit: Option<i64>,
) -> AppResult<Vec<TopProduct>> {
    ctx.require_admin()?;
    let limit = bounded("limit", limit, TOP_LIMIT.0, TOP_LIMIT.1, TOP_LIMIT.2)?;
    let rows: Vec<(i64, i64, i64)> = order_item::Entity::find()
        .select_only()
        .column(order_item::Column::ProductId)
        .column_as(
            Expr::cust("CAST(SUM(order_items.quantity) AS BIGINT)"),
            "units_sold",
        )
        .column_as(
            Expr::cust("CAST(SUM(order_items.line_total_cents) AS BIGINT)"),
            "revenue_cents",
        )
        .join(JoinType::InnerJoin, item_order())
        .filter(order::Column::Status.is_in(OrderStatus::SOLD))
        .group_by(order_item::Column::ProductId)
        .order_by(Expr::cust("units_sold"), Order::Desc)
        .order_by(Expr::cust("revenue_cents"), Order::Desc)
        .order_by_asc(order_item::Column::ProductId)
        .limit(limit as u64)
        .into_tuple()
        .all(&st.db)
        .await?;
    let names: std::collections::HashMap<i64, String> = product::Entity::find()
        .filter(product::Column::Id.is_in(rows.iter().map(|r| r.0)))
        .all(&st.db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    Ok(rows
        .into_iter()
        .map(|(product_id, units_sold, revenue_cents)| TopProduct {
            product_name: names.get(&product_id).cloned().unwrap_or_default(),
            product_id,
            units_sold,
            revenue_cents,
        })
        .collect())
}

/// How many orders are in each status (every status listed, zeros included).
pub async fn orders_by_status(
    st: &AppState,
    ctx: &RequestCtx,
) -> AppResult<Vec<(OrderStatus, i64)>> {
    use sea_orm::Iterable;
    ctx.require_admin()?;
    let rows: Vec<(OrderStatus, i64)> = order::Entity::find()
        .select_only()
        .column(order::Column::Status)
        .column_as(Expr::cust("COUNT(*)"), "count")
        .group_by(order::Column::Status)
        .into_tuple()
        .all(&st.db)
        .await?;
    Ok(OrderStatus::iter()
        .map(|s| {
            let n = rows.iter().find(|(r, _)| *r == s).map_or(0, |(_, n)| *n);
            (s, n)
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowStock {
    pub variant_id: i64,
    pub product_id: i64,
    pub product: String,
    pub option_label: String,
    pub sku: String,
    pub stock: i32,
}

/// Active variants of active products with `stock <= threshold`, fewest first.
pub async fn low_stock(
    st: &AppState,
    ctx: &RequestCtx,
    threshold: Option<i64>,
) -> AppResult<Vec<LowStock>> {
    ctx.require_scope(crate::domain::Scope::ProductsRead)?;
    let threshold = bounded(
        "threshold",
        threshold,
        THRESHOLD.0,
        THRESHOLD.1,
        THRESHOLD.2,
    )?;
    let rows = product_variant::Entity::find()
        .find_also_related(product::Entity)
        .filter(product_variant::Column::IsActive.eq(true))
        .filter(product::Column::IsActive.eq(true))
        .filter(product_variant::Column::Stock.lte(threshold))
        .order_by_asc(product_variant::Column::Stock)
        .order_by_asc(product_variant::Column::Id)
        .all(&st.db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(v, p)| {
            p.map(|p| LowStock {
                variant_id: v.id,
                product_id: p.id,
                product: p.name,
                option_label: v.option_label,
                sku: v.sku,
                stock: v.stock,
            })
        })
        .collect())
}
