//! CSV import (with a dry run that reports every row's problems; a real import is all-or-nothing)
//! and export of the catalogue.
//!
//! Columns: `name,categorySlug,description,imageUrl,isActive,variantSku,variantLabel,variantPriceCents,variantStock`.
//! One row per variant; rows whose names give the same slug are one product.

use std::collections::{HashMap, HashSet};

use async_graphql::SimpleObject;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use utoipa::ToSchema;

use super::products::{insert_product, NewProduct};
use super::text::{
    non_negative, parse_description, parse_image_url, parse_sku, parse_text, slugify,
};
use super::variants::{insert_variant, NewVariant};
use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::{category, product, product_variant};
use crate::error::{AppError, AppResult, FieldIssue};
use crate::services::platform::events::{self, DomainEvent};
use crate::state::AppState;

pub const COLUMNS: [&str; 9] = [
    "name",
    "categorySlug",
    "description",
    "imageUrl",
    "isActive",
    "variantSku",
    "variantLabel",
    "variantPriceCents",
    "variantStock",
];

/// One problem in one row (`row` is the CSV line number; the header is line 1).
#[derive(SimpleObject, Serialize, ToSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ImportIssue {
    pub row: u64,
    pub field: String,
    pub issue: String,
    pub message: String,
}

#[derive(SimpleObject, Serialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"dryRun": true, "rows": 3, "productsCreated": 1, "productsMatched": 0, "variantsCreated": 3,
    "errors": [{"row": 3, "field": "variantPriceCents", "issue": "negative", "message": "variantPriceCents must be zero or more"}]}))]
pub struct ImportReport {
    pub dry_run: bool,
    /// Data rows read.
    pub rows: u64,
    /// Products that would be (dry run) or were created.
    pub products_created: u64,
    /// Rows that add variants to a product that already exists (same slug).
    pub products_matched: u64,
    pub variants_created: u64,
    pub errors: Vec<ImportIssue>,
}

struct PlannedProduct {
    existing_id: Option<i64>,
    new: Option<NewProduct>,
    variants: Vec<NewVariant>,
}

fn issue(row: u64, e: AppError) -> Vec<ImportIssue> {
    e.details
        .into_iter()
        .map(|d| ImportIssue {
            row,
            message: format!("{}: {}", d.field, d.issue),
            field: d.field,
            issue: d.issue,
        })
        .collect()
}

fn take<T, E: Into<AppError>>(
    errors: &mut Vec<ImportIssue>,
    line: u64,
    r: Result<T, E>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            errors.extend(issue(line, e.into()));
            None
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" | "si" | "sí" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Imports products and variants from CSV ([`COLUMNS`], one row per variant): a dry run reports
/// what would happen; a real import with any problem writes nothing.
pub async fn import(
    st: &AppState,
    ctx: &RequestCtx,
    csv_text: &str,
    dry_run: bool,
) -> AppResult<ImportReport> {
    ctx.require_scope(crate::domain::Scope::ProductsWrite)?;
    let (index, records, mut errors) = match read_csv(csv_text)? {
        Ok(read) => read,
        Err(header_errors) => return finish(dry_run, 0, 0, 0, 0, header_errors),
    };
    let known = Known::load(st, &index, &records).await?;
    let matched: u64 = records
        .iter()
        .filter_map(|r| r.get(index["name"]).and_then(|n| known.existing_id(n)))
        .collect::<HashSet<i64>>()
        .len() as u64;
    let mut plan = Plan::default();
    for (n, rec) in records.iter().enumerate() {
        let line = rec.position().map(|p| p.line()).unwrap_or(n as u64 + 2);
        let get = |c: &str| rec.get(index[c]).unwrap_or("").to_string();
        errors.extend(plan.add(&get, line, &known));
    }
    let rows = records.len() as u64;
    if rows == 0 && errors.is_empty() {
        errors.push(ImportIssue {
            row: 2,
            field: "row".into(),
            issue: "empty".into(),
            message: "The CSV has no data rows".into(),
        });
    }
    let created = plan
        .products
        .iter()
        .filter(|(_, p)| p.new.is_some())
        .count() as u64;
    let variants: u64 = plan
        .products
        .iter()
        .map(|(_, p)| p.variants.len() as u64)
        .sum();
    if dry_run || !errors.is_empty() {
        return finish(dry_run, rows, created, matched, variants, errors);
    }
    let imported = DomainEvent::ProductsImported {
        rows,
        products_created: created,
        products_matched: matched,
        variants_created: variants,
    };
    write(st, ctx, plan, imported).await?;
    finish(false, rows, created, matched, variants, Vec::new())
}

/// Column positions by name.
type Index = HashMap<String, usize>;

/// The header's column positions, the readable records and the unreadable ones' issues; or, when
/// the header lacks a column, the issues naming the missing ones.
#[allow(clippy::type_complexity)]
fn read_csv(
    csv_text: &str,
) -> AppResult<Result<(Index, Vec<csv::StringRecord>, Vec<ImportIssue>), Vec<ImportIssue>>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(csv_text.as_bytes());
    let headers = reader.headers().map_err(|e| {
        AppError::invalid(
            "csv",
            "unreadable",
            format!("The CSV header could not be read: {e}"),
        )
    })?;
    let index: Index = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.to_string(), i))
        .collect();
    let missing: Vec<ImportIssue> = COLUMNS
        .iter()
        .filter(|col| !index.contains_key(**col))
        .map(|col| ImportIssue {
            row: 1,
            field: format!("header.{col}"),
            issue: "missing_column".into(),
            message: format!("The header has no '{col}' column"),
        })
        .collect();
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for rec in reader.records() {
        match rec {
            Ok(r) => records.push(r),
            Err(e) => errors.push(ImportIssue {
                row: e.position().map(|p| p.line()).unwrap_or(0),
                field: "row".into(),
                issue: "unreadable".into(),
                message: e.to_string(),
            }),
        }
    }
    Ok(Ok((index, records, errors)))
}

/// What the catalogue already holds that the rows refer to.
struct Known {
    categories: HashMap<String, i64>,
    skus: HashSet<String>,
    by_name: HashMap<String, i64>,
    by_slug: HashMap<String, i64>,
}

impl Known {
    async fn load(st: &AppState, index: &Index, records: &[csv::StringRecord]) -> AppResult<Self> {
        let column = |c: &str| -> Vec<String> {
            records
                .iter()
                .filter_map(|r| r.get(index[c]).map(str::to_string))
                .collect()
        };
        let categories = category::Entity::find()
            .all(&st.db)
            .await?
            .into_iter()
            .map(|c| (c.slug, c.id))
            .collect();
        let skus = product_variant::Entity::find()
            .filter(product_variant::Column::Sku.is_in(column("variantSku")))
            .all(&st.db)
            .await?
            .into_iter()
            .map(|v| v.sku)
            .collect();
        // Rows belong to an existing product with the same name, or else the same slug.
        let names = column("name");
        let slugs: Vec<String> = names.iter().map(|n| slugify(n)).collect();
        let products = product::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(product::Column::Name.is_in(names))
                    .add(product::Column::Slug.is_in(slugs)),
            )
            .all(&st.db)
            .await?;
        Ok(Known {
            categories,
            skus,
            by_name: products.iter().map(|p| (p.name.clone(), p.id)).collect(),
            by_slug: products.iter().map(|p| (p.slug.clone(), p.id)).collect(),
        })
    }

    /// The existing product a row named `name` adds variants to.
    fn existing_id(&self, name: &str) -> Option<i64> {
        self.by_name
            .get(name)
            .or_else(|| self.by_slug.get(&slugify(name)))
            .copied()
    }
}

/// One row's values, each `None` when it did not parse (its issue is recorded).
struct Row {
    name: Option<String>,
    category_slug: String,
    category_id: Option<i64>,
    description: Option<String>,
    image_url: Option<Option<String>>,
    is_active: Option<bool>,
    sku: Option<String>,
    label: Option<String>,
    price: Option<i64>,
    stock: Option<i64>,
}

impl Row {
    fn parse(
        get: &dyn Fn(&str) -> String,
        line: u64,
        known: &Known,
        issues: &mut Vec<ImportIssue>,
    ) -> Row {
        let name = take(issues, line, parse_text("name", &get("name"), 200));
        let category_slug = get("categorySlug");
        let category_id = known.categories.get(&category_slug).copied();
        let description = take(
            issues,
            line,
            parse_description("description", Some(&get("description"))),
        );
        let image = get("imageUrl");
        let image_url = if image.is_empty() {
            Some(None)
        } else {
            take(issues, line, parse_image_url("imageUrl", &image)).map(Some)
        };
        let is_active = parse_bool(&get("isActive"));
        let sku = take(issues, line, parse_sku("variantSku", &get("variantSku")));
        let label = take(
            issues,
            line,
            parse_text("variantLabel", &get("variantLabel"), 40),
        );
        let number = |field: &str, max: i64| -> AppResult<i64> {
            let v: i64 = get(field).parse().map_err(|_| {
                AppError::invalid(
                    field,
                    "invalid_type",
                    format!("{field} must be a whole number"),
                )
            })?;
            non_negative(field, v, max)
        };
        let price = take(issues, line, number("variantPriceCents", 1_000_000_000));
        let stock = take(issues, line, number("variantStock", i64::from(i32::MAX)));
        if category_id.is_none() {
            issues.push(ImportIssue {
                row: line,
                field: "categorySlug".into(),
                issue: "not_found".into(),
                message: format!("No category with slug '{category_slug}'"),
            });
        }
        if is_active.is_none() {
            issues.push(ImportIssue {
                row: line,
                field: "isActive".into(),
                issue: "invalid_type".into(),
                message: "isActive must be true or false".into(),
            });
        }
        Row {
            name,
            category_slug,
            category_id,
            description,
            image_url,
            is_active,
            sku,
            label,
            price,
            stock,
        }
    }
}

/// The products to create or add to, keyed by slug (`#<id>` for an existing product), in the
/// order their first row came.
#[derive(Default)]
struct Plan {
    products: Vec<(String, PlannedProduct)>,
    category_of: HashMap<String, String>,
    seen_skus: HashMap<String, u64>,
}

impl Plan {
    /// Adds one row; its issues (nothing is added when there are any).
    fn add(&mut self, get: &dyn Fn(&str) -> String, line: u64, known: &Known) -> Vec<ImportIssue> {
        let mut issues = Vec::new();
        let row = Row::parse(get, line, known, &mut issues);
        if let Some(s) = &row.sku {
            if let Some(first) = self.seen_skus.get(s) {
                issues.push(ImportIssue {
                    row: line,
                    field: "variantSku".into(),
                    issue: "duplicate".into(),
                    message: format!("SKU {s} already appears on line {first}"),
                });
            } else if known.skus.contains(s) {
                issues.push(ImportIssue {
                    row: line,
                    field: "variantSku".into(),
                    issue: "already_exists".into(),
                    message: format!("SKU {s} already exists"),
                });
            }
            self.seen_skus.entry(s.clone()).or_insert(line);
        }
        let slug = row
            .name
            .as_deref()
            .map(|n| {
                known
                    .existing_id(n)
                    .map(|id| format!("#{id}"))
                    .unwrap_or_else(|| slugify(n))
            })
            .unwrap_or_default();
        if self
            .category_of
            .get(&slug)
            .is_some_and(|first| *first != row.category_slug)
        {
            issues.push(ImportIssue {
                row: line,
                field: "categorySlug".into(),
                issue: "inconsistent".into(),
                message: "Rows of one product must share its category".into(),
            });
        }
        if !issues.is_empty() {
            return issues;
        }
        let Row {
            name: Some(name),
            category_slug,
            category_id: Some(category_id),
            description: Some(description),
            image_url: Some(image_url),
            is_active: Some(is_active),
            sku: Some(sku),
            label: Some(label),
            price: Some(price),
            stock: Some(stock),
        } = row
        else {
            return issues;
        };
        self.category_of.insert(slug.clone(), category_slug);
        let variant = NewVariant {
            sku,
            option_label: label,
            price_cents: price,
            stock: stock as i32,
            weight_grams: 0,
            is_active: true,
        };
        match self.products.iter_mut().find(|(s, _)| *s == slug) {
            Some((_, p)) => p.variants.push(variant),
            None => {
                let existing_id = known.existing_id(&name);
                let new = existing_id.is_none().then(|| NewProduct {
                    category_id,
                    slug: slug.clone(),
                    name,
                    description,
                    image_url,
                    is_active,
                });
                self.products.push((
                    slug,
                    PlannedProduct {
                        existing_id,
                        new,
                        variants: vec![variant],
                    },
                ));
            }
        }
        issues
    }
}

/// Writes the plan in one transaction, with its event.
async fn write(
    st: &AppState,
    ctx: &RequestCtx,
    plan: Plan,
    imported: DomainEvent,
) -> AppResult<()> {
    let now = st.clock.now();
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    for (_, p) in plan.products {
        let product_id = match (p.existing_id, p.new) {
            (Some(id), _) => id,
            (None, Some(new)) => insert_product(&txn, now, new).await?.id,
            (None, None) => continue,
        };
        for v in p.variants {
            insert_variant(&txn, now, product_id, v).await?;
        }
    }
    events::record(&txn, st, ctx, imported).await?;
    txn.commit().await?;
    Ok(())
}

/// A dry run reports problems; a real import with problems is refused as a whole.
fn finish(
    dry_run: bool,
    rows: u64,
    created: u64,
    matched: u64,
    variants: u64,
    errors: Vec<ImportIssue>,
) -> AppResult<ImportReport> {
    if !dry_run && !errors.is_empty() {
        let details = errors
            .iter()
            .map(|e| {
                FieldIssue::new(
                    if e.row == 1 {
                        e.field.clone()
                    } else {
                        format!("rows[{}].{}", e.row, e.field)
                    },
                    e.issue.clone(),
                )
            })
            .collect();
        return Err(AppError::invalid_fields(details).with_message(format!(
            "Import refused: {} problem(s); nothing was written",
            errors.len()
        )));
    }
    Ok(ImportReport {
        dry_run,
        rows,
        products_created: if errors.is_empty() { created } else { 0 },
        products_matched: matched,
        variants_created: if errors.is_empty() { variants } else { 0 },
        errors,
    })
}

/// Every product and variant, one row per variant (a product without variants gets one row).
pub async fn export(st: &AppState, ctx: &RequestCtx) -> AppResult<String> {
    ctx.require_scope(crate::domain::Scope::ProductsRead)?;
    let categories: HashMap<i64, String> = category::Entity::find()
        .all(&st.db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.slug))
        .collect();
    let products = product::Entity::find()
        .order_by_asc(product::Column::Id)
        .all(&st.db)
        .await?;
    let mut variants: HashMap<i64, Vec<product_variant::Model>> = HashMap::new();
    for v in product_variant::Entity::find()
        .order_by_asc(product_variant::Column::Id)
        .all(&st.db)
        .await?
    {
        variants.entry(v.product_id).or_default().push(v);
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS).map_err(AppError::internal)?;
    for p in products {
        let cat = categories.get(&p.category_id).cloned().unwrap_or_default();
        let base = [
            p.name.clone(),
            cat,
            p.description.clone(),
            p.image_url.clone().unwrap_or_default(),
            p.is_active.to_string(),
        ];
        match variants.get(&p.id) {
            Some(vs) if !vs.is_empty() => {
                for v in vs {
                    let row = base.iter().cloned().chain([
                        v.sku.clone(),
                        v.option_label.clone(),
                        v.price_cents.to_string(),
                        v.stock.to_string(),
                    ]);
                    w.write_record(row).map_err(AppError::internal)?;
                }
            }
            _ => {
                let row = base.iter().cloned().chain([
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                w.write_record(row).map_err(AppError::internal)?;
            }
        }
    }
    let bytes = w.into_inner().map_err(AppError::internal)?;
    String::from_utf8(bytes).map_err(AppError::internal)
}
