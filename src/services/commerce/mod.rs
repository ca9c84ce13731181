//! Commerce: carts, checkout and its stock reservations (`inventory`), orders and their
//! transitions, coupons, shipping rates, receipts, and the sales analytics.

pub mod analytics;
pub mod cart;
pub mod checkout;
pub mod coupons;
pub mod inventory;
pub mod orders;
pub mod receipts;
pub mod shipping;
