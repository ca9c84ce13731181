//! GraphQL for product reviews and ratings.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::product_review;
use crate::entities::user::Role;
use crate::services::catalog::reviews::{self, ModerateInput, ReviewInput};
use crate::services::platform::pagination::Page;

#[derive(SimpleObject, Serialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rating {
    /// The mean of the visible reviews' ratings, 2 decimals (none without reviews).
    pub average: Option<f64>,
    pub count: i64,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 7, "productId": 1, "userId": 2, "authorName": "Cliente", "rating": 5, "title": "Excelente",
    "body": "Germinaron todas las semillas.", "isVisible": true, "createdAt": "2026-11-23T08:00:00Z", "updatedAt": "2026-11-23T08:00:00Z"}))]
pub struct Review {
    pub id: i64,
    pub product_id: i64,
    pub user_id: i64,
    /// The reviewer's first name.
    pub author_name: String,
    pub rating: i32,
    pub title: Option<String>,
    pub body: String,
    pub is_visible: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Review {
    fn new(r: product_review::Model, author_name: String) -> Self {
        Review {
            id: r.id,
            product_id: r.product_id,
            user_id: r.user_id,
            author_name,
            rating: i32::from(r.rating),
            title: r.title,
            body: r.body,
            is_visible: r.is_visible,
            created_at: r.created_at.into(),
            updated_at: r.updated_at.into(),
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 7, "productId": 1, "userId": 2, "authorName": "Cliente", "rating": 5, "title": "Excelente",
    "body": "Germinaron todas las semillas.", "isVisible": true, "createdAt": "2026-11-23T08:00:00Z", "updatedAt": "2026-11-23T08:00:00Z"}],
    "total": 1, "page": 1, "pageSize": 20, "averageRating": 5.0, "count": 1}))]
pub struct ReviewPage {
    pub items: Vec<Review>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
    /// Over all visible reviews of the product, not just this page.
    pub average_rating: Option<f64>,
    pub count: i64,
}

#[derive(Default)]
pub struct ReviewsQuery;

#[Object]
impl ReviewsQuery {
    /// The visible reviews of a product, newest first, with the average rating and count.
    #[graphql(complexity = "crate::graphql::limits::paged(page_size, child_complexity)")]
    async fn product_reviews(
        &self,
        ctx: &Context<'_>,
        product_id: i64,
        page: Option<i64>,
        page_size: Option<i64>,
    ) -> GqlResult<ReviewPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (rows, total) = reviews::list(st, rc, product_id, p).await?;
        let names = reviews::author_names(&st.db, rows.iter().map(|r| r.user_id)).await?;
        let (average_rating, count) = reviews::ratings(&st.db, &[product_id])
            .await?
            .get(&product_id)
            .map_or((None, 0), |(avg, n)| (Some(*avg), *n));
        Ok(ReviewPage {
            items: rows
                .into_iter()
                .map(|r| {
                    let name = names.get(&r.user_id).cloned().unwrap_or_default();
                    Review::new(r, name)
                })
                .collect(),
            total,
            page: p.page,
            page_size: p.page_size,
            average_rating,
            count,
        })
    }
}

#[derive(Default)]
pub struct ReviewsMutation;

#[Object]
impl ReviewsMutation {
    /// Reviews a product you bought (a paid, shipped or delivered order holding it); once per product.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn create_review(
        &self,
        ctx: &Context<'_>,
        product_id: i64,
        input: ReviewInput,
    ) -> GqlResult<Review> {
        let (st, rc) = parts(ctx);
        let r = reviews::create(st, rc, product_id, input).await?;
        let name = reviews::author_names(&st.db, [r.user_id])
            .await?
            .remove(&r.user_id)
            .unwrap_or_default();
        Ok(Review::new(r, name))
    }

    /// Admin: shows or hides a review.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn moderate_review(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: ModerateInput,
    ) -> GqlResult<Review> {
        let (st, rc) = parts(ctx);
        let r = reviews::moderate(st, rc, id, input).await?;
        let name = reviews::author_names(&st.db, [r.user_id])
            .await?
            .remove(&r.user_id)
            .unwrap_or_default();
        Ok(Review::new(r, name))
    }
}
