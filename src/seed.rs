//! Idempotent demo data: the admin from `SEED_ADMIN_EMAIL`/`SEED_ADMIN_PASSWORD`, plus the demo users
//! of `seed/users.json` (outside production). Running it twice changes nothing.

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
    Ok(report)
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
