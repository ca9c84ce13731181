//! The payment core: starting and confirming payments, and applying a provider's outcome exactly
//! once — the paid transition decrements stock, consumes reservations and counts the coupon in one
//! transaction; a wrong amount fails the payment and leaves the order alone; a late payment whose
//! stock is gone fails the order and marks the payment `refund_required`.

pub(crate) mod claim;
pub mod flow;
pub mod http;
pub mod mp;
mod providers;
pub mod reconcile;
pub mod test_provider;
pub mod webpay;

use async_graphql::InputObject;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::{begin_write, for_update, retry_contended};
use crate::entities::order::{self, OrderStatus};
use crate::entities::payment;
use crate::entities::payment::{PaymentStatus, Provider};
use crate::error::{AppError, AppResult};
use crate::services::commerce::coupons;
use crate::services::commerce::inventory;
use crate::services::commerce::orders::{refund_job_key, transition};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::idempotency;
use crate::state::AppState;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"orderId": 12, "provider": "test"}))]
pub struct StartPaymentInput {
    pub order_id: i64,
    /// webpay, flow, mp or test.
    pub provider: String,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"orderId": 12, "provider": "test", "params": {"mock": "paid"}}))]
pub struct ConfirmPaymentInput {
    pub order_id: i64,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Provider-specific return parameters (the test provider reads `mock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub params: Option<async_graphql::Json<Value>>,
}

#[derive(Serialize, Deserialize)]
pub struct Started {
    pub provider: Provider,
    pub provider_txn_id: String,
    pub payment_ref: String,
    pub redirect_url: Option<String>,
    pub init_payload: Option<Value>,
}

/// What a provider says about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Paid {
        amount_cents: i64,
        auth_code: Option<String>,
    },
    Failed {
        reason: String,
    },
    Pending,
}

/// How an outcome was applied (also the webhook metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Paid,
    Failed,
    Pending,
    /// The payment had already reached a final state: nothing changed.
    Duplicate,
    AmountMismatch,
    /// Paid, but the order could not be fulfilled (stock gone, or cancelled): refund needed.
    RefundRequired,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Paid => "applied",
            Applied::Failed => "failed",
            Applied::Pending => "pending",
            Applied::Duplicate => "duplicate",
            Applied::AmountMismatch => "amount_mismatch",
            Applied::RefundRequired => "refund_required",
        }
    }
}

/// `ORD-<orderId>-<yyyymmddHHMMSS>` (≤ 26 characters, Webpay's buy_order limit).
pub fn payment_ref(order_id: i64, now: DateTime<Utc>) -> String {
    format!("ORD-{order_id}-{}", now.format("%Y%m%d%H%M%S"))
}

/// `startPayment`, honouring the request's `Idempotency-Key` (a retry returns the same redirect).
pub async fn start_once(
    st: &AppState,
    ctx: &RequestCtx,
    input: StartPaymentInput,
) -> AppResult<Started> {
    idempotency::once(st, ctx, "payments.start", input, |i| start(st, ctx, i)).await
}

/// `confirmPayment`, honouring the request's `Idempotency-Key`.
pub async fn confirm_once(
    st: &AppState,
    ctx: &RequestCtx,
    input: ConfirmPaymentInput,
) -> AppResult<Confirmation> {
    idempotency::once(st, ctx, "payments.confirm", input, |i| confirm(st, ctx, i)).await
}

pub async fn start(
    st: &AppState,
    ctx: &RequestCtx,
    input: StartPaymentInput,
) -> AppResult<Started> {
    let me = ctx.require_user()?;
    let provider = Provider::usable(st, &input.provider)?;
    let now = st.clock.now();
    // The provider is called before the write transaction, so no provider call ever holds row
    // locks; the order is checked again inside the transaction.
    let o = order::Entity::find_by_id(input.order_id)
        .one(&st.db)
        .await?
        .filter(|o| o.user_id == me.id)
        .ok_or_else(|| AppError::not_found("Order"))?;
    payable(&o)?;
    let reference = payment_ref(o.id, now);
    let started = provider.start(st, &o, &reference, &me.email).await?;
    let txn = begin_write(&st.db).await?;
    // The order first (then, for a failed one, its coupon and its variants): the lock order.
    let mut o = for_update(
        order::Entity::find_by_id(input.order_id),
        txn.get_database_backend(),
    )
    .one(&txn)
    .await?
    .filter(|o| o.user_id == me.id)
    .ok_or_else(|| AppError::not_found("Order"))?;
    payable(&o)?;
    if o.status == OrderStatus::Failed {
        coupons::hold_again(&txn, &o).await?;
        let expires = now + chrono::Duration::seconds(st.config.store.reservation_ttl_seconds);
        inventory::reserve_again(&txn, o.id, expires, now).await?;
        o = transition(st, &txn, ctx, &o, OrderStatus::Pending, "new_payment").await?;
    }
    payment::ActiveModel {
        order_id: Set(o.id),
        provider: Set(provider),
        provider_txn_id: Set(started.provider_txn_id.clone()),
        status: Set(PaymentStatus::Initiated),
        amount_cents: Set(o.total_cents),
        auth_code: Set(None),
        idempotency_key: Set(ctx.idempotency_key.clone()),
        raw_payload: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut am: order::ActiveModel = o.clone().into();
    am.payment_provider = Set(Some(provider.as_str().to_string()));
    am.payment_ref = Set(Some(reference.clone()));
    am.updated_at = Set(now);
    am.update(&txn).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::PaymentStarted {
            id: o.id,
            provider: provider.as_str().to_string(),
            payment_ref: reference.clone(),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Started {
        provider,
        payment_ref: reference,
        ..started
    })
}

/// An order a payment may be started for: pending, or failed (its stock is reserved again).
fn payable(o: &order::Model) -> AppResult<()> {
    match o.status {
        OrderStatus::Pending | OrderStatus::Failed => Ok(()),
        other => Err(AppError::conflict_field(
            "orderId",
            "invalid_state",
            format!("An order that is {} cannot be paid", other.as_str()),
        )),
    }
}

/// A payment by provider and the provider's transaction id (token, preference id).
pub async fn by_txn(
    st: &AppState,
    provider: Provider,
    txn_id: &str,
) -> AppResult<Option<payment::Model>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::Provider.eq(provider))
        .filter(payment::Column::ProviderTxnId.eq(txn_id))
        .one(&st.db)
        .await?)
}

/// The latest payment with `provider` of the order whose payment reference (`orders.payment_ref`:
/// Webpay's `buy_order`, Mercado Pago's `external_reference`) is `reference`.
pub async fn by_order_ref(
    st: &AppState,
    provider: Provider,
    reference: &str,
) -> AppResult<Option<payment::Model>> {
    let Some(o) = order::Entity::find()
        .filter(order::Column::PaymentRef.eq(reference))
        .one(&st.db)
        .await?
    else {
        return Ok(None);
    };
    latest_payment(&st.db, o.id, provider).await
}

/// The latest payment of the caller's order with a provider.
async fn latest_payment<C: ConnectionTrait>(
    conn: &C,
    order_id: i64,
    provider: Provider,
) -> AppResult<Option<payment::Model>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::OrderId.eq(order_id))
        .filter(payment::Column::Provider.eq(provider))
        .order_by_desc(payment::Column::Id)
        .one(conn)
        .await?)
}

#[derive(Serialize, Deserialize)]
pub struct Confirmation {
    pub status: String,
    pub order_id: i64,
    pub payment_ref: Option<String>,
    pub auth_code: Option<String>,
}

pub async fn confirm(
    st: &AppState,
    ctx: &RequestCtx,
    input: ConfirmPaymentInput,
) -> AppResult<Confirmation> {
    let me = ctx.require_user()?;
    let provider = Provider::usable(st, &input.provider)?;
    let o = order::Entity::find_by_id(input.order_id)
        .one(&st.db)
        .await?
        .filter(|o| o.user_id == me.id)
        .ok_or_else(|| AppError::not_found("Order"))?;
    let p = latest_payment(&st.db, o.id, provider)
        .await?
        .ok_or_else(|| {
            AppError::conflict_field(
                "orderId",
                "no_payment",
                "No payment was started for this order",
            )
        })?;
    let params = input.params.map(|j| j.0).unwrap_or(Value::Null);
    let payment_id = provider
        .confirm(st, ctx, &o, &p, input.token.as_deref(), params)
        .await?;
    let p = payment::Entity::find_by_id(payment_id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Payment"))?;
    let o = order::Entity::find_by_id(o.id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Order"))?;
    Ok(Confirmation {
        status: p.status.as_str().to_string(),
        order_id: o.id,
        payment_ref: o.payment_ref,
        auth_code: p.auth_code,
    })
}

async fn set_payment<C: ConnectionTrait>(
    conn: &C,
    p: &payment::Model,
    status: PaymentStatus,
    auth_code: Option<String>,
    raw: &Value,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    if !p.status.can_transition_to(status) {
        return Ok(false);
    }
    // Compare-and-set on the previous status: two deliveries cannot both apply.
    let r = payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(status))
        .col_expr(
            payment::Column::AuthCode,
            Expr::value(auth_code.or_else(|| p.auth_code.clone())),
        )
        .col_expr(payment::Column::RawPayload, Expr::value(raw.clone()))
        .col_expr(payment::Column::UpdatedAt, Expr::value(now))
        .filter(payment::Column::Id.eq(p.id))
        .filter(payment::Column::Status.eq(p.status))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Applies a provider outcome to a payment in a transaction of its own (see [`apply_outcome`]),
/// run again when it loses to a concurrent one (see [`retry_contended`]).
pub async fn apply_now(
    st: &AppState,
    ctx: &RequestCtx,
    payment_id: i64,
    outcome: Outcome,
    raw: Value,
) -> AppResult<Applied> {
    retry_contended(&st.metrics, || async {
        let _catalogue = st.catalogue.writing();
        let txn = begin_write(&st.db).await?;
        let applied =
            apply_outcome(st, &txn, ctx, payment_id, outcome.clone(), raw.clone()).await?;
        txn.commit().await?;
        Ok(applied)
    })
    .await
}

/// Applies a provider outcome to a payment inside the caller's write transaction. Idempotent: a
/// payment already in a final state is left alone (`Duplicate`).
pub async fn apply_outcome(
    st: &AppState,
    conn: &DatabaseTransaction,
    ctx: &RequestCtx,
    payment_id: i64,
    outcome: Outcome,
    raw: Value,
) -> AppResult<Applied> {
    let now = st.clock.now();
    // Lock order: the payment, then its order (then the coupon and the variants, in `fulfil`).
    let backend = conn.get_database_backend();
    let p = for_update(payment::Entity::find_by_id(payment_id), backend)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("Payment"))?;
    if p.status.is_final() {
        return Ok(Applied::Duplicate);
    }
    let o = for_update(order::Entity::find_by_id(p.order_id), backend)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("Order"))?;
    let applied = match outcome {
        Outcome::Pending => {
            set_payment(conn, &p, PaymentStatus::Pending, None, &raw, now).await?;
            Applied::Pending
        }
        Outcome::Failed { reason } => {
            if !set_payment(conn, &p, PaymentStatus::Failed, None, &raw, now).await? {
                return Ok(Applied::Duplicate);
            }
            if o.status == OrderStatus::Pending {
                transition(
                    st,
                    conn,
                    ctx,
                    &o,
                    OrderStatus::Failed,
                    &format!("payment_failed: {reason}"),
                )
                .await?;
            }
            Applied::Failed
        }
        Outcome::Paid {
            amount_cents,
            auth_code,
        } if amount_cents != p.amount_cents || amount_cents != o.total_cents => {
            if !set_payment(conn, &p, PaymentStatus::Failed, auth_code, &raw, now).await? {
                return Ok(Applied::Duplicate);
            }
            tracing::warn!(
                orderId = o.id,
                expected = o.total_cents,
                received = amount_cents,
                "payment amount mismatch"
            );
            events::record(
                conn,
                st,
                ctx,
                DomainEvent::PaymentAmountMismatch {
                    id: p.id,
                    order_id: o.id,
                    expected_cents: o.total_cents,
                    received_cents: amount_cents,
                },
            )
            .await?;
            Applied::AmountMismatch
        }
        Outcome::Paid { auth_code, .. } => {
            if !set_payment(conn, &p, PaymentStatus::Paid, auth_code.clone(), &raw, now).await? {
                return Ok(Applied::Duplicate);
            }
            fulfil(st, conn, ctx, &p, &o, auth_code, &raw, now).await?
        }
    };
    st.metrics
        .payments
        .with_label_values(&[p.provider.as_str(), applied.as_str()])
        .inc();
    events::record(
        conn,
        st,
        ctx,
        DomainEvent::PaymentOutcome {
            id: p.id,
            order_id: o.id,
            outcome: applied.as_str().to_string(),
        },
    )
    .await?;
    Ok(applied)
}

/// The paid transition: order → paid by compare-and-set, stock decremented (guarded), reservations
/// consumed, the coupon counted. When the stock is gone (a late payment) or the order can no longer
/// be paid, the order fails and the payment becomes `refund_required`.
#[allow(clippy::too_many_arguments)]
async fn fulfil(
    st: &AppState,
    conn: &DatabaseTransaction,
    ctx: &RequestCtx,
    p: &payment::Model,
    o: &order::Model,
    auth_code: Option<String>,
    raw: &Value,
    now: DateTime<Utc>,
) -> AppResult<Applied> {
    let refund = |reason: &'static str| async move {
        let paid = payment::Model {
            status: PaymentStatus::Paid,
            ..p.clone()
        };
        set_payment(
            conn,
            &paid,
            PaymentStatus::RefundRequired,
            auth_code.clone(),
            raw,
            now,
        )
        .await?;
        events::record(
            conn,
            st,
            ctx,
            DomainEvent::RefundRequired {
                id: p.id,
                order_id: o.id,
                reason: reason.to_string(),
            },
        )
        .await?;
        st.metrics.refund_required.inc();
        Ok::<_, AppError>(Applied::RefundRequired)
    };
    if !matches!(o.status, OrderStatus::Pending | OrderStatus::Failed) {
        return refund("order_not_payable").await;
    }
    // The coupon first (its row lock comes before the variants', as in checkout): a payment that
    // would exceed its limits is refused like one whose stock is gone.
    if let Err(issue) = coupons::claim_for_payment(conn, o).await? {
        if o.status == OrderStatus::Pending {
            transition(st, conn, ctx, o, OrderStatus::Failed, "coupon_used_up").await?;
        }
        tracing::warn!(
            orderId = o.id,
            issue,
            "payment for an order whose coupon is used up"
        );
        return refund("coupon_used_up").await;
    }
    let Some(taking) = inventory::hold_for_payment(conn, o.id, now).await? else {
        if o.status == OrderStatus::Pending {
            transition(st, conn, ctx, o, OrderStatus::Failed, "paid_without_stock").await?;
        }
        return refund("stock_gone").await;
    };
    let o = if o.status == OrderStatus::Failed {
        transition(st, conn, ctx, o, OrderStatus::Pending, "late_payment").await?
    } else {
        o.clone()
    };
    transition(st, conn, ctx, &o, OrderStatus::Paid, "payment").await?;
    let threshold = st.config.store.low_stock_threshold;
    for low in taking.take(conn, now, threshold).await? {
        events::record(
            conn,
            st,
            ctx,
            DomainEvent::StockLow {
                id: low.variant_id,
                product_id: low.product_id,
                stock: low.stock,
                threshold,
            },
        )
        .await?;
    }
    coupons::count_use(conn, &o, 1).await?;
    Ok(Applied::Paid)
}

#[derive(Debug, Default, Clone)]
pub struct PaymentFilter {
    pub provider: Option<String>,
    pub status: Option<String>,
    pub date_from: Option<DateTime<Utc>>,
    pub date_to: Option<DateTime<Utc>>,
}

/// Admin: payments, newest first.
pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    f: PaymentFilter,
    page: crate::services::platform::pagination::Page,
) -> AppResult<(Vec<payment::Model>, u64)> {
    ctx.require_scope(crate::domain::Scope::OrdersRead)?;
    let mut q = payment::Entity::find();
    // Every filter is read before any answers: an unknown status is 400 whatever the provider.
    if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty()) {
        let status = PaymentStatus::parse(s).ok_or_else(|| {
            AppError::invalid("status", "invalid_value", "Unknown payment status")
        })?;
        q = q.filter(payment::Column::Status.eq(status));
    }
    if let Some(p) = f.provider.as_deref().filter(|p| !p.is_empty()) {
        match Provider::parse(p) {
            Some(p) => q = q.filter(payment::Column::Provider.eq(p)),
            // No payment has an unknown provider.
            None => return Ok((Vec::new(), 0)),
        }
    }
    if let Some(d) = f.date_from {
        q = q.filter(payment::Column::CreatedAt.gte(d));
    }
    if let Some(d) = f.date_to {
        q = q.filter(payment::Column::CreatedAt.lte(d));
    }
    let q = q
        .order_by_desc(payment::Column::CreatedAt)
        .order_by_desc(payment::Column::Id);
    page.fetch(&st.db, q).await
}

/// A paid order was cancelled (the reaction to its `order.status_changed`, in the cancellation's
/// transaction): its paid payments become `refund_required` and the `payments.refund` job that
/// asks the provider for the money back is enqueued with the change, so a crash after the commit
/// cannot lose it. Records no event of its own.
pub(crate) async fn owe_refund<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    ctx: &RequestCtx,
    order_id: i64,
) -> AppResult<()> {
    let now = st.clock.now();
    let r = payment::Entity::update_many()
        .col_expr(
            payment::Column::Status,
            Expr::value(PaymentStatus::RefundRequired),
        )
        .col_expr(payment::Column::UpdatedAt, Expr::value(now))
        .filter(payment::Column::OrderId.eq(order_id))
        .filter(payment::Column::Status.eq(PaymentStatus::Paid))
        .exec(conn)
        .await?;
    for _ in 0..r.rows_affected {
        st.metrics.refund_required.inc();
    }
    if r.rows_affected > 0 {
        use crate::services::platform::jobs;
        let refund = jobs::NewJob::of::<RefundCancelled>(&RefundPayload {
            order_id,
            actor_user_id: ctx.user_id(),
            trace_id: ctx.trace_id.clone(),
        })?
        .unique(refund_job_key(order_id));
        jobs::enqueue(conn, now, refund).await?;
    }
    Ok(())
}

/// The `payments.refund` job, enqueued in the transaction of an admin's cancellation of a paid
/// order (so a crash after that commit cannot lose it) and run right after the commit by the
/// request itself when this process runs jobs, else by any runner: asks the provider to refund
/// each `refund_required` payment of the order where it has a refund API. A success makes the
/// payment `refunded`; a failure leaves it `refund_required` and the job is retried with backoff
/// (dead after its last attempt: a manual refund). Each outcome is audited on behalf of the admin.
pub struct RefundCancelled;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundPayload {
    pub order_id: i64,
    /// The admin who cancelled, named as actor of the refund's audit rows.
    pub actor_user_id: Option<i64>,
    /// The cancellation request's trace id.
    pub trace_id: String,
}

impl crate::services::platform::jobs::Job for RefundCancelled {
    const KIND: &'static str = "payments.refund";
    type Context = AppState;
    type Payload = RefundPayload;

    async fn run(
        &self,
        st: &AppState,
        p: RefundPayload,
    ) -> Result<(), crate::services::platform::jobs::JobError> {
        let ctx = RequestCtx::anonymous(p.trace_id, std::net::Ipv4Addr::LOCALHOST.into());
        let failed = refund_cancelled(st, &ctx, p.actor_user_id, p.order_id).await?;
        if failed > 0 {
            return Err(crate::services::platform::jobs::JobError::Retry(format!(
                "{failed} refund(s) of order {} failed; the payment stays refund_required",
                p.order_id
            )));
        }
        Ok(())
    }
}

/// Asks for the refunds of order `order_id`'s `refund_required` payments, outside any
/// transaction (see [`RefundCancelled`]); how many failed.
pub async fn refund_cancelled(
    st: &AppState,
    ctx: &RequestCtx,
    on_behalf_of: Option<i64>,
    order_id: i64,
) -> AppResult<usize> {
    let mut failed = 0;
    let due = payment::Entity::find()
        .filter(payment::Column::OrderId.eq(order_id))
        .filter(payment::Column::Status.eq(PaymentStatus::RefundRequired))
        .all(&st.db)
        .await?;
    for p in due {
        let Some(result) = p.provider.refund(st, &p).await? else {
            continue;
        };
        let _catalogue = st.catalogue.writing();
        let txn = begin_write(&st.db).await?;
        let event = match result {
            Ok(kind) => {
                let r = payment::Entity::update_many()
                    .col_expr(
                        payment::Column::Status,
                        Expr::value(PaymentStatus::Refunded),
                    )
                    .col_expr(payment::Column::UpdatedAt, Expr::value(st.clock.now()))
                    .filter(payment::Column::Id.eq(p.id))
                    .filter(payment::Column::Status.eq(PaymentStatus::RefundRequired))
                    .exec(&txn)
                    .await?;
                if r.rows_affected == 1 {
                    st.metrics
                        .payments
                        .with_label_values(&[p.provider.as_str(), PaymentStatus::Refunded.as_str()])
                        .inc();
                }
                DomainEvent::PaymentRefunded {
                    id: p.id,
                    order_id,
                    amount_cents: p.amount_cents,
                    kind: kind.to_string(),
                }
            }
            Err(e) => {
                failed += 1;
                DomainEvent::RefundFailed {
                    id: p.id,
                    order_id,
                    error: e.code.as_str().to_string(),
                }
            }
        };
        events::record_for(&txn, st, ctx, on_behalf_of, event).await?;
        txn.commit().await?;
    }
    Ok(failed)
}
