//! Idempotent demo data: the admin from `SEED_ADMIN_EMAIL`/`SEED_ADMIN_PASSWORD`, the demo users of
//! `seed/users.json` (outside production) and the demo catalogue of `seed/catalog.json`.
//! Running it twice changes nothing.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde::Deserialize;

use crate::actor::RequestCtx;
use crate::domain::{Email, Password, Rut};
use crate::entities::consent::{ConsentPurpose, ConsentSource};
use crate::entities::user::{self, Role};
use crate::services::accounts::users::create_profile;
use crate::services::platform::events::{self, DomainEvent};
use crate::state::AppState;
use secrecy::ExposeSecret;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedUser {
    name: String,
    email: String,
    rut: Option<String>,
    password: String,
    role: Role,
    validated_medicinal: bool,
    /// A demo document of this type awaiting review (created once, if the user has none).
    #[serde(default)]
    pending_document: Option<crate::entities::medicinal_document::DocType>,
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
        email: st.config.auth.seed_admin_email.clone(),
        rut: None,
        password: st
            .config
            .auth
            .seed_admin_password
            .expose_secret()
            .to_string(),
        role: Role::Admin,
        validated_medicinal: true,
        pending_document: None,
    }];
    if !st.config.is_production() {
        users.extend(serde_json::from_str::<Vec<SeedUser>>(include_str!(
            "../seed/users.json"
        ))?);
    }
    for u in users {
        let document = u.pending_document.map(|d| (u.email.clone(), d));
        upsert(st, u, &mut report).await?;
        if let Some((email, doc_type)) = document {
            seed_pending_document(st, &email, doc_type, &mut report).await?;
        }
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
    use crate::error::Issues;
    use crate::services::catalog::products::{insert_product, NewProduct};
    use crate::services::catalog::variants::insert_variant;

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
            let txn = crate::db::begin_write(&st.db).await?;
            let created = user::ActiveModel {
                name: Set(seed.name),
                email: Set(email.into_inner()),
                rut: Set(rut),
                password_hash: Set(hash),
                role: Set(seed.role),
                is_active: Set(true),
                validated_medicinal: Set(seed.validated_medicinal),
                // The operator chose these addresses: nobody is there to follow a link.
                email_verified_at: Set(Some(now)),
                deleted_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            create_profile(&txn, created.id, now).await?;
            // The demo accounts registered under the policy in force, like any registration.
            crate::services::accounts::consents::grant(
                &txn,
                st,
                &ctx,
                created.id,
                ConsentPurpose::PrivacyPolicy,
                ConsentSource::Registration,
                false,
            )
            .await?;
            events::record(
                &txn,
                st,
                &ctx,
                DomainEvent::SeedUserCreated { id: created.id },
            )
            .await?;
            txn.commit().await?;
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
            let txn = crate::db::begin_write(&st.db).await?;
            am.update(&txn).await?;
            events::record(&txn, st, &ctx, DomainEvent::SeedUserUpdated { id }).await?;
            txn.commit().await?;
            report.updated += 1;
        }
    }
    Ok(())
}

/// A one-page PDF standing in for a scanned prescription (fictitious data).
fn demo_prescription_pdf() -> Vec<u8> {
    use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};
    let mut pdf = Pdf::new();
    let (catalog, tree, page, font, contents) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
    );
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
    p.parent(tree);
    p.contents(contents);
    p.resources().fonts().pair(Name(b"F1"), font);
    drop(p);
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    let mut c = Content::new();
    let lines: [&[u8]; 3] = [
        b"Receta medica de ejemplo",
        b"Datos ficticios generados por el seed de dispensary.",
        b"Paciente: Cliente Demo - Indicacion: flor CBD 1g diario.",
    ];
    for (i, line) in lines.iter().enumerate() {
        c.begin_text();
        c.set_font(Name(b"F1"), if i == 0 { 18.0 } else { 11.0 });
        c.next_line(60.0, 770.0 - 28.0 * i as f32);
        c.show(Str(line));
        c.end_text();
    }
    pdf.stream(contents, &c.finish());
    pdf.finish()
}

/// Gives a demo user a pending document, once (nothing happens when they have any document).
async fn seed_pending_document(
    st: &AppState,
    email: &str,
    doc_type: crate::entities::medicinal_document::DocType,
    report: &mut SeedReport,
) -> anyhow::Result<()> {
    use crate::entities::file;
    use crate::entities::medicinal_document::{self, DocStatus};
    use crate::services::platform::files;
    use sha2::{Digest, Sha256};

    let Some(u) = user::Entity::find()
        .filter(user::Column::Email.eq(email.to_lowercase()))
        .one(&st.db)
        .await?
    else {
        return Ok(());
    };
    let existing = medicinal_document::Entity::find()
        .filter(medicinal_document::Column::UserId.eq(u.id))
        .count(&st.db)
        .await?;
    if existing > 0 {
        report.unchanged += 1;
        return Ok(());
    }
    let bytes = demo_prescription_pdf();
    let stored = files::Stored::private(format!("{}.pdf", uuid::Uuid::new_v4().simple()));
    st.storage
        .put_bytes(stored.area(), &stored.key, bytes.clone())
        .await?;
    let key = stored.key.clone();
    let now = st.clock.now();
    let ctx = RequestCtx::anonymous("seed".into(), std::net::Ipv4Addr::LOCALHOST.into());
    let result = async {
        let txn = crate::db::begin_write(&st.db).await?;
        let f = file::ActiveModel {
            owner_id: Set(u.id),
            purpose: Set(files::MEDICINAL_DOC.to_string()),
            storage_key: Set(key.clone()),
            content_type: Set("application/pdf".into()),
            size_bytes: Set(bytes.len() as i64),
            sha256: Set(hex::encode(Sha256::digest(&bytes))),
            is_public: Set(false),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        // A document is only ever submitted with the consent to process health data.
        crate::services::accounts::consents::grant(
            &txn,
            st,
            &ctx,
            u.id,
            ConsentPurpose::HealthData,
            ConsentSource::Document,
            true,
        )
        .await?;
        let d = medicinal_document::ActiveModel {
            user_id: Set(u.id),
            doc_type: Set(doc_type),
            status: Set(DocStatus::Pending),
            file_id: Set(f.id),
            notes: Set(None),
            reviewed_by: Set(None),
            reviewed_at: Set(None),
            expires_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        events::record(
            &txn,
            st,
            &ctx,
            DomainEvent::SeedDocumentCreated { id: d.id },
        )
        .await?;
        txn.commit().await?;
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        files::discard(st, &stored).await;
    }
    result?;
    report.created += 1;
    Ok(())
}
