//! Available stock = stock − live reservations (active and not yet expired). Expiry is applied
//! at query time, so a lapsed reservation stops counting the instant it lapses.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::entities::stock_reservation::ReservationState;
use crate::entities::{product_variant, stock_reservation};
use crate::error::AppResult;

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
                (i64::from(v.stock) - held.get(&v.id).copied().unwrap_or(0)).max(0),
            )
        })
        .collect())
}
