//! Users: the signed-in user's own profile and the admin's user management.

use async_graphql::{InputObject, MaybeUndefined};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::domain::{parse_name, parse_phone, Email, Rut};
use crate::entities::user::{self, Role};
use crate::entities::user_profile;
use crate::error::{AppError, AppResult, FieldIssue};
use crate::services::platform::events::{self, ChangedBy, Changes, DomainEvent};
use crate::services::platform::pagination::{like_pattern, Page};
use crate::services::platform::unique::ensure_free;
use crate::state::AppState;

/// A user with their profile (absent only for rows created outside the API).
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: user::Model,
    pub profile: Option<user_profile::Model>,
}

impl UserView {
    /// What `ctx` may see of the user: an API key never sees health data, so whether the customer
    /// holds a medicinal validation reads `false` to it.
    fn seen_by(mut self, ctx: &RequestCtx) -> Self {
        if ctx.api_key().is_some() {
            self.user.validated_medicinal = false;
        }
        self
    }
}

#[derive(InputObject, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Ana María Pérez", "phone": "+56 9 1234 5678"}))]
pub struct UpdateMeInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A Chilean RUT (any common spelling); `null` clears it.
    #[serde(default, skip_serializing_if = "MaybeUndefined::is_undefined")]
    #[schema(value_type = Option<String>)]
    pub rut: MaybeUndefined<String>,
    /// `null` clears it.
    #[serde(default, skip_serializing_if = "MaybeUndefined::is_undefined")]
    #[schema(value_type = Option<String>)]
    pub phone: MaybeUndefined<String>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"role": "admin", "isActive": true, "validatedMedicinal": false}))]
pub struct UpdateUserInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated_medicinal: Option<bool>,
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub q: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

pub async fn load_view<C: ConnectionTrait>(conn: &C, id: i64) -> AppResult<Option<UserView>> {
    Ok(user::Entity::find_by_id(id)
        .find_also_related(user_profile::Entity)
        .one(conn)
        .await?
        .map(|(user, profile)| UserView { user, profile }))
}

pub async fn me(st: &AppState, ctx: &RequestCtx) -> AppResult<UserView> {
    let me = ctx.require_user()?;
    load_view(&st.db, me.id)
        .await?
        .ok_or_else(|| AppError::unauthorized("The account no longer exists"))
}

pub async fn update_me(
    st: &AppState,
    ctx: &RequestCtx,
    input: UpdateMeInput,
) -> AppResult<UserView> {
    let me = ctx.require_user()?;
    let mut issues: Vec<FieldIssue> = Vec::new();
    let mut collect = |r: Result<(), crate::domain::Invalid>| {
        if let Err(e) = r {
            issues.extend(e.details);
        }
    };
    let mut name = None;
    let mut email = None;
    let mut rut: MaybeUndefined<String> = MaybeUndefined::Undefined;
    let mut phone: MaybeUndefined<String> = MaybeUndefined::Undefined;
    if let Some(n) = &input.name {
        collect(parse_name("name", n).map(|v| name = Some(v)));
    }
    if let Some(e) = &input.email {
        collect(Email::parse(e).map(|v| email = Some(v.into_inner())));
    }
    match &input.rut {
        MaybeUndefined::Value(r) => {
            collect(Rut::parse(r).map(|v| rut = MaybeUndefined::Value(v.into_inner())))
        }
        MaybeUndefined::Null => rut = MaybeUndefined::Null,
        MaybeUndefined::Undefined => {}
    }
    match &input.phone {
        MaybeUndefined::Value(p) => {
            collect(parse_phone("phone", p).map(|v| phone = MaybeUndefined::Value(v)))
        }
        MaybeUndefined::Null => phone = MaybeUndefined::Null,
        MaybeUndefined::Undefined => {}
    }
    if !issues.is_empty() {
        return Err(AppError::invalid_fields(issues));
    }

    let now = st.clock.now();
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    let current = load_view(&txn, me.id)
        .await?
        .ok_or_else(|| AppError::unauthorized("The account no longer exists"))?;
    let mut changed: Vec<&str> = Vec::new();
    let mut am: user::ActiveModel = current.user.clone().into();
    if let Some(n) = name.filter(|n| *n != current.user.name) {
        am.name = Set(n);
        changed.push("name");
    }
    // A new address takes effect when it is verified: a link goes to it, a notice to the old one.
    let mut email_change = None;
    if let Some(e) = email.filter(|e| *e != current.user.email) {
        ensure_email_free(&txn, &e).await?;
        email_change = Some(e);
    }
    match rut {
        MaybeUndefined::Value(r) if current.user.rut.as_deref() != Some(r.as_str()) => {
            ensure_rut_free(&txn, &r).await?;
            am.rut = Set(Some(r));
            changed.push("rut");
        }
        MaybeUndefined::Null if current.user.rut.is_some() => {
            am.rut = Set(None);
            changed.push("rut");
        }
        _ => {}
    }
    if !changed.is_empty() {
        am.updated_at = Set(now);
        am.update(&txn).await?;
    }
    if !phone.is_undefined() {
        let new_phone = phone.take();
        let profile = match current.profile {
            Some(p) => p,
            None => create_profile(&txn, me.id, now).await?,
        };
        if profile.phone != new_phone {
            let mut pam: user_profile::ActiveModel = profile.into();
            pam.phone = Set(new_phone);
            pam.updated_at = Set(now);
            pam.update(&txn).await?;
            changed.push("phone");
        }
    }
    if !changed.is_empty() {
        events::record(
            &txn,
            st,
            ctx,
            DomainEvent::UserUpdated {
                id: me.id,
                by: ChangedBy::Owner,
                changes: Changes {
                    fields: changed.iter().map(|f| f.to_string()).collect(),
                    ..Default::default()
                },
                medicinal_document_id: None,
            },
        )
        .await?;
    }
    if let Some(e) = email_change {
        crate::services::accounts::verification::request(
            &txn,
            st,
            ctx,
            me.id,
            &e,
            Some(&current.user.email),
        )
        .await?;
    }
    let view = load_view(&txn, me.id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    txn.commit().await?;
    Ok(view)
}

pub async fn create_profile<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<user_profile::Model> {
    Ok(user_profile::ActiveModel {
        user_id: Set(user_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?)
}

pub async fn ensure_email_free<C: ConnectionTrait>(conn: &C, email: &str) -> AppResult<()> {
    ensure_free::<user::Entity, _>(
        conn,
        user::Column::Email,
        email,
        None,
        "email",
        "An account with this email already exists",
    )
    .await
}

pub async fn ensure_rut_free<C: ConnectionTrait>(conn: &C, rut: &str) -> AppResult<()> {
    ensure_free::<user::Entity, _>(
        conn,
        user::Column::Rut,
        rut,
        None,
        "rut",
        "An account with this RUT already exists",
    )
    .await
}

pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    filter: UserFilter,
    page: Page,
) -> AppResult<(Vec<UserView>, u64)> {
    ctx.require_scope(crate::domain::Scope::CustomersRead)?;
    let mut cond = Condition::all();
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = like_pattern(q);
        let like = |col: user::Column| {
            Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(col)))
                .like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        cond = cond.add(
            Condition::any()
                .add(like(user::Column::Name))
                .add(like(user::Column::Email))
                .add(like(user::Column::Rut)),
        );
    }
    if let Some(role) = filter.role {
        cond = cond.add(user::Column::Role.eq(role));
    }
    if let Some(active) = filter.is_active {
        cond = cond.add(user::Column::IsActive.eq(active));
    }
    let base = user::Entity::find().filter(cond);
    let total = base.clone().count(&st.db).await?;
    let rows = base
        .find_also_related(user_profile::Entity)
        .order_by_asc(user::Column::Id)
        .offset(page.offset())
        .limit(page.page_size)
        .all(&st.db)
        .await?;
    Ok((
        rows.into_iter()
            .map(|(user, profile)| UserView { user, profile }.seen_by(ctx))
            .collect(),
        total,
    ))
}

pub async fn get(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<UserView> {
    ctx.require_scope(crate::domain::Scope::CustomersRead)?;
    load_view(&st.db, id)
        .await?
        .map(|v| v.seen_by(ctx))
        .ok_or_else(|| AppError::not_found("User"))
}

/// Refuses when `user` is the only active admin left (it would lock every admin out).
async fn ensure_not_last_admin<C: ConnectionTrait>(
    conn: &C,
    user: &user::Model,
    field: &str,
) -> AppResult<()> {
    if user.role != Role::Admin || !user.is_usable() {
        return Ok(());
    }
    // Locks every active admin's row, the target's included, in id order (PostgreSQL; SQLite's
    // write transaction already serialises writers): two admins demoting each other queue here,
    // and the second, re-reading the rows once the first commits, no longer finds the other one.
    let admins = crate::db::for_update(
        user::Entity::find()
            .filter(user::Column::Role.eq(Role::Admin))
            .filter(user::Column::IsActive.eq(true))
            .filter(user::Column::DeletedAt.is_null())
            .order_by_asc(user::Column::Id),
        conn.get_database_backend(),
    )
    .all(conn)
    .await?;
    if !admins.iter().any(|a| a.id != user.id) {
        return Err(AppError::conflict_field(
            field,
            "last_admin",
            "The last active administrator cannot be demoted, deactivated or deleted",
        ));
    }
    Ok(())
}

/// Locks user `id`'s row until the transaction ends (PostgreSQL; the last in the lock order, see
/// ARCHITECTURE.md) and reads it: one customer's decisions that depend on what else they have —
/// a consent already given, a first address being the default, a link sent a minute ago, an
/// erasure request beside a new order — are taken one at a time, each seeing the one before.
pub async fn lock<C: ConnectionTrait>(conn: &C, id: i64) -> AppResult<Option<user::Model>> {
    Ok(
        crate::db::for_update(user::Entity::find_by_id(id), conn.get_database_backend())
            .one(conn)
            .await?,
    )
}

pub async fn update(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: UpdateUserInput,
) -> AppResult<UserView> {
    ctx.require_admin()?;
    let now = st.clock.now();
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    let current = user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    if current.deleted_at.is_some() {
        return Err(AppError::conflict("A deleted user cannot be changed"));
    }
    let mut am: user::ActiveModel = current.clone().into();
    if let Some(role) = input.role.filter(|r| *r != current.role) {
        if role != Role::Admin {
            ensure_not_last_admin(&txn, &current, "role").await?;
            ensure_not_self(ctx, id, "role")?;
        }
        am.role = Set(role);
    }
    if let Some(active) = input.is_active.filter(|a| *a != current.is_active) {
        if !active {
            ensure_not_last_admin(&txn, &current, "isActive").await?;
            ensure_not_self(ctx, id, "isActive")?;
            crate::services::accounts::sessions::end(&txn, id, None, None, now).await?;
        }
        am.is_active = Set(active);
    }
    if let Some(v) = input
        .validated_medicinal
        .filter(|v| *v != current.validated_medicinal)
    {
        am.validated_medicinal = Set(v);
    }
    events::update_recorded(&txn, st, ctx, current, am, PERSONAL, &[], |changes, _| {
        DomainEvent::UserUpdated {
            id,
            by: ChangedBy::Admin,
            changes,
            medicinal_document_id: None,
        }
    })
    .await?;
    let view = load_view(&txn, id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    txn.commit().await?;
    Ok(view)
}

/// An administrator who deleted, deactivated or demoted their own account would lose the
/// session doing it; another administrator has to.
fn ensure_not_self(ctx: &RequestCtx, id: i64, field: &str) -> AppResult<()> {
    if ctx.user_id() == Some(id) {
        return Err(AppError::conflict_field(
            field,
            "self",
            "Administrators cannot delete, deactivate or demote their own account; another administrator can",
        ));
    }
    Ok(())
}

/// User columns whose values never reach the audit log (their names do).
const PERSONAL: &[&str] = &["name", "email", "rut", "password_hash"];

/// Soft delete: deactivates, stamps `deleted_at`, revokes every session.
pub async fn delete(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<bool> {
    ctx.require_admin()?;
    let now = st.clock.now();
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    let current = user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or_else(|| AppError::not_found("User"))?;
    ensure_not_last_admin(&txn, &current, "id").await?;
    ensure_not_self(ctx, id, "id")?;
    let mut am: user::ActiveModel = current.into();
    am.is_active = Set(false);
    am.deleted_at = Set(Some(now));
    am.updated_at = Set(now);
    am.update(&txn).await?;
    crate::services::accounts::sessions::end(&txn, id, None, None, now).await?;
    events::record(&txn, st, ctx, DomainEvent::UserDeactivated { id }).await?;
    txn.commit().await?;
    Ok(true)
}

/// `POST /api/admin/users/{id}/block-processing`: why the processing of a customer's data is
/// blocked.
#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"reason": "La clienta disputa la exactitud de sus datos (reclamo 2026-114)"}))]
pub struct BlockProcessingInput {
    /// Why, for the admins who follow it (1–500 characters).
    pub reason: String,
}

/// The longest reason for a block (the column's width).
pub const BLOCK_REASON_MAX: usize = 500;

/// Admin: blocks the processing of a customer's data while a dispute is resolved (Ley 21.719:
/// bloqueo). The account stays readable and signed in, but creates nothing — no orders,
/// documents or reviews (403 `processing_blocked`). Blocking again changes the reason.
pub async fn block_processing(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: BlockProcessingInput,
) -> AppResult<UserView> {
    ctx.require_admin()?;
    let reason = crate::domain::parse_text("reason", &input.reason, BLOCK_REASON_MAX)?;
    set_blocked(st, ctx, id, Some(reason)).await
}

/// Admin: ends a block; the account may create again. Unblocking an unblocked account changes
/// nothing.
pub async fn unblock_processing(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<UserView> {
    ctx.require_admin()?;
    set_blocked(st, ctx, id, None).await
}

async fn set_blocked(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    reason: Option<String>,
) -> AppResult<UserView> {
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let current = user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .filter(|u| u.erased_at.is_none())
        .ok_or_else(|| AppError::not_found("User"))?;
    if current.role != Role::Customer {
        return Err(AppError::conflict_field(
            "id",
            "not_a_customer",
            "Only a customer's data processing can be blocked",
        ));
    }
    if current.processing_blocked_reason != reason {
        let mut am: user::ActiveModel = current.clone().into();
        am.processing_blocked_at = Set(match (&reason, current.processing_blocked_at) {
            (Some(_), Some(since)) => Some(since),
            (Some(_), None) => Some(now),
            (None, _) => None,
        });
        am.processing_blocked_reason = Set(reason.clone());
        am.updated_at = Set(now);
        am.update(&txn).await?;
        let event = match reason {
            Some(reason) => DomainEvent::ProcessingBlocked { id, reason },
            None => DomainEvent::ProcessingUnblocked { id },
        };
        events::record(&txn, st, ctx, event).await?;
    }
    let view = load_view(&txn, id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    txn.commit().await?;
    Ok(view)
}
