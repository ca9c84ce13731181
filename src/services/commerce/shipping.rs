//! Shipping quotes from the versioned rate table `config/shipping.json`: by region group,
//! weight band (Σ quantity × variant weight) and order total (free shipping over a threshold).

use std::collections::HashMap;
use std::sync::LazyLock;

use async_graphql::{InputObject, SimpleObject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::entities::order::ShippingMethod;
use crate::error::{AppError, AppResult};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateTable {
    pub version: String,
    pub free_shipping_threshold_cents: i64,
    pub region_groups: HashMap<String, Vec<String>>,
    pub methods: Vec<MethodRates>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MethodRates {
    pub code: String,
    pub label: String,
    #[serde(default)]
    pub only_regions: Option<Vec<String>>,
    pub free_over_threshold: bool,
    pub groups: HashMap<String, GroupRates>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupRates {
    pub eta_days: i64,
    /// Ordered by weight; the last band has no maximum.
    pub bands: Vec<Band>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Band {
    pub max_weight_grams: Option<i64>,
    pub price_cents: i64,
}

/// The table shipped in the repository, parsed once (a test checks it parses and covers every region).
pub static RATES: LazyLock<RateTable> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../../config/shipping.json"))
        .expect("config/shipping.json is valid")
});

#[derive(SimpleObject, Serialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShippingOption {
    pub code: ShippingMethod,
    pub label: String,
    pub price_cents: i64,
    pub eta_days: i64,
}

/// Every method that serves `region`, priced for `weight_grams` and `subtotal_cents`.
pub fn options(region: &str, weight_grams: i64, subtotal_cents: i64) -> Vec<ShippingOption> {
    let table = &*RATES;
    let Some(group) = table
        .region_groups
        .iter()
        .find(|(_, regions)| regions.iter().any(|r| r == region))
        .map(|(g, _)| g.as_str())
    else {
        return Vec::new();
    };
    table
        .methods
        .iter()
        .filter(|m| {
            m.only_regions
                .as_ref()
                .is_none_or(|only| only.iter().any(|r| r == region))
        })
        .filter_map(|m| {
            let code = ShippingMethod::from_code(&m.code)?;
            let rates = m.groups.get(group)?;
            let band = rates
                .bands
                .iter()
                .find(|b| b.max_weight_grams.is_none_or(|max| weight_grams <= max))?;
            let free =
                m.free_over_threshold && subtotal_cents >= table.free_shipping_threshold_cents;
            Some(ShippingOption {
                code,
                label: m.label.clone(),
                price_cents: if free { 0 } else { band.price_cents },
                eta_days: rates.eta_days,
            })
        })
        .collect()
}

/// The cheapest option, ties broken by the shorter ETA.
pub fn best(options: &[ShippingOption]) -> Option<ShippingOption> {
    options
        .iter()
        .min_by_key(|o| (o.price_cents, o.eta_days))
        .cloned()
}

/// The price of one method, or `validation_error` when it does not serve the region.
pub fn price_of(
    method: ShippingMethod,
    region: &str,
    weight_grams: i64,
    subtotal_cents: i64,
) -> AppResult<ShippingOption> {
    options(region, weight_grams, subtotal_cents)
        .into_iter()
        .find(|o| o.code == method)
        .ok_or_else(|| {
            AppError::invalid(
                "shippingMethod",
                "unavailable_for_region",
                format!("{} does not deliver to {region}", method.code()),
            )
        })
}

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuoteItem {
    pub variant_id: i64,
    pub quantity: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::REGIONS;

    #[test]
    fn table_parses_and_covers_every_region() {
        let t = &*RATES;
        for (name, _, _) in REGIONS {
            assert!(
                t.region_groups
                    .values()
                    .any(|g| g.iter().any(|r| r == name)),
                "{name} has no group"
            );
            assert!(!options(name, 500, 1000).is_empty(), "{name} has no method");
        }
        for m in &t.methods {
            assert!(ShippingMethod::from_code(&m.code).is_some(), "{}", m.code);
            for g in m.groups.values() {
                assert!(
                    g.bands.last().is_some_and(|b| b.max_weight_grams.is_none()),
                    "{}: open last band",
                    m.code
                );
            }
        }
    }

    #[test]
    fn bands_threshold_and_best() {
        let o = options("Metropolitana", 800, 10_000);
        assert_eq!(
            o.iter()
                .find(|x| x.code == ShippingMethod::Chilexpress)
                .unwrap()
                .price_cents,
            3990
        );
        assert_eq!(best(&o).unwrap().code, ShippingMethod::RetiroTienda);
        let o = options("Valparaíso", 6000, 10_000);
        assert!(
            o.iter().all(|x| x.code != ShippingMethod::RetiroTienda),
            "pickup only in Santiago"
        );
        assert_eq!(
            o.iter()
                .find(|x| x.code == ShippingMethod::Starken)
                .unwrap()
                .price_cents,
            8990
        );
        assert_eq!(
            best(&o).unwrap().code,
            ShippingMethod::Manual,
            "6990 beats 8990 and 9990"
        );
        let free = options("Valparaíso", 6000, 80_000);
        assert_eq!(
            free.iter()
                .find(|x| x.code == ShippingMethod::Chilexpress)
                .unwrap()
                .price_cents,
            0
        );
        let b = best(&free).unwrap();
        assert_eq!(
            (b.code, b.price_cents),
            (ShippingMethod::Chilexpress, 0),
            "free tie broken by ETA"
        );
        assert!(price_of(ShippingMethod::RetiroTienda, "Magallanes", 1, 1).is_err());
    }
}
