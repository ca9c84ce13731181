//! REST rows for product reviews.

use axum::http::{Method, StatusCode};

use super::catalog_routes::PageParams;
use super::{json_body, query, Access, RestRoute};
use crate::graphql::reviews::{Review, ReviewPage};
use crate::services::catalog::reviews::{ModerateInput, ReviewInput};

#[rustfmt::skip]
pub fn routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(M::GET, "/api/products/{id}/reviews", "ProductReviews", doc!("reviews/product_reviews.graphql", "review_fields.graphql"), "productReviews")
            .doc("reviews", "A product's visible reviews, newest first, with averageRating and count")
            .query(query::<PageParams>())
            .returns::<ReviewPage>(),
        RestRoute::new(M::POST, "/api/products/{id}/reviews", "CreateReview", doc!("reviews/create_review.graphql", "review_fields.graphql"), "createReview")
            .status(StatusCode::CREATED)
            .access(Access::Customer)
            .doc("reviews", "Review a product you bought (else 403 not_a_buyer); once per product (409); rating 1–5, title ≤ 120, body 10–2000, HTML stripped, blocklisted words 400 inappropriate_language")
            .body(json_body::<ReviewInput>("input"))
            .returns::<Review>(),
        RestRoute::new(M::PATCH, "/api/reviews/{id}", "ModerateReview", doc!("reviews/moderate_review.graphql", "review_fields.graphql"), "moderateReview")
            .access(Access::Admin)
            .doc("reviews", "Show or hide a review {isVisible} (admin)")
            .body(json_body::<ModerateInput>("input"))
            .returns::<Review>(),
    ]
}
