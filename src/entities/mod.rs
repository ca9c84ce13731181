//! SeaORM entities, one module per table.

pub mod auth_token;
pub mod category;
pub mod file;
pub mod product;
pub mod product_variant;
pub mod revoked_access_token;
pub mod system_log;
pub mod user;
pub mod user_profile;
