//! Removes rows whose only purpose has passed: revoked access tokens and refresh tokens past
//! their expiry (an expired token is refused on its own), idempotency keys past their retention,
//! mailed links a week past theirs, sessions whose tokens are all gone, data-export ZIPs past
//! their download window, medicinal documents (and their files) past their retention after they
//! expired or were rejected, finished jobs past their retention, and delivery marks of events
//! already dispatched. Run as the periodic
//! `housekeeping.purge` job; safe on several instances at once (plain conditional deletes).

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entities::{auth_token, idempotency_key, revoked_access_token, session};
use crate::error::AppResult;
use crate::state::AppState;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub revoked_access_tokens: u64,
    pub refresh_tokens: u64,
    pub idempotency_keys: u64,
    /// Mailed links (email verification, password reset) a week past their expiry, used ones
    /// included.
    pub account_links: u64,
    /// Failed sign-in and code attempts a day past the lockout window.
    pub credential_attempts: u64,
    /// Sessions none of whose refresh tokens is left (all purged above).
    pub sessions: u64,
    /// Data-export ZIPs past their download window (the request rows stay, as history).
    pub data_exports: u64,
    /// Medicinal documents (rows and files) `MEDICINAL_DOC_RETENTION_DAYS` after they expired or
    /// were rejected.
    pub medicinal_documents: u64,
}

pub async fn purge_expired(st: &AppState) -> AppResult<Purged> {
    let now = st.clock.now();
    Ok(Purged {
        revoked_access_tokens: revoked_access_token::Entity::delete_many()
            .filter(revoked_access_token::Column::ExpiresAt.lt(now))
            .exec(&st.db)
            .await?
            .rows_affected,
        refresh_tokens: auth_token::Entity::delete_many()
            .filter(auth_token::Column::ExpiresAt.lt(now))
            .exec(&st.db)
            .await?
            .rows_affected,
        idempotency_keys: idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::ExpiresAt.lt(now))
            .exec(&st.db)
            .await?
            .rows_affected,
        account_links: crate::services::accounts::links::purge(st).await?,
        credential_attempts: crate::services::accounts::lockout::purge(st).await?,
        sessions: session::Entity::delete_many()
            .filter(
                Expr::col(session::Column::FamilyId).not_in_subquery(
                    Query::select()
                        .column(auth_token::Column::FamilyId)
                        .from(auth_token::Entity)
                        .to_owned(),
                ),
            )
            .exec(&st.db)
            .await?
            .rows_affected,
        data_exports: crate::services::privacy::data_export::purge_expired(st).await?,
        medicinal_documents: crate::services::medicinal::documents::purge_retained(st).await?,
    })
}

/// The periodic `housekeeping.purge` job (every `SWEEP_INTERVAL_SECONDS`, once across processes).
pub struct Purge;

impl crate::services::platform::jobs::Periodic for Purge {
    const KIND: &'static str = "housekeeping.purge";
    type Context = AppState;

    async fn run(&self, st: &AppState) -> Result<(), crate::services::platform::jobs::JobError> {
        let purged = purge_expired(st).await?;
        if purged != Purged::default() {
            tracing::info!(?purged, "purged expired rows");
        }
        let jobs = crate::services::platform::jobs::purge_finished(st).await?;
        let deliveries = crate::services::platform::events::dispatch::purge_leftovers(st).await?;
        if jobs > 0 || deliveries > 0 {
            tracing::info!(
                jobs,
                deliveries,
                "purged finished jobs and leftover deliveries"
            );
        }
        Ok(())
    }
}
