//! GraphQL types and resolvers for the catalogue. `Product.category` and `Product.variants` go
//! through the request's DataLoader, so a page costs a constant number of statements.

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::{RoleGuard, ScopeGuard};
use super::loaders::{CategoryId, RatingOf, RequestLoader, VariantsOf};
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::domain::Scope;
use crate::entities::user::Role;
use crate::entities::{category, product, product_variant};
use crate::error::AppError;
use crate::services::catalog::categories::{self, CreateCategoryInput, UpdateCategoryInput};
use crate::services::catalog::csv_io::{self, ImportReport};
use crate::services::catalog::products::{
    self, CreateProductInput, ProductFilter, UpdateProductInput,
};
use crate::services::catalog::variants::{self, CreateVariantInput, UpdateVariantInput};
use crate::services::medicinal::gate;
use crate::services::platform::pagination::Page;

#[derive(SimpleObject, Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 1, "slug": "semillas", "name": "Semillas", "description": "Semillas feminizadas",
    "isMedicinal": false, "isActive": true, "createdAt": "2026-11-22T08:00:00Z", "updatedAt": "2026-11-22T08:00:00Z"}))]
pub struct Category {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub is_medicinal: bool,
    pub is_active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<category::Model> for Category {
    fn from(c: category::Model) -> Self {
        Category {
            id: c.id,
            slug: c.slug,
            name: c.name,
            description: c.description,
            is_medicinal: c.is_medicinal,
            is_active: c.is_active,
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 1, "productId": 1, "sku": "NL-AUTO-1G", "optionLabel": "1g", "priceCents": 4990,
    "stock": 25, "weightGrams": 1, "isActive": true, "createdAt": "2026-11-22T08:00:00Z", "updatedAt": "2026-11-22T08:00:00Z"}))]
pub struct Variant {
    pub id: i64,
    pub product_id: i64,
    pub sku: String,
    pub option_label: String,
    /// Whole CLP pesos.
    pub price_cents: i64,
    pub stock: i32,
    pub weight_grams: i32,
    pub is_active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<product_variant::Model> for Variant {
    fn from(v: product_variant::Model) -> Self {
        Variant {
            id: v.id,
            product_id: v.product_id,
            sku: v.sku,
            option_label: v.option_label,
            price_cents: v.price_cents,
            stock: v.stock,
            weight_grams: v.weight_grams,
            is_active: v.is_active,
            created_at: v.created_at.into(),
            updated_at: v.updated_at.into(),
        }
    }
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Product {
    pub id: i64,
    pub category_id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub image_url: Option<String>,
    pub is_active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Whether its category is medicinal, when the product was read with its category (lists and
    /// details): the teaser check then needs no category lookup per field.
    #[graphql(skip)]
    pub category_is_medicinal: Option<bool>,
}

impl From<products::ProductRow> for Product {
    fn from(row: products::ProductRow) -> Self {
        Product {
            category_is_medicinal: Some(row.category.is_medicinal),
            ..row.product.into()
        }
    }
}

impl From<product::Model> for Product {
    fn from(p: product::Model) -> Self {
        Product {
            category_is_medicinal: None,
            id: p.id,
            category_id: p.category_id,
            slug: p.slug,
            name: p.name,
            description: p.description,
            image_url: p.image_url,
            is_active: p.is_active,
            created_at: p.created_at.into(),
            updated_at: p.updated_at.into(),
        }
    }
}

fn loader<'a>(ctx: &'a Context<'_>) -> &'a RequestLoader {
    ctx.data_unchecked::<RequestLoader>()
}

impl Product {
    async fn category_model(&self, ctx: &Context<'_>) -> GqlResult<category::Model> {
        loader(ctx)
            .load_one(CategoryId(self.category_id))
            .await?
            .ok_or_else(|| AppError::internal(format!("product {} has no category", self.id)))
    }

    /// Teaser mode: a medicinal product shown to a viewer without access carries no variants.
    async fn restricted(&self, ctx: &Context<'_>) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        if gate::has_access(st, &st.db, rc).await? {
            return Ok(false);
        }
        match self.category_is_medicinal {
            Some(medicinal) => Ok(medicinal),
            None => Ok(self.category_model(ctx).await?.is_medicinal),
        }
    }
}

#[ComplexObject]
impl Product {
    /// Average and count of the visible reviews (batched per request).
    async fn rating(&self, ctx: &Context<'_>) -> GqlResult<super::reviews::Rating> {
        Ok(loader(ctx)
            .load_one(RatingOf(self.id))
            .await?
            .unwrap_or(super::reviews::Rating {
                average: None,
                count: 0,
            }))
    }

    async fn category(&self, ctx: &Context<'_>) -> GqlResult<Category> {
        Ok(self.category_model(ctx).await?.into())
    }

    /// Active variants, cheapest first (admins also see inactive ones). Empty when the product
    /// requires a medicinal validation the viewer lacks.
    #[graphql(complexity = "crate::graphql::limits::fanout(child_complexity)")]
    async fn variants(&self, ctx: &Context<'_>) -> GqlResult<Vec<Variant>> {
        if self.restricted(ctx).await? {
            return Ok(Vec::new());
        }
        let (_, rc) = parts(ctx);
        let admin = rc.sees_whole_catalogue();
        let all = loader(ctx)
            .load_one(VariantsOf(self.id))
            .await?
            .unwrap_or_default();
        Ok(all
            .into_iter()
            .filter(|v| admin || v.is_active)
            .map(Variant::from)
            .collect())
    }

    /// True when this is a medicinal product the viewer may not buy (teaser mode).
    async fn requires_medicinal_validation(&self, ctx: &Context<'_>) -> GqlResult<bool> {
        self.restricted(ctx).await
    }
}

/// The REST shape of a product (documentation only: GraphQL resolves the nested fields).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Product, example = json!({"id": 1, "categoryId": 1, "slug": "northern-lights-auto", "name": "Northern Lights Auto",
    "description": "Autofloreciente", "imageUrl": null, "isActive": true, "requiresMedicinalValidation": false,
    "createdAt": "2026-11-22T08:00:00Z", "updatedAt": "2026-11-22T08:00:00Z",
    "category": {"id": 1, "slug": "semillas", "name": "Semillas", "isMedicinal": false},
    "variants": [{"id": 1, "sku": "NL-AUTO-1G", "optionLabel": "1g", "priceCents": 4990, "stock": 25}],
    "rating": {"average": 4.5, "count": 2}}))]
pub struct ProductDoc {
    pub id: i64,
    pub category_id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub image_url: Option<String>,
    pub is_active: bool,
    pub requires_medicinal_validation: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub category: Category,
    pub variants: Vec<Variant>,
    pub rating: super::reviews::Rating,
}

#[derive(SimpleObject)]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ProductPage, example = json!({"items": [{"id": 1, "name": "Northern Lights Auto", "variants": []}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct ProductPageDoc {
    pub items: Vec<ProductDoc>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 1, "slug": "semillas", "name": "Semillas", "isMedicinal": false}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct CategoryPage {
    pub items: Vec<Category>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 1, "sku": "NL-AUTO-1G", "optionLabel": "1g", "priceCents": 4990, "stock": 25}],
    "total": 1, "page": 1, "pageSize": 20, "requiresMedicinalValidation": false}))]
pub struct VariantPage {
    pub items: Vec<Variant>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
    /// True when variants are withheld (medicinal product, teaser mode, no access).
    pub requires_medicinal_validation: bool,
}

/// Whether the selection (of a product, or of a page's `items`) asks for `field`.
fn selects(ctx: &Context<'_>, field: &str) -> bool {
    let selection = ctx.look_ahead();
    let items = selection.field("items");
    if items.exists() {
        items.field(field).exists()
    } else {
        selection.field(field).exists()
    }
}

/// Feeds the request's loader with what the page's (or product's) statement brought — categories,
/// and ratings when selected — and loads the variants the selection asks for in one statement,
/// so the per-product resolvers find everything cached. The loader's own batching is bypassed on
/// purpose: it spawns a task and waits on a 1 ms timer per batch, a cross-thread wake-up and a
/// millisecond of latency that a page whose keys are all known up front does not need.
async fn prime_loaders(ctx: &Context<'_>, rows: &[products::ProductRow]) -> GqlResult<()> {
    use async_graphql::dataloader::Loader;
    let requests = loader(ctx);
    let categories: HashMap<i64, category::Model> = rows
        .iter()
        .map(|r| (r.category.id, r.category.clone()))
        .collect();
    requests
        .feed_many(categories.into_iter().map(|(id, c)| (CategoryId(id), c)))
        .await;
    let ratings = rows.iter().filter_map(|r| {
        let rating = r.rating?;
        Some((
            RatingOf(r.product.id),
            super::reviews::Rating {
                average: rating.map(|(average, _)| average),
                count: rating.map_or(0, |(_, count)| count),
            },
        ))
    });
    requests.feed_many(ratings).await;
    if !rows.is_empty() && selects(ctx, "variants") {
        let keys: Vec<VariantsOf> = rows.iter().map(|r| VariantsOf(r.product.id)).collect();
        let variants = requests.loader().load(&keys).await?;
        requests.feed_many(variants).await;
    }
    Ok(())
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Categories (inactive ones only for admins).
    #[graphql(complexity = "crate::graphql::limits::paged(page_size, child_complexity)")]
    async fn categories(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        is_medicinal: Option<bool>,
    ) -> GqlResult<CategoryPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (items, total) = categories::list(st, rc, is_medicinal, p).await?;
        Ok(CategoryPage {
            items: items.into_iter().map(Category::from).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }

    /// Products the viewer may see. `category` is a slug or an id; price filters match active
    /// variants; `sort` is a comma list of price, name, createdAt, updatedAt, id (`-` = descending).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::limits::paged(page_size, child_complexity)")]
    async fn products(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        q: Option<String>,
        category: Option<String>,
        is_active: Option<bool>,
        price_min: Option<i64>,
        price_max: Option<i64>,
        sort: Option<String>,
    ) -> GqlResult<ProductPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let filter = ProductFilter {
            q,
            category,
            is_active,
            price_min,
            price_max,
            sort,
        };
        // The page brings its categories, and its ratings when selected: no statements of their own.
        let (rows, total) = products::list(st, rc, filter, p, selects(ctx, "rating")).await?;
        prime_loaders(ctx, &rows).await?;
        Ok(ProductPage {
            items: rows.into_iter().map(Product::from).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }

    async fn product(&self, ctx: &Context<'_>, id: i64) -> GqlResult<Product> {
        let (st, rc) = parts(ctx);
        // With its category (for `Product.category` and the teaser check) and its rating.
        let row = products::get_row(st, rc, id, selects(ctx, "rating")).await?;
        prime_loaders(ctx, std::slice::from_ref(&row)).await?;
        Ok(row.into())
    }

    /// A product's variants, paginated.
    #[graphql(complexity = "crate::graphql::limits::paged(page_size, child_complexity)")]
    async fn product_variants(
        &self,
        ctx: &Context<'_>,
        product_id: i64,
        page: Option<i64>,
        page_size: Option<i64>,
    ) -> GqlResult<VariantPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (items, total, restricted) = variants::list_for_product(st, rc, product_id, p).await?;
        Ok(VariantPage {
            items: items.into_iter().map(Variant::from).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
            requires_medicinal_validation: restricted,
        })
    }

    /// Admin: the whole catalogue as CSV (one row per variant).
    #[graphql(guard = "ScopeGuard(Scope::ProductsRead)")]
    async fn export_products(&self, ctx: &Context<'_>) -> GqlResult<String> {
        let (st, rc) = parts(ctx);
        csv_io::export(st, rc).await
    }
}

#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        input: CreateCategoryInput,
    ) -> GqlResult<Category> {
        let (st, rc) = parts(ctx);
        Ok(categories::create(st, rc, input).await?.into())
    }

    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn update_category(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: UpdateCategoryInput,
    ) -> GqlResult<Category> {
        let (st, rc) = parts(ctx);
        Ok(categories::update(st, rc, id, input).await?.into())
    }

    /// Refused with `conflict` while the category has products.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn delete_category(&self, ctx: &Context<'_>, id: i64) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        categories::delete(st, rc, id).await
    }

    /// Creates a product; `image` (optional) is stored as its main image.
    #[graphql(guard = "ScopeGuard(Scope::ProductsWrite)")]
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: CreateProductInput,
        image: Option<async_graphql::Upload>,
    ) -> GqlResult<Product> {
        let (st, rc) = parts(ctx);
        let image = image
            .map(|u| super::files::upload_value(ctx, u))
            .transpose()?;
        Ok(products::create(st, rc, input, image).await?.into())
    }

    #[graphql(guard = "ScopeGuard(Scope::ProductsWrite)")]
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: UpdateProductInput,
    ) -> GqlResult<Product> {
        let (st, rc) = parts(ctx);
        Ok(products::update(st, rc, id, input).await?.into())
    }

    #[graphql(guard = "ScopeGuard(Scope::ProductsWrite)")]
    async fn delete_product(&self, ctx: &Context<'_>, id: i64) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        products::delete(st, rc, id).await
    }

    #[graphql(guard = "ScopeGuard(Scope::ProductsWrite)")]
    async fn create_variant(
        &self,
        ctx: &Context<'_>,
        product_id: i64,
        input: CreateVariantInput,
    ) -> GqlResult<Variant> {
        let (st, rc) = parts(ctx);
        Ok(variants::create(st, rc, product_id, input).await?.into())
    }

    #[graphql(guard = "ScopeGuard(Scope::ProductsWrite)")]
    async fn update_variant(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: UpdateVariantInput,
    ) -> GqlResult<Variant> {
        let (st, rc) = parts(ctx);
        Ok(variants::update(st, rc, id, input).await?.into())
    }

    #[graphql(guard = "ScopeGuard(Scope::ProductsWrite)")]
    async fn delete_variant(&self, ctx: &Context<'_>, id: i64) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        variants::delete(st, rc, id).await
    }

    /// Admin: imports products and variants from CSV. `dryRun` reports every row's problems and
    /// writes nothing; a real import with any problem is refused as a whole.
    #[graphql(guard = "ScopeGuard(Scope::ProductsWrite)")]
    async fn import_products(
        &self,
        ctx: &Context<'_>,
        csv: String,
        dry_run: Option<bool>,
    ) -> GqlResult<ImportReport> {
        let (st, rc) = parts(ctx);
        csv_io::import(st, rc, &csv, dry_run.unwrap_or(false)).await
    }
}
