//! The store section: its name, how the medicinal catalogue shows to viewers without access, and
//! the checkout's rules.

use super::reader::Reader;
use super::ConfigError;

/// How medicinal products appear to viewers without access (`MEDICINAL_CATALOG_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogMode {
    /// Absent from lists and counts; `not_found` by id.
    Hidden,
    /// Listed to everyone, without variants, prices or stock, flagged `requiresMedicinalValidation`.
    Teaser,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store's name as printed on receipts and mail (`STORE_NAME`).
    pub name: String,
    pub medicinal_catalog_mode: CatalogMode,
    /// How long a checkout holds its stock (`RESERVATION_TTL_SECONDS`).
    pub reservation_ttl_seconds: i64,
    /// `REQUIRE_VERIFIED_EMAIL_FOR_CHECKOUT` (default false): checkout confirmation refuses users
    /// whose address is not verified (403 `email_not_verified`).
    pub require_verified_email_for_checkout: bool,
    /// `LOW_STOCK_THRESHOLD` (default 5): a variant whose stock falls from above it to it or
    /// below records `variant.stock_low` (the `stock.low` webhook).
    pub low_stock_threshold: i32,
}

impl StoreConfig {
    pub(super) fn parse(r: &Reader<'_>) -> Result<Self, ConfigError> {
        Ok(StoreConfig {
            name: r.text("STORE_NAME", "Dispensario"),
            medicinal_catalog_mode: r.one_of(
                "MEDICINAL_CATALOG_MODE",
                CatalogMode::Hidden,
                &[
                    ("hidden", CatalogMode::Hidden),
                    ("teaser", CatalogMode::Teaser),
                ],
            )?,
            reservation_ttl_seconds: r.positive("RESERVATION_TTL_SECONDS", 900)?,
            require_verified_email_for_checkout: r
                .parse("REQUIRE_VERIFIED_EMAIL_FOR_CHECKOUT", false)?,
            low_stock_threshold: r.parse("LOW_STOCK_THRESHOLD", 5)?,
        })
    }
}
