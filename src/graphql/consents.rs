//! GraphQL types and resolvers for consents (Ley 21.719): the privacy policy accepted, and the
//! consent to the processing of health data.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::consent::{self, ConsentPurpose, ConsentSource};
use crate::entities::user::Role;
use crate::services::accounts::consents::{self, Consents, GrantInput};

/// A consent given: to the privacy policy of a version, or to the processing of health data.
#[derive(SimpleObject, Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 3, "purpose": "health_data", "policyVersion": "2026-12-01", "source": "request",
    "explicit": true, "grantedAt": "2026-12-03T10:00:00Z", "withdrawnAt": null, "ip": "190.100.12.34",
    "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"}))]
pub struct Consent {
    pub id: i64,
    pub purpose: ConsentPurpose,
    /// The privacy policy version in force when it was given.
    pub policy_version: String,
    pub source: ConsentSource,
    /// Whether it was expressly given (false: a registration that recorded the policy version
    /// without `acceptPrivacyPolicy: true`).
    pub explicit: bool,
    pub granted_at: Timestamp,
    /// When it was withdrawn; `null` while in force.
    pub withdrawn_at: Option<Timestamp>,
    /// The client address it was given from.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl From<consent::Model> for Consent {
    fn from(c: consent::Model) -> Self {
        Consent {
            id: c.id,
            purpose: c.purpose,
            policy_version: c.policy_version,
            source: c.source,
            explicit: c.explicit,
            granted_at: c.granted_at.into(),
            withdrawn_at: c.withdrawn_at.map(Into::into),
            ip: c.ip,
            user_agent: c.user_agent,
        }
    }
}

/// The signed-in user's consents: what is in force, and every consent given, newest first.
#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"policyVersion": "2026-12-01", "privacyPolicyAccepted": true, "healthData": false,
    "items": [{"id": 1, "purpose": "privacy_policy", "policyVersion": "2026-12-01", "source": "registration",
    "explicit": true, "grantedAt": "2026-12-02T09:00:00Z", "withdrawnAt": null, "ip": "190.100.12.34", "userAgent": null}]}))]
pub struct ConsentOverview {
    /// The privacy policy version in force (`PRIVACY_POLICY_VERSION`).
    pub policy_version: String,
    /// Whether the user accepted that version.
    pub privacy_policy_accepted: bool,
    /// Whether the consent to the processing of health data is in force (needed to submit
    /// medicinal documents and, once withdrawn, for medicinal access).
    pub health_data: bool,
    pub items: Vec<Consent>,
}

impl From<Consents> for ConsentOverview {
    fn from(c: Consents) -> Self {
        ConsentOverview {
            policy_version: c.policy_version,
            privacy_policy_accepted: c.privacy_policy_accepted,
            health_data: c.health_data,
            items: c.items.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Default)]
pub struct ConsentsQuery;

#[Object]
impl ConsentsQuery {
    /// The signed-in user's consents.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn my_consents(&self, ctx: &Context<'_>) -> GqlResult<ConsentOverview> {
        let (st, rc) = parts(ctx);
        Ok(consents::mine(st, rc).await?.into())
    }
}

#[derive(Default)]
pub struct ConsentsMutation;

#[Object]
impl ConsentsMutation {
    /// Gives a consent: accepts the privacy policy in force (`policyVersion`, when sent, must be
    /// it: 409 `policy_changed`), or agrees to the processing of health data. Giving one already
    /// in force changes nothing.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn give_consent(
        &self,
        ctx: &Context<'_>,
        purpose: ConsentPurpose,
        input: Option<GrantInput>,
    ) -> GqlResult<ConsentOverview> {
        let (st, rc) = parts(ctx);
        Ok(consents::give(st, rc, purpose, input.unwrap_or_default())
            .await?
            .into())
    }

    /// Withdraws a consent. Withdrawing the health-data consent ends medicinal access at once and
    /// takes pending documents out of review, until it is given again.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn withdraw_consent(
        &self,
        ctx: &Context<'_>,
        purpose: ConsentPurpose,
    ) -> GqlResult<ConsentOverview> {
        let (st, rc) = parts(ctx);
        Ok(consents::withdraw(st, rc, purpose).await?.into())
    }
}
