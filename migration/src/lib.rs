//! Database migrations, portable across PostgreSQL and SQLite.
//!
//! Timestamps are always written by the application (UTC, from its clock), never by
//! database defaults, so that both backends store and compare them the same way.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_identity;
mod m20261122_000002_catalog;
mod m20261122_000003_commerce;
mod m20261122_000004_payments;
mod m20261123_000005_medicinal_reviews;
mod m20261201_000006_catalogue_version;
mod m20261201_000007_catalogue_order_index;
mod m20261201_000008_outbox;
mod m20261203_000009_jobs;
mod m20261203_000010_outbox_deliveries;
mod m20261203_000011_account_links;
mod m20261203_000012_sessions;
mod m20261203_000013_two_factor;
mod m20261203_000014_consents;
mod m20261203_000015_privacy_requests;
mod m20261203_000016_erasure;
mod m20261207_000017_credential_attempts;
mod m20261208_000018_api_keys;
mod m20261208_000019_webhooks;
mod util;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_identity::Migration),
            Box::new(m20261122_000002_catalog::Migration),
            Box::new(m20261122_000003_commerce::Migration),
            Box::new(m20261122_000004_payments::Migration),
            Box::new(m20261123_000005_medicinal_reviews::Migration),
            Box::new(m20261201_000006_catalogue_version::Migration),
            Box::new(m20261201_000007_catalogue_order_index::Migration),
            Box::new(m20261201_000008_outbox::Migration),
            Box::new(m20261203_000009_jobs::Migration),
            Box::new(m20261203_000010_outbox_deliveries::Migration),
            Box::new(m20261203_000011_account_links::Migration),
            Box::new(m20261203_000012_sessions::Migration),
            Box::new(m20261203_000013_two_factor::Migration),
            Box::new(m20261203_000014_consents::Migration),
            Box::new(m20261203_000015_privacy_requests::Migration),
            Box::new(m20261203_000016_erasure::Migration),
            Box::new(m20261207_000017_credential_attempts::Migration),
            Box::new(m20261208_000018_api_keys::Migration),
            Box::new(m20261208_000019_webhooks::Migration),
        ]
    }
}
