//! GraphQL for shipping quotes, checkout preview, coupon application and confirmation.

use async_graphql::{ComplexObject, Context, Json, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::order::{OrderStatus, ShippingMethod};
use crate::entities::user::Role;
use crate::entities::{order, order_item};
use crate::services::commerce::checkout::{
    self, ApplyCouponInput, CheckoutInput, Pricing, QuoteInput,
};
use crate::services::commerce::shipping::ShippingOption;

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"methods": [{"code": "retiro_tienda", "label": "Retiro en tienda", "priceCents": 0, "etaDays": 1},
    {"code": "chilexpress", "label": "Chilexpress a domicilio", "priceCents": 3990, "etaDays": 2}],
    "best": {"code": "retiro_tienda", "label": "Retiro en tienda", "priceCents": 0, "etaDays": 1}, "weightGrams": 2, "subtotalCents": 9980, "version": "2026-11-01"}))]
pub struct ShippingQuote {
    #[graphql(complexity = "crate::graphql::limits::fanout(child_complexity)")]
    pub methods: Vec<ShippingOption>,
    /// The cheapest method, ties broken by the shorter ETA.
    pub best: Option<ShippingOption>,
    pub weight_grams: i64,
    pub subtotal_cents: i64,
    /// The rate table's version.
    pub version: String,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutLine {
    pub variant_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub option_label: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
    pub available: i64,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"lines": [{"variantId": 1, "productId": 1, "productName": "Northern Lights Auto", "optionLabel": "1g", "quantity": 2,
    "unitPriceCents": 4990, "lineTotalCents": 9980, "available": 40}], "subtotalCents": 9980, "discountCents": 998, "shippingPriceCents": 3990,
    "totalCents": 12972, "shippingMethod": "chilexpress", "etaDays": 2, "couponCode": "VERANO10", "warnings": []}))]
pub struct CheckoutPreview {
    #[graphql(complexity = "crate::graphql::limits::fanout(child_complexity)")]
    pub lines: Vec<CheckoutLine>,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping_price_cents: i64,
    /// subtotal − discount + shipping.
    pub total_cents: i64,
    pub shipping_method: ShippingMethod,
    pub eta_days: i64,
    pub coupon_code: Option<String>,
    /// E.g. a line asking for more than is available.
    pub warnings: Vec<String>,
}

impl From<Pricing> for CheckoutPreview {
    fn from(p: Pricing) -> Self {
        CheckoutPreview {
            lines: p
                .lines
                .iter()
                .map(|l| CheckoutLine {
                    variant_id: l.sellable.variant.id,
                    product_id: l.sellable.product.id,
                    product_name: l.sellable.product.name.clone(),
                    option_label: l.sellable.variant.option_label.clone(),
                    quantity: l.quantity,
                    unit_price_cents: l.unit_price(),
                    line_total_cents: l.line_total(),
                    available: l.available,
                })
                .collect(),
            subtotal_cents: p.subtotal_cents,
            discount_cents: p.discount_cents,
            shipping_price_cents: p.shipping.price_cents,
            total_cents: p.total_cents,
            shipping_method: p.shipping.code,
            eta_days: p.shipping.eta_days,
            coupon_code: p.coupon.map(|c| c.1),
            warnings: p.warnings,
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"code": "VERANO10", "subtotalCents": 9980, "discountCents": 998}))]
pub struct CouponApplication {
    pub code: String,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
}

#[derive(SimpleObject, Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub id: i64,
    pub product_id: i64,
    pub variant_id: i64,
    pub product_name: String,
    pub option_label: String,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

impl From<order_item::Model> for OrderItem {
    fn from(i: order_item::Model) -> Self {
        OrderItem {
            id: i.id,
            product_id: i.product_id,
            variant_id: i.variant_id,
            product_name: i.product_name,
            option_label: i.option_label,
            quantity: i.quantity,
            unit_price_cents: i.unit_price_cents,
            line_total_cents: i.line_total_cents,
        }
    }
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Order {
    pub id: i64,
    pub status: OrderStatus,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping_price_cents: i64,
    pub total_cents: i64,
    pub coupon_id: Option<i64>,
    pub payment_provider: Option<String>,
    pub payment_ref: Option<String>,
    pub shipping_method: ShippingMethod,
    /// The address as it was when the order was placed.
    pub shipping_address: Option<Json<serde_json::Value>>,
    pub shipping_address_id: Option<i64>,
    pub courier: Option<String>,
    pub tracking_number: Option<String>,
    pub estimated_delivery_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<order::Model> for Order {
    fn from(o: order::Model) -> Self {
        Order {
            id: o.id,
            status: o.status,
            subtotal_cents: o.subtotal_cents,
            discount_cents: o.discount_cents,
            shipping_price_cents: o.shipping_price_cents,
            total_cents: o.total_cents,
            coupon_id: o.coupon_id,
            payment_provider: o.payment_provider,
            payment_ref: o.payment_ref,
            shipping_method: o.shipping_method,
            shipping_address: o.shipping_address.map(Json),
            shipping_address_id: o.shipping_address_id,
            courier: o.courier,
            tracking_number: o.tracking_number,
            estimated_delivery_at: o.estimated_delivery_at.map(Into::into),
            created_at: o.created_at.into(),
            updated_at: o.updated_at.into(),
        }
    }
}

#[ComplexObject]
impl Order {
    /// The lines, with names and prices frozen at order time.
    #[graphql(complexity = "crate::graphql::limits::fanout(child_complexity)")]
    async fn items(&self, ctx: &Context<'_>) -> GqlResult<Vec<OrderItem>> {
        // Batched: a page of orders loads all its lines in one query.
        let loader = ctx.data_unchecked::<super::loaders::RequestLoader>();
        let items = loader
            .load_one(super::loaders::OrderItemsOf(self.id))
            .await?
            .unwrap_or_default();
        Ok(items.into_iter().map(OrderItem::from).collect())
    }
}

/// The REST shape of an order (documentation only).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Order, example = json!({"id": 12, "status": "pending", "subtotalCents": 9980, "discountCents": 0, "shippingPriceCents": 3990,
    "totalCents": 13970, "couponId": null, "paymentProvider": null, "paymentRef": null, "shippingMethod": "chilexpress",
    "shippingAddress": {"name": "Casa", "addressLine": "Av. Providencia 1234", "comuna": "Providencia", "region": "Metropolitana", "notes": null},
    "shippingAddressId": 3, "courier": null, "trackingNumber": null, "estimatedDeliveryAt": "2026-11-24T08:00:00Z",
    "createdAt": "2026-11-22T08:00:00Z", "updatedAt": "2026-11-22T08:00:00Z",
    "items": [{"id": 1, "productId": 1, "variantId": 1, "productName": "Northern Lights Auto", "optionLabel": "1g", "quantity": 2, "unitPriceCents": 4990, "lineTotalCents": 9980}]}))]
pub struct OrderDoc {
    pub id: i64,
    pub status: OrderStatus,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping_price_cents: i64,
    pub total_cents: i64,
    pub coupon_id: Option<i64>,
    pub payment_provider: Option<String>,
    pub payment_ref: Option<String>,
    pub shipping_method: ShippingMethod,
    pub shipping_address: Option<serde_json::Value>,
    pub shipping_address_id: Option<i64>,
    pub courier: Option<String>,
    pub tracking_number: Option<String>,
    pub estimated_delivery_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub items: Vec<OrderItem>,
}

#[derive(Default)]
pub struct CheckoutQuery;

#[Object]
impl CheckoutQuery {
    /// Shipping methods and prices for an address and items.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn shipping_quote(
        &self,
        ctx: &Context<'_>,
        input: QuoteInput,
    ) -> GqlResult<ShippingQuote> {
        let (st, rc) = parts(ctx);
        let q = checkout::quote(st, rc, input).await?;
        Ok(ShippingQuote {
            methods: q.methods,
            best: q.best,
            weight_grams: q.weight_grams,
            subtotal_cents: q.subtotal_cents,
            version: q.version,
        })
    }

    /// What confirming would charge: lines, subtotal, discount, shipping, total, warnings.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn checkout_preview(
        &self,
        ctx: &Context<'_>,
        input: CheckoutInput,
    ) -> GqlResult<CheckoutPreview> {
        let (st, rc) = parts(ctx);
        Ok(checkout::preview(st, rc, input).await?.into())
    }

    /// The discount a coupon gives on the items (or the cart), or why it does not apply.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn coupon_application(
        &self,
        ctx: &Context<'_>,
        input: ApplyCouponInput,
    ) -> GqlResult<CouponApplication> {
        let (st, rc) = parts(ctx);
        let (code, subtotal_cents, discount_cents) =
            checkout::apply_coupon(st, rc, &input.code, input.items).await?;
        Ok(CouponApplication {
            code,
            subtotal_cents,
            discount_cents,
        })
    }
}

#[derive(Default)]
pub struct CheckoutMutation;

#[Object]
impl CheckoutMutation {
    /// Creates a pending order and reserves its stock. Honours the `Idempotency-Key` header.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn confirm_checkout(&self, ctx: &Context<'_>, input: CheckoutInput) -> GqlResult<Order> {
        let (st, rc) = parts(ctx);
        Ok(checkout::confirm_checkout(st, rc, input).await?.into())
    }
}
