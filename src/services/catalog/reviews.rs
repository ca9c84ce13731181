//! Product reviews (spec §5): buyers only, one per user and product, HTML stripped, a word
//! blocklist, and admin moderation (`isVisible`).

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use async_graphql::InputObject;
use sea_orm::sea_query::{Alias, Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, JoinType, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, RelationDef, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::order::OrderStatus;
use crate::entities::{order, order_item, product_review};
use crate::error::{AppError, AppResult, FieldIssue};
use crate::services::catalog::products;
use crate::services::catalog::text::fold;
use crate::services::platform::events::{self, DomainEvent, FromTo};
use crate::services::platform::pagination::Page;
use crate::state::AppState;

pub const RATING: (i64, i64) = (1, 5);
pub const TITLE_MAX: usize = 120;
pub const BODY_MIN: usize = 10;
pub const BODY_MAX: usize = 2000;

/// `POST /api/products/{id}/reviews`.
#[derive(Debug, Clone, InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[graphql(name = "ReviewInput")]
#[schema(example = json!({"rating": 5, "title": "Excelente", "body": "Germinaron todas las semillas, muy buena genética."}))]
pub struct ReviewInput {
    /// 1 to 5.
    pub rating: i64,
    #[serde(default)]
    pub title: Option<String>,
    /// 10 to 2000 characters once HTML is removed.
    pub body: String,
}

/// `PATCH /api/reviews/{id}` (admin).
#[derive(Debug, Clone, InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[graphql(name = "ModerateReviewInput")]
#[schema(example = json!({"isVisible": false}))]
pub struct ModerateInput {
    pub is_visible: bool,
}

/// The blocklist, folded like review text (lower case, no Spanish accents: `Huevón` = `huevon`).
static BLOCKLIST: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("../../../assets/review_blocklist.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(fold)
        .collect()
});

/// Whether any word of `text` is on the blocklist.
pub fn has_blocked_word(text: &str) -> bool {
    fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| !w.is_empty() && BLOCKLIST.contains(w))
}

/// Plain text from user input: tags (and the content of scripts and styles) removed by
/// `ammonia`, entities decoded, whitespace collapsed.
pub fn strip_html(s: &str) -> String {
    let cleaned = ammonia::Builder::empty().clean(s).to_string();
    let decoded = html_escape::decode_html_entities(&cleaned);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A review's checked, cleaned fields.
fn validate(input: &ReviewInput) -> AppResult<(i16, Option<String>, String)> {
    let mut issues = Vec::new();
    if !(RATING.0..=RATING.1).contains(&input.rating) {
        issues.push(FieldIssue::new("rating", "out_of_range"));
    }
    let title = input
        .title
        .as_deref()
        .map(strip_html)
        .filter(|t| !t.is_empty());
    if title
        .as_ref()
        .is_some_and(|t| t.chars().count() > TITLE_MAX)
    {
        issues.push(FieldIssue::new("title", "too_long"));
    }
    let body = strip_html(&input.body);
    let len = body.chars().count();
    if len < BODY_MIN {
        issues.push(FieldIssue::new("body", "too_short"));
    } else if len > BODY_MAX {
        issues.push(FieldIssue::new("body", "too_long"));
    }
    if !issues.is_empty() {
        return Err(AppError::invalid_fields(issues).with_message(format!(
            "rating is 1–5, title at most {TITLE_MAX} characters, body {BODY_MIN}–{BODY_MAX}"
        )));
    }
    let mut blocked = Vec::new();
    if title.as_deref().is_some_and(has_blocked_word) {
        blocked.push(FieldIssue::new("title", "inappropriate_language"));
    }
    if has_blocked_word(&body) {
        blocked.push(FieldIssue::new("body", "inappropriate_language"));
    }
    if !blocked.is_empty() {
        return Err(AppError::invalid_fields(blocked)
            .with_message("The review contains words that are not allowed"));
    }
    Ok((input.rating as i16, title, body))
}

fn item_order() -> RelationDef {
    order_item::Entity::belongs_to(order::Entity)
        .from(order_item::Column::OrderId)
        .to(order::Column::Id)
        .into()
}

/// Whether `user_id` bought `product_id` (an order paid, shipped or delivered holding it).
pub async fn is_buyer<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    product_id: i64,
) -> AppResult<bool> {
    let n = order_item::Entity::find()
        .join(JoinType::InnerJoin, item_order())
        .filter(order_item::Column::ProductId.eq(product_id))
        .filter(order::Column::UserId.eq(user_id))
        .filter(order::Column::Status.is_in(OrderStatus::SOLD))
        .count(conn)
        .await?;
    Ok(n > 0)
}

/// The visible reviews of a product the viewer may see, newest first.
pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    product_id: i64,
    page: Page,
) -> AppResult<(Vec<product_review::Model>, u64)> {
    products::get(st, ctx, product_id).await?;
    let q = product_review::Entity::find()
        .filter(product_review::Column::ProductId.eq(product_id))
        .filter(product_review::Column::IsVisible.eq(true))
        .order_by_desc(product_review::Column::CreatedAt)
        .order_by_desc(product_review::Column::Id);
    page.fetch(&st.db, q).await
}

/// Average and count of the visible reviews of each product (absent: none).
pub async fn ratings<C: ConnectionTrait>(
    conn: &C,
    product_ids: &[i64],
) -> AppResult<HashMap<i64, (f64, i64)>> {
    let rows: Vec<(i64, i64, i64)> = product_review::Entity::find()
        .select_only()
        .column(product_review::Column::ProductId)
        .column_as(
            Expr::cust("CAST(SUM(product_reviews.rating) AS BIGINT)"),
            "rating_sum",
        )
        .column_as(Expr::cust("COUNT(*)"), "rating_count")
        .filter(product_review::Column::ProductId.is_in(product_ids.iter().copied()))
        .filter(product_review::Column::IsVisible.eq(true))
        .group_by(product_review::Column::ProductId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, sum, n)| rating(Some(sum), n).map(|r| (id, r)))
        .collect())
}

/// A rating from its visible reviews' sum and count: the mean to 2 decimals, and the count;
/// none without reviews.
fn rating(sum: Option<i64>, count: i64) -> Option<(f64, i64)> {
    (count > 0).then(|| (round2(sum.unwrap_or(0) as f64 / count as f64), count))
}

/// The column names [`rating_columns`] adds.
const RATING_SUM: &str = "rating_sum";
const RATING_COUNT: &str = "rating_count";

/// The rating of the product each row of a product query is (`products.id`), as two correlated
/// subqueries to add to its columns, so a page or a product comes with its rating in its own
/// statement (each an index probe on `(product_id, is_visible, …)`); read back with
/// [`rating_of_row`].
pub fn rating_columns() -> [(SimpleExpr, Alias); 2] {
    use crate::entities::product;
    use sea_orm::sea_query::{Asterisk, ExprTrait as _, Func, Query};
    let r = Alias::new("r");
    let of_row = |expr: SimpleExpr| -> SimpleExpr {
        SimpleExpr::SubQuery(
            None,
            Box::new(
                Query::select()
                    .expr(expr)
                    .from_as(product_review::Entity, r.clone())
                    .and_where(
                        Expr::col((r.clone(), product_review::Column::ProductId))
                            .equals((product::Entity, product::Column::Id)),
                    )
                    .and_where(Expr::col((r.clone(), product_review::Column::IsVisible)).eq(true))
                    .to_owned()
                    .into(),
            ),
        )
    };
    [
        (
            of_row(
                Func::cast_as(
                    Func::sum(Expr::col((r.clone(), product_review::Column::Rating))),
                    Alias::new("BIGINT"),
                )
                .into(),
            ),
            Alias::new(RATING_SUM),
        ),
        (
            of_row(Expr::col(Asterisk).count()),
            Alias::new(RATING_COUNT),
        ),
    ]
}

/// The rating a row read with [`rating_columns`] carries.
pub fn rating_of_row(row: &sea_orm::QueryResult) -> Result<Option<(f64, i64)>, sea_orm::DbErr> {
    let sum: Option<i64> = row.try_get("", RATING_SUM)?;
    let count: i64 = row.try_get("", RATING_COUNT)?;
    Ok(rating(sum, count))
}

/// The first names of reviewers, for showing who wrote what without exposing more.
pub async fn author_names<C: ConnectionTrait>(
    conn: &C,
    user_ids: impl IntoIterator<Item = i64>,
) -> AppResult<HashMap<i64, String>> {
    use crate::entities::user;
    let ids: HashSet<i64> = user_ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|u| {
            if u.erased_at.is_some() {
                return (u.id, user::ERASED_NAME.to_string());
            }
            let first = u.name.split_whitespace().next().unwrap_or("").to_string();
            (u.id, first)
        })
        .collect())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A buyer reviews a product, once.
pub async fn create(
    st: &AppState,
    ctx: &RequestCtx,
    product_id: i64,
    input: ReviewInput,
) -> AppResult<product_review::Model> {
    let me = ctx.require_writable_user()?.id;
    products::get(st, ctx, product_id).await?;
    let (rating, title, body) = validate(&input)?;
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    if !is_buyer(&txn, me, product_id).await? {
        return Err(
            AppError::forbidden("Only customers who bought this product can review it")
                .with_details(vec![FieldIssue::new("productId", "not_a_buyer")]),
        );
    }
    let existing = product_review::Entity::find()
        .filter(product_review::Column::ProductId.eq(product_id))
        .filter(product_review::Column::UserId.eq(me))
        .count(&txn)
        .await?;
    let duplicate = || {
        AppError::conflict_field(
            "productId",
            "already_reviewed",
            "You already reviewed this product",
        )
    };
    if existing > 0 {
        return Err(duplicate());
    }
    let now = st.clock.now();
    let review = product_review::ActiveModel {
        product_id: Set(product_id),
        user_id: Set(me),
        rating: Set(rating),
        title: Set(title),
        body: Set(body),
        is_visible: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    // Two submissions racing: the unique index decides.
    .map_err(crate::error::unique_or(duplicate))?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ReviewCreated {
            id: review.id,
            product_id,
            rating,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(review)
}

/// Admin: shows or hides a review.
pub async fn moderate(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: ModerateInput,
) -> AppResult<product_review::Model> {
    ctx.require_admin()?;
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    let review = product_review::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Review"))?;
    if review.is_visible == input.is_visible {
        return Ok(review);
    }
    let from = review.is_visible;
    let mut am: product_review::ActiveModel = review.into();
    am.is_visible = Set(input.is_visible);
    am.updated_at = Set(st.clock.now());
    let review = am.update(&txn).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ReviewModerated {
            id,
            is_visible: FromTo {
                from,
                to: input.is_visible,
            },
        },
    )
    .await?;
    txn.commit().await?;
    Ok(review)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_stripped_to_plain_text() {
        assert_eq!(
            strip_html("<b>Muy</b> buena <script>alert(1)</script>semilla"),
            "Muy buena semilla"
        );
        assert_eq!(
            strip_html("Calidad &amp; precio <i>10/10</i>"),
            "Calidad & precio 10/10"
        );
        assert_eq!(strip_html("  a\n\n b  "), "a b");
        assert_eq!(strip_html("<img src=x onerror=alert(1)>"), "");
    }

    #[test]
    fn blocklisted_words_match_whole_words_without_accents() {
        assert!(has_blocked_word("Eres un IDIOTA."));
        assert!(has_blocked_word("qué huevón"));
        assert!(has_blocked_word("this is shit!"));
        assert!(!has_blocked_word("Shitake no, shiitake sí"));
        assert!(!has_blocked_word("Excelente producto, llegó rápido"));
    }

    #[test]
    fn bounds() {
        let ok = ReviewInput {
            rating: 5,
            title: Some("<b>Buenísimo</b>".into()),
            body: "Llegó muy rápido y bien embalado.".into(),
        };
        let (r, t, b) = validate(&ok).unwrap();
        assert_eq!(
            (r, t.as_deref(), b.as_str()),
            (5, Some("Buenísimo"), "Llegó muy rápido y bien embalado.")
        );
        let bad = ReviewInput {
            rating: 6,
            title: Some("x".repeat(121)),
            body: "<p>corto</p>".into(),
        };
        let e = validate(&bad).unwrap_err();
        let issues: Vec<(&str, &str)> = e
            .details
            .iter()
            .map(|d| (d.field.as_str(), d.issue.as_str()))
            .collect();
        assert_eq!(
            issues,
            vec![
                ("rating", "out_of_range"),
                ("title", "too_long"),
                ("body", "too_short")
            ]
        );
    }
}
