//! Provider events applied exactly once. Every driver records what a provider told it as a
//! `payment_events` row, unique per `(provider, event_id)`: the row is the claim, so a repeated
//! notification, a second browser return or a racing reconciliation finds it taken and changes
//! nothing. The row then records how the event was applied.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set, SqlErr};
use serde_json::Value;

use super::{apply_outcome, Applied, Outcome};
use crate::actor::RequestCtx;
use crate::db::{begin_write, retry_contended};
use crate::entities::payment::Provider;
use crate::entities::payment_event;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// One provider event: who sent it, its id (unique per provider) and what to keep of it.
pub(crate) struct Event {
    pub provider: Provider,
    pub event_id: String,
    pub payload: Value,
}

/// Writes the row that claims `event` (with `outcome` until it is applied); `None` when another
/// delivery claimed it first.
pub(crate) async fn claim<C: ConnectionTrait>(
    conn: &C,
    event: &Event,
    payment_id: Option<i64>,
    outcome: &str,
    now: DateTime<Utc>,
) -> AppResult<Option<payment_event::Model>> {
    let inserted = payment_event::ActiveModel {
        provider: Set(event.provider),
        event_id: Set(event.event_id.clone()),
        payment_id: Set(payment_id),
        received_at: Set(now),
        payload: Set(event.payload.clone()),
        outcome: Set(outcome.into()),
        ..Default::default()
    }
    .insert(conn)
    .await;
    match inserted {
        Ok(row) => Ok(Some(row)),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records on a claimed event how it ended (and, when given, the payload it was applied with).
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    claimed: payment_event::Model,
    payment_id: Option<i64>,
    outcome: &str,
    payload: Option<Value>,
) -> AppResult<()> {
    let mut am: payment_event::ActiveModel = claimed.into();
    if payment_id.is_some() {
        am.payment_id = Set(payment_id);
    }
    am.outcome = Set(outcome.into());
    if let Some(payload) = payload {
        am.payload = Set(payload);
    }
    am.update(conn).await?;
    Ok(())
}

/// Claims `event` and applies `outcome` to payment `payment_id` in one transaction, so a failed
/// apply leaves no claim behind and is retried by the provider. A repeated event is `Duplicate`.
/// An event for no payment of ours is kept (`unknown_payment`) and answered `not_found`. A
/// transaction that loses to a concurrent one is run again (see [`retry_contended`]).
pub(crate) async fn apply_once(
    st: &AppState,
    ctx: &RequestCtx,
    event: Event,
    payment_id: Option<i64>,
    outcome: Outcome,
    raw: Value,
) -> AppResult<Applied> {
    let event = &event;
    retry_contended(&st.metrics, || {
        apply_once_now(st, ctx, event, payment_id, outcome.clone(), raw.clone())
    })
    .await
}

async fn apply_once_now(
    st: &AppState,
    ctx: &RequestCtx,
    event: &Event,
    payment_id: Option<i64>,
    outcome: Outcome,
    raw: Value,
) -> AppResult<Applied> {
    let _catalogue = st.catalogue.writing();
    let txn = begin_write(&st.db).await?;
    let Some(claimed) = claim(&txn, event, payment_id, "received", st.clock.now()).await? else {
        txn.rollback().await?;
        return Ok(Applied::Duplicate);
    };
    let Some(payment_id) = payment_id else {
        record(&txn, claimed, None, "unknown_payment", None).await?;
        txn.commit().await?;
        return Err(AppError::not_found("Payment"));
    };
    let applied = apply_outcome(st, &txn, ctx, payment_id, outcome, raw).await?;
    record(&txn, claimed, Some(payment_id), applied.as_str(), None).await?;
    txn.commit().await?;
    Ok(applied)
}
