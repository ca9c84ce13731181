//! Shipping quotes, checkout preview and confirmation. Totals are computed by the server only;
//! confirmation re-validates everything and, in one transaction, creates the pending order and
//! reserves stock for every line — atomically, so racing buyers never reserve more than exists.

use std::collections::HashSet;

use async_graphql::InputObject;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::order::{OrderStatus, ShippingMethod};
use crate::entities::{order, order_item, product_variant};
use crate::error::{AppError, AppResult, FieldIssue};
use crate::services::accounts::addresses::{self, AddressInput, ValidAddress};
use crate::services::commerce::cart::{
    self, ensure_buyable, load_sellables, Sellable, MAX_LINE_QUANTITY,
};
use crate::services::commerce::shipping::{self, ShippingOption};
use crate::services::commerce::{coupons, inventory};
use crate::services::medicinal::gate;
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::idempotency;
use crate::state::AppState;

#[derive(InputObject, Deserialize, Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineInput {
    pub variant_id: i64,
    pub quantity: i64,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"address": {"addressLine": "Av. Providencia 1234", "comuna": "Providencia", "region": "RM"},
    "items": [{"variantId": 1, "quantity": 2}]}))]
pub struct QuoteInput {
    /// One of your saved addresses, or `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressInput>,
    pub items: Vec<LineInput>,
    /// Only this method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<ShippingMethod>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"addressId": 3, "shippingMethod": "chilexpress", "couponCode": "VERANO10"}))]
pub struct CheckoutInput {
    /// The lines to buy; without it, the server cart is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<LineInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressInput>,
    pub shipping_method: ShippingMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"code": "VERANO10", "items": [{"variantId": 1, "quantity": 2}]}))]
pub struct ApplyCouponInput {
    pub code: String,
    /// Without it, the server cart is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<LineInput>>,
}

pub struct PricedLine {
    pub sellable: Sellable,
    pub quantity: i64,
    pub available: i64,
}

impl PricedLine {
    pub fn unit_price(&self) -> i64 {
        self.sellable.variant.price_cents
    }

    pub fn line_total(&self) -> i64 {
        self.quantity * self.unit_price()
    }
}

pub struct Pricing {
    pub lines: Vec<PricedLine>,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping: ShippingOption,
    pub total_cents: i64,
    pub weight_grams: i64,
    pub address: ValidAddress,
    pub address_id: Option<i64>,
    pub coupon: Option<(i64, String)>,
    pub from_cart: bool,
    pub warnings: Vec<String>,
}

pub struct Quote {
    pub methods: Vec<ShippingOption>,
    pub best: Option<ShippingOption>,
    pub weight_grams: i64,
    pub subtotal_cents: i64,
    pub version: String,
}

/// Validates line inputs: non-empty, each quantity 1–999, no variant twice.
fn check_lines(items: &[LineInput]) -> AppResult<()> {
    if items.is_empty() {
        return Err(AppError::invalid(
            "items",
            "empty",
            "There is nothing to buy",
        ));
    }
    let mut issues = Vec::new();
    let mut seen = HashSet::new();
    for (i, l) in items.iter().enumerate() {
        if !(1..=MAX_LINE_QUANTITY).contains(&l.quantity) {
            issues.push(FieldIssue::new(
                format!("items[{i}].quantity"),
                "out_of_range",
            ));
        }
        if !seen.insert(l.variant_id) {
            issues.push(FieldIssue::new(
                format!("items[{i}].variantId"),
                "duplicate",
            ));
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(AppError::invalid_fields(issues))
    }
}

async fn resolve_address<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    address_id: Option<i64>,
    address: Option<&AddressInput>,
) -> AppResult<(ValidAddress, Option<i64>)> {
    match (address_id, address) {
        (Some(id), None) => {
            let a = addresses::own(conn, user_id, id).await.map_err(|_| {
                AppError::invalid(
                    "addressId",
                    "not_found",
                    "No such address in your address book",
                )
            })?;
            Ok((ValidAddress::from(&a), Some(id)))
        }
        (None, Some(a)) => {
            let valid = a
                .validate()
                .map_err(|e| crate::services::catalog::products::prefix_details(e, "address."))?;
            Ok((valid, None))
        }
        (Some(_), Some(_)) => Err(AppError::invalid(
            "address",
            "ambiguous",
            "Send either addressId or address, not both",
        )),
        (None, None) => Err(AppError::invalid(
            "addressId",
            "required",
            "An addressId or an address is required",
        )),
    }
}

/// Loads and checks the lines: each variant on sale and allowed for the viewer. Unknown variants
/// are field errors; a medicinal line without access is `forbidden`.
async fn priced_lines<C: ConnectionTrait>(
    st: &AppState,
    ctx: &RequestCtx,
    conn: &C,
    items: &[LineInput],
    now: DateTime<Utc>,
) -> AppResult<Vec<PricedLine>> {
    let ids: Vec<i64> = items.iter().map(|l| l.variant_id).collect();
    let sellables = load_sellables(conn, &ids).await?;
    let access = gate::has_access(st, conn, ctx).await?;
    let mut missing = Vec::new();
    for (i, l) in items.iter().enumerate() {
        let field = format!("items[{i}].variantId");
        match ensure_buyable(sellables.get(&l.variant_id), access, &field) {
            Ok(()) => {}
            Err(e) if e.code == crate::error::ErrorCode::NotFound => {
                missing.push(FieldIssue::new(field, "not_found"))
            }
            Err(e) => return Err(e),
        }
    }
    if !missing.is_empty() {
        return Err(AppError::invalid_fields(missing).with_message("Some items are not for sale"));
    }
    let variants: Vec<product_variant::Model> =
        sellables.values().map(|s| s.variant.clone()).collect();
    let available = inventory::available(conn, &variants, now).await?;
    Ok(items
        .iter()
        .filter_map(|l| {
            let s = sellables.get(&l.variant_id)?.clone();
            Some(PricedLine {
                available: available.get(&l.variant_id).copied().unwrap_or(0),
                sellable: s,
                quantity: l.quantity,
            })
        })
        .collect())
}

pub async fn quote(st: &AppState, ctx: &RequestCtx, input: QuoteInput) -> AppResult<Quote> {
    let me = ctx.require_user()?;
    check_lines(&input.items)?;
    let (address, _) =
        resolve_address(&st.db, me.id, input.address_id, input.address.as_ref()).await?;
    let lines = priced_lines(st, ctx, &st.db, &input.items, st.clock.now()).await?;
    let subtotal: i64 = lines.iter().map(PricedLine::line_total).sum();
    let weight: i64 = lines
        .iter()
        .map(|l| l.quantity * i64::from(l.sellable.variant.weight_grams))
        .sum();
    let mut methods = shipping::options(&address.region, weight, subtotal);
    if let Some(c) = input.courier {
        methods.retain(|m| m.code == c);
    }
    Ok(Quote {
        best: shipping::best(&methods),
        methods,
        weight_grams: weight,
        subtotal_cents: subtotal,
        version: shipping::RATES.version.clone(),
    })
}

/// Prices a checkout. `lock_coupon` re-reads the coupon under a row lock (confirmation).
async fn price<C: ConnectionTrait>(
    st: &AppState,
    ctx: &RequestCtx,
    conn: &C,
    input: &CheckoutInput,
    now: DateTime<Utc>,
    lock_coupon: bool,
) -> AppResult<Pricing> {
    let me = ctx.require_user()?;
    let (items, from_cart) = match &input.items {
        Some(items) => (items.clone(), false),
        None => {
            let lines = cart::lines_of(conn, me.id).await?;
            if lines.is_empty() {
                return Err(AppError::invalid(
                    "items",
                    "empty_cart",
                    "The cart is empty",
                ));
            }
            (
                lines
                    .into_iter()
                    .map(|(variant_id, quantity)| LineInput {
                        variant_id,
                        quantity,
                    })
                    .collect(),
                true,
            )
        }
    };
    check_lines(&items)?;
    let (address, address_id) =
        resolve_address(conn, me.id, input.address_id, input.address.as_ref()).await?;
    let lines = priced_lines(st, ctx, conn, &items, now).await?;
    let subtotal: i64 = lines.iter().map(PricedLine::line_total).sum();
    let weight: i64 = lines
        .iter()
        .map(|l| l.quantity * i64::from(l.sellable.variant.weight_grams))
        .sum();
    let (coupon, discount) = match input
        .coupon_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(code) => {
            let (c, d) = coupons::evaluate(conn, code, me.id, subtotal, now, lock_coupon).await?;
            (Some((c.id, c.code)), d)
        }
        None => (None, 0),
    };
    let shipping = shipping::price_of(input.shipping_method, &address.region, weight, subtotal)?;
    let warnings = lines
        .iter()
        .filter(|l| l.available < l.quantity)
        .map(|l| {
            format!(
                "Only {} of {} ({}) available",
                l.available, l.sellable.product.name, l.sellable.variant.option_label
            )
        })
        .collect();
    Ok(Pricing {
        total_cents: subtotal - discount + shipping.price_cents,
        lines,
        subtotal_cents: subtotal,
        discount_cents: discount,
        shipping,
        weight_grams: weight,
        address,
        address_id,
        coupon,
        from_cart,
        warnings,
    })
}

pub async fn preview(st: &AppState, ctx: &RequestCtx, input: CheckoutInput) -> AppResult<Pricing> {
    price(st, ctx, &st.db, &input, st.clock.now(), false).await
}

/// `POST /api/checkout/coupon/apply`: the discount a code gives on the given items (or the cart).
pub async fn apply_coupon(
    st: &AppState,
    ctx: &RequestCtx,
    code: &str,
    items: Option<Vec<LineInput>>,
) -> AppResult<(String, i64, i64)> {
    let me = ctx.require_user()?;
    let now = st.clock.now();
    let items = match items {
        Some(i) => i,
        None => cart::lines_of(&st.db, me.id)
            .await?
            .into_iter()
            .map(|(variant_id, quantity)| LineInput {
                variant_id,
                quantity,
            })
            .collect(),
    };
    check_lines(&items)?;
    let lines = priced_lines(st, ctx, &st.db, &items, now).await?;
    let subtotal: i64 = lines.iter().map(PricedLine::line_total).sum();
    let (c, discount) = coupons::evaluate(&st.db, code, me.id, subtotal, now, false).await?;
    Ok((c.code, subtotal, discount))
}

/// `confirmCheckout`, honouring the request's `Idempotency-Key`: a retry with the same key and
/// input returns the order the first attempt created, without creating another.
pub async fn confirm_checkout(
    st: &AppState,
    ctx: &RequestCtx,
    input: CheckoutInput,
) -> AppResult<order::Model> {
    ctx.require_writable_user()?;
    crate::services::accounts::verification::require_verified_for_checkout(st, ctx).await?;
    let id = idempotency::once_settled(
        st,
        ctx,
        "checkout.confirm",
        input,
        |input, claim| async move { place(st, ctx, input, claim).await.map(|o| o.id) },
    )
    .await?;
    order::Entity::find_by_id(id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Order"))
}

/// Creates the pending order and reserves its stock, or writes nothing.
pub async fn confirm(
    st: &AppState,
    ctx: &RequestCtx,
    input: CheckoutInput,
) -> AppResult<order::Model> {
    place(st, ctx, input, None).await
}

/// [`confirm`], storing the order's id under the request's `Idempotency-Key` claim in the same
/// transaction as the order.
async fn place(
    st: &AppState,
    ctx: &RequestCtx,
    input: CheckoutInput,
    claim: Option<idempotency::Claimed>,
) -> AppResult<order::Model> {
    let me = ctx.require_writable_user()?.clone();
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    // The lock order (ARCHITECTURE.md): the coupon, then the variants in id order, so concurrent
    // checkouts for the same units queue here and each sees the others' reservations, and no
    // payment (which takes the coupon, then the variants) waits on them in the other order.
    if let Some(code) = input
        .coupon_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        coupons::lock_code(&txn, code).await?;
    }
    let ids: Vec<i64> = match &input.items {
        Some(items) => items.iter().map(|l| l.variant_id).collect(),
        None => cart::lines_of(&txn, me.id)
            .await?
            .into_iter()
            .map(|(v, _)| v)
            .collect(),
    };
    inventory::lock(&txn, ids).await?;
    // Last in the lock order, the buyer: an erasure asked for at the same moment either sees
    // this order (and is refused) or is seen here.
    let buyer = crate::services::accounts::users::lock(&txn, me.id)
        .await?
        .ok_or_else(|| AppError::unauthorized("The account no longer exists"))?;
    if buyer.erasure_requested_at.is_some() {
        return Err(crate::services::accounts::erasing::no_orders_while_erasing());
    }
    let pricing = price(st, ctx, &txn, &input, now, true).await?;
    let short: Vec<FieldIssue> = pricing
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.available < l.quantity)
        .map(|(i, _)| FieldIssue::new(format!("items[{i}].variantId"), "insufficient_stock"))
        .collect();
    if !short.is_empty() {
        txn.rollback().await?;
        return Err(AppError::conflict(format!(
            "{} line(s) exceed the available stock; nothing was reserved",
            short.len()
        ))
        .with_details(short));
    }
    let total = pricing.subtotal_cents - pricing.discount_cents + pricing.shipping.price_cents;
    if total != pricing.total_cents {
        return Err(AppError::internal("order total does not add up"));
    }
    let created = order::ActiveModel {
        user_id: Set(me.id),
        status: Set(OrderStatus::Pending),
        subtotal_cents: Set(pricing.subtotal_cents),
        discount_cents: Set(pricing.discount_cents),
        shipping_price_cents: Set(pricing.shipping.price_cents),
        total_cents: Set(total),
        coupon_id: Set(pricing.coupon.as_ref().map(|c| c.0)),
        payment_provider: Set(None),
        payment_ref: Set(None),
        shipping_method: Set(pricing.shipping.code),
        shipping_address: Set(Some(
            serde_json::to_value(&pricing.address).map_err(AppError::internal)?,
        )),
        shipping_address_id: Set(pricing.address_id),
        courier: Set(None),
        tracking_number: Set(None),
        estimated_delivery_at: Set(Some(now + Duration::days(pricing.shipping.eta_days))),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let expires = now + Duration::seconds(st.config.store.reservation_ttl_seconds);
    for l in &pricing.lines {
        order_item::ActiveModel {
            order_id: Set(created.id),
            product_id: Set(l.sellable.product.id),
            variant_id: Set(l.sellable.variant.id),
            product_name: Set(l.sellable.product.name.clone()),
            option_label: Set(l.sellable.variant.option_label.clone()),
            quantity: Set(l.quantity as i32),
            unit_price_cents: Set(l.unit_price()),
            line_total_cents: Set(l.line_total()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
    }
    let lines: Vec<(i64, i32)> = pricing
        .lines
        .iter()
        .map(|l| (l.sellable.variant.id, l.quantity as i32))
        .collect();
    inventory::reserve(&txn, created.id, &lines, expires, now).await?;
    if pricing.from_cart {
        cart::clear(&txn, me.id).await?;
    }
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::OrderCreated {
            id: created.id,
            total_cents: total,
            lines: pricing.lines.len(),
            coupon: pricing.coupon.as_ref().map(|c| c.1.clone()),
            reserved_until: expires.to_rfc3339(),
        },
    )
    .await?;
    if let Some(claim) = claim {
        idempotency::settle_in(&txn, claim, &created.id).await?;
    }
    txn.commit().await?;
    st.metrics.orders_created.inc();
    Ok(created)
}
