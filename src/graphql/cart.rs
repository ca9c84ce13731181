//! GraphQL for the customer's cart.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::{parts, GqlResult};
use crate::entities::user::Role;
use crate::services::commerce::cart::{self, CartItemInput, CartView};

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartLine {
    pub variant_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub option_label: String,
    pub sku: String,
    pub image_url: Option<String>,
    /// The current price (whole CLP pesos).
    pub unit_price_cents: i64,
    pub quantity: i64,
    pub line_total_cents: i64,
    /// Units that can still be bought now.
    pub available: i64,
    pub is_medicinal: bool,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 1, "items": [{"variantId": 1, "productId": 1, "productName": "Northern Lights Auto", "optionLabel": "1g",
    "sku": "NL-AUTO-1G", "imageUrl": null, "unitPriceCents": 4990, "quantity": 2, "lineTotalCents": 9980, "available": 40, "isMedicinal": false}],
    "itemCount": 2, "subtotalCents": 9980, "warnings": []}))]
pub struct Cart {
    /// Absent until the cart is created.
    pub id: Option<i64>,
    #[graphql(complexity = "crate::graphql::limits::fanout(child_complexity)")]
    pub items: Vec<CartLine>,
    /// Units in the cart.
    pub item_count: i64,
    pub subtotal_cents: i64,
    /// Lines that can no longer be bought as they are (stock short, product withdrawn).
    pub warnings: Vec<String>,
}

impl From<CartView> for Cart {
    fn from(v: CartView) -> Self {
        let subtotal = v.subtotal_cents();
        Cart {
            id: v.id,
            item_count: v.lines.iter().map(|l| l.quantity).sum(),
            subtotal_cents: subtotal,
            items: v
                .lines
                .into_iter()
                .map(|l| CartLine {
                    variant_id: l.sellable.variant.id,
                    product_id: l.sellable.product.id,
                    product_name: l.sellable.product.name,
                    option_label: l.sellable.variant.option_label,
                    sku: l.sellable.variant.sku,
                    image_url: l.sellable.product.image_url,
                    unit_price_cents: l.sellable.variant.price_cents,
                    quantity: l.quantity,
                    line_total_cents: l.quantity * l.sellable.variant.price_cents,
                    available: l.available,
                    is_medicinal: l.sellable.category.is_medicinal,
                })
                .collect(),
            warnings: v.warnings,
        }
    }
}

#[derive(Default)]
pub struct CartQuery;

#[Object]
impl CartQuery {
    /// The signed-in customer's cart (empty, without an id, before it is created).
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn cart(&self, ctx: &Context<'_>) -> GqlResult<Cart> {
        let (st, rc) = parts(ctx);
        Ok(cart::view(st, rc).await?.into())
    }
}

#[derive(Default)]
pub struct CartMutation;

#[Object]
impl CartMutation {
    /// Creates the customer's cart, or returns the existing one.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn open_cart(&self, ctx: &Context<'_>) -> GqlResult<Cart> {
        let (st, rc) = parts(ctx);
        Ok(cart::open(st, rc).await?.into())
    }

    /// Sets a line's quantity (0 removes it), capped by available stock.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn set_cart_item(&self, ctx: &Context<'_>, input: CartItemInput) -> GqlResult<Cart> {
        let (st, rc) = parts(ctx);
        Ok(cart::set_item(st, rc, input).await?.into())
    }

    /// Empties the cart.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn clear_cart(&self, ctx: &Context<'_>) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        cart::empty(st, rc).await
    }
}
