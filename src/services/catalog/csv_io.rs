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

pub async fn import(
    st: &AppState,
    ctx: &RequestCtx,
    csv_text: &str,
    dry_run: bool,
) -> AppResult<ImportReport> {
    ctx.require_admin()?;
    let mut errors: Vec<ImportIssue> = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| {
            AppError::invalid(
                "csv",
                "unreadable",
                format!("The CSV header could not be read: {e}"),
            )
        })?
        .clone();
    let index: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    for col in COLUMNS {
        if !index.contains_key(col) {
            errors.push(ImportIssue {
                row: 1,
                field: format!("header.{col}"),
                issue: "missing_column".into(),
                message: format!("The header has no '{col}' column"),
            });
        }
    }
    if !errors.is_empty() {
        return finish(dry_run, 0, 0, 0, 0, errors);
    }

    let categories: HashMap<String, i64> = category::Entity::find()
        .all(&st.db)
        .await?
        .into_iter()
        .map(|c| (c.slug, c.id))
        .collect();
    let mut records = Vec::new();
    for rec in reader.records() {
        match rec {
            Ok(r) => records.push(r),
            Err(e) => {
                let row = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(ImportIssue {
                    row,
                    field: "row".into(),
                    issue: "unreadable".into(),
                    message: e.to_string(),
                });
            }
        }
    }
    let skus: Vec<String> = records
        .iter()
        .filter_map(|r| r.get(index["variantSku"]).map(str::to_string))
        .collect();
    let existing_skus: HashSet<String> = product_variant::Entity::find()
        .filter(product_variant::Column::Sku.is_in(skus))
        .all(&st.db)
        .await?
        .into_iter()
        .map(|v| v.sku)
        .collect();
    // Rows belong to an existing product with the same name, or else the same slug.
    let names: Vec<String> = records
        .iter()
        .filter_map(|r| r.get(index["name"]).map(str::to_string))
        .collect();
    let slugs: Vec<String> = names.iter().map(|n| slugify(n)).collect();
    let known = product::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(product::Column::Name.is_in(names))
                .add(product::Column::Slug.is_in(slugs)),
        )
        .all(&st.db)
        .await?;
    let by_name: HashMap<String, i64> = known.iter().map(|p| (p.name.clone(), p.id)).collect();
    let by_slug: HashMap<String, i64> = known.iter().map(|p| (p.slug.clone(), p.id)).collect();
    let existing_id = |name: &str| {
        by_name
            .get(name)
            .or_else(|| by_slug.get(&slugify(name)))
            .copied()
    };
    let matched: u64 = records
        .iter()
        .filter_map(|r| r.get(index["name"]).and_then(existing_id))
        .collect::<HashSet<i64>>()
        .len() as u64;

    let mut plan: Vec<(String, PlannedProduct)> = Vec::new();
    let mut product_category: HashMap<String, String> = HashMap::new();
    let mut seen_skus: HashMap<String, u64> = HashMap::new();
    let mut rows = 0u64;
    for rec in &records {
        rows += 1;
        let line = rec.position().map(|p| p.line()).unwrap_or(rows + 1);
        let get = |c: &str| rec.get(index[c]).unwrap_or("").to_string();
        let mut row_errors = Vec::new();
        let name = take(&mut row_errors, line, parse_text("name", &get("name"), 200));
        let category_slug = get("categorySlug");
        let category_id = categories.get(&category_slug).copied();
        let description = take(
            &mut row_errors,
            line,
            parse_description("description", Some(&get("description"))),
        );
        let image = get("imageUrl");
        let image_url = if image.is_empty() {
            Some(None)
        } else {
            take(&mut row_errors, line, parse_image_url("imageUrl", &image)).map(Some)
        };
        let is_active = parse_bool(&get("isActive"));
        let sku = take(
            &mut row_errors,
            line,
            parse_sku("variantSku", &get("variantSku")),
        );
        let label = take(
            &mut row_errors,
            line,
            parse_text("variantLabel", &get("variantLabel"), 40),
        );
        let number = |field: &str, max: i64| -> AppResult<i64> {
            let raw = get(field);
            let v: i64 = raw.parse().map_err(|_| {
                AppError::invalid(
                    field,
                    "invalid_type",
                    format!("{field} must be a whole number"),
                )
            })?;
            non_negative(field, v, max)
        };
        let price = take(
            &mut row_errors,
            line,
            number("variantPriceCents", 1_000_000_000),
        );
        let stock = take(
            &mut row_errors,
            line,
            number("variantStock", i64::from(i32::MAX)),
        );
        if category_id.is_none() {
            row_errors.push(ImportIssue {
                row: line,
                field: "categorySlug".into(),
                issue: "not_found".into(),
                message: format!("No category with slug '{category_slug}'"),
            });
        }
        if is_active.is_none() {
            row_errors.push(ImportIssue {
                row: line,
                field: "isActive".into(),
                issue: "invalid_type".into(),
                message: "isActive must be true or false".into(),
            });
        }
        if let Some(s) = &sku {
            if let Some(first) = seen_skus.get(s) {
                row_errors.push(ImportIssue {
                    row: line,
                    field: "variantSku".into(),
                    issue: "duplicate".into(),
                    message: format!("SKU {s} already appears on line {first}"),
                });
            } else if existing_skus.contains(s) {
                row_errors.push(ImportIssue {
                    row: line,
                    field: "variantSku".into(),
                    issue: "already_exists".into(),
                    message: format!("SKU {s} already exists"),
                });
            }
            seen_skus.entry(s.clone()).or_insert(line);
        }
        let slug = name
            .as_deref()
            .map(|n| {
                existing_id(n)
                    .map(|id| format!("#{id}"))
                    .unwrap_or_else(|| slugify(n))
            })
            .unwrap_or_default();
        if let Some(first_cat) = product_category.get(&slug) {
            if *first_cat != category_slug {
                row_errors.push(ImportIssue {
                    row: line,
                    field: "categorySlug".into(),
                    issue: "inconsistent".into(),
                    message: "Rows of one product must share its category".into(),
                });
            }
        }
        if !row_errors.is_empty() {
            errors.extend(row_errors);
            continue;
        }
        let (
            Some(name),
            Some(category_id),
            Some(description),
            Some(image_url),
            Some(is_active),
            Some(sku),
            Some(label),
            Some(price),
            Some(stock),
        ) = (
            name,
            category_id,
            description,
            image_url,
            is_active,
            sku,
            label,
            price,
            stock,
        )
        else {
            continue;
        };
        product_category.insert(slug.clone(), category_slug);
        let variant = NewVariant {
            sku,
            option_label: label,
            price_cents: price,
            stock: stock as i32,
            weight_grams: 0,
            is_active: true,
        };
        match plan.iter_mut().find(|(s, _)| *s == slug) {
            Some((_, p)) => p.variants.push(variant),
            None => {
                let existing_id = existing_id(&name);
                let new = existing_id.is_none().then(|| NewProduct {
                    category_id,
                    slug: slug.clone(),
                    name,
                    description,
                    image_url,
                    is_active,
                });
                plan.push((
                    slug,
                    PlannedProduct {
                        existing_id,
                        new,
                        variants: vec![variant],
                    },
                ));
            }
        }
    }
    if rows == 0 && errors.is_empty() {
        errors.push(ImportIssue {
            row: 2,
            field: "row".into(),
            issue: "empty".into(),
            message: "The CSV has no data rows".into(),
        });
    }
    let created = plan.iter().filter(|(_, p)| p.new.is_some()).count() as u64;
    let variants: u64 = plan.iter().map(|(_, p)| p.variants.len() as u64).sum();
    if dry_run || !errors.is_empty() {
        return finish(dry_run, rows, created, matched, variants, errors);
    }

    let now = st.clock.now();
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    for (_, p) in plan {
        let product_id = match (p.existing_id, p.new) {
            (Some(id), _) => id,
            (None, Some(new)) => insert_product(&txn, now, new).await?.id,
            (None, None) => continue,
        };
        for v in p.variants {
            insert_variant(&txn, now, product_id, v).await?;
        }
    }
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ProductsImported {
            rows,
            products_created: created,
            products_matched: matched,
            variants_created: variants,
        },
    )
    .await?;
    txn.commit().await?;
    finish(false, rows, created, matched, variants, Vec::new())
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
    ctx.require_admin()?;
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
