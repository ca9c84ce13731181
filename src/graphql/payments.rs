//! GraphQL for starting and confirming payments.

use async_graphql::{Context, Json, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::{RoleGuard, ScopeGuard};
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::domain::Scope;
use crate::entities::payment;
use crate::entities::user::Role;
use crate::services::payments::{self, ConfirmPaymentInput, PaymentFilter, StartPaymentInput};
use crate::services::platform::pagination::Page;

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"provider": "test", "providerTxnId": "5b0e1c1e-3f0a-4a7e-9d1c-2b3a4e5f6a7b", "paymentRef": "ORD-12-20261122080000",
    "redirectUrl": "http://localhost:5173/checkout/success?mock=1&orderId=12", "initPayload": null}))]
pub struct PaymentStart {
    pub provider: String,
    pub provider_txn_id: String,
    pub payment_ref: String,
    pub redirect_url: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub init_payload: Option<Json<serde_json::Value>>,
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"status": "paid", "orderId": 12, "paymentRef": "ORD-12-20261122080000", "authCode": "TEST-3"}))]
pub struct PaymentConfirmation {
    /// The payment's status: paid, failed, pending, refund_required.
    pub status: String,
    pub order_id: i64,
    pub payment_ref: Option<String>,
    pub auth_code: Option<String>,
}

#[derive(Default)]
pub struct PaymentsMutation;

#[Object]
impl PaymentsMutation {
    /// Starts a payment for the caller's pending order (or a failed one whose stock can be reserved again).
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn start_payment(
        &self,
        ctx: &Context<'_>,
        input: StartPaymentInput,
    ) -> GqlResult<PaymentStart> {
        let (st, rc) = parts(ctx);
        let s = payments::start_once(st, rc, input).await?;
        Ok(PaymentStart {
            provider: s.provider.as_str().to_string(),
            provider_txn_id: s.provider_txn_id,
            payment_ref: s.payment_ref,
            redirect_url: s.redirect_url,
            init_payload: s.init_payload.map(Json),
        })
    }

    /// Confirms a payment with the provider's return data; applying it twice changes nothing.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn confirm_payment(
        &self,
        ctx: &Context<'_>,
        input: ConfirmPaymentInput,
    ) -> GqlResult<PaymentConfirmation> {
        let (st, rc) = parts(ctx);
        let c = payments::confirm_once(st, rc, input).await?;
        Ok(PaymentConfirmation {
            status: c.status,
            order_id: c.order_id,
            payment_ref: c.payment_ref,
            auth_code: c.auth_code,
        })
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub provider: String,
    pub provider_txn_id: String,
    /// initiated, pending, paid, failed, refunded, refund_required.
    pub status: String,
    pub amount_cents: i64,
    pub auth_code: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<payment::Model> for Payment {
    fn from(p: payment::Model) -> Self {
        Payment {
            id: p.id,
            order_id: p.order_id,
            provider: p.provider.as_str().to_string(),
            provider_txn_id: p.provider_txn_id,
            status: p.status.as_str().to_string(),
            amount_cents: p.amount_cents,
            auth_code: p.auth_code,
            created_at: p.created_at.into(),
            updated_at: p.updated_at.into(),
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 3, "orderId": 12, "provider": "test", "providerTxnId": "5b0e...", "status": "paid",
    "amountCents": 13970, "authCode": "TEST-3", "createdAt": "2026-11-22T08:00:00Z", "updatedAt": "2026-11-22T08:01:00Z"}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct PaymentPage {
    pub items: Vec<Payment>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Default)]
pub struct PaymentsQuery;

#[Object]
impl PaymentsQuery {
    /// Admin: payments by provider, status and creation date range.
    #[graphql(
        guard = "ScopeGuard(Scope::OrdersRead)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn admin_payments(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        provider: Option<String>,
        status: Option<String>,
        date_from: Option<Timestamp>,
        date_to: Option<Timestamp>,
    ) -> GqlResult<PaymentPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let f = PaymentFilter {
            provider,
            status,
            date_from: date_from.map(|t| t.0),
            date_to: date_to.map(|t| t.0),
        };
        let (items, total) = payments::list(st, rc, f, p).await?;
        Ok(PaymentPage {
            items: items.into_iter().map(Payment::from).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }
}
