//! REST rows for addresses, the cart, shipping quotes, coupons and checkout.

use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::entities::order::OrderStatus;
use crate::graphql::orders::OrderPageDoc;
use crate::graphql::payments::{PaymentConfirmation, PaymentPage, PaymentStart};
use crate::services::commerce::orders::{TrackingInput, UpdateOrderStatusInput};
use crate::services::payments::{ConfirmPaymentInput, StartPaymentInput};

use super::catalog_routes::PageParams;
use super::{json_body, query, Access, RestRoute};
use crate::graphql::addresses::{Address, AddressPage};
use crate::graphql::cart::Cart;
use crate::graphql::checkout::{CheckoutPreview, CouponApplication, OrderDoc, ShippingQuote};
use crate::graphql::coupons::{Coupon, CouponPage};
use crate::services::accounts::addresses::{AddressInput, UpdateAddressInput};
use crate::services::commerce::cart::CartItemInput;
use crate::services::commerce::checkout::{ApplyCouponInput, CheckoutInput, QuoteInput};
use crate::services::commerce::coupons::{CouponInput, UpdateCouponInput};

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct OrdersParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatus>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AdminOrdersParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatus>,
    /// webpay, flow, mp or test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_provider: Option<String>,
    /// Created at or after (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub date_from: Option<crate::graphql::scalars::Timestamp>,
    /// Created at or before (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub date_to: Option<crate::graphql::scalars::Timestamp>,
    /// Customer email (part), order id or payment reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AdminPaymentsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    /// webpay, flow, mp or test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// initiated, pending, paid, failed, refunded or refund_required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub date_from: Option<crate::graphql::scalars::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub date_to: Option<crate::graphql::scalars::Timestamp>,
}

pub fn routes() -> Vec<RestRoute> {
    [
        address_routes(),
        cart_and_checkout_routes(),
        order_and_payment_routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Saved addresses.
fn address_routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(
            M::GET,
            "/api/addresses",
            "Addresses",
            doc!("commerce/addresses.graphql", "address_fields.graphql"),
            "addresses",
        )
        .access(Access::Customer)
        .doc(
            "addresses",
            "The signed-in customer's addresses, the default first",
        )
        .query(query::<PageParams>())
        .returns::<AddressPage>(),
        RestRoute::new(
            M::POST,
            "/api/addresses",
            "CreateAddress",
            doc!("commerce/create_address.graphql", "address_fields.graphql"),
            "createAddress",
        )
        .status(StatusCode::CREATED)
        .access(Access::Customer)
        .doc(
            "addresses",
            "Add an address (region: one of Chile's 16, by name or code)",
        )
        .body(json_body::<AddressInput>("input"))
        .returns::<Address>(),
        RestRoute::new(
            M::PATCH,
            "/api/addresses/{id}",
            "UpdateAddress",
            doc!("commerce/update_address.graphql", "address_fields.graphql"),
            "updateAddress",
        )
        .access(Access::Customer)
        .doc(
            "addresses",
            "Change an address; `isDefault: true` makes it the only default",
        )
        .body(json_body::<UpdateAddressInput>("input"))
        .returns::<Address>(),
        RestRoute::new(
            M::DELETE,
            "/api/addresses/{id}",
            "DeleteAddress",
            doc!("commerce/delete_address.graphql"),
            "deleteAddress",
        )
        .status(StatusCode::NO_CONTENT)
        .access(Access::Customer)
        .doc("addresses", "Delete an address"),
    ]
}

/// The cart, shipping quotes, checkout and coupons.
fn cart_and_checkout_routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(
            M::GET,
            "/api/cart",
            "Cart",
            doc!("commerce/cart.graphql", "cart_fields.graphql"),
            "cart",
        )
        .access(Access::Customer)
        .doc(
            "cart",
            "The signed-in customer's cart with current prices and availability",
        )
        .returns::<Cart>(),
        RestRoute::new(
            M::POST,
            "/api/cart",
            "OpenCart",
            doc!("commerce/open_cart.graphql", "cart_fields.graphql"),
            "openCart",
        )
        .access(Access::Customer)
        .doc("cart", "Create the cart, or return the existing one")
        .returns::<Cart>(),
        RestRoute::new(
            M::PUT,
            "/api/cart/items",
            "SetCartItem",
            doc!("commerce/set_cart_item.graphql", "cart_fields.graphql"),
            "setCartItem",
        )
        .access(Access::Customer)
        .doc(
            "cart",
            "Set a line's quantity (0 removes it); refused beyond available stock",
        )
        .body(json_body::<CartItemInput>("input"))
        .returns::<Cart>(),
        RestRoute::new(
            M::DELETE,
            "/api/cart",
            "ClearCart",
            doc!("commerce/clear_cart.graphql"),
            "clearCart",
        )
        .status(StatusCode::NO_CONTENT)
        .access(Access::Customer)
        .doc("cart", "Empty the cart"),
        RestRoute::new(M::POST, "/api/shipping/quote", "ShippingQuote", doc!("commerce/shipping_quote.graphql"), "shippingQuote")
            .access(Access::Customer)
            .doc("checkout", "Shipping methods and prices for an address (or addressId) and items; `best` is the cheapest")
            .body(json_body::<QuoteInput>("input"))
            .returns::<ShippingQuote>(),
        RestRoute::new(M::POST, "/api/checkout/preview", "CheckoutPreview", doc!("commerce/checkout_preview.graphql"), "checkoutPreview")
            .access(Access::Customer)
            .doc("checkout", "Lines, subtotal, discount, shipping, total and warnings, computed by the server (items or the cart)")
            .body(json_body::<CheckoutInput>("input"))
            .returns::<CheckoutPreview>(),
        RestRoute::new(M::POST, "/api/checkout/coupon/apply", "CouponApplication", doc!("commerce/coupon_application.graphql"), "couponApplication")
            .access(Access::Customer)
            .doc("checkout", "The discount a coupon gives, or a validation_error on couponCode saying why not")
            .body(json_body::<ApplyCouponInput>("input"))
            .returns::<CouponApplication>(),
        RestRoute::new(M::POST, "/api/checkout/confirm", "ConfirmCheckout", doc!("commerce/confirm_checkout.graphql", "order_fields.graphql"), "confirmCheckout")
            .status(StatusCode::CREATED)
            .access(Access::Customer)
            .doc(
                "checkout",
                "Create the pending order and reserve its stock, or write nothing (409 listing short lines; 403 email_not_verified when REQUIRE_VERIFIED_EMAIL_FOR_CHECKOUT is on and the address is not verified). Honours Idempotency-Key",
            )
            .body(json_body::<CheckoutInput>("input"))
            .returns::<OrderDoc>(),
        RestRoute::new(M::GET, "/api/coupons", "Coupons", doc!("commerce/coupons.graphql", "coupon_fields.graphql"), "coupons")
            .access(Access::Admin)
            .doc("coupons", "List coupons (admin)")
            .query(query::<PageParams>())
            .returns::<CouponPage>(),
        RestRoute::new(M::POST, "/api/coupons", "CreateCoupon", doc!("commerce/create_coupon.graphql", "coupon_fields.graphql"), "createCoupon")
            .status(StatusCode::CREATED)
            .access(Access::Admin)
            .doc("coupons", "Create a coupon (admin): percent 1–100 or fixed pesos, window, minimum, limits")
            .body(json_body::<CouponInput>("input"))
            .returns::<Coupon>(),
        RestRoute::new(M::PATCH, "/api/coupons/{id}", "UpdateCoupon", doc!("commerce/update_coupon.graphql", "coupon_fields.graphql"), "updateCoupon")
            .access(Access::Admin)
            .doc("coupons", "Update a coupon (admin)")
            .body(json_body::<UpdateCouponInput>("input"))
            .returns::<Coupon>(),
        RestRoute::new(M::DELETE, "/api/coupons/{id}", "DeleteCoupon", doc!("commerce/delete_coupon.graphql"), "deleteCoupon")
            .status(StatusCode::NO_CONTENT)
            .access(Access::Admin)
            .doc("coupons", "Delete an unused coupon, or deactivate one that orders refer to (admin)"),
    ]
}

/// Orders and payments.
fn order_and_payment_routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(M::GET, "/api/orders", "Orders", doc!("commerce/orders.graphql", "order_fields.graphql"), "orders")
            .access(Access::Customer)
            .doc("orders", "The signed-in customer's orders, newest first")
            .query(query::<OrdersParams>())
            .returns::<OrderPageDoc>(),
        RestRoute::new(M::GET, "/api/orders/{id}", "Order", doc!("commerce/order.graphql", "order_fields.graphql"), "order")
            .access(Access::Customer)
            .doc("orders", "One order (the owner's, or any for an admin; others are 404)")
            .returns::<OrderDoc>(),
        RestRoute::new(M::GET, "/api/orders/{id}/invoice", "OrderInvoice", doc!("commerce/order_invoice.graphql"), "orderInvoice")
            .conflicts()
            .access(Access::Customer)
            .doc("orders", "The PDF receipt of a paid, shipped or delivered order (owner or admin; others 404; before payment 409 not_paid)")
            .binary("application/pdf", "receipt-{id}.pdf"),
        RestRoute::new(M::POST, "/api/orders/{id}/cancel", "CancelOrder", doc!("commerce/cancel_order.graphql", "order_fields.graphql"), "cancelOrder")
            .access(Access::Customer)
            .doc("orders", "Cancel a pending order (owner); its reservations are released")
            .returns::<OrderDoc>(),
        RestRoute::new(M::GET, "/api/admin/orders", "AdminOrders", doc!("commerce/admin_orders.graphql", "order_fields.graphql"), "adminOrders")
            .access(Access::Admin)
            .doc("orders", "Every order (admin): status, paymentProvider, dateFrom, dateTo, q")
            .query(query::<AdminOrdersParams>())
            .returns::<OrderPageDoc>(),
        RestRoute::new(M::PATCH, "/api/admin/orders/{id}", "UpdateOrderStatus", doc!("commerce/update_order_status.graphql", "order_fields.graphql"), "updateOrderStatus")
            .access(Access::Admin)
            .doc("orders", "Change an order's status along its lifecycle (admin); others are 409 invalid_transition")
            .body(json_body::<UpdateOrderStatusInput>("input"))
            .returns::<OrderDoc>(),
        RestRoute::new(M::PATCH, "/api/admin/orders/{id}/tracking", "UpdateOrderTracking", doc!("commerce/update_order_tracking.graphql", "order_fields.graphql"), "updateOrderTracking")
            .access(Access::Admin)
            .doc("orders", "Set courier, tracking number and estimated delivery (admin)")
            .body(json_body::<TrackingInput>("input"))
            .returns::<OrderDoc>(),
        RestRoute::new(M::POST, "/api/payments/start", "StartPayment", doc!("commerce/start_payment.graphql"), "startPayment")
            .access(Access::Customer)
            .doc("payments", "Start a payment for your pending order: {provider, providerTxnId, paymentRef, redirectUrl?, initPayload?}")
            .body(json_body::<StartPaymentInput>("input"))
            .returns::<PaymentStart>(),
        RestRoute::new(M::POST, "/api/payments/confirm", "ConfirmPayment", doc!("commerce/confirm_payment.graphql"), "confirmPayment")
            .access(Access::Customer)
            .doc("payments", "Confirm a payment with the provider's return data (applied at most once)")
            .body(json_body::<ConfirmPaymentInput>("input"))
            .returns::<PaymentConfirmation>(),
        RestRoute::new(M::GET, "/api/admin/payments", "AdminPayments", doc!("commerce/admin_payments.graphql"), "adminPayments")
            .access(Access::Admin)
            .doc("payments", "Payments by provider, status and date range (admin)")
            .query(query::<AdminPaymentsParams>())
            .returns::<PaymentPage>(),
    ]
}
