//! GraphQL types and resolvers for outbound webhooks (see `services::integrations`): admins, or
//! an API key with `webhooks:manage`.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::ScopeGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::domain::Scope;
use crate::entities::{webhook_attempt, webhook_endpoint};
use crate::services::integrations::delivery::{self, DeliveryView};
use crate::services::integrations::endpoints::{
    self, NewWebhookEndpoint, WebhookEndpointPatch, WithSecret,
};
use crate::services::platform::pagination::Page;

/// A webhook endpoint, without its secret.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 4, "url": "https://erp.example.cl/hooks/dispensary", "description": "ERP",
    "eventTypes": ["order.paid", "order.shipped"], "isActive": true, "disabledReason": null,
    "failingSince": null, "previousSecretValidUntil": null,
    "createdAt": "2026-12-08T10:00:00Z", "updatedAt": "2026-12-08T10:00:00Z"}))]
pub struct WebhookEndpoint {
    pub id: i64,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub is_active: bool,
    /// Why the server turned it off: `gone` (the receiver answered 410) or `failing` (24 h of
    /// failed attempts). Cleared when it is turned on again.
    pub disabled_reason: Option<String>,
    /// Since when every attempt failed (none after a success).
    pub failing_since: Option<Timestamp>,
    /// Until when the secret before the last rotation still signs alongside the current one.
    pub previous_secret_valid_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<webhook_endpoint::Model> for WebhookEndpoint {
    fn from(e: webhook_endpoint::Model) -> Self {
        WebhookEndpoint {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types.split(' ').map(String::from).collect(),
            is_active: e.is_active,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since.map(Into::into),
            previous_secret_valid_until: e.previous_secret_until.map(Into::into),
            created_at: e.created_at.into(),
            updated_at: e.updated_at.into(),
        }
    }
}

/// An endpoint as created or rotated: `secret` is shown this once.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 4, "url": "https://erp.example.cl/hooks/dispensary", "description": "ERP",
    "eventTypes": ["order.paid"], "isActive": true, "disabledReason": null, "failingSince": null,
    "previousSecretValidUntil": null, "createdAt": "2026-12-08T10:00:00Z", "updatedAt": "2026-12-08T10:00:00Z",
    "secret": "whsec_C2FvZW0gc2VjcmV0IGJ5dGVzIGZvciBleGFtcGxlcyE="}))]
pub struct WebhookEndpointWithSecret {
    #[graphql(flatten)]
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_<base64>`): verify `webhook-signature` with it (Standard
    /// Webhooks). Store it now; it is never shown again.
    pub secret: String,
}

impl From<WithSecret> for WebhookEndpointWithSecret {
    fn from(w: WithSecret) -> Self {
        WebhookEndpointWithSecret {
            endpoint: w.endpoint.into(),
            secret: w.secret,
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 4, "url": "https://erp.example.cl/hooks/dispensary", "description": "ERP",
    "eventTypes": ["order.paid"], "isActive": true, "disabledReason": null, "failingSince": null,
    "previousSecretValidUntil": null, "createdAt": "2026-12-08T10:00:00Z", "updatedAt": "2026-12-08T10:00:00Z"}],
    "total": 1, "page": 1, "pageSize": 20}))]
pub struct WebhookEndpointPage {
    pub items: Vec<WebhookEndpoint>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

/// One attempt at a delivery.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttempt {
    pub attempted_at: Timestamp,
    /// The receiver's HTTP status (none: no answer — refused address, timeout, connection).
    pub status: Option<i32>,
    pub latency_ms: i64,
    /// The first KB of the answer.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

impl From<webhook_attempt::Model> for WebhookAttempt {
    fn from(a: webhook_attempt::Model) -> Self {
        WebhookAttempt {
            attempted_at: a.attempted_at.into(),
            status: a.status,
            latency_ms: a.latency_ms,
            response_excerpt: a.response_excerpt,
            error: a.error,
        }
    }
}

/// One event for one endpoint.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 31, "endpointId": 4, "webhookId": "msg_812", "eventType": "order.paid",
    "state": "delivered", "attempts": 1, "nextAttemptAt": "2026-12-08T10:00:00Z", "lastStatus": 200,
    "lastError": null, "createdAt": "2026-12-08T10:00:00Z", "deliveredAt": "2026-12-08T10:00:01Z",
    "payload": {"type": "order.paid", "timestamp": "2026-12-08T10:00:00Z", "data": {"orderId": 77, "from": "pending", "to": "paid"}, "version": 1},
    "attemptLog": [{"attemptedAt": "2026-12-08T10:00:01Z", "status": 200, "latencyMs": 84, "responseExcerpt": "ok", "error": null}]}))]
pub struct WebhookDelivery {
    pub id: i64,
    pub endpoint_id: i64,
    /// The `webhook-id` header: the same on every attempt (receivers de-duplicate by it).
    pub webhook_id: String,
    pub event_type: String,
    /// pending, delivered or failed.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Timestamp,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    /// The body sent.
    #[schema(value_type = Object)]
    pub payload: async_graphql::Json<serde_json::Value>,
    pub attempt_log: Vec<WebhookAttempt>,
}

impl From<DeliveryView> for WebhookDelivery {
    fn from(v: DeliveryView) -> Self {
        let d = v.delivery;
        WebhookDelivery {
            id: d.id,
            endpoint_id: d.endpoint_id,
            webhook_id: format!("msg_{}", d.event_id),
            event_type: d.event_type,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.into(),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at.into(),
            delivered_at: d.delivered_at.map(Into::into),
            payload: async_graphql::Json(serde_json::from_str(&d.payload).unwrap_or_default()),
            attempt_log: v.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 31, "endpointId": 4, "webhookId": "msg_812", "eventType": "order.paid",
    "state": "pending", "attempts": 2, "nextAttemptAt": "2026-12-08T10:36:00Z", "lastStatus": 503,
    "lastError": null, "createdAt": "2026-12-08T10:00:00Z", "deliveredAt": null,
    "payload": {"type": "order.paid", "timestamp": "2026-12-08T10:00:00Z", "data": {"orderId": 77, "from": "pending", "to": "paid"}, "version": 1},
    "attemptLog": [{"attemptedAt": "2026-12-08T10:00:01Z", "status": 503, "latencyMs": 120, "responseExcerpt": "busy", "error": null},
                   {"attemptedAt": "2026-12-08T10:01:02Z", "status": 503, "latencyMs": 98, "responseExcerpt": "busy", "error": null}]}],
    "total": 1, "page": 1, "pageSize": 20}))]
pub struct WebhookDeliveryPage {
    pub items: Vec<WebhookDelivery>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// Webhook endpoints, newest first (admins, or an API key with `webhooks:manage`).
    #[graphql(
        guard = "ScopeGuard(Scope::WebhooksManage)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
    ) -> GqlResult<WebhookEndpointPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (rows, total) = endpoints::list(st, rc, p).await?;
        Ok(WebhookEndpointPage {
            items: rows.into_iter().map(Into::into).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }

    /// One webhook endpoint.
    #[graphql(guard = "ScopeGuard(Scope::WebhooksManage)")]
    async fn webhook(&self, ctx: &Context<'_>, id: i64) -> GqlResult<WebhookEndpoint> {
        let (st, rc) = parts(ctx);
        Ok(endpoints::get(st, rc, id).await?.into())
    }

    /// An endpoint's deliveries, newest first, each with its attempt log; `state`: pending,
    /// delivered or failed.
    #[graphql(
        guard = "ScopeGuard(Scope::WebhooksManage)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        id: i64,
        state: Option<String>,
        page: Option<i64>,
        page_size: Option<i64>,
    ) -> GqlResult<WebhookDeliveryPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (rows, total) = delivery::list(st, rc, id, state, p).await?;
        Ok(WebhookDeliveryPage {
            items: rows.into_iter().map(Into::into).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Registers a webhook endpoint; the answer holds its signing secret, shown once.
    #[graphql(guard = "ScopeGuard(Scope::WebhooksManage)")]
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: NewWebhookEndpoint,
    ) -> GqlResult<WebhookEndpointWithSecret> {
        let (st, rc) = parts(ctx);
        Ok(endpoints::create(st, rc, input).await?.into())
    }

    /// Changes an endpoint; turning it on again resumes its pending deliveries.
    #[graphql(guard = "ScopeGuard(Scope::WebhooksManage)")]
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: WebhookEndpointPatch,
    ) -> GqlResult<WebhookEndpoint> {
        let (st, rc) = parts(ctx);
        Ok(endpoints::update(st, rc, id, input).await?.into())
    }

    /// Removes an endpoint and its deliveries.
    #[graphql(guard = "ScopeGuard(Scope::WebhooksManage)")]
    async fn delete_webhook(&self, ctx: &Context<'_>, id: i64) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        endpoints::delete(st, rc, id).await?;
        Ok(true)
    }

    /// A new signing secret, shown once; the old one keeps signing alongside it for 24 hours.
    #[graphql(guard = "ScopeGuard(Scope::WebhooksManage)")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: i64,
    ) -> GqlResult<WebhookEndpointWithSecret> {
        let (st, rc) = parts(ctx);
        Ok(endpoints::rotate_secret(st, rc, id).await?.into())
    }

    /// Sends a delivery again now, with a fresh set of attempts.
    #[graphql(guard = "ScopeGuard(Scope::WebhooksManage)")]
    async fn redeliver_webhook(&self, ctx: &Context<'_>, id: i64) -> GqlResult<WebhookDelivery> {
        let (st, rc) = parts(ctx);
        Ok(delivery::redeliver(st, rc, id).await?.into())
    }
}
