//! Inventory: the one owner of stock. Checkout, payments and orders change stock only through
//! here.
//!
//! Available stock = stock − live reservations (active and not yet expired). Expiry is applied at
//! query time, so a lapsed reservation stops counting the instant it lapses. A checkout reserves
//! its lines; a payment takes them (the guarded decrement, consuming the reservations); a failed or
//! cancelled unpaid order releases them; a cancelled paid order restocks them. Every writer locks
//! the variants it touches in id order first (PostgreSQL `FOR UPDATE`; SQLite's write transaction
//! is already exclusive), so concurrent buyers of the same units queue instead of overselling or
//! deadlocking.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use crate::db::for_update;
use crate::entities::stock_reservation::ReservationState;
use crate::entities::{order_item, product_variant, stock_reservation};
use crate::error::{AppError, AppResult};
use crate::services::catalog::variants::falls_low;

/// Units held by live reservations, per variant.
pub async fn reserved<C: ConnectionTrait>(
    conn: &C,
    variant_ids: &[i64],
    now: DateTime<Utc>,
) -> AppResult<HashMap<i64, i64>> {
    if variant_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, Option<i64>)> = stock_reservation::Entity::find()
        .select_only()
        .column(stock_reservation::Column::VariantId)
        .column_as(
            Expr::from(Func::sum(Expr::col(stock_reservation::Column::Quantity))),
            "held",
        )
        .filter(stock_reservation::Column::VariantId.is_in(variant_ids.iter().copied()))
        .filter(stock_reservation::Column::State.eq(ReservationState::Active))
        .filter(stock_reservation::Column::ExpiresAt.gt(now))
        .group_by(stock_reservation::Column::VariantId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(v, held)| (v, held.unwrap_or(0)))
        .collect())
}

/// Units a buyer may still take, per variant (never negative).
pub async fn available<C: ConnectionTrait>(
    conn: &C,
    variants: &[product_variant::Model],
    now: DateTime<Utc>,
) -> AppResult<HashMap<i64, i64>> {
    let ids: Vec<i64> = variants.iter().map(|v| v.id).collect();
    let held = reserved(conn, &ids, now).await?;
    Ok(variants
        .iter()
        .map(|v| {
            (
                v.id,
                Ord::max(
                    i64::from(v.stock) - held.get(&v.id).copied().unwrap_or(0),
                    0,
                ),
            )
        })
        .collect())
}

/// Loads variants `ids` in id order, locking them for the rest of the transaction on PostgreSQL.
pub async fn lock<C: ConnectionTrait>(
    conn: &C,
    mut ids: Vec<i64>,
) -> AppResult<Vec<product_variant::Model>> {
    ids.sort_unstable();
    ids.dedup();
    let q = product_variant::Entity::find()
        .filter(product_variant::Column::Id.is_in(ids))
        .order_by_asc(product_variant::Column::Id);
    Ok(for_update(q, conn.get_database_backend()).all(conn).await?)
}

/// Holds `lines` (variant, quantity) for order `order_id` until `expires`.
pub async fn reserve<C: ConnectionTrait>(
    conn: &C,
    order_id: i64,
    lines: &[(i64, i32)],
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    for &(variant_id, quantity) in lines {
        stock_reservation::ActiveModel {
            order_id: Set(order_id),
            variant_id: Set(variant_id),
            quantity: Set(quantity),
            expires_at: Set(expires),
            state: Set(ReservationState::Active),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(conn)
        .await?;
    }
    Ok(())
}

/// The lines of order `order_id`.
async fn lines_of<C: ConnectionTrait>(
    conn: &C,
    order_id: i64,
) -> AppResult<Vec<order_item::Model>> {
    Ok(order_item::Entity::find()
        .filter(order_item::Column::OrderId.eq(order_id))
        .all(conn)
        .await?)
}

/// Reserves a failed order's lines again (a new payment attempt), or refuses with `conflict`
/// when any of them is no longer available.
pub async fn reserve_again<C: ConnectionTrait>(
    conn: &C,
    order_id: i64,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let items = lines_of(conn, order_id).await?;
    let variants = lock(conn, items.iter().map(|i| i.variant_id).collect()).await?;
    let available = available(conn, &variants, now).await?;
    if items
        .iter()
        .any(|i| available.get(&i.variant_id).copied().unwrap_or(0) < i64::from(i.quantity))
    {
        return Err(AppError::conflict_field(
            "orderId",
            "insufficient_stock",
            "The order's stock is no longer available",
        ));
    }
    let lines: Vec<(i64, i32)> = items.iter().map(|i| (i.variant_id, i.quantity)).collect();
    reserve(conn, order_id, &lines, expires, now).await
}

/// The units a payment for order `order_id` would take, locked; `None` when the stock is gone
/// (units held by other orders' live reservations are not ours to take).
pub async fn hold_for_payment<C: ConnectionTrait>(
    conn: &C,
    order_id: i64,
    now: DateTime<Utc>,
) -> AppResult<Option<Taking>> {
    let items = lines_of(conn, order_id).await?;
    let variants = lock(conn, items.iter().map(|i| i.variant_id).collect()).await?;
    let held = reserved(
        conn,
        &variants.iter().map(|v| v.id).collect::<Vec<_>>(),
        now,
    )
    .await?;
    let own: Vec<stock_reservation::Model> = stock_reservation::Entity::find()
        .filter(stock_reservation::Column::OrderId.eq(order_id))
        .filter(stock_reservation::Column::State.eq(ReservationState::Active))
        .filter(stock_reservation::Column::ExpiresAt.gt(now))
        .all(conn)
        .await?;
    let enough = items.iter().all(|i| {
        let v = variants.iter().find(|v| v.id == i.variant_id);
        let mine: i64 = own
            .iter()
            .filter(|r| r.variant_id == i.variant_id)
            .map(|r| i64::from(r.quantity))
            .sum();
        let others = held.get(&i.variant_id).copied().unwrap_or(0) - mine;
        v.is_some_and(|v| i64::from(v.stock) - others >= i64::from(i.quantity))
    });
    let before = variants
        .iter()
        .map(|v| (v.id, (v.product_id, v.stock)))
        .collect();
    Ok(enough.then_some(Taking {
        order_id,
        items,
        before,
    }))
}

/// A paid order's units, locked and known to be there (see [`hold_for_payment`]).
pub struct Taking {
    order_id: i64,
    items: Vec<order_item::Model>,
    /// Each variant's product and stock before the decrement.
    before: HashMap<i64, (i64, i32)>,
}

/// A variant whose stock fell from above the low-stock threshold to it or below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowStock {
    pub variant_id: i64,
    pub product_id: i64,
    pub stock: i32,
}

impl Taking {
    /// The guarded decrement: each line's stock goes down (never below zero, else an internal
    /// error rolls the payment back) and the order's reservations are consumed. Answers the
    /// variants that fell to `threshold` or below.
    pub async fn take<C: ConnectionTrait>(
        self,
        conn: &C,
        now: DateTime<Utc>,
        threshold: i32,
    ) -> AppResult<Vec<LowStock>> {
        let mut stock = self.before.clone();
        for i in &self.items {
            let r = product_variant::Entity::update_many()
                .col_expr(
                    product_variant::Column::Stock,
                    Expr::col(product_variant::Column::Stock).sub(i.quantity),
                )
                .col_expr(product_variant::Column::UpdatedAt, Expr::value(now))
                .filter(product_variant::Column::Id.eq(i.variant_id))
                .filter(product_variant::Column::Stock.gte(i.quantity))
                .exec(conn)
                .await?;
            if r.rows_affected != 1 {
                return Err(AppError::internal(format!(
                    "stock decrement refused for variant {}",
                    i.variant_id
                )));
            }
            if let Some((_, s)) = stock.get_mut(&i.variant_id) {
                *s -= i.quantity;
            }
        }
        set_reservations(conn, self.order_id, ReservationState::Consumed, now).await?;
        let mut low: Vec<LowStock> = stock
            .into_iter()
            .filter(|(id, (_, after))| {
                self.before
                    .get(id)
                    .is_some_and(|(_, before)| falls_low(*before, *after, threshold))
            })
            .map(|(variant_id, (product_id, stock))| LowStock {
                variant_id,
                product_id,
                stock,
            })
            .collect();
        low.sort_by_key(|l| l.variant_id);
        Ok(low)
    }
}

/// Moves order `order_id`'s active reservations to `state`; how many.
async fn set_reservations<C: ConnectionTrait>(
    conn: &C,
    order_id: i64,
    state: ReservationState,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let r = stock_reservation::Entity::update_many()
        .col_expr(stock_reservation::Column::State, Expr::value(state))
        .col_expr(stock_reservation::Column::UpdatedAt, Expr::value(now))
        .filter(stock_reservation::Column::OrderId.eq(order_id))
        .filter(stock_reservation::Column::State.eq(ReservationState::Active))
        .exec(conn)
        .await?;
    Ok(r.rows_affected)
}

/// Releases the order's live reservations (an unpaid order failed or was cancelled).
pub async fn release<C: ConnectionTrait>(
    conn: &C,
    order_id: i64,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    set_reservations(conn, order_id, ReservationState::Released, now).await
}

/// Puts a paid order's units back on the shelf (it was cancelled), its variants locked in id order
/// first like every other writer's.
pub async fn restock<C: ConnectionTrait>(
    conn: &C,
    order_id: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let items = lines_of(conn, order_id).await?;
    lock(conn, items.iter().map(|i| i.variant_id).collect()).await?;
    for item in items {
        product_variant::Entity::update_many()
            .col_expr(
                product_variant::Column::Stock,
                Expr::col(product_variant::Column::Stock).add(item.quantity),
            )
            .col_expr(product_variant::Column::UpdatedAt, Expr::value(now))
            .filter(product_variant::Column::Id.eq(item.variant_id))
            .exec(conn)
            .await?;
    }
    Ok(())
}
