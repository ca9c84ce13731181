//! `POST /webhooks/payments/{provider}`: verify the raw bytes, de-duplicate the event, then apply
//! it through the payments service in one transaction (so a failed apply is retried, not lost).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};
use serde_json::{json, Value};

use super::App;
use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::{payment, payment_event};
use crate::error::AppError;
use crate::services::audit::{self, Entry};
use crate::services::payments::test_provider::{self, TestEvent};
use crate::services::payments::{apply_outcome, Applied};

/// Accepted clock skew for signed webhook timestamps.
const WINDOW_SECONDS: i64 = 300;

pub async fn handle(
    State(app): State<App>,
    Path(provider): Path<String>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let st = &app.state;
    let result = match provider.as_str() {
        "test" if st.config.payments_test_enabled => {
            test_webhook(&app, &ctx, &headers, &body).await
        }
        _ => Err(AppError::not_found("Payment provider")),
    };
    let label = match &result {
        Ok(outcome) => outcome.clone(),
        Err(e) => match e.code {
            crate::error::ErrorCode::Unauthorized => "rejected_signature".to_string(),
            crate::error::ErrorCode::NotFound => "unknown".to_string(),
            _ => "rejected".to_string(),
        },
    };
    if provider.len() <= 16 && provider.bytes().all(|b| b.is_ascii_lowercase()) {
        st.metrics
            .webhooks
            .with_label_values(&[provider.as_str(), label.as_str()])
            .inc();
        // Every delivery leaves a trace (forged ones included): provider and outcome only,
        // never the payload or its signature.
        let entry = Entry::new("webhook.received", "payment", None)
            .meta(json!({"provider": provider, "outcome": label}));
        if let Err(e) = audit::record(&st.db, &st.clock, &ctx, entry).await {
            tracing::error!(error = %e.message, "could not audit a webhook delivery");
        }
    }
    match result {
        Ok(outcome) => Json(json!({ "received": true, "outcome": outcome })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn test_webhook(
    app: &App,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, AppError> {
    let st = &app.state;
    let signature = headers
        .get("x-test-signature")
        .and_then(|v| v.to_str().ok());
    test_provider::verify(&st.config.test_payment_secret, body, signature)?;
    let event: TestEvent = serde_json::from_slice(body).map_err(|e| {
        AppError::invalid(
            "body",
            "invalid_json",
            format!("Not a test payment event: {e}"),
        )
    })?;
    let now = st.clock.now();
    if (now.timestamp() - event.timestamp).abs() > WINDOW_SECONDS {
        return Err(AppError::unauthorized(
            "The event timestamp is outside the accepted window",
        ));
    }
    let payload: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let txn = begin_write(&st.db).await?;
    let recorded = payment_event::ActiveModel {
        provider: Set("test".into()),
        event_id: Set(event.event_id.clone()),
        payment_id: Set(None),
        received_at: Set(now),
        payload: Set(payload.clone()),
        outcome: Set("received".into()),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let recorded = match recorded {
        Ok(r) => r,
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            txn.rollback().await?;
            return Ok("duplicate".into());
        }
        Err(e) => return Err(e.into()),
    };
    let Some(p) = payment::Entity::find()
        .filter(payment::Column::Provider.eq("test"))
        .filter(payment::Column::ProviderTxnId.eq(event.provider_txn_id.as_str()))
        .one(&txn)
        .await?
    else {
        let mut am: payment_event::ActiveModel = recorded.into();
        am.outcome = Set("unknown_payment".into());
        am.update(&txn).await?;
        txn.commit().await?;
        return Err(AppError::not_found("Payment"));
    };
    let applied = apply_outcome(
        st,
        &txn,
        ctx,
        p.id,
        event.outcome(),
        json!({"source": "webhook", "event": payload}),
    )
    .await?;
    let mut am: payment_event::ActiveModel = recorded.into();
    am.payment_id = Set(Some(p.id));
    am.outcome = Set(applied.as_str().into());
    am.update(&txn).await?;
    txn.commit().await?;
    Ok(match applied {
        Applied::Duplicate => "duplicate".into(),
        other => other.as_str().into(),
    })
}
