//! Product variants: the purchasable units (SKU, option label, price, stock, weight).

use async_graphql::InputObject;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::products;
use super::text::{non_negative, parse_sku};
use crate::actor::RequestCtx;
use crate::domain::parse_text;
use crate::entities::{cart_item, order_item, product, product_variant};
use crate::error::Issues;
use crate::error::{AppError, AppResult};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::pagination::Page;
use crate::services::platform::row_write::{self, Cached};
use crate::services::platform::unique::ensure_free;
use crate::state::AppState;

/// Highest accepted price (CLP) and stock/weight values.
pub const MAX_PRICE: i64 = 1_000_000_000;
pub const MAX_QUANTITY: i64 = i32::MAX as i64;
/// Longest option label, in characters.
pub const OPTION_LABEL_MAX: usize = 40;

#[derive(InputObject, Deserialize, Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"sku": "NL-AUTO-5", "optionLabel": "5g", "priceCents": 19990, "stock": 10, "weightGrams": 5}))]
pub struct CreateVariantInput {
    pub sku: String,
    /// What the buyer chooses: "1g", "5g", "M".
    pub option_label: String,
    /// Whole CLP pesos, ≥ 0.
    pub price_cents: i64,
    #[serde(default)]
    #[graphql(default)]
    pub stock: i64,
    #[serde(default)]
    #[graphql(default)]
    pub weight_grams: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"priceCents": 17990, "stock": 40}))]
pub struct UpdateVariantInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

pub struct NewVariant {
    pub sku: String,
    pub option_label: String,
    pub price_cents: i64,
    pub stock: i32,
    pub weight_grams: i32,
    pub is_active: bool,
}

impl CreateVariantInput {
    pub fn validate(&self, issues: &mut Issues) -> Option<NewVariant> {
        let sku = issues.take(parse_sku("sku", &self.sku));
        let label = issues.take(parse_text(
            "optionLabel",
            &self.option_label,
            OPTION_LABEL_MAX,
        ));
        let price = issues.take(non_negative("priceCents", self.price_cents, MAX_PRICE));
        let stock = issues.take(non_negative("stock", self.stock, MAX_QUANTITY));
        let weight = issues.take(non_negative("weightGrams", self.weight_grams, MAX_QUANTITY));
        Some(NewVariant {
            sku: sku?,
            option_label: label?,
            price_cents: price?,
            stock: stock? as i32,
            weight_grams: weight? as i32,
            is_active: self.is_active.unwrap_or(true),
        })
    }
}

async fn ensure_sku_free<C: ConnectionTrait>(
    conn: &C,
    sku: &str,
    except: Option<i64>,
) -> AppResult<()> {
    let except = except.map(|id| (product_variant::Column::Id, id));
    ensure_free::<product_variant::Entity, _>(
        conn,
        product_variant::Column::Sku,
        sku,
        except,
        "sku",
        &format!("A variant with SKU {sku} already exists"),
    )
    .await
}

pub async fn insert_variant<C: ConnectionTrait>(
    conn: &C,
    now: chrono::DateTime<chrono::Utc>,
    product_id: i64,
    v: NewVariant,
) -> AppResult<product_variant::Model> {
    ensure_sku_free(conn, &v.sku, None).await?;
    Ok(product_variant::ActiveModel {
        product_id: Set(product_id),
        sku: Set(v.sku),
        option_label: Set(v.option_label),
        price_cents: Set(v.price_cents),
        stock: Set(v.stock),
        weight_grams: Set(v.weight_grams),
        is_active: Set(v.is_active),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?)
}

/// The variants of a product the viewer may see (the product itself goes through the gate).
pub async fn list_for_product(
    st: &AppState,
    ctx: &RequestCtx,
    product_id: i64,
    page: Page,
) -> AppResult<(Vec<product_variant::Model>, u64, bool)> {
    products::get(st, ctx, product_id).await?;
    let restricted = products::is_restricted(st, ctx, product_id).await?;
    if restricted {
        return Ok((Vec::new(), 0, true));
    }
    let mut q =
        product_variant::Entity::find().filter(product_variant::Column::ProductId.eq(product_id));
    if !ctx.sees_whole_catalogue() {
        q = q.filter(product_variant::Column::IsActive.eq(true));
    }
    let total = q.clone().count(&st.db).await?;
    let items = q
        .order_by_asc(product_variant::Column::PriceCents)
        .order_by_asc(product_variant::Column::Id)
        .offset(page.offset())
        .limit(page.page_size)
        .all(&st.db)
        .await?;
    Ok((items, total, false))
}

pub async fn create(
    st: &AppState,
    ctx: &RequestCtx,
    product_id: i64,
    input: CreateVariantInput,
) -> AppResult<product_variant::Model> {
    ctx.require_scope(crate::domain::Scope::ProductsWrite)?;
    let mut issues = Issues::default();
    let v = input.validate(&mut issues);
    issues.finish()?;
    let v = v.ok_or_else(|| AppError::invalid("sku", "required", "Invalid variant"))?;
    let now = st.clock.now();
    let w = row_write::begin_create(st, ctx, Cached::Catalogue).await?;
    product::Entity::find_by_id(product_id)
        .one(&w.txn)
        .await?
        .ok_or_else(|| AppError::not_found("Product"))?;
    let created = insert_variant(&w.txn, now, product_id, v).await?;
    let event = DomainEvent::VariantCreated {
        id: created.id,
        product_id,
        sku: created.sku.clone(),
    };
    w.created(created, event).await
}

/// Whether a stock change from `before` to `after` falls to `threshold` or below from above it
/// (`variant.stock_low`, the `stock.low` webhook).
pub fn falls_low(before: i32, after: i32, threshold: i32) -> bool {
    before > threshold && after <= threshold
}

pub async fn update(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: UpdateVariantInput,
) -> AppResult<product_variant::Model> {
    ctx.require_scope(crate::domain::Scope::ProductsWrite)?;
    let mut issues = Issues::default();
    let sku = input
        .sku
        .as_deref()
        .and_then(|s| issues.take(parse_sku("sku", s)));
    let label = input
        .option_label
        .as_deref()
        .and_then(|s| issues.take(parse_text("optionLabel", s, OPTION_LABEL_MAX)));
    let price = input
        .price_cents
        .and_then(|p| issues.take(non_negative("priceCents", p, MAX_PRICE)));
    let stock = input
        .stock
        .and_then(|p| issues.take(non_negative("stock", p, MAX_QUANTITY)));
    let weight = input
        .weight_grams
        .and_then(|p| issues.take(non_negative("weightGrams", p, MAX_QUANTITY)));
    issues.finish()?;
    let w = row_write::open::<product_variant::Entity>(
        st,
        ctx,
        id,
        "Variant",
        Cached::Catalogue,
        Some(crate::domain::Scope::ProductsWrite),
    )
    .await?;
    let mut am: product_variant::ActiveModel = w.current.clone().into();
    if let Some(s) = sku.filter(|s| *s != w.current.sku) {
        ensure_sku_free(&w.txn, &s, Some(id)).await?;
        am.sku = Set(s);
    }
    if let Some(l) = label {
        am.option_label = Set(l);
    }
    if let Some(p) = price {
        am.price_cents = Set(p);
    }
    if let Some(s) = stock {
        am.stock = Set(s as i32);
        let threshold = st.config.store.low_stock_threshold;
        if falls_low(w.current.stock, s as i32, threshold) {
            events::record(
                &w.txn,
                st,
                ctx,
                DomainEvent::StockLow {
                    id,
                    product_id: w.current.product_id,
                    stock: s as i32,
                    threshold,
                },
            )
            .await?;
        }
    }
    if let Some(w) = weight {
        am.weight_grams = Set(w as i32);
    }
    if let Some(a) = input.is_active {
        am.is_active = Set(a);
    }
    w.update(am, &[], &[], |changes, v| DomainEvent::VariantUpdated {
        id,
        product_id: v.product_id,
        changes,
    })
    .await
}

/// Deletes the variant (and any cart lines holding it), or deactivates it when orders hold it.
pub async fn delete(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<bool> {
    let w = row_write::open_to_remove::<product_variant::Entity>(
        st,
        ctx,
        id,
        "Variant",
        Cached::Catalogue,
        Some(crate::domain::Scope::ProductsWrite),
    )
    .await?;
    let ordered = order_item::Entity::find()
        .filter(order_item::Column::VariantId.eq(id))
        .count(&w.txn)
        .await?
        > 0;
    if !ordered {
        cart_item::Entity::delete_many()
            .filter(cart_item::Column::VariantId.eq(id))
            .exec(&w.txn)
            .await?;
    }
    let (product_id, sku) = (w.current.product_id, w.current.sku.clone());
    w.remove(ordered, |outcome| DomainEvent::VariantDeleted {
        id,
        product_id,
        sku,
        outcome,
    })
    .await
}
