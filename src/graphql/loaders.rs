//! DataLoaders: batch the per-product lookups of a page into one query each.
//! A fresh loader per request, so nothing is cached across requests.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::db::Db;
use crate::entities::consent::{self, ConsentPurpose};
use crate::entities::{category, order_item, product_variant};
use crate::error::AppError;

/// The per-request loader type put into the GraphQL request data.
pub type RequestLoader =
    async_graphql::dataloader::DataLoader<CatalogLoader, async_graphql::dataloader::HashMapCache>;

pub struct CatalogLoader {
    db: Db,
    /// `PRIVACY_POLICY_VERSION`, for [`PrivacyPolicyAccepted`].
    policy_version: String,
}

impl CatalogLoader {
    pub fn new(db: Db, policy_version: String) -> Self {
        CatalogLoader { db, policy_version }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CategoryId(pub i64);

/// All variants of a product (the resolver applies the viewer's visibility).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VariantsOf(pub i64);

impl Loader<CategoryId> for CatalogLoader {
    type Value = category::Model;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[CategoryId],
    ) -> Result<HashMap<CategoryId, Self::Value>, Self::Error> {
        let rows = category::Entity::find()
            .filter(category::Column::Id.is_in(keys.iter().map(|k| k.0)))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|c| (CategoryId(c.id), c)).collect())
    }
}

impl Loader<VariantsOf> for CatalogLoader {
    type Value = Vec<product_variant::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[VariantsOf],
    ) -> Result<HashMap<VariantsOf, Self::Value>, Self::Error> {
        let rows = product_variant::Entity::find()
            .filter(product_variant::Column::ProductId.is_in(keys.iter().map(|k| k.0)))
            .order_by_asc(product_variant::Column::PriceCents)
            .order_by_asc(product_variant::Column::Id)
            .all(&self.db)
            .await?;
        let mut map: HashMap<VariantsOf, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for v in rows {
            map.entry(VariantsOf(v.product_id)).or_default().push(v);
        }
        Ok(map)
    }
}

/// The rating (visible reviews) of a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RatingOf(pub i64);

impl Loader<RatingOf> for CatalogLoader {
    type Value = crate::graphql::reviews::Rating;
    type Error = AppError;

    async fn load(&self, keys: &[RatingOf]) -> Result<HashMap<RatingOf, Self::Value>, Self::Error> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let found = crate::services::catalog::reviews::ratings(&self.db, &ids).await?;
        Ok(keys
            .iter()
            .map(|k| {
                let rating = match found.get(&k.0) {
                    Some((average, count)) => crate::graphql::reviews::Rating {
                        average: Some(*average),
                        count: *count,
                    },
                    None => crate::graphql::reviews::Rating {
                        average: None,
                        count: 0,
                    },
                };
                (*k, rating)
            })
            .collect())
    }
}

/// The lines of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderItemsOf(pub i64);

impl Loader<OrderItemsOf> for CatalogLoader {
    type Value = Vec<order_item::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[OrderItemsOf],
    ) -> Result<HashMap<OrderItemsOf, Self::Value>, Self::Error> {
        let rows = order_item::Entity::find()
            .filter(order_item::Column::OrderId.is_in(keys.iter().map(|k| k.0)))
            .order_by_asc(order_item::Column::Id)
            .all(&self.db)
            .await?;
        let mut map: HashMap<OrderItemsOf, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for i in rows {
            map.entry(OrderItemsOf(i.order_id)).or_default().push(i);
        }
        Ok(map)
    }
}

/// Whether a user accepted the privacy policy in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrivacyPolicyAccepted(pub i64);

impl Loader<PrivacyPolicyAccepted> for CatalogLoader {
    type Value = bool;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[PrivacyPolicyAccepted],
    ) -> Result<HashMap<PrivacyPolicyAccepted, Self::Value>, Self::Error> {
        let accepted = consent::Entity::find()
            .filter(consent::Column::UserId.is_in(keys.iter().map(|k| k.0)))
            .filter(consent::Column::Purpose.eq(ConsentPurpose::PrivacyPolicy))
            .filter(consent::Column::PolicyVersion.eq(self.policy_version.as_str()))
            .filter(consent::Column::WithdrawnAt.is_null())
            .all(&self.db)
            .await?;
        let mut map: HashMap<PrivacyPolicyAccepted, bool> =
            keys.iter().map(|k| (*k, false)).collect();
        for c in accepted {
            map.insert(PrivacyPolicyAccepted(c.user_id), true);
        }
        Ok(map)
    }
}
