//! Products: gated listing with filters and whitelisted sorting, admin CRUD.

use async_graphql::{InputObject, MaybeUndefined};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, LikeExpr, Order, Query, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    FromQueryResult, IdenStatic, JoinType, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, RelationTrait, SelectA, SelectB, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::{
    fold, parse_description, parse_image_url, parse_slug, parse_text, search_text, slugify, Naming,
};
use super::variants::{insert_variant, CreateVariantInput};
use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::{cart_item, category, order_item, product, product_variant};
use crate::error::Issues;
use crate::error::{AppError, AppResult, FieldIssue};
use crate::services::catalog::reviews;
use crate::services::medicinal::gate;
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::files;
use crate::services::platform::pagination::{like_pattern, Page};
use crate::services::platform::row_write::{self, Cached};
use crate::services::platform::unique::ensure_free;
use crate::state::AppState;

/// Price filters are whole pesos, never negative.
pub const PRICE_FILTER_MIN: i64 = 0;

/// Longest name, in characters (after trimming).
pub const NAME_MAX: usize = 200;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"categoryId": 1, "name": "Northern Lights Auto", "description": "Autofloreciente, 8 semanas",
    "variants": [{"sku": "NL-AUTO-1", "optionLabel": "1 semilla", "priceCents": 4990, "stock": 25, "weightGrams": 1}]}))]
pub struct CreateProductInput {
    pub category_id: i64,
    pub name: String,
    /// Derived from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An http(s) URL or an `/uploads/...` path from `POST /api/uploads/image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<CreateVariantInput>>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Northern Lights Auto (x3)", "isActive": false}))]
pub struct UpdateProductInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `null` removes the image.
    #[serde(default, skip_serializing_if = "MaybeUndefined::is_undefined")]
    #[schema(value_type = Option<String>)]
    pub image_url: MaybeUndefined<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

#[derive(Debug, Default, Clone)]
pub struct ProductFilter {
    pub q: Option<String>,
    /// A category slug or id.
    pub category: Option<String>,
    pub is_active: Option<bool>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub sort: Option<String>,
}

/// Sortable fields (spec §2: `sort=price,-createdAt`).
pub const SORT_FIELDS: &[&str] = &["price", "name", "createdAt", "updatedAt", "id"];

/// The cheapest active variant's price (products without one sort last on both databases).
fn min_price_expr() -> SimpleExpr {
    let v = Alias::new("v");
    let sub = Query::select()
        .expr(Func::min(Expr::col((
            v.clone(),
            product_variant::Column::PriceCents,
        ))))
        .from_as(product_variant::Entity, v.clone())
        .and_where(
            Expr::col((v.clone(), product_variant::Column::ProductId))
                .equals((product::Entity, product::Column::Id)),
        )
        .and_where(Expr::col((v, product_variant::Column::IsActive)).eq(true))
        .to_owned();
    Func::coalesce([
        SimpleExpr::SubQuery(None, Box::new(sub.into())),
        Expr::val(i64::MAX),
    ])
    .into()
}

fn parse_sort(raw: Option<&str>) -> AppResult<Vec<(&'static str, Order)>> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(vec![("createdAt", Order::Desc), ("id", Order::Desc)]);
    };
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim) {
        let (name, order) = match part.strip_prefix('-') {
            Some(n) => (n, Order::Desc),
            None => (part.strip_prefix('+').unwrap_or(part), Order::Asc),
        };
        let Some(field) = SORT_FIELDS.iter().find(|f| **f == name) else {
            return Err(AppError::invalid(
                "sort",
                "invalid_sort_field",
                format!(
                    "Cannot sort by '{name}'; allowed: {}",
                    SORT_FIELDS.join(", ")
                ),
            ));
        };
        out.push((*field, order));
    }
    if !out.iter().any(|(f, _)| *f == "id") {
        out.push(("id", Order::Asc));
    }
    Ok(out)
}

/// A product as catalogue reads show it: with its category and, when asked for, its rating
/// (the visible reviews' mean and count; `None` without reviews), all from one statement.
pub struct ProductRow {
    pub product: product::Model,
    pub category: category::Model,
    pub rating: Option<Option<(f64, i64)>>,
}

impl ProductRow {
    fn read(row: &sea_orm::QueryResult, with_rating: bool) -> Result<Self, sea_orm::DbErr> {
        Ok(ProductRow {
            product: product::Model::from_query_result(row, SelectA.as_str())?,
            category: category::Model::from_query_result(row, SelectB.as_str())?,
            rating: if with_rating {
                Some(reviews::rating_of_row(row)?)
            } else {
                None
            },
        })
    }
}

pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    filter: ProductFilter,
    page: Page,
    with_rating: bool,
) -> AppResult<(Vec<ProductRow>, u64)> {
    let mut issues = Issues::default();
    for (field, v) in [
        ("priceMin", filter.price_min),
        ("priceMax", filter.price_max),
    ] {
        if v.is_some_and(|v| v < PRICE_FILTER_MIN) {
            issues.push(field, "negative");
        }
    }
    if let (Some(a), Some(b)) = (filter.price_min, filter.price_max) {
        if a > b {
            issues.push("priceMin", "greater_than_price_max");
        }
    }
    let sort = issues.take(parse_sort(filter.sort.as_deref()));
    issues.finish()?;
    let sort = sort.unwrap_or_default();

    let access = gate::has_access(st, &st.db, ctx).await?;
    let admin = ctx.sees_whole_catalogue();
    let mut cond = Condition::all();
    if let Some(f) = gate::visibility_filter(access, st.config.store.medicinal_catalog_mode) {
        cond = cond.add(f);
    }
    if !admin {
        cond = cond
            .add(product::Column::IsActive.eq(true))
            .add(category::Column::IsActive.eq(true));
    }
    if let Some(a) = filter.is_active {
        cond = cond.add(product::Column::IsActive.eq(a));
    }
    if let Some(c) = filter
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        cond = cond.add(match c.parse::<i64>() {
            Ok(id) => category::Column::Id.eq(id),
            Err(_) => category::Column::Slug.eq(c),
        });
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = like_pattern(&fold(q));
        cond = cond.add(
            Expr::col((product::Entity, product::Column::SearchText))
                .like(LikeExpr::new(pattern).escape('\\')),
        );
    }
    if filter.price_min.is_some() || filter.price_max.is_some() {
        let v = Alias::new("v");
        let mut sub = Query::select();
        sub.expr(Expr::val(1))
            .from_as(product_variant::Entity, v.clone())
            .and_where(
                Expr::col((v.clone(), product_variant::Column::ProductId))
                    .equals((product::Entity, product::Column::Id)),
            )
            .and_where(Expr::col((v.clone(), product_variant::Column::IsActive)).eq(true));
        if let Some(min) = filter.price_min {
            sub.and_where(Expr::col((v.clone(), product_variant::Column::PriceCents)).gte(min));
        }
        if let Some(max) = filter.price_max {
            sub.and_where(Expr::col((v, product_variant::Column::PriceCents)).lte(max));
        }
        cond = cond.add(Expr::exists(sub.to_owned()));
    }

    let mut q = product::Entity::find()
        .join(JoinType::InnerJoin, product::Relation::Category.def())
        .filter(cond);
    for (field, order) in sort {
        q = match field {
            "price" => q.order_by(min_price_expr(), order),
            "name" => q.order_by(product::Column::Name, order),
            "createdAt" => q.order_by(product::Column::CreatedAt, order),
            "updatedAt" => q.order_by(product::Column::UpdatedAt, order),
            _ => q.order_by(product::Column::Id, order),
        };
    }
    // The page, each product with its category (joined anyway) and the total: one statement, and
    // no count at all while the total is known for the catalogue's generation.
    let key = total_key(access, admin, &filter);
    let generation = st.catalogue.readable();
    let known = generation.and_then(|g| st.catalogue.total(&key, g));
    let q = q.select_two_required(category::Entity).into_query();
    let ratings = if with_rating {
        reviews::rating_columns().to_vec()
    } else {
        Vec::new()
    };
    let (items, total) = page
        .fetch_rows_knowing(
            &st.db,
            q,
            ratings,
            |row| ProductRow::read(row, with_rating),
            known,
        )
        .await?;
    if let (None, Some(g)) = (known, generation) {
        st.catalogue.remember_total(key, g, total);
    }
    Ok((items, total))
}

/// What a product list's total depends on: the viewer's access and role, and every filter (the
/// sort and the page do not change it).
fn total_key(access: bool, admin: bool, f: &ProductFilter) -> String {
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    format!(
        "products|{access}|{admin}|{:?}|{:?}|{:?}|{:?}|{:?}",
        f.is_active,
        text(&f.category),
        text(&f.q).map(|q| fold(&q)),
        f.price_min,
        f.price_max
    )
}

/// A product the viewer may see; `not_found` otherwise (inactive for non-admins, or gated).
pub async fn get(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<product::Model> {
    Ok(get_row(st, ctx, id, false).await?.product)
}

/// [`get`], with the product's category and, when asked for, its rating (one statement).
pub async fn get_row(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    with_rating: bool,
) -> AppResult<ProductRow> {
    let mut q = product::Entity::find_by_id(id)
        .select_two_required(category::Entity)
        .join(JoinType::InnerJoin, product::Relation::Category.def())
        .into_query();
    if with_rating {
        for (expr, alias) in reviews::rating_columns() {
            q.expr_as(expr, alias);
        }
    }
    let found = match st.db.query_one(&q).await? {
        Some(row) => ProductRow::read(&row, with_rating)?,
        None => return Err(AppError::not_found("Product")),
    };
    let (p, c) = (&found.product, &found.category);
    let visible = p.is_active && c.is_active;
    if !ctx.sees_whole_catalogue() && !visible {
        return Err(AppError::not_found("Product"));
    }
    let access = gate::has_access(st, &st.db, ctx).await?;
    if c.is_medicinal
        && gate::visibility_filter(access, st.config.store.medicinal_catalog_mode).is_some()
    {
        return Err(AppError::not_found("Product"));
    }
    Ok(found)
}

async fn ensure_category<C: ConnectionTrait>(conn: &C, id: i64) -> AppResult<category::Model> {
    category::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("categoryId", "not_found", "The category does not exist"))
}

async fn ensure_slug_free<C: ConnectionTrait>(
    conn: &C,
    slug: &str,
    except: Option<i64>,
) -> AppResult<()> {
    let except = except.map(|id| (product::Column::Id, id));
    ensure_free::<product::Entity, _>(
        conn,
        product::Column::Slug,
        slug,
        except,
        "slug",
        "A product with this slug already exists",
    )
    .await
}

/// Validated fields of a new product (shared by the API and the CSV import).
pub struct NewProduct {
    pub category_id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub image_url: Option<String>,
    pub is_active: bool,
}

pub fn validate_new(input: &CreateProductInput, issues: &mut Issues) -> Option<NewProduct> {
    let name = issues.take(parse_text("name", &input.name, NAME_MAX));
    let slug = match input.slug.as_deref() {
        Some(s) => issues.take(parse_slug("slug", s)),
        None => name.as_deref().map(slugify).filter(|s| !s.is_empty()),
    };
    let description = issues.take(parse_description(
        "description",
        input.description.as_deref(),
    ));
    let image_url = match input.image_url.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(u) => issues.take(parse_image_url("imageUrl", u)).map(Some),
        None => Some(None),
    };
    Some(NewProduct {
        category_id: input.category_id,
        slug: slug?,
        name: name?,
        description: description?,
        image_url: image_url?,
        is_active: input.is_active.unwrap_or(true),
    })
}

pub async fn insert_product<C: ConnectionTrait>(
    conn: &C,
    now: chrono::DateTime<chrono::Utc>,
    p: NewProduct,
) -> AppResult<product::Model> {
    ensure_category(conn, p.category_id).await?;
    ensure_slug_free(conn, &p.slug, None).await?;
    Ok(product::ActiveModel {
        category_id: Set(p.category_id),
        search_text: Set(search_text(&p.name, &p.description)),
        slug: Set(p.slug),
        name: Set(p.name),
        description: Set(p.description),
        image_url: Set(p.image_url),
        is_active: Set(p.is_active),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?)
}

pub async fn create(
    st: &AppState,
    ctx: &RequestCtx,
    input: CreateProductInput,
    image: Option<async_graphql::UploadValue>,
) -> AppResult<product::Model> {
    ctx.require_scope(crate::domain::Scope::ProductsWrite)?;
    let mut issues = Issues::default();
    let new = validate_new(&input, &mut issues);
    let variants: Vec<_> = input
        .variants
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut vi = Issues::default();
            let parsed = v.validate(&mut vi);
            issues.0.extend(
                vi.0.into_iter()
                    .map(|d| FieldIssue::new(format!("variants[{i}].{}", d.field), d.issue)),
            );
            parsed
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (i, v) in variants.iter().enumerate() {
        if let Some(v) = v {
            if !seen.insert(v.sku.clone()) {
                issues.push(&format!("variants[{i}].sku"), "duplicate");
            }
        }
    }
    issues.finish()?;
    let Some(mut new) = new else {
        return Err(AppError::invalid(
            "slug",
            "required",
            "A slug could not be derived from the name",
        ));
    };
    let now = st.clock.now();
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    let mut stored_image = None;
    if let Some(upload) = image {
        let (f, stored) = files::store(
            st,
            &txn,
            ctx,
            upload,
            "product_image",
            files::IMAGE_KINDS,
            true,
        )
        .await
        .map_err(|e| rename_field(e, "file", "image"))?;
        new.image_url = Some(files::public_url(&f));
        stored_image = Some(stored);
    }
    let result = async {
        let created = insert_product(&txn, now, new).await?;
        for (i, v) in variants.into_iter().flatten().enumerate() {
            insert_variant(&txn, now, created.id, v)
                .await
                .map_err(|e| prefix_details(e, &format!("variants[{i}].")))?;
        }
        events::record(
            &txn,
            st,
            ctx,
            DomainEvent::ProductCreated {
                id: created.id,
                slug: created.slug.clone(),
            },
        )
        .await?;
        Ok::<_, AppError>(created)
    }
    .await;
    let committed = match result {
        Ok(created) => txn.commit().await.map(|_| created).map_err(AppError::from),
        Err(e) => Err(e),
    };
    if committed.is_err() {
        if let Some(stored) = &stored_image {
            files::discard(st, stored).await;
        }
    }
    committed
}

fn rename_field(mut e: AppError, from: &str, to: &str) -> AppError {
    for d in &mut e.details {
        if d.field == from {
            d.field = to.to_string();
        }
    }
    e
}

pub fn prefix_details(mut e: AppError, prefix: &str) -> AppError {
    for d in &mut e.details {
        d.field = format!("{prefix}{}", d.field);
    }
    e
}

pub async fn update(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: UpdateProductInput,
) -> AppResult<product::Model> {
    ctx.require_scope(crate::domain::Scope::ProductsWrite)?;
    let mut issues = Issues::default();
    let Naming {
        name,
        slug,
        description,
    } = Naming::parse(
        &mut issues,
        input.name.as_deref(),
        NAME_MAX,
        input.slug.as_deref(),
        input.description.as_deref(),
    );
    let image_url = match &input.image_url {
        MaybeUndefined::Value(u) => issues
            .take(parse_image_url("imageUrl", u))
            .map(MaybeUndefined::Value),
        MaybeUndefined::Null => Some(MaybeUndefined::Null),
        MaybeUndefined::Undefined => Some(MaybeUndefined::Undefined),
    };
    issues.finish()?;
    let w = row_write::open::<product::Entity>(
        st,
        ctx,
        id,
        "Product",
        Cached::Catalogue,
        Some(crate::domain::Scope::ProductsWrite),
    )
    .await?;
    let (txn, current) = (&w.txn, &w.current);
    let mut am: product::ActiveModel = current.clone().into();
    if let Some(c) = input.category_id.filter(|c| *c != current.category_id) {
        ensure_category(txn, c).await?;
        am.category_id = Set(c);
    }
    let new_name = name.filter(|n| *n != current.name);
    let new_description = description.filter(|d| *d != current.description);
    if new_name.is_some() || new_description.is_some() {
        let n = new_name.clone().unwrap_or_else(|| current.name.clone());
        let d = new_description
            .clone()
            .unwrap_or_else(|| current.description.clone());
        am.search_text = Set(search_text(&n, &d));
    }
    if let Some(n) = new_name {
        am.name = Set(n);
    }
    if let Some(d) = new_description {
        am.description = Set(d);
    }
    if let Some(s) = slug.filter(|s| *s != current.slug) {
        ensure_slug_free(txn, &s, Some(id)).await?;
        am.slug = Set(s);
    }
    let mut released = None;
    match image_url {
        Some(MaybeUndefined::Value(u)) if current.image_url.as_deref() != Some(u.as_str()) => {
            released = release_image(txn, st, current).await?;
            am.image_url = Set(Some(u));
        }
        Some(MaybeUndefined::Null) if current.image_url.is_some() => {
            released = release_image(txn, st, current).await?;
            am.image_url = Set(None);
        }
        _ => {}
    }
    if let Some(a) = input.is_active.filter(|a| *a != current.is_active) {
        am.is_active = Set(a);
    }
    let updated = w
        .update(am, &["description"], &["search_text"], |changes, _| {
            DomainEvent::ProductUpdated { id, changes }
        })
        .await?;
    files::delete_now(st, released.as_slice()).await;
    Ok(updated)
}

/// The product's uploaded image (`/uploads/<key>`) when no other product shows it: its record
/// goes in `txn` and its bytes once that commits (enqueued with it); what to remove at once after
/// the commit. An image of an outside URL, or shown elsewhere, is left alone.
async fn release_image(
    txn: &DatabaseTransaction,
    st: &AppState,
    p: &product::Model,
) -> AppResult<Option<files::Stored>> {
    let Some(url) = p.image_url.as_deref() else {
        return Ok(None);
    };
    let Some(key) = url.strip_prefix("/uploads/") else {
        return Ok(None);
    };
    let shown_elsewhere = product::Entity::find()
        .filter(product::Column::ImageUrl.eq(url))
        .filter(product::Column::Id.ne(p.id))
        .count(txn)
        .await?
        > 0;
    if shown_elsewhere {
        return Ok(None);
    }
    files::release_public(txn, st, key).await
}

/// Deletes the product and its variants, or — when orders hold it — deactivates it instead (the
/// order history must keep pointing at it). Either way 204; the audit row says which.
pub async fn delete(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<bool> {
    let w = row_write::open_to_remove::<product::Entity>(
        st,
        ctx,
        id,
        "Product",
        Cached::Catalogue,
        Some(crate::domain::Scope::ProductsWrite),
    )
    .await?;
    let txn = &w.txn;
    let ordered = order_item::Entity::find()
        .filter(order_item::Column::ProductId.eq(id))
        .count(txn)
        .await?
        > 0;
    if !ordered {
        let variant_ids = product_variant::Entity::find()
            .filter(product_variant::Column::ProductId.eq(id))
            .all(txn)
            .await?
            .into_iter()
            .map(|v| v.id);
        cart_item::Entity::delete_many()
            .filter(cart_item::Column::VariantId.is_in(variant_ids))
            .exec(txn)
            .await?;
        product_variant::Entity::delete_many()
            .filter(product_variant::Column::ProductId.eq(id))
            .exec(txn)
            .await?;
    }
    // A deleted product's image goes with it; a deactivated one keeps it.
    let released = if ordered {
        None
    } else {
        release_image(txn, st, &w.current).await?
    };
    let slug = w.current.slug.clone();
    let removed = w
        .remove(ordered, |outcome| DomainEvent::ProductDeleted {
            id,
            slug,
            outcome,
        })
        .await?;
    files::delete_now(st, released.as_slice()).await;
    Ok(removed)
}

/// Whether the product's prices and variants are withheld from this viewer (teaser mode, no access).
pub async fn is_restricted(st: &AppState, ctx: &RequestCtx, product_id: i64) -> AppResult<bool> {
    if gate::has_access(st, &st.db, ctx).await? {
        return Ok(false);
    }
    let medicinal = product::Entity::find_by_id(product_id)
        .find_also_related(category::Entity)
        .one(&st.db)
        .await?
        .and_then(|(_, c)| c)
        .is_some_and(|c| c.is_medicinal);
    Ok(medicinal)
}
