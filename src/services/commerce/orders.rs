//! Orders: the lifecycle state machine (one function for every path), the customer's and the
//! admin's order views, tracking, and the expiry sweep of unpaid orders.

use async_graphql::InputObject;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    JoinType, QueryFilter, QueryOrder, QuerySelect, RelationDef, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::{begin_write, for_update};
use crate::domain::Timestamp;
use crate::entities::order::{self, OrderStatus};
use crate::entities::payment;
use crate::entities::user;
use crate::error::{AppError, AppResult};
use crate::services::commerce::inventory;
use crate::services::platform::date_range;
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::pagination::Page;
use crate::state::AppState;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"status": "shipped", "note": "Despachado por Starken"}))]
pub struct UpdateOrderStatusInput {
    pub status: OrderStatus,
    /// Kept in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"courier": "Starken", "trackingNumber": "ST123456789CL", "estimatedDeliveryAt": "2026-11-25T18:00:00Z"}))]
pub struct TrackingInput {
    pub courier: String,
    pub tracking_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub estimated_delivery_at: Option<Timestamp>,
}

#[derive(Debug, Default, Clone)]
pub struct AdminOrderFilter {
    pub status: Option<OrderStatus>,
    pub payment_provider: Option<String>,
    pub date_from: Option<DateTime<Utc>>,
    pub date_to: Option<DateTime<Utc>>,
    /// A customer email (part of it), an order id or a payment reference.
    pub q: Option<String>,
}

fn invalid_transition(from: OrderStatus, to: OrderStatus) -> AppError {
    AppError::conflict_field(
        "status",
        "invalid_transition",
        format!(
            "An order cannot go from {} to {}",
            from.as_str(),
            to.as_str()
        ),
    )
}

/// The one way an order changes status: checks the lifecycle, compare-and-sets the status (a
/// concurrent change makes this a `conflict`), applies the side effects and writes the audit row.
pub async fn transition(
    st: &AppState,
    conn: &DatabaseTransaction,
    ctx: &RequestCtx,
    current: &order::Model,
    to: OrderStatus,
    reason: &str,
) -> AppResult<order::Model> {
    let from = current.status;
    if !from.can_transition_to(to) {
        return Err(invalid_transition(from, to));
    }
    let now = st.clock.now();
    let changed = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(to))
        .col_expr(order::Column::UpdatedAt, Expr::value(now))
        .filter(order::Column::Id.eq(current.id))
        .filter(order::Column::Status.eq(from))
        .exec(conn)
        .await?;
    if changed.rows_affected != 1 {
        return Err(AppError::conflict_field(
            "status",
            "concurrent_change",
            "The order changed meanwhile; reload it",
        ));
    }
    match (from, to) {
        (OrderStatus::Pending, OrderStatus::Cancelled | OrderStatus::Failed) => {
            inventory::release(conn, current.id, now).await?;
        }
        (OrderStatus::Paid, OrderStatus::Cancelled) => {
            // The lock order: the order (just updated), its coupon, then its variants.
            crate::services::commerce::coupons::count_use(conn, current, -1).await?;
            inventory::restock(conn, current.id, now).await?;
            // The money was taken: the `order.status_changed` event recorded below owes the
            // buyer a refund, in this transaction (see `composition::reactions`).
        }
        _ => {}
    }
    events::record_in(
        conn,
        st,
        ctx,
        DomainEvent::OrderStatusChanged {
            id: current.id,
            from: from.as_str().to_string(),
            to: to.as_str().to_string(),
            reason: reason.to_string(),
        },
    )
    .await?;
    st.metrics
        .order_transitions
        .with_label_values(&[from.as_str(), to.as_str()])
        .inc();
    order::Entity::find_by_id(current.id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("Order"))
}

/// An order the caller may see: their own, or any for an admin or an API key holding
/// `orders:read`. Others are `not_found`.
pub async fn visible<C: ConnectionTrait>(
    conn: &C,
    ctx: &RequestCtx,
    id: i64,
) -> AppResult<order::Model> {
    if ctx.api_key().is_some() {
        ctx.require_scope(crate::domain::Scope::OrdersRead)?;
        return order::Entity::find_by_id(id)
            .one(conn)
            .await?
            .ok_or_else(|| AppError::not_found("Order"));
    }
    let me = ctx.require_user()?;
    let found = order::Entity::find_by_id(id).one(conn).await?;
    match found {
        Some(o) if o.user_id == me.id || ctx.is_admin() => Ok(o),
        _ => Err(AppError::not_found("Order")),
    }
}

pub async fn list_own(
    st: &AppState,
    ctx: &RequestCtx,
    status: Option<OrderStatus>,
    page: Page,
) -> AppResult<(Vec<order::Model>, u64)> {
    let me = ctx.require_user()?;
    let mut q = order::Entity::find().filter(order::Column::UserId.eq(me.id));
    if let Some(s) = status {
        q = q.filter(order::Column::Status.eq(s));
    }
    let q = q
        .order_by_desc(order::Column::CreatedAt)
        .order_by_desc(order::Column::Id);
    page.fetch(&st.db, q).await
}

fn order_user() -> RelationDef {
    order::Entity::belongs_to(user::Entity)
        .from(order::Column::UserId)
        .to(user::Column::Id)
        .into()
}

pub async fn list_admin(
    st: &AppState,
    ctx: &RequestCtx,
    f: AdminOrderFilter,
    page: Page,
) -> AppResult<(Vec<order::Model>, u64)> {
    ctx.require_scope(crate::domain::Scope::OrdersRead)?;
    let dates = date_range::between(order::Column::CreatedAt, f.date_from, f.date_to)?;
    let mut cond = Condition::all().add(dates);
    if let Some(s) = f.status {
        cond = cond.add(order::Column::Status.eq(s));
    }
    if let Some(p) = f.payment_provider.as_deref().filter(|p| !p.is_empty()) {
        cond = cond.add(order::Column::PaymentProvider.eq(p));
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let mut any = Condition::any().add(order::Column::PaymentRef.eq(q)).add(
            Expr::col((user::Entity, user::Column::Email))
                .like(crate::services::platform::pagination::like_pattern(q)),
        );
        if let Ok(id) = q.trim_start_matches('#').parse::<i64>() {
            any = any.add(order::Column::Id.eq(id));
        }
        cond = cond.add(any);
    }
    let q = order::Entity::find()
        .join(JoinType::InnerJoin, order_user())
        .filter(cond)
        .order_by_desc(order::Column::CreatedAt)
        .order_by_desc(order::Column::Id);
    page.fetch(&st.db, q).await
}

/// The owner cancels a pending order; its reservations are released.
pub async fn cancel(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<order::Model> {
    let me = ctx.require_user()?;
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    let current = order::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .filter(|o| o.user_id == me.id)
        .ok_or_else(|| AppError::not_found("Order"))?;
    if current.status != OrderStatus::Pending {
        return Err(invalid_transition(current.status, OrderStatus::Cancelled));
    }
    let updated = transition(
        st,
        &txn,
        ctx,
        &current,
        OrderStatus::Cancelled,
        "cancelled_by_customer",
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Admin status change. `paid` only comes from a payment; `pending` only from a new payment.
pub async fn admin_update(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: UpdateOrderStatusInput,
) -> AppResult<order::Model> {
    ctx.require_scope(crate::domain::Scope::OrdersWrite)?;
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    // The lock order: the order's payments (a paid order's cancellation owes their refund), then
    // the order, its coupon and its variants (in `transition`).
    let backend = txn.get_database_backend();
    for_update(
        payment::Entity::find()
            .filter(payment::Column::OrderId.eq(id))
            .order_by_asc(payment::Column::Id),
        backend,
    )
    .all(&txn)
    .await?;
    let current = for_update(order::Entity::find_by_id(id), backend)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Order"))?;
    if matches!(input.status, OrderStatus::Paid | OrderStatus::Pending)
        && current.status != input.status
    {
        return Err(AppError::conflict_field(
            "status",
            "invalid_transition",
            format!(
                "An order becomes {} only through a payment",
                input.status.as_str()
            ),
        ));
    }
    let note = input
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("admin");
    let note: String = note.chars().take(500).collect();
    let updated = transition(st, &txn, ctx, &current, input.status, &note).await?;
    txn.commit().await?;
    if (current.status, updated.status) == (OrderStatus::Paid, OrderStatus::Cancelled)
        && st.config.jobs.enabled
    {
        // The refund job committed with the cancellation; this process runs it at once, outside
        // any transaction. A failure leaves the payment refund_required (audited) and the job to
        // its retries; it never undoes the cancellation.
        if let Err(e) =
            crate::services::platform::jobs::run_queued_now(st, &refund_job_key(id)).await
        {
            tracing::error!(orderId = id, error = %e.message, "refund after cancellation not run now; the job runner will");
        }
    }
    Ok(updated)
}

/// The unique key of order `id`'s refund job (an order is cancelled once).
pub fn refund_job_key(id: i64) -> String {
    format!("payments.refund:order:{id}")
}

/// Longest courier name and tracking number, in characters.
pub const COURIER_MAX: usize = 80;
pub const TRACKING_NUMBER_MAX: usize = 120;

pub async fn set_tracking(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: TrackingInput,
) -> AppResult<order::Model> {
    ctx.require_scope(crate::domain::Scope::OrdersWrite)?;
    let mut issues = crate::error::Issues::default();
    let courier = issues.take(crate::domain::parse_text(
        "courier",
        &input.courier,
        COURIER_MAX,
    ));
    let number = issues.take(crate::domain::parse_text(
        "trackingNumber",
        &input.tracking_number,
        TRACKING_NUMBER_MAX,
    ));
    issues.finish()?;
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    let current = order::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Order"))?;
    if matches!(current.status, OrderStatus::Cancelled | OrderStatus::Failed) {
        return Err(AppError::conflict_field(
            "status",
            "invalid_state",
            "A cancelled or failed order has no shipment",
        ));
    }
    let mut am: order::ActiveModel = current.into();
    am.courier = Set(courier);
    am.tracking_number = Set(number);
    if let Some(eta) = input.estimated_delivery_at {
        am.estimated_delivery_at = Set(Some(eta.0));
    }
    am.updated_at = Set(st.clock.now());
    let updated = am.update(&txn).await?;
    events::record(&txn, st, ctx, DomainEvent::OrderTrackingUpdated { id }).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Turns pending orders older than `PAYMENT_TIMEOUT_SECONDS` into `failed` and releases their
/// reservations. Each order changes by compare-and-set, so several instances may sweep at once.
pub async fn sweep_expired(st: &AppState) -> AppResult<u64> {
    let cutoff = st.clock.now() - Duration::seconds(st.config.payments.timeout_seconds);
    let ctx = RequestCtx::anonymous("sweeper".into(), std::net::Ipv4Addr::LOCALHOST.into());
    let stale = order::Entity::find()
        .filter(order::Column::Status.eq(OrderStatus::Pending))
        .filter(order::Column::CreatedAt.lt(cutoff))
        .order_by_asc(order::Column::Id)
        .limit(200)
        .all(&st.db)
        .await?;
    let mut failed = 0;
    for o in stale {
        let _catalogue = st.catalogue.writing();
        let txn = begin_write(&st.db).await?;
        match transition(st, &txn, &ctx, &o, OrderStatus::Failed, "payment_timeout").await {
            Ok(_) => {
                txn.commit().await?;
                failed += 1;
            }
            // Another instance (or a payment) got there first.
            Err(e) if e.code == crate::error::ErrorCode::Conflict => txn.rollback().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(failed)
}

/// The periodic `orders.expire_unpaid` job (every `SWEEP_INTERVAL_SECONDS`, once across processes).
pub struct ExpireUnpaid;

impl crate::services::platform::jobs::Periodic for ExpireUnpaid {
    const KIND: &'static str = "orders.expire_unpaid";
    type Context = AppState;

    async fn run(&self, st: &AppState) -> Result<(), crate::services::platform::jobs::JobError> {
        let n = sweep_expired(st).await?;
        if n > 0 {
            tracing::info!(failed = n, "expired unpaid orders");
        }
        Ok(())
    }
}
