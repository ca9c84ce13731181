//! The signed-in customer's address book. Another customer's address is `not_found`.

use async_graphql::{InputObject, MaybeUndefined};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::domain::parse_region;
use crate::domain::parse_text;
use crate::entities::{address, user_profile};
use crate::error::Issues;
use crate::error::{AppError, AppResult};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::pagination::Page;
use crate::services::platform::row_write::{self, Cached};
use crate::state::AppState;

#[derive(InputObject, Deserialize, Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Casa", "addressLine": "Av. Providencia 1234, depto 56", "comuna": "Providencia", "region": "RM", "isDefault": true}))]
pub struct AddressInput {
    /// A label ("Casa", "Oficina"); defaults to "Dirección".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub address_line: String,
    pub comuna: String,
    /// One of Chile's 16 regions, by name or code (`RM`, `V`, `XVI`, ...).
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"notes": "Timbre 56", "isDefault": true}))]
pub struct UpdateAddressInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comuna: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `null` clears the notes.
    #[serde(default, skip_serializing_if = "MaybeUndefined::is_undefined")]
    #[schema(value_type = Option<String>)]
    pub notes: MaybeUndefined<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

/// Longest label, street line, comuna and notes, in characters.
pub const NAME_MAX: usize = 80;
pub const LINE_MAX: usize = 255;
pub const COMUNA_MAX: usize = 80;
pub const NOTES_MAX: usize = 500;

/// A validated address (also the snapshot an order keeps).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidAddress {
    pub name: String,
    pub address_line: String,
    pub comuna: String,
    pub region: String,
    pub notes: Option<String>,
}

impl AddressInput {
    pub fn validate(&self) -> AppResult<ValidAddress> {
        let mut issues = Issues::default();
        let name = match self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(n) => issues.take(parse_text("name", n, NAME_MAX)),
            None => Some("Dirección".to_string()),
        };
        let line = issues.take(parse_text("addressLine", &self.address_line, LINE_MAX));
        let comuna = issues.take(parse_text("comuna", &self.comuna, COMUNA_MAX));
        let region = issues.take(parse_region("region", &self.region));
        let notes = match self
            .notes
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(n) => issues.take(parse_text("notes", n, NOTES_MAX)).map(Some),
            None => Some(None),
        };
        issues.finish()?;
        match (name, line, comuna, region, notes) {
            (Some(name), Some(address_line), Some(comuna), Some(region), Some(notes)) => {
                Ok(ValidAddress {
                    name,
                    address_line,
                    comuna,
                    region,
                    notes,
                })
            }
            _ => Err(AppError::invalid("address", "invalid", "Invalid address")),
        }
    }
}

impl From<&address::Model> for ValidAddress {
    fn from(a: &address::Model) -> Self {
        ValidAddress {
            name: a.name.clone(),
            address_line: a.address_line.clone(),
            comuna: a.comuna.clone(),
            region: a.region.clone(),
            notes: a.notes.clone(),
        }
    }
}

pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    page: Page,
) -> AppResult<(Vec<address::Model>, u64)> {
    let me = ctx.require_user()?;
    let base = address::Entity::find().filter(address::Column::UserId.eq(me.id));
    let total = base.clone().count(&st.db).await?;
    let items = base
        .order_by_desc(address::Column::IsDefault)
        .order_by_asc(address::Column::Id)
        .offset(page.offset())
        .limit(page.page_size)
        .all(&st.db)
        .await?;
    Ok((items, total))
}

/// The caller's own address, or `not_found` (never reveals someone else's).
pub async fn own<C: ConnectionTrait>(conn: &C, user_id: i64, id: i64) -> AppResult<address::Model> {
    address::Entity::find_by_id(id)
        .filter(address::Column::UserId.eq(user_id))
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("Address"))
}

async fn clear_default<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    address::Entity::update_many()
        .col_expr(address::Column::IsDefault, Expr::value(false))
        .col_expr(address::Column::UpdatedAt, Expr::value(now))
        .filter(address::Column::UserId.eq(user_id))
        .filter(address::Column::IsDefault.eq(true))
        .exec(conn)
        .await?;
    Ok(())
}

/// Keeps the profile's `defaultAddressId` pointing at the default address.
async fn sync_profile_default<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let default = address::Entity::find()
        .filter(address::Column::UserId.eq(user_id))
        .filter(address::Column::IsDefault.eq(true))
        .one(conn)
        .await?;
    user_profile::Entity::update_many()
        .col_expr(
            user_profile::Column::DefaultAddressId,
            Expr::value(default.map(|a| a.id)),
        )
        .col_expr(user_profile::Column::UpdatedAt, Expr::value(now))
        .filter(user_profile::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn create(
    st: &AppState,
    ctx: &RequestCtx,
    input: AddressInput,
) -> AppResult<address::Model> {
    let me = ctx.require_user()?;
    let valid = input.validate()?;
    let now = st.clock.now();
    let w = row_write::begin_create(st, ctx, Cached::Nothing).await?;
    // A customer's address writes queue on their user row: the count, the default and the
    // row being changed are read after the previous write committed.
    crate::services::accounts::users::lock(&w.txn, me.id).await?;
    let count = address::Entity::find()
        .filter(address::Column::UserId.eq(me.id))
        .count(&w.txn)
        .await?;
    if count >= 50 {
        return Err(AppError::conflict(
            "An account may keep at most 50 addresses",
        ));
    }
    // The first address is the default; asking for a default moves it here.
    let is_default = input.is_default.unwrap_or(false) || count == 0;
    if is_default {
        clear_default(&w.txn, me.id, now).await?;
    }
    let created = w
        .insert(address::ActiveModel {
            user_id: Set(me.id),
            name: Set(valid.name),
            address_line: Set(valid.address_line),
            comuna: Set(valid.comuna),
            region: Set(valid.region),
            notes: Set(valid.notes),
            is_default: Set(is_default),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .await?;
    sync_profile_default(&w.txn, me.id, now).await?;
    let event = DomainEvent::AddressCreated { id: created.id };
    w.created(created, event).await
}

pub async fn update(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: UpdateAddressInput,
) -> AppResult<address::Model> {
    let me = ctx.require_user()?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    crate::services::accounts::users::lock(&txn, me.id).await?;
    let current = own(&txn, me.id, id).await?;
    let merged = AddressInput {
        name: input.name.clone().or_else(|| Some(current.name.clone())),
        address_line: input
            .address_line
            .clone()
            .unwrap_or_else(|| current.address_line.clone()),
        comuna: input
            .comuna
            .clone()
            .unwrap_or_else(|| current.comuna.clone()),
        region: input
            .region
            .clone()
            .unwrap_or_else(|| current.region.clone()),
        notes: match &input.notes {
            MaybeUndefined::Value(n) => Some(n.clone()),
            MaybeUndefined::Null => None,
            MaybeUndefined::Undefined => current.notes.clone(),
        },
        is_default: None,
    };
    let valid = merged.validate()?;
    if input.is_default == Some(true) && !current.is_default {
        clear_default(&txn, me.id, now).await?;
    }
    let mut am: address::ActiveModel = current.clone().into();
    am.name = Set(valid.name);
    am.address_line = Set(valid.address_line);
    am.comuna = Set(valid.comuna);
    am.region = Set(valid.region);
    am.notes = Set(valid.notes);
    if let Some(d) = input.is_default {
        am.is_default = Set(d);
    }
    am.updated_at = Set(now);
    let updated = am.update(&txn).await?;
    sync_profile_default(&txn, me.id, now).await?;
    events::record(&txn, st, ctx, DomainEvent::AddressUpdated { id }).await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn delete(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<bool> {
    let me = ctx.require_user()?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    crate::services::accounts::users::lock(&txn, me.id).await?;
    let current = own(&txn, me.id, id).await?;
    address::Entity::delete_by_id(id).exec(&txn).await?;
    sync_profile_default(&txn, me.id, now).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::AddressDeleted {
            id,
            was_default: current.is_default,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}
