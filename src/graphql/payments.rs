//! GraphQL for starting and confirming payments.

use async_graphql::{Context, Json, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::{parts, GqlResult};
use crate::entities::user::Role;
use crate::services::payments::{self, ConfirmPaymentInput, StartPaymentInput};

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
        let s = payments::start(st, rc, input).await?;
        Ok(PaymentStart {
            provider: s.provider,
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
        let c = payments::confirm(st, rc, input).await?;
        Ok(PaymentConfirmation {
            status: c.status,
            order_id: c.order_id,
            payment_ref: c.payment_ref,
            auth_code: c.auth_code,
        })
    }
}
