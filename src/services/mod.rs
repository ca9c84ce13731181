//! Domain services: business rules, transactions and the audit log. Resolvers and webhooks call these.

pub mod addresses;
pub mod analytics;
pub mod auth;
pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod coupons;
pub mod events;
pub mod files;
pub mod housekeeping;
pub mod idempotency;
pub mod jobs;
pub mod logs;
pub mod medicinal;
pub mod orders;
pub mod pagination;
pub mod passwords;
pub mod payments;
pub mod rate_limit;
pub mod receipts;
pub mod reviews;
pub mod shipping;
pub mod stock;
pub mod tokens;
pub mod unique;
pub mod users;
