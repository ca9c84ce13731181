//! SeaORM entities, one module per table.

pub mod account_link;
pub mod address;
pub mod api_key;
pub mod auth_token;
pub mod cart;
pub mod cart_item;
pub mod category;
pub mod consent;
pub mod coupon;
pub mod credential_attempt;

pub mod file;
pub mod idempotency_key;
pub mod job;
pub mod medicinal_document;
pub mod order;
pub mod order_item;
pub mod outbox_delivery;
pub mod outbox_event;
pub mod payment;
pub mod payment_event;
pub mod privacy_request;
pub mod product;
pub mod product_review;
pub mod product_variant;
pub mod recovery_code;
pub mod revoked_access_token;
pub mod session;
pub mod stock_reservation;
pub mod system_log;
pub mod user;
pub mod user_profile;
pub mod user_two_factor;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
