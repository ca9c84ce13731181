//! Categories: listing for everyone, CRUD for admins.

use async_graphql::InputObject;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::{parse_description, parse_slug, slugify, Naming};
use crate::actor::RequestCtx;
use crate::domain::parse_text;
use crate::entities::{category, product};
use crate::error::Issues;
use crate::error::{AppError, AppResult};
use crate::services::platform::events::DomainEvent;
use crate::services::platform::pagination::Page;
use crate::services::platform::row_write::{self, Cached};
use crate::services::platform::unique::ensure_free;
use crate::state::AppState;

/// Longest name, in characters (after trimming).
pub const NAME_MAX: usize = 120;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Semillas", "slug": "semillas", "description": "Semillas feminizadas y autoflorecientes", "isMedicinal": false}))]
pub struct CreateCategoryInput {
    pub name: String,
    /// Derived from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    #[graphql(default)]
    pub is_medicinal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Semillas premium", "isActive": true}))]
pub struct UpdateCategoryInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_medicinal: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    is_medicinal: Option<bool>,
    page: Page,
) -> AppResult<(Vec<category::Model>, u64)> {
    let mut cond = Condition::all();
    if !ctx.sees_whole_catalogue() {
        cond = cond.add(category::Column::IsActive.eq(true));
    }
    if let Some(m) = is_medicinal {
        cond = cond.add(category::Column::IsMedicinal.eq(m));
    }
    let base = category::Entity::find().filter(cond);
    let total = base.clone().count(&st.db).await?;
    let items = base
        .order_by_asc(category::Column::Name)
        .order_by_asc(category::Column::Id)
        .offset(page.offset())
        .limit(page.page_size)
        .all(&st.db)
        .await?;
    Ok((items, total))
}

async fn ensure_slug_free<C: sea_orm::ConnectionTrait>(
    conn: &C,
    slug: &str,
    except: Option<i64>,
) -> AppResult<()> {
    let except = except.map(|id| (category::Column::Id, id));
    ensure_free::<category::Entity, _>(
        conn,
        category::Column::Slug,
        slug,
        except,
        "slug",
        "A category with this slug already exists",
    )
    .await
}

pub async fn create(
    st: &AppState,
    ctx: &RequestCtx,
    input: CreateCategoryInput,
) -> AppResult<category::Model> {
    ctx.require_admin()?;
    let mut issues = Issues::default();
    let name = issues.take(parse_text("name", &input.name, NAME_MAX));
    let slug = match input.slug.as_deref() {
        Some(s) => issues.take(parse_slug("slug", s)),
        None => name.as_deref().map(slugify).filter(|s| !s.is_empty()),
    };
    let description = issues.take(parse_description(
        "description",
        input.description.as_deref(),
    ));
    issues.finish()?;
    let (Some(name), Some(slug), Some(description)) = (name, slug, description) else {
        return Err(AppError::invalid(
            "slug",
            "required",
            "A slug could not be derived from the name",
        ));
    };
    let now = st.clock.now();
    let w = row_write::begin_create(st, ctx, Cached::Catalogue).await?;
    ensure_slug_free(&w.txn, &slug, None).await?;
    let created = w
        .insert(category::ActiveModel {
            slug: Set(slug),
            name: Set(name),
            description: Set(description),
            is_medicinal: Set(input.is_medicinal),
            is_active: Set(input.is_active.unwrap_or(true)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .await?;
    let event = DomainEvent::CategoryCreated {
        id: created.id,
        slug: created.slug.clone(),
    };
    w.created(created, event).await
}

pub async fn update(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: UpdateCategoryInput,
) -> AppResult<category::Model> {
    ctx.require_admin()?;
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
    issues.finish()?;
    let w = row_write::open::<category::Entity>(st, ctx, id, "Category", Cached::Catalogue, None)
        .await?;
    let current = &w.current;
    let mut am: category::ActiveModel = current.clone().into();
    if let Some(n) = name.filter(|n| *n != current.name) {
        am.name = Set(n);
    }
    if let Some(s) = slug.filter(|s| *s != current.slug) {
        ensure_slug_free(&w.txn, &s, Some(id)).await?;
        am.slug = Set(s);
    }
    if let Some(d) = description.filter(|d| *d != current.description) {
        am.description = Set(d);
    }
    if let Some(m) = input.is_medicinal.filter(|m| *m != current.is_medicinal) {
        am.is_medicinal = Set(m);
    }
    if let Some(a) = input.is_active.filter(|a| *a != current.is_active) {
        am.is_active = Set(a);
    }
    w.update(am, &["description"], &[], |changes, _| {
        DomainEvent::CategoryUpdated { id, changes }
    })
    .await
}

/// Refused with `conflict` while the category still has products.
pub async fn delete(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<bool> {
    let w = row_write::open_to_remove::<category::Entity>(
        st,
        ctx,
        id,
        "Category",
        Cached::Catalogue,
        None,
    )
    .await?;
    let products = product::Entity::find()
        .filter(product::Column::CategoryId.eq(id))
        .count(&w.txn)
        .await?;
    if products > 0 {
        return Err(AppError::conflict_field(
            "id",
            "has_products",
            format!("The category still has {products} product(s); move or delete them first"),
        ));
    }
    let slug = w.current.slug.clone();
    w.remove(false, |outcome| DomainEvent::CategoryDeleted {
        id,
        slug,
        outcome,
    })
    .await
}
