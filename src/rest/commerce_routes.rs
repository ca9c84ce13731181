//! REST rows for addresses, the cart, shipping quotes, coupons and checkout.

use axum::http::{Method, StatusCode};

use super::catalog_routes::PageParams;
use super::{json_body, query, Access, RestRoute};
use crate::graphql::addresses::{Address, AddressPage};
use crate::graphql::cart::Cart;
use crate::services::addresses::{AddressInput, UpdateAddressInput};
use crate::services::cart::CartItemInput;

pub fn routes() -> Vec<RestRoute> {
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
    ]
}
