//! SeaORM entities, one module per table.

pub mod auth_token;
pub mod revoked_access_token;
pub mod system_log;
pub mod user;
pub mod user_profile;
