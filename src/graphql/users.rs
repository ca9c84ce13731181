//! GraphQL types and resolvers for users and the signed-in user's profile.

use async_graphql::{ComplexObject, Context, Object, SimpleObject};
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::{RoleGuard, ScopeGuard};
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::domain::Scope;
use crate::entities::user::Role;
use crate::services::accounts::users::{
    self, BlockProcessingInput, UpdateMeInput, UpdateUserInput, UserFilter, UserView,
};
use crate::services::platform::pagination::Page;

#[derive(SimpleObject, Serialize, ToSchema, Clone)]
#[graphql(complex)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 2, "name": "Ana Pérez", "email": "ana@example.cl", "emailVerified": true,
    "pendingEmail": null, "privacyPolicyAccepted": true, "rut": "12345678-5", "role": "customer", "isActive": true, "validatedMedicinal": false,
    "profile": {"phone": "+56912345678", "birthdate": null, "address": null, "comuna": null, "region": null, "defaultAddressId": null},
    "createdAt": "2026-11-22T08:00:00Z", "updatedAt": "2026-11-22T08:00:00Z", "deletedAt": null,
    "processingBlockedAt": null, "processingBlockedReason": null, "erasedAt": null}))]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    /// Whether `email` was verified (by following the link mailed to it).
    pub email_verified: bool,
    /// The address an email change asked for, until its link is followed (it then becomes
    /// `email`) or expires. Resolved on request.
    #[graphql(skip)]
    pub pending_email: Option<String>,
    /// Whether the user accepted the privacy policy in force (`PRIVACY_POLICY_VERSION`).
    /// Resolved on request.
    #[graphql(skip)]
    pub privacy_policy_accepted: bool,
    pub rut: Option<String>,
    pub role: Role,
    pub is_active: bool,
    /// Whether an admin validated the customer for medicinal products. Health data: always
    /// `false` to an API key, which never sees it.
    pub validated_medicinal: bool,
    pub profile: UserProfile,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    /// Since when an admin has blocked the processing of this customer's data (the account is
    /// read-only meanwhile), and why.
    pub processing_blocked_at: Option<Timestamp>,
    pub processing_blocked_reason: Option<String>,
    /// When the account was erased (Ley 21.719): the row is then a tombstone under a pseudonym.
    pub erased_at: Option<Timestamp>,
}

#[ComplexObject]
impl User {
    /// The address an email change asked for, until its link is followed (it then becomes
    /// `email`) or expires.
    async fn pending_email(&self, ctx: &Context<'_>) -> GqlResult<Option<String>> {
        let (st, _) = parts(ctx);
        Ok(
            crate::services::accounts::verification::pending_email(&st.db, self.id, st.clock.now())
                .await?,
        )
    }

    /// Whether the user accepted the privacy policy in force (`PRIVACY_POLICY_VERSION`); after
    /// a new version, `false` until `POST /api/me/consents/privacy_policy`. Resolved on request.
    async fn privacy_policy_accepted(&self, ctx: &Context<'_>) -> GqlResult<bool> {
        let loader = ctx.data_unchecked::<super::loaders::RequestLoader>();
        Ok(loader
            .load_one(super::loaders::PrivacyPolicyAccepted(self.id))
            .await?
            .unwrap_or(false))
    }
}

#[derive(SimpleObject, Serialize, ToSchema, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub phone: Option<String>,
    pub birthdate: Option<NaiveDate>,
    pub address: Option<String>,
    pub comuna: Option<String>,
    pub region: Option<String>,
    pub default_address_id: Option<i64>,
}

impl From<UserView> for User {
    fn from(v: UserView) -> Self {
        let u = v.user;
        let profile = v
            .profile
            .map(|p| UserProfile {
                phone: p.phone,
                birthdate: p.birthdate,
                address: p.address,
                comuna: p.comuna,
                region: p.region,
                default_address_id: p.default_address_id,
            })
            .unwrap_or_default();
        User {
            id: u.id,
            name: u.name,
            email: u.email,
            email_verified: u.email_verified_at.is_some(),
            pending_email: None,
            privacy_policy_accepted: false,
            rut: u.rut,
            role: u.role,
            is_active: u.is_active,
            validated_medicinal: u.validated_medicinal,
            profile,
            created_at: u.created_at.into(),
            updated_at: u.updated_at.into(),
            deleted_at: u.deleted_at.map(Into::into),
            processing_blocked_at: u.processing_blocked_at.map(Into::into),
            processing_blocked_reason: u.processing_blocked_reason,
            erased_at: u.erased_at.map(Into::into),
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 2, "name": "Ana Pérez", "email": "ana@example.cl", "role": "customer"}],
    "total": 1, "page": 1, "pageSize": 20}))]
pub struct UserPage {
    pub items: Vec<User>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Default)]
pub struct UsersQuery;

#[Object]
impl UsersQuery {
    /// The signed-in user.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<User> {
        let (st, rc) = parts(ctx);
        Ok(users::me(st, rc).await?.into())
    }

    /// Admin: users, filtered by free text (name, email, RUT), role and active flag.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        guard = "ScopeGuard(Scope::CustomersRead)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
        q: Option<String>,
        role: Option<Role>,
        is_active: Option<bool>,
    ) -> GqlResult<UserPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (items, total) = users::list(st, rc, UserFilter { q, role, is_active }, p).await?;
        Ok(UserPage {
            items: items.into_iter().map(User::from).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }

    /// Admin: one user by id.
    #[graphql(guard = "ScopeGuard(Scope::CustomersRead)")]
    async fn user(&self, ctx: &Context<'_>, id: i64) -> GqlResult<User> {
        let (st, rc) = parts(ctx);
        Ok(users::get(st, rc, id).await?.into())
    }
}

#[derive(Default)]
pub struct UsersMutation;

#[Object]
impl UsersMutation {
    /// Updates the signed-in user's own name, email, RUT or phone.
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn update_me(&self, ctx: &Context<'_>, input: UpdateMeInput) -> GqlResult<User> {
        let (st, rc) = parts(ctx);
        Ok(users::update_me(st, rc, input).await?.into())
    }

    /// Admin: changes a user's role, active flag or medicinal validation.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: UpdateUserInput,
    ) -> GqlResult<User> {
        let (st, rc) = parts(ctx);
        Ok(users::update(st, rc, id, input).await?.into())
    }

    /// Admin: blocks the processing of a customer's data while a dispute is resolved (Ley
    /// 21.719): the account becomes read-only — no new orders, documents or reviews. Blocking
    /// again changes the reason.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn block_processing(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: BlockProcessingInput,
    ) -> GqlResult<User> {
        let (st, rc) = parts(ctx);
        Ok(users::block_processing(st, rc, id, input).await?.into())
    }

    /// Admin: ends a block of a customer's data processing.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn unblock_processing(&self, ctx: &Context<'_>, id: i64) -> GqlResult<User> {
        let (st, rc) = parts(ctx);
        Ok(users::unblock_processing(st, rc, id).await?.into())
    }

    /// Admin: soft-deletes a user (deactivates and revokes every session).
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn delete_user(&self, ctx: &Context<'_>, id: i64) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        Ok(users::delete(st, rc, id).await?)
    }
}
