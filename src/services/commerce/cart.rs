//! The server-side cart: one per customer, lines priced at the current price with availability.

use std::collections::HashMap;

use async_graphql::InputObject;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::{cart, cart_item, category, product, product_variant};
use crate::error::{AppError, AppResult, FieldIssue};
use crate::services::commerce::inventory;
use crate::services::medicinal::gate;
use crate::state::AppState;

/// The most units of one variant in one cart line.
pub const MAX_LINE_QUANTITY: i64 = 999;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"variantId": 1, "quantity": 2}))]
pub struct CartItemInput {
    pub variant_id: i64,
    /// 0 removes the line.
    pub quantity: i64,
}

/// A purchasable variant with its product and category.
#[derive(Debug, Clone)]
pub struct Sellable {
    pub variant: product_variant::Model,
    pub product: product::Model,
    pub category: category::Model,
}

impl Sellable {
    pub fn is_on_sale(&self) -> bool {
        self.variant.is_active && self.product.is_active && self.category.is_active
    }
}

/// Loads variants with their product and category in two queries.
pub async fn load_sellables<C: ConnectionTrait>(
    conn: &C,
    variant_ids: &[i64],
) -> AppResult<HashMap<i64, Sellable>> {
    let pairs = product_variant::Entity::find()
        .filter(product_variant::Column::Id.is_in(variant_ids.iter().copied()))
        .find_also_related(product::Entity)
        .all(conn)
        .await?;
    let category_ids: Vec<i64> = pairs
        .iter()
        .filter_map(|(_, p)| p.as_ref().map(|p| p.category_id))
        .collect();
    let categories: HashMap<i64, category::Model> = category::Entity::find()
        .filter(category::Column::Id.is_in(category_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    Ok(pairs
        .into_iter()
        .filter_map(|(variant, p)| {
            let product = p?;
            let category = categories.get(&product.category_id)?.clone();
            Some((
                variant.id,
                Sellable {
                    variant,
                    product,
                    category,
                },
            ))
        })
        .collect())
}

/// A variant the viewer may buy: on sale (else `not_found`) and, if medicinal, allowed by the gate.
pub fn ensure_buyable(s: Option<&Sellable>, access: bool, field: &str) -> AppResult<()> {
    let s = s.filter(|s| s.is_on_sale()).ok_or_else(|| {
        AppError::not_found("Variant").with_details(vec![FieldIssue::new(field, "not_found")])
    })?;
    gate::ensure_purchasable(access, s.category.is_medicinal, field)
}

pub struct CartLine {
    pub sellable: Sellable,
    pub quantity: i64,
    pub available: i64,
}

pub struct CartView {
    pub id: Option<i64>,
    pub lines: Vec<CartLine>,
    pub warnings: Vec<String>,
}

impl CartView {
    pub fn subtotal_cents(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| l.quantity * l.sellable.variant.price_cents)
            .sum()
    }
}

async fn find_cart<C: ConnectionTrait>(conn: &C, user_id: i64) -> AppResult<Option<cart::Model>> {
    Ok(cart::Entity::find()
        .filter(cart::Column::UserId.eq(user_id))
        .one(conn)
        .await?)
}

/// The customer's cart lines (variant id, quantity), oldest first.
pub async fn lines_of<C: ConnectionTrait>(conn: &C, user_id: i64) -> AppResult<Vec<(i64, i64)>> {
    let Some(c) = find_cart(conn, user_id).await? else {
        return Ok(Vec::new());
    };
    Ok(cart_item::Entity::find()
        .filter(cart_item::Column::CartId.eq(c.id))
        .order_by_asc(cart_item::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|i| (i.variant_id, i64::from(i.quantity)))
        .collect())
}

pub async fn view(st: &AppState, ctx: &RequestCtx) -> AppResult<CartView> {
    let me = ctx.require_user()?;
    let Some(c) = find_cart(&st.db, me.id).await? else {
        return Ok(CartView {
            id: None,
            lines: Vec::new(),
            warnings: Vec::new(),
        });
    };
    let items = lines_of(&st.db, me.id).await?;
    let ids: Vec<i64> = items.iter().map(|(v, _)| *v).collect();
    let sellables = load_sellables(&st.db, &ids).await?;
    let variants: Vec<product_variant::Model> =
        sellables.values().map(|s| s.variant.clone()).collect();
    let available = inventory::available(&st.db, &variants, st.clock.now()).await?;
    let access = gate::has_access(st, &st.db, ctx).await?;
    let mut warnings = Vec::new();
    let mut lines = Vec::new();
    for (variant_id, quantity) in items {
        let Some(s) = sellables.get(&variant_id).cloned() else {
            continue;
        };
        let avail = available.get(&variant_id).copied().unwrap_or(0);
        if !s.is_on_sale() || (s.category.is_medicinal && !access) {
            warnings.push(format!(
                "{} ({}) is no longer available",
                s.product.name, s.variant.option_label
            ));
        } else if avail < quantity {
            warnings.push(format!(
                "Only {avail} of {} ({}) available",
                s.product.name, s.variant.option_label
            ));
        }
        lines.push(CartLine {
            sellable: s,
            quantity,
            available: avail,
        });
    }
    Ok(CartView {
        id: Some(c.id),
        lines,
        warnings,
    })
}

/// `POST /api/cart`: creates the customer's cart, or returns the existing one.
pub async fn open(st: &AppState, ctx: &RequestCtx) -> AppResult<CartView> {
    let me = ctx.require_user()?;
    let txn = begin_write(&st.db).await?;
    ensure_cart(&txn, me.id, st.clock.now()).await?;
    txn.commit().await?;
    view(st, ctx).await
}

async fn ensure_cart<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<cart::Model> {
    // Created if absent by the database (a concurrent opening waits for the other's insert and
    // does nothing), then taken for the rest of the transaction, so one customer's cart writes
    // queue on it and each sees the lines the one before wrote.
    let inserted = cart::Entity::insert(cart::ActiveModel {
        user_id: Set(user_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(cart::Column::UserId)
            .do_nothing()
            .to_owned(),
    )
    .exec(conn)
    .await;
    match inserted {
        Ok(_) | Err(DbErr::RecordNotInserted) => {}
        Err(e) => return Err(e.into()),
    }
    crate::db::for_update(
        cart::Entity::find().filter(cart::Column::UserId.eq(user_id)),
        conn.get_database_backend(),
    )
    .one(conn)
    .await?
    .ok_or_else(|| AppError::internal("the cart just ensured is missing"))
}

pub async fn set_item(
    st: &AppState,
    ctx: &RequestCtx,
    input: CartItemInput,
) -> AppResult<CartView> {
    let me = ctx.require_user()?;
    if !(0..=MAX_LINE_QUANTITY).contains(&input.quantity) {
        return Err(AppError::invalid(
            "quantity",
            "out_of_range",
            format!("quantity must be between 0 and {MAX_LINE_QUANTITY}"),
        ));
    }
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let c = ensure_cart(&txn, me.id, now).await?;
    let existing = cart_item::Entity::find()
        .filter(cart_item::Column::CartId.eq(c.id))
        .filter(cart_item::Column::VariantId.eq(input.variant_id))
        .one(&txn)
        .await?;
    if input.quantity == 0 {
        if let Some(line) = existing {
            cart_item::Entity::delete_by_id(line.id).exec(&txn).await?;
        }
    } else {
        let sellables = load_sellables(&txn, &[input.variant_id]).await?;
        let s = sellables.get(&input.variant_id);
        ensure_buyable(s, gate::has_access(st, &txn, ctx).await?, "variantId")?;
        let s = s.ok_or_else(|| AppError::not_found("Variant"))?;
        let avail = inventory::available(&txn, std::slice::from_ref(&s.variant), now)
            .await?
            .get(&input.variant_id)
            .copied()
            .unwrap_or(0);
        if input.quantity > avail {
            return Err(AppError::invalid(
                "quantity",
                "insufficient_stock",
                format!(
                    "Only {avail} unit(s) of {} ({}) are available",
                    s.product.name, s.variant.option_label
                ),
            ));
        }
        match existing {
            Some(line) => {
                let mut am: cart_item::ActiveModel = line.into();
                am.quantity = Set(input.quantity as i32);
                am.updated_at = Set(now);
                am.update(&txn).await?;
            }
            None => {
                cart_item::ActiveModel {
                    cart_id: Set(c.id),
                    variant_id: Set(input.variant_id),
                    quantity: Set(input.quantity as i32),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&txn)
                .await?;
            }
        }
    }
    let mut am: cart::ActiveModel = c.into();
    am.updated_at = Set(now);
    am.update(&txn).await?;
    txn.commit().await?;
    view(st, ctx).await
}

/// Empties the customer's cart.
pub async fn clear<C: ConnectionTrait>(conn: &C, user_id: i64) -> AppResult<()> {
    if let Some(c) = find_cart(conn, user_id).await? {
        cart_item::Entity::delete_many()
            .filter(cart_item::Column::CartId.eq(c.id))
            .exec(conn)
            .await?;
    }
    Ok(())
}

pub async fn empty(st: &AppState, ctx: &RequestCtx) -> AppResult<bool> {
    let me = ctx.require_user()?;
    clear(&st.db, me.id).await?;
    Ok(true)
}
