//! GraphQL for orders: the customer's own, the admin's view, cancellation, status and tracking.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::checkout::{Order, OrderDoc};
use super::guards::{CustomerOrScope, RoleGuard, ScopeGuard};
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::domain::Scope;
use crate::entities::order::OrderStatus;
use crate::entities::user::Role;
use crate::services::commerce::orders::{
    self, AdminOrderFilter, TrackingInput, UpdateOrderStatusInput,
};
use crate::services::platform::pagination::Page;

#[derive(SimpleObject)]
pub struct OrderPage {
    pub items: Vec<Order>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrderPage, example = json!({"items": [{"id": 12, "status": "pending", "totalCents": 13970}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct OrderPageDoc {
    pub items: Vec<OrderDoc>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

fn page_of(items: Vec<crate::entities::order::Model>, total: u64, p: Page) -> OrderPage {
    OrderPage {
        items: items.into_iter().map(Order::from).collect(),
        total,
        page: p.page,
        page_size: p.page_size,
    }
}

#[derive(Default)]
pub struct OrdersQuery;

#[Object]
impl OrdersQuery {
    /// The signed-in customer's orders, newest first.
    #[graphql(
        guard = "RoleGuard(Role::Customer)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        status: Option<OrderStatus>,
    ) -> GqlResult<OrderPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (items, total) = orders::list_own(st, rc, status, p).await?;
        Ok(page_of(items, total, p))
    }

    /// One order: the owner's or, for admins, anyone's.
    #[graphql(guard = "CustomerOrScope(Scope::OrdersRead)")]
    async fn order(&self, ctx: &Context<'_>, id: i64) -> GqlResult<Order> {
        let (st, rc) = parts(ctx);
        Ok(orders::visible(&st.db, rc, id).await?.into())
    }

    /// The PDF receipt of a paid (or shipped, delivered) order, base64-encoded; the owner's or,
    /// for admins, anyone's. Before payment it is a `conflict` with `issue: "not_paid"`.
    #[graphql(guard = "CustomerOrScope(Scope::OrdersRead)")]
    async fn order_invoice(&self, ctx: &Context<'_>, id: i64) -> GqlResult<String> {
        use base64::Engine;
        let (st, rc) = parts(ctx);
        let pdf = crate::services::commerce::receipts::for_order(st, rc, id).await?;
        Ok(base64::engine::general_purpose::STANDARD.encode(pdf))
    }

    /// Admin: every order, by status, provider, creation date range, or `q` (email, order id, payment ref).
    #[graphql(
        guard = "ScopeGuard(Scope::OrdersRead)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn admin_orders(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        status: Option<OrderStatus>,
        payment_provider: Option<String>,
        date_from: Option<Timestamp>,
        date_to: Option<Timestamp>,
        q: Option<String>,
    ) -> GqlResult<OrderPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let f = AdminOrderFilter {
            status,
            payment_provider,
            date_from: date_from.map(|t| t.0),
            date_to: date_to.map(|t| t.0),
            q,
        };
        let (items, total) = orders::list_admin(st, rc, f, p).await?;
        Ok(page_of(items, total, p))
    }
}

#[derive(Default)]
pub struct OrdersMutation;

#[Object]
impl OrdersMutation {
    /// The owner cancels a pending order; its stock reservations are released.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn cancel_order(&self, ctx: &Context<'_>, id: i64) -> GqlResult<Order> {
        let (st, rc) = parts(ctx);
        Ok(orders::cancel(st, rc, id).await?.into())
    }

    /// Admin: moves an order along its lifecycle (invalid transitions are `conflict`).
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn update_order_status(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: UpdateOrderStatusInput,
    ) -> GqlResult<Order> {
        let (st, rc) = parts(ctx);
        Ok(orders::admin_update(st, rc, id, input).await?.into())
    }

    /// Admin: courier, tracking number and estimated delivery.
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn update_order_tracking(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: TrackingInput,
    ) -> GqlResult<Order> {
        let (st, rc) = parts(ctx);
        Ok(orders::set_tracking(st, rc, id, input).await?.into())
    }
}
