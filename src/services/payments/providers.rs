//! The one place a provider is chosen: each [`Provider`] answers whether it is configured and
//! how it starts, confirms, refunds and reconciles a payment, by calling its driver module.

use serde_json::Value;

use super::{by_txn, flow, mp, test_provider, webpay, Applied, Started};
use crate::actor::RequestCtx;
use crate::entities::payment::Provider;
use crate::entities::{order, payment, user};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

impl Provider {
    /// Whether this server is configured to take payments with the provider.
    pub fn enabled(self, st: &AppState) -> bool {
        match self {
            Provider::Webpay => st.config.payments.webpay.is_some(),
            Provider::Flow => st.config.payments.flow.is_some(),
            Provider::Mp => st.config.payments.mp.is_some(),
            Provider::Test => st.config.payments.test_enabled,
        }
    }

    /// The configured provider a buyer names, or a validation error saying why not.
    pub fn usable(st: &AppState, name: &str) -> AppResult<Provider> {
        match Provider::parse(name) {
            Some(p) if p.enabled(st) => Ok(p),
            Some(_) => Err(AppError::invalid(
                "provider",
                "provider_unavailable",
                format!("The payment provider {name} is not configured"),
            )),
            None => Err(AppError::invalid(
                "provider",
                "invalid_value",
                "provider must be webpay, flow, mp or test",
            )),
        }
    }

    /// Opens the payment at the provider (no row locks are held: providers with an API are
    /// called before the write transaction).
    pub(crate) async fn start(
        self,
        st: &AppState,
        o: &order::Model,
        reference: &str,
        buyer_email: &str,
    ) -> AppResult<Started> {
        match self {
            Provider::Webpay => webpay::start(st, o, reference).await,
            Provider::Flow => flow::start(st, o, reference, buyer_email).await,
            Provider::Mp => mp::start(st, o, reference).await,
            Provider::Test => Ok(test_provider::start(st, o, reference)),
        }
    }

    /// `confirmPayment`: applies what the buyer's browser brought back from the provider,
    /// trusting only the provider's own answer. Returns the id of the payment it settled.
    pub(crate) async fn confirm(
        self,
        st: &AppState,
        ctx: &RequestCtx,
        o: &order::Model,
        latest: &payment::Model,
        token: Option<&str>,
        params: Value,
    ) -> AppResult<i64> {
        if self == Provider::Test {
            test_provider::confirm_payment(st, ctx, latest, params).await?;
            return Ok(latest.id);
        }
        // SPA flows: the frontend hands over what the provider returned (Webpay's token_ws,
        // Flow's token, Mercado Pago's payment_id).
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            AppError::invalid(
                "token",
                "required",
                "Send the token (Mercado Pago: the payment_id) the provider returned",
            )
        })?;
        if self == Provider::Mp {
            let found = mp::payment(st, token).await?;
            if found.external_reference.as_deref() != o.payment_ref.as_deref() {
                return Err(AppError::not_found("Payment"));
            }
            mp::settle(st, ctx, found, "confirm").await?;
            return Ok(latest.id);
        }
        let own = by_txn(st, self, token)
            .await?
            .filter(|p| p.order_id == o.id)
            .ok_or_else(|| AppError::not_found("Payment"))?;
        if self == Provider::Flow {
            flow::settle(st, ctx, token, "confirm").await?;
        } else {
            webpay::commit_once(st, ctx, &own, "confirm").await?;
        }
        Ok(own.id)
    }

    /// Asks the provider to refund a payment in full: `Ok(kind)`. `None` when this provider
    /// has no refund API here (the test provider, or one not configured): a manual refund.
    pub(crate) async fn refund(
        self,
        st: &AppState,
        p: &payment::Model,
    ) -> AppResult<Option<AppResult<String>>> {
        if !self.enabled(st) {
            return Ok(None);
        }
        Ok(match self {
            Provider::Webpay => Some(webpay::refund(st, &p.provider_txn_id, p.amount_cents).await),
            Provider::Mp => Some(mp::refund(st, p).await),
            Provider::Flow => {
                use sea_orm::EntityTrait;
                let buyer = order::Entity::find_by_id(p.order_id)
                    .one(&st.db)
                    .await?
                    .map(|o| o.user_id);
                let email = match buyer {
                    Some(uid) => user::Entity::find_by_id(uid)
                        .one(&st.db)
                        .await?
                        .map(|u| u.email)
                        .unwrap_or_default(),
                    None => String::new(),
                };
                Some(flow::refund(st, p, &email).await)
            }
            Provider::Test => None,
        })
    }

    /// Asks the provider where an open payment stands and applies it. `None` when the provider
    /// cannot be asked (the test provider, or one not configured).
    pub(crate) async fn reconcile(
        self,
        st: &AppState,
        ctx: &RequestCtx,
        p: &payment::Model,
    ) -> Option<AppResult<Applied>> {
        if !self.enabled(st) {
            return None;
        }
        Some(match self {
            Provider::Webpay => webpay::reconcile(st, ctx, p).await,
            Provider::Mp => mp::reconcile(st, ctx, p).await,
            Provider::Flow => flow::settle(st, ctx, &p.provider_txn_id, "reconcile")
                .await
                .map(|(_, applied)| applied),
            Provider::Test => return None,
        })
    }
}
