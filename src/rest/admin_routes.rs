//! REST rows for the audit log and admin analytics.

use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::catalog_routes::PageParams;
use super::{json_body, query, Access, RestRoute};
use crate::entities::job::JobState;
use crate::entities::privacy_request::{PrivacyRequestKind, PrivacyRequestState};
use crate::graphql::analytics::{LowStock, OrdersByStatus, SalesByDay, TopProducts};
use crate::graphql::api_keys::{ApiKey, ApiKeyPage, IssuedApiKey};
use crate::graphql::jobs::{JobPage, JobView};
use crate::graphql::logs::LogPage;
use crate::graphql::privacy::{PrivacyRequest, PrivacyRequestPage};
use crate::graphql::scalars::Timestamp;
use crate::graphql::users::User;
use crate::graphql::webhooks::{
    WebhookDelivery, WebhookDeliveryPage, WebhookEndpoint, WebhookEndpointPage,
    WebhookEndpointWithSecret,
};
use crate::services::accounts::api_keys::NewApiKey;
use crate::services::accounts::users::BlockProcessingInput;
use crate::services::integrations::endpoints::{NewWebhookEndpoint, WebhookEndpointPatch};

/// Query parameters of `GET /api/admin/privacy-requests`.
#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PrivacyRequestsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    /// export or erasure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PrivacyRequestKind>,
    /// pending, processing, ready or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<PrivacyRequestState>,
    /// true: only requests not answered past their due date; false: the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue: Option<bool>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AdminLogsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    /// A user id or email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// An exact action (`order.status_changed`) or a prefix ending in `*` (`order.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// user, category, product, variant, coupon, order, payment, medicinal_document, review, file, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub date_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub date_to: Option<Timestamp>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DaysParams {
    /// 1–366 (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LimitParams {
    /// 1–100 (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ThresholdParams {
    /// Variants with stock at or below this (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i64>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AdminJobsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    /// A job kind, e.g. `outbox.dispatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeliveriesParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    /// pending, delivered or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[rustfmt::skip]
pub fn routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(M::GET, "/api/admin/logs", "AdminLogs", doc!("admin/logs.graphql"), "adminLogs")
            .access(Access::Admin)
            .doc("admin", "The audit log, newest first: actor, action, entity, entityId, dateFrom, dateTo (admin)")
            .query(query::<AdminLogsParams>())
            .returns::<LogPage>(),
        RestRoute::new(M::GET, "/api/admin/privacy-requests", "PrivacyRequests", doc!("privacy/privacy_requests.graphql", "privacy_request_fields.graphql"), "privacyRequests")
            .access(Access::Admin)
            .doc("admin", "Personal-data requests (Ley 21.719: exports and erasures) with their due date (PRIVACY_REQUEST_DUE_DAYS) and state, the soonest due first: kind, state, overdue (admin)")
            .query(query::<PrivacyRequestsParams>())
            .returns::<PrivacyRequestPage>(),
        RestRoute::new(M::POST, "/api/admin/users/{id}/block-processing", "BlockProcessing", doc!("users/block_processing.graphql", "user_fields.graphql"), "blockProcessing")
            .access(Access::Admin)
            .doc("admin", "Block the processing of a customer's data while a dispute is resolved (Ley 21.719): the account becomes read-only — no new orders, documents or reviews (403 processing_blocked); blocking again changes the reason (admin; 409 for a non-customer)")
            .body(json_body::<BlockProcessingInput>("input"))
            .returns::<User>(),
        RestRoute::new(M::DELETE, "/api/admin/users/{id}/block-processing", "UnblockProcessing", doc!("users/unblock_processing.graphql", "user_fields.graphql"), "unblockProcessing")
            .access(Access::Admin)
            .doc("admin", "End the block of a customer's data processing; the account may create again (admin)")
            .returns::<User>(),
        RestRoute::new(M::POST, "/api/admin/privacy-requests/{id}/process", "ProcessPrivacyRequest", doc!("privacy/process_privacy_request.graphql", "privacy_request_fields.graphql"), "processPrivacyRequest")
            .access(Access::Admin)
            .doc("admin", "Run a pending (or failed) erasure now instead of at the end of its grace period; answers the request afterwards: ready, or pending with `error` naming the orders it waits for (admin; 409 when not pending)")
            .returns::<PrivacyRequest>(),
        RestRoute::new(M::GET, "/api/admin/jobs", "AdminJobs", doc!("admin/jobs.graphql", "job_fields.graphql"), "adminJobs")
            .access(Access::Admin)
            .doc("admin", "Background jobs, newest first: state, kind (admin)")
            .query(query::<AdminJobsParams>())
            .returns::<JobPage>(),
        RestRoute::new(M::GET, "/api/admin/jobs/{id}", "AdminJob", doc!("admin/job.graphql", "job_fields.graphql"), "adminJob")
            .access(Access::Admin)
            .doc("admin", "One background job (admin)")
            .returns::<JobView>(),
        RestRoute::new(M::POST, "/api/admin/jobs/{id}/retry", "RetryJob", doc!("admin/retry_job.graphql", "job_fields.graphql"), "retryJob")
            .access(Access::Admin)
            .doc("admin", "A dead or failed job back to the queue, to run now with fresh attempts (admin; others 409 not_retryable)")
            .returns::<JobView>(),
        RestRoute::new(M::GET, "/api/admin/analytics/salesByDay", "SalesByDay", doc!("admin/sales_by_day.graphql"), "salesByDay")
            .access(Access::Admin)
            .doc("admin", "Sales per UTC day (paid, shipped, delivered orders), every day present (admin)")
            .query(query::<DaysParams>())
            .returns::<SalesByDay>(),
        RestRoute::new(M::GET, "/api/admin/analytics/topProducts", "TopProducts", doc!("admin/top_products.graphql"), "topProducts")
            .access(Access::Admin)
            .doc("admin", "Best sellers by units sold, then revenue (admin)")
            .query(query::<LimitParams>())
            .returns::<TopProducts>(),
        RestRoute::new(M::GET, "/api/admin/analytics/ordersByStatus", "OrdersByStatus", doc!("admin/orders_by_status.graphql"), "ordersByStatus")
            .access(Access::Admin)
            .doc("admin", "Orders per status, zeros included (admin)")
            .returns::<OrdersByStatus>(),
        RestRoute::new(M::GET, "/api/admin/analytics/lowStock", "LowStock", doc!("admin/low_stock.graphql"), "lowStock")
            .access(Access::Admin)
            .doc("admin", "Active variants at or below a stock threshold, fewest first (admin)")
            .query(query::<ThresholdParams>())
            .returns::<LowStock>(),
        RestRoute::new(M::POST, "/api/admin/api-keys", "CreateApiKey", doc!("admin/create_api_key.graphql"), "createApiKey")
            .status(StatusCode::CREATED)
            .access(Access::Admin)
            .doc("admin", "Create an API key for a store system: name, scopes (products:read, products:write, orders:read, orders:write, customers:read, webhooks:manage), expiresAt; the answer's `key` is shown this once (admin)")
            .body(json_body::<NewApiKey>("input"))
            .returns::<IssuedApiKey>(),
        RestRoute::new(M::GET, "/api/admin/api-keys", "ApiKeys", doc!("admin/api_keys.graphql", "api_key_fields.graphql"), "apiKeys")
            .access(Access::Admin)
            .doc("admin", "API keys, newest first, revoked and expired ones included; never the key itself (admin)")
            .query(query::<PageParams>())
            .returns::<ApiKeyPage>(),
        RestRoute::new(M::DELETE, "/api/admin/api-keys/{id}", "RevokeApiKey", doc!("admin/revoke_api_key.graphql", "api_key_fields.graphql"), "revokeApiKey")
            .access(Access::Admin)
            .doc("admin", "Revoke an API key: refused from its next request on; revoking it again changes nothing (admin)")
            .returns::<ApiKey>(),
        RestRoute::new(M::GET, "/api/admin/webhooks", "Webhooks", doc!("webhooks/webhooks.graphql", "webhook_fields.graphql"), "webhooks")
            .access(Access::Admin)
            .doc("webhooks", "Outbound webhook endpoints, newest first (admin, or an API key with webhooks:manage)")
            .query(query::<PageParams>())
            .returns::<WebhookEndpointPage>(),
        RestRoute::new(M::POST, "/api/admin/webhooks", "CreateWebhook", doc!("webhooks/create_webhook.graphql"), "createWebhook")
            .status(StatusCode::CREATED)
            .access(Access::Admin)
            .doc("webhooks", "Register an endpoint: url, eventTypes, description, isActive; the answer's `secret` (whsec_…) is shown this once (admin, or webhooks:manage)")
            .body(json_body::<NewWebhookEndpoint>("input"))
            .returns::<WebhookEndpointWithSecret>(),
        RestRoute::new(M::GET, "/api/admin/webhooks/{id}", "Webhook", doc!("webhooks/webhook.graphql", "webhook_fields.graphql"), "webhook")
            .access(Access::Admin)
            .doc("webhooks", "One endpoint, without its secret (admin, or webhooks:manage)")
            .returns::<WebhookEndpoint>(),
        RestRoute::new(M::PATCH, "/api/admin/webhooks/{id}", "UpdateWebhook", doc!("webhooks/update_webhook.graphql", "webhook_fields.graphql"), "updateWebhook")
            .access(Access::Admin)
            .doc("webhooks", "Change an endpoint; isActive: true turns a disabled one on again and resumes its pending deliveries (admin, or webhooks:manage)")
            .body(json_body::<WebhookEndpointPatch>("input"))
            .returns::<WebhookEndpoint>(),
        RestRoute::new(M::DELETE, "/api/admin/webhooks/{id}", "DeleteWebhook", doc!("webhooks/delete_webhook.graphql"), "deleteWebhook")
            .status(StatusCode::NO_CONTENT)
            .access(Access::Admin)
            .doc("webhooks", "Remove an endpoint and its deliveries (admin, or webhooks:manage)"),
        RestRoute::new(M::POST, "/api/admin/webhooks/{id}/rotate-secret", "RotateWebhookSecret", doc!("webhooks/rotate_webhook_secret.graphql"), "rotateWebhookSecret")
            .access(Access::Admin)
            .doc("webhooks", "A new signing secret, shown this once; the previous one keeps signing alongside it for 24 h (two signatures in webhook-signature) (admin, or webhooks:manage)")
            .returns::<WebhookEndpointWithSecret>(),
        RestRoute::new(M::GET, "/api/admin/webhooks/{id}/deliveries", "WebhookDeliveries", doc!("webhooks/webhook_deliveries.graphql", "webhook_delivery_fields.graphql"), "webhookDeliveries")
            .access(Access::Admin)
            .doc("webhooks", "An endpoint's deliveries, newest first, each with its attempt log (status, latency, the answer's first KB): state (admin, or webhooks:manage)")
            .query(query::<DeliveriesParams>())
            .returns::<WebhookDeliveryPage>(),
        RestRoute::new(M::POST, "/api/admin/webhook-deliveries/{id}/redeliver", "RedeliverWebhook", doc!("webhooks/redeliver_webhook.graphql", "webhook_delivery_fields.graphql"), "redeliverWebhook")
            .access(Access::Admin)
            .doc("webhooks", "Send a delivery again now with a fresh set of attempts (409 endpoint_disabled while its endpoint is off) (admin, or webhooks:manage)")
            .returns::<WebhookDelivery>(),
    ]
}
