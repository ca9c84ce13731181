//! The job that erases an account once its grace period is over: it waits while an order is
//! unfinished, mails the address a last time, then erases.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use super::erase::erase;
use super::{blocked_by, unfinished_orders};
use crate::actor::RequestCtx;
use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::entities::user;
use crate::error::AppResult;
use crate::services::platform::files;
use crate::services::platform::jobs::{Job, JobError};
use crate::services::privacy::requests;
use crate::state::AppState;

/// The job that erases an account once its grace period is over.
pub struct EraseAccount;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasurePayload {
    pub request_id: i64,
    /// The request's trace id, for the audit rows the job writes.
    pub trace_id: String,
}

impl Job for EraseAccount {
    const KIND: &'static str = PrivacyRequestKind::Erasure.job_kind();
    type Context = AppState;
    type Payload = ErasurePayload;

    async fn run(&self, st: &AppState, p: ErasurePayload) -> Result<(), JobError> {
        // Cancelled (the row is gone) or done: nothing to do.
        let Some(r) =
            requests::open_for_work(&st.db, p.request_id, PrivacyRequestKind::Erasure).await?
        else {
            return Ok(());
        };
        let Some(u) = user::Entity::find_by_id(r.user_id).one(&st.db).await? else {
            return Ok(());
        };
        let now = st.clock.now();
        let unfinished = unfinished_orders(&st.db, u.id).await?;
        if !unfinished.is_empty() {
            let msg = blocked_by(&unfinished).message;
            note(st, r.id, PrivacyRequestState::Pending, Some(&msg), now).await?;
            return Err(JobError::Retry(msg));
        }
        // From here on it can no longer be cancelled.
        if !requests::claim_for_processing(&st.db, r.id, now).await? {
            return Ok(());
        }
        if u.erased_at.is_none() {
            farewell(st, &u).await?;
        }
        let ctx = RequestCtx::anonymous(p.trace_id, std::net::Ipv4Addr::LOCALHOST.into());
        let removed = erase(st, &ctx, &u, &r).await?;
        files::delete_now(st, &removed).await;
        Ok(())
    }
}

/// Records where a request stands (`error`: why it waits or failed).
async fn note(
    st: &AppState,
    id: i64,
    state: PrivacyRequestState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    privacy_request::Entity::update_many()
        .col_expr(privacy_request::Column::State, Expr::value(state))
        .col_expr(
            privacy_request::Column::Error,
            Expr::value(error.map(|e| e.chars().take(500).collect::<String>())),
        )
        .col_expr(privacy_request::Column::UpdatedAt, Expr::value(now))
        .filter(privacy_request::Column::Id.eq(id))
        .exec(&st.db)
        .await?;
    Ok(())
}

/// The last mail to the address, sent before it is erased (so that no job row keeps it). A
/// transient failure retries the erasure; an address the server refuses for good is erased
/// without it.
async fn farewell(st: &AppState, u: &user::Model) -> Result<(), JobError> {
    let sent = crate::services::notifications::mail::SendMail
        .run(
            st,
            crate::services::notifications::mail::MailPayload {
                // Not queued: its Message-ID comes from its content, the same when the erasure
                // is retried (an account is erased once).
                message_id: None,
                ..crate::services::notifications::mail::MailPayload::new(
                    st,
                    "account_erased",
                    u.email.clone(),
                    serde_json::json!({
                        "customer": {"name": u.name},
                        "retentionYears": st.config.privacy.legal_retention_years,
                    }),
                )
            },
        )
        .await;
    match sent {
        Err(JobError::Fatal(e)) => {
            tracing::warn!(error = %e, "the farewell mail could not be sent; erasing anyway");
            Ok(())
        }
        other => other,
    }
}
