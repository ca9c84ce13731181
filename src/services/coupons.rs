//! Coupons: validity rules and the discount they give. Usage counts paid (and later) orders plus
//! pending orders that still hold live stock reservations.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use crate::entities::coupon::{self, CouponType};
use crate::entities::order::{self, OrderStatus};
use crate::entities::stock_reservation;
use crate::error::{AppError, AppResult};
use crate::services::stock::ACTIVE;

/// Codes are matched case-insensitively and stored upper-case.
pub fn normalise_code(code: &str) -> String {
    code.trim().to_uppercase()
}

fn refuse(issue: &str, message: &str) -> AppError {
    AppError::invalid("couponCode", issue, message)
}

/// Orders that count against a coupon's limits (optionally one user's).
async fn uses<C: ConnectionTrait>(
    conn: &C,
    coupon_id: i64,
    user_id: Option<i64>,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let live_reservation = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(stock_reservation::Entity)
            .and_where(
                Expr::col((
                    stock_reservation::Entity,
                    stock_reservation::Column::OrderId,
                ))
                .equals((order::Entity, order::Column::Id)),
            )
            .and_where(
                Expr::col((stock_reservation::Entity, stock_reservation::Column::State)).eq(ACTIVE),
            )
            .and_where(
                Expr::col((
                    stock_reservation::Entity,
                    stock_reservation::Column::ExpiresAt,
                ))
                .gt(now),
            )
            .to_owned(),
    );
    let mut q = order::Entity::find()
        .filter(order::Column::CouponId.eq(coupon_id))
        .filter(
            Condition::any()
                .add(order::Column::Status.is_in([
                    OrderStatus::Paid,
                    OrderStatus::Shipped,
                    OrderStatus::Delivered,
                ]))
                .add(
                    Condition::all()
                        .add(order::Column::Status.eq(OrderStatus::Pending))
                        .add(live_reservation),
                ),
        );
    if let Some(u) = user_id {
        q = q.filter(order::Column::UserId.eq(u));
    }
    Ok(q.count(conn).await?)
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
        q = q.lock_exclusive();
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
    if let Some(limit) = c.usage_limit {
        if uses(conn, c.id, None, now).await? >= limit as u64 {
            return Err(refuse(
                "usage_limit_reached",
                "This coupon has been used up",
            ));
        }
    }
    if let Some(limit) = c.per_user_limit {
        if uses(conn, c.id, Some(user_id), now).await? >= limit as u64 {
            return Err(refuse(
                "per_user_limit_reached",
                "You have already used this coupon",
            ));
        }
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
