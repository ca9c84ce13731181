//! Idempotent demo data: the admin from `SEED_ADMIN_EMAIL`/`SEED_ADMIN_PASSWORD`, the demo users of
//! `seed/users.json` (outside production) and the demo catalogue of `seed/catalog.json`.
//! Running it twice changes nothing.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde::Deserialize;

use crate::actor::RequestCtx;
use crate::domain::{Email, Password, Rut};
use crate::entities::user::{self, Role};
use crate::services::audit::{self, Entry};
use crate::services::users::create_profile;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedUser {
    name: String,
    email: String,
    rut: Option<String>,
    password: String,
    role: Role,
    validated_medicinal: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
}

pub async fn has_users(st: &AppState) -> anyhow::Result<bool> {
    Ok(user::Entity::find().count(&st.db).await? > 0)
}

pub async fn run(st: &AppState) -> anyhow::Result<SeedReport> {
    let mut report = SeedReport::default();
    let mut users = vec![SeedUser {
        name: "Administrador".into(),
        email: st.config.seed_admin_email.clone(),
        rut: None,
        password: st.config.seed_admin_password.clone(),
        role: Role::Admin,
        validated_medicinal: true,
    }];
    if !st.config.is_production() {
        users.extend(serde_json::from_str::<Vec<SeedUser>>(include_str!(
            "../seed/users.json"
        ))?);
    }
    for u in users {
        upsert(st, u, &mut report).await?;
    }
    seed_catalog(st, &mut report).await?;
    Ok(report)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedCatalog {
    categories: Vec<SeedCategory>,
    products: Vec<SeedProduct>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedCategory {
    slug: String,
    name: String,
    description: String,
    is_medicinal: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedProduct {
    slug: String,
    category_slug: String,
    name: String,
    description: String,
    variants: Vec<crate::services::catalog::variants::CreateVariantInput>,
}

/// Creates what is missing (by slug and SKU); never overwrites what an admin changed.
async fn seed_catalog(st: &AppState, report: &mut SeedReport) -> anyhow::Result<()> {
    use crate::entities::{category, product, product_variant};
    use crate::services::catalog::products::{insert_product, NewProduct};
    use crate::services::catalog::variants::insert_variant;
    use crate::services::catalog::Issues;

    let data: SeedCatalog = serde_json::from_str(include_str!("../seed/catalog.json"))?;
    let now = st.clock.now();
    let txn = crate::db::begin_write(&st.db).await?;
    for c in data.categories {
        let exists = category::Entity::find()
            .filter(category::Column::Slug.eq(c.slug.as_str()))
            .count(&txn)
            .await?
            > 0;
        if exists {
            report.unchanged += 1;
            continue;
        }
        category::ActiveModel {
            slug: Set(c.slug),
            name: Set(c.name),
            description: Set(c.description),
            is_medicinal: Set(c.is_medicinal),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        report.created += 1;
    }
    for p in data.products {
        let existing = product::Entity::find()
            .filter(product::Column::Slug.eq(p.slug.as_str()))
            .one(&txn)
            .await?;
        let product_id = match existing {
            Some(e) => {
                report.unchanged += 1;
                e.id
            }
            None => {
                let category = category::Entity::find()
                    .filter(category::Column::Slug.eq(p.category_slug.as_str()))
                    .one(&txn)
                    .await?
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "seed product {}: unknown category {}",
                            p.slug,
                            p.category_slug
                        )
                    })?;
                let new = NewProduct {
                    category_id: category.id,
                    slug: p.slug.clone(),
                    name: p.name,
                    description: p.description,
                    image_url: None,
                    is_active: true,
                };
                report.created += 1;
                insert_product(&txn, now, new).await?.id
            }
        };
        for v in p.variants {
            let exists = product_variant::Entity::find()
                .filter(product_variant::Column::Sku.eq(v.sku.as_str()))
                .count(&txn)
                .await?
                > 0;
            if exists {
                report.unchanged += 1;
                continue;
            }
            let mut issues = Issues::default();
            let new = v.validate(&mut issues);
            issues.finish()?;
            let new = new.ok_or_else(|| anyhow::anyhow!("seed variant {} is invalid", v.sku))?;
            insert_variant(&txn, now, product_id, new).await?;
            report.created += 1;
        }
    }
    txn.commit().await?;
    Ok(())
}

async fn upsert(st: &AppState, seed: SeedUser, report: &mut SeedReport) -> anyhow::Result<()> {
    let email = Email::parse(&seed.email)
        .map_err(|e| anyhow::anyhow!("seed user {}: {}", seed.email, e.message))?;
    let password = Password::parse(&seed.password)
        .map_err(|e| anyhow::anyhow!("seed user {}: {}", seed.email, e.message))?;
    let rut = seed
        .rut
        .as_deref()
        .map(Rut::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("seed user {}: {}", seed.email, e.message))?
        .map(Rut::into_inner);
    let now = st.clock.now();
    let ctx = RequestCtx::anonymous("seed".into(), std::net::Ipv4Addr::LOCALHOST.into());
    let existing = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&st.db)
        .await?;
    match existing {
        None => {
            let hash = st.passwords.hash(&password).await?;
            let created = user::ActiveModel {
                name: Set(seed.name),
                email: Set(email.into_inner()),
                rut: Set(rut),
                password_hash: Set(hash),
                role: Set(seed.role),
                is_active: Set(true),
                validated_medicinal: Set(seed.validated_medicinal),
                deleted_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&st.db)
            .await?;
            create_profile(&st.db, created.id, now).await?;
            audit::record(
                &st.db,
                &st.clock,
                &ctx,
                Entry::new("seed.user_created", "user", Some(created.id)),
            )
            .await?;
            report.created += 1;
        }
        Some(u) => {
            let password_ok = st
                .passwords
                .verify(password.expose(), Some(&u.password_hash))
                .await?;
            let needs =
                !password_ok || u.role != seed.role || !u.is_active || u.deleted_at.is_some();
            if !needs {
                report.unchanged += 1;
                return Ok(());
            }
            let id = u.id;
            let mut am: user::ActiveModel = u.into();
            if !password_ok {
                am.password_hash = Set(st.passwords.hash(&password).await?);
            }
            am.role = Set(seed.role);
            am.is_active = Set(true);
            am.deleted_at = Set(None);
            am.updated_at = Set(now);
            am.update(&st.db).await?;
            audit::record(
                &st.db,
                &st.clock,
                &ctx,
                Entry::new("seed.user_updated", "user", Some(id)),
            )
            .await?;
            report.updated += 1;
        }
    }
    Ok(())
}
