//! Role guards for resolvers. Services check again: a guard documents and front-loads the rule,
//! the service is where it cannot be bypassed (webhooks and internal callers skip GraphQL).

use async_graphql::{Context, Guard};

use crate::actor::RequestCtx;
use crate::domain::Scope;
use crate::entities::user::Role;

/// `Customer`: any signed-in user. `Admin`: administrators only.
pub struct RoleGuard(pub Role);

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let rc = ctx.data_unchecked::<RequestCtx>();
        let outcome = match self.0 {
            Role::Customer => rc.require_user().map(|_| ()),
            Role::Admin => rc.require_admin().map(|_| ()),
        };
        outcome.map_err(Into::into)
    }
}

/// Administrators, or an API key holding the scope (see `graphql::scopes`).
pub struct ScopeGuard(pub Scope);

impl Guard for ScopeGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let rc = ctx.data_unchecked::<RequestCtx>();
        rc.require_scope(self.0).map_err(Into::into)
    }
}

/// A signed-in user (the service then shows them their own), or an API key holding the scope.
pub struct CustomerOrScope(pub Scope);

impl Guard for CustomerOrScope {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let rc = ctx.data_unchecked::<RequestCtx>();
        let outcome = match rc.api_key() {
            Some(_) => rc.require_scope(self.0),
            None => rc.require_user().map(|_| ()),
        };
        outcome.map_err(Into::into)
    }
}
