//! Coupons: validity rules and the discount they give.
//!
//! **A coupon use is held from checkout to the end of the order.** An order holds one use of its
//! coupon while it is `pending` (until it is paid, fails — payment failure or the payment timeout —
//! or is cancelled) and keeps it once `paid`, `shipped` or `delivered`. The stock hold lapsing does
//! not free the use. The paid transition claims the use again under the coupon row's lock
//! ([`claim_for_payment`]): a payment that would exceed a limit (a late payment on a failed order
//! whose use someone else took meanwhile, or a limit an admin lowered) is refused like a late
//! payment whose stock is gone — the order fails and the payment becomes `refund_required`, never
//! a silent extra discount. `used_count` is the number of orders holding a paid use: it grows on
//! paid and gives the use back when an admin cancels a paid order.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use crate::entities::coupon::{self, CouponType};
use crate::entities::order::{self, OrderStatus};
use crate::error::{AppError, AppResult};

/// Codes are matched case-insensitively and stored upper-case.
pub fn normalise_code(code: &str) -> String {
    code.trim().to_uppercase()
}

fn refuse(issue: &str, message: &str) -> AppError {
    AppError::invalid("couponCode", issue, message)
}

/// Order statuses whose coupon use is spent for good (until an admin cancels the order).
const PAID_USES: [OrderStatus; 3] = [
    OrderStatus::Paid,
    OrderStatus::Shipped,
    OrderStatus::Delivered,
];
/// Order statuses that hold a use: the paid ones and those still waiting for their payment.
const HELD_USES: [OrderStatus; 4] = [
    OrderStatus::Pending,
    OrderStatus::Paid,
    OrderStatus::Shipped,
    OrderStatus::Delivered,
];

/// Orders among `statuses` that use a coupon (optionally one user's), leaving `except` out.
async fn uses<C: ConnectionTrait>(
    conn: &C,
    coupon_id: i64,
    user_id: Option<i64>,
    statuses: &[OrderStatus],
    except: Option<i64>,
) -> AppResult<u64> {
    let mut q = order::Entity::find()
        .filter(order::Column::CouponId.eq(coupon_id))
        .filter(order::Column::Status.is_in(statuses.iter().copied()));
    if let Some(u) = user_id {
        q = q.filter(order::Column::UserId.eq(u));
    }
    if let Some(id) = except {
        q = q.filter(order::Column::Id.ne(id));
    }
    Ok(q.count(conn).await?)
}

/// Which limit, if any, a further use by `user_id` would exceed, counting other orders in
/// `statuses` (`except` is the order asking).
async fn exhausted<C: ConnectionTrait>(
    conn: &C,
    c: &coupon::Model,
    user_id: i64,
    statuses: &[OrderStatus],
    except: Option<i64>,
) -> AppResult<Option<&'static str>> {
    if let Some(limit) = c.usage_limit {
        if uses(conn, c.id, None, statuses, except).await? >= limit as u64 {
            return Ok(Some("usage_limit_reached"));
        }
    }
    if let Some(limit) = c.per_user_limit {
        if uses(conn, c.id, Some(user_id), statuses, except).await? >= limit as u64 {
            return Ok(Some("per_user_limit_reached"));
        }
    }
    Ok(None)
}

/// The coupon row, taken for update on PostgreSQL (SQLite's write transaction is exclusive).
async fn locked<C: ConnectionTrait>(conn: &C, id: i64) -> AppResult<Option<coupon::Model>> {
    let q = coupon::Entity::find_by_id(id);
    Ok(crate::db::for_update(q, conn.get_database_backend())
        .one(conn)
        .await?)
}

/// Locks the coupon with `code`, if there is one, for the rest of the transaction (PostgreSQL). A
/// checkout calls it before it locks its variants: coupons come before variants in the lock order.
pub async fn lock_code<C: ConnectionTrait>(conn: &C, code: &str) -> AppResult<()> {
    let q = coupon::Entity::find().filter(coupon::Column::Code.eq(normalise_code(code)));
    crate::db::for_update(q, conn.get_database_backend())
        .one(conn)
        .await?;
    Ok(())
}

/// The paid transition's claim on the order's coupon, inside its transaction and under the coupon
/// row's lock. A pending order already holds its use, so only other paid uses can stand in its
/// way; a failed order (a late payment) gave its use up and must find one free of every other
/// holder. `Err(issue)` names the limit that is gone.
pub async fn claim_for_payment<C: ConnectionTrait>(
    conn: &C,
    o: &order::Model,
) -> AppResult<Result<(), &'static str>> {
    let Some(cid) = o.coupon_id else {
        return Ok(Ok(()));
    };
    let Some(c) = locked(conn, cid).await? else {
        return Ok(Ok(()));
    };
    let others: &[OrderStatus] = if o.status == OrderStatus::Pending {
        &PAID_USES
    } else {
        &HELD_USES
    };
    Ok(
        match exhausted(conn, &c, o.user_id, others, Some(o.id)).await? {
            Some(issue) => Err(issue),
            None => Ok(()),
        },
    )
}

/// The order was paid (`+1`, after [`claim_for_payment`]) or an admin cancelled a paid order
/// (`-1`, the use given back): its coupon's `used_count` moves by `delta`, never below zero.
pub async fn count_use<C: ConnectionTrait>(
    conn: &C,
    o: &order::Model,
    delta: i32,
) -> AppResult<()> {
    let Some(cid) = o.coupon_id else {
        return Ok(());
    };
    let mut q = coupon::Entity::update_many()
        .col_expr(
            coupon::Column::UsedCount,
            Expr::col(coupon::Column::UsedCount).add(delta),
        )
        .filter(coupon::Column::Id.eq(cid));
    if delta < 0 {
        q = q.filter(coupon::Column::UsedCount.gte(-delta));
    }
    q.exec(conn).await?;
    Ok(())
}

/// A failed order taken back to pending by a new payment holds its coupon use again: refused
/// (`conflict` on `couponCode`) when other orders hold every use meanwhile.
pub async fn hold_again<C: ConnectionTrait>(conn: &C, o: &order::Model) -> AppResult<()> {
    let Some(cid) = o.coupon_id else {
        return Ok(());
    };
    let Some(c) = locked(conn, cid).await? else {
        return Ok(());
    };
    match exhausted(conn, &c, o.user_id, &HELD_USES, Some(o.id)).await? {
        Some(issue) => Err(AppError::conflict_field(
            "couponCode",
            issue,
            "This order's coupon has been used up meanwhile; place a new order",
        )),
        None => Ok(()),
    }
}

/// The coupon and the discount it gives on `subtotal_cents`, or a `validation_error` on
/// `couponCode` saying why not (unknown, inactive, not_started, expired, min_order_not_met,
/// usage_limit_reached, per_user_limit_reached). `lock` takes the coupon row for update (PostgreSQL).
pub async fn evaluate<C: ConnectionTrait>(
    conn: &C,
    code: &str,
    user_id: i64,
    subtotal_cents: i64,
    now: DateTime<Utc>,
    lock: bool,
) -> AppResult<(coupon::Model, i64)> {
    let mut q = coupon::Entity::find().filter(coupon::Column::Code.eq(normalise_code(code)));
    if lock {
        q = crate::db::for_update(q, conn.get_database_backend());
    }
    let c = q
        .one(conn)
        .await?
        .ok_or_else(|| refuse("unknown", "No coupon with this code"))?;
    if !c.is_active {
        return Err(refuse("inactive", "This coupon is not active"));
    }
    if c.starts_at.is_some_and(|s| now < s) {
        return Err(refuse("not_started", "This coupon is not valid yet"));
    }
    if c.ends_at.is_some_and(|e| now >= e) {
        return Err(refuse("expired", "This coupon has expired"));
    }
    if subtotal_cents < c.min_order_cents {
        return Err(refuse(
            "min_order_not_met",
            &format!(
                "This coupon needs a subtotal of at least {} CLP",
                c.min_order_cents
            ),
        ));
    }
    match exhausted(conn, &c, user_id, &HELD_USES, None).await? {
        Some(issue @ "per_user_limit_reached") => {
            return Err(refuse(issue, "You have already used this coupon"))
        }
        Some(issue) => return Err(refuse(issue, "This coupon has been used up")),
        None => {}
    }
    let discount = discount_for(c.coupon_type, c.value, subtotal_cents);
    Ok((c, discount))
}

/// Percent rounds half up to whole pesos; never more than the subtotal.
pub fn discount_for(kind: CouponType, value: i64, subtotal_cents: i64) -> i64 {
    let d = match kind {
        CouponType::Percent => (subtotal_cents * value + 50) / 100,
        CouponType::Fixed => value,
    };
    d.clamp(0, subtotal_cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_caps() {
        assert_eq!(discount_for(CouponType::Percent, 10, 4990), 499);
        assert_eq!(
            discount_for(CouponType::Percent, 15, 4990),
            749,
            "748.5 rounds half up"
        );
        assert_eq!(discount_for(CouponType::Percent, 100, 4990), 4990);
        assert_eq!(
            discount_for(CouponType::Fixed, 10_000, 4990),
            4990,
            "never above the subtotal"
        );
        assert_eq!(normalise_code(" verano10 "), "VERANO10");
    }
}

// ---- Admin management -------------------------------------------------------------------------

use async_graphql::{InputObject, MaybeUndefined};
use sea_orm::{QueryOrder, Set};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::error::Issues;
use crate::services::platform::events::DomainEvent;
use crate::services::platform::pagination::Page;
use crate::services::platform::row_write::{self, Cached};
use crate::services::platform::unique::ensure_free;
use crate::state::AppState;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"code": "VERANO10", "type": "percent", "value": 10, "minOrderCents": 20000,
    "startsAt": "2026-12-01T00:00:00Z", "endsAt": "2027-03-01T00:00:00Z", "usageLimit": 500, "perUserLimit": 1}))]
pub struct CouponInput {
    /// 3–40 letters, digits, `-` or `_`; matched case-insensitively.
    pub code: String,
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub coupon_type: CouponType,
    /// Percent 1–100, or whole pesos.
    pub value: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_order_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<crate::domain::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<crate::domain::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"isActive": false}))]
pub struct UpdateCouponInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_order_cents: Option<i64>,
    /// `null` removes the start.
    #[serde(default, skip_serializing_if = "MaybeUndefined::is_undefined")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: MaybeUndefined<crate::domain::Timestamp>,
    /// `null` removes the end.
    #[serde(default, skip_serializing_if = "MaybeUndefined::is_undefined")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: MaybeUndefined<crate::domain::Timestamp>,
    #[serde(default, skip_serializing_if = "MaybeUndefined::is_undefined")]
    #[schema(value_type = Option<i64>)]
    pub usage_limit: MaybeUndefined<i64>,
    #[serde(default, skip_serializing_if = "MaybeUndefined::is_undefined")]
    #[schema(value_type = Option<i64>)]
    pub per_user_limit: MaybeUndefined<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

/// Coupon code length (after trimming) and its characters (stored upper-case).
pub const CODE_LEN: (usize, usize) = (3, 40);
/// Percent coupons give 1–100 %; fixed ones 1 peso up to this.
pub const PERCENT_RANGE: (i64, i64) = (1, 100);
pub const FIXED_MAX: i64 = 1_000_000_000;
/// Usage limits are positive and fit the database column.
pub const LIMIT_MAX: i64 = i32::MAX as i64;

fn check_value(kind: CouponType, value: i64, issues: &mut Issues) {
    let ok = match kind {
        CouponType::Percent => (PERCENT_RANGE.0..=PERCENT_RANGE.1).contains(&value),
        CouponType::Fixed => (1..=FIXED_MAX).contains(&value),
    };
    if !ok {
        issues.push("value", "out_of_range");
    }
}

fn check_limit(field: &str, v: Option<i64>, issues: &mut Issues) -> Option<i32> {
    match v {
        Some(n) if !(1..=LIMIT_MAX).contains(&n) => {
            issues.push(field, "out_of_range");
            None
        }
        Some(n) => Some(n as i32),
        None => None,
    }
}

fn check_window(starts: Option<DateTime<Utc>>, ends: Option<DateTime<Utc>>, issues: &mut Issues) {
    if let (Some(s), Some(e)) = (starts, ends) {
        if e <= s {
            issues.push("endsAt", "before_start");
        }
    }
}

pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    page: Page,
) -> AppResult<(Vec<coupon::Model>, u64)> {
    ctx.require_admin()?;
    let base = coupon::Entity::find();
    let total = base.clone().count(&st.db).await?;
    let items = base
        .order_by_desc(coupon::Column::Id)
        .offset(page.offset())
        .limit(page.page_size)
        .all(&st.db)
        .await?;
    Ok((items, total))
}

pub async fn create(
    st: &AppState,
    ctx: &RequestCtx,
    input: CouponInput,
) -> AppResult<coupon::Model> {
    ctx.require_admin()?;
    let mut issues = Issues::default();
    let code = normalise_code(&input.code);
    if !(CODE_LEN.0..=CODE_LEN.1).contains(&code.len())
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        issues.push("code", "invalid_format");
    }
    check_value(input.coupon_type, input.value, &mut issues);
    let min = input.min_order_cents.unwrap_or(0);
    if min < 0 {
        issues.push("minOrderCents", "negative");
    }
    let usage = check_limit("usageLimit", input.usage_limit, &mut issues);
    let per_user = check_limit("perUserLimit", input.per_user_limit, &mut issues);
    let (starts, ends) = (input.starts_at.map(|t| t.0), input.ends_at.map(|t| t.0));
    check_window(starts, ends, &mut issues);
    issues.finish()?;
    let now = st.clock.now();
    let w = row_write::begin_create(st, ctx, Cached::Nothing).await?;
    ensure_free::<coupon::Entity, _>(
        &w.txn,
        coupon::Column::Code,
        &code,
        None,
        "code",
        "A coupon with this code already exists",
    )
    .await?;
    let created = w
        .insert(coupon::ActiveModel {
            code: Set(code),
            coupon_type: Set(input.coupon_type),
            value: Set(input.value),
            min_order_cents: Set(min),
            starts_at: Set(starts),
            ends_at: Set(ends),
            usage_limit: Set(usage),
            per_user_limit: Set(per_user),
            used_count: Set(0),
            is_active: Set(input.is_active.unwrap_or(true)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .await?;
    let event = DomainEvent::CouponCreated {
        id: created.id,
        code: created.code.clone(),
    };
    w.created(created, event).await
}

pub async fn update(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: UpdateCouponInput,
) -> AppResult<coupon::Model> {
    let w = row_write::open::<coupon::Entity>(st, ctx, id, "Coupon", Cached::Nothing, None).await?;
    let current = &w.current;
    let mut issues = Issues::default();
    let mut am: coupon::ActiveModel = current.clone().into();
    if let Some(v) = input.value {
        check_value(current.coupon_type, v, &mut issues);
        am.value = Set(v);
    }
    if let Some(m) = input.min_order_cents {
        if m < 0 {
            issues.push("minOrderCents", "negative");
        }
        am.min_order_cents = Set(m);
    }
    let starts = match input.starts_at {
        MaybeUndefined::Value(t) => Some(t.0),
        MaybeUndefined::Null => None,
        MaybeUndefined::Undefined => current.starts_at,
    };
    let ends = match input.ends_at {
        MaybeUndefined::Value(t) => Some(t.0),
        MaybeUndefined::Null => None,
        MaybeUndefined::Undefined => current.ends_at,
    };
    check_window(starts, ends, &mut issues);
    am.starts_at = Set(starts);
    am.ends_at = Set(ends);
    match input.usage_limit {
        MaybeUndefined::Value(v) => {
            // Paid uses cannot be taken back: the limit never goes below them.
            if (1..i64::from(current.used_count)).contains(&v) {
                issues.push("usageLimit", "below_used_count");
            }
            am.usage_limit = Set(check_limit("usageLimit", Some(v), &mut issues))
        }
        MaybeUndefined::Null => am.usage_limit = Set(None),
        MaybeUndefined::Undefined => {}
    }
    match input.per_user_limit {
        MaybeUndefined::Value(v) => {
            am.per_user_limit = Set(check_limit("perUserLimit", Some(v), &mut issues))
        }
        MaybeUndefined::Null => am.per_user_limit = Set(None),
        MaybeUndefined::Undefined => {}
    }
    if let Some(a) = input.is_active {
        am.is_active = Set(a);
    }
    issues.finish()?;
    w.update(am, &[], &[], |changes, c| DomainEvent::CouponUpdated {
        id,
        code: c.code.clone(),
        changes,
    })
    .await
}

/// Deletes an unused coupon; one that orders refer to is deactivated instead (204 either way).
pub async fn delete(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<bool> {
    let w =
        row_write::open_to_remove::<coupon::Entity>(st, ctx, id, "Coupon", Cached::Nothing, None)
            .await?;
    let used = order::Entity::find()
        .filter(order::Column::CouponId.eq(id))
        .count(&w.txn)
        .await?
        > 0;
    let code = w.current.code.clone();
    w.remove(used, |outcome| DomainEvent::CouponDeleted {
        id,
        code,
        outcome,
    })
    .await
}
