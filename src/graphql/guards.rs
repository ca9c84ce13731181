//! Role guards for resolvers. Services check again: a guard documents and front-loads the rule,
//! the service is where it cannot be bypassed (webhooks and internal callers skip GraphQL).

use async_graphql::{Context, Guard};

use crate::actor::RequestCtx;
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
