//! Webhook endpoints: registered, changed, rotated and removed by admins or by an API key with
//! `webhooks:manage`. The signing secret is shown at creation and at each rotation, never
//! again; it is stored sealed (signing needs it back).

use async_graphql::InputObject;
use chrono::Duration;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{delivery, signing, targets, EVENT_TYPES};
use crate::actor::RequestCtx;
use crate::db::{begin_write, for_update};
use crate::domain::{parse_text, Invalid, Scope};
use crate::entities::{webhook_delivery, webhook_endpoint};
use crate::error::{AppError, AppResult, Issues};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::pagination::Page;
use crate::state::AppState;

/// How long a rotated-out secret keeps signing alongside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// An endpoint's description, in characters.
pub const DESCRIPTION_MAX: usize = 500;

#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"url": "https://erp.example.cl/hooks/dispensary", "eventTypes": ["order.paid", "order.shipped"],
    "description": "ERP", "isActive": true}))]
pub struct NewWebhookEndpoint {
    /// `https` (also `http` outside production); no credentials in it.
    pub url: String,
    /// One or more of the webhook event types (README, "Outbound webhooks").
    #[schema(min_items = 1)]
    pub event_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

#[derive(InputObject, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"eventTypes": ["order.paid"], "isActive": true}))]
pub struct WebhookEndpointPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1)]
    pub event_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Turning it back on clears why the server disabled it and resumes its pending deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

/// An endpoint with its secret, as created or rotated: the one answer that shows it.
pub struct WithSecret {
    pub endpoint: webhook_endpoint::Model,
    pub secret: String,
}

fn parse_event_types(field: &str, names: &[String]) -> Result<String, Invalid> {
    if names.is_empty() {
        return Err(Invalid::new(
            field,
            "required",
            "Subscribe to at least one event type",
        ));
    }
    let mut chosen: Vec<&str> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        match EVENT_TYPES.iter().find(|t| **t == n.trim()) {
            Some(t) if !chosen.contains(t) => chosen.push(t),
            Some(_) => {
                return Err(Invalid::new(
                    &format!("{field}[{i}]"),
                    "duplicate",
                    "An event type is given twice",
                ))
            }
            None => {
                return Err(Invalid::new(
                    &format!("{field}[{i}]"),
                    "unknown_event_type",
                    format!(
                        "Unknown event type; the types are {}",
                        EVENT_TYPES.join(", ")
                    ),
                ))
            }
        }
    }
    chosen.sort();
    Ok(chosen.join(" "))
}

fn parse_description(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    match raw.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) => parse_text("description", d, DESCRIPTION_MAX).map(Some),
    }
}

/// `POST /api/admin/webhooks`.
pub async fn create(
    st: &AppState,
    ctx: &RequestCtx,
    input: NewWebhookEndpoint,
) -> AppResult<WithSecret> {
    ctx.require_scope(Scope::WebhooksManage)?;
    let mut issues = Issues::default();
    let url = issues.take(targets::check_url("url", &input.url, &st.config.webhooks));
    let types = issues.take(parse_event_types("eventTypes", &input.event_types));
    let description = issues.take(parse_description(input.description.as_deref()));
    issues.finish()?;
    let (Some(url), Some(types), Some(description)) = (url, types, description) else {
        return Err(AppError::internal("validated input missing"));
    };
    let now = st.clock.now();
    let secret = signing::new_secret();
    let txn = begin_write(&st.db).await?;
    let row = webhook_endpoint::ActiveModel {
        url: Set(url.to_string()),
        description: Set(description),
        event_types: Set(types.clone()),
        is_active: Set(input.is_active.unwrap_or(true)),
        // Sealed once the id (its context) is known.
        secret: Set(String::new()),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        disabled_reason: Set(None),
        failing_since: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut am = row.clone().into_active_model();
    am.secret = Set(signing::seal(st, row.id, &secret)?);
    let row = am.update(&txn).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::WebhookEndpointCreated {
            id: row.id,
            event_types: types.split(' ').map(String::from).collect(),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(WithSecret {
        endpoint: row,
        secret,
    })
}

/// `GET /api/admin/webhooks`, newest first.
pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    page: Page,
) -> AppResult<(Vec<webhook_endpoint::Model>, u64)> {
    ctx.require_scope(Scope::WebhooksManage)?;
    let total = webhook_endpoint::Entity::find().count(&st.db).await?;
    let rows = webhook_endpoint::Entity::find()
        .order_by_desc(webhook_endpoint::Column::Id)
        .offset(page.offset())
        .limit(page.page_size)
        .all(&st.db)
        .await?;
    Ok((rows, total))
}

/// `GET /api/admin/webhooks/{id}`.
pub async fn get(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<webhook_endpoint::Model> {
    ctx.require_scope(Scope::WebhooksManage)?;
    find(&st.db, id).await
}

async fn find<C: ConnectionTrait>(conn: &C, id: i64) -> AppResult<webhook_endpoint::Model> {
    webhook_endpoint::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("Webhook endpoint"))
}

async fn find_locked<C: ConnectionTrait>(conn: &C, id: i64) -> AppResult<webhook_endpoint::Model> {
    for_update(
        webhook_endpoint::Entity::find_by_id(id),
        conn.get_database_backend(),
    )
    .one(conn)
    .await?
    .ok_or_else(|| AppError::not_found("Webhook endpoint"))
}

/// `PATCH /api/admin/webhooks/{id}`.
pub async fn update(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    patch: WebhookEndpointPatch,
) -> AppResult<webhook_endpoint::Model> {
    ctx.require_scope(Scope::WebhooksManage)?;
    let mut issues = Issues::default();
    let url = patch
        .url
        .as_deref()
        .and_then(|u| issues.take(targets::check_url("url", u, &st.config.webhooks)));
    let types = patch
        .event_types
        .as_deref()
        .and_then(|t| issues.take(parse_event_types("eventTypes", t)));
    let description = match patch.description.as_deref() {
        None => None,
        Some(d) => issues.take(parse_description(Some(d))),
    };
    issues.finish()?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let current = find_locked(&txn, id).await?;
    let mut fields = Vec::new();
    let mut am = current.clone().into_active_model();
    if let Some(u) = url.map(|u| u.to_string()).filter(|u| *u != current.url) {
        am.url = Set(u);
        fields.push("url".to_string());
    }
    if let Some(t) = types.filter(|t| *t != current.event_types) {
        am.event_types = Set(t);
        fields.push("eventTypes".to_string());
    }
    if let Some(d) = description.filter(|d| *d != current.description) {
        am.description = Set(d);
        fields.push("description".to_string());
    }
    let resumed = patch.is_active == Some(true) && !current.is_active;
    if let Some(active) = patch.is_active.filter(|a| *a != current.is_active) {
        am.is_active = Set(active);
        if active {
            am.disabled_reason = Set(None);
            am.failing_since = Set(None);
        }
        fields.push("isActive".to_string());
    }
    if fields.is_empty() {
        return Ok(current);
    }
    am.updated_at = Set(now);
    let row = am.update(&txn).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::WebhookEndpointUpdated { id, fields },
    )
    .await?;
    if resumed {
        delivery::resume(&txn, st, id, now).await?;
    }
    txn.commit().await?;
    Ok(row)
}

/// `DELETE /api/admin/webhooks/{id}`: the endpoint and its deliveries' log.
pub async fn delete(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<()> {
    ctx.require_scope(Scope::WebhooksManage)?;
    let txn = begin_write(&st.db).await?;
    find_locked(&txn, id).await?;
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::EndpointId.eq(id))
        .exec(&txn)
        .await?;
    webhook_endpoint::Entity::delete_by_id(id)
        .exec(&txn)
        .await?;
    events::record(&txn, st, ctx, DomainEvent::WebhookEndpointDeleted { id }).await?;
    txn.commit().await?;
    Ok(())
}

/// `POST /api/admin/webhooks/{id}/rotate-secret`: a new secret; the old one keeps signing
/// alongside it for 24 hours (two signatures in `webhook-signature`).
pub async fn rotate_secret(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<WithSecret> {
    ctx.require_scope(Scope::WebhooksManage)?;
    let now = st.clock.now();
    let secret = signing::new_secret();
    let txn = begin_write(&st.db).await?;
    let current = find_locked(&txn, id).await?;
    let until = now + ROTATION_OVERLAP;
    let mut am = current.clone().into_active_model();
    am.previous_secret = Set(Some(current.secret.clone()));
    am.previous_secret_until = Set(Some(until));
    am.secret = Set(signing::seal(st, id, &secret)?);
    am.updated_at = Set(now);
    let row = am.update(&txn).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::WebhookSecretRotated {
            id,
            previous_valid_until: until,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(WithSecret {
        endpoint: row,
        secret,
    })
}
